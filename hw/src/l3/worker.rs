//! The L3 worker: a parent process with one chip child **process** per chip,
//! each reached through its own memfd mailbox (design.md sections 2, 4, 5).
//!
//! # Threads
//! - **callers** (any thread): `register*` / `unregister*` queue a control in
//!   the chip's port and return a handle; `run` / `run_async` queue an
//!   orchestration function. Nothing here blocks on the child except the
//!   sync forms, which are the async form followed by `wait()`.
//! - the **driver** thread owns the progress of every port (core's
//!   [`Port`]): it steps them while work is outstanding (spinning briefly,
//!   then parking with a short growing timeout, rule 11) and sleeps on a
//!   condvar when nothing is outstanding. Every submission unparks it.
//! - the **run queue** executes orchestration functions one at a time, in
//!   submission order. When it is idle (nothing queued, nothing running) a
//!   new function runs at once on the caller's thread (it only submits, so
//!   `run_async` returns as soon as it returned; no thread hop delays the
//!   first task); otherwise it is queued and the **orchestrator** thread
//!   runs it after every earlier one. An orchestration
//!   function submits chip tasks with [`Orchestrator::submit`]; they enter
//!   the chip's port in FIFO order, so a later run's tasks never overtake an
//!   earlier run's on the same chip. A run resolves once its function has
//!   returned and every task it submitted has resolved; the orchestrator
//!   thread does not wait for that before starting the next function, so a
//!   next run's task is staged while the previous one runs.
//!
//! # Liveness and restart
//! Each port's [`ProcessWatch`] reports the child gone when it exited or its
//! heartbeat stalled past `L3Config::liveness_timeout` while work was
//! outstanding; the port then poisons the word, kills and reaps the child and
//! fails every outstanding handle with `EndpointError` (rule 6). The chip
//! stays dead (new submissions fail with that error) until
//! [`L3Worker::restart`] starts a fresh child on a fresh mailbox. Each child
//! incarnation has its own `WorkerId`, so a handle registered on a dead child
//! is `HandleError::Foreign` on its successor, never silently reused.
//!
//! # Shutdown (drop)
//! The run queue is drained, then the driver drives every port until nothing
//! is outstanding, then each port raises the sticky shutdown flag; each child
//! leaves its loop, joins its lanes (releasing every artifact) and exits 0.
//! A child that does not exit within `L3Config::exit_timeout` is killed.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use chiplane_core::chip::{CallableSpec, RunConfig, TargetKind, TaskArgs};
use chiplane_core::conc::cell::Completion;
use chiplane_core::conc::port::{self, ControlHandle, Port, TaskResult};
use chiplane_core::error::{ControlError, EndpointError, HandleError, RegisterError, RunError, UnregisterError};
use chiplane_core::frame::{ControlOp, ControlReply, Settlement};
use chiplane_core::ids::{DispatchId, Generation, Handle, SlotIndex, WorkerId};

use super::child::Device;
use super::memory::{Bell, Mailbox, MailboxRef, RING_CAPACITY};
use super::watch::ProcessWatch;
use crate::process::{ChildCommand, ChildExit, ChipChild};

/// Environment variable naming the chip child executable.
pub const CHILD_EXE_ENV: &str = "CHIPLANE_CHILD";
/// File name of the chip child executable (a `[[bin]]` of this crate).
pub const CHILD_EXE_NAME: &str = "chiplane-child";

/// Construction parameters of an [`L3Worker`].
#[derive(Clone, Debug)]
pub struct L3Config {
    /// Number of chip children (one mailbox each).
    pub chips: usize,
    pub device: Device,
    /// The chip child executable; default: `$CHIPLANE_CHILD`, else
    /// `chiplane-child` next to the current executable (or one directory up,
    /// for test and bench executables in `target/*/deps`).
    pub child_exe: Option<PathBuf>,
    /// No heartbeat for this long while work is outstanding: the child is
    /// declared gone.
    pub liveness_timeout: Duration,
    /// Bound on a child's start-up (map, attach, device, lanes).
    pub startup_timeout: Duration,
    /// Bound on a child's exit after shutdown before it is killed.
    pub exit_timeout: Duration,
    pub ring_capacity: u32,
    /// Extra arguments for every chip child (before the ones the worker adds).
    pub child_args: Vec<String>,
    /// Children's stdout/stderr to /dev/null.
    pub quiet_children: bool,
    /// Each child writes its lane spans to `DIR/chip-<i>-<incarnation>.spans`
    /// when it shuts down (see [`super::trace`]).
    pub trace_dir: Option<PathBuf>,
}

