//! The parent driver of one mailbox: a [`ParentEndpoint`] executed against a
//! [`Region`].
//!
//! # What it does
//! - `submit_task` / `submit_control` queue work in the machine and return
//!   handles backed by completion cells, each resolved exactly once;
//! - [`Port::progress`] is one step (its [`Progress`] tells the caller
//!   whether to ring the child's bell or only nudge it): pop the
//!   completion ring (fed as `Completion`), load the word (Acquire) when
//!   the machine wants it, and
//!   execute the machine's outputs: `Write` through
//!   [`Region::write_frame`] (`Frame::encode_into`), `Read` through
//!   [`Region::read_frame`] (`Frame::decode_field`), `Cas` through the one
//!   CAS helper in [`super::word`], `Poison` by swapping POISONED, killing
//!   and reaping the child ([`ChildWatch::kill_and_reap`]) and feeding
//!   `ChildGone`; the resolutions complete the handles' cells;
//! - liveness ([`Port::check_liveness`], called by the loops in
//!   [`super::parent`] when a bounded sleep ran out, never on the hot
//!   path): the caller's [`ChildWatch::check`] decides whether the child is
//!   gone (it exited, or its heartbeat stalled past the caller's timeout;
//!   core reads no clock). If so the port swaps POISONED (so a zombie child
//!   stops serving), kills and reaps it and feeds `ChildGone`: every
//!   outstanding handle resolves with that endpoint error (rule 6);
//! - [`Port::fail`]: the same for a reason the owner found (a driver thread
//!   that died: defence in depth).
//!
//! The port never panics on anything a caller submitted (every limit was
//! checked at the call) or a child wrote (every frame is validated); a
//! broken invariant of its own poisons the endpoint (`DriverDied`) rather
//! than leave a handle unresolved.
//!
//! # Poison
//! Anyone on the parent side (a liveness monitor thread, say) may call
//! `region.word().poison()` at any time; the child poisons the word itself
//! after a malformed frame. The port never writes the word except by a CAS
//! from the value its machine expects, so a concurrent restore
//! (CONTROL_DONE -> TASK_RUNNING/IDLE) fails against POISONED instead of
//! erasing it; the machine then sees POISONED and fails everything.
//!
//! # Threads
//! A `Port` is driven by whoever holds it (`&mut self`; [`super::parent`]
//! keeps it behind a lock). Other threads may hold handles and block in
//! their `wait` (the cell's condvar) meanwhile.

// clippy's `disallowed-types` resolves `crate::sync`'s re-exports to the std
// types it bans (on the std backend they are the same types); this module
// uses only `crate::sync` (no `std::sync` path appears in it).
#![allow(clippy::disallowed_types)]

use core::ops::Deref;
use std::collections::{BTreeMap, VecDeque};

use crate::chip::{RunConfig, RunOutput, TaskArgs};
use crate::error::{ControlError, EndpointError, PoisonReason, RunError};
use crate::frame::{ControlOp, ControlReply, Settlement};
use crate::ids::{DispatchId, Generation, SlotIndex};
use crate::mailbox::parent::{ParentEndpoint, ParentError, ParentInput, ParentOutput};
use crate::mailbox::word::WordState;
use crate::sync::Arc;

use super::cell::Completion;
use super::region::Region;
use super::ring::Consumer;

/// The caller's liveness policy for the child (hw: `waitpid(WNOHANG)` plus a
/// heartbeat timeout on its own clock; models: a flag).
pub trait ChildWatch {
    /// Called when a step made no progress while work is outstanding.
    /// `Some(err)` when the child is gone or timed out (`ChildDied`,
    /// `LivenessTimeout`); the region's [`Region::heartbeat`] is the child's
    /// progress counter.
    fn check(&mut self, region: &Region) -> Option<EndpointError>;
    /// Kill the child if it still runs and reap it; return once it can no
    /// longer touch the region (rule 6: no handle resolves before that).
    fn kill_and_reap(&mut self);
    /// The region's shutdown flag is set and the child's bell rung: let the
    /// child leave on its own (bounded by the watch's own policy), then make
    /// sure it is gone (kill and reap what did not leave).
    fn finish(&mut self);
}

/// The watch of a child that is stepped by hand in this process, by the
/// thread that also steps the port (tests, the `one_thread` benchmarks):
/// there is no process to die, so it never reports the child gone, and
/// killing or finishing it has nothing to do.
#[derive(Clone, Copy, Debug, Default)]
pub struct SteppedChild;

