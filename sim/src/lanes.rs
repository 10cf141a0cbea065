//! The world around core's chip-side machine: one [`Lanes`] per chip-side
//! unit (the L2 worker's chip side, or one chip child incarnation at L3)
//! holds `chiplane_core::chipside::ChipSide` itself, the sim chip, and the
//! two lanes as *virtual-time jobs*. Nothing of the chip side's logic (slot
//! table, lane order, control mapping, settlement routing) is here: only
//! what a lane thread does with each output, in virtual time, and the
//! faults.
//!
//! - `StartPrepare`: the register lane prepares; the prepare ends after its
//!   drawn latency (the chip call happens then, so that a `Cancel` during it
//!   is seen at its safe point) and is fed back as `PrepareFinished`.
//! - `StartRun`: the chip runs at once; the artifact is in use until the
//!   run's end, fed back as `RunFinished`.
//! - `StartRelease`: the artifact is released at once (the owner's copy must
//!   be its last: `Rc::try_unwrap`); the job ends after its latency and is
//!   fed back as `ReleaseFinished`.
//! - `Cancel`: the running prepare's cancel flag is raised.
//! - `Resolve` and `Event`: kept in [`Lanes::notes`] for the owner (the L2
//!   world resolves its callers' operations; the L3 child endpoint gets
//!   `RunFinished` / `Settled`).
//!
//! Faults: a prepare fails; a run fails; a cancelled prepare misses its
//! safe point and returns an artifact anyway; an earlier prepare completion
//! is replayed (a duplicate, or a late one after the slot moved on: fed as
//! `PrepareFinished` for a handle that is not the running prepare); a lane
//! job is slow.
//!
//! After every `handle` the unit's audit trail goes to the checker.

use std::collections::VecDeque;
use std::rc::Rc;

use chiplane_core::chipside::{ChildEvent, ChipInput, ChipOutput, ChipRefusal, ChipReply, ChipSide, Resolution};
use chiplane_core::lane::JobId;
use chiplane_core::slot::SlotLimits;
use chiplane_core::{CallableHandle, CallableSpec, Chip, ChipError, ChipErrorKind, RunOutput, WorkerId};

use crate::chip::{Cancelled, SimArtifact, SimChip};
use crate::options::N;
use crate::sched::{Ctx, Ev};

/// The artifact the chip side holds: the sim chip's, shared with a run
/// while it uses it (the owner's copy is gone before the run reports).
pub type Art = Rc<SimArtifact>;

/// Track ids in the Chrome trace (per unit: `+ 16 * unit`).
pub const TRACK_RUN: u32 = 1;
pub const TRACK_REGISTER: u32 = 2;

/// What the chip side owes the owner (an L2 caller's op, or the L3 child
/// endpoint).
#[derive(Debug)]
pub enum Note {
    Resolve { op: u32, resolution: Resolution },
    Event(ChildEvent),
}

#[derive(Debug)]
struct PrepareJob {
    handle: CallableHandle,
    spec: CallableSpec,
    cancelled: bool,
    start_ns: u64,
}

#[derive(Debug)]
struct RunInFlight {
    job: JobId,
    handle: CallableHandle,
    artifact: Art,
    result: Result<RunOutput, ChipError>,
    start_ns: u64,
}

#[derive(Debug)]
struct ReleaseJob {
    job: JobId,
    start_ns: u64,
}

/// One unit's chip side and lanes. See the module doc.
#[derive(Debug)]
pub struct Lanes {
    /// The unit's index (events and the checker name it).
    pub unit: u32,
    pub side: ChipSide<Art, u32>,
    pub chip: SimChip,
    prepare: Option<PrepareJob>,
    release: Option<ReleaseJob>,
    run: Option<RunInFlight>,
    pub notes: VecDeque<Note>,
    /// Prepares that finished (handle, spec): what a replay fault replays.
    finished: Vec<(CallableHandle, CallableSpec)>,
    pub runs_done: u64,
    pub prepares_done: u64,
    pub replays: u64,
    /// L3: the chip child died; its lanes never act again.
    pub dead: bool,
    /// Fed since the last whole-table check (the table changes only
    /// through `ChipSide::handle`).
    pub touched: bool,
    lost_one: bool,
}

/// Index of the callable a sim spec was built for (`params[0] = N + index`).
pub fn callable_of_spec(spec: &CallableSpec) -> usize {
    (spec.params.first().copied().unwrap_or(N) - N) as usize
}

impl Lanes {
    pub fn new(unit: u32, worker: WorkerId, limits: SlotLimits) -> Self {
        let mut side = ChipSide::new(worker, limits);
        side.set_audit(true);
        Lanes {
            unit,
            side,
            chip: SimChip::new(),
            prepare: None,
            release: None,
            run: None,
            notes: VecDeque::new(),
            finished: Vec::new(),
            runs_done: 0,
            prepares_done: 0,
            replays: 0,
            dead: false,
            touched: false,
            lost_one: false,
        }
    }

