//! The L3 shape, one [`Link`] per chip child incarnation: callers -> parent
//! endpoint -> simulated shared memory ([`crate::memory`]) -> child endpoint
//! -> core's chip side ([`crate::lanes`]).
//!
//! Both endpoint machines are core's (`chiplane_core::mailbox::{parent,
//! child}`) and so is the chip side; this module plays the two processes'
//! loops and the reaper:
//! - each side executes one output (one shared-memory action) per step;
//!   with nothing to do it parks until the word it can see changes, the
//!   ring changes, or an input arrives (futex-like), and wakes after a
//!   random delay;
//! - the child's `AcceptTask` / `ApplyControl` become `ChipInput::Task` /
//!   `ChipInput::Control` of the chip side, and the chip side's
//!   `ChildEvent`s become `ChildInput::RunFinished` / `ChildInput::Settled`;
//! - the reaper: when the child died, the parent notices after a delay,
//!   swaps POISONED into the word (as `conc::port` does), then feeds
//!   `ChildGone`. A chip whose child was reaped may get a new incarnation
//!   (the world's `Restart`): a new `Link`, a fresh mailbox, a new
//!   `WorkerId`.
//!
//! The parent checks every handle with `CallableHandle::check_worker` against its
//! child's worker before it crosses the mailbox (frames carry no worker).
//!
//! Checks made here (reported to the checker): every word transition that
//! takes effect is in core's `LEGAL` table for that side *from the value
//! the word really had* (so a store that overwrites POISONED is caught);
//! rule 1 (TASK_RUNNING only after the task frame was copied out and the
//! slot pinned); rule 3 (no memory or domain control enters during
//! TASK_RUNNING, none is applied while the child holds a task); rule 9 (a
//! control's result is written as soon as it is applied); no poison unless
//! the child died; the child never pushes into a full ring; every driver
//! input is accepted.

use std::collections::{BTreeMap, VecDeque};

use chiplane_core::chipside::{ChipInput, ChipRefusal, ChipReply};
use chiplane_core::error::{ControlError, EndpointError, PoisonReason, RegisterError, RunError};
use chiplane_core::frame::{ControlOp, ControlReply, Frame, FrameKind};
use chiplane_core::mailbox::child::{ChildEndpoint, ChildInput, ChildOutput};
use chiplane_core::mailbox::parent::{
    register_outcome, unregister_error, ParentEndpoint, ParentError, ParentInput, ParentOutput,
};
use chiplane_core::mailbox::word::{legal, Side, WordState};
use chiplane_core::mailbox::Field;
use chiplane_core::{
    CallableHandle, CallableSpec, DispatchId, Generation, RunConfig, SlotIndex, TaskArgs, UnregisterError, WorkerId,
};

use crate::lanes::{Lanes, Note};
use crate::memory::{Memory, C, P};
use crate::sched::{Coverage, Ctx, Ev};
use crate::world::OpResult;

/// Track ids in the Chrome trace (per unit: `+ 16 * unit`).
pub const TRACK_WORD: u32 = 3;
pub const TRACK_PARENT: u32 = 4;
pub const TRACK_CHILD: u32 = 5;

/// What a link tells the world.
#[derive(Debug)]
pub enum L3Out {
    Resolve(u32, OpResult),
    /// Register op `op` was accepted: its caller now holds a registration
    /// of `callable` on `chip`.
    Hold {
        op: u32,
        caller: u32,
        handle: CallableHandle,
        callable: usize,
        chip: u32,
    },
    /// Run op `op` was pinned in the child; its handle names `callable`.
    Pinned(u32, Option<usize>),
}

#[derive(Debug)]
enum Dispatch {
    Register { op: u32, caller: u32, callable: usize, reply: Option<ControlReply> },
    Unregister { op: u32 },
    Memory { op: u32 },
    Run { op: u32 },
}

/// One chip child incarnation and its parent endpoint. See the module doc.
#[derive(Debug)]
pub struct Link {
    pub unit: u32,
    pub chip: u32,
    pub worker: WorkerId,
    parent: ParentEndpoint,
    child: ChildEndpoint,
    mem: Memory,
    parent_out: VecDeque<ParentOutput>,
    child_out: VecDeque<ChildOutput>,
    /// A step event is scheduled for the side.
    scheduled: [bool; 2],
    /// (word seq, ring len) at the side's last fruitless observe.
    parked_at: [Option<(u64, usize)>; 2],
    child_dead: bool,
    reaped: bool,
    fault_death: bool,
    dispatches: BTreeMap<DispatchId, Dispatch>,
    /// Rule 1 bookkeeping: the child copied out the published task / pinned it.
    task_copied: bool,
    task_pinned: bool,
    pub deaths: u64,
}

