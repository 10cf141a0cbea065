//! The composed pure system: core's parent endpoint, the shared region,
//! core's child endpoint and core's chip side (slot table, run lane,
//! register lane, control mapping, settlement routing), with a user that
//! submits a bounded number of operations and a chip whose lane work
//! finishes as explicit actions. Every interleaving is a sequence of
//! [`Action`]s; the exhaustive checker (`exhaustive.rs`) explores all of
//! them, the fuzz harness picks them from its input, and tests script them.
//!
//! # The code that runs is the code that is checked
//! This module plays the drivers (the parent's, the child's serve loop, the
//! chip's lanes), the memory and the chip; it never plays the protocol or
//! the chip side's bookkeeping. Every machine is core's: [`ParentEndpoint`],
//! [`ChildEndpoint`](chiplane_core::mailbox::child::ChildEndpoint),
//! [`ChipSide`](chiplane_core::chipside::ChipSide). Every word transition
//! goes through `WordState::apply`, the ring through `RingIndices`, frames
//! through `Frame::encode_into` / `decode_field` in the field core's
//! `field_for` chose (see `memory.rs`).
//!
//! # Granularity
//! One action is one step of one party: a user submission; one parent
//! driver step (execute the memory output it holds, or load the word; see
//! `host.rs`); a ring pop; one serve-loop step of the child (see
//! `child.rs`); the chip finishing its run or its register-lane job; the
//! child dying (between any two of its steps, or in the middle of a frame
//! write: a torn write); the parent reaping it.
//!
//! # What is checked (after every action, [`System::check`] and at the moment things happen)
//! - the slot table's invariants; every successful CAS is in the design's
//!   table for its side (`mailbox::word::legal`); POISONED, once in the
//!   word, stays (rule 10);
//! - an artifact is released at most once and never while a run uses it;
//!   no run uses a released artifact, or another callable's artifact; one
//!   run and one register-lane job at a time; runs retire in the order
//!   their tasks were queued;
//! - every dispatch resolves at most once, every settlement at most once;
//!   a successful run returns its callable's reference result;
//! - no poison and no endpoint error unless a fault (a child death) was
//!   injected; a memory control is never applied while the child holds a
//!   task (rule 3); the child never pushes into a full ring;
//! - rule 12: once poisoned or gone the parent never hands out a memory
//!   output, and it accepts the answer to one it handed out before;
//!
//! and, in a state where no action changes anything ([`System::check_final`]):
//! every submission resolved exactly once (every owed settlement too), and
//! unless the child died nothing is pinned, queued or on the chip, and every
//! artifact is held by a PREPARED slot or was released.

mod checks;
pub mod child;
pub mod chip;
mod host;
mod memory;
pub mod part;

pub use checks::{Named, Reached};
pub use child::{ChildProc, Env, Served};
pub use chip::ModelChip;
pub use host::Host;
pub use memory::Memory;

use chiplane_core::chip::{CallableSpec, TaskArgs};
use chiplane_core::error::{ControlError, RunError, UnregisterError};
use chiplane_core::frame::ControlReply;
use chiplane_core::ids::{DispatchId, Generation, SlotIndex, WorkerId};
use chiplane_core::kernels;
use chiplane_core::slot::SlotLimits;
use chiplane_core::RunOutput;

/// The chip child's worker id.
pub const CHILD_WORKER: WorkerId = WorkerId(7);

/// Number of distinct callables the user works with.
pub const CALLABLES: usize = 2;

/// Bounds of one exploration.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// User operations the user may submit in total.
    pub ops_max: u8,
    /// The child may die once, at any point (also in the middle of a frame
    /// write).
    pub allow_death: bool,
    /// Prepares and runs may fail.
    pub allow_chip_errors: bool,
    /// Completion ring entries (shrunk so "ring full" is reachable).
    pub ring_capacity: usize,
    /// The user may submit memory controls.
    pub allow_memory: bool,
    /// Adversarial register lane: a prepare cannot finish while a finished
    /// run's result has not reached the parent (the chip's result buffer must
    /// be drained first). A correct protocol still resolves everything (the
    /// run lane never waits for the register lane); a child whose mailbox
    /// loop waits for a lane deadlocks (seed hazard D).
    pub prepare_waits_for_runs: bool,
    /// Slot table limits in the child (shrunk: fewer states, and retirement
    /// and table-full stay reachable).
    pub limits: SlotLimits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ops_max: 4,
            allow_death: false,
            allow_chip_errors: false,
            ring_capacity: 1,
            allow_memory: true,
            prepare_waits_for_runs: false,
            limits: SlotLimits { capacity: 2, generation_max: Generation(2) },
        }
    }
}

