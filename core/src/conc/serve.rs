//! The child driver of one mailbox: a [`ChildEndpoint`] executed against a
//! [`Region`] and a chip-side [`ChildBackend`].
//!
//! # Loop (one [`Serve::step`] does one unit of work)
//! 1. if the machine has an output queued, execute exactly one:
//!    `Read` -> [`Region::read_frame`] (copy out, decode), `AcceptTask` ->
//!    [`ChildBackend::accept_task`] (pin + enqueue, never run here),
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
//! actions (S9). [`Serve::run`] loops `step`, spinning then parking when a
//! step found nothing to do. Nothing in the loop blocks on a lane.
//!
//! # Exit
//! The loop ends when the shutdown flag is set, when the child poisons the
//! word (malformed or stale frame), or when it observes POISONED (the
//! parent's verdict). Both are one way.

use core::ops::Deref;

use crate::error::{ControlError, PoisonReason, RunError};
use crate::frame::{ControlFrame, ControlReply, FrameId, Settlement, TaskFrame};
use crate::ids::DispatchId;
use crate::mailbox::child::{ChildEndpoint, ChildInput, ChildOutput};
use crate::mailbox::word::WordState;
use crate::RunOutput;

use super::port::Backoff;
use super::region::Region;
use super::ring::Producer;

/// What the chip side tells the mailbox loop.
#[derive(Debug)]
pub enum ChildEvent {
    /// The run lane retired the task `dispatch` (slot unpinned).
    RunFinished { dispatch: DispatchId, result: Result<RunOutput, RunError> },
    /// The register lane settled what control `id.dispatch` started
    /// (`id.slot`/`id.generation` name the slot): a prepare finished or
    /// failed, or an artifact was freed.
    Settled { id: FrameId, settlement: Settlement },
}

/// The chip side of a child: the slot table and the lanes. Every method
/// returns at once (rule 9): work is queued on a lane, its end comes back
/// through `poll_event`.
pub trait ChildBackend {
    /// Pin the task's slot and enqueue the run on the run lane.
    fn accept_task(&mut self, task: TaskFrame) -> Result<(), RunError>;
    /// Apply a control to the slot table (register: queue the prepare;
    /// unregister: tombstone/cancel; memory/domain: act at once). For a
    /// fresh register or a final unregister, the settlement later comes
    /// through `poll_event` as `Settled` with the control's dispatch.
    fn apply_control(&mut self, control: ControlFrame) -> Result<ControlReply, ControlError>;
    /// The next lane event, if any.
    fn poll_event(&mut self) -> Option<ChildEvent>;
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

    /// Serve until shutdown or poison.
    pub fn run(&mut self) -> ServeExit {
        let mut backoff = Backoff::default();
        loop {
            match self.step() {
                Step::Busy => backoff.reset(),
                Step::Idle => backoff.snooze(),
                Step::Exit(e) => return e,
            }
        }
    }

    /// One unit of work (module doc).
    pub fn step(&mut self) -> Step {
        self.stats.steps += 1;
        if let Some(r) = self.machine.poisoned() {
            return Step::Exit(ServeExit::Poisoned(r.clone()));
        }
        if let Some(out) = self.machine.poll() {
            return match self.execute(out) {
                Some(exit) => Step::Exit(exit),
                None => Step::Busy,
            };
        }
        if let Some(ev) = self.backend.poll_event() {
            let input = match ev {
                ChildEvent::RunFinished { dispatch, result } => ChildInput::RunFinished { dispatch, result },
                ChildEvent::Settled { id, settlement } => ChildInput::Settled { id, settlement },
            };
            self.feed(input);
            self.stats.held_max = self.stats.held_max.max(self.machine.completions_held());
            return Step::Busy;
        }
        self.region.beat();
        if self.region.shutdown_requested() {
            return Step::Exit(ServeExit::ShutDown);
        }
        if !self.machine.wants_word() {
            return Step::Idle;
        }
        let word = self.region.word().load();
        // Reload the consumer's head only when something waits for room.
        let ring_free = self.ring.free(&self.region, self.machine.completions_held() > 0);
        self.feed(ChildInput::Observed { word, ring_free });
        let changed = word != self.last_word;
        self.last_word = word;
        if let Some(r) = self.machine.poisoned() {
            return Step::Exit(ServeExit::Poisoned(r.clone()));
        }
        // Busy when the observation produced work or the word changed.
        if changed {
            Step::Busy
        } else {
            Step::Idle
        }
    }

    fn feed(&mut self, input: ChildInput) {
        if let Err(e) = self.machine.handle(input) {
            panic!("serve fed its machine an unexpected input: {e:?}");
        }
    }

    fn execute(&mut self, out: ChildOutput) -> Option<ServeExit> {
        match out {
            ChildOutput::Read { field } => {
                let r = self.region.read_frame(field);
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
                self.region.write_frame(field, &frame).expect("a result frame fits its field");
            }
            ChildOutput::Cas { from, to } => {
                let r = self.region.word().cas(from, to);
                if r.is_ok() && to == WordState::TaskDone {
                    self.stats.task_done_published += 1;
                }
                if let Ok(()) = r {
                    self.last_word = to.encode();
                }
                self.feed(ChildInput::CasResult(r));
            }
            ChildOutput::Push(frame) => {
                self.ring.push(&self.region, frame).expect("the machine pushes only after seeing room");
                self.stats.pushes += 1;
            }
            ChildOutput::Poison { reason } => {
                let _previous = self.region.word().poison();
                return Some(ServeExit::Poisoned(reason));
            }
        }
        None
    }
}
