//! The composed pure system: parent endpoint + shared memory + child
//! endpoint + slot table + run lane + register lane, with a user that
//! submits a bounded number of operations, and a chip whose steps are
//! explicit actions. Every interleaving is a sequence of [`Action`]s; the
//! exhaustive checker (`exhaustive.rs`) explores all of them, the fuzz
//! harness picks them from its input, and unit tests script them.
//!
//! # Granularity
//! One action is one shared-memory operation of one side (a CAS, a frame
//! read or write, a ring push or pop, a load of the word) or one lane event
//! (a run starting or finishing, a prepare finishing, a release). Both
//! machines are driven only through their `handle`/`poll` API: this module
//! plays the memory and the chip, never the protocol.
//!
//! # What is checked ([`System::check`], after every action)
//! - the slot table's own invariants;
//! - an artifact is released at most once, never while a run uses it;
//! - runs start on the chip in submission (dispatch) order;
//! - every dispatch resolves at most once, settlements at most once;
//! - no poison unless a fault (child death, a corrupted frame) was injected;
//! - a successful run returns the reference result of its kernel;
//! - a memory control is never applied while the child holds a task;
//!
//! and, in a state with no enabled action ([`System::check_final`]): every
//! submission resolved exactly once (every owed settlement too), nothing is
//! pinned or queued, and every artifact is either held by a PREPARED slot
//! or released.

use chiplane_core::chip::{CallableSpec, ChipError, ChipErrorKind, RunConfig, TaskArgs};
use chiplane_core::error::{ControlError, EndpointError, RegisterError, RunError, UnregisterError};
use chiplane_core::frame::{ControlOp, ControlReply, Frame, FrameId, Settlement};
use chiplane_core::ids::{DispatchId, Generation, Handle, SlotIndex, WorkerId};
use chiplane_core::kernels;
use chiplane_core::lane::{LaneInput, LaneOutput, RegisterJob, RegisterLane, RunJob, RunLane};
use chiplane_core::mailbox::child::{ChildEndpoint, ChildInput, ChildOutput};
use chiplane_core::mailbox::parent::{ParentEndpoint, ParentInput, ParentOutput};
use chiplane_core::mailbox::word::WordState;
use chiplane_core::mailbox::{kind_in, Field};
use chiplane_core::slot::{SlotError, SlotInput, SlotLimits, SlotOutput, SlotReply, SlotState, SlotTable};
use chiplane_core::RunOutput;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

/// The chip child's worker id.
pub const CHILD_WORKER: WorkerId = WorkerId(7);

/// Number of distinct callables the user works with.
pub const CALLABLES: usize = 2;

/// Bounds of one exploration.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// User operations the user may submit in total.
    pub ops_max: u8,
    /// The child may die once, at any point.
    pub allow_death: bool,
    /// Prepares and runs may fail.
    pub allow_chip_errors: bool,
    /// Completion ring entries (shrunk so "ring full" is reachable).
    pub ring_capacity: usize,
    /// The user may submit memory controls.
    pub allow_memory: bool,
    /// Adversarial register lane: a prepare cannot finish while a finished
    /// run's result has not reached the parent (the chip's result buffer must
    /// be drained first). A correct protocol
    /// still resolves everything (the run lane never waits for the register
    /// lane); a child whose mailbox loop waits for a lane deadlocks (seed
    /// hazard D).
    pub prepare_waits_for_runs: bool,
    /// Slot table limits in the child (shrunk: fewer states, and retirement
    /// and table-full stay reachable).
    pub limits: SlotLimits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ops_max: 4,
            allow_death: false,
            allow_chip_errors: false,
            ring_capacity: 1,
            allow_memory: true,
            prepare_waits_for_runs: false,
            limits: SlotLimits { capacity: 2, generation_max: Generation(2) },
        }
    }
}

/// What the user submitted, per dispatch.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Register { callable: usize },
    Unregister { callable: usize, handle: (SlotIndex, Generation) },
    Run { callable: usize, handle: (SlotIndex, Generation) },
    Memory,
}

