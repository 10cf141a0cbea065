//! `ChipNode`: one chip's slot registry and its two lane threads.
//!
//! # Threads and who touches what
//! - **callers** (any thread; the L2 worker's users, or the L3 chip child's
//!   mailbox loop) submit with [`ChipNode::register`], [`ChipNode::run`],
//!   [`ChipNode::unregister`]. Each takes the registry lock for a few
//!   bookkeeping steps and returns a handle at once: *it never waits for a
//!   lane* (design.md rule 9).
//! - the **run lane thread** calls `chip.bind_lane(Run)` once, then executes
//!   runs one at a time in FIFO order.
//! - the **register lane thread** calls `chip.bind_lane(Register)` once, then
//!   executes prepares and releases one at a time in FIFO order.
//!
//! All bookkeeping lives in one `Registry` behind `crate::sync::Mutex`: core's
//! pure [`SlotTable`] (artifacts held as `Arc<C::Prepared>`), the two pure
//! [`Lane`]s, and the maps from handles to the waiters' completion cells.
//! The node only drives these machines (`handle` then drain `poll`); the
//! state rules are theirs.
//!
//! # The lock is never held across a call into the chip
//! A lane thread takes what it needs under the lock (the spec and the cancel
//! flag for a prepare; a clone of the artifact's `Arc` for a run; the
//! artifact itself for a release), drops the lock, calls the chip, and takes
//! the lock again to report. So a prepare of C2 never blocks a pin or unpin
//! for C1.
//!
//! # Life of each kind of work
//! - **register**: `SlotTable::handle(Register)`. A fresh slot queues its
//!   prepare on the register lane; the handle resolves on the slot's
//!   `Settled` output (`Ok(handle)` = PREPARED). A digest already registered
//!   resolves at once when PREPARED or FAILED, else with the settlement.
//!   The handle is known at submission ([`RegisterHandle::handle`]), so a
//!   registration whose prepare failed can still be unregistered.
//! - **run**: pin *before* enqueue; at the head of the run lane the run asks
//!   `SlotTable::runnable`: run it, wait for `Settled` (PREPARING; later runs
//!   wait behind it: FIFO), or fail with the recorded error. The pin is
//!   released exactly once when the run retires, *before* its handle
//!   resolves.
//! - **unregister**: a non-final one resolves when accepted. The final one
//!   resolves when the slot is freed, after `chip.release` of its artifact
//!   returned (or at once when it holds none).
//! - **cancel**: the slot's `Cancel` output sets the prepare's cancel flag
//!   (the `CancelProbe` handed to `chip.prepare`); a prepare still queued is
//!   taken off the register lane and reported cancelled without calling the
//!   chip.
//! - **release**: exactly once per artifact, on the register lane. The
//!   artifact's `Arc` must be unique by then (every run that cloned it has
//!   retired, and a run drops its clone before it unpins); anything else is
//!   a broken invariant and asserts.
//!
//! # Shutdown (explicit or on drop)
//! New submissions fail with `EndpointError::ShutDown`. The run lane fails
//! every run that has not entered the chip with `ShutDown` (unpinning it),
//! lets a run inside the chip finish, and exits. Then every registration
//! still held is ended (register waiters get `ShutDown`), which cancels or
//! frees each slot; the register lane finishes an in-flight prepare and every
//! release (each artifact is still released exactly once) and exits.
//!
//! # Driving it from a loop that must never block (the L3 chip child)
//! Create the node with a [`Notifier`] in [`NodeConfig`]: every handle's cell
//! notifies it when it resolves. The loop reads `notifier.epoch()`, submits
//! and `try_wait`s its handles, and sleeps with `wait_past(epoch)` (or its
//! timeout form) only when it has nothing else to do.
//!
//! # Invariants (asserted)
//! - every handle resolves exactly once (each cell is completed once; the
//!   `complete` result is asserted);
//! - one unpin per pin, one `Finished` per started lane job;
//! - after shutdown no slot is live and every owed release was made.

use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};

