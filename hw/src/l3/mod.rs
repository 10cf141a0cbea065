//! L3: the mailbox in real shared memory between a parent and chip child
//! **processes**. The protocol, the chip side, the parent's and the child's
//! loops are core's (`chiplane_core::conc::{l3, parent, child}`); this
//! module is the OS around them:
//!
//! - [`memory`]: core's mailbox region placed in an anonymous memfd mapping,
//!   and the real futex its doorbells block on;
//! - [`child`]: the chip child process (the program itself, re-executed);
//! - [`watch`]: the parent's liveness policy (exit, heartbeat timeout);
//! - [`worker`]: starting chip children ([`ProcessSpawner`]) and the
//!   [`L3Worker`] over them;
//! - [`trace`]: lane spans and Chrome trace-event output.

pub mod child;
pub mod memory;
pub mod trace;
pub mod watch;
pub mod worker;

pub use child::{init, Device};
pub use chiplane_core::conc::l3::{RunOutcome, SpawnError, TaskRef};
pub use worker::{
    L3Config, L3PendingCall, L3PendingRegister, L3PendingRun, L3PendingUnregister, L3Worker, Orchestrator,
    ProcessSpawner,
};
