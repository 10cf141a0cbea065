//! The `Chip` trait: what a device (the sim chip, the host CPU, CUDA) must do.
//!
//! Call contract:
//! - `prepare` is called on the **register lane** thread, `run` on the **run
//!   lane** thread, *at the same time* (that is the whole point). A `Chip` is
//!   `Sync` and must tolerate this; the conformance suite does it on purpose.
//!   The one exception: a run the chip calls short (`run_inline` true) may be
//!   executed by the thread that accepted it (at L3 the chip child's serve
//!   loop), which never called `bind_lane`. Runs never overlap either way.
//! - `bind_lane` is called once on each lane thread before any other call
//!   from that thread (a device with per-thread context, such as CUDA or
//!   CANN, binds it there).
//! - `release` is called exactly once per artifact returned by `prepare`,
//!   after the last `run` that used it has returned, never concurrently with a
//!   `run` on the same artifact.
//! - `prepare` should poll `cancel.is_cancelled()` at its safe points and may
//!   return `ChipErrorKind::Cancelled` early; an artifact it returns anyway is
//!   released by the caller, never published.
//! - Errors are values. A device never panics on bad input (a wrong kernel
//!   name, a malformed argument list): it returns a `ChipError`.

use crate::ids::CallableDigest;
use sha2::{Digest, Sha256};

/// Which kind of target a callable is. `register_async` / `unregister_async`
/// take chip callables only; anything else is a typed error at the call.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum TargetKind {
    /// A callable that runs on a chip (registered into a slot table).
    ChipCallable,
    /// An L3 orchestration function (submitted through `run(orch_fn)`,
    /// never registered on a chip).
    Orchestration,
}

/// What the chip needs to prepare a callable.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct CallableSpec {
    /// What kind of target this is (only `ChipCallable` registers).
    pub kind: TargetKind,
    /// Kernel name understood by the device (`vector_add`, ...).
    pub kernel: String,
    /// Kernel parameters fixed at prepare time (sizes, repeat counts, ...).
    pub params: Vec<u64>,
}

impl CallableSpec {
    /// A chip callable.
    pub fn chip(kernel: impl Into<String>, params: Vec<u64>) -> Self {
        CallableSpec { kind: TargetKind::ChipCallable, kernel: kernel.into(), params }
    }

    /// SHA-256 over a canonical encoding of the definition.
    #[must_use]
    pub fn digest(&self) -> CallableDigest {
        let mut h = Sha256::new();
        h.update(b"chiplane-callable-v1");
        h.update([match self.kind {
            TargetKind::ChipCallable => 1u8,
            TargetKind::Orchestration => 2u8,
        }]);
        h.update((self.kernel.len() as u64).to_le_bytes());
        h.update(self.kernel.as_bytes());
        h.update((self.params.len() as u64).to_le_bytes());
        for p in &self.params {
            h.update(p.to_le_bytes());
        }
        CallableDigest(h.finalize().into())
    }
}

/// Arguments of one run: f32 tensors and u64 scalars.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct TaskArgs {
    /// Input tensors, each a flat list of f32 elements.
    pub tensors: Vec<Vec<f32>>,
    /// Scalar arguments.
    pub scalars: Vec<u64>,
}

/// Per-run configuration (the seed's `CallConfig`, reduced).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct RunConfig {
    /// Threads per block requested for the launch; a device may ignore it
    /// (the host and CUDA devices do today).
    pub block_dim: u32,
    /// Device-defined launch flags (0 = none).
    pub flags: u32,
}

/// What a run produced.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct RunOutput {
    /// Output tensors, each a flat list of f32 elements.
    pub tensors: Vec<Vec<f32>>,
}

/// Hashes every element by its bits, with `-0.0` as `0.0` (so `a == b`
/// implies equal hashes; a NaN equals nothing, not even itself).
fn hash_tensors<H: core::hash::Hasher>(tensors: &[Vec<f32>], state: &mut H) {
    state.write_usize(tensors.len());
    for t in tensors {
        state.write_usize(t.len());
        for x in t {
            state.write_u32(if *x == 0.0 { 0 } else { x.to_bits() });
        }
    }
}

