//! The composition the `mailbox_protocol` target drives: core's two pure
//! endpoint machines, the shared region they talk through, and the chip
//! child (its serve loop over core's `ChipSide` and a model device, whose
//! lanes the fuzz input steps), with every check that can be made at the
//! moment something happens. The end-of-input checks live in `mod.rs`.
//!
//! The region, the serve loop and the chip are the ones the exhaustive
//! checker composes (`crate::system`: [`Memory`] with core's
//! `WordState::apply`, `RingIndices`, `field_for`, `Frame::encode_into` /
//! `decode_field`; [`ChildProc`] with core's `ChildEndpoint` and
//! `ChipSide`); this module adds the parent's driver with its own checks
//! and the faults.

use std::collections::BTreeMap;

use chiplane_core::chip::{CallableSpec, ChipError, TaskArgs};
use chiplane_core::chipside::ChildEvent;
use chiplane_core::frame::{CompletionFrame, ControlReply, Frame, FrameId, FrameKind, Settlement, TaskResultFrame};
use chiplane_core::mailbox::field_for;
use chiplane_core::mailbox::parent::{ParentEndpoint, ParentError, ParentInput, ParentOutput};
use chiplane_core::mailbox::word::{legal, Side, WordState};
use chiplane_core::slot::{SlotLimits, SlotState};
use chiplane_core::{ControlError, DispatchId, EndpointError, Generation, RunError, RunOutput, SlotIndex, WorkerId};

use crate::system::{Artifact, ChildProc, Env, Memory, ModelChip, Named, Served};

/// The child's worker id (handles crossing the mailbox carry slot and
/// generation only; the child adds its own worker).
pub const W: WorkerId = WorkerId(7);
/// Small on purpose: a short input fills the table, retires slots and fills
/// the ring.
pub const CAPACITY: usize = 3;
pub const GENERATION_MAX: u32 = 4;
pub const RING_CAP: usize = 2;

/// What a run of `value` on an artifact of `tag` outputs.
pub fn run_output(value: f32, tag: u64) -> RunOutput {
    RunOutput { tensors: vec![vec![value + 1000.0 * tag as f32]] }
}

/// The model device's run: the task's first value through the artifact's tag.
fn device_run(a: &Artifact, args: &TaskArgs) -> Result<RunOutput, ChipError> {
    let value = args.tensors.first().and_then(|t| t.first()).copied().unwrap_or(0.0);
    Ok(run_output(value, u64::from(a.callable)))
}

/// The tag of a spec (its first parameter; `mod.rs::spec`).
fn tag_of_spec(spec: &CallableSpec) -> u8 {
    spec.params.first().copied().unwrap_or(0) as u8
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
    /// The shared region.
    pub mem: Memory,
    pub parent: ParentEndpoint,
    /// The chip child: serve loop, chip side, model device.
    pub child: ChildProc,
    // what the backend did, per dispatch (the reference for transport)
    pub backend_task: BTreeMap<DispatchId, Result<RunOutput, RunError>>,
    pub backend_control: BTreeMap<DispatchId, Result<ControlReply, ControlError>>,
    pub backend_settlement: BTreeMap<DispatchId, Settlement>,
    // what callers learned, in order
    pub resolutions: Vec<(DispatchId, Resolution)>,
    /// A fault was injected: poison and endpoint errors are allowed.
    pub fault: bool,
    pub reached: Reached,
    /// Named states the serve loop reported.
    named: crate::system::Reached,
}

impl Default for System {
    fn default() -> Self {
        Self::new()
    }
}

impl System {
    pub fn new() -> Self {
        let limits = SlotLimits { capacity: CAPACITY, generation_max: Generation(GENERATION_MAX) };
        System {
            mem: Memory::new(RING_CAP),
            parent: ParentEndpoint::new(),
            child: ChildProc::new(ModelChip::new(W, limits)),
            backend_task: BTreeMap::new(),
            backend_control: BTreeMap::new(),
            backend_settlement: BTreeMap::new(),
            resolutions: Vec::new(),
            fault: false,
            reached: Reached::default(),
            named: crate::system::Reached::default(),
        }
    }

