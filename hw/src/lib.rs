//! chiplane-hw: the real side of chiplane.
//!
//! - [`devices`]: `Chip` implementations: [`devices::host::HostChip`] (CPU
//!   kernels in a shared library loaded at every prepare) and, behind the
//!   `cuda` feature, `devices::cuda::CudaChip` (NVRTC + driver API, loaded
//!   at run time).
//! - [`shm`]: an anonymous `memfd` mapped `MAP_SHARED` (the L3 mailbox
//!   region), inheritable by a child process.
//! - [`l3`]: the L3 worker and the chip child process over a memfd
//!   mailbox (core's protocol in real shared memory between processes).
//! - [`overlap`]: the seed's overlap experiment (`chiplane overlap`);
//!   [`cli`] parses its command line.
//! - [`process`]: spawning a chip child executable that inherits the memfd,
//!   and its liveness (exited? kill, reap, respawn).
//!
//! Every `unsafe` block opens with `// SAFETY:`.
//!
//! # Example: the worker API at L2
//! An [`L2Worker`] on the [`HostChip`] (the kernel catalogue of
//! `chiplane_core::kernels` on the CPU): register a callable, run it, then
//! register a second one while a long run of the first is in flight (the
//! prepare runs on the register lane, beside the run lane), wait for both,
//! and unregister.
//!
//! ```
//! use chiplane_hw::{CallableSpec, HostChip, L2Worker, NodeConfig, RunConfig, TaskArgs};
//!
//! let args = |n: usize, scalars: Vec<u64>| TaskArgs { tensors: vec![vec![1.0; n], vec![2.0; n]], scalars };
//! let config = RunConfig::default();
//! let worker = L2Worker::new(HostChip::new()?, NodeConfig::default());
//!
//! // `repeat_vector_add` with params [n]: a + repeat * b (scalar `repeat`).
//! let first = worker.register(CallableSpec::chip("repeat_vector_add", vec![4]))?;
//! assert_eq!(worker.run(first, args(4, vec![3]), config)?.tensors, vec![vec![7.0; 4]]);
//!
//! // A long run in flight, and a second registration prepared beside it.
//! let run = worker.run_async(first, args(4, vec![100_000]), config)?;
//! let pending = worker.register_async(CallableSpec::chip("vector_add", vec![4]))?;
//! let second = pending.wait()?; // the handle, once prepared
//! assert_eq!(run.wait()?.tensors, vec![vec![200_001.0; 4]]);
//! assert_eq!(worker.run(second, args(4, vec![]), config)?.tensors, vec![vec![3.0; 4]]);
//!
//! worker.unregister(second)?;
//! worker.unregister(first)?;
//! worker.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Example: the worker API at L3
//! The same calls on an [`L3Worker`] over chip child processes. Each chip
//! child is, by default, this very program re-executed with a marker, so
//! `main` must call [`init`] before anything else: in a chip child it
//! serves the chip and exits, in the parent it returns at once. (This
//! doctest runs: its own binary is re-executed as the two chip children.)
//!
//! ```
//! use chiplane_hw::{CallableSpec, L3Config, RunConfig, TaskArgs, Worker};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     chiplane_hw::init();
//!
//!     let worker = L3Config { chips: 2, ..L3Config::default() }.start()?;
//!     let args = |n: usize, scalars: Vec<u64>| TaskArgs { tensors: vec![vec![1.0; n], vec![2.0; n]], scalars };
//!     let config = RunConfig::default();
//!
//!     // `register` goes to chip 0 (`register_on` picks another); a run goes
//!     // to the chip that issued its handle. `Worker::run` is the trait's
//!     // run: the L3 worker's own `run` takes an orchestration function.
//!     let first = worker.register(CallableSpec::chip("repeat_vector_add", vec![4]))?;
//!     assert_eq!(Worker::run(&worker, first, args(4, vec![3]), config)?.tensors, vec![vec![7.0; 4]]);
//!
//!     // A long run on chip 0; the register control enters its mailbox
//!     // while the task runs.
//!     let run = Worker::run_async(&worker, first, args(4, vec![100_000]), config)?;
//!     let second = worker.register_async(CallableSpec::chip("vector_add", vec![4]))?.wait()?;
//!     assert_eq!(run.wait()?.tensors, vec![vec![200_001.0; 4]]);
//!
//!     // An orchestration function submits tasks to several chips at once.
//!     let third = worker.register_on(1, CallableSpec::chip("vector_add", vec![4]))?.wait()?;
//!     let outcome = worker.run(move |o| {
//!         (o.submit(second, args(4, vec![]), config), o.submit(third, args(4, vec![]), config))
//!     });
//!     assert!(outcome.tasks.iter().all(|t| t.as_ref().is_ok_and(|out| out.tensors == vec![vec![3.0; 4]])));
//!
//!     worker.unregister(third)?;
//!     worker.unregister(second)?;
//!     worker.unregister(first)?;
//!     Ok(()) // dropping the worker shuts every chip child down
//! }
//! ```

#![warn(missing_docs)]

pub mod cli;
pub mod devices;
pub mod l3;
pub mod overlap;
pub mod process;
pub mod shm;
pub mod tune;

pub use l3::init;

// The worker API at the root (core's, re-exported so a program needs only
// this crate): the trait both levels implement, the L2 worker (generic over
// its device), the L3 worker over chip child processes, and what they take
// and return.
pub use chiplane_core::{
    CallableHandle, CallableSpec, Chip, ChipError, ChipErrorKind, EndpointError, HandleError, L2Worker, Limit,
    NodeConfig, Pending, PendingRegister, PendingRun, PendingUnregister, RegisterError, RunConfig, RunError, RunOutput,
    TaskArgs, TooLarge, UnregisterError, Worker,
};
pub use devices::host::HostChip;
pub use l3::{
    Device, L3Config, L3PendingCall, L3PendingRegister, L3PendingRun, L3PendingUnregister, L3Worker, Orchestrator,
    RunOutcome, SpawnError, TaskRef,
};
