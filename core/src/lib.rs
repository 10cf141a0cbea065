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
//!
//! # Example: an L2 worker
//! The worker API ([`Worker`], here [`L2Worker`]) on a small CPU device:
//! register a callable, run it, then register a second one while a long
//! run of the first is in flight (the prepare runs on the register lane,
//! beside the run lane), wait for both, and unregister.
//!
//! ```
//! use chiplane_core::{
//!     CallableSpec, CancelProbe, Chip, ChipError, ChipErrorKind, L2Worker, NodeConfig, RunConfig, RunOutput,
//!     TaskArgs,
//! };
//!
//! /// One kernel, `add` with params `[n]`: `c = a + repeat * b` as `repeat`
//! /// passes over tensors of length n (scalar `repeat`, default 1).
//! struct Cpu;
//!
//! impl Chip for Cpu {
//!     type Prepared = usize;
//!
//!     fn name(&self) -> &str {
//!         "cpu"
//!     }
//!
//!     fn prepare(&self, spec: &CallableSpec, _cancel: &dyn CancelProbe) -> Result<usize, ChipError> {
//!         match (spec.kernel.as_str(), spec.params.as_slice()) {
//!             ("add", [n]) => Ok(*n as usize),
//!             _ => Err(ChipError::new(ChipErrorKind::InvalidSpec, "expected add with params [n]")),
//!         }
//!     }
//!
//!     fn run(&self, n: &usize, args: &TaskArgs, _config: &RunConfig) -> Result<RunOutput, ChipError> {
//!         let [a, b] = args.tensors.as_slice() else {
//!             return Err(ChipError::new(ChipErrorKind::InvalidArgs, "expected tensors a, b"));
//!         };
//!         if a.len() != *n || b.len() != *n {
//!             return Err(ChipError::new(ChipErrorKind::InvalidArgs, format!("expected length {n}")));
//!         }
//!         let mut c = a.clone();
//!         for _ in 0..args.scalars.first().copied().unwrap_or(1) {
//!             c.iter_mut().zip(b).for_each(|(c, b)| *c += b);
//!         }
//!         Ok(RunOutput { tensors: vec![c] })
//!     }
//!
//!     fn release(&self, _n: usize) {}
//! }
//!
//! let args = |n: usize, repeat: u64| TaskArgs { tensors: vec![vec![1.0; n], vec![2.0; n]], scalars: vec![repeat] };
//! let config = RunConfig::default();
//! let worker = L2Worker::new(Cpu, NodeConfig::default());
//!
//! // Register (the prepare runs on the register lane), then run.
//! let first = worker.register(CallableSpec::chip("add", vec![4]))?;
//! assert_eq!(worker.run(first, args(4, 3), config)?.tensors, vec![vec![7.0; 4]]);
//!
//! // A long run in flight, and a second registration beside it.
//! let run = worker.run_async(first, args(4, 100_000), config)?;
//! let pending = worker.register_async(CallableSpec::chip("add", vec![2]))?;
//! let second = pending.wait()?; // the handle, once prepared
//! assert_eq!(run.wait()?.tensors, vec![vec![200_001.0; 4]]);
//! // Runs are FIFO per worker: this one queues behind the long run.
//! assert_eq!(worker.run(second, args(2, 1), config)?.tensors, vec![vec![3.0; 2]]);
//!
//! // End both registrations (each frees its slot), then stop the lanes.
//! worker.unregister(second)?;
//! worker.unregister(first)?;
//! worker.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

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
