//! The chip child process: the program itself, re-executed by the L3
//! worker with the marker [`CHILD_MARKER`] as its first argument (the
//! pattern of `procspawn` and Python's multiprocessing "spawn"). It maps the
//! memfd its parent handed it, attaches core's mailbox region there, opens
//! the device, and runs core's chip child: `conc::child::NodeBackend` (a
//! `ChipNode` with its two lane threads) behind `conc::serve::Serve`, in
//! `conc::child::serve_loop`, sleeping on the region's doorbell through
//! [`SysFutex`]. Nothing of the protocol is here; only the process.
//!
//! # One binary
//! A program that starts an L3 worker calls [`crate::init`] first thing in
//! `main`: in the re-executed child it runs the chip child and exits, in
//! the parent it returns at once (and records that it was called, so the
//! worker can refuse to start with a clear error when it was not). An
//! explicit child executable (`L3Config::child_exe`) needs no hook in the
//! parent: that program must call `init` itself (`chiplane` does).
//!
//! Arguments after the marker (the shm ones are appended by
//! `ChildCommand::spawn`): `--device host|cuda|null --worker NONCE:SERIAL
//! [--chip I] [--slots N] [--spin-iters N] [--parent PID] [--trace FILE]
//! --chiplane-shm-fd N --chiplane-shm-len L`. `--chip I`: the chip's index
//! in its worker (the host device's lane split turns with it:
//! `HostChip::with_lane_turn`).
//!
//! `--parent PID`: exit (code 6) as soon as that process exits (a pidfd
//! watched by a thread blocked in `poll`), so a chip child never outlives
//! its parent, whichever parent thread spawned it.
//!
//! Exit codes ([`ChildStatus`]): 0 shut down by the parent, 2 bad arguments,
//! 3 the region cannot be mapped or attached, 4 the endpoint was poisoned
//! (by this child after a bad frame, by the parent, or because the serve
//! loop itself failed), 5 the device is unavailable, 6 the parent exited.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chiplane_core::chip::Chip;
use chiplane_core::conc::bell::Doorbell;
use chiplane_core::conc::child::{serve_loop, LoopExit, NodeBackend, ServeOptions};
use chiplane_core::conc::serve::{Serve, ServeExit};
use chiplane_core::conc::NodeConfig;
use chiplane_core::ids::WorkerId;
use chiplane_core::slot::SlotLimits;

use super::memory::{Mailbox, MailboxRef, SysFutex};
use super::trace::{SpanLog, TracedChip};
use crate::devices::host::HostChip;

/// The first argument of a re-executed chip child.
pub const CHILD_MARKER: &str = "__chiplane-chip-child";

static INIT_CALLED: AtomicBool = AtomicBool::new(false);

/// Run the chip child and exit if this process was started as one; return
/// at once otherwise. Call it first thing in `main` (see the module doc).
pub fn init() {
    // Relaxed: read by this process's own threads after `main` began.
    INIT_CALLED.store(true, Ordering::Relaxed);
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(CHILD_MARKER) {
        std::process::exit(child_main(args));
    }
}

/// Whether [`init`] ran in this process.
pub fn init_called() -> bool {
    // Relaxed: see `init`.
    INIT_CALLED.load(Ordering::Relaxed)
}

/// Process exit codes of the chip child.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(i32)]
pub enum ChildStatus {
    /// Shut down by the parent.
    ShutDown = 0,
    /// Bad arguments.
    BadArgs = 2,
    /// The region could not be mapped or attached.
    NoRegion = 3,
    /// The endpoint was poisoned (or the serve loop failed).
    Poisoned = 4,
    /// The device is unavailable.
    NoDevice = 5,
    /// The parent process exited.
    Orphaned = 6,
}

/// Which device a chip child drives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Device {
    /// The host CPU (always available).
    Host,
    /// CUDA (the `cuda` feature; the driver is loaded at run time).
    Cuda,
    /// The null device (benchmarks: computes nothing).
    Null,
}

