#!/bin/bash
# Table 1 analog (RESULTS.md, "Table 1"): one conditional meta-model over the MNIST, Fashion-MNIST and CIFAR-10
# zoos; generated CNN3s conditioned on each dataset's images, evaluated on its official test split,
# against the zoo's own top-5; plus the conditioning check (MNIST context evaluated on CIFAR-10).
# Usage: tools/table1.sh OUT_DIR MNIST_ZOO FMNIST_ZOO CIFAR_ZOO [ITERS] [VARIANTS]
# VARIANTS: space-separated subset of "ot icfm ot-vae" (default: all three).
set -euo pipefail
out=$1; zm=$2; zf=$3; zc=$4; iters=${5:-3000}; variants=${6:-"ot icfm ot-vae"}
B=${B:-target/release/weightflow}
S=${SHARED:-../shared}
M=mnist:$S/data/mnist; F=fashion-mnist:${FMNIST:-/usr/share/datasets/fashion-mnist}
C=folder:$S/data/cifar10/cifar10-jpeg.tar.gz
mkdir -p "$out"
for z in "$zm" "$zf" "$zc"; do "$B" zoo info "$z" --json > "$out/$(basename "$z").zoo.json"; done
for v in $variants; do
  case $v in
    ot) extra="--coupling exact" ;;
    icfm) extra="--coupling independent" ;;
    ot-vae) extra="--coupling exact --vae-latent 256" ;;
    *) echo "unknown variant $v" >&2; exit 2 ;;
  esac
  meta="$out/meta-$v"
  /usr/bin/time -f "%e s wall, %M KB peak" "$B" flow train --zoo "$zm,$zf,$zc" --iterations "$iters" $extra \
    --out "$meta" --quiet --json > "$out/train-$v.json" 2> "$out/train-$v.time"
  for d in "m:$M" "f:$F" "c:$C"; do
    k=${d%%:*}; spec=${d#*:}
    "$B" flow sample --meta "$meta" --context "$spec:test" -n 20 --eval "$spec:test" --seed 1 --json \
      --out "$out/gen-$v-$k" > "$out/sample-$v-$k.json"
  done
  # conditioning: MNIST-conditioned classifiers evaluated on CIFAR-10, and the reverse
  "$B" flow sample --meta "$meta" --context "$M:test" -n 20 --eval "$C:test" --seed 1 --json --out "$out/gen-$v-m-on-c" > "$out/sample-$v-m-on-c.json"
  "$B" flow sample --meta "$meta" --context "$C:test" -n 20 --eval "$M:test" --seed 1 --json --out "$out/gen-$v-c-on-m" > "$out/sample-$v-c-on-m.json"
done
python3 - "$out" "$variants" <<'PY'
import json, sys, os
out, variants = sys.argv[1], sys.argv[2].split()
zoos = sorted(f for f in os.listdir(out) if f.endswith('.zoo.json'))
def pct(x): return f"{100*x:.2f}"
print("| variant | dataset | zoo epochs | zoo top-5 | generated mean ± std (n=20) | generated top-5 | Δ top-5 |")
print("|---|---|---|---|---|---|---|")
names = {'m': 'MNIST', 'f': 'Fashion-MNIST', 'c': 'CIFAR-10'}
zj = {}
for z in zoos:
    d = json.load(open(os.path.join(out, z)))
    key = 'm' if z.startswith('mnist') else ('f' if z.startswith('fashion') else 'c')
    zj[key] = d
for v in variants:
    for k in 'mfc':
        s = json.load(open(os.path.join(out, f'sample-{v}-{k}.json')))
        z = zj[k]
        print(f"| {v} | {names[k]} | {z['epochs']} | {pct(z['top5_mean_test_acc'])} | {pct(s['mean_acc'])} ± {pct(s['std_acc'])} | {pct(s['top5_acc'])} | {100*(s['top5_acc']-z['top5_mean_test_acc']):+.2f} |")
    a = json.load(open(os.path.join(out, f'sample-{v}-m-on-c.json')))
    b = json.load(open(os.path.join(out, f'sample-{v}-c-on-m.json')))
    print(f"| {v} | conditioning: MNIST context → CIFAR-10 test | | | {pct(a['mean_acc'])} | {pct(a['top5_acc'])} | |")
    print(f"| {v} | conditioning: CIFAR-10 context → MNIST test | | | {pct(b['mean_acc'])} | {pct(b['top5_acc'])} | |")
PY
