//! The simulated chip: a real [`Chip`] whose prepare and run return at once
//! (their latencies are *virtual*: the simulator schedules their completions
//! in virtual time) and whose results come from
//! [`chiplane_core::kernels::reference`], so every result is checkable.
//!
//! The same type serves as a normal `Chip` (it is `Send + Sync`; `prepare`,
//! `run` and `release` work when called directly from two lane threads at
//! once), so the conformance suite can run it.
//!
//! What it models: kernel validation (`InvalidSpec`, `InvalidArgs`), a
//! cooperative cancel checked at its safe point, injected failures (passed
//! in by the simulator: the chip itself never draws randomness), and the
//! artifact contract. What it checks, and reports as violations: an artifact
//! released twice, or released while a run is using it; a run on an artifact
//! that was already released. It rejects `Orchestration` specs
//! (`InvalidSpec`): they are never prepared on a chip.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use chiplane_core::kernels::{self, Kernel};
use chiplane_core::{
    CallableSpec, CancelProbe, Chip, ChipError, ChipErrorKind, RunConfig, RunOutput, TargetKind, TaskArgs,
};

/// A prepared callable of the sim chip. Not `Clone`: it can only be moved,
/// so it is released at most once by construction; the chip still checks.
#[derive(Debug, PartialEq)]
pub struct SimArtifact {
    pub id: u64,
    pub spec: CallableSpec,
    pub kernel: Kernel,
}

#[derive(Debug, Default)]
struct Book {
    next_id: u64,
    live: BTreeSet<u64>,
    /// Artifact id -> runs using it now (virtual run intervals).
    in_use: BTreeMap<u64, u32>,
    prepared: u64,
    released: u64,
    violations: Vec<String>,
}

/// The simulated chip. See the module doc.
#[derive(Debug, Default)]
pub struct SimChip {
    book: Mutex<Book>,
}

/// A cancel probe with a fixed answer.
#[derive(Clone, Copy, Debug)]
pub struct Cancelled(pub bool);

impl CancelProbe for Cancelled {
    fn is_cancelled(&self) -> bool {
        self.0
    }
}

impl SimChip {
    pub fn new() -> Self {
        SimChip::default()
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        // A poisoned lock means a checker panicked mid-call; the book is
        // still consistent (every update is a single step).
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `prepare` with an optional injected failure (decided by the simulator).
    pub fn prepare_with(
        &self,
        spec: &CallableSpec,
        cancel: &dyn CancelProbe,
        fault: Option<ChipError>,
    ) -> Result<SimArtifact, ChipError> {
        if spec.kind != TargetKind::ChipCallable {
            return Err(ChipError::new(ChipErrorKind::InvalidSpec, "not a chip callable"));
        }
        let kernel = Kernel::from_spec(spec)?;
        // The safe point: the sim prepare has exactly one.
        if cancel.is_cancelled() {
            return Err(ChipError::new(ChipErrorKind::Cancelled, "prepare cancelled"));
        }
        if let Some(e) = fault {
            return Err(e);
        }
        let mut b = self.book();
        b.next_id += 1;
        let id = b.next_id;
        b.live.insert(id);
        b.prepared += 1;
        Ok(SimArtifact { id, spec: spec.clone(), kernel })
    }

    /// `run` with an optional injected failure.
    pub fn run_with(
        &self,
        artifact: &SimArtifact,
        args: &TaskArgs,
        fault: Option<ChipError>,
    ) -> Result<RunOutput, ChipError> {
        {
            let mut b = self.book();
            if !b.live.contains(&artifact.id) {
                b.violations.push(format!("run on artifact {} after its release", artifact.id));
                return Err(ChipError::new(ChipErrorKind::Device, "artifact already released"));
            }
        }
        if let Some(e) = fault {
            return Err(e);
        }
        kernels::reference(&artifact.spec, args)
    }

    /// A run on `id` occupies the chip from now (virtual time) until `end_use`.
    pub fn begin_use(&self, id: u64) {
        *self.book().in_use.entry(id).or_insert(0) += 1;
    }

    pub fn end_use(&self, id: u64) {
        let mut b = self.book();
        match b.in_use.get_mut(&id) {
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                b.in_use.remove(&id);
            }
            None => b.violations.push(format!("end_use of artifact {id} not in use")),
        }
    }