impl Default for L3Config {
    fn default() -> Self {
        L3Config {
            chips: 1,
            device: Device::Host,
            child_exe: None,
            liveness_timeout: Duration::from_secs(2),
            startup_timeout: Duration::from_secs(20),
            exit_timeout: Duration::from_secs(10),
            ring_capacity: RING_CAPACITY,
            child_args: Vec::new(),
            quiet_children: false,
            trace_dir: None,
        }
    }
}

/// Errors of the L3 worker's calls.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum L3Error {
    /// The chip index names no chip of this worker.
    NoSuchChip { chip: usize, chips: usize },
    /// The control failed (at the call, at the child, or by an endpoint
    /// error).
    Control(ControlError),
}

impl From<ControlError> for L3Error {
    fn from(e: ControlError) -> Self {
        L3Error::Control(e)
    }
}

impl From<RegisterError> for L3Error {
    fn from(e: RegisterError) -> Self {
        L3Error::Control(ControlError::Register(e))
    }
}

impl core::fmt::Display for L3Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for L3Error {}

fn endpoint(e: EndpointError) -> L3Error {
    L3Error::Control(ControlError::Endpoint(e))
}

/// The bookkeeping of one chip: its current child, mailbox and port.
struct Link {
    port: Port<MailboxRef, ProcessWatch>,
    mailbox: Arc<Mailbox>,
    child: Arc<Mutex<ChipChild>>,
    worker: WorkerId,
    pid: u32,
    incarnation: u32,
}

struct State {
    links: Vec<Link>,
    stopping: bool,
}

struct Shared {
    state: Mutex<State>,
    /// The driver sleeps here while nothing is outstanding.
    idle: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held (an invariant assert in the port)
        // leaves every port consistent at its last step: carry on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type Job = Box<dyn FnOnce(&mut Orchestrator<'_>) + Send>;

/// The L3 worker. See the module doc.
pub struct L3Worker {
    shared: Arc<Shared>,
    driver: Option<JoinHandle<()>>,
    driver_thread: Thread,
    queue: Arc<RunQueue>,
    orchestrator: Option<JoinHandle<()>>,
    config: L3Config,
    child_exe: PathBuf,
}

impl core::fmt::Debug for L3Worker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("L3Worker").field("chips", &self.config.chips).field("device", &self.config.device).finish()
    }
}

