#!/usr/bin/env bash
# CI entry for the fuzz targets (called from .ci/run): build every target and
# run each for a short bounded time from its seeds (stable toolchain,
# sanitizers off). Any crash fails the script; the crashing input is left
# under fuzz/artifacts/<target>/ for `cargo fuzz tmin`.
#
#   fuzz/ci.sh [SECONDS_PER_TARGET]      (default 20)
set -eu -o pipefail
secs=${1:-20}
cd "$(dirname "$0")"
unset CHIPLANE_MUTANT
cargo fuzz build -s none
status=0
for t in $(cargo fuzz list); do
  corpus=$(mktemp -d)
  cp "seeds/$t"/* "$corpus/"
  [ -d "regressions/$t" ] && cp "regressions/$t"/* "$corpus/" 2>/dev/null || true
  art=$(mktemp -d)
  echo "== fuzz $t for ${secs}s"
  if ! cargo fuzz run "$t" -s none "$corpus" -- -max_total_time="$secs" -artifact_prefix="$art/" \
    -print_final_stats=1 2>&1 | tail -25; then
    status=1
  fi
  if ls "$art"/* >/dev/null 2>&1; then
    mkdir -p "artifacts/$t"
    cp "$art"/* "artifacts/$t/"
    echo "fuzz $t: crash found (artifacts/$t/)" >&2
    status=1
  fi
  rm -rf "$corpus" "$art"
done
exit $status
