//! The composition the `mailbox_protocol` target drives: the two pure
//! endpoint machines, the shared region they talk through (played here), and
//! a child-side backend (a slot table plus FIFO run and register lanes that
//! the fuzz input steps), with every check that can be made at the moment
//! something happens. The end-of-input checks live in `mod.rs`.
//!
//! The shared region: the state word as a `u32`, the four frame fields as
//! byte buffers (frames written with `Frame::encode_into`, read with
//! `Frame::decode_field`, the field chosen by `mailbox::field_for`), and a
//! completion ring of `RING_CAP` encoded completion frames.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chiplane_core::frame::{
    CompletionFrame, ControlOp, ControlReply, Frame, FrameId, FrameKind, Settlement, TaskFrame, TaskResultFrame,
};
use chiplane_core::mailbox::child::{ChildEndpoint, ChildInput, ChildOutput};
use chiplane_core::mailbox::parent::{ParentEndpoint, ParentError, ParentInput, ParentOutput};
use chiplane_core::mailbox::word::{Side, WordState};
use chiplane_core::mailbox::{field_for, kind_in, Field};
use chiplane_core::slot::{SlotError, SlotInput, SlotLimits, SlotOutput, SlotReply, SlotState, SlotTable};
use chiplane_core::{
    ChipError, ChipErrorKind, ControlError, DispatchId, EndpointError, Generation, Handle, RegisterError, RunError,
    RunOutput, SlotIndex, TargetKind, WorkerId,
};

/// The child's worker id (handles crossing the mailbox carry slot and
/// generation only; the child adds its own worker).
pub const W: WorkerId = WorkerId(7);
/// Small on purpose: a short input fills the table, retires slots and fills
/// the ring.
pub const CAPACITY: usize = 3;
pub const GENERATION_MAX: u32 = 4;
pub const RING_CAP: usize = 2;

/// A prepared artifact: unique id plus the tag of the callable it was built
/// for (a run's output depends on it, so a run on the wrong artifact shows).
#[derive(Debug)]
pub struct Art {
    pub id: u64,
    pub tag: u64,
}

/// What a run of `value` on an artifact of `tag` outputs.
pub fn run_output(value: f32, tag: u64) -> RunOutput {
    RunOutput { tensors: vec![vec![value + 1000.0 * tag as f32]] }
}

#[derive(Debug)]
struct QueuedRun {
    dispatch: DispatchId,
    handle: Handle,
    value: f32,
}

#[derive(Debug)]
struct PrepareJob {
    handle: Handle,
    tag: u64,
    cancelled: bool,
}

/// Interesting states an input reached (seed generation and smoke checks).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Reached {
    pub control_under_task: bool,
    pub deferred_task_done: bool,
    pub tombstoned: bool,
    pub cancelled_prepare: bool,
    pub ring_full: bool,
    pub settled: bool,
    pub task_ok: bool,
    pub child_died: bool,
    pub poisoned: bool,
}

/// One resolution the parent reported to a caller.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolution {
    Task(Result<RunOutput, RunError>),
    Control(Result<ControlReply, ControlError>),
    Settled(Result<Settlement, EndpointError>),
}

/// The system under test.
#[derive(Debug)]
pub struct System {
    // shared region
    pub word: u32,
    fields: [Vec<u8>; 4],
    pub ring: VecDeque<Vec<u8>>,
    // endpoints
    pub parent: ParentEndpoint,
    pub child: ChildEndpoint,
    /// The child process is alive (not killed, not dead).
    pub child_alive: bool,
    // child-side backend
    pub table: SlotTable<Art>,
    runs: VecDeque<QueuedRun>,
    prepares: VecDeque<PrepareJob>,
    /// handle -> dispatch of the register control that started its prepare.
    register_of: BTreeMap<Handle, DispatchId>,
    /// handle -> frame id of the final unregister (its `Freed` settles it).
    unregister_of: BTreeMap<Handle, FrameId>,
    /// handle -> tag of the callable registered in that slot generation.
    pub tag_of: BTreeMap<(SlotIndex, Generation), u64>,
    next_art: u64,
    pub created: Vec<u64>,
    pub released: BTreeSet<u64>,
    published: BTreeSet<u64>,
    // what the backend did, per dispatch (the reference for transport)
    pub backend_task: BTreeMap<DispatchId, Result<RunOutput, RunError>>,
    pub backend_control: BTreeMap<DispatchId, Result<ControlReply, ControlError>>,
    pub backend_settlement: BTreeMap<DispatchId, Settlement>,
    // protocol observations
    /// The task dispatch the parent published (IDLE -> TASK_READY).
    published_task: Option<DispatchId>,
    /// The task the child copied out and pinned (answered `TaskAccepted`).
    accepted_task: Option<DispatchId>,
    // what callers learned, in order
    pub resolutions: Vec<(DispatchId, Resolution)>,
    /// A fault was injected: poison and endpoint errors are allowed.
    pub fault: bool,
    pub reached: Reached,
}

