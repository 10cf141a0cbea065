//! A chip side for the mailbox models: a slot table
//! (`chiplane_core::slot::SlotTable`), a run lane and a register lane
//! (`chiplane_core::lane::Lane`), and a recording chip, behind one
//! `chiplane_core::sync::Mutex` (loom/shuttle aware), plus the
//! [`ChildBackend`] the child's serve loop talks to and the [`ChildWatch`]
//! the parent's port uses.
//!
//! # Lanes
//! A lane step ([`ModelChip::run_step`], [`ModelChip::register_step`]) does
//! one unit of lane work under the lock and never waits: a run whose slot is
//! still PREPARING, or a job held by a gate, simply makes no progress. The
//! test picks who steps the lanes ([`LaneMode`]): two threads (shuttle), one
//! thread for both (loom: at most three threads in all), or the child's own
//! `poll_event` (when a third thread is needed for something else). The lock
//! is held across the (instant, pure) model chip call: this backend checks
//! the mailbox, not the L2 registry's locking (that is `conc::node`'s job).
//!
//! # Recording chip
//! A callable's artifact is its spec's first parameter (`tag`); a run of it
//! outputs `[[tag as f32]]`. Every prepare, run, release and memory/domain
//! control is appended to [`ModelChip::log`] with what the lanes held then.
//!
//! # Gates (to build the scenarios' hazards)
//! - `run_gate(a, gate)`: a run of digest `a` does not finish until digest
//!   `b` is registered (`RunGate::Registered(b)`: forces a register during
//!   TASK_RUNNING) or a flag is set (`RunGate::Flag`);
//! - `prepare_gate(d, flag)`: a prepare of `d` does not finish until `flag`
//!   is set (seed hazard D: C2's prepare waits for the parent to observe
//!   C1's completion).

pub mod scenarios;

use std::collections::{BTreeMap, VecDeque};

use chiplane_core::conc::port::ChildWatch;
use chiplane_core::conc::region::Region;
use chiplane_core::conc::serve::{ChildBackend, ChildEvent};
use chiplane_core::frame::{ControlFrame, ControlOp, ControlReply, FrameId, Settlement, TaskFrame};
use chiplane_core::lane::{JobId, Lane, LaneInput, LaneOutput, RegisterJob, RunJob};
use chiplane_core::slot::{SlotError, SlotInput, SlotLimits, SlotOutput, SlotReply, SlotTable};
use chiplane_core::sync::{thread, Arc, AtomicBool, Mutex, Ordering};
use chiplane_core::{
    CallableDigest, CallableSpec, ChipError, ChipErrorKind, ControlError, DispatchId, EndpointError, Generation,
    Handle, RegisterError, RunError, RunOutput, SlotIndex, TargetKind, TaskArgs, WorkerId,
};

/// A prepared callable of the model chip.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Artifact {
    pub tag: u64,
}

/// What the chip side did, in order.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Record {
    Prepared {
        tag: u64,
    },
    /// A run retired (`ok`: the chip ran it).
    Run {
        dispatch: DispatchId,
        tag: Option<u64>,
        ok: bool,
    },
    Released {
        tag: u64,
    },
    /// A memory or domain control applied while `tasks_open` tasks were
    /// accepted and not yet finished.
    Control {
        dispatch: DispatchId,
        tasks_open: usize,
    },
}

/// What a gated run waits for.
#[derive(Clone, Debug)]
pub enum RunGate {
    /// This digest is registered (its slot in the lookup).
    Registered(CallableDigest),
    /// This flag is set.
    Flag(Arc<AtomicBool>),
}

/// Who steps the lanes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LaneMode {
    /// A run lane thread and a register lane thread.
    Threads,
    /// One thread steps both lanes.
    OneThread,
    /// The child's `poll_event` steps both lanes (no lane thread).
    Inline,
}

type RunPayload = (DispatchId, TaskArgs);

#[derive(Debug)]
struct ChipState {
    table: SlotTable<Artifact>,
    specs: BTreeMap<CallableDigest, CallableSpec>,
    digests: BTreeMap<Handle, CallableDigest>,
    run_lane: Lane<RunJob<RunPayload>>,
    run_current: Option<(JobId, RunJob<RunPayload>)>,
    reg_lane: Lane<RegisterJob<Artifact>>,
    reg_current: Option<(JobId, RegisterJob<Artifact>)>,
    events: VecDeque<ChildEvent>,
    register_settle: BTreeMap<Handle, FrameId>,
    unregister_settle: BTreeMap<Handle, FrameId>,
    tasks_open: usize,
    log: Vec<Record>,
    run_gate: Option<(CallableDigest, RunGate)>,
    prepare_gate: Option<(CallableDigest, Arc<AtomicBool>)>,
}

