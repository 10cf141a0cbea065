//! The child (chip) endpoint machine.
//!
//! # What it owns
//! The child's private view of one mailbox: the task it has taken (at most
//! one: the parent publishes the next task only after consuming TASK_DONE),
//! the control it is serving (at most one: rule 4), a task result waiting to
//! be published, and the settlements waiting for room in the completion ring.
//! It never touches shared memory, the slot table or the lanes itself: it
//! tells its driver what to do and the driver reports back.
//!
//! # Call order
//! 1. The driver loads the word (Acquire) and the ring's free entries and
//!    feeds `Observed { word, ring_free }`, whenever `wants_word()` is true.
//! 2. The driver drains `poll()` and executes each output in order:
//!    - `Read { field }`: copy the frame out of `field` into private memory
//!      (`Frame::decode_field`) and answer `ReadResult(..)`;
//!    - `AcceptTask(frame)`: pin the slot and enqueue the run on the run
//!      lane (never run it here: rule 9); answer `TaskAccepted` or
//!      `TaskRejected(err)`;
//!    - `ApplyControl(frame)`: apply it to the slot table (register: queue
//!      the prepare on the register lane; unregister: tombstone / cancel);
//!      answer `ControlApplied(result)` without waiting for any lane;
//!    - `Write { field, frame }`: encode `frame` into `field` (no answer);
//!    - `Cas { from, to }`: compare-and-swap the word (Release on success,
//!      Acquire on failure); answer `CasResult`; while a CAS or a read is
//!      unanswered the machine asks for no other CAS or read (it may still
//!      emit writes into the result fields, which the parent reads only
//!      after a later transition);
//!    - `Push(frame)`: push a completion into the ring (the machine only
//!      emits it when the last `Observed` showed room; no answer);
//!    - `Poison { reason }`: swap POISONED into the word and stop serving.
//! 3. Lane events are fed when they happen: `RunFinished` (the run lane
//!    retired the task) and `Settled` (the register lane settled a prepare or
//!    freed an artifact, with the dispatch of the control that caused it).
//!
//! # Transitions it drives (docs/protocol.md section 4)
//! TASK_READY -> TASK_RUNNING after the copy and the pin (rule 1);
//! TASK_READY -> TASK_DONE for a task refused before running;
//! CONTROL_READY(u) -> CONTROL_DONE(u) after acting (rule 9: no lane wait);
//! TASK_RUNNING -> TASK_DONE when the run finished. A run that finishes while
//! a control is in flight writes its result at once into the task-result
//! field (never the control's: rule 8) and *defers* TASK_DONE until the parent
//! has restored TASK_RUNNING, then publishes it exactly once (rule 2).
//!
//! # Invariants
//! - TASK_RUNNING is published only after the task frame was copied out and
//!   the slot pinned;
//! - every task taken gets exactly one TASK_DONE; every control exactly one
//!   CONTROL_DONE; every settlement exactly one ring entry, in order;
//! - a frame whose dispatch id is not newer than the last one seen is stale
//!   and poisons; a memory or domain control seen during a task poisons
//!   (rule 3 was broken by the parent).

use crate::error::{ControlError, PoisonReason, RunError};
use crate::frame::{
    CompletionFrame, ControlFrame, ControlReply, ControlResultFrame, Frame, FrameError, FrameId, FrameKind, Settlement,
    TaskFrame, TaskResultFrame,
};
use crate::ids::DispatchId;
use crate::mailbox::word::WordState;
use crate::mailbox::{field_for, Field};
use crate::RunOutput;
use std::collections::VecDeque;