impl Device {
    /// Its name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Host => "host",
            Device::Cuda => "cuda",
            Device::Null => "null",
        }
    }

    /// Parse a command-line name.
    pub fn parse(s: &str) -> Option<Device> {
        match s {
            "host" => Some(Device::Host),
            "cuda" => Some(Device::Cuda),
            "null" => Some(Device::Null),
            _ => None,
        }
    }
}

struct Args {
    device: Device,
    worker: WorkerId,
    /// The chip's index in its worker (the host device's lane split turns
    /// with it, so two chips' run lanes do not share CPUs).
    chip: usize,
    slots: usize,
    spin_iters: Option<u32>,
    trace: Option<String>,
    parent: Option<libc::pid_t>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        device: Device::Host,
        worker: WorkerId(0),
        chip: 0,
        slots: SlotLimits::default().capacity,
        spin_iters: None,
        trace: None,
        parent: None,
    };
    // argv[0], the marker, then the options.
    let mut it = args.iter().skip(2);
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--device" => {
                let v = value()?;
                a.device = Device::parse(&v).ok_or_else(|| format!("unknown device {v}"))?;
            }
            "--worker" => a.worker = value()?.parse()?,
            "--chip" => {
                let v = value()?;
                a.chip = v.parse().map_err(|e| format!("--chip {v}: {e}"))?;
            }
            "--slots" => {
                let v = value()?;
                a.slots = v.parse().map_err(|e| format!("--slots {v}: {e}"))?;
            }
            "--spin-iters" => {
                let v = value()?;
                a.spin_iters = Some(v.parse().map_err(|e| format!("--spin-iters {v}: {e}"))?);
            }
            "--trace" => a.trace = Some(value()?),
            "--parent" => {
                let v = value()?;
                a.parent = Some(v.parse().map_err(|e| format!("--parent {v}: {e}"))?);
            }
            crate::process::SHM_FD_ARG | crate::process::SHM_LEN_ARG => {
                value()?;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// Exit when the parent process `parent` exits, whichever of its threads
/// spawned us (`PR_SET_PDEATHSIG` follows the spawning *thread*). A thread
/// blocks in `poll` on a pidfd of the parent: no polling loop. Returns
/// false when the parent is already gone.
fn exit_with_parent(parent: libc::pid_t) -> bool {
    // SAFETY: pidfd_open(pid, 0) returns a new fd or -1; checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, parent, 0) };
    // SAFETY: getppid has no preconditions.
    if fd < 0 || unsafe { libc::getppid() } != parent {
        return false;
    }
    let fd = fd as libc::c_int;
    let spawned = std::thread::Builder::new().name("parent-watch".into()).spawn(move || loop {
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd; the fd stays open for the process's life.
        let r = unsafe { libc::poll(&mut pfd, 1, -1) };
        if r > 0 {
            // The parent is gone: nobody will read our results.
            std::process::exit(ChildStatus::Orphaned as i32);
        }
    });
    spawned.is_ok()
}

/// The child's `main` (after the marker): returns the exit code.
pub fn child_main(args: Vec<String>) -> i32 {
    let parsed = match parse(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("chiplane chip child: {e}");
            return ChildStatus::BadArgs as i32;
        }
    };
    if let Some(parent) = parsed.parent {
        if !exit_with_parent(parent) {
            return ChildStatus::Orphaned as i32;
        }
    }
    // SAFETY: called once, at start-up, with the arguments our parent gave:
    // the fd they name was inherited for this mapping and nothing else in
    // this process owns it.
    let shm = match unsafe { crate::process::inherited_shm(args.iter().cloned()) } {
        Ok(m) => m,
        Err(e) => {
            eprintln!("chiplane chip child: cannot map the mailbox: {e}");
            return ChildStatus::NoRegion as i32;
        }
    };
    let mailbox = match Mailbox::attach(shm) {
        Ok(m) => MailboxRef(Arc::new(m)),
        Err(e) => {
            eprintln!("chiplane chip child: {e}");
            return ChildStatus::NoRegion as i32;
        }
    };
    match parsed.device {
        Device::Host => match HostChip::new() {
            Ok(chip) => serve_traced(mailbox, chip.with_lane_turn(parsed.chip), &parsed),
            Err(e) => {
                eprintln!("chiplane chip child: host device: {e}");
                ChildStatus::NoDevice as i32
            }
        },
        #[cfg(feature = "cuda")]
        Device::Cuda => match crate::devices::cuda::CudaChip::new(0) {
            Ok(chip) => serve_traced(mailbox, chip, &parsed),
            Err(e) => {
                eprintln!("chiplane chip child: cuda device: {e}");
                ChildStatus::NoDevice as i32
            }
        },
        #[cfg(not(feature = "cuda"))]
        Device::Cuda => {
            eprintln!("chiplane chip child: built without the `cuda` feature");
            ChildStatus::NoDevice as i32
        }
        Device::Null => serve_traced(mailbox, crate::devices::null::NullChip, &parsed),
    }
}

