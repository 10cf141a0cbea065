//! Target `mailbox_protocol`: an `arbitrary`-derived interleaving of parent
//! and child actions driving the pure endpoint machines
//! (`ParentEndpoint` / `ChildEndpoint`, core/src/mailbox) over a simulated
//! shared region, with the child's chip side being core's `ChipSide` (slot
//! table, run and register lanes) on a model device whose lane work the
//! input finishes. See [`system`] for the composition.
//!
//! Actions: submit a task (current, stale, guessed or out-of-range handle;
//! oversized payload) or a control of each kind (register, orchestration
//! register, unregister, memory, domain); one step of the parent or the
//! child (one output executed, or the word loaded; for the child one serve
//! step, which may also feed a chip event), or a run of either until it
//! stalls; the device finishing its run (ok or failed) or its register-lane
//! job (a prepare ok or failed; a release); a ring pop; a frozen-lanes
//! check; the child dying; and faults: a corrupted word value, a flipped bit
//! in a result field, a forged (stale) TASK_DONE, a stale or malformed
//! completion pushed into the ring.
//!
//! Checks (a panic is a crash), at the moment they happen:
//! - every successful CAS is in the design's table for its side
//!   (docs/protocol.md section 4: `mailbox::word::legal`, core's table written
//!   from the design, not from the transition functions);
//! - TASK_RUNNING is published only after the chip side queued the
//!   published task (rule 1);
//! - a control enters during TASK_RUNNING only if chip-callable (rule 3);
//! - the child never pushes into a full ring; no artifact is released
//!   twice, nor while a run uses it or a queued run names its slot; runs
//!   retire in FIFO order; the slot table's invariants hold;
//! - neither side poisons unless a fault was injected; once poisoned or
//!   gone the parent hands out no memory output and accepts the answer to
//!   one it handed out before (rule 12);
//! - frozen lanes (on request and at the end): with only the parent, the
//!   child and the ring moving, every control that may enter is answered
//!   (rule 9: the child's mailbox loop never waits on a lane);
//!
//! and at the end, after everything is settled (a stuck system with a fault
//! injected gets the liveness timeout; without one it is a hang):
//! - every submission resolved exactly once, in FIFO order per kind, and a
//!   settlement arrived exactly once for each fresh register and final
//!   unregister, after its control resolved;
//! - without a fault or a death, each result is exactly what the backend
//!   produced for that dispatch (nothing lost, swapped or overwritten:
//!   rule 8), and a successful run's output is that of the callable
//!   registered under its handle;
//! - then every remaining registration is unregistered through the mailbox:
//!   no slot stays in use, every artifact was released exactly once, the
//!   ring and the child's held settlements are empty, the word is IDLE.

pub mod system;

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use chiplane_core::frame::{ControlOp, ControlReply};
use chiplane_core::mailbox::parent::{ParentError, ParentInput, SubmitError};
use chiplane_core::mailbox::word::WordState;
use chiplane_core::mailbox::Field;
use chiplane_core::{
    CallableSpec, ControlError, DispatchId, EndpointError, Generation, RunConfig, RunError, SlotIndex, TargetKind,
    TaskArgs,
};
pub use system::Reached;
use system::{run_output, Resolution, System, CAPACITY};

/// Longest action sequence.
pub const ACTIONS_MAX: usize = 400;
/// Distinct callables (tags); tag `TAGS` is an orchestration function.
pub const TAGS: u8 = 4;
/// Upper bound on steps of one settle (a livelock is a finding).
const SETTLE_STEPS_MAX: usize = 200_000;

/// Which handle a task or an unregister names.
#[derive(Arbitrary, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pick {
    /// One the parent learned from a register and still holds.
    Registered(u8),
    /// Any the parent ever learned (possibly stale now).
    Seen(u8),
    /// Slot `n`'s next generation (never issued yet).
    NextGeneration(u8),
    /// A slot index beyond the table.
    OutOfRange,
}