/// Inputs of the child endpoint.
#[derive(Debug)]
pub enum ChildInput {
    /// The driver loaded the word (raw) and the ring's free entries.
    Observed {
        /// The state word's raw value (Acquire load).
        word: u32,
        /// Free entries in the completion ring.
        ring_free: usize,
    },
    /// Answer to the last `Cas`: `Err(actual raw value)` on failure.
    CasResult(Result<(), u32>),
    /// Answer to the last `Read`.
    ReadResult(Result<Frame, FrameError>),
    /// Answer to `AcceptTask`: the slot is pinned and the run queued.
    TaskAccepted,
    /// Answer to `AcceptTask`: refused (bad handle, slot not runnable, ...).
    TaskRejected(RunError),
    /// Answer to `ApplyControl`.
    ControlApplied(Result<ControlReply, ControlError>),
    /// The run lane retired the task `dispatch`.
    RunFinished {
        /// The task's dispatch.
        dispatch: DispatchId,
        /// The run's output or why it failed.
        result: Result<RunOutput, RunError>,
    },
    /// The register lane settled what control `id.dispatch` started
    /// (`id.slot`/`id.generation` name the slot).
    Settled {
        /// The dispatch of the control that started it, and the slot.
        id: FrameId,
        /// What settled.
        settlement: Settlement,
    },
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Hash)]
#[must_use]
pub enum ChildOutput {
    /// Copy the frame out of `field` (`Frame::decode_field`) and answer
    /// `ReadResult`.
    Read {
        /// The mailbox field to read.
        field: Field,
    },
    /// Pin the task's slot and queue the run on the run lane (never run it
    /// here: rule 9); answer `TaskAccepted` or `TaskRejected`.
    AcceptTask(TaskFrame),
    /// Apply the control to the slot table without waiting for a lane;
    /// answer `ControlApplied`.
    ApplyControl(ControlFrame),
    /// Encode `frame` into `field` (no answer).
    Write {
        /// The mailbox field to write.
        field: Field,
        /// The frame to encode there.
        frame: Frame,
    },
    /// Compare-and-swap the state word (Release on success, Acquire on
    /// failure); answer `CasResult`.
    Cas {
        /// The value the word must hold.
        from: WordState,
        /// The value to store.
        to: WordState,
    },
    /// Push a settlement into the completion ring (there is room; no answer).
    Push(CompletionFrame),
    /// Swap POISONED into the word and stop serving.
    Poison {
        /// Why the mailbox is poisoned.
        reason: PoisonReason,
    },
}

/// The driver fed an input the machine did not ask for (a driver bug).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UnexpectedInput(pub &'static str);

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
enum TaskPhase {
    /// Copied out, waiting for the driver's pin + enqueue.
    Accepting,
    /// TASK_RUNNING published (or being published); the run is on the lane.
    Running,
    /// The result is written; TASK_DONE is owed.
    Finished,
}

