//! The host: the user (bounded submissions), the parent's driver and the
//! parent's monitor.
//!
//! The driver takes the parent's outputs one at a time, in order. A
//! resolution or the poison verdict is acted on as soon as it is taken (it
//! touches no shared memory); a memory output (`Write`, `Cas`, `Read`) is
//! *issued*: taken and held until a later [`Action::Parent`] step executes
//! it and feeds the answer. The monitor (waitpid / liveness, another
//! thread) reaps a dead child at any moment ([`Action::ParentReaps`]): it
//! feeds `ChildGone` and carries out what the parent then owes (the poison
//! verdict, every resolution), while the driver may still hold an output it
//! took before, which it executes afterwards and answers.
//!
//! Rule 12 (parent.rs, call order item 6) says the endpoint withdraws the
//! memory outputs it had not handed out, accepts and ignores the answer to
//! one it had, and never hands out a memory output again once poisoned or
//! gone. That is checked here, not assumed: a memory output taken from a
//! poisoned or gone parent is a violation, and so is an answer it refuses.
//! A stale output the driver still executes meets whatever the word holds
//! then: a CAS against POISONED fails; a plain store (the `restore_by_store`
//! mutant) would erase it, which [`System::check`] reports (rule 10).

use std::collections::BTreeMap;

use chiplane_core::chip::RunConfig;
use chiplane_core::error::{ControlError, EndpointError, RunError};
use chiplane_core::frame::{ControlOp, ControlReply, Settlement};
use chiplane_core::ids::{DispatchId, Generation, SlotIndex};
use chiplane_core::kernels;
use chiplane_core::mailbox::parent::{ParentEndpoint, ParentInput, ParentOutput};
use chiplane_core::mailbox::word::{legal, Side, WordState};

use super::part::{fp128, Part};
use super::{args_of, spec_of, Action, Named, Op, Resolution, System, CALLABLES};

/// The user and the parent's driver (reads of the user's records go
/// through `Deref` to [`Book`]).
#[derive(Clone, Hash, Debug)]
pub struct Host {
    pub parent: Part<ParentEndpoint>,
    /// The memory output the driver took and has not executed yet.
    pub(super) held: Option<Part<ParentOutput>>,
    book: Part<Book>,
}

/// What the user submitted and learned.
#[derive(Clone, Hash, Debug)]
pub struct Book {
    pub ops_used: u8,
    /// The last handle the user got for each callable.
    pub user_handle: [Option<(SlotIndex, Generation)>; CALLABLES],
    pub submitted: BTreeMap<DispatchId, Op>,
    pub resolved: BTreeMap<DispatchId, Resolution>,
    /// Dispatch -> the settlement it received.
    pub settled: BTreeMap<DispatchId, Result<Settlement, EndpointError>>,
}

impl std::ops::Deref for Host {
    type Target = Book;
    fn deref(&self) -> &Book {
        &self.book
    }
}

impl Host {
    pub(super) fn new() -> Self {
        Host {
            parent: Part::new(ParentEndpoint::new()),
            held: None,
            book: Part::new(Book {
                ops_used: 0,
                user_handle: [None; CALLABLES],
                submitted: BTreeMap::new(),
                resolved: BTreeMap::new(),
                settled: BTreeMap::new(),
            }),
        }
    }

    /// The parent accepts submissions (not poisoned, not gone).
    pub fn open(&self) -> bool {
        self.parent.poisoned().is_none() && self.parent.gone().is_none()
    }

    /// Callable `c` was named by a submission already.
    pub(super) fn touched(&self, c: usize) -> bool {
        self.submitted.values().any(|op| matches!(op, Op::Register { callable } if *callable == c))
    }
}

