//! The two sides of a sequential slot-table checker, shared by the proptest
//! state machine (`core/tests/slot_props.rs`) and the `slot_table` fuzz
//! harness (`models/src/fuzz_harness/slot_table.rs`); each of those only
//! generates the owner's operations (a proptest strategy, or `arbitrary`
//! bytes) and feeds every one to both sides.
//!
//! - [`ModelSide`]: the reference ([`SlotModel`]) plus what the owner knows
//!   from the model's replies: the handles it has seen, the prepares it
//!   started, the pins it holds; and the pool of handles operations pick
//!   from (current, stale, foreign, out of range, not yet issued).
//! - [`TableSide`]: the real [`SlotTable`] plus the owner's own bookkeeping,
//!   kept from the table's replies and outputs only (registrations, started
//!   prepares, pins, every artifact created and released). It checks the
//!   table's invariants after every input, compares the table with a
//!   [`ModelSide`] in every observable ([`TableSide::compare`]), and at the
//!   end drains everything like an owner shutting down
//!   ([`TableSide::teardown`]): every artifact must come back exactly once
//!   and no slot may be left in use.
//!
//! Replies and drained outputs are returned, not compared: the caller
//! asserts that both sides answered the same.

use super::{Owed, SlotModel};
use crate::chip::{ChipError, ChipErrorKind};
use crate::ids::{CallableDigest, CallableHandle, Generation, SlotIndex, WorkerId};
use crate::slot::{SlotError, SlotInput, SlotLimits, SlotReply, SlotState, SlotTable};

/// The worker of the foreign handle in the pool; the checked table's worker
/// must differ.
const FOREIGN: WorkerId = WorkerId(99);

/// Digest number `n` (all 32 bytes `n`).
pub fn digest(n: u8) -> CallableDigest {
    CallableDigest([n; 32])
}

/// The error a failed prepare returns; `id` names the prepare (an injected
/// error, so failures are told apart in a comparison).
pub fn prepare_error(id: u64) -> ChipError {
    ChipError::new(ChipErrorKind::Injected, format!("prepare {id} failed"))
}

/// An artifact with a unique id; not `Clone`: the table can only move it.
#[derive(Debug)]
pub struct Artifact(pub u64);

fn remove_first(list: &mut Vec<CallableHandle>, handle: CallableHandle) {
    if let Some(k) = list.iter().position(|&x| x == handle) {
        list.remove(k);
    }
}

/// The reference model plus the owner's picks: what it has seen, started and
/// pinned, kept from the model's replies and owed outputs.
#[derive(Clone, Debug)]
pub struct ModelSide {
    /// The reference model itself.
    pub reference: SlotModel,
    /// Every handle a register returned fresh (current and stale).
    pub seen: Vec<CallableHandle>,
    /// Prepares the owner started (drained `StartPrepare`) and has not finished.
    pub started: Vec<CallableHandle>,
    /// Pins held by queued runs, one entry per pin.
    pub pinned: Vec<CallableHandle>,
}

impl ModelSide {
    /// A fresh model of a table of `worker` with `limits` (`worker` must not
    /// be `WorkerId(99)`, the foreign handle's worker).
    pub fn new(worker: WorkerId, limits: SlotLimits) -> Self {
        assert_ne!(worker, FOREIGN, "the checked worker must differ from the foreign handle's");
        ModelSide {
            reference: SlotModel::new(worker, limits),
            seen: Vec::new(),
            started: Vec::new(),
            pinned: Vec::new(),
        }
    }

    fn handle_at(&self, index: usize, generation: u32) -> CallableHandle {
        CallableHandle {
            worker: self.reference.worker(),
            index: SlotIndex(index as u32),
            generation: Generation(generation),
        }
    }

    /// A handle of another worker.
    pub fn foreign(&self) -> CallableHandle {
        CallableHandle { worker: FOREIGN, ..self.handle_at(0, 1) }
    }

    /// A handle whose index is beyond the table.
    pub fn out_of_range(&self) -> CallableHandle {
        self.handle_at(self.reference.capacity(), 1)
    }

    /// Slot `i`'s next generation (never issued yet; panics when `i` is out
    /// of range).
    pub fn next_generation(&self, i: usize) -> CallableHandle {
        self.handle_at(i, self.reference.slot(i).generation.0 + 1)
    }

