//! The L3 run queue: orchestration functions run one at a time, in
//! submission order. When nothing is queued or running, a new function runs
//! at once on the caller's thread (it only submits, so `run_async` returns
//! as soon as it returned; no thread hop delays the first task); otherwise
//! it is queued and the orchestrator thread runs it after every earlier one.
//! A single chip task (`call_async`) claims an idle queue without a job
//! ([`RunQueue::try_claim`]) and submits in the job's place: the same order,
//! without boxing a function and its result.

// clippy's `disallowed-types` resolves `crate::sync`'s re-exports to the std
// types it bans; this module uses only `crate::sync`.
#![allow(clippy::disallowed_types)]

use std::collections::VecDeque;

use crate::sync::{Condvar, Mutex, MutexGuard};

/// A queued job (the orchestration function, boxed with its completion).
pub(super) type Job<O> = Box<dyn FnOnce(&mut O) + Send>;

/// See the module doc.
pub(super) struct RunQueue<O> {
    state: Mutex<QueueState<O>>,
    wake: Condvar,
}

struct QueueState<O> {
    queued: VecDeque<Job<O>>,
    running: bool,
    closed: bool,
}

impl<O> QueueState<O> {
    /// Set `running` if nothing is queued or running; whether it did.
    fn claim_if_idle(&mut self) -> bool {
        let idle = !self.running && self.queued.is_empty();
        self.running |= idle;
        idle
    }
}

/// The queue, claimed by [`RunQueue::try_claim`]; dropping it hands the
/// queue back.
pub(super) struct Claim<'a, O> {
    queue: &'a RunQueue<O>,
}

/// Mutant `claim_kept`: the claim is never handed back, so the next run
/// queues behind a run that already returned and never starts (models'
/// `l3_worker_pipeline`).
impl<O> Drop for Claim<'_, O> {
    fn drop(&mut self) {
        if cfg!(not(chiplane_mutant = "claim_kept")) {
            self.queue.finished();
        }
    }
}

impl<O> RunQueue<O> {
    pub(super) fn new() -> Self {
        RunQueue {
            state: Mutex::new(QueueState { queued: VecDeque::new(), running: false, closed: false }),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState<O>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `job`, or hand it back (claimed: `running` set) when nothing
    /// is queued or running, for the caller to run now.
    pub(super) fn push_or_claim(&self, job: Job<O>) -> Option<Job<O>> {
        let mut q = self.lock();
        if q.claim_if_idle() {
            return Some(job);
        }
        q.queued.push_back(job);
        drop(q);
        self.wake.notify_all();
        None
    }

    /// Claim the queue when nothing is queued or running, without a job:
    /// the caller does its work now, in the place a claimed job would have
    /// run, and the claim's drop hands the queue back ([`RunQueue::finished`],
    /// also when the work panics). `None`: something runs or is queued;
    /// queue a job instead ([`RunQueue::push_or_claim`], which claims if the
    /// queue went idle since).
    pub(super) fn try_claim(&self) -> Option<Claim<'_, O>> {
        // The lock is released at the end of this statement, and a `Claim`
        // exists only once the claim succeeded: one made and dropped on
        // failure would hand back a claim held by someone else, and, made
        // while the guard lives, would deadlock on the lock in `finished`.
        let claimed = self.lock().claim_if_idle();
        if claimed {
            Some(Claim { queue: self })
        } else {
            None
        }
    }

    /// Orchestrator thread: the next queued job once none runs (claimed);
    /// `None` once closed and drained.
    pub(super) fn next_queued(&self) -> Option<Job<O>> {
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

    /// The claimed job returned. The orchestrator is woken only when a job
    /// is queued: it waits for nothing else here (`close` wakes it for the
    /// end), and a wake-up per run would cost a futex call and a context
    /// switch on every `run` of an idle queue.
    ///
    /// Mutant `orchestrator_not_woken`: the wake is left out, so a job
    /// queued behind this one is never run (models' `l3_run_queue_handoff`).
    pub(super) fn finished(&self) {
        let mut q = self.lock();
        q.running = false;
        let queued = !q.queued.is_empty();
        drop(q);
        if queued && cfg!(not(chiplane_mutant = "orchestrator_not_woken")) {
            self.wake.notify_all();
        }
    }

    /// No more jobs: the orchestrator returns once the queue is drained.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
    }
}
