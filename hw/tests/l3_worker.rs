//! The L3 worker end to end: chip child processes on the host device,
//! reached through memfd mailboxes.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chiplane_core::chip::{CallableSpec, ChipErrorKind, RunConfig, TargetKind};
use chiplane_core::conc::{L2Worker, NodeConfig, Worker};
use chiplane_core::error::{HandleError, Limit, RegisterError, RunError, TooLarge, UnregisterError};
use chiplane_core::frame::KERNEL_MAX_BYTES;
use chiplane_core::kernels::{self, HEAVY_PREPARE, REPEAT_VECTOR_ADD, VECTOR_ADD};
use chiplane_core::CallableHandle;
use chiplane_hw::devices::host::HostChip;
use chiplane_hw::l3::L3Worker;
use common::{args, link, start};

#[test]
fn register_run_unregister_across_processes() {
    let w = start(1);
    let spec = CallableSpec::chip(VECTOR_ADD, vec![64]);
    let h = w.register(spec.clone()).unwrap();
    assert_eq!(Some(h.worker), w.chip_worker(0));
    let a = args(64, None);
    let sent = a.clone();
    let out = w.run(move |o| o.submit(h, sent, RunConfig::default()).unwrap());
    let got = out.task(&out.value).as_ref().unwrap();
    assert_eq!(kernels::max_diff(got, &kernels::reference(&spec, &a).unwrap()), 0.0);
    // The same through the worker trait (one task, through the run queue).
    let got = Worker::run(&w, h, a.clone(), RunConfig::default()).unwrap();
    assert_eq!(kernels::max_diff(&got, &kernels::reference(&spec, &a).unwrap()), 0.0);
    w.unregister(h).unwrap();
    // The old handle is refused by the child now (typed error, not a hang).
    let r = Worker::run(&w, h, args(64, None), RunConfig::default());
    assert!(matches!(r, Err(RunError::NotRunnable(_)) | Err(RunError::Handle(_))), "{r:?}");
}

#[test]
fn seed_pipeline_register_during_task_running_on_two_chips() {
    let w = start(2);
    let c1 = CallableSpec::chip(REPEAT_VECTOR_ADD, vec![1024]);
    let c2 = CallableSpec::chip(HEAVY_PREPARE, vec![1024, 1 << 20]);
    let h1: Vec<_> = (0..2).map(|c| w.register_sync(c, c1.clone()).unwrap()).collect();
    assert_ne!(h1[0].worker, h1[1].worker, "each chip child has its own worker id");
    let a1 = args(1024, Some(2000));
    let sent = a1.clone();
    let hs = h1.clone();
    let first = w.run_async(move |o| {
        hs.iter().map(|&h| o.submit(h, sent.clone(), RunConfig::default()).unwrap()).collect::<Vec<_>>()
    });
    // Registers enter as controls while C1 runs on each chip.
    let regs: Vec<_> = (0..2).map(|c| w.register_on(c, c2.clone()).unwrap()).collect();
    let h2: Vec<_> = regs.into_iter().map(|r| r.wait().unwrap()).collect();
    let a2 = args(1024, None);
    let sent2 = a2.clone();
    let second = w.run_async(move |o| {
        h2.iter().map(|&h| o.submit(h, sent2.clone(), RunConfig::default()).unwrap()).collect::<Vec<_>>()
    });
    let (r1, r2) = (first.wait(), second.wait());
    let (ref1, ref2) = (kernels::reference(&c1, &a1).unwrap(), kernels::reference(&c2, &a2).unwrap());
    for (t, chip) in r1.tasks.iter().zip(0..) {
        assert_eq!(kernels::max_diff(t.as_ref().unwrap(), &ref1), 0.0);
        assert_eq!(r1.value[chip].chip, chip, "the chip came from the handle");
    }
    for t in &r2.tasks {
        assert_eq!(kernels::max_diff(t.as_ref().unwrap(), &ref2), 0.0);
    }
}

