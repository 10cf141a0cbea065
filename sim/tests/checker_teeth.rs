//! The checkers reject what they must (each check has a failing case).

use chiplane_core::kernels::VECTOR_ADD;
use chiplane_core::mailbox::word::{Side, WordState};
use chiplane_core::slot::{SlotError, SlotLimits, SlotReply, SlotState};
use chiplane_core::{
    CallableSpec, Generation, Handle, RegisterError, RunError, RunOutput, SlotIndex, TaskArgs, WorkerId,
};
use chiplane_sim::check::{Checker, ModelIn};

const W: WorkerId = WorkerId(1);

fn h(i: u32, g: u32) -> Handle {
    Handle { worker: W, index: SlotIndex(i), generation: Generation(g) }
}

#[test]
fn a_wrong_slot_reply_is_a_violation() {
    let mut c = Checker::new(W, SlotLimits { capacity: 2, generation_max: Generation(5) });
    let d = CallableSpec::chip(VECTOR_ADD, vec![4]).digest();
    c.slot_input(ModelIn::Register(d), &Ok(SlotReply::Registered { handle: h(0, 1), fresh: true }));
    assert!(!c.failed(), "{:?}", c.violation());
    // A second register of the same digest must not be fresh.
    c.slot_input(ModelIn::Register(d), &Ok(SlotReply::Registered { handle: h(0, 1), fresh: true }));
    assert!(c.failed());
}

#[test]
fn an_accepted_stale_handle_is_a_violation() {
    let mut c = Checker::new(W, SlotLimits { capacity: 2, generation_max: Generation(5) });
    c.slot_input(ModelIn::Pin(h(1, 3)), &Ok(SlotReply::Pinned { ready: true }));
    assert!(c.failed());
    let mut c = Checker::new(W, SlotLimits { capacity: 2, generation_max: Generation(5) });
    c.slot_input(ModelIn::Pin(h(1, 3)), &Err(SlotError::Pin(RunError::NotRunnable(SlotState::Empty))));
    assert!(c.failed(), "the right error is Stale, not NotRunnable");
}

#[test]
fn a_wrong_run_result_is_a_violation() {
    let spec = CallableSpec::chip(VECTOR_ADD, vec![2]);
    let args = TaskArgs { tensors: vec![vec![1.0, 2.0], vec![3.0, 4.0]], scalars: vec![] };
    let mut c = Checker::new(W, SlotLimits::default());
    c.run_result(Some(&spec), &args, &Ok(RunOutput { tensors: vec![vec![4.0, 6.0]] }));
    assert!(!c.failed());
    c.run_result(Some(&spec), &args, &Ok(RunOutput { tensors: vec![vec![4.0, 6.5]] }));
    assert!(c.failed());
}

#[test]
fn fifo_break_is_a_violation() {
    let mut c = Checker::new(W, SlotLimits::default());
    c.run_started(0);
    c.run_started(2);
    assert!(!c.failed());
    c.run_started(1);
    assert!(c.failed());
}

#[test]
fn the_word_table_is_the_design_table() {
    use WordState::*;
    assert!(chiplane_sim::l3::legal(Side::Child, TaskRunning, TaskDone));
    assert!(!chiplane_sim::l3::legal(Side::Child, ControlReady { under_task: true }, TaskDone));
    assert!(!chiplane_sim::l3::legal(Side::Child, ControlDone { under_task: true }, TaskDone));
    assert!(!chiplane_sim::l3::legal(Side::Parent, TaskRunning, TaskDone));
    assert!(chiplane_sim::l3::legal(Side::Parent, ControlDone { under_task: true }, TaskRunning));
    let _ = RegisterError::TableFull;
}
