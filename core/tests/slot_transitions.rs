//! One test per transition of the slot table (docs/protocol.md section 3), each
//! rejected transition included. Every step checks `check_invariants` and
//! the exact outputs owed.

use chiplane_core::slot::{SlotError, SlotInput, SlotLimits, SlotOutput, SlotReply, SlotState, SlotTable};
use chiplane_core::{
    CallableDigest, CallableHandle, ChipError, ChipErrorKind, Generation, HandleError, RegisterError, RunError,
    SlotIndex, UnregisterError, WorkerId,
};

const W: WorkerId = WorkerId(7);

/// An artifact with a unique id; deliberately not `Clone`, so the table can
/// only move it.
#[derive(Debug, PartialEq, Eq)]
struct Art(u64);

/// Outputs, comparable.
#[derive(Debug, PartialEq, Eq)]
enum Out {
    Start(CallableHandle, CallableDigest),
    Cancel(CallableHandle),
    Release(CallableHandle, u64),
    Settled(CallableHandle, Result<(), RegisterError>),
    Freed(CallableHandle),
}

fn table(capacity: usize, generation_max: u32) -> SlotTable<Art> {
    SlotTable::new(W, SlotLimits { capacity, generation_max: Generation(generation_max) })
}

fn dg(n: u8) -> CallableDigest {
    CallableDigest([n; 32])
}

fn h(index: u32, generation: u32) -> CallableHandle {
    CallableHandle { worker: W, index: SlotIndex(index), generation: Generation(generation) }
}

fn err(detail: &str) -> ChipError {
    ChipError::new(ChipErrorKind::Device, detail)
}

fn step(t: &mut SlotTable<Art>, input: SlotInput<Art>) -> Result<SlotReply, SlotError> {
    let r = t.handle(input);
    assert_eq!(t.check_invariants(), Ok(()));
    r
}

fn drain(t: &mut SlotTable<Art>) -> Vec<Out> {
    let mut v = Vec::new();
    while let Some(o) = t.poll() {
        v.push(match o {
            SlotOutput::StartPrepare { handle, digest } => Out::Start(handle, digest),
            SlotOutput::Cancel { handle } => Out::Cancel(handle),
            SlotOutput::Release { handle, artifact } => Out::Release(handle, artifact.0),
            SlotOutput::Settled { handle, result } => Out::Settled(handle, result),
            SlotOutput::Freed { handle } => Out::Freed(handle),
        });
    }
    v
}

fn register(t: &mut SlotTable<Art>, d: CallableDigest) -> Result<SlotReply, SlotError> {
    step(t, SlotInput::Register { digest: d })
}

/// Register `d` into a new slot; checks the reply and the `StartPrepare`.
fn register_fresh(t: &mut SlotTable<Art>, d: CallableDigest) -> CallableHandle {
    let Ok(SlotReply::Registered { handle, fresh: true }) = register(t, d) else { panic!("fresh register expected") };
    assert_eq!(drain(t), vec![Out::Start(handle, d)]);
    handle
}

fn finish(
    t: &mut SlotTable<Art>,
    handle: CallableHandle,
    result: Result<Art, ChipError>,
) -> Result<SlotReply, SlotError> {
    step(t, SlotInput::PrepareFinished { handle, result })
}

fn unregister(t: &mut SlotTable<Art>, handle: CallableHandle) -> Result<SlotReply, SlotError> {
    step(t, SlotInput::Unregister { handle })
}

fn pin(t: &mut SlotTable<Art>, handle: CallableHandle) -> Result<SlotReply, SlotError> {
    step(t, SlotInput::Pin { handle })
}

fn unpin(t: &mut SlotTable<Art>, handle: CallableHandle) -> Result<SlotReply, SlotError> {
    step(t, SlotInput::Unpin { handle })
}

/// Register `d` and prepare it successfully with artifact `id`.
fn prepared(t: &mut SlotTable<Art>, d: CallableDigest, id: u64) -> CallableHandle {
    let handle = register_fresh(t, d);
    assert_eq!(finish(t, handle, Ok(Art(id))), Ok(SlotReply::PrepareApplied));
    assert_eq!(drain(t), vec![Out::Settled(handle, Ok(()))]);
    assert_eq!(t.state(handle.index), Some(SlotState::Prepared));
    handle
}

fn runnable_id(t: &SlotTable<Art>, handle: CallableHandle) -> Result<Option<u64>, RunError> {
    t.runnable(handle).map(|a| a.map(|a| a.0))
}

