//! The chip side of both shapes: the real slot table and the real run and
//! register lanes of core, driven only through their `handle`/`poll` APIs,
//! with the sim chip doing the work. At L2 the callers reach it directly; at
//! L3 the child endpoint does.
//!
//! Lane jobs take virtual time: starting a job schedules its end event; the
//! chip call itself happens at once (a prepare at the end of its interval,
//! so that a cancel during it is seen at the safe point; a run at its start,
//! the artifact then being in use until the end; a release at its start).
//! What this side owes its owner goes to `notes`.

use std::collections::VecDeque;

use chiplane_core::lane::{JobId, LaneInput, LaneOutput, RegisterJob, RegisterLane, RunJob, RunLane};
use chiplane_core::slot::{SlotError, SlotInput, SlotLimits, SlotOutput, SlotReply, SlotTable};
use chiplane_core::{
    CallableDigest, CallableSpec, ChipError, ChipErrorKind, Handle, RegisterError, RunError, RunOutput, TaskArgs,
    WorkerId,
};

use crate::check::{out_of, ModelIn};
use crate::chip::{Cancelled, SimArtifact, SimChip};
use crate::options::N;
use crate::sched::{Ctx, Ev};

/// Track ids in the Chrome trace.
pub const TRACK_RUN: u32 = 1;
pub const TRACK_REGISTER: u32 = 2;

/// A queued run: its enqueue order, the owner's token, its arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct RunTok {
    pub seq: u64,
    pub token: u64,
    pub args: TaskArgs,
}

/// What the chip side owes its owner.
#[derive(Debug)]
pub enum Note {
    Settled {
        handle: Handle,
        result: Result<(), RegisterError>,
    },
    Freed {
        handle: Handle,
    },
    RunFinished {
        token: u64,
        result: Result<RunOutput, RunError>,
    },
    /// A run was pinned; `callable` is what its handle names per the
    /// reference model (for the checker's result check).
    Pinned {
        token: u64,
        callable: Option<usize>,
    },
}

#[derive(Debug)]
enum RegKind {
    Prepare { handle: Handle, digest: CallableDigest },
    Release,
}

#[derive(Debug)]
struct RegCur {
    id: JobId,
    job: RegKind,
    cancelled: bool,
    start_ns: u64,
}

#[derive(Debug)]
enum RunState {
    Waiting,
    Running { result: Result<RunOutput, ChipError>, artifact: Option<u64>, start_ns: u64 },
}

#[derive(Debug)]
struct RunCur {
    id: JobId,
    handle: Handle,
    tok: RunTok,
    state: RunState,
}

/// The chip side. See the module doc.
#[derive(Debug)]
pub struct ChipSide {
    pub chip: SimChip,
    pub table: SlotTable<SimArtifact>,
    run_lane: RunLane<RunTok>,
    reg_lane: RegisterLane<SimArtifact>,
    reg_cur: Option<RegCur>,
    run_cur: Option<RunCur>,
    deferred: VecDeque<SlotInput<SimArtifact>>,
    pub notes: VecDeque<Note>,
    /// Prepares that finished (handle, digest): what a replay fault replays.
    finished: Vec<(Handle, CallableDigest)>,
    next_run_seq: u64,
    /// Settled outputs since the waiting run was last evaluated.
    recheck_run: bool,
    /// Counters for the report.
    pub runs_done: u64,
    pub prepares_done: u64,
    pub replays: u64,
    /// L3: the chip child died; its lanes never act again.
    pub dead: bool,
    lost_one: bool,
}

/// Index of the callable a sim spec was built for (`params[0] = N + index`).
pub fn callable_of_spec(spec: &CallableSpec) -> usize {
    (spec.params.first().copied().unwrap_or(N) - N) as usize
}

/// Index of the callable with `digest`.
pub fn callable_of_digest(cx: &Ctx, digest: &CallableDigest) -> Option<usize> {
    cx.opts.callables.iter().position(|c| &c.digest == digest)
}

impl ChipSide {
    pub fn new(worker: WorkerId, limits: SlotLimits) -> Self {
        ChipSide {
            chip: SimChip::new(),
            table: SlotTable::new(worker, limits),
            run_lane: RunLane::new(),
            reg_lane: RegisterLane::new(),
            reg_cur: None,
            run_cur: None,
            deferred: VecDeque::new(),
            notes: VecDeque::new(),
            finished: Vec::new(),
            next_run_seq: 0,
            recheck_run: false,
            runs_done: 0,
            prepares_done: 0,
            replays: 0,
            dead: false,
            lost_one: false,
        }
    }

