//! Property test: random sequences of slot-table inputs against the
//! reference model of docs/protocol.md section 3 (`chiplane_core::reference`, the
//! one reference model every slot-table checker uses; needs the
//! `reference` feature: `cargo test -p chiplane-core --features reference`).
//!
//! After every step the table must agree with the reference: the reply,
//! every slot's state / generation / pins / registrations, the lookup, the
//! stale-completion count, `check` of every handle seen and `runnable` of
//! every pinned run; `Drain` steps compare the owed outputs, in order. At the
//! end the owner drains everything (unregister all, finish all prepares,
//! unpin all) and every artifact (each carries a unique id) must have been
//! released exactly once, with no slot left in use.
#![cfg(feature = "reference")]
// `prop_oneof!` expands to `std::sync::Arc`; this test is single-threaded and
// not part of the model-checked concurrent layer that core/clippy.toml guards.
#![allow(clippy::disallowed_types)]

use chiplane_core::reference::harness::{digest as dg, ModelSide, TableSide};
use chiplane_core::reference::Owed;
use chiplane_core::slot::{SlotError, SlotLimits, SlotReply, SlotState};
use chiplane_core::{CallableDigest, CallableHandle, Generation, RegisterError, WorkerId};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::Config;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};

const W: WorkerId = WorkerId(3);
/// Small on purpose: with 3 slots and 3 generations per slot, a sequence of a
/// few dozen steps runs into `TableFull` (4 digests > 3 slots, tombstones hold
/// slots) and retires slots, so those paths are exercised on every run rather
/// than never.
const CAPACITY: usize = 3;
const GENERATION_MAX: u32 = 3;
const DIGESTS: u8 = 4;

#[derive(Clone, Debug)]
enum Step {
    Register(u8),
    Unregister(CallableHandle),
    /// The prepare for `handle` returned: an artifact with `id`, or an error.
    Finish {
        handle: CallableHandle,
        ok: bool,
        id: u64,
    },
    Pin(CallableHandle),
    Unpin(CallableHandle),
    /// The owner drains `poll()` until `None`.
    Drain,
}

// ---- reference model -------------------------------------------------------

fn limits() -> SlotLimits {
    SlotLimits { capacity: CAPACITY, generation_max: Generation(GENERATION_MAX) }
}

fn digests() -> Vec<CallableDigest> {
    (0..DIGESTS).map(dg).collect()
}

/// The reference with the owner's picks (`ModelSide`, shared with the fuzz
/// harness) plus the generator's own bookkeeping.
#[derive(Clone, Debug)]
struct Model {
    side: ModelSide,
    next_id: u64,
    /// Expected reply of the last step (`None` after a drain).
    reply: Option<Result<SlotReply, SlotError>>,
    /// Expected outputs of the last drain.
    drained: Vec<Owed>,
}

impl Model {
    fn new() -> Self {
        Model { side: ModelSide::new(W, limits()), next_id: 1, reply: None, drained: Vec::new() }
    }
}

struct RefMachine;

impl ReferenceStateMachine for RefMachine {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::new()).boxed()
    }

    fn transitions(m: &Model) -> BoxedStrategy<Step> {
        let pool = m.side.pool();
        let or_pool = |v: Vec<CallableHandle>| if v.is_empty() { pool.clone() } else { v };
        let registered = or_pool(m.side.registered());
        let started = or_pool(m.side.started.clone());
        let pinned = or_pool(m.side.pinned.clone());
        // Ids are drawn from a counter the model advances on every Finish,
        // so every artifact in a sequence (and in any shrunk subsequence)
        // carries a unique id.
        let id = m.next_id;
        prop_oneof![
            4 => (0..DIGESTS).prop_map(Step::Register),
            5 => select(registered.clone()).prop_map(Step::Unregister),
            1 => select(pool.clone()).prop_map(Step::Unregister),
            4 => (select(started), prop::bool::weighted(0.75)).prop_map(move |(handle, ok)| Step::Finish { handle, ok, id }),
            1 => (select(pool.clone()), any::<bool>()).prop_map(move |(handle, ok)| Step::Finish { handle, ok, id }),
            3 => select(registered).prop_map(Step::Pin),
            1 => select(pool.clone()).prop_map(Step::Pin),
            3 => select(pinned).prop_map(Step::Unpin),
            1 => select(pool).prop_map(Step::Unpin),
            4 => Just(Step::Drain),
        ]
        .boxed()
    }

    fn apply(mut m: Model, step: &Step) -> Model {
        m.reply = match *step {
            Step::Register(d) => Some(m.side.register(dg(d))),
            Step::Unregister(handle) => Some(m.side.unregister(handle)),
            Step::Finish { handle, ok, id } => {
                m.next_id = m.next_id.max(id + 1);
                Some(m.side.finish(handle, ok, id))
            }
            Step::Pin(handle) => Some(m.side.pin(handle)),
            Step::Unpin(handle) => Some(m.side.unpin(handle)),
            Step::Drain => {
                m.drained = m.side.drain();
                None
            }
        };
        m
    }
}