    /// Handles to pick from: those seen (current and stale), plus a foreign
    /// one, an out-of-range one and, per slot, its next (not yet issued)
    /// generation.
    pub fn pool(&self) -> Vec<CallableHandle> {
        let mut v = self.seen.clone();
        v.push(self.foreign());
        v.push(self.out_of_range());
        v.extend((0..self.reference.capacity()).map(|i| self.next_generation(i)));
        v
    }

    /// Handles of every registered digest (in digest order).
    pub fn registered(&self) -> Vec<CallableHandle> {
        self.reference.registered()
    }

    /// `Register { digest }`; a fresh handle is remembered as seen.
    pub fn register(&mut self, digest: CallableDigest) -> Result<SlotReply, SlotError> {
        let r = self.reference.register(digest);
        if let Ok(SlotReply::Registered { handle, fresh: true }) = r {
            self.seen.push(handle);
        }
        r
    }

    /// `Unregister { handle }`.
    pub fn unregister(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        self.reference.unregister(handle)
    }

    /// The prepare of `handle` returned: the artifact `id` when `ok`, else
    /// [`prepare_error`]`(id)`. The prepare is no longer started.
    pub fn finish(&mut self, handle: CallableHandle, ok: bool, id: u64) -> Result<SlotReply, SlotError> {
        remove_first(&mut self.started, handle);
        self.reference.finish(handle, if ok { Ok(id) } else { Err(prepare_error(id)) })
    }

    /// `Pin { handle }`; an accepted pin is held.
    pub fn pin(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        let r = self.reference.pin(handle);
        if r.is_ok() {
            self.pinned.push(handle);
        }
        r
    }

    /// `Unpin { handle }`; an accepted unpin releases one pin held (panics if
    /// none was, a model bug).
    pub fn unpin(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        let r = self.reference.unpin(handle);
        if r.is_ok() {
            let k = self.pinned.iter().position(|&p| p == handle).expect("model: a pin is held for a pinned slot");
            self.pinned.remove(k);
        }
        r
    }

    /// Every output the model owes, oldest first; each `StartPrepare` is
    /// remembered as started.
    pub fn drain(&mut self) -> Vec<Owed> {
        let drained = self.reference.drain_owed();
        for o in &drained {
            if let Owed::Start(handle, _) = o {
                self.started.push(*handle);
            }
        }
        drained
    }
}

/// The table plus the owner's own bookkeeping, kept from the table's replies
/// and outputs only (the teardown never looks at the model).
#[derive(Debug)]
pub struct TableSide {
    table: SlotTable<Artifact>,
    /// The digests operations register (compared in the lookup, checked
    /// absent after the teardown).
    digests: Vec<CallableDigest>,
    /// Ids of every artifact handed to the table.
    created: Vec<u64>,
    /// Ids of every artifact the table handed back through `Release`.
    released: Vec<u64>,
    /// One entry per live registration.
    registrations: Vec<CallableHandle>,
    /// Prepares started (drained `StartPrepare`) and not finished.
    started: Vec<CallableHandle>,
    /// One entry per pin held.
    pinned: Vec<CallableHandle>,
}

impl TableSide {
    /// A fresh table of `worker` with `limits`; `digests` are every digest
    /// the operations may register.
    pub fn new(worker: WorkerId, limits: SlotLimits, digests: &[CallableDigest]) -> Self {
        TableSide {
            table: SlotTable::new(worker, limits),
            digests: digests.to_vec(),
            created: Vec::new(),
            released: Vec::new(),
            registrations: Vec::new(),
            started: Vec::new(),
            pinned: Vec::new(),
        }
    }

    /// The table under test.
    pub fn table(&self) -> &SlotTable<Artifact> {
        &self.table
    }

    /// Feed `input` to the table; panics if the table's invariants broke.
    pub fn handle(&mut self, input: SlotInput<Artifact>) -> Result<SlotReply, SlotError> {
        let r = self.table.handle(input);
        if let Err(e) = self.table.check_invariants() {
            panic!("slot table invariant broken: {e}");
        }
        r
    }

    /// Poll the table until `None`, in order (artifacts by id); records
    /// started prepares and released artifacts, and panics on an artifact
    /// released twice.
    pub fn drain(&mut self) -> Vec<Owed> {
        let mut v = Vec::new();
        while let Some(o) = self.table.poll() {
            let o = Owed::of(&o, |a| a.0);
            match &o {
                Owed::Start(handle, _) => self.started.push(*handle),
                Owed::Release(_, id) => {
                    assert!(!self.released.contains(id), "artifact {id} released twice");
                    self.released.push(*id);
                }
                _ => {}
            }
            v.push(o);
        }
        v
    }

