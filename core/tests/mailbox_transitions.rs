//! Unit tests for every transition of docs/protocol.md section 4, driving the pure
//! endpoint machines by hand (each side alone, the other side played by the
//! test), including each rejected one.

use chiplane_core::chip::{CallableSpec, RunConfig, TaskArgs};
use chiplane_core::error::{ControlError, EndpointError, Limit, PoisonReason, RegisterError, RunError, TooLarge};
use chiplane_core::frame;
use chiplane_core::frame::{
    CompletionFrame, ControlFrame, ControlOp, ControlReply, ControlResultFrame, Frame, FrameError, FrameId, Settlement,
    TaskFrame, TaskResultFrame, CONTROL_FRAME_BYTES, KERNEL_MAX_BYTES, TASK_FRAME_BYTES, TASK_RESULT_BYTES,
};
use chiplane_core::ids::{DispatchId, Generation, SlotIndex};
use chiplane_core::mailbox::child::{ChildEndpoint, ChildInput, ChildOutput};
use chiplane_core::mailbox::parent::{ParentEndpoint, ParentError, ParentInput, ParentOutput, SubmitError};
use chiplane_core::mailbox::word::WordState::{self, *};
use chiplane_core::mailbox::Field;
use chiplane_core::RunOutput;

fn drain_p(p: &mut ParentEndpoint) -> Vec<ParentOutput> {
    std::iter::from_fn(|| p.poll()).collect()
}

fn drain_c(c: &mut ChildEndpoint) -> Vec<ChildOutput> {
    std::iter::from_fn(|| c.poll()).collect()
}

fn submit_task(p: &mut ParentEndpoint) -> DispatchId {
    p.handle(ParentInput::SubmitTask {
        slot: SlotIndex(0),
        generation: Generation(1),
        config: RunConfig::default(),
        args: TaskArgs { tensors: vec![vec![1.0]], scalars: vec![] },
    })
    .unwrap()
    .unwrap()
}

fn submit_register(p: &mut ParentEndpoint) -> DispatchId {
    let op = ControlOp::Register { spec: CallableSpec::chip("vector_add", vec![1]) };
    p.handle(ParentInput::SubmitControl { slot: SlotIndex(0), generation: Generation(0), op }).unwrap().unwrap()
}

fn submit_memory(p: &mut ParentEndpoint) -> DispatchId {
    let op = ControlOp::Memory { bytes: 4096, free: false };
    p.handle(ParentInput::SubmitControl { slot: SlotIndex(0), generation: Generation(0), op }).unwrap().unwrap()
}

fn cas_ok(p: &mut ParentEndpoint) {
    p.handle(ParentInput::CasResult(Ok(()))).unwrap();
}

/// Bring a parent to "task `d` running": published and accepted.
fn parent_running() -> (ParentEndpoint, DispatchId) {
    let mut p = ParentEndpoint::new();
    let d = submit_task(&mut p);
    p.handle(ParentInput::Observed(Idle.encode())).unwrap();
    let out = drain_p(&mut p);
    assert!(matches!(&out[0], ParentOutput::Write { field: Field::Task, frame: Frame::Task(f) } if f.id.dispatch == d));
    assert_eq!(out[1], ParentOutput::Cas { from: Idle, to: TaskReady });
    cas_ok(&mut p);
    p.handle(ParentInput::Observed(TaskRunning.encode())).unwrap();
    assert_eq!(p.task_in_flight(), Some(d));
    (p, d)
}

fn task_id(d: DispatchId) -> FrameId {
    FrameId { dispatch: d, slot: SlotIndex(0), generation: Generation(1) }
}

