//! The chip child, as it runs in production and in the models: a
//! [`ChipNode`] (the chip side and its lane threads), the [`NodeBackend`]
//! that puts it behind core's [`Serve`], and [`serve_loop`], the loop that
//! steps `Serve`, spins on cheap loads and sleeps on the child's doorbell.
//! hw adds only the process (mapping the memfd, the device, exiting); the
//! loom and shuttle models run exactly this with threads.
//!
//! # Who wakes the serve loop
//! - the parent, after it published something for the child (a task, a
//!   control, shutdown): it rings the child's bell; after it only consumed
//!   (a restore of the word, ring room) it nudges it ([`super::bell`],
//!   "Rings and nudges");
//! - the lanes, after they produced a result: the node hands it to the
//!   [`EventQueue`] under its lock, then the queue rings the child's bell
//!   (a lane resolves straight to the serve loop; no helper thread);
//!
//! and every ring is the doorbell handshake of [`super::bell`]: it makes a
//! futex call only when the loop announced that it sleeps.
//!
//! # The loop
//! 1. step `Serve` until a step finds nothing to do, ringing the parent's
//!    bell after every step that published something;
//! 2. spin for the process's spin budget on [`Serve::changed`] (two or
//!    three loads: the word, the event counter, the shutdown flag); once
//!    the loop has slept while the current task held the run lane (a long
//!    task), for the under-task budget instead, until the task ends
//!    ([`super::wait::under_task_spin_budget`]);
//! 3. sleep on the child's bell, re-checking `changed` after announcing
//!    (bounded by `heartbeat`, so the heartbeat the parent's liveness
//!    check reads keeps moving while the child waits for work). Beside a
//!    running task, with nothing that waits for the parent's consumption,
//!    it sleeps for work only ([`Serve::sleep_interest`]): the parent's
//!    nudge after it restored the word wakes it only when it has something
//!    to publish then (`super::bell`, "Rings and nudges").
//!
//! `alive` is asked before every step: production passes `|| true`; a model
//! kills the child between any two protocol actions with it (S9).

// clippy's `disallowed-types` resolves `crate::sync`'s re-exports to the std
// types it bans (on the std backend they are the same types); this module
// uses only `crate::sync`.
#![allow(clippy::disallowed_types)]

use core::ops::Deref;
use core::time::Duration;
use std::collections::VecDeque;

use crate::chip::Chip;
use crate::error::{ControlError, RunError};
use crate::frame::{ControlFrame, ControlReply, TaskFrame};
use crate::sync::{Arc, AtomicU64, Mutex, Ordering};

use super::bell::{Doorbell, Futex};
use super::node::{ChipNode, Events};
use super::region::Region;
use super::serve::{ChildBackend, ChildEvent, Serve, ServeExit, Step};

/// The node's results on their way to the serve loop (the node's
/// [`Events`]): a queue, a counter the loop watches, and the child's bell.
pub struct EventQueue<R, F: ?Sized> {
    queue: Mutex<VecDeque<ChildEvent>>,
    /// Bumped after every push.
    seq: AtomicU64,
    region: R,
    futex: Arc<F>,
}

impl<R, F: ?Sized> core::fmt::Debug for EventQueue<R, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Relaxed: a diagnostic snapshot.
        f.debug_struct("EventQueue").field("seq", &self.seq.load(Ordering::Relaxed)).finish()
    }
}

impl<R: Deref<Target = Region>, F: Futex + ?Sized> EventQueue<R, F> {
    /// A queue that rings `region`'s child bell through `futex`.
    pub fn new(region: R, futex: Arc<F>) -> Self {
        EventQueue { queue: Mutex::new(VecDeque::new()), seq: AtomicU64::new(0), region, futex }
    }

    /// The next event, oldest first.
    pub fn pop(&self) -> Option<ChildEvent> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
    }

    /// The counter (see [`ChildBackend::events_seq`]).
    pub fn seq(&self) -> u64 {
        // Acquire: pairs with `push`'s Release increment, so an event
        // counted here is in the queue.
        self.seq.load(Ordering::Acquire)
    }
}

impl<R, F> Events for EventQueue<R, F>
where
    R: Deref<Target = Region> + Send + Sync + 'static,
    F: Futex + ?Sized + 'static,
{
    fn push(&self, event: ChildEvent) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).push_back(event);
        // Release: pairs with `seq`'s Acquire load (the event is queued
        // before the counter says so).
        self.seq.fetch_add(1, Ordering::Release);
    }

    fn notify(&self) {
        Doorbell::new(self.region.child_bell(), &*self.futex).ring();
    }
}