impl Link {
    pub fn new(cx: &mut Ctx, unit: u32, chip: u32, worker: WorkerId) -> Link {
        // Small rings, often 1 entry, so "ring full" (S11) is common.
        let ring_cap = if cx.rng.coin() { 1 } else { cx.rng.range(2, 4) as usize };
        let t = 16 * unit;
        cx.trace.name_track(TRACK_WORD + t, format!("chip {chip} mailbox word (unit {unit})"));
        cx.trace.name_track(TRACK_PARENT + t, format!("chip {chip} parent endpoint (unit {unit})"));
        cx.trace.name_track(TRACK_CHILD + t, format!("chip {chip} child endpoint (unit {unit})"));
        Link {
            unit,
            chip,
            worker,
            parent: ParentEndpoint::new(),
            child: ChildEndpoint::new(),
            mem: Memory::new(ring_cap),
            parent_out: VecDeque::new(),
            child_out: VecDeque::new(),
            scheduled: [false; 2],
            parked_at: [None; 2],
            child_dead: false,
            reaped: false,
            fault_death: false,
            dispatches: BTreeMap::new(),
            task_copied: false,
            task_pinned: false,
            deaths: 0,
        }
    }

    pub fn child_dead(&self) -> bool {
        self.child_dead
    }

    /// The child is dead and the parent has reaped it: nothing of this
    /// incarnation acts again.
    pub fn reaped(&self) -> bool {
        self.reaped
    }

    fn track(&self, t: u32) -> u32 {
        t + 16 * self.unit
    }

    // ---- shared memory -----------------------------------------------------

    fn wake(&mut self, cx: &mut Ctx, side: usize) {
        if side == C && self.child_dead {
            return;
        }
        if !self.scheduled[side] {
            self.scheduled[side] = true;
            let base = cx.opts.poll.sample(&mut cx.rng);
            // A slow side (descheduled process): the slow-lane fault applies.
            let d = cx.lane_latency(base);
            cx.at(d, if side == P { Ev::ParentStep(self.unit) } else { Ev::ChildStep(self.unit) });
        }
    }

    /// A store by `side` (a transition that took effect, or the poison swap).
    fn store(&mut self, cx: &mut Ctx, side: usize, v: u32) {
        let max = cx.opts.faults.word_delay_max_ns;
        let delay = if max > 0 && cx.faults_on { cx.rng.below(max + 1) } else { 0 };
        let at = self.mem.store(side, v, cx.now + delay);
        let other = 1 - side;
        if at == cx.now {
            self.mem.catch_up(cx.now, other);
            self.wake(cx, other);
        } else {
            cx.at(at - cx.now, Ev::WordVisible(self.unit, other as u32));
        }
        if cx.trace.recording() {
            let name = format!("{:?}", WordState::decode(v));
            cx.trace.instant(self.track(TRACK_WORD), name, cx.now);
        }
    }

    fn cas(&mut self, cx: &mut Ctx, side: usize, from: WordState, to: WordState) -> Result<(), u32> {
        let before = self.mem.transition(side, from, to)?;
        let s = if side == P { Side::Parent } else { Side::Child };
        let actual = WordState::decode(before);
        if actual != Some(from) || !legal(s, from, to) {
            cx.check.fail(|| {
                format!("{s:?} moved the word {actual:?} -> {to:?} (meant {from:?} -> {to:?}): not a legal transition")
            });
        }
        if s == Side::Parent && from == WordState::TaskRunning {
            // Rule 3: only chip-callable controls may enter during a task.
            if let Some(Frame::Control(c)) = self.mem.peek(Field::Control, FrameKind::Control) {
                if !c.op.allowed_during_task() {
                    cx.check.fail(|| format!("rule 3: {:?} control entered during TASK_RUNNING", c.op));
                }
                if matches!(c.op, ControlOp::Register { .. }) {
                    cx.cov.hit(1);
                }
            }
        }
        let rule1_ok = self.task_copied && self.task_pinned;
        if s == Side::Child && from == WordState::TaskReady && to == WordState::TaskRunning && !rule1_ok {
            let (c, p) = (self.task_copied, self.task_pinned);
            cx.check.fail(|| format!("rule 1: TASK_RUNNING published with copied={c} pinned={p}"));
        }
        if s == Side::Parent && to == WordState::TaskReady {
            self.task_copied = false;
            self.task_pinned = false;
        }
        self.store(cx, side, to.encode());
        Ok(())
    }

