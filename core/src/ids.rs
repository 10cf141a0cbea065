//! Identifier newtypes. A handle is `{worker, index, generation}` and is
//! checked on every use (sharded-slab style): a handle from another worker,
//! an older generation, or a torn-down slot is rejected with a typed error.

use core::fmt;

/// Which worker (L2 worker, or one chip child of an L3 worker) issued a handle.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct WorkerId(pub u32);

/// Index of a slot in a slot table.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct SlotIndex(pub u32);

/// Generation of a slot. `Generation::NONE` (0) is never handed out: the first
/// registration into a slot gets generation 1. A slot whose generation would
/// pass its table's maximum is retired, never wrapped.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Generation(pub u32);

impl Generation {
    /// The generation of a slot that was never registered.
    pub const NONE: Generation = Generation(0);
    /// The largest generation a slot may reach in production.
    pub const MAX: Generation = Generation(u32::MAX);

    /// The next generation, or `None` when `self` is already `max` (the slot
    /// must then be retired).
    #[must_use]
    pub fn next(self, max: Generation) -> Option<Generation> {
        if self >= max {
            None
        } else {
            Some(Generation(self.0 + 1))
        }
    }
}

/// Identity of one dispatch (a task or a control) across the mailbox.
/// Assigned by the parent, strictly increasing per endpoint.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct DispatchId(pub u64);

impl DispatchId {
    /// The id after this one.
    #[must_use]
    pub fn next(self) -> DispatchId {
        DispatchId(self.0.wrapping_add(1))
    }
}

/// 32-byte digest (SHA-256) of a callable's canonical definition.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CallableDigest(pub [u8; 32]);

impl fmt::Debug for CallableDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallableDigest(")?;
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

/// A registered callable as seen by its user.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Handle {
    pub worker: WorkerId,
    pub index: SlotIndex,
    pub generation: Generation,
}
