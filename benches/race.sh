#!/usr/bin/env bash
# Races rfm against DuckDB, Polars, pandas, Dask and cat on generated data, in one run per
# scale, and checks every customers.csv against the DuckDB reference.
#
#   benches/race.sh [SCALE ...]        default scales: 1 10 100 (× 541,909 lines)
#
# Needs the peers of ../shared/tools (run ../shared/tools/setup-peers.sh once). Data is made
# with `rfm gen` into $RACE_DATA (default /tmp/rfm-race). Environment: TOOLS (peers to run,
# default "cat duckdb polars pandas dask"), DISTRIBUTED=0 to skip `rfm submit`, TLS=0 to skip
# `rfm submit` to a cluster that speaks TLS on every port, HIGH_CARDINALITY=0 to skip the leg on
# a file in which every invoice is a new customer (`rfm gen --customer-per-invoice`, made beside
# the plain one as retail_<scale>x_hc.csv; `rfm run` only), RFM_BIN=DIR to race the rfm,
# rfm-coordinator and rfm-worker binaries already built in DIR instead of building them here.
# The two workers share the machine: each gets half its cores (WORKER_THREADS, default nproc / 2,
# at least 1) and one task slot more than its threads (WORKER_SLOTS), so that the cluster runs
# as many compute threads as `rfm run` does and a worker's next task is at hand while the
# coordinator fetches the last one.
# Prints one markdown table per scale; paste them into docs/PERFORMANCE.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/tools/peers}
DATA=${RACE_DATA:-/tmp/rfm-race}
SCALES=("$@")
(( ${#SCALES[@]} )) || SCALES=(1 10 100)
[[ -x $PEERS/race.sh ]] || { echo "race: $PEERS/race.sh not found (needs ../shared/tools)" >&2; exit 2; }
PEERS_PY=${PY:-$HOME/.cache/rfm-peers/bin/python}
[[ -x $PEERS_PY ]] || {
  echo "race: the peers' Python ($PEERS_PY) is missing; run $(dirname "$PEERS")/setup-peers.sh once (about 20 s), or set PY" >&2
  exit 2
}

if [[ -n ${RFM_BIN:-} ]]; then
  BIN=$RFM_BIN
  for b in rfm rfm-coordinator rfm-worker; do
    [[ -x $BIN/$b ]] || { echo "race: RFM_BIN=$BIN has no $b binary" >&2; exit 2; }
  done
else
  cargo build --release -q -p rfm-cli -p rfm-coordinator -p rfm-worker --manifest-path "$ROOT/Cargo.toml"
  BIN=$ROOT/target/release
fi
mkdir -p "$DATA"

cluster_pids=()
stop_cluster() { for p in "${cluster_pids[@]}"; do kill "$p" 2>/dev/null || true; done; cluster_pids=(); }
trap stop_cluster EXIT
# Starts a coordinator and 2 workers on loopback; with "tls", every port serves TLS (mutual
# between coordinator and workers) with certificates from `rfm certs`. Sets COORDINATOR and
# SUBMIT_TLS (the client's flags).
start_cluster() {
  local port=$((20000 + RANDOM % 20000)) scheme=http server_tls=() dial_tls=()
  SUBMIT_TLS=()
  if [[ ${1:-} == tls ]]; then
    local certs=$DATA/certs
    [[ -s $certs/ca.pem ]] || "$BIN/rfm" certs --out "$certs" --hosts localhost >/dev/null
    scheme=https
    server_tls=(--tls-cert "$certs/server.pem" --tls-key "$certs/server.key" --tls-ca "$certs/ca.pem"
      --tls-client-ca "$certs/ca.pem")
    SUBMIT_TLS=(--tls-ca "$certs/ca.pem")
  fi
  "$BIN/rfm-coordinator" --listen "127.0.0.1:$port" "${server_tls[@]}" >"$DATA/coordinator.log" 2>&1 &
  cluster_pids+=($!)
  sleep 0.5
  local threads=${WORKER_THREADS:-$(( $(nproc) / 2 > 0 ? $(nproc) / 2 : 1 ))}
  local slots=${WORKER_SLOTS:-$((threads + 1))}
  for _ in 1 2; do
    "$BIN/rfm-worker" --coordinator "$scheme://127.0.0.1:$port" --listen 127.0.0.1:0 "${server_tls[@]}" \
      --threads "$threads" --slots "$slots" >>"$DATA/workers.log" 2>&1 &
    cluster_pids+=($!)
  done
  sleep 1
  COORDINATOR="$scheme://127.0.0.1:$port"
}

for scale in "${SCALES[@]}"; do
  rows=$((541909 * scale))
  file=$DATA/retail_${scale}x.csv
  [[ -s $file ]] || "$BIN/rfm" gen --rows "$rows" --seed 1 --out "$file"
  EXTRA_NAME=rfm-run "$PEERS/race.sh" "$file" -- "$BIN/rfm" run {FILE} --out {OUT} -q
  if [[ ${HIGH_CARDINALITY:-1} == 1 ]]; then
    hc=$DATA/retail_${scale}x_hc.csv
    [[ -s $hc ]] || "$BIN/rfm" gen --rows "$rows" --seed 1 --customer-per-invoice --out "$hc"
    EXTRA_NAME=rfm-run RACE_OUT=$DATA/race-rfm-run-${scale}x-hc \
      "$PEERS/race.sh" "$hc" -- "$BIN/rfm" run {FILE} --out {OUT} -q
  fi
  if [[ ${DISTRIBUTED:-1} == 1 ]]; then
    for mode in plain tls; do
      [[ $mode == tls && ${TLS:-1} != 1 ]] && continue
      start_cluster "$mode"
      name=rfm-submit; [[ $mode == tls ]] && name=rfm-submit-tls
      TOOLS="duckdb" EXTRA_NAME=$name RACE_OUT=$DATA/race-$name-${scale}x \
        "$PEERS/race.sh" "$file" -- "$BIN/rfm" submit {FILE} --coordinator "$COORDINATOR" \
        "${SUBMIT_TLS[@]}" --out {OUT} -q
      stop_cluster
    done
  fi
done
