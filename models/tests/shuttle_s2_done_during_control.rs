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
//! each (`CHIPLANE_SHUTTLE_ITERS` overrides, e.g. for mutant runs).
//! Lanes run on their own threads (`LaneMode::Threads`) unless noted.
//!
//! Run: `RUSTFLAGS="--cfg chiplane_shuttle" CARGO_TARGET_DIR=target/shuttle cargo test -p chiplane-models --release --test shuttle_s2_done_during_control`
#![cfg(chiplane_shuttle)]

use chiplane_models::mailbox_backend::scenarios::*;
#[allow(unused_imports)]
use chiplane_models::mailbox_backend::LaneMode;

const SEED: u64 = 0x5eed_0022;

fn pct(f: impl Fn() + Send + Sync + 'static) {
    chiplane_models::harness::shuttle_pct(SEED, f);
}

fn random(f: impl Fn() + Send + Sync + 'static) {
    chiplane_models::harness::shuttle_random(SEED, f);
}

#[test]
fn shuttle_s2_done_during_control_pct() {
    pct(|| s2_done_during_control(LaneMode::Threads));
}

#[test]
fn shuttle_s2_done_during_control_random() {
    random(|| s2_done_during_control(LaneMode::Threads));
}
