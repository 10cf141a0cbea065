//! loom model of S5 sync run after async run (design.md section 7).
//!
//! Invariants asserted (see `chiplane_models::l2`): no overtaking: the chip runs tag 1 then tag 2, both on the run lane thread. The test chip
//! (`chiplane_models::testchip`) asserts the `Chip` call contract at every
//! call. Capacities are shrunk (2 slots, 3 generations) to keep the state
//! space small.
//!
//! Run (unbounded it takes over two minutes, so CI bounds preemptions with
//! `LOOM_MAX_PREEMPTIONS=2`; without the variable it is exhaustive):
//! ```text
//! RUSTFLAGS="--cfg chiplane_loom" CARGO_TARGET_DIR=target/loom \
//!   cargo test -p chiplane-models --release --test loom_s5_sync_after_async
//! ```
#![cfg(chiplane_loom)]

use chiplane_models::harness::loom_check;

#[test]
fn s5_sync_after_async() {
    loom_check(chiplane_models::l2::s5_sync_after_async);
}
