//! Chip child processes for the L3 worker: spawn an executable that inherits
//! one memfd ([`crate::shm::SharedMemory`]), and watch its liveness.
//!
//! Spawning: [`ChildCommand::spawn`] runs the executable through
//! `std::process::Command` (fork + exec: the child runs a fresh program,
//! never a copy of the multi-threaded parent). Between fork and exec, in the
//! child only, it clears `FD_CLOEXEC` on the memfd (which the parent keeps
//! close-on-exec, so no other child inherits it) and appends
//! `--chiplane-shm-fd N --chiplane-shm-len L` to the arguments. The child
//! maps the region with [`inherited_shm`]. Opt-in
//! ([`ChildCommand::kill_with_spawning_thread`]): `PR_SET_PDEATHSIG` =
//! SIGKILL, so no chip child outlives its parent; note that Linux ties this
//! to the *thread* that spawned the child, so spawn from a long-lived thread.
//!
//! Liveness ([`ChipChild`]): `try_exit` (waitpid `WNOHANG`: has it exited?),
//! `wait_timeout` (a pidfd polled with a timeout: no busy wait, no sleep),
//! `kill` (SIGKILL), `wait` (reap). An exit is reaped exactly once and then
//! remembered, so every later query reports the same [`ChildExit`]. A
//! [`ChipChild`] dropped while its process still runs kills and reaps it: no
//! zombie, no orphan. [`ChildCommand::respawn`] kills and reaps an old child
//! and starts a fresh one on the same region.

use crate::shm::SharedMemory;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// Argument naming the inherited memfd's number in the child.
pub const SHM_FD_ARG: &str = "--chiplane-shm-fd";
/// Argument giving the mapping's length in bytes.
pub const SHM_LEN_ARG: &str = "--chiplane-shm-len";

/// How a child ended.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ChildExit {
    /// It exited with this code.
    Exited(i32),
    /// A signal ended it (`libc::SIGKILL` after [`ChipChild::kill`]).
    Signaled(i32),
}

impl ChildExit {
    fn from_status(s: ExitStatus) -> Self {
        match (s.code(), s.signal()) {
            (Some(c), _) => ChildExit::Exited(c),
            (None, Some(sig)) => ChildExit::Signaled(sig),
            // Neither code nor signal: only for stopped/continued states,
            // which wait never reports without WUNTRACED/WCONTINUED.
            (None, None) => ChildExit::Signaled(0),
        }
    }

    /// Killed by SIGKILL.
    pub fn is_killed(self) -> bool {
        self == ChildExit::Signaled(libc::SIGKILL)
    }

    /// Exited with code 0.
    pub fn is_success(self) -> bool {
        self == ChildExit::Exited(0)
    }
}

/// How to start a chip child: an executable and its own arguments.
#[derive(Clone, Debug)]
pub struct ChildCommand {
    program: PathBuf,
    args: Vec<OsString>,
    inherit_stdio: bool,
    kill_with_parent: bool,
}

impl ChildCommand {
    /// Run `program` with no arguments of its own, inheriting our stdout
    /// and stderr, not killed with the spawning thread (see the builder
    /// methods to change each).
    pub fn new(program: impl AsRef<Path>) -> Self {
        ChildCommand {
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
            inherit_stdio: true,
            kill_with_parent: false,
        }
    }

    /// Add an argument (before the shm arguments).
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_os_string());
        self
    }

    /// Send the child's stdout/stderr to /dev/null instead of the parent's.
    pub fn quiet(mut self) -> Self {
        self.inherit_stdio = false;
        self
    }

    /// Have the kernel SIGKILL the child when the thread that spawns it
    /// exits (`PR_SET_PDEATHSIG`; the parent process exiting ends every
    /// thread, so an orphaned chip child never lingers).
    pub fn kill_with_spawning_thread(mut self) -> Self {
        self.kill_with_parent = true;
        self
    }

    /// Start a child that inherits `shm`'s memfd (and no other of our fds
    /// that are close-on-exec, which std makes all of its own).
    pub fn spawn(&self, shm: &SharedMemory) -> io::Result<ChipChild> {
        let fd: RawFd = shm.fd().as_raw_fd();
        // SAFETY: getpid has no preconditions.
        let parent_pid = unsafe { libc::getpid() };
        let kill_with_parent = self.kill_with_parent;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).arg(SHM_FD_ARG).arg(fd.to_string()).arg(SHM_LEN_ARG).arg(shm.len().to_string());
        cmd.stdin(Stdio::null());
        if !self.inherit_stdio {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        // SAFETY: the closure runs in the forked child before exec and only
        // makes async-signal-safe system calls (fcntl, prctl, getppid): it
        // allocates nothing and takes no lock. `fd` is open in the child
        // because fork copies the fd table (only exec would close it).
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if kill_with_parent {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    // The parent died before the death signal was armed.
                    if libc::getppid() != parent_pid {
                        return Err(io::Error::other("parent exited during spawn"));
                    }
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        Ok(ChipChild { child, exit: None })
    }

    /// Kill and reap `old` (if it still runs) and start a fresh child on
    /// `shm`. Returns how the old one ended and the new child.
    pub fn respawn(&self, mut old: ChipChild, shm: &SharedMemory) -> io::Result<(ChildExit, ChipChild)> {
        let exit = old.kill_and_reap()?;
        Ok((exit, self.spawn(shm)?))
    }
}