#[test]
fn parent_idle_to_task_ready_to_done_to_idle() {
    let (mut p, d) = parent_running();
    assert!(drain_p(&mut p).is_empty(), "nothing to do while the task runs");
    p.handle(ParentInput::Observed(TaskDone.encode())).unwrap();
    assert_eq!(drain_p(&mut p), vec![ParentOutput::Read { field: Field::TaskResult }]);
    let out = RunOutput { tensors: vec![vec![2.0]] };
    let f = Frame::TaskResult(TaskResultFrame { id: task_id(d), result: Ok(out.clone()) });
    p.handle(ParentInput::ReadResult(Ok(f))).unwrap();
    assert_eq!(drain_p(&mut p), vec![ParentOutput::Cas { from: TaskDone, to: Idle }]);
    cas_ok(&mut p);
    assert_eq!(drain_p(&mut p), vec![ParentOutput::TaskDone { dispatch: d, result: Ok(out) }]);
    assert!(!p.outstanding());
}

#[test]
fn parent_control_enters_during_task_running_and_restores_it_by_cas() {
    let (mut p, _) = parent_running();
    let c = submit_register(&mut p);
    let out = drain_p(&mut p);
    assert!(matches!(&out[0], ParentOutput::Write { field: Field::Control, .. }));
    assert_eq!(out[1], ParentOutput::Cas { from: TaskRunning, to: ControlReady { under_task: true } });
    cas_ok(&mut p);
    p.handle(ParentInput::Observed(ControlDone { under_task: true }.encode())).unwrap();
    assert_eq!(drain_p(&mut p), vec![ParentOutput::Read { field: Field::ControlResult }]);
    let reply = ControlReply::Registered { slot: SlotIndex(1), generation: Generation(1), fresh: true };
    let f = Frame::ControlResult(ControlResultFrame {
        id: FrameId { dispatch: c, slot: SlotIndex(0), generation: Generation(0) },
        result: Ok(reply),
    });
    p.handle(ParentInput::ReadResult(Ok(f))).unwrap();
    assert_eq!(drain_p(&mut p), vec![ParentOutput::Cas { from: ControlDone { under_task: true }, to: TaskRunning }]);
    cas_ok(&mut p);
    assert_eq!(drain_p(&mut p), vec![ParentOutput::ControlDone { dispatch: c, result: Ok(reply) }]);
    assert_eq!(p.settlements_owed(), 1);
    // The settlement arrives through the ring.
    let s = Frame::Completion(CompletionFrame {
        id: FrameId { dispatch: c, slot: SlotIndex(1), generation: Generation(1) },
        settlement: Settlement::Prepared(Ok(())),
    });
    p.handle(ParentInput::Completion(Ok(s))).unwrap();
    assert_eq!(drain_p(&mut p), vec![ParentOutput::Settled { dispatch: c, result: Ok(Settlement::Prepared(Ok(()))) }]);
}

#[test]
fn parent_control_from_idle_restores_idle() {
    let mut p = ParentEndpoint::new();
    let c = submit_memory(&mut p);
    p.handle(ParentInput::Observed(Idle.encode())).unwrap();
    let out = drain_p(&mut p);
    assert_eq!(out[1], ParentOutput::Cas { from: Idle, to: ControlReady { under_task: false } });
    cas_ok(&mut p);
    p.handle(ParentInput::Observed(ControlDone { under_task: false }.encode())).unwrap();
    let _ = drain_p(&mut p);
    let id = FrameId { dispatch: c, slot: SlotIndex(0), generation: Generation(0) };
    p.handle(ParentInput::ReadResult(Ok(Frame::ControlResult(ControlResultFrame {
        id,
        result: Ok(ControlReply::Done),
    }))))
    .unwrap();
    assert_eq!(drain_p(&mut p), vec![ParentOutput::Cas { from: ControlDone { under_task: false }, to: Idle }]);
}

