//! `weightflow detector fit|test|info` end to end on synthetic shapes: a small CNN3 zoo and a
//! tiny meta-model trained here; unlabeled batches written here as float32 NHWC `.npy`, uint8
//! NCHW `.npz` without labels and a flat folder of PNGs. A saved BBSD detector flags the shifted
//! domain in every format, `--fail-on-shift` exits 3/0, Detectron and Meta-Detectron detectors
//! are saved with their banks and refuse batch sizes they hold no bank for, a bank that cannot
//! reach α is reported, and wrong image shapes, other crate versions and non-detector output
//! folders are refused with clear messages.

use serde_json::Value;
use std::path::Path;
use weightflow::data::npy::write_npy;

mod common;

use common::cli::{ok, run, NULL, REF, SHIFTED, SMALL};

fn jsonl(out: &str) -> Vec<Value> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// `n` images of `spec` (native shape) as float32 NHWC on [0, 1] in `path`.
fn write_float_nhwc(spec: &str, n: usize, path: &Path) {
    let ds = weightflow::data::DatasetSpec::parse(spec)
        .unwrap()
        .load_native()
        .unwrap();
    let [c, h, w] = ds.shape;
    let mut data = Vec::with_capacity(n * c * h * w * 4);
    for i in 0..n {
        let img = ds.image(i);
        for p in 0..h * w {
            for ch in 0..c {
                data.extend_from_slice(&(img[ch * h * w + p] as f32 / 255.0).to_le_bytes());
            }
        }
    }
    std::fs::write(path, write_npy("<f4", &[n, h, w, c], &data)).unwrap();
}

