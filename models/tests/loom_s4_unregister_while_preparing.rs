//! loom model of S4 final unregister during PREPARING (design.md section 7).
//!
//! Invariants asserted (see `chiplane_models::l2`): cooperative cancel; the registration settles PREPARED (prepare won) or Cancelled, a queued run follows it; the slot is never PREPARED after the cancel; an artifact built anyway is released exactly once, never published. The test chip
//! (`chiplane_models::testchip`) asserts the `Chip` call contract at every
//! call. Capacities are shrunk (2 slots, 3 generations) to keep the state
//! space small.
//!
//! Run (unbounded it takes over two minutes, so CI bounds preemptions with
//! `LOOM_MAX_PREEMPTIONS=2`; without the variable it is exhaustive):
//! ```text
//! RUSTFLAGS="--cfg chiplane_loom" CARGO_TARGET_DIR=target/loom \
//!   cargo test -p chiplane-models --release --test loom_s4_unregister_while_preparing
//! ```
#![cfg(chiplane_loom)]

use chiplane_models::harness::loom_check;

#[test]
fn s4_chip_ignores_cancel() {
    loom_check(|| chiplane_models::l2::s4_unregister_while_preparing(false));
}

#[test]
fn s4_chip_honours_cancel() {
    loom_check(|| chiplane_models::l2::s4_unregister_while_preparing(true));
}