/// Where the chip child executable is (see `L3Config::child_exe`).
pub fn default_child_exe() -> PathBuf {
    if let Some(p) = std::env::var_os(CHILD_EXE_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    let here = dir.join(CHILD_EXE_NAME);
    if here.exists() {
        return here;
    }
    dir.parent().map(|d| d.join(CHILD_EXE_NAME)).unwrap_or(here)
}

impl L3Worker {
    /// Start `config.chips` chip children (each on a fresh memfd mailbox)
    /// and wait until each serves its mailbox.
    pub fn new(config: L3Config) -> io::Result<Self> {
        let child_exe = config.child_exe.clone().unwrap_or_else(default_child_exe);
        let mut links = Vec::with_capacity(config.chips);
        for chip in 0..config.chips {
            links.push(spawn_link(&config, &child_exe, chip, 0)?);
        }
        let shared = Arc::new(Shared { state: Mutex::new(State { links, stopping: false }), idle: Condvar::new() });
        let driver = {
            let shared = shared.clone();
            thread::Builder::new().name("chiplane-l3-driver".into()).spawn(move || drive(&shared))?
        };
        let driver_thread = driver.thread().clone();
        let queue = Arc::new(RunQueue::default());
        let orchestrator = {
            let (shared, queue) = (shared.clone(), queue.clone());
            let driver_thread = driver_thread.clone();
            thread::Builder::new().name("chiplane-l3-orch".into()).spawn(move || {
                while let Some(job) = queue.next_queued() {
                    let mut orch = Orchestrator { shared: &shared, driver: &driver_thread, tasks: Vec::new() };
                    job(&mut orch);
                    queue.finished();
                }
            })?
        };
        Ok(L3Worker {
            shared,
            driver: Some(driver),
            driver_thread,
            queue,
            orchestrator: Some(orchestrator),
            config,
            child_exe,
        })
    }

    pub fn chips(&self) -> usize {
        self.config.chips
    }

    /// The process id of chip `chip`'s current child.
    pub fn child_pid(&self, chip: usize) -> Option<u32> {
        self.shared.lock().links.get(chip).map(|l| l.pid)
    }

    /// The worker id of chip `chip`'s current child (every handle it issues
    /// carries it).
    pub fn chip_worker(&self, chip: usize) -> Option<WorkerId> {
        self.shared.lock().links.get(chip).map(|l| l.worker)
    }

    /// The endpoint error of chip `chip` once its child is gone.
    pub fn chip_error(&self, chip: usize) -> Option<EndpointError> {
        self.shared.lock().links.get(chip).and_then(|l| l.port.endpoint().gone().cloned())
    }

    /// How many times chip `chip`'s child was replaced.
    pub fn incarnation(&self, chip: usize) -> Option<u32> {
        self.shared.lock().links.get(chip).map(|l| l.incarnation)
    }

    /// The raw state word of chip `chip`'s current mailbox (diagnostics).
    pub fn word(&self, chip: usize) -> Option<u32> {
        self.shared.lock().links.get(chip).map(|l| l.port.region().word().load())
    }

    /// Test hook: wait (bounded by `timeout`) until `ready` holds for chip
    /// `chip`'s mailbox, then keep the driver from stepping any port until
    /// the returned guard is dropped. The kill tests use it to hold the
    /// parent side at one protocol step while they SIGKILL the child.
    #[doc(hidden)]
    pub fn hold_driver_when(
        &self,
        chip: usize,
        timeout: Duration,
        mut ready: impl FnMut(&chiplane_core::conc::region::Region) -> bool,
    ) -> Option<DriverHold<'_>> {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.shared.lock();
            if ready(st.links.get(chip)?.port.region()) {
                return Some(DriverHold { guard: Some(st), shared: &self.shared, driver: &self.driver_thread });
            }
            drop(st);
            if Instant::now() > deadline {
                return None;
            }
            thread::yield_now();
        }
    }

    fn with_link<T>(&self, chip: usize, f: impl FnOnce(&mut Link) -> Result<T, L3Error>) -> Result<T, L3Error> {
        let mut st = self.shared.lock();
        let chips = st.links.len();
        let link = st.links.get_mut(chip).ok_or(L3Error::NoSuchChip { chip, chips })?;
        let r = f(link);
        link.mailbox.ring(Bell::ToParent);
        drop(st);
        wake_driver(&self.shared, &self.driver_thread);
        r
    }

    /// Register a chip callable on chip `chip`: a `Register` control (it may
    /// enter while a task runs). Errors at the call: `NoSuchChip`,
    /// `WrongTarget`, `PayloadTooLarge`, an endpoint error.
    pub fn register_async(&self, chip: usize, spec: CallableSpec) -> Result<L3RegisterHandle, L3Error> {
        if spec.kind != TargetKind::ChipCallable {
            return Err(RegisterError::WrongTarget.into());
        }
        self.with_link(chip, |link| {
            let control = link.port.submit_control(SlotIndex(0), Generation::NONE, ControlOp::Register { spec })?;
            Ok(L3RegisterHandle { worker: link.worker, control, accepted: None })
        })
    }

    /// `register_async(..)?.wait()`. On `PrepareFailed` the registration is
    /// ended before returning (as the L2 worker's sync `register`).
    pub fn register(&self, chip: usize, spec: CallableSpec) -> Result<Handle, L3Error> {
        let mut pending = self.register_async(chip, spec)?;
        let handle = pending.wait_accepted()?;
        let result = pending.wait();
        if let Err(L3Error::Control(ControlError::Register(RegisterError::PrepareFailed(_)))) = &result {
            if let Ok(h) = self.unregister_async(chip, handle) {
                let _ = h.wait();
            }
        }
        result
    }

    /// End one registration of `handle` on chip `chip` (an `Unregister`
    /// control; it may enter while a task runs). The handle must belong to
    /// that chip's current child.
    pub fn unregister_async(&self, chip: usize, handle: Handle) -> Result<L3UnregisterHandle, L3Error> {
        self.with_link(chip, |link| {
            if handle.worker != link.worker {
                let e = UnregisterError::Handle(HandleError::Foreign { expected: link.worker, got: handle.worker });
                return Err(L3Error::Control(ControlError::Unregister(e)));
            }
            let control = link.port.submit_control(handle.index, handle.generation, ControlOp::Unregister)?;
            Ok(L3UnregisterHandle { control })
        })
    }

    /// `unregister_async(..)?.wait()`.
    pub fn unregister(&self, chip: usize, handle: Handle) -> Result<(), L3Error> {
        self.unregister_async(chip, handle)?.wait()
    }

    /// A memory control on chip `chip` (waits for IDLE: rule 3).
    pub fn memory_control(&self, chip: usize, bytes: u64, free: bool) -> Result<(), L3Error> {
        let control = self.with_link(chip, |link| {
            Ok(link.port.submit_control(SlotIndex(0), Generation::NONE, ControlOp::Memory { bytes, free })?)
        })?;
        match control.wait_reply() {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(e.into()),
            None => unreachable!("the reply is taken only here"),
        }
    }

    /// Queue an orchestration function on the run queue. It runs after every
    /// earlier one: at once on this thread when the queue is idle, else on
    /// the orchestrator thread. The handle resolves when it returned and
    /// every task it submitted resolved. (An orchestration function must not
    /// call `run` on the same worker: it would wait for itself.)
    pub fn run_async<R, F>(&self, orch_fn: F) -> L3RunHandle<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Orchestrator<'_>) -> R + Send + 'static,
    {
        // The Mutex makes the cell `Sync` for any `R: Send`.
        let cell: Arc<Completion<Mutex<JobResult<R>>>> = Arc::new(Completion::new());
        let done = cell.clone();
        let job: Job = Box::new(move |orch: &mut Orchestrator<'_>| {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| orch_fn(orch)));
            let tasks = std::mem::take(&mut orch.tasks);
            let value = r.map_err(|p| {
                p.downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "orchestration function panicked".into())
            });
            assert!(done.complete(Mutex::new(JobResult { value, tasks })).is_ok(), "a run resolves once");
        });
        if let Some(job) = self.queue.push_or_claim(job) {
            // The queue was idle: run it here, then hand the queue back.
            let mut orch = Orchestrator { shared: &self.shared, driver: &self.driver_thread, tasks: Vec::new() };
            job(&mut orch);
            self.queue.finished();
        }
        L3RunHandle { cell }
    }

    /// `run_async(orch_fn).wait()`.
    pub fn run<R, F>(&self, orch_fn: F) -> RunOutcome<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Orchestrator<'_>) -> R + Send + 'static,
    {
        self.run_async(orch_fn).wait()
    }

    /// Replace chip `chip`'s child with a fresh one on a fresh mailbox. A
    /// child still running is killed first; everything outstanding on it
    /// fails with `EndpointError::ChildDied` before the new child starts.
    pub fn restart(&self, chip: usize) -> io::Result<()> {
        let mut st = self.shared.lock();
        let chips = st.links.len();
        let link = st.links.get_mut(chip).ok_or_else(|| io::Error::other(format!("no chip {chip} (of {chips})")))?;
        let _ = link.child.lock().unwrap_or_else(|e| e.into_inner()).kill_and_reap();
        // The child is reaped: the watch reports it gone at the first step
        // that finds nothing to do, and the port fails what was outstanding.
        let deadline = Instant::now() + self.config.liveness_timeout + Duration::from_secs(1);
        while link.port.outstanding() && Instant::now() < deadline {
            link.port.progress();
        }
        let incarnation = link.incarnation.wrapping_add(1);
        let fresh = spawn_link(&self.config, &self.child_exe, chip, incarnation)?;
        st.links[chip] = fresh;
        Ok(())
    }
}

