//! The L3 worker: a parent with one chip child per chip, each reached
//! through its own mailbox region (docs/protocol.md sections 2, 4, 5). Everything
//! but the OS lives here; the OS half is a [`Spawner`]: hw's starts a chip
//! child *process* on a memfd region and blocks on real futexes, the models'
//! starts a child *thread* on a heap region with [`super::bell::LocalFutex`].
//! Both children run core's [`super::child::serve_loop`] over
//! [`super::child::NodeBackend`]; the parent side is core's
//! [`super::parent::Link`] for each chip.
//!
//! # Threads
//! - **callers** (any thread): `register*` / `unregister*` submit a control
//!   on the chip's link and publish it themselves; `run` / `run_async` queue
//!   an orchestration function (the private `queue` module). A caller that
//!   waits steps the link itself (the fast path of
//!   [`super::parent::Link::wait_until`]).
//! - one **driver** thread per chip ([`super::parent::Link::drive`]): async
//!   handles, settlements and liveness. It runs inside `catch_unwind`: if it
//!   dies anyway, the chip is failed with `PoisonReason::DriverDied` and
//!   every outstanding and later handle resolves with that error.
//! - the **orchestrator** thread: runs orchestration functions queued
//!   behind a running one. An orchestration function submits chip tasks
//!   with [`Orchestrator::submit`] (the chip comes from the handle); a run
//!   resolves once its function returned and every task it submitted
//!   resolved.
//!
//! # Identities
//! Every chip child incarnation gets a [`WorkerId::fresh`] id; a handle
//! names its chip and incarnation through it, and [`CallableHandle::check_worker`]
//! refuses a handle of any other worker, chip or incarnation
//! (`HandleError::Foreign`) before anything crosses the mailbox. The id
//! never repeats, so no number of restarts makes an old handle match.
//!
//! # Liveness and restart
//! A chip whose child died (or stalled past the watch's timeout, or whose
//! driver died) fails everything outstanding with the endpoint error and
//! stays failed until [`L3Worker::restart`] starts a fresh child on a fresh
//! region under a fresh id.
//!
//! # Shutdown (drop)
//! The run queue drains, every driver finishes what is outstanding, then
//! each link raises the region's sticky shutdown flag and rings its child,
//! and the watch lets the child leave (or kills it).

// clippy's `disallowed-types` resolves `crate::sync`'s re-exports to the std
// types it bans; this module uses only `crate::sync`.
#![allow(clippy::disallowed_types)]

mod handles;
mod queue;

use core::ops::Deref;

use crate::chip::{CallableSpec, RunConfig, RunOutput, TargetKind, TaskArgs};
#[cfg(not(any(chiplane_loom, chiplane_shuttle)))]
use crate::error::PoisonReason;
use crate::error::{ControlError, EndpointError, HandleError, RegisterError, RunError, UnregisterError};
use crate::frame::ControlOp;
use crate::ids::{CallableHandle, Generation, SlotIndex, WorkerId};
use crate::sync::{thread, Arc, Mutex, MutexGuard};

use super::bell::Futex;
use super::parent::{Link, LinkOptions};
use super::port::ChildWatch;
use super::region::Region;

pub use handles::{
    L3PendingCall, L3PendingRegister, L3PendingRun, L3PendingUnregister, Orchestrator, RunOutcome, TaskRef,
};
use queue::RunQueue;

/// The OS half of an L3 worker (module doc).
pub trait Spawner: Send + Sync + 'static {
    /// A mapped region the parent keeps (hw: the memfd mapping).
    type Region: Deref<Target = Region> + Clone + Send + Sync + 'static;
    /// The child's liveness (hw: waitpid and the heartbeat).
    type Watch: ChildWatch + Send + 'static;
    /// How the parent side blocks on the region's doorbells.
    type Futex: Futex + 'static;

    /// The futex every link of this worker blocks through.
    fn futex(&self) -> Arc<Self::Futex>;

    /// Start chip `chip`'s child as worker `worker` on a fresh region, and
    /// return once it serves it.
    fn spawn(&self, chip: usize, worker: WorkerId) -> Result<(Self::Region, Self::Watch), SpawnError>;
}