/// One step of the system.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Action {
    /// The user registers callable `c`.
    UserRegister(u8),
    /// The user unregisters callable `c` through the last handle it got.
    UserUnregister(u8),
    /// The user runs callable `c` through the last handle it got (possibly stale).
    UserRun(u8),
    /// The user submits a memory control.
    UserMemory,
    /// The parent executes its next output, or loads the word.
    Parent,
    /// The parent pops one completion from the ring.
    ParentRing,
    /// The child executes its next output, or loads the word.
    Child,
    /// The run lane starts its next job on the chip.
    RunStart,
    /// The chip finishes the running run (`ok` = success, else a chip error).
    RunFinish { ok: bool },
    /// The register lane starts its next job.
    RegStart,
    /// The chip finishes the running prepare (`ok`) or release.
    RegFinish { ok: bool },
    /// The child process dies.
    ChildDies,
    /// The parent notices the death (after the reap) and fails everything.
    ParentReaps,
}

/// A prepared artifact of the model chip.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Artifact {
    pub id: u32,
    pub callable: u8,
}

/// How a dispatch resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolution {
    Task(Result<RunOutput, RunError>),
    Control(Result<ControlReply, ControlError>),
}

/// The whole system. `Clone` so explorers can branch.
#[derive(Clone)]
pub struct System {
    pub cfg: Config,
    // --- shared memory ---
    pub word: u32,
    fields: [Vec<u8>; 4],
    ring: VecDeque<Vec<u8>>,
    // --- parent side ---
    pub parent: ParentEndpoint,
    parent_out: VecDeque<ParentOutput>,
    ops_used: u8,
    /// The last handle the user got for each callable.
    user_handle: [Option<(SlotIndex, Generation)>; CALLABLES],
    pub submitted: BTreeMap<DispatchId, Op>,
    pub resolved: BTreeMap<DispatchId, Resolution>,
    /// Dispatch -> settlements received.
    pub settled: BTreeMap<DispatchId, Result<Settlement, EndpointError>>,
    // --- child side ---
    pub child: ChildEndpoint,
    child_out: VecDeque<ChildOutput>,
    pub table: SlotTable<Artifact>,
    run_lane: RunLane<DispatchId>,
    reg_lane: RegisterLane<Artifact>,
    /// The run on the chip: (job, dispatch, artifact used, if any).
    running: Option<(chiplane_core::lane::JobId, RunJob<DispatchId>, Option<Artifact>)>,
    /// Started but waiting for the slot to settle.
    run_waiting: Option<(chiplane_core::lane::JobId, RunJob<DispatchId>)>,
    reg_running: Option<(chiplane_core::lane::JobId, RegisterJob<Artifact>)>,
    /// Handle -> the register control that started its prepare.
    settle_dispatch: BTreeMap<Handle, DispatchId>,
    /// Handle -> the final unregister that started its teardown.
    free_dispatch: BTreeMap<Handle, DispatchId>,
    /// Callable of each handle the child handed out.
    handle_callable: BTreeMap<Handle, u8>,
    next_artifact: u32,
    pub released: BTreeSet<u32>,
    pub created: BTreeSet<u32>,
    /// Dispatch order in which runs reached the chip.
    pub run_order: Vec<DispatchId>,
    pub child_dead: bool,
    pub fault_injected: bool,
    /// Deferred TASK_DONE observed (a run finished while a control was in flight).
    pub saw_deferred_done: bool,
    pub saw_control_during_task: bool,
    pub violation: Option<String>,
}

impl fmt::Debug for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Everything that determines future behaviour (used as the state key).
        f.debug_struct("System")
            .field("word", &self.word)
            .field("fields", &self.fields)
            .field("ring", &self.ring)
            .field("parent", &self.parent)
            .field("parent_out", &self.parent_out)
            .field("ops_used", &self.ops_used)
            .field("user_handle", &self.user_handle)
            .field("submitted", &self.submitted)
            .field("resolved", &self.resolved)
            .field("settled", &self.settled)
            .field("child", &self.child)
            .field("child_out", &self.child_out)
            .field("table", &self.table)
            .field("run_lane", &self.run_lane)
            .field("reg_lane", &self.reg_lane)
            .field("running", &self.running)
            .field("run_waiting", &self.run_waiting)
            .field("reg_running", &self.reg_running)
            .field("settle_dispatch", &self.settle_dispatch)
            .field("free_dispatch", &self.free_dispatch)
            .field("next_artifact", &self.next_artifact)
            .field("created", &self.created)
            .field("handle_callable", &self.handle_callable)
            .field("fault_injected", &self.fault_injected)
            .field("released", &self.released)
            .field("run_order", &self.run_order)
            .field("child_dead", &self.child_dead)
            .field("violation", &self.violation)
            .finish()
    }
}

