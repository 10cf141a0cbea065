//! S9 in real processes: SIGKILL the chip child at each protocol step and
//! check that every outstanding handle resolves with a typed endpoint error
//! within the timeout, and that a fresh child then works.
//!
//! Each step is reached deterministically, never by sleeping:
//! - the child is frozen with SIGSTOP and the parent publishes (the word is
//!   seen at TASK_READY or CONTROL_READY) before the SIGKILL; or
//! - the parent side is held (the link's port locked: no thread steps it)
//!   at the moment the word shows the step (CONTROL_DONE during a task,
//!   TASK_DONE not yet consumed, a final unregister accepted whose free is
//!   not yet settled), the child is killed, then the port is let go.
//!
//! A stopped child with work outstanding and no kill: the liveness timeout.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chiplane_core::chip::{CallableSpec, RunConfig, TaskArgs};
use chiplane_core::conc::bell::Doorbell;
use chiplane_core::conc::port::PendingControl;
use chiplane_core::error::{EndpointError, HandleError, PoisonReason, RegisterError, RunError};
use chiplane_core::frame::Frame;
use chiplane_core::frame::{ControlOp, ControlReply, Settlement};
use chiplane_core::kernels::{self, HEAVY_PREPARE, REPEAT_VECTOR_ADD, VECTOR_ADD};
use chiplane_core::mailbox::word::WordState;
use chiplane_core::mailbox::Field;
use chiplane_core::{CallableHandle, Generation, SlotIndex};
use chiplane_hw::l3::memory::SysFutex;
use chiplane_hw::l3::{L3Config, L3PendingRun, L3Worker, RunOutcome, TaskRef};
use common::{hold_when, link, signal, within, HwLink, HwPort, BOUND};
use std::sync::mpsc;

fn config() -> L3Config {
    L3Config { liveness_timeout: Duration::from_secs(5), ..common::config(1) }
}

fn start() -> Arc<L3Worker> {
    Arc::new(config().start().unwrap())
}

fn args(n: usize, repeat: Option<u64>) -> TaskArgs {
    TaskArgs { tensors: vec![vec![1.0; n], vec![0.5; n]], scalars: repeat.into_iter().collect() }
}

fn word_is(w: WordState) -> impl FnMut(&chiplane_core::conc::region::Region) -> bool {
    move |r| r.word().load() == w.encode()
}

fn is_endpoint_run(r: &Result<chiplane_core::RunOutput, RunError>) -> bool {
    matches!(r, Err(RunError::Endpoint(EndpointError::ChildDied | EndpointError::Poisoned(PoisonReason::ChildDied))))
}

fn is_endpoint_reg(r: &Result<CallableHandle, RegisterError>) -> bool {
    matches!(r, Err(RegisterError::Endpoint(EndpointError::ChildDied)))
}

fn submit(w: &L3Worker, h: CallableHandle, a: TaskArgs) -> L3PendingRun<TaskRef> {
    w.run_async(move |o| o.submit(h, a, RunConfig::default()).unwrap())
}

/// After a death: the chip reports it, new work fails at once with the
/// endpoint error, a restart gives a working child, old handles are foreign.
fn check_recovery(w: &Arc<L3Worker>, old: CallableHandle) {
    assert_eq!(w.chip_error(0), Some(EndpointError::ChildDied));
    let dead = w.register_async(CallableSpec::chip(VECTOR_ADD, vec![16]));
    assert!(matches!(dead, Err(RegisterError::Endpoint(EndpointError::ChildDied))), "{dead:?}");
    w.restart(0).unwrap();
    assert_eq!(w.chip_error(0), None);
    let spec = CallableSpec::chip(VECTOR_ADD, vec![16]);
    let h = w.register(spec.clone()).unwrap();
    let a = args(16, None);
    let out: RunOutcome<TaskRef> = submit(w, h, a.clone()).wait();
    let got = out.task(&out.value).as_ref().unwrap();
    assert_eq!(kernels::max_diff(got, &kernels::reference(&spec, &a).unwrap()), 0.0);
    let w2 = w.clone();
    let stale = within("a run with a handle of the dead child", move || {
        w2.run(move |o| o.submit(old, args(16, None), RunConfig::default()))
    });
    assert!(matches!(stale.value, Err(RunError::Handle(HandleError::Foreign { .. }))), "{:?}", stale.value);
}

/// With the parent side held during a task: submit `op` to the port and
/// step it by hand until the control is published under the task, then
/// stop stepping (so the parent never restores TASK_RUNNING) and wait for
/// the child's CONTROL_DONE.
fn control_under_held_task(link: &HwLink, held: &mut HwPort, op: ControlOp) -> PendingControl {
    control_held(link, held, SlotIndex(0), Generation::NONE, op, true)
}

