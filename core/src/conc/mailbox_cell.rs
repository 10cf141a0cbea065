//! A minimal completion cell for the mailbox port's handles: stored exactly
//! once by the port, taken once by the handle's owner, waited on by any
//! thread (Mutex + Condvar from [`crate::sync`], so loom and shuttle see
//! every wait). Stand-in until `conc::cell::Completion` (L2) lands on main;
//! the API is the same subset (`complete`, `is_ready`, `try_take`, `wait`).
//!
//! # Invariants
//! - `complete` stores at most once (a second value is handed back);
//! - the value is moved out at most once;
//! - no lost wake-up: the value is stored and `notify_all` called under the
//!   lock a waiter holds while it checks and sleeps.

// clippy's `disallowed-types` resolves `crate::sync`'s re-exports to the std
// types it bans (on the std backend they are the same types); this module
// uses only `crate::sync` (no `std::sync` path appears in it).
#![allow(clippy::disallowed_types)]

use crate::sync::{Condvar, Mutex};

#[derive(Debug)]
enum Stage<T> {
    Empty,
    Ready(T),
    Taken,
}

/// A value produced exactly once. See the module doc.
#[derive(Debug)]
pub struct Completion<T> {
    stage: Mutex<Stage<T>>,
    wake: Condvar,
}

impl<T> Default for Completion<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Completion<T> {
    pub fn new() -> Self {
        Completion { stage: Mutex::new(Stage::Empty), wake: Condvar::new() }
    }

    /// Store the value; `Err(value)` if one was stored before.
    pub fn complete(&self, value: T) -> Result<(), T> {
        let mut s = self.stage.lock().expect("completion lock");
        if !matches!(*s, Stage::Empty) {
            return Err(value);
        }
        *s = Stage::Ready(value);
        self.wake.notify_all();
        Ok(())
    }

    /// The value was stored (and maybe taken).
    pub fn is_ready(&self) -> bool {
        !matches!(*self.stage.lock().expect("completion lock"), Stage::Empty)
    }

    /// Move the value out if it is there (once).
    pub fn try_take(&self) -> Option<T> {
        let mut s = self.stage.lock().expect("completion lock");
        match std::mem::replace(&mut *s, Stage::Taken) {
            Stage::Ready(v) => Some(v),
            Stage::Empty => {
                *s = Stage::Empty;
                None
            }
            Stage::Taken => None,
        }
    }

    /// Block until the value is stored, then move it out (`None` if it was
    /// already taken). Someone else must be driving the producer.
    pub fn wait(&self) -> Option<T> {
        let mut s = self.stage.lock().expect("completion lock");
        while matches!(*s, Stage::Empty) {
            s = self.wake.wait(s).expect("completion lock");
        }
        match std::mem::replace(&mut *s, Stage::Taken) {
            Stage::Ready(v) => Some(v),
            _ => None,
        }
    }
}
