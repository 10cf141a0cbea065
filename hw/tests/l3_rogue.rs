//! A rogue chip child (`chiplane-rogue-child`) answers with malformed
//! frames. The parent must validate everything it reads from the child:
//! each case ends in a typed error (`EndpointError::Poisoned(reason)`), the
//! endpoint is poisoned (the word holds POISONED, the child is killed and
//! reaped, new work fails at once), and the parent never panics or reads
//! out of bounds.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use chiplane_core::chip::{CallableSpec, RunConfig, TaskArgs};
use chiplane_core::conc::word::POISONED;
use chiplane_core::error::{ControlError, EndpointError, PoisonReason, RunError};
use chiplane_core::frame::FrameError;
use chiplane_core::kernels::VECTOR_ADD;
use chiplane_core::{Generation, Handle, SlotIndex};
use chiplane_hw::l3::{L3Config, L3Error, L3Worker};

const BOUND: Duration = Duration::from_secs(20);

fn rogue(mode: &str) -> L3Worker {
    let cfg = L3Config {
        chips: 1,
        child_exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_chiplane-rogue-child"))),
        child_args: vec![mode.to_string()],
        quiet_children: true,
        ..L3Config::default()
    };
    L3Worker::new(cfg).unwrap()
}

fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(BOUND).expect("resolved within the bound")
}

/// Submit one task with a made-up handle of the rogue's worker id; its
/// result.
fn task_error(w: &L3Worker) -> RunError {
    let h = Handle { worker: w.chip_worker(0).unwrap(), index: SlotIndex(0), generation: Generation(1) };
    let run = w.run_async(move |o| {
        o.submit(0, h, TaskArgs { tensors: vec![vec![1.0; 4]; 2], scalars: vec![] }, RunConfig::default()).unwrap()
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
    let again = w.register_async(0, CallableSpec::chip(VECTOR_ADD, vec![4]));
    assert_eq!(again.unwrap_err(), L3Error::Control(ControlError::Endpoint(EndpointError::Poisoned(reason.clone()))));
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
    let reg = w.register_async(0, CallableSpec::chip(VECTOR_ADD, vec![4])).unwrap();
    let r = within(move || reg.wait());
    let reason = match r {
        Err(L3Error::Control(ControlError::Endpoint(EndpointError::Poisoned(reason)))) => reason,
        other => panic!("{other:?}"),
    };
    assert!(matches!(reason, PoisonReason::MalformedFrame(FrameError::TooLarge { .. })), "{reason:?}");
    assert_poisoned(&w, &reason);
}
