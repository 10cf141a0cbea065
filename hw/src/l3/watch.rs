//! [`ProcessWatch`]: the parent's liveness policy for one chip child
//! process (core's [`ChildWatch`]).
//!
//! Core's parent loops call [`ChildWatch::check`] only after a bounded sleep
//! on the parent's doorbell ran its course while work was outstanding (a
//! live, working child rings that bell and is never polled); the watch
//! itself calls `waitpid` at most once per `min_interval`. The child is
//! gone when
//! - it exited (`waitpid(WNOHANG)` through [`ChipChild::try_exit`]):
//!   `EndpointError::ChildDied`; or
//! - its heartbeat (the region counter its serve loop bumps on every idle
//!   step, lanes busy or not) has not moved for longer than the liveness
//!   timeout: `EndpointError::LivenessTimeout`. A long prepare or run does
//!   not stall the heartbeat: the lanes are other threads.
//!
//! [`ChildWatch::kill_and_reap`] SIGKILLs and reaps the child, so when the
//! port then fails the outstanding handles the child can no longer touch the
//! region (rule 6). [`ChildWatch::finish`] (after a shutdown) lets the child
//! exit on its own within `exit_timeout`, then kills what is left.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chiplane_core::conc::port::ChildWatch;
use chiplane_core::conc::region::Region;
use chiplane_core::error::EndpointError;

use crate::process::{ChildExit, ChipChild};

/// See the module doc.
#[derive(Debug)]
pub struct ProcessWatch {
    child: Arc<Mutex<ChipChild>>,
    timeout: Duration,
    exit_timeout: Duration,
    min_interval: Duration,
    last_waitpid: Option<Instant>,
    last_beat: u64,
    last_change: Instant,
    exit: Option<ChildExit>,
}

impl ProcessWatch {
    /// Watch `child` (shared with its owner, which may kill it or wait for
    /// its exit after a shutdown).
    /// `timeout`: heartbeat stall that counts as gone; `exit_timeout`: how
    /// long [`ChildWatch::finish`] waits for a clean exit.
    pub fn new(child: Arc<Mutex<ChipChild>>, timeout: Duration, exit_timeout: Duration) -> Self {
        ProcessWatch {
            child,
            timeout,
            exit_timeout,
            min_interval: Duration::from_millis(1),
            last_waitpid: None,
            last_beat: 0,
            last_change: Instant::now(),
            exit: None,
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child().pid()
    }

    fn child(&self) -> MutexGuard<'_, ChipChild> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How the child ended, once this watch saw it reaped.
    pub fn exit(&self) -> Option<ChildExit> {
        self.exit
    }
}

impl ChildWatch for ProcessWatch {
    fn check(&mut self, region: &Region) -> Option<EndpointError> {
        let now = Instant::now();
        if self.last_waitpid.is_none_or(|t| now.duration_since(t) >= self.min_interval) {
            self.last_waitpid = Some(now);
            let exited = self.child().try_exit();
            match exited {
                Ok(Some(e)) => {
                    self.exit = Some(e);
                    return Some(EndpointError::ChildDied);
                }
                Ok(None) => {}
                // waitpid failed: the child is not ours to watch any more.
                Err(_) => return Some(EndpointError::ChildDied),
            }
        }
        let beat = region.heartbeat();
        if beat != self.last_beat {
            self.last_beat = beat;
            self.last_change = now;
            return None;
        }
        (now.duration_since(self.last_change) > self.timeout).then_some(EndpointError::LivenessTimeout)
    }

    fn kill_and_reap(&mut self) {
        // An error means it was already reaped; either way it is gone.
        let reaped = self.child().kill_and_reap();
        if let Ok(e) = reaped {
            self.exit = Some(e);
        }
    }

    fn finish(&mut self) {
        let waited = self.child().wait_timeout(self.exit_timeout);
        match waited {
            Ok(Some(e)) => self.exit = Some(e),
            _ => self.kill_and_reap(),
        }
    }
}
