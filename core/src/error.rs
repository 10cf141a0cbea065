//! Error types, one small enum per operation, each variant saying what the
//! caller can do. "Nothing to do" is `None`, never an error; a broken
//! invariant is an assert, never an error.
//!
//! Every type prints a sentence meant for the person who reads it
//! (`Display`) and hands out what caused it (`std::error::Error::source`):
//! a device error keeps the device's own words, an endpoint error says why
//! the chip child is gone.

use crate::chip::ChipError;
use crate::frame::FrameError;
use crate::ids::{Generation, WorkerId};
use crate::slot::SlotState;
use core::fmt;

/// A handle was refused. The caller holds a handle it must not use again.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum HandleError {
    /// Issued by another worker (another L2 worker, another chip, or an
    /// earlier incarnation of this chip's child).
    Foreign {
        /// The worker the handle was used on.
        expected: WorkerId,
        /// The worker that issued it.
        got: WorkerId,
    },
    /// The slot has moved on to another generation (the callable was
    /// unregistered; register it again for a fresh handle).
    Stale {
        /// The slot's generation now.
        current: Generation,
    },
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
    /// A thread driving the mailbox (the parent's driver or the child's
    /// serve loop) died; nothing can be trusted to resolve any more.
    DriverDied,
}

/// A size limit of the mailbox's frame format.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Limit {
    /// A callable's kernel name (`frame::KERNEL_MAX_BYTES`).
    KernelName,
    /// A whole control frame: a register's spec with its parameters
    /// (`frame::CONTROL_FRAME_BYTES`).
    ControlFrame,
    /// A whole task frame: a run's arguments (`frame::TASK_FRAME_BYTES`).
    TaskFrame,
    /// A whole task result frame: a run's output (`frame::TASK_RESULT_BYTES`).
    TaskResult,
}

impl Limit {
    /// The limit's name as the code spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Limit::KernelName => "KERNEL_MAX_BYTES",
            Limit::ControlFrame => "CONTROL_FRAME_BYTES",
            Limit::TaskFrame => "TASK_FRAME_BYTES",
            Limit::TaskResult => "TASK_RESULT_BYTES",
        }
    }

    /// What is measured against it.
    pub const fn what(self) -> &'static str {
        match self {
            Limit::KernelName => "the kernel name",
            Limit::ControlFrame => "the encoded register control (spec and parameters)",
            Limit::TaskFrame => "the encoded run arguments (tensors and scalars)",
            Limit::TaskResult => "the encoded run output",
        }
    }
}

/// A value does not fit a size limit: which limit, how big it is, and the
/// most that fits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TooLarge {
    /// The limit that was exceeded.
    pub limit: Limit,
    /// How many bytes the value takes (encoded, header included for a frame).
    pub bytes: usize,
    /// The most that fits.
    pub max: usize,
}

/// `register` / `register_async` failed.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum RegisterError {
    /// Only chip callables can be registered (the seed's TypeError).
    WrongTarget,
    /// No free slot: unregister something first (or raise the worker's
    /// slot capacity).
    TableFull,
    /// The prepare failed; the slot is FAILED until it is unregistered.
    PrepareFailed(ChipError),
    /// The final unregister came while preparing; the prepare was cancelled.
    Cancelled,
    /// The spec does not fit the mailbox (L3): shorten it.
    TooLarge(TooLarge),
    /// The worker has no chip with this index.
    NoSuchChip {
        /// The index asked for.
        chip: usize,
        /// How many chips the worker has.
        chips: usize,
    },
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
    /// The arguments (or, at L3, the output) do not fit the mailbox.
    TooLarge(TooLarge),
    /// The endpoint failed.
    Endpoint(EndpointError),
}

/// A control (register / unregister / memory / domain) failed at the
/// mailbox level.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum ControlError {
    /// A register control failed.
    Register(RegisterError),
    /// An unregister control failed.
    Unregister(UnregisterError),
    /// The control does not fit its frame.
    TooLarge(TooLarge),
    /// The endpoint failed.
    Endpoint(EndpointError),
}

// ---------------------------------------------------------------- Display

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandleError::Foreign { expected, got } => {
                write!(f, "the handle was issued by worker {got}, not by this worker ({expected})")
            }
            HandleError::Stale { current } => write!(
                f,
                "the handle is stale: its slot is at generation {} now (register the callable again)",
                current.0
            ),
            HandleError::OutOfRange => f.write_str("the handle names no slot of this worker"),
        }
    }
}

