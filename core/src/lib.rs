//! chiplane-core: the pure state machines of chiplane and, beside them, the
//! thin concurrent layer built only on [`sync`].
//!
//! Pure machines (no threads, no clock reads, no randomness, no I/O; each is
//! driven by `handle(input)` and drained with `poll()`):
//! - [`slot`]: the slot table (states, generations, registration counts,
//!   pins, tombstones, deferred free);
//! - [`mailbox`]: the state word's pure transitions and the parent and child
//!   endpoint machines;
//! - [`lane`]: the run lane and the register lane (FIFO, one job at a time);
//! - [`frame`]: the frame codec;
//! - [`chip`]: the `Chip` trait every device implements;
//! - [`error`]: per-operation error types.
//!
//! See `docs/` and design.md for the protocol.

pub mod chip;
pub mod chipside;
pub mod error;
pub mod frame;
pub mod ids;
pub mod kernels;
pub mod lane;
pub mod mailbox;
#[cfg(feature = "reference")]
pub mod reference;
pub mod slot;

pub use chip::{
    CallableSpec, CancelProbe, Chip, ChipError, ChipErrorKind, LaneKind, RunConfig, RunOutput, TargetKind, TaskArgs,
};
pub use error::{ControlError, EndpointError, HandleError, PoisonReason, RegisterError, RunError, UnregisterError};
pub use ids::{CallableDigest, DispatchId, Generation, Handle, SlotIndex, WorkerId};

pub mod conc;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod sync;