const LAST: Result<SlotReply, SlotError> = Ok(SlotReply::Unregistered { last: true });
const NOT_LAST: Result<SlotReply, SlotError> = Ok(SlotReply::Unregistered { last: false });
const UNPINNED: Result<SlotReply, SlotError> = Ok(SlotReply::Unpinned);

// ---- EMPTY --register--> PREPARING ----------------------------------------

#[test]
fn new_table_is_empty() {
    let t = table(4, 10);
    assert_eq!(t.worker(), W);
    assert_eq!(t.live_slots(), 0);
    assert_eq!(t.check_invariants(), Ok(()));
    for i in 0..4 {
        assert_eq!(t.state(SlotIndex(i)), Some(SlotState::Empty));
        assert_eq!(t.pins(SlotIndex(i)), 0);
        assert_eq!(t.registrations(SlotIndex(i)), 0);
    }
    assert_eq!(t.state(SlotIndex(4)), None);
}

#[test]
fn register_takes_an_empty_slot_with_generation_one_and_starts_a_prepare() {
    let mut t = table(4, 10);
    let a = register_fresh(&mut t, dg(1));
    assert_eq!(a, h(0, 1));
    assert_eq!(t.state(a.index), Some(SlotState::Preparing));
    assert_eq!(t.registrations(a.index), 1);
    assert_eq!(t.lookup(&dg(1)), Some(a));
    assert_eq!(t.live_slots(), 1);
    // A second digest takes the next (lowest) EMPTY slot.
    let b = register_fresh(&mut t, dg(2));
    assert_eq!(b, h(1, 1));
    assert_eq!(t.live_slots(), 2);
}

#[test]
fn register_of_a_registered_digest_returns_the_same_handle_and_counts() {
    let mut t = table(4, 10);
    let a = register_fresh(&mut t, dg(1));
    // ... while PREPARING,
    assert_eq!(register(&mut t, dg(1)), Ok(SlotReply::Registered { handle: a, fresh: false }));
    assert_eq!(t.registrations(a.index), 2);
    assert_eq!(drain(&mut t), vec![], "no second prepare");
    // ... while PREPARED,
    assert_eq!(finish(&mut t, a, Ok(Art(1))), Ok(SlotReply::PrepareApplied));
    let _ = drain(&mut t);
    assert_eq!(register(&mut t, dg(1)), Ok(SlotReply::Registered { handle: a, fresh: false }));
    assert_eq!(t.registrations(a.index), 3);
    // ... and while FAILED.
    let b = register_fresh(&mut t, dg(2));
    assert_eq!(finish(&mut t, b, Err(err("boom"))), Ok(SlotReply::PrepareApplied));
    let _ = drain(&mut t);
    assert_eq!(register(&mut t, dg(2)), Ok(SlotReply::Registered { handle: b, fresh: false }));
    assert_eq!(t.registrations(b.index), 2);
    assert_eq!(drain(&mut t), vec![]);
}

// ---- PREPARING --prepare ok/err--> PREPARED / FAILED -----------------------

#[test]
fn prepare_ok_publishes_prepared_and_settles_ok() {
    let mut t = table(2, 10);
    let a = register_fresh(&mut t, dg(1));
    assert_eq!(runnable_id(&t, a), Ok(None), "PREPARING: wait");
    assert_eq!(finish(&mut t, a, Ok(Art(11))), Ok(SlotReply::PrepareApplied));
    assert_eq!(drain(&mut t), vec![Out::Settled(a, Ok(()))]);
    assert_eq!(t.state(a.index), Some(SlotState::Prepared));
    assert_eq!(runnable_id(&t, a), Ok(Some(11)));
    assert_eq!(t.check(a), Ok(SlotState::Prepared));
}

#[test]
fn prepare_err_records_failed_and_settles_err() {
    let mut t = table(2, 10);
    let a = register_fresh(&mut t, dg(1));
    assert_eq!(finish(&mut t, a, Err(err("bad kernel"))), Ok(SlotReply::PrepareApplied));
    assert_eq!(drain(&mut t), vec![Out::Settled(a, Err(RegisterError::PrepareFailed(err("bad kernel"))))]);
    assert_eq!(t.state(a.index), Some(SlotState::Failed));
    assert_eq!(t.lookup(&dg(1)), Some(a), "FAILED stays registered until unregistered");
    assert_eq!(runnable_id(&t, a), Err(RunError::PrepareFailed(err("bad kernel"))));
}

