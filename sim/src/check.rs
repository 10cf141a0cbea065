//! The checkers, kept apart from the simulated parts: the simulated parts
//! report what the machines did and the checker holds its own state to
//! judge it. Each chip-side unit (the L2 worker's chip side, or one chip
//! child incarnation at L3) runs with `ChipSide::set_audit(true)`, and its
//! whole audit trail comes here: every slot-table input with its real
//! reply, every table output, every `runnable` answer and every run-lane
//! head, in order. The checker replays it on its own reference model of the
//! slot table (`chiplane_core::reference`, one per unit).
//!
//! Safety (after every step): agreement with the reference model (replies,
//! owed outputs in order and nothing more, every slot's state, generation,
//! pins and registrations, the lookup, the stale-completion count,
//! `runnable` at the head of the run lane), the table's own invariants,
//! FIFO run starts (the heads are exactly the pinned runs, in pin order),
//! exactly-once resolution, run results equal to the reference kernels, the
//! sim chip's artifact contract, the mailbox word's legal transitions (L3),
//! and no handle crossing workers: a handle used on another chip or another
//! incarnation than the one that issued it resolves with
//! `HandleError::Foreign` naming both workers, and a handle of the worker
//! it is used on is never called foreign.
//!
//! Liveness (when the event queue runs dry, after the faults stopped): every
//! handle resolved, every caller finished, no slot in use, both lanes idle,
//! every artifact released exactly once.

use chiplane_core::chipside::Audit;
use chiplane_core::kernels;
use chiplane_core::reference::{Owed, SlotModel};
use chiplane_core::slot::{SlotInput, SlotLimits, SlotReply, SlotState, SlotTable};
use chiplane_core::{
    CallableDigest, CallableSpec, ChipErrorKind, HandleError, RunError, RunOutput, TaskArgs, WorkerId,
};

use crate::lanes::Art;
use crate::sched::Coverage;

/// The checker's state for one chip-side unit.
#[derive(Debug)]
struct UnitCheck {
    model: SlotModel,
    /// Runs pinned (each one is enqueued on the run lane right after).
    pinned: u64,
    /// Run-lane heads seen (the next head must be job `heads`).
    heads: u64,
}

/// The checker. The first violation is kept; the run stops at it.
#[derive(Debug)]
pub struct Checker {
    units: Vec<UnitCheck>,
    /// Every digest the workload can register (for the lookup comparison).
    digests: Vec<CallableDigest>,
    violation: Option<String>,
    pub checks: u64,
}

fn id_of(a: &Art) -> u64 {
    a.id
}

impl Checker {
    pub fn new(digests: Vec<CallableDigest>) -> Self {
        Checker { units: Vec::new(), digests, violation: None, checks: 0 }
    }

    /// A new chip-side unit with its own reference model; its index.
    pub fn add_unit(&mut self, worker: WorkerId, limits: SlotLimits) -> u32 {
        self.units.push(UnitCheck { model: SlotModel::new(worker, limits), pinned: 0, heads: 0 });
        (self.units.len() - 1) as u32
    }

    /// Unit `u`'s reference model.
    pub fn model(&self, u: u32) -> &SlotModel {
        &self.units[u as usize].model
    }

    pub fn fail(&mut self, msg: impl FnOnce() -> String) {
        if self.violation.is_none() {
            self.violation = Some(msg());
        }
    }

    pub fn violation(&self) -> Option<&str> {
        self.violation.as_deref()
    }

    pub fn failed(&self) -> bool {
        self.violation.is_some()
    }