impl Drop for L3Worker {
    fn drop(&mut self) {
        // 1. Close the run queue; the orchestrator finishes what is queued.
        self.queue.close();
        if let Some(o) = self.orchestrator.take() {
            let _ = o.join();
        }
        // 2. Let the driver finish everything outstanding, then stop.
        self.shared.lock().stopping = true;
        wake_driver(&self.shared, &self.driver_thread);
        if let Some(d) = self.driver.take() {
            let _ = d.join();
        }
        // 3. Shut every child down and reap it.
        let mut st = self.shared.lock();
        for link in st.links.iter_mut() {
            link.port.shutdown();
            let mut child = link.child.lock().unwrap_or_else(|e| e.into_inner());
            if !matches!(child.wait_timeout(self.config.exit_timeout), Ok(Some(_))) {
                let _ = child.kill_and_reap();
            }
        }
    }
}

/// The run queue (module doc): FIFO, one orchestration function at a time,
/// run inline by the submitter when idle, else by the orchestrator thread.
#[derive(Default)]
struct RunQueue {
    state: Mutex<QueueState>,
    wake: Condvar,
}

#[derive(Default)]
struct QueueState {
    queued: VecDeque<Job>,
    running: bool,
    closed: bool,
}

impl RunQueue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `job`, or hand it back (claimed: `running` set) when nothing
    /// is queued or running, for the caller to run now.
    fn push_or_claim(&self, job: Job) -> Option<Job> {
        let mut q = self.lock();
        if !q.running && q.queued.is_empty() {
            q.running = true;
            return Some(job);
        }
        q.queued.push_back(job);
        self.wake.notify_all();
        None
    }

    /// Orchestrator thread: the next queued job once none runs (claimed);
    /// `None` once closed and drained.
    fn next_queued(&self) -> Option<Job> {
        let mut q = self.lock();
        loop {
            if !q.running {
                if let Some(job) = q.queued.pop_front() {
                    q.running = true;
                    return Some(job);
                }
                if q.closed {
                    return None;
                }
            }
            q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The claimed job returned.
    fn finished(&self) {
        let mut q = self.lock();
        q.running = false;
        self.wake.notify_all();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
    }
}

fn wake_driver(shared: &Shared, driver: &Thread) {
    shared.idle.notify_all();
    driver.unpark();
}

/// Ask the kernel for exact timer wake-ups on this thread: the polling
/// parks of a mailbox loop are 1-64 us, and the default timer slack (50 us)
/// would stretch each of them by up to that much.
pub fn tight_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK only sets this thread's timer slack (1 ns);
    // no pointers are passed.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
}

