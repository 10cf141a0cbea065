//! The parent (host) endpoint machine.
//!
//! # What it owns
//! The parent's private view of one mailbox: the tasks and controls waiting
//! to be published (FIFO each), the task and the control in flight, the
//! settlements it still expects through the completion ring, and whether the
//! endpoint is poisoned or gone. It never touches shared memory: its driver
//! does, on its instructions.
//!
//! # Call order
//! 1. `handle(SubmitTask | SubmitControl)` queues work and returns its
//!    `DispatchId` (strictly increasing).
//! 2. The driver loads the word (Acquire) and feeds `Observed(raw)`; it does
//!    so whenever `wants_word()` is true and the word may have changed.
//! 3. The driver drains `poll()` and executes each output in order:
//!    - `Write { field, frame }`: encode `frame` into `field` (no answer);
//!    - `Cas { from, to }`: compare-and-swap the word (Release on success,
//!      Acquire on failure), answer `CasResult(Ok(()))` or
//!      `CasResult(Err(actual))`; while a CAS is unanswered the machine emits
//!      nothing else;
//!    - `Read { field }`: decode the frame in `field`
//!      (`Frame::decode_field`) and answer `ReadResult(..)`;
//!    - `TaskDone` / `ControlDone` / `Settled`: resolve the caller's handle;
//!    - `Poison`: swap `POISONED` into the word, kill and reap the child, then
//!      answer `ChildGone(..)`.
//! 4. Completions popped from the ring (any time) are fed as `Completion(..)`.
//! 5. When the child dies or the liveness timeout fires, the driver kills and
//!    reaps it and feeds `ChildGone(err)`: every outstanding task, control
//!    and settlement resolves with that endpoint error, exactly once.
//! 6. Once poisoned or gone (rule 12), the machine withdraws the memory
//!    outputs still queued (a driver never executes a stale `Write`, `Cas`
//!    or `Read` against the word) and accepts and ignores the answer to one
//!    it handed out before. A driver needs no rule of its own for this: it
//!    may execute outputs and feed answers in any order the call order
//!    above allows, before or after the verdict.
//!
//! # Transitions it drives (docs/protocol.md section 4)
//! IDLE -> TASK_READY (task), IDLE -> CONTROL_READY(idle), TASK_RUNNING ->
//! CONTROL_READY(task) (chip-callable controls only: rule 3), CONTROL_DONE(u)
//! -> u (restore, by CAS: rule 7), TASK_DONE -> IDLE.
//! Once the child has published TASK_RUNNING (rule 1) the parent *stages* the
//! next queued task into the task field, so publishing it later is one CAS.
//!
//! # Invariants
//! - at most one task and one control in flight; controls are serialised
//!   (rule 4) and published in FIFO order, tasks likewise;
//! - every dispatch resolves exactly once (`TaskDone`, `ControlDone`, and for
//!   a fresh register or a final unregister also exactly one `Settled`);
//! - a frame from the child is used only after its kind and
//!   `{dispatch, slot, generation}` matched what is outstanding; anything
//!   else poisons (rule 5);
//! - poison is one way: after it nothing is published again.

use crate::chip::{RunConfig, TaskArgs};
use crate::error::{ControlError, EndpointError, PoisonReason, RegisterError, RunError, TooLarge, UnregisterError};
use crate::frame::{
    ControlFrame, ControlOp, ControlReply, Frame, FrameError, FrameId, FrameKind, Settlement, TaskFrame,
    TaskResultFrame,
};
use crate::ids::{DispatchId, Generation, SlotIndex};
use crate::mailbox::word::WordState;
use crate::mailbox::{field_for, Field};
use crate::RunOutput;
use std::collections::{BTreeMap, VecDeque};