/// The spec of callable `c` (tiny vector adds, so results are checkable).
pub fn spec_of(c: u8) -> CallableSpec {
    CallableSpec::chip(kernels::VECTOR_ADD, vec![1 + c as u64])
}

/// The args the user passes to callable `c`.
pub fn args_of(c: u8) -> TaskArgs {
    let n = 1 + c as usize;
    TaskArgs { tensors: vec![vec![1.5; n], vec![c as f32; n]], scalars: vec![] }
}

fn field_index(f: Field) -> usize {
    match f {
        Field::Task => 0,
        Field::Control => 1,
        Field::TaskResult => 2,
        Field::ControlResult => 3,
    }
}

impl System {
    pub fn new(cfg: Config) -> Self {
        System {
            cfg,
            word: WordState::Idle.encode(),
            fields: Default::default(),
            ring: VecDeque::new(),
            parent: ParentEndpoint::new(),
            parent_out: VecDeque::new(),
            ops_used: 0,
            user_handle: [None; CALLABLES],
            submitted: BTreeMap::new(),
            resolved: BTreeMap::new(),
            settled: BTreeMap::new(),
            child: ChildEndpoint::new(),
            child_out: VecDeque::new(),
            table: SlotTable::new(CHILD_WORKER, cfg.limits),
            run_lane: RunLane::new(),
            reg_lane: RegisterLane::new(),
            running: None,
            run_waiting: None,
            reg_running: None,
            settle_dispatch: BTreeMap::new(),
            free_dispatch: BTreeMap::new(),
            handle_callable: BTreeMap::new(),
            next_artifact: 1,
            released: BTreeSet::new(),
            created: BTreeSet::new(),
            run_order: Vec::new(),
            child_dead: false,
            fault_injected: false,
            saw_deferred_done: false,
            saw_control_during_task: false,
            violation: None,
        }
    }

    fn fail(&mut self, msg: String) {
        if self.violation.is_none() {
            self.violation = Some(msg);
        }
    }

    /// The actions enabled in this state, in a fixed order.
    pub fn enabled(&self) -> Vec<Action> {
        let mut v = Vec::new();
        if self.violation.is_some() {
            return v;
        }
        let user_ok = self.ops_used < self.cfg.ops_max && self.parent.gone().is_none();
        if user_ok {
            for c in 0..CALLABLES as u8 {
                v.push(Action::UserRegister(c));
                if self.user_handle[c as usize].is_some() {
                    v.push(Action::UserUnregister(c));
                    v.push(Action::UserRun(c));
                }
            }
            if self.cfg.allow_memory {
                v.push(Action::UserMemory);
            }
        }
        if self.parent.gone().is_none() {
            if !self.parent_out.is_empty() || (self.parent.wants_word() && self.parent_would_act()) {
                v.push(Action::Parent);
            }
            if !self.ring.is_empty() && self.parent.poisoned().is_none() {
                v.push(Action::ParentRing);
            }
        }
        if !self.child_dead {
            if !self.child_out.is_empty() || (self.child.wants_word() && self.child_would_act()) {
                v.push(Action::Child);
            }
            if self.running.is_none() && (self.run_waiting.is_some() || self.run_lane.queued() > 0) {
                // A waiting run starts once its slot settled.
                let can = match &self.run_waiting {
                    Some((_, job)) => self.table.runnable(job.handle).map(|a| a.is_some()).unwrap_or(true),
                    None => true,
                };
                if can {
                    v.push(Action::RunStart);
                }
            }
            if self.running.is_some() {
                v.push(Action::RunFinish { ok: true });
                if self.cfg.allow_chip_errors {
                    v.push(Action::RunFinish { ok: false });
                }
            }
            if self.reg_running.is_none() && self.reg_lane.queued() > 0 {
                v.push(Action::RegStart);
            }
            // A busy chip holds a prepare while a finished run's result has not
            // reached the parent yet.
            let results_pending = self.run_order.iter().any(|d| !self.resolved.contains_key(d) && !self.on_chip(*d));
            let held = |j: &RegisterJob<Artifact>| {
                matches!(j, RegisterJob::Prepare { .. }) && self.cfg.prepare_waits_for_runs && results_pending
            };
            if let Some((_, job)) = self.reg_running.as_ref().filter(|(_, j)| !held(j)) {
                v.push(Action::RegFinish { ok: true });
                if self.cfg.allow_chip_errors && matches!(job, RegisterJob::Prepare { .. }) {
                    v.push(Action::RegFinish { ok: false });
                }
            }
            if self.cfg.allow_death && !self.fault_injected {
                v.push(Action::ChildDies);
            }
        } else if self.parent.gone().is_none() {
            v.push(Action::ParentReaps);
        }
        v
    }

