//! A rogue chip child (`chiplane-rogue-child`) answers with malformed
//! frames. The parent must validate everything it reads from the child:
//! each case ends in a typed error (`EndpointError::Poisoned(reason)`), the
//! endpoint is poisoned (the word holds POISONED, the child is killed and
//! reaped, new work fails at once), and the parent never panics or reads
//! out of bounds.

mod common;

use std::path::PathBuf;

use chiplane_core::chip::{CallableSpec, RunConfig, TaskArgs};
use chiplane_core::conc::word::POISONED;
use chiplane_core::error::{EndpointError, PoisonReason, RegisterError, RunError};
use chiplane_core::frame::FrameError;
use chiplane_core::kernels::VECTOR_ADD;
use chiplane_core::{CallableHandle, Generation, SlotIndex};
use chiplane_hw::l3::{L3Config, L3Worker};

fn rogue(mode: &str) -> L3Worker {
    let cfg = L3Config {
        chips: 1,
        child_exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_chiplane-rogue-child"))),
        child_args: vec![mode.to_string()],
        quiet_children: true,
        ..L3Config::default()
    };
    cfg.start().unwrap()
}

fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    common::within("the rogue's answer", f)
}

/// Submit one task with a made-up handle of the rogue's worker id; its
/// result.
fn task_error(w: &L3Worker) -> RunError {
    let h = CallableHandle { worker: w.chip_worker(0).unwrap(), index: SlotIndex(0), generation: Generation(1) };
    let run = w.run_async(move |o| {
        o.submit(h, TaskArgs { tensors: vec![vec![1.0; 4]; 2], scalars: vec![] }, RunConfig::default()).unwrap()
    });
    let out = within(move || run.wait());
    out.tasks.into_iter().next().unwrap().unwrap_err()
}

fn poisoned(e: &RunError) -> PoisonReason {
    match e {
        RunError::Endpoint(EndpointError::Poisoned(r)) => r.clone(),
        other => panic!("expected a poisoned endpoint, got {other:?}"),
    }
}

/// The endpoint stays poisoned: the word says so and new work fails at the
/// call, with the same error.
fn assert_poisoned(w: &L3Worker, reason: &PoisonReason) {
    assert_eq!(w.word(0), Some(POISONED));
    assert_eq!(w.chip_error(0), Some(EndpointError::Poisoned(reason.clone())));
    let again = w.register_async(CallableSpec::chip(VECTOR_ADD, vec![4]));
    assert_eq!(again.unwrap_err(), RegisterError::Endpoint(EndpointError::Poisoned(reason.clone())));
}

#[test]
fn oversized_result_length_is_a_typed_error_not_an_out_of_bounds_read() {
    let w = rogue("bad-result-len");
    let reason = poisoned(&task_error(&w));
    assert!(matches!(reason, PoisonReason::MalformedFrame(FrameError::TooLarge { .. })), "{reason:?}");
    assert_poisoned(&w, &reason);
}

#[test]
fn invalid_result_tag_poisons() {
    let w = rogue("bad-result-tag");
    let reason = poisoned(&task_error(&w));
    assert!(matches!(reason, PoisonReason::MalformedFrame(FrameError::InvalidField(_))), "{reason:?}");
    assert_poisoned(&w, &reason);
}

#[test]
fn result_for_another_dispatch_poisons() {
    let w = rogue("wrong-dispatch");
    let reason = poisoned(&task_error(&w));
    assert_eq!(reason, PoisonReason::IdentityMismatch);
    assert_poisoned(&w, &reason);
}

#[test]
fn undefined_word_value_poisons() {
    let w = rogue("bad-word");
    let reason = poisoned(&task_error(&w));
    assert_eq!(reason, PoisonReason::UnexpectedState(77));
    assert_poisoned(&w, &reason);
}

#[test]
fn corrupt_ring_tail_poisons_the_control() {
    let w = rogue("bad-ring");
    let reg = w.register_async(CallableSpec::chip(VECTOR_ADD, vec![4])).unwrap();
    let r = within(move || reg.wait());
    let reason = match r {
        Err(RegisterError::Endpoint(EndpointError::Poisoned(reason))) => reason,
        other => panic!("{other:?}"),
    };
    assert!(matches!(reason, PoisonReason::MalformedFrame(FrameError::TooLarge { .. })), "{reason:?}");
    assert_poisoned(&w, &reason);
}

/// Rule 12 through a rogue child (the hang): a completion that
/// poisons the endpoint is popped while a task submission's `Write` + `Cas`
/// are queued in the parent machine (the port pops the ring before it
/// executes queued outputs). The machine withdraws them: no stale CAS runs
/// against the word, no driver panics, every handle resolves with the
/// typed poison, and the word ends POISONED.
#[test]
fn a_poisoning_completion_while_a_task_is_queued_resolves_everything() {
    let w = rogue("bad-completion");
    // A fresh register: accepted (the rogue answers properly), so the
    // parent owes... expects its settlement through the ring.
    let mut reg = w.register_async(CallableSpec::chip(VECTOR_ADD, vec![4])).unwrap();
    let h = reg.wait_accepted().unwrap();
    let link = common::link(&w, 0);
    // Hold the parent side, then give the rogue its go signal (the shutdown
    // flag, which only the child reads) and wait, still holding the port,
    // for its push: nobody else can pop the ring while the port is held, so
    // the completion is still in the ring when the task is queued.
    let mut port = link.port();
    link.region().request_shutdown();
    let deadline = std::time::Instant::now() + common::BOUND;
    while !ring_has_entry(&link) {
        assert!(std::time::Instant::now() < deadline, "the rogue never pushed its completion");
        std::thread::yield_now();
    }
    let task = port
        .submit_task(
            h.index,
            h.generation,
            RunConfig::default(),
            TaskArgs { tensors: vec![vec![1.0; 4]; 2], scalars: vec![] },
        )
        .unwrap();
    // Before rule 12 this step ran the withdrawn Write + Cas and panicked
    // ("CasResult without a Cas"); the worker then hung.
    let _ = port.progress();
    drop(port);
    let r = within(move || {
        link.wait_until(|| task.is_ready());
        task.try_take().unwrap()
    });
    assert_eq!(r, Err(RunError::Endpoint(EndpointError::Poisoned(PoisonReason::IdentityMismatch))));
    let settled = within(move || reg.wait());
    assert_eq!(settled, Err(RegisterError::Endpoint(EndpointError::Poisoned(PoisonReason::IdentityMismatch))));
    assert_poisoned(&w, &PoisonReason::IdentityMismatch);
}

/// The rogue pushed its completion: the ring's tail moved past the head.
fn ring_has_entry(link: &common::HwLink) -> bool {
    // The tail is the first u64 of line 2 (offset 128) of the region.
    let base = link.region() as *const chiplane_core::conc::region::Region as *const u8;
    // SAFETY: offset 128 is the ring tail, an 8-aligned AtomicU64 inside the
    // live region (layout of core::conc::region); read atomically.
    let tail = unsafe { &*(base.add(128) as *const std::sync::atomic::AtomicU64) };
    // Acquire: pairs with the rogue's Release store of the tail.
    tail.load(std::sync::atomic::Ordering::Acquire) > 0
}
