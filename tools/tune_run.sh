#!/bin/bash
# One Adjoint-Matching run on the checks/adjoint task, printing before → after (for sweeps of tune's flags).
# usage: META=DIR [BIN=...] [ITERS=50] [EM=16] tools/tune_run.sh NAME SEED [tune flags...]
# DIR is a meta-model trained as ../shared/checks/adjoint does (zoo seed 5, 8 models, 3 epochs,
# `flow train` defaults). Writes r_NAME_SEED.json and r_NAME_SEED/ in the current directory.
set -euo pipefail
name=$1; seed=$2; shift 2
BIN=${BIN:-target/release/weightflow}
M=mnist:${DATA:-../shared/data}/mnist
"$BIN" tune --meta "$META" --reward ce --data "$M:train@gaussian_noise:5" --eval "$M:test@gaussian_noise:5" \
  --iters "${ITERS:-50}" --eval-models "${EM:-16}" --eval-every 0 --seed "$seed" \
  --out "r_${name}_$seed" --json --quiet "$@" > "r_${name}_$seed.json" 2> "r_${name}_$seed.err"
python3 - "r_${name}_$seed.json" "$name" "$seed" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]} s{sys.argv[3]} {d['before_acc']:.4f} -> {d['after_acc']:.4f} "
      f"gain {100 * (d['after_acc'] - d['before_acc']):+.1f} min {min(d['after_accs']):.3f} {d['seconds']:.0f}s")
PY
