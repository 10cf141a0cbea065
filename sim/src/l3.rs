//! The L3 shape: callers -> parent endpoint -> simulated shared memory ->
//! child endpoint -> chip side (slot table, lanes, sim chip).
//!
//! Both endpoint machines are core's (`chiplane_core::mailbox::{parent,
//! child}`), driven only through `handle`/`poll`. This module plays the
//! shared memory and the two processes' loops:
//! - the **state word**: one `u32`; a CAS acts on the true value; a plain
//!   load returns the loading side's *view*, which lags the other side's
//!   stores by a random delay (fault: delayed visibility), never goes
//!   backwards, and catches up at once when that side's own CAS fails;
//! - the **fields**: byte buffers of core's capacities; frames are encoded
//!   into them and decoded out of them with `chiplane_core::frame`, and the
//!   field for each frame kind comes from `chiplane_core::mailbox::field_for`
//!   (so a torn write leaves real torn bytes);
//! - the **completion ring**: a bounded FIFO of encoded completion frames;
//! - the **loops**: each side executes one output (one shared-memory
//!   action) per step; with nothing to do it parks until the word it can
//!   see changes, the ring changes, or an input arrives (futex-like), and
//!   wakes after a random delay.
//!
//! Checks made here (reported to the checker): every CAS that succeeds is a
//! transition design.md section 4 allows for that side (its own table, not
//! `word.rs`); rule 1 (TASK_RUNNING only after the task frame was copied out
//! and the slot pinned); rule 3 (no memory or domain control enters during
//! TASK_RUNNING); rule 9 (a control's result is written as soon as it is
//! applied, without waiting for a lane); no poison unless the child died;
//! the child never pushes into a full ring; every driver input is accepted.

use std::collections::{BTreeMap, VecDeque};

use chiplane_core::error::{ControlError, EndpointError, PoisonReason, RegisterError, RunError};
use chiplane_core::frame::{
    ControlOp, ControlReply, Frame, FrameError, FrameId, FrameKind, Settlement, CONTROL_FRAME_BYTES,
    CONTROL_RESULT_BYTES, TASK_FRAME_BYTES, TASK_RESULT_BYTES,
};
use chiplane_core::mailbox::child::{ChildEndpoint, ChildInput, ChildOutput};
use chiplane_core::mailbox::parent::{register_outcome, unregister_error, ParentEndpoint, ParentInput, ParentOutput};
use chiplane_core::mailbox::word::{Side, WordState};
use chiplane_core::mailbox::{kind_in, Field};
use chiplane_core::slot::{SlotError, SlotInput, SlotReply};
use chiplane_core::{
    CallableSpec, DispatchId, Generation, Handle, HandleError, RunConfig, SlotIndex, TargetKind, TaskArgs,
    UnregisterError,
};

use crate::chipside::{ChipSide, Note};
use crate::sched::{Ctx, Ev};
use crate::world::{OpResult, WORKER};

pub const TRACK_PARENT: u32 = 4;
pub const TRACK_CHILD: u32 = 5;
pub const TRACK_WORD: u32 = 3;

const P: usize = 0;
const C: usize = 1;

/// What the L3 shape tells the world.
#[derive(Debug)]
pub enum L3Out {
    Resolve(u32, OpResult),
    /// The caller now holds a registration (from a register's reply).
    Hold {
        caller: u32,
        handle: Handle,
        callable: usize,
    },
    /// Wake a caller waiting for a register's acceptance.
    WakeCaller(u32),
    /// The run op was pinned in the child; its handle names `callable`.
    Pinned(u32, Option<usize>),
}

#[derive(Debug)]
enum Dispatch {
    Register { op: u32, caller: u32, callable: usize, reply: Option<ControlReply> },
    Unregister { op: u32 },
    Memory { op: u32 },
    Run { op: u32 },
}

