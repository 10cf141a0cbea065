//! `ChipNode`: one chip's [`ChipSide`] behind a lock, with its two lane
//! threads. The node only runs the machine (feed an input, execute what
//! `poll` says); every rule of the chip side is the machine's.
//!
//! # Threads and who touches what
//! - **callers** (any thread): the L2 worker's users ([`ChipNode::register`],
//!   [`ChipNode::run`], [`ChipNode::unregister`]) and, at L3, the chip
//!   child's serve loop ([`ChipNode::accept_task`],
//!   [`ChipNode::apply_control`]). Each takes the lock for a few bookkeeping
//!   steps and returns at once: *it never waits for a lane* (docs/protocol.md
//!   rule 9). One exception: a run the chip calls short
//!   ([`Chip::run_inline`]) that the chip side starts at once is executed by
//!   `accept_task`'s caller itself, after the lock is released; it was
//!   taken under the same hold of the lock that accepted the task
//!   (`Inner::run_here`), so the run lane is neither handed it nor woken.
//! - the **run lane thread** calls `chip.bind_lane(Run)` once, then executes
//!   the machine's `StartRun` outputs one at a time; before it parks it
//!   spins for the process's spin budget ([`super::wait`]), so a run
//!   submitted right after the last one starts without a wake-up.
//! - the **register lane thread** calls `chip.bind_lane(Register)` once, then
//!   executes `StartPrepare` and `StartRelease` one at a time.
//!
//! # The lock is never held across a call into the chip
//! A lane thread takes its job under the lock (the spec and a cancel flag;
//! the artifact's `Arc` and the arguments; the artifact to release), drops
//! the lock, calls the chip, and takes the lock again to report. So a
//! prepare of C2 never blocks a pin or unpin for C1. (`Chip::run_inline`,
//! a query answered from the artifact and the arguments alone, is the one
//! chip call made under the lock.)
//!
//! # Results
//! - L2: each handle is a completion cell; the node completes it *after*
//!   unlocking (the woken caller's next call must not find the lock taken).
//!   A register handle resolves on the slot's settlement, a run when it
//!   retired (after its unpin), a final unregister after the release of its
//!   artifact returned.
//! - L3: results are [`ChildEvent`]s for the serve loop, handed to the
//!   node's [`Events`] sink *under the lock* (so they arrive in the order the
//!   machine produced them), then the sink is told to wake its reader once
//!   the lock is released: a lane resolves straight to the serve loop, no
//!   helper thread in between.
//!
//! # Shutdown (explicit or on drop)
//! The machine's (module `chipside`): new requests fail with `ShutDown`,
//! runs not yet on the chip fail, a run on the chip finishes, then every
//! registration is ended and the register lane finishes its prepare and
//! every release. The lane threads exit when the machine says their lane is
//! done; `shutdown` joins them and asserts that nothing is left.
//!
//! # Invariants (asserted)
//! - every handle resolves exactly once (each cell is completed once; the
//!   `complete` result is asserted);
//! - a lane reports only the job it was given (the machine refuses anything
//!   else, and the node asserts);
//! - after shutdown the machine is quiescent: no slot live, nothing owed.

use core::time::Duration;
use std::collections::BTreeMap;

use crate::chip::{CallableSpec, CancelProbe, Chip, ChipError, LaneKind, RunConfig, RunOutput, TaskArgs};
use crate::chipside::{ChildEvent, ChipInput, ChipOutput, ChipRefusal, ChipReply, ChipSide, Resolution};
use crate::error::{ControlError, RegisterError, RunError, UnregisterError};
use crate::frame::{ControlFrame, ControlReply, TaskFrame};
use crate::ids::{CallableHandle, Generation, SlotIndex, WorkerId};
use crate::lane::JobId;
use crate::slot::{SlotLimits, SlotState};
use crate::sync::{thread, Arc, AtomicBool, Condvar, Mutex, MutexGuard, Ordering};

use super::cell::Completion;

/// What `PendingRegister` resolves to.
pub type RegisterResult = Result<CallableHandle, RegisterError>;
/// What `PendingRun` resolves to.
pub type RunResult = Result<RunOutput, RunError>;
/// What `PendingUnregister` resolves to.
pub type UnregisterResult = Result<(), UnregisterError>;