    /// Would feeding the word to the parent change anything? (Avoids
    /// self-loops that only re-read an unchanged word.)
    fn parent_would_act(&self) -> bool {
        let mut p = self.parent.clone();
        let _ = p.handle(ParentInput::Observed(self.word));
        p.poll().is_some()
    }

    fn child_would_act(&self) -> bool {
        let mut c = self.child.clone();
        let _ = c.handle(ChildInput::Observed { word: self.word, ring_free: self.ring_free() });
        c.poll().is_some()
    }

    /// Run `d` is still executing or waiting on the chip.
    fn on_chip(&self, d: DispatchId) -> bool {
        self.running.as_ref().is_some_and(|r| r.1.payload == d)
            || self.run_waiting.as_ref().is_some_and(|r| r.1.payload == d)
    }

    /// The completion ring is full.
    pub fn ring_full(&self) -> bool {
        self.ring.len() >= self.cfg.ring_capacity
    }

    fn ring_free(&self) -> usize {
        self.cfg.ring_capacity - self.ring.len()
    }

    /// Apply one action, then check the invariants.
    pub fn step(&mut self, a: Action) {
        match a {
            Action::UserRegister(c) => {
                self.ops_used += 1;
                self.submit_control(
                    SlotIndex(0),
                    Generation(0),
                    ControlOp::Register { spec: spec_of(c) },
                    Op::Register { callable: c as usize },
                );
            }
            Action::UserUnregister(c) => {
                self.ops_used += 1;
                let h = self.user_handle[c as usize].expect("enabled only with a handle");
                self.submit_control(
                    h.0,
                    h.1,
                    ControlOp::Unregister,
                    Op::Unregister { callable: c as usize, handle: h },
                );
            }
            Action::UserRun(c) => {
                self.ops_used += 1;
                let h = self.user_handle[c as usize].expect("enabled only with a handle");
                let r = self.parent.handle(ParentInput::SubmitTask {
                    slot: h.0,
                    generation: h.1,
                    config: RunConfig::default(),
                    args: args_of(c),
                });
                match r {
                    Ok(Some(d)) => {
                        self.submitted.insert(d, Op::Run { callable: c as usize, handle: h });
                    }
                    other => self.fail(format!("submit task refused: {other:?}")),
                }
                self.drain_parent();
            }
            Action::UserMemory => {
                self.ops_used += 1;
                self.submit_control(
                    SlotIndex(0),
                    Generation(0),
                    ControlOp::Memory { bytes: 64, free: false },
                    Op::Memory,
                );
            }
            Action::Parent => self.parent_step(),
            Action::ParentRing => {
                let bytes = self.ring.pop_front().expect("enabled only when non-empty");
                let r = Frame::decode(&bytes);
                self.feed_parent(ParentInput::Completion(r));
            }
            Action::Child => self.child_step(),
            Action::RunStart => self.run_start(),
            Action::RunFinish { ok } => self.run_finish(ok),
            Action::RegStart => {
                if let Some(LaneOutput::Start { id, job }) = self.reg_lane.poll() {
                    self.reg_running = Some((id, job));
                }
            }
            Action::RegFinish { ok } => self.reg_finish(ok),
            Action::ChildDies => {
                self.child_dead = true;
                self.fault_injected = true;
            }
            Action::ParentReaps => self.feed_parent(ParentInput::ChildGone(EndpointError::ChildDied)),
        }
        self.check();
    }

