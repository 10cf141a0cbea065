//! The sequential reference model of the slot table (docs/protocol.md section 3):
//! the one reference every checker of [`crate::slot::SlotTable`] uses (the
//! simulator's safety checker, the proptest state machine in
//! `core/tests/slot_props.rs` and the `slot_table` fuzz harness in
//! `models`).
//!
//! It is written from the design's table of transitions, one plain record
//! per slot, and shares no code with [`crate::slot`]: it uses the slot
//! module's *vocabulary* (`SlotState`, `SlotReply`, `SlotError`, the input
//! and output enums) and nothing else, checks handles itself (it does not
//! call `CallableHandle::check_worker`), and holds artifacts by id (`u64`), so a
//! bug in the table's logic is never mirrored here.
//!
//! # Use
//! Feed every input the real table gets to [`SlotModel`] too (the typed
//! methods, or [`SlotModel::apply`] for a `SlotInput`) and compare the
//! replies; pop the outputs the model owes ([`SlotModel::pop_owed`]) as the
//! table's come out ([`Owed::of`]) and compare them in order; after a step
//! compare the whole table with [`SlotModel::compare_table`].
//!
//! The proptest and the fuzz harness drive the table and the model the same
//! way, through [`harness`] (the model side and the table side, with the
//! comparison after a step and the final teardown).
//!
//! Compiled only with the `reference` feature (test support, like
//! `conformance`).

pub mod harness;

use std::collections::{BTreeMap, VecDeque};

use crate::chip::ChipError;
use crate::error::{HandleError, RegisterError, RunError, UnregisterError};
use crate::ids::{CallableDigest, CallableHandle, Generation, SlotIndex, WorkerId};
use crate::slot::{SlotError, SlotInput, SlotLimits, SlotOutput, SlotReply, SlotState, SlotTable};

/// One output the table owes, comparable (artifacts by id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owed {
    /// `StartPrepare`.
    Start(CallableHandle, CallableDigest),
    /// `Cancel`.
    Cancel(CallableHandle),
    /// `Release` of the artifact with this id.
    Release(CallableHandle, u64),
    /// `Settled`.
    Settled(CallableHandle, Result<(), RegisterError>),
    /// `Freed`.
    Freed(CallableHandle),
}

impl Owed {
    /// The comparable form of a table output; `id` names an artifact.
    pub fn of<A>(output: &SlotOutput<A>, id: impl Fn(&A) -> u64) -> Owed {
        match output {
            SlotOutput::StartPrepare { handle, digest } => Owed::Start(*handle, *digest),
            SlotOutput::Cancel { handle } => Owed::Cancel(*handle),
            SlotOutput::Release { handle, artifact } => Owed::Release(*handle, id(artifact)),
            SlotOutput::Settled { handle, result } => Owed::Settled(*handle, result.clone()),
            SlotOutput::Freed { handle } => Owed::Freed(*handle),
        }
    }
}

/// What the model says about one slot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SlotView {
    /// Its state.
    pub state: SlotState,
    /// Its generation.
    pub generation: Generation,
    /// Pins held by queued or running runs.
    pub pins: u32,
    /// Registrations held.
    pub registrations: u32,
}

#[derive(Clone, Debug)]
struct Record {
    state: SlotState,
    generation: u32,
    digest: CallableDigest,
    registrations: u32,
    pins: u32,
    prepare_in_flight: bool,
    artifact: Option<u64>,
    error: Option<ChipError>,
}

/// The reference model. See the module doc.
#[derive(Clone, Debug)]
pub struct SlotModel {
    worker: WorkerId,
    generation_max: u32,
    slots: Vec<Record>,
    lookup: BTreeMap<CallableDigest, usize>,
    owed: VecDeque<Owed>,
    stale: u64,
    deferred_frees: u64,
}

impl SlotModel {
    /// A model of a table of `worker` with `limits`.
    pub fn new(worker: WorkerId, limits: SlotLimits) -> Self {
        let generation_max = limits.generation_max.0;
        let state = if generation_max == 0 { SlotState::Retired } else { SlotState::Empty };
        let record = Record {
            state,
            generation: 0,
            digest: CallableDigest::default(),
            registrations: 0,
            pins: 0,
            prepare_in_flight: false,
            artifact: None,
            error: None,
        };
        SlotModel {
            worker,
            generation_max,
            slots: vec![record; limits.capacity],
            lookup: BTreeMap::new(),
            owed: VecDeque::new(),
            stale: 0,
            deferred_frees: 0,
        }
    }