/// Where an L3 node's results go (the chip child's serve loop).
pub trait Events: Send + Sync + 'static {
    /// One result, called with the node's lock held, in the order the chip
    /// side produced them.
    fn push(&self, event: ChildEvent);
    /// Called after the lock is released, when `push` was called at least
    /// once since the last `notify`: wake the reader if it sleeps.
    fn notify(&self);
}

/// A shared [`Events`] sink. A std `Arc` on purpose: only its reference
/// count is shared, which the checkers need not see (the sink's own state
/// uses `crate::sync`), and loom's `Arc` cannot hold a trait object.
#[derive(Clone)]
pub struct EventSink(pub std::sync::Arc<dyn Events>);

impl core::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("EventSink")
    }
}

impl EventSink {
    /// Share `sink` with the node.
    pub fn new<E: Events>(sink: std::sync::Arc<E>) -> Self {
        EventSink(sink)
    }
}

impl core::ops::Deref for EventSink {
    type Target = dyn Events;
    fn deref(&self) -> &dyn Events {
        &*self.0
    }
}

/// Construction parameters of a [`ChipNode`].
#[derive(Clone)]
pub struct NodeConfig {
    /// The worker whose handles this node issues (and checks).
    pub worker: WorkerId,
    /// The slot table's limits.
    pub limits: SlotLimits,
    /// L3: where results go (`None`: an L2 node, results through handles).
    pub events: Option<EventSink>,
}

impl core::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("worker", &self.worker)
            .field("limits", &self.limits)
            .field("events", &self.events.is_some())
            .finish()
    }
}

impl Default for NodeConfig {
    /// A fresh worker id (never shared with another worker), the default
    /// limits, L2.
    fn default() -> Self {
        NodeConfig { worker: WorkerId::fresh(), limits: SlotLimits::default(), events: None }
    }
}

/// A result that arrives later, exactly once. `wait` consumes the handle;
/// `try_wait` / `wait_timeout` return the result once and `None` after.
/// Dropping it neither cancels the work nor leaks it.
#[derive(Debug)]
pub struct Deferred<R> {
    cell: Arc<Completion<R>>,
}

impl<R> Deferred<R> {
    fn new() -> (Self, Arc<Completion<R>>) {
        let cell = Arc::new(Completion::new());
        (Deferred { cell: cell.clone() }, cell)
    }

    /// True once the result is available (or was already taken).
    pub fn is_ready(&self) -> bool {
        self.cell.is_ready()
    }

    /// Block (spin briefly, then park) until the result arrives.
    ///
    /// # Panics
    /// If `try_wait` or `wait_timeout` already returned the result (the
    /// handle was spent).
    pub fn wait(self) -> R {
        self.cell.wait().expect("a handle's result is taken only through the handle")
    }

    /// The result if it arrived; `None` if not yet (or already returned).
    pub fn try_wait(&mut self) -> Option<R> {
        self.cell.try_take()
    }

    /// Wait at most `timeout`; the result if it arrived (and was not already
    /// returned).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<R> {
        self.cell.wait_timeout(timeout)
    }
}

/// A submitted run, until it retired.
pub type PendingRun = Deferred<RunResult>;
/// A submitted unregister, until it finished (for the final one: the slot freed).
pub type PendingUnregister = Deferred<UnregisterResult>;

/// A submitted register, until the prepare settled.
#[derive(Debug)]
pub struct PendingRegister {
    handle: CallableHandle,
    pending: Deferred<RegisterResult>,
}

impl PendingRegister {
    /// The slot handle this registration holds (valid for `run` at once: a
    /// run on a PREPARING slot waits for the settlement in FIFO order).
    pub fn handle(&self) -> CallableHandle {
        self.handle
    }

    /// True once the settlement arrived.
    pub fn is_ready(&self) -> bool {
        self.pending.is_ready()
    }

    /// Block until the prepare settled: `Ok(handle)` when PREPARED.
    pub fn wait(self) -> RegisterResult {
        self.pending.wait()
    }

    /// The settlement if it arrived (once).
    pub fn try_wait(&mut self) -> Option<RegisterResult> {
        self.pending.try_wait()
    }

