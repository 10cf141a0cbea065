//! Devices: each implements `chiplane_core::Chip` for the kernel catalogue
//! of `chiplane_core::kernels` and passes `chiplane_core::conformance`
//! (except [`null::NullChip`], which computes nothing: it measures the
//! runtime's own cost).

#[cfg(feature = "cuda")]
pub mod cuda;
pub mod host;
pub mod null;
