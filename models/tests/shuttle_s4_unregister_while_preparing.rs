//! shuttle model of S4 final unregister during PREPARING (design.md section 7).
//!
//! Invariants asserted (see `chiplane_models::l2`): cooperative cancel; the registration settles PREPARED (prepare won) or Cancelled, a queued run follows it; the slot is never PREPARED after the cancel; an artifact built anyway is released exactly once, never published. The test chip
//! (`chiplane_models::testchip`) asserts the `Chip` call contract at every
//! call. Capacities are shrunk (2 slots, 3 generations).
//!
//! PCT (depth 3) and random scheduling, fixed seeds, `CHIPLANE_SHUTTLE_ITERS`
//! iterations each (default 10,000). Run:
//! ```text
//! RUSTFLAGS="--cfg chiplane_shuttle" CARGO_TARGET_DIR=target/shuttle \
//!   cargo test -p chiplane-models --release --test shuttle_s4_unregister_while_preparing
//! ```
#![cfg(chiplane_shuttle)]

use chiplane_models::harness::{shuttle_pct, shuttle_random};

#[test]
fn s4_chip_ignores_cancel_pct() {
    shuttle_pct(0x54, || chiplane_models::l2::s4_unregister_while_preparing(false));
}

#[test]
fn s4_chip_ignores_cancel_random() {
    shuttle_random(0x54, || chiplane_models::l2::s4_unregister_while_preparing(false));
}

#[test]
fn s4_chip_honours_cancel_pct() {
    shuttle_pct(0x54, || chiplane_models::l2::s4_unregister_while_preparing(true));
}

#[test]
fn s4_chip_honours_cancel_random() {
    shuttle_random(0x54, || chiplane_models::l2::s4_unregister_while_preparing(true));
}
