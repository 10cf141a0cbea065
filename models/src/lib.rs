//! chiplane-models (see README.md).
pub mod fuzz_harness;
pub mod mailbox_backend;
