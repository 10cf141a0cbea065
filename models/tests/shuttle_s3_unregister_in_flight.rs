//! shuttle model of S3 final unregister with a run in flight (design.md section 7).
//!
//! Invariants asserted (see `chiplane_models::l2`): tombstone, deferred free after the unpin, later runs rejected at once, artifact released exactly once and never during its run; the unregister resolves after the release. The test chip
//! (`chiplane_models::testchip`) asserts the `Chip` call contract at every
//! call. Capacities are shrunk (2 slots, 3 generations).
//!
//! PCT (depth 3) and random scheduling, fixed seeds, `CHIPLANE_SHUTTLE_ITERS`
//! iterations each (default 10,000). Run:
//! ```text
//! RUSTFLAGS="--cfg chiplane_shuttle" CARGO_TARGET_DIR=target/shuttle \
//!   cargo test -p chiplane-models --release --test shuttle_s3_unregister_in_flight
//! ```
#![cfg(chiplane_shuttle)]

use chiplane_models::harness::{shuttle_pct, shuttle_random};

#[test]
fn s3_unregister_in_flight_pct() {
    shuttle_pct(0x53, chiplane_models::l2::s3_unregister_in_flight);
}

#[test]
fn s3_unregister_in_flight_random() {
    shuttle_random(0x53, chiplane_models::l2::s3_unregister_in_flight);
}