#[test]
fn parent_holds_memory_control_until_idle() {
    let (mut p, d) = parent_running();
    let m = submit_memory(&mut p);
    assert!(drain_p(&mut p).is_empty(), "a memory control never enters during TASK_RUNNING");
    assert_eq!(p.control_in_flight(), None);
    // The task finishes; after TASK_DONE -> IDLE the memory control goes.
    p.handle(ParentInput::Observed(TaskDone.encode())).unwrap();
    let _ = drain_p(&mut p);
    let f = Frame::TaskResult(TaskResultFrame { id: task_id(d), result: Ok(RunOutput::default()) });
    p.handle(ParentInput::ReadResult(Ok(f))).unwrap();
    let _ = drain_p(&mut p);
    cas_ok(&mut p);
    let out = drain_p(&mut p);
    assert!(matches!(out[0], ParentOutput::TaskDone { .. }));
    assert!(
        matches!(&out[1], ParentOutput::Write { field: Field::Control, frame: Frame::Control(f) } if f.id.dispatch == m)
    );
    assert_eq!(out[2], ParentOutput::Cas { from: Idle, to: ControlReady { under_task: false } });
}

#[test]
fn parent_serialises_controls_one_in_flight() {
    let mut p = ParentEndpoint::new();
    let a = submit_register(&mut p);
    let b = submit_register(&mut p);
    p.handle(ParentInput::Observed(Idle.encode())).unwrap();
    let out = drain_p(&mut p);
    assert_eq!(out.len(), 2, "only the first control is published: {out:?}");
    cas_ok(&mut p);
    assert_eq!(p.control_in_flight(), Some(a));
    // While it is in flight, observing the word publishes nothing else.
    p.handle(ParentInput::Observed(ControlReady { under_task: false }.encode())).unwrap();
    assert!(drain_p(&mut p).is_empty());
    assert_ne!(p.control_in_flight(), Some(b));
}

#[test]
fn parent_stages_the_next_task_once_running() {
    let (mut p, _) = parent_running();
    let _ = drain_p(&mut p);
    let d2 = submit_task(&mut p);
    p.handle(ParentInput::Observed(TaskRunning.encode())).unwrap();
    let out = drain_p(&mut p);
    assert!(
        matches!(&out[..], [ParentOutput::Write { field: Field::Task, frame: Frame::Task(f) }] if f.id.dispatch == d2)
    );
}

#[test]
fn parent_cas_lost_to_task_done_reads_the_task_first() {
    let (mut p, _) = parent_running();
    let _ = submit_register(&mut p);
    let _ = drain_p(&mut p);
    p.handle(ParentInput::CasResult(Err(TaskDone.encode()))).unwrap();
    assert_eq!(drain_p(&mut p), vec![ParentOutput::Read { field: Field::TaskResult }]);
    assert_eq!(p.control_in_flight(), None);
}

#[test]
fn parent_rejects_malformed_and_mismatched_frames_by_poisoning() {
    let (mut p, d) = parent_running();
    p.handle(ParentInput::Observed(TaskDone.encode())).unwrap();
    let _ = drain_p(&mut p);
    p.handle(ParentInput::ReadResult(Err(FrameError::BadMagic(7)))).unwrap();
    assert_eq!(
        drain_p(&mut p),
        vec![ParentOutput::Poison { reason: PoisonReason::MalformedFrame(FrameError::BadMagic(7)) }]
    );
    // Poison is one way: nothing is published afterwards; submissions fail.
    assert!(matches!(
        p.handle(ParentInput::SubmitTask {
            slot: SlotIndex(0),
            generation: Generation(1),
            config: RunConfig::default(),
            args: TaskArgs::default()
        }),
        Err(ParentError::Submit(SubmitError::Endpoint(EndpointError::Poisoned(_))))
    ));
    p.handle(ParentInput::ChildGone(EndpointError::ChildDied)).unwrap();
    let out = drain_p(&mut p);
    assert_eq!(
        out,
        vec![ParentOutput::TaskDone { dispatch: d, result: Err(RunError::Endpoint(EndpointError::ChildDied)) }]
    );

    let (mut p, d) = parent_running();
    p.handle(ParentInput::Observed(TaskDone.encode())).unwrap();
    let _ = drain_p(&mut p);
    let stale = Frame::TaskResult(TaskResultFrame {
        id: FrameId { dispatch: d, slot: SlotIndex(0), generation: Generation(9) },
        result: Ok(RunOutput::default()),
    });
    p.handle(ParentInput::ReadResult(Ok(stale))).unwrap();
    assert_eq!(drain_p(&mut p), vec![ParentOutput::Poison { reason: PoisonReason::IdentityMismatch }]);
}

