//! Virtual time and the event queue. Events at the same instant are ordered
//! by a random tie-break drawn from the schedule stream, so the seed (not
//! insertion order) decides which actor steps next.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::check::Checker;
use crate::options::Options;
use crate::rng::Rng;
use crate::trace::Trace;

/// Everything that can happen at an instant. `u` names a chip-side unit
/// (one chip child incarnation at L3, the L2 worker's chip side at L2):
/// events of a unit that died are dropped.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Ev {
    /// A caller issues its next operation.
    CallerStep(u32),
    /// A blocked caller wakes after its handle resolved.
    Wake(u32),
    /// Unit `u`'s register lane finished its prepare.
    PrepareDone(u32),
    /// Unit `u`'s register lane finished its release.
    ReleaseDone(u32),
    /// Unit `u`'s run lane finished its run.
    RunDone(u32),
    /// Fault: an earlier prepare completion of unit `u` is replayed.
    Replay(u32),
    /// L3: unit `u`'s parent endpoint takes a step.
    ParentStep(u32),
    /// L3: unit `u`'s child endpoint takes a step.
    ChildStep(u32),
    /// L3: a state-word store of unit `u` becomes visible to side `.1`.
    WordVisible(u32, u32),
    /// L3: the parent notices unit `u`'s child died (process exit, reaped).
    ChildReaped(u32),
    /// L3: chip `c` gets a new child incarnation.
    Restart(u32),
}

impl Ev {
    pub fn code(&self) -> u64 {
        match *self {
            Ev::CallerStep(c) => 1 << 32 | u64::from(c),
            Ev::Wake(c) => 2 << 32 | u64::from(c),
            Ev::PrepareDone(u) => 3 << 56 | u64::from(u),
            Ev::ReleaseDone(u) => 4 << 56 | u64::from(u),
            Ev::RunDone(u) => 5 << 56 | u64::from(u),
            Ev::Replay(u) => 6 << 56 | u64::from(u),
            Ev::ParentStep(u) => 7 << 56 | u64::from(u),
            Ev::ChildStep(u) => 8 << 56 | u64::from(u),
            Ev::WordVisible(u, side) => 9 << 56 | u64::from(u) << 8 | u64::from(side),
            Ev::ChildReaped(u) => 10 << 56 | u64::from(u),
            Ev::Restart(c) => 11 << 56 | u64::from(c),
        }
    }
}

/// Shared context of one simulation: clock, queue, schedule stream, options,
/// checker, trace.
#[derive(Debug)]
pub struct Ctx {
    pub now: u64,
    pub rng: Rng,
    queue: BinaryHeap<Reverse<(u64, u64, u64, Ev)>>,
    seq: u64,
    pub opts: Options,
    pub check: Checker,
    pub trace: Trace,
    /// Faults are injected only while the workload runs; cleanup is fault free.
    pub faults_on: bool,
    /// How often each named scenario of docs/protocol.md section 7 was reached.
    pub cov: Coverage,
}

/// Reach counts of the named scenarios S1..S11 and S13 (docs/protocol.md section
/// 7), index 0 = S1, and of rule 12's stale answers. A campaign sums them; a
/// test asserts every one is reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage(pub [u64; Coverage::N]);

impl Coverage {
    /// Counters.
    pub const N: usize = 14;
    /// Counter of a restart (a new chip child incarnation).
    pub const RESTART: usize = 12;
    /// Counter of a handle of another chip or incarnation rejected.
    pub const FOREIGN_REJECTED: usize = 13;
    /// Counter of a parent output answered after the child was gone.
    pub const STALE_ANSWER: usize = 14;
    pub const NAMES: [&'static str; Coverage::N] = [
        "S1 register during TASK_RUNNING",
        "S2 run done during a control (TASK_DONE deferred)",
        "S3 final unregister with a run pinned (tombstone)",
        "S4 final unregister while PREPARING (cancel)",
        "S5 run queued behind an earlier run",
        "S6 stale completion dropped",
        "S7 register of a registered digest",
        "S8 memory control while a task is out",
        "S9 child death",
        "S10 blocked caller woken",
        "S11 completion ring full, settlements held",
        "S13 restart: a new chip child incarnation",
        "S13 handle of another chip or incarnation rejected (Foreign)",
        "rule 12: a parent output answered after the child was gone",
    ];

    /// Scenario `n` (1-based) was reached.
    pub fn hit(&mut self, n: usize) {
        self.0[n - 1] += 1;
    }

    pub fn add(&mut self, o: &Coverage) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a += b;
        }
    }
}

impl Ctx {
    pub fn new(opts: Options, check: Checker, record_spans: bool) -> Self {
        let rng = Rng::new(opts.seed ^ 0x5C4E_D01E);
        Ctx {
            now: 0,
            rng,
            queue: BinaryHeap::with_capacity(64),
            seq: 0,
            opts,
            check,
            trace: Trace::new(record_spans),
            faults_on: true,
            cov: Coverage::default(),
        }
    }

    /// Schedule `ev` at `now + delay_ns`.
    pub fn at(&mut self, delay_ns: u64, ev: Ev) {
        let tie = self.rng.next_u64();
        self.seq += 1;
        self.queue.push(Reverse((self.now + delay_ns, tie, self.seq, ev)));
    }

    /// The next event, advancing the clock.
    pub fn pop(&mut self) -> Option<Ev> {
        let Reverse((t, _, _, ev)) = self.queue.pop()?;
        debug_assert!(t >= self.now);
        self.now = t;
        self.trace.events += 1;
        self.trace.mix(t);
        self.trace.mix(ev.code());
        Some(ev)
    }

    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// A fault with probability `p`/1000, only while faults are on.
    pub fn fault(&mut self, p: u32) -> bool {
        self.faults_on && self.rng.per_mille(p)
    }

    /// A lane latency, slowed by the slow-lane fault.
    pub fn lane_latency(&mut self, base: u64) -> u64 {
        let (p, k) = (self.opts.faults.slow_lane, self.opts.faults.slow_factor);
        if self.fault(p) {
            base * k
        } else {
            base
        }
    }
}
