//! Devices: each implements `chiplane_core::Chip` for the kernel catalogue
//! of `chiplane_core::kernels` and passes `chiplane_core::conformance`.

#[cfg(feature = "cuda")]
pub mod cuda;
pub mod host;
