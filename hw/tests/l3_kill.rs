//! S9 in real processes: SIGKILL the chip child at each protocol step and
//! check that every outstanding handle resolves with a typed endpoint error
//! within the timeout, and that a fresh child then works.
//!
//! Each step is reached deterministically, never by sleeping:
//! - the child is frozen with SIGSTOP and the parent publishes (the word is
//!   seen at TASK_READY or CONTROL_READY) before the SIGKILL; or
//! - the parent's driver is held (`hold_driver_when`) at the moment the
//!   word shows the step (CONTROL_DONE during a task, TASK_DONE not yet
//!   consumed, a final unregister accepted whose free is not yet settled),
//!   the child is killed, then the driver is let go.
//!
//! A stopped child with work outstanding and no kill: the liveness timeout.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use chiplane_core::chip::{CallableSpec, RunConfig, TaskArgs};
use chiplane_core::conc::port::ControlHandle;
use chiplane_core::error::{ControlError, EndpointError, HandleError, PoisonReason, RunError};
use chiplane_core::frame::Frame;
use chiplane_core::frame::{ControlOp, ControlReply, Settlement};
use chiplane_core::kernels::{self, HEAVY_PREPARE, REPEAT_VECTOR_ADD, VECTOR_ADD};
use chiplane_core::mailbox::word::WordState;
use chiplane_core::mailbox::Field;
use chiplane_core::{Generation, Handle, SlotIndex};
use chiplane_hw::l3::worker::DriverHold;
use chiplane_hw::l3::{L3Config, L3Error, L3Worker, RunOutcome, TaskHandle};

/// Upper bound for anything to resolve (never a synchronisation: healthy
/// runs take milliseconds; a loaded 2-core machine gets slack).
const BOUND: Duration = Duration::from_secs(20);

fn config() -> L3Config {
    L3Config {
        chips: 1,
        child_exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_chiplane-child"))),
        liveness_timeout: Duration::from_secs(5),
        quiet_children: true,
        ..L3Config::default()
    }
}

fn args(n: usize, repeat: Option<u64>) -> TaskArgs {
    TaskArgs { tensors: vec![vec![1.0; n], vec![0.5; n]], scalars: repeat.into_iter().collect() }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on our own child's pid (not yet reaped: the port reaps
    // it only after it saw it gone, which these tests wait for).
    let r = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig})");
}

/// Run `f` on another thread; its value, or a panic if it takes longer
/// than `BOUND` (a hang is a failure, never a wait forever).
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(BOUND).unwrap_or_else(|_| panic!("{what} did not resolve within {BOUND:?}"))
}

fn word_is(w: WordState) -> impl FnMut(&chiplane_core::conc::region::Region) -> bool {
    move |r| r.word().load() == w.encode()
}

fn is_endpoint_run(r: &Result<chiplane_core::RunOutput, RunError>) -> bool {
    matches!(r, Err(RunError::Endpoint(EndpointError::ChildDied | EndpointError::Poisoned(PoisonReason::ChildDied))))
}

fn is_endpoint_l3(r: &Result<Handle, L3Error>) -> bool {
    matches!(r, Err(L3Error::Control(ControlError::Endpoint(EndpointError::ChildDied))))
}

fn submit(w: &L3Worker, h: Handle, a: TaskArgs) -> chiplane_hw::l3::L3RunHandle<TaskHandle> {
    w.run_async(move |o| o.submit(0, h, a, RunConfig::default()).unwrap())
}

