//! shuttle model of S5 sync run after async run (design.md section 7).
//!
//! Invariants asserted (see `chiplane_models::l2`): no overtaking: the chip runs tag 1 then tag 2, both on the run lane thread. The test chip
//! (`chiplane_models::testchip`) asserts the `Chip` call contract at every
//! call. Capacities are shrunk (2 slots, 3 generations).
//!
//! PCT (depth 3) and random scheduling, fixed seeds, `CHIPLANE_SHUTTLE_ITERS`
//! iterations each (default 10,000). Run:
//! ```text
//! RUSTFLAGS="--cfg chiplane_shuttle" CARGO_TARGET_DIR=target/shuttle \
//!   cargo test -p chiplane-models --release --test shuttle_s5_sync_after_async
//! ```
#![cfg(chiplane_shuttle)]

use chiplane_models::harness::{shuttle_pct, shuttle_random};

#[test]
fn s5_sync_after_async_pct() {
    shuttle_pct(0x55, chiplane_models::l2::s5_sync_after_async);
}

#[test]
fn s5_sync_after_async_random() {
    shuttle_random(0x55, chiplane_models::l2::s5_sync_after_async);
}