    fn submit_control(&mut self, slot: SlotIndex, generation: Generation, op: ControlOp, rec: Op) {
        match self.parent.handle(ParentInput::SubmitControl { slot, generation, op }) {
            Ok(Some(d)) => {
                self.submitted.insert(d, rec);
            }
            other => self.fail(format!("submit control refused: {other:?}")),
        }
        self.drain_parent();
    }

    fn feed_parent(&mut self, input: ParentInput) {
        if let Err(e) = self.parent.handle(input) {
            self.fail(format!("parent refused driver input: {e:?}"));
        }
        self.drain_parent();
    }

    /// Move the parent's outputs into its queue; resolve callers at once
    /// (resolutions are not shared-memory operations).
    fn drain_parent(&mut self) {
        while let Some(o) = self.parent.poll() {
            match o {
                ParentOutput::TaskDone { dispatch, result } => self.resolve(dispatch, Resolution::Task(result)),
                ParentOutput::ControlDone { dispatch, result } => {
                    if let (Some(Op::Register { callable }), Ok(ControlReply::Registered { slot, generation, .. })) =
                        (self.submitted.get(&dispatch), &result)
                    {
                        self.user_handle[*callable] = Some((*slot, *generation));
                    }
                    self.resolve(dispatch, Resolution::Control(result))
                }
                ParentOutput::Settled { dispatch, result } => {
                    if self.settled.insert(dispatch, result).is_some() {
                        self.fail(format!("dispatch {dispatch:?} settled twice"));
                    }
                }
                ParentOutput::Poison { .. } => {
                    if !self.fault_injected {
                        self.fail(format!("parent poisoned without a fault: {:?}", self.parent.poisoned()));
                    }
                    self.word = WordState::Poisoned.encode();
                    // The driver kills and reaps the child.
                    self.child_dead = true;
                }
                other => self.parent_out.push_back(other),
            }
        }
    }

    fn resolve(&mut self, d: DispatchId, r: Resolution) {
        if !self.submitted.contains_key(&d) {
            self.fail(format!("resolution for unknown dispatch {d:?}"));
        }
        if self.resolved.insert(d, r).is_some() {
            self.fail(format!("dispatch {d:?} resolved twice"));
        }
    }

    fn parent_step(&mut self) {
        let Some(o) = self.parent_out.pop_front() else {
            let w = self.word;
            return self.feed_parent(ParentInput::Observed(w));
        };
        match o {
            ParentOutput::Write { field, frame } => self.write_field(field, &frame),
            ParentOutput::Cas { from, to } => {
                let r = self.cas(from, to);
                self.feed_parent(ParentInput::CasResult(r));
            }
            ParentOutput::Read { field } => {
                let r = Frame::decode_field(&self.fields[field_index(field)], kind_in(field));
                self.feed_parent(ParentInput::ReadResult(r));
            }
            other => unreachable!("drained at once: {other:?}"),
        }
    }

    fn write_field(&mut self, field: Field, frame: &Frame) {
        let bytes = frame.encode().expect("frames in the model fit their fields");
        let f = &mut self.fields[field_index(field)];
        if f.len() < bytes.len() {
            f.resize(bytes.len(), 0);
        }
        f[..bytes.len()].copy_from_slice(&bytes);
    }

    fn cas(&mut self, from: WordState, to: WordState) -> Result<(), u32> {
        if self.word == from.encode() {
            self.word = to.encode();
            Ok(())
        } else {
            Err(self.word)
        }
    }

