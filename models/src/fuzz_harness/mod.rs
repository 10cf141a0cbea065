//! Fuzz target bodies, kept in the main workspace so that plain `cargo test`
//! replays the committed regression inputs (`models/tests/fuzz_replay.rs`)
//! and the cargo-fuzz workspace (`fuzz/`) calls the very same functions.
//!
//! Each target is `pub fn NAME(data: &[u8])`: it must never panic on any
//! input; a panic is a finding (libFuzzer reports it as a crash).

pub mod frame_decode;
pub mod mailbox_protocol;
pub mod slot_table;

/// Bytes that `arbitrary`'s derived `Arbitrary` decodes back to a chosen
/// value (for hand-written seed inputs). Every encoder built on it is checked
/// by a decode round trip where the seeds are generated.
#[derive(Default, Debug)]
pub struct Enc(pub Vec<u8>);

impl Enc {
    /// Variant `k` of an enum with `n` variants: the derive reads a `u32` `x`
    /// (little endian) and picks `(x * n) >> 32`.
    pub fn variant(&mut self, k: u32, n: u32) -> &mut Self {
        assert!(k < n);
        let x = (u64::from(k) << 32).div_ceil(u64::from(n));
        self.0.extend_from_slice(&(x as u32).to_le_bytes());
        self
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.0.push(u8::from(v));
        self
    }
}
pub mod seeds;
pub mod system_walk;
