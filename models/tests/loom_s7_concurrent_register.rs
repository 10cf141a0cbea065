//! loom model of S7 concurrent register of one digest from two callers (design.md section 7).
//!
//! Invariants asserted (see `chiplane_models::l2`): one slot, registration count 2, one prepare; the first unregister is not final, the second frees and releases once. The test chip
//! (`chiplane_models::testchip`) asserts the `Chip` call contract at every
//! call. Capacities are shrunk (2 slots, 3 generations) to keep the state
//! space small.
//!
//! Run (unbounded it takes over two minutes, so CI bounds preemptions with
//! `LOOM_MAX_PREEMPTIONS=2`; without the variable it is exhaustive):
//! ```text
//! RUSTFLAGS="--cfg chiplane_loom" CARGO_TARGET_DIR=target/loom \
//!   cargo test -p chiplane-models --release --test loom_s7_concurrent_register
//! ```
#![cfg(chiplane_loom)]

use chiplane_models::harness::loom_check;

#[test]
fn s7_concurrent_register() {
    loom_check(chiplane_models::l2::s7_concurrent_register);
}
