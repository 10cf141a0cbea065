//! The slot table: chip-side private records of registered callables.
//!
//! # States (design.md section 3)
//! ```text
//! EMPTY --register--> PREPARING                    (generation += 1)
//! PREPARING --prepare ok--> PREPARED
//! PREPARING --prepare err--> FAILED(err)
//! PREPARING --final unregister--> CANCELLING        (cooperative cancel)
//! CANCELLING --prepare returned && pins == 0--> EMPTY  (artifact released once)
//! PREPARED --final unregister--> UNREGISTERING      (tombstone: no new pins)
//! FAILED --final unregister--> EMPTY                (if pins == 0, else UNREGISTERING)
//! UNREGISTERING --last pin released--> EMPTY        (deferred free, artifact released once)
//! ```
//! A slot whose generation would pass `generation_max` is *retired* when it
//! reaches EMPTY: it is never handed out again.
//!
//! # Who drives what
//! The owner (the L2 worker's registry, or the chip child) calls
//! `handle(SlotInput)` and then drains `poll()` until `None`. `handle` returns
//! the immediate reply; `poll` yields what the owner now owes (start a
//! prepare, signal a cancel, release an artifact, settle a waiter).
//!
//! Call order: `handle(Register)` -> `poll()` yields `StartPrepare` ->
//! owner runs the prepare on the register lane (no lock held) ->
//! `handle(PrepareFinished)` -> `poll()` yields `Settled` (and `Release` if
//! the slot was cancelled meanwhile). `handle(Pin)` before a run is queued,
//! `handle(Unpin)` exactly once when the run retires.
//!
//! # Invariants (checked by `check_invariants`, asserted in debug builds)
//! - the lookup maps a digest to exactly the slots in PREPARING, PREPARED or
//!   FAILED, and each such slot is reachable from its digest;
//! - `registrations > 0` iff the slot is PREPARING, PREPARED or FAILED;
//! - an artifact is held only in PREPARED and UNREGISTERING, and each artifact
//!   leaves the table exactly once (through `Release`);
//! - EMPTY slots have `pins == 0`;
//! - a completion (`PrepareFinished`) whose generation is not the slot's
//!   current one is dropped and counted in `stale_completions`, never applied.

use crate::chip::ChipError;
use crate::error::{HandleError, RegisterError, RunError, UnregisterError};
use crate::ids::{CallableDigest, Generation, Handle, SlotIndex, WorkerId};

/// The state of one slot (without its payload).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SlotState {
    Empty,
    Preparing,
    Prepared,
    Failed,
    Cancelling,
    Unregistering,
    /// The generation space is used up; the slot is never reused.
    Retired,
}

/// Limits of a table. Model checkers shrink both (fewer states to explore).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SlotLimits {
    pub capacity: usize,
    pub generation_max: Generation,
}

impl Default for SlotLimits {
    fn default() -> Self {
        SlotLimits { capacity: 256, generation_max: Generation::MAX }
    }
}

/// Inputs to the slot table.
#[derive(Debug)]
pub enum SlotInput<A> {
    /// Register a chip callable by digest.
    Register { digest: CallableDigest },
    /// End one registration of `handle`; the last one tears the slot down.
    Unregister { handle: Handle },
    /// The register lane finished the prepare started for `handle`.
    PrepareFinished { handle: Handle, result: Result<A, ChipError> },
    /// Pin the slot for a run about to be queued.
    Pin { handle: Handle },
    /// A run that pinned `handle` retired (whatever its outcome).
    Unpin { handle: Handle },
}

/// Immediate replies of `handle`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SlotReply {
    /// `fresh` is true when a new slot generation began (a prepare is owed).
    Registered { handle: Handle, fresh: bool },
    /// `last` is true for the final unregister (teardown started).
    Unregistered { last: bool },
    /// The prepare result was applied.
    PrepareApplied,
    /// The prepare result carried an old generation and was dropped.
    PrepareStale,
    /// The slot is pinned; `ready` says whether it is PREPARED already (else
    /// PREPARING: the run waits for `Settled` in FIFO order).
    Pinned { ready: bool },
    Unpinned,
}

/// Errors of `handle`, one per input kind.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SlotError {
    Register(RegisterError),
    Unregister(UnregisterError),
    Pin(RunError),
    /// `Unpin` of a slot that holds no pin for this handle: a caller bug.
    Unpin(HandleError),
    /// `PrepareFinished` for a slot that is not preparing in that generation
    /// and is not stale either (a caller bug).
    Prepare(HandleError),
}

/// What the owner owes after a `handle`.
#[derive(Debug)]
#[must_use]
pub enum SlotOutput<A> {
    /// Start preparing the callable registered as `handle` on the register lane.
    StartPrepare { handle: Handle, digest: CallableDigest },
    /// Ask the in-flight prepare of `handle` to stop at its next safe point.
    Cancel { handle: Handle },
    /// Release this artifact (exactly once) on the register lane.
    Release { handle: Handle, artifact: A },
    /// The prepare of `handle` settled: waiters on the slot may proceed.
    /// `Ok` = PREPARED; `Err` = FAILED or cancelled.
    Settled { handle: Handle, result: Result<(), RegisterError> },
    /// `handle`'s slot reached EMPTY (or Retired): teardown finished.
    Freed { handle: Handle },
}

/// The slot table. See the module doc.
#[derive(Debug)]
pub struct SlotTable<A> {
    _todo: core::marker::PhantomData<A>,
}

impl<A> SlotTable<A> {
    pub fn new(worker: WorkerId, limits: SlotLimits) -> Self {
        let _ = (worker, limits);
        todo!()
    }

    pub fn worker(&self) -> WorkerId {
        todo!()
    }

    /// Apply one input; the immediate reply or a typed error.
    pub fn handle(&mut self, input: SlotInput<A>) -> Result<SlotReply, SlotError> {
        let _ = input;
        todo!()
    }

    /// The next thing the owner owes, in the order it became owed.
    pub fn poll(&mut self) -> Option<SlotOutput<A>> {
        todo!()
    }

    /// Check a handle against the table (worker, range, generation).
    pub fn check(&self, handle: Handle) -> Result<SlotState, HandleError> {
        let _ = handle;
        todo!()
    }

    /// What a run that pinned `handle` may do now, at the head of the run lane:
    /// `Ok(Some(artifact))` run it; `Ok(None)` wait for `Settled` (PREPARING);
    /// `Err` fail the run (prepare failed, cancelled, ...). Never changes state.
    pub fn runnable(&self, handle: Handle) -> Result<Option<&A>, RunError> {
        let _ = handle;
        todo!()
    }

    /// State of a slot by index.
    pub fn state(&self, index: SlotIndex) -> Option<SlotState> {
        let _ = index;
        todo!()
    }

    /// Current pin count of a slot.
    pub fn pins(&self, index: SlotIndex) -> u32 {
        let _ = index;
        todo!()
    }

    /// Registration count of a slot.
    pub fn registrations(&self, index: SlotIndex) -> u32 {
        let _ = index;
        todo!()
    }

    /// Handle currently registered for `digest`, if any.
    pub fn lookup(&self, digest: &CallableDigest) -> Option<Handle> {
        let _ = digest;
        todo!()
    }

    /// Completions dropped because they carried an old generation.
    pub fn stale_completions(&self) -> u64 {
        todo!()
    }

    /// Number of slots in use (not EMPTY and not Retired).
    pub fn live_slots(&self) -> usize {
        todo!()
    }

    /// Check every invariant of the module doc; `Err` names the broken one.
    pub fn check_invariants(&self) -> Result<(), String> {
        todo!()
    }
}
