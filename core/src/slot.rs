//! The slot table: chip-side private records of registered callables.
//!
//! # States (docs/protocol.md section 3)
//! ```text
//! EMPTY --register--> PREPARING                    (generation += 1)
//! PREPARING --prepare ok--> PREPARED
//! PREPARING --prepare err--> FAILED(err)
//! PREPARING --final unregister--> CANCELLING        (cooperative cancel)
//! CANCELLING --prepare returned && pins == 0--> EMPTY  (artifact released once)
//! PREPARED --final unregister--> UNREGISTERING      (tombstone: no new pins; if pins > 0)
//! PREPARED --final unregister--> EMPTY              (if pins == 0: artifact released once)
//! FAILED --final unregister--> EMPTY                (if pins == 0, else UNREGISTERING)
//! UNREGISTERING --last pin released--> EMPTY        (deferred free, artifact released once)
//! EMPTY --generation == generation_max--> Retired   (never reused)
//! ```
//! A slot whose generation would pass `generation_max` is *retired* when it
//! reaches EMPTY: it is never handed out again. Generation 0 is never handed
//! out: the first registration into a slot gets generation 1.
//!
//! Details of each transition:
//! - **register** of a digest in the lookup (its slot PREPARING, PREPARED or
//!   FAILED) returns the same handle, `fresh: false`, registrations += 1.
//!   Otherwise it takes the lowest EMPTY slot, `fresh: true`, and queues
//!   `StartPrepare`; no EMPTY slot is `RegisterError::TableFull`.
//! - the **final unregister** (registrations reach 0) removes the digest from
//!   the lookup at once; a register of the same digest meanwhile gets a fresh
//!   slot. PREPARING -> CANCELLING queues `Cancel` then
//!   `Settled(Err(Cancelled))` (waiters fail at once; they need not wait for
//!   the prepare's safe point). PREPARED / FAILED with pins == 0 go straight
//!   to EMPTY (`Release` of the artifact if any, then `Freed`); with pins > 0
//!   they become UNREGISTERING. An unregister through a handle whose
//!   registrations already ended is `UnregisterError::NotRegistered`.
//! - **prepare finished** in PREPARING: ok -> PREPARED, err -> FAILED; queues
//!   `Settled`. In CANCELLING the result is never published: an artifact is
//!   queued for `Release`, and the slot goes EMPTY (`Freed`) once pins == 0.
//!   A completion of another generation is stale: dropped, counted, replied
//!   `PrepareStale`, its artifact (if any) queued for `Release`.
//! - **pin**: PREPARED -> `Pinned { ready: true }`; PREPARING ->
//!   `Pinned { ready: false }` (the run waits for `Settled`, FIFO on the run
//!   lane); FAILED -> `RunError::PrepareFailed`; EMPTY, CANCELLING,
//!   UNREGISTERING, Retired -> `RunError::NotRunnable` at once.
//! - **unpin** exactly once per pin. The last unpin of an UNREGISTERING slot,
//!   or of a CANCELLING slot whose prepare returned, frees it (`Release` of
//!   the artifact if any, then `Freed`).
//! - **runnable** (at the head of the run lane, for a pinned run): PREPARED
//!   and UNREGISTERING-with-artifact run; PREPARING waits; FAILED (and
//!   UNREGISTERING from FAILED) fail with the prepare error; CANCELLING fails
//!   with `RunError::Cancelled`.
//!
//! Every input checks its handle first: another worker is
//! `HandleError::Foreign`, an index outside the table `OutOfRange`, another
//! generation `Stale { current }`. Two caller bugs with a current handle are
//! reported as `Stale { current }` with `current == handle.generation`:
//! `Unpin` without a pin (`SlotError::Unpin`) and a second `PrepareFinished`
//! for one prepare (`SlotError::Prepare`). A rejected input changes no slot;
//! a rejected `PrepareFinished` still queues `Release` of its artifact, so no
//! artifact leaks.
//!
//! # Who drives what
//! The owner (the L2 worker's registry, or the chip child) calls
//! `handle(SlotInput)` and then drains `poll()` until `None`. `handle` returns
//! the immediate reply; `poll` yields what the owner now owes (start a
//! prepare, signal a cancel, release an artifact, settle a waiter), each
//! output exactly once, in the order it became owed.
//!
//! Call order: `handle(Register)` -> `poll()` yields `StartPrepare` ->
//! owner runs the prepare on the register lane (no lock held) ->
//! `handle(PrepareFinished)` -> `poll()` yields `Settled` (and `Release` if
//! the slot was cancelled meanwhile). `handle(Pin)` before a run is queued,
//! `handle(Unpin)` exactly once when the run retires.
//!
//! # Invariants (checked by `check_invariants`, asserted in debug builds
//! at the end of every `handle`)
//! - the lookup maps a digest to exactly the slots in PREPARING, PREPARED or
//!   FAILED, and each such slot is reachable from its digest;
//! - `registrations > 0` iff the slot is PREPARING, PREPARED or FAILED;
//! - an artifact is held only in PREPARED and UNREGISTERING (PREPARED always
//!   holds one), and each artifact leaves the table exactly once (through
//!   `Release`: it is moved out, never copied);
//! - a prepare error is held only in FAILED and UNREGISTERING (FAILED always
//!   holds one; UNREGISTERING holds exactly one of artifact and error);
//! - EMPTY and Retired slots have `pins == 0`; UNREGISTERING has `pins > 0`
//!   and CANCELLING has `pins > 0` or its prepare in flight (else the free
//!   is overdue);
//! - a prepare is in flight only in PREPARING (always) and CANCELLING;
//! - generations never exceed `generation_max`; a Retired slot has reached it
//!   and an EMPTY slot has not;
//! - a completion (`PrepareFinished`) whose generation is not the slot's
//!   current one is dropped and counted in `stale_completions`, never applied.

