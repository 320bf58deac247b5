"""Checks that CNN3 (PyTorch reference) learns the synthetic shapes set, and how much the shift hurts.

Usage (from the project root, after `cargo build --release`):
    B=target/release/weightflow; D=/tmp/wfsyn
    for s in synthetic:shapes:train synthetic:shapes:test synthetic:shapes-shift:test "synthetic:shapes,shift=0.3:test"; do
      $B data export "$s" --out $D --format npy --split $(echo $s | tr ':,=.' '____'); done
    ~/.cache/wf-torch/bin/python scripts/synthetic_cnn3_torch.py $D LR BATCH EPOCHS
"""
import sys, time
import numpy as np, torch, torch.nn as nn

D, lr, bs, epochs = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(1); torch.manual_seed(0)
def load(name):
    x = np.load(f"{D}/{name}_x.npy").transpose(0, 3, 1, 2).astype(np.float32) / 255.
    return torch.tensor(x), torch.tensor(np.load(f"{D}/{name}_y.npy"))
xtr, ytr = load("synthetic_shapes_train")
m, s = xtr.mean((0, 2, 3), keepdim=True), xtr.std((0, 2, 3), keepdim=True)
act = nn.GELU
net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.MaxPool2d(2), act(), nn.Conv2d(16, 32, 3), nn.MaxPool2d(2), act(),
                    nn.Conv2d(32, 15, 3), nn.MaxPool2d(2), act(), nn.Flatten(), nn.Linear(60, 20), act(), nn.Linear(20, 10))
opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-3)
def acc(name):
    x, y = load(name)
    with torch.no_grad():
        return (net((x - m) / s).argmax(1) == y).float().mean().item()
t = time.time()
for ep in range(epochs):
    perm = torch.randperm(len(ytr))
    for i in range(0, len(ytr), bs):
        idx = perm[i:i + bs]
        loss = nn.functional.cross_entropy(net((xtr[idx] - m) / s), ytr[idx])
        opt.zero_grad(); loss.backward(); opt.step()
    if ep % 5 == 4 or ep == epochs - 1:
        print(ep + 1, f"train {acc('synthetic_shapes_train'):.3f} test {acc('synthetic_shapes_test'):.3f} "
              f"shift {acc('synthetic_shapes-shift_test'):.3f} shift0.3 {acc('synthetic_shapes_shift_0_3_test'):.3f} {time.time() - t:.0f}s", flush=True)
