//! The chip child process: core's [`ChildEndpoint`] driven by a serve loop,
//! over a [`ModelChip`] (core's chip side and a model device). Both harnesses
//! that compose the whole protocol (the exhaustive [`super::System`] and the
//! `mailbox_protocol` fuzz target) run this one serve loop.
//!
//! # One serve-loop step ([`ChildProc::serve_step`], as `conc::serve::Serve::step`)
//! Execute one queued output of the endpoint; else feed one chip event
//! (`RunFinished` / `Settled`, in the order the chip side emitted them);
//! else load the word and the ring's free entries and feed `Observed`.
//! `AcceptTask` / `ApplyControl` become [`ChipInput::Task`] /
//! [`ChipInput::Control`](chiplane_core::chipside::ChipInput::Control);
//! the chip side's reply (or typed refusal) is the endpoint's answer.
//! Every word transition goes through [`Memory::transition`]
//! (`WordState::apply`), frames and the ring through [`Memory`].
//!
//! # Checked as it happens (a violation is an `Err`)
//! Every successful CAS is in the design's table for the child
//! (`mailbox::word::legal`); TASK_RUNNING is published only after the chip
//! side queued the published task (rule 1); a memory or domain control is
//! never applied while the child holds a task (rule 3); the child writes
//! only result frames and never pushes into a full ring; it poisons only
//! after a fault; plus [`ModelChip`]'s checks.

use std::collections::VecDeque;

use chiplane_core::chip::{CallableSpec, ChipError, TaskArgs};
use chiplane_core::chipside::ChildEvent;
use chiplane_core::error::{ControlError, RunError};
use chiplane_core::frame::{ControlOp, ControlReply, Frame, FrameKind};
use chiplane_core::ids::DispatchId;
use chiplane_core::mailbox::child::{ChildEndpoint, ChildInput, ChildOutput};
use chiplane_core::mailbox::field_for;
use chiplane_core::mailbox::word::{legal, Side, WordState};
use chiplane_core::RunOutput;

use super::chip::ModelChip;
use super::part::{fp128, Part};
use super::{Artifact, Memory, Named, Reached};

/// The child process.
#[derive(Clone, Hash, Debug)]
pub struct ChildProc {
    pub endpoint: Part<ChildEndpoint>,
    /// The endpoint's outputs, executed one per serve step.
    out: Part<VecDeque<ChildOutput>>,
    /// Chip events the serve loop has not fed yet.
    events: Part<VecDeque<ChildEvent>>,
    /// Changed only through the methods here, which move its events out.
    pub chip: Part<ModelChip>,
    /// Dead (died, or killed by the parent after its poison).
    pub dead: bool,
}

/// What one serve-loop step did.
#[derive(Clone, Debug, PartialEq)]
pub enum Served {
    /// Nothing to do (dead, or nothing queued and no word wanted).
    Nothing,
    /// Executed an output (other than the ones below).
    Output,
    /// Answered control `dispatch` with the chip side's reply or refusal.
    ControlApplied { dispatch: DispatchId, result: Result<ControlReply, ControlError> },
    /// Refused task `dispatch` (the chip side refused to queue it).
    TaskRejected { dispatch: DispatchId, error: RunError },
    /// Fed a chip event.
    Event(ChildEvent),
    /// Loaded the word and the ring's free entries.
    Observed,
}

/// What the serve loop needs from its harness.
pub struct Env<'a> {
    /// A fault was injected: poison (and, with forged ring entries, a full
    /// ring) are allowed.
    pub fault: bool,
    /// Named states go here.
    pub reached: &'a mut Reached,
    /// The callable task `dispatch`'s run must use, if the harness knows.
    pub expect: &'a dyn Fn(DispatchId) -> Option<u8>,
    /// Print every executed output.
    pub trace: bool,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env").field("fault", &self.fault).field("reached", &self.reached).finish_non_exhaustive()
    }
}

impl ChildProc {
    pub fn new(chip: ModelChip) -> Self {
        ChildProc {
            endpoint: Part::new(ChildEndpoint::new()),
            out: Part::new(VecDeque::new()),
            events: Part::new(VecDeque::new()),
            chip: Part::new(chip),
            dead: false,
        }
    }