use std::collections::{BTreeMap, VecDeque};

use crate::chip::ChipError;
use crate::error::{HandleError, RegisterError, RunError, UnregisterError};
use crate::ids::{CallableDigest, CallableHandle, Generation, SlotIndex, WorkerId};

/// The state of one slot (without its payload).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SlotState {
    /// Free: the next fresh register may take it.
    Empty,
    /// Registered; its prepare runs (or waits) on the register lane. Runs
    /// may pin it and wait for the settlement.
    Preparing,
    /// Registered and prepared: runs run.
    Prepared,
    /// Registered, but the prepare failed: runs fail with that error.
    Failed,
    /// The final unregister came while preparing: the prepare is asked to
    /// stop; the slot frees once it returned and no run holds a pin.
    Cancelling,
    /// Tombstoned by the final unregister: no new pins; the slot frees when
    /// the last pinned run retires.
    Unregistering,
    /// The generation space is used up; the slot is never reused.
    Retired,
}

/// Limits of a table. Model checkers shrink both (fewer states to explore).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct SlotLimits {
    /// Number of slots (at most `u32::MAX`); a register with none EMPTY is
    /// `RegisterError::TableFull`.
    pub capacity: usize,
    /// The last generation a slot may reach; a slot there retires when it
    /// next becomes EMPTY.
    pub generation_max: Generation,
}

impl Default for SlotLimits {
    fn default() -> Self {
        SlotLimits { capacity: 256, generation_max: Generation::MAX }
    }
}

/// Inputs to the slot table.
#[derive(Debug, Clone, Hash)]
pub enum SlotInput<A> {
    /// Register a chip callable by digest.
    Register {
        /// The callable's digest (equal digests share one slot).
        digest: CallableDigest,
    },
    /// End one registration of `handle`; the last one tears the slot down.
    Unregister {
        /// The handle to unregister.
        handle: CallableHandle,
    },
    /// The register lane finished the prepare started for `handle`.
    PrepareFinished {
        /// The handle from the prepare's `StartPrepare`.
        handle: CallableHandle,
        /// The artifact, or the device's error.
        result: Result<A, ChipError>,
    },
    /// Pin the slot for a run about to be queued.
    Pin {
        /// The handle to run.
        handle: CallableHandle,
    },
    /// A run that pinned `handle` retired (whatever its outcome).
    Unpin {
        /// The handle the run pinned.
        handle: CallableHandle,
    },
}

