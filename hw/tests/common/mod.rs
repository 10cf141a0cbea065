//! Helpers shared by the L3 tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{mpsc, Arc, MutexGuard};
use std::time::{Duration, Instant};

use chiplane_core::chip::TaskArgs;
use chiplane_core::conc::parent::Link;
use chiplane_core::conc::port::Port;
use chiplane_core::conc::region::Region;
use chiplane_hw::l3::memory::{MailboxRef, SysFutex};
use chiplane_hw::l3::watch::ProcessWatch;
use chiplane_hw::l3::{L3Config, L3Worker};

/// Upper bound for anything to resolve (never a synchronisation: healthy
/// runs take milliseconds; a loaded 2-core machine gets slack).
pub const BOUND: Duration = Duration::from_secs(20);

/// The chip child: the `chiplane` program (its `main` calls
/// `chiplane_hw::init`), since a test harness's own `main` cannot.
pub fn child_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chiplane"))
}

pub fn config(chips: usize) -> L3Config {
    L3Config { chips, child_exe: Some(child_exe()), quiet_children: true, ..L3Config::default() }
}

pub fn start(chips: usize) -> L3Worker {
    config(chips).start().unwrap()
}

pub fn args(n: usize, repeat: Option<u64>) -> TaskArgs {
    let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
    let b: Vec<f32> = (0..n).map(|i| 1.0 + (i % 7) as f32).collect();
    TaskArgs { tensors: vec![a, b], scalars: repeat.into_iter().collect() }
}

/// Run `f` on another thread; its value, or a panic if it takes longer
/// than `BOUND` (a hang is a failure, never a wait forever).
pub fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(BOUND).unwrap_or_else(|_| panic!("{what} did not resolve within {BOUND:?}"))
}

pub type HwLink = Link<MailboxRef, ProcessWatch, SysFutex>;
pub type HwPort = Port<MailboxRef, ProcessWatch>;

/// Chip `chip`'s link.
pub fn link(w: &L3Worker, chip: usize) -> Arc<HwLink> {
    w.link(chip).unwrap()
}

/// The pid of chip `chip`'s current child.
pub fn pid(w: &L3Worker, chip: usize) -> u32 {
    link(w, chip).port().watch_mut().pid()
}

/// Wait (bounded) until `ready` holds for the link's region, then return
/// its port locked: while the guard lives no thread steps the port (the
/// parent side is held at one protocol step).
pub fn hold_when(link: &HwLink, mut ready: impl FnMut(&Region) -> bool) -> MutexGuard<'_, HwPort> {
    let deadline = Instant::now() + BOUND;
    loop {
        let port = link.port();
        if ready(link.region()) {
            return port;
        }
        drop(port);
        assert!(Instant::now() < deadline, "the mailbox never reached the awaited state");
        std::thread::yield_now();
    }
}

pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on our own child's pid (not yet reaped: the port reaps
    // it only after it saw it gone, which these tests wait for).
    let r = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig})");
}
