#!/usr/bin/env bash
# The input-format benchmark: the 10x synthetic file (5,419,090 lines, `rfm gen --seed 1`) as
# CSV, Parquet, .csv.gz and .csv.zst, each run once with `rfm run` (release build, all cores);
# prints the wall seconds of each and its ratio to the CSV's. Issue 17's target: Parquet at most
# 0.7 x the CSV.
#
#   benches/formats.sh
#
# Environment: ROWS (default 5419090), FORMATS (default "csv parquet csv.gz csv.zst"),
# FORMATS_DATA (default /tmp/rfm-formats; the generated files are kept there for the next run),
# BUILD=0 to use the release binary as it is.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${FORMATS_DATA:-/tmp/rfm-formats}
ROWS=${ROWS:-5419090}
read -r -a FORMATS <<< "${FORMATS:-csv parquet csv.gz csv.zst}"
[[ ${BUILD:-1} == 0 ]] ||
  cargo build --release -q -p rfm-cli --manifest-path "$ROOT/Cargo.toml"
BIN=$ROOT/target/release/rfm
mkdir -p "$DATA"
csv_seconds=
printf '%-8s %12s %8s %6s\n' format bytes seconds ratio
for f in "${FORMATS[@]}"; do
  file=$DATA/retail_${ROWS}.$f
  [[ -s $file ]] || "$BIN" gen --rows "$ROWS" --seed 1 --out "$file"
  out=$DATA/out-$f
  start=$EPOCHREALTIME
  "$BIN" run "$file" --out "$out" -q
  end=$EPOCHREALTIME
  secs=$(echo "$end - $start" | bc -l)
  [[ -n $csv_seconds ]] || csv_seconds=$secs
  ratio=$(echo "$secs / $csv_seconds" | bc -l)
  printf '%-8s %12d %8.2f %6.2f\n' "$f" "$(stat -c %s "$file")" "$secs" "$ratio"
  cmp -s "$out/customers.csv" "$DATA/out-${FORMATS[0]}/customers.csv" ||
    { echo "$f: customers.csv differs from the ${FORMATS[0]} run's" >&2; exit 1; }
done