/// Immediate replies of `handle`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum SlotReply {
    /// `fresh` is true when a new slot generation began (a prepare is owed).
    Registered {
        /// The handle of the registration.
        handle: CallableHandle,
        /// A new generation began: `StartPrepare` is queued.
        fresh: bool,
    },
    /// `last` is true for the final unregister (teardown started).
    Unregistered {
        /// That was the last registration: teardown started.
        last: bool,
    },
    /// The prepare result was applied.
    PrepareApplied,
    /// The prepare result carried an old generation and was dropped.
    PrepareStale,
    /// The slot is pinned; `ready` says whether it is PREPARED already (else
    /// PREPARING: the run waits for `Settled` in FIFO order).
    Pinned {
        /// The slot is PREPARED (else PREPARING).
        ready: bool,
    },
    /// The pin was released.
    Unpinned,
}

/// Errors of `handle`, one per input kind.
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub enum SlotError {
    /// `Register` was refused (the table is full).
    Register(RegisterError),
    /// `Unregister` was refused (bad handle, or its registrations ended).
    Unregister(UnregisterError),
    /// `Pin` was refused: the run fails with this error.
    Pin(RunError),
    /// `Unpin` of a slot that holds no pin for this handle: a caller bug.
    Unpin(HandleError),
    /// `PrepareFinished` for a slot that is not preparing in that generation
    /// and is not stale either (a caller bug).
    Prepare(HandleError),
}

/// What the owner owes after a `handle`.
#[derive(Debug, Clone, Hash)]
#[must_use]
pub enum SlotOutput<A> {
    /// Start preparing the callable registered as `handle` on the register lane.
    StartPrepare {
        /// The new registration; report back with `PrepareFinished` for it.
        handle: CallableHandle,
        /// What to prepare.
        digest: CallableDigest,
    },
    /// Ask the in-flight prepare of `handle` to stop at its next safe point.
    Cancel {
        /// The registration whose prepare to cancel.
        handle: CallableHandle,
    },
    /// Release this artifact (exactly once) on the register lane.
    Release {
        /// The registration the artifact was prepared for.
        handle: CallableHandle,
        /// The artifact, moved out of the table.
        artifact: A,
    },
    /// The prepare of `handle` settled: waiters on the slot may proceed.
    /// `Ok` = PREPARED; `Err` = FAILED or cancelled.
    Settled {
        /// The registration that settled.
        handle: CallableHandle,
        /// `Ok` = PREPARED; `Err` = why not.
        result: Result<(), RegisterError>,
    },
    /// `handle`'s slot reached EMPTY (or Retired): teardown finished.
    Freed {
        /// The registration whose slot was freed.
        handle: CallableHandle,
    },
}

/// One slot's record.
#[derive(Debug, Clone, Hash)]
struct Slot<A> {
    state: SlotState,
    generation: Generation,
    /// Digest of the current (or last) registration; meaningful only in
    /// PREPARING, PREPARED and FAILED (the states reachable from the lookup).
    digest: CallableDigest,
    registrations: u32,
    pins: u32,
    /// The prepare started for this generation has not reported back yet.
    prepare_in_flight: bool,
    /// Held only in PREPARED and UNREGISTERING (came from PREPARED).
    artifact: Option<A>,
    /// Held only in FAILED and UNREGISTERING (came from FAILED).
    error: Option<ChipError>,
}

impl<A> Slot<A> {
    fn new(generation_max: Generation) -> Self {
        // Generation 0 is never handed out; a table whose maximum is 0 has no
        // generation to give, so its slots start retired.
        let state = if generation_max == Generation::NONE { SlotState::Retired } else { SlotState::Empty };
        Slot {
            state,
            generation: Generation::NONE,
            digest: CallableDigest::default(),
            registrations: 0,
            pins: 0,
            prepare_in_flight: false,
            artifact: None,
            error: None,
        }
    }
}

