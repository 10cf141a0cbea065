//! Bodies of the L2 scenarios of docs/protocol.md section 7 (S3, S4, S5, S6, S7,
//! S10). Each body is one execution: the loom files in `models/tests/` run
//! it under `loom::model` (every interleaving), the shuttle files under PCT
//! and random schedulers. The same body also runs once on std threads in
//! plain `cargo test` (module `std_smoke` below).
//!
//! Threads: the caller (the model's main thread), the node's run lane and
//! register lane; S7 adds a second caller and S10 uses a producer and a
//! waiter instead of a node.

use chiplane_core::conc::{ChipNode, Completion, L2Worker};
use chiplane_core::slot::SlotState;
use chiplane_core::sync::{thread, Arc};
use chiplane_core::{HandleError, RegisterError, RunConfig, RunError, SlotIndex, UnregisterError};

use crate::harness::small_config;
use crate::testchip::{args, spec, TestChip};

fn cfg() -> RunConfig {
    RunConfig::default()
}

/// S3: final unregister with a run in flight. Invariants: the run pinned
/// before the unregister completes normally on its own artifact; a run after
/// the unregister is rejected at once (NOT_RUNNABLE, never queued); the
/// unregister resolves only after the artifact was released; the artifact
/// is released exactly once and never during its run (TestChip asserts).
pub fn s3_unregister_in_flight() -> bool {
    let chip = TestChip::new(true);
    let node = ChipNode::new(chip.clone(), small_config());
    let h = node.register(spec("a")).unwrap().wait().unwrap();
    let run = node.run(h, args(1), cfg()).unwrap();
    let unreg = node.unregister(h).unwrap();
    match node.run(h, args(2), cfg()) {
        Err(RunError::NotRunnable(SlotState::Unregistering | SlotState::Empty)) => {}
        other => panic!("run after the final unregister must be refused at once, got {other:?}"),
    }
    let out = run.wait().expect("a run pinned before the final unregister completes");
    assert_eq!(out.tensors, vec![vec![0.0, 1.0]], "the run used artifact 0 with tag 1");
    unreg.wait().expect("final unregister resolves when the slot is freed");
    assert_eq!(chip.released(), 1, "the final unregister resolved before the release");
    let view = node.slot(h.index).unwrap();
    assert_eq!((view.state, view.pins), (SlotState::Empty, 0));
    assert_eq!(chip.runs(), vec![1]);
    drop(node);
    chip.assert_all_released();
    // The run was pinned when the final unregister came (by construction).
    true
}

/// S4: final unregister during PREPARING. Invariants: the registration
/// settles either PREPARED (the prepare won the race) or `Cancelled`; a run
/// pinned before the unregister then runs or fails `Cancelled` accordingly;
/// after the unregister resolves the slot is EMPTY and never becomes
/// PREPARED; an artifact built by a prepare that ignored the cancel is
/// released exactly once, never published.
pub fn s4_unregister_while_preparing(honour_cancel: bool) -> bool {
    let chip = TestChip::new(honour_cancel);
    let node = ChipNode::new(chip.clone(), small_config());
    let reg = node.register(spec("a")).unwrap();
    let h = reg.handle();
    let run = node.run(h, args(1), cfg()).unwrap();
    let unreg = node.unregister(h).unwrap();
    let settled = reg.wait();
    let ran = run.wait();
    match &settled {
        Ok(got) => {
            assert_eq!(*got, h);
            assert_eq!(ran.map(|o| o.tensors[0][1]), Ok(1.0), "prepared before the unregister: the run runs");
        }
        Err(RegisterError::Cancelled) => {
            assert_eq!(ran, Err(RunError::Cancelled), "a run queued on a cancelled prepare fails Cancelled");
        }
        Err(e) => panic!("unexpected settlement {e:?}"),
    }
    unreg.wait().expect("final unregister resolves when the slot is freed");
    let view = node.slot(h.index).unwrap();
    assert_eq!(view.state, SlotState::Empty, "never PREPARED after the cancel");
    assert_eq!(chip.live(), 0, "the slot's artifact (if any) was released");
    // A run through the old handle is refused.
    assert!(node.run(h, args(2), cfg()).is_err());
    drop(node);
    chip.assert_all_released();
    if settled.is_err() {
        assert!(!chip.runs().contains(&1), "a cancelled registration never ran");
    }
    // The named situation: the final unregister landed while PREPARING.
    settled.is_err()
}

/// S5: a sync run after an async run never overtakes it. Invariants: the
/// chip executes tag 1 before tag 2, on the run lane thread (TestChip
/// asserts the thread), and the async handle resolves with tag 1's output.
pub fn s5_sync_after_async() -> bool {
    let chip = TestChip::new(true);
    let worker = L2Worker::new(chip.clone(), small_config());
    let h = worker.register(spec("a")).unwrap();
    let first = worker.run_async(h, args(1), cfg()).unwrap();
    let second = worker.run(h, args(2), cfg()).unwrap();
    assert_eq!(second.tensors[0][1], 2.0);
    assert_eq!(chip.runs(), vec![1, 2], "the sync run overtook the async run");
    assert_eq!(first.wait().unwrap().tensors[0][1], 1.0);
    worker.unregister(h).unwrap();
    drop(worker);
    chip.assert_all_released();
    true
}

