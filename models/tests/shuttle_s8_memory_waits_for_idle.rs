//! S8, memory control while TASK_RUNNING, under shuttle (design.md section 7).
//!
//! Scenario: C1 runs (held until the parent submitted a memory control and
//! took one step with it queued while TASK_RUNNING was known).
//!
//! Invariants: the memory control is applied only after C1's run retired,
//! with no task open; both resolve.
//!
//! Kills: `memory_control_while_running`.
//!
//! Schedulers: PCT (depth 3) and random, fixed seeds, 10,000 iterations
//! each (`CHIPLANE_SHUTTLE_ITERS` overrides, e.g. for mutant runs).
//! Lanes run on their own threads (`LaneMode::Threads`) unless noted.
//!
//! Run: `RUSTFLAGS="--cfg chiplane_shuttle" CARGO_TARGET_DIR=target/shuttle cargo test -p chiplane-models --release --test shuttle_s8_memory_waits_for_idle`
#![cfg(chiplane_shuttle)]

use chiplane_models::mailbox_backend::scenarios::*;
#[allow(unused_imports)]
use chiplane_models::mailbox_backend::LaneMode;

const SEED: u64 = 0x5eed_0088;

fn pct(f: impl Fn() + Send + Sync + 'static) {
    chiplane_models::harness::shuttle_pct(SEED, f);
}

fn random(f: impl Fn() + Send + Sync + 'static) {
    chiplane_models::harness::shuttle_random(SEED, f);
}

#[test]
fn shuttle_s8_memory_waits_for_idle_pct() {
    pct(|| s8_memory_waits_for_idle(LaneMode::Threads));
}

#[test]
fn shuttle_s8_memory_waits_for_idle_random() {
    random(|| s8_memory_waits_for_idle(LaneMode::Threads));
}