use crate::chip::{CallableSpec, CancelProbe, Chip, ChipError, ChipErrorKind, LaneKind, RunConfig, RunOutput};
use crate::chip::{TargetKind, TaskArgs};
use crate::error::{EndpointError, RegisterError, RunError, UnregisterError};
use crate::ids::{Generation, Handle, SlotIndex, WorkerId};
use crate::lane::{JobId, LaneInput, LaneOutput, RegisterJob, RegisterLane, RunJob, RunLane};
use crate::slot::{SlotError, SlotInput, SlotLimits, SlotOutput, SlotReply, SlotState, SlotTable};
use crate::sync::{thread, Arc, AtomicBool, Condvar, Mutex, MutexGuard, Ordering};

use super::cell::{Completion, Notifier};

/// What `RegisterHandle` resolves to.
pub type RegisterResult = Result<Handle, RegisterError>;
/// What `RunHandle` resolves to.
pub type RunResult = Result<RunOutput, RunError>;
/// What `UnregisterHandle` resolves to.
pub type UnregisterResult = Result<(), UnregisterError>;

/// Construction parameters of a [`ChipNode`].
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub worker: WorkerId,
    pub limits: SlotLimits,
    /// Notified whenever any handle of this node resolves.
    pub notifier: Option<Arc<Notifier>>,
}

impl Default for NodeConfig {
    /// A fresh worker id (never shared with another worker), the default
    /// limits, no notifier.
    fn default() -> Self {
        NodeConfig { worker: WorkerId::fresh(), limits: SlotLimits::default(), notifier: None }
    }
}

/// A result that arrives later, exactly once. `wait` consumes the handle;
/// `try_wait` / `wait_timeout` return the result once and `None` after.
/// Dropping it neither cancels the work nor leaks it.
#[derive(Debug)]
pub struct Pending<R> {
    cell: Arc<Completion<R>>,
}