    /// Feed one input to the slot table (checked against the model), drain
    /// its outputs, and start whatever the lanes can start.
    pub fn feed(&mut self, cx: &mut Ctx, input: SlotInput<SimArtifact>) -> Result<SlotReply, SlotError> {
        let min = ModelIn::of(&input);
        let r = self.table.handle(input);
        match (&min, &r) {
            (ModelIn::Unregister(h), Ok(SlotReply::Unregistered { last: true })) => match self.table.state(h.index) {
                Some(chiplane_core::slot::SlotState::Unregistering) => cx.cov.hit(3),
                Some(chiplane_core::slot::SlotState::Cancelling) => cx.cov.hit(4),
                _ => {}
            },
            (ModelIn::Register(_), Ok(SlotReply::Registered { fresh: false, .. })) => cx.cov.hit(7),
            (ModelIn::Finish(..), Ok(SlotReply::PrepareStale)) => cx.cov.hit(6),
            (ModelIn::Pin(_), Ok(_)) if !self.run_lane.is_idle() || self.run_cur.is_some() => cx.cov.hit(5),
            _ => {}
        }
        cx.check.slot_input(min, &r);
        self.drain(cx);
        r
    }

    /// Pin `handle` and queue a run on the run lane (pin before enqueue).
    pub fn submit_run(&mut self, cx: &mut Ctx, handle: Handle, token: u64, args: TaskArgs) -> Result<(), RunError> {
        match self.feed(cx, SlotInput::Pin { handle }) {
            Ok(SlotReply::Pinned { .. }) => {
                let seq = self.next_run_seq;
                self.next_run_seq += 1;
                let job = RunJob { handle, payload: RunTok { seq, token, args } };
                let _ = self.run_lane.handle(LaneInput::Enqueue(job));
                let callable = cx.check.model.digest_of(handle).and_then(|d| callable_of_digest(cx, &d));
                self.notes.push_back(Note::Pinned { token, callable });
                Ok(())
            }
            Err(SlotError::Pin(e)) => Err(e),
            other => {
                cx.check.fail(|| format!("pin replied {other:?}"));
                Err(RunError::NotRunnable(chiplane_core::slot::SlotState::Empty))
            }
        }
    }

    fn drain(&mut self, cx: &mut Ctx) {
        while let Some(o) = self.table.poll() {
            cx.check.slot_output(&out_of(&o));
            match o {
                SlotOutput::StartPrepare { handle, digest } => {
                    let _ = self.reg_lane.handle(LaneInput::Enqueue(RegisterJob::Prepare { handle, digest }));
                }
                SlotOutput::Cancel { handle } => self.cancel(cx, handle),
                SlotOutput::Release { handle, artifact } => {
                    let _ = self.reg_lane.handle(LaneInput::Enqueue(RegisterJob::Release { handle, artifact }));
                }
                SlotOutput::Settled { handle, result } => {
                    self.recheck_run = true;
                    self.notes.push_back(Note::Settled { handle, result });
                }
                SlotOutput::Freed { handle } => self.notes.push_back(Note::Freed { handle }),
            }
        }
        cx.check.outputs_drained();
    }

    fn cancel(&mut self, cx: &mut Ctx, handle: Handle) {
        if let Some(cur) = &mut self.reg_cur {
            if matches!(cur.job, RegKind::Prepare { handle: h, .. } if h == handle) {
                cur.cancelled = true;
                return;
            }
        }
        let removed =
            self.reg_lane.remove_queued(|j| matches!(j, RegisterJob::Prepare { handle: h, .. } if *h == handle));
        if removed.is_empty() {
            cx.check.fail(|| format!("cancel of {handle:?}: no prepare queued or running"));
        }
        for _ in removed {
            // A queued prepare stops at its first safe point: before it began.
            let result = Err(ChipError::new(ChipErrorKind::Cancelled, "cancelled before it started"));
            self.deferred.push_back(SlotInput::PrepareFinished { handle, result });
        }
    }

    /// Start what can start; feed deferred inputs; until nothing changes.
    pub fn pump(&mut self, cx: &mut Ctx) {
        if self.dead {
            return;
        }
        loop {
            let mut progress = false;
            while let Some(input) = self.deferred.pop_front() {
                let _ = self.feed(cx, input);
                progress = true;
            }
            if self.reg_cur.is_none() {
                if let Some(LaneOutput::Start { id, job }) = self.reg_lane.poll() {
                    self.start_register(cx, id, job);
                    progress = true;
                }
            }
            progress |= self.advance_run(cx);
            if !progress {
                break;
            }
        }
    }