/// The shared chip side. See the module doc.
#[derive(Debug)]
pub struct ModelChip {
    state: Mutex<ChipState>,
    stop: AtomicBool,
}

/// The worker id of the model chip's table.
pub const WORKER: WorkerId = WorkerId(7);

impl ModelChip {
    /// A chip with a table of `capacity` slots (small: model checking).
    pub fn new(capacity: usize) -> Arc<ModelChip> {
        let limits = SlotLimits { capacity, generation_max: Generation(8) };
        Arc::new(ModelChip {
            state: Mutex::new(ChipState {
                table: SlotTable::new(WORKER, limits),
                specs: BTreeMap::new(),
                digests: BTreeMap::new(),
                run_lane: Lane::new(),
                run_current: None,
                reg_lane: Lane::new(),
                reg_current: None,
                events: VecDeque::new(),
                register_settle: BTreeMap::new(),
                unregister_settle: BTreeMap::new(),
                tasks_open: 0,
                log: Vec::new(),
                run_gate: None,
                prepare_gate: None,
            }),
            stop: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> chiplane_core::sync::MutexGuard<'_, ChipState> {
        self.state.lock().expect("model chip lock")
    }

    /// Register and prepare `spec` before the child starts (no events).
    pub fn preregister(&self, spec: &CallableSpec) -> (SlotIndex, Generation) {
        let mut s = self.lock();
        let digest = spec.digest();
        s.specs.insert(digest, spec.clone());
        let handle = match s.table.handle(SlotInput::Register { digest }) {
            Ok(SlotReply::Registered { handle, .. }) => handle,
            other => panic!("preregister: {other:?}"),
        };
        s.digests.insert(handle, digest);
        s.drain_table();
        while s.register_step() {}
        (handle.index, handle.generation)
    }

    /// A run of `run` does not finish until `gate` opens.
    pub fn set_run_gate(&self, run: CallableDigest, gate: RunGate) {
        self.lock().run_gate = Some((run, gate));
    }

    /// A prepare of `digest` does not finish until `flag` is set.
    pub fn set_prepare_gate(&self, digest: CallableDigest, flag: Arc<AtomicBool>) {
        self.lock().prepare_gate = Some((digest, flag));
    }

    /// One unit of run-lane work; false when none was possible.
    pub fn run_step(&self) -> bool {
        self.lock().run_step()
    }

    /// One unit of register-lane work; false when none was possible.
    pub fn register_step(&self) -> bool {
        self.lock().register_step()
    }

    /// The chip's record so far.
    pub fn log(&self) -> Vec<Record> {
        self.lock().log.clone()
    }

    /// Ask lane threads to stop.
    pub fn stop(&self) {
        // Release: pairs with the lane threads' Acquire load.
        self.stop.store(true, Ordering::Release);
    }

    fn stopped(&self) -> bool {
        // Acquire: pairs with `stop`'s Release store.
        self.stop.load(Ordering::Acquire)
    }

    /// Spawn the lane threads `mode` asks for (none for `Inline`).
    pub fn spawn_lanes(this: &Arc<Self>, mode: LaneMode) -> Vec<thread::JoinHandle<()>> {
        let lane = |chip: Arc<ModelChip>, f: fn(&ModelChip) -> bool| {
            thread::spawn(move || {
                while !chip.stopped() {
                    if !f(&chip) {
                        thread::yield_now();
                    }
                }
            })
        };
        match mode {
            LaneMode::Threads => {
                vec![lane(this.clone(), ModelChip::run_step), lane(this.clone(), ModelChip::register_step)]
            }
            LaneMode::OneThread => vec![lane(this.clone(), |c| {
                let mut s = c.lock();
                let a = s.run_step();
                let b = s.register_step();
                a || b
            })],
            LaneMode::Inline => Vec::new(),
        }
    }
}

impl ChipState {
    fn digest_of(&self, handle: Handle) -> Option<CallableDigest> {
        self.digests.get(&handle).copied()
    }

    fn drain_table(&mut self) {
        while let Some(o) = self.table.poll() {
            match o {
                SlotOutput::StartPrepare { handle, digest } => {
                    let _ = self.reg_lane.handle(LaneInput::Enqueue(RegisterJob::Prepare { handle, digest }));
                }
                // Model prepares finish in one step; a cancel is seen at PrepareFinished.
                SlotOutput::Cancel { .. } => {}
                SlotOutput::Release { handle, artifact } => {
                    let _ = self.reg_lane.handle(LaneInput::Enqueue(RegisterJob::Release { handle, artifact }));
                }
                SlotOutput::Settled { handle, result } => {
                    if let Some(id) = self.register_settle.remove(&handle) {
                        self.events.push_back(ChildEvent::Settled { id, settlement: Settlement::Prepared(result) });
                    }
                }
                SlotOutput::Freed { handle } => {
                    if let Some(id) = self.unregister_settle.remove(&handle) {
                        self.events.push_back(ChildEvent::Settled { id, settlement: Settlement::Freed });
                    }
                }
            }
        }
    }

    fn run_step(&mut self) -> bool {
        if self.run_current.is_none() {
            return match self.run_lane.poll() {
                Some(LaneOutput::Start { id, job }) => {
                    self.run_current = Some((id, job));
                    true
                }
                None => false,
            };
        }
        let handle = self.run_current.as_ref().map(|(_, j)| j.handle).expect("current run");
        if let (Some((run, gate)), Some(d)) = (&self.run_gate, self.digest_of(handle)) {
            let open = match gate {
                RunGate::Registered(other) => self.table.lookup(other).is_some(),
                // Acquire: pairs with the scenario's Release store of the flag.
                RunGate::Flag(flag) => flag.load(Ordering::Acquire),
            };
            if *run == d && !open {
                return false;
            }
        }
        let result = match self.table.runnable(handle) {
            Ok(None) => return false,
            Ok(Some(a)) => Ok((a.tag, RunOutput { tensors: vec![vec![a.tag as f32]] })),
            Err(e) => Err(e),
        };
        let (id, job) = self.run_current.take().expect("current run");
        let (dispatch, _args) = job.payload;
        self.table.handle(SlotInput::Unpin { handle }).expect("a run unpins exactly once");
        self.drain_table();
        self.run_lane.handle(LaneInput::Finished { id }).expect("the running job finished");
        self.tasks_open -= 1;
        let tag = result.as_ref().ok().map(|(t, _)| *t);
        self.log.push(Record::Run { dispatch, tag, ok: result.is_ok() });
        self.events.push_back(ChildEvent::RunFinished { dispatch, result: result.map(|(_, o)| o) });
        true
    }

    fn register_step(&mut self) -> bool {
        if self.reg_current.is_none() {
            return match self.reg_lane.poll() {
                Some(LaneOutput::Start { id, job }) => {
                    self.reg_current = Some((id, job));
                    true
                }
                None => false,
            };
        }
        if let Some((_, RegisterJob::Prepare { digest, .. })) = &self.reg_current {
            if let Some((gated, flag)) = &self.prepare_gate {
                // Acquire: pairs with the scenario's Release store of the flag.
                if gated == digest && !flag.load(Ordering::Acquire) {
                    return false;
                }
            }
        }
        let (id, job) = self.reg_current.take().expect("current register job");
        match job {
            RegisterJob::Prepare { handle, digest } => {
                let spec = self.specs.get(&digest).expect("a prepared digest was registered");
                let result = if spec.kernel == "fail" {
                    Err(ChipError::new(ChipErrorKind::InvalidSpec, "model: kernel 'fail'"))
                } else {
                    Ok(Artifact { tag: spec.params.first().copied().unwrap_or(0) })
                };
                if let Ok(a) = &result {
                    self.log.push(Record::Prepared { tag: a.tag });
                }
                let _ = self.table.handle(SlotInput::PrepareFinished { handle, result });
            }
            RegisterJob::Release { artifact, .. } => self.log.push(Record::Released { tag: artifact.tag }),
        }
        self.reg_lane.handle(LaneInput::Finished { id }).expect("the running job finished");
        self.drain_table();
        true
    }
}

/// The child's view of the model chip.
#[derive(Debug)]
pub struct ModelBackend {
    chip: Arc<ModelChip>,
    inline: bool,
}

impl ModelBackend {
    pub fn new(chip: Arc<ModelChip>, mode: LaneMode) -> Self {
        ModelBackend { chip, inline: mode == LaneMode::Inline }
    }
}

impl ChildBackend for ModelBackend {
    fn accept_task(&mut self, task: TaskFrame) -> Result<(), RunError> {
        let mut s = self.chip.lock();
        let handle = Handle { worker: s.table.worker(), index: task.id.slot, generation: task.id.generation };
        match s.table.handle(SlotInput::Pin { handle }) {
            Ok(_) => {
                let job = RunJob { handle, payload: (task.id.dispatch, task.args) };
                let _ = s.run_lane.handle(LaneInput::Enqueue(job));
                s.tasks_open += 1;
                Ok(())
            }
            Err(SlotError::Pin(e)) => Err(e),
            Err(other) => panic!("pin answered {other:?}"),
        }
    }

    fn apply_control(&mut self, control: ControlFrame) -> Result<ControlReply, ControlError> {
        let mut s = self.chip.lock();
        let dispatch = control.id.dispatch;
        match control.op {
            ControlOp::Register { spec } => {
                if spec.kind != TargetKind::ChipCallable {
                    return Err(ControlError::Register(RegisterError::WrongTarget));
                }
                let digest = spec.digest();
                s.specs.insert(digest, spec);
                match s.table.handle(SlotInput::Register { digest }) {
                    Ok(SlotReply::Registered { handle, fresh }) => {
                        s.digests.insert(handle, digest);
                        if fresh {
                            let id = FrameId { dispatch, slot: handle.index, generation: handle.generation };
                            s.register_settle.insert(handle, id);
                        }
                        s.drain_table();
                        Ok(ControlReply::Registered { slot: handle.index, generation: handle.generation, fresh })
                    }
                    Err(SlotError::Register(e)) => Err(ControlError::Register(e)),
                    other => panic!("register answered {other:?}"),
                }
            }
            ControlOp::Unregister => {
                let handle =
                    Handle { worker: s.table.worker(), index: control.id.slot, generation: control.id.generation };
                // The settlement is mapped before the table can emit Freed.
                s.unregister_settle.insert(handle, control.id);
                match s.table.handle(SlotInput::Unregister { handle }) {
                    Ok(SlotReply::Unregistered { last }) => {
                        if !last {
                            s.unregister_settle.remove(&handle);
                        }
                        s.drain_table();
                        Ok(ControlReply::Unregistered { last })
                    }
                    Err(SlotError::Unregister(e)) => {
                        s.unregister_settle.remove(&handle);
                        Err(ControlError::Unregister(e))
                    }
                    other => panic!("unregister answered {other:?}"),
                }
            }
            ControlOp::Memory { .. } | ControlOp::Domain { .. } => {
                let tasks_open = s.tasks_open;
                s.log.push(Record::Control { dispatch, tasks_open });
                Ok(ControlReply::Done)
            }
        }
    }

    fn poll_event(&mut self) -> Option<ChildEvent> {
        let mut s = self.chip.lock();
        if self.inline {
            s.run_step();
            s.register_step();
        }
        s.events.pop_front()
    }
}

/// The parent's liveness policy in the models: the child thread sets
/// `exited` when its loop ends (it died, or stopped after POISONED or
/// shutdown). `kill_and_reap` raises `kill` and waits for `exited`.
#[derive(Clone, Debug)]
pub struct ModelWatch {
    pub exited: Arc<AtomicBool>,
    pub kill: Arc<AtomicBool>,
}

impl Default for ModelWatch {
    fn default() -> Self {
        ModelWatch { exited: Arc::new(AtomicBool::new(false)), kill: Arc::new(AtomicBool::new(false)) }
    }
}

impl ChildWatch for ModelWatch {
    fn check(&mut self, _region: &Region) -> Option<EndpointError> {
        // Acquire: pairs with the child thread's Release store of `exited`.
        self.exited.load(Ordering::Acquire).then_some(EndpointError::ChildDied)
    }

    fn kill_and_reap(&mut self) {
        // Release: pairs with the child loop's Acquire load of `kill`.
        self.kill.store(true, Ordering::Release);
        // Acquire: pairs with the child thread's Release store of `exited`.
        while !self.exited.load(Ordering::Acquire) {
            thread::yield_now();
        }
    }
}

/// A chip callable spec with artifact tag `tag`.
pub fn spec(tag: u64) -> CallableSpec {
    CallableSpec::chip("model", vec![tag])
}

/// The prepare result of a settlement, for assertions.
pub fn prepared(s: &Option<Settlement>) -> Option<Result<(), RegisterError>> {
    match s {
        Some(Settlement::Prepared(r)) => Some(r.clone()),
        _ => None,
    }
}

/// The scenario bodies on real threads (std backend): plain `cargo test`
/// exercises the port, the serve loop and the region with every lane mode.
#[cfg(all(test, not(any(chiplane_loom, chiplane_shuttle))))]
mod tests {
    use super::scenarios::*;
    use super::LaneMode;

    const ROUNDS: usize = 30;
    const MODES: [LaneMode; 3] = [LaneMode::Threads, LaneMode::OneThread, LaneMode::Inline];

    #[test]
    fn std_s1_pipeline_and_staging() {
        for _ in 0..ROUNDS {
            for m in MODES {
                s1_pipeline(m);
                s1_staged(m);
            }
        }
    }

    #[test]
    fn std_s2_s8() {
        for _ in 0..ROUNDS {
            for m in MODES {
                s2_done_during_control(m);
                s8_memory_waits_for_idle(m);
            }
        }
    }

    #[test]
    fn std_s9_child_death() {
        for _ in 0..ROUNDS {
            s9_child_death(Death::Killed);
            s9_child_death(Death::MonitorPoisons);
            s9_child_death(Death::MonitorPoisonsAtControlDone);
        }
    }

    #[test]
    fn std_s11_ring_full() {
        for _ in 0..ROUNDS {
            for m in MODES {
                s11_ring_full(m, 4);
            }
        }
    }
}