// ---- pin ------------------------------------------------------------------

#[test]
fn pin_on_prepared_is_ready() {
    let mut t = table(2, 10);
    let a = prepared(&mut t, dg(1), 1);
    assert_eq!(pin(&mut t, a), Ok(SlotReply::Pinned { ready: true }));
    assert_eq!(pin(&mut t, a), Ok(SlotReply::Pinned { ready: true }));
    assert_eq!(t.pins(a.index), 2);
    assert_eq!(unpin(&mut t, a), UNPINNED);
    assert_eq!(unpin(&mut t, a), UNPINNED);
    assert_eq!(t.pins(a.index), 0);
    assert_eq!(t.state(a.index), Some(SlotState::Prepared), "unpin never frees a registered slot");
    assert_eq!(drain(&mut t), vec![]);
}

#[test]
fn pin_on_preparing_waits_until_settled() {
    let mut t = table(2, 10);
    let a = register_fresh(&mut t, dg(1));
    assert_eq!(pin(&mut t, a), Ok(SlotReply::Pinned { ready: false }));
    assert_eq!(runnable_id(&t, a), Ok(None));
    assert_eq!(finish(&mut t, a, Ok(Art(5))), Ok(SlotReply::PrepareApplied));
    assert_eq!(drain(&mut t), vec![Out::Settled(a, Ok(()))]);
    assert_eq!(runnable_id(&t, a), Ok(Some(5)));
    assert_eq!(unpin(&mut t, a), UNPINNED);
}

#[test]
fn pin_on_preparing_then_prepare_fails_fails_the_run() {
    let mut t = table(2, 10);
    let a = register_fresh(&mut t, dg(1));
    assert_eq!(pin(&mut t, a), Ok(SlotReply::Pinned { ready: false }));
    assert_eq!(finish(&mut t, a, Err(err("oom"))), Ok(SlotReply::PrepareApplied));
    let _ = drain(&mut t);
    assert_eq!(runnable_id(&t, a), Err(RunError::PrepareFailed(err("oom"))));
    assert_eq!(unpin(&mut t, a), UNPINNED);
}

#[test]
fn pin_on_failed_is_rejected_with_the_prepare_error() {
    let mut t = table(2, 10);
    let a = register_fresh(&mut t, dg(1));
    assert_eq!(finish(&mut t, a, Err(err("oom"))), Ok(SlotReply::PrepareApplied));
    let _ = drain(&mut t);
    assert_eq!(pin(&mut t, a), Err(SlotError::Pin(RunError::PrepareFailed(err("oom")))));
    assert_eq!(t.pins(a.index), 0, "a rejected pin takes nothing");
}

#[test]
fn pin_and_run_on_empty_are_rejected_at_once() {
    let mut t = table(2, 10);
    // Never registered: generation 0 matches, the slot is EMPTY.
    let never = h(0, 0);
    assert_eq!(t.check(never), Ok(SlotState::Empty));
    assert_eq!(pin(&mut t, never), Err(SlotError::Pin(RunError::NotRunnable(SlotState::Empty))));
    assert_eq!(runnable_id(&t, never), Err(RunError::NotRunnable(SlotState::Empty)));
    // Freed: its generation is still current until the slot is reused.
    let a = prepared(&mut t, dg(1), 1);
    assert_eq!(unregister(&mut t, a), LAST);
    let _ = drain(&mut t);
    assert_eq!(t.state(a.index), Some(SlotState::Empty));
    assert_eq!(pin(&mut t, a), Err(SlotError::Pin(RunError::NotRunnable(SlotState::Empty))));
    assert_eq!(runnable_id(&t, a), Err(RunError::NotRunnable(SlotState::Empty)));
    assert_eq!(t.pins(a.index), 0);
}

// ---- unregister -----------------------------------------------------------

#[test]
fn non_final_unregister_only_counts_down() {
    let mut t = table(2, 10);
    let a = prepared(&mut t, dg(1), 1);
    let _ = register(&mut t, dg(1));
    assert_eq!(unregister(&mut t, a), NOT_LAST);
    assert_eq!(t.registrations(a.index), 1);
    assert_eq!(t.state(a.index), Some(SlotState::Prepared));
    assert_eq!(t.lookup(&dg(1)), Some(a));
    assert_eq!(drain(&mut t), vec![]);
    assert_eq!(unregister(&mut t, a), LAST);
    assert_eq!(drain(&mut t), vec![Out::Release(a, 1), Out::Freed(a)]);
}