    fn write(&mut self, cx: &mut Ctx, field: Field, frame: &Frame) {
        if !self.mem.write(field, frame) {
            cx.check.fail(|| format!("frame did not encode into {field:?}"));
        }
    }

    // ---- submissions (after the world's routing) ----------------------------

    fn submit_control(
        &mut self,
        cx: &mut Ctx,
        slot: SlotIndex,
        generation: Generation,
        op: ControlOp,
        out: &mut Vec<L3Out>,
    ) -> Result<DispatchId, ControlError> {
        let r = self.parent.handle(ParentInput::SubmitControl { slot, generation, op });
        self.drain_parent(cx, out);
        self.parked_at[P] = None;
        self.wake(cx, P);
        match r {
            Ok(Some(d)) => Ok(d),
            Ok(None) => Err(ControlError::Endpoint(EndpointError::ShutDown)),
            Err(ParentError::Submit(e)) => Err(e.into()),
            Err(e) => {
                cx.check.fail(|| format!("parent refused a submission: {e:?}"));
                Err(ControlError::Endpoint(EndpointError::ShutDown))
            }
        }
    }

    pub fn submit_register(
        &mut self,
        cx: &mut Ctx,
        op: u32,
        caller: u32,
        k: usize,
        spec: &CallableSpec,
        out: &mut Vec<L3Out>,
    ) {
        let register = ControlOp::Register { spec: spec.clone() };
        match self.submit_control(cx, SlotIndex(0), Generation::NONE, register, out) {
            Ok(d) => {
                self.dispatches.insert(d, Dispatch::Register { op, caller, callable: k, reply: None });
            }
            Err(e) => out.push(L3Out::Resolve(op, OpResult::Register(Err(register_error(e))))),
        }
    }

    pub fn submit_unregister(&mut self, cx: &mut Ctx, op: u32, h: CallableHandle, out: &mut Vec<L3Out>) {
        // The handle must be this incarnation's (frames carry no worker).
        if let Err(e) = h.check_worker(self.worker) {
            out.push(L3Out::Resolve(op, OpResult::Unregister(Err(UnregisterError::Handle(e)))));
            return;
        }
        match self.submit_control(cx, h.index, h.generation, ControlOp::Unregister, out) {
            Ok(d) => {
                self.dispatches.insert(d, Dispatch::Unregister { op });
            }
            Err(e) => out.push(L3Out::Resolve(op, OpResult::Unregister(Err(unregister_error(e))))),
        }
    }

    pub fn submit_memory(&mut self, cx: &mut Ctx, op: u32, bytes: u64, free: bool, out: &mut Vec<L3Out>) {
        if self.mem.state().is_some_and(|w| w.task_outstanding()) {
            cx.cov.hit(8);
        }
        match self.submit_control(cx, SlotIndex(0), Generation::NONE, ControlOp::Memory { bytes, free }, out) {
            Ok(d) => {
                self.dispatches.insert(d, Dispatch::Memory { op });
            }
            Err(e) => out.push(L3Out::Resolve(op, OpResult::Memory(Err(e)))),
        }
    }

    pub fn submit_run(&mut self, cx: &mut Ctx, op: u32, h: CallableHandle, args: TaskArgs, out: &mut Vec<L3Out>) {
        if let Err(e) = h.check_worker(self.worker) {
            out.push(L3Out::Resolve(op, OpResult::Run(Err(RunError::Handle(e)))));
            return;
        }
        let input =
            ParentInput::SubmitTask { slot: h.index, generation: h.generation, config: RunConfig::default(), args };
        let r = self.parent.handle(input);
        self.drain_parent(cx, out);
        self.parked_at[P] = None;
        self.wake(cx, P);
        match r {
            Ok(Some(d)) => {
                self.dispatches.insert(d, Dispatch::Run { op });
            }
            Ok(None) => cx.check.fail(|| "task submission returned no dispatch".into()),
            Err(ParentError::Submit(e)) => out.push(L3Out::Resolve(op, OpResult::Run(Err(e.into())))),
            Err(e) => cx.check.fail(|| format!("parent refused a task: {e:?}")),
        }
    }

