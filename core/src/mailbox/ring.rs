//! The completion ring's indices, pure (docs/protocol.md rule 10): what a push or
//! a pop may do given `head` (written only by the consumer, the parent) and
//! `tail` (written only by the producer, the child). The concurrent layer
//! (`conc::ring`) keeps them in atomics; the simulator, the exhaustive
//! checker and the fuzz harness keep them in plain integers; all of them
//! ask this module.
//!
//! Both indices only grow; entry `i` lives at `i % capacity`; the ring holds
//! `tail - head` entries, `0 ..= capacity`. A pair that breaks
//! `head <= tail <= head + capacity` was written by a broken (or rogue)
//! peer: the consumer reports it as a typed error and poisons.

use crate::frame::FrameError;

/// A snapshot of the ring's indices as one side sees them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RingIndices {
    /// Entries consumed so far (the consumer's index).
    pub head: u64,
    /// Entries produced so far (the producer's index).
    pub tail: u64,
    /// Entries the ring holds at most.
    pub capacity: u64,
}

impl RingIndices {
    /// Free entries (0 when the indices are inconsistent: the producer
    /// waits rather than overwrite anything).
    pub fn free(self) -> usize {
        if self.head > self.tail {
            return 0;
        }
        self.capacity.saturating_sub(self.tail - self.head) as usize
    }

    /// Producer: the entry to write the next completion into and the tail to
    /// publish after writing it; `None` when the ring is full.
    pub fn push(self) -> Option<(usize, u64)> {
        if self.free() == 0 {
            return None;
        }
        Some(((self.tail % self.capacity) as usize, self.tail + 1))
    }

    /// Consumer: the entry to read next and the head to publish after
    /// copying it out; `Ok(None)` when empty; `Err` when the tail is
    /// outside `head ..= head + capacity` (every time it is asked).
    pub fn pop(self) -> Result<Option<(usize, u64)>, FrameError> {
        if self.tail == self.head {
            return Ok(None);
        }
        if self.tail < self.head || self.tail - self.head > self.capacity {
            let bytes = self.tail.wrapping_sub(self.head) as usize;
            return Err(FrameError::TooLarge { bytes, max: self.capacity as usize });
        }
        Ok(Some(((self.head % self.capacity) as usize, self.head + 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_wraps_and_refuses_corrupt_indices() {
        let mut r = RingIndices { head: 0, tail: 0, capacity: 3 };
        let mut written = Vec::new();
        // Ten pushes and pops through a ring of three: three full wraps.
        for n in 0..10u64 {
            if r.free() == 0 || n % 3 == 2 {
                let (entry, head) = r.pop().unwrap().unwrap();
                r.head = head;
                assert_eq!(entry, written.remove(0));
            }
            let (entry, tail) = r.push().unwrap();
            assert_eq!(entry, (n % 3) as usize);
            r.tail = tail;
            written.push(entry);
            assert!(r.tail - r.head <= 3);
        }
        while let Some((entry, head)) = r.pop().unwrap() {
            r.head = head;
            assert_eq!(entry, written.remove(0));
        }
        assert!(written.is_empty());
        assert_eq!(r.free(), 3);
        r.tail = r.head + 3;
        assert_eq!(r.push(), None, "full");
        r.tail = r.head + 4;
        assert!(r.pop().is_err(), "tail beyond head + capacity");
        r.tail = r.head - 1;
        assert!(r.pop().is_err(), "tail behind head");
        assert_eq!(r.free(), 0);
    }
}
