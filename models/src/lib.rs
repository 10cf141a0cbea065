//! chiplane-models (see README.md).
pub mod fuzz_harness;