    /// Artifacts prepared and not yet released.
    pub fn live(&self) -> usize {
        self.book().live.len()
    }

    pub fn prepared(&self) -> u64 {
        self.book().prepared
    }

    pub fn released(&self) -> u64 {
        self.book().released
    }

    /// Contract violations seen so far (double release, release in use, ...).
    pub fn violations(&self) -> Vec<String> {
        self.book().violations.clone()
    }

    pub fn first_violation(&self) -> Option<String> {
        self.book().violations.first().cloned()
    }

    /// The chip child died: the OS reclaims every artifact it held (L3 only).
    pub fn reclaim_all(&self) -> usize {
        let mut b = self.book();
        let n = b.live.len();
        b.released += n as u64;
        b.live.clear();
        b.in_use.clear();
        n
    }
}

impl Chip for SimChip {
    type Prepared = SimArtifact;

    fn name(&self) -> &str {
        "sim"
    }

    fn prepare(&self, spec: &CallableSpec, cancel: &dyn CancelProbe) -> Result<SimArtifact, ChipError> {
        self.prepare_with(spec, cancel, None)
    }

    fn run(&self, prepared: &SimArtifact, args: &TaskArgs, _config: &RunConfig) -> Result<RunOutput, ChipError> {
        self.run_with(prepared, args, None)
    }

    fn release(&self, prepared: SimArtifact) {
        let mut b = self.book();
        if b.in_use.contains_key(&prepared.id) {
            b.violations.push(format!("artifact {} released while a run uses it", prepared.id));
        }
        if b.live.remove(&prepared.id) {
            b.released += 1;
        } else {
            b.violations.push(format!("artifact {} released twice (or never prepared)", prepared.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chiplane_core::chip::NeverCancel;

    #[test]
    fn direct_use_as_a_chip() {
        let chip = SimChip::new();
        let spec = CallableSpec::chip(kernels::VECTOR_ADD, vec![2]);
        let a = chip.prepare(&spec, &NeverCancel).unwrap();
        let args = TaskArgs { tensors: vec![vec![1.0, 2.0], vec![3.0, 4.0]], scalars: vec![] };
        assert_eq!(chip.run(&a, &args, &RunConfig::default()).unwrap().tensors, vec![vec![4.0, 6.0]]);
        assert_eq!(chip.live(), 1);
        chip.release(a);
        assert_eq!(chip.live(), 0);
        assert!(chip.violations().is_empty());
        let bad = CallableSpec::chip("nope", vec![1]);
        assert_eq!(chip.prepare(&bad, &NeverCancel).unwrap_err().kind, ChipErrorKind::InvalidSpec);
        assert_eq!(chip.prepare(&spec, &Cancelled(true)).unwrap_err().kind, ChipErrorKind::Cancelled);
    }

    /// The artifact contract's double-release check has teeth (an artifact
    /// is not `Clone`, so the test forges a second one with the same id).
    #[test]
    fn a_double_release_is_reported() {
        let chip = SimChip::new();
        let spec = CallableSpec::chip(kernels::VECTOR_ADD, vec![2]);
        let a = chip.prepare(&spec, &NeverCancel).unwrap();
        let forged = SimArtifact { id: a.id, spec: a.spec.clone(), kernel: a.kernel };
        chip.release(a);
        assert!(chip.violations().is_empty());
        chip.release(forged);
        assert!(chip.first_violation().unwrap().contains("released twice"));
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SimChip>();
    }
}