/// As [`control_under_held_task`], for a control published at IDLE
/// (`under_task` false) or during a task.
fn control_held(
    link: &HwLink,
    port: &mut HwPort,
    slot: SlotIndex,
    generation: Generation,
    op: ControlOp,
    under_task: bool,
) -> PendingControl {
    let control = port.submit_control(slot, generation, op).expect("control submitted");
    let deadline = std::time::Instant::now() + BOUND;
    let published = |v: u32| {
        v == (WordState::ControlReady { under_task }).encode() || v == (WordState::ControlDone { under_task }).encode()
    };
    while !published(link.region().word().load()) {
        assert!(std::time::Instant::now() < deadline, "control never published");
        if port.progress().did() {
            // What a step of core's link does after publishing.
            Doorbell::new(link.region().child_bell(), &SysFutex).ring();
        }
    }
    let region = link.region();
    while region.word().load() != (WordState::ControlDone { under_task }).encode() {
        assert!(std::time::Instant::now() < deadline, "the child never answered the control");
        std::thread::yield_now();
    }
    control
}

#[test]
fn kill_before_task_running() {
    let w = start();
    let h = w.register(CallableSpec::chip(VECTOR_ADD, vec![16])).unwrap();
    let pid = common::pid(&w, 0);
    signal(pid, libc::SIGSTOP);
    let run = submit(&w, h, args(16, None));
    // The parent published the task; the frozen child never took it.
    let l = link(&w, 0);
    let held = hold_when(&l, word_is(WordState::TaskReady));
    signal(pid, libc::SIGKILL);
    drop(held);
    let out = within("the task", move || run.wait());
    assert!(is_endpoint_run(&out.tasks[0]), "{:?}", out.tasks);
    check_recovery(&w, h);
}

#[test]
fn kill_during_a_control_at_idle_and_during_a_task() {
    // A control published at IDLE, child frozen.
    let w = start();
    let pid = common::pid(&w, 0);
    signal(pid, libc::SIGSTOP);
    let reg = w.register_async(CallableSpec::chip(VECTOR_ADD, vec![16])).unwrap();
    let l = link(&w, 0);
    let held = hold_when(&l, word_is(WordState::ControlReady { under_task: false }));
    signal(pid, libc::SIGKILL);
    drop(held);
    let r = within("the register", move || reg.wait());
    assert!(is_endpoint_reg(&r), "{r:?}");
    w.restart(0).unwrap();

    // A control that entered during TASK_RUNNING and was accepted
    // (CONTROL_DONE under the task); the parent is held before it restores.
    let c1 = CallableSpec::chip(REPEAT_VECTOR_ADD, vec![4096]);
    let h1 = w.register(c1).unwrap();
    let pid = common::pid(&w, 0);
    let run = submit(&w, h1, args(4096, Some(200_000)));
    let l = link(&w, 0);
    let mut held = hold_when(&l, word_is(WordState::TaskRunning));
    let spec = CallableSpec::chip(HEAVY_PREPARE, vec![4096, 64 << 20]);
    let reg = control_under_held_task(&l, &mut held, ControlOp::Register { spec });
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
    let w = start();
    let h = w.register(CallableSpec::chip(REPEAT_VECTOR_ADD, vec![256])).unwrap();
    // Case 1: the run finished and TASK_DONE is published; the parent is held
    // before it reads the result.
    let pid = common::pid(&w, 0);
    let run = submit(&w, h, args(256, Some(200_000)));
    // Hold the parent while the task runs, then let the child finish it and
    // publish TASK_DONE, which the held parent cannot consume.
    let l = link(&w, 0);
    let held = hold_when(&l, word_is(WordState::TaskRunning));
    let region = l.region();
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
    let h = w.register(CallableSpec::chip(REPEAT_VECTOR_ADD, vec![256])).unwrap();
    let pid = common::pid(&w, 0);
    let run = submit(&w, h, args(256, Some(200_000)));
    // Hold the parent during the task and drive its port by hand: publish a
    // register control under the task, then stop stepping, so the parent
    // never restores TASK_RUNNING after the child's CONTROL_DONE.
    let l = link(&w, 0);
    let mut held = hold_when(&l, word_is(WordState::TaskRunning));
    let reg =
        control_under_held_task(&l, &mut held, ControlOp::Register { spec: CallableSpec::chip(VECTOR_ADD, vec![8]) });
    let deadline = std::time::Instant::now() + BOUND;
    // Now wait for the child: CONTROL_DONE, and the run's result written
    // into the task-result field while TASK_DONE is deferred (rule 2).
    let region = l.region();
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
    let w = start();
    let h = w.register(CallableSpec::chip(HEAVY_PREPARE, vec![4096, 64 << 20])).unwrap();
    let pid = common::pid(&w, 0);
    // Hold the idle parent, publish the final unregister by hand and stop
    // once the child accepted it (CONTROL_DONE): the free is queued on the
    // register lane (releasing 64 MiB of touched pages and the library), and
    // its settlement has not reached the parent. Kill now.
    let l = link(&w, 0);
    let mut held = hold_when(&l, word_is(WordState::Idle));
    let unreg = control_held(&l, &mut held, h.index, h.generation, ControlOp::Unregister, false);
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
        within("work on the dead chip", move || w2.run(move |o| o.submit(h, args(16, None), RunConfig::default())));
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
    let w = Arc::new(cfg.start().unwrap());
    let h = w.register(CallableSpec::chip(VECTOR_ADD, vec![16])).unwrap();
    let pid = common::pid(&w, 0);
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
    let h = w.register(spec).unwrap();
    let out = submit(&w, h, args(16, None)).wait();
    assert!(out.tasks[0].is_ok());
}
