#!/bin/bash
# Table 2 analog (RESULTS.md, "Table 2"): Adjoint-Matching fine-tuning of a meta-model toward corrupted training
# data, at three corruption levels (0 = clean, 1 = CORRUPTION:3, 2 = CORRUPTION:5), for MNIST and
# CIFAR-10: accuracy of the generated classifiers on the equally corrupted test split before →
# after, beside the SGD baseline (the same generated classifiers fine-tuned directly).
# Usage: tools/table2.sh OUT_DIR META [ITERS] [CORRUPTION] [EXTRA TUNE ARGS...]
#   META: a meta-model conditioned on both datasets (e.g. Table 1's meta-ot), or one per dataset
#   as `mnist=DIR,cifar10=DIR`; ITERS default 50, CORRUPTION default gaussian_noise (grayscale
#   sets take the ImageNet-C noise levels). REWARD=ce-calibrated switches the reward.
# RESULTS.md, "Table 2": tools/table2.sh OUT mnist=dmeta,cifar10=cdmeta 100 (today's defaults); the
#   elite warm start: REWARD=ce-calibrated tools/table2.sh OUT META 100 gaussian_noise --seed 1
#   --warm-start 256 (39 min on 2 cores).
set -euo pipefail
out=$1; meta=$2; iters=${3:-50}; corr=${4:-gaussian_noise}; shift $(( $# < 4 ? $# : 4 ))
B=${B:-target/release/weightflow}
S=${SHARED:-../shared}
M=mnist:$S/data/mnist
C=folder:$S/data/cifar10/cifar10-jpeg.tar.gz
mkdir -p "$out"
for d in "mnist:$M" "cifar10:$C"; do
  k=${d%%:*}; spec=${d#*:}
  m=$meta
  if [[ $meta == *=* ]]; then
    m=$(tr ',' '\n' <<<"$meta" | sed -n "s/^$k=//p")
    [ -n "$m" ] || { echo "table2.sh: META names no meta-model for $k: $meta" >&2; exit 2; }
  fi
  for level in 0 1 2; do
    case $level in 0) sfx="" ;; 1) sfx="@$corr:3" ;; 2) sfx="@$corr:5" ;; esac
    name="$k-$level"
    [ -s "$out/$name.json" ] && continue
    "$B" tune --meta "$m" --reward "${REWARD:-ce}" --data "$spec:train$sfx" --eval "$spec:test$sfx" --iters "$iters" \
      --eval-models 5 --baseline sgd --out "$out/$name" --json --quiet "$@" > "$out/$name.json.tmp" 2> "$out/$name.err"
    mv "$out/$name.json.tmp" "$out/$name.json"
  done
done
python3 - "$out" "$corr" <<'PY'
import json, sys, os, statistics as st
out, corr = sys.argv[1:3]
def ms(v): return f"{100*st.mean(v):.2f} ± {100*st.stdev(v):.2f}" if len(v) > 1 else f"{100*v[0]:.2f}"
print("| dataset | level | before | after AM | SGD baseline | AM s/iter |")
print("|---|---|---|---|---|---|")
for k, name in (("mnist", "MNIST"), ("cifar10", "CIFAR-10")):
    for level in range(3):
        d = json.load(open(os.path.join(out, f"{k}-{level}.json")))
        b = d.get("baseline")
        sgd = f"{100*b['after_acc']:.2f} ± {100*b['after_acc_std']:.2f}" if b else "–"
        lab = ["0 (clean)", f"1 ({corr}:3)", f"2 ({corr}:5)"][level]
        print(f"| {name} | {lab} | {ms(d['before_accs'])} | {ms(d['after_accs'])} | {sgd} | {d['seconds_per_iter']['total']:.2f} |")
PY
