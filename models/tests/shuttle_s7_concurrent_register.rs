//! shuttle model of S7 concurrent register of one digest from two callers (design.md section 7).
//!
//! Invariants asserted (see `chiplane_models::l2`): one slot, registration count 2, one prepare; the first unregister is not final, the second frees and releases once. The test chip
//! (`chiplane_models::testchip`) asserts the `Chip` call contract at every
//! call. Capacities are shrunk (2 slots, 3 generations).
//!
//! PCT (depth 3) and random scheduling, fixed seeds, `CHIPLANE_SHUTTLE_ITERS`
//! iterations each (default 10,000). Run:
//! ```text
//! RUSTFLAGS="--cfg chiplane_shuttle" CARGO_TARGET_DIR=target/shuttle \
//!   cargo test -p chiplane-models --release --test shuttle_s7_concurrent_register
//! ```
#![cfg(chiplane_shuttle)]

use chiplane_models::harness::{shuttle_pct, shuttle_random};

#[test]
fn s7_concurrent_register_pct() {
    shuttle_pct(0x57, chiplane_models::l2::s7_concurrent_register);
}

#[test]
fn s7_concurrent_register_random() {
    shuttle_random(0x57, chiplane_models::l2::s7_concurrent_register);
}
