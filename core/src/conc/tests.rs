//! Plain-thread tests of the node and the worker (the interleavings are the
//! loom and shuttle models' job, in models/tests/).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::sync::mpsc;
use std::sync::Mutex as StdMutex;

use super::node::NodeConfig;
use super::worker::L2Worker as Worker;
use crate::chip::{CallableSpec, CancelProbe, Chip, ChipError, ChipErrorKind, RunConfig, RunOutput, TaskArgs};
use crate::error::{EndpointError, HandleError, RegisterError, RunError, UnregisterError};
use crate::ids::{CallableHandle, SlotIndex, WorkerId};
use crate::slot::{SlotLimits, SlotState};

/// Prepares `gate` kernels only after a message on the gate; `bad` fails.
#[derive(Default)]
struct GateChip {
    gate: StdMutex<Option<mpsc::Receiver<()>>>,
    released: crate::sync::AtomicUsize,
    cancels_seen: crate::sync::AtomicUsize,
}

impl Chip for GateChip {
    type Prepared = u32;

    fn name(&self) -> &str {
        "gate"
    }

    fn prepare(&self, spec: &CallableSpec, cancel: &dyn CancelProbe) -> Result<u32, ChipError> {
        if spec.kernel == "gate" {
            let rx = self.gate.lock().unwrap().take().expect("one gated prepare");
            rx.recv().unwrap();
            if cancel.is_cancelled() {
                self.cancels_seen.fetch_add(1, crate::sync::Ordering::Relaxed);
                return Err(ChipError::new(ChipErrorKind::Cancelled, "cancelled"));
            }
        }
        if spec.kernel == "bad" {
            return Err(ChipError::new(ChipErrorKind::InvalidSpec, "bad"));
        }
        Ok(spec.params[0] as u32)
    }

    fn run(&self, p: &u32, _args: &TaskArgs, _config: &RunConfig) -> Result<RunOutput, ChipError> {
        Ok(RunOutput { tensors: vec![vec![*p as f32]] })
    }

    fn release(&self, _p: u32) {
        self.released.fetch_add(1, crate::sync::Ordering::Relaxed);
    }
}

fn config(capacity: usize) -> NodeConfig {
    NodeConfig { worker: WorkerId(7), limits: SlotLimits { capacity, ..SlotLimits::default() }, events: None }
}

fn go() -> (TaskArgs, RunConfig) {
    (TaskArgs::default(), RunConfig::default())
}

#[test]
fn typed_errors_at_the_call() {
    let w = Worker::new(GateChip::default(), config(1));
    let orch = CallableSpec { kind: crate::chip::TargetKind::Orchestration, kernel: "x".into(), params: vec![] };
    assert_eq!(w.register_async(orch).err(), Some(RegisterError::WrongTarget));
    let h = w.register(CallableSpec::chip("ok", vec![3])).unwrap();
    assert_eq!(w.register_async(CallableSpec::chip("ok", vec![4])).err(), Some(RegisterError::TableFull));
    let foreign = CallableHandle { worker: WorkerId(8), ..h };
    let (a, c) = go();
    assert!(matches!(w.run_async(foreign, a, c), Err(RunError::Handle(HandleError::Foreign { .. }))));
    let out_of_range = CallableHandle { index: SlotIndex(5), ..h };
    assert_eq!(w.unregister(out_of_range), Err(UnregisterError::Handle(HandleError::OutOfRange)));
    let (a, c) = go();
    assert_eq!(w.run(h, a, c).unwrap().tensors, vec![vec![3.0]]);
    w.unregister(h).unwrap();
    let (a, c) = go();
    assert_eq!(w.run(h, a, c), Err(RunError::NotRunnable(SlotState::Empty)));
    assert_eq!(w.unregister(h), Err(UnregisterError::NotRegistered));
    assert_eq!(w.node().chip().released.load(crate::sync::Ordering::Relaxed), 1);
}