    // ---- the parent --------------------------------------------------------

    /// Move the parent's outputs to its queue; resolutions take effect at once.
    fn drain_parent(&mut self, cx: &mut Ctx, out: &mut Vec<L3Out>) {
        while let Some(o) = self.parent.poll() {
            match o {
                ParentOutput::TaskDone { dispatch, result } => match self.dispatches.remove(&dispatch) {
                    Some(Dispatch::Run { op }) => out.push(L3Out::Resolve(op, OpResult::Run(result))),
                    other => cx.check.fail(|| format!("TaskDone for {dispatch:?}: {other:?}")),
                },
                ParentOutput::ControlDone { dispatch, result } => self.control_done(cx, dispatch, result, out),
                ParentOutput::Settled { dispatch, result } => match self.dispatches.remove(&dispatch) {
                    Some(Dispatch::Register { op, reply: Some(reply), .. }) => {
                        let worker = self.worker;
                        let r = register_outcome(reply, result).map(|(index, generation)| CallableHandle {
                            worker,
                            index,
                            generation,
                        });
                        out.push(L3Out::Resolve(op, OpResult::Register(r)));
                    }
                    // The free of a final unregister (its op resolved at ControlDone).
                    Some(Dispatch::Unregister { .. }) | None => {}
                    other => cx.check.fail(|| format!("Settled for {dispatch:?}: {other:?}")),
                },
                o => self.parent_out.push_back(o),
            }
        }
    }

    fn control_done(
        &mut self,
        cx: &mut Ctx,
        dispatch: DispatchId,
        result: Result<ControlReply, ControlError>,
        out: &mut Vec<L3Out>,
    ) {
        let Some(d) = self.dispatches.remove(&dispatch) else {
            cx.check.fail(|| format!("ControlDone for unknown {dispatch:?}"));
            return;
        };
        match d {
            Dispatch::Register { op, caller, callable, .. } => match result {
                Ok(reply @ ControlReply::Registered { slot, generation, .. }) => {
                    let handle = CallableHandle { worker: self.worker, index: slot, generation };
                    out.push(L3Out::Hold { op, caller, handle, callable, chip: self.chip });
                    // Resolves on the settlement (or the endpoint's death),
                    // fresh or not: a slot still preparing or failed says so.
                    self.dispatches.insert(dispatch, Dispatch::Register { op, caller, callable, reply: Some(reply) });
                }
                Ok(other) => cx.check.fail(|| format!("register answered {other:?}")),
                Err(e) => out.push(L3Out::Resolve(op, OpResult::Register(Err(register_error(e))))),
            },
            Dispatch::Unregister { op } => {
                let r = match result {
                    Ok(ControlReply::Unregistered { last }) => {
                        if last {
                            // The free's settlement is still owed: keep the dispatch.
                            self.dispatches.insert(dispatch, Dispatch::Unregister { op });
                        }
                        Ok(last)
                    }
                    Ok(other) => {
                        cx.check.fail(|| format!("unregister answered {other:?}"));
                        Ok(false)
                    }
                    Err(e) => Err(unregister_error(e)),
                };
                out.push(L3Out::Resolve(op, OpResult::Unregister(r)));
            }
            Dispatch::Memory { op } => out.push(L3Out::Resolve(op, OpResult::Memory(result.map(|_| ())))),
            Dispatch::Run { .. } => cx.check.fail(|| "ControlDone for a task".into()),
        }
    }

    fn feed_parent(&mut self, cx: &mut Ctx, input: ParentInput, out: &mut Vec<L3Out>) {
        if let Err(e) = self.parent.handle(input) {
            cx.check.fail(|| format!("parent refused driver input: {e:?}"));
        }
        self.drain_parent(cx, out);
    }

    /// The parent is poisoned or its child gone (rule 12 applies).
    fn parent_finished(&self) -> bool {
        self.parent.poisoned().is_some() || self.parent.gone().is_some()
    }

