#!/bin/bash
# Generated-classifier quality of one joint meta-model over an MNIST and a CIFAR-10 zoo:
#   tools/flow_quality.sh ZOO_MNIST ZOO_CIFAR OUT [flow train options...] [-- flow sample options...]
# trains the meta-model (skipped when OUT/meta exists), evaluates the zoos, generates 100 classifiers
# per dataset and prints, per dataset, mean/std accuracy, share broken (more than 5 points below the
# zoo's worst), top-5 and mean pairwise disagreement, against the zoo's; writes OUT/summary.json.
# Zoos as in ../shared/checks/flow-quality:
#   weightflow zoo train --data mnist:$DATA/mnist:train --test mnist:$DATA/mnist:test --arch cnn3 \
#     --models 8 --epochs 3 --lr 1e-3 --seed 17 --out ZOO_MNIST   (and the CIFAR-10 folder likewise)
set -euo pipefail
B=${WEIGHTFLOW:-target/release/weightflow}
DATA=${DATA:-../shared/data}
zm=$1 zc=$2 out=$3; shift 3
train=() sample=()
while (($#)); do [[ $1 == -- ]] && { shift; sample=("$@"); break; }; train+=("$1"); shift; done
mkdir -p "$out"
[[ -d $out/meta ]] || "$B" flow train --zoo "$zm,$zc" --out "$out/meta" --quiet "${train[@]}" >"$out/train.log"
for pair in "$zm:mnist:$DATA/mnist" "$zc:folder:$DATA/cifar10/cifar10-jpeg.tar.gz"; do
  z=${pair%%:*} D=${pair#*:} name=$(basename "$z")
  [[ -s $out/$name.zoo.json ]] || "$B" zoo eval "$z" --data "$D:test" --json --quiet >"$out/$name.zoo.json"
  "$B" flow sample --meta "$out/meta" --context "$D:test" -n 100 --eval "$D:test" --json --quiet \
    --out "$out/gen-$name" "${sample[@]}" >"$out/$name.gen.json"
done
python3 - "$out" "$(basename "$zm")" "$(basename "$zc")" <<'PY'
import json, sys
out, names = sys.argv[1], sys.argv[2:]
rows = {}
for n in names:
    z, g = (json.load(open(f"{out}/{n}.{k}.json")) for k in ("zoo", "gen"))
    za, ga = z["acc"], g["acc"]
    top = lambda a: sum(sorted(a)[-5:]) / min(5, len(a))
    mean = lambda a: sum(a) / len(a)
    std = lambda a: (sum((x - mean(a)) ** 2 for x in a) / len(a)) ** 0.5
    broken = sum(x < min(za) - 0.05 for x in ga) / len(ga)
    rows[n] = r = {"zoo_mean": mean(za), "zoo_min": min(za), "zoo_top5": top(za), "zoo_disagreement": z.get("disagreement"),
                   "gen_mean": mean(ga), "gen_std": std(ga), "gen_top5": top(ga), "broken": broken,
                   "gen_disagreement": g.get("disagreement"), "n": len(ga)}
    ok = r["gen_mean"] >= r["zoo_mean"] - 0.01 and broken <= 0.02 and r["gen_top5"] >= r["zoo_top5"] - 0.005
    print(f"{n}: generated {100*r['gen_mean']:.2f} ± {100*r['gen_std']:.2f} (zoo {100*r['zoo_mean']:.2f}), "
          f"broken {100*broken:.0f}%, top-5 {100*r['gen_top5']:.2f} (zoo {100*r['zoo_top5']:.2f}), "
          f"disagreement {100*(r['gen_disagreement'] or 0):.2f}% (zoo {100*(r['zoo_disagreement'] or 0):.2f}%) {'OK' if ok else 'FAIL'}")
json.dump(rows, open(f"{out}/summary.json", "w"), indent=1)
PY