impl<R> Pending<R> {
    fn new(notifier: &Option<Arc<Notifier>>) -> (Self, Arc<Completion<R>>) {
        let cell = Arc::new(Completion::with_notifier(notifier.clone()));
        (Pending { cell: cell.clone() }, cell)
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

/// Handle of a submitted run.
pub type RunHandle = Pending<RunResult>;
/// Handle of a submitted unregister.
pub type UnregisterHandle = Pending<UnregisterResult>;

/// Handle of a submitted register: resolves on the prepare's settlement.
#[derive(Debug)]
pub struct RegisterHandle {
    handle: Handle,
    pending: Pending<RegisterResult>,
}

impl RegisterHandle {
    /// The slot handle this registration holds (valid for `run` at once: a
    /// run on a PREPARING slot waits for the settlement in FIFO order).
    pub fn handle(&self) -> Handle {
        self.handle
    }

    pub fn is_ready(&self) -> bool {
        self.pending.is_ready()
    }

    pub fn wait(self) -> RegisterResult {
        self.pending.wait()
    }

    pub fn try_wait(&mut self) -> Option<RegisterResult> {
        self.pending.try_wait()
    }

    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<RegisterResult> {
        self.pending.wait_timeout(timeout)
    }
}

/// A snapshot of one slot (for checkers, tests and diagnostics).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SlotView {
    pub state: SlotState,
    pub generation: Generation,
    pub registrations: u32,
    pub pins: u32,
}

/// A run waiting on the run lane.
struct RunTicket {
    args: TaskArgs,
    config: RunConfig,
    cell: Arc<Completion<RunResult>>,
}

/// The prepare's cancel probe: reads the slot's cancel flag.
struct FlagProbe(Arc<AtomicBool>);

impl CancelProbe for FlagProbe {
    fn is_cancelled(&self) -> bool {
        // Acquire: pairs with the Release store in `Registry::drain` (Cancel).
        self.0.load(Ordering::Acquire)
    }
}

/// Everything behind the registry lock.
struct Registry<C: Chip> {
    table: SlotTable<Arc<C::Prepared>>,
    run_lane: RunLane<RunTicket>,
    reg_lane: RegisterLane<Arc<C::Prepared>>,
    /// Spec and cancel flag of each prepare owed or in flight.
    prepares: BTreeMap<Handle, (CallableSpec, Arc<AtomicBool>)>,
    /// Register handles waiting for their slot's `Settled`.
    settle_waiters: BTreeMap<Handle, Vec<Arc<Completion<RegisterResult>>>>,
    /// Final unregister handles waiting for their slot's free.
    free_waiters: BTreeMap<Handle, Vec<Arc<Completion<UnregisterResult>>>>,
    /// Releases queued or running on the register lane, per handle.
    releases_owed: BTreeMap<Handle, u32>,
    /// Slots whose `Freed` came while releases were still owed.
    freed: BTreeSet<Handle>,
    shutting_down: bool,
    run_lane_exited: bool,
    teardown_done: bool,
    run_lane_sleeping: bool,
    reg_lane_sleeping: bool,
    notifier: Option<Arc<Notifier>>,
}

/// Which lane threads a change must wake.
#[derive(Clone, Copy, Default, Debug)]
#[must_use]
struct Wake {
    run: bool,
    reg: bool,
}

fn resolve<R>(cell: &Completion<R>, value: R) {
    assert!(cell.complete(value).is_ok(), "a handle resolved twice");
}

impl<C: Chip> Registry<C> {
    /// Drain every output the slot table owes, acting on each.
    fn drain(&mut self) -> Wake {
        let mut wake = Wake::default();
        while let Some(out) = self.table.poll() {
            match out {
                SlotOutput::StartPrepare { handle, digest } => {
                    debug_assert!(self.prepares.contains_key(&handle), "prepare owed without its spec");
                    let _ = self.reg_lane.handle(LaneInput::Enqueue(RegisterJob::Prepare { handle, digest }));
                    wake.reg = true;
                }
                SlotOutput::Cancel { handle } => {
                    if let Some((_, flag)) = self.prepares.get(&handle) {
                        // Release: pairs with the Acquire load in FlagProbe.
                        flag.store(true, Ordering::Release);
                    }
                    let queued = self
                        .reg_lane
                        .remove_queued(|j| matches!(j, RegisterJob::Prepare { handle: h, .. } if *h == handle));
                    if !queued.is_empty() {
                        // Never started: report it cancelled without the chip.
                        self.prepares.remove(&handle);
                        let result = Err(ChipError::new(ChipErrorKind::Cancelled, "cancelled before it started"));
                        let reply = self.table.handle(SlotInput::PrepareFinished { handle, result });
                        assert!(reply.is_ok(), "cancelled queued prepare rejected: {reply:?}");
                    }
                }
                SlotOutput::Release { handle, artifact } => {
                    let _ = self.reg_lane.handle(LaneInput::Enqueue(RegisterJob::Release { handle, artifact }));
                    *self.releases_owed.entry(handle).or_insert(0) += 1;
                    wake.reg = true;
                }
                SlotOutput::Settled { handle, result } => {
                    for cell in self.settle_waiters.remove(&handle).unwrap_or_default() {
                        resolve(&cell, result.clone().map(|()| handle));
                    }
                    // A run at the head of the run lane may wait for this.
                    wake.run = true;
                }
                SlotOutput::Freed { handle } => {
                    if self.releases_owed.contains_key(&handle) {
                        self.freed.insert(handle);
                    } else {
                        self.resolve_freed(handle);
                    }
                }
            }
        }
        // The table asserts its invariants only in debug builds; the model
        // checkers run optimised, so check them here under loom and shuttle.
        #[cfg(any(chiplane_loom, chiplane_shuttle))]
        if let Err(broken) = self.table.check_invariants() {
            panic!("slot table invariant broken: {broken}");
        }
        wake
    }

    fn resolve_freed(&mut self, handle: Handle) {
        for cell in self.free_waiters.remove(&handle).unwrap_or_default() {
            resolve(&cell, Ok(()));
        }
    }

