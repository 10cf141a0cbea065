//! The concurrent layer: built only on [`crate::sync`] (std, loom or shuttle
//! by cfg), checked by the loom and shuttle models in `models/tests/`.

pub mod mailbox_cell;
pub mod port;
pub mod region;
pub mod ring;
pub mod serve;
pub mod word;
