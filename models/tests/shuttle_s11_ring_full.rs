//! S11, completion ring full while settlements keep coming, under shuttle (design.md section 7).
//!
//! Scenario: a one-entry completion ring; three fresh registers submitted
//! at once.
//!
//! Invariants: the child holds what does not fit; no settlement dropped or
//! reordered; every waiter resolves; one ring entry per settlement; the
//! ring-full state is reached in some iteration.
//!
//! Schedulers: PCT (depth 3) and random, fixed seeds, 10,000 iterations
//! each (`CHIPLANE_SHUTTLE_ITERS` overrides, e.g. for mutant runs).
//! Lanes run on their own threads (`LaneMode::Threads`) unless noted.
//!
//! Run: `RUSTFLAGS="--cfg chiplane_shuttle" CARGO_TARGET_DIR=target/shuttle cargo test -p chiplane-models --release --test shuttle_s11_ring_full`
#![cfg(chiplane_shuttle)]

use chiplane_models::mailbox_backend::scenarios::*;
#[allow(unused_imports)]
use chiplane_models::mailbox_backend::LaneMode;

const SEED: u64 = 0x5eed_00bb;

fn pct(f: impl Fn() + Send + Sync + 'static) {
    chiplane_models::harness::shuttle_pct(SEED, f);
}

fn random(f: impl Fn() + Send + Sync + 'static) {
    chiplane_models::harness::shuttle_random(SEED, f);
}

#[test]
fn shuttle_s11_ring_full_pct() {
    pct(|| s11_ring_full(LaneMode::Threads, 3));
    assert!(RING_FULL_SEEN.load(std::sync::atomic::Ordering::Relaxed) > 0, "no iteration filled the ring");
}

#[test]
fn shuttle_s11_ring_full_random() {
    random(|| s11_ring_full(LaneMode::Threads, 3));
    assert!(RING_FULL_SEEN.load(std::sync::atomic::Ordering::Relaxed) > 0, "no iteration filled the ring");
}