#[test]
fn final_unregister_of_unpinned_prepared_frees_at_once() {
    let mut t = table(2, 10);
    let a = prepared(&mut t, dg(1), 42);
    assert_eq!(unregister(&mut t, a), LAST);
    assert_eq!(drain(&mut t), vec![Out::Release(a, 42), Out::Freed(a)]);
    assert_eq!(t.state(a.index), Some(SlotState::Empty));
    assert_eq!(t.lookup(&dg(1)), None);
    assert_eq!(t.live_slots(), 0);
}

#[test]
fn final_unregister_of_pinned_prepared_defers_the_free_to_the_last_unpin() {
    let mut t = table(2, 10);
    let a = prepared(&mut t, dg(1), 42);
    assert_eq!(pin(&mut t, a), Ok(SlotReply::Pinned { ready: true }));
    assert_eq!(pin(&mut t, a), Ok(SlotReply::Pinned { ready: true }));
    assert_eq!(unregister(&mut t, a), LAST);
    assert_eq!(drain(&mut t), vec![], "no release while pinned");
    assert_eq!(t.state(a.index), Some(SlotState::Unregistering));
    assert_eq!(t.lookup(&dg(1)), None, "digest leaves the lookup at once");
    // Tombstone: no new pins, but the runs pinned before still run.
    assert_eq!(pin(&mut t, a), Err(SlotError::Pin(RunError::NotRunnable(SlotState::Unregistering))));
    assert_eq!(runnable_id(&t, a), Ok(Some(42)));
    assert_eq!(unpin(&mut t, a), UNPINNED);
    assert_eq!(drain(&mut t), vec![], "one pin still held");
    assert_eq!(runnable_id(&t, a), Ok(Some(42)));
    assert_eq!(unpin(&mut t, a), UNPINNED);
    assert_eq!(drain(&mut t), vec![Out::Release(a, 42), Out::Freed(a)]);
    assert_eq!(t.state(a.index), Some(SlotState::Empty));
    assert_eq!(unpin(&mut t, a), Err(SlotError::Unpin(HandleError::Stale { current: a.generation })));
    assert_eq!(drain(&mut t), vec![], "released exactly once");
}

#[test]
fn final_unregister_of_failed_frees_without_release() {
    let mut t = table(2, 10);
    let a = register_fresh(&mut t, dg(1));
    let _ = finish(&mut t, a, Err(err("x")));
    let _ = drain(&mut t);
    assert_eq!(unregister(&mut t, a), LAST);
    assert_eq!(drain(&mut t), vec![Out::Freed(a)]);
    assert_eq!(t.state(a.index), Some(SlotState::Empty));
    assert_eq!(t.lookup(&dg(1)), None);
}

#[test]
fn final_unregister_of_pinned_failed_waits_for_the_unpin() {
    let mut t = table(2, 10);
    let a = register_fresh(&mut t, dg(1));
    assert_eq!(pin(&mut t, a), Ok(SlotReply::Pinned { ready: false }));
    let _ = finish(&mut t, a, Err(err("x")));
    let _ = drain(&mut t);
    assert_eq!(unregister(&mut t, a), LAST);
    assert_eq!(drain(&mut t), vec![]);
    assert_eq!(t.state(a.index), Some(SlotState::Unregistering));
    assert_eq!(runnable_id(&t, a), Err(RunError::PrepareFailed(err("x"))));
    assert_eq!(unpin(&mut t, a), UNPINNED);
    assert_eq!(drain(&mut t), vec![Out::Freed(a)]);
    assert_eq!(t.state(a.index), Some(SlotState::Empty));
}