    /// A serve step would do something (execute an output, feed an event,
    /// or load a word; `exact`: a word that changes the endpoint).
    pub fn can_step(&self, mem: &Memory, exact: bool) -> bool {
        !self.dead
            && (!self.out.is_empty()
                || !self.events.is_empty()
                || (self.endpoint.wants_word() && (!exact || self.observe_changes(mem))))
    }

    /// The next output is a frame write (a death may tear it).
    pub fn writing(&self) -> bool {
        matches!(self.out.front(), Some(ChildOutput::Write { .. }))
    }

    /// Outputs queued and not executed.
    pub fn outputs_queued(&self) -> usize {
        self.out.len()
    }

    /// Would a word load change the endpoint?
    fn observe_changes(&self, mem: &Memory) -> bool {
        let before = self.endpoint.fp();
        let mut e = (*self.endpoint).clone();
        let _ = e.handle(ChildInput::Observed { word: mem.word, ring_free: mem.ring_free() });
        fp128(&e) != before
    }

    /// One serve-loop step (module doc).
    pub fn serve_step(&mut self, mem: &mut Memory, env: &mut Env<'_>) -> Result<Served, String> {
        if self.dead {
            return Ok(Served::Nothing);
        }
        if let Some(o) = self.out.front().is_some().then(|| self.out.edit().pop_front()).flatten() {
            if env.trace {
                eprintln!("child  {o:?}   [word {:?}]", mem.word_state());
            }
            return self.exec(o, mem, env);
        }
        if let Some(ev) = self.events.front().is_some().then(|| self.events.edit().pop_front()).flatten() {
            let input = match ev.clone() {
                ChildEvent::RunFinished { dispatch, result } => ChildInput::RunFinished { dispatch, result },
                ChildEvent::Settled { id, settlement } => ChildInput::Settled { id, settlement },
            };
            self.feed(input)?;
            return Ok(Served::Event(ev));
        }
        if !self.endpoint.wants_word() {
            return Ok(Served::Nothing);
        }
        self.feed(ChildInput::Observed { word: mem.word, ring_free: mem.ring_free() })?;
        Ok(Served::Observed)
    }

    /// Nothing queued, running or owed on the chip, no event unfed.
    pub fn chip_idle(&self) -> bool {
        self.chip.idle() && self.events.is_empty()
    }

    /// The device finishes its run ([`ModelChip::finish_run`]).
    pub fn finish_run(
        &mut self,
        ok: bool,
        run: impl FnOnce(&Artifact, &TaskArgs) -> Result<RunOutput, ChipError>,
    ) -> Result<bool, String> {
        self.with_chip(|chip| chip.finish_run(ok, run))
    }

    /// The device finishes its register-lane job ([`ModelChip::finish_register`]).
    pub fn finish_register(&mut self, ok: bool, callable_of: impl FnOnce(&CallableSpec) -> u8) -> Result<bool, String> {
        self.with_chip(|chip| chip.finish_register(ok, callable_of))
    }

    /// Change the chip, then queue the events it emitted for the serve loop.
    fn with_chip<T>(&mut self, f: impl FnOnce(&mut ModelChip) -> Result<T, String>) -> Result<T, String> {
        let chip = self.chip.edit();
        let r = f(chip);
        let mut events = chip.take_events().peekable();
        if events.peek().is_some() {
            self.events.edit().extend(events);
        }
        r
    }

    /// The process dies; `tearing`: in the middle of the frame write it was
    /// about to make (the first half of the bytes reach the field).
    pub fn die(&mut self, mem: &mut Memory, tearing: bool, reached: &mut Reached) -> Result<(), String> {
        self.dead = true;
        reached.insert(Named::ChildDeath);
        if !tearing {
            return Ok(());
        }
        if let Some(ChildOutput::Write { field, frame }) = self.out.edit().pop_front() {
            reached.insert(Named::TornWrite);
            mem.write_torn(field, &frame).map_err(|e| format!("torn write of a frame that does not encode: {e:?}"))?;
        }
        Ok(())
    }

