#!/bin/bash
# Wall time of one small shift-detection grid (Detectron, BBSD, MMD on synthetic shapes) run whole
# and in 4 shards (one after another, 2 at a time, 4 at a time), from a cold null-bank cache (each
# shard then builds the Detectron banks it needs itself) and from a warm one (banks built before),
# and a check that every sharded run reports the whole run's rows. Prints one line per setting.
# Usage: tools/shard_bench.sh [WORK_DIR]   (about 2 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
export B=$(pwd)/target/release/weightflow
w=${1:-$(mktemp -d)}
mkdir -p "$w"
cd "$w"
S="synthetic:shapes,n=1500"
if [ ! -f meta/meta.safetensors ] && [ ! -d meta ]; then
  "$B" zoo train --data "$S:train" --test "$S:test" --models 4 --epochs 1 --lr 1e-3 --seed 9 --threads 2 --quiet --out zoo
  "$B" flow train --zoo zoo --out meta --iterations 50 --width 32 --threads 2 --quiet
fi
G=(experiment shift --source "$S:test" --shifted "synthetic:shapes-shift,n=1500:test" --sizes 10,20,50 --seeds 8
  --methods detectron,bbsd,mmd --meta meta --budget fast --null-runs 10 --ensemble 3 --epochs 2 --n-reference 200 --quiet)
now() { date +%s.%N; }
timed() { # cold|warm NAME COMMAND...: runs from a cold or warm bank cache, prints the wall seconds
  local cache=$1 name=$2; shift 2
  [ "$cache" = warm ] || rm -rf meta/shift-cache
  rm -rf "$name"
  local t0; t0=$(now)
  "$@"
  printf "%-24s %-5s cache %6.1f s\n" "$name" "$cache" "$(echo "$(now) - $t0" | bc)"
}
shard() { "$B" "${G[@]}" --threads 1 --shard "$1/4" --out "$2" >/dev/null; }
whole() { "$B" "${G[@]}" --threads "$1" --out "$2" >/dev/null; }
seq4() { for i in 0 1 2 3; do shard $i "$1"; done; }
par() { # N at a time
  local n=$1 out=$2 pids=() i
  for i in 0 1 2 3; do
    shard $i "$out" & pids+=($!)
    if [ ${#pids[@]} -ge "$n" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  done
  for p in "${pids[@]}"; do wait "$p"; done
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
timed cold whole-threads-2 whole 2 whole-threads-2
timed cold whole-threads-1 whole 1 whole-threads-1
timed cold seq4 seq4 seq4
timed cold par2 par 2 par2
timed cold par4 par 4 par4
timed warm whole-threads-2-warm whole 2 whole-threads-2-warm
timed warm seq4-warm seq4 seq4-warm
timed warm par2-warm par 2 par2-warm
python3 - <<'PY'
import json
def rows(d):
    return sorted(json.dumps({k: v for k, v in r.items() if "wall" not in k}, sort_keys=True) for r in json.load(open(d + "/results.json"))["rows"])
ref = rows("whole-threads-2")
for d in ("whole-threads-1", "whole-threads-2-warm", "seq4", "par2", "par4", "seq4-warm", "par2-warm"):
    if not d.startswith("whole"):
        import subprocess, os
        subprocess.run([os.environ["B"], "experiment", "report", d, "--quiet"], check=True, stdout=subprocess.DEVNULL)
    print(f"{d}: rows {'identical to' if rows(d) == ref else 'DIFFER from'} whole-threads-2 ({len(ref)} rows)")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