#[test]
fn unregister_twice_is_not_registered() {
    let mut t = table(2, 10);
    // Tombstoned (UNREGISTERING).
    let a = prepared(&mut t, dg(1), 1);
    let _ = pin(&mut t, a);
    assert_eq!(unregister(&mut t, a), LAST);
    assert_eq!(unregister(&mut t, a), Err(SlotError::Unregister(UnregisterError::NotRegistered)));
    let _ = unpin(&mut t, a);
    assert_eq!(drain(&mut t), vec![Out::Release(a, 1), Out::Freed(a)]);
    // Freed (EMPTY, same generation).
    assert_eq!(unregister(&mut t, a), Err(SlotError::Unregister(UnregisterError::NotRegistered)));
    // Cancelling (slot 0 again, generation 2).
    let b = register_fresh(&mut t, dg(2));
    assert_eq!(b, h(0, 2));
    assert_eq!(unregister(&mut t, b), LAST);
    assert_eq!(unregister(&mut t, b), Err(SlotError::Unregister(UnregisterError::NotRegistered)));
    let _ = drain(&mut t);
    // Reused slot: the old handle is stale.
    let _ = finish(&mut t, b, Ok(Art(2)));
    let _ = drain(&mut t);
    let c = register_fresh(&mut t, dg(3));
    assert_eq!(c, h(0, 3));
    assert_eq!(
        unregister(&mut t, a),
        Err(SlotError::Unregister(UnregisterError::Handle(HandleError::Stale { current: Generation(3) })))
    );
    assert_eq!(t.registrations(c.index), 1, "a stale unregister touches nothing");
}

#[test]
fn register_while_tombstoned_gets_a_fresh_slot_and_generation() {
    let mut t = table(3, 10);
    let a = prepared(&mut t, dg(1), 1);
    let _ = pin(&mut t, a);
    assert_eq!(unregister(&mut t, a), LAST);
    let b = register_fresh(&mut t, dg(1));
    assert_ne!(b.index, a.index);
    assert_eq!(t.lookup(&dg(1)), Some(b));
    assert_eq!(t.state(a.index), Some(SlotState::Unregistering));
    // Same while CANCELLING.
    assert_eq!(unregister(&mut t, b), LAST);
    assert_eq!(drain(&mut t), vec![Out::Cancel(b), Out::Settled(b, Err(RegisterError::Cancelled))]);
    let c = register_fresh(&mut t, dg(1));
    assert_ne!(c.index, b.index);
    assert_ne!(c.index, a.index);
    assert_eq!(t.live_slots(), 3);
}

// ---- PREPARING --final unregister--> CANCELLING ----------------------------

#[test]
fn final_unregister_while_preparing_cancels_and_settles_cancelled() {
    let mut t = table(2, 10);
    let a = register_fresh(&mut t, dg(1));
    assert_eq!(unregister(&mut t, a), LAST);
    assert_eq!(drain(&mut t), vec![Out::Cancel(a), Out::Settled(a, Err(RegisterError::Cancelled))]);
    assert_eq!(t.state(a.index), Some(SlotState::Cancelling));
    assert_eq!(t.lookup(&dg(1)), None);
    assert_eq!(pin(&mut t, a), Err(SlotError::Pin(RunError::NotRunnable(SlotState::Cancelling))));
    assert_eq!(runnable_id(&t, a), Err(RunError::Cancelled));
}

#[test]
fn cancelled_prepare_that_returns_an_artifact_is_released_never_published() {
    let mut t = table(2, 10);
    let a = register_fresh(&mut t, dg(1));
    assert_eq!(unregister(&mut t, a), LAST);
    let _ = drain(&mut t);
    assert_eq!(finish(&mut t, a, Ok(Art(9))), Ok(SlotReply::PrepareApplied));
    assert_eq!(drain(&mut t), vec![Out::Release(a, 9), Out::Freed(a)], "no second Settled, no PREPARED");
    assert_eq!(t.state(a.index), Some(SlotState::Empty));
    assert_eq!(pin(&mut t, a), Err(SlotError::Pin(RunError::NotRunnable(SlotState::Empty))));
}

#[test]
fn cancelled_prepare_that_returns_an_error_frees_without_release() {
    let mut t = table(2, 10);
    let a = register_fresh(&mut t, dg(1));
    assert_eq!(unregister(&mut t, a), LAST);
    let _ = drain(&mut t);
    let cancelled = ChipError::new(ChipErrorKind::Cancelled, "stopped");
    assert_eq!(finish(&mut t, a, Err(cancelled)), Ok(SlotReply::PrepareApplied));
    assert_eq!(drain(&mut t), vec![Out::Freed(a)]);
    assert_eq!(t.state(a.index), Some(SlotState::Empty));
}