    /// `Register { digest }`; an accepted one is a live registration.
    pub fn register(&mut self, digest: CallableDigest) -> Result<SlotReply, SlotError> {
        let r = self.handle(SlotInput::Register { digest });
        if let Ok(SlotReply::Registered { handle, .. }) = r {
            self.registrations.push(handle);
        }
        r
    }

    /// `Unregister { handle }`; an accepted one ends a registration.
    pub fn unregister(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        let r = self.handle(SlotInput::Unregister { handle });
        if r.is_ok() {
            remove_first(&mut self.registrations, handle);
        }
        r
    }

    /// `PrepareFinished`: the artifact `id` (recorded as created) when `ok`,
    /// else [`prepare_error`]`(id)`. The prepare is no longer started.
    pub fn finish(&mut self, handle: CallableHandle, ok: bool, id: u64) -> Result<SlotReply, SlotError> {
        remove_first(&mut self.started, handle);
        let result = if ok {
            self.created.push(id);
            Ok(Artifact(id))
        } else {
            Err(prepare_error(id))
        };
        self.handle(SlotInput::PrepareFinished { handle, result })
    }

    /// `Pin { handle }`; an accepted pin is held.
    pub fn pin(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        let r = self.handle(SlotInput::Pin { handle });
        if r.is_ok() {
            self.pinned.push(handle);
        }
        r
    }

    /// `Unpin { handle }`; an accepted unpin releases one pin held.
    pub fn unpin(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        let r = self.handle(SlotInput::Unpin { handle });
        if r.is_ok() {
            remove_first(&mut self.pinned, handle);
        }
        r
    }

    /// Panics unless the table agrees with `m` in every observable: its
    /// invariants, every slot's state / generation / pins / registrations,
    /// live slots, stale completions, the lookup of every digest, `check` of
    /// every handle in `m`'s pool, `runnable` of every pinned run, and the
    /// pins held.
    pub fn compare(&self, m: &ModelSide) {
        let t = &self.table;
        let r = &m.reference;
        if let Err(e) = r.compare_table(t, &self.digests) {
            panic!("table differs from the reference: {e}");
        }
        for handle in m.pool() {
            assert_eq!(t.check(handle), r.check(handle).map(|i| r.slot(i).state), "check({handle:?})");
        }
        for &handle in &m.pinned {
            assert_eq!(t.runnable(handle).map(|a| a.map(|a| a.0)), r.runnable(handle), "runnable({handle:?})");
        }
        let mut pinned = self.pinned.clone();
        let mut want = m.pinned.clone();
        pinned.sort();
        want.sort();
        assert_eq!(pinned, want, "pins held");
    }

    /// Drain everything the way an owner shutting down would (unregister
    /// every registration, finish every started prepare with a fresh
    /// artifact, unpin every pin), then panic unless every artifact was
    /// released exactly once and no slot is left in use.
    pub fn teardown(mut self) {
        let _ = self.drain();
        for handle in std::mem::take(&mut self.registrations) {
            let r = self.handle(SlotInput::Unregister { handle });
            assert!(matches!(r, Ok(SlotReply::Unregistered { .. })), "teardown unregister {handle:?}: {r:?}");
        }
        let _ = self.drain();
        // Fresh ids, above every id a step can have drawn.
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
        for i in 0..self.table.limits().capacity {
            let index = SlotIndex(i as u32);
            let state = self.table.state(index).expect("slot exists");
            assert!(matches!(state, SlotState::Empty | SlotState::Retired), "slot {i} left {state:?}");
            assert_eq!(self.table.pins(index), 0, "slot {i} left pinned");
            assert_eq!(self.table.registrations(index), 0, "slot {i} left registered");
        }
        for d in &self.digests {
            assert_eq!(self.table.lookup(d), None, "digest {d:?} left in the lookup");
        }
        let mut created = self.created.clone();
        let mut released = self.released.clone();
        created.sort_unstable();
        released.sort_unstable();
        assert_eq!(released, created, "every artifact must be released exactly once (leak or double release)");
    }
}
