//! The whole-system simulation of one seed: callers issuing a random
//! workload ([`crate::workload`]) against the real core machines, in
//! virtual time, on one thread.
//!
//! The chip side is made of *units*: a unit is one `ChipSide` with its
//! lanes and sim chip ([`Lanes`]) and, at L3, the chip child incarnation
//! that serves it ([`Link`]). L2 has one unit. L3 has one current unit per
//! chip (1 or 2 chips); a chip whose child died and was reaped may get a
//! new unit (a restart: new `WorkerId`, fresh mailbox, fresh chip side).
//! Unit `u`'s worker is `sim_worker(u + 1)`: every worker of a seed shares
//! one nonce and gets the next serial, as `WorkerId::fresh` does in one
//! process.

use chiplane_core::chipside::Resolution;
use chiplane_core::slot::SlotLimits;
use chiplane_core::{
    CallableHandle, Generation, RegisterError, RunError, RunOutput, TaskArgs, UnregisterError, WorkerId,
};

use crate::check::Checker;
use crate::l3::{L3Out, Link};
use crate::lanes::{Lanes, Note, TRACK_REGISTER, TRACK_RUN};
use crate::options::{Options, Shape};
use crate::sched::{Coverage, Ctx, Ev};

/// The nonce of every simulated worker id.
pub const SIM_NONCE: u64 = 0x5133;

/// The worker id with `serial` (unit `serial - 1`).
pub const fn sim_worker(serial: u64) -> WorkerId {
    WorkerId((SIM_NONCE as u128) << 64 | serial as u128)
}

/// The worker id of the first unit (the L2 worker, or chip 0's first child).
pub const WORKER: WorkerId = sim_worker(1);
/// Caller tracks start here in the Chrome trace.
pub const TRACK_CALLER0: u32 = 10;
/// Hard cap on events per seed (a runaway schedule is a liveness failure).
pub const EVENT_CAP: u64 = 2_000_000;

/// What a handle resolved to.
#[derive(Clone, Debug, PartialEq)]
pub enum OpResult {
    Register(Result<CallableHandle, RegisterError>),
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