/// What the user submitted, per dispatch.
#[derive(Clone, Debug, PartialEq, Hash)]
pub enum Op {
    Register { callable: usize },
    Unregister { callable: usize, handle: (SlotIndex, Generation) },
    Run { callable: usize, handle: (SlotIndex, Generation) },
    Memory,
}

/// One step of the system.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Action {
    /// The user registers callable `c`.
    UserRegister(u8),
    /// The user unregisters callable `c` through the last handle it got.
    UserUnregister(u8),
    /// The user runs callable `c` through the last handle it got (possibly stale).
    UserRun(u8),
    /// The user submits a memory control.
    UserMemory,
    /// The parent's driver executes the memory output it holds, or loads the word.
    Parent,
    /// The parent pops one completion from the ring.
    ParentRing,
    /// One serve-loop step of the child.
    Child,
    /// The chip finishes the running run (`ok` = success, else a chip error).
    RunFinish { ok: bool },
    /// The chip finishes the register lane's prepare (`ok`) or release.
    RegFinish { ok: bool },
    /// The child process dies.
    ChildDies,
    /// The child dies in the middle of the frame write it was about to make:
    /// the first half of the bytes reached the field.
    ChildDiesTearing,
    /// The parent notices the death (after the reap) and fails everything.
    ParentReaps,
}

impl Action {
    /// A user submission.
    pub fn is_user(self) -> bool {
        matches!(self, Action::UserRegister(_) | Action::UserUnregister(_) | Action::UserRun(_) | Action::UserMemory)
    }

    /// A fault (a death).
    pub fn is_fault(self) -> bool {
        matches!(self, Action::ChildDies | Action::ChildDiesTearing)
    }
}

/// A prepared artifact of the model chip.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Artifact {
    pub id: u32,
    pub callable: u8,
}

/// How a dispatch resolved.
#[derive(Clone, Debug, PartialEq, Hash)]
pub enum Resolution {
    Task(Result<RunOutput, RunError>),
    Control(Result<ControlReply, ControlError>),
}

/// The spec of callable `c`. All callables are the same kernel with the
/// same shapes (so every frame has the same size whichever callable it
/// names: the callables are interchangeable, see `exhaustive.rs`) and
/// differ in a parameter (their digest) and in their arguments (their
/// result).
pub fn spec_of(c: u8) -> CallableSpec {
    CallableSpec::chip(kernels::HEAVY_PREPARE, vec![1, u64::from(c)])
}

/// Which callable `spec` is (`spec_of` inverted; 0 for a spec no user
/// registers, which a check then reports as a wrong result).
pub fn callable_of(spec: &CallableSpec) -> u8 {
    (0..CALLABLES as u8).find(|c| spec_of(*c) == *spec).unwrap_or(0)
}

/// The args the user passes to callable `c`.
pub fn args_of(c: u8) -> TaskArgs {
    TaskArgs { tensors: vec![vec![1.5], vec![2.0 + f32::from(c)]], scalars: vec![] }
}

/// The whole system. `Clone` is cheap (copy-on-write parts), so explorers
/// fork states freely.
#[derive(Clone, Debug)]
pub struct System {
    pub cfg: Config,
    mem: Memory,
    host: Host,
    child: ChildProc,
    /// A fault (a child death) was injected: poison and endpoint errors are allowed.
    pub fault_injected: bool,
    /// Named states this run went through (not part of the state).
    pub reached: Reached,
    pub violation: Option<String>,
}

impl System {
    pub fn new(cfg: Config) -> Self {
        let mut s = System {
            cfg,
            mem: Memory::new(cfg.ring_capacity),
            host: Host::new(),
            child: ChildProc::new(ModelChip::new(CHILD_WORKER, cfg.limits)),
            fault_injected: false,
            reached: Reached::default(),
            violation: None,
        };
        s.check();
        s
    }

    fn fail(&mut self, msg: String) {
        if self.violation.is_none() {
            self.violation = Some(msg);
        }
    }

    /// The state's 128-bit fingerprint: everything that determines what
    /// happens next (not `reached`, not the violation).
    pub fn fingerprint(&self) -> u128 {
        part::fp128(&(&self.mem, &self.host, &self.child, self.fault_injected))
    }

    /// The actions that change the state, in a fixed order.
    pub fn enabled(&self) -> Vec<Action> {
        self.actions(true)
    }

    /// [`System::enabled`], except that a word load is offered whenever its
    /// machine wants the word, whether or not it changes anything (cheaper:
    /// a searcher that compares fingerprints finds out anyway).
    pub fn candidates(&self) -> Vec<Action> {
        self.actions(false)
    }

