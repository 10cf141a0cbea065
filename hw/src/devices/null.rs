//! The null device: prepares, runs and releases nothing, at once. It
//! computes no kernel (it does not pass the conformance suite, which checks
//! results); it exists to measure what the runtime itself costs
//! (`cargo bench -p chiplane-hw --bench control_rtt`: the L3 per-run
//! overhead with a no-op chip).

use chiplane_core::{CallableSpec, CancelProbe, Chip, ChipError, RunConfig, RunOutput, TaskArgs};

/// See the module doc.
#[derive(Clone, Copy, Debug, Default)]
pub struct NullChip;

impl Chip for NullChip {
    type Prepared = ();

    fn name(&self) -> &str {
        "null"
    }

    fn prepare(&self, _spec: &CallableSpec, _cancel: &dyn CancelProbe) -> Result<(), ChipError> {
        Ok(())
    }

    fn run(&self, _prepared: &(), _args: &TaskArgs, _config: &RunConfig) -> Result<RunOutput, ChipError> {
        Ok(RunOutput::default())
    }

    /// Every run is short (it does nothing), unless
    /// `CHIPLANE_RUN_INLINE_OPS=0` sends every run to the run lane.
    fn run_inline(&self, _prepared: &(), _args: &TaskArgs) -> bool {
        crate::tune::run_inline_ops_max() > 0
    }

    fn release(&self, _prepared: ()) {}
}
