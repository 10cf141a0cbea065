//! Hand-written seed scripts for the `slot_table` and `mailbox_protocol`
//! targets, each reaching one interesting state (a control during
//! TASK_RUNNING, a deferred TASK_DONE, a tombstoned slot, a cancelled
//! prepare, a full ring, ...). `fuzz_replay`'s ignored test
//! `generate_seeds` writes them (encoded) to `fuzz/seeds/<target>/`, and its
//! replay test checks each still reaches what its name says.

use super::mailbox_protocol::{self as mp, Action as A, Fault, Pick as MP};
use super::slot_table::{self as st, Op, Pick as SP};

/// Parent and child run until they stall, the ring drains (lanes frozen).
fn sync() -> Vec<A> {
    vec![A::ParentRun, A::ChildRun, A::ParentRun, A::ChildRun, A::RingPop, A::ParentRun, A::ChildRun, A::ParentRun]
}

fn cat(parts: &[&[A]]) -> Vec<A> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

/// A registered, prepared callable (handle pick `Registered(0)`).
fn prepared(tag: u8) -> Vec<A> {
    cat(&[&[A::SubmitRegister { tag }], &sync(), &[A::RegisterLane { ok: true }], &sync()])
}

/// A task of `Registered(0)` accepted by the child (TASK_RUNNING, run queued).
fn running(value: u8) -> Vec<A> {
    vec![A::SubmitTask { pick: MP::Registered(0), value }, A::ParentRun, A::ChildRun, A::ParentRun]
}