/// A chip child could not be started.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SpawnError {
    /// The chip.
    pub chip: usize,
    /// Why (the OS's words).
    pub reason: String,
}

impl core::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "starting the child of chip {}: {}", self.chip, self.reason)
    }
}

impl std::error::Error for SpawnError {}

/// Construction parameters of an [`L3Worker`].
#[derive(Clone, Copy, Debug)]
pub struct L3Options {
    /// Number of chips (one child and one mailbox each).
    pub chips: usize,
    /// How the parent side sleeps.
    pub link: LinkOptions,
}

impl Default for L3Options {
    fn default() -> Self {
        L3Options { chips: 1, link: LinkOptions::default() }
    }
}

type LinkOf<S> = Link<<S as Spawner>::Region, <S as Spawner>::Watch, <S as Spawner>::Futex>;

/// One chip's current incarnation.
struct Incarnation<S: Spawner> {
    link: Arc<LinkOf<S>>,
    worker: WorkerId,
    number: u64,
    driver: Option<thread::JoinHandle<()>>,
}

/// State shared by the worker, its orchestrator and its handles.
pub(crate) struct Shared<S: Spawner> {
    spawner: S,
    options: L3Options,
    chips: Vec<Mutex<Incarnation<S>>>,
}

impl<S: Spawner> Shared<S> {
    fn chip(&self, chip: usize) -> Option<MutexGuard<'_, Incarnation<S>>> {
        self.chips.get(chip).map(|m| m.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The chip (and its link) whose current incarnation issued `handle`.
    pub(crate) fn link_of(&self, handle: CallableHandle) -> Result<(usize, Arc<LinkOf<S>>), HandleError> {
        let mut first = None;
        for i in 0..self.chips.len() {
            let inc = self.chip(i).expect("in range");
            if handle.check_worker(inc.worker).is_ok() {
                return Ok((i, inc.link.clone()));
            }
            first.get_or_insert(inc.worker);
        }
        Err(HandleError::Foreign { expected: first.unwrap_or_default(), got: handle.worker })
    }

    /// Start chip `chip`'s child as incarnation `number` with its driver.
    // The driver is spawned through `crate::sync::thread` (the one place
    // core spawns); clippy sees the std function it re-exports.
    #[allow(clippy::disallowed_methods)]
    fn start(&self, chip: usize, number: u64) -> Result<Incarnation<S>, SpawnError> {
        let worker = WorkerId::fresh();
        let (region, watch) = self.spawner.spawn(chip, worker)?;
        let link = Arc::new(Link::new(region, watch, self.spawner.futex(), self.options.link));
        let driver = {
            let link = link.clone();
            thread::spawn(move || drive_guarded(&link))
        };
        Ok(Incarnation { link, worker, number, driver: Some(driver) })
    }
}

/// The driver thread's body: [`Link::drive`], and if it panics anyway, fail
/// the chip so nothing waits on a dead driver (defence in depth).
fn drive_guarded<R, W, F>(link: &Link<R, W, F>)
where
    R: Deref<Target = Region> + Clone,
    W: ChildWatch,
    F: Futex + ?Sized,
{
    #[cfg(not(any(chiplane_loom, chiplane_shuttle)))]
    {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| link.drive()));
        if r.is_err() {
            link.fail(EndpointError::Poisoned(PoisonReason::DriverDied));
        }
    }
    #[cfg(any(chiplane_loom, chiplane_shuttle))]
    link.drive();
}

/// The L3 worker. See the module doc.
pub struct L3Worker<S: Spawner> {
    shared: Arc<Shared<S>>,
    queue: Arc<RunQueue<Orchestrator<S>>>,
    orchestrator: Option<thread::JoinHandle<()>>,
}

impl<S: Spawner> core::fmt::Debug for L3Worker<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("L3Worker").field("chips", &self.shared.chips.len()).finish_non_exhaustive()
    }
}

