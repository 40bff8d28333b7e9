#!/usr/bin/env bash
# Two builds of `rfm` on the incremental run of benches/incremental.sh, paired: the 25th part
# added to the cache of 24, each build's run in turn (A B, B A, A B ...), the cache restored
# and synced before every run (so that neither run meets the other's writes still going to
# disk), timed with bash's own clock. Prints each build's median and the median of the pairs'
# ratios A/B, which a drift of the machine's speed during the call moves less than either
# median.
#
#   benches/incremental_pair.sh NEW_RFM OLD_RFM [PAIRS]   (PAIRS: default 24)
#
# Runs on the data benches/incremental.sh leaves in $INCREMENTAL_DATA (default
# /tmp/rfm-incremental): run that first.
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 NEW_RFM OLD_RFM [PAIRS]" >&2
  exit 2
fi
A=$1 B=$2 PAIRS=${3:-24}
# shellcheck source=incremental_common.sh
source "$(dirname "$0")/incremental_common.sh"
enter_incremental_data
one() { incremental_ms "$1" pair-out; }

one "$A" >/dev/null
one "$B" >/dev/null # one warm-up each
as=() bs=() ratios=()
# Each build runs first in every other pair: the first run of a pair was about 1.6 % slower
# than the second (80 pairs of one build against another, read in both orders).
for ((i = 0; i < PAIRS; i++)); do
  if ((i % 2 == 0)); then
    a=$(one "$A")
    b=$(one "$B")
  else
    b=$(one "$B")
    a=$(one "$A")
  fi
  as+=("$a") bs+=("$b") ratios+=("$(echo "$a / $b" | bc -l)")
done
printf 'A %s: median %.1f ms\n' "$A" "$(median "${as[@]}")"
printf 'B %s: median %.1f ms\n' "$B" "$(median "${bs[@]}")"
printf 'A/B: median of %d pairs %.3f\n' "$PAIRS" "$(median "${ratios[@]}")"
