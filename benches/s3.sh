#!/usr/bin/env bash
# The 10x file (`rfm gen --rows 5419090 --seed 1`) read by `rfm run` from an S3-compatible
# server on loopback (s3s-fs over a temporary directory) against the same file from disk;
# target: S3 at most 1.3x the disk time. Both results must be byte-identical.
#
#   benches/s3.sh [RUNS]            default 3 runs each; the best of each is compared
#   PROFILE=dev benches/s3.sh       the dev build (no release build needed)
#
# Needs s3s-fs (`cargo install s3s-fs --version 0.14.1 --features binary --locked`). Data
# goes to $S3_BENCH_DATA (default /tmp/rfm-s3-bench; about 0.8 GB, removed at the end
# unless KEEP=1).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${1:-3}
DATA=${S3_BENCH_DATA:-/tmp/rfm-s3-bench}
command -v s3s-fs >/dev/null || { echo "s3: s3s-fs not found; install it with cargo install s3s-fs --version 0.14.1 --features binary --locked" >&2; exit 2; }
# PROFILE=dev measures the dev build (target/debug) instead of a release build.
if [[ ${PROFILE:-release} == dev ]]; then
  cargo build -q -p rfm-cli --manifest-path "$ROOT/Cargo.toml"
  RFM=$ROOT/target/debug/rfm
else
  cargo build --release -q -p rfm-cli --manifest-path "$ROOT/Cargo.toml"
  RFM=$ROOT/target/release/rfm
fi
mkdir -p "$DATA/s3/bench"
FILE=$DATA/s3/bench/retail_10x.csv
[[ -s $FILE ]] || "$RFM" gen --rows 5419090 --seed 1 --out "$FILE" >/dev/null

PORT=$((20000 + RANDOM % 20000))
s3s-fs --host 127.0.0.1 --port "$PORT" --access-key bench --secret-key bench-secret-123 "$DATA/s3" \
  >"$DATA/s3s.log" 2>&1 &
S3_PID=$!
cleanup() {
  kill "$S3_PID" 2>/dev/null || true
  [[ ${KEEP:-0} == 1 ]] || rm -rf "$DATA"
}
trap cleanup EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
# Uploaded with a PUT (curl signs it): s3s-fs then keeps the object's ETag; an object only
# copied into its directory has its MD5 recomputed over the whole file on every request,
# which would measure s3s-fs, not rfm.
curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user bench:bench-secret-123 \
  -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -T "$FILE" \
  "http://127.0.0.1:$PORT/bench/put_10x.csv" -o /dev/null
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret-123 AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT AWS_ALLOW_HTTP=true

# Best wall time of RUNS runs of `rfm run INPUT`, in seconds; results kept in $DATA/out-NAME.
best() {
  local name=$1 input=$2 best=
  for _ in $(seq "$RUNS"); do
    rm -rf "$DATA/out-$name"
    local t0 t1
    t0=$EPOCHREALTIME
    "$RFM" run "$input" --out "$DATA/out-$name" --quiet >/dev/null
    t1=$EPOCHREALTIME
    best=$(echo "$t0 $t1 ${best:-1e9}" | awk '{d=$2-$1; print (d<$3)?d:$3}')
  done
  echo "$best"
}
disk=$(best disk "$FILE")
s3=$(best s3 "s3://bench/put_10x.csv")
for f in customers.csv segments.csv; do
  cmp -s "$DATA/out-disk/$f" "$DATA/out-s3/$f" || { echo "s3: $f differs from disk" >&2; exit 1; }
done
size=$(stat -c %s "$FILE")
echo "| input | bytes | best of $RUNS (s) | vs disk |"
echo "|---|---:|---:|---:|"
echo "| disk | $size | $disk | 1.00 |"
echo "| s3 (s3s-fs, loopback) | $size | $s3 | $(echo "$s3 $disk" | awk '{printf "%.2f", $1/$2}') |"
