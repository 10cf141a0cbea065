//! S2, run finishes during a control exchange, under shuttle (design.md section 7).
//!
//! Scenario: C1 runs; a register control enters during TASK_RUNNING; C1's
//! run is held until the control was applied, so it finishes while
//! CONTROL_READY/CONTROL_DONE is visible.
//!
//! Invariants: TASK_DONE deferred and published exactly once; C1's result
//! and the control's reply both intact; the control never overwritten.
//!
//! Kills: `done_during_control`, `shared_result_field`.
//!
//! Schedulers: PCT (depth 3) and random, fixed seeds, 10,000 iterations
//! each (`CHIPLANE_SHUTTLE_ITERATIONS` overrides, e.g. for mutant runs).
//! Lanes run on their own threads (`LaneMode::Threads`) unless noted.
//!
//! Run: `RUSTFLAGS="--cfg chiplane_shuttle" CARGO_TARGET_DIR=target/shuttle cargo test -p chiplane-models --release --test shuttle_s2_done_during_control`
#![cfg(chiplane_shuttle)]

use chiplane_models::mailbox_backend::scenarios::*;
#[allow(unused_imports)]
use chiplane_models::mailbox_backend::LaneMode;
use shuttle::scheduler::{PctScheduler, RandomScheduler};
use shuttle::{Config, MaxSteps, Runner};

const SEED: u64 = 0x5eed_0022;

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
fn shuttle_s2_done_during_control_pct() {
    pct(|| s2_done_during_control(LaneMode::Threads));
}

#[test]
fn shuttle_s2_done_during_control_random() {
    random(|| s2_done_during_control(LaneMode::Threads));
}
