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
//! The doorbells both sides sleep on are part of core's region (`bell`);
//! [`SysFutex`] is their OS half here: `FUTEX_WAIT` / `FUTEX_WAKE` on the
//! shared mapping (not `FUTEX_PRIVATE`, so a sleeper in the other process is
//! woken).
//!
//! The mapping lives as long as the `Mailbox`; every reference to the region
//! is borrowed from it (`Deref<Target = Region>`), so none outlives the
//! `munmap`. [`MailboxRef`] shares one mailbox between the parent's port and
//! the rest of the worker.

use std::io;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use chiplane_core::conc::bell::Futex;
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

    /// Bytes of the mapping: the region.
    pub const fn mapping_bytes() -> usize {
        Region::size_bytes()
    }

    /// The memfd mapping (to hand to a child).
    pub fn shm(&self) -> &SharedMemory {
        &self.shm
    }

    /// The mailbox region inside the mapping (also reachable through
    /// `Deref`).
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

/// Core's doorbells on a real futex: `FUTEX_WAIT` / `FUTEX_WAKE` on the
/// word's address in the shared mapping (a shared futex: the kernel keys it
/// by the page, so both processes reach the same queue).
#[derive(Clone, Copy, Debug, Default)]
pub struct SysFutex;

impl Futex for SysFutex {
    fn wait(&self, word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: t.subsec_nanos() as _,
        });
        let ts_ptr = ts.as_ref().map_or(core::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: FUTEX_WAIT on the address of a live u32 (in a shared
        // mapping or this process's memory) with a valid relative timeout or
        // none; the kernel compares the value atomically with going to sleep.
        unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, ts_ptr, 0usize, 0u32) };
    }

    fn wake(&self, word: &AtomicU32) {
        // SAFETY: FUTEX_WAKE on the address of a live u32; no other pointer.
        unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX, 0usize, 0usize, 0u32) };
    }
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
        use chiplane_core::conc::bell::Doorbell;
        use std::sync::atomic::{AtomicBool, Ordering};
        let parent = Mailbox::create(8).unwrap();
        let dup = parent.shm().fd().try_clone_to_owned().unwrap();
        let child = Mailbox::attach(SharedMemory::from_fd(dup, parent.shm().len()).unwrap()).unwrap();
        let work = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let bell = Doorbell::new(child.child_bell(), &SysFutex);
                // Acquire: pairs with the Release store below.
                while !work.load(Ordering::Acquire) {
                    bell.sleep(|| work.load(Ordering::Acquire), Some(Duration::from_secs(30)));
                }
            });
            // Release: pairs with the sleeper's Acquire loads.
            work.store(true, Ordering::Release);
            Doorbell::new(parent.child_bell(), &SysFutex).ring();
        });
        assert_eq!(parent.child_bell().sleepers(), 0);
    }

    #[test]
    fn attaching_uninitialised_memory_is_refused() {
        let shm = SharedMemory::create(Mailbox::mapping_bytes()).unwrap();
        let e = Mailbox::attach(shm).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