/// The driver thread (module doc).
fn drive(shared: &Shared) {
    tight_timer_slack();
    let mut backoff = Backoff::default();
    let mut st = shared.lock();
    loop {
        // With one chip the driver sleeps on its `to_parent` doorbell (read
        // before the step: a ring after it makes the wait return at once).
        let bell = match st.links.as_slice() {
            [one] => Some((one.mailbox.clone(), one.mailbox.bell_value(Bell::ToParent))),
            _ => None,
        };
        let mut did = false;
        let mut outstanding = false;
        for link in st.links.iter_mut() {
            if link.port.progress() {
                did = true;
                // The child may wait for what this step published.
                link.mailbox.ring(Bell::ToChild);
            }
            outstanding |= link.port.outstanding();
        }
        if did {
            backoff.reset();
            // Let submitters in between steps.
            drop(st);
            st = shared.lock();
        } else if outstanding {
            drop(st);
            match bell {
                Some((mailbox, seen)) if backoff.exhausted() => {
                    mailbox.wait_bell(Bell::ToParent, seen, Duration::from_micros(100))
                }
                _ => backoff.snooze(),
            }
            st = shared.lock();
        } else if st.stopping {
            return;
        } else {
            backoff.reset();
            st = shared.idle.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Spin, then yield, then park with a short growing timeout (the peer is
/// another process writing shared memory: no condvar to share; every wake
/// re-reads the word). A submission unparks the driver at once.
#[derive(Debug, Default)]
struct Backoff {
    idle: u32,
}

impl Backoff {
    fn reset(&mut self) {
        self.idle = 0;
    }

    /// Past the spinning and yielding phases (time to sleep).
    fn exhausted(&self) -> bool {
        self.idle >= Self::SPINS + Self::YIELDS
    }

    const SPINS: u32 = 64;
    const YIELDS: u32 = 16;

    fn snooze(&mut self) {
        const SPINS: u32 = Backoff::SPINS;
        const YIELDS: u32 = Backoff::YIELDS;
        self.idle = self.idle.saturating_add(1);
        if self.idle <= SPINS {
            std::hint::spin_loop();
        } else if self.idle <= SPINS + YIELDS {
            thread::yield_now();
        } else {
            let shift = (self.idle - SPINS - YIELDS).min(6);
            thread::park_timeout(Duration::from_micros(1 << shift));
        }
    }
}

/// Start one chip child on a fresh mailbox and wait until it serves.
fn spawn_link(config: &L3Config, exe: &PathBuf, chip: usize, incarnation: u32) -> io::Result<Link> {
    let mailbox = Arc::new(Mailbox::create(config.ring_capacity)?);
    // A fresh id per child incarnation: handles never cross incarnations,
    // chips or workers (`WorkerId::fresh` never repeats).
    let worker = WorkerId::fresh();
    let mut cmd = ChildCommand::new(exe);
    for a in &config.child_args {
        cmd = cmd.arg(a);
    }
    let mut cmd = cmd
        .arg("--device")
        .arg(config.device.as_str())
        .arg("--worker")
        .arg(worker.to_string())
        .arg("--parent")
        .arg(std::process::id().to_string());
    if let Some(dir) = &config.trace_dir {
        cmd = cmd.arg("--trace").arg(dir.join(format!("chip-{chip}-{incarnation}.spans")));
    }
    if config.quiet_children {
        cmd = cmd.quiet();
    }
    let mut child = cmd
        .spawn(mailbox.shm())
        .map_err(|e| io::Error::new(e.kind(), format!("spawning chip child {}: {e}", exe.display())))?;
    // Ready = the serve loop beats (the device opened, the lanes started).
    let deadline = Instant::now() + config.startup_timeout;
    let mut backoff = Backoff::default();
    while mailbox.heartbeat() == 0 {
        if let Some(exit) = child.try_exit()? {
            return Err(io::Error::other(format!("chip child {chip} exited during start-up: {exit:?}")));
        }
        if Instant::now() > deadline {
            let _ = child.kill_and_reap();
            return Err(io::Error::new(io::ErrorKind::TimedOut, format!("chip child {chip} did not start")));
        }
        backoff.snooze();
    }
    let pid = child.pid();
    let child = Arc::new(Mutex::new(child));
    let watch = ProcessWatch::new(child.clone(), config.liveness_timeout);
    Ok(Link { port: Port::new(MailboxRef(mailbox.clone()), watch), mailbox, child, worker, pid, incarnation })
}

/// See [`L3Worker::hold_driver_when`]: while it lives, no port is stepped.
#[doc(hidden)]
pub struct DriverHold<'a> {
    guard: Option<MutexGuard<'a, State>>,
    shared: &'a Shared,
    driver: &'a Thread,
}

impl Drop for DriverHold<'_> {
    /// Let the driver go, and wake it: work may have been submitted by hand.
    fn drop(&mut self) {
        drop(self.guard.take());
        wake_driver(self.shared, self.driver);
    }
}

impl DriverHold<'_> {
    /// Chip `chip`'s mailbox region (read it while the driver is held).
    pub fn region(&self, chip: usize) -> Option<&chiplane_core::conc::region::Region> {
        self.guard.as_ref()?.links.get(chip).map(|l| l.port.region())
    }

    /// Chip `chip`'s port, to submit to and step by hand while the driver
    /// is held.
    pub fn port(&mut self, chip: usize) -> Option<&mut Port<MailboxRef, ProcessWatch>> {
        self.guard.as_mut()?.links.get_mut(chip).map(|l| &mut l.port)
    }
}

impl core::fmt::Debug for DriverHold<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("DriverHold")
    }
}