    /// The child process is alive (not killed, not dead).
    pub fn child_alive(&self) -> bool {
        !self.child.dead
    }

    /// Feed the parent; it must never call its driver's answer unexpected.
    pub fn parent_input(&mut self, input: ParentInput) -> Result<Option<DispatchId>, ParentError> {
        let r = self.parent.handle(input);
        if let Err(ParentError::Unexpected(u)) = &r {
            // Rule 12: an answer to an output handed out before the poison or
            // the death is accepted and ignored, never refused.
            panic!("parent refused an answer its driver owed it: {u:?}");
        }
        r
    }

    // ---- the parent's driver ---------------------------------------------

    /// One parent step: execute its next output, or load the word for it.
    /// Returns whether anything happened.
    pub fn parent_step(&mut self) -> bool {
        let live = self.parent.poisoned().is_none() && self.parent.gone().is_none();
        if let Some(o) = self.parent.poll() {
            self.exec_parent(o, live);
            return true;
        }
        if self.parent.wants_word() {
            let w = self.mem.word;
            self.parent_input(ParentInput::Observed(w)).ok();
            if let Some(o) = self.parent.poll() {
                let live = self.parent.poisoned().is_none() && self.parent.gone().is_none();
                self.exec_parent(o, live);
                return true;
            }
        }
        false
    }

    fn exec_parent(&mut self, o: ParentOutput, live: bool) {
        if trace() {
            eprintln!("parent {o:?}   [word {:?}]", self.word_state());
        }
        assert!(live || !o.is_memory(), "the parent handed out {o:?} after poison or death (rule 12)");
        match o {
            ParentOutput::Write { field, frame } => {
                assert!(
                    matches!(frame.kind(), FrameKind::Task | FrameKind::Control),
                    "parent wrote a {:?} frame",
                    frame.kind()
                );
                if let Err(e) = self.mem.write(field, &frame) {
                    panic!("a machine asked to write a frame that does not fit {field:?}: {e:?} ({frame:?})");
                }
            }
            ParentOutput::Cas { from, to } => {
                let answer = self.mem.transition(from, to);
                if answer.is_ok() {
                    assert!(legal(Side::Parent, from, to), "parent moved the word {from:?} -> {to:?}: not in LEGAL");
                    if to == (WordState::ControlReady { under_task: true }) {
                        self.reached.control_under_task = true;
                        match self.mem.read(field_for(FrameKind::Control).expect("control field")) {
                            Ok(Frame::Control(c)) => assert!(
                                c.op.allowed_during_task(),
                                "a {:?} control entered during TASK_RUNNING (rule 3)",
                                c.op
                            ),
                            other => panic!("parent published a control field holding {other:?}"),
                        }
                    }
                }
                self.parent_input(ParentInput::CasResult(answer)).ok();
            }
            ParentOutput::Read { field } => {
                let r = self.mem.read(field);
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
                self.mem.poison();
                if self.parent.gone().is_some() {
                    // The child is gone (died, or killed after a liveness
                    // timeout): the parent only marks the word POISONED.
                    return;
                }
                self.reached.poisoned = true;
                assert!(self.fault, "parent poisoned the endpoint with no fault injected: {reason:?}");
                self.child.dead = true;
                self.parent_input(ParentInput::ChildGone(EndpointError::Poisoned(reason))).ok();
            }
        }
    }

    // ---- the child ----------------------------------------------------------

    /// One serve-loop step of the child. Returns whether it did anything
    /// (a word load counts only if it left work queued).
    pub fn child_step(&mut self) -> bool {
        let mut env = Env { fault: self.fault, reached: &mut self.named, expect: &|_| None, trace: trace() };
        let served = match self.child.serve_step(&mut self.mem, &mut env) {
            Ok(s) => s,
            Err(v) => panic!("{v}"),
        };
        self.note();
        match served {
            Served::Nothing => false,
            Served::Observed => self.child.outputs_queued() > 0,
            Served::Output => true,
            Served::ControlApplied { dispatch, result } => {
                self.backend_control.insert(dispatch, result);
                true
            }
            Served::TaskRejected { dispatch, error } => {
                self.backend_task.insert(dispatch, Err(error));
                true
            }
            Served::Event(ChildEvent::RunFinished { dispatch, result }) => {
                self.backend_task.insert(dispatch, result);
                true
            }
            Served::Event(ChildEvent::Settled { id, settlement }) => {
                let previous = self.backend_settlement.insert(id.dispatch, settlement);
                assert!(previous.is_none(), "dispatch {:?} settled twice by the backend", id.dispatch);
                true
            }
        }
    }

