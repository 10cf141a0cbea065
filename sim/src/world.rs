//! The whole-system simulation of one seed: callers issuing a random
//! workload against the real core machines, in virtual time, on one thread.

use chiplane_core::slot::{SlotError, SlotInput, SlotLimits, SlotReply, SlotState};
use chiplane_core::{
    CallableSpec, Generation, Handle, RegisterError, RunError, RunOutput, SlotIndex, TargetKind, TaskArgs,
    UnregisterError, WorkerId,
};

use crate::check::Checker;
use crate::chipside::{ChipSide, Note, TRACK_REGISTER, TRACK_RUN};
use crate::l3::L3Out;
use crate::options::{Options, Shape};
use crate::sched::{Ctx, Ev};

/// The worker id of the simulated chip (L2 worker, or the L3 chip child).
pub const WORKER: WorkerId = WorkerId(1);
/// Caller tracks start here in the Chrome trace.
pub const TRACK_CALLER0: u32 = 10;
/// Hard cap on events per seed (a runaway schedule is a liveness failure).
pub const EVENT_CAP: u64 = 2_000_000;

/// What a handle resolved to.
#[derive(Clone, Debug, PartialEq)]
pub enum OpResult {
    Register(Result<Handle, RegisterError>),
    Unregister(Result<bool, UnregisterError>),
    Run(Result<RunOutput, RunError>),
    /// L3 memory control.
    Memory(Result<(), chiplane_core::ControlError>),
}

impl OpResult {
    fn code(&self) -> u64 {
        match self {
            OpResult::Register(Ok(h)) => 0x100 | u64::from(h.index.0) << 16 | u64::from(h.generation.0) << 32,
            OpResult::Register(Err(e)) => 0x200 | (discriminant(e) << 16),
            OpResult::Unregister(Ok(last)) => 0x300 | u64::from(*last),
            OpResult::Unregister(Err(e)) => 0x400 | (discriminant(e) << 16),
            OpResult::Run(Ok(o)) => {
                0x500 | o.tensors.first().and_then(|t| t.first()).map_or(0, |x| u64::from(x.to_bits())) << 16
            }
            OpResult::Run(Err(e)) => 0x600 | (discriminant(e) << 16),
            OpResult::Memory(Ok(())) => 0x700,
            OpResult::Memory(Err(e)) => 0x800 | (discriminant(e) << 16),
        }
    }
}

fn discriminant<T: core::fmt::Debug>(e: &T) -> u64 {
    // Canonical and stable: a hash of the Debug text (no addresses in it).
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in format!("{e:?}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h & 0xFFFF_FFFF
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OpKind {
    Register,
    Unregister,
    Run,
    Memory,
}

#[derive(Debug)]
pub struct Op {
    pub caller: u32,
    pub kind: OpKind,
    pub issued_ns: u64,
    pub result: Option<OpResult>,
    /// Runs: the callable the handle named at submission, and the args.
    pub run: Option<(Option<usize>, TaskArgs)>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Phase {
    Work,
    Drain,
    Done,
}

#[derive(Debug)]
pub(crate) struct Caller {
    pub(crate) phase: Phase,
    ops_left: u32,
    /// One entry per registration this caller holds: (handle, callable).
    pub(crate) held: Vec<(Handle, usize)>,
    /// Handles it unregistered (material for stale use).
    retired: Vec<Handle>,
    pending: Vec<u32>,
    pub(crate) blocked_on: Option<u32>,
}

/// The verdict of one seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Safety(String),
    Liveness(String),
    Panic(String),
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Safety(_) => "safety",
            Verdict::Liveness(_) => "liveness",
            Verdict::Panic(_) => "panic",
        }
    }
}

/// The result of one seed.
#[derive(Debug)]
pub struct Report {
    pub verdict: Verdict,
    pub hash: u64,
    pub events: u64,
    pub virtual_ns: u64,
    pub ops: usize,
    pub runs: u64,
    pub prepares: u64,
    pub stale_completions: u64,
    /// L3: chip child deaths (0 or 1).
    pub deaths: u64,
    /// Handles that resolved with an error.
    pub errors: u64,
    /// Named scenarios reached.
    pub cov: crate::sched::Coverage,
    /// Runs whose handle named another callable (or none) when submitted
    /// than when the chip side pinned it (L3: a handle fabricated before its
    /// generation was issued, pinned after).
    pub renamed_runs: u64,
    pub chrome: Vec<String>,
}