#[derive(Debug, Clone, Hash)]
struct ChildTask {
    id: FrameId,
    phase: TaskPhase,
    /// The task was refused before running: TASK_READY -> TASK_DONE.
    rejected: bool,
    /// Its TASK_DONE had to wait for a control (counted once).
    deferred: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
enum ControlPhase {
    Applying,
    /// Result written, CONTROL_DONE being published.
    Publishing,
    /// MUTANT blocking_control_wait: waiting for the lane to settle.
    #[allow(dead_code)]
    Blocked,
}

#[derive(Debug, Clone, Hash)]
struct ChildControl {
    id: FrameId,
    under_task: bool,
    phase: ControlPhase,
    #[allow(dead_code)]
    reply: Option<Result<ControlReply, ControlError>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
enum Pending {
    Cas { to: WordState, after: AfterCas },
    ReadTask,
    ReadControl,
    Accept,
    Apply,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
enum AfterCas {
    Running,
    /// MUTANT running_before_copy only.
    #[allow(dead_code)]
    RunningThenRead,
    TaskDone,
    ControlDone,
}

/// The child endpoint machine. See the module doc.
#[derive(Debug, Clone, Hash)]
pub struct ChildEndpoint {
    word: WordState,
    ring_free: usize,
    task: Option<ChildTask>,
    control: Option<ChildControl>,
    /// Settlements waiting for ring room (FIFO).
    completions: VecDeque<CompletionFrame>,
    /// Highest dispatch id seen in a task frame (tasks are published in
    /// dispatch order).
    last_task: DispatchId,
    /// Highest dispatch id seen in a control frame (likewise for controls;
    /// tasks and controls interleave freely).
    last_control: DispatchId,
    /// A run that finished before TASK_RUNNING was published (tiny runs).
    early_finish: Option<(DispatchId, Result<RunOutput, RunError>)>,
    pending: Option<Pending>,
    poisoned: Option<PoisonReason>,
    outputs: VecDeque<ChildOutput>,
    /// Runs that finished while a control was in flight (TASK_DONE deferred).
    deferred_done: u64,
}

impl Default for ChildEndpoint {
    fn default() -> Self {
        Self::new()
    }
}

impl ChildEndpoint {
    /// A machine that has seen IDLE and nothing else: no task, no control,
    /// no settlement held; it wants the word first.
    pub fn new() -> Self {
        ChildEndpoint {
            word: WordState::Idle,
            ring_free: 0,
            task: None,
            control: None,
            completions: VecDeque::new(),
            last_task: DispatchId(0),
            last_control: DispatchId(0),
            early_finish: None,
            pending: None,
            poisoned: None,
            outputs: VecDeque::new(),
            deferred_done: 0,
        }
    }

    /// Runs that finished while a control was in flight, so their TASK_DONE
    /// waited for the parent's restore (rule 2).
    pub fn deferred_done(&self) -> u64 {
        self.deferred_done
    }

    /// Apply one input.
    pub fn handle(&mut self, input: ChildInput) -> Result<(), UnexpectedInput> {
        if self.poisoned.is_some() {
            return Ok(());
        }
        match input {
            ChildInput::Observed { word, ring_free } => {
                self.ring_free = ring_free;
                if self.pending.is_none() {
                    self.observe(word);
                }
            }
            ChildInput::CasResult(r) => {
                let Some(Pending::Cas { to, after }) = self.pending else {
                    return Err(UnexpectedInput("CasResult without a Cas"));
                };
                self.pending = None;
                match r {
                    Ok(()) => {
                        self.word = to;
                        self.after_cas(after);
                    }
                    Err(actual) => self.observe(actual),
                }
            }
            ChildInput::ReadResult(r) => match self.pending {
                Some(Pending::ReadTask) => {
                    self.pending = None;
                    self.on_task_frame(r);
                }
                Some(Pending::ReadControl) => {
                    self.pending = None;
                    self.on_control_frame(r);
                }
                _ => return Err(UnexpectedInput("ReadResult without a Read")),
            },
            ChildInput::TaskAccepted | ChildInput::TaskRejected(_) => {
                if self.pending != Some(Pending::Accept) {
                    return Err(UnexpectedInput("task answer without AcceptTask"));
                }
                self.pending = None;
                let t = self.task.as_mut().expect("accepting a task");
                match input {
                    ChildInput::TaskAccepted => {
                        t.phase = TaskPhase::Running;
                        if cfg!(chiplane_mutant = "running_before_copy") {
                            // TASK_RUNNING was already published before the copy.
                        } else {
                            let to = WordState::TaskReady.transition_to_task_running().expect("TASK_READY");
                            self.emit_cas(WordState::TaskReady, to, AfterCas::Running);
                        }
                    }
                    ChildInput::TaskRejected(e) => {
                        t.rejected = true;
                        t.phase = TaskPhase::Finished;
                        let frame = Frame::TaskResult(TaskResultFrame { id: t.id, result: Err(e) });
                        self.write(frame);
                    }
                    _ => unreachable!(),
                }
            }
            ChildInput::ControlApplied(result) => {
                if self.pending != Some(Pending::Apply) {
                    return Err(UnexpectedInput("ControlApplied without ApplyControl"));
                }
                self.pending = None;
                let c = self.control.as_mut().expect("applying a control");
                let blocks = cfg!(chiplane_mutant = "blocking_control_wait")
                    && matches!(result, Ok(ControlReply::Registered { fresh: true, .. }));
                if blocks {
                    // MUTANT blocking_control_wait: the mailbox loop waits for
                    // the register lane to settle before answering.
                    c.phase = ControlPhase::Blocked;
                    c.reply = Some(result);
                } else {
                    let frame = Frame::ControlResult(ControlResultFrame { id: c.id, result });
                    c.phase = ControlPhase::Publishing;
                    self.write(frame);
                }
            }
            ChildInput::RunFinished { dispatch, result } => match self.task.as_mut() {
                Some(t) if t.id.dispatch == dispatch && t.phase == TaskPhase::Running => {
                    t.phase = TaskPhase::Finished;
                    let frame = Frame::TaskResult(TaskResultFrame { id: t.id, result });
                    self.write(frame);
                }
                Some(t) if t.id.dispatch == dispatch && t.phase == TaskPhase::Accepting => {
                    self.early_finish = Some((dispatch, result));
                }
                _ => return Err(UnexpectedInput("RunFinished for a task not running")),
            },
            ChildInput::Settled { id, settlement } => {
                if cfg!(chiplane_mutant = "blocking_control_wait") {
                    if let Some(c) = self.control.as_mut() {
                        if c.phase == ControlPhase::Blocked && c.id.dispatch == id.dispatch {
                            let result = c.reply.take().expect("blocked control has its reply");
                            let frame = Frame::ControlResult(ControlResultFrame { id: c.id, result });
                            c.phase = ControlPhase::Publishing;
                            self.write(frame);
                        }
                    }
                }
                self.completions.push_back(CompletionFrame { id, settlement });
            }
        }
        self.advance();
        Ok(())
    }

