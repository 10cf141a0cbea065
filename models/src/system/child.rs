//! The chip child process: its serve loop around core's [`ChildEndpoint`],
//! core's [`ChipSide`] (slot table, both lanes, control mapping, settlement
//! routing), and a model chip whose lane work finishes as explored actions.
//!
//! # The serve loop ([`Action::Child`], one `conc::serve::Serve::step`)
//! Execute one queued output of the endpoint; else feed one chip event
//! (`RunFinished` / `Settled`, in the order the chip side emitted them);
//! else load the word and the ring's free entries and feed `Observed`.
//! `AcceptTask` / `ApplyControl` become [`ChipInput::Task`] /
//! [`ChipInput::Control`]; the chip side's reply (or typed refusal) is the
//! endpoint's answer.
//!
//! # The chip
//! The chip side's `StartRun` puts a run on the chip; [`Action::RunFinish`]
//! ends it with the kernel's reference output or a chip error and feeds
//! `RunFinished { job, .. }`. `StartPrepare` / `StartRelease` put a job on
//! the register lane; [`Action::RegFinish`] ends it (`PrepareFinished` with
//! a fresh artifact or an error; `ReleaseFinished`). `Cancel` marks the
//! running prepare: it may still finish, or stop with `Cancelled`.

use std::collections::{BTreeSet, VecDeque};

use chiplane_core::chip::{ChipError, ChipErrorKind, TaskArgs};
use chiplane_core::chipside::{ChildEvent, ChipInput, ChipOutput, ChipRefusal, ChipReply, ChipSide};
use chiplane_core::frame::{ControlOp, Frame, FrameKind};
use chiplane_core::ids::{DispatchId, Handle};
use chiplane_core::kernels;
use chiplane_core::lane::JobId;
use chiplane_core::mailbox::child::{ChildEndpoint, ChildInput, ChildOutput};
use chiplane_core::mailbox::word::{legal, Side, WordState};

use super::part::fp128;
use super::{spec_of, Artifact, Named, Op, System, CALLABLES, CHILD_WORKER};
use crate::system::Config;

/// A run on the chip.
#[derive(Clone, Hash, Debug)]
pub(super) struct OnChip {
    job: JobId,
    dispatch: DispatchId,
    artifact: Artifact,
    args: TaskArgs,
}

/// The register lane's job on the chip.
#[derive(Clone, Hash, Debug)]
pub(super) enum RegJob {
    Prepare { handle: Handle, callable: u8, cancelled: bool },
    Release { job: JobId, artifact: Artifact },
}

/// The child process.
#[derive(Clone, Hash, Debug)]
pub struct ChildProc {
    pub endpoint: ChildEndpoint,
    /// The endpoint's outputs, executed one per serve step.
    pub(super) out: VecDeque<ChildOutput>,
    /// Chip events not yet fed to the endpoint.
    pub(super) events: VecDeque<ChildEvent>,
    pub chip: ChipSide<Artifact, ()>,
    pub(super) run: Option<OnChip>,
    pub(super) reg: Option<RegJob>,
    next_artifact: u32,
    pub created: BTreeSet<u32>,
    pub released: BTreeSet<u32>,
    /// Tasks the chip side queued and has not retired (the reference FIFO).
    accepted: VecDeque<DispatchId>,
    /// Tasks the chip side retired, in order.
    pub(super) retired: Vec<DispatchId>,
    /// Dead (died, or killed by the parent after its poison).
    pub dead: bool,
}

impl ChildProc {
    pub(super) fn new(cfg: &Config) -> Self {
        ChildProc {
            endpoint: ChildEndpoint::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            chip: ChipSide::new(CHILD_WORKER, cfg.limits),
            run: None,
            reg: None,
            next_artifact: 1,
            created: BTreeSet::new(),
            released: BTreeSet::new(),
            accepted: VecDeque::new(),
            retired: Vec::new(),
            dead: false,
        }
    }

    /// The register lane's job is a prepare.
    pub(super) fn preparing(&self) -> Option<bool> {
        match &self.reg {
            Some(RegJob::Prepare { cancelled, .. }) => Some(*cancelled),
            _ => None,
        }
    }
}

impl System {
    /// [`Action::Child`]: one serve-loop step.
    pub(super) fn child_step(&mut self) {
        let c = self.child.edit();
        if let Some(o) = c.out.pop_front() {
            return self.exec_child(o);
        }
        if let Some(ev) = c.events.pop_front() {
            let input = match ev {
                ChildEvent::RunFinished { dispatch, result } => ChildInput::RunFinished { dispatch, result },
                ChildEvent::Settled { id, settlement } => ChildInput::Settled { id, settlement },
            };
            return self.feed_child(input);
        }
        let (word, ring_free) = (self.mem.word, self.mem.ring_free());
        self.feed_child(ChildInput::Observed { word, ring_free });
    }

