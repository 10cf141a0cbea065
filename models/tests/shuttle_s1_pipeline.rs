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
//! each (`CHIPLANE_SHUTTLE_ITERATIONS` overrides, e.g. for mutant runs).
//! Lanes run on their own threads (`LaneMode::Threads`) unless noted.
//!
//! Run: `RUSTFLAGS="--cfg chiplane_shuttle" CARGO_TARGET_DIR=target/shuttle cargo test -p chiplane-models --release --test shuttle_s1_pipeline`
#![cfg(chiplane_shuttle)]

use chiplane_models::mailbox_backend::scenarios::*;
#[allow(unused_imports)]
use chiplane_models::mailbox_backend::LaneMode;
use shuttle::scheduler::{PctScheduler, RandomScheduler};
use shuttle::{Config, MaxSteps, Runner};

const SEED: u64 = 0x5eed_0011;

fn iterations() -> usize {
    std::env::var("CHIPLANE_SHUTTLE_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

/// Every waiting loop yields; a deadlock (every thread spinning on the
/// others) ends at this step bound as a failure.
fn config() -> Config {
    let mut c = Config::new();
    c.max_steps = MaxSteps::FailAfter(100_000);
    c
}

fn pct(f: impl Fn() + Send + Sync + 'static) {
    let n = Runner::new(PctScheduler::new_from_seed(SEED, 3, iterations()), config()).run(f);
    assert_eq!(n, iterations(), "PCT ran every iteration");
}

fn random(f: impl Fn() + Send + Sync + 'static) {
    let n = Runner::new(RandomScheduler::new_from_seed(SEED, iterations()), config()).run(f);
    assert_eq!(n, iterations(), "random ran every iteration");
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
