//! The conformance suite run through L3: a `Chip` whose every call crosses a
//! memfd mailbox to a chip child process serving the host device. prepare =
//! `register` (a control; the child prepares on its register lane and the
//! settlement comes back through the completion ring), run = an
//! orchestration function submitting one task, release = `unregister`
//! (final: the child frees the artifact). The suite calls prepare and run
//! from two threads at once, so controls enter during TASK_RUNNING.

mod common;

use std::sync::Arc;

use chiplane_core::chip::{CallableSpec, CancelProbe, Chip, ChipError, ChipErrorKind, RunConfig, RunOutput, TaskArgs};
use chiplane_core::conc::Worker;
use chiplane_core::conformance;
use chiplane_core::error::{RegisterError, RunError};
use chiplane_core::CallableHandle;
use chiplane_hw::l3::L3Worker;

struct L3Chip {
    worker: Arc<L3Worker>,
}

fn device(detail: String) -> ChipError {
    ChipError::new(ChipErrorKind::Device, detail)
}

impl Chip for L3Chip {
    type Prepared = CallableHandle;

    fn name(&self) -> &str {
        "l3-host"
    }

    fn prepare(&self, spec: &CallableSpec, cancel: &dyn CancelProbe) -> Result<CallableHandle, ChipError> {
        // The probe is polled once, at the call (it cannot cross the process
        // boundary); the child's prepare polls its own cancel flag, which
        // an unregister during PREPARING raises.
        if cancel.is_cancelled() {
            return Err(ChipError::new(ChipErrorKind::Cancelled, "cancelled before the register control"));
        }
        match self.worker.register(spec.clone()) {
            Ok(h) => Ok(h),
            Err(RegisterError::PrepareFailed(e)) => Err(e),
            Err(e) => Err(device(format!("register: {e}"))),
        }
    }

    fn run(&self, h: &CallableHandle, args: &TaskArgs, config: &RunConfig) -> Result<RunOutput, ChipError> {
        match Worker::run(&*self.worker, *h, args.clone(), *config) {
            Ok(o) => Ok(o),
            Err(RunError::Chip(e)) => Err(e),
            Err(e) => Err(device(format!("run: {e}"))),
        }
    }

    fn release(&self, h: CallableHandle) {
        self.worker.unregister(h).expect("unregister of a prepared artifact");
    }
}

#[test]
fn host_device_through_l3_passes_the_conformance_suite() {
    let chip = L3Chip { worker: Arc::new(common::start(1)) };
    let report = conformance::run_all(&chip).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.device, "l3-host");
    assert!(report.runs > 2 * report.concurrent_iterations, "{report:?}");
    assert_eq!(chip.worker.chip_error(0), None, "the child served the whole suite");
}
