#!/usr/bin/env bash
# The incremental run against the run without the cache, paired: one build's incremental run
# (the 25th part added to the cache of 24) and its `--no-cache` run over the same 25 parts, in
# turn (A B, B A, ...), the cache restored and synced before every incremental run, both timed
# with bash's own clock. Prints each kind's median and minimum and the median of the pairs'
# ratios, incremental / no-cache (the target is at most 0.15): a drift of the machine's speed
# during the call moves that median less than the ratio of two medians or of two minimums,
# which is what benches/incremental.sh prints.
#
#   benches/incremental_ratio.sh RFM [PAIRS]   (PAIRS: default 30)
#
# Runs on the data benches/incremental.sh leaves in $INCREMENTAL_DATA (default
# /tmp/rfm-incremental): run that first.
set -euo pipefail
if [[ $# -lt 1 ]]; then
  echo "usage: $0 RFM [PAIRS]" >&2
  exit 2
fi
RFM=$1 PAIRS=${2:-30}
# shellcheck source=incremental_common.sh
source "$(dirname "$0")/incremental_common.sh"
enter_incremental_data
incremental() { incremental_ms "$RFM" ratio-incremental; }
no_cache() {
  sync
  local t0=$EPOCHREALTIME
  "$RFM" run in --no-cache --out ratio-no-cache -q
  elapsed_ms "$t0" "$EPOCHREALTIME"
}

incremental >/dev/null
no_cache >/dev/null # one warm-up each
as=() bs=() ratios=()
for ((i = 0; i < PAIRS; i++)); do
  if ((i % 2 == 0)); then
    a=$(incremental)
    b=$(no_cache)
  else
    b=$(no_cache)
    a=$(incremental)
  fi
  as+=("$a") bs+=("$b") ratios+=("$(echo "$a / $b" | bc -l)")
done
for f in customers.csv segments.csv; do
  cmp -s "ratio-incremental/$f" "ratio-no-cache/$f" || { echo "$0: $f of the incremental run differs from the run without cache" >&2; exit 1; }
done
printf 'incremental: median %.1f ms, least %.1f ms\n' "$(median "${as[@]}")" "$(least "${as[@]}")"
printf 'no cache:    median %.1f ms, least %.1f ms\n' "$(median "${bs[@]}")" "$(least "${bs[@]}")"
printf 'incremental / no cache: median of %d pairs %.3f   (target <= 0.15)\n' "$PAIRS" "$(median "${ratios[@]}")"