/// Inputs of the parent endpoint.
#[derive(Debug)]
pub enum ParentInput {
    /// Queue a task (a run of the prepared callable `{slot, generation}`).
    SubmitTask {
        /// The handle's slot.
        slot: SlotIndex,
        /// The handle's generation.
        generation: Generation,
        /// How to launch the callable.
        config: RunConfig,
        /// The run's inputs.
        args: TaskArgs,
    },
    /// Queue a control. For `Register`, slot and generation are 0.
    SubmitControl {
        /// The handle's slot (0 for a register).
        slot: SlotIndex,
        /// The handle's generation (0 for a register).
        generation: Generation,
        /// What the control asks for.
        op: ControlOp,
    },
    /// The driver loaded the word (raw value, decoded here).
    Observed(u32),
    /// Answer to the last `Cas`: `Err(actual raw value)` on failure.
    CasResult(Result<(), u32>),
    /// Answer to the last `Read`.
    ReadResult(Result<Frame, FrameError>),
    /// A completion popped from the ring.
    Completion(Result<Frame, FrameError>),
    /// The child is gone (dead and reaped, or killed after poison or a
    /// liveness timeout).
    ChildGone(EndpointError),
    /// Refuse new submissions from now on.
    Shutdown,
}

/// What the driver must do, or what a caller learns.
#[derive(Debug, Clone, PartialEq, Hash)]
#[must_use]
pub enum ParentOutput {
    /// Encode `frame` into `field` (no answer).
    Write {
        /// The mailbox field to write.
        field: Field,
        /// The frame to encode there.
        frame: Frame,
    },
    /// CAS the word `from -> to`; answer `CasResult`.
    Cas {
        /// The value the word must hold.
        from: WordState,
        /// The value to store.
        to: WordState,
    },
    /// Decode the frame in `field`; answer `ReadResult`.
    Read {
        /// The mailbox field to read.
        field: Field,
    },
    /// The task `dispatch` resolved.
    TaskDone {
        /// The task's dispatch (as `SubmitTask` returned it).
        dispatch: DispatchId,
        /// The run's output or why it failed.
        result: Result<RunOutput, RunError>,
    },
    /// The control `dispatch` resolved (accepted or refused).
    ControlDone {
        /// The control's dispatch (as `SubmitControl` returned it).
        dispatch: DispatchId,
        /// What the control did, or why it was refused.
        result: Result<ControlReply, ControlError>,
    },
    /// The settlement owed to control `dispatch` arrived (or failed).
    Settled {
        /// The dispatch of the control that owed it.
        dispatch: DispatchId,
        /// What settled, or the endpoint error that ended the wait.
        result: Result<Settlement, EndpointError>,
    },
    /// Swap POISONED into the word, kill and reap the child, then feed
    /// `ChildGone`.
    Poison {
        /// Why the mailbox is poisoned.
        reason: PoisonReason,
    },
}

impl ParentOutput {
    /// A shared-memory action (`Write`, `Cas`, `Read`), as opposed to a
    /// resolution or the poison verdict.
    pub fn is_memory(&self) -> bool {
        matches!(self, ParentOutput::Write { .. } | ParentOutput::Cas { .. } | ParentOutput::Read { .. })
    }
}

/// Why a submission was refused.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SubmitError {
    /// A size limit of the frame (named in the error) is exceeded.
    TooLarge(TooLarge),
    /// The endpoint is poisoned, gone or shutting down.
    Endpoint(EndpointError),
}

impl From<SubmitError> for RunError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::TooLarge(e) => RunError::TooLarge(e),
            SubmitError::Endpoint(e) => RunError::Endpoint(e),
        }
    }
}

impl From<SubmitError> for ControlError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::TooLarge(e) => ControlError::TooLarge(e),
            SubmitError::Endpoint(e) => ControlError::Endpoint(e),
        }
    }
}

/// The driver fed an input the machine did not ask for (a driver bug).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UnexpectedInput(pub &'static str);

/// Result of `handle`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ParentError {
    /// A submission was refused; the caller gets the error (as a
    /// `RunError` or `ControlError`) and may retry a smaller one.
    Submit(SubmitError),
    /// The driver fed an input the machine did not ask for (a driver bug).
    Unexpected(UnexpectedInput),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
enum TaskPhase {
    /// Published (TASK_READY), not yet accepted.
    Ready,
    /// The child published TASK_RUNNING.
    Running,
}

#[derive(Debug, Clone, Hash)]
struct InFlightTask {
    id: FrameId,
    phase: TaskPhase,
}

#[derive(Debug, Clone, Hash)]
struct InFlightControl {
    id: FrameId,
    /// A settlement that arrived before the control's result was read.
    early: Option<CompletionFrameLite>,
}

