#!/usr/bin/env bash
# CI entry for the fuzz targets (scripts/test-all's fuzz stage). One build,
# through the ClusterFuzzLite / OSS-Fuzz build script, so that script cannot
# rot:
#  1. `.clusterfuzzlite/build.sh` into a temporary $OUT (stable toolchain,
#     SANITIZER=none: `cargo fuzz build -O --debug-assertions -s none`);
#  2. checks $OUT holds what ClusterFuzzLite expects: for every target of
#     `cargo fuzz list` an executable T and a T_seed_corpus.zip holding every
#     file of seeds/T and regressions/T, and nothing else executable;
#  3. runs each built binary for SECONDS on its unzipped seed corpus, with the
#     flags of its T.options ([libfuzzer] section) and its T.dict, as
#     ClusterFuzzLite would.
# Any failure, and any crash, fails the script (after every target ran); the
# crashing input is copied to fuzz/artifacts/<target>/ for `cargo fuzz tmin`.
#
#   fuzz/ci.sh [SECONDS_PER_TARGET]      (default 20)
set -euo pipefail
secs=${1:-20}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
unset CHIPLANE_MUTANT
out=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$out" "$work"' EXIT

fail() { echo "fuzz/ci.sh: $*" >&2; exit 1; }

echo "== .clusterfuzzlite/build.sh (OUT=$out)"
OUT=$out WORK=$work SANITIZER=none bash "$root/.clusterfuzzlite/build.sh"

cd "$here"
mapfile -t targets < <(cargo fuzz list)
[ ${#targets[@]} -gt 0 ] || fail "cargo fuzz list names no target"
expected=$(printf '%s\n' "${targets[@]}" | sort)
built=$(find "$out" -maxdepth 1 -type f -perm -u+x -printf '%f\n' | sort)
[ "$built" = "$expected" ] || fail "executables in \$OUT ($(echo $built)) are not the targets ($(echo $expected))"

unpack() { # ZIP DIR
  if command -v unzip >/dev/null; then unzip -q "$1" -d "$2"; else python3 -m zipfile -e "$1" "$2"; fi
}

status=0
for t in "${targets[@]}"; do
  zip=$out/${t}_seed_corpus.zip
  [ -s "$zip" ] || fail "no $zip"
  corpus=$work/corpus-$t
  mkdir "$corpus"
  unpack "$zip" "$corpus"
  dirs=()
  for d in "seeds/$t" "regressions/$t"; do [ ! -d "$d" ] || dirs+=("$d"); done
  want=0
  [ ${#dirs[@]} = 0 ] || want=$(find "${dirs[@]}" -maxdepth 1 -type f ! -name '*.md' | wc -l)
  have=$(find "$corpus" -type f | wc -l)
  [ "$want" -gt 0 ] && [ "$have" = "$want" ] || fail "$t: the seed zip holds $have files, seeds/ and regressions/ $want"

  flags=()
  if [ -f "$out/$t.options" ]; then
    while IFS='=' read -r key value; do
      key=$(echo "$key" | tr -d '[:space:]')
      value=$(echo "$value" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
      [ -n "$key" ] || continue
      [ "$key" = dict ] && value=$out/$value
      flags+=("-$key=$value")
    done < <(sed -n '/^\[libfuzzer\]/,/^\[/{/^\[/d; /^[[:space:]]*#/d; p}' "$out/$t.options")
  fi
  [ ! -f "$out/$t.dict" ] || flags+=("-dict=$out/$t.dict")

  art=$work/artifacts-$t
  mkdir "$art"
  echo "== fuzz $t for ${secs}s on $have seed inputs ${flags[*]}"
  log=$work/$t.log
  rc=0
  "$out/$t" "$corpus" -max_total_time="$secs" -artifact_prefix="$art/" -print_final_stats=1 \
    "${flags[@]}" >"$log" 2>&1 || rc=$?
  tail -25 "$log"
  if [ $rc != 0 ]; then
    echo "fuzz $t: the fuzzer exited with status $rc: $(grep -m1 -A1 'panicked at' "$log" | tail -1)" >&2
    cp "$log" "$art/run.log"
    status=1
  fi
  # crash-, timeout-, oom-, leak-: a failure (slow-unit- files are not).
  found=$(find "$art" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) -printf '%f ')
  if [ -n "$found" ]; then
    mkdir -p "artifacts/$t"
    cp "$art"/* "artifacts/$t/"
    echo "fuzz $t: crash found (fuzz/artifacts/$t/: $found)" >&2
    status=1
  fi
done
exit $status
