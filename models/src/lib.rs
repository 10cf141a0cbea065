//! chiplane-models: model checking of chiplane.
//!
//! - [`system`]: the composed pure system (core's endpoints and chip side,
//!   the shared region, the drivers) driven one action at a time;
//! - [`exhaustive`]: every interleaving of that system within bounds;
//! - [`fuzz_harness`]: the bodies of the fuzz targets (replayed by `cargo test`);
//! - `tests/loom_*.rs`, `tests/shuttle_*.rs`: the concurrent layer under
//!   loom and shuttle.
pub mod exhaustive;
pub mod fuzz_harness;
pub mod harness;
pub mod l2;
pub mod mailbox_backend;
pub mod mutants;
pub mod system;
pub mod testchip;