/// The slot table. See the module doc.
#[derive(Debug, Clone, Hash)]
pub struct SlotTable<A> {
    worker: WorkerId,
    limits: SlotLimits,
    slots: Vec<Slot<A>>,
    /// Digest -> slot index for every slot in PREPARING, PREPARED or FAILED.
    /// A BTreeMap so that nothing in the table depends on hash seeds.
    lookup: BTreeMap<CallableDigest, SlotIndex>,
    outputs: VecDeque<SlotOutput<A>>,
    stale_completions: u64,
}

impl<A> SlotTable<A> {
    /// A table of `limits.capacity` EMPTY slots for `worker`.
    ///
    /// # Panics
    /// If `limits.capacity` does not fit a `SlotIndex` (u32).
    pub fn new(worker: WorkerId, limits: SlotLimits) -> Self {
        assert!(u32::try_from(limits.capacity).is_ok(), "slot capacity {} exceeds u32", limits.capacity);
        let slots = (0..limits.capacity).map(|_| Slot::new(limits.generation_max)).collect();
        SlotTable { worker, limits, slots, lookup: BTreeMap::new(), outputs: VecDeque::new(), stale_completions: 0 }
    }

    /// The worker this table belongs to (a handle of another is `Foreign`).
    pub fn worker(&self) -> WorkerId {
        self.worker
    }

    /// The limits this table was built with.
    pub fn limits(&self) -> SlotLimits {
        self.limits
    }

    /// Apply one input; the immediate reply or a typed error.
    ///
    /// A typed error changes no slot, with one exception that keeps artifacts
    /// from leaking: a rejected `PrepareFinished` that carries an artifact
    /// queues `Release` for it.
    pub fn handle(&mut self, input: SlotInput<A>) -> Result<SlotReply, SlotError> {
        let reply = match input {
            SlotInput::Register { digest } => self.register(digest),
            SlotInput::Unregister { handle } => self.unregister(handle),
            SlotInput::PrepareFinished { handle, result } => self.prepare_finished(handle, result),
            SlotInput::Pin { handle } => self.pin(handle),
            SlotInput::Unpin { handle } => self.unpin(handle),
        };
        debug_assert_eq!(self.check_invariants(), Ok(()), "slot table invariant broken");
        reply
    }

    /// The next thing the owner owes, in the order it became owed.
    pub fn poll(&mut self) -> Option<SlotOutput<A>> {
        self.outputs.pop_front()
    }

    /// Check a handle against the table (worker, range, generation).
    pub fn check(&self, handle: CallableHandle) -> Result<SlotState, HandleError> {
        self.index_of(handle).map(|i| self.slots[i].state)
    }

    /// What a run that pinned `handle` may do now, at the head of the run lane:
    /// `Ok(Some(artifact))` run it; `Ok(None)` wait for `Settled` (PREPARING);
    /// `Err` fail the run (prepare failed, cancelled, ...). Never changes state.
    pub fn runnable(&self, handle: CallableHandle) -> Result<Option<&A>, RunError> {
        let i = self.index_of(handle).map_err(RunError::Handle)?;
        let slot = &self.slots[i];
        match slot.state {
            SlotState::Prepared => Ok(slot.artifact.as_ref()),
            SlotState::Preparing => Ok(None),
            SlotState::Failed => Err(RunError::PrepareFailed(Self::recorded_error(slot))),
            SlotState::Cancelling => Err(RunError::Cancelled),
            // Tombstoned after the pin: the run still runs (or fails with the
            // prepare error when the slot came from FAILED); the free waits
            // for its unpin.
            SlotState::Unregistering => match &slot.artifact {
                Some(artifact) => Ok(Some(artifact)),
                None => Err(RunError::PrepareFailed(Self::recorded_error(slot))),
            },
            SlotState::Empty | SlotState::Retired => Err(RunError::NotRunnable(slot.state)),
        }
    }

