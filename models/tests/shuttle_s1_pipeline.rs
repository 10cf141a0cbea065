//! S1, seed pipeline, under shuttle (design.md section 7).
//!
//! Scenario: run_async(C1); register_async(C2) while C1 is TASK_RUNNING
//! (C1's run held until C2 is registered); C2's prepare held until the
//! parent observed C1's completion (seed hazard D); run_async(C2) once its
//! handle is known. Second scenario: two runs back to back, the second
//! staged into the task field while the first is TASK_RUNNING.
//!
//! Invariants: every handle resolves exactly once with the right value;
//! C2's run follows C1's; each TASK_DONE is published once; no deadlock.
//!
//! Kills: `blocking_control_wait` (deadlock: step bound),
//! `running_before_copy` (the child copies the staged second task instead
//! of the first), `shared_result_field`.
//!
//! Schedulers: PCT (depth 3) and random, fixed seeds, 10,000 iterations
//! each (`CHIPLANE_SHUTTLE_ITERS` overrides, e.g. for mutant runs).
//! Lanes run on their own threads (`LaneMode::Threads`) unless noted.
//!
//! Run: `RUSTFLAGS="--cfg chiplane_shuttle" CARGO_TARGET_DIR=target/shuttle cargo test -p chiplane-models --release --test shuttle_s1_pipeline`
#![cfg(chiplane_shuttle)]

use chiplane_models::mailbox_backend::scenarios::*;
#[allow(unused_imports)]
use chiplane_models::mailbox_backend::LaneMode;

const SEED: u64 = 0x5eed_0011;

fn pct(f: impl Fn() + Send + Sync + 'static) {
    chiplane_models::harness::shuttle_pct(SEED, f);
}

fn random(f: impl Fn() + Send + Sync + 'static) {
    chiplane_models::harness::shuttle_random(SEED, f);
}

#[test]
fn shuttle_s1_pipeline_pct() {
    pct(|| s1_pipeline(LaneMode::Threads));
}

#[test]
fn shuttle_s1_pipeline_random() {
    random(|| s1_pipeline(LaneMode::Threads));
}

#[test]
fn shuttle_s1_staged_pct() {
    pct(|| s1_staged(LaneMode::Threads));
}

#[test]
fn shuttle_s1_staged_random() {
    random(|| s1_staged(LaneMode::Threads));
}
