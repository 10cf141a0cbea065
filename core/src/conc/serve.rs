//! The child driver of one mailbox: a [`ChildEndpoint`] executed against a
//! [`Region`] and a chip-side [`ChildBackend`].
//!
//! # Loop (one [`Serve::step`] does one unit of work)
//! 1. if the machine has an output queued, execute exactly one:
//!    `Read` -> [`Region::read_frame_with`] (copy out, decode), `AcceptTask` ->
//!    [`ChildBackend::accept_task`] (pin + enqueue; only a run the chip
//!    calls short is executed here, docs/protocol.md rule 9),
//!    `ApplyControl` -> [`ChildBackend::apply_control`] (never waits for a
//!    lane: rule 9), `Write` -> [`Region::write_frame`], `Cas` -> the one
//!    CAS helper in [`super::word`], `Push` -> the completion ring,
//!    `Poison` -> swap POISONED and stop;
//! 2. otherwise feed one lane event from [`ChildBackend::poll_event`]
//!    (`RunFinished`, `Settled`);
//! 3. otherwise beat the heartbeat, check the sticky shutdown flag, and (when
//!    the machine wants it) load the word (Acquire) and the ring's free
//!    entries and feed `Observed`.
//!
//! One output per step lets a model kill the child between any two protocol
//! actions (S9). The loop around `step` (spin on cheap loads, then sleep on
//! the child's doorbell) is [`super::child::serve_loop`]. Nothing in it
//! blocks on a lane.
//!
//! After a step that published something the parent may wait for (a CAS of
//! the word, a completion pushed), [`Serve::take_published`] is true once:
//! the loop then rings the parent's doorbell.
//!
//! # Exit
//! The loop ends when the shutdown flag is set, when the child poisons the
//! word (malformed or stale frame), or when it observes POISONED (the
//! parent's verdict). Both are one way.

use core::ops::Deref;

pub use crate::chipside::ChildEvent;
use crate::error::{ControlError, PoisonReason, RunError};
use crate::frame::{ControlFrame, ControlReply, TaskFrame};
use crate::mailbox::child::{ChildEndpoint, ChildInput, ChildOutput};
use crate::mailbox::word::WordState;

use super::bell::Interest;
use super::region::Region;
use super::ring::Producer;

/// The chip side of a child: the slot table and the lanes. Every method
/// returns at once (rule 9): work is queued on a lane, its end comes back
/// through `poll_event` (a short run, executed inside `accept_task`, too).
pub trait ChildBackend {
    /// Pin the task's slot and enqueue the run on the run lane (or, for a
    /// run the chip calls short, execute it before returning: rule 9).
    fn accept_task(&mut self, task: TaskFrame) -> Result<(), RunError>;
    /// Apply a control to the slot table (register: queue the prepare;
    /// unregister: tombstone/cancel; memory/domain: act at once). For a
    /// fresh register or a final unregister, the settlement later comes
    /// through `poll_event` as `Settled` with the control's dispatch.
    fn apply_control(&mut self, control: ControlFrame) -> Result<ControlReply, ControlError>;
    /// The next lane event, if any.
    fn poll_event(&mut self) -> Option<ChildEvent>;
    /// A counter that changes whenever an event arrives (one cheap load:
    /// the serve loop watches it while it spins).
    fn events_seq(&self) -> u64;
}

/// Why the loop ended.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ServeExit {
    /// The sticky shutdown flag was set.
    ShutDown,
    /// The word is POISONED (by this child for `reason`, or by the parent).
    Poisoned(PoisonReason),
}

/// What one step did.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Step {
    /// Executed an output or fed an event or a changed word.
    Busy,
    /// Nothing to do.
    Idle,
    Exit(ServeExit),
}

/// Counters for tests and reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServeStats {
    pub steps: u64,
    /// Successful TASK_DONE publications.
    pub task_done_published: u64,
    pub pushes: u64,
    /// Most settlements held at once waiting for ring room.
    pub held_max: usize,
}

/// The child driver. See the module doc.
#[derive(Debug)]
pub struct Serve<R: Deref<Target = Region>, B: ChildBackend> {
    region: R,
    backend: B,
    machine: ChildEndpoint,
    ring: Producer,
    last_word: u32,
    last_events: u64,
    /// Ring head seen while settlements wait for room.
    last_head: u64,
    published: bool,
    /// Frames are copied out into this buffer, kept from read to read.
    scratch: Vec<u8>,
    stats: ServeStats,
}

impl<R: Deref<Target = Region>, B: ChildBackend> Serve<R, B> {
    /// Serve `region` as its child.
    pub fn new(region: R, backend: B) -> Self {
        let ring = Producer::new(&region);
        Serve {
            region,
            backend,
            machine: ChildEndpoint::new(),
            ring,
            last_word: u32::MAX,
            last_events: 0,
            last_head: 0,
            published: false,
            scratch: Vec::new(),
            stats: ServeStats::default(),
        }
    }

