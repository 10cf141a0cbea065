//! S9, child death at each protocol step, under loom (design.md section 7).
//!
//! Scenario: run C1, register C2 during TASK_RUNNING; a third thread kills
//! the child (it stops between any two protocol actions) or, as a liveness
//! monitor on the parent side, swaps POISONED into the word at any point.
//!
//! Invariants: every handle resolves exactly once; what did not complete
//! resolves with an endpoint error; nothing waits forever; poison is one
//! way (the word ends POISONED after the monitor's swap).
//!
//! Kills: `restore_by_store` (the parent's restore by plain store erases
//! the monitor's POISONED).
//!
//! Run: `RUSTFLAGS="--cfg chiplane_loom" CARGO_TARGET_DIR=target/loom cargo test -p chiplane-models --release --test loom_s9_child_death`
//! (CI: `LOOM_MAX_PREEMPTIONS=2`; default bound 2).
#![cfg(chiplane_loom)]

use chiplane_models::mailbox_backend::scenarios::*;
#[allow(unused_imports)]
use chiplane_models::mailbox_backend::LaneMode;

/// loom's builder (reads `LOOM_*` from the environment). Every waiting loop
/// yields, so a deadlock ends as "exceeded maximum number of branches".
/// Without `LOOM_MAX_PREEMPTIONS` the bound is 2 (3 takes about 3.5 minutes: three threads).
fn builder() -> loom::model::Builder {
    chiplane_models::harness::loom_builder(2)
}

/// Threads: parent (main), child (steps the lanes), killer.
#[test]
fn loom_s9_child_killed() {
    builder().check(|| s9_child_death(Death::Killed));
}

/// Threads: parent (main), child (steps the lanes), liveness monitor.
#[test]
fn loom_s9_monitor_poisons() {
    builder().check(|| s9_child_death(Death::MonitorPoisons));
}