    fn cur(&self, i: usize) -> CallableHandle {
        CallableHandle {
            worker: self.worker,
            index: SlotIndex(i as u32),
            generation: Generation(self.slots[i].generation),
        }
    }

    /// The worker whose handles the modelled table issues.
    pub fn worker(&self) -> WorkerId {
        self.worker
    }

    /// Slots in the table.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Slot `i` (panics when out of range).
    pub fn slot(&self, i: usize) -> SlotView {
        let s = &self.slots[i];
        SlotView { state: s.state, generation: Generation(s.generation), pins: s.pins, registrations: s.registrations }
    }

    /// The current handle of slot `i`.
    pub fn current(&self, i: usize) -> CallableHandle {
        self.cur(i)
    }

    /// The handle `digest` is registered under, if it is.
    pub fn lookup(&self, digest: &CallableDigest) -> Option<CallableHandle> {
        self.lookup.get(digest).map(|&i| self.cur(i))
    }

    /// Handles of every registered digest (in digest order).
    pub fn registered(&self) -> Vec<CallableHandle> {
        self.lookup.values().map(|&i| self.cur(i)).collect()
    }

    /// The digest `handle`'s slot holds, while the handle is current
    /// (PREPARING, PREPARED, FAILED, and while it is torn down).
    pub fn digest_of(&self, handle: CallableHandle) -> Option<CallableDigest> {
        self.check(handle).ok().map(|i| self.slots[i].digest)
    }

    /// Slots neither EMPTY nor RETIRED.
    pub fn live_slots(&self) -> usize {
        self.slots.iter().filter(|s| !matches!(s.state, SlotState::Empty | SlotState::Retired)).count()
    }

    /// Prepare completions dropped as stale.
    pub fn stale_completions(&self) -> u64 {
        self.stale
    }

    /// Frees deferred to the last unpin.
    pub fn deferred_frees(&self) -> u64 {
        self.deferred_frees
    }

    /// Which slot `handle` names, after the worker, range and generation
    /// checks (written here, not borrowed from the table).
    pub fn check(&self, handle: CallableHandle) -> Result<usize, HandleError> {
        if handle.worker != self.worker {
            return Err(HandleError::Foreign { expected: self.worker, got: handle.worker });
        }
        let i = handle.index.0 as usize;
        if i >= self.slots.len() {
            return Err(HandleError::OutOfRange);
        }
        let current = Generation(self.slots[i].generation);
        if handle.generation != current {
            return Err(HandleError::Stale { current });
        }
        Ok(i)
    }