    /// Wait at most `timeout` for the settlement.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<RegisterResult> {
        self.pending.wait_timeout(timeout)
    }
}

/// A snapshot of one slot (for checkers, tests and diagnostics).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SlotView {
    /// The slot's state.
    pub state: SlotState,
    /// Its generation.
    pub generation: Generation,
    /// Registrations held.
    pub registrations: u32,
    /// Runs pinned.
    pub pins: u32,
}

/// An L2 waiter: the cell its handle reads.
enum Waiter {
    Register(Arc<Completion<RegisterResult>>),
    Unregister(Arc<Completion<UnregisterResult>>),
    Run(Arc<Completion<RunResult>>),
}

/// The prepare's cancel probe: reads the flag the node sets on `Cancel`.
struct FlagProbe(Arc<AtomicBool>);

impl CancelProbe for FlagProbe {
    fn is_cancelled(&self) -> bool {
        // Acquire: pairs with the Release store in `Inner::execute` (Cancel).
        self.0.load(Ordering::Acquire)
    }
}

/// A register-lane job handed to the lane thread.
enum RegWork<P> {
    Prepare { handle: CallableHandle, spec: CallableSpec, cancel: Arc<AtomicBool> },
    Release { job: JobId, artifact: Arc<P> },
}

/// A run handed to the run lane thread.
struct RunWork<P> {
    job: JobId,
    artifact: Arc<P>,
    args: TaskArgs,
    config: RunConfig,
}

/// What must happen after the lock is released.
#[derive(Default)]
#[must_use]
struct After {
    resolve: Vec<(Waiter, Resolution)>,
    events: bool,
    wake_run: bool,
    wake_reg: bool,
}

/// Everything behind the lock.
struct Inner<C: Chip> {
    side: ChipSide<Arc<C::Prepared>, Waiter>,
    run_next: Option<RunWork<C::Prepared>>,
    /// A short run (`Chip::run_inline`) for the thread that accepted it:
    /// set and taken under one hold of the lock, in `ChipNode::accept_task`.
    run_here: Option<RunWork<C::Prepared>>,
    reg_next: Option<RegWork<C::Prepared>>,
    /// Cancel flag of the running prepare, by handle.
    cancel: BTreeMap<CallableHandle, Arc<AtomicBool>>,
    run_sleeping: bool,
    reg_sleeping: bool,
}

/// State shared by the node and its lane threads.
struct Shared<C: Chip> {
    chip: C,
    inner: Mutex<Inner<C>>,
    /// The run lane sleeps here.
    run_cv: Condvar,
    /// The register lane sleeps here.
    reg_cv: Condvar,
    /// A run was handed to the run lane (its spin watches this).
    run_ready: AtomicBool,
    events: Option<EventSink>,
}

