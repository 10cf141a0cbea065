//! The mailbox region: one fixed-size block of plain memory shared by a
//! parent and a chip child (docs/protocol.md section 4).
//!
//! # Layout (`#[repr(C)]`, std backend; every offset is fixed by the type)
//! ```text
//! line 0 (64 B)  identity, written once by `init_in_place` then read-only:
//!                u32 magic = REGION_MAGIC (stored last, Release), u32 version,
//!                u64 size_bytes (= size_of::<Region>()), u32 ring_capacity
//! line 1 (64 B)  u32 state word (WordState::encode; parent and child CAS it)
//!                u32 shutdown (sticky: 0 -> 1, never back; parent writes)
//! line 2 (64 B)  child-written: u64 ring_tail (producer index)
//! line 3 (64 B)  child-written: u64 heartbeat (its own line: the liveness
//!                counter never shares a cache line with the ring indices)
//! line 4 (64 B)  parent-written: u64 ring_head (consumer index)
//! line 5 (64 B)  the parent's doorbell: u32 seq, u32 sleepers (see `bell`)
//! line 6 (64 B)  the child's doorbell: u32 seq, u32 sleepers
//! task field          TASK_FIELD_BYTES      parent writes, child reads
//! control field       CONTROL_FIELD_BYTES   parent writes, child reads
//! task result         TASK_RESULT_FIELD_BYTES    child writes, parent reads
//! control result      CONTROL_RESULT_FIELD_BYTES child writes, parent reads
//! ring                RING_ENTRIES_MAX entries of RING_ENTRY_BYTES (child writes, parent reads)
//! ```
//! There are no pointers inside: only u32/u64 atomics and byte arrays, so the
//! same bytes mean the same thing in two processes that map them at
//! different addresses. Zeroed memory is a valid (but not yet initialised:
//! magic 0) region.
//!
//! # Who touches what (the protocol gives each field one writer at a time)
//! - a frame field is written only by its owning role and only while the word
//!   says the other side does not read it: the task and control fields before
//!   the parent's publishing CAS (or, for the task field, after the child
//!   published TASK_RUNNING: rule 1 staging); the result fields before the
//!   child's publishing CAS (the task result also during a control, while
//!   TASK_DONE is deferred: the parent reads it only after TASK_DONE);
//! - the reader reads a field only after an Acquire load (or failed CAS) of
//!   the word that observed the writer's Release publication;
//! - ring entries: see [`super::ring`].
//!
//! Frames are reached only through [`Region::write_frame`] /
//! [`Region::read_frame`], which take a [`Field`] chosen by
//! [`crate::mailbox::field_for`] (where the `shared_result_field` mutant lives).
//! `read_frame` first copies the bytes out into private memory and decodes
//! the copy, so a peer that scribbles over a field at the wrong time produces
//! a typed `FrameError`, never a torn object in this process
//! ([`Region::read_frame_with`] copies into a buffer the caller keeps).
//!
//! # Safety model
//! All `unsafe` of the mailbox lives in this module. In one process (tests,
//! models) the field accessors are sound because the protocol above gives
//! each field one accessor at a time, which loom checks on every model run
//! (each field is a `crate::sync::UnsafeCell`; a second, unordered access is
//! reported as a causality violation). Across processes the peer is outside
//! this program: its writes can only change bytes, which are copied out and
//! validated before use.
//!
//! # Model checking
//! Under loom and shuttle the fields and the ring are shrunk (loom copies and
//! tracks every cell in every explored execution; the model frames are a few
//! hundred bytes at most), and only the heap constructor exists (loom's and
//! shuttle's atomics are not plain memory).

// clippy's `disallowed-types` resolves `crate::sync`'s re-exports to the std
// types it bans (on the std backend they are the same types); this module
// uses only `crate::sync` (no `std::sync` path appears in it).
#![allow(clippy::disallowed_types)]

use crate::frame::{Frame, FrameError, HEADER_BYTES};
use crate::mailbox::Field;
use crate::sync::{AtomicU32, AtomicU64, Ordering, UnsafeCell};

use super::bell::BellWords;
use super::word::StateWord;