impl<S: Spawner> L3Worker<S> {
    /// Start `options.chips` chip children (each on a fresh region, each
    /// with its driver) and the orchestrator.
    #[allow(clippy::disallowed_methods)]
    pub fn new(spawner: S, options: L3Options) -> Result<Self, SpawnError> {
        let mut shared = Shared { spawner, options, chips: Vec::with_capacity(options.chips) };
        for chip in 0..options.chips {
            let inc = shared.start(chip, 0)?;
            shared.chips.push(Mutex::new(inc));
        }
        let shared = Arc::new(shared);
        let queue: Arc<RunQueue<Orchestrator<S>>> = Arc::new(RunQueue::new());
        let orchestrator = {
            let (shared, queue) = (shared.clone(), queue.clone());
            thread::spawn(move || {
                while let Some(job) = queue.next_queued() {
                    let mut orch = Orchestrator::new(shared.clone());
                    job(&mut orch);
                    queue.finished();
                }
            })
        };
        Ok(L3Worker { shared, queue, orchestrator: Some(orchestrator) })
    }

    /// Number of chips.
    pub fn chips(&self) -> usize {
        self.shared.chips.len()
    }

    /// The worker id of chip `chip`'s current child (every handle it issues
    /// carries it).
    pub fn chip_worker(&self, chip: usize) -> Option<WorkerId> {
        self.shared.chip(chip).map(|c| c.worker)
    }

    /// How many times chip `chip`'s child was replaced.
    pub fn incarnation(&self, chip: usize) -> Option<u64> {
        self.shared.chip(chip).map(|c| c.number)
    }

    /// The endpoint error of chip `chip` once its child is gone.
    pub fn chip_error(&self, chip: usize) -> Option<EndpointError> {
        let link = self.shared.chip(chip)?.link.clone();
        let err = link.port().endpoint().gone().cloned();
        err
    }

    /// The raw state word of chip `chip`'s current mailbox (diagnostics).
    pub fn word(&self, chip: usize) -> Option<u32> {
        self.shared.chip(chip).map(|c| c.link.region().word().load())
    }

    /// Chip `chip`'s current link (tests and diagnostics: hold its port to
    /// keep every thread from stepping it).
    #[doc(hidden)]
    pub fn link(&self, chip: usize) -> Option<Arc<LinkOf<S>>> {
        self.shared.chip(chip).map(|c| c.link.clone())
    }

    /// Register a chip callable on chip 0 (see [`L3Worker::register_on`]).
    pub fn register_async(&self, spec: CallableSpec) -> Result<L3PendingRegister<S>, RegisterError> {
        self.register_on(0, spec)
    }

    /// Register a chip callable on chip `chip`: a `Register` control (it may
    /// enter while a task runs). Errors at the call: `WrongTarget`,
    /// `TooLarge` (a limit of the control frame, named), `NoSuchChip`, an
    /// endpoint error.
    pub fn register_on(&self, chip: usize, spec: CallableSpec) -> Result<L3PendingRegister<S>, RegisterError> {
        if spec.kind != TargetKind::ChipCallable {
            return Err(RegisterError::WrongTarget);
        }
        let chips = self.chips();
        let (link, worker) = {
            let inc = self.shared.chip(chip).ok_or(RegisterError::NoSuchChip { chip, chips })?;
            (inc.link.clone(), inc.worker)
        };
        let control =
            link.submit_control(SlotIndex(0), Generation::NONE, ControlOp::Register { spec }).map_err(|e| match e {
                ControlError::TooLarge(t) => RegisterError::TooLarge(t),
                ControlError::Endpoint(e) => RegisterError::Endpoint(e),
                ControlError::Register(e) => e,
                ControlError::Unregister(_) => unreachable!("a register submission refused as an unregister"),
            })?;
        Ok(L3PendingRegister::new(link, worker, control))
    }

    /// `register_async(spec)?.wait()`; on `PrepareFailed` the registration
    /// is ended before returning (as the L2 worker's sync `register`).
    pub fn register(&self, spec: CallableSpec) -> Result<CallableHandle, RegisterError> {
        self.register_sync(0, spec)
    }