impl<C: Chip> Inner<C> {
    /// Execute everything the machine owes; collect what must happen after
    /// unlocking.
    /// `inline`: the chip, when the caller will execute a short run itself
    /// (`ChipNode::accept_task`); such a run goes to `run_here` and the run
    /// lane is neither handed it nor woken.
    fn drain(&mut self, events: &Option<EventSink>, run_ready: &AtomicBool, inline: Option<&C>) -> After {
        let mut after = After::default();
        while let Some(out) = self.side.poll() {
            match out {
                ChipOutput::StartPrepare { handle, spec } => {
                    let cancel = Arc::new(AtomicBool::new(false));
                    self.cancel.insert(handle, cancel.clone());
                    debug_assert!(self.reg_next.is_none(), "one register-lane job at a time");
                    self.reg_next = Some(RegWork::Prepare { handle, spec, cancel });
                    after.wake_reg = true;
                }
                ChipOutput::StartRelease { job, artifact, .. } => {
                    debug_assert!(self.reg_next.is_none(), "one register-lane job at a time");
                    self.reg_next = Some(RegWork::Release { job, artifact });
                    after.wake_reg = true;
                }
                ChipOutput::Cancel { handle } => {
                    if let Some(flag) = self.cancel.get(&handle) {
                        // Release: pairs with the Acquire load in FlagProbe.
                        flag.store(true, Ordering::Release);
                    }
                }
                ChipOutput::StartRun { job, artifact, args, config, .. } => {
                    debug_assert!(self.run_next.is_none() && self.run_here.is_none(), "one run at a time");
                    let work = RunWork { job, artifact, args, config };
                    if inline.is_some_and(|chip| chip.run_inline(&work.artifact, &work.args)) {
                        // MUTANT inline_run_also_queued: the short run is
                        // also handed to the run lane, so it runs twice.
                        #[cfg(chiplane_mutant = "inline_run_also_queued")]
                        {
                            self.run_next = Some(RunWork {
                                job: work.job,
                                artifact: work.artifact.clone(),
                                args: work.args.clone(),
                                config: work.config.clone(),
                            });
                            // Release: pairs with the run lane's Acquire spin load.
                            run_ready.store(true, Ordering::Release);
                            after.wake_run = true;
                        }
                        self.run_here = Some(work);
                    } else {
                        self.run_next = Some(work);
                        // Release: pairs with the run lane's Acquire spin load.
                        run_ready.store(true, Ordering::Release);
                        after.wake_run = true;
                    }
                }
                ChipOutput::Resolve { waiter, resolution } => after.resolve.push((waiter, resolution)),
                ChipOutput::Event(ev) => match events {
                    Some(sink) => {
                        sink.push(ev);
                        after.events = true;
                    }
                    None => unreachable!("an L3 event on an L2 node: {ev:?}"),
                },
            }
        }
        // Only lanes that sleep need a notify; clear their flags here, under
        // the lock (a lane sets its flag and enters `wait` in one critical
        // section, so a flag seen set is a lane already waiting).
        if after.wake_run {
            after.wake_run = core::mem::take(&mut self.run_sleeping);
        }
        if after.wake_reg {
            after.wake_reg = core::mem::take(&mut self.reg_sleeping);
        }
        after
    }
}

/// A chip call whose panic becomes a `ChipError` (the `Chip` contract says
/// devices never panic; if one does anyway, the lane and every handle live
/// on: defence in depth). Under the model checkers a panic is a failure to
/// report, so it propagates.
fn guarded<T>(what: &str, call: impl FnOnce() -> Result<T, ChipError>) -> Result<T, ChipError> {
    #[cfg(not(any(chiplane_loom, chiplane_shuttle)))]
    {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(ChipError::new(crate::chip::ChipErrorKind::Device, format!("the device panicked in {what}: {msg}")))
        })
    }
    #[cfg(any(chiplane_loom, chiplane_shuttle))]
    {
        let _ = what;
        call()
    }
}

fn complete<R>(cell: &Completion<R>, value: R) {
    assert!(cell.complete(value).is_ok(), "a handle resolved twice");
}

impl<C: Chip> Shared<C> {
    fn lock(&self) -> MutexGuard<'_, Inner<C>> {
        // A poisoned lock means a lane thread panicked (a chip broke its
        // no-panic contract, or an invariant assert fired); the bookkeeping
        // is consistent at every unlock point, so carry on.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Feed one input and drain the machine, under the lock.
    fn feed(
        &self,
        inner: &mut Inner<C>,
        input: ChipInput<Arc<C::Prepared>, Waiter>,
    ) -> (Result<ChipReply, ChipRefusal>, After) {
        let r = inner.side.handle(input);
        let after = inner.drain(&self.events, &self.run_ready, None);
        (r, after)
    }

    /// Execute a run and report it (the run lane, or the thread that
    /// accepted a short one). `bound`: how the thread's `bind_lane` went.
    fn execute_run(&self, work: RunWork<C::Prepared>, bound: &Result<(), ChipError>) {
        let RunWork { job, artifact, args, config } = work;
        let result = match bound {
            Ok(()) => guarded("run", || self.chip.run(&artifact, &args, &config)),
            Err(e) => Err(e.clone()),
        };
        // Drop our reference before reporting: the release the report
        // may start needs the only one.
        drop(artifact);
        self.report(ChipInput::RunFinished { job, result });
    }