impl Default for System {
    fn default() -> Self {
        Self::new()
    }
}

fn field_index(f: Field) -> usize {
    match f {
        Field::Task => 0,
        Field::Control => 1,
        Field::TaskResult => 2,
        Field::ControlResult => 3,
    }
}

/// The design's transition table (design.md section 4), written out here
/// independently of `word.rs`: which side may move the word from `from` to `to`.
pub fn legal(side: Side, from: WordState, to: WordState) -> bool {
    use WordState::*;
    if to == Poisoned {
        return true;
    }
    match side {
        Side::Parent => matches!(
            (from, to),
            (Idle, TaskReady)
                | (Idle, ControlReady { under_task: false })
                | (TaskRunning, ControlReady { under_task: true })
                | (ControlDone { under_task: true }, TaskRunning)
                | (ControlDone { under_task: false }, Idle)
                | (TaskDone, Idle)
        ),
        Side::Child => matches!(
            (from, to),
            (TaskReady, TaskRunning)
                | (TaskReady, TaskDone)
                | (ControlReady { under_task: false }, ControlDone { under_task: false })
                | (ControlReady { under_task: true }, ControlDone { under_task: true })
                | (TaskRunning, TaskDone)
        ),
    }
}

impl System {
    pub fn new() -> Self {
        let field = |f: Field| vec![0u8; Frame::capacity(kind_in(f))];
        System {
            word: WordState::Idle.encode(),
            fields: [field(Field::Task), field(Field::Control), field(Field::TaskResult), field(Field::ControlResult)],
            ring: VecDeque::new(),
            parent: ParentEndpoint::new(),
            child: ChildEndpoint::new(),
            child_alive: true,
            table: SlotTable::new(W, SlotLimits { capacity: CAPACITY, generation_max: Generation(GENERATION_MAX) }),
            runs: VecDeque::new(),
            prepares: VecDeque::new(),
            register_of: BTreeMap::new(),
            unregister_of: BTreeMap::new(),
            tag_of: BTreeMap::new(),
            next_art: 1,
            created: Vec::new(),
            released: BTreeSet::new(),
            published: BTreeSet::new(),
            backend_task: BTreeMap::new(),
            backend_control: BTreeMap::new(),
            backend_settlement: BTreeMap::new(),
            published_task: None,
            accepted_task: None,
            resolutions: Vec::new(),
            fault: false,
            reached: Reached::default(),
        }
    }

    pub fn field(&self, f: Field) -> &[u8] {
        &self.fields[field_index(f)]
    }

    pub fn field_mut(&mut self, f: Field) -> &mut Vec<u8> {
        &mut self.fields[field_index(f)]
    }

    fn write(&mut self, field: Field, frame: &Frame) {
        let buf = &mut self.fields[field_index(field)];
        if let Err(e) = frame.encode_into(buf) {
            panic!("a machine asked to write a frame that does not fit {field:?}: {e:?} ({frame:?})");
        }
    }

    fn read(&self, field: Field) -> Result<Frame, chiplane_core::frame::FrameError> {
        Frame::decode_field(self.field(field), kind_in(field))
    }

    /// Feed the parent; it must never call its driver's answer unexpected.
    pub fn parent_input(&mut self, input: ParentInput) -> Result<Option<DispatchId>, ParentError> {
        let live = self.parent.poisoned().is_none() && self.parent.gone().is_none();
        let r = self.parent.handle(input);
        if let Err(ParentError::Unexpected(u)) = &r {
            // Once poisoned or gone the parent forgets what it asked for, and
            // refuses the answer to an output it had queued before; harmless
            // (it never publishes again). While live, this is a bug.
            assert!(!live, "parent refused an answer it asked for: {u:?}");
        }
        r
    }

