//! The chip child process (`chiplane-child`): maps the memfd its parent
//! handed it, attaches core's mailbox region there, and runs core's serve
//! loop ([`Serve`]) over a [`ChipNode`] (one run-lane thread and one
//! register-lane thread) through [`NodeBackend`].
//!
//! Arguments (the shm ones are appended by `ChildCommand::spawn`):
//! `--device host|cuda --worker N [--parent PID] [--trace FILE] --chiplane-shm-fd N
//! --chiplane-shm-len L`.
//!
//! `--parent PID`: exit (code 6) as soon as that process exits (a pidfd
//! watched by a thread blocked in `poll`), so a chip child never outlives
//! its parent, whichever parent thread spawned it.
//!
//! Exit codes ([`ChildStatus`]): 0 shut down by the parent, 2 bad arguments,
//! 3 the region cannot be mapped or attached, 4 the endpoint was poisoned
//! (by this child after a bad frame, or by the parent), 5 the device is
//! unavailable, 6 the parent exited.

use std::sync::Arc;

use chiplane_core::chip::Chip;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chiplane_core::conc::serve::{Serve, ServeExit, Step};
use chiplane_core::conc::{ChipNode, NodeConfig, Notifier};
use chiplane_core::ids::WorkerId;

use super::backend::NodeBackend;
use super::memory::{Bell, Mailbox};
use super::trace::{SpanLog, TracedChip};
use crate::devices::host::HostChip;

/// Process exit codes of the chip child.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(i32)]
pub enum ChildStatus {
    ShutDown = 0,
    BadArgs = 2,
    NoRegion = 3,
    Poisoned = 4,
    NoDevice = 5,
    /// The parent process exited.
    Orphaned = 6,
}

/// Which device a chip child drives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Device {
    Host,
    Cuda,
}

impl Device {
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Host => "host",
            Device::Cuda => "cuda",
        }
    }

    pub fn parse(s: &str) -> Option<Device> {
        match s {
            "host" => Some(Device::Host),
            "cuda" => Some(Device::Cuda),
            _ => None,
        }
    }
}

struct Args {
    device: Device,
    worker: WorkerId,
    trace: Option<String>,
    parent: Option<libc::pid_t>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let (mut device, mut worker, mut trace, mut parent) = (Device::Host, WorkerId(0), None, None);
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--device" => {
                let v = value()?;
                device = Device::parse(&v).ok_or_else(|| format!("unknown device {v}"))?;
            }
            "--worker" => {
                let v = value()?;
                worker = v.parse()?;
            }
            "--trace" => trace = Some(value()?),
            "--parent" => {
                let v = value()?;
                parent = Some(v.parse().map_err(|e| format!("--parent {v}: {e}"))?);
            }
            crate::process::SHM_FD_ARG | crate::process::SHM_LEN_ARG => {
                value()?;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args { device, worker, trace, parent })
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

/// The child's `main`: returns the exit code.
pub fn child_main(args: Vec<String>) -> i32 {
    let parsed = match parse(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("chiplane-child: {e}");
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
            eprintln!("chiplane-child: cannot map the mailbox: {e}");
            return ChildStatus::NoRegion as i32;
        }
    };
    let mailbox = match Mailbox::attach(shm) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("chiplane-child: {e}");
            return ChildStatus::NoRegion as i32;
        }
    };
    match parsed.device {
        Device::Host => match HostChip::new() {
            Ok(chip) => serve(&mailbox, chip, &parsed),
            Err(e) => {
                eprintln!("chiplane-child: host device: {e}");
                ChildStatus::NoDevice as i32
            }
        },
        #[cfg(feature = "cuda")]
        Device::Cuda => match crate::devices::cuda::CudaChip::new(0) {
            Ok(chip) => serve(&mailbox, chip, &parsed),
            Err(e) => {
                eprintln!("chiplane-child: cuda device: {e}");
                ChildStatus::NoDevice as i32
            }
        },
        #[cfg(not(feature = "cuda"))]
        Device::Cuda => {
            eprintln!("chiplane-child: built without the `cuda` feature");
            ChildStatus::NoDevice as i32
        }
    }
}

/// The serve loop with doorbells (see `super::memory`): spin, yield, then
/// sleep on the `to_child` bell (bounded); ring `to_parent` when a burst of
/// work ends. A helper thread rings `to_child` whenever a handle of the node
/// resolves (a run finished, a prepare settled, an artifact freed), so lane
/// events wake the loop too.
fn serve_loop<B: chiplane_core::conc::serve::ChildBackend>(
    serve: &mut Serve<&chiplane_core::conc::region::Region, B>,
    mailbox: &Mailbox,
) -> ServeExit {
    const SPINS: u32 = 64;
    const YIELDS: u32 = 16;
    const SLEEP_MAX: Duration = Duration::from_micros(100);
    let (mut idle, mut was_busy) = (0u32, false);
    loop {
        let seen = mailbox.bell_value(Bell::ToChild);
        match serve.step() {
            Step::Busy => {
                idle = 0;
                was_busy = true;
            }
            Step::Idle => {
                if was_busy {
                    mailbox.ring(Bell::ToParent);
                    was_busy = false;
                }
                idle = idle.saturating_add(1);
                if idle <= SPINS {
                    std::hint::spin_loop();
                } else if idle <= SPINS + YIELDS {
                    std::thread::yield_now();
                } else {
                    mailbox.wait_bell(Bell::ToChild, seen, SLEEP_MAX);
                }
            }
            Step::Exit(e) => {
                mailbox.ring(Bell::ToParent);
                return e;
            }
        }
    }
}

fn serve<C: Chip>(mailbox: &Mailbox, chip: C, args: &Args) -> i32 {
    let log = Arc::new(SpanLog::default());
    let chip = TracedChip { inner: chip, log: log.clone() };
    let notifier = Arc::new(Notifier::new());
    let config = NodeConfig { worker: args.worker, notifier: Some(notifier.clone()), ..NodeConfig::default() };
    let node = ChipNode::new(chip, config);
    let mut serve = Serve::new(mailbox.region(), NodeBackend::new(node));
    super::worker::tight_timer_slack();
    let stop = AtomicBool::new(false);
    let exit = std::thread::scope(|s| {
        s.spawn(|| {
            let mut epoch = notifier.epoch();
            // Acquire: pairs with the Release store below (loop end).
            while !stop.load(Ordering::Acquire) {
                let now = notifier.wait_past_timeout(epoch, Duration::from_millis(20));
                if now != epoch {
                    epoch = now;
                    mailbox.ring(Bell::ToChild);
                }
            }
        });
        let exit = serve_loop(&mut serve, mailbox);
        // Release: pairs with the helper's Acquire load.
        stop.store(true, Ordering::Release);
        exit
    });
    match exit {
        ServeExit::ShutDown => {
            // Join the lanes (finishing what is inside the chip, releasing
            // every artifact), then write the trace.
            drop(serve);
            if let Some(path) = &args.trace {
                let lines: Vec<String> = log.take().iter().map(|s| s.to_line()).collect();
                if let Err(e) = std::fs::write(path, lines.join("\n")) {
                    eprintln!("chiplane-child: writing trace {path}: {e}");
                }
            }
            ChildStatus::ShutDown as i32
        }
        ServeExit::Poisoned(reason) => {
            eprintln!("chiplane-child: endpoint poisoned ({reason:?}); exiting");
            // Do not wait for the lanes: the parent kills and reaps us.
            std::process::exit(ChildStatus::Poisoned as i32)
        }
    }
}