    fn start_register(&mut self, cx: &mut Ctx, id: JobId, job: RegisterJob<SimArtifact>) {
        let lat = match &job {
            RegisterJob::Prepare { digest, .. } => {
                let c = callable_of_digest(cx, digest).expect("prepare of a digest the workload never registers");
                let d = cx.opts.callables[c].prepare;
                let base = d.sample(&mut cx.rng);
                cx.lane_latency(base)
            }
            RegisterJob::Release { .. } => {
                let base = cx.opts.release.sample(&mut cx.rng);
                cx.lane_latency(base)
            }
        };
        let (ev, job) = match job {
            RegisterJob::Prepare { handle, digest } => (Ev::PrepareDone(id.0), RegKind::Prepare { handle, digest }),
            RegisterJob::Release { artifact, .. } => {
                // The release happens at the start of its job.
                self.chip_release(cx, artifact);
                (Ev::ReleaseDone(id.0), RegKind::Release)
            }
        };
        self.reg_cur = Some(RegCur { id, job, cancelled: false, start_ns: cx.now });
        cx.at(lat, ev);
    }

    fn chip_release(&mut self, cx: &mut Ctx, artifact: SimArtifact) {
        use chiplane_core::Chip;
        self.chip.release(artifact);
        if let Some(v) = self.chip.first_violation() {
            cx.check.fail(|| format!("sim chip: {v}"));
        }
    }

    /// The prepare job `job` ended.
    pub fn prepare_done(&mut self, cx: &mut Ctx, job: u64) {
        if self.dead {
            return;
        }
        let Some(cur) = self.reg_cur.take_if_id(job) else { return };
        let RegKind::Prepare { handle, digest } = cur.job else {
            cx.check.fail(|| "PrepareDone for a release job".into());
            return;
        };
        let c = callable_of_digest(cx, &digest).expect("known digest");
        let spec = cx.opts.callables[c].spec.clone();
        let fault = cx
            .fault(cx.opts.faults.prepare_fail)
            .then(|| ChipError::new(ChipErrorKind::Injected, "injected prepare failure"));
        let missed = cur.cancelled && cx.fault(cx.opts.faults.cancel_missed);
        let result = self.chip.prepare_with(&spec, &Cancelled(cur.cancelled && !missed), fault);
        cx.trace.span(TRACK_REGISTER, format!("prepare {c} {:?}", handle.index), cur.start_ns, cx.now);
        cx.trace.mix(u64::from(result.is_ok()));
        let _ = self.reg_lane.handle(LaneInput::Finished { id: cur.id });
        self.prepares_done += 1;
        let _ = self.feed(cx, SlotInput::PrepareFinished { handle, result });
        if self.finished.len() >= 16 {
            self.finished.remove(0);
        }
        self.finished.push((handle, digest));
        if cx.fault(cx.opts.faults.replay_completion) {
            let delay = cx.rng.below(5_000_000);
            cx.at(delay, Ev::Replay);
        }
    }

    /// The release job `job` ended.
    pub fn release_done(&mut self, cx: &mut Ctx, job: u64) {
        if self.dead {
            return;
        }
        let Some(cur) = self.reg_cur.take_if_id(job) else { return };
        cx.trace.span(TRACK_REGISTER, "release", cur.start_ns, cx.now);
        let _ = self.reg_lane.handle(LaneInput::Finished { id: cur.id });
    }

    /// Fault: replay an earlier prepare completion (a duplicate of the
    /// current generation's, or a late one from an old generation).
    pub fn replay(&mut self, cx: &mut Ctx) {
        if self.dead {
            return;
        }
        if self.finished.is_empty() {
            return;
        }
        let (handle, digest) = self.finished[cx.rng.below(self.finished.len() as u64) as usize];
        let c = callable_of_digest(cx, &digest).expect("known digest");
        let result = if cx.rng.coin() {
            self.chip.prepare_with(&cx.opts.callables[c].spec, &Cancelled(false), None)
        } else {
            Err(ChipError::new(ChipErrorKind::Injected, "replayed failure"))
        };
        self.replays += 1;
        cx.trace.mix(0x5EA1);
        let _ = self.feed(cx, SlotInput::PrepareFinished { handle, result });
    }