/// A submission waiting for its publication. Its frame moves into the
/// `Write` output that puts it in its field (no copy); from then on the
/// field holds it (only this side writes it, and only the next submission
/// of the kind overwrites it), so a publication tried again after a failed
/// CAS is the CAS alone.
#[derive(Debug, Clone, Hash)]
struct Queued<F> {
    id: FrameId,
    /// `None` once written into the field.
    frame: Option<F>,
    /// A control that may enter during TASK_RUNNING (tasks: unused).
    during_task: bool,
}

impl<F> Queued<F> {
    fn new(id: FrameId, frame: F, during_task: bool) -> Self {
        Queued { id, frame: Some(frame), during_task }
    }
}

#[derive(Clone, Debug, PartialEq, Hash)]
struct CompletionFrameLite {
    id: FrameId,
    settlement: Settlement,
}

/// What the machine is waiting for from its driver.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
enum Pending {
    Cas { from: WordState, to: WordState, after: AfterCas },
    ReadTaskResult,
    ReadControlResult,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
enum AfterCas {
    PublishedTask,
    PublishedControl,
    Restored,
    ConsumedTask,
}

/// The parent endpoint machine. See the module doc.
#[derive(Debug, Clone, Hash)]
pub struct ParentEndpoint {
    next_dispatch: DispatchId,
    word: WordState,
    /// Its head's frame is `None` once written into the task field
    /// (staged, rule 1).
    tasks: VecDeque<Queued<TaskFrame>>,
    task: Option<InFlightTask>,
    controls: VecDeque<Queued<ControlFrame>>,
    control: Option<InFlightControl>,
    /// Settlements owed: control dispatch -> the identity the child named.
    settlements: BTreeMap<DispatchId, FrameId>,
    /// Result read for the task in flight, delivered once TASK_DONE -> IDLE lands.
    task_result: Option<TaskResultFrame>,
    control_result: Option<(FrameId, Result<ControlReply, ControlError>)>,
    pending: Option<Pending>,
    poisoned: Option<PoisonReason>,
    gone: Option<EndpointError>,
    shutting_down: bool,
    outputs: VecDeque<ParentOutput>,
}

impl Default for ParentEndpoint {
    fn default() -> Self {
        Self::new()
    }
}

impl ParentEndpoint {
    /// A machine for a fresh mailbox (the word IDLE, nothing queued or in
    /// flight); its first dispatch id is 1.
    pub fn new() -> Self {
        ParentEndpoint {
            next_dispatch: DispatchId(1),
            word: WordState::Idle,
            tasks: VecDeque::new(),
            task: None,
            controls: VecDeque::new(),
            control: None,
            settlements: BTreeMap::new(),
            task_result: None,
            control_result: None,
            pending: None,
            poisoned: None,
            gone: None,
            shutting_down: false,
            outputs: VecDeque::new(),
        }
    }

    /// Apply one input. Submissions return their dispatch id.
    pub fn handle(&mut self, input: ParentInput) -> Result<Option<DispatchId>, ParentError> {
        let r = match input {
            ParentInput::SubmitTask { slot, generation, config, args } => {
                self.check_open().map_err(ParentError::Submit)?;
                // Every limit is checked here, at the call, so nothing a
                // caller submits can fail to encode later.
                crate::frame::check_args(&args).map_err(|e| ParentError::Submit(SubmitError::TooLarge(e)))?;
                let id = FrameId { dispatch: self.next_dispatch, slot, generation };
                let frame = TaskFrame { id, config, args };
                self.next_dispatch = self.next_dispatch.next();
                self.tasks.push_back(Queued::new(id, frame, false));
                Some(id.dispatch)
            }
            ParentInput::SubmitControl { slot, generation, op } => {
                self.check_open().map_err(ParentError::Submit)?;
                if let ControlOp::Register { spec } = &op {
                    crate::frame::check_spec(spec).map_err(|e| ParentError::Submit(SubmitError::TooLarge(e)))?;
                }
                let id = FrameId { dispatch: self.next_dispatch, slot, generation };
                let frame = ControlFrame { id, op };
                debug_assert!(
                    frame.encoded_len() <= Frame::capacity(FrameKind::Control),
                    "a checked control fits its frame"
                );
                self.next_dispatch = self.next_dispatch.next();
                let during_task = allowed_during_task(&frame.op);
                self.controls.push_back(Queued::new(id, frame, during_task));
                Some(id.dispatch)
            }
            ParentInput::Observed(raw) => {
                if self.pending.is_none() && self.is_live() {
                    self.observe(raw);
                }
                None
            }
            ParentInput::CasResult(_) | ParentInput::ReadResult(_) if !self.is_live() => {
                // Rule 12: once poisoned or gone, an answer to an output
                // issued before is accepted and ignored.
                None
            }
            ParentInput::CasResult(r) => {
                let Some(Pending::Cas { from: _, to, after }) = self.pending else {
                    return Err(ParentError::Unexpected(UnexpectedInput("CasResult without a Cas")));
                };
                self.pending = None;
                match r {
                    Ok(()) => {
                        self.word = to;
                        self.after_cas(after);
                    }
                    Err(actual) => self.observe(actual),
                }
                None
            }
            ParentInput::ReadResult(r) => {
                match self.pending {
                    Some(Pending::ReadTaskResult) => {
                        self.pending = None;
                        self.on_task_result(r);
                    }
                    Some(Pending::ReadControlResult) => {
                        self.pending = None;
                        self.on_control_result(r);
                    }
                    _ => return Err(ParentError::Unexpected(UnexpectedInput("ReadResult without a Read"))),
                }
                None
            }
            ParentInput::Completion(r) => {
                if self.is_live() {
                    self.on_completion(r);
                }
                None
            }
            ParentInput::ChildGone(err) => {
                self.on_gone(err);
                None
            }
            ParentInput::Shutdown => {
                self.shutting_down = true;
                None
            }
        };
        self.advance();
        Ok(r)
    }

