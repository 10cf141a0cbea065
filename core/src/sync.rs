//! The one facade over std, loom and shuttle.
//!
//! Everything concurrent in core (the [`crate::conc`] layer) uses only this
//! module. The backend is chosen by cfg, never by a Cargo feature (a feature
//! would unify across a build and turn hw's or sim's core into a loom build):
//! - default: `std`;
//! - `RUSTFLAGS="--cfg chiplane_loom"`: loom (exhaustive, models/tests/loom_*);
//! - `RUSTFLAGS="--cfg chiplane_shuttle"`: shuttle (random/PCT/DFS,
//!   models/tests/shuttle_*).
//!
//! Use a separate `CARGO_TARGET_DIR` per backend so switching does not
//! rebuild the world (`scripts/test-all` does this).
//!
//! `UnsafeCell` has loom's closure API (`with`, `with_mut`) on every backend,
//! so loom can track every access to shared non-atomic memory.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

#[cfg(all(chiplane_loom, chiplane_shuttle))]
compile_error!("choose one model-checking backend: chiplane_loom or chiplane_shuttle");

#[cfg(not(any(chiplane_loom, chiplane_shuttle)))]
mod imp {
    pub use std::hint::spin_loop;
    pub use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
    pub use std::sync::{Arc, Condvar, Mutex, MutexGuard};
    /// Threads of the backend.
    pub mod thread {
        pub use std::thread::{current, park, spawn, yield_now, Builder, JoinHandle, Thread};
    }
    /// The backend's name.
    pub const BACKEND: &str = "std";
}

#[cfg(chiplane_loom)]
mod imp {
    pub use loom::hint::spin_loop;
    pub use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
    pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
    /// Threads of the backend.
    pub mod thread {
        pub use loom::thread::{current, park, spawn, yield_now, JoinHandle, Thread};
    }
    /// The backend's name.
    pub const BACKEND: &str = "loom";
}

#[cfg(chiplane_shuttle)]
mod imp {
    pub use shuttle::hint::spin_loop;
    pub use shuttle::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
    pub use shuttle::sync::{Arc, Condvar, Mutex, MutexGuard};
    /// Threads of the backend.
    pub mod thread {
        pub use shuttle::thread::{current, park, spawn, yield_now, JoinHandle, Thread};
    }
    /// The backend's name.
    pub const BACKEND: &str = "shuttle";
}

pub use imp::*;

/// Interior mutability with loom's closure API.
#[cfg(chiplane_loom)]
pub use loom::cell::UnsafeCell;

/// Interior mutability with loom's closure API (std and shuttle: a thin
/// wrapper over `std::cell::UnsafeCell`).
#[cfg(not(chiplane_loom))]
#[derive(Debug, Default)]
#[repr(transparent)]
pub struct UnsafeCell<T: ?Sized>(std::cell::UnsafeCell<T>);

#[cfg(not(chiplane_loom))]
impl<T> UnsafeCell<T> {
    /// A cell holding `data`.
    pub const fn new(data: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(data))
    }

    /// The value, consuming the cell.
    pub fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

#[cfg(not(chiplane_loom))]
impl<T: ?Sized> UnsafeCell<T> {
    /// Read access through a raw pointer (the caller upholds aliasing rules).
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Write access through a raw pointer (the caller upholds aliasing rules).
    #[inline(always)]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