    fn parent_step(&mut self, cx: &mut Ctx, lanes: &mut Lanes, out: &mut Vec<L3Out>) {
        self.mem.catch_up(cx.now, P);
        // Completions first: the parent drains the ring whenever it runs.
        if let Some(r) = self.mem.pop() {
            self.feed_parent(cx, ParentInput::Completion(r), out);
            self.wake(cx, C);
            self.wake(cx, P);
            return;
        }
        let Some(o) = self.parent_out.pop_front() else {
            if self.parent.wants_word() {
                let key = (self.mem.view(P).1, self.mem.ring_len());
                if self.parked_at[P] == Some(key) {
                    return; // park: nothing changed since the last look
                }
                let raw = self.mem.view(P).0;
                self.feed_parent(cx, ParentInput::Observed(raw), out);
                if self.parent_out.is_empty() {
                    self.parked_at[P] = Some(key);
                    return;
                }
                self.parked_at[P] = None;
                self.wake(cx, P);
            }
            return;
        };
        if cx.trace.recording() {
            cx.trace.instant(self.track(TRACK_PARENT), parent_label(&o), cx.now);
        }
        if o.is_memory() && self.parent_finished() {
            // Issued before the child was gone, executed after: the parent
            // must accept and ignore the answer (rule 12).
            cx.cov.hit(Coverage::STALE_ANSWER);
        }
        match o {
            ParentOutput::Write { field, frame } => self.write(cx, field, &frame),
            ParentOutput::Cas { from, to } => {
                let r = self.cas(cx, P, from, to);
                self.feed_parent(cx, ParentInput::CasResult(r), out);
            }
            ParentOutput::Read { field } => {
                let r = self.mem.read(field);
                self.feed_parent(cx, ParentInput::ReadResult(r), out);
            }
            ParentOutput::Poison { reason } => {
                if !(self.fault_death && reason == PoisonReason::ChildDied) {
                    cx.check.fail(|| format!("parent poisoned the endpoint: {reason:?}"));
                }
                self.store(cx, P, WordState::Poisoned.encode());
                if !self.reaped {
                    // Kill and reap the child, then report it gone.
                    self.kill(cx, lanes);
                    self.reaped = true;
                    self.feed_parent(cx, ParentInput::ChildGone(EndpointError::Poisoned(reason)), out);
                }
            }
            other => cx.check.fail(|| format!("parent output not drained: {other:?}")),
        }
        self.parked_at[P] = None;
        self.wake(cx, P);
    }

    // ---- the child ---------------------------------------------------------

    fn feed_child(&mut self, cx: &mut Ctx, input: ChildInput) {
        if self.child_dead {
            return;
        }
        if let Err(e) = self.child.handle(input) {
            cx.check.fail(|| format!("child refused driver input: {e:?}"));
        }
        while let Some(o) = self.child.poll() {
            self.child_out.push_back(o);
        }
        self.parked_at[C] = None;
        self.wake(cx, C);
    }

    fn kill(&mut self, cx: &mut Ctx, lanes: &mut Lanes) {
        if self.child_dead {
            return;
        }
        self.child_dead = true;
        self.child_out.clear();
        lanes.kill();
        self.deaths += 1;
        cx.cov.hit(9);
        cx.trace.instant(self.track(TRACK_CHILD), "child died", cx.now);
    }

