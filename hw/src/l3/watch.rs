//! [`ProcessWatch`]: the parent's liveness policy for one chip child
//! process (core's [`ChildWatch`]).
//!
//! The port calls [`ChildWatch::check`] only when a step made no progress
//! while work is outstanding. The child is gone when
//! - it exited (`waitpid(WNOHANG)` through [`ChipChild::try_exit`]):
//!   `EndpointError::ChildDied`; or
//! - its heartbeat (the region counter its serve loop bumps on every idle
//!   step, lanes busy or not) has not moved for longer than the liveness
//!   timeout: `EndpointError::LivenessTimeout`. A long prepare or run does
//!   not stall the heartbeat: the lanes are other threads.
//!
//! [`ChildWatch::kill_and_reap`] SIGKILLs and reaps the child, so when the
//! port then fails the outstanding handles the child can no longer touch the
//! region (rule 6).

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
    last_beat: u64,
    last_change: Instant,
    exit: Option<ChildExit>,
}

impl ProcessWatch {
    /// Watch `child` (shared with its owner, which may kill it or wait for
    /// its exit after a shutdown).
    pub fn new(child: Arc<Mutex<ChipChild>>, timeout: Duration) -> Self {
        ProcessWatch { child, timeout, last_beat: 0, last_change: Instant::now(), exit: None }
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
        let beat = region.heartbeat();
        let now = Instant::now();
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
}
