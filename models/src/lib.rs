//! chiplane-models (see README.md).
pub mod fuzz_harness;
pub mod harness;
pub mod l2;
pub mod mutants;
pub mod testchip;
