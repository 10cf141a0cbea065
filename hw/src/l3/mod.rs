//! L3: the mailbox in real shared memory between a parent and chip child
//! **processes**.
//!
//! - [`memory`]: core's mailbox region placed in an anonymous memfd mapping;
//! - [`backend`]: core's child serve loop over a `ChipNode` (the adapter
//!   between `ChildBackend` and the node's non-blocking handles);
//! - [`child`]: the chip child process's `main` (`chiplane-child`);
//! - [`watch`]: the parent's liveness policy (exit, heartbeat timeout);
//! - [`worker`]: the L3 worker (`run(orch_fn)`, `register*`, liveness,
//!   restart);
//! - [`trace`]: lane spans and Chrome trace-event output.

pub mod backend;
pub mod child;
pub mod memory;
pub mod trace;
pub mod watch;
pub mod worker;

pub use child::Device;
pub use worker::{L3Config, L3Error, L3RegisterHandle, L3RunHandle, L3UnregisterHandle, L3Worker, Orchestrator};
pub use worker::{RunOutcome, TaskHandle};
