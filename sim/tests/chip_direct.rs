//! The sim chip as a normal `Chip`: prepare on one thread while another runs,
//! as the lanes do (the conformance suite's pattern).

use std::sync::Arc;

use chiplane_core::chip::NeverCancel;
use chiplane_core::kernels::{self, REPEAT_VECTOR_ADD, VECTOR_ADD};
use chiplane_core::{CallableSpec, Chip, RunConfig, TaskArgs};
use chiplane_sim::chip::SimChip;

#[test]
fn prepare_and_run_concurrently_from_two_threads() {
    let chip = Arc::new(SimChip::new());
    let c1 = CallableSpec::chip(REPEAT_VECTOR_ADD, vec![8]);
    let a1 = chip.prepare(&c1, &NeverCancel).unwrap();
    let args = TaskArgs { tensors: vec![vec![1.0; 8], vec![0.5; 8]], scalars: vec![3] };
    let runner = {
        let chip = Arc::clone(&chip);
        let args = args.clone();
        std::thread::spawn(move || {
            let mut outs = Vec::new();
            for _ in 0..200 {
                outs.push(chip.run(&a1, &args, &RunConfig::default()).unwrap());
            }
            (a1, outs)
        })
    };
    let mut prepared = Vec::new();
    for n in 1..=200u64 {
        prepared.push(chip.prepare(&CallableSpec::chip(VECTOR_ADD, vec![n % 16 + 1]), &NeverCancel).unwrap());
    }
    let (a1, outs) = runner.join().unwrap();
    let want = kernels::reference(&c1, &args).unwrap();
    assert!(outs.iter().all(|o| *o == want));
    chip.release(a1);
    for a in prepared {
        chip.release(a);
    }
    assert_eq!(chip.live(), 0);
    assert_eq!(chip.prepared(), chip.released());
    assert!(chip.violations().is_empty());
}

#[test]
fn release_while_in_use_is_reported() {
    let chip = SimChip::new();
    let a = chip.prepare(&CallableSpec::chip(VECTOR_ADD, vec![2]), &NeverCancel).unwrap();
    chip.begin_use(a.id);
    chip.release(a);
    assert!(chip.first_violation().unwrap().contains("while a run uses it"));
}
