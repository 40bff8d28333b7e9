#!/usr/bin/env bash
# The scheduler benchmark: a coordinator driving many one-slot worker processes over many small
# tasks. For each worker count it starts a coordinator and the workers on loopback, waits until
# every worker is registered, runs one `rfm submit`, and prints the coordinator's cost per task.
#
#   benches/scheduler.sh [WORKERS ...]          default worker counts: 4 16 64
#
# Environment: FILE (default $RACE_DATA/retail_10x.csv, made with `rfm gen` when missing),
# CHUNK (task size, default 1MiB: about 420 tasks on the 10x file), RECORD (--max-record-size,
# default 64KiB: it must not exceed CHUNK, or most tiny tasks own no record),
# RACE_DATA (default /tmp/rfm-race), BUILD=0 to use the release binaries as they are. A synthetic run of about 10,000 tiny tasks:
#   FILE=/tmp/rfm-race/retail_1x.csv CHUNK=4KiB RECORD=4KiB benches/scheduler.sh 4 16
# Columns: tasks (file bytes / CHUNK), wall seconds of the submit, tasks per second, the
# coordinator's CPU seconds (user + system, from /proc) during the submit and per task, and its
# peak RSS (VmHWM). The workers' own parsing is not in the coordinator's figures.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${RACE_DATA:-/tmp/rfm-race}
FILE=${FILE:-$DATA/retail_10x.csv}
CHUNK=${CHUNK:-1MiB}
RECORD=${RECORD:-64KiB}
COUNTS=("$@")
(( ${#COUNTS[@]} )) || COUNTS=(4 16 64)

[[ ${BUILD:-1} == 0 ]] ||
  cargo build --release -q -p rfm-cli -p rfm-coordinator -p rfm-worker --manifest-path "$ROOT/Cargo.toml"
BIN=$ROOT/target/release
mkdir -p "$DATA"
[[ -s $FILE ]] || "$BIN/rfm" gen --rows $((541909 * 10)) --seed 1 --out "$FILE"

bytes_of() {  # 1MiB / 4KiB / 64KiB / plain bytes
  local v=$1
  case $v in
    *GiB) echo $(( ${v%GiB} << 30 )) ;;
    *MiB) echo $(( ${v%MiB} << 20 )) ;;
    *KiB) echo $(( ${v%KiB} << 10 )) ;;
    *) echo "$v" ;;
  esac
}
size=$(stat -c %s "$FILE")
chunk=$(bytes_of "$CHUNK")
tasks=$(( (size + chunk - 1) / chunk ))
tick=$(getconf CLK_TCK)

pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap stop EXIT
cpu_of() { awk -v t="$tick" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$1/stat"; }

echo "| workers | tasks | wall s | tasks/s | coordinator CPU s | CPU ms/task | coordinator peak RSS MB |"
echo "|---|---|---|---|---|---|---|"
for n in "${COUNTS[@]}"; do
  port=$((20000 + RANDOM % 20000))
  url=http://127.0.0.1:$port
  "$BIN/rfm-coordinator" --listen "127.0.0.1:$port" --min-chunk-size "$CHUNK" >"$DATA/scheduler-coordinator.log" 2>&1 &
  coordinator=$!
  pids+=("$coordinator")
  sleep 0.5
  for _ in $(seq "$n"); do
    "$BIN/rfm-worker" --coordinator "$url" --listen 127.0.0.1:0 --slots 1 --threads 1 \
      >>"$DATA/scheduler-workers.log" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 120); do
    registered=$("$BIN/rfm" workers --coordinator "$url" --json 2>/dev/null |
      grep -o '"address"' | wc -l || true)
    (( registered >= n )) && break
    sleep 0.5
  done
  before=$(cpu_of "$coordinator")
  start=$EPOCHREALTIME
  "$BIN/rfm" submit "$FILE" --coordinator "$url" --chunk-size "$CHUNK" --max-record-size "$RECORD" \
    --out "$DATA/scheduler-out" -q
  end=$EPOCHREALTIME
  after=$(cpu_of "$coordinator")
  peak=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$coordinator/status")
  awk -v n="$n" -v t="$tasks" -v s="$start" -v e="$end" -v b="$before" -v a="$after" -v p="$peak" \
    'BEGIN { w = e - s; c = a - b;
             printf "| %d | %d | %.2f | %.0f | %.2f | %.3f | %s |\n", n, t, w, t / w, c, 1000 * c / t, p }'
  stop
done
