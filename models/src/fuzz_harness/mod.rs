//! Fuzz target bodies, kept in the main workspace so that plain `cargo test`
//! replays the committed regression inputs (`models/tests/fuzz_replay.rs`)
//! and the cargo-fuzz workspace (`fuzz/`) calls the very same functions.
//!
//! Each target is `pub fn NAME(data: &[u8])`: it must never panic on any
//! input; a panic is a finding (libFuzzer reports it as a crash).

pub mod frame_decode;
