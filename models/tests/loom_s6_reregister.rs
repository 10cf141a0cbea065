//! loom model of S6 re-register after unregister (design.md section 7).
//!
//! Invariants asserted (see `chiplane_models::l2`): the slot is reused with a newer generation; the old handle is rejected as stale by run and unregister; the new handle runs the new artifact; no completion crosses generations. The test chip
//! (`chiplane_models::testchip`) asserts the `Chip` call contract at every
//! call. Capacities are shrunk (2 slots, 3 generations) to keep the state
//! space small.
//!
//! Run (unbounded it takes over two minutes, so CI bounds preemptions with
//! `LOOM_MAX_PREEMPTIONS=2`; without the variable it is exhaustive):
//! ```text
//! RUSTFLAGS="--cfg chiplane_loom" CARGO_TARGET_DIR=target/loom \
//!   cargo test -p chiplane-models --release --test loom_s6_reregister
//! ```
#![cfg(chiplane_loom)]

use chiplane_models::harness::loom_check;

#[test]
fn s6_reregister() {
    loom_check(chiplane_models::l2::s6_reregister);
}