impl ChildWatch for SteppedChild {
    fn check(&mut self, _region: &Region) -> Option<EndpointError> {
        None
    }
    fn kill_and_reap(&mut self) {}
    fn finish(&mut self) {}
}

/// A task's result.
pub type TaskResult = Result<RunOutput, RunError>;
/// A control's acceptance.
pub type ControlResult = Result<ControlReply, ControlError>;
/// A control's settlement: `Ok(None)` when none is owed (not a fresh
/// register, not a final unregister, or the control was refused).
pub type SettleResult = Result<Option<Settlement>, EndpointError>;

/// A submitted task, until its result arrived. Resolves exactly once.
#[derive(Clone, Debug)]
pub struct PendingTask {
    dispatch: DispatchId,
    cell: Arc<Completion<TaskResult>>,
}

impl PendingTask {
    pub fn dispatch(&self) -> DispatchId {
        self.dispatch
    }
    pub fn is_ready(&self) -> bool {
        self.cell.is_ready()
    }
    /// Take the result if it is there (once).
    pub fn try_take(&self) -> Option<TaskResult> {
        self.cell.try_take()
    }
    /// Block until resolved, without stepping: another thread must drive
    /// the port (the driver does once a `Link::wait_until` left it work,
    /// else within its `idle_poll`); `Link::wait_until` steps itself.
    pub fn wait(&self) -> Option<TaskResult> {
        self.cell.wait()
    }
}

/// A submitted control, until its acceptance (CONTROL_DONE) and, for a
/// fresh register or a final unregister, its settlement (completion ring).
#[derive(Clone, Debug)]
pub struct PendingControl {
    dispatch: DispatchId,
    cells: Arc<ControlCells>,
}

impl PendingControl {
    pub fn dispatch(&self) -> DispatchId {
        self.dispatch
    }
    pub fn is_accepted(&self) -> bool {
        self.cells.reply.is_ready()
    }
    pub fn is_settled(&self) -> bool {
        self.cells.settled.is_ready()
    }
    pub fn try_take_reply(&self) -> Option<ControlResult> {
        self.cells.reply.try_take()
    }
    pub fn try_take_settled(&self) -> Option<SettleResult> {
        self.cells.settled.try_take()
    }
    /// Block until accepted, without stepping (see `PendingTask::wait`).
    pub fn wait_reply(&self) -> Option<ControlResult> {
        self.cells.reply.wait()
    }
    /// Block until settled, without stepping (see `PendingTask::wait`).
    pub fn wait_settled(&self) -> Option<SettleResult> {
        self.cells.settled.wait()
    }
}

/// A control's two cells, in one allocation shared by the handle and the
/// port.
#[derive(Debug)]
struct ControlCells {
    reply: Completion<ControlResult>,
    settled: Completion<SettleResult>,
}

/// What one [`Port::progress`] did, and what the caller owes the child
/// (its bell: [`super::bell`], "Rings and nudges"). Ordered by what is
/// owed: of two steps' owings, the greater covers both.
#[must_use = "the child's bell is owed a ring or a nudge"]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Progress {
    /// Nothing changed: owes nothing.
    Nothing,
    /// It only took in what the child published (read a result, restored
    /// the word to IDLE or TASK_RUNNING, popped completions): *nudge* the
    /// child, which acts on that only when it waits for the consumption (a
    /// deferred TASK_DONE, settlements held for ring room).
    Consumed,
    /// It published work the child acts on (a task or a control frame and
    /// its READY value, or POISONED): *ring* the child.
    Published,
}

impl Progress {
    /// Anything changed.
    pub fn did(self) -> bool {
        self != Progress::Nothing
    }
}

/// How many settled dispatches [`PortStats::settled_order`] keeps.
pub const SETTLED_ORDER_KEPT: usize = 64;

/// Counters for tests and reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub steps: u64,
    pub completions_popped: u64,
    /// Control settlements resolved Ok.
    pub settled: u64,
    /// The last [`SETTLED_ORDER_KEPT`] of those dispatches, in the order
    /// their settlement arrived (bounded: a port lives as long as its
    /// worker).
    pub settled_order: VecDeque<DispatchId>,
    pub liveness_checks: u64,
    /// Cells completed (task results, control replies, settlements).
    pub resolved: u64,
}

