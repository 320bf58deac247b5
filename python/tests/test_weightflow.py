"""The Python package end to end on images made here: a random CNN3 saved with save_model, a
BBSD detector fitted on bright squares, saved, loaded, and tested on clean and inverted batches
(uint8 and float, NHWC and NCHW); errors arrive as WeightflowError with the crate's message."""

import json
import os

import numpy as np
import pytest

import weightflow as wf


def squares(n, seed, invert=False):
    """[n, 28, 28, 1] float32 on [0, 1]: one bright square per image on a dark background."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28, 1), dtype=np.float32)
    for i in range(n):
        s = rng.integers(6, 14)
        r, c = rng.integers(0, 28 - s, size=2)
        x[i, r:r + s, c:c + s, 0] = rng.uniform(0.6, 1.0)
    x += rng.uniform(0, 0.1, size=x.shape).astype(np.float32)
    x = np.clip(x, 0, 1)
    return 1.0 - x if invert else x


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    layout = wf._native.state_dict_layout("cnn3", 3, 10)
    total = sum(int(np.prod(s)) for _, s, _ in layout)
    rng = np.random.default_rng(0)
    w = (rng.standard_normal(total) * 0.1).astype(np.float32)
    path = str(d / "f.safetensors")
    wf.save_model(path, w)
    return path, w


@pytest.fixture(scope="module")
def detector(model, tmp_path_factory):
    path, _ = model
    det = wf.Detector.fit(method="bbsd", model=path, reference=squares(600, 1), sizes=[40], n_reference=300)
    d = str(tmp_path_factory.mktemp("det") / "det")
    det.save(d)
    return d


def test_state_dict_names_and_round_trip(model):
    _, w = model
    sd = wf.to_torch_state_dict(w)
    assert list(sd)[0] == "module_list.0.weight"
    assert sum(v.size for v in sd.values()) == w.size
    assert np.array_equal(np.concatenate([v.ravel() for v in sd.values()]), w)
    with pytest.raises(wf.WeightflowError, match="values"):
        wf.to_torch_state_dict(w[:-1])


def test_saved_detector_flags_inversion_and_not_the_clean_batch(detector):
    det = wf.Detector.load(detector)
    assert det.config["method"] == "bbsd" and det.config["sizes"] == [40]
    shifted = det.test(squares(40, 7, invert=True))
    clean = det.test(squares(40, 8))
    assert shifted["shift"] is True, shifted
    assert clean["shift"] is False, clean
    for k in ("p_value", "statistic", "threshold", "method", "n_query", "detector"):
        assert k in clean
    assert clean["n_query"] == 40 and clean["method"] == "bbsd"


def test_dtypes_and_layouts_agree(detector):
    det = wf.Detector.load(detector)
    x = squares(40, 9)
    u8 = np.round(x * 255).astype(np.uint8)
    a = det.test(x)
    b = det.test(u8)
    c = det.test(np.transpose(u8, (0, 3, 1, 2)))  # NCHW
    d = det.test(x.astype(np.float64) * 255)
    e = det.test(np.repeat(u8, 3, axis=3))  # gray images stored as RGB are gray
    assert a["p_value"] == b["p_value"] == c["p_value"] == d["p_value"] == e["p_value"]
    colour = np.repeat(u8, 3, axis=3)
    colour[..., 0] = 0
    with pytest.raises(wf.WeightflowError, match="colour images"):
        det.test(colour)


def test_errors_carry_the_crate_messages(detector, tmp_path):
    det = wf.Detector.load(detector)
    with pytest.raises(wf.WeightflowError, match="fitted on"):
        det.test(np.zeros((40, 32, 32, 3), dtype=np.uint8))
    with pytest.raises(wf.WeightflowError, match=r"\[0, 1\] or \[0, 255\]"):
        det.test(squares(40, 3) - 0.5)
    with pytest.raises(wf.WeightflowError, match="ambiguous"):
        det.test(np.zeros((28, 28, 1), dtype=np.uint8))
    with pytest.raises(wf.WeightflowError, match="detector.json"):
        wf.Detector.load(str(tmp_path / "nothing"))
    # a detector written by another version is refused with a clear message
    other = tmp_path / "old"
    os.makedirs(other)
    cfg = json.load(open(os.path.join(detector, "detector.json")))
    cfg["crate_version"] = "0.0.1"
    json.dump(cfg, open(other / "detector.json", "w"))
    with pytest.raises(wf.WeightflowError, match="refit"):
        wf.Detector.load(str(other))