    /// The next thing the driver must do or a caller learns.
    pub fn poll(&mut self) -> Option<ParentOutput> {
        self.outputs.pop_front()
    }

    /// True when the driver should (re)load the word and feed `Observed`.
    pub fn wants_word(&self) -> bool {
        self.is_live() && self.pending.is_none() && self.outstanding()
    }

    /// Work is queued or in flight (a liveness timeout applies).
    pub fn outstanding(&self) -> bool {
        !self.tasks.is_empty()
            || self.task.is_some()
            || !self.controls.is_empty()
            || self.control.is_some()
            || !self.settlements.is_empty()
    }

    /// Settlements still owed by the child.
    pub fn settlements_owed(&self) -> usize {
        self.settlements.len()
    }

    /// The poison reason, once poisoned.
    pub fn poisoned(&self) -> Option<&PoisonReason> {
        self.poisoned.as_ref()
    }

    /// The endpoint error every outstanding dispatch got, once the child is gone.
    pub fn gone(&self) -> Option<&EndpointError> {
        self.gone.as_ref()
    }

    /// The parent's last known value of the word.
    pub fn word(&self) -> WordState {
        self.word
    }

    /// True while a task is published and not yet consumed.
    pub fn task_in_flight(&self) -> Option<DispatchId> {
        self.task.as_ref().map(|t| t.id.dispatch)
    }

    /// True while a control is published and not yet restored.
    pub fn control_in_flight(&self) -> Option<DispatchId> {
        self.control.as_ref().map(|c| c.id.dispatch)
    }

    fn is_live(&self) -> bool {
        self.poisoned.is_none() && self.gone.is_none()
    }

    fn check_open(&self) -> Result<(), SubmitError> {
        if let Some(e) = &self.gone {
            return Err(SubmitError::Endpoint(e.clone()));
        }
        if let Some(r) = &self.poisoned {
            return Err(SubmitError::Endpoint(EndpointError::Poisoned(r.clone())));
        }
        if self.shutting_down {
            return Err(SubmitError::Endpoint(EndpointError::ShutDown));
        }
        Ok(())
    }

    fn poison(&mut self, reason: PoisonReason) {
        if self.poisoned.is_some() || self.gone.is_some() {
            return;
        }
        self.poisoned = Some(reason.clone());
        self.withdraw();
        self.outputs.push_back(ParentOutput::Poison { reason });
    }

    /// Rule 12: the endpoint is poisoned or gone. Withdraw the memory
    /// outputs (`Write`, `Cas`, `Read`) still queued, so no driver executes
    /// a stale one against the shared word; forget what was pending (its
    /// answer, if the driver already executed it, is ignored on arrival).
    /// Resolutions already queued stay: each is owed exactly once.
    fn withdraw(&mut self) {
        self.pending = None;
        self.outputs.retain(|o| !o.is_memory());
    }

