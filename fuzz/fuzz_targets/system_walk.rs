//! The fuzz input picks bounds and a walk through the composed pure system
//! (`chiplane_models::system`); the body lives in
//! `chiplane_models::fuzz_harness::system_walk` so plain `cargo test`
//! replays `fuzz/regressions/system_walk/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    chiplane_models::fuzz_harness::system_walk::system_walk(data);
});
