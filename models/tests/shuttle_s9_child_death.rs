//! S9, child death at each protocol step, under shuttle (design.md section 7).
//!
//! Scenario: run C1, register C2 during TASK_RUNNING; a third thread kills
//! the child between two protocol actions, or (as a parent-side liveness
//! monitor) swaps POISONED into the word, at a point the scheduler picks
//! or (`MonitorPoisonsAtControlDone`) once it sees a control's result
//! waiting.
//! The child steps the lanes itself (`LaneMode::Inline`: the lanes die
//! with the child process).
//!
//! Invariants: every handle resolves exactly once; what did not complete
//! resolves with an endpoint error; nothing hangs; poison is one way.
//!
//! Kills: `restore_by_store`.
//!
//! Schedulers: PCT (depth 3) and random, fixed seeds, 10,000 iterations
//! each (`CHIPLANE_SHUTTLE_ITERS` overrides, e.g. for mutant runs).
//! Lanes run on their own threads (`LaneMode::Threads`) unless noted.
//!
//! Run: `RUSTFLAGS="--cfg chiplane_shuttle" CARGO_TARGET_DIR=target/shuttle cargo test -p chiplane-models --release --test shuttle_s9_child_death`
#![cfg(chiplane_shuttle)]

use chiplane_models::mailbox_backend::scenarios::*;
#[allow(unused_imports)]
use chiplane_models::mailbox_backend::LaneMode;

const SEED: u64 = 0x5eed_0099;

fn pct(f: impl Fn() + Send + Sync + 'static) {
    chiplane_models::harness::shuttle_pct(SEED, f);
}

fn random(f: impl Fn() + Send + Sync + 'static) {
    chiplane_models::harness::shuttle_random(SEED, f);
}

#[test]
fn shuttle_s9_child_killed_pct() {
    pct(|| s9_child_death(Death::Killed));
}

#[test]
fn shuttle_s9_child_killed_random() {
    random(|| s9_child_death(Death::Killed));
}

#[test]
fn shuttle_s9_monitor_poisons_pct() {
    pct(|| s9_child_death(Death::MonitorPoisons));
}

#[test]
fn shuttle_s9_monitor_poisons_random() {
    random(|| s9_child_death(Death::MonitorPoisons));
}

#[test]
fn shuttle_s9_monitor_at_control_done_pct() {
    pct(|| s9_child_death(Death::MonitorPoisonsAtControlDone));
}

#[test]
fn shuttle_s9_monitor_at_control_done_random() {
    random(|| s9_child_death(Death::MonitorPoisonsAtControlDone));
}