    fn child_input(&mut self, input: ChildInput) {
        if !self.child_alive {
            return;
        }
        if let Err(u) = self.child.handle(input) {
            panic!("child refused an input its driver owed it: {u:?}");
        }
    }

    // ---- the parent's driver ---------------------------------------------

    /// One parent step: execute its next output, or load the word for it.
    /// Returns whether anything happened.
    pub fn parent_step(&mut self) -> bool {
        if let Some(o) = self.parent.poll() {
            self.exec_parent(o);
            return true;
        }
        if self.parent.wants_word() {
            let w = self.word;
            self.parent_input(ParentInput::Observed(w)).ok();
            if let Some(o) = self.parent.poll() {
                self.exec_parent(o);
                return true;
            }
        }
        false
    }

    fn exec_parent(&mut self, o: ParentOutput) {
        if trace() {
            eprintln!("parent {o:?}   [word {:?}]", self.word_state());
        }
        match o {
            ParentOutput::Write { field, frame } => {
                assert!(
                    matches!(frame.kind(), FrameKind::Task | FrameKind::Control),
                    "parent wrote a {:?} frame",
                    frame.kind()
                );
                self.write(field, &frame);
            }
            ParentOutput::Cas { from, to } => {
                let answer = if self.word == from.encode() {
                    self.check_cas(Side::Parent, from, to);
                    if to == WordState::TaskReady {
                        self.published_task = match self.read(field_for(FrameKind::Task).expect("task field")) {
                            Ok(f) => Some(f.id().dispatch),
                            Err(e) => panic!("parent published a task field that does not decode: {e:?}"),
                        };
                        self.accepted_task = None;
                    }
                    if to == (WordState::ControlReady { under_task: true }) {
                        self.reached.control_under_task = true;
                        let control = self.read(field_for(FrameKind::Control).expect("control field"));
                        match control {
                            Ok(Frame::Control(c)) => assert!(
                                c.op.allowed_during_task(),
                                "a {:?} control entered during TASK_RUNNING (rule 3)",
                                c.op
                            ),
                            other => panic!("parent published a control field holding {other:?}"),
                        }
                    }
                    self.word = to.encode();
                    Ok(())
                } else {
                    Err(self.word)
                };
                self.parent_input(ParentInput::CasResult(answer)).ok();
            }
            ParentOutput::Read { field } => {
                let r = self.read(field);
                self.parent_input(ParentInput::ReadResult(r)).ok();
            }
            ParentOutput::TaskDone { dispatch, result } => {
                if result.is_ok() {
                    self.reached.task_ok = true;
                }
                self.resolutions.push((dispatch, Resolution::Task(result)));
            }
            ParentOutput::ControlDone { dispatch, result } => {
                self.resolutions.push((dispatch, Resolution::Control(result)));
            }
            ParentOutput::Settled { dispatch, result } => {
                self.reached.settled = true;
                self.resolutions.push((dispatch, Resolution::Settled(result)));
            }
            ParentOutput::Poison { reason } => {
                self.word = WordState::Poisoned.encode();
                if self.parent.gone().is_some() {
                    // The child is gone (died, or killed after a liveness
                    // timeout): the parent only marks the word POISONED.
                    return;
                }
                self.reached.poisoned = true;
                assert!(self.fault, "parent poisoned the endpoint with no fault injected: {reason:?}");
                self.child_alive = false;
                self.parent_input(ParentInput::ChildGone(EndpointError::Poisoned(reason))).ok();
            }
        }
    }

    fn check_cas(&self, side: Side, from: WordState, to: WordState) {
        assert!(legal(side, from, to), "{side:?} moved the word {from:?} -> {to:?}: not in the design's table");
    }

    // ---- the child's driver ----------------------------------------------

    /// One child step: execute its next output, or load the word for it.
    pub fn child_step(&mut self) -> bool {
        if !self.child_alive {
            return false;
        }
        if let Some(o) = self.child.poll() {
            self.exec_child(o);
            return true;
        }
        if self.child.wants_word() {
            let (word, ring_free) = (self.word, RING_CAP.saturating_sub(self.ring.len()));
            self.child_input(ChildInput::Observed { word, ring_free });
            if let Some(o) = self.child.poll() {
                self.exec_child(o);
                return true;
            }
        }
        false
    }