/// "CMBX": a chiplane mailbox region.
pub const REGION_MAGIC: u32 = 0x5842_4d43;
/// Layout version; bump on any change of the layout above.
pub const REGION_VERSION: u32 = 2;

#[cfg(not(any(chiplane_loom, chiplane_shuttle)))]
mod caps {
    use crate::frame;
    pub const TASK_FIELD_BYTES: usize = frame::TASK_FRAME_BYTES;
    pub const CONTROL_FIELD_BYTES: usize = frame::CONTROL_FRAME_BYTES;
    pub const TASK_RESULT_FIELD_BYTES: usize = frame::TASK_RESULT_BYTES;
    pub const CONTROL_RESULT_FIELD_BYTES: usize = frame::CONTROL_RESULT_BYTES;
    pub const RING_ENTRY_BYTES: usize = frame::COMPLETION_BYTES;
    pub const RING_ENTRIES_MAX: usize = 64;
}

// Shrunk under model checking: every explored execution allocates, zeroes and
// (loom) tracks the region; the model frames are well under these sizes.
#[cfg(any(chiplane_loom, chiplane_shuttle))]
mod caps {
    pub const TASK_FIELD_BYTES: usize = 512;
    pub const CONTROL_FIELD_BYTES: usize = 512;
    pub const TASK_RESULT_FIELD_BYTES: usize = 512;
    pub const CONTROL_RESULT_FIELD_BYTES: usize = 512;
    pub const RING_ENTRY_BYTES: usize = 256;
    pub const RING_ENTRIES_MAX: usize = 4;
}

pub use caps::*;

/// Why a region could not be initialised or attached.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RegionError {
    /// The memory is smaller than `size_of::<Region>()`.
    TooSmall { bytes: usize, need: usize },
    /// The pointer is not aligned to `align_of::<Region>()`.
    Misaligned { align: usize },
    /// `ring_capacity` is 0 or above `RING_ENTRIES_MAX`.
    RingCapacity { capacity: u32, max: usize },
    /// The region was not initialised (or by something else).
    BadMagic(u32),
    /// Another layout version.
    BadVersion(u32),
    /// The recorded size differs from this build's layout.
    BadSize { recorded: u64, expected: u64 },
}

#[repr(C, align(64))]
#[derive(Debug)]
struct Identity {
    magic: AtomicU32,
    version: AtomicU32,
    size_bytes: AtomicU64,
    ring_capacity: AtomicU32,
}

#[repr(C, align(64))]
#[derive(Debug)]
struct Words {
    state: AtomicU32,
    shutdown: AtomicU32,
}

#[repr(C, align(64))]
#[derive(Debug)]
struct ChildLine {
    ring_tail: AtomicU64,
}

#[repr(C, align(64))]
#[derive(Debug)]
struct BeatLine {
    heartbeat: AtomicU64,
}

#[repr(C, align(64))]
#[derive(Debug)]
struct ParentLine {
    ring_head: AtomicU64,
}

/// The shared mailbox region. See the module doc.
#[repr(C, align(64))]
pub struct Region {
    identity: Identity,
    words: Words,
    child: ChildLine,
    beat: BeatLine,
    parent: ParentLine,
    parent_bell: BellWords,
    child_bell: BellWords,
    task: UnsafeCell<[u8; TASK_FIELD_BYTES]>,
    control: UnsafeCell<[u8; CONTROL_FIELD_BYTES]>,
    task_result: UnsafeCell<[u8; TASK_RESULT_FIELD_BYTES]>,
    control_result: UnsafeCell<[u8; CONTROL_RESULT_FIELD_BYTES]>,
    ring: [UnsafeCell<[u8; RING_ENTRY_BYTES]>; RING_ENTRIES_MAX],
}

// SAFETY: every field is either an atomic or a byte array reached only
// through `write_frame`/`read_frame`/`write_entry`/`read_entry`, whose
// callers follow the protocol of the module doc (one accessor per field at a
// time, ordered by the state word or the ring indices). The region holds no
// pointers and no thread-bound data.
unsafe impl Sync for Region {}
// SAFETY: plain data (atomics and bytes), no thread affinity.
unsafe impl Send for Region {}

