#!/bin/bash
# Times the PyTorch reference and weightflow's engine back to back on the same workloads and
# prints both JSON objects and the ratios (goals: pop fwd+bwd >= 3x, one-model training >= 1x,
# 16-model zoo training >= 5x the reference's one-model images/s).
#   tools/bench.sh [THREADS]      env: WF_TORCH_PY (python with torch), WF_REFERENCE (script path)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-2}
PY=${WF_TORCH_PY:-$HOME/.cache/wf-torch/bin/python}
REF=${WF_REFERENCE:-/work/shared/bench/reference_torch.py}
OUT=$(mktemp -d)
cargo build --release -q
echo "reference: $PY $REF (WF_THREADS=$THREADS)" >&2
WF_THREADS=$THREADS "$PY" "$REF" >"$OUT/ref.json"
echo "weightflow: target/release/weightflow bench --json --threads $THREADS" >&2
target/release/weightflow bench --json --threads "$THREADS" >"$OUT/ours.json"
python3 - "$OUT/ref.json" "$OUT/ours.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); o = json.load(open(sys.argv[2]))
print("reference:", json.dumps(r)); print("weightflow:", json.dumps(o))
rows = [
    ("K=64 CNN3 fwd, 256 img (ms)", r["pop_fwd_ms"], o["pop_fwd_ms"], r["pop_fwd_ms"] / o["pop_fwd_ms"], None),
    ("K=64 CNN3 fwd+bwd, 256 img (ms)", r["pop_fwdbwd_ms"], o["pop_fwdbwd_ms"], r["pop_fwdbwd_ms"] / o["pop_fwdbwd_ms"], 3),
    ("1 CNN3 train, batch 10 (img/s)", r["cnn3_train_img_per_s"], o["cnn3_train_img_per_s"],
     o["cnn3_train_img_per_s"] / r["cnn3_train_img_per_s"], 1),
    ("16 CNN3s train, batch 10 each (img/s)", r["cnn3_train_img_per_s"], o["pop_zoo_train_img_per_s"],
     o["pop_zoo_train_img_per_s"] / r["cnn3_train_img_per_s"], 5),
]
print(f"| workload | torch | weightflow | speed-up | goal |\n|---|---|---|---|---|")
for name, a, b, ratio, goal in rows:
    g = f">= {goal}x" if goal else ""
    print(f"| {name} | {a:.1f} | {b:.1f} | {ratio:.2f}x | {g} |")
PY