#[test]
fn saved_detectors_test_unlabeled_batches() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let zoo = d("zoo");
    common::cli::small_zoo(&zoo);
    let f = d("f.safetensors");
    ok(&["zoo", "export", &zoo, "--model", "0", "--out", &f]);

    // self-contained exports: every model, metadata that names the architecture, a loader that
    // finds its file next to itself
    let all = d("export");
    ok(&["zoo", "export", &zoo, "--all", "--out", &all]);
    for k in 0..2 {
        let st = std::fs::read(Path::new(&all).join(format!("model_{k}.safetensors"))).unwrap();
        let (_, header) = safetensors::SafeTensors::read_metadata(&st).unwrap();
        let meta: Value = serde_json::from_str(&header.metadata().as_ref().unwrap()["weightflow"]).unwrap();
        assert_eq!(meta["architecture"]["name"], "cnn3", "{meta}");
        assert!(
            meta["normalization"]["mean"].is_array() && meta["class_names"].is_array(),
            "{meta}"
        );
        let py = std::fs::read_to_string(Path::new(&all).join(format!("model_{k}.py"))).unwrap();
        let want = format!("WEIGHTS = os.path.join(_HERE, \"model_{k}.safetensors\")");
        assert!(py.contains(&want), "{py}");
        assert!(py.contains("def load(path=WEIGHTS)"), "{py}");
    }

    // unlabeled batches: float32 NHWC .npy (20 and 30 images), a flat PNG folder
    write_float_nhwc(SHIFTED, 20, &dir.path().join("shift.npy"));
    write_float_nhwc(NULL, 20, &dir.path().join("clean.npy"));
    write_float_nhwc(NULL, 30, &dir.path().join("clean30.npy"));
    let shifted = weightflow::data::DatasetSpec::parse(SHIFTED)
        .unwrap()
        .load_native()
        .unwrap();
    let flat = dir.path().join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    for i in 0..20 {
        let rgb = weightflow::data::image_io::to_rgb(&shifted, i);
        let [_, h, w] = shifted.shape;
        image::RgbImage::from_raw(w as u32, h as u32, rgb)
            .unwrap()
            .save(flat.join(format!("{i:03}.png")))
            .unwrap();
    }
    let q = |name: &str| format!("npy:{}", d(name));
    let folder = format!("folder:{}", flat.display());

    // BBSD: fit once, test several batches in several formats
    let det = d("det-bbsd");
    let out = ok(&[
        "detector",
        "fit",
        "--method",
        "bbsd",
        "--model",
        &f,
        "--reference",
        REF,
        "--sizes",
        "20",
        "--out",
        &det,
        "--quiet",
        "--n-reference",
        "100",
    ]);
    assert!(out.contains("saved to"), "{out}");
    for file in ["detector.json", "model.safetensors", "reference.npy"] {
        assert!(Path::new(&det).join(file).is_file(), "{file} missing");
    }
    let r = jsonl(&ok(&[
        "detector",
        "test",
        &det,
        "--query",
        &q("shift.npy"),
        "--query",
        &folder,
        "--query",
        &q("clean.npy"),
        "--json",
    ]));
    assert_eq!(r.len(), 3);
    assert_eq!(r[0]["shift"], true, "{}", r[0]);
    assert_eq!(r[1]["shift"], true, "{}", r[1]);
    assert_eq!(
        r[1]["p_value"], r[0]["p_value"],
        "PNG folder and float .npy of the same images differ"
    );
    let id = r[0]["detector"].as_str().unwrap().to_string();
    assert!(r.iter().all(|x| x["detector"] == id.as_str() && x["method"] == "bbsd"));
    let clean_shift = r[2]["shift"].as_bool().unwrap();
    let (code, _, _) = run(&["detector", "test", &det, "--query", &q("shift.npy"), "--fail-on-shift"]);
    assert_eq!(code, 3);
    let (code, _, _) = run(&["detector", "test", &det, "--query", &q("clean.npy"), "--fail-on-shift"]);
    assert_eq!(code, if clean_shift { 3 } else { 0 });
    // `detect` takes the same unlabeled batch and the same exit code
    let (code, out, _) = run(&[
        "detect",
        "--method",
        "bbsd",
        "--model",
        &f,
        "--reference",
        REF,
        "--query",
        &q("shift.npy"),
        "--n-reference",
        "100",
        "--fail-on-shift",
        "--json",
        "--quiet",
    ]);
    assert_eq!(code, 3, "{out}");
    assert_eq!(jsonl(&out)[0]["p_value"], r[0]["p_value"]);
    // bbsd holds no bank: any batch size goes
    ok(&["detector", "test", &det, "--query", &q("clean30.npy")]);
    let info: Value = serde_json::from_str(&ok(&["detector", "info", &det, "--json"])).unwrap();
    assert_eq!(info["id"], id.as_str());
    assert_eq!(info["crate_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["reference"]["sha256"].as_str().unwrap().len(), 64);

    // wrong image shape: RGB 32×32 against a detector fitted on 28×28 gray shapes? The shapes set
    // is RGB 32×32, so a gray 28×28 batch is the wrong one here.
    std::fs::write(
        dir.path().join("gray.npy"),
        write_npy("|u1", &[20, 28, 28], &vec![7u8; 20 * 784]),
    )
    .unwrap();
    let (code, _, err) = run(&["detector", "test", &det, "--query", &q("gray.npy")]);
    assert_eq!(code, 1);
    assert!(err.contains("fitted on"), "{err}");

    // another crate version
    let old = d("det-old");
    std::fs::create_dir_all(&old).unwrap();
    let cfg = std::fs::read_to_string(Path::new(&det).join("detector.json")).unwrap();
    std::fs::write(
        Path::new(&old).join("detector.json"),
        cfg.replace(env!("CARGO_PKG_VERSION"), "0.0.1"),
    )
    .unwrap();
    let (code, _, err) = run(&["detector", "test", &old, "--query", &q("clean.npy")]);
    assert_eq!(code, 1);
    assert!(err.contains("0.0.1") && err.contains("refit"), "{err}");

    // an output folder that is not a detector is not replaced
    let (code, _, err) = run(&[
        "detector",
        "fit",
        "--method",
        "bbsd",
        "--model",
        &f,
        "--reference",
        REF,
        "--out",
        &zoo,
        "--quiet",
        "--n-reference",
        "100",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("not a detector directory"), "{err}");
    assert!(Path::new(&zoo).join("manifest.json").exists() || Path::new(&zoo).is_dir());

    // Detectron: the bank for |Q| = 20 is saved; other sizes are refused
    let det = d("det-detectron");
    let mut args = vec![
        "detector",
        "fit",
        "--method",
        "detectron",
        "--model",
        &f,
        "--reference",
        REF,
        "--sizes",
        "20",
        "--out",
        &det,
        "--quiet",
        "--budget",
        "fast",
    ];
    args.extend_from_slice(&SMALL);
    ok(&args);
    let banks: Vec<_> = std::fs::read_dir(Path::new(&det).join("banks")).unwrap().collect();
    assert_eq!(banks.len(), 1);
    let r = jsonl(&ok(&["detector", "test", &det, "--query", &q("shift.npy"), "--json"]));
    assert_eq!(r[0]["method"], "detectron-entropy", "{}", r[0]);
    assert_eq!(r[0]["setup_s"], 0.0, "bank recomputed: {}", r[0]);
    // 6 null runs: the smallest p-value is 1/7 > 0.05
    assert_eq!(r[0]["alpha_reachable"], false, "{}", r[0]);
    assert!(r[0]["warning"].as_str().unwrap().contains("cannot reach alpha"));
    let (code, _, err) = run(&["detector", "test", &det, "--query", &q("clean30.npy")]);
    assert_eq!(code, 1);
    assert!(err.contains("--sizes"), "{err}");

    // Meta-Detectron with a tiny meta-model, copied into the detector
    let meta = d("meta");
    common::cli::tiny_meta(&zoo, &meta, &[]);
    let gen = d("gen");
    let torch = d("torch");
    ok(&[
        "flow",
        "sample",
        "--meta",
        &meta,
        "--context",
        REF,
        "-n",
        "2",
        "--out",
        &gen,
        "--export-torch",
        &torch,
        "--json",
    ]);
    for i in 0..2 {
        assert!(Path::new(&torch).join(format!("net_{i}.safetensors")).is_file());
        assert!(Path::new(&torch).join(format!("net_{i}.py")).is_file());
    }
    // a generated network is a model file a detector can be fitted with
    let net = Path::new(&torch).join("net_0.safetensors");
    ok(&[
        "detector",
        "fit",
        "--method",
        "bbsd",
        "--model",
        net.to_str().unwrap(),
        "--reference",
        REF,
        "--out",
        &d("det-gen"),
        "--quiet",
        "--n-reference",
        "100",
    ]);
    let det = d("det-md");
    let mut args = vec![
        "detector",
        "fit",
        "--method",
        "meta-detectron",
        "--meta",
        &meta,
        "--reference",
        REF,
        "--sizes",
        "20",
        "--out",
        &det,
        "--quiet",
        "--md-iters",
        "2",
        "--md-null-runs",
        "3",
    ];
    args.extend_from_slice(&SMALL);
    ok(&args);
    std::fs::remove_dir_all(&meta).unwrap(); // the detector is self-contained
    let r = jsonl(&ok(&[
        "detector",
        "test",
        &det,
        "--query",
        &q("shift.npy"),
        "--json",
        "--threads",
        "2",
    ]));
    assert_eq!(r[0]["method"], "meta-detectron", "{}", r[0]);
    assert_eq!(r[0]["setup_s"], 0.0, "P* bank recomputed: {}", r[0]);
    assert_eq!(r[0]["n_query"], 20);
}