    fn feed_child(&mut self, input: ChildInput) {
        let c = self.child.edit();
        if let Err(e) = c.endpoint.handle(input) {
            return self.fail(format!("child refused its driver's input: {e:?}"));
        }
        while let Some(o) = c.endpoint.poll() {
            c.out.push_back(o);
        }
    }

    fn exec_child(&mut self, o: ChildOutput) {
        match o {
            ChildOutput::Read { field } => {
                let r = self.mem.read(field);
                self.feed_child(ChildInput::ReadResult(r));
            }
            ChildOutput::AcceptTask(frame) => {
                let dispatch = frame.id.dispatch;
                let answer = match self.feed_chip(ChipInput::Task(frame)) {
                    Ok(ChipReply::Queued) => {
                        self.child.edit().accepted.push_back(dispatch);
                        ChildInput::TaskAccepted
                    }
                    Err(ChipRefusal::Run(e)) => ChildInput::TaskRejected(e),
                    other => return self.fail(format!("the chip side answered a task with {other:?}")),
                };
                self.drain_chip();
                self.feed_child(answer);
            }
            ChildOutput::ApplyControl(frame) => {
                if matches!(frame.op, ControlOp::Memory { .. } | ControlOp::Domain { .. })
                    && self.child.endpoint.task().is_some()
                {
                    self.fail("a memory control is applied while the child holds a task (rule 3)".into());
                }
                let answer = match self.feed_chip(ChipInput::Control(frame)) {
                    Ok(ChipReply::Control(reply)) => Ok(reply),
                    Err(ChipRefusal::Control(e)) => Err(e),
                    other => return self.fail(format!("the chip side answered a control with {other:?}")),
                };
                self.drain_chip();
                self.feed_child(ChildInput::ControlApplied(answer));
            }
            ChildOutput::Write { field, frame } => {
                let under_control =
                    matches!(self.word_state(), Some(WordState::ControlReady { .. } | WordState::ControlDone { .. }));
                if under_control && frame.kind() == FrameKind::TaskResult {
                    // The run finished while a control is in flight: TASK_DONE is deferred.
                    self.reached.insert(Named::DeferredTaskDone);
                }
                if let Err(e) = self.mem.edit().write(field, &frame) {
                    self.fail(format!("the child's {:?} frame does not fit {field:?}: {e:?}", frame.kind()));
                }
            }
            ChildOutput::Cas { from, to } => {
                let r = self.mem.edit().transition(from, to);
                if r.is_ok() && !legal(Side::Child, from, to) {
                    self.fail(format!("child moved the word {from:?} -> {to:?}: not in the design's table"));
                }
                self.feed_child(ChildInput::CasResult(r));
            }
            ChildOutput::Push(frame) => match self.mem.edit().push(&Frame::Completion(frame)) {
                Ok(true) => {}
                Ok(false) => self.fail("child pushed into a full completion ring".into()),
                Err(e) => self.fail(format!("a completion does not fit its entry: {e:?}")),
            },
            ChildOutput::Poison { reason } => {
                if !self.fault_injected {
                    self.fail(format!("child poisoned without a fault: {reason:?}"));
                }
                // Swap POISONED in; the serve loop ends and the process exits.
                self.mem.edit().poison();
                self.child.edit().dead = true;
            }
        }
    }

    fn feed_chip(&mut self, input: ChipInput<Artifact, ()>) -> Result<ChipReply, ChipRefusal> {
        self.child.edit().chip.handle(input)
    }