#[test]
fn cancelling_slot_with_a_waiting_run_frees_after_prepare_and_unpin() {
    let mut t = table(2, 10);
    let a = register_fresh(&mut t, dg(1));
    assert_eq!(pin(&mut t, a), Ok(SlotReply::Pinned { ready: false }));
    assert_eq!(unregister(&mut t, a), LAST);
    let _ = drain(&mut t);
    assert_eq!(runnable_id(&t, a), Err(RunError::Cancelled));
    // Prepare returns first: artifact released at once, slot waits for unpin.
    assert_eq!(finish(&mut t, a, Ok(Art(3))), Ok(SlotReply::PrepareApplied));
    assert_eq!(drain(&mut t), vec![Out::Release(a, 3)]);
    assert_eq!(t.state(a.index), Some(SlotState::Cancelling));
    assert_eq!(runnable_id(&t, a), Err(RunError::Cancelled));
    assert_eq!(unpin(&mut t, a), UNPINNED);
    assert_eq!(drain(&mut t), vec![Out::Freed(a)]);
    assert_eq!(t.state(a.index), Some(SlotState::Empty));
}

#[test]
fn cancelling_slot_unpinned_first_frees_when_the_prepare_returns() {
    let mut t = table(2, 10);
    let a = register_fresh(&mut t, dg(1));
    let _ = pin(&mut t, a);
    assert_eq!(unregister(&mut t, a), LAST);
    let _ = drain(&mut t);
    assert_eq!(unpin(&mut t, a), UNPINNED);
    assert_eq!(drain(&mut t), vec![], "prepare still in flight");
    assert_eq!(t.state(a.index), Some(SlotState::Cancelling));
    assert_eq!(finish(&mut t, a, Ok(Art(4))), Ok(SlotReply::PrepareApplied));
    assert_eq!(drain(&mut t), vec![Out::Release(a, 4), Out::Freed(a)]);
}

// ---- completions: stale, duplicate --------------------------------------

#[test]
fn stale_completion_is_dropped_counted_and_its_artifact_released() {
    let mut t = table(1, 10);
    let a = prepared(&mut t, dg(1), 1);
    assert_eq!(unregister(&mut t, a), LAST);
    let _ = drain(&mut t);
    let b = register_fresh(&mut t, dg(2));
    assert_eq!(b, h(0, 2));
    // A late duplicate of generation 1's completion.
    assert_eq!(finish(&mut t, a, Ok(Art(77))), Ok(SlotReply::PrepareStale));
    assert_eq!(t.stale_completions(), 1);
    assert_eq!(drain(&mut t), vec![Out::Release(a, 77)]);
    assert_eq!(t.state(b.index), Some(SlotState::Preparing), "not applied to generation 2");
    assert_eq!(runnable_id(&t, b), Ok(None));
    // A stale error carries nothing to release.
    assert_eq!(finish(&mut t, a, Err(err("late"))), Ok(SlotReply::PrepareStale));
    assert_eq!(t.stale_completions(), 2);
    assert_eq!(drain(&mut t), vec![]);
    // A generation that was never issued is stale as well.
    assert_eq!(finish(&mut t, h(0, 9), Ok(Art(78))), Ok(SlotReply::PrepareStale));
    assert_eq!(t.stale_completions(), 3);
    assert_eq!(drain(&mut t), vec![Out::Release(h(0, 9), 78)]);
    // The real completion still applies.
    assert_eq!(finish(&mut t, b, Ok(Art(2))), Ok(SlotReply::PrepareApplied));
    assert_eq!(runnable_id(&t, b), Ok(Some(2)));
}

#[test]
fn duplicate_completion_of_the_current_generation_is_rejected_and_released() {
    let mut t = table(1, 10);
    let a = prepared(&mut t, dg(1), 1);
    assert_eq!(finish(&mut t, a, Ok(Art(2))), Err(SlotError::Prepare(HandleError::Stale { current: a.generation })));
    assert_eq!(drain(&mut t), vec![Out::Release(a, 2)]);
    assert_eq!(runnable_id(&t, a), Ok(Some(1)), "the first artifact stays");
    assert_eq!(t.stale_completions(), 0);
    // After a cancel completed, likewise.
    assert_eq!(unregister(&mut t, a), LAST);
    let _ = drain(&mut t);
    assert_eq!(finish(&mut t, a, Ok(Art(3))), Err(SlotError::Prepare(HandleError::Stale { current: a.generation })));
    assert_eq!(drain(&mut t), vec![Out::Release(a, 3)]);
}

// ---- handles: stale, foreign, out of range --------------------------------

