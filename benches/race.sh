#!/usr/bin/env bash
# Races rfm against DuckDB, Polars, pandas, Dask and cat on generated data, in one run per
# scale, and checks every customers.csv against the DuckDB reference.
#
#   benches/race.sh [SCALE ...]        default scales: 1 10 100 (× 541,909 lines)
#
# Needs the peers of ../shared/tools (run ../shared/tools/setup-peers.sh once). Data is made
# with `rfm gen` into $RACE_DATA (default /tmp/rfm-race). Environment: TOOLS (peers to run,
# default "cat duckdb polars pandas dask"), DISTRIBUTED=0 to skip `rfm submit`.
# Prints one markdown table per scale; paste them into docs/PERFORMANCE.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/tools/peers}
DATA=${RACE_DATA:-/tmp/rfm-race}
SCALES=("$@")
(( ${#SCALES[@]} )) || SCALES=(1 10 100)
[[ -x $PEERS/race.sh ]] || { echo "race: $PEERS/race.sh not found (needs ../shared/tools)" >&2; exit 2; }

cargo build --release -q -p rfm-cli -p rfm-coordinator -p rfm-worker --manifest-path "$ROOT/Cargo.toml"
BIN=$ROOT/target/release
mkdir -p "$DATA"

cluster_pids=()
stop_cluster() { for p in "${cluster_pids[@]}"; do kill "$p" 2>/dev/null || true; done; cluster_pids=(); }
trap stop_cluster EXIT
start_cluster() {  # coordinator + 2 workers on loopback
  local port=$((20000 + RANDOM % 20000))
  "$BIN/rfm-coordinator" --listen "127.0.0.1:$port" >"$DATA/coordinator.log" 2>&1 &
  cluster_pids+=($!)
  sleep 0.5
  for _ in 1 2; do
    "$BIN/rfm-worker" --coordinator "http://127.0.0.1:$port" --listen 127.0.0.1:0 >>"$DATA/workers.log" 2>&1 &
    cluster_pids+=($!)
  done
  sleep 1
  COORDINATOR="http://127.0.0.1:$port"
}

for scale in "${SCALES[@]}"; do
  rows=$((541909 * scale))
  file=$DATA/retail_${scale}x.csv
  [[ -s $file ]] || "$BIN/rfm" gen --rows "$rows" --seed 1 --out "$file"
  EXTRA_NAME=rfm-run "$PEERS/race.sh" "$file" -- "$BIN/rfm" run {FILE} --out {OUT} -q
  if [[ ${DISTRIBUTED:-1} == 1 ]]; then
    start_cluster
    TOOLS="duckdb" EXTRA_NAME=rfm-submit RACE_OUT=$DATA/race-submit-${scale}x \
      "$PEERS/race.sh" "$file" -- "$BIN/rfm" submit {FILE} --coordinator "$COORDINATOR" --out {OUT} -q
    stop_cluster
  fi
done
