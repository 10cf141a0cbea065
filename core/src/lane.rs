//! Lanes: FIFO executors, one job at a time.
//!
//! The **run lane** executes runs in submission order (sync and async runs
//! share it: a sync run is an async run followed by a wait, so it can never
//! overtake). The **register lane** executes prepares and releases in order.
//! The two lanes are independent and run concurrently; that concurrency is
//! the point of chiplane.
//!
//! # States
//! `Idle` (nothing running) or `Busy(id)`; a FIFO queue of waiting jobs.
//!
//! # Call order
//! `handle(Enqueue)` any time; `poll()` yields `Start` for the queue head
//! when the lane is idle; the executor runs the job and then calls
//! `handle(Finished { id })` with the id it was given; `poll()` again.
//!
//! # Invariants
//! - at most one job is started and not yet finished;
//! - jobs start in exactly the order they were enqueued;
//! - `Finished` for an id that is not the running job is rejected
//!   (`LaneError::NotRunning`) and changes nothing.

use std::collections::VecDeque;

/// Lane-local job id (assigned by the lane, strictly increasing).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct JobId(pub u64);

/// Inputs of a lane.
#[derive(Debug)]
pub enum LaneInput<J> {
    /// Queue a job at the back; `handle` returns its id.
    Enqueue(J),
    /// The executor finished the running job.
    Finished {
        /// The id `Start` gave the job.
        id: JobId,
    },
}

/// What the executor must do.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum LaneOutput<J> {
    /// Run this job now, then report `Finished { id }`.
    Start {
        /// The job's id, to report in `Finished`.
        id: JobId,
        /// The job to run.
        job: J,
    },
}

/// `Finished` named a job that is not running.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LaneError {
    /// `id` is not the running job (an executor bug); nothing changed.
    NotRunning {
        /// The id `Finished` named.
        id: JobId,
    },
}

/// A FIFO lane. See the module doc.
#[derive(Debug, Clone, Hash)]
pub struct Lane<J> {
    queue: VecDeque<(JobId, J)>,
    running: Option<JobId>,
    next_id: JobId,
    started: u64,
}

impl<J> Default for Lane<J> {
    fn default() -> Self {
        Self::new()
    }
}

impl<J> Lane<J> {
    /// An idle lane with an empty queue; its first job gets id 0.
    pub fn new() -> Self {
        Lane { queue: VecDeque::new(), running: None, next_id: JobId(0), started: 0 }
    }

    /// Apply one input. `Enqueue` returns the new job's id.
    pub fn handle(&mut self, input: LaneInput<J>) -> Result<Option<JobId>, LaneError> {
        match input {
            LaneInput::Enqueue(job) => {
                let id = self.next_id;
                self.next_id = JobId(id.0 + 1);
                self.queue.push_back((id, job));
                Ok(Some(id))
            }
            LaneInput::Finished { id } => {
                if self.running != Some(id) {
                    return Err(LaneError::NotRunning { id });
                }
                self.running = None;
                Ok(None)
            }
        }
    }

    /// The next job to start, if the lane is idle and one is queued.
    pub fn poll(&mut self) -> Option<LaneOutput<J>> {
        if self.running.is_some() {
            return None;
        }
        let (id, job) = self.queue.pop_front()?;
        self.running = Some(id);
        self.started += 1;
        Some(LaneOutput::Start { id, job })
    }

    /// The running job, if any.
    pub fn running(&self) -> Option<JobId> {
        self.running
    }

    /// Jobs waiting (not started).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Iterate waiting jobs in FIFO order.
    pub fn iter_queued(&self) -> impl Iterator<Item = (JobId, &J)> {
        self.queue.iter().map(|(id, j)| (*id, j))
    }

    /// Remove waiting jobs for which `f` is true (e.g. a cancelled prepare
    /// still queued); returns them in FIFO order. Never touches the running job.
    pub fn remove_queued(&mut self, mut f: impl FnMut(&J) -> bool) -> Vec<(JobId, J)> {
        let mut kept = VecDeque::with_capacity(self.queue.len());
        let mut removed = Vec::new();
        for (id, j) in self.queue.drain(..) {
            if f(&j) {
                removed.push((id, j));
            } else {
                kept.push_back((id, j));
            }
        }
        self.queue = kept;
        removed
    }

    /// Total jobs started so far.
    pub fn started(&self) -> u64 {
        self.started
    }

    /// True when nothing is running and nothing is queued.
    pub fn is_idle(&self) -> bool {
        self.running.is_none() && self.queue.is_empty()
    }
}

/// Jobs of the register lane.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RegisterJob<A> {
    /// Prepare the callable registered as `handle`.
    Prepare {
        /// The registration to prepare (report its result for this handle).
        handle: crate::ids::CallableHandle,
        /// What to prepare.
        digest: crate::ids::CallableDigest,
    },
    /// Release an artifact (exactly once).
    Release {
        /// The registration the artifact was prepared for.
        handle: crate::ids::CallableHandle,
        /// The artifact to release.
        artifact: A,
    },
}

/// The register lane.
pub type RegisterLane<A> = Lane<RegisterJob<A>>;

/// A run waiting on the run lane (already pinned).
#[derive(Debug, Clone, PartialEq, Hash)]
pub struct RunJob<P> {
    /// The callable to run (its slot is pinned).
    pub handle: crate::ids::CallableHandle,
    /// Caller's token for the completion (a dispatch id at L3, a cell at L2).
    pub payload: P,
}

/// The run lane.
pub type RunLane<P> = Lane<RunJob<P>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_one_at_a_time() {
        let mut l = Lane::new();
        let a = l.handle(LaneInput::Enqueue('a')).unwrap().unwrap();
        let b = l.handle(LaneInput::Enqueue('b')).unwrap().unwrap();
        assert_eq!(l.poll(), Some(LaneOutput::Start { id: a, job: 'a' }));
        assert_eq!(l.poll(), None, "one job at a time");
        assert_eq!(l.handle(LaneInput::Finished { id: b }), Err(LaneError::NotRunning { id: b }));
        l.handle(LaneInput::Finished { id: a }).unwrap();
        assert_eq!(l.poll(), Some(LaneOutput::Start { id: b, job: 'b' }));
        l.handle(LaneInput::Finished { id: b }).unwrap();
        assert!(l.is_idle());
        assert_eq!(l.handle(LaneInput::Finished { id: b }), Err(LaneError::NotRunning { id: b }));
    }

    #[test]
    fn remove_queued_keeps_order_and_running() {
        let mut l = Lane::new();
        for c in ['a', 'b', 'c', 'd'] {
            l.handle(LaneInput::Enqueue(c)).unwrap();
        }
        let LaneOutput::Start { id, job } = l.poll().unwrap();
        assert_eq!(job, 'a');
        let removed: Vec<char> = l.remove_queued(|j| *j == 'c' || *j == 'a').into_iter().map(|(_, j)| j).collect();
        assert_eq!(removed, vec!['c']);
        assert_eq!(l.running(), Some(id));
        let rest: Vec<char> = l.iter_queued().map(|(_, j)| *j).collect();
        assert_eq!(rest, vec!['b', 'd']);
    }
}