    fn feed_child(&mut self, input: ChildInput) {
        if let Err(e) = self.child.handle(input) {
            self.fail(format!("child refused driver input: {e:?}"));
        }
        while let Some(o) = self.child.poll() {
            self.child_out.push_back(o);
        }
    }

    fn child_step(&mut self) {
        let Some(o) = self.child_out.pop_front() else {
            let (word, ring_free) = (self.word, self.ring_free());
            return self.feed_child(ChildInput::Observed { word, ring_free });
        };
        match o {
            ChildOutput::Read { field } => {
                let r = Frame::decode_field(&self.fields[field_index(field)], kind_in(field));
                self.feed_child(ChildInput::ReadResult(r));
            }
            ChildOutput::Write { field, frame } => {
                let under_control = matches!(
                    WordState::decode(self.word),
                    Some(WordState::ControlReady { .. } | WordState::ControlDone { .. })
                );
                if under_control && matches!(frame, Frame::TaskResult(_)) {
                    // The run finished while a control is in flight: TASK_DONE is deferred.
                    self.saw_deferred_done = true;
                }
                self.write_field(field, &frame)
            }
            ChildOutput::Cas { from, to } => {
                let r = self.cas(from, to);
                self.feed_child(ChildInput::CasResult(r));
            }
            ChildOutput::Push(frame) => {
                if self.ring.len() >= self.cfg.ring_capacity {
                    self.fail("child pushed into a full ring".into());
                    return;
                }
                self.ring.push_back(Frame::Completion(frame).encode().expect("completion fits"));
            }
            ChildOutput::Poison { reason } => {
                if !self.fault_injected {
                    self.fail(format!("child poisoned without a fault: {reason:?}"));
                }
                self.word = WordState::Poisoned.encode();
                self.child_dead = true;
            }
            ChildOutput::AcceptTask(frame) => {
                let handle = Handle { worker: CHILD_WORKER, index: frame.id.slot, generation: frame.id.generation };
                let answer = match self.table.handle(SlotInput::Pin { handle }) {
                    Ok(SlotReply::Pinned { .. }) => {
                        let _ = self.run_lane.handle(LaneInput::Enqueue(RunJob { handle, payload: frame.id.dispatch }));
                        ChildInput::TaskAccepted
                    }
                    Ok(other) => unreachable!("pin replied {other:?}"),
                    Err(SlotError::Pin(e)) => ChildInput::TaskRejected(e),
                    Err(e) => unreachable!("pin failed with {e:?}"),
                };
                self.drain_table();
                self.feed_child(answer);
            }
            ChildOutput::ApplyControl(frame) => {
                let answer = self.apply_control(frame.id, &frame.op);
                self.drain_table();
                self.feed_child(ChildInput::ControlApplied(answer));
            }
        }
    }

    fn apply_control(&mut self, id: FrameId, op: &ControlOp) -> Result<ControlReply, ControlError> {
        match op {
            ControlOp::Register { spec } => {
                if spec.kind != chiplane_core::TargetKind::ChipCallable {
                    return Err(ControlError::Register(RegisterError::WrongTarget));
                }
                let callable = (0..CALLABLES as u8).find(|c| spec_of(*c) == *spec).expect("model specs only");
                match self.table.handle(SlotInput::Register { digest: spec.digest() }) {
                    Ok(SlotReply::Registered { handle, fresh }) => {
                        if fresh {
                            self.settle_dispatch.insert(handle, id.dispatch);
                            self.handle_callable.insert(handle, callable);
                        }
                        Ok(ControlReply::Registered { slot: handle.index, generation: handle.generation, fresh })
                    }
                    Ok(other) => unreachable!("register replied {other:?}"),
                    Err(SlotError::Register(e)) => Err(ControlError::Register(e)),
                    Err(e) => unreachable!("register failed with {e:?}"),
                }
            }
            ControlOp::Unregister => {
                let handle = Handle { worker: CHILD_WORKER, index: id.slot, generation: id.generation };
                match self.table.handle(SlotInput::Unregister { handle }) {
                    Ok(SlotReply::Unregistered { last }) => {
                        if last {
                            self.free_dispatch.insert(handle, id.dispatch);
                        }
                        Ok(ControlReply::Unregistered { last })
                    }
                    Ok(other) => unreachable!("unregister replied {other:?}"),
                    Err(SlotError::Unregister(e)) => Err(ControlError::Unregister(e)),
                    Err(e) => unreachable!("unregister failed with {e:?}"),
                }
            }
            ControlOp::Memory { .. } | ControlOp::Domain { .. } => {
                if self.child.task().is_some() {
                    self.fail("memory control applied while the child holds a task".into());
                }
                Ok(ControlReply::Done)
            }
        }
    }