impl core::hash::Hash for TaskArgs {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        hash_tensors(&self.tensors, state);
        self.scalars.hash(state);
    }
}

impl core::hash::Hash for RunOutput {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        hash_tensors(&self.tensors, state);
    }
}

/// Which lane a thread serves.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum LaneKind {
    /// The run lane: calls `run`.
    Run,
    /// The register lane: calls `prepare` and `release`.
    Register,
}

/// Cooperative cancellation probe handed to `prepare`.
pub trait CancelProbe {
    /// Has the final unregister asked this prepare to stop? A prepare that
    /// sees `true` may return `ChipErrorKind::Cancelled` at once.
    fn is_cancelled(&self) -> bool;
}

/// A probe that never cancels.
#[derive(Clone, Copy, Debug, Default)]
pub struct NeverCancel;

impl CancelProbe for NeverCancel {
    fn is_cancelled(&self) -> bool {
        false
    }
}

/// Why a device call failed; travels across the mailbox as a code plus a
/// short detail string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u16)]
pub enum ChipErrorKind {
    /// The spec names no kernel this device knows, or its params are invalid.
    InvalidSpec = 1,
    /// The run's arguments do not fit the prepared kernel.
    InvalidArgs = 2,
    /// The device failed (driver error, out of memory, ...).
    Device = 3,
    /// `prepare` observed cancellation and stopped.
    Cancelled = 4,
    /// A fault injected by the simulator.
    Injected = 5,
}

impl ChipErrorKind {
    /// The kind with wire code `code`, or `None` for an unknown code.
    pub fn from_code(code: u16) -> Option<Self> {
        Some(match code {
            1 => Self::InvalidSpec,
            2 => Self::InvalidArgs,
            3 => Self::Device,
            4 => Self::Cancelled,
            5 => Self::Injected,
            _ => return None,
        })
    }
}

/// A device error.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ChipError {
    /// What went wrong, by category.
    pub kind: ChipErrorKind,
    /// Human-readable detail; at most `ChipError::DETAIL_MAX_BYTES` bytes
    /// survive a trip through the mailbox.
    pub detail: String,
}

impl ChipError {
    /// Longest detail carried by a frame.
    pub const DETAIL_MAX_BYTES: usize = 192;

    /// An error of `kind` with a human-readable `detail`.
    pub fn new(kind: ChipErrorKind, detail: impl Into<String>) -> Self {
        ChipError { kind, detail: detail.into() }
    }
}

impl core::fmt::Display for ChipError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)
    }
}

impl std::error::Error for ChipError {}

/// A device. See the module doc for the call contract.
pub trait Chip: Send + Sync + 'static {
    /// A prepared callable (loaded kernels, allocated buffers).
    type Prepared: Send + Sync + 'static;

    /// Short device name (`sim`, `host`, `cuda`).
    fn name(&self) -> &str;

    /// Called once on each lane thread before any other call from it.
    fn bind_lane(&self, lane: LaneKind) -> Result<(), ChipError> {
        let _ = lane;
        Ok(())
    }

    /// Prepare a callable (register lane).
    fn prepare(&self, spec: &CallableSpec, cancel: &dyn CancelProbe) -> Result<Self::Prepared, ChipError>;

    /// Run a prepared callable (run lane).
    fn run(&self, prepared: &Self::Prepared, args: &TaskArgs, config: &RunConfig) -> Result<RunOutput, ChipError>;

    /// Is this run short enough for the thread that accepted it to execute
    /// it, rather than handing it to the run lane? At L3 that thread is the
    /// chip child's serve loop: the run lane is not woken (a wake-up costs
    /// microseconds to tens of them), and the mailbox waits for the run
    /// meanwhile (docs/protocol.md rule 9). Say yes only for runs that end
    /// well within a few microseconds whatever the arguments; such a run
    /// executes on a thread that never called `bind_lane`.
    ///
    /// Called with the chip node's lock held: answer from the artifact and
    /// the arguments alone, at once. Default: no, every run on the run lane.
    fn run_inline(&self, prepared: &Self::Prepared, args: &TaskArgs) -> bool {
        let _ = (prepared, args);
        false
    }

    /// Release an artifact; called exactly once per artifact.
    fn release(&self, prepared: Self::Prepared);
}