/// A fault injected by a misbehaving child or corrupted memory.
#[derive(Arbitrary, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    /// The word takes this raw value.
    CorruptWord(u8),
    /// A bit of a result field flips.
    FlipResultBit { control: bool, at: u8, bit: u8 },
    /// The child writes a task result for `last dispatch - back` and
    /// publishes TASK_DONE from TASK_READY/TASK_RUNNING.
    ForgeTaskDone { back: u8 },
    /// A completion naming `next dispatch - back` lands in the ring.
    StaleCompletion { back: u8, freed: bool },
    /// Garbage lands in the ring.
    MalformedCompletion { byte: u8, len: u8 },
}

/// One action of the fuzz input.
#[derive(Arbitrary, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Action {
    SubmitTask {
        pick: Pick,
        value: u8,
    },
    SubmitOversizedTask,
    SubmitRegister {
        tag: u8,
    },
    SubmitUnregister {
        pick: Pick,
    },
    SubmitMemory {
        free: bool,
    },
    SubmitDomain {
        code: u8,
    },
    ParentStep,
    ChildStep,
    /// Step the parent until it stalls.
    ParentRun,
    /// Step the child until it stalls.
    ChildRun,
    RunLane {
        fail: bool,
    },
    RegisterLane {
        ok: bool,
    },
    RingPop,
    /// Move only the parent, the child and the ring until they stall, then
    /// check rule 9 (controls are answered without any lane).
    FrozenLanesCheck,
    ChildDies,
    Fault(Fault),
}

/// Decode the fuzz input into actions (at most `ACTIONS_MAX`).
pub fn decode(data: &[u8]) -> Vec<Action> {
    let mut u = Unstructured::new(data);
    let mut actions = Vec::new();
    while !u.is_empty() && actions.len() < ACTIONS_MAX {
        match Action::arbitrary(&mut u) {
            Ok(a) => actions.push(a),
            Err(_) => break,
        }
    }
    actions
}

/// The bytes `decode` turns into `actions` (for hand-written seeds).
pub fn encode(actions: &[Action]) -> Vec<u8> {
    let mut e = super::Enc::default();
    let pick = |e: &mut super::Enc, p: Pick| {
        match p {
            Pick::Registered(n) => e.variant(0, 4).u8(n),
            Pick::Seen(n) => e.variant(1, 4).u8(n),
            Pick::NextGeneration(n) => e.variant(2, 4).u8(n),
            Pick::OutOfRange => e.variant(3, 4),
        };
    };
    for &a in actions {
        match a {
            Action::SubmitTask { pick: p, value } => {
                pick(e.variant(0, 16), p);
                e.u8(value);
            }
            Action::SubmitOversizedTask => {
                e.variant(1, 16);
            }
            Action::SubmitRegister { tag } => {
                e.variant(2, 16).u8(tag);
            }
            Action::SubmitUnregister { pick: p } => pick(e.variant(3, 16), p),
            Action::SubmitMemory { free } => {
                e.variant(4, 16).bool(free);
            }
            Action::SubmitDomain { code } => {
                e.variant(5, 16).u8(code);
            }
            Action::ParentStep => {
                e.variant(6, 16);
            }
            Action::ChildStep => {
                e.variant(7, 16);
            }
            Action::ParentRun => {
                e.variant(8, 16);
            }
            Action::ChildRun => {
                e.variant(9, 16);
            }
            Action::RunLane { fail } => {
                e.variant(10, 16).bool(fail);
            }
            Action::RegisterLane { ok } => {
                e.variant(11, 16).bool(ok);
            }
            Action::RingPop => {
                e.variant(12, 16);
            }
            Action::FrozenLanesCheck => {
                e.variant(13, 16);
            }
            Action::ChildDies => {
                e.variant(14, 16);
            }
            Action::Fault(f) => {
                e.variant(15, 16);
                match f {
                    Fault::CorruptWord(v) => e.variant(0, 5).u8(v),
                    Fault::FlipResultBit { control, at, bit } => e.variant(1, 5).bool(control).u8(at).u8(bit),
                    Fault::ForgeTaskDone { back } => e.variant(2, 5).u8(back),
                    Fault::StaleCompletion { back, freed } => e.variant(3, 5).u8(back).bool(freed),
                    Fault::MalformedCompletion { byte, len } => e.variant(4, 5).u8(byte).u8(len),
                };
            }
        }
    }
    e.0
}