    /// Execute what the slot table owes.
    fn drain_table(&mut self) {
        while let Some(o) = self.table.poll() {
            match o {
                SlotOutput::StartPrepare { handle, digest } => {
                    let _ = self.reg_lane.handle(LaneInput::Enqueue(RegisterJob::Prepare { handle, digest }));
                }
                // The model chip's prepare is one atomic step; a cancel lets it
                // finish (the slot releases what it returns).
                SlotOutput::Cancel { .. } => {}
                SlotOutput::Release { handle, artifact } => {
                    let _ = self.reg_lane.handle(LaneInput::Enqueue(RegisterJob::Release { handle, artifact }));
                }
                SlotOutput::Settled { handle, result } => {
                    if let Some(d) = self.settle_dispatch.remove(&handle) {
                        let id = FrameId { dispatch: d, slot: handle.index, generation: handle.generation };
                        self.feed_child(ChildInput::Settled { id, settlement: Settlement::Prepared(result) });
                    }
                }
                SlotOutput::Freed { handle } => {
                    if let Some(d) = self.free_dispatch.remove(&handle) {
                        let id = FrameId { dispatch: d, slot: handle.index, generation: handle.generation };
                        self.feed_child(ChildInput::Settled { id, settlement: Settlement::Freed });
                    }
                }
            }
        }
    }

    fn run_start(&mut self) {
        let (id, job) = match self.run_waiting.take() {
            Some(w) => w,
            None => match self.run_lane.poll() {
                Some(LaneOutput::Start { id, job }) => (id, job),
                None => return,
            },
        };
        match self.table.runnable(job.handle) {
            Ok(None) => {
                self.run_waiting = Some((id, job));
            }
            Ok(Some(a)) => {
                let a = *a;
                if self.released.contains(&a.id) {
                    self.fail(format!("run uses released artifact {}", a.id));
                }
                self.run_order.push(job.payload);
                self.running = Some((id, job, Some(a)));
            }
            Err(_) => {
                self.run_order.push(job.payload);
                self.running = Some((id, job, None));
            }
        }
    }

    fn run_finish(&mut self, ok: bool) {
        let Some((id, job, artifact)) = self.running.take() else { return };
        let result = match (artifact, self.table.runnable(job.handle)) {
            (Some(a), _) => {
                if ok {
                    kernels::reference(&spec_of(a.callable), &args_of(a.callable)).map_err(RunError::Chip)
                } else {
                    Err(RunError::Chip(ChipError::new(ChipErrorKind::Injected, "run failed")))
                }
            }
            (None, Err(e)) => Err(e),
            (None, Ok(_)) => Err(RunError::Cancelled),
        };
        match self.table.handle(SlotInput::Unpin { handle: job.handle }) {
            Ok(_) => {}
            Err(e) => self.fail(format!("unpin failed: {e:?}")),
        }
        let _ = self.run_lane.handle(LaneInput::Finished { id });
        self.drain_table();
        self.feed_child(ChildInput::RunFinished { dispatch: job.payload, result });
    }