    fn exec_child(&mut self, o: ChildOutput) {
        if trace() {
            eprintln!("child  {o:?}   [word {:?}]", self.word_state());
        }
        match o {
            ChildOutput::Read { field } => {
                let r = self.read(field);
                self.child_input(ChildInput::ReadResult(r));
            }
            ChildOutput::AcceptTask(frame) => self.accept_task(frame),
            ChildOutput::ApplyControl(frame) => {
                let dispatch = frame.id.dispatch;
                let result = self.apply_control(frame.id, frame.op);
                self.backend_control.insert(dispatch, result.clone());
                self.child_input(ChildInput::ControlApplied(result));
            }
            ChildOutput::Write { field, frame } => {
                assert!(
                    matches!(frame.kind(), FrameKind::TaskResult | FrameKind::ControlResult),
                    "child wrote a {:?} frame",
                    frame.kind()
                );
                self.write(field, &frame);
            }
            ChildOutput::Cas { from, to } => {
                let answer = if self.word == from.encode() {
                    self.check_cas(Side::Child, from, to);
                    if to == WordState::TaskRunning && !self.fault {
                        assert!(
                            self.accepted_task.is_some() && self.accepted_task == self.published_task,
                            "TASK_RUNNING published before the task {:?} was copied out and pinned (rule 1; \
                             accepted {:?})",
                            self.published_task,
                            self.accepted_task
                        );
                    }
                    self.word = to.encode();
                    Ok(())
                } else {
                    Err(self.word)
                };
                self.child_input(ChildInput::CasResult(answer));
            }
            ChildOutput::Push(frame) => {
                // (Forged entries pushed by a fault take room the child did not see.)
                assert!(self.ring.len() < RING_CAP || self.fault, "child pushed into a full completion ring");
                let bytes = Frame::Completion(frame).encode().expect("a completion encodes");
                self.ring.push_back(bytes);
                if self.ring.len() == RING_CAP {
                    self.reached.ring_full = true;
                }
            }
            ChildOutput::Poison { reason } => {
                self.reached.poisoned = true;
                assert!(self.fault, "child poisoned the endpoint with no fault injected: {reason:?}");
                self.word = WordState::Poisoned.encode();
            }
        }
    }

    fn accept_task(&mut self, frame: TaskFrame) {
        let handle = Handle { worker: W, index: frame.id.slot, generation: frame.id.generation };
        let dispatch = frame.id.dispatch;
        match self.table.handle(SlotInput::Pin { handle }) {
            Ok(SlotReply::Pinned { .. }) => {
                self.check_table();
                let value = frame.args.tensors.first().and_then(|t| t.first()).copied().unwrap_or(0.0);
                self.runs.push_back(QueuedRun { dispatch, handle, value });
                self.accepted_task = Some(dispatch);
                self.child_input(ChildInput::TaskAccepted);
            }
            Err(SlotError::Pin(e)) => {
                self.backend_task.insert(dispatch, Err(e.clone()));
                self.child_input(ChildInput::TaskRejected(e));
            }
            other => panic!("pin answered {other:?}"),
        }
    }

    fn apply_control(&mut self, id: FrameId, op: ControlOp) -> Result<ControlReply, ControlError> {
        let handle = Handle { worker: W, index: id.slot, generation: id.generation };
        let r = match op {
            ControlOp::Register { spec } => {
                if spec.kind != TargetKind::ChipCallable {
                    return Err(ControlError::Register(RegisterError::WrongTarget));
                }
                let tag = spec.params.first().copied().unwrap_or(0);
                match self.table.handle(SlotInput::Register { digest: spec.digest() }) {
                    Ok(SlotReply::Registered { handle, fresh }) => {
                        if fresh {
                            self.register_of.insert(handle, id.dispatch);
                            self.tag_of.insert((handle.index, handle.generation), tag);
                        }
                        self.drain_table(Some(tag));
                        Ok(ControlReply::Registered { slot: handle.index, generation: handle.generation, fresh })
                    }
                    Err(SlotError::Register(e)) => Err(ControlError::Register(e)),
                    other => panic!("register answered {other:?}"),
                }
            }
            ControlOp::Unregister => {
                // The Freed settlement (now or later) names this control.
                let previous = self.unregister_of.insert(handle, id);
                match self.table.handle(SlotInput::Unregister { handle }) {
                    Ok(SlotReply::Unregistered { last }) => {
                        if !last {
                            restore(&mut self.unregister_of, handle, previous);
                        }
                        self.drain_table(None);
                        Ok(ControlReply::Unregistered { last })
                    }
                    Err(SlotError::Unregister(e)) => {
                        restore(&mut self.unregister_of, handle, previous);
                        Err(ControlError::Unregister(e))
                    }
                    other => panic!("unregister answered {other:?}"),
                }
            }
            ControlOp::Memory { .. } | ControlOp::Domain { .. } => Ok(ControlReply::Done),
        };
        self.check_table();
        r
    }