/// One simulation.
#[derive(Debug)]
pub struct World {
    pub cx: Ctx,
    pub chip: ChipSide,
    pub(crate) callers: Vec<Caller>,
    pub ops: Vec<Op>,
    /// Register ops waiting for their handle's settlement.
    reg_waiters: Vec<(Handle, u32)>,
    working: u32,
    pub l3: Option<crate::l3::L3>,
    /// The overlap experiment's scripted caller (replaces the random workload).
    pub(crate) script: Option<crate::overlap::Script>,
    renamed_runs: u64,
    /// Per run op: the callable its handle named at submission.
    named_at_submit: Vec<(u32, Option<usize>)>,
}

impl World {
    pub fn new(opts: Options, record_spans: bool) -> World {
        let limits = SlotLimits { capacity: opts.capacity, generation_max: Generation(opts.generation_max) };
        let check = Checker::new(WORKER, limits);
        let ncallers = opts.callers;
        let ops_per_caller = opts.ops_per_caller;
        let shape = opts.shape;
        let mut cx = Ctx::new(opts, check, record_spans);
        cx.trace.name_track(TRACK_RUN, "run lane");
        cx.trace.name_track(TRACK_REGISTER, "register lane");
        let callers = (0..ncallers)
            .map(|c| {
                cx.trace.name_track(TRACK_CALLER0 + c, format!("caller {c}"));
                let delay = cx.rng.below(1_000_000);
                cx.at(delay, Ev::CallerStep(c));
                Caller {
                    phase: Phase::Work,
                    ops_left: ops_per_caller,
                    held: Vec::new(),
                    retired: Vec::new(),
                    pending: Vec::new(),
                    blocked_on: None,
                }
            })
            .collect();
        let mut w = World {
            cx,
            chip: ChipSide::new(WORKER, limits),
            callers,
            ops: Vec::new(),
            reg_waiters: Vec::new(),
            working: ncallers,
            l3: None,
            script: None,
            renamed_runs: 0,
            named_at_submit: Vec::new(),
        };
        if shape == Shape::L3 {
            w.l3 = Some(crate::l3::L3::new(&mut w.cx));
        }
        w
    }

    /// Run to the end; the verdict and the trace hash.
    pub fn run(mut self) -> Report {
        self.run_inner()
    }

    /// Run a scripted world to the end; the report and the script.
    pub(crate) fn run_scripted(mut self) -> (Report, Option<crate::overlap::Script>) {
        let r = self.run_inner();
        (r, self.script.take())
    }

    /// The handle a register op got at its call or its acceptance (L3), if known yet.
    pub(crate) fn accepted_handle(&self, c: u32, op: u32) -> Option<Handle> {
        if let Some(l3) = &self.l3 {
            return l3.accepted(op);
        }
        let _ = op;
        self.callers[c as usize].held.last().map(|x| x.0)
    }

    /// L3: block caller `c` until the register op is accepted.
    pub(crate) fn await_acceptance(&mut self, c: u32, op: u32) {
        if let Some(l3) = self.l3.as_mut() {
            l3.notify_acceptance(op, c);
        }
    }

