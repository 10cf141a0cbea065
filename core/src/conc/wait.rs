//! How the concurrent layer waits: spin for the process's *spin budget*,
//! then sleep (a condvar, a completion cell's gate, or a doorbell's futex).
//!
//! The budget is a number of `spin_loop` iterations, set once per process
//! by whoever knows the machine ([`set_spin_budget`]; hw calibrates it
//! from what a wake-up costs and how many cores are free). Core reads no
//! clock: the budget is an input like any other. Until it is set, loops
//! spin [`DEFAULT_SPIN_ITERS`] times.
//!
//! Under loom and shuttle the budget is 0: a spin only adds schedules
//! (every iteration is a point where the checker may switch threads), and
//! the sleep that follows is what the models check.

#![allow(clippy::disallowed_types)]

/// Iterations before anything set a budget: a few microseconds.
pub const DEFAULT_SPIN_ITERS: u32 = 256;

#[cfg(not(any(chiplane_loom, chiplane_shuttle)))]
static SPIN_ITERS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(DEFAULT_SPIN_ITERS);

/// The process's spin budget, in `spin_loop` iterations (0 under models).
#[inline]
pub fn spin_budget() -> u32 {
    #[cfg(not(any(chiplane_loom, chiplane_shuttle)))]
    {
        // Relaxed: a tuning value; any value read is a valid budget.
        SPIN_ITERS.load(std::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(any(chiplane_loom, chiplane_shuttle))]
    {
        0
    }
}

/// Set the process's spin budget (hw does, once, from a calibration).
pub fn set_spin_budget(iters: u32) {
    #[cfg(not(any(chiplane_loom, chiplane_shuttle)))]
    // Relaxed: see `spin_budget`.
    SPIN_ITERS.store(iters, std::sync::atomic::Ordering::Relaxed);
    #[cfg(any(chiplane_loom, chiplane_shuttle))]
    let _ = iters;
}

/// Spin until `ready()` holds or the budget is spent; returns `ready()`'s
/// last answer. `ready` must be cheap (a load or two).
#[inline]
pub fn spin_until(mut ready: impl FnMut() -> bool) -> bool {
    for _ in 0..spin_budget() {
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
}

impl Backoff {
    /// Something happened: start spinning afresh.
    pub fn reset(&mut self) {
        self.idle = 0;
    }

    /// An idle round: spin once and return true while within the budget;
    /// false once it is spent (the caller sleeps).
    pub fn spin(&mut self) -> bool {
        if self.idle >= spin_budget() {
            return false;
        }
        self.idle += 1;
        crate::sync::spin_loop();
        true
    }
}