impl core::fmt::Debug for Region {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Region")
            // Relaxed: a diagnostic snapshot, pairs with nothing.
            .field("state", &self.words.state.load(Ordering::Relaxed))
            .field("ring_capacity", &self.ring_capacity())
            .finish_non_exhaustive()
    }
}

impl Region {
    /// Bytes a region occupies (the size of the shared mapping to create).
    pub const fn size_bytes() -> usize {
        core::mem::size_of::<Region>()
    }

    /// Alignment the mapping must have (a page-aligned mapping always does).
    pub const fn align_bytes() -> usize {
        core::mem::align_of::<Region>()
    }

    fn check_capacity(ring_capacity: u32) -> Result<(), RegionError> {
        if ring_capacity == 0 || ring_capacity as usize > RING_ENTRIES_MAX {
            return Err(RegionError::RingCapacity { capacity: ring_capacity, max: RING_ENTRIES_MAX });
        }
        Ok(())
    }

    #[cfg(not(any(chiplane_loom, chiplane_shuttle)))]
    fn check_memory(ptr: *const u8, len: usize) -> Result<(), RegionError> {
        if len < Self::size_bytes() {
            return Err(RegionError::TooSmall { bytes: len, need: Self::size_bytes() });
        }
        if !(ptr as usize).is_multiple_of(Self::align_bytes()) {
            return Err(RegionError::Misaligned { align: Self::align_bytes() });
        }
        Ok(())
    }

    /// Initialise a region in place at `ptr` (e.g. a fresh memfd mapping) and
    /// return a reference to it. Zeroes the whole region, writes the identity
    /// and stores the magic last (Release; pairs with [`Region::attach`]'s
    /// Acquire load of the magic). The word starts IDLE, shutdown 0, the ring
    /// empty.
    ///
    /// # Safety
    /// `ptr` must be valid for reads and writes of `len` bytes for `'a`, no
    /// other thread or process may access those bytes until this returns,
    /// and afterwards they may be accessed only through `Region` (this
    /// process) or a `Region` attached in another process.
    #[cfg(not(any(chiplane_loom, chiplane_shuttle)))]
    pub unsafe fn init_in_place<'a>(ptr: *mut u8, len: usize, ring_capacity: u32) -> Result<&'a Region, RegionError> {
        Self::check_memory(ptr, len)?;
        Self::check_capacity(ring_capacity)?;
        // SAFETY: the caller gives exclusive access to `len >= size_of::<Region>()`
        // bytes at `ptr`, which is aligned for `Region` (checked above).
        // All-zero bytes are a valid `Region` on the std backend: atomics are
        // plain integers and `sync::UnsafeCell` is `repr(transparent)` over
        // `std::cell::UnsafeCell<[u8; N]>`.
        let region = unsafe {
            core::ptr::write_bytes(ptr, 0, Self::size_bytes());
            &*(ptr as *const Region)
        };
        region.write_identity(ring_capacity);
        Ok(region)
    }

    /// Attach to a region initialised by [`Region::init_in_place`] (possibly
    /// in another process): checks magic, version, size and ring capacity.
    ///
    /// # Safety
    /// `ptr` must be valid for reads and writes of `len` bytes for `'a`, and
    /// those bytes may be accessed only through `Region` by every party.
    #[cfg(not(any(chiplane_loom, chiplane_shuttle)))]
    pub unsafe fn attach<'a>(ptr: *mut u8, len: usize) -> Result<&'a Region, RegionError> {
        Self::check_memory(ptr, len)?;
        // SAFETY: aligned and large enough (checked); any bit pattern is a
        // valid `Region` on the std backend (integers and bytes), and the
        // caller promises the memory stays valid and is shared only as a Region.
        let region = unsafe { &*(ptr as *const Region) };
        region.check_identity()?;
        Ok(region)
    }

