//! How the concurrent layer waits: spin for the process's *spin budget*,
//! then sleep (a condvar, a completion cell's gate, or a doorbell's futex).
//!
//! The budget is a number of `spin_loop` iterations, set once per process
//! by whoever knows the machine ([`set_spin_budget`]; hw calibrates it
//! from what a wake-up costs and how many cores are free). Core reads no
//! clock: the budget is an input like any other. Until it is set, loops
//! spin [`DEFAULT_SPIN_ITERS`] times.
//!
//! Beside a long task there is a second budget, [`under_task_spin_budget`]
//! (hw: 0 on at most 2 cores, else the first): the task holds a core and
//! the parent's caller and the child's serve loop take turns on the rest,
//! so a side that spins there keeps the other off its core. It applies to
//! both sides of a control that entered under a running task, and to the
//! serve loop once it has slept during the current task.
//!
//! A waiter beside a long task may also *yield* for a third budget,
//! [`under_task_yield_budget`] (hw: on at most 2 cores, about four
//! wake-ups' worth of `sched_yield` rounds; else 0), before it sleeps: the
//! parent's caller waiting for the reply to a control under a running task
//! gives its core to the serve loop it just woke at every round, instead of
//! sleeping and paying a wake-up of its own when the reply comes.
//!
//! Under loom and shuttle every budget is 0: a spin only adds schedules
//! (every iteration is a point where the checker may switch threads), and
//! the sleep that follows is what the models check.

#![allow(clippy::disallowed_types)]

/// Iterations before anything set a budget: a few microseconds.
pub const DEFAULT_SPIN_ITERS: u32 = 256;

