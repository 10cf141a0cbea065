//! The shared region both endpoints talk through, played as plain data with
//! core's memory logic: every transition of the word goes through
//! [`WordState::apply`] (the CAS decision, where the `restore_by_store`
//! mutant lives), the completion ring through [`RingIndices`], frames
//! through [`Frame::encode_into`] / [`Frame::decode_field`] into the field
//! [`chiplane_core::mailbox::field_for`] chose (the machines name it; the
//! `shared_result_field` mutant lives there), read back as
//! [`kind_in`] says.
//!
//! A field holds the bytes written so far (it grows to the largest frame
//! written; later frames overwrite its start and leave the rest, as in the
//! real region). Bytes never written are absent here where the real field
//! holds zeros: both decode to a typed error.

use chiplane_core::frame::{Frame, FrameError, FrameKind};
use chiplane_core::mailbox::ring::RingIndices;
use chiplane_core::mailbox::word::WordState;
use chiplane_core::mailbox::{kind_in, Field};

use super::part::Part;

/// The region's contents. The word and the ring's indices change on most
/// steps and are plain; the frame bytes are copied only when written.
#[derive(Clone, Hash, Debug)]
pub struct Memory {
    /// The state word (raw).
    pub word: u32,
    ring: RingIndices,
    /// POISONED was swapped in at some point (poison is one way: rule 10).
    pub poisoned: bool,
    bytes: Part<Bytes>,
}

/// The four fields and the ring's entries.
#[derive(Clone, Hash, Debug)]
struct Bytes {
    fields: [Vec<u8>; 4],
    entries: Vec<Vec<u8>>,
}

fn index(f: Field) -> usize {
    match f {
        Field::Task => 0,
        Field::Control => 1,
        Field::TaskResult => 2,
        Field::ControlResult => 3,
    }
}

impl Memory {
    pub fn new(ring_capacity: usize) -> Self {
        Memory {
            word: WordState::Idle.encode(),
            ring: RingIndices { head: 0, tail: 0, capacity: ring_capacity as u64 },
            poisoned: false,
            bytes: Part::new(Bytes { fields: Default::default(), entries: vec![Vec::new(); ring_capacity] }),
        }
    }

    /// The decoded word (`None` for a value the protocol never writes).
    pub fn word_state(&self) -> Option<WordState> {
        WordState::decode(self.word)
    }

    /// `from -> to` as the writer's role does it ([`WordState::apply`]).
    pub fn transition(&mut self, from: WordState, to: WordState) -> Result<(), u32> {
        WordState::apply(&mut self.word, from, to)
    }

    /// Swap POISONED in (either side's verdict).
    pub fn poison(&mut self) {
        self.word = WordState::Poisoned.encode();
        self.poisoned = true;
    }

    /// Encode `frame` into `field`.
    pub fn write(&mut self, field: Field, frame: &Frame) -> Result<(), FrameError> {
        let buf = &mut self.bytes.edit().fields[index(field)];
        grow(buf, frame.encoded_len().min(Frame::capacity(kind_in(field))));
        frame.encode_into(buf).map(|_| ())
    }

    /// A torn write: only the first half of `frame`'s bytes reach `field`
    /// (the writer died in the middle); the rest of the field keeps what it
    /// held.
    pub fn write_torn(&mut self, field: Field, frame: &Frame) -> Result<(), FrameError> {
        let bytes = frame.encode()?;
        let half = bytes.len() / 2;
        let buf = &mut self.bytes.edit().fields[index(field)];
        grow(buf, half);
        buf[..half].copy_from_slice(&bytes[..half]);
        Ok(())
    }

    /// The bytes of `field`, at least `len` of them (fault injection).
    pub fn field_mut(&mut self, field: Field, len: usize) -> &mut [u8] {
        let buf = &mut self.bytes.edit().fields[index(field)];
        grow(buf, len);
        buf
    }

    /// Decode the frame in `field`, expecting the kind that field holds.
    pub fn read(&self, field: Field) -> Result<Frame, FrameError> {
        chiplane_core::mailbox::read(field, &self.bytes.fields[index(field)])
    }

