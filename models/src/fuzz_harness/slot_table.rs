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
//! Small on purpose: 3 slots, 3 generations per slot and 4 digests make a
//! short input reach `TableFull`, retirement and tombstones.

use arbitrary::{Arbitrary, Unstructured};
use chiplane_core::reference::{Owed, SlotModel};
use chiplane_core::slot::{SlotError, SlotInput, SlotLimits, SlotOutput, SlotReply, SlotState, SlotTable};
use chiplane_core::{
    CallableDigest, CallableHandle, ChipError, ChipErrorKind, Generation, RegisterError, SlotIndex, WorkerId,
};

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
    let mut m = Model::new();
    let mut sut = Sut::new();
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
                        let d = d % DIGESTS;
                        (m.register(d), sut.register(d))
                    }
                    Op::Unregister(p) => {
                        let h = m.resolve(p);
                        (m.unregister(h), sut.unregister(h))
                    }
                    Op::Finish { pick, ok } => {
                        let h = m.resolve(pick);
                        let id = m.next_id;
                        m.next_id += 1;
                        (m.finish(h, ok, id), sut.finish(h, ok, id))
                    }
                    Op::Pin(p) => {
                        let h = m.resolve(p);
                        (m.pin(h), sut.pin(h))
                    }
                    Op::Unpin(p) => {
                        let h = m.resolve(p);
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
        compare(&sut, &m);
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

fn dg(n: u8) -> CallableDigest {
    CallableDigest([n; 32])
}

fn h(index: usize, generation: u32) -> CallableHandle {
    CallableHandle { worker: W, index: SlotIndex(index as u32), generation: Generation(generation) }
}

fn chip_err(id: u64) -> ChipError {
    ChipError::new(ChipErrorKind::Injected, format!("prepare {id} failed"))
}

/// An artifact with a unique id; not `Clone`: the table can only move it.
#[derive(Debug)]
struct Art(u64);

type Out = Owed;

fn out_of(o: SlotOutput<Art>) -> Out {
    Owed::of(&o, |a| a.0)
}

fn limits() -> SlotLimits {
    SlotLimits { capacity: CAPACITY, generation_max: Generation(GENERATION_MAX) }
}

// ---- reference model -------------------------------------------------------

/// The reference (`SlotModel`) plus the owner's picks: what it has seen,
/// started and pinned.
#[derive(Debug)]
struct Model {
    reference: SlotModel,
    next_id: u64,
    /// Every handle a register returned.
    seen: Vec<CallableHandle>,
    /// Prepares the owner started (drained `StartPrepare`) and has not finished.
    started: Vec<CallableHandle>,
    /// Pins held by queued runs.
    pinned: Vec<CallableHandle>,
}

impl Model {
    fn new() -> Self {
        Model {
            reference: SlotModel::new(W, limits()),
            next_id: 1,
            seen: Vec::new(),
            started: Vec::new(),
            pinned: Vec::new(),
        }
    }

    fn generation(&self, i: usize) -> u32 {
        self.reference.slot(i).generation.0
    }

    /// Handles to pick from: those seen (current and stale), plus a foreign
    /// one, an out-of-range one and, per slot, its next generation.
    fn pool(&self) -> Vec<CallableHandle> {
        let mut v = self.seen.clone();
        v.push(CallableHandle { worker: WorkerId(99), ..h(0, 1) });
        v.push(h(CAPACITY, 1));
        v.extend((0..CAPACITY).map(|i| h(i, self.generation(i) + 1)));
        v
    }

    fn resolve(&self, p: Pick) -> CallableHandle {
        let from = |v: &[CallableHandle], n: u8| -> CallableHandle {
            if v.is_empty() {
                let pool = self.pool();
                pool[n as usize % pool.len()]
            } else {
                v[n as usize % v.len()]
            }
        };
        match p {
            Pick::Registered(n) => from(&self.reference.registered(), n),
            Pick::Started(n) => from(&self.started, n),
            Pick::Pinned(n) => from(&self.pinned, n),
            Pick::Seen(n) => from(&self.seen, n),
            Pick::Foreign => CallableHandle { worker: WorkerId(99), ..h(0, 1) },
            Pick::OutOfRange => h(CAPACITY, 1),
            Pick::NextGeneration(n) => {
                let i = n as usize % CAPACITY;
                h(i, self.generation(i) + 1)
            }
        }
    }

    fn register(&mut self, d: u8) -> Result<SlotReply, SlotError> {
        let r = self.reference.register(dg(d));
        if let Ok(SlotReply::Registered { handle, fresh: true }) = r {
            self.seen.push(handle);
        }
        r
    }

    fn unregister(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        self.reference.unregister(handle)
    }

    fn finish(&mut self, handle: CallableHandle, ok: bool, id: u64) -> Result<SlotReply, SlotError> {
        if let Some(k) = self.started.iter().position(|&s| s == handle) {
            self.started.remove(k);
        }
        self.reference.finish(handle, if ok { Ok(id) } else { Err(chip_err(id)) })
    }

    fn pin(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        let r = self.reference.pin(handle);
        if r.is_ok() {
            self.pinned.push(handle);
        }
        r
    }

    fn unpin(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        let r = self.reference.unpin(handle);
        if r.is_ok() {
            let k = self.pinned.iter().position(|&p| p == handle).expect("model: a pin is held for a pinned slot");
            self.pinned.remove(k);
        }
        r
    }

    fn drain(&mut self) -> Vec<Out> {
        let drained = self.reference.drain_owed();
        for o in &drained {
            if let Owed::Start(handle, _) = o {
                self.started.push(*handle);
            }
        }
        drained
    }
}

// ---- system under test -----------------------------------------------------

/// The table plus the owner's own bookkeeping, kept from the table's replies
/// and outputs only (the teardown never looks at the model).
struct Sut {
    table: SlotTable<Art>,
    /// Ids of every artifact handed to the table.
    created: Vec<u64>,
    /// Ids of every artifact the table handed back through `Release`.
    released: Vec<u64>,
    /// One entry per live registration.
    registrations: Vec<CallableHandle>,
    started: Vec<CallableHandle>,
    pinned: Vec<CallableHandle>,
}

impl Sut {
    fn new() -> Self {
        Sut {
            table: SlotTable::new(W, limits()),
            created: Vec::new(),
            released: Vec::new(),
            registrations: Vec::new(),
            started: Vec::new(),
            pinned: Vec::new(),
        }
    }

    fn handle(&mut self, input: SlotInput<Art>) -> Result<SlotReply, SlotError> {
        let r = self.table.handle(input);
        if let Err(e) = self.table.check_invariants() {
            panic!("slot table invariant broken: {e}");
        }
        r
    }

    fn drain(&mut self) -> Vec<Out> {
        let mut v = Vec::new();
        while let Some(o) = self.table.poll() {
            let o = out_of(o);
            match &o {
                Out::Start(handle, _) => self.started.push(*handle),
                Out::Release(_, id) => {
                    assert!(!self.released.contains(id), "artifact {id} released twice");
                    self.released.push(*id);
                }
                _ => {}
            }
            v.push(o);
        }
        v
    }

    fn forget(list: &mut Vec<CallableHandle>, handle: CallableHandle) {
        if let Some(k) = list.iter().position(|&x| x == handle) {
            list.remove(k);
        }
    }

    fn register(&mut self, d: u8) -> Result<SlotReply, SlotError> {
        let r = self.handle(SlotInput::Register { digest: dg(d) });
        if let Ok(SlotReply::Registered { handle, .. }) = r {
            self.registrations.push(handle);
        }
        r
    }

    fn unregister(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        let r = self.handle(SlotInput::Unregister { handle });
        if r.is_ok() {
            Self::forget(&mut self.registrations, handle);
        }
        r
    }

    fn finish(&mut self, handle: CallableHandle, ok: bool, id: u64) -> Result<SlotReply, SlotError> {
        Self::forget(&mut self.started, handle);
        let result = if ok {
            self.created.push(id);
            Ok(Art(id))
        } else {
            Err(chip_err(id))
        };
        self.handle(SlotInput::PrepareFinished { handle, result })
    }

    fn pin(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        let r = self.handle(SlotInput::Pin { handle });
        if r.is_ok() {
            self.pinned.push(handle);
        }
        r
    }

    fn unpin(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        let r = self.handle(SlotInput::Unpin { handle });
        if r.is_ok() {
            Self::forget(&mut self.pinned, handle);
        }
        r
    }

    /// Drain everything the way an owner shutting down would, then check that
    /// every artifact was released exactly once and no slot leaked.
    fn teardown(mut self) {
        let _ = self.drain();
        for handle in std::mem::take(&mut self.registrations) {
            let r = self.handle(SlotInput::Unregister { handle });
            assert!(matches!(r, Ok(SlotReply::Unregistered { .. })), "teardown unregister {handle:?}: {r:?}");
        }
        let _ = self.drain();
        let first_id = 1 + self.created.iter().max().copied().unwrap_or(0).max(1_000_000);
        for (handle, id) in std::mem::take(&mut self.started).into_iter().zip(first_id..) {
            // A prepare finished early by a step is now a duplicate (typed
            // error); its artifact must still come back.
            let _ = self.finish(handle, true, id);
        }
        let _ = self.drain();
        for handle in std::mem::take(&mut self.pinned) {
            assert_eq!(self.handle(SlotInput::Unpin { handle }), Ok(SlotReply::Unpinned), "teardown unpin {handle:?}");
        }
        let _ = self.drain();
        assert!(self.table.poll().is_none());
        assert_eq!(self.table.live_slots(), 0, "slot leaked after teardown");
        for i in 0..CAPACITY {
            let index = SlotIndex(i as u32);
            let state = self.table.state(index).expect("slot exists");
            assert!(matches!(state, SlotState::Empty | SlotState::Retired), "slot {i} left {state:?}");
            assert_eq!(self.table.pins(index), 0, "slot {i} left pinned");
            assert_eq!(self.table.registrations(index), 0, "slot {i} left registered");
        }
        for d in 0..DIGESTS {
            assert_eq!(self.table.lookup(&dg(d)), None, "digest {d} left in the lookup");
        }
        let mut created = self.created.clone();
        let mut released = self.released.clone();
        created.sort_unstable();
        released.sort_unstable();
        assert_eq!(released, created, "every artifact must be released exactly once (leak or double release)");
    }
}

/// After every step the table agrees with the reference in every observable.
fn compare(sut: &Sut, m: &Model) {
    let t = &sut.table;
    let r = &m.reference;
    let digests: Vec<CallableDigest> = (0..DIGESTS).map(dg).collect();
    // Invariants, every slot's state / generation / pins / registrations,
    // live slots, stale completions and the lookup of every digest.
    if let Err(e) = r.compare_table(t, &digests) {
        panic!("table differs from the reference: {e}");
    }
    for handle in m.pool() {
        assert_eq!(t.check(handle), r.check(handle).map(|i| r.slot(i).state), "check({handle:?})");
    }
    for &handle in &m.pinned {
        assert_eq!(t.runnable(handle).map(|a| a.map(|a| a.0)), r.runnable(handle), "runnable({handle:?})");
    }
}
