//! The public API at both levels against any spec and any arguments
//! (issue: a kernel name of 257 to ~4,000 bytes passed the L3 call and then
//! killed the driver): whatever the lengths, from 0 to past every limit of
//! the frame format, a register and a run either are refused at the call
//! with a typed error or complete (with a typed error or a result), never
//! an endpoint failure, and the worker then still runs a good task.

mod common;

use std::sync::OnceLock;

use chiplane_core::chip::{CallableSpec, RunConfig, TaskArgs};
use chiplane_core::conc::{L2Worker, NodeConfig, Worker};
use chiplane_core::error::{RegisterError, RunError};
use chiplane_core::frame::{CONTROL_FRAME_BYTES, KERNEL_MAX_BYTES, TASK_FRAME_BYTES};
use chiplane_core::kernels::{self, REPEAT_VECTOR_ADD, VECTOR_ADD};
use chiplane_hw::devices::host::HostChip;
use chiplane_hw::l3::L3Worker;
use proptest::prelude::*;

/// Kernel names: the catalogue's, and strings of any length up to past
/// `KERNEL_MAX_BYTES` (and far past it).
fn arb_kernel() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(VECTOR_ADD.to_string()),
        Just(REPEAT_VECTOR_ADD.to_string()),
        (0..=KERNEL_MAX_BYTES + 8).prop_map(|n| "k".repeat(n)),
        prop::sample::select(vec![KERNEL_MAX_BYTES, KERNEL_MAX_BYTES + 1, 300, 4000, 5000]).prop_map(|n| "x".repeat(n)),
    ]
}

/// Parameter lists from empty to past the control frame.
fn arb_params() -> impl Strategy<Value = Vec<u64>> {
    prop_oneof![
        (1u64..=64).prop_map(|n| vec![n]),
        prop::collection::vec(any::<u64>(), 0..4),
        (CONTROL_FRAME_BYTES / 8 - 40..CONTROL_FRAME_BYTES / 8 + 8).prop_map(|n| vec![4; n]),
    ]
}

fn arb_spec() -> impl Strategy<Value = CallableSpec> {
    (arb_kernel(), arb_params()).prop_map(|(k, p)| CallableSpec::chip(k, p))
}

/// Arguments from none to past the task frame.
fn arb_args() -> impl Strategy<Value = TaskArgs> {
    let tensor = |max: usize| (0..max).prop_map(|n| vec![0.5f32; n]);
    prop_oneof![
        (1usize..=64).prop_map(|n| TaskArgs { tensors: vec![vec![1.0; n], vec![2.0; n]], scalars: vec![] }),
        (prop::collection::vec(tensor(64), 0..4), prop::collection::vec(any::<u64>(), 0..4))
            .prop_map(|(tensors, scalars)| TaskArgs { tensors, scalars }),
        (TASK_FRAME_BYTES / 4 - 32..TASK_FRAME_BYTES / 4 + 32)
            .prop_map(|n| TaskArgs { tensors: vec![vec![0.0; n]], scalars: vec![] }),
        (TASK_FRAME_BYTES / 8 - 16..TASK_FRAME_BYTES / 8 + 16)
            .prop_map(|n| TaskArgs { tensors: vec![], scalars: vec![1; n] }),
    ]
}

fn no_endpoint_register(e: &RegisterError) -> bool {
    !matches!(e, RegisterError::Endpoint(_))
}

fn no_endpoint_run(e: &RunError) -> bool {
    !matches!(e, RunError::Endpoint(_))
}

/// One case on any worker: refused at the call or completed, never an
/// endpoint failure; then a good task runs.
fn case<W: Worker>(w: &W, spec: CallableSpec, args: TaskArgs) -> Result<(), TestCaseError> {
    match w.register(spec) {
        Err(e) => prop_assert!(no_endpoint_register(&e), "register: {e:?}"),
        Ok(h) => {
            match w.run(h, args, RunConfig::default()) {
                Ok(_) => {}
                Err(e) => prop_assert!(no_endpoint_run(&e), "run: {e:?}"),
            }
            prop_assert!(w.unregister(h).is_ok());
        }
    }
    let good = CallableSpec::chip(VECTOR_ADD, vec![4]);
    let h = w.register(good.clone()).map_err(|e| TestCaseError::fail(format!("good register: {e:?}")))?;
    let a = TaskArgs { tensors: vec![vec![1.0; 4], vec![0.5; 4]], scalars: vec![] };
    let out = w.run(h, a.clone(), RunConfig::default()).map_err(|e| TestCaseError::fail(format!("good run: {e:?}")))?;
    prop_assert_eq!(kernels::max_diff(&out, &kernels::reference(&good, &a).unwrap()), 0.0);
    prop_assert!(w.unregister(h).is_ok());
    Ok(())
}

fn l2() -> &'static L2Worker<HostChip> {
    static W: OnceLock<L2Worker<HostChip>> = OnceLock::new();
    W.get_or_init(|| L2Worker::new(HostChip::new().unwrap(), NodeConfig::default()))
}

fn l3() -> &'static L3Worker {
    static W: OnceLock<L3Worker> = OnceLock::new();
    W.get_or_init(|| common::start(1))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn l2_any_spec_and_args_is_refused_or_completes(spec in arb_spec(), args in arb_args()) {
        case(l2(), spec, args)?;
    }

    #[test]
    fn l3_any_spec_and_args_is_refused_or_completes(spec in arb_spec(), args in arb_args()) {
        case(l3(), spec, args)?;
        prop_assert_eq!(l3().chip_error(0), None, "the chip child serves on");
    }
}