#[test]
fn parent_rejects_unknown_word_values_and_impossible_states() {
    let (mut p, _) = parent_running();
    p.handle(ParentInput::Observed(99)).unwrap();
    assert_eq!(drain_p(&mut p), vec![ParentOutput::Poison { reason: PoisonReason::UnexpectedState(99) }]);
    // CONTROL_DONE with no control in flight is impossible.
    let (mut p, _) = parent_running();
    p.handle(ParentInput::Observed(ControlDone { under_task: true }.encode())).unwrap();
    assert!(matches!(drain_p(&mut p)[..], [ParentOutput::Poison { .. }]));
}

#[test]
fn parent_child_gone_fails_everything_exactly_once() {
    let (mut p, d) = parent_running();
    let c = submit_register(&mut p);
    let q = submit_task(&mut p);
    let _ = drain_p(&mut p);
    cas_ok(&mut p); // the register control is published
    p.handle(ParentInput::ChildGone(EndpointError::ChildDied)).unwrap();
    // (The next task was staged into the task field meanwhile: not a resolution.)
    let out: Vec<_> = drain_p(&mut p).into_iter().filter(|o| !matches!(o, ParentOutput::Write { .. })).collect();
    let e = EndpointError::ChildDied;
    assert_eq!(
        out,
        vec![
            ParentOutput::Poison { reason: PoisonReason::ChildDied },
            ParentOutput::TaskDone { dispatch: d, result: Err(RunError::Endpoint(e.clone())) },
            ParentOutput::ControlDone { dispatch: c, result: Err(ControlError::Endpoint(e.clone())) },
            ParentOutput::TaskDone { dispatch: q, result: Err(RunError::Endpoint(e.clone())) },
        ]
    );
    p.handle(ParentInput::ChildGone(EndpointError::ChildDied)).unwrap();
    assert!(drain_p(&mut p).is_empty(), "resolved once");
    assert!(!p.outstanding());
}

#[test]
fn parent_refuses_oversized_payloads_with_a_typed_error() {
    let mut p = ParentEndpoint::new();
    let r = p.handle(ParentInput::SubmitTask {
        slot: SlotIndex(0),
        generation: Generation(1),
        config: RunConfig::default(),
        args: TaskArgs { tensors: vec![vec![0.0; TASK_FRAME_BYTES / 4]], scalars: vec![] },
    });
    assert!(matches!(r, Err(ParentError::Submit(SubmitError::TooLarge(TooLarge { limit: Limit::TaskFrame, .. })))));
    assert!(!p.outstanding());
}