/// Handle of an L3 register: accepted (CONTROL_DONE) then settled (the
/// prepare finished, through the completion ring).
#[derive(Debug)]
pub struct L3RegisterHandle {
    worker: WorkerId,
    control: ControlHandle,
    accepted: Option<Result<Handle, L3Error>>,
}

impl L3RegisterHandle {
    pub fn dispatch(&self) -> DispatchId {
        self.control.dispatch()
    }

    /// Block until the child accepted the control; the handle of the slot
    /// (usable at once: a run on a PREPARING slot waits for the prepare).
    pub fn wait_accepted(&mut self) -> Result<Handle, L3Error> {
        if let Some(r) = &self.accepted {
            return r.clone();
        }
        let r = match self.control.wait_reply().expect("the reply is taken only here") {
            Ok(ControlReply::Registered { slot, generation, .. }) => {
                Ok(Handle { worker: self.worker, index: slot, generation })
            }
            Ok(other) => unreachable!("a register control replied {other:?}"),
            Err(e) => Err(e.into()),
        };
        self.accepted = Some(r.clone());
        r
    }

    /// Block until the prepare settled: `Ok(handle)` when PREPARED.
    pub fn wait(mut self) -> Result<Handle, L3Error> {
        let handle = self.wait_accepted()?;
        match self.control.wait_settled().expect("the settlement is taken only here") {
            Ok(None) | Ok(Some(Settlement::Prepared(Ok(())))) => Ok(handle),
            Ok(Some(Settlement::Prepared(Err(e)))) => Err(e.into()),
            Ok(Some(Settlement::Freed)) => unreachable!("a register settled as freed"),
            Err(e) => Err(endpoint(e)),
        }
    }
}