/// The fuzz target body.
pub fn mailbox_protocol(data: &[u8]) {
    let _ = run(&decode(data));
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Sub {
    Task { value: f32, slot: SlotIndex, generation: Generation },
    Register { tag: u8 },
    Unregister { slot: SlotIndex, generation: Generation },
    Other,
}

/// The harness's reference: what was submitted, what the parent learned.
#[derive(Default, Debug)]
struct Reference {
    submitted: BTreeMap<DispatchId, Sub>,
    /// Every handle a register reply named.
    seen: Vec<(SlotIndex, Generation)>,
    /// Registrations the parent holds per handle.
    registrations: BTreeMap<(SlotIndex, Generation), u32>,
    /// The tag of the callable each handle a register reply named is for.
    tag_of: BTreeMap<(SlotIndex, Generation), u64>,
    /// How many resolutions were already folded in.
    folded: usize,
    last_dispatch: u64,
}

impl Reference {
    /// Fold new resolutions in (learn handles and registration counts).
    fn fold(&mut self, sys: &System) {
        for (d, r) in &sys.resolutions[self.folded..] {
            match (self.submitted.get(d), r) {
                (
                    Some(Sub::Register { tag }),
                    Resolution::Control(Ok(ControlReply::Registered { slot, generation, .. })),
                ) => {
                    self.tag_of.insert((*slot, *generation), u64::from(*tag));
                    if !self.seen.contains(&(*slot, *generation)) {
                        self.seen.push((*slot, *generation));
                    }
                    *self.registrations.entry((*slot, *generation)).or_default() += 1;
                }
                (Some(&Sub::Unregister { slot, generation }), Resolution::Control(Ok(_))) => {
                    if let Some(n) = self.registrations.get_mut(&(slot, generation)) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            self.registrations.remove(&(slot, generation));
                        }
                    }
                }
                _ => {}
            }
        }
        self.folded = sys.resolutions.len();
    }

    fn resolve(&self, p: Pick) -> (SlotIndex, Generation) {
        let registered: Vec<_> = self.registrations.keys().copied().collect();
        let from = |v: &[(SlotIndex, Generation)], n: u8| {
            if v.is_empty() {
                (SlotIndex(u32::from(n) % CAPACITY as u32), Generation(1))
            } else {
                v[n as usize % v.len()]
            }
        };
        match p {
            Pick::Registered(n) => from(&registered, n),
            Pick::Seen(n) => from(&self.seen, n),
            Pick::NextGeneration(n) => {
                let slot = SlotIndex(u32::from(n) % CAPACITY as u32);
                let g = self.seen.iter().filter(|(s, _)| *s == slot).map(|(_, g)| g.0).max().unwrap_or(0);
                (slot, Generation(g + 1))
            }
            Pick::OutOfRange => (SlotIndex(CAPACITY as u32), Generation(1)),
        }
    }
}

fn spec(tag: u8) -> CallableSpec {
    let tag = tag % (TAGS + 1);
    let mut s = CallableSpec::chip(format!("kernel{tag}"), vec![u64::from(tag)]);
    if tag == TAGS {
        s.kind = TargetKind::Orchestration;
    }
    s
}

/// Run `actions`, checking everything; returns what was reached.
pub fn run(actions: &[Action]) -> Reached {
    let mut sys = System::new();
    let mut r = Reference::default();
    for &a in actions {
        step(&mut sys, &mut r, a);
        r.fold(&sys);
    }
    finish(&mut sys, &mut r);
    sys.reached
}