    fn actions(&self, exact: bool) -> Vec<Action> {
        let mut v = Vec::new();
        if self.violation.is_some() {
            return v;
        }
        let (h, c) = (&self.host, &self.child);
        if h.open() && h.ops_used < self.cfg.ops_max {
            // Callables no submission named yet are interchangeable: offer
            // only the first of them (see `exhaustive.rs`, symmetry).
            let mut fresh_offered = false;
            for k in 0..CALLABLES {
                let touched = h.touched(k);
                if touched || !fresh_offered {
                    v.push(Action::UserRegister(k as u8));
                    fresh_offered |= !touched;
                }
                if h.user_handle[k].is_some() {
                    v.push(Action::UserUnregister(k as u8));
                    v.push(Action::UserRun(k as u8));
                }
            }
            if self.cfg.allow_memory {
                v.push(Action::UserMemory);
            }
        }
        if h.held.is_some() || (h.parent.wants_word() && (!exact || self.parent_observe_changes())) {
            v.push(Action::Parent);
        }
        if h.open() && self.mem.ring_len() > 0 {
            v.push(Action::ParentRing);
        }
        if c.dead {
            if h.parent.gone().is_none() {
                v.push(Action::ParentReaps);
            }
            return v;
        }
        if c.can_step(&self.mem, exact) {
            v.push(Action::Child);
        }
        if c.chip.running() {
            v.push(Action::RunFinish { ok: true });
            if self.cfg.allow_chip_errors {
                v.push(Action::RunFinish { ok: false });
            }
        }
        match c.chip.preparing() {
            // A busy chip holds a prepare while a finished run's result has
            // not reached the parent yet.
            Some(_)
                if self.cfg.prepare_waits_for_runs && c.chip.retired.iter().any(|d| !h.resolved.contains_key(d)) => {}
            Some(cancelled) => {
                v.push(Action::RegFinish { ok: true });
                if self.cfg.allow_chip_errors || cancelled {
                    v.push(Action::RegFinish { ok: false });
                }
            }
            None if c.chip.register_busy() => v.push(Action::RegFinish { ok: true }),
            None => {}
        }
        if self.cfg.allow_death && !self.fault_injected {
            v.push(Action::ChildDies);
            if c.writing() {
                v.push(Action::ChildDiesTearing);
            }
        }
        v
    }

    /// Apply one action, then check the invariants.
    pub fn step(&mut self, a: Action) {
        match a {
            Action::UserRegister(_) | Action::UserUnregister(_) | Action::UserRun(_) | Action::UserMemory => {
                self.user(a)
            }
            Action::Parent => self.parent_step(),
            Action::ParentRing => self.parent_ring(),
            Action::Child => self.child_step(),
            Action::RunFinish { ok } => {
                let r = self.child.finish_run(ok, |a, args| kernels::reference(&spec_of(a.callable), args));
                self.fail_on(r);
            }
            Action::RegFinish { ok } => {
                let r = self.child.finish_register(ok, callable_of);
                self.fail_on(r);
            }
            Action::ChildDies | Action::ChildDiesTearing => {
                self.fault_injected = true;
                let r = self.child.die(&mut self.mem, a == Action::ChildDiesTearing, &mut self.reached);
                self.fail_on(r);
            }
            Action::ParentReaps => self.parent_reaps(),
        }
        self.check();
    }

    /// [`Action::Child`]: one serve-loop step.
    fn child_step(&mut self) {
        let host = &self.host;
        let expect = |d: DispatchId| match host.submitted.get(&d) {
            Some(Op::Run { callable, .. }) => Some(*callable as u8),
            _ => None,
        };
        let mut env = Env { fault: self.fault_injected, reached: &mut self.reached, expect: &expect, trace: false };
        let r = self.child.serve_step(&mut self.mem, &mut env);
        self.fail_on(r);
    }

    fn fail_on<T>(&mut self, r: Result<T, String>) {
        if let Err(e) = r {
            self.fail(e);
        }
    }

    /// The raw state word.
    pub fn word(&self) -> u32 {
        self.mem.word
    }

    /// The parent endpoint.
    pub fn parent(&self) -> &chiplane_core::mailbox::parent::ParentEndpoint {
        &self.host.parent
    }

    /// The user and the parent's driver (submissions, resolutions).
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The child process (endpoint, chip side, model chip).
    pub fn child(&self) -> &ChildProc {
        &self.child
    }

    /// The child is dead.
    pub fn child_dead(&self) -> bool {
        self.child.dead
    }

    /// The run went through the named state.
    pub fn saw(&self, n: Named) -> bool {
        self.reached.contains(n)
    }

    /// Outcome of each user operation, for reporting.
    pub fn outcomes(&self) -> Vec<(DispatchId, Op, Option<Resolution>)> {
        let h = &self.host;
        h.submitted.iter().map(|(d, op)| (*d, op.clone(), h.resolved.get(d).cloned())).collect()
    }

    pub fn unregister_error(r: &Resolution) -> Option<UnregisterError> {
        match r {
            Resolution::Control(Err(ControlError::Unregister(e))) => Some(e.clone()),
            _ => None,
        }
    }
}