    /// Unlock, then do what is owed: resolve cells, wake the events'
    /// reader, notify sleeping lanes.
    fn finish(&self, guard: MutexGuard<'_, Inner<C>>, after: After) {
        drop(guard);
        if after.wake_run {
            self.run_cv.notify_one();
        }
        if after.wake_reg {
            self.reg_cv.notify_one();
        }
        if after.events {
            if let Some(sink) = &self.events {
                sink.notify();
            }
        }
        for (waiter, resolution) in after.resolve {
            match (waiter, resolution) {
                (Waiter::Register(c), Resolution::Registered(r)) => complete(&c, r),
                (Waiter::Unregister(c), Resolution::Unregistered(r)) => complete(&c, r),
                (Waiter::Run(c), Resolution::Ran(r)) => complete(&c, r),
                (_, r) => unreachable!("a resolution for another kind of waiter: {r:?}"),
            }
        }
    }

    /// Report a lane's job and drain.
    fn report(&self, input: ChipInput<Arc<C::Prepared>, Waiter>) {
        let mut inner = self.lock();
        let (r, after) = self.feed(&mut inner, input);
        assert!(r.is_ok(), "the chip side refused a lane report: {r:?}");
        self.finish(inner, after);
    }

    /// The run lane thread.
    fn run_lane(&self) {
        let bound = self.chip.bind_lane(LaneKind::Run);
        loop {
            // Spin for the budget before taking the lock to sleep: a run
            // handed over meanwhile starts without a wake-up.
            let spun = super::wait::spin_until(|| {
                // Acquire: pairs with the Release store in `drain` (StartRun).
                self.run_ready.load(Ordering::Acquire)
            });
            let work = {
                let mut inner = self.lock();
                // MUTANT lost_lane_wake: the lane trusts what its lock-free
                // spin saw and goes to sleep without looking again under the
                // lock; a run handed over between the spin and the sleep saw
                // no sleeper, so nobody wakes the lane for it.
                let mut trust_spin = cfg!(chiplane_mutant = "lost_lane_wake") && !spun;
                loop {
                    if !trust_spin {
                        if let Some(w) = inner.run_next.take() {
                            // Relaxed: cleared under the lock that published
                            // the work; the next Release store comes with it.
                            self.run_ready.store(false, Ordering::Relaxed);
                            break Some(w);
                        }
                        if inner.side.run_lane_done() {
                            break None;
                        }
                    }
                    trust_spin = false;
                    inner.run_sleeping = true;
                    inner = self.run_cv.wait(inner).unwrap_or_else(|e| e.into_inner());
                }
            };
            let Some(work) = work else { return };
            self.execute_run(work, &bound);
        }
    }

    /// The register lane thread.
    fn reg_lane(&self) {
        let bound = self.chip.bind_lane(LaneKind::Register);
        loop {
            let work = {
                let mut inner = self.lock();
                loop {
                    if let Some(w) = inner.reg_next.take() {
                        break Some(w);
                    }
                    if inner.side.quiescent() {
                        break None;
                    }
                    inner.reg_sleeping = true;
                    inner = self.reg_cv.wait(inner).unwrap_or_else(|e| e.into_inner());
                }
            };
            match work {
                None => return,
                Some(RegWork::Prepare { handle, spec, cancel }) => {
                    let result = match &bound {
                        Ok(()) => guarded("prepare", || self.chip.prepare(&spec, &FlagProbe(cancel))),
                        Err(e) => Err(e.clone()),
                    };
                    let mut inner = self.lock();
                    inner.cancel.remove(&handle);
                    let (r, after) =
                        self.feed(&mut inner, ChipInput::PrepareFinished { handle, result: result.map(Arc::new) });
                    assert!(r.is_ok(), "the chip side refused a prepare report: {r:?}");
                    self.finish(inner, after);
                }
                Some(RegWork::Release { job, artifact }) => {
                    let Ok(artifact) = Arc::try_unwrap(artifact) else {
                        panic!("an artifact released while a run still holds it (Chip contract)");
                    };
                    // A release that panics still counts as done: the
                    // artifact is gone either way.
                    let _ = guarded("release", || {
                        self.chip.release(artifact);
                        Ok(())
                    });
                    self.report(ChipInput::ReleaseFinished { job });
                }
            }
        }
    }
}

