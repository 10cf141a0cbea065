//! Completion cells: one producer stores a value exactly once; any number of
//! threads wait for it.
//!
//! # States of a [`Completion`] (one `AtomicU32`, snapshot [`CellState`])
//! ```text
//! EMPTY --producer claims (CAS)--> STORING --value written, publish (CAS, Release)--> READY
//! READY --the consumer takes the value (CAS)--> TAKEN
//! any but READY/TAKEN --a waiter is about to park (CAS, under the gate lock)--> same stage + PARKED
//! ```
//! `PARKED` is a flag beside the stage: "somebody may sleep on the gate's
//! condvar". The producer's publish CAS returns the old word; when it carried
//! `PARKED` the producer takes the gate lock and notifies all.
//!
//! # Who touches what
//! - the value (`UnsafeCell<Option<T>>`) is written only by the producer
//!   between its EMPTY->STORING and STORING->READY transitions, and read (moved
//!   out or cloned) only after a waiter observed READY with Acquire (pairs
//!   with the publish's Release); it is moved out only by the READY->TAKEN
//!   winner.
//! - the gate (`Mutex<()>` + `Condvar`) only orders sleeping and waking.
//!
//! # Invariants
//! - the value is stored at most once (`complete` on a non-EMPTY cell hands
//!   the value back) and taken at most once;
//! - no lost wake-up: a waiter sets PARKED by CAS *under the gate lock* and
//!   only then sleeps; the producer's publish is an RMW on the same word, so
//!   either the waiter's CAS sees READY (and does not sleep) or the publish
//!   sees PARKED (and the producer's notify, taken under the gate lock, comes
//!   after the waiter released the lock inside `Condvar::wait`);
//! - a waiter spins briefly before parking (docs/protocol.md rule 11); under loom
//!   and shuttle it does not spin (spinning only adds schedules);
//!
//! Mutant `lost_wakeup` (docs/protocol.md section 8): the producer notifies before
//! it publishes the value, so a waiter that parks in between sleeps forever.

use core::time::Duration;

use crate::sync::{AtomicU32, Condvar, Mutex, Ordering, UnsafeCell};

/// Stage of a completion cell.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Stage {
    /// No value yet; the producer may claim the cell.
    Empty,
    /// The producer claimed the cell and is writing the value.
    Storing,
    /// The value is published; waiters may read it.
    Ready,
    /// The value was moved out by its consumer.
    Taken,
}

/// A snapshot of a cell's state word.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CellState {
    /// Where the value is in its life.
    pub stage: Stage,
    /// A waiter may be asleep on the gate.
    pub parked: bool,
}

const PARKED_BIT: u32 = 1 << 8;

impl CellState {
    /// A fresh cell: no value, no sleeper.
    pub const EMPTY: CellState = CellState { stage: Stage::Empty, parked: false };

    /// The u32 stored in the cell's state word (stage in the low byte,
    /// `parked` as bit 8).
    pub const fn encode(self) -> u32 {
        let stage = match self.stage {
            Stage::Empty => 0,
            Stage::Storing => 1,
            Stage::Ready => 2,
            Stage::Taken => 3,
        };
        stage | if self.parked { PARKED_BIT } else { 0 }
    }

    /// Decode a word; only values written by `encode` ever occur.
    pub fn decode(v: u32) -> CellState {
        let stage = match v & 0xff {
            0 => Stage::Empty,
            1 => Stage::Storing,
            2 => Stage::Ready,
            3 => Stage::Taken,
            other => unreachable!("completion cell word holds stage {other}"),
        };
        CellState { stage, parked: v & PARKED_BIT != 0 }
    }

    /// The value can be read (READY) or was read (TAKEN): waiting is over.
    pub const fn settled(self) -> bool {
        matches!(self.stage, Stage::Ready | Stage::Taken)
    }

    /// Producer: EMPTY -> STORING (claims the right to write the value).
    pub fn transition_to_storing(self) -> Result<CellState, CellState> {
        match self.stage {
            Stage::Empty => Ok(CellState { stage: Stage::Storing, ..self }),
            _ => Err(self),
        }
    }