/// The parent driver. See the module doc.
#[derive(Debug)]
pub struct Port<R, W> {
    region: R,
    watch: W,
    machine: ParentEndpoint,
    ring: Consumer,
    tasks: BTreeMap<DispatchId, Arc<Completion<TaskResult>>>,
    controls: BTreeMap<DispatchId, Arc<ControlCells>>,
    /// The handles (dispatches) the last `progress` resolved a cell of;
    /// a control's reply and settlement in one step count once.
    step_handles: Vec<DispatchId>,
    /// Frames are copied out into this buffer, kept from read to read.
    scratch: Vec<u8>,
    stats: PortStats,
}

impl<R: Deref<Target = Region>, W: ChildWatch> Port<R, W> {
    /// Drive `region` as its parent. The region must be fresh (IDLE, empty
    /// ring) and have no other parent.
    pub fn new(region: R, watch: W) -> Self {
        let ring = Consumer::new(&region);
        Port {
            region,
            watch,
            machine: ParentEndpoint::new(),
            ring,
            tasks: BTreeMap::new(),
            controls: BTreeMap::new(),
            step_handles: Vec::new(),
            scratch: Vec::new(),
            stats: PortStats::default(),
        }
    }

    /// How many handles the last [`Port::progress`] resolved something of
    /// (a control's reply and its settlement in the same step count as one
    /// handle): the parent's loops wake the parent side's other sleepers
    /// when a step resolved more handles than the stepping thread's own.
    pub fn handles_resolved(&self) -> usize {
        self.step_handles.len()
    }

    fn resolved(&mut self, dispatch: DispatchId) {
        self.stats.resolved += 1;
        if !self.step_handles.contains(&dispatch) {
            self.step_handles.push(dispatch);
        }
    }

    pub fn region(&self) -> &Region {
        &self.region
    }

    pub fn stats(&self) -> &PortStats {
        &self.stats
    }

    /// The machine's last known word.
    pub fn word(&self) -> WordState {
        self.machine.word()
    }

    /// The child's watch.
    pub fn watch_mut(&mut self) -> &mut W {
        &mut self.watch
    }

    /// The machine (read-only view, for diagnostics and checks).
    pub fn endpoint(&self) -> &ParentEndpoint {
        &self.machine
    }

    /// Queue a run of the prepared callable `{slot, generation}`.
    pub fn submit_task(
        &mut self,
        slot: SlotIndex,
        generation: Generation,
        config: RunConfig,
        args: TaskArgs,
    ) -> Result<PendingTask, RunError> {
        let d = self.submit(ParentInput::SubmitTask { slot, generation, config, args }).map_err(RunError::from)?;
        let cell = Arc::new(Completion::new());
        self.tasks.insert(d, cell.clone());
        Ok(PendingTask { dispatch: d, cell })
    }

    /// Queue a control (for `Register`, slot and generation are 0).
    pub fn submit_control(
        &mut self,
        slot: SlotIndex,
        generation: Generation,
        op: ControlOp,
    ) -> Result<PendingControl, ControlError> {
        let d = self.submit(ParentInput::SubmitControl { slot, generation, op }).map_err(ControlError::from)?;
        let cells = Arc::new(ControlCells { reply: Completion::new(), settled: Completion::new() });
        self.controls.insert(d, cells.clone());
        Ok(PendingControl { dispatch: d, cells })
    }

    fn submit(&mut self, input: ParentInput) -> Result<DispatchId, crate::mailbox::parent::SubmitError> {
        match self.machine.handle(input) {
            Ok(Some(d)) => Ok(d),
            Ok(None) => unreachable!("a submission returns its dispatch id"),
            Err(ParentError::Submit(e)) => Err(e),
            Err(ParentError::Unexpected(u)) => panic!("port fed its machine an unexpected input: {u:?}"),
        }
    }

    /// Refuse new submissions and raise the region's sticky shutdown flag
    /// (the child stops at its next loop). Outstanding handles still resolve
    /// (drive the port, or let the watch report the child gone).
    pub fn shutdown(&mut self) {
        self.region.request_shutdown();
        self.feed(ParentInput::Shutdown);
    }

    /// Work is queued or in flight.
    pub fn outstanding(&self) -> bool {
        self.machine.outstanding()
    }

