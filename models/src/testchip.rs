//! A small recording chip for the loom and shuttle models of the L2 layer.
//!
//! It asserts the `Chip` call contract (core/src/chip.rs) at every call, so a
//! scheduling bug in the node (or a planted mutant) shows up as a panic in
//! the model:
//! - `bind_lane` once per lane, before any other call from that thread;
//! - `prepare` only on the register lane thread, `run` only on the run lane
//!   thread (a kernel the chip calls short, [`TestChip::inline`], on any
//!   thread: the node may run it where it was accepted), never two runs at
//!   once;
//! - `release` exactly once per artifact (artifacts carry unique ids), never
//!   while a run of that artifact is in progress;
//! - a run's result is derived from its artifact and arguments (`[id, tag]`),
//!   so a run on the wrong artifact is visible to the caller.
//!
//! It records the order of runs (`args.scalars[0]`, the caller's tag) and of
//! prepares, so models can assert FIFO and no-overtaking. After the node is
//! shut down, [`TestChip::assert_all_released`] checks that no artifact leaked.
//!
//! Behaviour by kernel name: `"fail"` fails its prepare with `InvalidSpec`;
//! any other kernel prepares fine. With `honour_cancel`, a prepare that sees
//! its cancel probe set returns `Cancelled`; without it, it ignores the probe
//! and returns an artifact anyway (a chip may; the node must then release it,
//! never publish it).
//!
//! Gates (to build the mailbox scenarios' hazards with real lane threads):
//! a [`Gate`] holds the prepare, the run or the release of one kernel until
//! the model opens it; the lane thread blocks on a condvar meanwhile (loom
//! and shuttle see a blocked thread, not a spinning one).
use std::collections::{BTreeMap, BTreeSet};

use chiplane_core::sync::{thread, Arc, Condvar, Mutex};
use chiplane_core::TaskArgs;
use chiplane_core::{CallableSpec, CancelProbe, Chip, ChipError, ChipErrorKind, LaneKind, RunConfig, RunOutput};

// The thread id type of the backend `chiplane_core::sync` was built with.
#[cfg(chiplane_loom)]
use loom::thread::ThreadId;
#[cfg(chiplane_shuttle)]
use shuttle::thread::ThreadId;
#[cfg(not(any(chiplane_loom, chiplane_shuttle)))]
use std::thread::ThreadId;

/// An artifact: its unique id and the kernel it was prepared for.
#[derive(Debug)]
pub struct Artifact {
    pub id: u64,
    pub kernel: String,
}

#[derive(Default)]
struct Record {
    run_lane: Option<ThreadId>,
    reg_lane: Option<ThreadId>,
    next_id: u64,
    /// Artifacts prepared and not yet released.
    live: BTreeSet<u64>,
    released: BTreeSet<u64>,
    /// Id of the artifact a run is executing, if any.
    running: Option<u64>,
    /// Tags of runs in the order the chip executed them.
    runs: Vec<u64>,
    /// Kernels in the order they were prepared.
    prepares: Vec<String>,
    /// Prepares that saw their cancel probe set.
    cancels_seen: u32,
    /// Runs executed off the run lane thread (short ones, run inline).
    off_lane_runs: u32,
}

/// Holds a lane job until opened (module doc).
#[derive(Debug, Default)]
pub struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate::default())
    }

    /// Open it (once and for all) and wake whoever waits.
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }

    /// Block until it is open.
    pub fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
    }
}

/// Which lane job of a kernel a gate holds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Hold {
    /// Its prepare (before it builds the artifact).
    Prepare,
    /// Its run (after it started on the chip).
    Run,
    /// The release of its artifact.
    Release,
}

/// The gates set on a test chip, by callable name and the step they hold.
type Gates = Arc<Mutex<BTreeMap<(String, Hold), Arc<Gate>>>>;

/// The recording chip. Cheap to clone (shared record).
#[derive(Clone)]
pub struct TestChip {
    record: Arc<Mutex<Record>>,
    honour_cancel: bool,
    gates: Gates,
    hooks: Arc<Mutex<BTreeMap<String, PrepareHook>>>,
    /// Kernels whose runs `run_inline` calls short.
    inline: Arc<Mutex<BTreeSet<String>>>,
}

// std's `Arc`: loom's cannot hold a trait object (the hook is plain data
// to the checkers).
#[allow(clippy::disallowed_types)]
type PrepareHook = std::sync::Arc<dyn Fn() + Send + Sync>;

impl core::fmt::Debug for TestChip {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TestChip").field("honour_cancel", &self.honour_cancel).finish()
    }
}

impl TestChip {
    pub fn new(honour_cancel: bool) -> Self {
        TestChip {
            record: Arc::new(Mutex::new(Record::default())),
            honour_cancel,
            gates: Arc::default(),
            hooks: Arc::default(),
            inline: Arc::default(),
        }
    }

    /// Call `kernel`'s runs short (`Chip::run_inline`): a node may run them
    /// on the thread that accepted them.
    pub fn inline(&self, kernel: &str) {
        self.inline.lock().unwrap().insert(kernel.to_string());
    }

    /// Runs executed off the run lane thread.
    pub fn off_lane_runs(&self) -> u32 {
        self.rec().off_lane_runs
    }

    /// Call `f` when a prepare of `kernel` starts (on the register lane).
    pub fn on_prepare(&self, kernel: &str, f: impl Fn() + Send + Sync + 'static) {
        self.hooks.lock().unwrap().insert(kernel.to_string(), std::sync::Arc::new(f));
    }