// ---- system under test -----------------------------------------------------

struct SlotTableTest;

impl StateMachineTest for SlotTableTest {
    /// The table plus the owner's own bookkeeping (`TableSide`, shared with
    /// the fuzz harness), kept from the table's replies and outputs only.
    type SystemUnderTest = TableSide;
    type Reference = RefMachine;

    fn init_test(_: &Model) -> TableSide {
        TableSide::new(W, limits(), &digests())
    }

    fn apply(mut sut: TableSide, m: &Model, step: Step) -> TableSide {
        let reply = match step {
            Step::Register(d) => Some(sut.register(dg(d))),
            Step::Unregister(handle) => Some(sut.unregister(handle)),
            Step::Finish { handle, ok, id } => Some(sut.finish(handle, ok, id)),
            Step::Pin(handle) => Some(sut.pin(handle)),
            Step::Unpin(handle) => Some(sut.unpin(handle)),
            Step::Drain => {
                let got = sut.drain();
                assert_eq!(got, m.drained, "outputs differ from the reference");
                None
            }
        };
        assert_eq!(reply, m.reply, "reply differs from the reference");
        sut
    }

    fn check_invariants(sut: &TableSide, m: &Model) {
        sut.compare(&m.side);
    }

    /// Drain everything the way an owner shutting down would, then check that
    /// every artifact was released exactly once and no slot leaked. (The
    /// reference's final state was already compared by `check_invariants`.)
    fn teardown(sut: TableSide, _: Model) {
        sut.teardown();
    }
}

prop_state_machine! {
    #![proptest_config(Config { cases: 2048, max_shrink_iters: 4096, ..Config::default() })]

    #[test]
    fn slot_table_agrees_with_reference(sequential 1..128 => SlotTableTest);
}

/// The property test must reach the paths it exists for; a generator that
/// never retires a slot or fills the table would pass vacuously. This runs
/// the reference generator alone and counts.
#[test]
fn generator_reaches_retirement_table_full_stale_and_deferred_free() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut retired, mut full, mut stale, mut tombstoned, mut cancelled_pinned) = (0, 0, 0, 0, 0);
    for _ in 0..200 {
        let (init, steps, _) = RefMachine::sequential_strategy(1..128).new_tree(&mut runner).unwrap().current();
        let mut m = init;
        let mut seen_stale = false;
        for step in &steps {
            m = RefMachine::apply(m, step);
            if m.reply == Some(Err(SlotError::Register(RegisterError::TableFull))) {
                full += 1;
            }
            if m.reply == Some(Ok(SlotReply::PrepareStale)) {
                seen_stale = true;
            }
            let slots: Vec<_> = (0..CAPACITY).map(|i| m.side.reference.slot(i)).collect();
            tombstoned += slots.iter().filter(|s| s.state == SlotState::Unregistering).count();
            cancelled_pinned += slots.iter().filter(|s| s.state == SlotState::Cancelling && s.pins > 0).count();
        }
        retired += (0..CAPACITY).filter(|&i| m.side.reference.slot(i).state == SlotState::Retired).count();
        stale += usize::from(seen_stale);
    }
    eprintln!(
        "retired {retired} full {full} stale {stale} tombstoned {tombstoned} cancelled_pinned {cancelled_pinned}"
    );
    assert!(retired > 20, "retired {retired}");
    assert!(full > 20, "table full {full}");
    assert!(stale > 20, "stale completions {stale}");
    assert!(tombstoned > 20, "tombstoned {tombstoned}");
    assert!(cancelled_pinned > 5, "cancelling with pins {cancelled_pinned}");
}
