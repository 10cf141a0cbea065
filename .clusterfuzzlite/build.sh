#!/bin/bash
# Build every cargo-fuzz target of fuzz/ for ClusterFuzzLite / OSS-Fuzz.
#
# Inside the base-builder-rust image (`compile` runs this as $SRC/build.sh
# from WORKDIR $SRC/chiplane) it follows the OSS-Fuzz Rust conventions:
# `cargo fuzz build -O` with the image's RUSTFLAGS and the sanitizer named by
# $SANITIZER, then for each target T in $OUT:
#   T                    the libFuzzer binary
#   T_seed_corpus.zip    fuzz/seeds/T and fuzz/regressions/T (README.md left out)
#   T.dict, T.options    when fuzz/dictionaries/T.dict, fuzz/options/T.options exist
#
# Outside Docker every variable has a default, so on a stable toolchain
#   OUT=$(mktemp -d) bash .clusterfuzzlite/build.sh
# leaves the same files in $OUT (fuzz/ci.sh, hence scripts/test-all, does this):
#   SRC                 the directory holding the checkout (unused when the script
#                       sits in the checkout's .clusterfuzzlite/)
#   OUT                 fuzz/target/cflite-out
#   WORK                a temporary directory (removed at exit)
#   SANITIZER           none (`-s none`: stable has no sanitizer); address, memory,
#                       thread and leak are passed to cargo fuzz (nightly only);
#                       undefined and coverage build without one (Rust has no
#                       UBSan; OSS-Fuzz's cargo wrapper rewrites coverage builds)
#   CARGO_BUILD_TARGET  the host triple (rustc -vV)
#   CARGO_TARGET_DIR    honoured: the binaries are found through `cargo metadata`
# Exits non-zero when a build, copy or archive fails or a target has no seeds.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -f "$script_dir/../fuzz/Cargo.toml" ]; then
  root=$(cd "$script_dir/.." && pwd)          # run from the checkout
elif [ -n "${SRC:-}" ] && [ -f "$SRC/chiplane/fuzz/Cargo.toml" ]; then
  root=$SRC/chiplane                          # $SRC/build.sh in the image
elif [ -f fuzz/Cargo.toml ]; then
  root=$PWD
else
  echo "build.sh: cannot find the chiplane checkout (fuzz/Cargo.toml)" >&2
  exit 1
fi
SRC=${SRC:-$(dirname "$root")}
OUT=${OUT:-$root/fuzz/target/cflite-out}
SANITIZER=${SANITIZER:-none}
triple=${CARGO_BUILD_TARGET:-$(rustc -vV | sed -n 's/^host: //p')}
[ -n "$triple" ] || { echo "build.sh: no target triple (rustc -vV)" >&2; exit 1; }
case "${FUZZING_ENGINE:-libfuzzer}" in
  libfuzzer) ;;
  *) echo "build.sh: the targets are libFuzzer targets (cargo-fuzz); FUZZING_ENGINE=$FUZZING_ENGINE is not supported" >&2
     exit 1 ;;
esac
case "$SANITIZER" in
  address | memory | thread | leak) san=$SANITIZER ;;
  none | undefined | coverage) san=none ;;
  *) echo "build.sh: unknown SANITIZER=$SANITIZER" >&2; exit 1 ;;
esac
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
stage=$(mktemp -d "${WORK:-${TMPDIR:-/tmp}}/chiplane-seeds.XXXXXX")
trap 'rm -rf "$stage"' EXIT

cd "$root/fuzz"
# The targets: one fuzz_targets/T.rs per [[bin]] T of fuzz/Cargo.toml (not
# `cargo fuzz list`: OSS-Fuzz's cargo wrapper swallows every `cargo fuzz`
# command in coverage builds).
targets=()
for f in fuzz_targets/*.rs; do
  [ -e "$f" ] || continue
  t=$(basename "$f" .rs)
  grep -qx "name = \"$t\"" Cargo.toml || { echo "build.sh: $f is not a [[bin]] of fuzz/Cargo.toml" >&2; exit 1; }
  targets+=("$t")
done
[ ${#targets[@]} -gt 0 ] || { echo "build.sh: no fuzz/fuzz_targets/*.rs" >&2; exit 1; }

echo "build.sh: ${targets[*]} -> $OUT (sanitizer $san, target $triple, RUSTFLAGS=${RUSTFLAGS:-})"
# Release (-O) with debug assertions: core's debug_assert!s (the slot table's
# invariant after every operation, dispatch ids, frame lengths) and integer
# overflow checks are part of what the fuzzers check.
cargo fuzz build -O --debug-assertions --sanitizer "$san" --target "$triple"

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -d "$target_dir" ] || { echo "build.sh: no target directory from cargo metadata" >&2; exit 1; }
bin_dir=$target_dir/$triple/release

archive() { # ZIP FILE...: a flat zip of FILEs (zip -j; python3's zipfile where zip is missing)
  local zipfile=$1
  shift
  if command -v zip >/dev/null; then
    zip -jq "$zipfile" "$@"
  else
    python3 -m zipfile -c "$zipfile" "$@"
  fi
}

for t in "${targets[@]}"; do
  [ -x "$bin_dir/$t" ] || { echo "build.sh: cargo fuzz build left no $bin_dir/$t" >&2; exit 1; }
  cp "$bin_dir/$t" "$OUT/$t"

  # Seeds and regressions under distinct prefixes (names may repeat across the two).
  mkdir "$stage/$t"
  n=0
  for kind in seeds regressions; do
    [ -d "$kind/$t" ] || continue
    for f in "$kind/$t"/*; do
      [ -f "$f" ] || continue
      case "$f" in *.md) continue ;; esac
      cp "$f" "$stage/$t/${kind%s}-$(basename "$f")"
      n=$((n + 1))
    done
  done
  [ "$n" -gt 0 ] || { echo "build.sh: no seeds for $t (fuzz/seeds/$t, fuzz/regressions/$t)" >&2; exit 1; }
  rm -f "$OUT/${t}_seed_corpus.zip"
  archive "$OUT/${t}_seed_corpus.zip" "$stage/$t"/*

  rm -f "$OUT/$t.dict" "$OUT/$t.options"
  [ ! -f "dictionaries/$t.dict" ] || cp "dictionaries/$t.dict" "$OUT/$t.dict"
  [ ! -f "options/$t.options" ] || cp "options/$t.options" "$OUT/$t.options"
  echo "build.sh: $t: binary, $n seed inputs$([ -f "$OUT/$t.dict" ] && echo ", dict")$([ -f "$OUT/$t.options" ] && echo ", options")"
done
