//! The atomic mailbox state word (the concurrent half of
//! [`crate::mailbox::word`]).
//!
//! The snapshot type is [`WordState`]; its pure `transition_to_*` functions
//! say which transitions are legal. This module owns the memory orderings:
//! - [`StateWord::load`] is Acquire: it pairs with the Release of the
//!   publishing CAS that wrote the value, so the frame bytes written before
//!   that CAS are visible to the reader;
//! - [`StateWord::cas`] is the ONE compare-and-swap helper: AcqRel on success
//!   (Release publishes the frame bytes written before it; Acquire orders
//!   whatever the writer reads next after the value it replaced), Acquire on
//!   failure (the driver feeds the actual value to its machine, which may
//!   then read a field);
//! - [`StateWord::poison`] swaps POISONED in (AcqRel): one way, from any value
//!   (rule 10). A poison must never be undone, so every other write is a CAS
//!   from the value the writer's role expects (rule 7): a CAS from anything
//!   but POISONED fails once the word is POISONED.
//!
//! Mutant sites (docs/protocol.md section 8):
//! - `relaxed_publish`: the CAS publishes with Relaxed on success, so a
//!   reader's Acquire load no longer synchronises with the frame write (loom
//!   reports the unsynchronised field access);
//! - `restore_by_store`: the parent's restore CONTROL_DONE(u) -> u is a plain
//!   store, which erases a POISONED swapped in meanwhile by a liveness
//!   monitor or by the child (decided in `WordState::write_kind`, which the
//!   simulated memories consult too);
//! - `weak_done_cas`: only the child's TASK_DONE CAS publishes with Acquire
//!   instead of AcqRel, so the task result written before it is not
//!   ordered before the parent's read.

// clippy's `disallowed-types` resolves `crate::sync`'s re-exports to the std
// types it bans (on the std backend they are the same types); this module
// uses only `crate::sync` (no `std::sync` path appears in it).
#![allow(clippy::disallowed_types)]

use crate::mailbox::word::{WordState, WordWrite};
use crate::sync::{AtomicU32, Ordering};

/// The raw value of POISONED.
pub const POISONED: u32 = WordState::Poisoned.encode();

/// Success ordering of the publishing CAS.
#[cfg(not(chiplane_mutant = "relaxed_publish"))]
const PUBLISH: Ordering = Ordering::AcqRel;
/// MUTANT relaxed_publish: the CAS publishes with Relaxed.
#[cfg(chiplane_mutant = "relaxed_publish")]
const PUBLISH: Ordering = Ordering::Relaxed;

/// A borrowed state word. See the module doc.
#[derive(Clone, Copy, Debug)]
pub struct StateWord<'a> {
    word: &'a AtomicU32,
}

impl<'a> StateWord<'a> {
    pub(crate) fn new(word: &'a AtomicU32) -> Self {
        StateWord { word }
    }

    /// Load the raw value (Acquire).
    pub fn load(&self) -> u32 {
        // Acquire: pairs with the Release half of `cas` (the publication of
        // the value read) and with `poison`'s swap.
        self.word.load(Ordering::Acquire)
    }

    /// Load and decode (`None` for a value the protocol never writes).
    pub fn snapshot(&self) -> Option<WordState> {
        WordState::decode(self.load())
    }

    /// Compare-and-swap `from -> to`; `Err(actual)` when the word held
    /// another value. The caller checked `to` with a `transition_to_*`.
    pub fn cas(&self, from: WordState, to: WordState) -> Result<(), u32> {
        if from.write_kind(to) == WordWrite::Store {
            // MUTANT restore_by_store (decided in `WordState::write_kind`).
            // Release: pairs with the peer's Acquire load (as the CAS did).
            self.word.store(to.encode(), Ordering::Release);
            return Ok(());
        }
        // Success ordering: the Release half pairs with the reader's
        // Acquire `load` / failed `cas`; the Acquire half pairs with the
        // Release of the CAS that wrote `from`. Failure Acquire: pairs with
        // the Release of whichever CAS or swap wrote the actual value.
        let success = if cfg!(chiplane_mutant = "weak_done_cas") && to == WordState::TaskDone {
            // MUTANT weak_done_cas: only the child's TASK_DONE loses its
            // Release: the task result written before it is not published.
            Ordering::Acquire
        } else {
            PUBLISH
        };
        self.word.compare_exchange(from.encode(), to.encode(), success, Ordering::Acquire).map(|_| ())
    }

    /// Swap POISONED in (one way); returns the previous raw value.
    pub fn poison(&self) -> u32 {
        // AcqRel: the Release half pairs with the other side's Acquire load
        // that observes POISONED; the Acquire half pairs with the Release of
        // the value it replaces.
        self.word.swap(POISONED, Ordering::AcqRel)
    }
}