    fn check_table(&self) {
        if let Err(e) = self.table.check_invariants() {
            panic!("slot table invariant broken: {e}");
        }
    }

    /// Execute what the slot table owes (the child's lanes and ring).
    fn drain_table(&mut self, tag: Option<u64>) {
        while let Some(o) = self.table.poll() {
            match o {
                SlotOutput::StartPrepare { handle, .. } => {
                    let tag = tag.expect("a prepare starts only from a register");
                    self.prepares.push_back(PrepareJob { handle, tag, cancelled: false });
                }
                SlotOutput::Cancel { handle } => {
                    self.reached.cancelled_prepare = true;
                    if let Some(j) = self.prepares.iter_mut().find(|j| j.handle == handle) {
                        j.cancelled = true;
                    }
                }
                SlotOutput::Release { handle, artifact } => {
                    assert!(self.released.insert(artifact.id), "artifact {} released twice", artifact.id);
                    if self.published.contains(&artifact.id) {
                        assert!(
                            !self.runs.iter().any(|r| r.handle == handle),
                            "artifact {} of {handle:?} released while a queued run still pins it",
                            artifact.id
                        );
                    }
                }
                SlotOutput::Settled { handle, result } => {
                    let Some(dispatch) = self.register_of.remove(&handle) else {
                        panic!("settlement {result:?} for {handle:?}: no prepare of that register is owed one");
                    };
                    let id = FrameId { dispatch, slot: handle.index, generation: handle.generation };
                    self.settle(id, Settlement::Prepared(result));
                }
                SlotOutput::Freed { handle } => {
                    let Some(id) = self.unregister_of.remove(&handle) else {
                        panic!("{handle:?} freed with no final unregister owed its settlement");
                    };
                    self.settle(id, Settlement::Freed);
                }
            }
        }
        if (0..CAPACITY).any(|i| self.table.state(SlotIndex(i as u32)) == Some(SlotState::Unregistering)) {
            self.reached.tombstoned = true;
        }
    }

    fn settle(&mut self, id: FrameId, settlement: Settlement) {
        let previous = self.backend_settlement.insert(id.dispatch, settlement.clone());
        assert!(previous.is_none(), "dispatch {:?} settled twice by the backend", id.dispatch);
        self.child_input(ChildInput::Settled { id, settlement });
    }

    // ---- the lanes -------------------------------------------------------

    /// The run lane retires the run at its head (FIFO), if it can.
    pub fn run_lane(&mut self, fail: bool) -> bool {
        if !self.child_alive {
            return false;
        }
        let Some(run) = self.runs.front() else { return false };
        let (dispatch, handle, value) = (run.dispatch, run.handle, run.value);
        let result = match self.table.runnable(handle) {
            Ok(None) => return false, // PREPARING: the head waits for its settlement
            Ok(Some(_)) if fail => Err(RunError::Chip(ChipError::new(ChipErrorKind::Injected, "run failed"))),
            Ok(Some(art)) => Ok(run_output(value, art.tag)),
            Err(e) => Err(e),
        };
        self.runs.pop_front();
        match self.table.handle(SlotInput::Unpin { handle }) {
            Ok(SlotReply::Unpinned) => {}
            other => panic!("unpin of a retired run answered {other:?}"),
        }
        self.check_table();
        self.drain_table(None);
        if matches!(self.word_state(), Some(WordState::ControlReady { .. } | WordState::ControlDone { .. })) {
            self.reached.deferred_task_done = true;
        }
        self.backend_task.insert(dispatch, result.clone());
        self.child_input(ChildInput::RunFinished { dispatch, result });
        true
    }

