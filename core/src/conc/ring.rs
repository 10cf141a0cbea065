//! The completion ring: a bounded single-producer single-consumer ring in the
//! mailbox region (docs/protocol.md rule 10). The child produces settlements, the
//! parent consumes them.
//!
//! # Indices
//! `tail` (written only by the child) and `head` (written only by the
//! parent) are u64 counters that only grow; entry `i` lives at
//! `i % capacity`. The ring holds `tail - head` entries, `0 ..= capacity`.
//!
//! # Orderings
//! - producer: write entry `tail % cap`, then store `tail + 1` Release
//!   (pairs with the consumer's Acquire load of `tail`: the entry bytes are
//!   visible before the index says they exist);
//! - consumer: load `tail` Acquire, copy the entry out, then store `head + 1`
//!   Release (pairs with the producer's Acquire load of `head` in
//!   [`Producer::free`]: the copy is finished before the producer may
//!   overwrite the entry).
//!
//! # Invariants
//! - the producer pushes only when `free() > 0` (the child machine emits
//!   `Push` only after an `Observed` that showed room), so no entry is
//!   overwritten before it was consumed: nothing is dropped, order is FIFO;
//! - an index the peer wrote that breaks `head <= tail <= head + cap` is a
//!   protocol violation reported as a typed error (the parent poisons).

use crate::frame::{CompletionFrame, Frame, FrameError};
use crate::mailbox::ring::RingIndices;
use crate::sync::Ordering;

use super::region::Region;

/// The producer side (child). Caches its own tail and the last head seen.
#[derive(Debug)]
pub struct Producer {
    tail: u64,
    head_seen: u64,
    capacity: u64,
}

/// The ring had no room (the caller broke "push only after free() > 0").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RingFull;

impl Producer {
    /// Attach as the producer (the child); reads the current indices.
    pub fn new(region: &Region) -> Self {
        // Relaxed: the child is the only writer of tail (a fresh region: 0).
        let tail = region.ring_tail().load(Ordering::Relaxed);
        // Acquire: pairs with the consumer's Release store of head.
        let head_seen = region.ring_head().load(Ordering::Acquire);
        Producer { tail, head_seen, capacity: u64::from(region.ring_capacity()) }
    }

    /// The consumer's head as it is now (Acquire; pairs with
    /// `Consumer::pop`'s Release store).
    pub fn head(&self, region: &Region) -> u64 {
        region.ring_head().load(Ordering::Acquire)
    }

    /// The consumer's head as of the last `free(.., true)`.
    pub fn head_seen(&self) -> u64 {
        self.head_seen
    }

    fn indices(&self) -> RingIndices {
        RingIndices { head: self.head_seen, tail: self.tail, capacity: self.capacity }
    }

    /// Free entries. `refresh` reloads the consumer's head (Acquire);
    /// without it the cached head gives a lower bound (never too many).
    pub fn free(&mut self, region: &Region, refresh: bool) -> usize {
        if refresh {
            // Acquire: pairs with `Consumer::pop`'s Release store of head,
            // so entries it frees were copied out before we overwrite them.
            let head = region.ring_head().load(Ordering::Acquire);
            // A head beyond our tail is a parent bug: treat as no room change.
            if head <= self.tail {
                self.head_seen = self.head_seen.max(head);
            }
        }
        self.indices().free()
    }

    /// Push one completion (only after `free() > 0`).
    pub fn push(&mut self, region: &Region, frame: CompletionFrame) -> Result<(), RingFull> {
        if self.free(region, false) == 0 {
            self.free(region, true);
        }
        let (index, tail) = self.indices().push().ok_or(RingFull)?;
        region.write_entry(index, &Frame::Completion(frame)).map_err(|_| RingFull)?;
        self.tail = tail;
        // Release: pairs with `Consumer::pop`'s Acquire load of tail.
        #[cfg(not(chiplane_mutant = "relaxed_ring_tail"))]
        region.ring_tail().store(self.tail, Ordering::Release);
        // MUTANT relaxed_ring_tail: the entry's bytes are not published
        // with the index that says they exist.
        #[cfg(chiplane_mutant = "relaxed_ring_tail")]
        region.ring_tail().store(self.tail, Ordering::Relaxed);
        Ok(())
    }
}

/// The consumer side (parent).
#[derive(Debug)]
pub struct Consumer {
    head: u64,
    capacity: u64,
    /// Entries are copied out into this buffer, kept from pop to pop.
    scratch: Vec<u8>,
}

impl Consumer {
    /// Attach as the consumer (the parent).
    pub fn new(region: &Region) -> Self {
        // Relaxed: the parent is the only writer of head.
        let head = region.ring_head().load(Ordering::Relaxed);
        Consumer { head, capacity: u64::from(region.ring_capacity()), scratch: Vec::new() }
    }

    /// Pop the oldest completion, if any. A corrupt tail (outside
    /// `head ..= head + capacity`) is `Some(Err(TooLarge))`, every time.
    pub fn pop(&mut self, region: &Region) -> Option<Result<Frame, FrameError>> {
        // Acquire: pairs with `Producer::push`'s Release store of tail.
        let tail = region.ring_tail().load(Ordering::Acquire);
        let (index, head) = match (RingIndices { head: self.head, tail, capacity: self.capacity }).pop() {
            Ok(Some(next)) => next,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        let frame = region.read_entry(index, &mut self.scratch);
        self.head = head;
        // Release: pairs with `Producer::free`'s Acquire load of head.
        region.ring_head().store(self.head, Ordering::Release);
        Some(frame)
    }
}