fn submit(sys: &mut System, r: &mut Reference, input: ParentInput, sub: Sub) {
    let open = sys.parent.poisoned().is_none() && sys.parent.gone().is_none();
    match sys.parent_input(input) {
        Ok(Some(d)) => {
            assert!(open, "a submission was accepted by a poisoned or gone endpoint");
            assert!(d.0 > r.last_dispatch, "dispatch ids must strictly increase");
            r.last_dispatch = d.0;
            r.submitted.insert(d, sub);
        }
        Ok(None) => panic!("a submission returned no dispatch id"),
        Err(ParentError::Submit(SubmitError::Endpoint(e))) => {
            assert!(!open, "an open endpoint refused a submission with {e:?}")
        }
        Err(ParentError::Submit(SubmitError::TooLarge(e))) => {
            assert!(e.bytes > e.max, "TooLarge {e:?} within its limit")
        }
        Err(e) => panic!("submission refused: {e:?}"),
    }
}

fn step(sys: &mut System, r: &mut Reference, a: Action) {
    match a {
        Action::SubmitTask { pick, value } => {
            let (slot, generation) = r.resolve(pick);
            let value = f32::from(value);
            let args = TaskArgs { tensors: vec![vec![value]], scalars: vec![u64::from(value as u8)] };
            let input = ParentInput::SubmitTask { slot, generation, config: RunConfig::default(), args };
            submit(sys, r, input, Sub::Task { value, slot, generation });
        }
        Action::SubmitOversizedTask => {
            let args = TaskArgs { tensors: vec![vec![0.5; 17 * 1024]], scalars: vec![] };
            let input = ParentInput::SubmitTask {
                slot: SlotIndex(0),
                generation: Generation(1),
                config: RunConfig::default(),
                args,
            };
            match sys.parent_input(input) {
                Err(ParentError::Submit(_)) => {}
                other => panic!("an oversized task was not refused at submission: {other:?}"),
            }
        }
        Action::SubmitRegister { tag } => {
            let op = ControlOp::Register { spec: spec(tag) };
            let input = ParentInput::SubmitControl { slot: SlotIndex(0), generation: Generation(0), op };
            submit(sys, r, input, Sub::Register { tag: tag % (TAGS + 1) });
        }
        Action::SubmitUnregister { pick } => {
            let (slot, generation) = r.resolve(pick);
            let input = ParentInput::SubmitControl { slot, generation, op: ControlOp::Unregister };
            submit(sys, r, input, Sub::Unregister { slot, generation });
        }
        Action::SubmitMemory { free } => {
            let op = ControlOp::Memory { bytes: 4096, free };
            let input = ParentInput::SubmitControl { slot: SlotIndex(0), generation: Generation(0), op };
            submit(sys, r, input, Sub::Other);
        }
        Action::SubmitDomain { code } => {
            let op = ControlOp::Domain { code: u32::from(code), value: 1 };
            let input = ParentInput::SubmitControl { slot: SlotIndex(0), generation: Generation(0), op };
            submit(sys, r, input, Sub::Other);
        }
        Action::ParentStep => {
            sys.parent_step();
        }
        Action::ChildStep => {
            sys.child_step();
        }
        Action::ParentRun => {
            for _ in 0..64 {
                if !sys.parent_step() {
                    break;
                }
            }
        }
        Action::ChildRun => {
            for _ in 0..64 {
                if !sys.child_step() {
                    break;
                }
            }
        }
        Action::RunLane { fail } => {
            sys.run_lane(fail);
        }
        Action::RegisterLane { ok } => {
            sys.register_lane(ok);
        }
        Action::RingPop => {
            sys.ring_pop();
        }
        Action::FrozenLanesCheck => frozen_lanes_check(sys, r),
        Action::ChildDies => {
            if sys.child_alive() {
                sys.child_gone(EndpointError::ChildDied);
            }
        }
        Action::Fault(f) => inject(sys, r, f),
    }
}