/// S6: re-register after unregister. Invariants: the re-registration reuses
/// the slot with a newer generation; the old handle is rejected as stale by
/// run and by unregister (never applied to the new generation); a run of
/// the new handle uses the new artifact; no completion is ever applied
/// across generations (`stale_completions` stays 0 at L2: the register lane
/// reports a prepare before its slot can be reused; ring-level stale
/// completions are L3's scenario). A run in flight across the teardown is
/// S3's job; it is left out here to keep the model small.
pub fn s6_reregister() -> bool {
    let chip = TestChip::new(true);
    let node = ChipNode::new(chip.clone(), small_config());
    let h1 = node.register(spec("a")).unwrap().wait().unwrap();
    node.unregister(h1).unwrap().wait().unwrap();
    let h2 = node.register(spec("a")).unwrap().wait().unwrap();
    assert_eq!(h2.index, h1.index, "the freed slot is reused");
    assert!(h2.generation > h1.generation);
    let stale = HandleError::Stale { current: h2.generation };
    assert_eq!(node.run(h1, args(2), cfg()).err(), Some(RunError::Handle(stale)));
    assert_eq!(node.unregister(h1).err(), Some(UnregisterError::Handle(stale)));
    let out = node.run(h2, args(3), cfg()).unwrap().wait().unwrap();
    assert_eq!(out.tensors, vec![vec![1.0, 3.0]], "the new generation runs the new artifact");
    assert_eq!(node.stale_completions(), 0);
    node.unregister(h2).unwrap().wait().unwrap();
    assert_eq!(chip.runs(), vec![3]);
    drop(node);
    chip.assert_all_released();
    true
}

/// S7: two callers register one digest at once. Invariants: both get the
/// same handle (one slot), registrations == 2, the chip prepares it once;
/// the first unregister is not final (the slot stays PREPARED and runnable),
/// the second frees it and releases the artifact once.
pub fn s7_concurrent_register() -> bool {
    let chip = TestChip::new(true);
    let node = Arc::new(ChipNode::new(chip.clone(), small_config()));
    let other = {
        let node = node.clone();
        thread::spawn(move || node.register(spec("a")).unwrap().wait())
    };
    let mine = node.register(spec("a")).unwrap().wait().unwrap();
    let theirs = other.join().unwrap().unwrap();
    assert_eq!(mine, theirs, "one digest, one slot");
    let view = node.slot(mine.index).unwrap();
    assert_eq!((view.state, view.registrations), (SlotState::Prepared, 2));
    assert_eq!(chip.prepares(), vec!["a".to_string()], "prepared exactly once");
    node.unregister(mine).unwrap().wait().unwrap();
    assert_eq!(node.slot(mine.index).unwrap().state, SlotState::Prepared, "first unregister is not final");
    assert!(node.run(theirs, args(1), cfg()).unwrap().wait().is_ok());
    node.unregister(theirs).unwrap().wait().unwrap();
    assert_eq!(node.slot(SlotIndex(mine.index.0)).unwrap().state, SlotState::Empty);
    assert_eq!(chip.released(), 1);
    let node = Arc::try_unwrap(node).unwrap_or_else(|_| panic!("caller thread still holds the node"));
    drop(node);
    chip.assert_all_released();
    true
}

/// S10: completion cell wait/notify, no lost wake-up. A producer completes a
/// cell; a second thread waits on the cell (spin-free under the checkers,
/// parking); the main thread waits too, then takes the value. Invariants:
/// nobody sleeps forever (the checkers report a deadlock), the value is
/// seen exactly once by the taker.
pub fn s10_cell_wait_notify() -> bool {
    let cell = Arc::new(Completion::new());
    let producer = {
        let cell = cell.clone();
        thread::spawn(move || cell.complete(42u32).unwrap())
    };
    let waiter = {
        let cell = cell.clone();
        thread::spawn(move || {
            cell.wait_ready();
            assert!(cell.is_ready());
        })
    };
    cell.wait_ready();
    assert_eq!(cell.try_take(), Some(42), "a waiter wakes only after the value is published");
    assert_eq!(cell.try_take(), None, "taken exactly once");
    producer.join().unwrap();
    waiter.join().unwrap();
    true
}

/// S10 (second form): two threads block on the same cell with `wait_ready`
/// and `wait` while the producer publishes.
pub fn s10_two_waiters() -> bool {
    let cell = Arc::new(Completion::new());
    let producer = {
        let cell = cell.clone();
        thread::spawn(move || assert_eq!(cell.complete(7u8), Ok(())))
    };
    let waiter = {
        let cell = cell.clone();
        thread::spawn(move || cell.wait_ready())
    };
    assert_eq!(cell.wait(), Some(7));
    producer.join().unwrap();
    waiter.join().unwrap();
    assert_eq!(cell.complete(9), Err(9), "stored exactly once");
    true
}
