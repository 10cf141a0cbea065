//! S1, seed pipeline, under loom (design.md section 7).
//!
//! Scenario: run_async(C1); register_async(C2) while C1 is TASK_RUNNING
//! (C1's run is held until C2 is registered); C2's prepare is held until
//! the parent observed C1's completion (seed hazard D); run_async(C2) once
//! C2's handle is known. Second model: two runs queued back to back, the
//! second staged into the task field while the first is TASK_RUNNING.
//!
//! Invariants: every handle resolves exactly once with the right value;
//! C2's run follows C1's; each TASK_DONE is published once; no frame field
//! is accessed without happens-before (loom's cell tracking); no deadlock.
//!
//! Kills: `blocking_control_wait` (deadlock), `running_before_copy` (race
//! on the task field, `s1_staged`), `shared_result_field`,
//! `relaxed_publish` (unsynchronised field read).
//!
//! Run: `RUSTFLAGS="--cfg chiplane_loom" CARGO_TARGET_DIR=target/loom cargo test -p chiplane-models --release --test loom_s1_pipeline`
//! (CI: `LOOM_MAX_PREEMPTIONS=2`; default bound 3).
#![cfg(chiplane_loom)]

use chiplane_models::mailbox_backend::scenarios::{s1_pipeline, s1_staged};
use chiplane_models::mailbox_backend::LaneMode;

/// loom's builder (reads `LOOM_MAX_PREEMPTIONS` etc. from the environment).
/// The pipeline is long (four protocol exchanges, each a few spins of the
/// yielding loops), so an execution needs more than loom's default 1,000
/// branches; a real deadlock still ends there ("exceeded maximum number of
/// branches") because every waiting loop yields.
/// Without `LOOM_MAX_PREEMPTIONS` the bound is 3 (about 4 s here); an
/// unbounded run takes well over a minute.
fn builder() -> loom::model::Builder {
    chiplane_models::harness::loom_builder(3)
}

/// Threads: parent (the model's main) and child, which steps the lanes
/// (`LaneMode::Inline`). A separate lane thread that yield-spins while idle
/// starves the others under loom's yield-count fairness (every idle spin of
/// one thread must be matched by the others before it runs again), which
/// blows the branch budget without exploring anything new.
#[test]
fn loom_s1_pipeline() {
    builder().check(|| s1_pipeline(LaneMode::Inline));
}

/// Threads: parent, child (which also steps the lanes).
#[test]
fn loom_s1_staged() {
    builder().check(|| s1_staged(LaneMode::Inline));
}