    /// The register lane returns the prepare at its head (FIFO).
    pub fn register_lane(&mut self, ok: bool) -> bool {
        if !self.child_alive {
            return false;
        }
        let Some(job) = self.prepares.pop_front() else { return false };
        let result = if ok {
            let id = self.next_art;
            self.next_art += 1;
            self.created.push(id);
            Ok(Art { id, tag: job.tag })
        } else {
            let kind = if job.cancelled { ChipErrorKind::Cancelled } else { ChipErrorKind::Device };
            Err(ChipError::new(kind, "prepare failed"))
        };
        let art_id = result.as_ref().ok().map(|a| a.id);
        match self.table.handle(SlotInput::PrepareFinished { handle: job.handle, result }) {
            Ok(SlotReply::PrepareApplied) => {}
            other => panic!("a started prepare's completion answered {other:?}"),
        }
        self.check_table();
        if let Some(id) = art_id {
            let i = job.handle.index;
            if self.table.state(i) == Some(SlotState::Prepared)
                && self.table.generation(i) == Some(job.handle.generation)
            {
                self.published.insert(id);
            }
        }
        self.drain_table(None);
        true
    }

    /// The parent pops one completion from the ring.
    pub fn ring_pop(&mut self) -> bool {
        let Some(bytes) = self.ring.pop_front() else { return false };
        let r = Frame::decode_field(&bytes, FrameKind::Completion);
        self.parent_input(ParentInput::Completion(r)).ok();
        true
    }

    /// The child dies (or is killed after a liveness timeout).
    pub fn child_gone(&mut self, err: EndpointError) {
        if matches!(err, EndpointError::ChildDied) {
            self.reached.child_died = true;
        }
        self.child_alive = false;
        self.parent_input(ParentInput::ChildGone(err)).ok();
    }

    pub fn word_state(&self) -> Option<WordState> {
        WordState::decode(self.word)
    }

    /// Queued work the lanes still hold.
    pub fn lanes_idle(&self) -> bool {
        self.runs.is_empty() && self.prepares.is_empty()
    }

    /// A corrupt completion or a forged one (fault injection).
    pub fn push_raw(&mut self, bytes: Vec<u8>) {
        if self.ring.len() < RING_CAP {
            self.fault = true;
            self.ring.push_back(bytes);
        }
    }

    /// A forged task result in the task-result field (fault injection).
    pub fn forge_task_done(&mut self, dispatch: DispatchId) {
        self.fault = true;
        let frame = Frame::TaskResult(TaskResultFrame {
            id: FrameId { dispatch, slot: SlotIndex(0), generation: Generation(1) },
            result: Err(RunError::Cancelled),
        });
        self.write(field_for(FrameKind::TaskResult).expect("task result field"), &frame);
        if matches!(self.word_state(), Some(WordState::TaskRunning | WordState::TaskReady)) {
            self.word = WordState::TaskDone.encode();
        }
    }

    /// A forged completion naming `dispatch` (fault injection).
    pub fn forge_completion(&mut self, dispatch: DispatchId, freed: bool) {
        let settlement = if freed { Settlement::Freed } else { Settlement::Prepared(Ok(())) };
        let frame =
            Frame::Completion(CompletionFrame { id: FrameId { dispatch, ..FrameId::default_id() }, settlement });
        self.push_raw(frame.encode().expect("a completion encodes"));
    }
}

/// `CHIPLANE_FUZZ_TRACE=1` prints every executed output (read once).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("CHIPLANE_FUZZ_TRACE").is_some())
}

fn restore(map: &mut BTreeMap<Handle, FrameId>, handle: Handle, previous: Option<FrameId>) {
    match previous {
        Some(p) => {
            map.insert(handle, p);
        }
        None => {
            map.remove(&handle);
        }
    }
}

/// A zero identity (slot 0, generation 0) for forged frames.
trait DefaultId {
    fn default_id() -> FrameId;
}

impl DefaultId for FrameId {
    fn default_id() -> FrameId {
        FrameId { dispatch: DispatchId(0), slot: SlotIndex(0), generation: Generation(0) }
    }
}