/// Trace only when a trace was asked for (no lock, no allocation per run
/// otherwise).
fn serve_traced<C: Chip>(mailbox: MailboxRef, chip: C, args: &Args) -> i32 {
    match &args.trace {
        None => serve(mailbox, chip, args, || {}),
        Some(path) => {
            let log = Arc::new(SpanLog::default());
            let traced = TracedChip { inner: chip, log: log.clone() };
            serve(mailbox, traced, args, || {
                let lines: Vec<String> = log.take().iter().map(|s| s.to_line()).collect();
                if let Err(e) = std::fs::write(path, lines.join("\n")) {
                    eprintln!("chiplane chip child: writing trace {path}: {e}");
                }
            })
        }
    }
}

fn serve<C: Chip>(mailbox: MailboxRef, chip: C, args: &Args, after_shutdown: impl FnOnce()) -> i32 {
    crate::tune::tight_timer_slack();
    // The parent calibrated the spin budget on this machine; use its figure
    // (no second calibration in every child).
    if let Some(iters) = args.spin_iters {
        crate::tune::set_budgets(iters);
    }
    let limits = SlotLimits { capacity: args.slots, ..SlotLimits::default() };
    let config = NodeConfig { worker: args.worker, limits, events: None };
    let futex = Arc::new(SysFutex);
    let backend = NodeBackend::new(chip, config, mailbox.clone(), futex.clone());
    let mut serve = Serve::new(mailbox.clone(), backend);
    // Tell the parent (waiting in `ProcessSpawner::spawn`) that we serve.
    mailbox.beat();
    Doorbell::new(mailbox.parent_bell(), &*futex).ring();
    let exit = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        serve_loop(&mut serve, &*futex, ServeOptions::default(), || true)
    }));
    match exit {
        Ok(LoopExit::Serve(ServeExit::ShutDown)) => {
            // Join the lanes (finishing what is inside the chip, releasing
            // every artifact), then write the trace.
            drop(serve);
            after_shutdown();
            ChildStatus::ShutDown as i32
        }
        Ok(LoopExit::Serve(ServeExit::Poisoned(reason))) => {
            eprintln!("chiplane chip child: endpoint poisoned ({reason}); exiting");
            // Do not wait for the lanes: the parent kills and reaps us.
            std::process::exit(ChildStatus::Poisoned as i32)
        }
        Ok(LoopExit::Killed) => unreachable!("production's serve loop is never killed from inside"),
        Err(_) => {
            // The serve loop died (defence in depth): poison the word so the
            // parent fails everything at once, and leave.
            let _previous = mailbox.word().poison();
            Doorbell::new(mailbox.parent_bell(), &SysFutex).ring();
            std::process::exit(ChildStatus::Poisoned as i32)
        }
    }
}
