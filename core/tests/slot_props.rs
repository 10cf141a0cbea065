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

use chiplane_core::reference::{Owed, SlotModel};
use chiplane_core::slot::{SlotError, SlotInput, SlotLimits, SlotOutput, SlotReply, SlotState, SlotTable};
use chiplane_core::{
    CallableDigest, CallableHandle, ChipError, ChipErrorKind, Generation, RegisterError, SlotIndex, WorkerId,
};
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

fn dg(n: u8) -> CallableDigest {
    CallableDigest([n; 32])
}

fn h(index: usize, generation: u32) -> CallableHandle {
    CallableHandle { worker: W, index: SlotIndex(index as u32), generation: Generation(generation) }
}

fn chip_err(id: u64) -> ChipError {
    ChipError::new(ChipErrorKind::Injected, format!("prepare {id} failed"))
}

/// An artifact with a unique id; not `Clone`: the table can only move it.
#[derive(Debug)]
struct Art(u64);

fn out_of(o: SlotOutput<Art>) -> Owed {
    Owed::of(&o, |a| a.0)
}

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

/// The reference (`SlotModel`) plus the generator's own bookkeeping.
#[derive(Clone, Debug)]
struct Model {
    reference: SlotModel,
    next_id: u64,
    /// Every handle a register returned.
    seen: Vec<CallableHandle>,
    /// Prepares the owner started (drained `StartPrepare`) and has not finished.
    started: Vec<CallableHandle>,
    /// Pins held by queued runs.
    pinned: Vec<CallableHandle>,
    /// Expected reply of the last step (`None` after a drain).
    reply: Option<Result<SlotReply, SlotError>>,
    /// Expected outputs of the last drain.
    drained: Vec<Owed>,
}

impl Model {
    fn new() -> Self {
        Model {
            reference: SlotModel::new(W, limits()),
            next_id: 1,
            seen: Vec::new(),
            started: Vec::new(),
            pinned: Vec::new(),
            reply: None,
            drained: Vec::new(),
        }
    }

    /// Handles to pick from: those seen (current and stale), plus a foreign
    /// one, an out-of-range one and, per slot, its next (not yet issued)
    /// generation.
    fn pool(&self) -> Vec<CallableHandle> {
        let mut v = self.seen.clone();
        v.push(CallableHandle { worker: WorkerId(99), ..h(0, 1) });
        v.push(h(CAPACITY, 1));
        v.extend((0..CAPACITY).map(|i| h(i, self.reference.slot(i).generation.0 + 1)));
        v
    }

    fn registered(&self) -> Vec<CallableHandle> {
        self.reference.registered()
    }

    fn register(&mut self, d: u8) -> Result<SlotReply, SlotError> {
        let r = self.reference.register(dg(d));
        if let Ok(SlotReply::Registered { handle, fresh: true }) = r {
            self.seen.push(handle);
        }
        r
    }

    fn finish(&mut self, handle: CallableHandle, ok: bool, id: u64) -> Result<SlotReply, SlotError> {
        if let Some(k) = self.started.iter().position(|&s| s == handle) {
            self.started.remove(k);
        }
        self.reference.finish(handle, if ok { Ok(id) } else { Err(chip_err(id)) })
    }

    fn pin(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        let r = self.reference.pin(handle);
        if r.is_ok() {
            self.pinned.push(handle);
        }
        r
    }

    fn unpin(&mut self, handle: CallableHandle) -> Result<SlotReply, SlotError> {
        let r = self.reference.unpin(handle);
        if r.is_ok() {
            let k = self.pinned.iter().position(|&p| p == handle).expect("model: a pin is held for a pinned slot");
            self.pinned.remove(k);
        }
        r
    }

    fn drain(&mut self) {
        self.drained = self.reference.drain_owed();
        for o in &self.drained {
            if let Owed::Start(handle, _) = o {
                self.started.push(*handle);
            }
        }
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
        let pool = m.pool();
        let or_pool = |v: Vec<CallableHandle>| if v.is_empty() { pool.clone() } else { v };
        let registered = or_pool(m.registered());
        let started = or_pool(m.started.clone());
        let pinned = or_pool(m.pinned.clone());
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
            Step::Register(d) => Some(m.register(d)),
            Step::Unregister(handle) => Some(m.reference.unregister(handle)),
            Step::Finish { handle, ok, id } => {
                m.next_id = m.next_id.max(id + 1);
                Some(m.finish(handle, ok, id))
            }
            Step::Pin(handle) => Some(m.pin(handle)),
            Step::Unpin(handle) => Some(m.unpin(handle)),
            Step::Drain => {
                m.drain();
                None
            }
        };
        m
    }
}

// ---- system under test -----------------------------------------------------

/// The table plus the owner's own bookkeeping, kept from the table's replies
/// and outputs only (the teardown has no access to the model).
struct Sut {
    table: SlotTable<Art>,
    /// Ids of every artifact handed to the table.
    created: Vec<u64>,
    /// Ids of every artifact the table handed back through `Release`.
    released: Vec<u64>,
    /// One entry per live registration.
    registrations: Vec<CallableHandle>,
    started: Vec<CallableHandle>,
    pinned: Vec<CallableHandle>,
}

impl Sut {
    fn handle(&mut self, input: SlotInput<Art>) -> Result<SlotReply, SlotError> {
        let r = self.table.handle(input);
        assert_eq!(self.table.check_invariants(), Ok(()));
        r
    }

    fn drain(&mut self) -> Vec<Owed> {
        let mut v = Vec::new();
        while let Some(o) = self.table.poll() {
            let o = out_of(o);
            match &o {
                Owed::Start(handle, _) => self.started.push(*handle),
                Owed::Release(_, id) => {
                    assert!(!self.released.contains(id), "artifact {id} released twice");
                    self.released.push(*id);
                }
                _ => {}
            }
            v.push(o);
        }
        v
    }

