//! The L3 worker on real processes: core's `L3Worker` (run queue, links,
//! drivers, handles: all in `chiplane_core::conc::l3`) over a
//! [`ProcessSpawner`], which is the only L3 code here: it creates a memfd
//! region, starts the chip child (by default the program itself,
//! re-executed with the marker of [`super::child`]), waits until it serves,
//! and hands core a [`ProcessWatch`] and the real futex ([`SysFutex`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chiplane_core::conc::bell::Doorbell;
use chiplane_core::conc::l3::{self, L3Options, SpawnError, Spawner};
use chiplane_core::conc::parent::LinkOptions;
use chiplane_core::ids::WorkerId;
use chiplane_core::slot::SlotLimits;

use super::child::{Device, CHILD_MARKER};
use super::memory::{Mailbox, MailboxRef, SysFutex, RING_CAPACITY};
use super::watch::ProcessWatch;
use crate::process::ChildCommand;

/// The L3 worker on chip child processes.
pub type L3Worker = l3::L3Worker<ProcessSpawner>;
/// A pending register of [`L3Worker`].
pub type L3PendingRegister = l3::L3PendingRegister<ProcessSpawner>;
/// A pending unregister of [`L3Worker`].
pub type L3PendingUnregister = l3::L3PendingUnregister<ProcessSpawner>;
/// A pending orchestration run of [`L3Worker`].
pub type L3PendingRun<R> = l3::L3PendingRun<ProcessSpawner, R>;
/// A pending single-task run of [`L3Worker`].
pub type L3PendingCall = l3::L3PendingCall<ProcessSpawner>;
/// What an orchestration function of [`L3Worker`] sees.
pub type Orchestrator = l3::Orchestrator<ProcessSpawner>;

/// Environment variable naming an explicit chip child executable.
pub const CHILD_EXE_ENV: &str = "CHIPLANE_CHILD";

/// Construction parameters of an [`L3Worker`]: every limit a deployment may
/// need to raise is here.
#[derive(Clone, Debug)]
pub struct L3Config {
    /// Number of chip children (one mailbox each).
    pub chips: usize,
    /// The device every child drives.
    pub device: Device,
    /// The chip child executable. `None` (the default): the program itself
    /// (it must call [`crate::init`] first thing in `main`), or
    /// `$CHIPLANE_CHILD` when set. An explicit program must call `init` too.
    pub child_exe: Option<PathBuf>,
    /// Callables each chip holds at once (its slot table's capacity).
    pub slots: usize,
    /// No heartbeat for this long while work is outstanding: the child is
    /// declared gone.
    pub liveness_timeout: Duration,
    /// How often a parent-side sleeper with work outstanding asks the watch.
    pub liveness_poll: Duration,
    /// Bound on a child's start-up (map, attach, device, lanes).
    pub startup_timeout: Duration,
    /// Bound on a child's exit after shutdown before it is killed.
    pub exit_timeout: Duration,
    /// Entries of each mailbox's completion ring.
    pub ring_capacity: u32,
    /// Extra arguments for every chip child (before the ones the worker adds).
    pub child_args: Vec<String>,
    /// Children's stdout/stderr to /dev/null.
    pub quiet_children: bool,
    /// Each child writes its lane spans to `DIR/chip-<i>-<worker>.spans`
    /// when it shuts down (see [`super::trace`]).
    pub trace_dir: Option<PathBuf>,
}

impl Default for L3Config {
    fn default() -> Self {
        L3Config {
            chips: 1,
            device: Device::Host,
            child_exe: None,
            slots: SlotLimits::default().capacity,
            liveness_timeout: Duration::from_secs(2),
            liveness_poll: Duration::from_millis(10),
            startup_timeout: Duration::from_secs(20),
            exit_timeout: Duration::from_secs(10),
            ring_capacity: RING_CAPACITY,
            child_args: Vec::new(),
            quiet_children: false,
            trace_dir: None,
        }
    }
}

impl L3Config {
    /// Start the worker: `chips` children, each on a fresh memfd mailbox,
    /// each serving before this returns.
    pub fn start(self) -> Result<L3Worker, SpawnError> {
        let chips = self.chips;
        let link = LinkOptions { liveness_poll: Some(self.liveness_poll), idle_poll: Some(Duration::from_millis(100)) };
        let spawner = ProcessSpawner::new(self)?;
        L3Worker::new(spawner, L3Options { chips, link })
    }
}