    /// State of a slot by index.
    pub fn state(&self, index: SlotIndex) -> Option<SlotState> {
        self.slots.get(index.0 as usize).map(|s| s.state)
    }

    /// Current generation of a slot by index.
    pub fn generation(&self, index: SlotIndex) -> Option<Generation> {
        self.slots.get(index.0 as usize).map(|s| s.generation)
    }

    /// Current pin count of a slot.
    pub fn pins(&self, index: SlotIndex) -> u32 {
        self.slots.get(index.0 as usize).map_or(0, |s| s.pins)
    }

    /// Registration count of a slot.
    pub fn registrations(&self, index: SlotIndex) -> u32 {
        self.slots.get(index.0 as usize).map_or(0, |s| s.registrations)
    }

    /// The handle currently registered for `digest`, if any.
    pub fn lookup(&self, digest: &CallableDigest) -> Option<CallableHandle> {
        self.lookup.get(digest).map(|&index| self.handle_at(index.0 as usize))
    }

    /// Completions dropped because they carried an old generation.
    pub fn stale_completions(&self) -> u64 {
        self.stale_completions
    }

    /// Number of slots in use (not EMPTY and not Retired).
    pub fn live_slots(&self) -> usize {
        self.slots.iter().filter(|s| !matches!(s.state, SlotState::Empty | SlotState::Retired)).count()
    }