    /// One step of unit `u`'s audit trail.
    pub fn audit(&mut self, u: u32, step: Audit<Art>, cov: &mut Coverage) {
        self.checks += 1;
        let unit = &mut self.units[u as usize];
        let msg = match step {
            Audit::Input { input, reply } => {
                let expected = unit.model.apply(&input, id_of);
                match (&input, &reply) {
                    (SlotInput::Unregister { handle }, Ok(SlotReply::Unregistered { last: true })) => {
                        match unit.model.check(*handle).map(|i| unit.model.slot(i).state) {
                            Ok(SlotState::Unregistering) => cov.hit(3),
                            Ok(SlotState::Cancelling) => cov.hit(4),
                            _ => {}
                        }
                    }
                    (SlotInput::Register { .. }, Ok(SlotReply::Registered { fresh: false, .. })) => cov.hit(7),
                    (SlotInput::PrepareFinished { .. }, Ok(SlotReply::PrepareStale)) => cov.hit(6),
                    (SlotInput::Pin { .. }, Ok(SlotReply::Pinned { .. })) => unit.pinned += 1,
                    _ => {}
                }
                (expected != reply).then(|| {
                    let input = describe(&input);
                    format!("unit {u}: slot table reply to {input}: got {reply:?}, reference model says {expected:?}")
                })
            }
            Audit::Output(out) => {
                let real = Owed::of(&out, id_of);
                match unit.model.pop_owed() {
                    Some(e) if e == real => None,
                    other => Some(format!("unit {u}: slot table owed {real:?}, reference model owes {other:?}")),
                }
            }
            Audit::Runnable { handle, result } => {
                let real = result.map(|a| a.map(|a| a.id));
                let expected = unit.model.runnable(handle);
                (real != expected)
                    .then(|| format!("unit {u}: runnable({handle:?}): table {real:?}, reference model {expected:?}"))
            }
            Audit::Head { job } => {
                let want = unit.heads;
                unit.heads += 1;
                (job.0 != want || job.0 >= unit.pinned).then(|| {
                    let pinned = unit.pinned;
                    format!(
                        "unit {u}: run lane head is job {} but job {want} is next ({pinned} runs pinned): FIFO broken",
                        job.0
                    )
                })
            }
        };
        if let Some(m) = msg {
            self.fail(|| m);
        }
    }

    /// Unit `u`'s chip side returned from `handle`: its table's outputs
    /// are all drained, so the model must owe nothing more.
    pub fn audit_done(&mut self, u: u32) {
        if let Some(e) = self.units[u as usize].model.pop_owed() {
            self.fail(|| format!("unit {u}: reference model owes {e:?}, the slot table owed nothing more"));
        }
    }

    /// Whole-table check of unit `u` after a step.
    pub fn table(&mut self, u: u32, table: &SlotTable<Art>) {
        self.checks += 1;
        if let Err(e) = self.units[u as usize].model.compare_table(table, &self.digests) {
            self.fail(|| format!("unit {u}: {e}"));
        }
    }

    /// A handle of `got` was used on the unit of worker `expected`; `err`
    /// is the handle error it resolved with, if any. Foreign exactly when
    /// the workers differ (compared here, not through `check_worker`).
    /// True when it was rejected as foreign.
    pub fn crossing(&mut self, expected: WorkerId, got: WorkerId, err: Option<&HandleError>) -> bool {
        self.checks += 1;
        let want_foreign = expected != got;
        let is_foreign = matches!(err, Some(HandleError::Foreign { .. }));
        if want_foreign && err != Some(&HandleError::Foreign { expected, got }) {
            self.fail(|| format!("a handle of worker {got} crossed to worker {expected}: resolved with {err:?}"));
        } else if !want_foreign && is_foreign {
            self.fail(|| format!("a handle of worker {got} was called foreign by its own worker: {err:?}"));
        }
        want_foreign && is_foreign
    }

    /// A run resolved: an `Ok` must equal the reference kernel's result
    /// bit for bit; a chip error must be injected or the reference's own.
    pub fn run_result(&mut self, spec: Option<&CallableSpec>, args: &TaskArgs, result: &Result<RunOutput, RunError>) {
        let Some(spec) = spec else {
            if let Ok(out) = result {
                self.fail(|| format!("run through a handle that names no callable returned {out:?}"));
            }
            return;
        };
        match result {
            Ok(out) => match kernels::reference(spec, args) {
                Ok(want) if bits(&want) == bits(out) => {}
                want => self.fail(|| format!("run of {} returned {out:?}, reference {want:?}", spec.kernel)),
            },
            Err(RunError::Chip(e)) if e.kind != ChipErrorKind::Injected => {
                let want = kernels::reference(spec, args);
                if want.as_ref().err() != Some(e) {
                    self.fail(|| format!("run of {} failed {e:?}, reference {want:?}", spec.kernel));
                }
            }
            Err(_) => {}
        }
    }
}

/// A slot-table input without its artifact's contents.
fn describe(input: &SlotInput<Art>) -> String {
    match input {
        SlotInput::PrepareFinished { handle, result } => {
            format!("PrepareFinished({handle:?}, {:?})", result.as_ref().map(|a| a.id))
        }
        other => format!("{other:?}"),
    }
}

fn bits(o: &RunOutput) -> Vec<Vec<u32>> {
    o.tensors.iter().map(|t| t.iter().map(|x| x.to_bits()).collect()).collect()
}
