//! One simulated mailbox region (L3): the state word, the four frame
//! fields and the completion ring, as plain memory on one thread.
//!
//! - **the word**: one `u32`. Every transition goes through
//!   `chiplane_core::mailbox::word::WordState::apply` (a CAS, or a store
//!   where core's `write_kind` says so: the one site of the
//!   `restore_by_store` mutant). A plain load returns the loading side's
//!   *view*, which lags the other side's stores by a random delay (fault:
//!   delayed visibility), never goes backwards, and catches up at once when
//!   that side's own CAS fails.
//! - **the fields**: byte buffers of core's capacities; frames are encoded
//!   into them and decoded out of them with `chiplane_core::frame` (so a
//!   torn write leaves real torn bytes).
//! - **the completion ring**: `capacity` entry buffers and two plain
//!   indices, `head` (the parent's) and `tail` (the child's), moved only as
//!   `chiplane_core::mailbox::ring::RingIndices` says.

use std::collections::VecDeque;

use chiplane_core::frame::{
    Frame, FrameError, FrameKind, CONTROL_FRAME_BYTES, CONTROL_RESULT_BYTES, TASK_FRAME_BYTES, TASK_RESULT_BYTES,
};
use chiplane_core::mailbox::ring::RingIndices;
use chiplane_core::mailbox::word::WordState;
use chiplane_core::mailbox::Field;

/// Index of the parent side in per-side arrays.
pub const P: usize = 0;
/// Index of the child side.
pub const C: usize = 1;

fn fi(f: Field) -> usize {
    match f {
        Field::Task => 0,
        Field::Control => 1,
        Field::TaskResult => 2,
        Field::ControlResult => 3,
    }
}

/// One mailbox region. See the module doc.
#[derive(Debug)]
pub struct Memory {
    /// The word's true value.
    pub word: u32,
    store_seq: u64,
    /// Per side: (value, store seq) it sees.
    view: [(u32, u64); 2],
    /// Per side: stores of the other side not yet visible (at, value, seq).
    incoming: [VecDeque<(u64, u32, u64)>; 2],
    fields: [Vec<u8>; 4],
    ring: Vec<Vec<u8>>,
    ring_head: u64,
    ring_tail: u64,
}

impl Memory {
    pub fn new(ring_capacity: usize) -> Self {
        Memory {
            word: WordState::Idle.encode(),
            store_seq: 0,
            view: [(WordState::Idle.encode(), 0); 2],
            incoming: [VecDeque::new(), VecDeque::new()],
            fields: [
                vec![0; TASK_FRAME_BYTES],
                vec![0; CONTROL_FRAME_BYTES],
                vec![0; TASK_RESULT_BYTES],
                vec![0; CONTROL_RESULT_BYTES],
            ],
            ring: vec![Vec::new(); ring_capacity],
            ring_head: 0,
            ring_tail: 0,
        }
    }

    /// What `side` sees of the word: (raw value, store sequence number).
    pub fn view(&self, side: usize) -> (u32, u64) {
        self.view[side]
    }

    /// The word as the checker sees it.
    pub fn state(&self) -> Option<WordState> {
        WordState::decode(self.word)
    }

    /// `side` stored `v` (after a successful transition, or the poison
    /// swap); it becomes visible to the other side at `visible_at_ns` (kept
    /// in store order). Returns when that is.
    pub fn store(&mut self, side: usize, v: u32, visible_at_ns: u64) -> u64 {
        self.word = v;
        self.store_seq += 1;
        let seq = self.store_seq;
        self.view[side] = (v, seq);
        let other = 1 - side;
        let at = self.incoming[other].back().map_or(0, |e| e.0).max(visible_at_ns);
        self.incoming[other].push_back((at, v, seq));
        at
    }

    /// Make every store due by `now` visible to `side`.
    pub fn catch_up(&mut self, now: u64, side: usize) {
        while let Some(&(at, v, seq)) = self.incoming[side].front() {
            if at > now {
                break;
            }
            self.incoming[side].pop_front();
            if seq > self.view[side].1 {
                self.view[side] = (v, seq);
            }
        }
    }

    /// `side` moves the word `from -> to` through `WordState::apply`.
    /// `Ok(value before)` when it took effect (the caller then `store`s it
    /// for visibility); `Err(actual)` when a CAS found another value (the
    /// side then sees the true value).
    pub fn transition(&mut self, side: usize, from: WordState, to: WordState) -> Result<u32, u32> {
        let before = self.word;
        let mut word = self.word;
        match WordState::apply(&mut word, from, to) {
            Ok(()) => Ok(before),
            Err(actual) => {
                self.view[side] = (self.word, self.store_seq);
                Err(actual)
            }
        }
    }

    /// Encode `frame` into `field`; false if it does not fit.
    pub fn write(&mut self, field: Field, frame: &Frame) -> bool {
        frame.encode_into(&mut self.fields[fi(field)]).is_ok()
    }

    /// The writer dies half-way: the first `cut(len)` bytes of `frame`'s
    /// encoding land in `field` (a torn frame).
    pub fn write_torn(&mut self, field: Field, frame: &Frame, cut: impl FnOnce(usize) -> usize) {
        if let Ok(bytes) = frame.encode() {
            let n = cut(bytes.len()).min(bytes.len());
            self.fields[fi(field)][..n].copy_from_slice(&bytes[..n]);
        }
    }

    /// Decode the frame in `field`.
    pub fn read(&self, field: Field) -> Result<Frame, FrameError> {
        chiplane_core::mailbox::read(field, &self.fields[fi(field)])
    }

    /// The frame in `field`, if it decodes as `kind` (for checkers).
    pub fn peek(&self, field: Field, kind: FrameKind) -> Option<Frame> {
        Frame::decode_field(&self.fields[fi(field)], kind).ok()
    }

    fn indices(&self) -> RingIndices {
        RingIndices { head: self.ring_head, tail: self.ring_tail, capacity: self.ring.len() as u64 }
    }

    /// Free ring entries, as the child loads them.
    pub fn ring_free(&self) -> usize {
        self.indices().free()
    }

    /// Entries in the ring.
    pub fn ring_len(&self) -> usize {
        (self.ring_tail - self.ring_head) as usize
    }

    /// Child: push an encoded completion; false when the ring is full.
    pub fn push(&mut self, bytes: Vec<u8>) -> bool {
        let Some((entry, tail)) = self.indices().push() else { return false };
        self.ring[entry] = bytes;
        self.ring_tail = tail;
        true
    }

    /// Parent: pop the oldest completion, if any.
    pub fn pop(&mut self) -> Option<Result<Frame, FrameError>> {
        match self.indices().pop() {
            Ok(None) => None,
            Ok(Some((entry, head))) => {
                let r = Frame::decode_field(&self.ring[entry], FrameKind::Completion);
                self.ring_head = head;
                Some(r)
            }
            Err(e) => Some(Err(e)),
        }
    }
}