    pub fn worker(&self) -> WorkerId {
        self.side.worker()
    }

    /// Feed one input to the chip side, hand its audit trail to the
    /// checker, and do what it owes.
    pub fn feed(&mut self, cx: &mut Ctx, input: ChipInput<Art, u32>) -> Result<ChipReply, ChipRefusal> {
        let is_run = matches!(input, ChipInput::Run { .. } | ChipInput::Task(_));
        let r = self.side.handle(input);
        self.touched = true;
        while let Some(step) = self.side.poll_audit() {
            cx.check.audit(self.unit, step, &mut cx.cov);
        }
        cx.check.audit_done(self.unit);
        if is_run && r.is_ok() && self.side.runs_queued() > 0 {
            cx.cov.hit(5);
        }
        self.drain(cx);
        r
    }

    fn drain(&mut self, cx: &mut Ctx) {
        while let Some(out) = self.side.poll() {
            match out {
                ChipOutput::StartPrepare { handle, spec } => self.start_prepare(cx, handle, spec),
                ChipOutput::Cancel { handle } => match &mut self.prepare {
                    Some(p) if p.handle == handle => p.cancelled = true,
                    other => {
                        let running = other.as_ref().map(|p| p.handle);
                        cx.check.fail(|| format!("Cancel of {handle:?}, but the running prepare is {running:?}"));
                    }
                },
                ChipOutput::StartRun { job, handle, artifact, args, .. } => {
                    if self.run.is_some() {
                        cx.check.fail(|| format!("StartRun of {job:?} while a run is on the chip"));
                    }
                    let fault = cx
                        .fault(cx.opts.faults.run_fail)
                        .then(|| ChipError::new(ChipErrorKind::Injected, "injected run failure"));
                    let result = self.chip.run_with(&artifact, &args, fault);
                    self.chip.begin_use(artifact.id);
                    let c = callable_of_spec(&artifact.spec);
                    let base = cx.opts.callables.get(c).map_or(1000, |c| c.run.sample(&mut cx.rng));
                    let lat = cx.lane_latency(base);
                    self.run = Some(RunInFlight { job, handle, artifact, result, start_ns: cx.now });
                    cx.at(lat, Ev::RunDone(self.unit));
                }
                ChipOutput::StartRelease { job, artifact, .. } => {
                    if self.prepare.is_some() || self.release.is_some() {
                        cx.check.fail(|| format!("StartRelease of {job:?} while the register lane is busy"));
                    }
                    match Rc::try_unwrap(artifact) {
                        Ok(a) => self.chip.release(a),
                        Err(a) => cx.check.fail(|| format!("artifact {} released while a run holds it", a.id)),
                    }
                    self.chip_violation(cx);
                    let base = cx.opts.release.sample(&mut cx.rng);
                    let lat = cx.lane_latency(base);
                    self.release = Some(ReleaseJob { job, start_ns: cx.now });
                    cx.at(lat, Ev::ReleaseDone(self.unit));
                }
                ChipOutput::Resolve { waiter, resolution } => {
                    if self.planted_loss(cx, matches!(resolution, Resolution::Ran(_))) {
                        continue;
                    }
                    self.notes.push_back(Note::Resolve { op: waiter, resolution });
                }
                ChipOutput::Event(ev) => {
                    if self.planted_loss(cx, matches!(ev, ChildEvent::RunFinished { .. })) {
                        continue;
                    }
                    self.notes.push_back(Note::Event(ev));
                }
            }
        }
    }

    /// Planted driver bug (tests only): the first run result is lost.
    fn planted_loss(&mut self, cx: &Ctx, is_run: bool) -> bool {
        if is_run && cx.opts.planted_lost_completion && !self.lost_one {
            self.lost_one = true;
            return true;
        }
        false
    }

    fn start_prepare(&mut self, cx: &mut Ctx, handle: CallableHandle, spec: CallableSpec) {
        if self.prepare.is_some() || self.release.is_some() {
            cx.check.fail(|| format!("StartPrepare of {handle:?} while the register lane is busy"));
        }
        let c = callable_of_spec(&spec);
        let base = cx.opts.callables.get(c).map_or(1000, |c| c.prepare.sample(&mut cx.rng));
        let lat = cx.lane_latency(base);
        self.prepare = Some(PrepareJob { handle, spec, cancelled: false, start_ns: cx.now });
        cx.at(lat, Ev::PrepareDone(self.unit));
    }

    fn chip_violation(&mut self, cx: &mut Ctx) {
        if let Some(v) = self.chip.first_violation() {
            cx.check.fail(|| format!("sim chip of unit {}: {v}", self.unit));
        }
    }

