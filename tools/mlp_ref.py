"""The velocity-MLP part of shared/bench/reference_torch.py, verbatim shapes and timing (`med` of 5
after one warm-up), for back-to-back comparison with `target/release/examples/flow_bench`:
  WF_THREADS=2 ~/.cache/wf-torch/bin/python tools/mlp_ref.py
Prints one JSON object: mlp_params, mlp_step_ms (forward + MSE + backward + Adam), vjp_ms (u^T dv/dx).
"""
import json, os, time, torch, torch.nn.functional as F
th = int(os.environ.get("WF_THREADS", "2")); torch.set_num_threads(th); torch.manual_seed(0)
P = 10853
def med(f, reps):
    f(); ts = []
    for _ in range(reps):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    ts.sort(); return ts[len(ts)//2]
res = {"torch": torch.__version__, "threads": th}
H, B, C = 2048, 64, 32
mlp = torch.nn.Sequential(torch.nn.Linear(P+1+C, H), torch.nn.SiLU(), torch.nn.Linear(H, H), torch.nn.SiLU(), torch.nn.Linear(H, P))
opt2 = torch.optim.Adam(mlp.parameters(), lr=1e-4)
xin = torch.randn(B, P+1+C); tgt = torch.randn(B, P)
def mstep():
    opt2.zero_grad(); F.mse_loss(mlp(xin), tgt).backward(); opt2.step()
res["mlp_params"] = sum(p.numel() for p in mlp.parameters())
res["mlp_step_ms"] = 1e3 * med(mstep, 5)
for p in mlp.parameters(): p.requires_grad_(False)
u = torch.randn(B, P)
def vjp():
    xi = xin.clone().requires_grad_(True); torch.autograd.grad(mlp(xi), xi, u)
res["vjp_ms"] = 1e3 * med(vjp, 5)
print(json.dumps(res))
