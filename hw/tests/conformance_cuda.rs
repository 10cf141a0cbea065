//! The conformance suite against the CUDA device (feature `cuda`). On a
//! machine without a CUDA driver the device must refuse construction with a
//! typed `Device` error (checked here); with a GPU the whole suite runs.
#![cfg(feature = "cuda")]

use chiplane_core::chip::ChipErrorKind;
use chiplane_core::conformance;
use chiplane_hw::devices::cuda::CudaChip;

#[test]
fn cuda_device_passes_the_conformance_suite_or_reports_no_driver() {
    let chip = match CudaChip::new(0) {
        Ok(chip) => chip,
        Err(e) => {
            assert_eq!(e.kind, ChipErrorKind::Device, "{e}");
            eprintln!("no CUDA device here ({e}); only the typed construction error was checked");
            return;
        }
    };
    let report = conformance::run_all(&chip).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.device, "cuda");
    assert!(report.cancel_observed);
}