/// One chip's chip side and lanes. See the module doc.
pub struct ChipNode<C: Chip> {
    shared: Arc<Shared<C>>,
    lanes: Option<(thread::JoinHandle<()>, thread::JoinHandle<()>)>,
    worker: WorkerId,
}

impl<C: Chip> core::fmt::Debug for ChipNode<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChipNode")
            .field("chip", &self.shared.chip.name())
            .field("worker", &self.worker)
            .field("running", &self.lanes.is_some())
            .finish()
    }
}

impl<C: Chip> ChipNode<C> {
    /// Start the node: spawns the run lane and register lane threads.
    // The lanes are spawned through `crate::sync::thread` (the one place core
    // may spawn); clippy sees the std function it re-exports.
    #[allow(clippy::disallowed_methods)]
    pub fn new(chip: C, config: NodeConfig) -> Self {
        let inner = Inner {
            side: ChipSide::new(config.worker, config.limits),
            run_next: None,
            run_here: None,
            reg_next: None,
            cancel: BTreeMap::new(),
            run_sleeping: false,
            reg_sleeping: false,
        };
        let shared = Arc::new(Shared {
            chip,
            inner: Mutex::new(inner),
            run_cv: Condvar::new(),
            reg_cv: Condvar::new(),
            run_ready: AtomicBool::new(false),
            events: config.events,
        });
        let run = {
            let shared = shared.clone();
            thread::spawn(move || shared.run_lane())
        };
        let reg = {
            let shared = shared.clone();
            thread::spawn(move || shared.reg_lane())
        };
        ChipNode { shared, lanes: Some((run, reg)), worker: config.worker }
    }

    /// The worker whose handles this node issues.
    pub fn worker(&self) -> WorkerId {
        self.worker
    }

    /// The device.
    pub fn chip(&self) -> &C {
        &self.shared.chip
    }

    fn submit(&self, input: ChipInput<Arc<C::Prepared>, Waiter>) -> Result<ChipReply, ChipRefusal> {
        let mut inner = self.shared.lock();
        let (r, after) = self.shared.feed(&mut inner, input);
        self.shared.finish(inner, after);
        r
    }

    /// Register a chip callable. Errors at the call: `WrongTarget`,
    /// `TableFull`, `Endpoint(ShutDown)`. The handle resolves on the
    /// settlement: `Ok(handle)` when PREPARED, `PrepareFailed` or `Cancelled`.
    pub fn register(&self, spec: CallableSpec) -> Result<PendingRegister, RegisterError> {
        let (pending, cell) = Deferred::new();
        match self.submit(ChipInput::Register { spec, waiter: Waiter::Register(cell) }) {
            Ok(ChipReply::Registered { handle, .. }) => Ok(PendingRegister { handle, pending }),
            Err(ChipRefusal::Register(e)) => Err(e),
            other => unreachable!("register replied {other:?}"),
        }
    }

    /// Queue a run (the slot is pinned before it is queued). Errors at the
    /// call: a foreign or stale handle, a slot that is not runnable, a failed
    /// prepare, `Endpoint(ShutDown)`.
    pub fn run(&self, handle: CallableHandle, args: TaskArgs, config: RunConfig) -> Result<PendingRun, RunError> {
        let (pending, cell) = Deferred::new();
        match self.submit(ChipInput::Run { handle, args, config, waiter: Waiter::Run(cell) }) {
            Ok(ChipReply::Queued) => Ok(pending),
            Err(ChipRefusal::Run(e)) => Err(e),
            other => unreachable!("run replied {other:?}"),
        }
    }

    /// End one registration. Resolves when accepted; the final one resolves
    /// when the slot is freed (its artifact released).
    pub fn unregister(&self, handle: CallableHandle) -> Result<PendingUnregister, UnregisterError> {
        let (pending, cell) = Deferred::new();
        match self.submit(ChipInput::Unregister { handle, waiter: Waiter::Unregister(cell) }) {
            Ok(ChipReply::Unregistered { .. }) => Ok(pending),
            Err(ChipRefusal::Unregister(e)) => Err(e),
            other => unreachable!("unregister replied {other:?}"),
        }
    }