/// Every limit of the frame format, at the limit and one past it, is
/// checked at the call with the limit named (issue: a 257-byte kernel name
/// used to pass the call and panic the driver when it failed to encode).
#[test]
fn parent_checks_every_frame_limit_at_the_call() {
    let register = |p: &mut ParentEndpoint, spec: CallableSpec| {
        p.handle(ParentInput::SubmitControl {
            slot: SlotIndex(0),
            generation: Generation(0),
            op: ControlOp::Register { spec },
        })
    };
    let mut p = ParentEndpoint::new();
    // Kernel name: KERNEL_MAX_BYTES fits, one more does not.
    assert!(register(&mut p, CallableSpec::chip("k".repeat(KERNEL_MAX_BYTES), vec![])).is_ok());
    for len in [KERNEL_MAX_BYTES + 1, 300, 4000, 5000] {
        let r = register(&mut p, CallableSpec::chip("k".repeat(len), vec![]));
        assert_eq!(
            r,
            Err(ParentError::Submit(SubmitError::TooLarge(TooLarge {
                limit: Limit::KernelName,
                bytes: len,
                max: KERNEL_MAX_BYTES
            })))
        );
    }
    // The whole control frame: find the most parameters that fit.
    let fits = |n: usize| frame::check_spec(&CallableSpec::chip("k", vec![0; n])).is_ok();
    let max_params = (0..CONTROL_FRAME_BYTES).take_while(|&n| fits(n)).last().unwrap();
    assert!(register(&mut p, CallableSpec::chip("k", vec![0; max_params])).is_ok());
    let r = register(&mut p, CallableSpec::chip("k", vec![0; max_params + 1]));
    let want =
        TooLarge { limit: Limit::ControlFrame, bytes: frame_len_params(max_params + 1), max: CONTROL_FRAME_BYTES };
    assert_eq!(r, Err(ParentError::Submit(SubmitError::TooLarge(want))));
    assert!(want.bytes > CONTROL_FRAME_BYTES && frame_len_params(max_params) <= CONTROL_FRAME_BYTES);
    // The task frame: the most f32 elements that fit, and one more.
    let args = |n: usize| TaskArgs { tensors: vec![vec![0.0; n]], scalars: vec![] };
    let max_elems =
        (TASK_FRAME_BYTES / 4 - 16..TASK_FRAME_BYTES / 4).rev().find(|&n| frame::check_args(&args(n)).is_ok()).unwrap();
    let task = |p: &mut ParentEndpoint, a: TaskArgs| {
        p.handle(ParentInput::SubmitTask {
            slot: SlotIndex(0),
            generation: Generation(1),
            config: RunConfig::default(),
            args: a,
        })
    };
    assert!(task(&mut p, args(max_elems)).is_ok());
    let r = task(&mut p, args(max_elems + 1));
    assert!(
        matches!(
            r,
            Err(ParentError::Submit(SubmitError::TooLarge(TooLarge {
                limit: Limit::TaskFrame,
                max: TASK_FRAME_BYTES,
                ..
            })))
        ),
        "{r:?}"
    );
    // Everything accepted also encodes (the driver can never fail to write it).
    for o in drain_p(&mut p) {
        if let ParentOutput::Write { frame, .. } = o {
            frame.encode().expect("an accepted frame encodes");
        }
    }
    // A run output one element past the task result frame is refused too.
    let out = |n: usize| RunOutput { tensors: vec![vec![0.0; n]] };
    let max_out = (TASK_RESULT_BYTES / 4 - 16..TASK_RESULT_BYTES / 4)
        .rev()
        .find(|&n| frame::check_output(&out(n)).is_ok())
        .unwrap();
    assert!(matches!(frame::check_output(&out(max_out + 1)), Err(TooLarge { limit: Limit::TaskResult, .. })));
}

fn frame_len_params(n: usize) -> usize {
    Frame::Control(ControlFrame {
        id: task_id(DispatchId(1)),
        op: ControlOp::Register { spec: CallableSpec::chip("k", vec![0; n]) },
    })
    .encoded_len()
}

