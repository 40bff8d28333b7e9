# Shared by benches/incremental_pair.sh and benches/incremental_ratio.sh (sourced, not run):
# the data benches/incremental.sh leaves, one incremental run timed, and medians.

# Enters the run folder benches/incremental.sh leaves in $INCREMENTAL_DATA (default
# /tmp/rfm-incremental) and warms the page cache with its parts; exits 2 when it is not there.
enter_incremental_data() {
  local work=${INCREMENTAL_DATA:-/tmp/rfm-incremental}/run
  if [[ ! -d $work/cache24 || ! -d $work/in ]]; then
    echo "$0: no cache of 24 parts under $work: run benches/incremental.sh first" >&2
    exit 2
  fi
  cd "$work"
  cat ../parts/*.csv >/dev/null
}

# Milliseconds from $1 to $2 (two $EPOCHREALTIME readings).
elapsed_ms() { echo "($2 - $1) * 1000" | bc -l; }

# Times RFM's incremental run (the 25th part added to the cache of 24) into folder OUT: the
# cache is restored and synced first, so that no run meets another's writes still going to disk.
incremental_ms() {
  rm -rf root/.cache && cp -r cache24 root/.cache && sync
  local t0=$EPOCHREALTIME
  "$1" run in --cache-dir root/.cache --out "$2" -q
  elapsed_ms "$t0" "$EPOCHREALTIME"
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
least() { printf '%s\n' "$@" | sort -g | head -n 1; }