    /// L3: pin the task's slot and queue the run; its result comes as a
    /// [`ChildEvent::RunFinished`] through the node's [`Events`]. A run the
    /// chip calls short ([`Chip::run_inline`]) that can start at once is
    /// executed here, on the caller's thread (the serve loop), before this
    /// returns: the run lane is not woken for it.
    pub fn accept_task(&self, task: TaskFrame) -> Result<(), RunError> {
        let mut inner = self.shared.lock();
        let r = inner.side.handle(ChipInput::Task(task));
        let after = inner.drain(&self.shared.events, &self.shared.run_ready, Some(&self.shared.chip));
        let here = inner.run_here.take();
        self.shared.finish(inner, after);
        if let Some(work) = here {
            self.shared.execute_run(work, &Ok(()));
        }
        match r {
            Ok(ChipReply::Queued) => Ok(()),
            Err(ChipRefusal::Run(e)) => Err(e),
            other => unreachable!("task replied {other:?}"),
        }
    }

    /// L3: apply a control to the chip side (never waits for a lane); an
    /// owed settlement comes as a [`ChildEvent::Settled`].
    pub fn apply_control(&self, control: ControlFrame) -> Result<ControlReply, ControlError> {
        match self.submit(ChipInput::Control(control)) {
            Ok(ChipReply::Control(reply)) => Ok(reply),
            Err(ChipRefusal::Control(e)) => Err(e),
            other => unreachable!("control replied {other:?}"),
        }
    }

    /// A snapshot of slot `index`.
    pub fn slot(&self, index: SlotIndex) -> Option<SlotView> {
        let inner = self.shared.lock();
        let table = inner.side.table();
        let state = table.state(index)?;
        Some(SlotView {
            state,
            generation: table.generation(index).unwrap_or_default(),
            registrations: table.registrations(index),
            pins: table.pins(index),
        })
    }

    /// Completions dropped for carrying an old generation.
    pub fn stale_completions(&self) -> u64 {
        self.shared.lock().side.table().stale_completions()
    }

    /// MUTANT `sync_bypasses_queue` support: run on the caller's thread,
    /// around the run lane (pin, run, unpin through the machine's bypass).
    #[cfg(chiplane_mutant = "sync_bypasses_queue")]
    pub fn run_direct(&self, handle: CallableHandle, args: TaskArgs, config: RunConfig) -> RunResult {
        let artifact = self.shared.lock().side.bypass_pin(handle)?;
        let out = self.shared.chip.run(&artifact, &args, &config).map_err(RunError::Chip);
        drop(artifact);
        let mut inner = self.shared.lock();
        inner.side.bypass_unpin(handle);
        let after = inner.drain(&self.shared.events, &self.shared.run_ready, None);
        self.shared.finish(inner, after);
        out
    }

    /// Stop the node: see the module doc. Idempotent; also run on drop.
    pub fn shutdown(&mut self) {
        let Some((run, regl)) = self.lanes.take() else {
            return;
        };
        {
            let mut inner = self.shared.lock();
            let (r, mut after) = self.shared.feed(&mut inner, ChipInput::Shutdown);
            assert!(r.is_ok(), "shutdown refused: {r:?}");
            // Both lanes must look at the machine again (their exit test).
            after.wake_run |= core::mem::take(&mut inner.run_sleeping);
            after.wake_reg |= core::mem::take(&mut inner.reg_sleeping);
            self.shared.finish(inner, after);
        }
        let run_joined = run.join();
        // The run lane's last report may have completed the teardown: make
        // sure the register lane re-checks its exit condition.
        {
            let mut inner = self.shared.lock();
            let wake = core::mem::take(&mut inner.reg_sleeping);
            drop(inner);
            if wake {
                self.shared.reg_cv.notify_one();
            }
        }
        let reg_joined = regl.join();
        if !std::thread::panicking() {
            assert!(run_joined.is_ok() && reg_joined.is_ok(), "a lane thread panicked");
            let inner = self.shared.lock();
            assert!(inner.side.quiescent(), "the chip side is not quiescent after shutdown");
            assert_eq!(inner.side.table().live_slots(), 0, "slots still live after shutdown");
        }
    }
}

impl<C: Chip> Drop for ChipNode<C> {
    fn drop(&mut self) {
        self.shutdown();
    }
}
