//! The chip of a child process: core's [`ChipSide`] (slot table, run lane,
//! register lane, control mapping, settlement routing) and a model device
//! whose lane work finishes when a harness says so. Both harnesses that
//! compose the whole protocol (the exhaustive [`super::System`] and the
//! `mailbox_protocol` fuzz target) drive the chip side through this one
//! driver.
//!
//! `StartRun` puts a run on the device; [`ModelChip::finish_run`] ends it and
//! feeds `RunFinished { job, .. }`. `StartPrepare` / `StartRelease` put a job
//! on the register lane; [`ModelChip::finish_register`] ends it
//! (`PrepareFinished` with a fresh artifact or an error; `ReleaseFinished`).
//! `Cancel` marks the running prepare: it may still finish, or stop with
//! `Cancelled`. Events for the child endpoint queue up until the owner
//! takes them ([`ModelChip::take_events`]) for its serve loop.
//!
//! Checked as the outputs are carried out (a violation is an `Err`): tasks
//! reach the chip in dispatch order; one run and one register-lane job on
//! the device at a time; no run uses a
//! released artifact, nor another callable's artifact than the task's
//! submitter expects; runs retire in the order their tasks were queued; an
//! artifact is released at most once, never while a run uses it, and one a
//! PREPARED slot held never while a queued run names that slot's handle.

use std::collections::{BTreeSet, VecDeque};

use chiplane_core::chip::{CallableSpec, ChipError, ChipErrorKind, TaskArgs};
use chiplane_core::chipside::{ChildEvent, ChipInput, ChipOutput, ChipRefusal, ChipReply, ChipSide};
use chiplane_core::frame::{ControlFrame, ControlReply, TaskFrame};
use chiplane_core::ids::{CallableHandle, DispatchId, WorkerId};
use chiplane_core::lane::JobId;
use chiplane_core::slot::{SlotLimits, SlotState};
use chiplane_core::{ControlError, RunError, RunOutput};

use super::Artifact;

/// A run on the device.
#[derive(Clone, Hash, Debug)]
struct OnChip {
    job: JobId,
    dispatch: DispatchId,
    artifact: Artifact,
    args: TaskArgs,
}

/// The register lane's job on the device.
#[derive(Clone, Hash, Debug)]
enum RegJob {
    Prepare { handle: CallableHandle, spec: CallableSpec, cancelled: bool },
    Release { job: JobId, artifact: Artifact },
}

/// A task the chip side queued and has not retired.
#[derive(Clone, Hash, Debug)]
struct Queued {
    dispatch: DispatchId,
    handle: CallableHandle,
    /// The callable whose artifact the run must use, if the harness knows.
    expect: Option<u8>,
}

/// The chip side and the model device. See the module doc.
#[derive(Clone, Hash, Debug)]
pub struct ModelChip {
    pub side: ChipSide<Artifact, ()>,
    run: Option<OnChip>,
    reg: Option<RegJob>,
    events: VecDeque<ChildEvent>,
    queued: VecDeque<Queued>,
    /// The last task the chip side queued (rule 1: TASK_RUNNING follows it).
    pub last_queued: Option<DispatchId>,
    /// Tasks retired, in order.
    pub retired: Vec<DispatchId>,
    next_artifact: u32,
    pub created: BTreeSet<u32>,
    /// Artifacts a PREPARED slot held.
    published: BTreeSet<u32>,
    pub released: BTreeSet<u32>,
}

impl ModelChip {
    pub fn new(worker: WorkerId, limits: SlotLimits) -> Self {
        ModelChip {
            side: ChipSide::new(worker, limits),
            run: None,
            reg: None,
            events: VecDeque::new(),
            queued: VecDeque::new(),
            last_queued: None,
            retired: Vec::new(),
            next_artifact: 1,
            created: BTreeSet::new(),
            published: BTreeSet::new(),
            released: BTreeSet::new(),
        }
    }

    /// A run is on the device.
    pub fn running(&self) -> bool {
        self.run.is_some()
    }