    pub fn stats(&self) -> &ServeStats {
        &self.stats
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    pub fn endpoint(&self) -> &ChildEndpoint {
        &self.machine
    }

    /// The region served.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// True once after a step that published something the parent may wait
    /// for (a word CAS, a completion pushed): ring its doorbell.
    pub fn take_published(&mut self) -> bool {
        core::mem::take(&mut self.published)
    }

    /// What the loop sleeps for (`super::bell`, "Rings and nudges"): work
    /// only while the child holds a task that is still running and waits
    /// for no consumption (the parent's restore of the word after a
    /// control then gives it nothing to do); any change otherwise.
    pub fn sleep_interest(&self) -> Interest {
        // MUTANT deaf_to_restore: the loop sleeps for work only even while
        // a finished run's TASK_DONE waits for the restore (S2: the
        // restore's nudge wakes nobody, and TASK_DONE is never published).
        let awaits = !cfg!(chiplane_mutant = "deaf_to_restore") && self.machine.awaits_consumption();
        if self.machine.task().is_some() && !awaits {
            Interest::Work
        } else {
            Interest::Any
        }
    }

    /// Cheap loads only: has anything changed since the last idle step
    /// (the word, the lane events, the shutdown flag, ring room the held
    /// settlements wait for)? While false, a step would find nothing to do.
    pub fn changed(&self) -> bool {
        if self.machine.has_outputs() {
            return true;
        }
        if self.region.word().load() != self.last_word || self.backend.events_seq() != self.last_events {
            return true;
        }
        if self.region.shutdown_requested() {
            return true;
        }
        self.machine.completions_held() > 0 && self.ring.head(&self.region) != self.last_head
    }

    /// One unit of work (module doc).
    pub fn step(&mut self) -> Step {
        self.stats.steps += 1;
        // Outputs first: a machine that poisoned itself queued `Poison`,
        // which swaps POISONED into the word (the parent must see it).
        if let Some(out) = self.machine.poll() {
            return match self.execute(out) {
                Some(exit) => Step::Exit(exit),
                None => Step::Busy,
            };
        }
        if let Some(r) = self.machine.poisoned() {
            return Step::Exit(ServeExit::Poisoned(r.clone()));
        }
        let events = self.backend.events_seq();
        if let Some(ev) = self.backend.poll_event() {
            let input = match ev {
                ChildEvent::RunFinished { dispatch, result } => ChildInput::RunFinished { dispatch, result },
                ChildEvent::Settled { id, settlement } => ChildInput::Settled { id, settlement },
            };
            self.feed(input);
            self.stats.held_max = self.stats.held_max.max(self.machine.completions_held());
            return Step::Busy;
        }
        // Every event up to `events` was taken (the counter is bumped after
        // the push, so a later one changes it again).
        self.last_events = events;
        self.region.beat();
        if self.region.shutdown_requested() {
            return Step::Exit(ServeExit::ShutDown);
        }
        if !self.machine.wants_word() {
            return Step::Idle;
        }
        let word = self.region.word().load();
        // Reload the consumer's head only when something waits for room.
        let held = self.machine.completions_held() > 0;
        let ring_free = self.ring.free(&self.region, held);
        if held {
            // The head that room was computed from (not a second load: a
            // pop between the two would go unnoticed by `changed`).
            self.last_head = self.ring.head_seen();
        }
        self.feed(ChildInput::Observed { word, ring_free });
        let changed = word != self.last_word;
        self.last_word = word;
        if let Some(r) = self.machine.poisoned() {
            return Step::Exit(ServeExit::Poisoned(r.clone()));
        }
        // Busy when the observation produced work or the word changed.
        if changed || self.machine.has_outputs() {
            Step::Busy
        } else {
            Step::Idle
        }
    }

    fn feed(&mut self, input: ChildInput) {
        let r = self.machine.handle(input);
        assert!(r.is_ok(), "serve fed its machine an unexpected input: {r:?}");
    }

    fn execute(&mut self, out: ChildOutput) -> Option<ServeExit> {
        match out {
            ChildOutput::Read { field } => {
                let r = self.region.read_frame_with(field, &mut self.scratch);
                self.feed(ChildInput::ReadResult(r));
            }
            ChildOutput::AcceptTask(task) => {
                let input = match self.backend.accept_task(task) {
                    Ok(()) => ChildInput::TaskAccepted,
                    Err(e) => ChildInput::TaskRejected(e),
                };
                self.feed(input);
            }
            ChildOutput::ApplyControl(control) => {
                let r = self.backend.apply_control(control);
                self.feed(ChildInput::ControlApplied(r));
            }
            ChildOutput::Write { field, frame } => {
                // Every result the chip side hands out fits its frame (run
                // outputs are checked, details cut); a failure here is a
                // broken invariant, answered by poisoning, never a panic.
                if let Err(e) = self.region.write_frame(field, &frame) {
                    let _previous = self.region.word().poison();
                    return Some(ServeExit::Poisoned(PoisonReason::MalformedFrame(e)));
                }
            }
            ChildOutput::Cas { from, to } => {
                let r = self.region.word().cas(from, to);
                if r.is_ok() && to == WordState::TaskDone {
                    self.stats.task_done_published += 1;
                }
                if let Ok(()) = r {
                    self.last_word = to.encode();
                    self.published = true;
                }
                self.feed(ChildInput::CasResult(r));
            }
            ChildOutput::Push(frame) => {
                if self.ring.push(&self.region, frame).is_err() {
                    // The machine pushes only after it saw room: a parent
                    // that moved the head backwards broke the ring.
                    let _previous = self.region.word().poison();
                    return Some(ServeExit::Poisoned(PoisonReason::UnexpectedState(WordState::Poisoned.encode())));
                }
                self.stats.pushes += 1;
                self.published = true;
            }
            ChildOutput::Poison { reason } => {
                let _previous = self.region.word().poison();
                return Some(ServeExit::Poisoned(reason));
            }
        }
        None
    }
}
