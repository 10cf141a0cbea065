//! The one conformance suite (core/src/conformance.rs), run against the sim
//! chip called directly as a `Chip` (the same suite runs against the host
//! device in hw/tests/conformance_host.rs and CUDA when present).
use chiplane_core::conformance::run_all;
use chiplane_sim::chip::SimChip;

#[test]
fn sim_chip_passes_the_conformance_suite() {
    let chip = SimChip::new();
    match run_all(&chip) {
        Ok(report) => println!("sim chip conformance: {report:?}"),
        Err(f) => panic!("sim chip fails conformance: {f:?}"),
    }
}
