//! chiplane-models: model checking of chiplane.
//!
//! - [`system`]: the composed pure system (core's endpoints and chip side,
//!   the shared region, the drivers) driven one action at a time;
//! - [`exhaustive`]: every interleaving of that system within bounds;
//! - [`fuzz_harness`]: the bodies of the fuzz targets (replayed by `cargo test`);
//! - [`l2`], [`l3`]: the scenarios of docs/protocol.md section 7 on the production
//!   concurrent layer (the L2 node and worker; the L3 link, serve loop,
//!   node backend and worker), run by `tests/loom.rs` and `tests/shuttle.rs`
//!   (one table-driven runner per checker).
pub mod exhaustive;
pub mod fuzz_harness;
pub mod harness;
pub mod l2;
pub mod l3;
pub mod mutants;
pub mod scenarios;
pub mod system;
pub mod testchip;
