//! The sequential reference model of the slot table (design.md section 3),
//! used by the safety checker: every input the simulator feeds the real
//! `SlotTable` is also applied here, and the replies, the owed outputs (in
//! order) and every slot's state, generation, pins and registrations must
//! agree after every step.
//!
//! It is written from the design's table of transitions, one plain record
//! per slot, and shares no code with `chiplane_core::slot`.

use std::collections::{BTreeMap, VecDeque};

use chiplane_core::slot::{SlotError, SlotLimits, SlotReply, SlotState};
use chiplane_core::{
    CallableDigest, ChipError, Generation, Handle, HandleError, RegisterError, RunError, SlotIndex, UnregisterError,
    WorkerId,
};

/// One owed output, comparable (artifacts by id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    Start(Handle, CallableDigest),
    Cancel(Handle),
    Release(Handle, u64),
    Settled(Handle, Result<(), RegisterError>),
    Freed(Handle),
}

#[derive(Clone, Debug)]
struct RSlot {
    state: SlotState,
    generation: u32,
    digest: CallableDigest,
    registrations: u32,
    pins: u32,
    prepare_in_flight: bool,
    artifact: Option<u64>,
    error: Option<ChipError>,
}

/// The reference model.
#[derive(Clone, Debug)]
pub struct Model {
    worker: WorkerId,
    generation_max: u32,
    slots: Vec<RSlot>,
    lookup: BTreeMap<CallableDigest, usize>,
    owed: VecDeque<Out>,
    pub stale: u64,
}

impl Model {
    pub fn new(worker: WorkerId, limits: SlotLimits) -> Self {
        let generation_max = limits.generation_max.0;
        let state = if generation_max == 0 { SlotState::Retired } else { SlotState::Empty };
        let slot = RSlot {
            state,
            generation: 0,
            digest: CallableDigest::default(),
            registrations: 0,
            pins: 0,
            prepare_in_flight: false,
            artifact: None,
            error: None,
        };
        Model {
            worker,
            generation_max,
            slots: vec![slot; limits.capacity],
            lookup: BTreeMap::new(),
            owed: VecDeque::new(),
            stale: 0,
        }
    }

    fn cur(&self, i: usize) -> Handle {
        Handle { worker: self.worker, index: SlotIndex(i as u32), generation: Generation(self.slots[i].generation) }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// (state, generation, pins, registrations) of slot `i`.
    pub fn slot(&self, i: usize) -> (SlotState, Generation, u32, u32) {
        let s = &self.slots[i];
        (s.state, Generation(s.generation), s.pins, s.registrations)
    }

    /// The digest slot `i` holds while registered (PREPARING, PREPARED, FAILED,
    /// and after the final unregister while it is torn down).
    pub fn digest_of(&self, handle: Handle) -> Option<CallableDigest> {
        self.check(handle).ok().map(|i| self.slots[i].digest)
    }

    pub fn live_slots(&self) -> usize {
        self.slots.iter().filter(|s| !matches!(s.state, SlotState::Empty | SlotState::Retired)).count()
    }

    pub fn check(&self, handle: Handle) -> Result<usize, HandleError> {
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

    pub fn runnable(&self, handle: Handle) -> Result<Option<u64>, RunError> {
        let i = self.check(handle).map_err(RunError::Handle)?;
        let s = &self.slots[i];
        match (s.state, s.artifact) {
            (SlotState::Prepared, a) => Ok(a),
            (SlotState::Preparing, _) => Ok(None),
            (SlotState::Failed, _) | (SlotState::Unregistering, None) => {
                Err(RunError::PrepareFailed(s.error.clone().expect("model: FAILED without error")))
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
            self.owed.push_back(Out::Release(handle, id));
        }
        self.owed.push_back(Out::Freed(handle));
    }

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
        self.owed.push_back(Out::Start(handle, d));
        Ok(SlotReply::Registered { handle, fresh: true })
    }

    pub fn unregister(&mut self, handle: Handle) -> Result<SlotReply, SlotError> {
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
                self.owed.push_back(Out::Cancel(handle));
                self.owed.push_back(Out::Settled(handle, Err(RegisterError::Cancelled)));
            }
            _ if self.slots[i].pins == 0 => self.free(i),
            _ => self.slots[i].state = SlotState::Unregistering,
        }
        Ok(SlotReply::Unregistered { last: true })
    }

    /// The prepare for `handle` returned: `Ok(artifact id)` or an error.
    pub fn finish(&mut self, handle: Handle, result: Result<u64, ChipError>) -> Result<SlotReply, SlotError> {
        let carried = result.as_ref().ok().map(|&id| Out::Release(handle, id));
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
            match result {
                Ok(id) => {
                    self.slots[i].state = SlotState::Prepared;
                    self.slots[i].artifact = Some(id);
                    self.owed.push_back(Out::Settled(handle, Ok(())));
                }
                Err(e) => {
                    self.slots[i].state = SlotState::Failed;
                    self.slots[i].error = Some(e.clone());
                    self.owed.push_back(Out::Settled(handle, Err(RegisterError::PrepareFailed(e))));
                }
            }
        } else {
            // CANCELLING: never published; an artifact built anyway is released.
            self.owed.extend(carried);
            if self.slots[i].pins == 0 {
                self.free(i);
            }
        }
        Ok(SlotReply::PrepareApplied)
    }

    pub fn pin(&mut self, handle: Handle) -> Result<SlotReply, SlotError> {
        let i = self.check(handle).map_err(|e| SlotError::Pin(RunError::Handle(e)))?;
        let ready = match self.slots[i].state {
            SlotState::Prepared => true,
            SlotState::Preparing => false,
            SlotState::Failed => {
                return Err(SlotError::Pin(RunError::PrepareFailed(
                    self.slots[i].error.clone().expect("model: FAILED without error"),
                )))
            }
            state => return Err(SlotError::Pin(RunError::NotRunnable(state))),
        };
        self.slots[i].pins += 1;
        Ok(SlotReply::Pinned { ready })
    }

    pub fn unpin(&mut self, handle: Handle) -> Result<SlotReply, SlotError> {
        let i = self.check(handle).map_err(SlotError::Unpin)?;
        if self.slots[i].pins == 0 {
            return Err(SlotError::Unpin(HandleError::Stale { current: handle.generation }));
        }
        self.slots[i].pins -= 1;
        let s = &self.slots[i];
        if s.pins == 0
            && (s.state == SlotState::Unregistering || (s.state == SlotState::Cancelling && !s.prepare_in_flight))
        {
            self.free(i);
        }
        Ok(SlotReply::Unpinned)
    }

    /// The next owed output.
    pub fn pop_owed(&mut self) -> Option<Out> {
        self.owed.pop_front()
    }
}
