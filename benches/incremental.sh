#!/usr/bin/env bash
# Incremental runs with the state cache (docs/CACHE.md): the 10x synthetic file (`rfm gen --rows
# 5419090 --seed 1`) cut into 25 consecutive parts of equal line counts (each with the header;
# the generator's dates run in order over 13 months, so a part is about half a month). Times:
#   full         rfm run over parts 1-24, empty cache (every file computed, states written)
#   incremental  the 25th part added, rfm run again (24 states from the cache, 1 file computed)
#   no-cache     rfm run --no-cache over all 25 parts (what every run cost before the cache)
# and prints the ratios incremental/full and incremental/no-cache (target: at most 0.15), after
# checking that the incremental run's customers.csv and segments.csv equal the no-cache run's.
#
# Incremental and no-cache runs are timed REPEAT times (default 3), the best kept. To compare two
# builds on the incremental run, paired, use benches/incremental_pair.sh on the data this leaves.
#
#   benches/incremental.sh            data in $INCREMENTAL_DATA (default /tmp/rfm-incremental);
#                                     ROWS=N for another size, RFM=PATH for another binary
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${INCREMENTAL_DATA:-/tmp/rfm-incremental}
ROWS=${ROWS:-5419090}
PARTS=25

if [[ -z ${RFM:-} ]]; then
  cargo build --release -q -p rfm-cli --manifest-path "$ROOT/Cargo.toml"
  RFM=$ROOT/target/release/rfm
fi
mkdir -p "$DATA"
file=$DATA/retail_${ROWS}.csv
[[ -s $file ]] || "$RFM" gen --rows "$ROWS" --seed 1 --out "$file"

parts=$DATA/parts
if [[ ! -s $parts/part_$((PARTS - 1)).csv ]]; then
  rm -rf "$parts" && mkdir -p "$parts"
  header=$(head -n 1 "$file")
  tail -n +2 "$file" >"$parts/body"
  split -n "l/$PARTS" -d -a 2 "$parts/body" "$parts/raw_"
  rm "$parts/body"
  for raw in "$parts"/raw_*; do
    n=$((10#${raw##*raw_}))
    { printf '%s\n' "$header"; cat "$raw"; } >"$parts/part_$n.csv"
    rm "$raw"
  done
fi

work=$DATA/run
rm -rf "$work" && mkdir -p "$work/in"
for ((i = 0; i < PARTS - 1; i++)); do ln "$parts/part_$i.csv" "$work/in/part_$(printf %02d "$i").csv"; done
cat "$parts"/*.csv >/dev/null # warm the page cache

# Timed with bash's own clock ($EPOCHREALTIME, bash 5), not two `date` processes: those add
# 1.5-2 ms to each figure, 4 % of an incremental run.
seconds() { local t0 t1; t0=$EPOCHREALTIME; "$@"; t1=$EPOCHREALTIME; echo "$t1 - $t0" | bc; }

# The best of $REPEAT runs each (the machine may be shared); the cache of 24 parts is restored
# before each incremental run.
min() { echo "$@" | tr ' ' '\n' | sort -g | head -n 1; }
full=$(seconds "$RFM" run "$work/in" --cache-dir "$work/root/.cache" --out "$work/full" -q)
cp -r "$work/root/.cache" "$work/cache24"
ln "$parts/part_$((PARTS - 1)).csv" "$work/in/part_$((PARTS - 1)).csv"
inc=() nc=()
for ((r = 0; r < ${REPEAT:-3}; r++)); do
  rm -rf "$work/root/.cache" && cp -r "$work/cache24" "$work/root/.cache"
  inc+=("$(seconds "$RFM" run "$work/in" --cache-dir "$work/root/.cache" --out "$work/incremental" -q)")
  nc+=("$(seconds "$RFM" run "$work/in" --no-cache --out "$work/nocache" -q)")
done
echo "incremental runs: ${inc[*]}; no-cache runs: ${nc[*]}"
incremental=$(min "${inc[@]}")
nocache=$(min "${nc[@]}")

for f in customers.csv segments.csv; do
  cmp -s "$work/incremental/$f" "$work/nocache/$f" || { echo "incremental: $f differs from the run without cache" >&2; exit 1; }
done
tr -d '\n ' <"$work/incremental/run.json" | grep -o '"cache":{[^}]*}'; echo
printf 'full (24 parts, empty cache)   %8.2f s\n' "$full"
printf 'incremental (25th part added)  %8.2f s\n' "$incremental"
printf 'no cache (25 parts)            %8.2f s\n' "$nocache"
printf 'ratio incremental/full         %8.3f\n' "$(echo "$incremental / $full" | bc -l)"
printf 'ratio incremental/no-cache     %8.3f   (target <= 0.15)\n' "$(echo "$incremental / $nocache" | bc -l)"
du -sh "$work/root/.cache" | sed 's/^/cache size: /'