/// After a death: the chip reports it, new work fails at once with the
/// endpoint error, a restart gives a working child, old handles are foreign.
fn check_recovery(w: &std::sync::Arc<L3Worker>, old: Handle) {
    assert_eq!(w.chip_error(0), Some(EndpointError::ChildDied));
    let dead = w.register_async(0, CallableSpec::chip(VECTOR_ADD, vec![16]));
    assert!(matches!(dead, Err(L3Error::Control(ControlError::Endpoint(EndpointError::ChildDied)))), "{dead:?}");
    w.restart(0).unwrap();
    assert_eq!(w.chip_error(0), None);
    let spec = CallableSpec::chip(VECTOR_ADD, vec![16]);
    let h = w.register(0, spec.clone()).unwrap();
    let a = args(16, None);
    let out: RunOutcome<TaskHandle> = submit(w, h, a.clone()).wait();
    let got = out.task(&out.value).as_ref().unwrap();
    assert_eq!(kernels::max_diff(got, &kernels::reference(&spec, &a).unwrap()), 0.0);
    let w2 = w.clone();
    let stale = within("a run with a handle of the dead child", move || {
        w2.run(move |o| o.submit(0, old, args(16, None), RunConfig::default()))
    });
    assert!(matches!(stale.value, Err(RunError::Handle(HandleError::Foreign { .. }))), "{:?}", stale.value);
}

/// With the driver held during a task: submit `op` to chip 0's port and
/// step the port by hand until the control is published under the task,
/// then stop stepping (so the parent never restores TASK_RUNNING) and wait
/// for the child's CONTROL_DONE.
fn control_under_held_task(held: &mut DriverHold<'_>, op: ControlOp) -> ControlHandle {
    control_held(held, SlotIndex(0), Generation::NONE, op, true)
}

/// As [`control_under_held_task`], for a control published at IDLE
/// (`under_task` false) or during a task.
fn control_held(
    held: &mut DriverHold<'_>,
    slot: SlotIndex,
    generation: Generation,
    op: ControlOp,
    under_task: bool,
) -> ControlHandle {
    let port = held.port(0).unwrap();
    let control = port.submit_control(slot, generation, op).expect("control submitted");
    let deadline = std::time::Instant::now() + BOUND;
    let published = |v: u32| {
        v == (WordState::ControlReady { under_task }).encode() || v == (WordState::ControlDone { under_task }).encode()
    };
    while !published(port.region().word().load()) {
        assert!(std::time::Instant::now() < deadline, "control never published");
        port.progress();
    }
    let region = port.region();
    while region.word().load() != (WordState::ControlDone { under_task }).encode() {
        assert!(std::time::Instant::now() < deadline, "the child never answered the control");
        std::thread::yield_now();
    }
    control
}

#[test]
fn kill_before_task_running() {
    let w = std::sync::Arc::new(L3Worker::new(config()).unwrap());
    let h = w.register(0, CallableSpec::chip(VECTOR_ADD, vec![16])).unwrap();
    let pid = w.child_pid(0).unwrap();
    signal(pid, libc::SIGSTOP);
    let run = submit(&w, h, args(16, None));
    // The parent published the task; the frozen child never took it.
    let held = w.hold_driver_when(0, BOUND, word_is(WordState::TaskReady)).expect("TASK_READY published");
    signal(pid, libc::SIGKILL);
    drop(held);
    let out = within("the task", move || run.wait());
    assert!(is_endpoint_run(&out.tasks[0]), "{:?}", out.tasks);
    check_recovery(&w, h);
}

#[test]
fn kill_during_a_control_at_idle_and_during_a_task() {
    // A control published at IDLE, child frozen.
    let w = std::sync::Arc::new(L3Worker::new(config()).unwrap());
    let pid = w.child_pid(0).unwrap();
    signal(pid, libc::SIGSTOP);
    let reg = w.register_async(0, CallableSpec::chip(VECTOR_ADD, vec![16])).unwrap();
    let held = w
        .hold_driver_when(0, BOUND, word_is(WordState::ControlReady { under_task: false }))
        .expect("CONTROL_READY published");
    signal(pid, libc::SIGKILL);
    drop(held);
    let r = within("the register", move || reg.wait());
    assert!(is_endpoint_l3(&r), "{r:?}");
    w.restart(0).unwrap();

    // A control that entered during TASK_RUNNING and was accepted
    // (CONTROL_DONE under the task); the parent is held before it restores.
    let c1 = CallableSpec::chip(REPEAT_VECTOR_ADD, vec![4096]);
    let h1 = w.register(0, c1).unwrap();
    let pid = w.child_pid(0).unwrap();
    let run = submit(&w, h1, args(4096, Some(200_000)));
    let mut held = w.hold_driver_when(0, BOUND, word_is(WordState::TaskRunning)).expect("TASK_RUNNING");
    let spec = CallableSpec::chip(HEAVY_PREPARE, vec![4096, 64 << 20]);
    let reg = control_under_held_task(&mut held, ControlOp::Register { spec });
    signal(pid, libc::SIGKILL);
    drop(held);
    let out = within("the long task", move || run.wait());
    assert!(is_endpoint_run(&out.tasks[0]), "{:?}", out.tasks);
    // Accepted before the kill (CONTROL_DONE was written), so its reply is
    // read; its settlement (a 64 MiB prepare) was still owed or just pushed.
    let (reply, settled) = within("the register", move || (reg.wait_reply(), reg.wait_settled()));
    assert!(matches!(reply, Some(Ok(_))), "{reply:?}");
    assert!(matches!(settled, Some(Err(EndpointError::ChildDied)) | Some(Ok(Some(_)))), "{settled:?}");
    check_recovery(&w, h1);
}