/// A process-wide budget in iterations: a tuning value set once by hw and
/// read by every wait; always 0 under the models.
struct Budget(#[cfg(not(any(chiplane_loom, chiplane_shuttle)))] std::sync::atomic::AtomicU32);

impl Budget {
    const fn new() -> Self {
        Self::starting_at(DEFAULT_SPIN_ITERS)
    }

    const fn starting_at(iters: u32) -> Self {
        #[cfg(any(chiplane_loom, chiplane_shuttle))]
        let _ = iters;
        Budget(
            #[cfg(not(any(chiplane_loom, chiplane_shuttle)))]
            std::sync::atomic::AtomicU32::new(iters),
        )
    }

    #[inline]
    fn get(&self) -> u32 {
        #[cfg(not(any(chiplane_loom, chiplane_shuttle)))]
        {
            // Relaxed: a tuning value; any value read is a valid budget.
            self.0.load(std::sync::atomic::Ordering::Relaxed)
        }
        #[cfg(any(chiplane_loom, chiplane_shuttle))]
        {
            0
        }
    }

    fn set(&self, iters: u32) {
        #[cfg(not(any(chiplane_loom, chiplane_shuttle)))]
        // Relaxed: see `get`.
        self.0.store(iters, std::sync::atomic::Ordering::Relaxed);
        #[cfg(any(chiplane_loom, chiplane_shuttle))]
        let _ = iters;
    }
}

static SPIN: Budget = Budget::new();
static UNDER_TASK_SPIN: Budget = Budget::new();
static UNDER_TASK_YIELDS: Budget = Budget::starting_at(0);

/// The process's spin budget, in `spin_loop` iterations (0 under models).
#[inline]
pub fn spin_budget() -> u32 {
    SPIN.get()
}

/// Set the process's spin budget (hw does, once, from a calibration).
pub fn set_spin_budget(iters: u32) {
    SPIN.set(iters);
}

/// The spin budget of a wait beside a long task: the task holds a core,
/// and the parent's caller and the child's serve loop take turns on what
/// is left. Where that is one core, a side that spins keeps the other off
/// it, so hw sets 0 there (0 under models). Used by the two sides of a
/// control that entered under a running task, and by the serve loop once
/// it has slept during the current task (so the task is not a short one).
#[inline]
pub fn under_task_spin_budget() -> u32 {
    UNDER_TASK_SPIN.get()
}

/// Set the budget of [`under_task_spin_budget`].
pub fn set_under_task_spin_budget(iters: u32) {
    UNDER_TASK_SPIN.set(iters);
}

/// How many times a waiter beside a long task yields its core (a
/// `yield_now` between two looks) after its spin budget and before it
/// sleeps (module doc). 0 until hw sets it, and always under the models.
#[inline]
pub fn under_task_yield_budget() -> u32 {
    UNDER_TASK_YIELDS.get()
}

/// Set the budget of [`under_task_yield_budget`].
pub fn set_under_task_yield_budget(rounds: u32) {
    UNDER_TASK_YIELDS.set(rounds);
}

/// The budget of a wait that may sit beside a long task: the under-task
/// budget when `beside()` says so, else the process's budget. `beside` is
/// asked only when there is a budget at all (never under the models, so a
/// word it loads adds no schedules there).
#[inline]
pub fn spin_budget_beside(beside: impl FnOnce() -> bool) -> u32 {
    let budget = spin_budget();
    if budget > 0 && beside() {
        under_task_spin_budget()
    } else {
        budget
    }
}

/// A control under a running task at word `word` (raw): CONTROL_READY or
/// CONTROL_DONE with `under_task`.
pub fn control_under_task(word: u32) -> bool {
    use crate::mailbox::word::WordState;
    matches!(
        WordState::decode(word),
        Some(WordState::ControlReady { under_task: true } | WordState::ControlDone { under_task: true })
    )
}

/// A task holds the chip's run lane at word `word` (raw): TASK_RUNNING, or
/// a control that entered under it.
pub fn task_holds_lane(word: u32) -> bool {
    word == crate::mailbox::word::WordState::TaskRunning.encode() || control_under_task(word)
}

/// Spin until `ready()` holds or the budget is spent; returns `ready()`'s
/// last answer. `ready` must be cheap (a load or two).
#[inline]
pub fn spin_until(ready: impl FnMut() -> bool) -> bool {
    spin_until_within(spin_budget(), ready)
}

/// [`spin_until`] with an explicit budget.
#[inline]
pub fn spin_until_within(budget: u32, mut ready: impl FnMut() -> bool) -> bool {
    for _ in 0..budget {
        if ready() {
            return true;
        }
        crate::sync::spin_loop();
    }
    ready()
}

/// The one backoff of the concurrent layer's loops: count idle rounds
/// against the spin budget, then say "sleep now".
#[derive(Debug, Default)]
pub struct Backoff {
    idle: u32,
    yielded: u32,
}

impl Backoff {
    /// Something happened: start spinning afresh.
    pub fn reset(&mut self) {
        self.idle = 0;
        self.yielded = 0;
    }

    /// An idle round: spin once and return true while within the budget;
    /// false once it is spent (the caller sleeps).
    pub fn spin(&mut self) -> bool {
        self.spin_within(spin_budget())
    }

    /// [`Backoff::spin`] against an explicit budget.
    pub fn spin_within(&mut self, budget: u32) -> bool {
        if self.idle >= budget {
            return false;
        }
        self.idle += 1;
        crate::sync::spin_loop();
        true
    }

    /// An idle round after the spin: give the core away once (`yield_now`)
    /// and return true while within `budget` rounds; false once it is spent
    /// (the caller sleeps).
    pub fn yield_within(&mut self, budget: u32) -> bool {
        if self.yielded >= budget {
            return false;
        }
        self.yielded += 1;
        crate::sync::thread::yield_now();
        true
    }
}

#[cfg(all(test, not(any(chiplane_loom, chiplane_shuttle))))]
mod tests {
    use super::Backoff;

    #[test]
    fn backoff_spins_then_yields_each_for_its_budget_and_reset_starts_over() {
        let mut b = Backoff::default();
        assert_eq!((0..10).filter(|_| b.spin_within(3)).count(), 3);
        assert_eq!((0..10).filter(|_| b.yield_within(2)).count(), 2);
        assert!(!b.spin_within(3) && !b.yield_within(2), "both budgets spent: sleep");
        b.reset();
        assert!(b.spin_within(3) && b.yield_within(2));
        // A zero budget never spins or yields.
        assert!(!Backoff::default().yield_within(0));
    }
}
