//! The concurrent layer: built only on [`crate::sync`] (std, loom or shuttle
//! by cfg), checked by the loom and shuttle models in `models/tests/`.
//!
//! - [`cell`]: completion cells (one producer, any number of waiters; spin
//!   then park; no lost wake-up);
//! - [`node`]: [`node::ChipNode`], the slot registry plus the run lane and
//!   register lane threads of one chip, driving core's pure machines
//!   (`SlotTable`, `Lane`); non-blocking submit, handles that resolve once
//!   (at L3, results go to an [`node::Events`] sink instead);
//! - [`worker`]: the L2 worker, sync calls = async calls + `wait()`.
//!
//! Everything here names its primitives through `crate::sync`. Clippy's
//! `disallowed-types` resolves those re-exports to the std types they are in
//! a default build and would flag every use, so the lint is allowed for this
//! module; the rule it stands for (no direct `std::sync` here) is kept by
//! importing only from `crate::sync`.
#![allow(clippy::disallowed_types)]

pub mod api;
pub mod cell;
pub mod l3;
pub mod node;
pub mod wait;
pub mod worker;

#[cfg(all(test, not(any(chiplane_loom, chiplane_shuttle))))]
mod tests;

pub use api::{Pending, Worker};
pub use cell::Completion;
pub use node::{ChipNode, Events, NodeConfig, PendingRegister, PendingRun, PendingUnregister};
pub use worker::L2Worker;

// The mailbox's driver internals: public for the checkers (models, sim)
// and hw's OS half, hidden from the documented API.
#[doc(hidden)]
pub mod bell;
#[doc(hidden)]
pub mod child;
#[doc(hidden)]
pub mod parent;
#[doc(hidden)]
pub mod port;
#[doc(hidden)]
pub mod region;
#[doc(hidden)]
pub mod ring;
#[doc(hidden)]
pub mod serve;
#[doc(hidden)]
pub mod word;