    /// Producer: STORING -> READY (the value is written). PARKED is cleared:
    /// the producer wakes every sleeper.
    pub fn transition_to_ready(self) -> Result<CellState, CellState> {
        match self.stage {
            Stage::Storing => Ok(CellState { stage: Stage::Ready, parked: false }),
            _ => Err(self),
        }
    }

    /// Consumer: READY -> TAKEN (the value is moved out).
    pub fn transition_to_taken(self) -> Result<CellState, CellState> {
        match self.stage {
            Stage::Ready => Ok(CellState { stage: Stage::Taken, parked: false }),
            _ => Err(self),
        }
    }

    /// Waiter: set PARKED while the cell is not settled.
    pub fn transition_to_parked(self) -> Result<CellState, CellState> {
        if self.settled() {
            Err(self)
        } else {
            Ok(CellState { parked: true, ..self })
        }
    }
}

/// Which transition a CAS performs (the helper picks its orderings).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    Claim,
    Publish,
    Take,
    Park,
}

/// Outcome of a waiter's attempt to park.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[must_use]
enum ParkAction {
    /// The cell settled: stop waiting.
    Settled,
    /// PARKED is set: sleep on the condvar.
    Sleep,
}

/// A value produced exactly once and awaited by any number of threads. See
/// the module doc.
pub struct Completion<T> {
    word: AtomicU32,
    value: UnsafeCell<Option<T>>,
    gate: Mutex<()>,
    wake: Condvar,
}

impl<T> core::fmt::Debug for Completion<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Acquire pairs with the producer's publish (only for a coherent print).
        let s = CellState::decode(self.word.load(Ordering::Acquire));
        f.debug_struct("Completion").field("state", &s).finish()
    }
}

// SAFETY: the value is written by exactly one thread (the STORING claimant)
// before a Release publish, and read only after an Acquire observation of
// READY; it is moved out only by the single READY->TAKEN winner. Moving it
// between threads needs `T: Send`.
unsafe impl<T: Send> Send for Completion<T> {}
// SAFETY: see above; concurrent `wait_cloned` calls read `&T` from several
// threads at once, which needs `T: Sync`.
unsafe impl<T: Send + Sync> Sync for Completion<T> {}