    fn child_step(&mut self, cx: &mut Ctx, lanes: &mut Lanes, out: &mut Vec<L3Out>) {
        if self.child_dead {
            return;
        }
        self.mem.catch_up(cx.now, C);
        let Some(o) = self.child_out.pop_front() else {
            if self.child.wants_word() {
                let free = self.mem.ring_free();
                if free == 0 && self.child.completions_held() > 0 {
                    cx.cov.hit(11);
                }
                let key = (self.mem.view(C).1, free);
                if self.parked_at[C] == Some(key) {
                    return;
                }
                let word = self.mem.view(C).0;
                self.feed_child(cx, ChildInput::Observed { word, ring_free: free });
                if self.child_out.is_empty() {
                    self.parked_at[C] = Some(key);
                }
            }
            return;
        };
        // Fault: the child dies at this protocol step (mid-write: torn frame).
        if cx.faults_on && cx.rng.below(10_000) < u64::from(cx.opts.faults.child_death) {
            if let ChildOutput::Write { field, frame } = &o {
                let rng = &mut cx.rng;
                self.mem.write_torn(*field, frame, |len| rng.below(len as u64) as usize);
            }
            self.fault_death = true;
            self.kill(cx, lanes);
            let d = cx.rng.range(1_000, 500_000);
            cx.at(d, Ev::ChildReaped(self.unit));
            return;
        }
        if cx.trace.recording() {
            cx.trace.instant(self.track(TRACK_CHILD), child_label(&o), cx.now);
        }
        match o {
            ChildOutput::Read { field } => {
                let r = self.mem.read(field);
                if field == Field::Task && self.mem.view(C).0 == WordState::TaskReady.encode() {
                    self.task_copied = true;
                }
                self.feed_child(cx, ChildInput::ReadResult(r));
            }
            ChildOutput::AcceptTask(frame) => {
                let dispatch = frame.id.dispatch;
                let handle =
                    CallableHandle { worker: self.worker, index: frame.id.slot, generation: frame.id.generation };
                let answer = match lanes.feed(cx, ChipInput::Task(frame)) {
                    Ok(ChipReply::Queued) => {
                        self.task_pinned = true;
                        if let Some(Dispatch::Run { op }) = self.dispatches.get(&dispatch) {
                            let digest = cx.check.model(self.unit).digest_of(handle);
                            let callable = digest.and_then(|d| cx.opts.callables.iter().position(|c| c.digest == d));
                            out.push(L3Out::Pinned(*op, callable));
                        }
                        ChildInput::TaskAccepted
                    }
                    Err(ChipRefusal::Run(e)) => ChildInput::TaskRejected(e),
                    other => {
                        cx.check.fail(|| format!("the chip side answered a task with {other:?}"));
                        return;
                    }
                };
                self.feed_child(cx, answer);
            }
            ChildOutput::ApplyControl(frame) => {
                if !frame.op.allowed_during_task() && self.child.task().is_some() {
                    cx.check.fail(|| "memory control applied while the child holds a task".into());
                }
                let answer = match lanes.feed(cx, ChipInput::Control(frame)) {
                    Ok(ChipReply::Control(reply)) => Ok(reply),
                    Err(ChipRefusal::Control(e)) => Err(e),
                    other => {
                        cx.check.fail(|| format!("the chip side answered a control with {other:?}"));
                        return;
                    }
                };
                let before = self.child_out.len();
                self.feed_child(cx, ChildInput::ControlApplied(answer));
                // Rule 9: the result is written now, never after a lane wait.
                let wrote = self.child_out.iter().skip(before).any(|o| {
                    matches!(o, ChildOutput::Write { frame: Frame::ControlResult(_), .. } | ChildOutput::Poison { .. })
                });
                if !wrote && !self.child_dead {
                    cx.check.fail(|| "rule 9: the child did not answer an applied control at once".into());
                }
            }
            ChildOutput::Write { field, frame } => {
                let under_control =
                    matches!(self.mem.state(), Some(WordState::ControlReady { .. } | WordState::ControlDone { .. }));
                if under_control && matches!(frame, Frame::TaskResult(_)) {
                    cx.cov.hit(2);
                }
                self.write(cx, field, &frame)
            }
            ChildOutput::Cas { from, to } => {
                let r = self.cas(cx, C, from, to);
                self.feed_child(cx, ChildInput::CasResult(r));
            }
            ChildOutput::Push(frame) => {
                let pushed = match Frame::Completion(frame).encode() {
                    Ok(b) => self.mem.push(b),
                    Err(e) => {
                        cx.check.fail(|| format!("completion did not encode: {e:?}"));
                        return;
                    }
                };
                if !pushed {
                    cx.check.fail(|| "child pushed into a full ring".into());
                    return;
                }
                self.wake(cx, P);
                self.parked_at[P] = None;
            }
            ChildOutput::Poison { reason } => {
                cx.check.fail(|| format!("child poisoned the endpoint: {reason:?}"));
                self.store(cx, C, WordState::Poisoned.encode());
            }
        }
        self.wake(cx, C);
    }