    /// A zeroed, initialised region on the heap (tests, models, in-process use).
    ///
    /// # Panics
    /// If `ring_capacity` is 0 or above `RING_ENTRIES_MAX`.
    pub fn new_boxed(ring_capacity: u32) -> Box<Region> {
        Self::check_capacity(ring_capacity).expect("ring capacity");
        #[cfg(not(any(chiplane_loom, chiplane_shuttle)))]
        let region = {
            let layout = std::alloc::Layout::new::<Region>();
            // SAFETY: `Region` has a non-zero size. Allocating zeroed memory on
            // the heap directly avoids building ~200 KiB on the stack; all-zero
            // bytes are a valid `Region` (see `init_in_place`), and the block
            // comes from the global allocator with `Region`'s layout, so
            // `Box::from_raw` owns and frees it correctly.
            unsafe {
                let p = std::alloc::alloc_zeroed(layout);
                if p.is_null() {
                    std::alloc::handle_alloc_error(layout);
                }
                Box::from_raw(p as *mut Region)
            }
        };
        #[cfg(any(chiplane_loom, chiplane_shuttle))]
        let region = Box::new(Region {
            identity: Identity {
                magic: AtomicU32::new(0),
                version: AtomicU32::new(0),
                size_bytes: AtomicU64::new(0),
                ring_capacity: AtomicU32::new(0),
            },
            words: Words { state: AtomicU32::new(0), shutdown: AtomicU32::new(0) },
            child: ChildLine { ring_tail: AtomicU64::new(0) },
            beat: BeatLine { heartbeat: AtomicU64::new(0) },
            parent: ParentLine { ring_head: AtomicU64::new(0) },
            parent_bell: BellWords::new(),
            child_bell: BellWords::new(),
            task: UnsafeCell::new([0; TASK_FIELD_BYTES]),
            control: UnsafeCell::new([0; CONTROL_FIELD_BYTES]),
            task_result: UnsafeCell::new([0; TASK_RESULT_FIELD_BYTES]),
            control_result: UnsafeCell::new([0; CONTROL_RESULT_FIELD_BYTES]),
            ring: core::array::from_fn(|_| UnsafeCell::new([0; RING_ENTRY_BYTES])),
        });
        region.write_identity(ring_capacity);
        region
    }

    fn write_identity(&self, ring_capacity: u32) {
        // Relaxed: published by the Release store of the magic below.
        self.identity.version.store(REGION_VERSION, Ordering::Relaxed);
        self.identity.size_bytes.store(Self::size_bytes() as u64, Ordering::Relaxed);
        self.identity.ring_capacity.store(ring_capacity, Ordering::Relaxed);
        // Release: pairs with `check_identity`'s Acquire load of the magic.
        self.identity.magic.store(REGION_MAGIC, Ordering::Release);
    }

    #[cfg(not(any(chiplane_loom, chiplane_shuttle)))]
    fn check_identity(&self) -> Result<(), RegionError> {
        // Acquire: pairs with `write_identity`'s Release store of the magic.
        let magic = self.identity.magic.load(Ordering::Acquire);
        if magic != REGION_MAGIC {
            return Err(RegionError::BadMagic(magic));
        }
        // Relaxed: ordered after the magic's Acquire.
        let version = self.identity.version.load(Ordering::Relaxed);
        if version != REGION_VERSION {
            return Err(RegionError::BadVersion(version));
        }
        let recorded = self.identity.size_bytes.load(Ordering::Relaxed);
        if recorded != Self::size_bytes() as u64 {
            return Err(RegionError::BadSize { recorded, expected: Self::size_bytes() as u64 });
        }
        Self::check_capacity(self.ring_capacity())
    }

    /// Entries of the completion ring (fixed at init).
    pub fn ring_capacity(&self) -> u32 {
        // Relaxed: written before the magic's Release, read after attach's
        // Acquire (or by the initialising thread itself).
        self.identity.ring_capacity.load(Ordering::Relaxed)
    }

