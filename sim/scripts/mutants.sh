#!/usr/bin/env bash
# The simulator as a mutant checker: for each mutant of docs/protocol.md section 8
# that the sim can see, build with CHIPLANE_MUTANT=NAME and run a campaign of
# at most 10,000 seeds that stops at the first failing seed; print a table of
# seeds to first failure. Exits non-zero if a mutant survives.
#   sim/scripts/mutants.sh [SEEDS]        (default 10000)
set -uo pipefail
cd "$(dirname "$0")/../.."
seeds="${1:-10000}"
visible=(done_during_control running_before_copy free_while_pinned no_generation_check
         prepared_after_cancel memory_control_while_running shared_result_field blocking_control_wait
         restore_by_store stale_incarnation)
echo "| mutant | killed | seeds to first failure | first failing seed | checker that fired |"
echo "|---|---|---|---|---|"
survivors=0
for m in "${visible[@]}"; do
  if ! CHIPLANE_MUTANT=$m cargo build -q --release -p chiplane-sim 2>/tmp/chiplane-sim-mutant-build.log; then
    echo "| $m | BUILD FAILED | - | - | see /tmp/chiplane-sim-mutant-build.log |"
    survivors=$((survivors + 1))
    continue
  fi
  out=$(./target/release/chiplane-sim campaign --seeds "0..$seeds" --stop-on-failure --jobs 2 --no-progress)
  if ! grep -q "^built with mutant $m\$" <<<"$out"; then
    echo "| $m | NOT BUILT IN | - | - | the binary does not report mutant $m |"
    survivors=$((survivors + 1))
    continue
  fi
  seed=$(sed -n 's/^first-failure seed=//p' <<<"$out")
  if [ -n "$seed" ]; then
    why=$(grep -m1 '^FAIL seed' <<<"$out" | sed 's/^FAIL seed [0-9]* //' | cut -c1-110 | tr '|' '/')
    echo "| $m | yes | $((seed + 1)) | $seed | $why |"
  else
    echo "| $m | NO | - | - | survived $seeds seeds |"
    survivors=$((survivors + 1))
  fi
done
cargo build -q --release -p chiplane-sim 2>/dev/null
exit $survivors