/// Rule 12: a poisoning completion arrives while a task submission's
/// `Write` + `Cas` are still queued (the real driver pops the ring before it
/// drains a submission). The machine withdraws them; no driver can run a
/// stale CAS against the word.
#[test]
fn parent_withdraws_queued_memory_outputs_when_poisoned() {
    let mut p = ParentEndpoint::new();
    let c = submit_register(&mut p);
    p.handle(ParentInput::Observed(Idle.encode())).unwrap();
    // Write + Cas for the control are queued, not executed.
    let queued: Vec<_> = std::iter::from_fn(|| p.poll()).collect();
    assert!(queued.iter().all(|o| o.is_memory()) && queued.len() == 2, "{queued:?}");
    // The driver executed them (published the control) ...
    cas_ok(&mut p);
    // ... then queues a task (Write + Cas wait for the word) while a
    // completion that names nothing outstanding arrives first: poison.
    let t = submit_task(&mut p);
    let bogus = CompletionFrame { id: task_id(DispatchId(99)), settlement: Settlement::Freed };
    p.handle(ParentInput::Completion(Ok(Frame::Completion(bogus)))).unwrap();
    let out = drain_p(&mut p);
    assert!(out.iter().all(|o| !o.is_memory()), "memory outputs withdrawn: {out:?}");
    assert!(matches!(out.as_slice(), [ParentOutput::Poison { reason: PoisonReason::IdentityMismatch }]), "{out:?}");
    // An answer to an output handed out before the verdict is ignored.
    assert_eq!(p.handle(ParentInput::CasResult(Ok(()))), Ok(None));
    assert_eq!(p.handle(ParentInput::ReadResult(Err(FrameError::InvalidUtf8))), Ok(None));
    // The driver reaps the child: both dispatches resolve once, with the endpoint error.
    p.handle(ParentInput::ChildGone(EndpointError::Poisoned(PoisonReason::IdentityMismatch))).unwrap();
    let out = drain_p(&mut p);
    assert!(out.iter().all(|o| !o.is_memory()), "{out:?}");
    let resolved: Vec<DispatchId> = out
        .iter()
        .filter_map(|o| match o {
            ParentOutput::TaskDone { dispatch, .. } | ParentOutput::ControlDone { dispatch, .. } => Some(*dispatch),
            _ => None,
        })
        .collect();
    assert_eq!(resolved, vec![c, t]);
}

/// Rule 12, the death path the simulator found: a `Cas` handed out, then
/// `ChildGone`, then the `Cas`'s answer.
#[test]
fn parent_ignores_the_answer_to_a_cas_issued_before_child_gone() {
    let mut p = ParentEndpoint::new();
    let d = submit_task(&mut p);
    p.handle(ParentInput::Observed(Idle.encode())).unwrap();
    let _write = p.poll().unwrap();
    assert_eq!(p.poll(), Some(ParentOutput::Cas { from: Idle, to: TaskReady }));
    p.handle(ParentInput::ChildGone(EndpointError::ChildDied)).unwrap();
    let out = drain_p(&mut p);
    assert_eq!(
        out,
        vec![
            ParentOutput::Poison { reason: PoisonReason::ChildDied },
            ParentOutput::TaskDone { dispatch: d, result: Err(RunError::Endpoint(EndpointError::ChildDied)) },
        ]
    );
    assert_eq!(p.handle(ParentInput::CasResult(Err(WordState::Poisoned.encode()))), Ok(None));
    assert!(drain_p(&mut p).is_empty());
}

#[test]
fn parent_driver_bug_is_a_typed_error() {
    let mut p = ParentEndpoint::new();
    assert!(matches!(p.handle(ParentInput::CasResult(Ok(()))), Err(ParentError::Unexpected(_))));
    assert!(matches!(p.handle(ParentInput::ReadResult(Err(FrameError::InvalidUtf8))), Err(ParentError::Unexpected(_))));
}

// ----- child side -----

fn task_frame(d: u64) -> Frame {
    Frame::Task(TaskFrame { id: task_id(DispatchId(d)), config: RunConfig::default(), args: TaskArgs::default() })
}

fn obs(c: &mut ChildEndpoint, w: WordState) {
    c.handle(ChildInput::Observed { word: w.encode(), ring_free: 4 }).unwrap();
}