    fn track(&self, t: u32) -> u32 {
        t + 16 * self.unit
    }

    /// The register lane's prepare ended.
    pub fn prepare_done(&mut self, cx: &mut Ctx) {
        if self.dead {
            return;
        }
        let Some(job) = self.prepare.take() else {
            cx.check.fail(|| "PrepareDone with no prepare running".into());
            return;
        };
        let fault = cx
            .fault(cx.opts.faults.prepare_fail)
            .then(|| ChipError::new(ChipErrorKind::Injected, "injected prepare failure"));
        let missed = job.cancelled && cx.fault(cx.opts.faults.cancel_missed);
        let result = self.chip.prepare_with(&job.spec, &Cancelled(job.cancelled && !missed), fault);
        if cx.trace.recording() {
            let name = format!("prepare {} {:?}", callable_of_spec(&job.spec), job.handle.index);
            cx.trace.span(self.track(TRACK_REGISTER), name, job.start_ns, cx.now);
        }
        cx.trace.mix(u64::from(result.is_ok()));
        self.prepares_done += 1;
        let handle = job.handle;
        let _ = self.feed(cx, ChipInput::PrepareFinished { handle, result: result.map(Rc::new) });
        if self.finished.len() >= 16 {
            self.finished.remove(0);
        }
        self.finished.push((handle, job.spec));
        if cx.fault(cx.opts.faults.replay_completion) {
            let delay = cx.rng.below(5_000_000);
            cx.at(delay, Ev::Replay(self.unit));
        }
    }

    /// The register lane's release ended.
    pub fn release_done(&mut self, cx: &mut Ctx) {
        if self.dead {
            return;
        }
        let Some(job) = self.release.take() else {
            cx.check.fail(|| "ReleaseDone with no release running".into());
            return;
        };
        cx.trace.span(self.track(TRACK_REGISTER), "release", job.start_ns, cx.now);
        if let Err(e) = self.feed(cx, ChipInput::ReleaseFinished { job: job.job }) {
            cx.check.fail(|| format!("the chip side refused ReleaseFinished: {e:?}"));
        }
    }

    /// The run lane's run ended.
    pub fn run_done(&mut self, cx: &mut Ctx) {
        if self.dead {
            return;
        }
        let Some(run) = self.run.take() else {
            cx.check.fail(|| "RunDone with no run on the chip".into());
            return;
        };
        self.chip.end_use(run.artifact.id);
        // The run's copy of the artifact is gone before it reports.
        drop(run.artifact);
        self.chip_violation(cx);
        if cx.trace.recording() {
            let name = format!("run {:?} {:?}", run.job, run.handle.index);
            cx.trace.span(self.track(TRACK_RUN), name, run.start_ns, cx.now);
        }
        self.runs_done += 1;
        cx.trace.mix(u64::from(run.result.is_ok()));
        if let Err(e) = self.feed(cx, ChipInput::RunFinished { job: run.job, result: run.result }) {
            cx.check.fail(|| format!("the chip side refused RunFinished: {e:?}"));
        }
    }

    /// Fault: replay an earlier prepare completion (a duplicate of the
    /// current generation's, or a late one from an old generation).
    pub fn replay(&mut self, cx: &mut Ctx) {
        if self.dead || self.finished.is_empty() {
            return;
        }
        let (handle, spec) = self.finished[cx.rng.below(self.finished.len() as u64) as usize].clone();
        if self.prepare.as_ref().is_some_and(|p| p.handle == handle) {
            cx.check.fail(|| format!("a finished prepare {handle:?} is running again"));
        }
        let result = if cx.rng.coin() {
            self.chip.prepare_with(&spec, &Cancelled(false), None).map(Rc::new)
        } else {
            Err(ChipError::new(ChipErrorKind::Injected, "replayed failure"))
        };
        self.replays += 1;
        cx.trace.mix(0x5EA1);
        let _ = self.feed(cx, ChipInput::PrepareFinished { handle, result });
    }

    /// The child died: its lanes stop, the OS reclaims its artifacts.
    pub fn kill(&mut self) {
        self.dead = true;
        self.prepare = None;
        self.release = None;
        self.run = None;
        self.notes.clear();
        self.chip.reclaim_all();
    }

    /// Lanes idle and nothing owed (or dead).
    pub fn idle(&self) -> bool {
        self.dead || (self.side.idle() && self.prepare.is_none() && self.release.is_none() && self.run.is_none())
    }

    /// Why the lanes are not idle (for liveness reports).
    pub fn busy_reason(&self) -> String {
        format!(
            "unit {}: register lane {:?} queued {}, run lane head {:?} queued {}",
            self.unit,
            self.side.register_job(),
            self.side.register_queued(),
            self.side.run_head(),
            self.side.runs_queued()
        )
    }
}
