//! The checkers, kept apart from the simulated parts: the simulated parts
//! report what they did (each slot-table input with its real reply, each
//! owed output, each run start and each resolution) and the checker holds
//! its own state (the reference [`Model`]) to judge it.
//!
//! Safety (after every step): the slot table's own invariants
//! (`check_invariants`), agreement with the sequential reference model
//! (replies, owed outputs in order, every slot's state, generation, pins and
//! registrations, `runnable` at the head of the run lane), FIFO run starts,
//! exactly-once resolution, run results equal to the reference kernels, the
//! sim chip's artifact contract, the mailbox word's legal transitions (L3).
//!
//! Liveness (when the event queue runs dry, after the faults stopped): every
//! handle resolved, every caller finished, no slot in use, both lanes idle,
//! every artifact released exactly once.

use chiplane_core::kernels;
use chiplane_core::slot::{SlotError, SlotInput, SlotLimits, SlotOutput, SlotReply, SlotTable};
use chiplane_core::{CallableSpec, ChipError, ChipErrorKind, Handle, RunError, RunOutput, TaskArgs, WorkerId};

use crate::chip::SimArtifact;
use crate::model::{Model, Out};

/// The checker. The first violation is kept; the run stops at it.
#[derive(Debug)]
pub struct Checker {
    pub model: Model,
    violation: Option<String>,
    last_run_seq: Option<u64>,
    /// Every artifact id the table handed back, to catch a double release
    /// before it reaches the chip.
    pub checks: u64,
}

/// A slot-table input as the model sees it (artifacts by id).
#[derive(Clone, Debug)]
pub enum ModelIn {
    Register(chiplane_core::CallableDigest),
    Unregister(Handle),
    Finish(Handle, Result<u64, ChipError>),
    Pin(Handle),
    Unpin(Handle),
}

impl ModelIn {
    pub fn of(input: &SlotInput<SimArtifact>) -> ModelIn {
        match input {
            SlotInput::Register { digest } => ModelIn::Register(*digest),
            SlotInput::Unregister { handle } => ModelIn::Unregister(*handle),
            SlotInput::PrepareFinished { handle, result } => {
                ModelIn::Finish(*handle, result.as_ref().map(|a| a.id).map_err(Clone::clone))
            }
            SlotInput::Pin { handle } => ModelIn::Pin(*handle),
            SlotInput::Unpin { handle } => ModelIn::Unpin(*handle),
        }
    }
}

pub fn out_of(o: &SlotOutput<SimArtifact>) -> Out {
    match o {
        SlotOutput::StartPrepare { handle, digest } => Out::Start(*handle, *digest),
        SlotOutput::Cancel { handle } => Out::Cancel(*handle),
        SlotOutput::Release { handle, artifact } => Out::Release(*handle, artifact.id),
        SlotOutput::Settled { handle, result } => Out::Settled(*handle, result.clone()),
        SlotOutput::Freed { handle } => Out::Freed(*handle),
    }
}

impl Checker {
    pub fn new(worker: WorkerId, limits: SlotLimits) -> Self {
        Checker { model: Model::new(worker, limits), violation: None, last_run_seq: None, checks: 0 }
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

    /// A slot-table input was applied with reply `real`.
    pub fn slot_input(&mut self, input: ModelIn, real: &Result<SlotReply, SlotError>) {
        self.checks += 1;
        let expected = match input.clone() {
            ModelIn::Register(d) => self.model.register(d),
            ModelIn::Unregister(h) => self.model.unregister(h),
            ModelIn::Finish(h, r) => self.model.finish(h, r),
            ModelIn::Pin(h) => self.model.pin(h),
            ModelIn::Unpin(h) => self.model.unpin(h),
        };
        if &expected != real {
            self.fail(|| format!("slot table reply to {input:?}: got {real:?}, reference model says {expected:?}"));
        }
    }

    /// The table owed `real` (outputs come in order).
    pub fn slot_output(&mut self, real: &Out) {
        match self.model.pop_owed() {
            Some(e) if &e == real => {}
            other => self.fail(|| format!("slot table owed {real:?}, reference model owes {other:?}")),
        }
    }

    /// The table's outputs are drained: the model must owe nothing more.
    pub fn outputs_drained(&mut self) {
        if let Some(e) = self.model.pop_owed() {
            self.fail(|| format!("reference model owes {e:?}, the slot table owed nothing more"));
        }
    }

    /// Whole-table check after a step.
    pub fn table(&mut self, table: &SlotTable<SimArtifact>) {
        self.checks += 1;
        if let Err(e) = table.check_invariants() {
            self.fail(|| format!("slot table invariant: {e}"));
            return;
        }
        if table.stale_completions() != self.model.stale {
            let (r, m) = (table.stale_completions(), self.model.stale);
            self.fail(|| format!("stale completions: table {r}, reference model {m}"));
        }
        for i in 0..self.model.capacity() {
            let idx = chiplane_core::SlotIndex(i as u32);
            let real = (
                table.state(idx).expect("slot in range"),
                table.generation(idx).expect("slot in range"),
                table.pins(idx),
                table.registrations(idx),
            );
            let m = self.model.slot(i);
            if real != m {
                self.fail(|| format!("slot {i}: table (state, gen, pins, regs) {real:?}, reference model {m:?}"));
                return;
            }
        }
    }

    /// `runnable` at the head of the run lane.
    pub fn runnable(&mut self, handle: Handle, real: &Result<Option<&SimArtifact>, RunError>) {
        let real_ids = real.as_ref().map(|a| a.map(|a| a.id)).map_err(Clone::clone);
        let expected = self.model.runnable(handle);
        if real_ids != expected {
            self.fail(|| format!("runnable({handle:?}): table {real_ids:?}, reference model {expected:?}"));
        }
    }

    /// A run started on the run lane; `seq` is its enqueue order.
    pub fn run_started(&mut self, seq: u64) {
        if let Some(last) = self.last_run_seq {
            if seq <= last {
                self.fail(|| format!("run lane started run #{seq} after run #{last} (FIFO broken)"));
            }
        }
        self.last_run_seq = Some(seq);
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

fn bits(o: &RunOutput) -> Vec<Vec<u32>> {
    o.tensors.iter().map(|t| t.iter().map(|x| x.to_bits()).collect()).collect()
}