/// A child that took task 1 and published TASK_RUNNING.
fn child_running() -> ChildEndpoint {
    let mut c = ChildEndpoint::new();
    obs(&mut c, TaskReady);
    assert_eq!(drain_c(&mut c), vec![ChildOutput::Read { field: Field::Task }]);
    c.handle(ChildInput::ReadResult(Ok(task_frame(1)))).unwrap();
    assert!(matches!(drain_c(&mut c)[..], [ChildOutput::AcceptTask(_)]));
    c.handle(ChildInput::TaskAccepted).unwrap();
    assert_eq!(drain_c(&mut c), vec![ChildOutput::Cas { from: TaskReady, to: TaskRunning }]);
    c.handle(ChildInput::CasResult(Ok(()))).unwrap();
    c
}

#[test]
fn child_copies_pins_then_publishes_running_then_done() {
    let mut c = child_running();
    obs(&mut c, TaskRunning);
    assert!(drain_c(&mut c).is_empty());
    c.handle(ChildInput::RunFinished { dispatch: DispatchId(1), result: Ok(RunOutput::default()) }).unwrap();
    let out = drain_c(&mut c);
    assert!(matches!(&out[0], ChildOutput::Write { field: Field::TaskResult, .. }));
    assert_eq!(out[1], ChildOutput::Cas { from: TaskRunning, to: TaskDone });
}

#[test]
fn child_refused_task_goes_ready_to_done() {
    let mut c = ChildEndpoint::new();
    obs(&mut c, TaskReady);
    let _ = drain_c(&mut c);
    c.handle(ChildInput::ReadResult(Ok(task_frame(1)))).unwrap();
    let _ = drain_c(&mut c);
    let err = RunError::NotRunnable(chiplane_core::slot::SlotState::Empty);
    c.handle(ChildInput::TaskRejected(err.clone())).unwrap();
    let out = drain_c(&mut c);
    assert!(matches!(&out[0], ChildOutput::Write { frame: Frame::TaskResult(f), .. } if f.result == Err(err.clone())));
    assert_eq!(out[1], ChildOutput::Cas { from: TaskReady, to: TaskDone });
}

#[test]
fn child_defers_task_done_during_a_control_and_publishes_it_once() {
    let mut c = child_running();
    obs(&mut c, ControlReady { under_task: true });
    assert_eq!(drain_c(&mut c), vec![ChildOutput::Read { field: Field::Control }]);
    let reg = Frame::Control(ControlFrame {
        id: FrameId { dispatch: DispatchId(2), slot: SlotIndex(0), generation: Generation(0) },
        op: ControlOp::Register { spec: CallableSpec::chip("vector_add", vec![1]) },
    });
    c.handle(ChildInput::ReadResult(Ok(reg))).unwrap();
    assert!(matches!(drain_c(&mut c)[..], [ChildOutput::ApplyControl(_)]));
    // The run finishes while the control is being applied.
    c.handle(ChildInput::RunFinished { dispatch: DispatchId(1), result: Ok(RunOutput::default()) }).unwrap();
    let out = drain_c(&mut c);
    assert!(
        matches!(&out[..], [ChildOutput::Write { field: Field::TaskResult, .. }]),
        "result written, TASK_DONE deferred: {out:?}"
    );
    let reply = ControlReply::Registered { slot: SlotIndex(1), generation: Generation(1), fresh: true };
    c.handle(ChildInput::ControlApplied(Ok(reply))).unwrap();
    let out = drain_c(&mut c);
    assert!(matches!(&out[0], ChildOutput::Write { field: Field::ControlResult, .. }), "separate fields: {out:?}");
    assert_eq!(
        out[1],
        ChildOutput::Cas { from: ControlReady { under_task: true }, to: ControlDone { under_task: true } }
    );
    c.handle(ChildInput::CasResult(Ok(()))).unwrap();
    obs(&mut c, ControlDone { under_task: true });
    assert!(drain_c(&mut c).is_empty(), "never over a control");
    // The parent restores TASK_RUNNING; now TASK_DONE goes, once.
    obs(&mut c, TaskRunning);
    assert_eq!(drain_c(&mut c), vec![ChildOutput::Cas { from: TaskRunning, to: TaskDone }]);
    c.handle(ChildInput::CasResult(Ok(()))).unwrap();
    obs(&mut c, TaskDone);
    assert!(drain_c(&mut c).is_empty());
    assert_eq!(c.task(), None);
}