    /// Free entries of the completion ring (as the producer sees them).
    pub fn ring_free(&self) -> usize {
        self.ring.free()
    }

    /// Entries in the ring.
    pub fn ring_len(&self) -> u64 {
        self.ring.tail.wrapping_sub(self.ring.head)
    }

    /// Producer: write `frame` into the next entry and publish the tail;
    /// `Ok(false)` when the ring is full.
    pub fn push(&mut self, frame: &Frame) -> Result<bool, FrameError> {
        let Some((entry, tail)) = self.ring.push() else { return Ok(false) };
        let buf = &mut self.bytes.edit().entries[entry];
        grow(buf, frame.encoded_len().min(Frame::capacity(FrameKind::Completion)));
        frame.encode_into(buf)?;
        self.ring.tail = tail;
        Ok(true)
    }

    /// A rogue producer: `bytes` land in the next entry and the tail moves
    /// on; `false` when the ring is full (fault injection).
    pub fn push_raw(&mut self, bytes: &[u8]) -> bool {
        let Some((entry, tail)) = self.ring.push() else { return false };
        let buf = &mut self.bytes.edit().entries[entry];
        grow(buf, bytes.len());
        buf[..bytes.len()].copy_from_slice(bytes);
        self.ring.tail = tail;
        true
    }

    /// Consumer: copy the next completion out and publish the head; `None`
    /// when the ring is empty.
    pub fn pop(&mut self) -> Option<Result<Frame, FrameError>> {
        match self.ring.pop() {
            Ok(None) => None,
            Ok(Some((entry, head))) => {
                let r = Frame::decode_field(&self.bytes.entries[entry], FrameKind::Completion);
                self.ring.head = head;
                Some(r)
            }
            Err(e) => Some(Err(e)),
        }
    }
}

fn grow(buf: &mut Vec<u8>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chiplane_core::frame::{FrameId, TaskResultFrame};
    use chiplane_core::ids::{DispatchId, Generation, SlotIndex};
    use chiplane_core::RunOutput;

    fn result(d: u64, value: f32) -> Frame {
        let id = FrameId { dispatch: DispatchId(d), slot: SlotIndex(0), generation: Generation(1) };
        Frame::TaskResult(TaskResultFrame { id, result: Ok(RunOutput { tensors: vec![vec![value; 8]] }) })
    }

    /// A torn write leaves the old tail; frames carry no checksum, so the
    /// mix can even decode (the new header, the old payload). Only the
    /// protocol keeps it from being read: the writer died before its CAS.
    #[test]
    fn a_torn_write_keeps_the_old_tail() {
        let mut m = Memory::new(1);
        m.write(Field::TaskResult, &result(1, 1.0)).unwrap();
        assert_eq!(m.read(Field::TaskResult), Ok(result(1, 1.0)));
        let before = m.bytes.fields[index(Field::TaskResult)].clone();
        m.write_torn(Field::TaskResult, &result(2, 2.0)).unwrap();
        let after = &m.bytes.fields[index(Field::TaskResult)];
        let new = result(2, 2.0).encode().unwrap();
        let half = new.len() / 2;
        assert_eq!(after[..half], new[..half], "the first half reached the field");
        assert_eq!(after[half..], before[half..], "the rest kept what it held");
        assert_eq!(m.read(Field::TaskResult), Ok(result(2, 1.0)), "new header, old payload");
    }

    #[test]
    fn the_ring_goes_through_ring_indices_and_a_forked_memory_keeps_its_bytes() {
        let mut m = Memory::new(1);
        let c = Frame::Completion(chiplane_core::frame::CompletionFrame {
            id: FrameId { dispatch: DispatchId(3), slot: SlotIndex(1), generation: Generation(1) },
            settlement: chiplane_core::frame::Settlement::Freed,
        });
        assert_eq!(m.push(&c), Ok(true));
        assert_eq!(m.push(&c), Ok(false), "full at capacity 1");
        let fork = m.clone();
        assert_eq!(m.pop(), Some(Ok(c.clone())));
        assert_eq!(m.pop(), None);
        assert_eq!(fork.ring_len(), 1, "the fork still holds its entry");
    }
}
