//! Shared memory between a parent and a chip child: an anonymous `memfd`
//! (never a name under `/dev/shm`), sized with `ftruncate` and mapped
//! `MAP_SHARED`, so both processes see the same pages.
//!
//! Lifecycle:
//! - the parent calls [`SharedMemory::create`]: the memfd is created with
//!   `MFD_CLOEXEC` (no other child inherits it by accident) and sealed
//!   against shrinking and growing (a child cannot truncate the region
//!   under the parent's mapping, which would turn reads into SIGBUS);
//! - [`crate::process::ChildCommand::spawn`] hands exactly this fd to one
//!   child (clearing CLOEXEC only in the child, between fork and exec) and
//!   passes its number and length as arguments;
//! - the child calls [`SharedMemory::from_inherited_fd`], which checks the
//!   fd is a file at least that long, and maps it.
//!
//! Access: the region is raw bytes that another process writes at any time,
//! so it is exposed only as atomics ([`SharedMemory::atomic_u32`],
//! [`SharedMemory::atomic_u64`], bounds- and alignment-checked) and as raw
//! pointers for the mailbox codec to copy through. `munmap` on drop.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// Name shown in `/proc/PID/fd` (memfds have no path in any filesystem).
const MEMFD_NAME: &std::ffi::CStr = c"chiplane-mailbox";

/// An anonymous memfd mapped `MAP_SHARED`.
#[derive(Debug)]
pub struct SharedMemory {
    ptr: NonNull<u8>,
    len: usize,
    fd: OwnedFd,
}

// SAFETY: the mapping is plain memory owned by this value until drop; all
// access through it goes through atomics or raw pointers whose users uphold
// their own synchronisation, so moving or sharing the handle across threads
// is sound.
unsafe impl Send for SharedMemory {}
// SAFETY: as above; `&SharedMemory` only hands out atomics and raw pointers.
unsafe impl Sync for SharedMemory {}

impl SharedMemory {
    /// Create a memfd of `len` bytes (zero-filled) and map it.
    pub fn create(len: usize) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "shared memory length must be > 0"));
        }
        let len_off = libc::off_t::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "shared memory length too large"))?;
        // SAFETY: NUL-terminated name and valid flags; result checked.
        let raw = unsafe { libc::memfd_create(MEMFD_NAME.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh fd owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: plain syscall on an fd we own.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), len_off) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: plain fcntl on an fd we own; seals only restrict it.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_SHRINK | libc::F_SEAL_GROW) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Self::map(fd, len)
    }

    /// Map an inherited memfd (child side). Takes ownership of `fd`; fails
    /// when it is not a file of at least `len` bytes.
    ///
    /// Fails (without taking it) when `fd` is not open.
    ///
    /// # Safety
    /// If `fd` is open, nothing else in this process may own it: it is
    /// closed when the returned value (or the error path) drops it.
    pub unsafe fn from_inherited_fd(fd: RawFd, len: usize) -> io::Result<Self> {
        if fd < 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "negative fd"));
        }
        // Check it is open before owning it: an OwnedFd of a closed number
        // would fail its close on drop (std aborts on EBADF there).
        // SAFETY: F_GETFD only reads the fd's flags; -1 with EBADF if closed.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is open (checked) and the caller promises it is ours
        // alone.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Self::from_fd(fd, len)
    }

    /// Map `fd` (any file at least `len` bytes long).
    pub fn from_fd(fd: OwnedFd, len: usize) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "shared memory length must be > 0"));
        }
        // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is a valid out-pointer; the fd is open.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if (st.st_mode & libc::S_IFMT) != libc::S_IFREG || (st.st_size as u64) < len as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("fd is not a regular file of at least {len} bytes (size {})", st.st_size),
            ));
        }
        Self::map(fd, len)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<Self> {
        // SAFETY: a fresh mapping chosen by the kernel (addr null) of `len`
        // bytes of an open file at least that long; the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(SharedMemory { ptr, len, fd })
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false (a mapping has at least one byte).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The memfd (to hand to a child).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Start of the mapping. Another process may write it at any time:
    /// reads and writes through it must be synchronised by the caller's
    /// protocol (the mailbox state word).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn checked<T>(&self, offset: usize) -> Option<NonNull<T>> {
        let size = std::mem::size_of::<T>();
        let end = offset.checked_add(size)?;
        if end > self.len || !offset.is_multiple_of(std::mem::align_of::<T>()) {
            return None;
        }
        // SAFETY: `offset + size <= len`, so the pointer stays inside the
        // mapping (mmap returns page-aligned memory, so the alignment check
        // on `offset` is the alignment of the address).
        Some(unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(offset).cast::<T>()) })
    }

    /// The `AtomicU32` at byte `offset`, or `None` when out of bounds or
    /// misaligned.
    pub fn atomic_u32(&self, offset: usize) -> Option<&AtomicU32> {
        // SAFETY: in bounds and aligned (checked); the mapping lives as long
        // as `&self`; an AtomicU32 has the layout of a u32 and every bit
        // pattern is valid; all accesses to shared words go through atomics.
        self.checked::<AtomicU32>(offset).map(|p| unsafe { p.as_ref() })
    }

    /// The `AtomicU64` at byte `offset`, or `None` when out of bounds or
    /// misaligned.
    pub fn atomic_u64(&self, offset: usize) -> Option<&AtomicU64> {
        // SAFETY: as in `atomic_u32`.
        self.checked::<AtomicU64>(offset).map(|p| unsafe { p.as_ref() })
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // SAFETY: `ptr..ptr+len` is the mapping made in `map`, unmapped once
        // here; no reference into it outlives `&self`. The fd closes after.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn two_mappings_of_one_memfd_share_pages() {
        let a = SharedMemory::create(8192).unwrap();
        let dup = a.fd().try_clone_to_owned().unwrap();
        let b = SharedMemory::from_fd(dup, 8192).unwrap();
        assert_ne!(a.as_ptr(), b.as_ptr());
        // Relaxed: single thread, the two mappings alias the same page.
        a.atomic_u64(4096).unwrap().store(0xfeed, Ordering::Relaxed);
        assert_eq!(b.atomic_u64(4096).unwrap().load(Ordering::Relaxed), 0xfeed);
    }

    #[test]
    fn accessors_check_bounds_and_alignment() {
        let m = SharedMemory::create(64).unwrap();
        assert!(m.atomic_u32(60).is_some());
        assert!(m.atomic_u32(61).is_none());
        assert!(m.atomic_u32(64).is_none());
        assert!(m.atomic_u64(56).is_some());
        assert!(m.atomic_u64(60).is_none());
        assert!(m.atomic_u64(usize::MAX).is_none());
        assert!(SharedMemory::create(0).is_err());
    }

    #[test]
    fn mapping_longer_than_the_file_is_refused() {
        let m = SharedMemory::create(4096).unwrap();
        let dup = m.fd().try_clone_to_owned().unwrap();
        assert_eq!(SharedMemory::from_fd(dup, 8192).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn memfd_is_sealed_against_resizing() {
        let m = SharedMemory::create(4096).unwrap();
        // SAFETY: plain syscall on an fd the mapping keeps open.
        let r = unsafe { libc::ftruncate(m.fd().as_raw_fd(), 0) };
        assert_eq!(r, -1, "a sealed memfd cannot shrink");
    }
}