/// The chip child's [`ChildBackend`]: a [`ChipNode`] whose results come
/// through an [`EventQueue`]. Every method returns at once (rule 9).
pub struct NodeBackend<C: Chip, R, F: ?Sized> {
    node: ChipNode<C>,
    // std's `Arc` (see `node::EventSink`): shared with the node's sink.
    events: std::sync::Arc<EventQueue<R, F>>,
}

impl<C: Chip, R, F: ?Sized> core::fmt::Debug for NodeBackend<C, R, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NodeBackend").field("node", &self.node).finish_non_exhaustive()
    }
}

impl<C, R, F> NodeBackend<C, R, F>
where
    C: Chip,
    R: Deref<Target = Region> + Clone + Send + Sync + 'static,
    F: Futex + ?Sized + 'static,
{
    /// Start a node on `chip` whose results ring `region`'s child bell.
    /// `config.events` is replaced by the backend's queue.
    pub fn new(chip: C, mut config: super::node::NodeConfig, region: R, futex: Arc<F>) -> Self {
        let events = std::sync::Arc::new(EventQueue::new(region, futex));
        config.events = Some(super::node::EventSink::new(events.clone()));
        NodeBackend { node: ChipNode::new(chip, config), events }
    }

    /// The node (inspection; `ChipNode::shutdown` joins its lanes).
    pub fn node(&self) -> &ChipNode<C> {
        &self.node
    }

    /// Give the node back (drop it to stop it and join its lanes).
    pub fn into_node(self) -> ChipNode<C> {
        self.node
    }
}

impl<C, R, F> ChildBackend for NodeBackend<C, R, F>
where
    C: Chip,
    R: Deref<Target = Region> + Clone + Send + Sync + 'static,
    F: Futex + ?Sized + 'static,
{
    fn accept_task(&mut self, task: TaskFrame) -> Result<(), RunError> {
        self.node.accept_task(task)
    }

    fn apply_control(&mut self, control: ControlFrame) -> Result<ControlReply, ControlError> {
        self.node.apply_control(control)
    }

    fn poll_event(&mut self) -> Option<ChildEvent> {
        self.events.pop()
    }

    fn events_seq(&self) -> u64 {
        self.events.seq()
    }
}

/// How the serve loop sleeps.
#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    /// Longest sleep on the child's bell (the heartbeat moves at least this
    /// often); `None`: sleep until rung.
    pub heartbeat: Option<Duration>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions { heartbeat: Some(Duration::from_millis(50)) }
    }
}

/// Why [`serve_loop`] returned: the serve machine's exit, or `alive` said no.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum LoopExit {
    /// Shut down or poisoned.
    Serve(ServeExit),
    /// `alive` returned false (a model killed the child).
    Killed,
}

/// The chip child's loop (module doc).
pub fn serve_loop<R, B, F>(
    serve: &mut Serve<R, B>,
    futex: &F,
    options: ServeOptions,
    mut alive: impl FnMut() -> bool,
) -> LoopExit
where
    R: Deref<Target = Region>,
    B: ChildBackend,
    F: Futex + ?Sized,
{
    // The loop slept while the current task held the run lane: the task is
    // not a short one, so the loop's spins use the under-task budget until
    // the task ends (`wait::under_task_spin_budget`).
    let mut long_task = false;
    loop {
        // 1. Work until a step finds nothing to do.
        loop {
            if !alive() {
                return LoopExit::Killed;
            }
            let step = serve.step();
            if serve.take_published() {
                Doorbell::new(serve.region().parent_bell(), futex).ring();
            }
            match step {
                Step::Busy => {}
                Step::Idle => break,
                Step::Exit(e) => {
                    Doorbell::new(serve.region().parent_bell(), futex).ring();
                    return LoopExit::Serve(e);
                }
            }
        }
        // 2. Spin on cheap loads.
        // (Without a budget, under the models, the word is not loaded here.)
        let held = super::wait::spin_budget() > 0 && super::wait::task_holds_lane(serve.region().word().load());
        long_task &= held;
        let budget = if long_task { super::wait::under_task_spin_budget() } else { super::wait::spin_budget() };
        if super::wait::spin_until_within(budget, || serve.changed()) {
            continue;
        }
        // 3. Sleep on the child's bell.
        let bell = Doorbell::new(serve.region().child_bell(), futex);
        let slept = bell.sleep_for(serve.sleep_interest(), || serve.changed(), options.heartbeat);
        long_task |= held && slept;
        serve.region().beat();
    }
}