#[test]
fn bad_input_is_a_typed_error_at_the_call_or_from_the_child() {
    let w = start(1);
    let mut orch_spec = CallableSpec::chip(VECTOR_ADD, vec![8]);
    orch_spec.kind = TargetKind::Orchestration;
    assert_eq!(w.register_async(orch_spec).unwrap_err(), RegisterError::WrongTarget);
    assert_eq!(
        w.register_on(3, CallableSpec::chip(VECTOR_ADD, vec![8])).unwrap_err(),
        RegisterError::NoSuchChip { chip: 3, chips: 1 }
    );
    // Prepare fails in the child (unknown kernel): typed, and the sync
    // register ended the registration itself.
    match w.register(CallableSpec::chip("no_such_kernel", vec![8])) {
        Err(RegisterError::PrepareFailed(e)) => assert_eq!(e.kind, ChipErrorKind::InvalidSpec),
        other => panic!("{other:?}"),
    }
    let h = w.register(CallableSpec::chip(VECTOR_ADD, vec![8])).unwrap();
    let foreign = CallableHandle { worker: chiplane_core::WorkerId(7), ..h };
    let out = w.run(move |o| {
        let bad_handle = o.submit(foreign, args(8, None), RunConfig::default()).unwrap_err();
        let bad_args = o.submit(h, args(3, None), RunConfig::default()).unwrap();
        (bad_handle, bad_args)
    });
    assert!(matches!(out.value.0, RunError::Handle(HandleError::Foreign { .. })));
    assert!(matches!(out.task(&out.value.1), Err(RunError::Chip(e)) if e.kind == ChipErrorKind::InvalidArgs));
    assert!(matches!(w.unregister(foreign), Err(UnregisterError::Handle(HandleError::Foreign { .. }))));
    // A memory control reaches the child at IDLE.
    w.memory_control(0, 4096, false).unwrap();
}

/// Issue: a kernel name of 257 to about 4,000 bytes passed the call and
/// then panicked the driver thread; every later call hung. Now every limit
/// is checked at the call, naming the limit, and the worker keeps serving.
#[test]
fn every_frame_limit_is_checked_at_the_call_and_the_worker_keeps_serving() {
    let w = start(1);
    for len in [KERNEL_MAX_BYTES + 1, 300, 4000, 5000] {
        let r = w.register_async(CallableSpec::chip("k".repeat(len), vec![]));
        assert_eq!(
            r.unwrap_err(),
            RegisterError::TooLarge(TooLarge { limit: Limit::KernelName, bytes: len, max: KERNEL_MAX_BYTES })
        );
    }
    // A kernel name at the limit crosses the mailbox (the child's prepare
    // refuses the unknown kernel with a typed error).
    let r = w.register(CallableSpec::chip("k".repeat(KERNEL_MAX_BYTES), vec![]));
    assert!(matches!(r, Err(RegisterError::PrepareFailed(_))), "{r:?}");
    let r = w.register_async(CallableSpec::chip(VECTOR_ADD, vec![0; 600]));
    assert!(matches!(r, Err(RegisterError::TooLarge(TooLarge { limit: Limit::ControlFrame, .. }))), "{r:?}");
    let h = w.register(CallableSpec::chip(VECTOR_ADD, vec![16])).unwrap();
    let huge = chiplane_core::TaskArgs { tensors: vec![vec![0.0; 20_000]], scalars: vec![] };
    let r = Worker::run_async(&w, h, huge, RunConfig::default());
    assert!(matches!(r, Err(RunError::TooLarge(TooLarge { limit: Limit::TaskFrame, .. }))), "{r:?}");
    let spec = CallableSpec::chip(VECTOR_ADD, vec![16]);
    let a = args(16, None);
    let out = Worker::run(&w, h, a.clone(), RunConfig::default()).unwrap();
    assert_eq!(kernels::max_diff(&out, &kernels::reference(&spec, &a).unwrap()), 0.0, "the worker still serves");
    assert_eq!(w.chip_error(0), None);
}

