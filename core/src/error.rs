//! Error types, one small enum per operation, each variant saying what the
//! caller can do. "Nothing to do" is `None`, never an error; a broken
//! invariant is an assert, never an error.

use crate::chip::ChipError;
use crate::frame::FrameError;
use crate::ids::{Generation, WorkerId};
use crate::slot::SlotState;
use core::fmt;

/// A handle was refused. The caller holds a handle it must not use again.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum HandleError {
    /// Issued by another worker.
    Foreign { expected: WorkerId, got: WorkerId },
    /// The slot has moved on to another generation (the callable was
    /// unregistered; register it again for a fresh handle).
    Stale { current: Generation },
    /// The index names no slot of this table.
    OutOfRange,
}

/// The endpoint (chip child) can no longer serve. Outstanding work failed
/// with this; the caller may start a fresh endpoint.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum EndpointError {
    /// The child process exited (or was killed) and has been reaped.
    ChildDied,
    /// No progress within the liveness timeout while work was outstanding.
    LivenessTimeout,
    /// The endpoint was poisoned by a protocol violation from the child.
    Poisoned(PoisonReason),
    /// The worker is shutting down.
    ShutDown,
}

/// Why an endpoint was poisoned.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum PoisonReason {
    /// A frame from the child did not decode.
    MalformedFrame(FrameError),
    /// A frame's `{dispatch, slot, generation}` matched nothing outstanding.
    IdentityMismatch,
    /// The state word held a value the protocol does not allow here.
    UnexpectedState(u32),
    /// The child died.
    ChildDied,
    /// The liveness timeout fired.
    LivenessTimeout,
}

/// `register` / `register_async` failed.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum RegisterError {
    /// Only chip callables can be registered (the seed's TypeError).
    WrongTarget,
    /// No free slot: unregister something first.
    TableFull,
    /// The prepare failed; the slot is FAILED until it is unregistered.
    PrepareFailed(ChipError),
    /// The final unregister came while preparing; the prepare was cancelled.
    Cancelled,
    /// The endpoint failed.
    Endpoint(EndpointError),
}

/// `unregister` / `unregister_async` failed.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum UnregisterError {
    /// The handle is foreign or stale.
    Handle(HandleError),
    /// The handle's registration was already ended by a final unregister.
    NotRegistered,
    /// The endpoint failed.
    Endpoint(EndpointError),
}

/// `run` / `run_async` failed.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum RunError {
    /// The handle is foreign or stale.
    Handle(HandleError),
    /// The slot is EMPTY, CANCELLING or UNREGISTERING: register again.
    NotRunnable(SlotState),
    /// The slot's prepare failed with this error; unregister it.
    PrepareFailed(ChipError),
    /// The run was queued while preparing and the callable was then
    /// unregistered (its prepare cancelled).
    Cancelled,
    /// The device failed the run.
    Chip(ChipError),
    /// Encoded arguments exceed the task frame.
    PayloadTooLarge { bytes: usize, max: usize },
    /// The endpoint failed.
    Endpoint(EndpointError),
}

/// A control (register / unregister / memory / domain) failed at the
/// mailbox level.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum ControlError {
    Register(RegisterError),
    Unregister(UnregisterError),
    /// The control's payload exceeds the control frame.
    PayloadTooLarge {
        bytes: usize,
        max: usize,
    },
    Endpoint(EndpointError),
}

macro_rules! display_via_debug {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
        impl std::error::Error for $t {}
    )*};
}
display_via_debug!(HandleError, EndpointError, PoisonReason, RegisterError, UnregisterError, RunError, ControlError);
