//! The checkers reject what they must: each check is fed a planted wrong
//! observation and must report it (a checker that never fails proves
//! nothing). The mutants of docs/protocol.md section 8 (`sim/scripts/mutants.sh`)
//! and the planted driver bug in `regressions.rs` show the same for whole
//! campaigns.

use std::rc::Rc;

use chiplane_core::chipside::Audit;
use chiplane_core::kernels::{Kernel, VECTOR_ADD};
use chiplane_core::lane::JobId;
use chiplane_core::reference::Owed;
use chiplane_core::slot::{SlotError, SlotInput, SlotLimits, SlotOutput, SlotReply, SlotState, SlotTable};
use chiplane_core::{
    CallableHandle, CallableSpec, Generation, HandleError, RunError, RunOutput, SlotIndex, TaskArgs, WorkerId,
};
use chiplane_sim::check::Checker;
use chiplane_sim::chip::SimArtifact;
use chiplane_sim::sched::Coverage;

const W: WorkerId = WorkerId(1);

fn h(i: u32, g: u32) -> CallableHandle {
    CallableHandle { worker: W, index: SlotIndex(i), generation: Generation(g) }
}

fn limits() -> SlotLimits {
    SlotLimits { capacity: 2, generation_max: Generation(5) }
}

fn spec() -> CallableSpec {
    CallableSpec::chip(VECTOR_ADD, vec![4])
}

fn checker() -> (Checker, u32) {
    let mut c = Checker::new(vec![spec().digest()]);
    let u = c.add_unit(W, limits());
    (c, u)
}

fn input(c: &mut Checker, u: u32, input: SlotInput<Rc<SimArtifact>>, reply: Result<SlotReply, SlotError>) {
    c.audit(u, Audit::Input { input, reply }, &mut Coverage::default());
}

fn artifact(id: u64) -> Rc<SimArtifact> {
    let spec = spec();
    Rc::new(SimArtifact { id, kernel: Kernel::from_spec(&spec).unwrap(), spec })
}

#[test]
fn a_wrong_slot_reply_is_a_violation() {
    let (mut c, u) = checker();
    let d = spec().digest();
    input(&mut c, u, SlotInput::Register { digest: d }, Ok(SlotReply::Registered { handle: h(0, 1), fresh: true }));
    assert!(!c.failed(), "{:?}", c.violation());
    // A second register of the same digest must not be fresh.
    input(&mut c, u, SlotInput::Register { digest: d }, Ok(SlotReply::Registered { handle: h(0, 1), fresh: true }));
    assert!(c.failed());
}

#[test]
fn an_accepted_stale_handle_is_a_violation() {
    let (mut c, u) = checker();
    input(&mut c, u, SlotInput::Pin { handle: h(1, 3) }, Ok(SlotReply::Pinned { ready: true }));
    assert!(c.failed());
    let (mut c, u) = checker();
    let wrong = Err(SlotError::Pin(RunError::NotRunnable(SlotState::Empty)));
    input(&mut c, u, SlotInput::Pin { handle: h(1, 3) }, wrong);
    assert!(c.failed(), "the right error is Stale, not NotRunnable");
}

#[test]
fn a_wrong_or_missing_or_extra_output_is_a_violation() {
    let d = spec().digest();
    let registered = Ok(SlotReply::Registered { handle: h(0, 1), fresh: true });
    // Right output: no violation.
    let (mut c, u) = checker();
    input(&mut c, u, SlotInput::Register { digest: d }, registered.clone());
    let start = SlotOutput::StartPrepare { handle: h(0, 1), digest: d };
    c.audit(u, Audit::Output(start), &mut Coverage::default());
    c.audit_done(u);
    assert!(!c.failed(), "{:?}", c.violation());
    // Missing: the reference still owes the StartPrepare.
    let (mut c, u) = checker();
    input(&mut c, u, SlotInput::Register { digest: d }, registered.clone());
    c.audit_done(u);
    assert!(c.failed());
    // Wrong: another output than the one owed.
    let (mut c, u) = checker();
    input(&mut c, u, SlotInput::Register { digest: d }, registered);
    c.audit(u, Audit::Output(SlotOutput::Cancel { handle: h(0, 1) }), &mut Coverage::default());
    assert!(c.failed());
    // Extra: an output nothing owed.
    let (mut c, u) = checker();
    c.audit(u, Audit::Output(SlotOutput::Freed { handle: h(0, 1) }), &mut Coverage::default());
    assert!(c.failed());
    let _ = Owed::Freed(h(0, 1));
}

