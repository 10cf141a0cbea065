//! S2, run finishes during a control exchange, under loom (design.md section 7).
//!
//! Scenario: C1 runs; a register control enters during TASK_RUNNING; C1's
//! run is held until the control was applied, so it finishes while
//! CONTROL_READY/CONTROL_DONE is visible.
//!
//! Invariants: TASK_DONE is deferred and published exactly once; C1's result
//! and the control's reply both arrive intact (separate result fields); the
//! control is never overwritten; no unsynchronised field access.
//!
//! Kills: `done_during_control`, `shared_result_field`, `relaxed_publish`.
//!
//! Run: `RUSTFLAGS="--cfg chiplane_loom" CARGO_TARGET_DIR=target/loom cargo test -p chiplane-models --release --test loom_s2_done_during_control`
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

/// Threads: parent (main) and child (steps the lanes: see loom_s1_pipeline).
#[test]
fn loom_s2_done_during_control() {
    builder().check(|| s2_done_during_control(LaneMode::Inline));
}
