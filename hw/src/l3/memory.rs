//! The mailbox region in real shared memory: core's [`Region`] placed at the
//! start of an anonymous memfd mapping ([`SharedMemory`]).
//!
//! - the parent calls [`Mailbox::create`]: a fresh sealed memfd exactly one
//!   region long, initialised in place (`Region::init_in_place`: zeroed,
//!   identity written, magic stored last);
//! - the child calls [`Mailbox::attach`] on the memfd it inherited: the
//!   identity (magic, version, layout size, ring capacity) is checked before
//!   anything else is read, so a child built from another layout refuses to
//!   serve instead of misreading it.
//!
//! # Doorbells
//! After the region the mapping holds two u32 *doorbells* (hw's own, not
//! part of core's layout): `to_child` and `to_parent`. A side that made
//! progress the other may be waiting for rings the other's bell (a Release
//! increment, then `FUTEX_WAKE` on its address: a shared futex, valid across
//! processes); a side with nothing to do reads its own bell *before* its
//! step and, if the step found nothing, sleeps with `FUTEX_WAIT` on that
//! value, bounded by a short timeout. A ring between the read and the wait
//! changes the value, so the wait returns at once: no lost wake-up, and a
//! missed ring would cost at most the timeout (the bounded poll it
//! replaces). The protocol never depends on a bell: it is only a faster way
//! to notice a change of the word or the ring.
//!
//! The mapping lives as long as the `Mailbox`; every reference to the region
//! is borrowed from it (`Deref<Target = Region>`), so none outlives the
//! `munmap`. [`MailboxRef`] shares one mailbox between the parent's port and
//! the rest of the worker.

use std::io;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chiplane_core::conc::region::{Region, RegionError};

use crate::shm::SharedMemory;

/// Default number of completion-ring entries of an L3 mailbox.
pub const RING_CAPACITY: u32 = 64;

/// A memfd mapping holding one initialised mailbox region.
#[derive(Debug)]
pub struct Mailbox {
    shm: SharedMemory,
    region: NonNull<Region>,
}

// SAFETY: the region is made of atomics and byte fields whose access is
// ordered by the mailbox protocol (core::conc::region's module doc); the
// mapping is owned by `shm` and stays valid while `self` lives.
unsafe impl Send for Mailbox {}
// SAFETY: as above: `&Mailbox` hands out only `&Region`, which is `Sync`.
unsafe impl Sync for Mailbox {}

fn region_err(e: RegionError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("mailbox region: {e:?}"))
}

impl Mailbox {
    /// Parent: a fresh memfd holding an initialised region whose ring has
    /// `ring_capacity` entries.
    pub fn create(ring_capacity: u32) -> io::Result<Self> {
        let shm = SharedMemory::create(Self::mapping_bytes())?;
        // SAFETY: the mapping is fresh, `shm.len()` bytes long, page aligned,
        // and nothing else (no child yet) can access it until this returns;
        // afterwards it is reached only through `Region` (this struct hands
        // out nothing else, and the child attaches it as a `Region`).
        let region = unsafe { Region::init_in_place(shm.as_ptr(), shm.len(), ring_capacity) }.map_err(region_err)?;
        let region = NonNull::from(region);
        Ok(Mailbox { shm, region })
    }

    /// Child: attach the region in an inherited memfd mapping (identity
    /// checked).
    pub fn attach(shm: SharedMemory) -> io::Result<Self> {
        // SAFETY: the mapping is `shm.len()` bytes and lives as long as the
        // returned value (which owns `shm`); the parent and this child access
        // those bytes only as a `Region`.
        let region = unsafe { Region::attach(shm.as_ptr(), shm.len()) }.map_err(region_err)?;
        let region = NonNull::from(region);
        Ok(Mailbox { shm, region })
    }

    /// Bytes of the mapping: the region, then the two doorbells.
    pub const fn mapping_bytes() -> usize {
        Region::size_bytes() + 64
    }

    fn bell(&self, which: Bell) -> Option<&AtomicU32> {
        let off = Region::size_bytes() + if which == Bell::ToChild { 0 } else { 4 };
        self.shm.atomic_u32(off)
    }

    /// The current value of a doorbell (read it before a step whose
    /// idleness may end in [`Mailbox::wait_bell`]).
    pub fn bell_value(&self, which: Bell) -> u32 {
        // Acquire: pairs with `ring`'s Release increment.
        self.bell(which).map_or(0, |b| b.load(Ordering::Acquire))
    }