#[test]
fn a_wrong_runnable_answer_is_a_violation() {
    let (mut c, u) = checker();
    // Slot 0 was never registered: runnable must be Stale, not an artifact.
    let step = Audit::Runnable { handle: h(0, 1), result: Ok(Some(artifact(7))) };
    c.audit(u, step, &mut Coverage::default());
    assert!(c.failed());
}

#[test]
fn a_table_that_differs_from_the_reference_is_a_violation() {
    let (mut c, u) = checker();
    let mut table: SlotTable<Rc<SimArtifact>> = SlotTable::new(W, limits());
    c.table(u, &table);
    assert!(!c.failed(), "{:?}", c.violation());
    // The table registers a digest the checker never saw.
    let _ = table.handle(SlotInput::Register { digest: spec().digest() });
    c.table(u, &table);
    assert!(c.failed());
}

#[test]
fn fifo_break_is_a_violation() {
    let (mut c, u) = checker();
    let d = spec().digest();
    input(&mut c, u, SlotInput::Register { digest: d }, Ok(SlotReply::Registered { handle: h(0, 1), fresh: true }));
    for _ in 0..3 {
        input(&mut c, u, SlotInput::Pin { handle: h(0, 1) }, Ok(SlotReply::Pinned { ready: false }));
    }
    c.audit(u, Audit::Head { job: JobId(0) }, &mut Coverage::default());
    assert!(!c.failed(), "{:?}", c.violation());
    c.audit(u, Audit::Head { job: JobId(2) }, &mut Coverage::default());
    assert!(c.failed(), "job 1 was skipped");
    let (mut c, u) = checker();
    c.audit(u, Audit::Head { job: JobId(0) }, &mut Coverage::default());
    assert!(c.failed(), "a head that was never pinned");
}

#[test]
fn a_wrong_run_result_is_a_violation() {
    let spec = CallableSpec::chip(VECTOR_ADD, vec![2]);
    let args = TaskArgs { tensors: vec![vec![1.0, 2.0], vec![3.0, 4.0]], scalars: vec![] };
    let (mut c, _) = checker();
    c.run_result(Some(&spec), &args, &Ok(RunOutput { tensors: vec![vec![4.0, 6.0]] }));
    assert!(!c.failed());
    c.run_result(Some(&spec), &args, &Ok(RunOutput { tensors: vec![vec![4.0, 6.5]] }));
    assert!(c.failed());
}

#[test]
fn a_handle_crossing_workers_is_a_violation() {
    let other = WorkerId(2);
    let foreign = HandleError::Foreign { expected: W, got: other };
    let (mut c, _) = checker();
    assert!(c.crossing(W, other, Some(&foreign)));
    assert!(!c.crossing(W, W, None));
    assert!(!c.failed(), "{:?}", c.violation());
    // Accepted on another worker (stale_incarnation would do this).
    let (mut c, _) = checker();
    c.crossing(W, other, None);
    assert!(c.failed());
    // Rejected, but not as foreign.
    let (mut c, _) = checker();
    c.crossing(W, other, Some(&HandleError::Stale { current: Generation(1) }));
    assert!(c.failed());
    // Its own worker's handle called foreign.
    let (mut c, _) = checker();
    c.crossing(W, W, Some(&HandleError::Foreign { expected: W, got: W }));
    assert!(c.failed());
}
