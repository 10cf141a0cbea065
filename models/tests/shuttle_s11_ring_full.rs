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
//! each (`CHIPLANE_SHUTTLE_ITERATIONS` overrides, e.g. for mutant runs).
//! Lanes run on their own threads (`LaneMode::Threads`) unless noted.
//!
//! Run: `RUSTFLAGS="--cfg chiplane_shuttle" CARGO_TARGET_DIR=target/shuttle cargo test -p chiplane-models --release --test shuttle_s11_ring_full`
#![cfg(chiplane_shuttle)]

use chiplane_models::mailbox_backend::scenarios::*;
#[allow(unused_imports)]
use chiplane_models::mailbox_backend::LaneMode;
use shuttle::scheduler::{PctScheduler, RandomScheduler};
use shuttle::{Config, MaxSteps, Runner};

const SEED: u64 = 0x5eed_00bb;

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
fn shuttle_s11_ring_full_pct() {
    pct(|| s11_ring_full(LaneMode::Threads, 3));
    assert!(RING_FULL_SEEN.load(std::sync::atomic::Ordering::Relaxed) > 0, "no iteration filled the ring");
}

#[test]
fn shuttle_s11_ring_full_random() {
    random(|| s11_ring_full(LaneMode::Threads, 3));
    assert!(RING_FULL_SEEN.load(std::sync::atomic::Ordering::Relaxed) > 0, "no iteration filled the ring");
}
