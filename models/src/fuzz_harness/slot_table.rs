//! Target `slot_table`: an `arbitrary`-derived sequence of owner operations
//! (register, unregister, prepare finished ok/err, pin, unpin, drain) driving
//! `chiplane_core::slot::SlotTable` against a small reference model of
//! design.md section 3 written here.
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

use std::collections::{BTreeMap, VecDeque};

use arbitrary::{Arbitrary, Unstructured};
use chiplane_core::slot::{SlotError, SlotInput, SlotLimits, SlotOutput, SlotReply, SlotState, SlotTable};
use chiplane_core::{
    CallableDigest, ChipError, ChipErrorKind, Generation, Handle, HandleError, RegisterError, RunError, SlotIndex,
    UnregisterError, WorkerId,
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
        for s in &m.slots {
            reached.tombstoned |= s.state == SlotState::Unregistering;
            reached.cancelled |= s.state == SlotState::Cancelling;
            reached.retired |= s.state == SlotState::Retired;
        }
        reached.stale_completion |= m.stale > 0;
        reached.deferred_free |= m.deferred_frees > 0;
    }
    sut.teardown();
    reached
}

fn dg(n: u8) -> CallableDigest {
    CallableDigest([n; 32])
}

fn h(index: usize, generation: u32) -> Handle {
    Handle { worker: W, index: SlotIndex(index as u32), generation: Generation(generation) }
}

fn chip_err(id: u64) -> ChipError {
    ChipError::new(ChipErrorKind::Injected, format!("prepare {id} failed"))
}

/// An artifact with a unique id; not `Clone`: the table can only move it.
#[derive(Debug)]
struct Art(u64);

/// One owed output, comparable.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Out {
    Start(Handle, CallableDigest),
    Cancel(Handle),
    Release(Handle, u64),
    Settled(Handle, Result<(), RegisterError>),
    Freed(Handle),
}

fn out_of(o: SlotOutput<Art>) -> Out {
    match o {
        SlotOutput::StartPrepare { handle, digest } => Out::Start(handle, digest),
        SlotOutput::Cancel { handle } => Out::Cancel(handle),
        SlotOutput::Release { handle, artifact } => Out::Release(handle, artifact.0),
        SlotOutput::Settled { handle, result } => Out::Settled(handle, result),
        SlotOutput::Freed { handle } => Out::Freed(handle),
    }
}

// ---- reference model -------------------------------------------------------

#[derive(Clone, Debug)]
struct RSlot {
    state: SlotState,
    generation: u32,
    digest: u8,
    registrations: u32,
    pins: u32,
    prepare_in_flight: bool,
    artifact: Option<u64>,
    error: Option<ChipError>,
}

#[derive(Debug)]
struct Model {
    slots: Vec<RSlot>,
    lookup: BTreeMap<u8, usize>,
    owed: VecDeque<Out>,
    stale: u64,
    deferred_frees: u64,
    next_id: u64,
    /// Every handle a register returned.
    seen: Vec<Handle>,
    /// Prepares the owner started (drained `StartPrepare`) and has not finished.
    started: Vec<Handle>,
    /// Pins held by queued runs.
    pinned: Vec<Handle>,
}

impl Model {
    fn new() -> Self {
        let slot = RSlot {
            state: SlotState::Empty,
            generation: 0,
            digest: 0,
            registrations: 0,
            pins: 0,
            prepare_in_flight: false,
            artifact: None,
            error: None,
        };
        Model {
            slots: vec![slot; CAPACITY],
            lookup: BTreeMap::new(),
            owed: VecDeque::new(),
            stale: 0,
            deferred_frees: 0,
            next_id: 1,
            seen: Vec::new(),
            started: Vec::new(),
            pinned: Vec::new(),
        }
    }

    fn cur(&self, i: usize) -> Handle {
        h(i, self.slots[i].generation)
    }

    /// Handles to pick from: those seen (current and stale), plus a foreign
    /// one, an out-of-range one and, per slot, its next generation.
    fn pool(&self) -> Vec<Handle> {
        let mut v = self.seen.clone();
        v.push(Handle { worker: WorkerId(99), ..h(0, 1) });
        v.push(h(CAPACITY, 1));
        v.extend((0..CAPACITY).map(|i| h(i, self.slots[i].generation + 1)));
        v
    }

    fn resolve(&self, p: Pick) -> Handle {
        let from = |v: &[Handle], n: u8| -> Handle {
            if v.is_empty() {
                let pool = self.pool();
                pool[n as usize % pool.len()]
            } else {
                v[n as usize % v.len()]
            }
        };
        match p {
            Pick::Registered(n) => {
                let reg: Vec<Handle> = self.lookup.values().map(|&i| self.cur(i)).collect();
                from(&reg, n)
            }
            Pick::Started(n) => from(&self.started, n),
            Pick::Pinned(n) => from(&self.pinned, n),
            Pick::Seen(n) => from(&self.seen, n),
            Pick::Foreign => Handle { worker: WorkerId(99), ..h(0, 1) },
            Pick::OutOfRange => h(CAPACITY, 1),
            Pick::NextGeneration(n) => {
                let i = n as usize % CAPACITY;
                h(i, self.slots[i].generation + 1)
            }
        }
    }