    /// `register_on(chip, spec)?.wait()`, ending a failed registration.
    pub fn register_sync(&self, chip: usize, spec: CallableSpec) -> Result<CallableHandle, RegisterError> {
        let mut pending = self.register_on(chip, spec)?;
        pending.settle();
        let handle = pending.wait_accepted()?;
        let result = pending.wait();
        if let Err(RegisterError::PrepareFailed(_)) = &result {
            if let Ok(h) = self.unregister_async(handle) {
                let _ = h.wait();
            }
        }
        result
    }

    /// End one registration of `handle` (an `Unregister` control on the
    /// handle's chip; it may enter while a task runs). A handle of another
    /// worker, chip or incarnation is `Handle(Foreign)` at the call.
    pub fn unregister_async(&self, handle: CallableHandle) -> Result<L3PendingUnregister<S>, UnregisterError> {
        let (_, link) = self.shared.link_of(handle).map_err(UnregisterError::Handle)?;
        let control =
            link.submit_control(handle.index, handle.generation, ControlOp::Unregister).map_err(|e| match e {
                ControlError::Endpoint(e) => UnregisterError::Endpoint(e),
                ControlError::Unregister(e) => e,
                other => unreachable!("an unregister submission refused with {other:?}"),
            })?;
        Ok(L3PendingUnregister::new(link, control))
    }

    /// `unregister_async(handle)?.wait()`.
    pub fn unregister(&self, handle: CallableHandle) -> Result<(), UnregisterError> {
        self.unregister_async(handle)?.wait()
    }

    /// A memory control on chip `chip` (waits for IDLE: rule 3).
    pub fn memory_control(&self, chip: usize, bytes: u64, free: bool) -> Result<(), ControlError> {
        let link = self
            .shared
            .chip(chip)
            .map(|c| c.link.clone())
            .ok_or_else(|| ControlError::Register(RegisterError::NoSuchChip { chip, chips: self.chips() }))?;
        let control = link.submit_control(SlotIndex(0), Generation::NONE, ControlOp::Memory { bytes, free })?;
        link.wait_until(|| control.is_accepted());
        control.try_take_reply().expect("the reply is taken only here").map(|_| ())
    }

    /// Queue an orchestration function on the run queue. It runs after every
    /// earlier one: at once on this thread when the queue is idle, else on
    /// the orchestrator thread. The handle resolves when it returned and
    /// every task it submitted resolved. (An orchestration function must not
    /// wait for a run of the same worker: it would wait for itself.)
    pub fn run_async<R, F>(&self, orch_fn: F) -> L3PendingRun<S, R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Orchestrator<S>) -> R + Send + 'static,
    {
        let (run, job) = L3PendingRun::job(orch_fn);
        if let Some(job) = self.queue.push_or_claim(job) {
            // The queue was idle: run it here, then hand the queue back.
            let mut orch = Orchestrator::new(self.shared.clone());
            job(&mut orch);
            self.queue.finished();
        }
        run
    }

    /// `run_async(orch_fn).wait()`.
    pub fn run<R, F>(&self, orch_fn: F) -> RunOutcome<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Orchestrator<S>) -> R + Send + 'static,
    {
        self.run_async(orch_fn).wait()
    }

    /// One chip task as a run: `run_async(|o| o.submit(handle, args, config))`
    /// (the run queue keeps its order with every other run). On an idle
    /// queue it claims the queue and submits at once, as that function
    /// would, without boxing it (docs/protocol.md section 5).
    pub fn call_async(
        &self,
        handle: CallableHandle,
        args: TaskArgs,
        config: RunConfig,
    ) -> Result<L3PendingCall<S>, RunError> {
        // Refuse what the orchestration would refuse at the call already.
        crate::frame::check_args(&args).map_err(RunError::TooLarge)?;
        if let Some(claim) = self.queue.try_claim() {
            // The queue was idle: submit here, where the claimed job would
            // have run `o.submit(..)` (the same order with every other
            // run), without boxing a job, its result cell and its task
            // list. One lookup of the handle's link serves the refusal and
            // the submission. The claim's drop (also on the refusal's
            // early return) hands the queue back.
            let (_, link) = self.shared.link_of(handle).map_err(RunError::Handle)?;
            let submitted = link.submit_task(handle.index, handle.generation, config, args).map(|task| (link, task));
            drop(claim);
            return Ok(L3PendingCall::submitted(submitted));
        }
        self.shared.link_of(handle).map_err(RunError::Handle)?;
        Ok(L3PendingCall::queued(self.run_async(move |o| o.submit(handle, args, config))))
    }

    /// `call_async(..)?.wait()`.
    pub fn call(&self, handle: CallableHandle, args: TaskArgs, config: RunConfig) -> Result<RunOutput, RunError> {
        self.call_async(handle, args, config)?.wait()
    }

    /// Replace chip `chip`'s child with a fresh one on a fresh region under
    /// a fresh worker id. A child still running is killed first; everything
    /// outstanding on it fails with `EndpointError::ChildDied` before the
    /// new child starts.
    pub fn restart(&self, chip: usize) -> Result<(), SpawnError> {
        let mut inc = self.shared.chip(chip).ok_or_else(|| SpawnError { chip, reason: format!("no chip {chip}") })?;
        inc.link.fail(EndpointError::ChildDied);
        inc.link.stop();
        if let Some(d) = inc.driver.take() {
            let _ = d.join();
        }
        let number = inc.number + 1;
        *inc = self.shared.start(chip, number)?;
        Ok(())
    }
}