    /// Route what the chip side owes to the child endpoint.
    fn route_notes(&mut self, cx: &mut Ctx, lanes: &mut Lanes) {
        while let Some(n) = lanes.notes.pop_front() {
            match n {
                Note::Event(chiplane_core::chipside::ChildEvent::RunFinished { dispatch, result }) => {
                    self.feed_child(cx, ChildInput::RunFinished { dispatch, result });
                }
                Note::Event(chiplane_core::chipside::ChildEvent::Settled { id, settlement }) => {
                    self.feed_child(cx, ChildInput::Settled { id, settlement });
                }
                Note::Resolve { op, .. } => {
                    cx.check.fail(|| format!("an L3 chip side resolved caller op {op} directly"));
                }
            }
        }
    }

    // ---- the world's hooks ---------------------------------------------------

    pub fn step(&mut self, ev: Ev, cx: &mut Ctx, lanes: &mut Lanes, out: &mut Vec<L3Out>) {
        match ev {
            Ev::ParentStep(_) => {
                self.scheduled[P] = false;
                self.parent_step(cx, lanes, out);
            }
            Ev::ChildStep(_) => {
                self.scheduled[C] = false;
                self.child_step(cx, lanes, out);
            }
            Ev::WordVisible(_, side) => {
                let side = side as usize;
                self.mem.catch_up(cx.now, side);
                self.wake(cx, side);
            }
            Ev::ChildReaped(_) if !self.reaped => {
                // The reaper makes sure the child cannot serve again (the
                // word goes POISONED, one way), then the parent learns.
                self.store(cx, P, WordState::Poisoned.encode());
                self.reaped = true;
                self.feed_parent(cx, ParentInput::ChildGone(EndpointError::ChildDied), out);
                self.parked_at[P] = None;
                self.wake(cx, P);
                if cx.rng.per_mille(cx.opts.faults.restart) {
                    let d = cx.rng.range(1_000, 2_000_000);
                    cx.at(d, Ev::Restart(self.chip));
                }
            }
            _ => {}
        }
    }

    /// Route the chip side's events; wake the parent if it has work.
    pub fn pump(&mut self, cx: &mut Ctx, lanes: &mut Lanes) -> bool {
        let routed = !lanes.notes.is_empty();
        if self.child_dead {
            lanes.notes.clear();
        } else {
            self.route_notes(cx, lanes);
        }
        if !self.parent_out.is_empty() {
            self.wake(cx, P);
        }
        routed
    }

    pub fn liveness(&self) -> Result<(), String> {
        if self.parent.outstanding() && !self.reaped {
            return Err(format!(
                "unit {}: parent still has work outstanding (word {:?}, {} settlements owed, child task {:?} \
                 control {:?})",
                self.unit,
                self.mem.state(),
                self.parent.settlements_owed(),
                self.child.task(),
                self.child.control()
            ));
        }
        if let Some((d, x)) = self.dispatches.iter().next() {
            return Err(format!("unit {}: dispatch {d:?} ({x:?}) never resolved", self.unit));
        }
        Ok(())
    }
}

fn parent_label(o: &ParentOutput) -> String {
    match o {
        ParentOutput::Write { field, frame } => format!("write {field:?} #{}", frame.id().dispatch.0),
        ParentOutput::Cas { from, to } => format!("cas {from:?} -> {to:?}"),
        ParentOutput::Read { field } => format!("read {field:?}"),
        ParentOutput::Poison { reason } => format!("poison {reason:?}"),
        other => format!("{other:?}").chars().take(60).collect(),
    }
}

fn child_label(o: &ChildOutput) -> String {
    match o {
        ChildOutput::Read { field } => format!("read {field:?}"),
        ChildOutput::AcceptTask(f) => format!("accept task #{}", f.id.dispatch.0),
        ChildOutput::ApplyControl(f) => format!("apply control #{}", f.id.dispatch.0),
        ChildOutput::Write { field, frame } => format!("write {field:?} #{}", frame.id().dispatch.0),
        ChildOutput::Cas { from, to } => format!("cas {from:?} -> {to:?}"),
        ChildOutput::Push(f) => format!("push completion #{}", f.id.dispatch.0),
        ChildOutput::Poison { reason } => format!("poison {reason:?}"),
    }
}

fn register_error(e: ControlError) -> RegisterError {
    match e {
        ControlError::Register(r) => r,
        ControlError::Endpoint(e) => RegisterError::Endpoint(e),
        ControlError::Unregister(_) | ControlError::TooLarge(_) => {
            RegisterError::Endpoint(EndpointError::Poisoned(PoisonReason::IdentityMismatch))
        }
    }
}