    /// One step: what changed, and what the child is owed for it.
    pub fn progress(&mut self) -> Progress {
        self.stats.steps += 1;
        self.step_handles.clear();
        let mut did = false;
        // The ring matters while a settlement is owed or a control is in
        // flight (its settlement may overtake its result).
        if self.machine.settlements_owed() > 0 || self.machine.control_in_flight().is_some() {
            while let Some(c) = self.ring.pop(&self.region) {
                self.stats.completions_popped += 1;
                let corrupt = c.is_err();
                self.feed(ParentInput::Completion(c));
                did = true;
                if corrupt {
                    break;
                }
            }
        }
        if self.machine.wants_word() {
            let raw = self.region.word().load();
            let before = self.machine.word().encode();
            self.feed(ParentInput::Observed(raw));
            did |= raw != before;
        }
        let consumed = if did { Progress::Consumed } else { Progress::Nothing };
        consumed.max(self.drain())
    }

    /// Ask the watch whether the child is gone (only while work is
    /// outstanding); if so fail everything (module doc). True when it was.
    pub fn check_liveness(&mut self) -> bool {
        if !self.machine.outstanding() || self.machine.gone().is_some() {
            return false;
        }
        self.stats.liveness_checks += 1;
        match self.watch.check(&self.region) {
            Some(err) => {
                self.child_gone(err);
                true
            }
            None => false,
        }
    }

    /// Fail the endpoint for `err` (poison, kill and reap the child,
    /// resolve everything outstanding with it), unless it is gone already.
    pub fn fail(&mut self, err: EndpointError) {
        if self.machine.gone().is_none() {
            self.child_gone(err);
        }
    }

    fn feed(&mut self, input: ParentInput) {
        if let Err(e) = self.machine.handle(input) {
            // A driver bug (an answer the machine did not ask for): never
            // leave a handle hanging on it.
            debug_assert!(false, "port fed its machine an unexpected input: {e:?}");
            self.fail(EndpointError::Poisoned(PoisonReason::DriverDied));
        }
    }

    /// The child is gone: make sure it cannot serve again (poison, one way),
    /// kill and reap it, then fail everything outstanding.
    fn child_gone(&mut self, err: EndpointError) {
        let _previous = self.region.word().poison();
        self.watch.kill_and_reap();
        self.feed(ParentInput::ChildGone(err));
        // The child is reaped: nothing is owed to its bell.
        let _reaped = self.drain();
    }

    /// Execute the machine's outputs: `Consumed` when it executed any,
    /// `Published` when one of them was a successful CAS to a value the
    /// child acts on.
    fn drain(&mut self) -> Progress {
        let mut did = Progress::Nothing;
        while let Some(out) = self.machine.poll() {
            did = did.max(Progress::Consumed);
            match out {
                ParentOutput::Write { field, frame } => {
                    // Every limit was checked at the call, so this cannot
                    // fail (a field smaller than a frame exists only under
                    // model checking, with model-sized frames); if it did,
                    // nothing may hang on it.
                    if self.region.write_frame(field, &frame).is_err() {
                        debug_assert!(false, "a submitted frame did not fit its field");
                        self.fail(EndpointError::Poisoned(PoisonReason::DriverDied));
                    }
                }
                ParentOutput::Cas { from, to } => {
                    let r = self.region.word().cas(from, to);
                    if r.is_ok() && to.child_acts() {
                        did = Progress::Published;
                    }
                    self.feed(ParentInput::CasResult(r));
                }
                ParentOutput::Read { field } => {
                    let r = self.region.read_frame_with(field, &mut self.scratch);
                    self.feed(ParentInput::ReadResult(r));
                }
                ParentOutput::TaskDone { dispatch, result } => {
                    self.resolved(dispatch);
                    let cell = self.tasks.remove(&dispatch).expect("a task resolves once");
                    assert!(cell.complete(result).is_ok(), "task {dispatch:?} resolved twice");
                }
                ParentOutput::ControlDone { dispatch, result } => {
                    self.resolved(dispatch);
                    let owed = result.as_ref().is_ok_and(ControlReply::owes_settlement);
                    // The reply first, then (none owed) the settlement.
                    if owed {
                        let cells = self.controls.get(&dispatch).expect("a control resolves once");
                        assert!(cells.reply.complete(result).is_ok(), "control {dispatch:?} resolved twice");
                    } else {
                        let cells = self.controls.remove(&dispatch).expect("a control resolves once");
                        assert!(cells.reply.complete(result).is_ok(), "control {dispatch:?} resolved twice");
                        assert!(cells.settled.complete(Ok(None)).is_ok(), "settlement of {dispatch:?} resolved twice");
                    }
                }
                ParentOutput::Settled { dispatch, result } => {
                    self.resolved(dispatch);
                    let cells = self.controls.remove(&dispatch).expect("a settlement resolves once");
                    if result.is_ok() {
                        self.stats.settled += 1;
                        if self.stats.settled_order.len() == SETTLED_ORDER_KEPT {
                            self.stats.settled_order.pop_front();
                        }
                        self.stats.settled_order.push_back(dispatch);
                    }
                    assert!(cells.settled.complete(result.map(Some)).is_ok(), "settlement {dispatch:?} twice");
                }
                ParentOutput::Poison { reason } => {
                    did = Progress::Published;
                    self.child_gone(EndpointError::Poisoned(reason));
                }
            }
        }
        did
    }
}

