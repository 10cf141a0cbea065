//! The concurrent layer: built only on [`crate::sync`] (std, loom or shuttle
//! by cfg), checked by the loom and shuttle models in `models/tests/`.
//!
//! - [`cell`]: completion cells (one producer, any number of waiters; spin
//!   then park; no lost wake-up) and the [`cell::Notifier`] hook;
//! - [`node`]: [`node::ChipNode`], the slot registry plus the run lane and
//!   register lane threads of one chip, driving core's pure machines
//!   (`SlotTable`, `Lane`); non-blocking submit, handles that resolve once;
//! - [`worker`]: the L2 worker, sync calls = async calls + `wait()`.

pub mod cell;
pub mod node;
pub mod worker;

#[cfg(all(test, not(any(chiplane_loom, chiplane_shuttle))))]
mod tests;

pub use cell::{Completion, Notifier};
pub use node::{ChipNode, NodeConfig, RegisterHandle, RunHandle, UnregisterHandle};
pub use worker::Worker;