#[test]
fn stale_handle_is_rejected_on_every_use() {
    let mut t = table(1, 10);
    let old = prepared(&mut t, dg(1), 1);
    assert_eq!(unregister(&mut t, old), LAST);
    let _ = drain(&mut t);
    let new = prepared(&mut t, dg(2), 2);
    let stale = HandleError::Stale { current: new.generation };
    assert_eq!(t.check(old), Err(stale));
    assert_eq!(pin(&mut t, old), Err(SlotError::Pin(RunError::Handle(stale))));
    assert_eq!(runnable_id(&t, old), Err(RunError::Handle(stale)));
    assert_eq!(unregister(&mut t, old), Err(SlotError::Unregister(UnregisterError::Handle(stale))));
    let _ = pin(&mut t, new);
    assert_eq!(unpin(&mut t, old), Err(SlotError::Unpin(stale)));
    assert_eq!(t.pins(new.index), 1);
    assert_eq!(t.registrations(new.index), 1);
    // A generation from the future is just as stale.
    let future = h(0, 5);
    assert_eq!(pin(&mut t, future), Err(SlotError::Pin(RunError::Handle(stale))));
    assert_eq!(drain(&mut t), vec![]);
}

#[test]
fn foreign_and_out_of_range_handles_are_rejected_on_every_use() {
    let mut t = table(2, 10);
    let a = prepared(&mut t, dg(1), 1);
    let foreign = CallableHandle { worker: WorkerId(8), ..a };
    let fe = HandleError::Foreign { expected: W, got: WorkerId(8) };
    assert_eq!(t.check(foreign), Err(fe));
    assert_eq!(pin(&mut t, foreign), Err(SlotError::Pin(RunError::Handle(fe))));
    assert_eq!(runnable_id(&t, foreign), Err(RunError::Handle(fe)));
    assert_eq!(unpin(&mut t, foreign), Err(SlotError::Unpin(fe)));
    assert_eq!(unregister(&mut t, foreign), Err(SlotError::Unregister(UnregisterError::Handle(fe))));
    assert_eq!(finish(&mut t, foreign, Ok(Art(5))), Err(SlotError::Prepare(fe)));
    assert_eq!(drain(&mut t), vec![Out::Release(foreign, 5)], "a rejected artifact is still released");

    let out = h(2, 1);
    let oe = HandleError::OutOfRange;
    assert_eq!(t.check(out), Err(oe));
    assert_eq!(pin(&mut t, out), Err(SlotError::Pin(RunError::Handle(oe))));
    assert_eq!(runnable_id(&t, out), Err(RunError::Handle(oe)));
    assert_eq!(unpin(&mut t, out), Err(SlotError::Unpin(oe)));
    assert_eq!(unregister(&mut t, out), Err(SlotError::Unregister(UnregisterError::Handle(oe))));
    assert_eq!(finish(&mut t, out, Err(err("x"))), Err(SlotError::Prepare(oe)));
    assert_eq!(drain(&mut t), vec![]);
    assert_eq!(t.pins(SlotIndex(2)), 0);
    assert_eq!(t.registrations(SlotIndex(2)), 0);
    // Nothing changed in the real slot.
    assert_eq!(t.registrations(a.index), 1);
    assert_eq!(t.pins(a.index), 0);
    assert_eq!(t.stale_completions(), 0);
}

#[test]
fn unpin_without_a_pin_is_rejected() {
    let mut t = table(1, 10);
    let a = prepared(&mut t, dg(1), 1);
    assert_eq!(unpin(&mut t, a), Err(SlotError::Unpin(HandleError::Stale { current: a.generation })));
    assert_eq!(t.pins(a.index), 0);
    let _ = pin(&mut t, a);
    assert_eq!(unpin(&mut t, a), UNPINNED);
    assert_eq!(unpin(&mut t, a), Err(SlotError::Unpin(HandleError::Stale { current: a.generation })));
}

// ---- generation retirement, table full ------------------------------------