/// The L3 shape. See the module doc.
#[derive(Debug)]
pub struct L3 {
    parent: ParentEndpoint,
    child: ChildEndpoint,
    word: u32,
    store_seq: u64,
    /// Per side: (value, store seq) it sees.
    view: [(u32, u64); 2],
    /// Per side: stores of the other side not yet visible (at, value, seq).
    incoming: [VecDeque<(u64, u32, u64)>; 2],
    fields: [Vec<u8>; 4],
    ring: VecDeque<Vec<u8>>,
    ring_cap: usize,
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
    settle_dispatch: BTreeMap<Handle, DispatchId>,
    free_dispatch: BTreeMap<Handle, DispatchId>,
    accepted: BTreeMap<u32, Handle>,
    acceptance_waiters: BTreeMap<u32, u32>,
    out: Vec<L3Out>,
    /// Rule 1 bookkeeping: the child copied out the published task / pinned it.
    task_copied: bool,
    task_pinned: bool,
    pub deaths: u64,
}

fn fi(f: Field) -> usize {
    match f {
        Field::Task => 0,
        Field::Control => 1,
        Field::TaskResult => 2,
        Field::ControlResult => 3,
    }
}

/// Design.md section 4's table: may `side` move the word `from -> to` by CAS?
pub fn legal(side: Side, from: WordState, to: WordState) -> bool {
    use WordState::*;
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

impl L3 {
    pub fn new(cx: &mut Ctx) -> L3 {
        // Small rings, often 1 entry, so "ring full" (S11) is common.
        let ring_cap = if cx.rng.coin() { 1 } else { cx.rng.range(2, 4) as usize };
        cx.trace.name_track(TRACK_WORD, "mailbox word");
        cx.trace.name_track(TRACK_PARENT, "parent endpoint");
        cx.trace.name_track(TRACK_CHILD, "child endpoint");
        L3 {
            parent: ParentEndpoint::new(),
            child: ChildEndpoint::new(),
            word: WordState::Idle.encode(),
            store_seq: 0,
            view: [(WordState::Idle.encode(), 0); 2],
            incoming: [VecDeque::new(), VecDeque::new()],
            fields: [
                vec![0; TASK_FRAME_BYTES],
                vec![0; CONTROL_FRAME_BYTES],
                vec![0; TASK_RESULT_BYTES],
                vec![0; CONTROL_RESULT_BYTES],
            ],
            ring: VecDeque::new(),
            ring_cap,
            parent_out: VecDeque::new(),
            child_out: VecDeque::new(),
            scheduled: [false; 2],
            parked_at: [None; 2],
            child_dead: false,
            reaped: false,
            fault_death: false,
            dispatches: BTreeMap::new(),
            settle_dispatch: BTreeMap::new(),
            free_dispatch: BTreeMap::new(),
            accepted: BTreeMap::new(),
            acceptance_waiters: BTreeMap::new(),
            out: Vec::new(),
            task_copied: false,
            task_pinned: false,
            deaths: 0,
        }
    }

    pub fn child_dead(&self) -> bool {
        self.child_dead
    }

    pub fn take_resolved(&mut self) -> Vec<L3Out> {
        std::mem::take(&mut self.out)
    }

    pub fn accepted(&self, op: u32) -> Option<Handle> {
        self.accepted.get(&op).copied()
    }

    pub fn notify_acceptance(&mut self, op: u32, caller: u32) {
        if self.accepted.contains_key(&op) {
            self.out.push(L3Out::WakeCaller(caller));
        } else {
            self.acceptance_waiters.insert(op, caller);
        }
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
            cx.at(d, if side == P { Ev::ParentStep } else { Ev::ChildStep });
        }
    }

    /// A store by `side` (a CAS that succeeded, or the poison swap).
    fn store(&mut self, cx: &mut Ctx, side: usize, v: u32) {
        self.word = v;
        self.store_seq += 1;
        let seq = self.store_seq;
        self.view[side] = (v, seq);
        let other = 1 - side;
        let max = cx.opts.faults.word_delay_max_ns;
        let delay = if max > 0 && cx.faults_on { cx.rng.below(max + 1) } else { 0 };
        let at = self.incoming[other].back().map_or(0, |e| e.0).max(cx.now + delay);
        self.incoming[other].push_back((at, v, seq));
        if at == cx.now {
            self.catch_up(cx.now, other);
            self.wake(cx, other);
        } else {
            cx.at(at - cx.now, Ev::WordVisible(other as u32));
        }
        if cx.trace.recording() {
            let name = format!("{:?}", WordState::decode(v));
            cx.trace.instant(TRACK_WORD, name, cx.now);
        }
    }

    fn catch_up(&mut self, now: u64, side: usize) {
        while let Some(&(at, v, seq)) = self.incoming[side].front() {
            if at > now {
                break;
            }
            self.incoming[side].pop_front();
            if seq > self.view[side].1 {
                self.view[side] = (v, seq);
            }
        }
    }

    fn cas(&mut self, cx: &mut Ctx, side: usize, from: WordState, to: WordState) -> Result<(), u32> {
        if self.word != from.encode() {
            // A failed CAS reads the true value.
            self.view[side] = (self.word, self.store_seq);
            return Err(self.word);
        }
        let s = if side == P { Side::Parent } else { Side::Child };
        if !legal(s, from, to) {
            cx.check.fail(|| format!("{s:?} moved the word {from:?} -> {to:?}: not a legal transition"));
        }
        if s == Side::Parent && from == WordState::TaskRunning {
            // Rule 3: only chip-callable controls may enter during a task.
            if let Ok(Frame::Control(c)) = Frame::decode_field(&self.fields[fi(Field::Control)], FrameKind::Control) {
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

    fn write(&mut self, cx: &mut Ctx, field: Field, frame: &Frame, torn: bool) {
        let buf = &mut self.fields[fi(field)];
        if torn {
            // The writer dies half-way: a prefix of the bytes lands.
            if let Ok(bytes) = frame.encode() {
                let n = cx.rng.below(bytes.len() as u64) as usize;
                buf[..n].copy_from_slice(&bytes[..n]);
            }
            return;
        }
        if let Err(e) = frame.encode_into(buf) {
            cx.check.fail(|| format!("frame did not encode into {field:?}: {e:?}"));
        }
    }

    fn read(&self, field: Field) -> Result<Frame, FrameError> {
        Frame::decode_field(&self.fields[fi(field)], kind_in(field))
    }

    // ---- submissions -------------------------------------------------------

    fn submit_control(
        &mut self,
        cx: &mut Ctx,
        slot: SlotIndex,
        generation: Generation,
        op: ControlOp,
    ) -> Result<DispatchId, ControlError> {
        let r = self.parent.handle(ParentInput::SubmitControl { slot, generation, op });
        self.drain_parent(cx);
        self.parked_at[P] = None;
        self.wake(cx, P);
        match r {
            Ok(Some(d)) => Ok(d),
            Ok(None) => Err(ControlError::Endpoint(EndpointError::ShutDown)),
            Err(chiplane_core::mailbox::parent::ParentError::Submit(e)) => Err(e.into()),
            Err(e) => {
                cx.check.fail(|| format!("parent refused a submission: {e:?}"));
                Err(ControlError::Endpoint(EndpointError::ShutDown))
            }
        }
    }

    pub fn submit_register(&mut self, cx: &mut Ctx, op: u32, caller: u32, k: usize, spec: &CallableSpec) {
        let r = self.submit_control(cx, SlotIndex(0), Generation(0), ControlOp::Register { spec: spec.clone() });
        match r {
            Ok(d) => {
                self.dispatches.insert(d, Dispatch::Register { op, caller, callable: k, reply: None });
            }
            Err(e) => self.out.push(L3Out::Resolve(op, OpResult::Register(Err(register_error(e))))),
        }
    }

    pub fn submit_unregister(&mut self, cx: &mut Ctx, op: u32, h: Handle) {
        if h.worker != WORKER {
            let e = UnregisterError::Handle(HandleError::Foreign { expected: WORKER, got: h.worker });
            self.out.push(L3Out::Resolve(op, OpResult::Unregister(Err(e))));
            return;
        }
        match self.submit_control(cx, h.index, h.generation, ControlOp::Unregister) {
            Ok(d) => {
                self.dispatches.insert(d, Dispatch::Unregister { op });
            }
            Err(e) => self.out.push(L3Out::Resolve(op, OpResult::Unregister(Err(unregister_error(e))))),
        }
    }

    pub fn submit_memory(&mut self, cx: &mut Ctx, op: u32, bytes: u64, free: bool) {
        if WordState::decode(self.word).is_some_and(|w| w.task_outstanding()) {
            cx.cov.hit(8);
        }
        match self.submit_control(cx, SlotIndex(0), Generation(0), ControlOp::Memory { bytes, free }) {
            Ok(d) => {
                self.dispatches.insert(d, Dispatch::Memory { op });
            }
            Err(e) => self.out.push(L3Out::Resolve(op, OpResult::Memory(Err(e)))),
        }
    }

    pub fn submit_run(&mut self, cx: &mut Ctx, op: u32, h: Handle, args: TaskArgs) {
        if h.worker != WORKER {
            let e = RunError::Handle(HandleError::Foreign { expected: WORKER, got: h.worker });
            self.out.push(L3Out::Resolve(op, OpResult::Run(Err(e))));
            return;
        }
        let input =
            ParentInput::SubmitTask { slot: h.index, generation: h.generation, config: RunConfig::default(), args };
        let r = self.parent.handle(input);
        self.drain_parent(cx);
        self.parked_at[P] = None;
        self.wake(cx, P);
        match r {
            Ok(Some(d)) => {
                self.dispatches.insert(d, Dispatch::Run { op });
            }
            Ok(None) => cx.check.fail(|| "task submission returned no dispatch".into()),
            Err(chiplane_core::mailbox::parent::ParentError::Submit(e)) => {
                self.out.push(L3Out::Resolve(op, OpResult::Run(Err(e.into()))))
            }
            Err(e) => cx.check.fail(|| format!("parent refused a task: {e:?}")),
        }
    }

    // ---- the parent --------------------------------------------------------

    /// Move the parent's outputs to its queue; resolutions take effect at once.
    fn drain_parent(&mut self, cx: &mut Ctx) {
        while let Some(o) = self.parent.poll() {
            match o {
                ParentOutput::TaskDone { dispatch, result } => match self.dispatches.remove(&dispatch) {
                    Some(Dispatch::Run { op }) => self.out.push(L3Out::Resolve(op, OpResult::Run(result))),
                    other => cx.check.fail(|| format!("TaskDone for {dispatch:?}: {other:?}")),
                },
                ParentOutput::ControlDone { dispatch, result } => self.control_done(cx, dispatch, result),
                ParentOutput::Settled { dispatch, result } => match self.dispatches.remove(&dispatch) {
                    Some(Dispatch::Register { op, reply: Some(reply), .. }) => {
                        let r = register_outcome(reply, result).map(|(index, generation)| Handle {
                            worker: WORKER,
                            index,
                            generation,
                        });
                        self.out.push(L3Out::Resolve(op, OpResult::Register(r)));
                    }
                    // The free of a final unregister (its op resolved at ControlDone).
                    Some(Dispatch::Unregister { .. }) | None => {}
                    other => cx.check.fail(|| format!("Settled for {dispatch:?}: {other:?}")),
                },
                o => self.parent_out.push_back(o),
            }
        }
    }

    fn control_done(&mut self, cx: &mut Ctx, dispatch: DispatchId, result: Result<ControlReply, ControlError>) {
        let Some(d) = self.dispatches.remove(&dispatch) else {
            cx.check.fail(|| format!("ControlDone for unknown {dispatch:?}"));
            return;
        };
        match d {
            Dispatch::Register { op, caller, callable, .. } => match result {
                Ok(reply @ ControlReply::Registered { slot, generation, fresh }) => {
                    let handle = Handle { worker: WORKER, index: slot, generation };
                    self.out.push(L3Out::Hold { caller, handle, callable });
                    self.accepted.insert(op, handle);
                    if let Some(c) = self.acceptance_waiters.remove(&op) {
                        self.out.push(L3Out::WakeCaller(c));
                    }
                    if fresh {
                        // Resolves on the settlement (or the endpoint's death).
                        self.dispatches
                            .insert(dispatch, Dispatch::Register { op, caller, callable, reply: Some(reply) });
                    } else {
                        self.out.push(L3Out::Resolve(op, OpResult::Register(Ok(handle))));
                    }
                }
                Ok(other) => cx.check.fail(|| format!("register answered {other:?}")),
                Err(e) => self.out.push(L3Out::Resolve(op, OpResult::Register(Err(register_error(e))))),
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
                self.out.push(L3Out::Resolve(op, OpResult::Unregister(r)));
            }
            Dispatch::Memory { op } => {
                let r = result.map(|_| ());
                self.out.push(L3Out::Resolve(op, OpResult::Memory(r)));
            }
            Dispatch::Run { .. } => cx.check.fail(|| "ControlDone for a task".into()),
        }
    }

    fn feed_parent(&mut self, cx: &mut Ctx, input: ParentInput) {
        if let Err(e) = self.parent.handle(input) {
            cx.check.fail(|| format!("parent refused driver input: {e:?}"));
        }
        self.drain_parent(cx);
    }

    fn parent_step(&mut self, cx: &mut Ctx, chip: &mut ChipSide) {
        self.catch_up(cx.now, P);
        // Completions first: the parent drains the ring whenever it runs.
        if let Some(bytes) = self.ring.pop_front() {
            let r = Frame::decode_field(&bytes, FrameKind::Completion);
            self.feed_parent(cx, ParentInput::Completion(r));
            self.wake(cx, C);
            self.wake(cx, P);
            return;
        }
        let Some(o) = self.parent_out.pop_front() else {
            if self.parent.wants_word() {
                let key = (self.view[P].1, self.ring.len());
                if self.parked_at[P] == Some(key) {
                    return; // park: nothing changed since the last look
                }
                let raw = self.view[P].0;
                self.feed_parent(cx, ParentInput::Observed(raw));
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
            cx.trace.instant(TRACK_PARENT, parent_label(&o), cx.now);
        }
        match o {
            ParentOutput::Write { field, frame } => self.write(cx, field, &frame, false),
            ParentOutput::Cas { from, to } => {
                let r = self.cas(cx, P, from, to);
                self.feed_parent(cx, ParentInput::CasResult(r));
            }
            ParentOutput::Read { field } => {
                let r = self.read(field);
                self.feed_parent(cx, ParentInput::ReadResult(r));
            }
            ParentOutput::Poison { reason } => {
                if !(self.fault_death && reason == PoisonReason::ChildDied) {
                    cx.check.fail(|| format!("parent poisoned the endpoint: {reason:?}"));
                }
                self.store(cx, P, WordState::Poisoned.encode());
                if !self.reaped {
                    // Kill and reap the child, then report it gone.
                    self.kill(cx, chip);
                    self.reaped = true;
                    self.feed_parent(cx, ParentInput::ChildGone(EndpointError::Poisoned(reason)));
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

    fn kill(&mut self, cx: &mut Ctx, chip: &mut ChipSide) {
        if self.child_dead {
            return;
        }
        self.child_dead = true;
        self.child_out.clear();
        chip.dead = true;
        chip.chip.reclaim_all();
        self.deaths += 1;
        cx.cov.hit(9);
        cx.trace.instant(TRACK_CHILD, "child died", cx.now);
    }

    fn child_step(&mut self, cx: &mut Ctx, chip: &mut ChipSide) {
        if self.child_dead {
            return;
        }
        self.catch_up(cx.now, C);
        let Some(o) = self.child_out.pop_front() else {
            if self.child.wants_word() {
                let free = self.ring_cap - self.ring.len();
                if free == 0 && self.child.completions_held() > 0 {
                    cx.cov.hit(11);
                }
                let key = (self.view[C].1, free);
                if self.parked_at[C] == Some(key) {
                    return;
                }
                let word = self.view[C].0;
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
                self.write(cx, *field, frame, true);
            }
            self.fault_death = true;
            self.kill(cx, chip);
            let d = cx.rng.range(1_000, 500_000);
            cx.at(d, Ev::ChildReaped);
            return;
        }
        if cx.trace.recording() {
            cx.trace.instant(TRACK_CHILD, child_label(&o), cx.now);
        }
        match o {
            ChildOutput::Read { field } => {
                let r = self.read(field);
                if field == Field::Task && self.view[C].0 == WordState::TaskReady.encode() {
                    self.task_copied = true;
                }
                self.feed_child(cx, ChildInput::ReadResult(r));
            }
            ChildOutput::AcceptTask(frame) => {
                let handle = Handle { worker: WORKER, index: frame.id.slot, generation: frame.id.generation };
                let answer = match chip.submit_run(cx, handle, frame.id.dispatch.0, frame.args) {
                    Ok(()) => {
                        self.task_pinned = true;
                        ChildInput::TaskAccepted
                    }
                    Err(e) => ChildInput::TaskRejected(e),
                };
                self.feed_child(cx, answer);
            }
            ChildOutput::ApplyControl(frame) => {
                let answer = self.apply_control(cx, chip, frame.id, &frame.op);
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
                let under_control = matches!(
                    WordState::decode(self.word),
                    Some(WordState::ControlReady { .. } | WordState::ControlDone { .. })
                );
                if under_control && matches!(frame, Frame::TaskResult(_)) {
                    cx.cov.hit(2);
                }
                self.write(cx, field, &frame, false)
            }
            ChildOutput::Cas { from, to } => {
                let r = self.cas(cx, C, from, to);
                self.feed_child(cx, ChildInput::CasResult(r));
            }
            ChildOutput::Push(frame) => {
                if self.ring.len() >= self.ring_cap {
                    cx.check.fail(|| "child pushed into a full ring".into());
                    return;
                }
                match Frame::Completion(frame).encode() {
                    Ok(b) => self.ring.push_back(b),
                    Err(e) => cx.check.fail(|| format!("completion did not encode: {e:?}")),
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

    fn apply_control(
        &mut self,
        cx: &mut Ctx,
        chip: &mut ChipSide,
        id: FrameId,
        op: &ControlOp,
    ) -> Result<ControlReply, ControlError> {
        match op {
            ControlOp::Register { spec } => {
                if spec.kind != TargetKind::ChipCallable {
                    return Err(ControlError::Register(RegisterError::WrongTarget));
                }
                match chip.feed(cx, SlotInput::Register { digest: spec.digest() }) {
                    Ok(SlotReply::Registered { handle, fresh }) => {
                        if fresh {
                            self.settle_dispatch.insert(handle, id.dispatch);
                        }
                        Ok(ControlReply::Registered { slot: handle.index, generation: handle.generation, fresh })
                    }
                    Err(SlotError::Register(e)) => Err(ControlError::Register(e)),
                    other => {
                        cx.check.fail(|| format!("register replied {other:?}"));
                        Err(ControlError::Register(RegisterError::TableFull))
                    }
                }
            }
            ControlOp::Unregister => {
                let handle = Handle { worker: WORKER, index: id.slot, generation: id.generation };
                match chip.feed(cx, SlotInput::Unregister { handle }) {
                    Ok(SlotReply::Unregistered { last }) => {
                        if last {
                            self.free_dispatch.insert(handle, id.dispatch);
                        }
                        Ok(ControlReply::Unregistered { last })
                    }
                    Err(SlotError::Unregister(e)) => Err(ControlError::Unregister(e)),
                    other => {
                        cx.check.fail(|| format!("unregister replied {other:?}"));
                        Err(ControlError::Unregister(UnregisterError::NotRegistered))
                    }
                }
            }
            ControlOp::Memory { .. } | ControlOp::Domain { .. } => {
                if self.child.task().is_some() {
                    cx.check.fail(|| "memory control applied while the child holds a task".into());
                }
                Ok(ControlReply::Done)
            }
        }
    }

    /// Route what the chip side owes to the child.
    fn route_notes(&mut self, cx: &mut Ctx, chip: &mut ChipSide) {
        while let Some(n) = chip.notes.pop_front() {
            match n {
                Note::Settled { handle, result } => {
                    if let Some(d) = self.settle_dispatch.remove(&handle) {
                        let id = FrameId { dispatch: d, slot: handle.index, generation: handle.generation };
                        self.feed_child(cx, ChildInput::Settled { id, settlement: Settlement::Prepared(result) });
                    }
                }
                Note::Freed { handle } => {
                    if let Some(d) = self.free_dispatch.remove(&handle) {
                        let id = FrameId { dispatch: d, slot: handle.index, generation: handle.generation };
                        self.feed_child(cx, ChildInput::Settled { id, settlement: Settlement::Freed });
                    }
                }
                Note::Pinned { token, callable } => {
                    if let Some(Dispatch::Run { op }) = self.dispatches.get(&DispatchId(token)) {
                        self.out.push(L3Out::Pinned(*op, callable));
                    }
                }
                Note::RunFinished { token, result } => {
                    self.feed_child(cx, ChildInput::RunFinished { dispatch: DispatchId(token), result });
                }
            }
        }
    }

    // ---- the world's hooks ---------------------------------------------------

    pub fn step(&mut self, ev: Ev, cx: &mut Ctx, chip: &mut ChipSide) {
        match ev {
            Ev::ParentStep => {
                self.scheduled[P] = false;
                self.parent_step(cx, chip);
            }
            Ev::ChildStep => {
                self.scheduled[C] = false;
                self.child_step(cx, chip);
            }
            Ev::WordVisible(side) => {
                let side = side as usize;
                self.catch_up(cx.now, side);
                self.wake(cx, side);
            }
            Ev::ChildReaped if !self.reaped => {
                self.reaped = true;
                self.feed_parent(cx, ParentInput::ChildGone(EndpointError::ChildDied));
                self.parked_at[P] = None;
                self.wake(cx, P);
            }
            _ => {}
        }
    }

    pub fn pump(&mut self, cx: &mut Ctx, chip: &mut ChipSide) {
        if self.child_dead {
            chip.notes.clear();
        } else {
            self.route_notes(cx, chip);
        }
        if !self.parent_out.is_empty() {
            self.wake(cx, P);
        }
    }

    pub fn liveness(&self) -> Result<(), String> {
        if self.parent.outstanding() && !self.reaped {
            return Err(format!(
                "parent still has work outstanding (word {:?}, {} settlements owed, child task {:?} control {:?})",
                WordState::decode(self.word),
                self.parent.settlements_owed(),
                self.child.task(),
                self.child.control()
            ));
        }
        if let Some((d, x)) = self.dispatches.iter().next() {
            return Err(format!("dispatch {d:?} ({x:?}) never resolved"));
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
