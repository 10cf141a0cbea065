//! S8, memory control while TASK_RUNNING, under loom (design.md section 7).
//!
//! Scenario: C1 runs (held until the parent submitted the memory control and
//! took one step with it queued while TASK_RUNNING was known).
//!
//! Invariants: the memory control is published only at IDLE: the chip
//! applies it after C1's run retired with no task open; both resolve.
//!
//! Kills: `memory_control_while_running` (the child poisons on a memory
//! control during a task; the handles then fail).
//!
//! Run: `RUSTFLAGS="--cfg chiplane_loom" CARGO_TARGET_DIR=target/loom cargo test -p chiplane-models --release --test loom_s8_memory_waits_for_idle`
//! (CI: `LOOM_MAX_PREEMPTIONS=2`; default bound 3).
#![cfg(chiplane_loom)]

use chiplane_models::mailbox_backend::scenarios::*;
#[allow(unused_imports)]
use chiplane_models::mailbox_backend::LaneMode;

/// loom's builder (reads `LOOM_*` from the environment). Every waiting loop
/// yields, so a deadlock ends as "exceeded maximum number of branches".
/// Without `LOOM_MAX_PREEMPTIONS` the bound is 3 (an unbounded run takes
/// over a minute: S2 72 s, S8 and S11 over 100 s on the 2-core CI box).
fn builder() -> loom::model::Builder {
    chiplane_models::harness::loom_builder(3)
}

/// Threads: parent (main) and child (steps the lanes).
#[test]
fn loom_s8_memory_waits_for_idle() {
    builder().check(|| s8_memory_waits_for_idle(LaneMode::Inline));
}