    /// Check every invariant of the module doc; `Err` names the broken one.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (&digest, &index) in &self.lookup {
            let slot = self
                .slots
                .get(index.0 as usize)
                .ok_or_else(|| format!("lookup: {digest:?} maps to out-of-range slot {index:?}"))?;
            if !Self::registered_state(slot.state) {
                return Err(format!("lookup: {digest:?} maps to slot {index:?} in state {:?}", slot.state));
            }
            if slot.digest != digest {
                return Err(format!("lookup: {digest:?} maps to slot {index:?} holding {:?}", slot.digest));
            }
        }
        for (i, slot) in self.slots.iter().enumerate() {
            let at = |what: &str| format!("slot {i} ({:?}, {:?}): {what}", slot.state, slot.generation);
            let registered = Self::registered_state(slot.state);
            if registered && self.lookup.get(&slot.digest) != Some(&SlotIndex(i as u32)) {
                return Err(at("registered slot not reachable from its digest"));
            }
            if registered != (slot.registrations > 0) {
                return Err(at(&format!("registrations {} disagree with the state", slot.registrations)));
            }
            let artifact_allowed = matches!(slot.state, SlotState::Prepared | SlotState::Unregistering);
            if slot.artifact.is_some() && !artifact_allowed {
                return Err(at("holds an artifact outside PREPARED/UNREGISTERING"));
            }
            if slot.state == SlotState::Prepared && slot.artifact.is_none() {
                return Err(at("PREPARED without an artifact"));
            }
            let error_allowed = matches!(slot.state, SlotState::Failed | SlotState::Unregistering);
            if slot.error.is_some() && !error_allowed {
                return Err(at("holds a prepare error outside FAILED/UNREGISTERING"));
            }
            if slot.state == SlotState::Failed && slot.error.is_none() {
                return Err(at("FAILED without an error"));
            }
            if slot.state == SlotState::Unregistering && slot.artifact.is_some() == slot.error.is_some() {
                return Err(at("UNREGISTERING must hold exactly one of artifact / error"));
            }
            if matches!(slot.state, SlotState::Empty | SlotState::Retired) && slot.pins != 0 {
                return Err(at(&format!("{} pins on a free slot", slot.pins)));
            }
            if slot.state == SlotState::Unregistering && slot.pins == 0 {
                return Err(at("UNREGISTERING with no pins (the free is overdue)"));
            }
            if slot.state == SlotState::Cancelling && slot.pins == 0 && !slot.prepare_in_flight {
                return Err(at("CANCELLING with no pins and no prepare (the free is overdue)"));
            }
            let in_flight_allowed = matches!(slot.state, SlotState::Preparing | SlotState::Cancelling);
            if slot.prepare_in_flight && !in_flight_allowed {
                return Err(at("prepare in flight outside PREPARING/CANCELLING"));
            }
            if slot.state == SlotState::Preparing && !slot.prepare_in_flight {
                return Err(at("PREPARING without a prepare in flight"));
            }
            if slot.generation > self.limits.generation_max {
                return Err(at("generation beyond generation_max"));
            }
            if slot.state == SlotState::Retired && slot.generation != self.limits.generation_max {
                return Err(at("retired before its generations ran out"));
            }
            if slot.state == SlotState::Empty && slot.generation >= self.limits.generation_max {
                return Err(at("EMPTY with no generation left (should be Retired)"));
            }
            if slot.state != SlotState::Empty && slot.state != SlotState::Retired && slot.generation == Generation::NONE
            {
                return Err(at("in use with generation 0"));
            }
        }
        Ok(())
    }

    // ---- transitions -------------------------------------------------------

    fn register(&mut self, digest: CallableDigest) -> Result<SlotReply, SlotError> {
        if let Some(&index) = self.lookup.get(&digest) {
            let i = index.0 as usize;
            let slot = &mut self.slots[i];
            // One registration per caller-held handle: u32::MAX of them is
            // beyond any real owner.
            slot.registrations = slot.registrations.checked_add(1).expect("registration count overflow");
            return Ok(SlotReply::Registered { handle: self.handle_at(i), fresh: false });
        }
        let Some(i) = self.slots.iter().position(|s| s.state == SlotState::Empty) else {
            return Err(SlotError::Register(RegisterError::TableFull));
        };
        let max = self.limits.generation_max;
        let slot = &mut self.slots[i];
        // An EMPTY slot always has a next generation: one without is Retired.
        let generation = slot.generation.next(max).expect("EMPTY slot without a next generation");
        slot.generation = generation;
        slot.state = SlotState::Preparing;
        slot.digest = digest;
        slot.registrations = 1;
        slot.prepare_in_flight = true;
        self.lookup.insert(digest, SlotIndex(i as u32));
        let handle = self.handle_at(i);
        self.outputs.push_back(SlotOutput::StartPrepare { handle, digest });
        Ok(SlotReply::Registered { handle, fresh: true })
    }

    fn unregister(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        let i = self.index_of(handle).map_err(|e| SlotError::Unregister(UnregisterError::Handle(e)))?;
        if self.slots[i].registrations == 0 {
            return Err(SlotError::Unregister(UnregisterError::NotRegistered));
        }
        self.slots[i].registrations -= 1;
        if self.slots[i].registrations > 0 {
            return Ok(SlotReply::Unregistered { last: false });
        }
        // Final unregister: the digest leaves the lookup at once, so a new
        // register of it gets a fresh slot while this one is torn down.
        let digest = self.slots[i].digest;
        self.lookup.remove(&digest);
        let handle = self.handle_at(i);
        match self.slots[i].state {
            SlotState::Preparing => {
                self.slots[i].state = SlotState::Cancelling;
                self.outputs.push_back(SlotOutput::Cancel { handle });
                // Waiters need not wait for the prepare to reach a safe point.
                self.outputs.push_back(SlotOutput::Settled { handle, result: Err(RegisterError::Cancelled) });
            }
            SlotState::Prepared => {
                #[cfg(chiplane_mutant = "free_while_pinned")]
                {
                    // MUTANT: free at once, even while runs hold pins.
                    self.free_slot(i);
                }
                #[cfg(not(chiplane_mutant = "free_while_pinned"))]
                {
                    if self.slots[i].pins == 0 {
                        self.free_slot(i);
                    } else {
                        self.slots[i].state = SlotState::Unregistering;
                    }
                }
            }
            SlotState::Failed => {
                if self.slots[i].pins == 0 {
                    self.free_slot(i);
                } else {
                    self.slots[i].state = SlotState::Unregistering;
                }
            }
            state => unreachable!("registrations > 0 in state {state:?}"),
        }
        Ok(SlotReply::Unregistered { last: true })
    }

    fn prepare_finished(
        &mut self,
        handle: CallableHandle,
        result: Result<A, ChipError>,
    ) -> Result<SlotReply, SlotError> {
        let i = match self.index_of(handle) {
            Ok(i) => i,
            Err(HandleError::Stale { .. }) => {
                // A completion of an older (or never issued) generation: drop
                // it, count it, hand any artifact back for release.
                self.stale_completions += 1;
                self.release_carried(handle, result);
                return Ok(SlotReply::PrepareStale);
            }
            Err(e) => {
                self.release_carried(handle, result);
                return Err(SlotError::Prepare(e));
            }
        };
        let handle = self.handle_at(i);
        let slot = &mut self.slots[i];
        if !slot.prepare_in_flight {
            // Current generation, but its prepare already reported (or none
            // was started): a duplicate completion, a caller bug.
            let current = slot.generation;
            self.release_carried(handle, result);
            return Err(SlotError::Prepare(HandleError::Stale { current }));
        }
        slot.prepare_in_flight = false;
        match slot.state {
            SlotState::Preparing => match result {
                Ok(artifact) => {
                    slot.artifact = Some(artifact);
                    slot.state = SlotState::Prepared;
                    self.outputs.push_back(SlotOutput::Settled { handle, result: Ok(()) });
                }
                Err(err) => {
                    slot.error = Some(err.clone());
                    slot.state = SlotState::Failed;
                    self.outputs
                        .push_back(SlotOutput::Settled { handle, result: Err(RegisterError::PrepareFailed(err)) });
                }
            },
            SlotState::Cancelling => {
                #[cfg(chiplane_mutant = "prepared_after_cancel")]
                if let Ok(artifact) = result {
                    // MUTANT: the cancelled prepare publishes PREPARED.
                    slot.artifact = Some(artifact);
                    slot.state = SlotState::Prepared;
                    self.outputs.push_back(SlotOutput::Settled { handle, result: Ok(()) });
                    return Ok(SlotReply::PrepareApplied);
                }
                // Cancelled: never published; an artifact it built anyway is
                // released. `Settled(Cancelled)` went out at the unregister.
                if let Ok(artifact) = result {
                    self.outputs.push_back(SlotOutput::Release { handle, artifact });
                }
                if slot.pins == 0 {
                    self.free_slot(i);
                }
            }
            state => unreachable!("prepare in flight in state {state:?}"),
        }
        Ok(SlotReply::PrepareApplied)
    }

    fn pin(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        let i = self.index_of(handle).map_err(|e| SlotError::Pin(RunError::Handle(e)))?;
        let slot = &mut self.slots[i];
        let ready = match slot.state {
            SlotState::Prepared => true,
            SlotState::Preparing => false,
            SlotState::Failed => return Err(SlotError::Pin(RunError::PrepareFailed(Self::recorded_error(slot)))),
            state @ (SlotState::Empty | SlotState::Cancelling | SlotState::Unregistering | SlotState::Retired) => {
                return Err(SlotError::Pin(RunError::NotRunnable(state)))
            }
        };
        // One pin per queued run: u32::MAX queued runs is beyond any owner.
        slot.pins = slot.pins.checked_add(1).expect("pin count overflow");
        Ok(SlotReply::Pinned { ready })
    }

    fn unpin(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        let i = self.index_of(handle).map_err(SlotError::Unpin)?;
        let slot = &mut self.slots[i];
        if slot.pins == 0 {
            // Current generation but no pin to release: a caller bug.
            return Err(SlotError::Unpin(HandleError::Stale { current: slot.generation }));
        }
        slot.pins -= 1;
        if slot.pins == 0 {
            let deferred_free = match slot.state {
                SlotState::Unregistering => true,
                SlotState::Cancelling => !slot.prepare_in_flight,
                _ => false,
            };
            if deferred_free {
                self.free_slot(i);
            }
        }
        Ok(SlotReply::Unpinned)
    }

    // ---- helpers -----------------------------------------------------------

    /// Slot `i` reached the end of its generation: release its artifact (if
    /// any), forget its payload, and make it EMPTY, or Retired when its
    /// generation space is used up.
    fn free_slot(&mut self, i: usize) {
        let handle = self.handle_at(i);
        let max = self.limits.generation_max;
        let slot = &mut self.slots[i];
        debug_assert_eq!(slot.registrations, 0, "freeing a registered slot");
        if let Some(artifact) = slot.artifact.take() {
            self.outputs.push_back(SlotOutput::Release { handle, artifact });
        }
        slot.error = None;
        slot.prepare_in_flight = false;
        slot.digest = CallableDigest::default();
        slot.state = if slot.generation >= max { SlotState::Retired } else { SlotState::Empty };
        self.outputs.push_back(SlotOutput::Freed { handle });
    }

    /// Queue the artifact of a rejected or stale completion for release.
    fn release_carried(&mut self, handle: CallableHandle, result: Result<A, ChipError>) {
        if let Ok(artifact) = result {
            self.outputs.push_back(SlotOutput::Release { handle, artifact });
        }
    }

    /// The slot index `handle` names, after checking worker, range and
    /// generation.
    fn index_of(&self, handle: CallableHandle) -> Result<usize, HandleError> {
        handle.check_worker(self.worker)?;
        let i = handle.index.0 as usize;
        let Some(slot) = self.slots.get(i) else {
            return Err(HandleError::OutOfRange);
        };
        #[cfg(not(chiplane_mutant = "no_generation_check"))]
        if handle.generation != slot.generation {
            return Err(HandleError::Stale { current: slot.generation });
        }
        // MUTANT no_generation_check: the comparison above is compiled out.
        #[cfg(chiplane_mutant = "no_generation_check")]
        let _ = slot;
        Ok(i)
    }

    /// The current handle of slot `i`.
    fn handle_at(&self, i: usize) -> CallableHandle {
        CallableHandle { worker: self.worker, index: SlotIndex(i as u32), generation: self.slots[i].generation }
    }

    fn registered_state(state: SlotState) -> bool {
        matches!(state, SlotState::Preparing | SlotState::Prepared | SlotState::Failed)
    }

    fn recorded_error(slot: &Slot<A>) -> ChipError {
        slot.error.clone().expect("FAILED slot without its prepare error")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::WorkerId;

    /// A generation never wraps: with the production limit (`u32::MAX`),
    /// the slot at `u32::MAX - 1` gets one more registration (generation
    /// `u32::MAX`) and is then retired, never reused at generation 0 or 1;
    /// the old handles stay stale.
    #[test]
    fn the_generation_never_wraps_at_u32_max() {
        let mut t: SlotTable<u8> =
            SlotTable::new(WorkerId(1), SlotLimits { capacity: 1, generation_max: Generation::MAX });
        t.slots[0].generation = Generation(u32::MAX - 1);
        let d = CallableDigest([7; 32]);
        let Ok(SlotReply::Registered { handle, fresh: true }) = t.handle(SlotInput::Register { digest: d }) else {
            panic!("register");
        };
        assert_eq!(handle.generation, Generation::MAX);
        while t.poll().is_some() {}
        assert_eq!(t.handle(SlotInput::PrepareFinished { handle, result: Ok(1) }), Ok(SlotReply::PrepareApplied));
        assert_eq!(t.handle(SlotInput::Unregister { handle }), Ok(SlotReply::Unregistered { last: true }));
        while t.poll().is_some() {}
        assert_eq!(t.state(handle.index), Some(SlotState::Retired), "retired at u32::MAX, not wrapped");
        assert_eq!(
            t.handle(SlotInput::Register { digest: d }),
            Err(SlotError::Register(RegisterError::TableFull)),
            "a retired slot is never handed out again"
        );
        let wrapped = CallableHandle { generation: Generation(0), ..handle };
        assert!(matches!(t.check(wrapped), Err(HandleError::Stale { .. })));
        assert_eq!(Generation::MAX.next(Generation::MAX), None);
        assert_eq!(Generation(u32::MAX - 1).next(Generation::MAX), Some(Generation::MAX));
    }
}
