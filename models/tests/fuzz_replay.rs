//! Replays the committed fuzz inputs through the fuzz target bodies (so plain
//! `cargo test` catches a regression without cargo-fuzz or nightly), and runs
//! a short deterministic smoke: valid encodings of every frame kind mutated
//! by a fixed-seed generator.

use chiplane_models::fuzz_harness::frame_decode::{frame_decode, seed_frames};
use std::path::PathBuf;

fn fuzz_dir(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz").join(sub)
}

fn files(dir: &PathBuf) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    out.sort();
    out
}

#[test]
fn replay_frame_decode_regressions() {
    let inputs = files(&fuzz_dir("regressions/frame_decode"));
    assert!(!inputs.is_empty(), "no regression inputs committed");
    for p in inputs {
        let data = std::fs::read(&p).unwrap();
        eprintln!("replay {}", p.display());
        frame_decode(&data);
    }
}

#[test]
fn replay_frame_decode_seeds() {
    let inputs = files(&fuzz_dir("seeds/frame_decode"));
    assert!(inputs.len() >= seed_frames().len(), "seed corpus out of date: run the ignored test generate_seeds");
    for p in inputs {
        frame_decode(&std::fs::read(&p).unwrap());
    }
}

/// xorshift64*: a fixed-seed byte generator (same seed, same inputs).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn smoke_frame_decode_mutations() {
    let seeds: Vec<Vec<u8>> = seed_frames().iter().map(|f| f.encode().unwrap()).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut decoded = 0usize;
    for i in 0..2000 {
        let mut b = seeds[i % seeds.len()].clone();
        for _ in 0..1 + rng.below(4) {
            let n = b.len();
            match rng.below(6) {
                0 if n > 0 => {
                    let at = rng.below(n);
                    b[at] ^= 1 << rng.below(8);
                }
                1 if n > 0 => {
                    let at = rng.below(n);
                    b[at] = rng.next() as u8;
                }
                2 if n >= 4 => {
                    let at = rng.below(n - 3);
                    let v = if rng.below(2) == 0 { rng.next() as u32 } else { rng.below(300) as u32 };
                    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
                3 if n > 0 => b.truncate(rng.below(n)),
                4 => {
                    let at = rng.below(n + 1);
                    b.insert(at, rng.next() as u8);
                }
                5 if n > 0 => {
                    b.remove(rng.below(n));
                }
                _ => {}
            }
        }
        if chiplane_core::frame::Frame::decode(&b).is_ok() {
            decoded += 1;
        }
        frame_decode(&b);
    }
    // The smoke must reach past the header: some mutants still decode.
    assert!(decoded > 0, "no mutated input decoded; the smoke only exercises the header checks");
}

/// Regenerates `fuzz/seeds/frame_decode/` (one valid encoding per seed frame):
/// `cargo test -p chiplane-models --test fuzz_replay -- --ignored generate_seeds`.
#[test]
#[ignore]
fn generate_seeds() {
    let dir = fuzz_dir("seeds/frame_decode");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, f) in seed_frames().iter().enumerate() {
        let kind = format!("{:?}", f.kind()).to_lowercase();
        std::fs::write(dir.join(format!("{i:02}-{kind}.bin")), f.encode().unwrap()).unwrap();
    }
}
