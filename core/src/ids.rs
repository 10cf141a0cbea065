//! Identifier newtypes. A handle is `{worker, index, generation}` and is
//! checked on every use (sharded-slab style): a handle from another worker,
//! an older generation, or a torn-down slot is rejected with a typed error.

use core::fmt;

/// Which worker (an L2 worker, or one incarnation of one chip child of an L3
/// worker) issued a handle.
///
/// 128 bits: the high 64 are a per-process nonce drawn once from the OS's
/// randomness (through std's `RandomState`), the low 64 a per-process serial
/// that only grows. [`WorkerId::fresh`] therefore never repeats inside a
/// process (2^64 allocations) and two processes collide only if their
/// 64-bit nonces do. The simulator, the models and tests name their workers
/// with fixed values instead (`WorkerId(7)`): they need determinism, not
/// uniqueness.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct WorkerId(pub u128);

impl WorkerId {
    /// A worker id no other worker of any process has (see the type doc).
    ///
    /// This, and the nonce behind it, is the only place core draws on the
    /// OS's randomness; no pure machine and no simulated run calls it.
    #[must_use]
    // A process-global counter and a once-drawn nonce: not part of the
    // concurrent layer's model-checked state, so std's types are right here.
    #[allow(clippy::disallowed_types)]
    pub fn fresh() -> WorkerId {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::OnceLock;
        static NONCE: OnceLock<u64> = OnceLock::new();
        static SERIAL: AtomicU64 = AtomicU64::new(1);
        let nonce = *NONCE.get_or_init(|| {
            use std::hash::{BuildHasher, Hasher};
            // RandomState's keys come from the OS's randomness once per
            // thread; mixing in the pid and an address keeps two processes
            // with (improbably) equal keys apart.
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            h.write_usize(&SERIAL as *const AtomicU64 as usize);
            h.finish()
        });
        // Relaxed: a counter; uniqueness needs only the RMW's atomicity.
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        WorkerId((u128::from(nonce) << 64) | u128::from(serial))
    }

    /// The per-process nonce part.
    pub const fn nonce(self) -> u64 {
        (self.0 >> 64) as u64
    }

    /// The serial part.
    pub const fn serial(self) -> u64 {
        self.0 as u64
    }
}

impl fmt::Debug for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkerId({self})")
    }
}

impl fmt::Display for WorkerId {
    /// `nonce:serial` in hex (`0:7` for a fixed test id).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}:{:x}", self.nonce(), self.serial())
    }
}

impl core::str::FromStr for WorkerId {
    type Err = String;
    /// Parses what `Display` prints.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (n, c) = s.split_once(':').ok_or_else(|| format!("worker id {s:?}: expected NONCE:SERIAL in hex"))?;
        let n = u64::from_str_radix(n, 16).map_err(|e| format!("worker id {s:?}: nonce: {e}"))?;
        let c = u64::from_str_radix(c, 16).map_err(|e| format!("worker id {s:?}: serial: {e}"))?;
        Ok(WorkerId((u128::from(n) << 64) | u128::from(c)))
    }
}

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
pub struct CallableHandle {
    /// The worker that issued it (any other worker refuses it: `Foreign`).
    pub worker: WorkerId,
    /// The slot it names.
    pub index: SlotIndex,
    /// The slot's generation at registration (a later one makes it `Stale`).
    pub generation: Generation,
}

impl CallableHandle {
    /// Was this handle issued by `worker`? `Foreign` otherwise. Every
    /// worker check (the slot table's, the L3 parent's before a handle
    /// crosses the mailbox) is this one function.
    pub fn check_worker(self, worker: WorkerId) -> Result<(), crate::error::HandleError> {
        if self.worker == worker {
            return Ok(());
        }
        // MUTANT stale_incarnation: a handle whose serial is one behind (the
        // previous incarnation of a restarted chip child, or the worker
        // created just before) passes for this worker's.
        if cfg!(chiplane_mutant = "stale_incarnation")
            && self.worker.nonce() == worker.nonce()
            && self.worker.serial().wrapping_add(1) == worker.serial()
        {
            return Ok(());
        }
        Err(crate::error::HandleError::Foreign { expected: worker, got: self.worker })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worker ids never repeat in a process, far past the old scheme's wrap
    /// point (16 bits of incarnation: 65,536 restarts made an old handle
    /// match), and a handle of any earlier id is foreign to every later one.
    #[test]
    fn worker_ids_never_repeat_past_the_old_wrap_point() {
        let first = WorkerId::fresh();
        let mut last = first;
        let mut seen = std::collections::BTreeSet::from([first]);
        for _ in 0..(1u32 << 16) + 2 {
            let next = WorkerId::fresh();
            assert!(seen.insert(next), "{next} repeated");
            assert_eq!(next.nonce(), first.nonce(), "one nonce per process");
            last = next;
        }
        let old = CallableHandle { worker: first, index: SlotIndex(0), generation: Generation(1) };
        #[cfg(not(chiplane_mutant = "stale_incarnation"))]
        assert!(old.check_worker(last).is_err(), "a handle of id {first} matched id {last}");
        let parsed: WorkerId = last.to_string().parse().unwrap();
        assert_eq!(parsed, last, "Display and FromStr round trip");
    }
}