#[test]
fn failed_prepare() {
    let w = Worker::new(GateChip::default(), config(2));
    // Async: the registration stays (FAILED) until unregistered.
    let pending = w.register_async(CallableSpec::chip("bad", vec![1])).unwrap();
    let h = pending.handle();
    assert!(matches!(pending.wait(), Err(RegisterError::PrepareFailed(_))));
    let (a, c) = go();
    assert!(matches!(w.run_async(h, a, c), Err(RunError::PrepareFailed(_))));
    // A second register of the failed digest reports the recorded error.
    assert!(matches!(w.register(CallableSpec::chip("bad", vec![1])), Err(RegisterError::PrepareFailed(_))));
    assert_eq!(w.node().slot(h.index).unwrap().registrations, 1, "sync register ended its own registration");
    w.unregister(h).unwrap();
    assert_eq!(w.node().slot(h.index).unwrap().state, SlotState::Empty);
    // Sync: the registration is ended before the error returns.
    assert!(matches!(w.register(CallableSpec::chip("bad", vec![1])), Err(RegisterError::PrepareFailed(_))));
    assert_eq!(w.node().slot(SlotIndex(0)).unwrap().state, SlotState::Empty);
}

#[test]
fn shutdown_resolves_everything_outstanding() {
    let chip = GateChip::default();
    let (tx, rx) = mpsc::channel();
    *chip.gate.lock().unwrap() = Some(rx);
    let w = Worker::new(chip, config(2));
    let mut reg = w.register_async(CallableSpec::chip("gate", vec![1])).unwrap();
    let h = reg.handle();
    let (a, c) = go();
    let mut run = w.run_async(h, a, c).unwrap();
    assert_eq!(run.try_wait(), None, "the run waits for the prepare");
    assert_eq!(reg.try_wait(), None);
    // Shut down from another thread: it blocks until the gated prepare returns.
    let stopper = std::thread::spawn(move || w.shutdown());
    assert_eq!(
        run.wait_timeout(std::time::Duration::from_secs(30)),
        Some(Err(RunError::Endpoint(EndpointError::ShutDown)))
    );
    assert_eq!(
        reg.wait_timeout(std::time::Duration::from_secs(30)),
        Some(Err(RegisterError::Endpoint(EndpointError::ShutDown)))
    );
    assert_eq!(run.try_wait(), None, "a handle resolves once");
    tx.send(()).unwrap();
    stopper.join().unwrap();
}

/// A device that panics (breaking the `Chip` contract): the lane survives,
/// the handle resolves with a typed device error, the worker serves on.
#[test]
fn a_panicking_device_is_a_typed_error_not_a_hang() {
    struct Panicky;
    impl Chip for Panicky {
        type Prepared = ();
        fn name(&self) -> &str {
            "panicky"
        }
        fn prepare(&self, spec: &CallableSpec, _cancel: &dyn CancelProbe) -> Result<(), ChipError> {
            assert!(spec.kernel != "boom-prepare", "prepare exploded");
            Ok(())
        }
        fn run(&self, _p: &(), args: &TaskArgs, _config: &RunConfig) -> Result<RunOutput, ChipError> {
            assert!(args.scalars.first() != Some(&666), "run exploded");
            Ok(RunOutput::default())
        }
        fn release(&self, _p: ()) {}
    }
    let w = Worker::new(Panicky, config(4));
    let e = w.register(CallableSpec::chip("boom-prepare", vec![])).unwrap_err();
    assert!(
        matches!(&e, RegisterError::PrepareFailed(c) if c.kind == ChipErrorKind::Device && c.detail.contains("prepare exploded")),
        "{e:?}"
    );
    let h = w.register(CallableSpec::chip("fine", vec![])).unwrap();
    let boom = TaskArgs { tensors: vec![], scalars: vec![666] };
    let r = w.run(h, boom, RunConfig::default());
    assert!(matches!(&r, Err(RunError::Chip(c)) if c.detail.contains("run exploded")), "{r:?}");
    assert!(w.run(h, TaskArgs::default(), RunConfig::default()).is_ok(), "the lane lives on");
    w.unregister(h).unwrap();
}
