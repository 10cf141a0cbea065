//! shuttle model of S10 completion cell wait/notify (design.md section 7).
//!
//! Invariants asserted (see `chiplane_models::l2`): no lost wake-up (a sleeper that misses the notify is a deadlock the checker reports); the value is published before any wake-up or notifier tick; stored once, taken once. The test chip
//! (`chiplane_models::testchip`) asserts the `Chip` call contract at every
//! call. Capacities are shrunk (2 slots, 3 generations).
//!
//! PCT (depth 3) and random scheduling, fixed seeds, `CHIPLANE_SHUTTLE_ITERS`
//! iterations each (default 10,000). Run:
//! ```text
//! RUSTFLAGS="--cfg chiplane_shuttle" CARGO_TARGET_DIR=target/shuttle \
//!   cargo test -p chiplane-models --release --test shuttle_s10_cell_wait_notify
//! ```
#![cfg(chiplane_shuttle)]

use chiplane_models::harness::{shuttle_pct, shuttle_random};

#[test]
fn s10_cell_wait_notify_pct() {
    shuttle_pct(0x510, chiplane_models::l2::s10_cell_wait_notify);
}

#[test]
fn s10_cell_wait_notify_random() {
    shuttle_random(0x510, chiplane_models::l2::s10_cell_wait_notify);
}

#[test]
fn s10_two_waiters_pct() {
    shuttle_pct(0x510, chiplane_models::l2::s10_two_waiters);
}

#[test]
fn s10_two_waiters_random() {
    shuttle_random(0x510, chiplane_models::l2::s10_two_waiters);
}