#[cfg(all(test, not(any(chiplane_loom, chiplane_shuttle))))]
mod tests {
    use super::*;
    use crate::chip::CallableSpec;
    use crate::conc::region::SharedRegion;
    use crate::conc::ring::Producer;
    use crate::frame::{CompletionFrame, ControlResultFrame, Frame, FrameId};
    use crate::mailbox::Field;

    /// The child, by hand: read the published register, settle it at once
    /// (a register of a callable already registered), answer, publish.
    fn answer_register_settled_at_once(region: &Region, producer: &mut Producer) {
        let Ok(Frame::Control(c)) = region.read_frame(Field::Control) else { panic!("a control frame") };
        // The reply echoes the control's id; the settlement names the slot.
        let slot = FrameId { slot: SlotIndex(3), generation: Generation(1), ..c.id };
        let reply = ControlReply::Registered { slot: slot.slot, generation: slot.generation, fresh: false };
        let answer = ControlResultFrame { id: c.id, result: Ok(reply) };
        region.write_frame(Field::ControlResult, &Frame::ControlResult(answer)).unwrap();
        let settled = CompletionFrame { id: slot, settlement: Settlement::Prepared(Ok(())) };
        producer.push(region, settled).unwrap();
        let under = WordState::ControlReady { under_task: false };
        region.word().cas(under, under.transition_to_control_done().unwrap()).unwrap();
    }

    #[test]
    fn a_reply_and_its_settlement_in_one_step_are_one_handle_and_a_consumption() {
        let region = SharedRegion::new(4);
        // The test plays the child by hand.
        let mut port = Port::new(region.clone(), SteppedChild);
        let op = ControlOp::Register { spec: CallableSpec::chip("k", vec![1]) };
        let control = port.submit_control(SlotIndex(0), Generation::NONE, op).unwrap();
        assert_eq!(port.progress(), Progress::Published, "IDLE -> CONTROL_READY is work for the child");
        answer_register_settled_at_once(&region, &mut Producer::new(&region));
        let cells = port.stats().resolved;
        assert_eq!(port.progress(), Progress::Consumed, "reading the reply and restoring IDLE only consume");
        assert_eq!(port.stats().resolved - cells, 2, "the reply's cell and the settlement's");
        assert_eq!(port.handles_resolved(), 1, "one handle");
        assert!(control.is_accepted() && control.is_settled());
        assert_eq!(port.progress(), Progress::Nothing);
        assert_eq!(port.handles_resolved(), 0);
    }

    #[test]
    fn the_settlement_record_stays_bounded() {
        let region = SharedRegion::new(4);
        let mut port = Port::new(region.clone(), SteppedChild);
        let mut producer = Producer::new(&region);
        let n = SETTLED_ORDER_KEPT + 5;
        let mut dispatches = Vec::new();
        for _ in 0..n {
            let op = ControlOp::Register { spec: CallableSpec::chip("k", vec![1]) };
            let control = port.submit_control(SlotIndex(0), Generation::NONE, op).unwrap();
            let _ = port.progress();
            answer_register_settled_at_once(&region, &mut producer);
            while port.progress().did() {}
            assert!(control.is_settled());
            dispatches.push(control.dispatch());
        }
        let stats = port.stats();
        assert_eq!(stats.settled, n as u64);
        assert_eq!(stats.settled_order.len(), SETTLED_ORDER_KEPT, "only the last ones are kept");
        assert!(stats.settled_order.iter().eq(&dispatches[n - SETTLED_ORDER_KEPT..]), "the last ones, in order");
    }
}