    fn observe(&mut self, raw: u32) {
        match WordState::decode(raw) {
            Some(w) => {
                self.word = w;
                self.check_word();
            }
            None => self.poison(PoisonReason::UnexpectedState(raw)),
        }
    }

    /// Check the observed word against what the parent has in flight.
    fn check_word(&mut self) {
        let task = self.task.is_some();
        let control = self.control.is_some();
        let ok = match self.word {
            WordState::Idle => !task && !control,
            WordState::TaskReady | WordState::TaskRunning | WordState::TaskDone => task && !control,
            WordState::ControlReady { under_task } | WordState::ControlDone { under_task } => {
                control && under_task == task
            }
            WordState::Poisoned => false,
        };
        if !ok {
            self.poison(PoisonReason::UnexpectedState(self.word.encode()));
        }
    }

    fn emit_cas(&mut self, from: WordState, to: WordState, after: AfterCas) {
        self.pending = Some(Pending::Cas { from, to, after });
        self.outputs.push_back(ParentOutput::Cas { from, to });
    }

    /// Decide the next step from the last known word.
    fn advance(&mut self) {
        if !self.is_live() || self.pending.is_some() {
            return;
        }
        match self.word {
            WordState::Idle => {
                if let Some(c) = self.controls.front_mut() {
                    let to = WordState::Idle.transition_to_control_ready(false).expect("IDLE admits any control");
                    if let Some(c) = c.frame.take() {
                        let frame = Frame::Control(c);
                        self.outputs.push_back(ParentOutput::Write { field: field_of(&frame), frame });
                    }
                    self.emit_cas(WordState::Idle, to, AfterCas::PublishedControl);
                } else if let Some(t) = self.tasks.front_mut() {
                    if let Some(t) = t.frame.take() {
                        let frame = Frame::Task(t);
                        self.outputs.push_back(ParentOutput::Write { field: field_of(&frame), frame });
                    }
                    let to = WordState::Idle.transition_to_task_ready().expect("IDLE admits a task");
                    self.emit_cas(WordState::Idle, to, AfterCas::PublishedTask);
                }
            }
            WordState::TaskRunning => {
                if let Some(t) = self.task.as_mut() {
                    t.phase = TaskPhase::Running;
                }
                self.stage_next_task();
                if let Some(c) = self.controls.front_mut() {
                    if let Ok(to) = WordState::TaskRunning.transition_to_control_ready(c.during_task) {
                        if let Some(c) = c.frame.take() {
                            let frame = Frame::Control(c);
                            self.outputs.push_back(ParentOutput::Write { field: field_of(&frame), frame });
                        }
                        self.emit_cas(WordState::TaskRunning, to, AfterCas::PublishedControl);
                    }
                }
            }
            WordState::ControlReady { under_task } | WordState::ControlDone { under_task }
                if under_task && self.task.as_ref().is_some_and(|t| t.phase == TaskPhase::Running) =>
            {
                self.stage_next_task();
                if matches!(self.word, WordState::ControlDone { .. }) {
                    self.pending = Some(Pending::ReadControlResult);
                    self.outputs.push_back(ParentOutput::Read { field: result_field(FrameKind::ControlResult) });
                }
            }
            WordState::ControlDone { .. } => {
                self.pending = Some(Pending::ReadControlResult);
                self.outputs.push_back(ParentOutput::Read { field: result_field(FrameKind::ControlResult) });
            }
            WordState::TaskDone => {
                self.pending = Some(Pending::ReadTaskResult);
                self.outputs.push_back(ParentOutput::Read { field: result_field(FrameKind::TaskResult) });
            }
            WordState::TaskReady | WordState::ControlReady { .. } | WordState::Poisoned => {}
        }
    }

    /// Rule 1: once the child published TASK_RUNNING it no longer reads the
    /// task field, so the next task can be written there ahead of time.
    fn stage_next_task(&mut self) {
        if let Some(t) = self.tasks.front_mut().and_then(|t| t.frame.take()) {
            let frame = Frame::Task(t);
            self.outputs.push_back(ParentOutput::Write { field: field_of(&frame), frame });
        }
    }

