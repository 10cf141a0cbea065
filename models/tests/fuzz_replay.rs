//! Replays the committed fuzz inputs through the fuzz target bodies (so plain
//! `cargo test` catches a regression without cargo-fuzz or nightly), and runs
//! a short deterministic smoke of each target: for `frame_decode`, valid
//! encodings of every frame kind mutated by a fixed-seed generator; for
//! `slot_table` and `mailbox_protocol`, fixed-seed random bytes (decoded by
//! `arbitrary` into action sequences) and mutations of the seed scripts.

use chiplane_models::fuzz_harness::frame_decode::{frame_decode, seed_frames};
use chiplane_models::fuzz_harness::{mailbox_protocol, seeds, slot_table, system_walk};
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

fn replay_dir(sub: &str, body: fn(&[u8])) {
    let inputs = files(&fuzz_dir(sub));
    assert!(!inputs.is_empty(), "no inputs committed in fuzz/{sub}");
    for p in inputs {
        let data = std::fs::read(&p).unwrap();
        eprintln!("replay {}", p.display());
        body(&data);
    }
}

#[test]
fn replay_frame_decode_regressions() {
    replay_dir("regressions/frame_decode", frame_decode);
}

#[test]
fn replay_slot_table_regressions_and_seeds() {
    replay_dir("regressions/slot_table", slot_table::slot_table);
    replay_dir("seeds/slot_table", slot_table::slot_table);
}

#[test]
fn replay_mailbox_protocol_regressions_and_seeds() {
    replay_dir("regressions/mailbox_protocol", mailbox_protocol::mailbox_protocol);
    replay_dir("seeds/mailbox_protocol", mailbox_protocol::mailbox_protocol);
}

#[test]
fn replay_system_walk_regressions_and_seeds() {
    replay_dir("regressions/system_walk", system_walk::system_walk);
    replay_dir("seeds/system_walk", system_walk::system_walk);
}

/// The system_walk seeds are the committed files and, together, reach a
/// deferred TASK_DONE and a control during TASK_RUNNING.
#[test]
fn system_walk_seeds_reach_their_states() {
    use arbitrary::{Arbitrary, Unstructured};
    let (mut deferred, mut control_during_task) = (false, false);
    for (name, bytes) in seeds::system_walk_seeds() {
        let file = fuzz_dir("seeds/system_walk").join(name);
        assert_eq!(std::fs::read(&file).ok(), Some(bytes.clone()), "{name}: seed file out of date; run generate_seeds");
        let bounds = system_walk::Bounds::arbitrary(&mut Unstructured::new(&bytes[..8])).unwrap();
        let s = system_walk::walk(bounds.config(), &bytes[8..]);
        deferred |= s.saw(chiplane_models::system::Named::DeferredTaskDone);
        control_during_task |= s.saw(chiplane_models::system::Named::ControlDuringTask);
    }
    assert!(
        deferred && control_during_task,
        "seeds reach: deferred {deferred}, control during task {control_during_task}"
    );
}

/// The seed scripts decode back to themselves and reach what their names
/// say (a control during TASK_RUNNING, a deferred TASK_DONE, a tombstoned
/// slot, a cancelled prepare, ...), and the committed seed files are theirs.
#[test]
fn seed_scripts_reach_their_states() {
    for (name, script, reached) in seeds::mailbox_seeds() {
        let bytes = mailbox_protocol::encode(&script);
        assert_eq!(mailbox_protocol::decode(&bytes), script, "{name}: encoder disagrees with arbitrary");
        let r = mailbox_protocol::run(&script);
        assert!(reached(&r), "mailbox seed {name} no longer reaches its state: {r:?}");
        let file = fuzz_dir("seeds/mailbox_protocol").join(name);
        assert_eq!(std::fs::read(&file).ok(), Some(bytes), "{name}: seed file out of date; run generate_seeds");
    }
    for (name, script, reached) in seeds::slot_seeds() {
        let bytes = slot_table::encode(&script);
        assert_eq!(slot_table::decode(&bytes), script, "{name}: encoder disagrees with arbitrary");
        let r = slot_table::run(&script);
        assert!(reached(&r), "slot seed {name} no longer reaches its state: {r:?}");
        let file = fuzz_dir("seeds/slot_table").join(name);
        assert_eq!(std::fs::read(&file).ok(), Some(bytes), "{name}: seed file out of date; run generate_seeds");
    }
}