    fn check(&self, handle: Handle) -> Result<usize, HandleError> {
        if handle.worker != W {
            return Err(HandleError::Foreign { expected: W, got: handle.worker });
        }
        let i = handle.index.0 as usize;
        if i >= CAPACITY {
            return Err(HandleError::OutOfRange);
        }
        let current = Generation(self.slots[i].generation);
        if handle.generation != current {
            return Err(HandleError::Stale { current });
        }
        Ok(i)
    }

    fn runnable(&self, handle: Handle) -> Result<Option<u64>, RunError> {
        let i = self.check(handle).map_err(RunError::Handle)?;
        let s = &self.slots[i];
        match (s.state, s.artifact) {
            (SlotState::Prepared, a) => Ok(a),
            (SlotState::Preparing, _) => Ok(None),
            (SlotState::Failed, _) | (SlotState::Unregistering, None) => {
                Err(RunError::PrepareFailed(s.error.clone().expect("model: FAILED holds its error")))
            }
            (SlotState::Unregistering, a) => Ok(a),
            (SlotState::Cancelling, _) => Err(RunError::Cancelled),
            (state, _) => Err(RunError::NotRunnable(state)),
        }
    }

    fn free(&mut self, i: usize) {
        let handle = self.cur(i);
        let s = &mut self.slots[i];
        let released = s.artifact.take();
        s.error = None;
        s.state = if s.generation == GENERATION_MAX { SlotState::Retired } else { SlotState::Empty };
        if let Some(id) = released {
            self.owed.push_back(Out::Release(handle, id));
        }
        self.owed.push_back(Out::Freed(handle));
    }

    fn register(&mut self, d: u8) -> Result<SlotReply, SlotError> {
        if let Some(&i) = self.lookup.get(&d) {
            self.slots[i].registrations += 1;
            return Ok(SlotReply::Registered { handle: self.cur(i), fresh: false });
        }
        let Some(i) = self.slots.iter().position(|s| s.state == SlotState::Empty) else {
            return Err(SlotError::Register(RegisterError::TableFull));
        };
        let s = &mut self.slots[i];
        s.generation += 1;
        s.state = SlotState::Preparing;
        s.digest = d;
        s.registrations = 1;
        s.prepare_in_flight = true;
        self.lookup.insert(d, i);
        let handle = self.cur(i);
        self.seen.push(handle);
        self.owed.push_back(Out::Start(handle, dg(d)));
        Ok(SlotReply::Registered { handle, fresh: true })
    }

    fn unregister(&mut self, handle: Handle) -> Result<SlotReply, SlotError> {
        let i = self.check(handle).map_err(|e| SlotError::Unregister(UnregisterError::Handle(e)))?;
        if self.slots[i].registrations == 0 {
            return Err(SlotError::Unregister(UnregisterError::NotRegistered));
        }
        self.slots[i].registrations -= 1;
        if self.slots[i].registrations > 0 {
            return Ok(SlotReply::Unregistered { last: false });
        }
        self.lookup.remove(&self.slots[i].digest);
        match self.slots[i].state {
            SlotState::Preparing => {
                self.slots[i].state = SlotState::Cancelling;
                self.owed.push_back(Out::Cancel(handle));
                self.owed.push_back(Out::Settled(handle, Err(RegisterError::Cancelled)));
            }
            _ if self.slots[i].pins == 0 => self.free(i),
            _ => self.slots[i].state = SlotState::Unregistering,
        }
        Ok(SlotReply::Unregistered { last: true })
    }

    fn finish(&mut self, handle: Handle, ok: bool, id: u64) -> Result<SlotReply, SlotError> {
        if let Some(k) = self.started.iter().position(|&s| s == handle) {
            self.started.remove(k);
        }
        let carried = if ok { Some(Out::Release(handle, id)) } else { None };
        let i = match self.check(handle) {
            Ok(i) => i,
            Err(HandleError::Stale { .. }) => {
                self.stale += 1;
                self.owed.extend(carried);
                return Ok(SlotReply::PrepareStale);
            }
            Err(e) => {
                self.owed.extend(carried);
                return Err(SlotError::Prepare(e));
            }
        };
        if !self.slots[i].prepare_in_flight {
            self.owed.extend(carried);
            return Err(SlotError::Prepare(HandleError::Stale { current: handle.generation }));
        }
        self.slots[i].prepare_in_flight = false;
        if self.slots[i].state == SlotState::Preparing {
            if ok {
                self.slots[i].state = SlotState::Prepared;
                self.slots[i].artifact = Some(id);
                self.owed.push_back(Out::Settled(handle, Ok(())));
            } else {
                self.slots[i].state = SlotState::Failed;
                self.slots[i].error = Some(chip_err(id));
                self.owed.push_back(Out::Settled(handle, Err(RegisterError::PrepareFailed(chip_err(id)))));
            }
        } else {
            assert_eq!(
                self.slots[i].state,
                SlotState::Cancelling,
                "model: prepare in flight outside PREPARING/CANCELLING"
            );
            // A cancelled prepare is never published; what it built is released.
            self.owed.extend(carried);
            if self.slots[i].pins == 0 {
                self.free(i);
            }
        }
        Ok(SlotReply::PrepareApplied)
    }

