//! loom model of S3 final unregister with a run in flight (design.md section 7).
//!
//! Invariants asserted (see `chiplane_models::l2`): tombstone, deferred free after the unpin, later runs rejected at once, artifact released exactly once and never during its run; the unregister resolves after the release. The test chip
//! (`chiplane_models::testchip`) asserts the `Chip` call contract at every
//! call. Capacities are shrunk (2 slots, 3 generations) to keep the state
//! space small.
//!
//! Run (unbounded it takes over two minutes, so CI bounds preemptions with
//! `LOOM_MAX_PREEMPTIONS=2`; without the variable it is exhaustive):
//! ```text
//! RUSTFLAGS="--cfg chiplane_loom" CARGO_TARGET_DIR=target/loom \
//!   cargo test -p chiplane-models --release --test loom_s3_unregister_in_flight
//! ```
#![cfg(chiplane_loom)]

use chiplane_models::harness::loom_check;

#[test]
fn s3_unregister_in_flight() {
    loom_check(chiplane_models::l2::s3_unregister_in_flight);
}