    /// Ring a doorbell: bump it and wake whoever sleeps on it.
    pub fn ring(&self, which: Bell) {
        let Some(b) = self.bell(which) else { return };
        // Release: pairs with `bell_value`'s Acquire load (the sleeper sees
        // the changes made before the ring once it sees the new value).
        b.fetch_add(1, Ordering::Release);
        // SAFETY: FUTEX_WAKE on the address of a live u32 in our mapping;
        // no other pointer is passed. A shared (non-PRIVATE) futex, so a
        // sleeper in the other process is woken.
        unsafe { libc::syscall(libc::SYS_futex, b.as_ptr(), libc::FUTEX_WAKE, i32::MAX, 0usize, 0usize, 0u32) };
    }

    /// Sleep until the doorbell differs from `seen` (or `timeout` passes,
    /// or a signal arrives). Returns at once if it already differs.
    pub fn wait_bell(&self, which: Bell, seen: u32, timeout: Duration) {
        let Some(b) = self.bell(which) else { return };
        let ts = libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as _ };
        // SAFETY: FUTEX_WAIT on the address of a live u32 in our mapping
        // with a valid relative timeout; the kernel compares the value
        // atomically with going to sleep.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                b.as_ptr(),
                libc::FUTEX_WAIT,
                seen,
                &ts as *const libc::timespec,
                0usize,
                0u32,
            )
        };
    }

    /// The memfd mapping (to hand to a child).
    pub fn shm(&self) -> &SharedMemory {
        &self.shm
    }

    pub fn region(&self) -> &Region {
        // SAFETY: `region` points into `self.shm`'s mapping, which is valid
        // for the lifetime of `&self`.
        unsafe { self.region.as_ref() }
    }
}

impl Deref for Mailbox {
    type Target = Region;
    fn deref(&self) -> &Region {
        self.region()
    }
}

/// Which doorbell (see the module doc).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Bell {
    /// Rung by the parent, slept on by the child's serve loop.
    ToChild,
    /// Rung by the child (and by submitters), slept on by the parent's driver.
    ToParent,
}

/// A shared mailbox that derefs to its [`Region`] (what core's `Port` and
/// `Serve` take).
#[derive(Clone, Debug)]
pub struct MailboxRef(pub Arc<Mailbox>);

impl Deref for MailboxRef {
    type Target = Region;
    fn deref(&self) -> &Region {
        self.0.region()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chiplane_core::mailbox::word::WordState;

    #[test]
    fn a_second_mapping_of_the_memfd_attaches_and_shares_the_word() {
        let parent = Mailbox::create(8).unwrap();
        let dup = parent.shm().fd().try_clone_to_owned().unwrap();
        let child = Mailbox::attach(SharedMemory::from_fd(dup, parent.shm().len()).unwrap()).unwrap();
        assert_eq!(child.ring_capacity(), 8);
        assert_eq!(child.word().snapshot(), Some(WordState::Idle));
        parent.request_shutdown();
        assert!(child.shutdown_requested());
    }

    #[test]
    fn a_ring_wakes_a_sleeper_in_another_mapping() {
        let parent = Mailbox::create(8).unwrap();
        let dup = parent.shm().fd().try_clone_to_owned().unwrap();
        let child = Mailbox::attach(SharedMemory::from_fd(dup, parent.shm().len()).unwrap()).unwrap();
        let seen = child.bell_value(Bell::ToChild);
        // A stale `seen` returns at once (no sleep).
        parent.ring(Bell::ToChild);
        let t = std::time::Instant::now();
        child.wait_bell(Bell::ToChild, seen, Duration::from_secs(30));
        assert!(t.elapsed() < Duration::from_secs(20));
        assert_eq!(child.bell_value(Bell::ToChild), seen.wrapping_add(1));
        assert_eq!(child.bell_value(Bell::ToParent), 0);
        // A sleeper is woken by a ring from another thread.
        let now = child.bell_value(Bell::ToChild);
        std::thread::scope(|s| {
            s.spawn(|| parent.ring(Bell::ToChild));
            let t = std::time::Instant::now();
            while child.bell_value(Bell::ToChild) == now {
                child.wait_bell(Bell::ToChild, now, Duration::from_secs(30));
                assert!(t.elapsed() < Duration::from_secs(20));
            }
        });
    }

    #[test]
    fn attaching_uninitialised_memory_is_refused() {
        let shm = SharedMemory::create(Mailbox::mapping_bytes()).unwrap();
        let e = Mailbox::attach(shm).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