    fn forget(list: &mut Vec<CallableHandle>, handle: CallableHandle) {
        if let Some(k) = list.iter().position(|&x| x == handle) {
            list.remove(k);
        }
    }

    fn finish(&mut self, handle: CallableHandle, ok: bool, id: u64) -> Result<SlotReply, SlotError> {
        Self::forget(&mut self.started, handle);
        let result = if ok {
            self.created.push(id);
            Ok(Art(id))
        } else {
            Err(chip_err(id))
        };
        self.handle(SlotInput::PrepareFinished { handle, result })
    }
}

struct SlotTableTest;

impl StateMachineTest for SlotTableTest {
    type SystemUnderTest = Sut;
    type Reference = RefMachine;

    fn init_test(_: &Model) -> Sut {
        Sut {
            table: SlotTable::new(W, limits()),
            created: Vec::new(),
            released: Vec::new(),
            registrations: Vec::new(),
            started: Vec::new(),
            pinned: Vec::new(),
        }
    }

    fn apply(mut sut: Sut, m: &Model, step: Step) -> Sut {
        let reply = match step {
            Step::Register(d) => {
                let r = sut.handle(SlotInput::Register { digest: dg(d) });
                if let Ok(SlotReply::Registered { handle, .. }) = r {
                    sut.registrations.push(handle);
                }
                Some(r)
            }
            Step::Unregister(handle) => {
                let r = sut.handle(SlotInput::Unregister { handle });
                if r.is_ok() {
                    Sut::forget(&mut sut.registrations, handle);
                }
                Some(r)
            }
            Step::Finish { handle, ok, id } => Some(sut.finish(handle, ok, id)),
            Step::Pin(handle) => {
                let r = sut.handle(SlotInput::Pin { handle });
                if r.is_ok() {
                    sut.pinned.push(handle);
                }
                Some(r)
            }
            Step::Unpin(handle) => {
                let r = sut.handle(SlotInput::Unpin { handle });
                if r.is_ok() {
                    Sut::forget(&mut sut.pinned, handle);
                }
                Some(r)
            }
            Step::Drain => {
                let got = sut.drain();
                assert_eq!(got, m.drained, "outputs differ from the reference");
                None
            }
        };
        assert_eq!(reply, m.reply, "reply differs from the reference");
        sut
    }

    fn check_invariants(sut: &Sut, m: &Model) {
        let t = &sut.table;
        let digests: Vec<CallableDigest> = (0..DIGESTS).map(dg).collect();
        if let Err(e) = m.reference.compare_table(t, &digests) {
            panic!("table differs from the reference: {e}");
        }
        for handle in m.pool() {
            assert_eq!(
                t.check(handle),
                m.reference.check(handle).map(|i| m.reference.slot(i).state),
                "check({handle:?})"
            );
        }
        for &handle in &m.pinned {
            assert_eq!(
                t.runnable(handle).map(|a| a.map(|a| a.0)),
                m.reference.runnable(handle),
                "runnable({handle:?})"
            );
        }
        let mut pinned = sut.pinned.clone();
        let mut want = m.pinned.clone();
        pinned.sort();
        want.sort();
        assert_eq!(pinned, want, "pins held");
    }

    /// Drain everything the way an owner shutting down would, then check that
    /// every artifact was released exactly once and no slot leaked.
    fn teardown(mut sut: Sut) {
        let _ = sut.drain();
        for handle in std::mem::take(&mut sut.registrations) {
            let r = sut.handle(SlotInput::Unregister { handle });
            assert!(matches!(r, Ok(SlotReply::Unregistered { .. })), "teardown unregister {handle:?}: {r:?}");
        }
        let _ = sut.drain();
        // Fresh ids, above every id a step can have drawn.
        let first_id = 1 + sut.created.iter().max().copied().unwrap_or(0).max(1_000_000);
        for (handle, id) in std::mem::take(&mut sut.started).into_iter().zip(first_id..) {
            // A prepare finished early by a random step is now a duplicate
            // (typed error); its artifact must still come back.
            let _ = sut.finish(handle, true, id);
        }
        let _ = sut.drain();
        for handle in std::mem::take(&mut sut.pinned) {
            assert_eq!(sut.handle(SlotInput::Unpin { handle }), Ok(SlotReply::Unpinned), "teardown unpin {handle:?}");
        }
        let _ = sut.drain();
        assert!(sut.table.poll().is_none());
        assert_eq!(sut.table.live_slots(), 0, "slot leaked");
        for i in 0..CAPACITY {
            let index = SlotIndex(i as u32);
            let state = sut.table.state(index).unwrap();
            assert!(matches!(state, SlotState::Empty | SlotState::Retired), "slot {i} left {state:?}");
            assert_eq!(sut.table.pins(index), 0);
            assert_eq!(sut.table.registrations(index), 0);
        }
        for d in 0..DIGESTS {
            assert_eq!(sut.table.lookup(&dg(d)), None);
        }
        let mut created = sut.created.clone();
        let mut released = sut.released.clone();
        created.sort_unstable();
        released.sort_unstable();
        assert_eq!(released, created, "every artifact released exactly once");
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
            let slots: Vec<_> = (0..CAPACITY).map(|i| m.reference.slot(i)).collect();
            tombstoned += slots.iter().filter(|s| s.state == SlotState::Unregistering).count();
            cancelled_pinned += slots.iter().filter(|s| s.state == SlotState::Cancelling && s.pins > 0).count();
        }
        retired += (0..CAPACITY).filter(|&i| m.reference.slot(i).state == SlotState::Retired).count();
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