    /// The handle error it carries, if any.
    fn handle_error(&self) -> Option<&chiplane_core::HandleError> {
        match self {
            OpResult::Run(Err(RunError::Handle(e))) | OpResult::Unregister(Err(UnregisterError::Handle(e))) => Some(e),
            _ => None,
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
    /// Runs: the callable the handle named when pinned, and the args.
    pub run: Option<(Option<usize>, TaskArgs)>,
    /// Runs and unregisters: (the worker of the unit it was sent to, the
    /// handle's worker), for the crossing check.
    pub crossing: Option<(WorkerId, WorkerId)>,
    /// L2 unregister: the chip side said it was the final one.
    pub last: bool,
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
    pub(crate) ops_left: u32,
    /// One entry per registration this caller holds: (handle, callable, chip).
    pub(crate) held: Vec<(CallableHandle, usize, u32)>,
    /// Handles it unregistered (material for stale use), with their chip.
    pub(crate) retired: Vec<(CallableHandle, u32)>,
    pub(crate) pending: Vec<u32>,
    pub(crate) blocked_on: Option<u32>,
}

/// The verdict of one seed.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Verdict {
    #[default]
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
#[derive(Debug, Default)]
pub struct Report {
    pub verdict: Verdict,
    pub hash: u64,
    pub events: u64,
    pub virtual_ns: u64,
    pub ops: usize,
    pub runs: u64,
    pub prepares: u64,
    pub stale_completions: u64,
    /// L3: chip child deaths.
    pub deaths: u64,
    /// L3: chip child restarts (new incarnations).
    pub restarts: u64,
    /// Handles that resolved with an error.
    pub errors: u64,
    /// Named scenarios reached.
    pub cov: Coverage,
    /// Runs whose handle named another callable (or none) when submitted
    /// than when the chip side pinned it (L3: a handle fabricated before its
    /// generation was issued, pinned after).
    pub renamed_runs: u64,
    pub chrome: Vec<String>,
}

/// One chip-side unit. See the module doc.
#[derive(Debug)]
pub struct Unit {
    pub chip: u32,
    pub lanes: Lanes,
    /// L3: the child incarnation serving it.
    pub link: Option<Link>,
}

/// One simulation.
#[derive(Debug)]
pub struct World {
    pub cx: Ctx,
    pub units: Vec<Unit>,
    /// The current unit of each chip.
    pub current: Vec<u32>,
    pub(crate) callers: Vec<Caller>,
    pub ops: Vec<Op>,
    pub(crate) working: u32,
    /// L3: the handle each register op was accepted with.
    accepted: std::collections::BTreeMap<u32, CallableHandle>,
    /// L3: callers waiting for a register op's acceptance (op -> caller).
    acceptance_waiters: std::collections::BTreeMap<u32, u32>,
    limits: SlotLimits,
    /// The overlap experiment's scripted caller (replaces the random workload).
    pub(crate) script: Option<crate::overlap::Script>,
    renamed_runs: u64,
    /// Per run op: the callable its handle named at submission.
    pub(crate) named_at_submit: Vec<(u32, Option<usize>)>,
    pub(crate) out: Vec<L3Out>,
}

impl World {
    pub fn new(opts: Options, record_spans: bool) -> World {
        let limits = SlotLimits { capacity: opts.capacity, generation_max: Generation(opts.generation_max) };
        let check = Checker::new(opts.callables.iter().map(|c| c.digest).collect());
        let ncallers = opts.callers;
        let ops_per_caller = opts.ops_per_caller;
        let chips = if opts.shape == Shape::L3 { opts.chips.max(1) } else { 1 };
        let mut cx = Ctx::new(opts, check, record_spans);
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
            units: Vec::new(),
            current: Vec::new(),
            callers,
            ops: Vec::new(),
            working: ncallers,
            accepted: Default::default(),
            acceptance_waiters: Default::default(),
            limits,
            script: None,
            renamed_runs: 0,
            named_at_submit: Vec::new(),
            out: Vec::new(),
        };
        for chip in 0..chips {
            let u = w.new_unit(chip);
            w.current.push(u);
        }
        w
    }

    fn l3(&self) -> bool {
        self.cx.opts.shape == Shape::L3
    }

    /// A fresh unit for `chip` (its worker: the next serial).
    fn new_unit(&mut self, chip: u32) -> u32 {
        let u = self.units.len() as u32;
        let worker = sim_worker(u64::from(u) + 1);
        let checked = self.cx.check.add_unit(worker, self.limits);
        debug_assert_eq!(checked, u);
        let t = 16 * u;
        self.cx.trace.name_track(TRACK_RUN + t, format!("chip {chip} run lane (unit {u})"));
        self.cx.trace.name_track(TRACK_REGISTER + t, format!("chip {chip} register lane (unit {u})"));
        let link = self.l3().then(|| Link::new(&mut self.cx, u, chip, worker));
        self.units.push(Unit { chip, lanes: Lanes::new(u, worker, self.limits), link });
        u
    }

    /// Chip `chip`'s current unit.
    pub fn unit_of_chip(&self, chip: u32) -> u32 {
        self.current[chip as usize]
    }

    /// The chip whose unit issued `h` (chip 0 for a handle no unit issued).
    pub fn chip_of(&self, h: CallableHandle) -> u32 {
        self.units.iter().find(|u| u.lanes.worker() == h.worker).map_or(0, |u| u.chip)
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
    pub(crate) fn accepted_handle(&self, c: u32, op: u32) -> Option<CallableHandle> {
        if self.l3() {
            return self.accepted.get(&op).copied();
        }
        self.callers[c as usize].held.last().map(|x| x.0)
    }

    /// L3: block caller `c` until the register op is accepted.
    pub(crate) fn await_acceptance(&mut self, c: u32, op: u32) {
        if self.accepted.contains_key(&op) {
            self.cx.at(0, Ev::CallerStep(c));
        } else {
            self.acceptance_waiters.insert(op, c);
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
        let sum = |f: &dyn Fn(&Unit) -> u64| self.units.iter().map(f).sum::<u64>();
        Report {
            verdict,
            hash: self.cx.trace.hash(),
            events: self.cx.trace.events,
            virtual_ns: self.cx.now,
            ops: self.ops.len(),
            runs: sum(&|u| u.lanes.runs_done),
            prepares: sum(&|u| u.lanes.prepares_done),
            stale_completions: sum(&|u| u.lanes.side.table().stale_completions()),
            deaths: sum(&|u| u.link.as_ref().map_or(0, |l| l.deaths)),
            restarts: self.units.len() as u64 - self.current.len() as u64,
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
            Ev::PrepareDone(u) => self.units[u as usize].lanes.prepare_done(&mut self.cx),
            Ev::ReleaseDone(u) => self.units[u as usize].lanes.release_done(&mut self.cx),
            Ev::RunDone(u) => self.units[u as usize].lanes.run_done(&mut self.cx),
            Ev::Replay(u) => self.units[u as usize].lanes.replay(&mut self.cx),
            Ev::ParentStep(u) | Ev::ChildStep(u) | Ev::WordVisible(u, _) | Ev::ChildReaped(u) => {
                let unit = &mut self.units[u as usize];
                if let Some(link) = unit.link.as_mut() {
                    link.step(ev, &mut self.cx, &mut unit.lanes, &mut self.out);
                }
            }
            Ev::Restart(chip) => self.restart(chip),
        }
        self.settle();
        // Whole-table check of every unit the step fed (a table changes
        // only through its chip side's `handle`).
        for unit in &mut self.units {
            if unit.lanes.touched && !unit.lanes.dead {
                unit.lanes.touched = false;
                self.cx.check.table(unit.lanes.unit, unit.lanes.side.table());
            }
        }
    }

    /// L3: chip `chip`'s child was reaped; start a new incarnation.
    fn restart(&mut self, chip: u32) {
        let old = self.current[chip as usize];
        let reaped = self.units[old as usize].link.as_ref().is_some_and(|l| l.reaped());
        if !reaped {
            self.cx.check.fail(|| format!("restart of chip {chip} while unit {old} was not reaped"));
            return;
        }
        let u = self.new_unit(chip);
        self.current[chip as usize] = u;
        self.cx.cov.hit(Coverage::RESTART);
        self.cx.trace.mix(0x2E57_A127 ^ u64::from(u));
    }

    /// Run the machines until nothing changes; route what they owe.
    fn settle(&mut self) {
        loop {
            let mut progress = false;
            for unit in &mut self.units {
                if let Some(link) = unit.link.as_mut() {
                    progress |= link.pump(&mut self.cx, &mut unit.lanes);
                }
            }
            for u in 0..self.units.len() {
                while let Some(note) = self.units[u].lanes.notes.pop_front() {
                    progress = true;
                    self.l2_note(note);
                }
            }
            let outs = std::mem::take(&mut self.out);
            progress |= !outs.is_empty();
            for o in outs {
                match o {
                    L3Out::Resolve(op, r) => self.resolve(op, r),
                    L3Out::Hold { op, caller, handle, callable, chip } => {
                        self.callers[caller as usize].held.push((handle, callable, chip));
                        self.accepted.insert(op, handle);
                        if let Some(c) = self.acceptance_waiters.remove(&op) {
                            self.cx.at(0, Ev::CallerStep(c));
                        }
                    }
                    L3Out::Pinned(op, callable) => self.pinned(op, callable),
                }
            }
            if !progress {
                break;
            }
        }
    }

    /// What an L2 chip side owes a caller.
    fn l2_note(&mut self, note: Note) {
        match note {
            Note::Resolve { op, resolution } => {
                let r = match resolution {
                    Resolution::Registered(r) => OpResult::Register(r),
                    Resolution::Unregistered(r) => OpResult::Unregister(r.map(|()| self.ops[op as usize].last)),
                    Resolution::Ran(r) => OpResult::Run(r),
                };
                self.resolve(op, r);
            }
            Note::Event(ev) => self.cx.check.fail(|| format!("an L2 chip side emitted an L3 event {ev:?}")),
        }
    }

    pub(crate) fn pinned(&mut self, op: u32, callable: Option<usize>) {
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
        if let Some((expected, got)) = o.crossing {
            let rejected = self.cx.check.crossing(expected, got, r.handle_error());
            // Counted when the worker was a real one of this world: another
            // chip's, or a dead incarnation's.
            if rejected && self.units.iter().any(|u| u.lanes.worker() == got) {
                self.cx.cov.hit(Coverage::FOREIGN_REJECTED);
            }
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

    pub(crate) fn new_op(&mut self, caller: u32, kind: OpKind) -> u32 {
        self.ops.push(Op {
            caller,
            kind,
            issued_ns: self.cx.now,
            result: None,
            run: None,
            crossing: None,
            last: false,
        });
        (self.ops.len() - 1) as u32
    }

    pub(crate) fn resolved(&self, op: u32) -> bool {
        self.ops[op as usize].result.is_some()
    }

    fn liveness(&mut self) -> Result<(), String> {
        for (i, c) in self.callers.iter().enumerate() {
            if c.phase != Phase::Done {
                let what = c.blocked_on.map(|op| (op, self.ops[op as usize].kind));
                return Err(format!("caller {i} never finished ({:?}, blocked on {what:?})", c.phase));
            }
            if !c.held.is_empty() {
                return Err(format!("caller {i} still holds {} registrations", c.held.len()));
            }
        }
        if let Some((i, o)) = self.ops.iter().enumerate().find(|(_, o)| o.result.is_none()) {
            return Err(format!("op {i} ({:?} by caller {}) never resolved", o.kind, o.caller));
        }
        for unit in &self.units {
            let lanes = &unit.lanes;
            if !lanes.idle() {
                return Err(format!("lanes not idle at the end: {}", lanes.busy_reason()));
            }
            if let Some(link) = &unit.link {
                link.liveness()?;
            }
            if !lanes.dead {
                let live = lanes.side.table().live_slots();
                if live != 0 {
                    return Err(format!(
                        "unit {}: {live} slots still in use after every caller unregistered everything",
                        lanes.unit
                    ));
                }
            }
            if lanes.chip.live() != 0 {
                return Err(format!("unit {}: {} artifacts never released", lanes.unit, lanes.chip.live()));
            }
            if let Some(v) = lanes.chip.first_violation() {
                return Err(format!("unit {}: sim chip: {v}", lanes.unit));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The exactly-once check has teeth: a second resolution of one op is
    /// a violation.
    #[test]
    fn resolving_an_op_twice_is_a_violation() {
        let mut w = World::new(Options::from_seed(1, crate::SHAPES), false);
        let op = w.new_op(0, OpKind::Memory);
        w.resolve(op, OpResult::Memory(Ok(())));
        assert!(!w.cx.check.failed(), "{:?}", w.cx.check.violation());
        w.resolve(op, OpResult::Memory(Ok(())));
        assert!(w.cx.check.failed());
    }

    /// Worker ids: one nonce, serial = unit + 1 (what `stale_incarnation`
    /// keys on: the previous serial of the same nonce).
    #[test]
    fn sim_workers_share_a_nonce_and_count_serials() {
        assert_eq!(WORKER.nonce(), SIM_NONCE);
        assert_eq!(WORKER.serial(), 1);
        assert_eq!(sim_worker(2).serial(), WORKER.serial() + 1);
    }
}