/// Handle of an L3 unregister: accepted, and for the final one, settled
/// when the artifact was freed.
#[derive(Debug)]
pub struct L3UnregisterHandle {
    control: ControlHandle,
}

impl L3UnregisterHandle {
    pub fn wait(self) -> Result<(), L3Error> {
        match self.control.wait_reply().expect("the reply is taken only here") {
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        match self.control.wait_settled().expect("the settlement is taken only here") {
            Ok(_) => Ok(()),
            Err(e) => Err(endpoint(e)),
        }
    }
}

/// What an orchestration function sees: submits chip tasks.
pub struct Orchestrator<'a> {
    shared: &'a Shared,
    driver: &'a Thread,
    tasks: Vec<port::TaskHandle>,
}

impl core::fmt::Debug for Orchestrator<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Orchestrator").field("tasks", &self.tasks.len()).finish()
    }
}

/// A task submitted by an orchestration function: its index in the run's
/// [`RunOutcome::tasks`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TaskHandle {
    pub index: usize,
    pub chip: usize,
    pub dispatch: DispatchId,
}

impl Orchestrator<'_> {
    pub fn chips(&self) -> usize {
        self.shared.lock().links.len()
    }

    /// Submit a run of `handle` (registered on chip `chip`) with `args`.
    /// Errors at the call: a chip index out of range
    /// (`Handle(OutOfRange)`), a handle of another chip or child
    /// (`Handle(Foreign)`), `PayloadTooLarge`, an endpoint error.
    pub fn submit(
        &mut self,
        chip: usize,
        handle: Handle,
        args: TaskArgs,
        config: RunConfig,
    ) -> Result<TaskHandle, RunError> {
        let mut st = self.shared.lock();
        let link = st.links.get_mut(chip).ok_or(RunError::Handle(HandleError::OutOfRange))?;
        if handle.worker != link.worker {
            return Err(RunError::Handle(HandleError::Foreign { expected: link.worker, got: handle.worker }));
        }
        let t = link.port.submit_task(handle.index, handle.generation, config, args)?;
        link.mailbox.ring(Bell::ToParent);
        drop(st);
        wake_driver(self.shared, self.driver);
        let dispatch = t.dispatch();
        self.tasks.push(t);
        Ok(TaskHandle { index: self.tasks.len() - 1, chip, dispatch })
    }
}

struct JobResult<R> {
    value: Result<R, String>,
    tasks: Vec<port::TaskHandle>,
}

/// What a run produced: the orchestration function's value and the result
/// of every task it submitted, in submission order.
#[derive(Debug)]
pub struct RunOutcome<R> {
    pub value: R,
    pub tasks: Vec<TaskResult>,
}

impl<R> RunOutcome<R> {
    pub fn task(&self, t: &TaskHandle) -> &TaskResult {
        &self.tasks[t.index]
    }
}

/// Handle of a queued run.
pub struct L3RunHandle<R> {
    cell: Arc<Completion<Mutex<JobResult<R>>>>,
}

impl<R> core::fmt::Debug for L3RunHandle<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("L3RunHandle").field("orchestrated", &self.cell.is_ready()).finish()
    }
}

impl<R> L3RunHandle<R> {
    /// Block until the orchestration function returned and every task it
    /// submitted resolved. A panic of the function is resumed here.
    pub fn wait(self) -> RunOutcome<R> {
        let JobResult { value, tasks } = self
            .cell
            .wait()
            .expect("a run's result is taken only here")
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        let tasks: Vec<TaskResult> =
            tasks.iter().map(|t| t.wait().expect("a task's result is taken only here")).collect();
        match value {
            Ok(value) => RunOutcome { value, tasks },
            Err(msg) => panic!("orchestration function panicked: {msg}"),
        }
    }
}

/// How a chip child ended (for reports): exit code or signal.
pub fn describe_exit(e: Option<ChildExit>) -> String {
    match e {
        Some(ChildExit::Exited(c)) => format!("exited {c}"),
        Some(ChildExit::Signaled(s)) => format!("signal {s}"),
        None => "running".into(),
    }
}