    /// The next thing the driver must do.
    pub fn poll(&mut self) -> Option<ChildOutput> {
        self.outputs.pop_front()
    }

    /// Outputs are waiting for the driver.
    pub fn has_outputs(&self) -> bool {
        !self.outputs.is_empty()
    }

    /// True when the driver should (re)load the word and feed `Observed`.
    pub fn wants_word(&self) -> bool {
        self.poisoned.is_none() && self.pending.is_none()
    }

    /// The poison reason, once poisoned.
    pub fn poisoned(&self) -> Option<&PoisonReason> {
        self.poisoned.as_ref()
    }

    /// The child's last known value of the word.
    pub fn word(&self) -> WordState {
        self.word
    }

    /// Settlements not yet pushed into the ring.
    pub fn completions_held(&self) -> usize {
        self.completions.len()
    }

    /// Only the parent's consumption can give this machine something to
    /// do next: a finished run whose TASK_DONE waits for the parent's
    /// restore of TASK_RUNNING (rule 2), or settlements held for ring room.
    pub fn awaits_consumption(&self) -> bool {
        !self.completions.is_empty() || self.task.as_ref().is_some_and(|t| t.phase == TaskPhase::Finished)
    }

    /// The task the child holds, if any.
    pub fn task(&self) -> Option<DispatchId> {
        self.task.as_ref().map(|t| t.id.dispatch)
    }

    /// The control the child is serving, if any.
    pub fn control(&self) -> Option<DispatchId> {
        self.control.as_ref().map(|c| c.id.dispatch)
    }

    fn poison(&mut self, reason: PoisonReason) {
        if self.poisoned.is_some() {
            return;
        }
        self.poisoned = Some(reason.clone());
        self.pending = None;
        self.outputs.push_back(ChildOutput::Poison { reason });
    }

    fn write(&mut self, frame: Frame) {
        let field = field_for(frame.kind()).expect("result frames have fields");
        self.outputs.push_back(ChildOutput::Write { field, frame });
    }

