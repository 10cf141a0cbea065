//! Target `slot_table`: an `arbitrary`-derived sequence of owner operations
//! (register, unregister, prepare finished ok/err, pin, unpin, drain) driving
//! `chiplane_core::slot::SlotTable` against the reference model of docs/protocol.md
//! section 3 (`chiplane_core::reference`, the one reference model every
//! slot-table checker uses).
//!
//! Handles are picked from what the owner has seen (current and stale
//! generations), what is registered, started or pinned, plus a foreign
//! handle, an out-of-range one and each slot's next (never issued)
//! generation, so stale, foreign and duplicate inputs are the common case.
//!
//! Checks (a panic is a crash):
//! - every reply equals the reference's; every `Drain` yields exactly the
//!   reference's owed outputs, in order;
//! - after every step: `check_invariants()`, and every slot's state,
//!   generation, pins and registrations, the lookup, the stale-completion
//!   count, `check` of every handle in the pool and `runnable` of every
//!   pinned run agree with the reference;
//! - at the end the owner drains everything (unregister every registration,
//!   finish every started prepare, unpin every pin): every artifact (each
//!   carries a unique id) was released exactly once, no slot is left in use.
//!
//! The two sides (the reference with the owner's picks, the table with the
//! owner's bookkeeping), the comparison and the teardown are
//! `chiplane_core::reference::harness`, shared with the proptest; this file
//! only decodes the operations and resolves their picks.
//!
//! Small on purpose: 3 slots, 3 generations per slot and 4 digests make a
//! short input reach `TableFull`, retirement and tombstones.

use arbitrary::{Arbitrary, Unstructured};
use chiplane_core::reference::harness::{digest as dg, ModelSide, TableSide};
use chiplane_core::slot::{SlotError, SlotLimits, SlotState};
use chiplane_core::{CallableDigest, CallableHandle, Generation, RegisterError, WorkerId};

const W: WorkerId = WorkerId(3);
pub const CAPACITY: usize = 3;
pub const GENERATION_MAX: u32 = 3;
pub const DIGESTS: u8 = 4;
/// Longest input sequence (keeps one execution short).
pub const OPS_MAX: usize = 256;

/// Which handle an operation uses (resolved against the owner's lists;
/// an empty list falls back to the whole pool).
#[derive(Arbitrary, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pick {
    /// A currently registered handle.
    Registered(u8),
    /// A prepare the owner started and has not finished.
    Started(u8),
    /// A handle a queued run holds a pin on.
    Pinned(u8),
    /// Any handle ever returned by register (possibly stale now).
    Seen(u8),
    /// A handle of another worker.
    Foreign,
    /// An index beyond the table.
    OutOfRange,
    /// Slot `n`'s next generation (never issued yet).
    NextGeneration(u8),
}

/// One owner operation.
#[derive(Arbitrary, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    Register(u8),
    Unregister(Pick),
    /// The register lane returns the prepare of `pick`: an artifact or an error.
    Finish {
        pick: Pick,
        ok: bool,
    },
    Pin(Pick),
    Unpin(Pick),
    /// The owner drains `poll()` until `None`.
    Drain,
}

/// Decode the fuzz input into operations (at most `OPS_MAX`).
pub fn decode(data: &[u8]) -> Vec<Op> {
    let mut u = Unstructured::new(data);
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < OPS_MAX {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    ops
}

/// The bytes `decode` turns into `ops` (for hand-written seeds).
pub fn encode(ops: &[Op]) -> Vec<u8> {
    let mut e = super::Enc::default();
    let pick = |e: &mut super::Enc, p: Pick| {
        match p {
            Pick::Registered(n) => e.variant(0, 7).u8(n),
            Pick::Started(n) => e.variant(1, 7).u8(n),
            Pick::Pinned(n) => e.variant(2, 7).u8(n),
            Pick::Seen(n) => e.variant(3, 7).u8(n),
            Pick::Foreign => e.variant(4, 7),
            Pick::OutOfRange => e.variant(5, 7),
            Pick::NextGeneration(n) => e.variant(6, 7).u8(n),
        };
    };
    for &op in ops {
        match op {
            Op::Register(d) => {
                e.variant(0, 6).u8(d);
            }
            Op::Unregister(p) => pick(e.variant(1, 6), p),
            Op::Finish { pick: p, ok } => {
                pick(e.variant(2, 6), p);
                e.bool(ok);
            }
            Op::Pin(p) => pick(e.variant(3, 6), p),
            Op::Unpin(p) => pick(e.variant(4, 6), p),
            Op::Drain => {
                e.variant(5, 6);
            }
        }
    }
    e.0
}

/// What an input reached (for seed generation and the smoke's own check).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Reached {
    pub tombstoned: bool,
    pub cancelled: bool,
    pub deferred_free: bool,
    pub stale_completion: bool,
    pub retired: bool,
    pub table_full: bool,
}