    /// A release of `handle`'s artifact returned from the chip.
    fn release_done(&mut self, handle: Handle) {
        let owed = self.releases_owed.get_mut(&handle).expect("release done that was never owed");
        *owed -= 1;
        if *owed == 0 {
            self.releases_owed.remove(&handle);
            if self.freed.remove(&handle) {
                self.resolve_freed(handle);
            }
        }
    }

    fn new_pending<R>(&self) -> (Pending<R>, Arc<Completion<R>>) {
        Pending::new(&self.notifier)
    }
}

/// State shared by the node and its lane threads.
struct Shared<C: Chip> {
    chip: C,
    registry: Mutex<Registry<C>>,
    /// The run lane sleeps here: a run queued, a slot settled, shutdown.
    run_cv: Condvar,
    /// The register lane sleeps here: a job queued, shutdown progress.
    reg_cv: Condvar,
}

impl<C: Chip> Shared<C> {
    fn lock(&self) -> MutexGuard<'_, Registry<C>> {
        // A poisoned lock means a lane thread panicked (a chip broke its
        // no-panic contract, or an invariant assert fired); the bookkeeping
        // is still consistent at every unlock point, so carry on.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Clear the sleeping flags of the lanes `wake` names (under the lock)
    /// and say which condvars to notify.
    fn to_notify(reg: &mut Registry<C>, wake: Wake) -> Wake {
        let run = wake.run && reg.run_lane_sleeping;
        let regl = wake.reg && reg.reg_lane_sleeping;
        reg.run_lane_sleeping &= !run;
        reg.reg_lane_sleeping &= !regl;
        Wake { run, reg: regl }
    }

    fn notify(&self, n: Wake) {
        if n.run {
            self.run_cv.notify_one();
        }
        if n.reg {
            self.reg_cv.notify_one();
        }
    }

    /// Wake lanes while holding the lock (lane threads, which keep it).
    fn wake(&self, reg: &mut Registry<C>, wake: Wake) {
        self.notify(Self::to_notify(reg, wake));
    }

    /// Unlock, then wake lanes (callers): the woken lane does not block on
    /// the lock we would still hold. Safe: a lane marks itself sleeping and
    /// enters `Condvar::wait` in one critical section, so once we saw the
    /// flag under the lock it is already waiting.
    fn unlock_and_wake(&self, mut reg: MutexGuard<'_, Registry<C>>, wake: Wake) {
        let n = Self::to_notify(&mut reg, wake);
        drop(reg);
        self.notify(n);
    }

