//! The concurrent layer: built only on [`crate::sync`] (std, loom or shuttle
//! by cfg), checked by the loom and shuttle models in `models/tests/`.