    /// Named states after a child-side step.
    fn note(&mut self) {
        let table = self.child.chip.side.table();
        let any = |s: SlotState| (0..CAPACITY as u32).any(|i| table.state(SlotIndex(i)) == Some(s));
        self.reached.tombstoned |= any(SlotState::Unregistering);
        self.reached.cancelled_prepare |= any(SlotState::Cancelling);
        self.reached.deferred_task_done |= self.named.contains(Named::DeferredTaskDone);
        self.reached.ring_full |= self.named.contains(Named::RingFull);
        if let Err(e) = table.check_invariants() {
            panic!("slot table invariant broken: {e}");
        }
    }

    // ---- the lanes -------------------------------------------------------

    /// The device finishes the run on the chip, if any (`fail`: with a
    /// chip error).
    pub fn run_lane(&mut self, fail: bool) -> bool {
        if self.child.dead {
            return false;
        }
        let done = self.child.finish_run(!fail, device_run).unwrap_or_else(|v| panic!("{v}"));
        self.note();
        done
    }

    /// The device finishes the register lane's job (a prepare: `ok` or an
    /// error; a release).
    pub fn register_lane(&mut self, ok: bool) -> bool {
        if self.child.dead {
            return false;
        }
        let done = self.child.finish_register(ok, tag_of_spec).unwrap_or_else(|v| panic!("{v}"));
        self.note();
        done
    }

    /// The parent pops one completion from the ring.
    pub fn ring_pop(&mut self) -> bool {
        let Some(r) = self.mem.pop() else { return false };
        self.parent_input(ParentInput::Completion(r)).ok();
        true
    }

    /// The child dies (or is killed after a liveness timeout).
    pub fn child_gone(&mut self, err: EndpointError) {
        if matches!(err, EndpointError::ChildDied) {
            self.reached.child_died = true;
        }
        self.child.dead = true;
        self.parent_input(ParentInput::ChildGone(err)).ok();
    }

    pub fn word_state(&self) -> Option<WordState> {
        self.mem.word_state()
    }

    /// Nothing queued, running or owed on the chip.
    pub fn lanes_idle(&self) -> bool {
        self.child.chip_idle()
    }

    /// Garbage or a forged entry lands in the ring (fault injection).
    pub fn push_raw(&mut self, bytes: Vec<u8>) {
        if self.mem.push_raw(&bytes) {
            self.fault = true;
        }
    }

    /// A forged task result in the task-result field (fault injection).
    pub fn forge_task_done(&mut self, dispatch: DispatchId) {
        self.fault = true;
        let frame = Frame::TaskResult(TaskResultFrame {
            id: FrameId { dispatch, slot: SlotIndex(0), generation: Generation(1) },
            result: Err(RunError::Cancelled),
        });
        let field = field_for(FrameKind::TaskResult).expect("task result field");
        self.mem.write(field, &frame).expect("a forged task result fits");
        if matches!(self.word_state(), Some(WordState::TaskRunning | WordState::TaskReady)) {
            self.mem.word = WordState::TaskDone.encode();
        }
    }

    /// A forged completion naming `dispatch` (fault injection).
    pub fn forge_completion(&mut self, dispatch: DispatchId, freed: bool) {
        let settlement = if freed { Settlement::Freed } else { Settlement::Prepared(Ok(())) };
        let id = FrameId { dispatch, slot: SlotIndex(0), generation: Generation(0) };
        let frame = Frame::Completion(CompletionFrame { id, settlement });
        self.push_raw(frame.encode().expect("a completion encodes"));
    }
}

/// `CHIPLANE_FUZZ_TRACE=1` prints every executed output (read once).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("CHIPLANE_FUZZ_TRACE").is_some())
}