/// Issue: worker ids collided (every default L2 node had `WorkerId(0)`; two
/// L3 workers in one process got the same id), so one worker's handle ran
/// or unregistered another's callable. Handles of any other worker, level
/// or incarnation are `Foreign` now.
#[test]
fn handles_never_cross_workers_levels_or_incarnations() {
    let spec = CallableSpec::chip(VECTOR_ADD, vec![16]);
    let l3: Vec<L3Worker> = (0..2).map(|_| start(1)).collect();
    let l2: Vec<L2Worker<HostChip>> =
        (0..3).map(|_| L2Worker::new(HostChip::new().unwrap(), NodeConfig::default())).collect();
    // Every worker registers the same callable: same slot 0, generation 1.
    let mut handles: Vec<CallableHandle> = l3.iter().map(|w| w.register(spec.clone()).unwrap()).collect();
    handles.extend(l2.iter().map(|w| w.register(spec.clone()).unwrap()));
    let ids: std::collections::BTreeSet<_> = handles.iter().map(|h| h.worker).collect();
    assert_eq!(ids.len(), handles.len(), "every worker has its own id");
    assert!(handles.iter().all(|h| (h.index.0, h.generation.0) == (0, 1)), "same slot and generation everywhere");
    let a = args(16, None);
    for (i, w) in l3.iter().enumerate() {
        for (j, &h) in handles.iter().enumerate() {
            let r = Worker::run(w, h, a.clone(), RunConfig::default());
            assert_eq!(r.is_ok(), i == j, "L3 worker {i} with handle {j}: {r:?}");
            if i != j {
                assert!(matches!(r, Err(RunError::Handle(HandleError::Foreign { .. }))), "{r:?}");
                let u = w.unregister(h);
                assert!(matches!(u, Err(UnregisterError::Handle(HandleError::Foreign { .. }))), "{u:?}");
            }
        }
    }
    for (i, w) in l2.iter().enumerate() {
        for (j, &h) in handles.iter().enumerate() {
            let r = w.run(h, a.clone(), RunConfig::default());
            assert_eq!(r.is_ok(), i + l3.len() == j, "L2 worker {i} with handle {j}: {r:?}");
            if r.is_err() {
                assert!(matches!(r, Err(RunError::Handle(HandleError::Foreign { .. }))), "{r:?}");
                assert!(matches!(w.unregister(h), Err(UnregisterError::Handle(HandleError::Foreign { .. }))));
            }
        }
    }
    // Every registration is intact: each owner unregisters its own handle.
    for (w, h) in l3.iter().zip(&handles) {
        w.unregister(*h).unwrap();
    }
    for (w, h) in l2.iter().zip(&handles[l3.len()..]) {
        w.unregister(*h).unwrap();
    }
    // Restarts: every incarnation has a fresh id; old handles are foreign.
    let w = &l3[0];
    let mut old = Vec::new();
    for _ in 0..3 {
        old.push(w.register(spec.clone()).unwrap());
        w.restart(0).unwrap();
        let fresh = w.register(spec.clone()).unwrap();
        for &h in &old {
            assert_ne!(h.worker, fresh.worker);
            assert!(matches!(
                Worker::run(w, h, a.clone(), RunConfig::default()),
                Err(RunError::Handle(HandleError::Foreign { .. }))
            ));
        }
        w.unregister(fresh).unwrap();
    }
}

/// The L3 worker hw starts runs core's parent loops and core's chip child:
/// by type (the worker is core's `L3Worker`, its links core's `Link`) and by
/// behaviour (once idle, the child's serve loop sleeps on the region's
/// child doorbell and the parent's driver waits idle and unannounced,
/// leaving the parent doorbell without sleepers, so the child's next reply
/// makes no futex call: only core's loops announce themselves there).
#[test]
fn the_l3_worker_runs_cores_driver_and_serve_loop() {
    let w: chiplane_core::conc::l3::L3Worker<chiplane_hw::l3::ProcessSpawner> = start(1);
    let link: Arc<chiplane_core::conc::parent::Link<_, _, chiplane_hw::l3::memory::SysFutex>> = link(&w, 0);
    let h = w.register(CallableSpec::chip(VECTOR_ADD, vec![16])).unwrap();
    Worker::run(&w, h, args(16, None), RunConfig::default()).unwrap();
    let region = link.region();
    let deadline = Instant::now() + common::BOUND;
    let asleep = || {
        region.child_bell().sleepers() == 1
            && link.driver_sleep() == chiplane_core::conc::parent::DriverSleep::Idle
            && region.parent_bell().sleepers() == 0
    };
    while !asleep() {
        assert!(Instant::now() < deadline, "the loops never went to sleep on their doorbells");
        std::thread::sleep(Duration::from_millis(1));
    }
    // A ring from the parent wakes the child: a control round trip works.
    w.unregister(h).unwrap();
}