    fn advance_run(&mut self, cx: &mut Ctx) -> bool {
        let mut progress = false;
        if self.run_cur.is_none() {
            match self.run_lane.poll() {
                Some(LaneOutput::Start { id, job }) => {
                    cx.check.run_started(job.payload.seq);
                    self.run_cur = Some(RunCur { id, handle: job.handle, tok: job.payload, state: RunState::Waiting });
                    self.recheck_run = true;
                    progress = true;
                }
                None => return false,
            }
        }
        if !self.recheck_run {
            return progress;
        }
        self.recheck_run = false;
        let cur = self.run_cur.as_mut().expect("run_cur set above");
        if !matches!(cur.state, RunState::Waiting) {
            return progress;
        }
        let r = self.table.runnable(cur.handle);
        cx.check.runnable(cur.handle, &r);
        match r {
            Ok(Some(artifact)) => {
                let fault = cx
                    .fault(cx.opts.faults.run_fail)
                    .then(|| ChipError::new(ChipErrorKind::Injected, "injected run failure"));
                let result = self.chip.run_with(artifact, &cur.tok.args, fault);
                self.chip.begin_use(artifact.id);
                let c = callable_of_spec(&artifact.spec);
                let base = cx.opts.callables.get(c).map_or(1000, |c| c.run.sample(&mut cx.rng));
                let lat = cx.lane_latency(base);
                cur.state = RunState::Running { result, artifact: Some(artifact.id), start_ns: cx.now };
                cx.at(lat, Ev::RunDone(cur.id.0));
                true
            }
            Ok(None) => progress,
            Err(e) => {
                let cur = self.run_cur.take().expect("run_cur set above");
                self.retire_run(cx, cur, Err(e));
                true
            }
        }
    }

    /// The run job `job` ended.
    pub fn run_done(&mut self, cx: &mut Ctx, job: u64) {
        if self.dead {
            return;
        }
        let Some(cur) = self.run_cur.take_if_id(job) else { return };
        let RunState::Running { result, artifact, start_ns } = cur.state else {
            cx.check.fail(|| "RunDone for a run that never started".into());
            return;
        };
        if let Some(a) = artifact {
            self.chip.end_use(a);
        }
        if let Some(v) = self.chip.first_violation() {
            cx.check.fail(|| format!("sim chip: {v}"));
        }
        cx.trace.span(TRACK_RUN, format!("run #{} {:?}", cur.tok.seq, cur.handle.index), start_ns, cx.now);
        let cur = RunCur { state: RunState::Waiting, ..cur };
        self.retire_run(cx, cur, result.map_err(RunError::Chip));
    }

    fn retire_run(&mut self, cx: &mut Ctx, cur: RunCur, result: Result<RunOutput, RunError>) {
        let _ = self.feed(cx, SlotInput::Unpin { handle: cur.handle });
        let _ = self.run_lane.handle(LaneInput::Finished { id: cur.id });
        self.runs_done += 1;
        cx.trace.mix(u64::from(result.is_ok()));
        if cx.opts.planted_lost_completion && !self.lost_one {
            // Planted driver bug (tests only): this completion is lost.
            self.lost_one = true;
        } else {
            self.notes.push_back(Note::RunFinished { token: cur.tok.token, result });
        }
        // The next run may start now.
        self.recheck_run = true;
    }

    /// Both lanes idle, nothing deferred.
    pub fn idle(&self) -> bool {
        self.dead
            || self.reg_cur.is_none()
                && self.run_cur.is_none()
                && self.reg_lane.is_idle()
                && self.run_lane.is_idle()
                && self.deferred.is_empty()
    }

    /// Why the chip side is not idle (for liveness reports).
    pub fn busy_reason(&self) -> String {
        format!(
            "register lane running {:?} queued {}, run lane running {:?} queued {}, deferred {}",
            self.reg_cur.as_ref().map(|c| c.id),
            self.reg_lane.queued(),
            self.run_cur.as_ref().map(|c| (c.id, c.handle)),
            self.run_lane.queued(),
            self.deferred.len()
        )
    }
}

trait TakeIfId<T> {
    fn take_if_id(&mut self, job: u64) -> Option<T>;
}

impl TakeIfId<RegCur> for Option<RegCur> {
    fn take_if_id(&mut self, job: u64) -> Option<RegCur> {
        if self.as_ref().is_some_and(|c| c.id.0 == job) {
            self.take()
        } else {
            None
        }
    }
}

impl TakeIfId<RunCur> for Option<RunCur> {
    fn take_if_id(&mut self, job: u64) -> Option<RunCur> {
        if self.as_ref().is_some_and(|c| c.id.0 == job) {
            self.take()
        } else {
            None
        }
    }
}
