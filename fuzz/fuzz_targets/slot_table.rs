//! An `arbitrary`-derived sequence of owner operations driving the slot
//! table against a reference model; the body lives in
//! `chiplane_models::fuzz_harness::slot_table` so plain `cargo test`
//! replays `fuzz/regressions/slot_table/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    chiplane_models::fuzz_harness::slot_table::slot_table(data);
});