/// Starts chip children as processes (module doc).
#[derive(Debug)]
pub struct ProcessSpawner {
    config: L3Config,
    exe: PathBuf,
    futex: Arc<SysFutex>,
}

impl ProcessSpawner {
    /// A spawner for `config`; refuses to re-execute a program whose `main`
    /// did not call [`crate::init`] (its child would run that `main`).
    pub fn new(config: L3Config) -> Result<Self, SpawnError> {
        crate::tune::calibrate();
        let explicit = config
            .child_exe
            .clone()
            .or_else(|| std::env::var_os(CHILD_EXE_ENV).filter(|p| !p.is_empty()).map(PathBuf::from));
        let exe = match explicit {
            Some(p) => p,
            None => {
                if !super::child::init_called() {
                    return Err(SpawnError {
                        chip: 0,
                        reason: "this program starts its chip children by re-executing itself, so its `main` must \
                                 call `chiplane_hw::init()` first (or set `L3Config::child_exe` / $CHIPLANE_CHILD to \
                                 a program that does, such as `chiplane`)"
                            .into(),
                    });
                }
                std::env::current_exe()
                    .map_err(|e| SpawnError { chip: 0, reason: format!("finding this program's path: {e}") })?
            }
        };
        Ok(ProcessSpawner { config, exe, futex: Arc::new(SysFutex) })
    }

    /// The program started as each chip child.
    pub fn exe(&self) -> &PathBuf {
        &self.exe
    }
}

impl Spawner for ProcessSpawner {
    type Region = MailboxRef;
    type Watch = ProcessWatch;
    type Futex = SysFutex;

    fn futex(&self) -> Arc<SysFutex> {
        self.futex.clone()
    }

    fn spawn(&self, chip: usize, worker: WorkerId) -> Result<(MailboxRef, ProcessWatch), SpawnError> {
        let fail = |reason: String| SpawnError { chip, reason };
        let c = &self.config;
        let mailbox = Arc::new(Mailbox::create(c.ring_capacity).map_err(|e| fail(format!("mailbox: {e}")))?);
        let mut cmd = ChildCommand::new(&self.exe).arg(CHILD_MARKER);
        for a in &c.child_args {
            cmd = cmd.arg(a);
        }
        let mut cmd = cmd
            .arg("--device")
            .arg(c.device.as_str())
            .arg("--worker")
            .arg(worker.to_string())
            .arg("--chip")
            .arg(chip.to_string())
            .arg("--slots")
            .arg(c.slots.to_string())
            .arg("--spin-iters")
            .arg(chiplane_core::conc::wait::spin_budget().to_string())
            .arg("--parent")
            .arg(std::process::id().to_string());
        if let Some(dir) = &c.trace_dir {
            cmd = cmd.arg("--trace").arg(dir.join(format!("chip-{chip}-{:x}.spans", worker.serial())));
        }
        if c.quiet_children {
            cmd = cmd.quiet();
        }
        let mut child = cmd.spawn(mailbox.shm()).map_err(|e| fail(format!("spawning {}: {e}", self.exe.display())))?;
        // Ready = the serve loop beats (the device opened, the lanes
        // started); the child rings the parent's bell after its first beat.
        let deadline = Instant::now() + c.startup_timeout;
        let bell = Doorbell::new(mailbox.parent_bell(), &*self.futex);
        while !bell.sleep(|| mailbox.heartbeat() != 0, Some(Duration::from_millis(10))) || mailbox.heartbeat() == 0 {
            if mailbox.heartbeat() != 0 {
                break;
            }
            match child.try_exit() {
                Ok(Some(exit)) => return Err(fail(format!("the child exited during start-up: {exit:?}"))),
                Ok(None) => {}
                Err(e) => return Err(fail(format!("waiting for the child: {e}"))),
            }
            if Instant::now() > deadline {
                let _ = child.kill_and_reap();
                return Err(fail(format!("the child did not start within {:?}", c.startup_timeout)));
            }
        }
        let watch = ProcessWatch::new(Arc::new(Mutex::new(child)), c.liveness_timeout, c.exit_timeout);
        Ok((MailboxRef(mailbox), watch))
    }
}