    /// The state word (all accesses go through [`StateWord`]).
    pub fn word(&self) -> StateWord<'_> {
        StateWord::new(&self.words.state)
    }

    /// Set the sticky shutdown flag (parent). Never cleared.
    pub fn request_shutdown(&self) {
        // Release: pairs with `shutdown_requested`'s Acquire load (child).
        self.words.shutdown.store(1, Ordering::Release);
    }

    /// The sticky shutdown flag (child, once per loop).
    pub fn shutdown_requested(&self) -> bool {
        // Acquire: pairs with `request_shutdown`'s Release store.
        self.words.shutdown.load(Ordering::Acquire) != 0
    }

    /// Child: one more loop iteration (liveness).
    pub fn beat(&self) {
        // Relaxed: a counter, publishes no data; the parent's watch only
        // compares successive values.
        self.beat.heartbeat.fetch_add(1, Ordering::Relaxed);
    }

    /// The child's heartbeat counter (read by the parent's watch).
    pub fn heartbeat(&self) -> u64 {
        // Relaxed: pairs with `beat`'s Relaxed increment (a counter only).
        self.beat.heartbeat.load(Ordering::Relaxed)
    }

    /// The doorbell the parent side sleeps on (the child and the parent's
    /// own submitters ring it).
    pub fn parent_bell(&self) -> &BellWords {
        &self.parent_bell
    }

    /// The doorbell the child's serve loop sleeps on (the parent and the
    /// child's lanes ring it).
    pub fn child_bell(&self) -> &BellWords {
        &self.child_bell
    }

    /// The ring's `(head, tail)` as they are now (diagnostics).
    pub fn ring_indices(&self) -> (u64, u64) {
        // Acquire: pairs with each side's Release store of its index.
        (self.parent.ring_head.load(Ordering::Acquire), self.child.ring_tail.load(Ordering::Acquire))
    }

    pub(crate) fn ring_tail(&self) -> &AtomicU64 {
        &self.child.ring_tail
    }

    pub(crate) fn ring_head(&self) -> &AtomicU64 {
        &self.parent.ring_head
    }

    /// Encode `frame` into `field` (the caller's role owns the field now).
    /// Returns the bytes written; the rest of the field is left as it was.
    pub fn write_frame(&self, field: Field, frame: &Frame) -> Result<usize, FrameError> {
        let write = |p: *mut u8, len: usize| {
            // SAFETY: `p`/`len` describe the field's byte array inside this
            // region; the protocol gives the caller exclusive access to the
            // field until its next publication (module doc), which loom
            // checks through the cell's `with_mut`.
            let buf = unsafe { core::slice::from_raw_parts_mut(p, len) };
            frame.encode_into(buf)
        };
        match field {
            Field::Task => self.task.with_mut(|p| write(p.cast(), TASK_FIELD_BYTES)),
            Field::Control => self.control.with_mut(|p| write(p.cast(), CONTROL_FIELD_BYTES)),
            Field::TaskResult => self.task_result.with_mut(|p| write(p.cast(), TASK_RESULT_FIELD_BYTES)),
            Field::ControlResult => self.control_result.with_mut(|p| write(p.cast(), CONTROL_RESULT_FIELD_BYTES)),
        }
    }

    /// Copy the frame in `field` out and decode it, expecting
    /// `mailbox::kind_in(field)`.
    pub fn read_frame(&self, field: Field) -> Result<Frame, FrameError> {
        self.read_frame_with(field, &mut Vec::new())
    }

    /// [`Region::read_frame`] with the copy taken into `scratch` (a buffer
    /// the caller keeps from one read to the next: the hot path allocates
    /// nothing for it).
    pub fn read_frame_with(&self, field: Field, scratch: &mut Vec<u8>) -> Result<Frame, FrameError> {
        match field {
            Field::Task => self.task.with(|p| copy_out(p.cast(), TASK_FIELD_BYTES, scratch)),
            Field::Control => self.control.with(|p| copy_out(p.cast(), CONTROL_FIELD_BYTES, scratch)),
            Field::TaskResult => self.task_result.with(|p| copy_out(p.cast(), TASK_RESULT_FIELD_BYTES, scratch)),
            Field::ControlResult => {
                self.control_result.with(|p| copy_out(p.cast(), CONTROL_RESULT_FIELD_BYTES, scratch))
            }
        }
        crate::mailbox::read(field, scratch)
    }

    /// Ring: encode a completion into entry `index` (child, producer).
    pub(crate) fn write_entry(&self, index: usize, frame: &Frame) -> Result<usize, FrameError> {
        self.ring[index].with_mut(|p| {
            // SAFETY: the entry's byte array; the ring protocol (ring.rs)
            // gives the producer exclusive access to entries in
            // `[tail, head + capacity)`.
            let buf = unsafe { core::slice::from_raw_parts_mut(p.cast::<u8>(), RING_ENTRY_BYTES) };
            frame.encode_into(buf)
        })
    }

    /// Ring: copy entry `index` out and decode it as a completion (parent).
    pub(crate) fn read_entry(&self, index: usize, scratch: &mut Vec<u8>) -> Result<Frame, FrameError> {
        self.ring[index].with(|p| copy_out(p.cast(), RING_ENTRY_BYTES, scratch));
        Frame::decode_field(scratch, crate::frame::FrameKind::Completion)
    }
}