/// Fixed-seed random bytes plus byte mutations of the seed scripts.
fn smoke(seed: u64, n: usize, seeds: &[Vec<u8>], body: fn(&[u8])) {
    let mut rng = Rng(seed);
    for i in 0..n {
        let data: Vec<u8> = if i % 2 == 0 || seeds.is_empty() {
            let len = rng.below(400);
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            let mut b = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(3) {
                let n = b.len();
                match rng.below(3) {
                    0 if n > 0 => {
                        let at = rng.below(n);
                        b[at] = rng.next() as u8;
                    }
                    1 if n > 0 => b.truncate(rng.below(n)),
                    _ => {
                        let at = rng.below(n + 1);
                        let other = &seeds[rng.below(seeds.len())];
                        let from = rng.below(other.len().max(1));
                        let chunk: Vec<u8> = other.iter().skip(from).take(rng.below(40)).copied().collect();
                        b.splice(at..at, chunk);
                    }
                }
            }
            b
        };
        if std::panic::catch_unwind(|| body(&data)).is_err() {
            let path = std::env::temp_dir().join(format!("fuzz-smoke-failure-{seed:x}-{i}"));
            std::fs::write(&path, &data).unwrap();
            panic!("smoke input {i} crashed; saved to {} (replay it with the target body)", path.display());
        }
    }
}

#[test]
fn smoke_slot_table() {
    let seeds: Vec<Vec<u8>> = seeds::slot_seeds().iter().map(|(_, s, _)| slot_table::encode(s)).collect();
    smoke(0x5107_7ab1e, 3000, &seeds, slot_table::slot_table);
}

#[test]
fn smoke_system_walk() {
    let seeds: Vec<Vec<u8>> = seeds::system_walk_seeds().into_iter().map(|(_, b)| b).collect();
    smoke(0x5157_e3a1, 1500, &seeds, system_walk::system_walk);
}

#[test]
fn smoke_mailbox_protocol() {
    let seeds: Vec<Vec<u8>> = seeds::mailbox_seeds().iter().map(|(_, s, _)| mailbox_protocol::encode(s)).collect();
    smoke(0x3a11_b0c5, 3000, &seeds, mailbox_protocol::mailbox_protocol);
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

/// Regenerates `fuzz/seeds/<target>/` for every target (frame_decode: one
/// valid encoding per seed frame; slot_table, mailbox_protocol: the encoded
/// seed scripts of `fuzz_harness::seeds`):
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
    let dir = fuzz_dir("seeds/slot_table");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, script, _) in seeds::slot_seeds() {
        std::fs::write(dir.join(name), slot_table::encode(&script)).unwrap();
    }
    let dir = fuzz_dir("seeds/mailbox_protocol");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, script, _) in seeds::mailbox_seeds() {
        std::fs::write(dir.join(name), mailbox_protocol::encode(&script)).unwrap();
    }
    let dir = fuzz_dir("seeds/system_walk");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds::system_walk_seeds() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let dir = fuzz_dir("regressions/mailbox_protocol");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, script) in seeds::mailbox_regressions() {
        std::fs::write(dir.join(name), mailbox_protocol::encode(&script)).unwrap();
    }
}

/// The committed inputs of the two core bugs the target found are those of
/// `seeds::mailbox_regressions` (replayed by the test above).
#[test]
fn mailbox_protocol_regressions_up_to_date() {
    for (name, script) in seeds::mailbox_regressions() {
        let file = fuzz_dir("regressions/mailbox_protocol").join(name);
        let bytes = mailbox_protocol::encode(&script);
        assert_eq!(std::fs::read(&file).ok(), Some(bytes.clone()), "{name}: file out of date; run generate_seeds");
        mailbox_protocol::mailbox_protocol(&bytes);
    }
}