/// The fuzz target body.
pub fn slot_table(data: &[u8]) {
    let _ = run(&decode(data));
}

/// Run `ops`, checking everything; returns what was reached.
pub fn run(ops: &[Op]) -> Reached {
    let mut m = ModelSide::new(W, limits());
    let digests: Vec<CallableDigest> = (0..DIGESTS).map(dg).collect();
    let mut sut = TableSide::new(W, limits(), &digests);
    let mut next_id = 1;
    let mut reached = Reached::default();
    for &op in ops {
        match op {
            Op::Drain => {
                let want = m.drain();
                let got = sut.drain();
                assert_eq!(got, want, "drained outputs differ from the reference");
            }
            op => {
                let (want, got) = match op {
                    Op::Register(d) => {
                        let d = dg(d % DIGESTS);
                        (m.register(d), sut.register(d))
                    }
                    Op::Unregister(p) => {
                        let h = resolve(&m, p);
                        (m.unregister(h), sut.unregister(h))
                    }
                    Op::Finish { pick, ok } => {
                        let h = resolve(&m, pick);
                        let id = next_id;
                        next_id += 1;
                        (m.finish(h, ok, id), sut.finish(h, ok, id))
                    }
                    Op::Pin(p) => {
                        let h = resolve(&m, p);
                        (m.pin(h), sut.pin(h))
                    }
                    Op::Unpin(p) => {
                        let h = resolve(&m, p);
                        (m.unpin(h), sut.unpin(h))
                    }
                    Op::Drain => unreachable!(),
                };
                assert_eq!(got, want, "reply to {op:?} differs from the reference");
                if want == Err(SlotError::Register(RegisterError::TableFull)) {
                    reached.table_full = true;
                }
            }
        }
        sut.compare(&m);
        for s in (0..CAPACITY).map(|i| m.reference.slot(i)) {
            reached.tombstoned |= s.state == SlotState::Unregistering;
            reached.cancelled |= s.state == SlotState::Cancelling;
            reached.retired |= s.state == SlotState::Retired;
        }
        reached.stale_completion |= m.reference.stale_completions() > 0;
        reached.deferred_free |= m.reference.deferred_frees() > 0;
    }
    sut.teardown();
    reached
}

fn limits() -> SlotLimits {
    SlotLimits { capacity: CAPACITY, generation_max: Generation(GENERATION_MAX) }
}

/// The handle `p` picks from what the owner knows (an empty list falls back
/// to the whole pool).
fn resolve(m: &ModelSide, p: Pick) -> CallableHandle {
    let from = |v: &[CallableHandle], n: u8| -> CallableHandle {
        if v.is_empty() {
            let pool = m.pool();
            pool[n as usize % pool.len()]
        } else {
            v[n as usize % v.len()]
        }
    };
    match p {
        Pick::Registered(n) => from(&m.registered(), n),
        Pick::Started(n) => from(&m.started, n),
        Pick::Pinned(n) => from(&m.pinned, n),
        Pick::Seen(n) => from(&m.seen, n),
        Pick::Foreign => m.foreign(),
        Pick::OutOfRange => m.out_of_range(),
        Pick::NextGeneration(n) => m.next_generation(n as usize % CAPACITY),
    }
}
