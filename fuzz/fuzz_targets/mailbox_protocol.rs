//! An `arbitrary`-derived interleaving of parent, child, lane and fault
//! actions driving the pure mailbox endpoint machines over a simulated
//! shared region; the body lives in
//! `chiplane_models::fuzz_harness::mailbox_protocol` so plain `cargo test`
//! replays `fuzz/regressions/mailbox_protocol/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    chiplane_models::fuzz_harness::mailbox_protocol::mailbox_protocol(data);
});
