//! S11, completion ring full while settlements keep coming, under loom (design.md section 7).
//!
//! Scenario: a one-entry completion ring; two fresh registers submitted at
//! once, so the second settlement arrives while the first may still occupy
//! the ring.
//!
//! Invariants: the child holds what does not fit; no settlement is dropped
//! or reordered (they arrive in prepare order); every waiter resolves; one
//! ring entry per settlement; the ring-full state is reached.
//!
//! Run: `RUSTFLAGS="--cfg chiplane_loom" CARGO_TARGET_DIR=target/loom cargo test -p chiplane-models --release --test loom_s11_ring_full`
//! (CI: `LOOM_MAX_PREEMPTIONS=2`; default bound 3).
#![cfg(chiplane_loom)]

use chiplane_models::mailbox_backend::scenarios::*;
#[allow(unused_imports)]
use chiplane_models::mailbox_backend::LaneMode;

/// loom's builder (reads `LOOM_*` from the environment). Every waiting loop
/// yields, so a deadlock ends as "exceeded maximum number of branches".
/// Without `LOOM_MAX_PREEMPTIONS` the bound is 3 (an unbounded run takes
/// over a minute: S2 72 s, S8 and S11 over 100 s on the 2-core CI box).
fn builder() -> loom::model::Builder {
    chiplane_models::harness::loom_builder(3)
}

/// Threads: parent (main) and child (steps the lanes).
#[test]
fn loom_s11_ring_full() {
    builder().check(|| s11_ring_full(LaneMode::Inline, 2));
    assert!(RING_FULL_SEEN.load(std::sync::atomic::Ordering::Relaxed) > 0, "no explored execution filled the ring");
}
