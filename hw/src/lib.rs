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
//! - [`overlap`]: the seed's overlap experiment (`chiplane overlap`).
//! - [`process`]: spawning a chip child executable that inherits the memfd,
//!   and its liveness (exited? kill, reap, respawn).
//!
//! Every `unsafe` block opens with `// SAFETY:`.

#![warn(missing_docs)]

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