#[test]
fn kill_after_the_run_finished_before_task_done_is_consumed() {
    let w = std::sync::Arc::new(L3Worker::new(config()).unwrap());
    let h = w.register(0, CallableSpec::chip(REPEAT_VECTOR_ADD, vec![256])).unwrap();
    // Case 1: the run finished and TASK_DONE is published; the parent is held
    // before it reads the result.
    let pid = w.child_pid(0).unwrap();
    let run = submit(&w, h, args(256, Some(200_000)));
    // Hold the parent while the task runs, then let the child finish it and
    // publish TASK_DONE, which the held parent cannot consume.
    let held = w.hold_driver_when(0, BOUND, word_is(WordState::TaskRunning)).expect("TASK_RUNNING");
    let region = held.region(0).unwrap();
    let deadline = std::time::Instant::now() + BOUND;
    while region.word().load() != WordState::TaskDone.encode() {
        assert!(std::time::Instant::now() < deadline, "TASK_DONE never published");
        std::thread::yield_now();
    }
    signal(pid, libc::SIGKILL);
    drop(held);
    let out = within("the task", move || run.wait());
    // The result was complete in the mailbox before the kill: the parent
    // may still deliver it, or fail it; it must resolve either way.
    assert!(out.tasks[0].is_ok() || is_endpoint_run(&out.tasks[0]), "{:?}", out.tasks);
    w.restart(0).unwrap();

    // Case 2: the run finished while a control was in flight: the child
    // wrote the task result and *deferred* TASK_DONE (rule 2) until the
    // parent restores TASK_RUNNING. The parent is held at CONTROL_DONE until
    // the result is in the task-result field, then the child is killed.
    let h = w.register(0, CallableSpec::chip(REPEAT_VECTOR_ADD, vec![256])).unwrap();
    let pid = w.child_pid(0).unwrap();
    let run = submit(&w, h, args(256, Some(200_000)));
    // Hold the parent during the task and drive its port by hand: publish a
    // register control under the task, then stop stepping, so the parent
    // never restores TASK_RUNNING after the child's CONTROL_DONE.
    let mut held = w.hold_driver_when(0, BOUND, word_is(WordState::TaskRunning)).expect("TASK_RUNNING");
    let reg = control_under_held_task(&mut held, ControlOp::Register { spec: CallableSpec::chip(VECTOR_ADD, vec![8]) });
    let deadline = std::time::Instant::now() + BOUND;
    // Now wait for the child: CONTROL_DONE, and the run's result written
    // into the task-result field while TASK_DONE is deferred (rule 2).
    let region = held.region(0).unwrap();
    let mut dispatch = None;
    while dispatch.is_none() {
        assert!(std::time::Instant::now() < deadline, "the run never finished during the control");
        // Peek (test only): decode a copy of the task-result field.
        if region.word().load() == (WordState::ControlDone { under_task: true }).encode() {
            if let Ok(Frame::TaskResult(f)) = region.read_frame(Field::TaskResult) {
                dispatch = Some(f.id.dispatch);
            }
        }
        std::thread::yield_now();
    }
    assert_eq!(region.word().load(), WordState::ControlDone { under_task: true }.encode(), "TASK_DONE deferred");
    signal(pid, libc::SIGKILL);
    drop(held);
    let out = within("the task whose TASK_DONE was deferred", move || run.wait());
    assert!(is_endpoint_run(&out.tasks[0]), "{:?}", out.tasks);
    // The control was accepted (CONTROL_DONE was written): the parent reads
    // its reply; its settlement came through the ring before the kill or
    // fails with the endpoint error.
    let (reply, settled) = within("the register", move || (reg.wait_reply(), reg.wait_settled()));
    assert!(reply.is_some(), "{reply:?}");
    assert!(matches!(settled, Some(Ok(Some(_))) | Some(Err(EndpointError::ChildDied))), "{settled:?}");
    check_recovery(&w, h);
}