/// Copy the frame at the start of a field (header + declared payload,
/// clamped to the field) into private memory: `out`, cleared first.
fn copy_out(p: *const u8, len: usize, out: &mut Vec<u8>) {
    // SAFETY: `p`/`len` describe one field's byte array inside a live
    // region; the caller's role may read it now (module doc). The copy is
    // taken first and everything after works on private memory.
    let field = unsafe { core::slice::from_raw_parts(p, len) };
    let declared = match field.get(24..28) {
        Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize,
        None => 0,
    };
    let total = HEADER_BYTES.saturating_add(declared).min(len);
    out.clear();
    out.extend_from_slice(&field[..total]);
}

/// A heap region shared by reference count (tests, models, in-process use);
/// derefs to [`Region`]. hw wraps its memfd mapping in its own type with the
/// same `Deref<Target = Region>`.
#[derive(Clone, Debug)]
// The Box keeps the ~200 KiB region off the stack (`Arc::new(Region)` would
// build it there first); loom's and shuttle's `Arc` take a value.
#[allow(clippy::redundant_allocation)]
pub struct SharedRegion(crate::sync::Arc<Box<Region>>);

impl SharedRegion {
    /// A fresh region with a ring of `ring_capacity` entries.
    pub fn new(ring_capacity: u32) -> Self {
        SharedRegion(crate::sync::Arc::new(Region::new_boxed(ring_capacity)))
    }
}

impl core::ops::Deref for SharedRegion {
    type Target = Region;
    fn deref(&self) -> &Region {
        &self.0
    }
}

#[cfg(all(test, not(any(chiplane_loom, chiplane_shuttle))))]
mod tests {
    use super::*;
    use crate::conc::ring::{Consumer, Producer, RingFull};
    use crate::frame::{CompletionFrame, FrameId, Settlement, TaskResultFrame};
    use crate::ids::{DispatchId, Generation, SlotIndex};
    use crate::mailbox::word::WordState;
    use crate::RunOutput;

    fn id(d: u64) -> FrameId {
        FrameId { dispatch: DispatchId(d), slot: SlotIndex(1), generation: Generation(2) }
    }

    /// A page-aligned, zeroed buffer standing in for a memfd mapping.
    fn mapping() -> (Vec<u8>, usize) {
        let len = Region::size_bytes() + Region::align_bytes();
        let buf = vec![0u8; len];
        let off = buf.as_ptr().align_offset(Region::align_bytes());
        (buf, off)
    }

    #[test]
    fn init_in_place_then_attach_sees_the_same_region() {
        let (mut buf, off) = mapping();
        let p = buf[off..].as_mut_ptr();
        let len = buf.len() - off;
        // SAFETY: `p..p+len` is ours for the whole test and used only as a Region.
        let a = unsafe { Region::init_in_place(p, len, 8) }.unwrap();
        // SAFETY: as above; initialised just now.
        let b = unsafe { Region::attach(p, len) }.unwrap();
        assert_eq!(a.word().snapshot(), Some(WordState::Idle));
        assert!(a.word().cas(WordState::Idle, WordState::TaskReady).is_ok());
        assert_eq!(b.word().snapshot(), Some(WordState::TaskReady));
        let f = Frame::TaskResult(TaskResultFrame { id: id(3), result: Ok(RunOutput { tensors: vec![vec![1.5]] }) });
        a.write_frame(Field::TaskResult, &f).unwrap();
        assert_eq!(b.read_frame(Field::TaskResult), Ok(f));
        assert_eq!(b.ring_capacity(), 8);
        assert!(!b.shutdown_requested());
        a.request_shutdown();
        assert!(b.shutdown_requested());
    }