/// A running (or reaped) chip child.
#[derive(Debug)]
pub struct ChipChild {
    child: Child,
    exit: Option<ChildExit>,
}

impl ChipChild {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How it ended, if it has (reaps it then; `None` while it runs).
    pub fn try_exit(&mut self) -> io::Result<Option<ChildExit>> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait()?.map(ChildExit::from_status);
        }
        Ok(self.exit)
    }

    /// Still running.
    pub fn is_alive(&mut self) -> io::Result<bool> {
        Ok(self.try_exit()?.is_none())
    }

    /// SIGKILL the child (nothing to do once it has been reaped).
    pub fn kill(&mut self) -> io::Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        // std sends SIGKILL, and never to a pid it has already reaped.
        self.child.kill()
    }

    /// Block until the child exits; reap it.
    pub fn wait(&mut self) -> io::Result<ChildExit> {
        if let Some(e) = self.exit {
            return Ok(e);
        }
        let e = ChildExit::from_status(self.child.wait()?);
        self.exit = Some(e);
        Ok(e)
    }

    /// Wait at most `timeout` for the child to exit (a pidfd polled with a
    /// timeout); reaps it and returns how it ended, or `None` if it still
    /// runs.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ChildExit>> {
        if let Some(e) = self.try_exit()? {
            return Ok(Some(e));
        }
        let pid = libc::pid_t::try_from(self.child.id()).map_err(|_| io::Error::other("pid out of range"))?;
        // SAFETY: pidfd_open(pid, 0) on our own unreaped child (so the pid
        // cannot have been reused); the result is checked.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd returned by pidfd_open, owned by nobody else.
        let pidfd = unsafe { OwnedFd::from_raw_fd(raw as RawFd) };
        let mut pfd = libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        loop {
            // SAFETY: one valid pollfd; the pidfd stays open across the call.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r >= 0 {
                break;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        self.try_exit()
    }

    /// SIGKILL (if still running) and reap.
    pub fn kill_and_reap(&mut self) -> io::Result<ChildExit> {
        self.kill()?;
        self.wait()
    }
}

impl Drop for ChipChild {
    fn drop(&mut self) {
        // Errors here mean the child is already gone; nothing else to do.
        let _ = self.kill_and_reap();
    }
}

/// Child side: map the memfd named by `--chiplane-shm-fd N --chiplane-shm-len
/// L` in `args` (the process's own arguments, e.g. `std::env::args()`).
///
/// # Safety
/// Call at most once per process, with the arguments the parent passed: the
/// fd they name becomes owned (and closed on drop) by the returned value.
pub unsafe fn inherited_shm(args: impl IntoIterator<Item = String>) -> io::Result<SharedMemory> {
    let (fd, len) = parse_shm_args(args)?;
    // SAFETY: forwarded to the caller: the fd was handed to us by the parent
    // for exactly this mapping.
    unsafe { SharedMemory::from_inherited_fd(fd, len) }
}

/// Find `--chiplane-shm-fd N --chiplane-shm-len L` in `args`.
pub fn parse_shm_args(args: impl IntoIterator<Item = String>) -> io::Result<(RawFd, usize)> {
    let bad = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    let (mut fd, mut len) = (None, None);
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == SHM_FD_ARG || a == SHM_LEN_ARG {
            let v = it.next().ok_or_else(|| bad(format!("{a} needs a value")))?;
            if a == SHM_FD_ARG {
                fd = Some(v.parse::<RawFd>().map_err(|e| bad(format!("{a} {v}: {e}")))?);
            } else {
                len = Some(v.parse::<usize>().map_err(|e| bad(format!("{a} {v}: {e}")))?);
            }
        }
    }
    match (fd, len) {
        (Some(fd), Some(len)) if fd > 2 => Ok((fd, len)),
        (Some(fd), Some(_)) => Err(bad(format!("{SHM_FD_ARG} {fd} names a standard stream"))),
        _ => Err(bad(format!("missing {SHM_FD_ARG} or {SHM_LEN_ARG}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shm_args_parse_and_reject() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_shm_args(v(&["x", SHM_FD_ARG, "5", SHM_LEN_ARG, "4096"])).unwrap(), (5, 4096));
        assert!(parse_shm_args(v(&[SHM_FD_ARG, "5"])).is_err());
        assert!(parse_shm_args(v(&[SHM_FD_ARG, "1", SHM_LEN_ARG, "8"])).is_err());
        assert!(parse_shm_args(v(&[SHM_FD_ARG, "x", SHM_LEN_ARG, "8"])).is_err());
        assert!(parse_shm_args(v(&[SHM_FD_ARG, "5", SHM_LEN_ARG])).is_err());
    }

    #[test]
    fn spawning_a_missing_program_is_an_error() {
        let shm = SharedMemory::create(4096).unwrap();
        assert!(ChildCommand::new("/nonexistent/chiplane-child").spawn(&shm).is_err());
    }
}