/// `(name, script, what it must reach)`.
pub type MailboxSeed = (&'static str, Vec<A>, fn(&mp::Reached) -> bool);

pub fn mailbox_seeds() -> Vec<MailboxSeed> {
    vec![
        (
            "control-under-task-deferred-done",
            cat(&[
                &prepared(0),
                &running(7),
                // The control is published, the run finishes, and only then
                // does the serve loop move: it feeds the run's end first.
                &[A::SubmitRegister { tag: 1 }, A::ParentRun, A::RunLane { fail: false }, A::ChildRun],
                &sync(),
                &[A::RegisterLane { ok: true }],
                &sync(),
            ]),
            |r| r.control_under_task && r.deferred_task_done && r.task_ok,
        ),
        (
            // The run finishes while the control is answered but not yet
            // restored, and the child moves first: TASK_DONE must wait.
            "deferred-done-child-moves-before-restore",
            cat(&[
                &prepared(2),
                &running(4),
                &[A::SubmitUnregister { pick: MP::Registered(0) }, A::ParentRun, A::ChildRun],
                &[A::RunLane { fail: false }, A::ChildRun, A::ChildStep, A::ParentStep, A::ChildRun],
                &sync(),
            ]),
            |r| r.control_under_task && r.deferred_task_done && r.task_ok && r.tombstoned,
        ),
        (
            "tombstoned-slot",
            cat(&[
                &prepared(0),
                &running(3),
                &[A::SubmitUnregister { pick: MP::Registered(0) }],
                &sync(),
                &[A::RunLane { fail: false }],
                &sync(),
            ]),
            |r| r.tombstoned && r.task_ok,
        ),
        (
            "cancelled-prepare",
            cat(&[
                &[A::SubmitRegister { tag: 2 }],
                &sync(),
                &[A::SubmitTask { pick: MP::Registered(0), value: 1 }],
                &sync(),
                &[A::SubmitUnregister { pick: MP::Registered(0) }],
                &sync(),
                &[A::RegisterLane { ok: true }, A::RunLane { fail: false }],
                &sync(),
            ]),
            |r| r.cancelled_prepare,
        ),
        (
            "ring-full",
            cat(&[
                &[A::SubmitRegister { tag: 0 }, A::SubmitRegister { tag: 1 }, A::SubmitRegister { tag: 2 }],
                &[A::ParentRun, A::ChildRun, A::ParentRun, A::ChildRun, A::ParentRun, A::ChildRun, A::ParentRun],
                &[A::ChildRun, A::ParentRun, A::ChildRun, A::ParentRun],
                &[A::RegisterLane { ok: true }, A::RegisterLane { ok: false }, A::RegisterLane { ok: true }],
                &[A::ChildRun],
                &sync(),
                &sync(),
            ]),
            |r| r.ring_full && r.settled,
        ),
        (
            "memory-control-waits-for-idle",
            cat(&[
                &prepared(1),
                &running(9),
                &[A::SubmitMemory { free: false }, A::SubmitDomain { code: 3 }, A::ParentRun, A::ChildRun],
                &[A::FrozenLanesCheck, A::RunLane { fail: true }],
                &sync(),
            ]),
            |r| r.settled,
        ),
        (
            "child-dies-with-control-under-task",
            cat(&[
                &prepared(0),
                &running(5),
                &[A::SubmitRegister { tag: 3 }, A::ParentRun, A::ChildStep, A::ChildDies],
            ]),
            |r| r.child_died && r.control_under_task,
        ),
        (
            "failed-prepare-then-run-and-stale-handle",
            cat(&[
                &[A::SubmitRegister { tag: 0 }],
                &sync(),
                &[A::RegisterLane { ok: false }],
                &sync(),
                &[A::SubmitTask { pick: MP::Registered(0), value: 2 }],
                &sync(),
                &[A::SubmitUnregister { pick: MP::Registered(0) }],
                &sync(),
                &[A::SubmitTask { pick: MP::Seen(0), value: 2 }, A::SubmitTask { pick: MP::OutOfRange, value: 1 }],
                &sync(),
            ]),
            |r| r.settled,
        ),
        (
            "wrong-target-oversized-next-generation",
            cat(&[
                &[A::SubmitRegister { tag: 4 }, A::SubmitOversizedTask],
                &[A::SubmitTask { pick: MP::NextGeneration(1), value: 4 }],
                &[A::SubmitUnregister { pick: MP::NextGeneration(2) }],
                &sync(),
            ]),
            |_| true,
        ),
        (
            "corrupt-word-during-control",
            cat(&[&[A::SubmitRegister { tag: 0 }, A::ParentRun, A::Fault(Fault::CorruptWord(200))], &sync()]),
            |r| r.poisoned,
        ),
        (
            "forged-task-done-and-stale-completion",
            cat(&[
                &prepared(0),
                &running(1),
                &[A::Fault(Fault::StaleCompletion { back: 1, freed: true })],
                &[A::Fault(Fault::ForgeTaskDone { back: 1 })],
                &sync(),
            ]),
            |r| r.poisoned,
        ),
    ]
}

/// `(name, script, what it must reach)`.
pub type SlotSeed = (&'static str, Vec<Op>, fn(&st::Reached) -> bool);

pub fn slot_seeds() -> Vec<SlotSeed> {
    use Op::*;
    let mut retire = Vec::new();
    for d in 0..4 {
        retire.extend([
            Register(d),
            Drain,
            Finish { pick: SP::Started(0), ok: true },
            Unregister(SP::Registered(0)),
            Drain,
        ]);
    }
    retire.extend([Register(0), Register(1), Register(2), Register(3), Drain]);
    vec![
        (
            "tombstoned-deferred-free",
            vec![
                Register(0),
                Drain,
                Finish { pick: SP::Started(0), ok: true },
                Pin(SP::Registered(0)),
                Unregister(SP::Registered(0)),
                Drain,
                Unpin(SP::Pinned(0)),
                Drain,
            ],
            |r| r.tombstoned && r.deferred_free,
        ),
        (
            "cancelled-prepare-with-pin",
            vec![
                Register(1),
                Drain,
                Pin(SP::Registered(0)),
                Unregister(SP::Registered(0)),
                Drain,
                Finish { pick: SP::Started(0), ok: true },
                Unpin(SP::Pinned(0)),
                Drain,
            ],
            |r| r.cancelled && r.deferred_free,
        ),
        (
            "stale-completion",
            vec![
                Register(0),
                Drain,
                Unregister(SP::Registered(0)),
                Register(2),
                Drain,
                Finish { pick: SP::Seen(0), ok: true },
                Finish { pick: SP::NextGeneration(0), ok: false },
                Drain,
            ],
            |r| r.stale_completion && r.cancelled,
        ),
        ("retirement-and-table-full", retire, |r| r.retired && r.table_full),
        (
            "foreign-and-out-of-range",
            vec![
                Register(3),
                Register(3),
                Pin(SP::Foreign),
                Unregister(SP::OutOfRange),
                Unpin(SP::NextGeneration(0)),
                Finish { pick: SP::Foreign, ok: true },
                Unregister(SP::Registered(0)),
                Drain,
                Finish { pick: SP::Started(0), ok: false },
                Pin(SP::Registered(0)),
                Drain,
            ],
            |_| true,
        ),
    ]
}

/// Minimised inputs of the two core bugs this target found (fixed in core:
/// the child checks task and control freshness separately; the parent keeps
/// the settlement it owes when an early settlement mismatches). Written to
/// fuzz/regressions/mailbox_protocol/ (see the README there).
pub fn mailbox_regressions() -> Vec<(&'static str, Vec<A>)> {
    vec![
        (
            "dispatch-order-task-after-control",
            vec![
                A::SubmitMemory { free: true },
                A::ParentRun,
                A::ChildRun,
                A::SubmitTask { pick: MP::NextGeneration(0), value: 1 },
                A::SubmitMemory { free: false },
                A::ParentRun,
                A::ChildRun,
                A::ParentRun,
                A::ChildRun,
                A::ParentRun,
            ],
        ),
        (
            "early-settlement-mismatch-loses-settlement",
            vec![
                A::SubmitRegister { tag: 0 },
                A::ParentRun,
                A::ChildRun,
                A::Fault(Fault::StaleCompletion { back: 1, freed: true }),
                A::RingPop,
                A::ParentRun,
            ],
        ),
    ]
}

/// Seeds of `system_walk`: bounds (8 bytes, see `system_walk::Bounds`) and a
/// choice sequence each: a few fixed patterns, plus the first inputs of a
/// fixed-seed random search that reach a deferred TASK_DONE and a control
/// during TASK_RUNNING (the replay test checks they still do).
pub fn system_walk_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use super::system_walk::{walk, Bounds};
    use arbitrary::{Arbitrary, Unstructured};
    let pattern = |bounds: [u8; 8], mul: usize, len: usize| -> Vec<u8> {
        let mut v = bounds.to_vec();
        v.extend((0..len).map(|i| ((i * mul + i / 3) % 256) as u8));
        v
    };
    let mut seeds = vec![
        ("default-bounds", pattern([3, 0, 0, 0, 1, 0, 1, 1], 37, 300)),
        ("chip-errors-memory", pattern([7, 0, 1, 1, 1, 0, 2, 2], 53, 400)),
        ("child-death", pattern([6, 1, 1, 0, 1, 0, 1, 2], 41, 300)),
    ];
    // xorshift64*, fixed seed: the same seeds every time.
    let mut x: u64 = 0x00c0_ffee_d15e_a5e5;
    let mut next = move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let (mut deferred, mut control) = (false, false);
    for _ in 0..20_000 {
        if deferred && control {
            break;
        }
        let len = 8 + 100 + (next() % 300) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let Ok(bounds) = Bounds::arbitrary(&mut Unstructured::new(&bytes[..8])) else { continue };
        let s = walk(bounds.config(), &bytes[8..]);
        if !deferred && s.saw(crate::system::Named::DeferredTaskDone) {
            deferred = true;
            seeds.push(("search-deferred-task-done", bytes));
        } else if !control && s.saw(crate::system::Named::ControlDuringTask) {
            control = true;
            seeds.push(("search-control-during-task", bytes));
        }
    }
    seeds
}