impl fmt::Display for PoisonReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoisonReason::MalformedFrame(e) => write!(f, "the chip child wrote a malformed frame ({e})"),
            PoisonReason::IdentityMismatch => {
                f.write_str("a frame from the chip child named a dispatch, slot or generation nothing was waiting for")
            }
            PoisonReason::UnexpectedState(v) => {
                write!(f, "the mailbox state word held {v}, which the protocol forbids here")
            }
            PoisonReason::ChildDied => f.write_str("the chip child died"),
            PoisonReason::LivenessTimeout => f.write_str("the chip child stopped making progress"),
            PoisonReason::DriverDied => f.write_str("a thread driving the mailbox died"),
        }
    }
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointError::ChildDied => f.write_str("the chip child exited or was killed (restart the chip)"),
            EndpointError::LivenessTimeout => f.write_str(
                "the chip child made no progress within the liveness timeout and was killed (restart the chip)",
            ),
            EndpointError::Poisoned(_) => {
                f.write_str("the mailbox was poisoned and the chip child killed (restart the chip)")
            }
            EndpointError::ShutDown => f.write_str("the worker is shutting down"),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} takes {} bytes; the limit {} is {} bytes",
            self.limit.what(),
            self.bytes,
            self.limit.name(),
            self.max
        )
    }
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::WrongTarget => f.write_str("only chip callables can be registered"),
            RegisterError::TableFull => {
                f.write_str("every slot of the chip is in use (unregister a callable or raise the slot capacity)")
            }
            RegisterError::PrepareFailed(_) => f.write_str("preparing the callable failed"),
            RegisterError::Cancelled => f.write_str("the callable was unregistered while it was being prepared"),
            RegisterError::TooLarge(_) => f.write_str("the callable does not fit the mailbox"),
            RegisterError::NoSuchChip { chip, chips } => write!(f, "there is no chip {chip} (the worker has {chips})"),
            RegisterError::Endpoint(_) => f.write_str("the chip cannot serve"),
        }
    }
}

impl fmt::Display for UnregisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnregisterError::Handle(_) => f.write_str("the handle was refused"),
            UnregisterError::NotRegistered => f.write_str("the handle's registration has already ended"),
            UnregisterError::Endpoint(_) => f.write_str("the chip cannot serve"),
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Handle(_) => f.write_str("the handle was refused"),
            RunError::NotRunnable(s) => write!(f, "the callable cannot run: its slot is {s:?} (register it again)"),
            RunError::PrepareFailed(_) => f.write_str("the callable's prepare had failed (unregister it)"),
            RunError::Cancelled => f.write_str("the callable was unregistered while the run waited for its prepare"),
            RunError::Chip(_) => f.write_str("the device failed the run"),
            RunError::TooLarge(_) => f.write_str("the run does not fit the mailbox"),
            RunError::Endpoint(_) => f.write_str("the chip cannot serve"),
        }
    }
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::Register(_) => f.write_str("the register control failed"),
            ControlError::Unregister(_) => f.write_str("the unregister control failed"),
            ControlError::TooLarge(_) => f.write_str("the control does not fit the mailbox"),
            ControlError::Endpoint(_) => f.write_str("the chip cannot serve"),
        }
    }
}

// ---------------------------------------------------------------- Error

impl std::error::Error for HandleError {}

impl std::error::Error for Limit {}

impl std::error::Error for TooLarge {}

impl std::error::Error for PoisonReason {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoisonReason::MalformedFrame(e) => Some(e),
            _ => None,
        }
    }
}

impl std::error::Error for EndpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EndpointError::Poisoned(p) => Some(p),
            _ => None,
        }
    }
}

impl std::error::Error for RegisterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RegisterError::PrepareFailed(e) => Some(e),
            RegisterError::TooLarge(e) => Some(e),
            RegisterError::Endpoint(e) => Some(e),
            _ => None,
        }
    }
}

impl std::error::Error for UnregisterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UnregisterError::Handle(e) => Some(e),
            UnregisterError::Endpoint(e) => Some(e),
            UnregisterError::NotRegistered => None,
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Handle(e) => Some(e),
            RunError::PrepareFailed(e) | RunError::Chip(e) => Some(e),
            RunError::TooLarge(e) => Some(e),
            RunError::Endpoint(e) => Some(e),
            RunError::NotRunnable(_) | RunError::Cancelled => None,
        }
    }
}

impl std::error::Error for ControlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ControlError::Register(e) => Some(e),
            ControlError::Unregister(e) => Some(e),
            ControlError::TooLarge(e) => Some(e),
            ControlError::Endpoint(e) => Some(e),
        }
    }
}

/// Every cause of `e`, outermost first, joined by ": " (what a command-line
/// tool prints for an error).
pub fn report(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
