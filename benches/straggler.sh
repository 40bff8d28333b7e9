#!/usr/bin/env bash
# The tail benchmark: `rfm submit` to a coordinator and 2 workers (one thread, two slots each)
# with tasks cut at the tail (`--split-tasks true`, the default) against the same cluster
# without cuts, submissions alternating so that both see the same machine. With STRAGGLER=1
# (the default) the first worker of each cluster shares processor 0 with a busy loop and the
# second has processor 1 to itself: one worker is half as fast, as on a busy or slower host.
#
#   benches/straggler.sh [RUNS]          default 10 submissions to each cluster
#
# Environment: FILE (default $RACE_DATA/retail_10x.csv, made with `rfm gen` when missing),
# RACE_DATA (default /tmp/rfm-race), STRAGGLER=0 for two workers of equal speed, BUILD=0 to
# use the release binaries as they are. Prints each cluster's median wall seconds, the median of
# the paired ratios (cut / not cut), the cuts the coordinator made, and checks that both
# clusters' customers.csv are the same bytes. Needs `taskset` (util-linux) and 2 processors.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${RACE_DATA:-/tmp/rfm-race}
FILE=${FILE:-$DATA/retail_10x.csv}
RUNS=${1:-10}
STRAGGLER=${STRAGGLER:-1}

[[ ${BUILD:-1} == 0 ]] ||
  cargo build --release -q -p rfm-cli -p rfm-coordinator -p rfm-worker --manifest-path "$ROOT/Cargo.toml"
BIN=$ROOT/target/release
mkdir -p "$DATA"
[[ -s $FILE ]] || "$BIN/rfm" gen --rows $((541909 * 10)) --seed 1 --out "$FILE"

pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop EXIT

# Starts a cluster; $1: its name, $2: --split-tasks. Sets url_$1.
start_cluster() {
  local name=$1 split=$2 port=$((20000 + RANDOM % 20000))
  "$BIN/rfm-coordinator" --listen "127.0.0.1:$port" --split-tasks "$split" \
    >"$DATA/straggler-$name.log" 2>&1 &
  pids+=($!)
  sleep 0.5
  for cpu in 0 1; do
    taskset -c "$cpu" "$BIN/rfm-worker" --coordinator "http://127.0.0.1:$port" \
      --listen 127.0.0.1:0 --threads 1 --slots 2 >>"$DATA/straggler-$name-workers.log" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 100); do
    (( $(grep -c "registered at" "$DATA/straggler-$name.log" || true) >= 2 )) && break
    sleep 0.1
  done
  printf -v "url_$name" '%s' "http://127.0.0.1:$port"
}
start_cluster cut true
start_cluster whole false
if [[ $STRAGGLER == 1 ]]; then
  taskset -c 0 sh -c 'while :; do :; done' &
  pids+=($!)
fi

# Wall seconds of one submission; $1: the cluster's name.
submit() {
  local url_var="url_$1" t0 t1
  t0=$(date +%s.%N)
  "$BIN/rfm" submit "$FILE" --coordinator "${!url_var}" --out "$DATA/straggler-out-$1" -q
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
submit cut >/dev/null
submit whole >/dev/null
cut=() whole=() ratios=()
for _ in $(seq "$RUNS"); do
  a=$(submit cut)
  b=$(submit whole)
  cut+=("$a") whole+=("$b") ratios+=("$(echo "$a / $b" | bc -l)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f", m }'; }
cmp -s "$DATA/straggler-out-cut/customers.csv" "$DATA/straggler-out-whole/customers.csv" ||
  { echo "customers.csv differs between the two clusters" >&2; exit 1; }
echo "| straggler | runs | cut s | not cut s | cut / not cut (paired median) | cuts |"
echo "|---|---|---|---|---|---|"
echo "| $STRAGGLER | $RUNS | $(median "${cut[@]}") | $(median "${whole[@]}") | $(median "${ratios[@]}") | $(grep -c " cut at byte " "$DATA/straggler-cut.log" || true) |"
