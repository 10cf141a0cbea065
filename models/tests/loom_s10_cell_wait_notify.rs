//! loom model of S10 completion cell wait/notify (design.md section 7).
//!
//! Invariants asserted (see `chiplane_models::l2`): no lost wake-up (a sleeper that misses the notify is a deadlock the checker reports); the value is published before any wake-up or notifier tick; stored once, taken once. The test chip
//! (`chiplane_models::testchip`) asserts the `Chip` call contract at every
//! call. Capacities are shrunk (2 slots, 3 generations) to keep the state
//! space small.
//!
//! Run (`s10_cell_wait_notify` is always exhaustive, ~20 s; `s10_two_waiters`
//! takes minutes unbounded, so CI bounds it with `LOOM_MAX_PREEMPTIONS=2`):
//! ```text
//! RUSTFLAGS="--cfg chiplane_loom" CARGO_TARGET_DIR=target/loom \
//!   cargo test -p chiplane-models --release --test loom_s10_cell_wait_notify
//! ```
#![cfg(chiplane_loom)]

use chiplane_models::harness::{loom_check, loom_check_unbounded};

#[test]
fn s10_cell_wait_notify() {
    // Exhaustive even in CI: about 20 s unbounded.
    loom_check_unbounded(chiplane_models::l2::s10_cell_wait_notify);
}

#[test]
fn s10_two_waiters() {
    loom_check(chiplane_models::l2::s10_two_waiters);
}