fn inject(sys: &mut System, r: &Reference, f: Fault) {
    match f {
        Fault::CorruptWord(v) => {
            sys.fault = true;
            sys.mem.word = u32::from(v % 12);
        }
        Fault::FlipResultBit { control, at, bit } => {
            sys.fault = true;
            let field = if control { Field::ControlResult } else { Field::TaskResult };
            sys.mem.field_mut(field, 64)[usize::from(at % 64)] ^= 1 << (bit % 8);
        }
        Fault::ForgeTaskDone { back } => {
            sys.forge_task_done(DispatchId(r.last_dispatch.saturating_sub(u64::from(back % 4))));
        }
        Fault::StaleCompletion { back, freed } => {
            sys.forge_completion(DispatchId((r.last_dispatch + 1).saturating_sub(u64::from(back % 4))), freed);
        }
        Fault::MalformedCompletion { byte, len } => sys.push_raw(vec![byte; usize::from(len % 48)]),
    }
}

/// Move the parent, the child and the ring (no lane) until they stall.
fn quiesce_frozen(sys: &mut System) {
    for _ in 0..SETTLE_STEPS_MAX {
        let progress = sys.parent_step() | sys.child_step() | sys.ring_pop();
        if !progress {
            return;
        }
    }
    panic!("livelock: the endpoints never stall with the lanes frozen");
}

fn unresolved(sys: &System, r: &Reference, task: bool) -> Vec<(DispatchId, Sub)> {
    r.submitted
        .iter()
        .filter(|(_, s)| matches!(s, Sub::Task { .. }) == task)
        .filter(|(d, _)| {
            !sys.resolutions
                .iter()
                .any(|(e, res)| e == *d && matches!(res, Resolution::Task(_) | Resolution::Control(_)))
        })
        .map(|(d, s)| (*d, *s))
        .collect()
}

/// Rule 9: with the lanes frozen, every control that may enter is answered.
fn frozen_lanes_check(sys: &mut System, r: &mut Reference) {
    quiesce_frozen(sys);
    r.fold(sys);
    if sys.fault || !sys.child_alive() || sys.parent.poisoned().is_some() {
        return;
    }
    if let Some(d) = sys.parent.control_in_flight() {
        panic!(
            "control {d:?} is still in flight with the lanes frozen: the child's mailbox loop waits on a lane (rule 9)"
        );
    }
    let controls = unresolved(sys, r, false);
    if let Some((d, sub)) = controls.first() {
        let task_outstanding = !unresolved(sys, r, true).is_empty();
        assert!(
            task_outstanding && matches!(sub, Sub::Other),
            "control {d:?} ({sub:?}) unanswered with the lanes frozen and nothing in its way (rule 9)"
        );
    }
}

/// Run everything (lanes succeed) until nothing moves; a stuck endpoint with
/// work outstanding gets the liveness timeout if a fault was injected, and
/// is a hang otherwise.
fn settle(sys: &mut System) {
    for _ in 0..SETTLE_STEPS_MAX {
        let progress =
            sys.parent_step() | sys.child_step() | sys.ring_pop() | sys.run_lane(false) | sys.register_lane(true);
        if progress {
            continue;
        }
        if !sys.parent.outstanding() {
            return;
        }
        assert!(
            sys.fault,
            "hang: work outstanding and nothing can move (word {:?}, parent {:?})",
            sys.word_state(),
            sys.parent
        );
        assert!(sys.parent.gone().is_none(), "the parent holds outstanding work after the child is gone");
        sys.child_gone(EndpointError::LivenessTimeout);
    }
    panic!("livelock: the system never settles");
}