    #[test]
    fn attach_and_init_reject_bad_memory() {
        let (mut buf, off) = mapping();
        let p = buf[off..].as_mut_ptr();
        let len = buf.len() - off;
        // SAFETY: zeroed memory we own; attach only reads the identity.
        assert_eq!(unsafe { Region::attach(p, len) }.unwrap_err(), RegionError::BadMagic(0));
        // SAFETY: as above.
        let e = unsafe { Region::init_in_place(p, 16, 8) }.unwrap_err();
        assert_eq!(e, RegionError::TooSmall { bytes: 16, need: Region::size_bytes() });
        // SAFETY: as above (rejected before any write).
        let e = unsafe { Region::init_in_place(p.wrapping_add(1), len - 1, 8) }.unwrap_err();
        assert_eq!(e, RegionError::Misaligned { align: Region::align_bytes() });
        // SAFETY: as above (rejected before any write).
        let e = unsafe { Region::init_in_place(p, len, 0) }.unwrap_err();
        assert_eq!(e, RegionError::RingCapacity { capacity: 0, max: RING_ENTRIES_MAX });
        // SAFETY: as above.
        let r = unsafe { Region::init_in_place(p, len, 2) }.unwrap();
        r.identity.version.store(99, Ordering::Relaxed);
        // SAFETY: as above.
        assert_eq!(unsafe { Region::attach(p, len) }.unwrap_err(), RegionError::BadVersion(99));
    }

    #[test]
    fn a_scribbled_field_is_a_typed_error_not_a_panic() {
        let r = Region::new_boxed(2);
        assert!(r.read_frame(Field::Task).is_err(), "zeroed field");
        // Garbage header claiming a payload larger than the field.
        r.control.with_mut(|p| {
            // SAFETY: test-only exclusive access to the control field.
            let b = unsafe { &mut *p };
            b.fill(0xff);
        });
        assert!(r.read_frame(Field::Control).is_err());
    }

    #[test]
    fn poison_is_one_way_against_every_cas() {
        let r = Region::new_boxed(1);
        assert_eq!(r.word().poison(), WordState::Idle.encode());
        // No `transition_to_*` starts from POISONED, so every CAS a driver
        // can issue starts elsewhere and fails.
        for from in WordState::ALL.into_iter().filter(|w| *w != WordState::Poisoned) {
            for to in WordState::ALL {
                assert_eq!(r.word().cas(from, to), Err(crate::conc::word::POISONED), "{from:?}->{to:?}");
            }
        }
        assert_eq!(r.word().load(), crate::conc::word::POISONED);
    }

    #[test]
    fn ring_is_fifo_bounded_and_rejects_a_corrupt_tail() {
        let r = Region::new_boxed(2);
        let mut p = Producer::new(&r);
        let mut c = Consumer::new(&r);
        let done = |d| CompletionFrame { id: id(d), settlement: Settlement::Freed };
        assert_eq!(p.free(&r, true), 2);
        p.push(&r, done(1)).unwrap();
        p.push(&r, done(2)).unwrap();
        assert_eq!(p.push(&r, done(3)), Err(RingFull));
        assert_eq!(c.pop(&r), Some(Ok(Frame::Completion(done(1)))));
        assert_eq!(p.free(&r, false), 0, "cached head is a lower bound");
        assert_eq!(p.free(&r, true), 1);
        p.push(&r, done(3)).unwrap();
        assert_eq!(c.pop(&r), Some(Ok(Frame::Completion(done(2)))));
        assert_eq!(c.pop(&r), Some(Ok(Frame::Completion(done(3)))));
        assert_eq!(c.pop(&r), None);
        r.ring_tail().store(100, Ordering::Release);
        assert!(matches!(c.pop(&r), Some(Err(FrameError::TooLarge { .. }))));
    }
}
