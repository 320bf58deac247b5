#!/bin/bash
# A real one-node Slurm cluster: installs Debian's slurmctld, slurmd, munge and slurm-client when
# missing, writes a minimal slurm.conf (this machine as the one node, state and spool in a temp
# folder), starts munged (unless one runs), slurmctld and slurmd, submits a tiny zoo, a tiny grid
# and a tiny detector's null bank as 4-task job arrays with their merge jobs (`weightflow slurm
# zoo|grid|detector --submit`), waits for them, and compares the merged zoo, grid and detector
# with the same commands run here in one piece.
# Stops the daemons it started on exit. Needs root on Debian (apt-get); about a minute.
# Usage: tools/slurm_test.sh            (from the repository root or anywhere in it)
#        KEEP=1 tools/slurm_test.sh     (keep the temp folder for inspection)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
say() { echo "slurm_test: $*" >&2; }
die() { say "FAIL: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (it installs packages and starts the Slurm daemons)"

pkgs_missing=0
for c in slurmctld slurmd munged sbatch squeue sinfo; do command -v $c >/dev/null || pkgs_missing=1; done
if [ $pkgs_missing = 1 ]; then
  say "installing slurmctld slurmd munge slurm-client"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends slurmctld slurmd munge slurm-client >/dev/null
fi

cargo build --release -q
B=$root/target/release/weightflow

T=$(mktemp -d /tmp/wf-slurm.XXXXXX)
chmod 755 "$T"
pids=()
munged_pid=""
cleanup() {
  local rc=$?
  if [ -n "${SLURM_CONF:-}" ] && command -v scancel >/dev/null; then scancel --user=root >/dev/null 2>&1 || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "$munged_pid" ] && kill "$munged_pid" 2>/dev/null || true
  if [ $rc != 0 ]; then
    say "logs in $T:"; tail -n 20 "$T"/slurmctld.log "$T"/slurmd.log "$T"/work/*/slurm/logs/* 2>/dev/null >&2 || true
  fi
  [ -n "${KEEP:-}" ] || rm -rf "$T"
  exit $rc
}
trap cleanup EXIT

# munge: the key comes with the package; start a daemon unless one answers already
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  [ -s /etc/munge/munge.key ] || { mungekey --create --keyfile /etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
  mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
  for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
  munged_pid=$(cat /run/munge/munged.pid)
  munge -n | unmunge >/dev/null || die "munged does not answer"
fi

host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
mkdir -p "$T/state" "$T/spool" "$T/work"
export SLURM_CONF=$T/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=wftest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=wftest Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
/usr/sbin/slurmctld -D -c -f "$SLURM_CONF" >"$T/slurmctld.out" 2>&1 &
pids+=($!)
/usr/sbin/slurmd -D -f "$SLURM_CONF" >"$T/slurmd.out" 2>&1 &
pids+=($!)
state=""
for _ in $(seq 60); do
  state=$(sinfo -h -o %T 2>/dev/null | head -1 || true)
  [ "$state" = idle ] && break
  sleep 0.5
done
[ "$state" = idle ] || die "the node is not idle after 30 s (state '$state')"
say "cluster up: node $host, $cpus CPUs"

# the work: a tiny zoo and a tiny grid, here in one piece and on the cluster in 4 shards
cd "$T/work"
S="synthetic:shapes,n=600"
zoo=(--data "$S:train" --test "$S:test" --arch cnn3 --models 4 --epochs 1 --lr 1e-3 --seed 5)
"$B" zoo train "${zoo[@]}" --threads 1 --quiet --out z1
"$B" flow train --zoo z1 --out meta --iterations 30 --width 32 --threads 1 --quiet
grid=(--source "$S:test" --shifted "synthetic:shapes-shift,n=600:test" --sizes 10,20 --seeds 3 --methods bbsd,mmd --meta meta --quiet)
"$B" experiment shift "${grid[@]}" --threads 1 --out g1 >/dev/null
"$B" zoo export z1 --model 0 --out f.safetensors >/dev/null
det=(--method detectron --budget fast --reference "$S:train" --model f.safetensors --sizes 10 --null-runs 8 --ensemble 2 --cdc-epochs 1 --n-reference 100 --quiet)
"$B" detector fit "${det[@]}" --threads 1 --out d1 >/dev/null
t0=$(date +%s)
res=(--shards 4 --cpus-per-task 1 --time 10 --mem 512M --merge-time 5)
read -r zarray zmerge < <("$B" slurm zoo "${res[@]}" --submit -- "${zoo[@]}" --quiet --out zs)
read -r garray gmerge < <("$B" slurm grid "${res[@]}" --submit -- "${grid[@]}" --out gs)
read -r darray dmerge < <("$B" slurm detector "${res[@]}" --submit -- "${det[@]}" --out ds)
say "submitted zoo array $zarray + merge $zmerge, grid array $garray + merge $gmerge, detector bank array $darray + merge $dmerge"
for _ in $(seq 240); do
  left=$(squeue -h -o "%i %T %r" 2>/dev/null || true)
  [ -z "$left" ] && break
  if grep -q DependencyNeverSatisfied <<<"$left"; then die "a shard failed, its merge job will never start: $left"; fi
  sleep 0.5
done
[ -z "$left" ] || die "jobs still queued after 120 s: $left"
say "all jobs done in $(( $(date +%s) - t0 )) s"
[ -f zs/manifest.json ] || die "the zoo merge job wrote no zs/manifest.json"
[ -f gs/results.json ] || die "the grid report job wrote no gs/results.json"
[ "$(ls zs/slurm/logs | wc -l)" -ge 5 ] || die "expected 4 array task logs and a merge log in zs/slurm/logs"
[ -f ds/detector.json ] || die "the detector merge job saved no ds/detector.json"
for f in d1/banks/*.json; do
  cmp -s "$f" "ds/banks/${f#d1/banks/}" || die "the merged detector's bank ${f#d1/banks/} differs from the single fit's"
done

"$B" zoo info z1 --json >z1.json
"$B" zoo info zs --json >zs.json
for f in z1/epoch_0001.safetensors z1/optimizer_0001.safetensors; do
  cmp -s "$f" "zs/${f#z1/}" || die "the merged zoo's ${f#z1/} differs from the single run's"
done
python3 - z1.json zs.json g1/results.json gs/results.json <<'PY' || die "the merged zoo or grid differs from the single run"
import json, sys
def strip(v):
    if isinstance(v, dict): return {k: strip(x) for k, x in v.items() if not any(s in k.lower() for s in ("time", "second", "wall", "path"))}
    if isinstance(v, list): return [strip(x) for x in v]
    return v
z1, zs, g1, gs = (json.load(open(p)) for p in sys.argv[1:5])
assert strip(z1) == strip(zs), "zoo info differs"
assert g1["rows"] and strip(g1["rows"]) == strip(gs["rows"]), "grid rows differ"
PY
say "PASS: 4-task Slurm arrays merged to the single run (zoo checkpoints and detector banks byte-identical, grid rows identical)"
