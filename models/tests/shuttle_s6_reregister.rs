//! shuttle model of S6 re-register after unregister (design.md section 7).
//!
//! Invariants asserted (see `chiplane_models::l2`): the slot is reused with a newer generation; the old handle is rejected as stale by run and unregister; the new handle runs the new artifact; no completion crosses generations. The test chip
//! (`chiplane_models::testchip`) asserts the `Chip` call contract at every
//! call. Capacities are shrunk (2 slots, 3 generations).
//!
//! PCT (depth 3) and random scheduling, fixed seeds, `CHIPLANE_SHUTTLE_ITERS`
//! iterations each (default 10,000). Run:
//! ```text
//! RUSTFLAGS="--cfg chiplane_shuttle" CARGO_TARGET_DIR=target/shuttle \
//!   cargo test -p chiplane-models --release --test shuttle_s6_reregister
//! ```
#![cfg(chiplane_shuttle)]

use chiplane_models::harness::{shuttle_pct, shuttle_random};

#[test]
fn s6_reregister_pct() {
    shuttle_pct(0x56, chiplane_models::l2::s6_reregister);
}

#[test]
fn s6_reregister_random() {
    shuttle_random(0x56, chiplane_models::l2::s6_reregister);
}