    fn run_inner(&mut self) -> Report {
        let mut verdict = Verdict::Pass;
        while let Some(ev) = self.cx.pop() {
            self.step(ev);
            if let Some(v) = self.cx.check.violation() {
                verdict = Verdict::Safety(v.to_string());
                break;
            }
            if self.cx.trace.events >= EVENT_CAP {
                verdict = Verdict::Liveness(format!("no quiescence after {EVENT_CAP} events"));
                break;
            }
        }
        if verdict == Verdict::Pass {
            if let Err(e) = self.liveness() {
                verdict = Verdict::Liveness(e);
            }
        }
        let mut chrome = Vec::new();
        if self.cx.trace.recording() {
            self.cx.trace.chrome_events(
                1,
                &format!("seed {} {:?}", self.cx.opts.seed, self.cx.opts.shape),
                &mut chrome,
            );
        }
        Report {
            verdict,
            hash: self.cx.trace.hash(),
            events: self.cx.trace.events,
            virtual_ns: self.cx.now,
            ops: self.ops.len(),
            runs: self.chip.runs_done,
            prepares: self.chip.prepares_done,
            stale_completions: self.chip.table.stale_completions(),
            deaths: self.l3.as_ref().map_or(0, |l| l.deaths),
            errors: self.ops.iter().filter(|o| o.result.as_ref().is_some_and(is_err)).count() as u64,
            cov: self.cx.cov,
            renamed_runs: self.renamed_runs,
            chrome,
        }
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::CallerStep(c) => self.caller_step(c),
            Ev::Wake(c) => {
                self.cx.cov.hit(10);
                self.callers[c as usize].blocked_on = None;
                self.caller_step(c);
            }
            Ev::PrepareDone(j) => self.chip.prepare_done(&mut self.cx, j),
            Ev::ReleaseDone(j) => self.chip.release_done(&mut self.cx, j),
            Ev::RunDone(j) => self.chip.run_done(&mut self.cx, j),
            Ev::Replay => self.chip.replay(&mut self.cx),
            Ev::ParentStep | Ev::ChildStep | Ev::WordVisible(_) | Ev::ChildReaped => {
                if let Some(l3) = self.l3.as_mut() {
                    l3.step(ev, &mut self.cx, &mut self.chip);
                }
            }
        }
        self.settle();
        self.cx.check.table(&self.chip.table);
    }

    /// Run the machines until nothing changes; route what they owe.
    fn settle(&mut self) {
        loop {
            self.chip.pump(&mut self.cx);
            if let Some(l3) = self.l3.as_mut() {
                l3.pump(&mut self.cx, &mut self.chip);
                let outs = l3.take_resolved();
                if outs.is_empty() && self.chip.notes.is_empty() {
                    break;
                }
                for o in outs {
                    match o {
                        L3Out::Resolve(op, r) => self.resolve(op, r),
                        L3Out::Hold { caller, handle, callable } => {
                            self.callers[caller as usize].held.push((handle, callable))
                        }
                        L3Out::WakeCaller(c) => self.cx.at(0, Ev::CallerStep(c)),
                        L3Out::Pinned(op, callable) => self.pinned(op, callable),
                    }
                }
                continue;
            }
            let Some(note) = self.chip.notes.pop_front() else { break };
            match note {
                Note::Settled { handle, result } => {
                    let mut k = 0;
                    while k < self.reg_waiters.len() {
                        if self.reg_waiters[k].0 == handle {
                            let (_, op) = self.reg_waiters.swap_remove(k);
                            self.resolve(op, OpResult::Register(result.clone().map(|()| handle)));
                        } else {
                            k += 1;
                        }
                    }
                }
                Note::Freed { .. } => {}
                Note::Pinned { token, callable } => self.pinned(token as u32, callable),
                Note::RunFinished { token, result } => self.resolve(token as u32, OpResult::Run(result)),
            }
        }
    }

    fn pinned(&mut self, op: u32, callable: Option<usize>) {
        if let Some(&(_, at_submit)) = self.named_at_submit.iter().find(|(o, _)| *o == op) {
            if at_submit != callable {
                self.renamed_runs += 1;
            }
        }
        self.named_at_submit.retain(|(o, _)| *o != op);
        if let Some((c, _)) = self.ops[op as usize].run.as_mut() {
            *c = callable;
        }
    }

    /// A handle resolved (exactly once).
    pub fn resolve(&mut self, op: u32, r: OpResult) {
        let now = self.cx.now;
        let o = &mut self.ops[op as usize];
        if let Some(prev) = &o.result {
            let prev = prev.clone();
            self.cx.check.fail(|| format!("op {op} resolved twice: {prev:?} then {r:?}"));
            return;
        }
        self.cx.trace.mix(u64::from(op) << 32 | r.code());
        if let (OpResult::Run(result), Some((callable, args))) = (&r, &o.run) {
            let spec = callable.and_then(|c| self.cx.opts.callables.get(c)).map(|c| &c.spec);
            self.cx.check.run_result(spec, args, result);
        }
        if self.cx.trace.recording() {
            let name = format!("{:?} #{op} -> {}", o.kind, short(&r));
            self.cx.trace.span(TRACK_CALLER0 + o.caller, name, o.issued_ns, now);
        }
        let caller = o.caller as usize;
        o.result = Some(r);
        if self.callers[caller].blocked_on == Some(op) {
            let d = self.cx.opts.wake.sample(&mut self.cx.rng);
            self.cx.at(d, Ev::Wake(caller as u32));
        }
    }

    fn new_op(&mut self, caller: u32, kind: OpKind) -> u32 {
        self.ops.push(Op { caller, kind, issued_ns: self.cx.now, result: None, run: None });
        (self.ops.len() - 1) as u32
    }

    pub(crate) fn resolved(&self, op: u32) -> bool {
        self.ops[op as usize].result.is_some()
    }

    fn caller_step(&mut self, c: u32) {
        let ci = c as usize;
        if self.script.is_some() {
            if self.callers[ci].blocked_on.is_none() {
                crate::overlap::script_step(self);
            }
            return;
        }
        if self.callers[ci].blocked_on.is_some() || self.callers[ci].phase == Phase::Done {
            return;
        }
        if self.callers[ci].phase == Phase::Work && self.callers[ci].ops_left == 0 {
            self.callers[ci].phase = Phase::Drain;
            self.working -= 1;
            if self.working == 0 {
                self.cx.faults_on = false;
            }
        }
        if self.callers[ci].phase == Phase::Drain {
            self.drain_step(c);
            return;
        }
        self.callers[ci].ops_left -= 1;
        let bad = self.cx.rng.per_mille(self.cx.opts.bad_input);
        let sync = !self.cx.rng.per_mille(self.cx.opts.async_ops);
        let roll = self.cx.rng.below(if self.l3.is_some() { 12 } else { 11 });
        let op = match roll {
            11 => Some(self.op_memory(c)),
            0..=2 => Some(self.op_register(c, bad)),
            3..=4 => Some(self.op_unregister(c, bad)),
            5..=9 => Some(self.op_run(c, bad)),
            _ => {
                // Wait on one outstanding async handle.
                self.callers[ci].pending.retain(|&p| self.ops[p as usize].result.is_none());
                let pending = &self.callers[ci].pending;
                if pending.is_empty() {
                    None
                } else {
                    let p = pending[self.cx.rng.below(pending.len() as u64) as usize];
                    self.callers[ci].blocked_on = Some(p);
                    return;
                }
            }
        };
        if let Some(op) = op {
            if self.resolved(op) {
                // Resolved at the call: nothing to wait for.
            } else if sync {
                self.callers[ci].blocked_on = Some(op);
                return;
            } else {
                self.callers[ci].pending.push(op);
            }
        }
        let d = self.cx.opts.think.sample(&mut self.cx.rng);
        self.cx.at(d, Ev::CallerStep(c));
    }

    /// Cleanup: wait for every pending handle, then unregister everything held.
    fn drain_step(&mut self, c: u32) {
        let ci = c as usize;
        while let Some(&p) = self.callers[ci].pending.last() {
            if self.resolved(p) {
                self.callers[ci].pending.pop();
            } else {
                self.callers[ci].blocked_on = Some(p);
                return;
            }
        }
        if let Some((h, _)) = self.callers[ci].held.pop() {
            let op = self.unregister(c, h);
            if !self.resolved(op) {
                self.callers[ci].blocked_on = Some(op);
                return;
            }
            let d = self.cx.opts.think.sample(&mut self.cx.rng);
            self.cx.at(d, Ev::CallerStep(c));
            return;
        }
        self.callers[ci].phase = Phase::Done;
    }

    fn op_register(&mut self, c: u32, bad: bool) -> u32 {
        let k = self.cx.rng.below(self.cx.opts.callables.len() as u64) as usize;
        let mut spec = self.cx.opts.callables[k].spec.clone();
        if bad && self.cx.rng.coin() {
            spec.kind = TargetKind::Orchestration;
        }
        self.register(c, k, &spec)
    }

    /// L3: a memory control (must wait for IDLE: rule 3).
    fn op_memory(&mut self, c: u32) -> u32 {
        let op = self.new_op(c, OpKind::Memory);
        let bytes = self.cx.rng.range(1, 1 << 20);
        let free = self.cx.rng.coin();
        if let Some(l3) = self.l3.as_mut() {
            l3.submit_memory(&mut self.cx, op, bytes, free);
        }
        op
    }

    fn op_unregister(&mut self, c: u32, bad: bool) -> u32 {
        let ci = c as usize;
        if !bad && !self.callers[ci].held.is_empty() {
            let k = self.cx.rng.below(self.callers[ci].held.len() as u64) as usize;
            let (h, _) = self.callers[ci].held.swap_remove(k);
            self.callers[ci].retired.push(h);
            return self.unregister(c, h);
        }
        let h = self.bad_handle(c);
        self.unregister(c, h)
    }

    fn op_run(&mut self, c: u32, bad: bool) -> u32 {
        let ci = c as usize;
        let ncall = self.cx.opts.callables.len() as u64;
        let (h, k) = if !bad && !self.callers[ci].held.is_empty() {
            let held = &self.callers[ci].held;
            held[self.cx.rng.below(held.len() as u64) as usize]
        } else {
            (self.bad_handle(c), self.cx.rng.below(ncall) as usize)
        };
        let mut args = self.args_for(k);
        if bad && self.cx.rng.coin() {
            if self.l3.is_some() && self.cx.rng.below(4) == 0 {
                // Too large for the task frame: PayloadTooLarge at the call.
                args.tensors[0] = vec![0.0; 20_000];
            } else {
                args.tensors[1].pop();
            }
        }
        self.submit_run(c, h, args)
    }

    pub(crate) fn args_for(&mut self, k: usize) -> TaskArgs {
        let spec = &self.cx.opts.callables[k].spec;
        let n = spec.params[0] as usize;
        let base = self.cx.rng.below(64) as f32;
        let a: Vec<f32> = (0..n).map(|i| base + i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..n).map(|i| 1.0 + i as f32 * 0.25).collect();
        let scalars = if spec.kernel == chiplane_core::kernels::REPEAT_VECTOR_ADD {
            vec![self.cx.rng.range(0, 4)]
        } else {
            vec![]
        };
        TaskArgs { tensors: vec![a, b], scalars }
    }

    /// A handle a correct caller would not use: foreign, out of range, stale
    /// (unregistered earlier, or of a generation never issued).
    fn bad_handle(&mut self, c: u32) -> Handle {
        let cap = self.cx.opts.capacity as u32;
        let index = SlotIndex(self.cx.rng.below(u64::from(cap)) as u32);
        let generation = Generation(self.cx.rng.range(0, 3) as u32);
        match self.cx.rng.below(4) {
            0 => Handle { worker: WorkerId(WORKER.0 + 1), index, generation: Generation(1) },
            1 => Handle { worker: WORKER, index: SlotIndex(cap + self.cx.rng.below(3) as u32), generation },
            2 if !self.callers[c as usize].retired.is_empty() => {
                let r = &self.callers[c as usize].retired;
                r[self.cx.rng.below(r.len() as u64) as usize]
            }
            _ => Handle { worker: WORKER, index, generation },
        }
    }

    // ---- operations, by shape ---------------------------------------------

    pub(crate) fn register(&mut self, c: u32, k: usize, spec: &CallableSpec) -> u32 {
        let op = self.new_op(c, OpKind::Register);
        if spec.kind != TargetKind::ChipCallable {
            self.resolve(op, OpResult::Register(Err(RegisterError::WrongTarget)));
            return op;
        }
        if let Some(l3) = self.l3.as_mut() {
            l3.submit_register(&mut self.cx, op, c, k, spec);
            // The caller learns its handle from the control reply.
            return op;
        }
        let digest = self.cx.opts.callables[k].digest;
        match self.chip.feed(&mut self.cx, SlotInput::Register { digest }) {
            Ok(SlotReply::Registered { handle, fresh }) => {
                self.callers[c as usize].held.push((handle, k));
                let state = self.chip.table.check(handle);
                match (fresh, state) {
                    (false, Ok(SlotState::Prepared)) => self.resolve(op, OpResult::Register(Ok(handle))),
                    (false, Ok(SlotState::Failed)) => {
                        let e = match self.chip.table.runnable(handle) {
                            Err(RunError::PrepareFailed(e)) => RegisterError::PrepareFailed(e),
                            other => {
                                self.cx.check.fail(|| format!("FAILED slot, runnable {other:?}"));
                                RegisterError::TableFull
                            }
                        };
                        self.resolve(op, OpResult::Register(Err(e)));
                    }
                    _ => self.reg_waiters.push((handle, op)),
                }
            }
            Err(SlotError::Register(e)) => self.resolve(op, OpResult::Register(Err(e))),
            other => self.cx.check.fail(|| format!("register replied {other:?}")),
        }
        op
    }

    pub(crate) fn unregister(&mut self, c: u32, h: Handle) -> u32 {
        let op = self.new_op(c, OpKind::Unregister);
        if let Some(l3) = self.l3.as_mut() {
            l3.submit_unregister(&mut self.cx, op, h);
            return op;
        }
        match self.chip.feed(&mut self.cx, SlotInput::Unregister { handle: h }) {
            Ok(SlotReply::Unregistered { last }) => self.resolve(op, OpResult::Unregister(Ok(last))),
            Err(SlotError::Unregister(e)) => self.resolve(op, OpResult::Unregister(Err(e))),
            other => self.cx.check.fail(|| format!("unregister replied {other:?}")),
        }
        op
    }

    pub(crate) fn submit_run(&mut self, c: u32, h: Handle, args: TaskArgs) -> u32 {
        let op = self.new_op(c, OpKind::Run);
        // The callable is filled in when the run is pinned (`Note::Pinned`).
        self.ops[op as usize].run = Some((None, args.clone()));
        let named =
            self.cx.check.model.digest_of(h).and_then(|d| self.cx.opts.callables.iter().position(|c| c.digest == d));
        self.named_at_submit.push((op, named));
        if let Some(l3) = self.l3.as_mut() {
            l3.submit_run(&mut self.cx, op, h, args);
            return op;
        }
        if let Err(e) = self.chip.submit_run(&mut self.cx, h, u64::from(op), args) {
            self.resolve(op, OpResult::Run(Err(e)));
        }
        op
    }

    /// Registrations the L3 parent reported for `op`: the caller holds it.
    pub fn hold(&mut self, c: u32, h: Handle, k: usize) {
        self.callers[c as usize].held.push((h, k));
    }

    fn liveness(&mut self) -> Result<(), String> {
        for (i, c) in self.callers.iter().enumerate() {
            if c.phase != Phase::Done {
                let what = c.blocked_on.map(|op| (op, self.ops[op as usize].kind));
                return Err(format!("caller {i} never finished ({:?}, blocked on {what:?})", c.phase));
            }
        }
        if let Some((i, o)) = self.ops.iter().enumerate().find(|(_, o)| o.result.is_none()) {
            return Err(format!("op {i} ({:?} by caller {}) never resolved", o.kind, o.caller));
        }
        if !self.chip.idle() {
            return Err(format!("lanes not idle at the end: {}", self.chip.busy_reason()));
        }
        if let Some(l3) = &self.l3 {
            l3.liveness()?;
            for (i, c) in self.callers.iter().enumerate() {
                if !c.held.is_empty() {
                    return Err(format!("caller {i} still holds {} registrations", c.held.len()));
                }
            }
        }
        let dead = self.l3.as_ref().is_some_and(|l| l.child_dead());
        if !dead {
            let live = self.chip.table.live_slots();
            if live != 0 {
                return Err(format!("{live} slots still in use after every caller unregistered everything"));
            }
        }
        if self.chip.chip.live() != 0 {
            return Err(format!("{} artifacts never released", self.chip.chip.live()));
        }
        if let Some(v) = self.chip.chip.first_violation() {
            return Err(format!("sim chip: {v}"));
        }
        Ok(())
    }
}

fn is_err(r: &OpResult) -> bool {
    match r {
        OpResult::Register(x) => x.is_err(),
        OpResult::Unregister(x) => x.is_err(),
        OpResult::Run(x) => x.is_err(),
        OpResult::Memory(x) => x.is_err(),
    }
}

fn short(r: &OpResult) -> String {
    match r {
        OpResult::Register(Ok(h)) => format!("ok {:?}/{:?}", h.index.0, h.generation.0),
        OpResult::Unregister(Ok(last)) => format!("ok last={last}"),
        OpResult::Run(Ok(_)) => "ok".into(),
        OpResult::Register(Err(e)) => format!("{e:?}"),
        OpResult::Unregister(Err(e)) => format!("{e:?}"),
        OpResult::Run(Err(e)) => format!("{e:?}"),
        OpResult::Memory(r) => format!("{r:?}"),
    }
}