impl System {
    /// A user action: submit, then let the driver take what it may.
    pub(super) fn user(&mut self, a: Action) {
        let h = self.host.book.edit();
        h.ops_used += 1;
        let (input, op) = match a {
            Action::UserRegister(c) => (
                ParentInput::SubmitControl {
                    slot: SlotIndex(0),
                    generation: Generation(0),
                    op: ControlOp::Register { spec: spec_of(c) },
                },
                Op::Register { callable: c as usize },
            ),
            Action::UserUnregister(c) => {
                let (slot, generation) = h.user_handle[c as usize].expect("enabled only with a handle");
                (
                    ParentInput::SubmitControl { slot, generation, op: ControlOp::Unregister },
                    Op::Unregister { callable: c as usize, handle: (slot, generation) },
                )
            }
            Action::UserRun(c) => {
                let (slot, generation) = h.user_handle[c as usize].expect("enabled only with a handle");
                (
                    ParentInput::SubmitTask { slot, generation, config: RunConfig::default(), args: args_of(c) },
                    Op::Run { callable: c as usize, handle: (slot, generation) },
                )
            }
            Action::UserMemory => (
                ParentInput::SubmitControl {
                    slot: SlotIndex(0),
                    generation: Generation(0),
                    op: ControlOp::Memory { bytes: 64, free: false },
                },
                Op::Memory,
            ),
            other => unreachable!("not a user action: {other:?}"),
        };
        match self.host.parent.edit().handle(input) {
            Ok(Some(d)) => {
                self.host.book.edit().submitted.insert(d, op);
            }
            other => return self.fail(format!("an open parent refused a submission: {other:?}")),
        }
        self.issue();
    }

    /// [`Action::Parent`]: execute the output the driver holds, or load the
    /// word for the parent.
    pub(super) fn parent_step(&mut self) {
        let Some(out) = self.host.held.take().map(|p| (*p).clone()) else {
            let word = self.mem.word;
            return self.feed_parent(ParentInput::Observed(word));
        };
        let answer = match out {
            ParentOutput::Write { field, frame } => {
                if let Err(e) = self.mem.write(field, &frame) {
                    self.fail(format!("the parent's {:?} frame does not fit {field:?}: {e:?}", frame.kind()));
                }
                return self.issue();
            }
            ParentOutput::Cas { from, to } => {
                let r = self.mem.transition(from, to);
                if r.is_ok() && !legal(Side::Parent, from, to) {
                    self.fail(format!("parent moved the word {from:?} -> {to:?}: not in the design's table"));
                }
                ParentInput::CasResult(r)
            }
            ParentOutput::Read { field } => ParentInput::ReadResult(self.mem.read(field)),
            other => unreachable!("only memory outputs are held: {other:?}"),
        };
        if self.host.open() {
            return self.feed_parent(answer);
        }
        // Rule 12, second half: the answer to an output handed out before
        // the poison or the death is accepted and changes nothing.
        self.reached.insert(Named::AnswerAfterGone);
        let before = self.host.parent.fp();
        self.feed_parent(answer);
        if self.host.parent.fp() != before {
            self.fail("the parent acted on an answer that reached it after its poison or the death (rule 12)".into());
        }
    }

    /// [`Action::ParentRing`]: pop one completion.
    pub(super) fn parent_ring(&mut self) {
        let Some(r) = self.mem.pop() else { return };
        self.feed_parent(ParentInput::Completion(r));
    }

    /// [`Action::ParentReaps`]: the monitor reaps the dead child, feeds
    /// `ChildGone` and carries out everything the parent then owes, whatever
    /// the driver holds.
    pub(super) fn parent_reaps(&mut self) {
        let err = match self.host.parent.poisoned() {
            Some(reason) => EndpointError::Poisoned(reason.clone()),
            None => EndpointError::ChildDied,
        };
        if let Err(e) = self.host.parent.edit().handle(ParentInput::ChildGone(err)) {
            self.fail(format!("parent refused ChildGone: {e:?}"));
        }
        self.take_outputs(true);
    }

