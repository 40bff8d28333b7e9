#!/usr/bin/env bash
# The scheduler benchmark: a coordinator driving many one-slot worker processes over many small
# tasks. For each worker count it starts a coordinator and the workers on loopback, waits until
# every worker is registered, and times `rfm submit` of the same file twice over: in many small
# tasks (CHUNK) and in a few large ones (BASE_CHUNK), REPEAT times each after one warm-up job.
# What the coordinator spends on a job that does not depend on its tasks (scoring every
# customer, sending the result tables, merging the last states) is the few-task job's CPU; what
# each task costs it (dispatch, the Flight fetch, decoding and merging its state) is the
# difference between the two jobs' CPU divided by the difference of their task counts.
#
#   benches/scheduler.sh [WORKERS ...]          default worker counts: 4 16 64
#
# Environment: FILE (default $RACE_DATA/retail_10x.csv, made with `rfm gen` when missing),
# CHUNK (task size, default 1MiB: about 420 tasks on the 10x file), BASE_CHUNK (default 64MiB),
# RECORD (--max-record-size, default 64KiB: it must not exceed CHUNK, or most tiny tasks own no
# record), REPEAT (jobs of each kind, default 3), RACE_DATA (default /tmp/rfm-race), BUILD=0 to
# use the release binaries as they are. A synthetic run of about 10,000 tiny tasks:
#   FILE=/tmp/rfm-race/retail_1x.csv CHUNK=4KiB RECORD=4KiB benches/scheduler.sh 4 16
# Columns: tasks (as the coordinator logs them), wall seconds of a submit, tasks per second,
# the coordinator's CPU seconds per job (user + system, from /proc, in clock ticks: REPEAT
# jobs are timed together) and per task, the few-task job's tasks and CPU, the cost of one
# more task, and the coordinator's peak RSS (VmHWM) over the warm-up and the many-task jobs.
# The workers' own parsing is not in the coordinator's figures.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${RACE_DATA:-/tmp/rfm-race}
FILE=${FILE:-$DATA/retail_10x.csv}
CHUNK=${CHUNK:-1MiB}
BASE_CHUNK=${BASE_CHUNK:-64MiB}
REPEAT=${REPEAT:-3}
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

echo "| workers | tasks | wall s | tasks/s | coordinator CPU s a job | CPU ms/task | few-task job: tasks, CPU s | ms per added task | coordinator peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|---|"
log=$DATA/scheduler-coordinator.log
# The tasks of the last job, from the coordinator's log line "N tasks merged as M states".
tasks_of_last() { grep -o '[0-9]* tasks merged as' "$log" | tail -n 1 | cut -d' ' -f1; }
# REPEAT submits in tasks of $1: "<wall s a job> <CPU s a job> <tasks>".
jobs_of() {
  local b s e a
  b=$(cpu_of "$coordinator")
  s=$EPOCHREALTIME
  for ((r = 0; r < REPEAT; r++)); do
    "$BIN/rfm" submit "$FILE" --coordinator "$url" --chunk-size "$1" --max-record-size "$RECORD" \
      --out "$DATA/scheduler-out" -q
  done
  e=$EPOCHREALTIME
  a=$(cpu_of "$coordinator")
  awk -v r="$REPEAT" -v s="$s" -v e="$e" -v b="$b" -v a="$a" -v t="$(tasks_of_last)" \
    'BEGIN { printf "%.3f %.4f %d\n", (e - s) / r, (a - b) / r, t }'
}
for n in "${COUNTS[@]}"; do
  port=$((20000 + RANDOM % 20000))
  url=http://127.0.0.1:$port
  "$BIN/rfm-coordinator" --listen "127.0.0.1:$port" --min-chunk-size "$CHUNK" >"$log" 2>&1 &
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
  # A first job faults in the memory the next ones reuse.
  "$BIN/rfm" submit "$FILE" --coordinator "$url" --chunk-size "$BASE_CHUNK" --max-record-size "$RECORD" \
    --out "$DATA/scheduler-out" -q
  read -r wall cpu tasks < <(jobs_of "$CHUNK")
  # The peak over the warm-up and the many-task jobs (their results kept for `rfm job`).
  peak=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$coordinator/status")
  read -r _ base_cpu base_tasks < <(jobs_of "$BASE_CHUNK")
  awk -v n="$n" -v t="$tasks" -v w="$wall" -v c="$cpu" -v bt="$base_tasks" -v bc="$base_cpu" -v p="$peak" \
    'BEGIN { added = (t > bt) ? 1000 * (c - bc) / (t - bt) : 0;
             printf "| %d | %d | %.2f | %.0f | %.3f | %.3f | %d, %.3f | %.3f | %s |\n",
                    n, t, w, t / w, c, 1000 * c / t, bt, bc, added, p }'
  stop
done