    fn pin(&mut self, handle: Handle) -> Result<SlotReply, SlotError> {
        let i = self.check(handle).map_err(|e| SlotError::Pin(RunError::Handle(e)))?;
        let ready = match self.slots[i].state {
            SlotState::Prepared => true,
            SlotState::Preparing => false,
            SlotState::Failed => {
                let e = self.slots[i].error.clone().expect("model: FAILED holds its error");
                return Err(SlotError::Pin(RunError::PrepareFailed(e)));
            }
            state => return Err(SlotError::Pin(RunError::NotRunnable(state))),
        };
        self.slots[i].pins += 1;
        self.pinned.push(handle);
        Ok(SlotReply::Pinned { ready })
    }

    fn unpin(&mut self, handle: Handle) -> Result<SlotReply, SlotError> {
        let i = self.check(handle).map_err(SlotError::Unpin)?;
        if self.slots[i].pins == 0 {
            return Err(SlotError::Unpin(HandleError::Stale { current: handle.generation }));
        }
        self.slots[i].pins -= 1;
        let k = self.pinned.iter().position(|&p| p == handle).expect("model: a pin is held for a pinned slot");
        self.pinned.remove(k);
        let s = &self.slots[i];
        if s.pins == 0
            && (s.state == SlotState::Unregistering || (s.state == SlotState::Cancelling && !s.prepare_in_flight))
        {
            self.deferred_frees += 1;
            self.free(i);
        }
        Ok(SlotReply::Unpinned)
    }

    fn drain(&mut self) -> Vec<Out> {
        let drained: Vec<Out> = self.owed.drain(..).collect();
        for o in &drained {
            if let Out::Start(handle, _) = o {
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
    registrations: Vec<Handle>,
    started: Vec<Handle>,
    pinned: Vec<Handle>,
}

impl Sut {
    fn new() -> Self {
        let limits = SlotLimits { capacity: CAPACITY, generation_max: Generation(GENERATION_MAX) };
        Sut {
            table: SlotTable::new(W, limits),
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

    fn forget(list: &mut Vec<Handle>, handle: Handle) {
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

    fn unregister(&mut self, handle: Handle) -> Result<SlotReply, SlotError> {
        let r = self.handle(SlotInput::Unregister { handle });
        if r.is_ok() {
            Self::forget(&mut self.registrations, handle);
        }
        r
    }

    fn finish(&mut self, handle: Handle, ok: bool, id: u64) -> Result<SlotReply, SlotError> {
        Self::forget(&mut self.started, handle);
        let result = if ok {
            self.created.push(id);
            Ok(Art(id))
        } else {
            Err(chip_err(id))
        };
        self.handle(SlotInput::PrepareFinished { handle, result })
    }

    fn pin(&mut self, handle: Handle) -> Result<SlotReply, SlotError> {
        let r = self.handle(SlotInput::Pin { handle });
        if r.is_ok() {
            self.pinned.push(handle);
        }
        r
    }

    fn unpin(&mut self, handle: Handle) -> Result<SlotReply, SlotError> {
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
    if let Err(e) = t.check_invariants() {
        panic!("slot table invariant broken: {e}");
    }
    for (i, s) in m.slots.iter().enumerate() {
        let index = SlotIndex(i as u32);
        assert_eq!(t.state(index), Some(s.state), "state of slot {i}");
        assert_eq!(t.generation(index), Some(Generation(s.generation)), "generation of slot {i}");
        assert_eq!(t.pins(index), s.pins, "pins of slot {i}");
        assert_eq!(t.registrations(index), s.registrations, "registrations of slot {i}");
    }
    for d in 0..DIGESTS {
        assert_eq!(t.lookup(&dg(d)), m.lookup.get(&d).map(|&i| m.cur(i)), "lookup of digest {d}");
    }
    assert_eq!(t.stale_completions(), m.stale, "stale completion count");
    let live = m.slots.iter().filter(|s| !matches!(s.state, SlotState::Empty | SlotState::Retired)).count();
    assert_eq!(t.live_slots(), live, "live slots");
    for handle in m.pool() {
        assert_eq!(t.check(handle), m.check(handle).map(|i| m.slots[i].state), "check({handle:?})");
    }
    for &handle in &m.pinned {
        assert_eq!(t.runnable(handle).map(|a| a.map(|a| a.0)), m.runnable(handle), "runnable({handle:?})");
    }
}