impl<S: Spawner> Drop for L3Worker<S> {
    fn drop(&mut self) {
        // 1. Close the run queue; the orchestrator finishes what is queued.
        self.queue.close();
        if let Some(o) = self.orchestrator.take() {
            let _ = o.join();
        }
        // 2. Each driver finishes what is outstanding, then stops; then the
        //    child is told to leave and the watch sees it go.
        for chip in &self.shared.chips {
            let mut inc = chip.lock().unwrap_or_else(|e| e.into_inner());
            inc.link.stop();
            if let Some(d) = inc.driver.take() {
                let _ = d.join();
            }
            inc.link.shutdown();
            inc.link.port().watch_mut().finish();
        }
    }
}

impl<S: Spawner> super::api::Pending for L3PendingRegister<S> {
    type Output = Result<CallableHandle, RegisterError>;
    fn is_ready(&self) -> bool {
        L3PendingRegister::is_ready(self)
    }
    fn wait(self) -> Self::Output {
        L3PendingRegister::wait(self)
    }
}

impl<S: Spawner> super::api::Pending for L3PendingUnregister<S> {
    type Output = Result<(), UnregisterError>;
    fn is_ready(&self) -> bool {
        L3PendingUnregister::is_ready(self)
    }
    fn wait(self) -> Self::Output {
        L3PendingUnregister::wait(self)
    }
}

impl<S: Spawner> super::api::Pending for L3PendingCall<S> {
    type Output = Result<RunOutput, RunError>;
    fn is_ready(&self) -> bool {
        L3PendingCall::is_ready(self)
    }
    fn wait(self) -> Self::Output {
        L3PendingCall::wait(self)
    }
}

impl<S: Spawner> super::api::Worker for L3Worker<S> {
    type Register = L3PendingRegister<S>;
    type Unregister = L3PendingUnregister<S>;
    type Run = L3PendingCall<S>;

    fn register_async(&self, spec: CallableSpec) -> Result<L3PendingRegister<S>, RegisterError> {
        L3Worker::register_async(self, spec)
    }
    fn register(&self, spec: CallableSpec) -> Result<CallableHandle, RegisterError> {
        L3Worker::register(self, spec)
    }
    fn unregister_async(&self, handle: CallableHandle) -> Result<L3PendingUnregister<S>, UnregisterError> {
        L3Worker::unregister_async(self, handle)
    }
    fn run_async(
        &self,
        handle: CallableHandle,
        args: TaskArgs,
        config: RunConfig,
    ) -> Result<L3PendingCall<S>, RunError> {
        self.call_async(handle, args, config)
    }
}
