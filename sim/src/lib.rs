//! chiplane-sim: a deterministic whole-system simulator of chiplane.
//!
//! One `u64` seed decides everything: the options (swarm style, see
//! [`options`]) and the schedule (which actor steps next, how long each lane
//! job takes, when a waiter wakes, when a store becomes visible). The
//! simulator drives the **real core machines** through their
//! `handle`/`poll` APIs, on one thread, in virtual time: the chip side
//! (`chiplane_core::chipside::ChipSide`: slot table, run lane, register
//! lane, L3 task/control mapping, settlement routing) and, at L3, the parent
//! and child mailbox endpoints. It never re-implements the protocol: it only
//! plays the world around the machines (callers, lane threads as
//! virtual-time jobs, the chip, the shared memory, the reaper, the clock).
//!
//! # Shapes
//! - **L2** ([`world`], [`workload`]): callers feed one chip side
//!   (`ChipInput::Register`/`Unregister`/`Run`, the op as waiter token).
//! - **L3** ([`l3`], [`memory`]): 1 or 2 chips (drawn from the seed), each
//!   a parent endpoint, a simulated mailbox (a state word moved only by
//!   core's `WordState::apply`, frames encoded as real bytes with
//!   `chiplane_core::frame`, a completion ring indexed by core's
//!   `RingIndices`) and a chip child endpoint whose `AcceptTask` /
//!   `ApplyControl` become `ChipInput::Task` / `ChipInput::Control`. A chip
//!   whose child died may be restarted: a new incarnation with a new
//!   `WorkerId` and a fresh mailbox. Callers keep their handles across
//!   chips and incarnations; the parent checks each with
//!   `CallableHandle::check_worker`.
//!
//! # Fault model (all in the simulator, never in core)
//! Faults are drawn per opportunity with per-seed probabilities and are on
//! only while the workload runs; the cleanup phase is fault free, so
//! liveness can be judged "after the faults stop".
//! - **prepare failure**: the sim chip's prepare returns
//!   `ChipErrorKind::Injected`; the slot must go FAILED and runs on it fail
//!   with the recorded error.
//! - **run failure**: a run returns `ChipErrorKind::Injected`; the run's
//!   handle resolves with `RunError::Chip`, its pin is still released.
//! - **missed cancel**: a cancelled prepare ignores the `Cancel`, misses its
//!   safe point and returns an artifact anyway; it must be released, never
//!   published.
//! - **late or duplicate completions**: an earlier prepare completion is
//!   replayed (with a fresh artifact or an error) after a random delay, fed
//!   as `PrepareFinished` for a handle that is not the running prepare: a
//!   duplicate of the current generation's, or a late one after the slot
//!   moved to a newer generation. It must be dropped (its artifact
//!   released).
//! - **slow lanes**: a lane job takes `slow_factor` times its drawn latency.
//! - **L3, child death at any protocol step**: the child dies before or
//!   after any of its actions, including half-way through writing a result
//!   frame (the bytes written so far stay: a torn frame). The reaper notices
//!   later, swaps POISONED into the word, and the parent must fail every
//!   outstanding handle with an endpoint error; the OS reclaims the child's
//!   artifacts. The chip may then be restarted.
//! - **L3, delayed visibility of the state word**: a store to the word
//!   becomes visible to the other side only after a random delay (the
//!   writer sees its own store at once).
//!
//! # Checkers ([`check`])
//! Kept apart from the simulated parts. Every chip side runs with
//! `set_audit(true)`; its audit trail (each slot-table input with its
//! reply, each table output, each `runnable` answer, each run-lane head)
//! is replayed on the checker's own `chiplane_core::reference::SlotModel`
//! (one per unit). Safety after every step: replies, owed outputs in order
//! and nothing more, every slot's state, generation, pins and
//! registrations, the lookup, the table's invariants, FIFO run starts,
//! exactly-once resolution, results equal to
//! `chiplane_core::kernels::reference`, the sim chip's artifact contract,
//! the mailbox word's transitions against core's `LEGAL` table from the
//! value the word really had, rules 1, 3 and 9, and no handle crossing
//! chips or incarnations (it must resolve `HandleError::Foreign`). Liveness
//! when the event queue runs dry: every handle resolved, every caller done,
//! no slot in use, lanes idle, every artifact released exactly once.
//!
//! The checkers have teeth: each is shown to reject a planted wrong
//! observation (`tests/checker_teeth.rs`, unit tests), every mutant of
//! docs/protocol.md section 8 that the simulator can see is killed by a campaign
//! (`sim/scripts/mutants.sh`), and a planted driver bug
//! (`Options::planted_lost_completion`, tests only) is caught by the
//! liveness checker.
//!
//! # Coverage
//! Each seed counts how often it reached each named scenario of docs/protocol.md
//! section 7 (and restarts, foreign-handle rejections, rule 12's stale
//! answers: [`sched::Coverage`]); a campaign prints the sums and tests
//! assert they are reached.
//!
//! # What the simulator cannot see
//! The concurrent layer (`chiplane_core::conc`: atomics and their orderings,
//! parking, the L2 worker's queues) is not simulated: the simulator executes
//! the loads, stores and CASes itself, sequentially consistent, and plays
//! the lane threads itself. So `relaxed_publish`, `relaxed_ring_tail`,
//! `weak_done_cas` (orderings), `lost_wakeup` (in the completion cell),
//! `lost_lane_wake`, `missed_doorbell` (wake-ups) and `sync_bypasses_queue`
//! (in the L2 worker) are for loom and shuttle. `restore_by_store` is in
//! `WordState::apply`, which the simulator uses, and `stale_incarnation`
//! in `CallableHandle::check_worker`: both are visible here.
//!
//! # Determinism
//! The trace hash (FNV-1a over every event and resolution) is a pure
//! function of the seed: no clocks, no hash-map iteration order, no thread
//! timing reach the simulation.

pub mod campaign;
pub mod check;
pub mod chip;
pub mod l3;
pub mod lanes;
pub mod memory;
pub mod options;
pub mod overlap;
pub mod rng;
pub mod sched;
pub mod trace;
pub mod workload;
pub mod world;

use options::{Options, Shape};
use world::{Report, Verdict, World};

/// Shapes a seed may draw from.
pub const SHAPES: &[Shape] = &[Shape::L2, Shape::L3];

/// Shapes the overlap experiment measures.
pub const OVERLAP_SHAPES: &[Shape] = &[Shape::L2, Shape::L3];

/// Run one seed (catching panics from the machines as a verdict).
pub fn run_seed(seed: u64, record_spans: bool) -> (Options, Report) {
    let opts = Options::from_seed(seed, SHAPES);
    let report = run_options(opts.clone(), record_spans);
    (opts, report)
}

/// Run given options.
pub fn run_options(opts: Options, record_spans: bool) -> Report {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| World::new(opts, record_spans).run())) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Report { verdict: Verdict::Panic(msg), ..Report::default() }
        }
    }
}