fn finish(sys: &mut System, r: &mut Reference) {
    frozen_lanes_check(sys, r);
    settle(sys);
    r.fold(sys);
    let clean = !sys.fault && sys.child_alive();
    if clean {
        // Give every registration back through the mailbox, then nothing may leak.
        let held: Vec<_> = r.registrations.iter().flat_map(|(&h, &n)| std::iter::repeat_n(h, n as usize)).collect();
        for (slot, generation) in held {
            let input = ParentInput::SubmitControl { slot, generation, op: ControlOp::Unregister };
            submit(sys, r, input, Sub::Unregister { slot, generation });
        }
        settle(sys);
        r.fold(sys);
        assert!(r.registrations.is_empty(), "registrations left after unregistering all: {:?}", r.registrations);
        assert_eq!(sys.child.chip.side.table().live_slots(), 0, "slot left in use after every registration ended");
        assert!(sys.lanes_idle(), "lane work left after settling");
        assert_eq!(sys.mem.ring_len(), 0, "completions left in the ring");
        assert_eq!(sys.child.endpoint.completions_held(), 0, "settlements held by the child");
        assert_eq!(sys.word_state(), Some(WordState::Idle), "word not IDLE at rest");
        let chip = &sys.child.chip;
        assert_eq!(chip.released, chip.created, "every artifact must be released exactly once");
        assert!(sys.parent.poisoned().is_none());
    }
    assert!(!sys.parent.outstanding(), "parent still owes work after settling");
    check_resolutions(sys, r);
}

fn check_resolutions(sys: &System, r: &Reference) {
    let clean = !sys.fault && sys.child_alive();
    let mut last_task = DispatchId(0);
    let mut last_control = DispatchId(0);
    let mut resolved: BTreeMap<DispatchId, usize> = BTreeMap::new();
    let mut settled: BTreeMap<DispatchId, usize> = BTreeMap::new();
    let mut owed: BTreeMap<DispatchId, bool> = BTreeMap::new();
    for (d, res) in &sys.resolutions {
        let sub = r.submitted.get(d).unwrap_or_else(|| panic!("resolution for {d:?}, never submitted: {res:?}"));
        match res {
            Resolution::Task(result) => {
                let Sub::Task { value, slot, generation } = *sub else { panic!("{d:?} is not a task: {res:?}") };
                assert!(*d > last_task, "task {d:?} resolved out of FIFO order");
                last_task = *d;
                *resolved.entry(*d).or_default() += 1;
                if clean || !matches!(result, Err(RunError::Endpoint(_))) && !sys.fault {
                    assert_eq!(
                        Some(result),
                        sys.backend_task.get(d),
                        "task {d:?}: the caller got another result than the backend produced"
                    );
                }
                if let (Ok(out), false) = (result, sys.fault) {
                    let tag = r.tag_of.get(&(slot, generation)).copied();
                    assert_eq!(
                        Some(out),
                        tag.map(|t| run_output(value, t)).as_ref(),
                        "task {d:?} ran another callable than its handle names"
                    );
                }
            }
            Resolution::Control(result) => {
                assert!(!matches!(sub, Sub::Task { .. }), "{d:?} is a task: {res:?}");
                assert!(*d > last_control, "control {d:?} resolved out of FIFO order");
                last_control = *d;
                *resolved.entry(*d).or_default() += 1;
                if clean || !matches!(result, Err(ControlError::Endpoint(_))) && !sys.fault {
                    assert_eq!(
                        Some(result),
                        sys.backend_control.get(d),
                        "control {d:?}: the caller got another result than the backend produced"
                    );
                }
                let owes = result.as_ref().is_ok_and(ControlReply::owes_settlement);
                owed.insert(*d, owes);
            }
            Resolution::Settled(result) => {
                assert_eq!(owed.get(d), Some(&true), "settlement for {d:?}, which was owed none (yet): {res:?}");
                *settled.entry(*d).or_default() += 1;
                match result {
                    Ok(s) if !sys.fault => assert_eq!(
                        Some(s),
                        sys.backend_settlement.get(d),
                        "settlement of {d:?} differs from what the backend settled"
                    ),
                    Ok(_) => {}
                    Err(e) => assert!(!clean, "settlement of {d:?} failed with {e:?} on a healthy endpoint"),
                }
            }
        }
    }
    for d in r.submitted.keys() {
        assert_eq!(resolved.get(d), Some(&1), "dispatch {d:?} resolved {:?} times", resolved.get(d));
    }
    for (d, owes) in owed {
        let n = settled.get(&d).copied().unwrap_or(0);
        assert_eq!(n, usize::from(owes), "dispatch {d:?}: {n} settlements, owed {}", usize::from(owes));
    }
}
