//! Arbitrary bytes into `Frame::decode` / `Frame::decode_field`; the body
//! lives in `chiplane_models::fuzz_harness::frame_decode` so plain
//! `cargo test` replays `fuzz/regressions/frame_decode/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    chiplane_models::fuzz_harness::frame_decode::frame_decode(data);
});