    fn after_cas(&mut self, after: AfterCas) {
        match after {
            AfterCas::PublishedTask => {
                let t = self.tasks.pop_front().expect("published task was queued");
                self.task = Some(InFlightTask { id: t.id, phase: TaskPhase::Ready });
            }
            AfterCas::PublishedControl => {
                let c = self.controls.pop_front().expect("published control was queued");
                self.control = Some(InFlightControl { id: c.id, early: None });
            }
            AfterCas::Restored => {
                let c = self.control.take().expect("restored control was in flight");
                let (id, result) = self.control_result.take().expect("control result was read");
                debug_assert_eq!(id, c.id);
                self.outputs.push_back(ParentOutput::ControlDone { dispatch: id.dispatch, result: result.clone() });
                // A settlement is owed for a fresh register and a final unregister.
                let owed = result.as_ref().is_ok_and(ControlReply::owes_settlement);
                if owed {
                    let expect = match result {
                        Ok(ControlReply::Registered { slot, generation, .. }) => {
                            FrameId { dispatch: id.dispatch, slot, generation }
                        }
                        _ => id,
                    };
                    match c.early {
                        Some(e) if e.id == expect => {
                            self.outputs
                                .push_back(ParentOutput::Settled { dispatch: id.dispatch, result: Ok(e.settlement) });
                        }
                        Some(_) => {
                            // The owed settlement still resolves (with the
                            // endpoint error once the child is gone).
                            self.settlements.insert(id.dispatch, expect);
                            self.poison(PoisonReason::IdentityMismatch);
                        }
                        None => {
                            self.settlements.insert(id.dispatch, expect);
                        }
                    }
                } else if c.early.is_some() {
                    self.poison(PoisonReason::IdentityMismatch);
                }
            }
            AfterCas::ConsumedTask => {
                let t = self.task.take().expect("consumed task was in flight");
                let r = self.task_result.take().expect("task result was read");
                debug_assert_eq!(r.id, t.id);
                self.outputs.push_back(ParentOutput::TaskDone { dispatch: t.id.dispatch, result: r.result });
            }
        }
    }

    fn on_task_result(&mut self, r: Result<Frame, FrameError>) {
        let Some(task) = self.task.as_ref() else {
            return self.poison(PoisonReason::IdentityMismatch);
        };
        match r {
            Ok(Frame::TaskResult(f)) if f.id == task.id => {
                self.task_result = Some(f);
                let to = self.word.transition_to_idle().expect("reading a task result at TASK_DONE");
                self.emit_cas(self.word, to, AfterCas::ConsumedTask);
            }
            Ok(_) => self.poison(PoisonReason::IdentityMismatch),
            Err(e) => self.poison(PoisonReason::MalformedFrame(e)),
        }
    }

    fn on_control_result(&mut self, r: Result<Frame, FrameError>) {
        let Some(control) = self.control.as_ref() else {
            return self.poison(PoisonReason::IdentityMismatch);
        };
        match r {
            Ok(Frame::ControlResult(f)) if f.id == control.id => {
                self.control_result = Some((f.id, f.result));
                // MUTANT restore_by_store lives in the concurrent layer's CAS
                // helper: here the restore is always a CAS (rule 7).
                let to = self.word.transition_to_restored().expect("reading a control result at CONTROL_DONE");
                self.emit_cas(self.word, to, AfterCas::Restored);
            }
            Ok(_) => self.poison(PoisonReason::IdentityMismatch),
            Err(e) => self.poison(PoisonReason::MalformedFrame(e)),
        }
    }

    fn on_completion(&mut self, r: Result<Frame, FrameError>) {
        let f = match r {
            Ok(Frame::Completion(f)) => f,
            Ok(_) => return self.poison(PoisonReason::IdentityMismatch),
            Err(e) => return self.poison(PoisonReason::MalformedFrame(e)),
        };
        let d = f.id.dispatch;
        if let Some(expect) = self.settlements.get(&d) {
            if *expect != f.id {
                return self.poison(PoisonReason::IdentityMismatch);
            }
            self.settlements.remove(&d);
            self.outputs.push_back(ParentOutput::Settled { dispatch: d, result: Ok(f.settlement) });
            return;
        }
        // The child may push a settlement before the parent has read the
        // control's result: hold it for the control in flight (once).
        match self.control.as_mut() {
            Some(c) if c.id.dispatch == d && c.early.is_none() => {
                c.early = Some(CompletionFrameLite { id: f.id, settlement: f.settlement });
            }
            _ => self.poison(PoisonReason::IdentityMismatch),
        }
    }

