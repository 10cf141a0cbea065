//! The L3 worker end to end: chip child processes on the host device,
//! reached through memfd mailboxes.

use chiplane_core::chip::{CallableSpec, RunConfig, TaskArgs};
use chiplane_core::error::{ControlError, HandleError, RegisterError, RunError};
use chiplane_core::kernels::{self, HEAVY_PREPARE, REPEAT_VECTOR_ADD, VECTOR_ADD};
use chiplane_hw::l3::{L3Config, L3Error, L3Worker};
use std::path::PathBuf;

fn config(chips: usize) -> L3Config {
    L3Config { chips, child_exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_chiplane-child"))), ..L3Config::default() }
}

fn args(n: usize, repeat: Option<u64>) -> TaskArgs {
    let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
    let b: Vec<f32> = (0..n).map(|i| 1.0 + (i % 7) as f32).collect();
    TaskArgs { tensors: vec![a, b], scalars: repeat.into_iter().collect() }
}

#[test]
fn register_run_unregister_across_processes() {
    let w = L3Worker::new(config(1)).unwrap();
    let spec = CallableSpec::chip(VECTOR_ADD, vec![64]);
    let h = w.register(0, spec.clone()).unwrap();
    assert_eq!(Some(h.worker), w.chip_worker(0));
    let a = args(64, None);
    let sent = a.clone();
    let out = w.run(move |o| o.submit(0, h, sent, RunConfig::default()).unwrap());
    let got = out.task(&out.value).as_ref().unwrap();
    assert_eq!(kernels::max_diff(got, &kernels::reference(&spec, &a).unwrap()), 0.0);
    w.unregister(0, h).unwrap();
    // The old handle is refused by the child now (typed error, not a hang).
    let out = w.run(move |o| o.submit(0, h, args(64, None), RunConfig::default()).unwrap());
    assert!(matches!(out.tasks[0], Err(RunError::NotRunnable(_)) | Err(RunError::Handle(_))), "{:?}", out.tasks);
}

#[test]
fn seed_pipeline_register_during_task_running_on_two_chips() {
    let w = L3Worker::new(config(2)).unwrap();
    let c1 = CallableSpec::chip(REPEAT_VECTOR_ADD, vec![1024]);
    let c2 = CallableSpec::chip(HEAVY_PREPARE, vec![1024, 1 << 20]);
    let h1: Vec<_> = (0..2).map(|c| w.register(c, c1.clone()).unwrap()).collect();
    let a1 = args(1024, Some(2000));
    let sent = a1.clone();
    let hs = h1.clone();
    let first = w.run_async(move |o| {
        (0..2).map(|c| o.submit(c, hs[c], sent.clone(), RunConfig::default()).unwrap()).collect::<Vec<_>>()
    });
    // Registers enter as controls while C1 runs on each chip.
    let regs: Vec<_> = (0..2).map(|c| w.register_async(c, c2.clone()).unwrap()).collect();
    let h2: Vec<_> = regs.into_iter().map(|r| r.wait().unwrap()).collect();
    let a2 = args(1024, None);
    let sent2 = a2.clone();
    let second = w.run_async(move |o| {
        (0..2).map(|c| o.submit(c, h2[c], sent2.clone(), RunConfig::default()).unwrap()).collect::<Vec<_>>()
    });
    let (r1, r2) = (first.wait(), second.wait());
    let (ref1, ref2) = (kernels::reference(&c1, &a1).unwrap(), kernels::reference(&c2, &a2).unwrap());
    for t in &r1.tasks {
        assert_eq!(kernels::max_diff(t.as_ref().unwrap(), &ref1), 0.0);
    }
    for t in &r2.tasks {
        assert_eq!(kernels::max_diff(t.as_ref().unwrap(), &ref2), 0.0);
    }
}

#[test]
fn bad_input_is_a_typed_error_at_the_call_or_from_the_child() {
    let w = L3Worker::new(config(1)).unwrap();
    let mut orch_spec = CallableSpec::chip(VECTOR_ADD, vec![8]);
    orch_spec.kind = chiplane_core::chip::TargetKind::Orchestration;
    assert_eq!(w.register_async(0, orch_spec).unwrap_err(), L3Error::from(RegisterError::WrongTarget));
    assert!(matches!(
        w.register_async(3, CallableSpec::chip(VECTOR_ADD, vec![8])).unwrap_err(),
        L3Error::NoSuchChip { chip: 3, chips: 1 }
    ));
    // Prepare fails in the child (unknown kernel): typed, and the sync
    // register ended the registration itself.
    match w.register(0, CallableSpec::chip("no_such_kernel", vec![8])) {
        Err(L3Error::Control(ControlError::Register(RegisterError::PrepareFailed(e)))) => {
            assert_eq!(e.kind, chiplane_core::chip::ChipErrorKind::InvalidSpec)
        }
        other => panic!("{other:?}"),
    }
    let h = w.register(0, CallableSpec::chip(VECTOR_ADD, vec![8])).unwrap();
    let foreign = chiplane_core::Handle { worker: chiplane_core::WorkerId(7), ..h };
    let out = w.run(move |o| {
        let bad_chip = o.submit(5, h, args(8, None), RunConfig::default()).unwrap_err();
        let bad_handle = o.submit(0, foreign, args(8, None), RunConfig::default()).unwrap_err();
        let bad_args = o.submit(0, h, args(3, None), RunConfig::default()).unwrap();
        (bad_chip, bad_handle, bad_args)
    });
    assert_eq!(out.value.0, RunError::Handle(HandleError::OutOfRange));
    assert!(matches!(out.value.1, RunError::Handle(HandleError::Foreign { .. })));
    assert!(
        matches!(out.task(&out.value.2), Err(RunError::Chip(e)) if e.kind == chiplane_core::chip::ChipErrorKind::InvalidArgs)
    );
    // A memory control reaches the child at IDLE.
    w.memory_control(0, 4096, false).unwrap();
}

/// A chip child whose parent process exits stops by itself (it watches a
/// pidfd of its parent), whichever thread spawned it: here the parent is a
/// shell that starts the child in the background and exits at once.
/// (Without `--parent` the same child keeps serving: this test then fails.)
#[test]
fn a_chip_child_does_not_outlive_its_parent() {
    use chiplane_hw::l3::memory::Mailbox;
    use chiplane_hw::process::ChildCommand;
    let mailbox = Mailbox::create(4).unwrap();
    let pidfile = std::env::temp_dir().join(format!("chiplane-orphan-{}.pid", std::process::id()));
    let script = format!("\"$0\" --device host --parent $$ \"$@\" & echo $! > {}; exit 0", pidfile.display());
    let mut sh = ChildCommand::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_chiplane-child"))
        .quiet()
        .spawn(mailbox.shm())
        .unwrap();
    assert!(sh.wait_timeout(std::time::Duration::from_secs(20)).unwrap().is_some_and(|e| e.is_success()));
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let _ = std::fs::remove_file(&pidfile);
    let gone = || match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for its new parent to reap it has exited too.
        Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !gone() {
        assert!(std::time::Instant::now() < deadline, "the orphaned chip child {pid} kept running");
        std::thread::yield_now();
    }
}