    fn feed(&mut self, input: ChildInput) -> Result<(), String> {
        let endpoint = self.endpoint.edit();
        if let Err(e) = endpoint.handle(input) {
            return Err(format!("child refused its driver's input: {e:?}"));
        }
        while let Some(o) = endpoint.poll() {
            self.out.edit().push_back(o);
        }
        Ok(())
    }

    fn exec(&mut self, o: ChildOutput, mem: &mut Memory, env: &mut Env<'_>) -> Result<Served, String> {
        match o {
            ChildOutput::Read { field } => {
                let r = mem.read(field);
                self.feed(ChildInput::ReadResult(r))?;
            }
            ChildOutput::AcceptTask(frame) => {
                let dispatch = frame.id.dispatch;
                let expect = (env.expect)(dispatch);
                let answer = self.with_chip(|chip| chip.task(frame, expect))?;
                return match answer {
                    None => self.feed(ChildInput::TaskAccepted).map(|()| Served::Output),
                    Some(error) => {
                        self.feed(ChildInput::TaskRejected(error.clone()))?;
                        Ok(Served::TaskRejected { dispatch, error })
                    }
                };
            }
            ChildOutput::ApplyControl(frame) => {
                let dispatch = frame.id.dispatch;
                if matches!(frame.op, ControlOp::Memory { .. } | ControlOp::Domain { .. })
                    && self.endpoint.task().is_some()
                {
                    return Err(format!("{:?} applied while the child holds a task (rule 3)", frame.op));
                }
                let result = self.with_chip(|chip| chip.control(frame))?;
                self.feed(ChildInput::ControlApplied(result.clone()))?;
                return Ok(Served::ControlApplied { dispatch, result });
            }
            ChildOutput::Write { field, frame } => {
                let kind = frame.kind();
                if !matches!(kind, FrameKind::TaskResult | FrameKind::ControlResult) {
                    return Err(format!("the child wrote a {kind:?} frame"));
                }
                let under_control =
                    matches!(mem.word_state(), Some(WordState::ControlReady { .. } | WordState::ControlDone { .. }));
                if under_control && kind == FrameKind::TaskResult {
                    // The run finished while a control is in flight: TASK_DONE is deferred.
                    env.reached.insert(Named::DeferredTaskDone);
                }
                mem.write(field, &frame)
                    .map_err(|e| format!("the child's {kind:?} frame does not fit {field:?}: {e:?}"))?;
            }
            ChildOutput::Cas { from, to } => {
                let r = mem.transition(from, to);
                if r.is_ok() && !legal(Side::Child, from, to) {
                    return Err(format!("child moved the word {from:?} -> {to:?}: not in the design's table"));
                }
                if r.is_ok() && to == WordState::TaskRunning && !env.fault {
                    let published =
                        mem.read(field_for(FrameKind::Task).expect("the task field")).map(|f| f.id().dispatch);
                    if published.as_ref().ok() != self.chip.last_queued.as_ref() {
                        return Err(format!(
                            "TASK_RUNNING published before task {published:?} was copied out and queued (rule 1; \
                             last queued {:?})",
                            self.chip.last_queued
                        ));
                    }
                }
                self.feed(ChildInput::CasResult(r))?;
            }
            ChildOutput::Push(frame) => match mem.push(&Frame::Completion(frame)) {
                Ok(true) => {
                    if mem.ring_free() == 0 {
                        env.reached.insert(Named::RingFull);
                    }
                }
                Ok(false) if env.fault => {}
                Ok(false) => return Err("child pushed into a full completion ring".into()),
                Err(e) => return Err(format!("a completion does not fit its entry: {e:?}")),
            },
            ChildOutput::Poison { reason } => {
                if !env.fault {
                    return Err(format!("child poisoned without a fault: {reason:?}"));
                }
                // Swap POISONED in; the serve loop ends and the process exits.
                mem.poison();
                self.dead = true;
            }
        }
        Ok(Served::Output)
    }
}