    /// The child is gone: resolve everything outstanding, exactly once.
    fn on_gone(&mut self, err: EndpointError) {
        if self.gone.is_some() {
            return;
        }
        self.gone = Some(err.clone());
        self.withdraw();
        if self.poisoned.is_none() {
            // The word goes POISONED on the parent side (docs/protocol.md section 4).
            let reason = match &err {
                EndpointError::LivenessTimeout => PoisonReason::LivenessTimeout,
                EndpointError::Poisoned(r) => r.clone(),
                EndpointError::ChildDied | EndpointError::ShutDown => PoisonReason::ChildDied,
            };
            self.poisoned = Some(reason.clone());
            self.outputs.push_back(ParentOutput::Poison { reason });
        }
        let mut done: Vec<(DispatchId, ParentOutput)> = Vec::new();
        if let Some(t) = self.task.take() {
            let d = t.id.dispatch;
            done.push((d, ParentOutput::TaskDone { dispatch: d, result: Err(RunError::Endpoint(err.clone())) }));
        }
        for t in self.tasks.drain(..) {
            let d = t.id.dispatch;
            done.push((d, ParentOutput::TaskDone { dispatch: d, result: Err(RunError::Endpoint(err.clone())) }));
        }
        if let Some(c) = self.control.take() {
            // A control whose result was read but not yet restored: its
            // result stands (the child acted on it), yet its settlement will
            // never come.
            let d = c.id.dispatch;
            let result = match self.control_result.take() {
                Some((_, Ok(reply))) => {
                    let owed = reply.owes_settlement();
                    if owed {
                        self.settlements.insert(d, c.id);
                    }
                    Ok(reply)
                }
                Some((_, Err(e))) => Err(e),
                None => Err(ControlError::Endpoint(err.clone())),
            };
            done.push((d, ParentOutput::ControlDone { dispatch: d, result }));
        }
        for c in self.controls.drain(..) {
            let d = c.id.dispatch;
            done.push((d, ParentOutput::ControlDone { dispatch: d, result: Err(ControlError::Endpoint(err.clone())) }));
        }
        for (d, _) in std::mem::take(&mut self.settlements) {
            done.push((d, ParentOutput::Settled { dispatch: d, result: Err(err.clone()) }));
        }
        done.sort_by_key(|(d, o)| (*d, matches!(o, ParentOutput::Settled { .. })));
        self.outputs.extend(done.into_iter().map(|(_, o)| o));
        self.task_result = None;
        self.control_result = None;
    }
}

/// May this control enter during TASK_RUNNING?
fn allowed_during_task(op: &ControlOp) -> bool {
    // MUTANT memory_control_while_running: memory/domain controls enter too.
    if cfg!(chiplane_mutant = "memory_control_while_running") {
        return true;
    }
    op.allowed_during_task()
}

fn field_of(frame: &Frame) -> Field {
    field_for(frame.kind()).expect("task and control frames have fields")
}

fn result_field(kind: FrameKind) -> Field {
    field_for(kind).expect("result frames have fields")
}

/// Map a settlement to what `register_async(..).wait()` returns.
pub fn register_outcome(
    reply: ControlReply,
    settlement: Result<Settlement, EndpointError>,
) -> Result<(SlotIndex, Generation), RegisterError> {
    match (reply, settlement) {
        (ControlReply::Registered { slot, generation, .. }, Ok(Settlement::Prepared(Ok(())))) => Ok((slot, generation)),
        (_, Ok(Settlement::Prepared(Err(e)))) => Err(e),
        (_, Err(e)) => Err(RegisterError::Endpoint(e)),
        _ => Err(RegisterError::Endpoint(EndpointError::Poisoned(PoisonReason::IdentityMismatch))),
    }
}

/// Map a control error of an unregister to the caller's error.
pub fn unregister_error(e: ControlError) -> UnregisterError {
    match e {
        ControlError::Unregister(u) => u,
        ControlError::Endpoint(e) => UnregisterError::Endpoint(e),
        _ => UnregisterError::Endpoint(EndpointError::Poisoned(PoisonReason::IdentityMismatch)),
    }
}