    /// What `SlotTable::runnable` must answer (the artifact by id).
    pub fn runnable(&self, handle: CallableHandle) -> Result<Option<u64>, RunError> {
        let i = self.check(handle).map_err(RunError::Handle)?;
        let s = &self.slots[i];
        match (s.state, s.artifact) {
            (SlotState::Prepared, a) => Ok(a),
            (SlotState::Preparing, _) => Ok(None),
            (SlotState::Failed, _) | (SlotState::Unregistering, None) => {
                Err(RunError::PrepareFailed(s.error.clone().expect("model: FAILED without its error")))
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
        s.digest = CallableDigest::default();
        s.state = if s.generation >= self.generation_max { SlotState::Retired } else { SlotState::Empty };
        if let Some(id) = released {
            self.owed.push_back(Owed::Release(handle, id));
        }
        self.owed.push_back(Owed::Freed(handle));
    }

    /// Apply a table input; `id` names an artifact a prepare returned.
    pub fn apply<A>(&mut self, input: &SlotInput<A>, id: impl Fn(&A) -> u64) -> Result<SlotReply, SlotError> {
        match input {
            SlotInput::Register { digest } => self.register(*digest),
            SlotInput::Unregister { handle } => self.unregister(*handle),
            SlotInput::PrepareFinished { handle, result } => {
                self.finish(*handle, result.as_ref().map(id).map_err(Clone::clone))
            }
            SlotInput::Pin { handle } => self.pin(*handle),
            SlotInput::Unpin { handle } => self.unpin(*handle),
        }
    }

    /// `Register { digest }`.
    pub fn register(&mut self, d: CallableDigest) -> Result<SlotReply, SlotError> {
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
        self.owed.push_back(Owed::Start(handle, d));
        Ok(SlotReply::Registered { handle, fresh: true })
    }

    /// `Unregister { handle }`.
    pub fn unregister(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        let i = self.check(handle).map_err(|e| SlotError::Unregister(UnregisterError::Handle(e)))?;
        if self.slots[i].registrations == 0 {
            return Err(SlotError::Unregister(UnregisterError::NotRegistered));
        }
        self.slots[i].registrations -= 1;
        if self.slots[i].registrations > 0 {
            return Ok(SlotReply::Unregistered { last: false });
        }
        let d = self.slots[i].digest;
        self.lookup.remove(&d);
        match self.slots[i].state {
            SlotState::Preparing => {
                self.slots[i].state = SlotState::Cancelling;
                self.owed.push_back(Owed::Cancel(handle));
                self.owed.push_back(Owed::Settled(handle, Err(RegisterError::Cancelled)));
            }
            _ if self.slots[i].pins == 0 => self.free(i),
            _ => self.slots[i].state = SlotState::Unregistering,
        }
        Ok(SlotReply::Unregistered { last: true })
    }

    /// `PrepareFinished { handle, result }`: `Ok(artifact id)` or the error.
    pub fn finish(&mut self, handle: CallableHandle, result: Result<u64, ChipError>) -> Result<SlotReply, SlotError> {
        let carried = result.as_ref().ok().map(|&id| Owed::Release(handle, id));
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
        match self.slots[i].state {
            SlotState::Preparing => match result {
                Ok(id) => {
                    self.slots[i].state = SlotState::Prepared;
                    self.slots[i].artifact = Some(id);
                    self.owed.push_back(Owed::Settled(handle, Ok(())));
                }
                Err(e) => {
                    self.slots[i].state = SlotState::Failed;
                    self.slots[i].error = Some(e.clone());
                    self.owed.push_back(Owed::Settled(handle, Err(RegisterError::PrepareFailed(e))));
                }
            },
            SlotState::Cancelling => {
                // Never published; an artifact built anyway is released.
                self.owed.extend(carried);
                if self.slots[i].pins == 0 {
                    self.free(i);
                }
            }
            other => panic!("model: a prepare in flight in state {other:?}"),
        }
        Ok(SlotReply::PrepareApplied)
    }

    /// `Pin { handle }`.
    pub fn pin(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        let i = self.check(handle).map_err(|e| SlotError::Pin(RunError::Handle(e)))?;
        let ready = match self.slots[i].state {
            SlotState::Prepared => true,
            SlotState::Preparing => false,
            SlotState::Failed => {
                let e = self.slots[i].error.clone().expect("model: FAILED without its error");
                return Err(SlotError::Pin(RunError::PrepareFailed(e)));
            }
            state => return Err(SlotError::Pin(RunError::NotRunnable(state))),
        };
        self.slots[i].pins += 1;
        Ok(SlotReply::Pinned { ready })
    }

    /// `Unpin { handle }`.
    pub fn unpin(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        let i = self.check(handle).map_err(SlotError::Unpin)?;
        if self.slots[i].pins == 0 {
            return Err(SlotError::Unpin(HandleError::Stale { current: handle.generation }));
        }
        self.slots[i].pins -= 1;
        let s = &self.slots[i];
        if s.pins == 0
            && (s.state == SlotState::Unregistering || (s.state == SlotState::Cancelling && !s.prepare_in_flight))
        {
            self.deferred_frees += 1;
            self.free(i);
        }
        Ok(SlotReply::Unpinned)
    }

    /// The next output owed, oldest first.
    pub fn pop_owed(&mut self) -> Option<Owed> {
        self.owed.pop_front()
    }

    /// Every output owed, oldest first.
    pub fn drain_owed(&mut self) -> Vec<Owed> {
        self.owed.drain(..).collect()
    }

    /// Compare a real table with the model: its own invariants, every
    /// slot's state, generation, pins and registrations, the live-slot and
    /// stale-completion counts, and the lookup of each digest in `digests`.
    /// The first difference, described.
    pub fn compare_table<A>(&self, table: &SlotTable<A>, digests: &[CallableDigest]) -> Result<(), String> {
        table.check_invariants().map_err(|e| format!("slot table invariant: {e}"))?;
        for i in 0..self.slots.len() {
            let index = SlotIndex(i as u32);
            let real = SlotView {
                state: table.state(index).ok_or_else(|| format!("slot {i} missing from the table"))?,
                generation: table.generation(index).ok_or_else(|| format!("slot {i} missing from the table"))?,
                pins: table.pins(index),
                registrations: table.registrations(index),
            };
            let want = self.slot(i);
            if real != want {
                return Err(format!("slot {i}: table {real:?}, reference {want:?}"));
            }
        }
        if table.stale_completions() != self.stale {
            return Err(format!("stale completions: table {}, reference {}", table.stale_completions(), self.stale));
        }
        if table.live_slots() != self.live_slots() {
            return Err(format!("live slots: table {}, reference {}", table.live_slots(), self.live_slots()));
        }
        for d in digests {
            let (real, want) = (table.lookup(d), self.lookup(d));
            if real != want {
                return Err(format!("lookup of {d:?}: table {real:?}, reference {want:?}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chip::ChipErrorKind;

    const W: WorkerId = WorkerId(5);

    fn limits() -> SlotLimits {
        SlotLimits { capacity: 2, generation_max: Generation(2) }
    }

    /// The model follows docs/protocol.md section 3 on a short script (each step
    /// checked against the table of transitions by hand, not by the table).
    #[test]
    fn follows_the_design_on_a_script() {
        let mut m = SlotModel::new(W, limits());
        let d = CallableDigest([1; 32]);
        let h = CallableHandle { worker: W, index: SlotIndex(0), generation: Generation(1) };
        assert_eq!(m.register(d), Ok(SlotReply::Registered { handle: h, fresh: true }));
        assert_eq!(m.register(d), Ok(SlotReply::Registered { handle: h, fresh: false }));
        assert_eq!(m.pop_owed(), Some(Owed::Start(h, d)));
        assert_eq!(m.pin(h), Ok(SlotReply::Pinned { ready: false }));
        assert_eq!(m.finish(h, Ok(7)), Ok(SlotReply::PrepareApplied));
        assert_eq!(m.pop_owed(), Some(Owed::Settled(h, Ok(()))));
        assert_eq!(m.runnable(h), Ok(Some(7)));
        assert_eq!(m.unregister(h), Ok(SlotReply::Unregistered { last: false }));
        assert_eq!(m.unregister(h), Ok(SlotReply::Unregistered { last: true }));
        assert_eq!(m.slot(0).state, SlotState::Unregistering, "pinned: tombstone");
        assert_eq!(m.lookup(&d), None, "the final unregister leaves the lookup at once");
        assert_eq!(m.unpin(h), Ok(SlotReply::Unpinned));
        assert_eq!(m.drain_owed(), vec![Owed::Release(h, 7), Owed::Freed(h)]);
        assert_eq!(m.deferred_frees(), 1);
        // A late completion of generation 1 after re-registration is stale.
        let h2 = CallableHandle { generation: Generation(2), ..h };
        assert_eq!(m.register(d), Ok(SlotReply::Registered { handle: h2, fresh: true }));
        let late = m.finish(h, Ok(8));
        assert_eq!(late, Ok(SlotReply::PrepareStale));
        assert_eq!(m.stale_completions(), 1);
        assert_eq!(m.drain_owed(), vec![Owed::Start(h2, d), Owed::Release(h, 8)]);
        // Final unregister while PREPARING cancels; generation 2 = max: retired.
        assert_eq!(m.unregister(h2), Ok(SlotReply::Unregistered { last: true }));
        assert_eq!(m.drain_owed(), vec![Owed::Cancel(h2), Owed::Settled(h2, Err(RegisterError::Cancelled))]);
        let err = ChipError::new(ChipErrorKind::Cancelled, "cancelled");
        assert_eq!(m.finish(h2, Err(err)), Ok(SlotReply::PrepareApplied));
        assert_eq!(m.drain_owed(), vec![Owed::Freed(h2)]);
        assert_eq!(m.slot(0).state, SlotState::Retired);
        let foreign = CallableHandle { worker: WorkerId(6), ..h2 };
        assert_eq!(m.check(foreign), Err(HandleError::Foreign { expected: W, got: WorkerId(6) }));
    }
}
