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
//! See `docs/` and docs/protocol.md for the protocol.

#![warn(missing_docs)]

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
pub use error::{
    ControlError, EndpointError, HandleError, Limit, PoisonReason, RegisterError, RunError, TooLarge, UnregisterError,
};
pub use ids::{CallableDigest, CallableHandle, DispatchId, Generation, SlotIndex, WorkerId};

// The worker API at the root: the trait both levels implement, the L2
// worker and the L3 worker (generic over its OS half) with their pending
// results.
pub use conc::api::{Pending, Worker};
pub use conc::l3::{
    L3Options, L3PendingCall, L3PendingRegister, L3PendingRun, L3PendingUnregister, L3Worker, Orchestrator, RunOutcome,
    SpawnError, Spawner, TaskRef,
};
pub use conc::node::{NodeConfig, PendingRegister, PendingRun, PendingUnregister};
pub use conc::worker::L2Worker;

pub mod conc;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod sync;