impl<T> Default for Completion<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Completion<T> {
    /// An empty cell.
    pub fn new() -> Self {
        Completion {
            word: AtomicU32::new(CellState::EMPTY.encode()),
            value: UnsafeCell::new(None),
            gate: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    /// The one CAS helper: applies `f` to the current snapshot until it
    /// succeeds (returns the old snapshot) or `f` refuses (returns the
    /// snapshot it refused). Orderings per step:
    /// - `Claim` (EMPTY->STORING): Relaxed; only one producer can win and no
    ///   data is published by it (the value is written after).
    /// - `Publish` (STORING->READY): Release on success; pairs with the
    ///   Acquire loads in `state()` and with `Take`'s Acquire, so the
    ///   value's write happens-before any read of it.
    /// - `Take` (READY->TAKEN): Acquire; pairs with `Publish`'s Release.
    /// - `Park` (set PARKED): Relaxed; it is ordered against `Publish` by
    ///   being an RMW on the same word (modification order), and the gate
    ///   lock orders the sleep against the producer's notify.
    fn cas(&self, step: Step, f: impl Fn(CellState) -> Result<CellState, CellState>) -> Result<CellState, CellState> {
        let (success, failure) = match step {
            Step::Claim | Step::Park => (Ordering::Relaxed, Ordering::Relaxed),
            Step::Publish => (Ordering::Release, Ordering::Relaxed),
            Step::Take => (Ordering::Acquire, Ordering::Relaxed),
        };
        // Relaxed first read: the CAS below re-validates it.
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            let old = CellState::decode(cur);
            let new = f(old)?;
            // Pairs: see the table above (per `step`).
            match self.word.compare_exchange_weak(cur, new.encode(), success, failure) {
                Ok(_) => return Ok(old),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Current snapshot (Acquire: pairs with `Publish`'s Release, so READY
    /// seen here makes the value visible).
    pub fn state(&self) -> CellState {
        CellState::decode(self.word.load(Ordering::Acquire))
    }

    /// True once the value is published (READY or already TAKEN).
    pub fn is_ready(&self) -> bool {
        self.state().settled()
    }

    /// Store the value (exactly once) and wake every waiter. A second call
    /// hands its value back: a producer bug the caller should assert on.
    pub fn complete(&self, value: T) -> Result<(), T> {
        if self.cas(Step::Claim, CellState::transition_to_storing).is_err() {
            return Err(value);
        }
        #[cfg(chiplane_mutant = "lost_wakeup")]
        {
            // MUTANT lost_wakeup: wake the sleepers before the value is
            // published; a waiter that parks in between sleeps forever.
            // Relaxed: the mutant's whole point is the missing ordering.
            if CellState::decode(self.word.load(Ordering::Relaxed)).parked {
                self.wake_all();
            }
        }
        // SAFETY: we won EMPTY->STORING, so no other thread writes the value,
        // and no thread reads it before it observes READY (published below).
        self.value.with_mut(|p| unsafe { *p = Some(value) });
        let old = self.cas(Step::Publish, CellState::transition_to_ready).expect("STORING is ours until we publish");
        #[cfg(not(chiplane_mutant = "lost_wakeup"))]
        if old.parked {
            self.wake_all();
        }
        #[cfg(chiplane_mutant = "lost_wakeup")]
        let _ = old;
        Ok(())
    }

    fn wake_all(&self) {
        // Taking the gate lock orders this notify after a parking waiter's
        // `Condvar::wait` released the lock (see the module invariants): a
        // waiter sets PARKED and enters `wait` in one critical section, so
        // once we held the lock every such waiter is waiting. Notify after
        // unlocking, so the woken waiter does not block on the gate.
        drop(self.gate.lock().unwrap_or_else(|e| e.into_inner()));
        self.wake.notify_all();
    }

    /// Spin for the process's spin budget (none under loom and shuttle)
    /// waiting for the value; true when it settled.
    fn spin(&self) -> bool {
        super::wait::spin_until(|| self.is_ready())
    }

    /// Under the gate lock: set PARKED unless the cell already settled.
    fn try_park(&self) -> ParkAction {
        match self.cas(Step::Park, CellState::transition_to_parked) {
            Ok(_) => ParkAction::Sleep,
            Err(_) => ParkAction::Settled,
        }
    }

    /// Block until the value is published.
    pub fn wait_ready(&self) {
        if self.spin() {
            return;
        }
        let mut guard = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        while self.try_park() == ParkAction::Sleep {
            guard = self.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        drop(guard);
        // Make the value visible (the settled check in try_park was Relaxed).
        let _ = self.state();
    }

    /// Block until the value is published or `timeout` passed; true when it
    /// was published. (Under loom and shuttle the timeout never fires.)
    pub fn wait_ready_timeout(&self, timeout: Duration) -> bool {
        if self.spin() {
            return true;
        }
        let guard = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        #[cfg(not(chiplane_loom))]
        {
            let (guard, _) = self
                .wake
                .wait_timeout_while(guard, timeout, |_| self.try_park() == ParkAction::Sleep)
                .unwrap_or_else(|e| e.into_inner());
            drop(guard);
        }
        #[cfg(chiplane_loom)]
        {
            // loom has no wait_timeout_while and never times out anyway.
            let mut guard = guard;
            while self.try_park() == ParkAction::Sleep {
                guard = self.wake.wait_timeout(guard, timeout).unwrap_or_else(|e| e.into_inner()).0;
            }
            drop(guard);
        }
        self.is_ready()
    }

    /// Move the value out if it is READY and nobody took it yet.
    pub fn try_take(&self) -> Option<T> {
        self.cas(Step::Take, CellState::transition_to_taken).ok()?;
        // SAFETY: we won READY->TAKEN with Acquire (pairs with the publish),
        // so the value is written and nobody else moves it out; `wait_cloned`
        // readers never race a take (the consumer that takes is unique and
        // does not clone, see `wait_cloned`).
        self.value.with_mut(|p| unsafe { (*p).take() })
    }

    /// If the value is READY (published, not taken), apply `f` to it.
    /// Crate-internal: the caller must own the only consumer (no
    /// `try_take` may run meanwhile; the L3 run handle calls both through
    /// `&self` / `self`).
    pub(crate) fn peek<U>(&self, f: impl FnOnce(&T) -> U) -> Option<U> {
        if self.state().stage != Stage::Ready {
            return None;
        }
        // SAFETY: READY observed with Acquire (pairs with the publish): the
        // value is written and no longer written to; the caller guarantees
        // no take races this read.
        self.value.with(|p| unsafe { (*p).as_ref().map(f) })
    }

    /// Wait for the value and move it out. `None` when another consumer took
    /// it first.
    pub fn wait(&self) -> Option<T> {
        self.wait_ready();
        self.try_take()
    }

    /// Wait at most `timeout`; the value if it was published and not taken.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<T> {
        if self.wait_ready_timeout(timeout) {
            self.try_take()
        } else {
            None
        }
    }
}

impl<T: Clone> Completion<T> {
    /// Wait for the value and clone it (for any number of observers).
    /// `None` if it was taken by the consumer. Must not be mixed with
    /// `try_take` on the same cell (the consumer that takes is unique and
    /// does not observe by clone).
    pub fn wait_cloned(&self) -> Option<T> {
        self.wait_ready();
        if self.state().stage != Stage::Ready {
            return None;
        }
        // SAFETY: READY observed with Acquire (pairs with the publish); the
        // value is no longer written, and no take races this read (doc).
        self.value.with(|p| unsafe { (*p).clone() })
    }
}

#[cfg(all(test, not(any(chiplane_loom, chiplane_shuttle))))]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use crate::sync::Arc;

    #[test]
    fn transitions_are_exactly_the_table() {
        let stages = [Stage::Empty, Stage::Storing, Stage::Ready, Stage::Taken];
        for stage in stages {
            for parked in [false, true] {
                let s = CellState { stage, parked };
                assert_eq!(CellState::decode(s.encode()), s);
                assert_eq!(s.transition_to_storing().is_ok(), stage == Stage::Empty);
                assert_eq!(s.transition_to_ready().is_ok(), stage == Stage::Storing);
                assert_eq!(s.transition_to_taken().is_ok(), stage == Stage::Ready);
                assert_eq!(s.transition_to_parked().is_ok(), matches!(stage, Stage::Empty | Stage::Storing));
            }
        }
        assert_eq!(
            CellState { stage: Stage::Storing, parked: true }.transition_to_ready(),
            Ok(CellState { stage: Stage::Ready, parked: false })
        );
    }

    #[test]
    fn complete_once_take_once() {
        let c = Completion::new();
        assert_eq!(c.try_take(), None);
        assert_eq!(c.complete(7), Ok(()));
        assert_eq!(c.complete(8), Err(8));
        assert_eq!(c.wait_cloned(), Some(7));
        assert_eq!(c.wait(), Some(7));
        assert_eq!(c.try_take(), None);
        assert!(c.is_ready());
    }

    #[test]
    fn timeout_without_value() {
        let c: Completion<u8> = Completion::new();
        assert_eq!(c.wait_timeout(Duration::from_millis(1)), None);
        assert!(!c.is_ready());
    }

    #[test]
    fn cross_thread_wait() {
        let c = Arc::new(Completion::new());
        let p = {
            let c = c.clone();
            crate::sync::thread::spawn(move || c.complete(String::from("x")).unwrap())
        };
        assert_eq!(c.wait().as_deref(), Some("x"));
        p.join().unwrap();
    }
}