    fn reg_finish(&mut self, ok: bool) {
        let Some((id, job)) = self.reg_running.take() else { return };
        match job {
            RegisterJob::Prepare { handle, .. } => {
                let result = if ok {
                    let callable = *self.handle_callable.get(&handle).unwrap_or(&0);
                    let a = Artifact { id: self.next_artifact, callable };
                    self.next_artifact += 1;
                    self.created.insert(a.id);
                    Ok(a)
                } else {
                    Err(ChipError::new(ChipErrorKind::Injected, "prepare failed"))
                };
                if let Err(e) = self.table.handle(SlotInput::PrepareFinished { handle, result }) {
                    self.fail(format!("prepare result refused: {e:?}"));
                }
            }
            RegisterJob::Release { artifact, .. } => {
                if self.running.as_ref().is_some_and(|r| r.2 == Some(artifact)) {
                    self.fail(format!("artifact {} released while a run uses it", artifact.id));
                }
                if !self.released.insert(artifact.id) {
                    self.fail(format!("artifact {} released twice", artifact.id));
                }
            }
        }
        let _ = self.reg_lane.handle(LaneInput::Finished { id });
        self.drain_table();
    }

    /// Safety invariants, after every step.
    pub fn check(&mut self) {
        if let Err(e) = self.table.check_invariants() {
            self.fail(format!("slot table: {e}"));
        }
        if self.run_order.windows(2).any(|w| w[0] >= w[1]) {
            self.fail(format!("runs reached the chip out of order: {:?}", self.run_order));
        }
        // A successful run returns the reference result.
        let bad: Option<DispatchId> = self.resolved.iter().find_map(|(d, r)| match (r, self.submitted.get(d)) {
            (Resolution::Task(Ok(out)), Some(Op::Run { callable, .. })) => {
                let want = kernels::reference(&spec_of(*callable as u8), &args_of(*callable as u8)).ok()?;
                (kernels::max_diff(out, &want) != 0.0).then_some(*d)
            }
            _ => None,
        });
        if let Some(d) = bad {
            self.fail(format!("run {d:?} returned a wrong result"));
        }
        if !self.fault_injected {
            let endpoint_err = self.resolved.values().any(|r| {
                matches!(
                    r,
                    Resolution::Task(Err(RunError::Endpoint(_))) | Resolution::Control(Err(ControlError::Endpoint(_)))
                )
            });
            if endpoint_err {
                self.fail("an endpoint error without a fault".into());
            }
        }
        if let Some(WordState::ControlReady { under_task: true }) = WordState::decode(self.word) {
            self.saw_control_during_task = true;
        }
    }

    /// Liveness, in a state with no enabled action.
    pub fn check_final(&mut self) {
        if self.violation.is_some() {
            return;
        }
        for d in self.submitted.keys() {
            if !self.resolved.contains_key(d) {
                return self.fail(format!("dispatch {d:?} never resolved (stuck)"));
            }
        }
        if self.parent.settlements_owed() > 0 {
            return self.fail("a settlement is still owed at quiescence".into());
        }
        // Every settlement owed resolved exactly once.
        for (d, r) in &self.resolved {
            let owed = matches!(
                r,
                Resolution::Control(Ok(
                    ControlReply::Registered { fresh: true, .. } | ControlReply::Unregistered { last: true }
                ))
            );
            if owed && !self.settled.contains_key(d) {
                return self.fail(format!("settlement for {d:?} never arrived"));
            }
        }
        if self.child_dead {
            return;
        }
        for i in 0..self.cfg.limits.capacity as u32 {
            if self.table.pins(SlotIndex(i)) != 0 {
                return self.fail(format!("slot {i} still pinned at quiescence"));
            }
        }
        // Every artifact is held by a PREPARED slot or released.
        let held = (0..self.cfg.limits.capacity as u32)
            .filter(|i| self.table.state(SlotIndex(*i)) == Some(SlotState::Prepared))
            .count();
        let unreleased = self.created.difference(&self.released).count();
        if unreleased != held {
            self.fail(format!("{unreleased} artifacts unreleased but {held} PREPARED slots hold one"));
        }
    }

    /// Outcome of each user operation, for reporting.
    pub fn outcomes(&self) -> Vec<(DispatchId, Op, Option<Resolution>)> {
        self.submitted.iter().map(|(d, op)| (*d, op.clone(), self.resolved.get(d).cloned())).collect()
    }

    pub fn unregister_error(r: &Resolution) -> Option<UnregisterError> {
        match r {
            Resolution::Control(Err(ControlError::Unregister(e))) => Some(e.clone()),
            _ => None,
        }
    }
}