    /// Hold `what` of `kernel` until `gate` opens.
    pub fn gate(&self, kernel: &str, what: Hold, gate: Arc<Gate>) {
        self.gates.lock().unwrap().insert((kernel.to_string(), what), gate);
    }

    fn wait_gate(&self, kernel: &str, what: Hold) {
        let gate = self.gates.lock().unwrap().get(&(kernel.to_string(), what)).cloned();
        if let Some(g) = gate {
            g.wait();
        }
    }

    fn rec(&self) -> chiplane_core::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap()
    }

    /// Tags of the runs in execution order.
    pub fn runs(&self) -> Vec<u64> {
        self.rec().runs.clone()
    }

    /// Kernels in the order they were prepared.
    pub fn prepares(&self) -> Vec<String> {
        self.rec().prepares.clone()
    }

    /// Number of artifacts released so far.
    pub fn released(&self) -> usize {
        self.rec().released.len()
    }

    /// Number of artifacts prepared and not yet released.
    pub fn live(&self) -> usize {
        self.rec().live.len()
    }

    /// How many prepares observed their cancel probe.
    pub fn cancels_seen(&self) -> u32 {
        self.rec().cancels_seen
    }

    /// Every artifact ever prepared has been released (call after shutdown).
    pub fn assert_all_released(&self) {
        let r = self.rec();
        assert!(r.live.is_empty(), "artifacts leaked (never released): {:?}", r.live);
        assert_eq!(r.released.len() as u64, r.next_id, "released count differs from prepared count");
    }
}

impl Chip for TestChip {
    type Prepared = Artifact;

    fn name(&self) -> &str {
        "testchip"
    }

    fn bind_lane(&self, lane: LaneKind) -> Result<(), ChipError> {
        let me = thread::current().id();
        let mut r = self.rec();
        let slot = match lane {
            LaneKind::Run => &mut r.run_lane,
            LaneKind::Register => &mut r.reg_lane,
        };
        assert!(slot.is_none(), "bind_lane({lane:?}) called twice");
        *slot = Some(me);
        Ok(())
    }

    fn prepare(&self, spec: &CallableSpec, cancel: &dyn CancelProbe) -> Result<Artifact, ChipError> {
        let me = thread::current().id();
        {
            let mut r = self.rec();
            assert!(r.reg_lane == Some(me), "prepare called off the register lane thread");
            r.prepares.push(spec.kernel.clone());
        }
        let hook = self.hooks.lock().unwrap().get(&spec.kernel).cloned();
        if let Some(f) = hook {
            f();
        }
        self.wait_gate(&spec.kernel, Hold::Prepare);
        // The safe point: a lock release and re-acquire, so the model can
        // interleave an unregister between the start and the probe.
        let cancelled = cancel.is_cancelled();
        let mut r = self.rec();
        if cancelled {
            r.cancels_seen += 1;
            if self.honour_cancel {
                return Err(ChipError::new(ChipErrorKind::Cancelled, "cancel observed"));
            }
        }
        if spec.kernel == "fail" {
            return Err(ChipError::new(ChipErrorKind::InvalidSpec, "kernel 'fail' never prepares"));
        }
        let id = r.next_id;
        r.next_id += 1;
        r.live.insert(id);
        Ok(Artifact { id, kernel: spec.kernel.clone() })
    }

    fn run(&self, prepared: &Artifact, args: &TaskArgs, _config: &RunConfig) -> Result<RunOutput, ChipError> {
        let me = thread::current().id();
        let tag = args.scalars.first().copied().unwrap_or(u64::MAX);
        let short = self.inline.lock().unwrap().contains(&prepared.kernel);
        {
            let mut r = self.rec();
            if r.run_lane != Some(me) {
                assert!(short, "run (tag {tag}) called off the run lane thread");
                r.off_lane_runs += 1;
            }
            assert!(r.running.is_none(), "two runs at once on the run lane");
            assert!(r.live.contains(&prepared.id), "run on artifact {} that is not live", prepared.id);
            r.running = Some(prepared.id);
        }
        // A yield point inside the run: a release racing the run can land here.
        thread::yield_now();
        self.wait_gate(&prepared.kernel, Hold::Run);
        let mut r = self.rec();
        assert_eq!(r.running, Some(prepared.id));
        assert!(r.live.contains(&prepared.id), "artifact {} released during its run", prepared.id);
        r.running = None;
        r.runs.push(tag);
        Ok(RunOutput { tensors: vec![vec![prepared.id as f32, tag as f32]] })
    }

    fn run_inline(&self, prepared: &Artifact, _args: &TaskArgs) -> bool {
        self.inline.lock().unwrap().contains(&prepared.kernel)
    }

    fn release(&self, prepared: Artifact) {
        self.wait_gate(&prepared.kernel, Hold::Release);
        let me = thread::current().id();
        let mut r = self.rec();
        assert!(r.reg_lane == Some(me), "release called off the register lane thread");
        assert!(r.running != Some(prepared.id), "release of artifact {} while it runs", prepared.id);
        assert!(r.live.remove(&prepared.id), "artifact {} released twice", prepared.id);
        r.released.insert(prepared.id);
    }
}

/// The spec of a test callable.
pub fn spec(kernel: &str) -> CallableSpec {
    CallableSpec::chip(kernel, vec![1])
}

/// Arguments tagged `tag` (the chip records the tag in run order).
pub fn args(tag: u64) -> TaskArgs {
    TaskArgs { tensors: vec![], scalars: vec![tag] }
}