    fn emit_cas(&mut self, from: WordState, to: WordState, after: AfterCas) {
        self.pending = Some(Pending::Cas { to, after });
        self.outputs.push_back(ChildOutput::Cas { from, to });
    }

    fn observe(&mut self, raw: u32) {
        match WordState::decode(raw) {
            Some(WordState::Poisoned) => {
                // The parent poisoned the endpoint: stop serving (one way).
                self.word = WordState::Poisoned;
                self.poisoned = Some(PoisonReason::UnexpectedState(raw));
            }
            Some(w) => self.word = w,
            None => self.poison(PoisonReason::UnexpectedState(raw)),
        }
    }

    fn after_cas(&mut self, after: AfterCas) {
        match after {
            AfterCas::Running => {
                if let Some((d, result)) = self.early_finish.take() {
                    let t = self.task.as_mut().expect("task running");
                    debug_assert_eq!(t.id.dispatch, d);
                    t.phase = TaskPhase::Finished;
                    let frame = Frame::TaskResult(TaskResultFrame { id: t.id, result });
                    self.write(frame);
                }
            }
            AfterCas::RunningThenRead => {
                self.pending = Some(Pending::ReadTask);
                self.outputs.push_back(ChildOutput::Read { field: field_for(FrameKind::Task).expect("task field") });
            }
            AfterCas::TaskDone => {
                self.task = None;
            }
            AfterCas::ControlDone => {
                self.control = None;
            }
        }
    }

    /// Check that what the word says agrees with what the child holds.
    fn word_agrees(&self) -> bool {
        let task = self.task.as_ref();
        match self.word {
            // The parent consumed TASK_DONE, or nothing was ever published.
            WordState::Idle => task.is_none() && self.control.is_none(),
            WordState::TaskReady => {
                task.is_none() || task.is_some_and(|t| t.phase == TaskPhase::Accepting || t.rejected)
            }
            WordState::TaskRunning => {
                self.control.is_none()
                    && task.is_some_and(|t| matches!(t.phase, TaskPhase::Running | TaskPhase::Finished))
            }
            WordState::ControlReady { under_task } => {
                under_task == task.is_some()
                    && (self.control.is_none() || self.control.as_ref().is_some_and(|c| c.under_task == under_task))
            }
            WordState::ControlDone { under_task } => under_task == task.is_some(),
            // Our own TASK_DONE, not yet consumed (task still held until the CAS answer).
            WordState::TaskDone => self.control.is_none(),
            WordState::Poisoned => true,
        }
    }

    fn advance(&mut self) {
        if self.poisoned.is_some() || self.pending.is_some() {
            return;
        }
        if !self.word_agrees() {
            return self.poison(PoisonReason::UnexpectedState(self.word.encode()));
        }
        // Settlements: push while the ring has room, except the one owed to
        // the control still being answered (the parent learns the control's
        // result first).
        while self.ring_free > 0 {
            let Some(front) = self.completions.front() else { break };
            if self.control.as_ref().is_some_and(|c| c.id.dispatch == front.id.dispatch) {
                break;
            }
            let f = self.completions.pop_front().expect("front exists");
            self.ring_free -= 1;
            self.outputs.push_back(ChildOutput::Push(f));
        }
        match self.word {
            WordState::TaskReady => match self.task.as_ref() {
                None => {
                    if cfg!(chiplane_mutant = "running_before_copy") {
                        // MUTANT running_before_copy: publish TASK_RUNNING first,
                        // then copy the payload out.
                        self.emit_cas(WordState::TaskReady, WordState::TaskRunning, AfterCas::RunningThenRead);
                        return;
                    }
                    self.pending = Some(Pending::ReadTask);
                    self.outputs
                        .push_back(ChildOutput::Read { field: field_for(FrameKind::Task).expect("task field") });
                }
                Some(t) if t.rejected && t.phase == TaskPhase::Finished => {
                    let to = WordState::TaskReady.transition_to_task_done().expect("TASK_READY");
                    self.emit_cas(WordState::TaskReady, to, AfterCas::TaskDone);
                }
                Some(_) => {}
            },
            WordState::ControlReady { under_task } => {
                if self.control.is_none() {
                    self.control = Some(ChildControl {
                        id: FrameId {
                            dispatch: DispatchId(0),
                            slot: Default::default(),
                            generation: Default::default(),
                        },
                        under_task,
                        phase: ControlPhase::Applying,
                        reply: None,
                    });
                    self.pending = Some(Pending::ReadControl);
                    self.outputs
                        .push_back(ChildOutput::Read { field: field_for(FrameKind::Control).expect("control field") });
                } else if self.control.as_ref().is_some_and(|c| c.phase == ControlPhase::Publishing) {
                    let to = self.word.transition_to_control_done().expect("CONTROL_READY");
                    self.emit_cas(self.word, to, AfterCas::ControlDone);
                } else {
                    self.try_task_done();
                }
            }
            WordState::TaskRunning | WordState::ControlDone { .. } => self.try_task_done(),
            WordState::Idle | WordState::TaskDone | WordState::Poisoned => {}
        }
    }

