"""Writes the PyTorch reference fixtures for tests/torch_fixtures.rs (run once; needs torch).

    ~/.cache/wf-torch/bin/python tools/make_fixtures.py

Each fixture is one safetensors file under tests/fixtures/ holding, for K small models of one
architecture: the flat weights W [K, D] (PyTorch state_dict order), the input x, the objective
(labels / kinds / sample weights / targets), the logits [K, N, C], the loss per model [K]
(L_k = (1/N) sum_i w_i loss_i), dL_k/dW_k [K, D] and dL_k/dx [K, N, C, H, W].
The safetensors format is written by hand (8-byte header length + JSON header + raw f32 data)
so the script needs only torch.
"""
import json, os, struct
import torch
import torch.nn.functional as F

torch.manual_seed(1234)
torch.set_default_dtype(torch.float64)  # reference values in f64, stored as f32
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")


def save(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().to(torch.float32).contiguous()
        b = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    print(path, os.path.getsize(path), "bytes")


ACTS = {"gelu": F.gelu, "relu": F.relu, "tanh": torch.tanh, "silu": F.silu, "sigmoid": torch.sigmoid}


def run_net(layers, params, x):
    """layers: list of ("conv", pad) | ("pool",) | ("act", name) | ("flatten",) | ("linear",)."""
    h, p = x, iter(params)
    for l in layers:
        if l[0] == "conv":
            w, b = next(p), next(p)
            h = F.conv2d(h, w, b, padding=l[1])
        elif l[0] == "pool":
            h = F.max_pool2d(h, 2)
        elif l[0] == "act":
            h = ACTS[l[1]](h)
        elif l[0] == "flatten":
            h = h.flatten(1)
        elif l[0] == "linear":
            w, b = next(p), next(p)
            h = F.linear(h, w, b)
    return h


def per_sample_loss(z, kind, y=None, t=None):
    if kind == "mse":
        return ((z - t) ** 2).mean(1)
    lp = F.log_softmax(z, 1)
    ce = -lp.gather(1, y[:, None])[:, 0]
    c = z.shape[1]
    dce = -(lp.sum(1) - lp.gather(1, y[:, None])[:, 0]) / (c - 1)
    return torch.where(kind, dce, ce)  # kind: bool tensor, True = disagreement


def fixture(name, layers, shapes, in_shape, k, n, classes, objective, per_model_input=False, scale=None):
    params_k = []
    for _ in range(k):
        ps = []
        for s in shapes:
            fan_in = 1
            for d in s[1:]:
                fan_in *= d
            bound = (6.0 / fan_in) ** 0.5 if len(s) > 1 else 0.1
            ps.append((torch.rand(s) * 2 - 1) * bound)
        params_k.append(ps)
    xs = torch.randn(k if per_model_input else 1, n, *in_shape)
    out = {"x": xs if per_model_input else xs[0]}
    logits, losses, dws, dxs = [], [], [], []
    y = torch.randint(0, classes, (n,))
    kinds = torch.rand(n) < 0.5
    sw = torch.rand(n) + 0.5
    t = torch.randn(n, classes)
    for m in range(k):
        ps = [p.clone().requires_grad_(True) for p in params_k[m]]
        xm = xs[m if per_model_input else 0].clone().requires_grad_(True)
        z = run_net(layers, ps, xm)
        if objective == "ce":
            l = per_sample_loss(z, torch.zeros(n, dtype=torch.bool), y=y).mean()
        elif objective == "ce+dce weighted":
            l = (sw * per_sample_loss(z, kinds, y=y)).mean()
        elif objective == "mse weighted":
            l = (sw * per_sample_loss(z, "mse", t=t)).mean()
        l.backward()
        logits.append(z.detach())
        losses.append(l.detach())
        dws.append(torch.cat([p.grad.flatten() for p in ps]))
        dxs.append(xm.grad.detach())
    out["w"] = torch.stack([torch.cat([p.flatten() for p in ps]) for ps in params_k])
    out["labels"] = y.to(torch.float64)
    out["kinds"] = kinds.to(torch.float64)
    out["sample_weights"] = sw
    out["targets"] = t
    out["logits"] = torch.stack(logits)
    out["loss"] = torch.stack(losses)
    out["dw"] = torch.stack(dws)
    out["dx"] = torch.stack(dxs)
    save(os.path.join(OUT, name + ".safetensors"), out)


os.makedirs(OUT, exist_ok=True)
CNN3 = [("conv", 0), ("pool",), ("act", "gelu"), ("conv", 0), ("pool",), ("act", "gelu"), ("conv", 0), ("pool",),
        ("act", "gelu"), ("flatten",), ("linear",), ("act", "gelu"), ("linear",)]
CNN3_SHAPES = [(16, 3, 3, 3), (16,), (32, 16, 3, 3), (32,), (15, 32, 3, 3), (15,), (20, 60), (20,), (10, 20), (10,)]
# CNN3 with GELU, shared input, mean cross-entropy
fixture("cnn3_gelu_ce", CNN3, CNN3_SHAPES, (3, 32, 32), k=2, n=4, classes=10, objective="ce")
# same-padding net (conv k3 same, conv k5 same), per-model input, CE + DCE with sample weights
SAME = [("conv", 1), ("pool",), ("act", "relu"), ("conv", 2), ("act", "silu"), ("pool",), ("flatten",), ("linear",),
        ("act", "tanh"), ("linear",)]
SAME_SHAPES = [(4, 3, 3, 3), (4,), (5, 4, 5, 5), (5,), (12, 20), (12,), (6, 12), (6,)]
fixture("same_pad_dce", SAME, SAME_SHAPES, (3, 9, 9), k=3, n=5, classes=6, objective="ce+dce weighted",
        per_model_input=True)
# the same net with sigmoid-free MSE regression, sample weights, shared input
fixture("same_pad_mse", SAME, SAME_SHAPES, (3, 9, 9), k=2, n=5, classes=6, objective="mse weighted")