/// Several callers on one chip at once, each waiting for its own handles
/// one after the other while the others' steps resolve them too (a step
/// rings the parent's bell for another caller asleep in `wait_until`), a
/// pipeline of outstanding runs handed back and forth with the driver,
/// and a caller that registers meanwhile: every handle resolves with its
/// own run's result, within the bound.
#[test]
fn concurrent_callers_and_pipelines_each_get_their_own_results() {
    const CALLERS: u64 = 3;
    const RUNS: u64 = 300;
    let w = Arc::new(start(1));
    let spec = CallableSpec::chip(VECTOR_ADD, vec![8]);
    let h = w.register(spec.clone()).unwrap();
    let callers: Vec<_> = (0..CALLERS)
        .map(|c| {
            let (w, spec) = (w.clone(), spec.clone());
            std::thread::spawn(move || {
                let input = |r: u64| {
                    let mut a = args(8, None);
                    a.tensors[0][0] = (c * RUNS + r) as f32;
                    a
                };
                let pending: Vec<_> =
                    (0..RUNS).map(|r| Worker::run_async(&*w, h, input(r), RunConfig::default()).unwrap()).collect();
                for (r, p) in pending.into_iter().enumerate() {
                    let got = p.wait().unwrap();
                    let want = kernels::reference(&spec, &input(r as u64)).unwrap();
                    assert_eq!(kernels::max_diff(&got, &want), 0.0, "caller {c} run {r}");
                }
            })
        })
        .collect();
    let registers = {
        let (w, spec) = (w.clone(), spec.clone());
        std::thread::spawn(move || {
            for _ in 0..RUNS {
                assert_eq!(w.register(spec.clone()).unwrap(), h);
                w.unregister(h).unwrap();
            }
        })
    };
    for c in callers {
        common::within("a pipelining caller", move || c.join()).expect("a caller's checks");
    }
    common::within("the registering caller", move || registers.join()).expect("the register checks");
    w.unregister(h).unwrap();
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
    let script = format!(
        "\"$0\" {} --device host --worker 0:1 --parent $$ \"$@\" & echo $! > {}; exit 0",
        chiplane_hw::l3::child::CHILD_MARKER,
        pidfile.display()
    );
    let mut sh = ChildCommand::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg(common::child_exe())
        .quiet()
        .spawn(mailbox.shm())
        .unwrap();
    assert!(sh.wait_timeout(common::BOUND).unwrap().is_some_and(|e| e.is_success()));
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let _ = std::fs::remove_file(&pidfile);
    let gone = || match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for its new parent to reap it has exited too.
        Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
    };
    let deadline = Instant::now() + common::BOUND;
    while !gone() {
        assert!(Instant::now() < deadline, "the orphaned chip child {pid} kept running");
        std::thread::yield_now();
    }
}

/// A program that starts an L3 worker without `chiplane_hw::init()` in its
/// `main` (and without an explicit child program) gets a clear error
/// instead of re-executing itself into its own `main`.
#[test]
fn a_missing_init_hook_is_a_clear_error() {
    let r = chiplane_hw::l3::L3Config { child_exe: None, ..chiplane_hw::l3::L3Config::default() }.start();
    if std::env::var_os(chiplane_hw::l3::worker::CHILD_EXE_ENV).is_some() {
        return;
    }
    let e = r.unwrap_err();
    assert!(e.reason.contains("chiplane_hw::init()"), "{e}");
}