    /// Publish a finished task's TASK_DONE if the word allows it (rule 2:
    /// never over a control; the pure transition refuses CONTROL_* values).
    fn try_task_done(&mut self) {
        let Some(t) = self.task.as_mut().filter(|t| t.phase == TaskPhase::Finished && !t.rejected) else {
            return;
        };
        match self.word.transition_to_task_done() {
            Ok(to) => self.emit_cas(self.word, to, AfterCas::TaskDone),
            Err(WordState::ControlReady { .. } | WordState::ControlDone { .. }) if !t.deferred => {
                // Rule 2: a control is in flight; TASK_DONE waits for the
                // parent's restore.
                t.deferred = true;
                self.deferred_done += 1;
            }
            Err(_) => {}
        }
    }

    /// A frame must be newer than the last one of its kind: an older (or
    /// repeated) dispatch id is a stale frame and poisons.
    fn check_fresh(&mut self, id: FrameId, task: bool) -> bool {
        let last = if task { &mut self.last_task } else { &mut self.last_control };
        if id.dispatch <= *last {
            self.poison(PoisonReason::IdentityMismatch);
            return false;
        }
        *last = id.dispatch;
        true
    }

    fn on_task_frame(&mut self, r: Result<Frame, FrameError>) {
        let frame = match r {
            Ok(Frame::Task(f)) => f,
            Ok(_) => return self.poison(PoisonReason::IdentityMismatch),
            Err(e) => return self.poison(PoisonReason::MalformedFrame(e)),
        };
        if !self.check_fresh(frame.id, true) {
            return;
        }
        self.task = Some(ChildTask { id: frame.id, phase: TaskPhase::Accepting, rejected: false, deferred: false });
        self.pending = Some(Pending::Accept);
        self.outputs.push_back(ChildOutput::AcceptTask(frame));
    }

    fn on_control_frame(&mut self, r: Result<Frame, FrameError>) {
        let frame = match r {
            Ok(Frame::Control(f)) => f,
            Ok(_) => return self.poison(PoisonReason::IdentityMismatch),
            Err(e) => return self.poison(PoisonReason::MalformedFrame(e)),
        };
        if !self.check_fresh(frame.id, false) {
            return;
        }
        let c = self.control.as_mut().expect("reading a control");
        if c.under_task && !frame.op.allowed_during_task() {
            // Rule 3 broken by the parent: a memory/domain control during a task.
            return self.poison(PoisonReason::UnexpectedState(WordState::ControlReady { under_task: true }.encode()));
        }
        c.id = frame.id;
        self.pending = Some(Pending::Apply);
        self.outputs.push_back(ChildOutput::ApplyControl(frame));
    }
}
