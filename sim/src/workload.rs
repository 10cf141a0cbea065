//! The callers' random workload and how each operation reaches the chip
//! side: at L2 straight into the unit's `ChipSide` (`ChipInput::Register`,
//! `Unregister`, `Run`, with the op as the waiter token), at L3 through the
//! chip's current [`crate::l3::Link`] (the parent endpoint).
//!
//! Callers hold each registration with the chip it was made on, across
//! deaths and restarts: a handle of a dead incarnation (or, as bad input,
//! of the other chip) is still used, and must be rejected as foreign.

use chiplane_core::chipside::{ChipInput, ChipRefusal, ChipReply};
use chiplane_core::{
    CallableHandle, CallableSpec, Generation, RegisterError, RunConfig, SlotIndex, TargetKind, TaskArgs,
};

use crate::sched::Ev;
use crate::world::{sim_worker, OpKind, OpResult, Phase, World};

impl World {
    pub(crate) fn caller_step(&mut self, c: u32) {
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
        let l3 = self.units[0].link.is_some();
        let roll = self.cx.rng.below(if l3 { 12 } else { 11 });
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
        if let Some((h, _, chip)) = self.callers[ci].held.pop() {
            let op = self.unregister_on(c, chip, h);
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

    /// A chip to address (the rng is drawn only when there is a choice).
    fn pick_chip(&mut self) -> u32 {
        let n = self.current.len() as u64;
        if n > 1 {
            self.cx.rng.below(n) as u32
        } else {
            0
        }
    }

    fn op_register(&mut self, c: u32, bad: bool) -> u32 {
        let k = self.cx.rng.below(self.cx.opts.callables.len() as u64) as usize;
        let mut spec = self.cx.opts.callables[k].spec.clone();
        if bad && self.cx.rng.coin() {
            spec.kind = TargetKind::Orchestration;
        }
        let chip = self.pick_chip();
        self.register_on(c, chip, k, &spec)
    }

    /// L3: a memory control (must wait for IDLE: rule 3).
    fn op_memory(&mut self, c: u32) -> u32 {
        let op = self.new_op(c, OpKind::Memory);
        let bytes = self.cx.rng.range(1, 1 << 20);
        let free = self.cx.rng.coin();
        let chip = self.pick_chip();
        let u = self.unit_of_chip(chip) as usize;
        if let Some(link) = self.units[u].link.as_mut() {
            link.submit_memory(&mut self.cx, op, bytes, free, &mut self.out);
        }
        op
    }

    fn op_unregister(&mut self, c: u32, bad: bool) -> u32 {
        let ci = c as usize;
        if !bad && !self.callers[ci].held.is_empty() {
            let k = self.cx.rng.below(self.callers[ci].held.len() as u64) as usize;
            let (h, _, chip) = self.callers[ci].held.swap_remove(k);
            self.callers[ci].retired.push((h, chip));
            return self.unregister_on(c, chip, h);
        }
        let (h, chip) = self.bad_handle(c);
        self.unregister_on(c, chip, h)
    }

    fn op_run(&mut self, c: u32, bad: bool) -> u32 {
        let ci = c as usize;
        let ncall = self.cx.opts.callables.len() as u64;
        let (h, k, chip) = if !bad && !self.callers[ci].held.is_empty() {
            let held = &self.callers[ci].held;
            held[self.cx.rng.below(held.len() as u64) as usize]
        } else {
            let (h, chip) = self.bad_handle(c);
            (h, self.cx.rng.below(ncall) as usize, chip)
        };
        let mut args = self.args_for(k);
        if bad && self.cx.rng.coin() {
            if self.units[0].link.is_some() && self.cx.rng.below(4) == 0 {
                // Too large for the task frame: PayloadTooLarge at the call.
                args.tensors[0] = vec![0.0; 20_000];
            } else {
                args.tensors[1].pop();
            }
        }
        self.submit_run_on(c, chip, h, args)
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

    /// A handle a correct caller would not use, and the chip it is sent to:
    /// foreign (a worker not issued yet, or the one issued just before this
    /// chip's: a previous incarnation's), a handle held on the other chip,
    /// out of range, stale (unregistered earlier, or of a generation never
    /// issued).
    fn bad_handle(&mut self, c: u32) -> (CallableHandle, u32) {
        let chip = self.pick_chip();
        let worker = self.units[self.unit_of_chip(chip) as usize].lanes.worker();
        let cap = self.cx.opts.capacity as u32;
        let index = SlotIndex(self.cx.rng.below(u64::from(cap)) as u32);
        let generation = Generation(self.cx.rng.range(0, 3) as u32);
        let ci = c as usize;
        let h = match self.cx.rng.below(5) {
            0 => {
                let next = sim_worker(self.units.len() as u64 + 1);
                CallableHandle { worker: next, index, generation: Generation(1) }
            }
            1 => CallableHandle { worker, index: SlotIndex(cap + self.cx.rng.below(3) as u32), generation },
            2 if !self.callers[ci].retired.is_empty() => {
                let r = &self.callers[ci].retired;
                return r[self.cx.rng.below(r.len() as u64) as usize];
            }
            4 if self.current.len() > 1 && !self.callers[ci].held.is_empty() => {
                // A registration held on one chip, sent to the other.
                let held = &self.callers[ci].held;
                let (h, _, on) = held[self.cx.rng.below(held.len() as u64) as usize];
                return (h, 1 - on);
            }
            4 => {
                let previous = sim_worker(worker.serial().wrapping_sub(1));
                CallableHandle { worker: previous, index, generation }
            }
            _ => CallableHandle { worker, index, generation },
        };
        (h, chip)
    }

    // ---- operations, by shape ---------------------------------------------

    /// Register callable `k` (`spec`) on chip 0 (the overlap script).
    pub(crate) fn register(&mut self, c: u32, k: usize, spec: &CallableSpec) -> u32 {
        self.register_on(c, 0, k, spec)
    }

    fn register_on(&mut self, c: u32, chip: u32, k: usize, spec: &CallableSpec) -> u32 {
        let op = self.new_op(c, OpKind::Register);
        let u = self.unit_of_chip(chip) as usize;
        if self.units[u].link.is_some() && spec.kind != TargetKind::ChipCallable {
            // The L3 worker takes chip callables only, at the call.
            self.resolve(op, OpResult::Register(Err(RegisterError::WrongTarget)));
            return op;
        }
        if let Some(link) = self.units[u].link.as_mut() {
            // The caller learns its handle from the control reply.
            link.submit_register(&mut self.cx, op, c, k, spec, &mut self.out);
            return op;
        }
        let input = ChipInput::Register { spec: spec.clone(), waiter: op };
        match self.units[u].lanes.feed(&mut self.cx, input) {
            Ok(ChipReply::Registered { handle, .. }) => self.callers[c as usize].held.push((handle, k, chip)),
            Err(ChipRefusal::Register(e)) => self.resolve(op, OpResult::Register(Err(e))),
            other => self.cx.check.fail(|| format!("register replied {other:?}")),
        }
        op
    }

    /// Unregister `h` on the chip that issued it.
    pub(crate) fn unregister(&mut self, c: u32, h: CallableHandle) -> u32 {
        let chip = self.chip_of(h);
        self.unregister_on(c, chip, h)
    }

    fn unregister_on(&mut self, c: u32, chip: u32, h: CallableHandle) -> u32 {
        let op = self.new_op(c, OpKind::Unregister);
        let u = self.unit_of_chip(chip) as usize;
        self.ops[op as usize].crossing = Some((self.units[u].lanes.worker(), h.worker));
        if let Some(link) = self.units[u].link.as_mut() {
            link.submit_unregister(&mut self.cx, op, h, &mut self.out);
            return op;
        }
        match self.units[u].lanes.feed(&mut self.cx, ChipInput::Unregister { handle: h, waiter: op }) {
            Ok(ChipReply::Unregistered { last }) => self.ops[op as usize].last = last,
            Err(ChipRefusal::Unregister(e)) => self.resolve(op, OpResult::Unregister(Err(e))),
            other => self.cx.check.fail(|| format!("unregister replied {other:?}")),
        }
        op
    }

    /// Run `h` on the chip that issued it.
    pub(crate) fn submit_run(&mut self, c: u32, h: CallableHandle, args: TaskArgs) -> u32 {
        let chip = self.chip_of(h);
        self.submit_run_on(c, chip, h, args)
    }

    fn callable_named(&self, u: usize, h: CallableHandle) -> Option<usize> {
        let digest = self.cx.check.model(u as u32).digest_of(h)?;
        self.cx.opts.callables.iter().position(|c| c.digest == digest)
    }

    fn submit_run_on(&mut self, c: u32, chip: u32, h: CallableHandle, args: TaskArgs) -> u32 {
        let op = self.new_op(c, OpKind::Run);
        let u = self.unit_of_chip(chip) as usize;
        // The callable is filled in when the run is pinned.
        self.ops[op as usize].run = Some((None, args.clone()));
        self.ops[op as usize].crossing = Some((self.units[u].lanes.worker(), h.worker));
        let named = self.callable_named(u, h);
        self.named_at_submit.push((op, named));
        if let Some(link) = self.units[u].link.as_mut() {
            link.submit_run(&mut self.cx, op, h, args, &mut self.out);
            return op;
        }
        let input = ChipInput::Run { handle: h, args, config: RunConfig::default(), waiter: op };
        match self.units[u].lanes.feed(&mut self.cx, input) {
            Ok(ChipReply::Queued) => {
                let callable = self.callable_named(u, h);
                self.pinned(op, callable);
            }
            Err(ChipRefusal::Run(e)) => self.resolve(op, OpResult::Run(Err(e))),
            other => self.cx.check.fail(|| format!("run replied {other:?}")),
        }
        op
    }
}