#[test]
fn slot_retires_at_generation_max_and_is_never_reused() {
    let mut t = table(2, 2);
    for generation in 1..=2 {
        let a = prepared(&mut t, dg(1), u64::from(generation));
        assert_eq!(a, h(0, generation));
        assert_eq!(unregister(&mut t, a), LAST);
        assert_eq!(drain(&mut t), vec![Out::Release(a, u64::from(generation)), Out::Freed(a)]);
    }
    assert_eq!(t.state(SlotIndex(0)), Some(SlotState::Retired));
    assert_eq!(t.live_slots(), 0);
    // The retired slot's last handle is current but not runnable.
    assert_eq!(pin(&mut t, h(0, 2)), Err(SlotError::Pin(RunError::NotRunnable(SlotState::Retired))));
    assert_eq!(runnable_id(&t, h(0, 2)), Err(RunError::NotRunnable(SlotState::Retired)));
    assert_eq!(unregister(&mut t, h(0, 2)), Err(SlotError::Unregister(UnregisterError::NotRegistered)));
    // Register uses the other slot, then the table is full.
    let b = prepared(&mut t, dg(1), 3);
    assert_eq!(b, h(1, 1));
    assert_eq!(register(&mut t, dg(2)), Err(SlotError::Register(RegisterError::TableFull)));
    let _ = unregister(&mut t, b);
    let _ = drain(&mut t);
    let c = register_fresh(&mut t, dg(2));
    assert_eq!(c, h(1, 2));
    let _ = unregister(&mut t, c);
    let _ = finish(&mut t, c, Ok(Art(4)));
    assert_eq!(
        drain(&mut t),
        vec![Out::Cancel(c), Out::Settled(c, Err(RegisterError::Cancelled)), Out::Release(c, 4), Out::Freed(c)]
    );
    assert_eq!(t.state(SlotIndex(1)), Some(SlotState::Retired), "retires through the cancel path too");
    assert_eq!(register(&mut t, dg(3)), Err(SlotError::Register(RegisterError::TableFull)));
}

#[test]
fn deferred_free_at_generation_max_retires() {
    let mut t = table(1, 1);
    let a = prepared(&mut t, dg(1), 1);
    let _ = pin(&mut t, a);
    assert_eq!(unregister(&mut t, a), LAST);
    assert_eq!(t.state(a.index), Some(SlotState::Unregistering));
    assert_eq!(unpin(&mut t, a), UNPINNED);
    assert_eq!(drain(&mut t), vec![Out::Release(a, 1), Out::Freed(a)]);
    assert_eq!(t.state(a.index), Some(SlotState::Retired));
    assert_eq!(register(&mut t, dg(1)), Err(SlotError::Register(RegisterError::TableFull)));
}

#[test]
fn generation_max_zero_retires_every_slot() {
    let mut t = table(2, 0);
    assert_eq!(t.state(SlotIndex(0)), Some(SlotState::Retired));
    assert_eq!(register(&mut t, dg(1)), Err(SlotError::Register(RegisterError::TableFull)));
    assert_eq!(drain(&mut t), vec![]);
}

#[test]
fn table_full_until_a_slot_is_freed() {
    let mut t = table(2, 10);
    let a = prepared(&mut t, dg(1), 1);
    let _b = register_fresh(&mut t, dg(2));
    assert_eq!(register(&mut t, dg(3)), Err(SlotError::Register(RegisterError::TableFull)));
    assert_eq!(drain(&mut t), vec![], "a refused register queues nothing");
    // A registered digest still registers (no new slot needed).
    assert_eq!(register(&mut t, dg(1)), Ok(SlotReply::Registered { handle: a, fresh: false }));
    // A tombstoned slot is not free.
    let _ = pin(&mut t, a);
    assert_eq!(unregister(&mut t, a), NOT_LAST);
    assert_eq!(unregister(&mut t, a), LAST);
    assert_eq!(register(&mut t, dg(3)), Err(SlotError::Register(RegisterError::TableFull)));
    assert_eq!(unpin(&mut t, a), UNPINNED);
    let _ = drain(&mut t);
    assert_eq!(register_fresh(&mut t, dg(3)), h(0, 2));
}

#[test]
fn outputs_come_out_once_in_the_order_owed() {
    let mut t = table(3, 10);
    let a = register_fresh(&mut t, dg(1));
    let b = register_fresh(&mut t, dg(2));
    let _ = finish(&mut t, b, Ok(Art(2)));
    let _ = unregister(&mut t, a);
    let _ = unregister(&mut t, b);
    let c = match register(&mut t, dg(3)) {
        Ok(SlotReply::Registered { handle, .. }) => handle,
        other => panic!("{other:?}"),
    };
    let _ = finish(&mut t, a, Ok(Art(1)));
    assert_eq!(
        drain(&mut t),
        vec![
            Out::Settled(b, Ok(())),
            Out::Cancel(a),
            Out::Settled(a, Err(RegisterError::Cancelled)),
            Out::Release(b, 2),
            Out::Freed(b),
            Out::Start(c, dg(3)),
            Out::Release(a, 1),
            Out::Freed(a),
        ]
    );
    assert!(t.poll().is_none());
}