    fn feed_parent(&mut self, input: ParentInput) {
        if let Err(e) = self.host.parent.edit().handle(input) {
            self.fail(format!("parent refused its driver's input: {e:?}"));
        }
        self.issue();
    }

    /// The driver takes the parent's outputs until one is a memory output
    /// (held for a later step) or none is left.
    fn issue(&mut self) {
        self.take_outputs(false);
    }

    /// Take outputs in order; `monitor`: all of them (a memory output among
    /// them, the parent being gone, breaks rule 12), else up to the first
    /// memory output, which the driver holds.
    fn take_outputs(&mut self, monitor: bool) {
        while monitor || self.host.held.is_none() {
            let Some(out) = self.host.parent.edit().poll() else { return };
            match out {
                o if o.is_memory() => {
                    if !self.host.open() {
                        return self.fail(format!(
                            "the parent handed out {o:?} after it was poisoned or told the child is gone (rule 12)"
                        ));
                    }
                    self.host.held = Some(Part::new(o));
                }
                ParentOutput::TaskDone { dispatch, result } => self.resolve(dispatch, Resolution::Task(result)),
                ParentOutput::ControlDone { dispatch, result } => {
                    let h = self.host.book.edit();
                    if let (Some(Op::Register { callable }), Ok(ControlReply::Registered { slot, generation, .. })) =
                        (h.submitted.get(&dispatch), &result)
                    {
                        h.user_handle[*callable] = Some((*slot, *generation));
                    }
                    self.resolve(dispatch, Resolution::Control(result));
                }
                ParentOutput::Settled { dispatch, result } => {
                    if result.is_err() && !self.fault_injected {
                        self.fail(format!("settlement of {dispatch:?} failed without a fault: {result:?}"));
                    }
                    if self.host.book.edit().settled.insert(dispatch, result).is_some() {
                        self.fail(format!("dispatch {dispatch:?} settled twice"));
                    }
                }
                ParentOutput::Poison { reason } => {
                    if !self.fault_injected {
                        self.fail(format!("parent poisoned without a fault: {reason:?}"));
                    }
                    // Swap POISONED in; kill the child (the reap is a later step).
                    self.mem.poison();
                    self.child.dead = true;
                }
                other => unreachable!("memory outputs handled above: {other:?}"),
            }
        }
    }

    fn resolve(&mut self, d: DispatchId, r: Resolution) {
        let h = self.host.book.edit();
        let Some(op) = h.submitted.get(&d).cloned() else {
            return self.fail(format!("resolution for unknown dispatch {d:?}"));
        };
        if h.resolved.insert(d, r.clone()).is_some() {
            return self.fail(format!("dispatch {d:?} resolved twice"));
        }
        match (&r, op) {
            (Resolution::Task(Ok(out)), Op::Run { callable, .. }) => {
                let c = callable as u8;
                let want = kernels::reference(&spec_of(c), &args_of(c)).expect("model callables are valid");
                if kernels::max_diff(out, &want) != 0.0 {
                    self.fail(format!("run {d:?} returned {out:?}, not its callable's result {want:?}"));
                }
            }
            (Resolution::Task(Err(RunError::Endpoint(e))) | Resolution::Control(Err(ControlError::Endpoint(e))), _)
                if !self.fault_injected =>
            {
                self.fail(format!("dispatch {d:?} failed with an endpoint error without a fault: {e:?}"));
            }
            _ => {}
        }
    }

    /// Would loading the word change the parent? (A load that changes
    /// nothing is not a step: quiescence is "no step changes anything".)
    pub(super) fn parent_observe_changes(&self) -> bool {
        let before = self.host.parent.fp();
        let mut p = (*self.host.parent).clone();
        let _ = p.handle(ParentInput::Observed(self.mem.word));
        fp128(&p) != before
    }

    /// The word as the checks see it.
    pub(super) fn word_state(&self) -> Option<WordState> {
        self.mem.word_state()
    }
}
