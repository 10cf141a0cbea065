//! State fingerprints and copy-on-write parts.
//!
//! A [`Part`] is one component of [`super::System`] behind an `Arc`: forking
//! a state (cloning the system) copies pointers, and an action deep-copies
//! only the parts it changes (`Arc::make_mut`). Each part caches its 128-bit
//! fingerprint, computed from the part's fields through `Hash` (never a
//! `Debug` rendering) and recomputed only after the part was changed.

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// Two 64-bit lanes of multiply-xorshift mixing, one word at a time.
///
/// For a fixed lane state each step is injective in the word it absorbs and
/// bijective in the lane state, so two inputs of the same length that differ
/// in one word never collide; distinct inputs otherwise collide with
/// probability about 2^-128 per pair. A collision could only make the
/// checker *skip* a state (a missed state, never a false violation).
#[derive(Clone, Copy, Debug)]
pub struct FpHasher {
    a: u64,
    b: u64,
    words: u64,
}

const K_A: u64 = 0x9e37_79b9_7f4a_7c15;
const K_B: u64 = 0xc2b2_ae3d_27d4_eb4f;

impl Default for FpHasher {
    fn default() -> Self {
        FpHasher { a: 0x243f_6a88_85a3_08d3, b: 0x1319_8a2e_0370_7344, words: 0 }
    }
}

impl FpHasher {
    #[inline]
    fn word(&mut self, x: u64) {
        let a = (self.a ^ x).wrapping_mul(K_A);
        self.a = a ^ (a >> 32);
        let b = (self.b ^ x.rotate_left(29)).wrapping_mul(K_B);
        self.b = b ^ (b >> 31);
        self.words += 1;
    }

    /// The 128-bit fingerprint of everything written so far.
    pub fn finish128(&self) -> u128 {
        let a = fmix(self.a ^ self.words);
        let b = fmix(self.b ^ a.rotate_left(17));
        (u128::from(a) << 64) | u128::from(b)
    }
}

/// MurmurHash3's 64-bit finaliser (full avalanche).
fn fmix(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

impl Hasher for FpHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(last));
        }
        // The length separates "ab" + "c" from "a" + "bc".
        self.word(bytes.len() as u64 | 1 << 63);
    }
    fn write_u8(&mut self, i: u8) {
        self.word(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.word(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.word(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.word(i);
    }
    fn write_u128(&mut self, i: u128) {
        self.word(i as u64);
        self.word((i >> 64) as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.word(i as u64);
    }
    fn finish(&self) -> u64 {
        self.finish128() as u64
    }
}

/// The 128-bit fingerprint of `v`'s fields.
pub fn fp128<T: Hash + ?Sized>(v: &T) -> u128 {
    let mut h = FpHasher::default();
    v.hash(&mut h);
    h.finish128()
}

/// One copy-on-write component of the system with its cached fingerprint.
#[derive(Clone, Debug)]
pub struct Part<T> {
    arc: Arc<T>,
    fp: Cell<Option<u128>>,
}

impl<T: Clone + Hash> Part<T> {
    pub fn new(v: T) -> Self {
        Part { arc: Arc::new(v), fp: Cell::new(None) }
    }

    /// Change the part (copies it first if another state shares it).
    pub fn edit(&mut self) -> &mut T {
        self.fp.set(None);
        Arc::make_mut(&mut self.arc)
    }

    /// The part's fingerprint (cached until the next `edit`).
    pub fn fp(&self) -> u128 {
        if let Some(f) = self.fp.get() {
            return f;
        }
        let f = fp128(&*self.arc);
        self.fp.set(Some(f));
        f
    }
}

impl<T: Clone + Hash> Hash for Part<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u128(self.fp());
    }
}

impl<T: Clone + Hash> Part<T> {
    /// Edited since its fingerprint was last taken.
    pub fn dirty(&self) -> bool {
        self.fp.get().is_none()
    }
}

impl<T> Deref for Part<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.arc
    }
}

/// A hasher for sets of fingerprints (already uniformly distributed: it
/// keeps the low 64 bits).
#[derive(Default, Clone, Copy, Debug)]
pub struct FpKeyHasher(u64);

impl Hasher for FpKeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, i: u128) {
        self.0 = i as u64;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// `HashSet<u128, FpKeys>`: a set of fingerprints.
pub type FpKeys = std::hash::BuildHasherDefault<FpKeyHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_separate_close_inputs() {
        let mut seen = std::collections::HashSet::new();
        for a in 0u32..64 {
            for b in 0u32..64 {
                assert!(seen.insert(fp128(&(a, b))), "({a}, {b}) collides");
                assert!(seen.insert(fp128(&vec![a, b])), "[{a}, {b}] collides");
            }
        }
        assert_ne!(fp128(&("ab", "c")), fp128(&("a", "bc")));
        assert_ne!(fp128(&Some(0u8)), fp128(&None::<u8>));
    }

    #[test]
    fn a_part_recomputes_its_fingerprint_only_after_an_edit() {
        let mut p = Part::new(vec![1u32, 2]);
        let before = p.fp();
        let shared = p.clone();
        p.edit().push(3);
        assert_ne!(p.fp(), before);
        assert_eq!(shared.fp(), before, "the fork kept its own copy");
        assert_eq!(*shared, vec![1, 2]);
    }
}