#[test]
fn child_poisons_on_malformed_stale_or_misplaced_frames() {
    let mut c = ChildEndpoint::new();
    obs(&mut c, TaskReady);
    let _ = drain_c(&mut c);
    c.handle(ChildInput::ReadResult(Err(FrameError::Truncated { need: 32, have: 3 }))).unwrap();
    assert!(matches!(drain_c(&mut c)[..], [ChildOutput::Poison { reason: PoisonReason::MalformedFrame(_) }]));

    // A stale (already seen) dispatch id.
    let mut c = child_running();
    c.handle(ChildInput::RunFinished { dispatch: DispatchId(1), result: Ok(RunOutput::default()) }).unwrap();
    obs(&mut c, TaskRunning);
    let _ = drain_c(&mut c);
    c.handle(ChildInput::CasResult(Ok(()))).unwrap();
    obs(&mut c, Idle);
    obs(&mut c, TaskReady);
    let _ = drain_c(&mut c);
    c.handle(ChildInput::ReadResult(Ok(task_frame(1)))).unwrap();
    assert_eq!(drain_c(&mut c), vec![ChildOutput::Poison { reason: PoisonReason::IdentityMismatch }]);

    // A memory control during a task breaks rule 3.
    let mut c = child_running();
    obs(&mut c, ControlReady { under_task: true });
    let _ = drain_c(&mut c);
    let mem = Frame::Control(ControlFrame {
        id: FrameId { dispatch: DispatchId(2), slot: SlotIndex(0), generation: Generation(0) },
        op: ControlOp::Memory { bytes: 1, free: false },
    });
    c.handle(ChildInput::ReadResult(Ok(mem))).unwrap();
    assert!(matches!(drain_c(&mut c)[..], [ChildOutput::Poison { .. }]));

    // An unknown word value.
    let mut c = ChildEndpoint::new();
    c.handle(ChildInput::Observed { word: 1234, ring_free: 1 }).unwrap();
    assert_eq!(drain_c(&mut c), vec![ChildOutput::Poison { reason: PoisonReason::UnexpectedState(1234) }]);
}

#[test]
fn child_holds_settlements_while_the_ring_is_full() {
    let mut c = ChildEndpoint::new();
    let id = |d| FrameId { dispatch: DispatchId(d), slot: SlotIndex(0), generation: Generation(1) };
    c.handle(ChildInput::Observed { word: Idle.encode(), ring_free: 0 }).unwrap();
    c.handle(ChildInput::Settled { id: id(5), settlement: Settlement::Freed }).unwrap();
    c.handle(ChildInput::Settled { id: id(6), settlement: Settlement::Prepared(Err(RegisterError::Cancelled)) })
        .unwrap();
    assert!(drain_c(&mut c).is_empty(), "ring full: held");
    assert_eq!(c.completions_held(), 2);
    c.handle(ChildInput::Observed { word: Idle.encode(), ring_free: 1 }).unwrap();
    assert_eq!(drain_c(&mut c), vec![ChildOutput::Push(CompletionFrame { id: id(5), settlement: Settlement::Freed })]);
    c.handle(ChildInput::Observed { word: Idle.encode(), ring_free: 3 }).unwrap();
    assert!(matches!(&drain_c(&mut c)[..], [ChildOutput::Push(f)] if f.id == id(6)), "in order, none dropped");
}

#[test]
fn child_stops_when_the_parent_poisons() {
    let mut c = child_running();
    obs(&mut c, Poisoned);
    c.handle(ChildInput::RunFinished { dispatch: DispatchId(1), result: Ok(RunOutput::default()) }).unwrap();
    assert!(drain_c(&mut c).is_empty());
    assert!(c.poisoned().is_some());
}