    /// The register lane's job on the device: `Some(cancelled)` for a
    /// prepare, `None` for a release or nothing.
    pub fn preparing(&self) -> Option<bool> {
        match &self.reg {
            Some(RegJob::Prepare { cancelled, .. }) => Some(*cancelled),
            _ => None,
        }
    }

    /// A register-lane job is on the device.
    pub fn register_busy(&self) -> bool {
        self.reg.is_some()
    }

    /// The events for the child endpoint emitted since the last call, in order.
    pub fn take_events(&mut self) -> impl Iterator<Item = ChildEvent> + '_ {
        self.events.drain(..)
    }

    /// Nothing queued, running or owed.
    pub fn idle(&self) -> bool {
        self.side.idle() && self.run.is_none() && self.reg.is_none() && self.events.is_empty()
    }

    /// `AcceptTask`: pin and queue (`Ok(None)`) or refuse (`Ok(Some(error))`).
    /// `expect`: the callable whose artifact the run must use.
    pub fn task(&mut self, frame: TaskFrame, expect: Option<u8>) -> Result<Option<RunError>, String> {
        let (dispatch, slot, generation) = (frame.id.dispatch, frame.id.slot, frame.id.generation);
        let handle = CallableHandle { worker: self.side.worker(), index: slot, generation };
        if self.last_queued.is_some_and(|last| last >= dispatch) {
            return Err(format!("task {dispatch:?} reached the chip after {:?} (dispatch order)", self.last_queued));
        }
        let answer = match self.side.handle(ChipInput::Task(frame)) {
            Ok(ChipReply::Queued) => {
                self.queued.push_back(Queued { dispatch, handle, expect });
                self.last_queued = Some(dispatch);
                None
            }
            Err(ChipRefusal::Run(e)) => Some(e),
            other => return Err(format!("the chip side answered task {dispatch:?} with {other:?}")),
        };
        self.drain()?;
        Ok(answer)
    }

    /// `ApplyControl`: the control's reply or typed refusal.
    pub fn control(&mut self, frame: ControlFrame) -> Result<Result<ControlReply, ControlError>, String> {
        let answer = match self.side.handle(ChipInput::Control(frame)) {
            Ok(ChipReply::Control(reply)) => Ok(reply),
            Err(ChipRefusal::Control(e)) => Err(e),
            other => return Err(format!("the chip side answered a control with {other:?}")),
        };
        self.drain()?;
        Ok(answer)
    }

    /// The device finishes its run with `run(artifact, args)` (or, `!ok`, a
    /// chip error). `Ok(false)`: no run on the device.
    pub fn finish_run(
        &mut self,
        ok: bool,
        run: impl FnOnce(&Artifact, &TaskArgs) -> Result<RunOutput, ChipError>,
    ) -> Result<bool, String> {
        let Some(r) = self.run.take() else { return Ok(false) };
        let result =
            if ok { run(&r.artifact, &r.args) } else { Err(ChipError::new(ChipErrorKind::Injected, "run failed")) };
        if let Err(e) = self.side.handle(ChipInput::RunFinished { job: r.job, result }) {
            return Err(format!("the chip side refused the end of run {:?}: {e:?}", r.dispatch));
        }
        self.drain()?;
        Ok(true)
    }

    /// The device finishes its register-lane job: a prepare succeeds (`ok`,
    /// an artifact of `callable_of(spec)`) or fails (`Cancelled` if it was
    /// cancelled, else a device error); a release completes. `Ok(false)`:
    /// no job on the device.
    pub fn finish_register(&mut self, ok: bool, callable_of: impl FnOnce(&CallableSpec) -> u8) -> Result<bool, String> {
        let Some(job) = self.reg.take() else { return Ok(false) };
        let input = match job {
            RegJob::Prepare { handle, spec, cancelled } => {
                let result = if ok {
                    let a = Artifact { id: self.next_artifact, callable: callable_of(&spec) };
                    self.next_artifact += 1;
                    self.created.insert(a.id);
                    Ok(a)
                } else if cancelled {
                    Err(ChipError::new(ChipErrorKind::Cancelled, "prepare stopped at a safe point"))
                } else {
                    Err(ChipError::new(ChipErrorKind::Device, "prepare failed"))
                };
                let id = result.as_ref().ok().map(|a| a.id);
                if let Err(e) = self.side.handle(ChipInput::PrepareFinished { handle, result }) {
                    return Err(format!("the chip side refused the end of the prepare of {handle:?}: {e:?}"));
                }
                let table = self.side.table();
                let prepared = table.state(handle.index) == Some(SlotState::Prepared)
                    && table.generation(handle.index) == Some(handle.generation);
                if let (Some(id), true) = (id, prepared) {
                    self.published.insert(id);
                }
                return self.drain().map(|()| true);
            }
            RegJob::Release { job, artifact } => {
                if self.run.as_ref().is_some_and(|r| r.artifact == artifact) {
                    return Err(format!("artifact {} released while a run uses it", artifact.id));
                }
                if !self.released.insert(artifact.id) {
                    return Err(format!("artifact {} released twice", artifact.id));
                }
                ChipInput::ReleaseFinished { job }
            }
        };
        if let Err(e) = self.side.handle(input) {
            return Err(format!("the chip side refused a register-lane report: {e:?}"));
        }
        self.drain()?;
        Ok(true)
    }

    /// Carry out what the chip side owes.
    fn drain(&mut self) -> Result<(), String> {
        while let Some(out) = self.side.poll() {
            match out {
                ChipOutput::StartPrepare { handle, spec } => {
                    if self.reg.is_some() {
                        return Err("a prepare started while the register lane was busy".into());
                    }
                    self.reg = Some(RegJob::Prepare { handle, spec, cancelled: false });
                }
                ChipOutput::Cancel { handle } => match &mut self.reg {
                    Some(RegJob::Prepare { handle: h, cancelled, .. }) if *h == handle => *cancelled = true,
                    other => return Err(format!("cancel of {handle:?} while the register lane runs {other:?}")),
                },
                ChipOutput::StartRelease { job, handle, artifact } => {
                    if self.reg.is_some() {
                        return Err("a release started while the register lane was busy".into());
                    }
                    if self.run.as_ref().is_some_and(|r| r.artifact == artifact) {
                        return Err(format!("artifact {} released while a run uses it", artifact.id));
                    }
                    if self.published.contains(&artifact.id) && self.queued.iter().any(|q| q.handle == handle) {
                        return Err(format!(
                            "artifact {} of {handle:?} released while a queued run still names it",
                            artifact.id
                        ));
                    }
                    self.reg = Some(RegJob::Release { job, artifact });
                }
                ChipOutput::StartRun { job, artifact, args, .. } => {
                    if self.run.is_some() {
                        return Err("a run started while another is on the device".into());
                    }
                    if self.released.contains(&artifact.id) {
                        return Err(format!("a run uses released artifact {}", artifact.id));
                    }
                    let Some(q) = self.queued.front() else { return Err("a run started that no task queued".into()) };
                    if q.expect.is_some_and(|c| c != artifact.callable) {
                        return Err(format!(
                            "run {:?} of callable {:?} got the artifact of callable {}",
                            q.dispatch, q.expect, artifact.callable
                        ));
                    }
                    self.run = Some(OnChip { job, dispatch: q.dispatch, artifact, args });
                }
                ChipOutput::Event(ev) => {
                    if let ChildEvent::RunFinished { dispatch, .. } = &ev {
                        // Runs retire in the order their tasks were queued.
                        let front = self.queued.pop_front().map(|q| q.dispatch);
                        if front != Some(*dispatch) {
                            return Err(format!("run {dispatch:?} retired before {front:?} (FIFO)"));
                        }
                        self.retired.push(*dispatch);
                    }
                    self.events.push_back(ev);
                }
                ChipOutput::Resolve { .. } => return Err("an L2 resolution from an L3 chip side".into()),
            }
        }
        Ok(())
    }
}
