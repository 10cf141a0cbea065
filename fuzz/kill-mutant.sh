#!/usr/bin/env bash
# Run one fuzz campaign against a core mutant (docs/protocol.md section 8).
#
#   fuzz/kill-mutant.sh NAME TARGET [SECONDS]      (default 60 s)
#
# Builds TARGET with CHIPLANE_MUTANT=NAME (core's build.rs turns it into
# --cfg chiplane_mutant="NAME"), copies seeds/TARGET into a fresh corpus and
# runs `cargo fuzz run TARGET -s none` for at most SECONDS. Prints
#   NAME killed-by fuzz TARGET in S s      (exit 0; S = seconds to the crash)
#   NAME SURVIVED                           (exit 1)
# With SEEDS=none in the environment the corpus starts empty instead (how
# fast the fuzzer finds the bug on its own).
# Exit 2: bad usage or the build failed. The crashing input is kept under
# fuzz/artifacts/mutants/NAME-TARGET/ (gitignored); the log beside it.
set -u
if [ $# -lt 2 ]; then
  echo "usage: $0 NAME TARGET [SECONDS]" >&2
  exit 2
fi
name=$1
target=$2
secs=${3:-60}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
if [ ! -d "seeds/$target" ]; then
  echo "no seeds/$target: unknown target $target" >&2
  exit 2
fi
out="$here/artifacts/mutants/$name-$target"
rm -rf "$out"
mkdir -p "$out/corpus"
if [ "${SEEDS:-}" != none ]; then
  cp "seeds/$target"/* "$out/corpus/"
fi
export CHIPLANE_MUTANT=$name
if ! cargo fuzz build "$target" -s none >"$out/build.log" 2>&1; then
  echo "build of $target with mutant $name failed; see $out/build.log" >&2
  tail -20 "$out/build.log" >&2
  exit 2
fi
start=$(date +%s.%N)
cargo fuzz run "$target" -s none "$out/corpus" -- \
  -max_total_time="$secs" -artifact_prefix="$out/" -print_final_stats=1 >"$out/run.log" 2>&1
end=$(date +%s.%N)
elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
found=
for f in "$out"/crash-* "$out"/timeout-* "$out"/oom-*; do
  [ -e "$f" ] && found=$f
done
if [ -n "$found" ]; then
  why=$(grep -m1 -A1 "panicked at" "$out/run.log" | tail -1 | head -c 300)
  execs=$(grep -oE "^#[0-9]+" "$out/run.log" | tail -1)
  echo "$name killed-by fuzz $target in $elapsed s"
  if [ -n "$execs" ]; then when="after $execs executions"; else when="while loading the corpus"; fi
  echo "  ($when: $why)" >&2
  exit 0
fi
echo "$name SURVIVED"
exit 1