#[test]
fn kill_during_a_free() {
    let w = std::sync::Arc::new(L3Worker::new(config()).unwrap());
    let h = w.register(0, CallableSpec::chip(HEAVY_PREPARE, vec![4096, 64 << 20])).unwrap();
    let pid = w.child_pid(0).unwrap();
    // Hold the idle parent, publish the final unregister by hand and stop
    // once the child accepted it (CONTROL_DONE): the free is queued on the
    // register lane (releasing 64 MiB of touched pages and the library), and
    // its settlement has not reached the parent. Kill now.
    let mut held = w.hold_driver_when(0, BOUND, word_is(WordState::Idle)).expect("IDLE");
    let unreg = control_held(&mut held, h.index, h.generation, ControlOp::Unregister, false);
    signal(pid, libc::SIGKILL);
    drop(held);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send((unreg.wait_reply(), unreg.wait_settled()));
    });
    let Ok((reply, settled)) = rx.recv_timeout(BOUND) else {
        panic!("the unregister did not resolve: word {:?}, chip error {:?}", w.word(0), w.chip_error(0));
    };
    assert!(matches!(reply, Some(Ok(ControlReply::Unregistered { last: true }))), "{reply:?}");
    assert!(matches!(settled, Some(Err(EndpointError::ChildDied)) | Some(Ok(Some(Settlement::Freed)))), "{settled:?}");
    // The settlement may have been pushed before the kill; if it was not,
    // the unregister failed with the endpoint error. Either way the chip is
    // now dead: its next work fails.
    let w2 = w.clone();
    let next =
        within("work on the dead chip", move || w2.run(move |o| o.submit(0, h, args(16, None), RunConfig::default())));
    match next.value {
        Err(RunError::Endpoint(EndpointError::ChildDied)) => {}
        Ok(t) => assert!(is_endpoint_run(next.task(&t)), "{:?}", next.tasks),
        other => panic!("{other:?}"),
    }
    check_recovery(&w, h);
}

#[test]
fn a_stopped_child_hits_the_liveness_timeout() {
    let cfg = L3Config { liveness_timeout: Duration::from_millis(300), ..config() };
    let w = std::sync::Arc::new(L3Worker::new(cfg).unwrap());
    let h = w.register(0, CallableSpec::chip(VECTOR_ADD, vec![16])).unwrap();
    let pid = w.child_pid(0).unwrap();
    signal(pid, libc::SIGSTOP);
    let run = submit(&w, h, args(16, None));
    let out = within("the task on a stopped child", move || run.wait());
    assert!(matches!(out.tasks[0], Err(RunError::Endpoint(EndpointError::LivenessTimeout))), "{:?}", out.tasks);
    assert_eq!(w.chip_error(0), Some(EndpointError::LivenessTimeout));
    // The port killed and reaped it.
    // SAFETY: kill with signal 0 only checks whether the pid exists.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, 0) }, -1, "the stopped child was reaped");
    w.restart(0).unwrap();
    let spec = CallableSpec::chip(VECTOR_ADD, vec![16]);
    let h = w.register(0, spec).unwrap();
    let out = submit(&w, h, args(16, None)).wait();
    assert!(out.tasks[0].is_ok());
}