    /// Do what the chip side owes: start lane work, queue events.
    fn drain_chip(&mut self) {
        loop {
            let c = self.child.edit();
            let Some(out) = c.chip.poll() else { return };
            match out {
                ChipOutput::StartPrepare { handle, spec } => {
                    if c.reg.is_some() {
                        return self.fail("a prepare started while the register lane was busy".into());
                    }
                    let Some(callable) = (0..CALLABLES as u8).find(|k| spec_of(*k) == spec) else {
                        return self.fail(format!("prepare of a spec no user registered: {spec:?}"));
                    };
                    c.reg = Some(RegJob::Prepare { handle, callable, cancelled: false });
                }
                ChipOutput::Cancel { handle } => match &mut c.reg {
                    Some(RegJob::Prepare { handle: h, cancelled, .. }) if *h == handle => *cancelled = true,
                    other => {
                        let msg = format!("cancel of {handle:?} while the register lane runs {other:?}");
                        return self.fail(msg);
                    }
                },
                ChipOutput::StartRelease { job, artifact, .. } => {
                    if c.reg.is_some() {
                        return self.fail("a release started while the register lane was busy".into());
                    }
                    if c.run.as_ref().is_some_and(|r| r.artifact == artifact) {
                        return self.fail(format!("artifact {} released while a run uses it", artifact.id));
                    }
                    c.reg = Some(RegJob::Release { job, artifact });
                }
                ChipOutput::StartRun { job, artifact, args, .. } => {
                    if c.run.is_some() {
                        return self.fail("a run started while another is on the chip".into());
                    }
                    if c.released.contains(&artifact.id) {
                        return self.fail(format!("a run uses released artifact {}", artifact.id));
                    }
                    let Some(&dispatch) = c.accepted.front() else {
                        return self.fail("a run started that no task queued".into());
                    };
                    c.run = Some(OnChip { job, dispatch, artifact, args });
                    match self.host.submitted.get(&dispatch) {
                        Some(Op::Run { callable, .. }) if *callable == artifact.callable as usize => {}
                        other => {
                            return self.fail(format!(
                                "run {dispatch:?} ({other:?}) got the artifact of callable {}",
                                artifact.callable
                            ))
                        }
                    }
                }
                ChipOutput::Event(ev) => {
                    if let ChildEvent::RunFinished { dispatch, .. } = &ev {
                        // Runs retire in the order their tasks were queued.
                        if c.accepted.front() != Some(dispatch) {
                            let front = c.accepted.front().copied();
                            return self.fail(format!("run {dispatch:?} retired before {front:?} (FIFO)"));
                        }
                        c.accepted.pop_front();
                        c.retired.push(*dispatch);
                    }
                    c.events.push_back(ev);
                }
                ChipOutput::Resolve { .. } => return self.fail("an L2 resolution from an L3 chip side".into()),
            }
        }
    }

    /// [`Action::RunFinish`].
    pub(super) fn run_finish(&mut self, ok: bool) {
        let Some(run) = self.child.edit().run.take() else { return };
        let result = if ok {
            kernels::reference(&spec_of(run.artifact.callable), &run.args)
        } else {
            Err(ChipError::new(ChipErrorKind::Injected, "run failed"))
        };
        if let Err(e) = self.feed_chip(ChipInput::RunFinished { job: run.job, result }) {
            return self.fail(format!("the chip side refused the end of run {:?}: {e:?}", run.dispatch));
        }
        self.drain_chip();
    }

    /// [`Action::RegFinish`].
    pub(super) fn reg_finish(&mut self, ok: bool) {
        let c = self.child.edit();
        let Some(job) = c.reg.take() else { return };
        let input = match job {
            RegJob::Prepare { handle, callable, cancelled } => {
                let result = if ok {
                    let a = Artifact { id: c.next_artifact, callable };
                    c.next_artifact += 1;
                    c.created.insert(a.id);
                    Ok(a)
                } else if cancelled {
                    Err(ChipError::new(ChipErrorKind::Cancelled, "prepare stopped at a safe point"))
                } else {
                    Err(ChipError::new(ChipErrorKind::Injected, "prepare failed"))
                };
                ChipInput::PrepareFinished { handle, result }
            }
            RegJob::Release { job, artifact } => {
                if c.run.as_ref().is_some_and(|r| r.artifact == artifact) {
                    self.fail(format!("artifact {} released while a run uses it", artifact.id));
                } else if !c.released.insert(artifact.id) {
                    self.fail(format!("artifact {} released twice", artifact.id));
                }
                ChipInput::ReleaseFinished { job }
            }
        };
        if let Err(e) = self.feed_chip(input) {
            return self.fail(format!("the chip side refused a register-lane report: {e:?}"));
        }
        self.drain_chip();
    }

    /// [`Action::ChildDies`] / [`Action::ChildDiesTearing`].
    pub(super) fn child_dies(&mut self, tearing: bool) {
        self.fault_injected = true;
        self.reached.insert(Named::ChildDeath);
        let c = self.child.edit();
        c.dead = true;
        if !tearing {
            return;
        }
        if let Some(ChildOutput::Write { field, frame }) = c.out.pop_front() {
            self.reached.insert(Named::TornWrite);
            if let Err(e) = self.mem.edit().write_torn(field, &frame) {
                self.fail(format!("torn write of a frame that does not encode: {e:?}"));
            }
        }
    }

    /// Would a word load change the child endpoint?
    pub(super) fn child_observe_changes(&self) -> bool {
        let mut e = self.child.endpoint.clone();
        let before = fp128(&e);
        let _ = e.handle(ChildInput::Observed { word: self.mem.word, ring_free: self.mem.ring_free() });
        fp128(&e) != before
    }
}