    /// The run lane thread.
    fn run_lane(&self) {
        let bound = self.chip.bind_lane(LaneKind::Run);
        let mut reg = self.lock();
        let mut current: Option<(JobId, RunJob<RunTicket>)> = None;
        loop {
            if current.is_none() {
                current = reg.run_lane.poll().map(|LaneOutput::Start { id, job }| (id, job));
            }
            let Some((id, job)) = current.take() else {
                if reg.shutting_down {
                    reg.run_lane_exited = true;
                    let wake = Wake { run: false, reg: true };
                    self.wake(&mut reg, wake);
                    return;
                }
                reg.run_lane_sleeping = true;
                reg = self.run_cv.wait(reg).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            let outcome = if reg.shutting_down {
                Err(RunError::Endpoint(EndpointError::ShutDown))
            } else {
                match reg.table.runnable(job.handle) {
                    Ok(Some(artifact)) => {
                        let artifact = artifact.clone();
                        drop(reg);
                        let out = match &bound {
                            Ok(()) => self.chip.run(&artifact, &job.payload.args, &job.payload.config),
                            Err(e) => Err(e.clone()),
                        };
                        // Drop our clone before the unpin: the release that
                        // the unpin may trigger needs the only reference.
                        drop(artifact);
                        reg = self.lock();
                        out.map_err(RunError::Chip)
                    }
                    Ok(None) => {
                        // PREPARING: wait (FIFO: later runs wait behind us).
                        current = Some((id, job));
                        reg.run_lane_sleeping = true;
                        reg = self.run_cv.wait(reg).unwrap_or_else(|e| e.into_inner());
                        continue;
                    }
                    Err(e) => Err(e),
                }
            };
            let unpinned = reg.table.handle(SlotInput::Unpin { handle: job.handle });
            assert_eq!(unpinned, Ok(SlotReply::Unpinned), "one unpin per pin");
            let finished = reg.run_lane.handle(LaneInput::Finished { id });
            assert_eq!(finished, Ok(None), "the running job finished");
            let wake = reg.drain();
            self.wake(&mut reg, wake);
            // Resolve outside the lock: the woken caller's next submit must
            // not find the lock taken.
            drop(reg);
            resolve(&job.payload.cell, outcome);
            reg = self.lock();
        }
    }

    /// The register lane thread.
    fn reg_lane(&self) {
        let bound = self.chip.bind_lane(LaneKind::Register);
        let mut reg = self.lock();
        loop {
            let Some(LaneOutput::Start { id, job }) = reg.reg_lane.poll() else {
                if reg.shutting_down && reg.teardown_done {
                    return;
                }
                reg.reg_lane_sleeping = true;
                reg = self.reg_cv.wait(reg).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            match job {
                RegisterJob::Prepare { handle, .. } => {
                    let (spec, flag) = reg.prepares.get(&handle).cloned().expect("prepare started without its spec");
                    drop(reg);
                    let result = match &bound {
                        Ok(()) => self.chip.prepare(&spec, &FlagProbe(flag)),
                        Err(e) => Err(e.clone()),
                    };
                    reg = self.lock();
                    reg.prepares.remove(&handle);
                    let reply = reg.table.handle(SlotInput::PrepareFinished { handle, result: result.map(Arc::new) });
                    assert!(
                        matches!(reply, Ok(SlotReply::PrepareApplied | SlotReply::PrepareStale)),
                        "prepare completion rejected: {reply:?}"
                    );
                }
                RegisterJob::Release { handle, artifact } => {
                    drop(reg);
                    let Ok(artifact) = Arc::try_unwrap(artifact) else {
                        panic!("artifact of {handle:?} released while a run still holds it (Chip contract)");
                    };
                    self.chip.release(artifact);
                    reg = self.lock();
                    reg.release_done(handle);
                }
            }
            let finished = reg.reg_lane.handle(LaneInput::Finished { id });
            assert_eq!(finished, Ok(None), "the running job finished");
            let wake = reg.drain();
            self.wake(&mut reg, wake);
        }
    }
}

/// One chip's registry and lanes. See the module doc.
pub struct ChipNode<C: Chip> {
    shared: Arc<Shared<C>>,
    lanes: Option<(thread::JoinHandle<()>, thread::JoinHandle<()>)>,
    worker: WorkerId,
    notifier: Option<Arc<Notifier>>,
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
        let registry = Registry {
            table: SlotTable::new(config.worker, config.limits),
            run_lane: RunLane::new(),
            reg_lane: RegisterLane::new(),
            prepares: BTreeMap::new(),
            settle_waiters: BTreeMap::new(),
            free_waiters: BTreeMap::new(),
            releases_owed: BTreeMap::new(),
            freed: BTreeSet::new(),
            shutting_down: false,
            run_lane_exited: false,
            teardown_done: false,
            run_lane_sleeping: false,
            reg_lane_sleeping: false,
            notifier: config.notifier.clone(),
        };
        let shared =
            Arc::new(Shared { chip, registry: Mutex::new(registry), run_cv: Condvar::new(), reg_cv: Condvar::new() });
        let run = {
            let shared = shared.clone();
            thread::spawn(move || shared.run_lane())
        };
        let reg = {
            let shared = shared.clone();
            thread::spawn(move || shared.reg_lane())
        };
        ChipNode { shared, lanes: Some((run, reg)), worker: config.worker, notifier: config.notifier }
    }

    pub fn worker(&self) -> WorkerId {
        self.worker
    }

    pub fn chip(&self) -> &C {
        &self.shared.chip
    }

    /// The notifier every handle of this node signals, if any.
    pub fn notifier(&self) -> Option<&Arc<Notifier>> {
        self.notifier.as_ref()
    }

    /// Register a chip callable. Errors at the call: `WrongTarget`,
    /// `TableFull`, `Endpoint(ShutDown)`. The handle resolves on the
    /// settlement: `Ok(handle)` when PREPARED, `PrepareFailed` or `Cancelled`.
    pub fn register(&self, spec: CallableSpec) -> Result<RegisterHandle, RegisterError> {
        if spec.kind != TargetKind::ChipCallable {
            return Err(RegisterError::WrongTarget);
        }
        let digest = spec.digest();
        let mut reg = self.shared.lock();
        if reg.shutting_down {
            return Err(RegisterError::Endpoint(EndpointError::ShutDown));
        }
        let (handle, fresh) = match reg.table.handle(SlotInput::Register { digest }) {
            Ok(SlotReply::Registered { handle, fresh }) => (handle, fresh),
            Err(SlotError::Register(e)) => return Err(e),
            other => unreachable!("register replied {other:?}"),
        };
        let (pending, cell) = reg.new_pending();
        if fresh {
            reg.prepares.insert(handle, (spec, Arc::new(AtomicBool::new(false))));
            reg.settle_waiters.entry(handle).or_default().push(cell);
        } else {
            match reg.table.runnable(handle) {
                Ok(Some(_)) => resolve(&cell, Ok(handle)),
                Ok(None) => reg.settle_waiters.entry(handle).or_default().push(cell),
                Err(RunError::PrepareFailed(e)) => resolve(&cell, Err(RegisterError::PrepareFailed(e))),
                Err(e) => unreachable!("registered slot not runnable: {e:?}"),
            }
        }
        let wake = reg.drain();
        self.shared.unlock_and_wake(reg, wake);
        Ok(RegisterHandle { handle, pending })
    }

    /// Queue a run (the slot is pinned before it is queued). Errors at the
    /// call: a foreign or stale handle, a slot that is not runnable, a failed
    /// prepare, `Endpoint(ShutDown)`.
    pub fn run(&self, handle: Handle, args: TaskArgs, config: RunConfig) -> Result<RunHandle, RunError> {
        let mut reg = self.shared.lock();
        if reg.shutting_down {
            return Err(RunError::Endpoint(EndpointError::ShutDown));
        }
        match reg.table.handle(SlotInput::Pin { handle }) {
            Ok(SlotReply::Pinned { .. }) => {}
            Err(SlotError::Pin(e)) => return Err(e),
            other => unreachable!("pin replied {other:?}"),
        }
        let (pending, cell) = reg.new_pending();
        let ticket = RunTicket { args, config, cell };
        let _ = reg.run_lane.handle(LaneInput::Enqueue(RunJob { handle, payload: ticket }));
        self.shared.unlock_and_wake(reg, Wake { run: true, reg: false });
        Ok(pending)
    }

    /// End one registration. Resolves when accepted; the final one resolves
    /// when the slot is freed (its artifact released).
    pub fn unregister(&self, handle: Handle) -> Result<UnregisterHandle, UnregisterError> {
        let mut reg = self.shared.lock();
        if reg.shutting_down {
            return Err(UnregisterError::Endpoint(EndpointError::ShutDown));
        }
        let last = match reg.table.handle(SlotInput::Unregister { handle }) {
            Ok(SlotReply::Unregistered { last }) => last,
            Err(SlotError::Unregister(e)) => return Err(e),
            other => unreachable!("unregister replied {other:?}"),
        };
        let (pending, cell) = reg.new_pending();
        if last {
            reg.free_waiters.entry(handle).or_default().push(cell);
        } else {
            resolve(&cell, Ok(()));
        }
        let wake = reg.drain();
        self.shared.unlock_and_wake(reg, wake);
        Ok(pending)
    }

    /// A snapshot of slot `index`.
    pub fn slot(&self, index: SlotIndex) -> Option<SlotView> {
        let reg = self.shared.lock();
        let state = reg.table.state(index)?;
        Some(SlotView {
            state,
            generation: reg.table.generation(index).unwrap_or_default(),
            registrations: reg.table.registrations(index),
            pins: reg.table.pins(index),
        })
    }

    /// Completions dropped for carrying an old generation.
    pub fn stale_completions(&self) -> u64 {
        self.shared.lock().table.stale_completions()
    }

    /// MUTANT `sync_bypasses_queue` support: run on the caller's thread,
    /// around the run lane.
    #[cfg(chiplane_mutant = "sync_bypasses_queue")]
    pub fn run_direct(&self, handle: Handle, args: TaskArgs, config: RunConfig) -> RunResult {
        let mut reg = self.shared.lock();
        match reg.table.handle(SlotInput::Pin { handle }) {
            Ok(_) => {}
            Err(SlotError::Pin(e)) => return Err(e),
            Err(e) => unreachable!("{e:?}"),
        }
        let artifact = match reg.table.runnable(handle) {
            Ok(Some(a)) => Ok(a.clone()),
            Ok(None) => Err(RunError::Cancelled),
            Err(e) => Err(e),
        };
        drop(reg);
        let out = artifact.and_then(|a| self.shared.chip.run(&a, &args, &config).map_err(RunError::Chip));
        let mut reg = self.shared.lock();
        let _ = reg.table.handle(SlotInput::Unpin { handle });
        let wake = reg.drain();
        self.shared.wake(&mut reg, wake);
        out
    }

    /// Stop the node: see the module doc. Idempotent; also run on drop.
    pub fn shutdown(&mut self) {
        let Some((run, regl)) = self.lanes.take() else {
            return;
        };
        {
            let mut reg = self.shared.lock();
            reg.shutting_down = true;
            self.shared.wake(&mut reg, Wake { run: true, reg: true });
        }
        let run_joined = run.join();
        {
            let mut reg = self.shared.lock();
            let waiters = core::mem::take(&mut reg.settle_waiters);
            for cell in waiters.into_values().flatten() {
                resolve(&cell, Err(RegisterError::Endpoint(EndpointError::ShutDown)));
            }
            // End every registration still held: cancels or frees each slot.
            let worker = reg.table.worker();
            for i in 0..reg.table.limits().capacity {
                let index = SlotIndex(i as u32);
                let registered = matches!(
                    reg.table.state(index),
                    Some(SlotState::Preparing | SlotState::Prepared | SlotState::Failed)
                );
                if !registered {
                    continue;
                }
                let generation = reg.table.generation(index).unwrap_or_default();
                let handle = Handle { worker, index, generation };
                for _ in 0..reg.table.registrations(index) {
                    let reply = reg.table.handle(SlotInput::Unregister { handle });
                    assert!(reply.is_ok(), "teardown unregister rejected: {reply:?}");
                }
            }
            let wake = reg.drain();
            // Cancelled settlements of the teardown have no waiters left.
            reg.teardown_done = true;
            self.shared.wake(&mut reg, Wake { run: wake.run, reg: true });
        }
        let reg_joined = regl.join();
        let mut reg = self.shared.lock();
        let waiters = core::mem::take(&mut reg.free_waiters);
        for cell in waiters.into_values().flatten() {
            resolve(&cell, Err(UnregisterError::Endpoint(EndpointError::ShutDown)));
        }
        if !std::thread::panicking() {
            assert!(run_joined.is_ok() && reg_joined.is_ok(), "a lane thread panicked");
            assert_eq!(reg.table.live_slots(), 0, "slots still live after shutdown");
            assert!(reg.releases_owed.is_empty() && reg.reg_lane.is_idle(), "releases still owed after shutdown");
        }
    }
}

impl<C: Chip> Drop for ChipNode<C> {
    fn drop(&mut self) {
        self.shutdown();
    }
}
