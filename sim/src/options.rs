//! Per-seed options, swarm style: the seed picks how many callables and
//! callers there are, each callable's prepare and run latency distribution,
//! which faults are on and how often, and the table's limits. A second
//! stream of the same seed drives the schedule.

use core::fmt;

use chiplane_core::kernels::{REPEAT_VECTOR_ADD, VECTOR_ADD};
use chiplane_core::{CallableDigest, CallableSpec};

use crate::rng::Rng;

/// Which system shape the seed simulates.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shape {
    /// In-process worker: callers share the slot table and lanes directly.
    L2,
    /// Parent endpoint, mailbox in shared memory, chip child endpoint.
    L3,
}

/// A uniform latency distribution `base_ns ..= base_ns + jitter_ns`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Dist {
    pub base_ns: u64,
    pub jitter_ns: u64,
}

impl Dist {
    pub const fn fixed(ns: u64) -> Self {
        Dist { base_ns: ns, jitter_ns: 0 }
    }

    pub fn sample(&self, rng: &mut Rng) -> u64 {
        if self.jitter_ns == 0 {
            self.base_ns
        } else {
            self.base_ns + rng.below(self.jitter_ns + 1)
        }
    }
}

impl fmt::Display for Dist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}us", self.base_ns / 1000, (self.base_ns + self.jitter_ns) / 1000)
    }
}

/// One callable of the workload.
#[derive(Clone, Debug)]
pub struct CallableOpt {
    pub spec: CallableSpec,
    pub digest: CallableDigest,
    pub prepare: Dist,
    pub run: Dist,
}

/// Fault probabilities, per mille, per opportunity. Zero = off.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Faults {
    /// A prepare fails (`ChipErrorKind::Injected`).
    pub prepare_fail: u32,
    /// A run fails (`ChipErrorKind::Injected`).
    pub run_fail: u32,
    /// A cancelled prepare misses its safe point and returns an artifact.
    pub cancel_missed: u32,
    /// Per register-lane completion: a replay of an earlier completion
    /// (duplicate of a finished prepare, or late from an old generation).
    pub replay_completion: u32,
    /// Per lane job: the lane is slow (latency times `slow_factor`).
    pub slow_lane: u32,
    pub slow_factor: u64,
    /// L3: per child protocol step, the child dies there (per 10,000, not
    /// per mille: a seed's child takes hundreds of steps).
    pub child_death: u32,
    /// L3: largest delay before a state-word store becomes visible to the
    /// other side.
    pub word_delay_max_ns: u64,
    /// L3: per mille, a dead chip child is restarted (a new incarnation with
    /// a new `WorkerId` on a fresh mailbox) once it was reaped.
    pub restart: u32,
}

/// Everything a seed decides before the run starts.
#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    pub shape: Shape,
    pub callables: Vec<CallableOpt>,
    pub callers: u32,
    pub ops_per_caller: u32,
    pub capacity: usize,
    pub generation_max: u32,
    /// Per mille of operations that use bad input (stale / foreign /
    /// out-of-range handles, runs on unregistered callables, wrong target,
    /// bad arguments).
    pub bad_input: u32,
    /// Per mille of operations issued async (the rest are sync).
    pub async_ops: u32,
    /// L3: chips (one child, mailbox and chip side each): 1 or 2. L2: 1.
    pub chips: u32,
    pub think: Dist,
    pub wake: Dist,
    pub release: Dist,
    /// L3 only: how long one side takes to notice a state-word change when
    /// it is polling.
    pub poll: Dist,
    pub faults: Faults,
    /// A planted bug in the *simulator's* driver (never drawn from a seed):
    /// the first run completion the chip side reports is dropped. Tests use
    /// it to show that the liveness checker catches a lost completion.
    pub planted_lost_completion: bool,
}

/// Tensor length of every callable (small: the sim is about schedules).
pub const N: u64 = 4;

impl Options {
    /// The options of `seed`. `shapes` limits which shapes may be drawn.
    pub fn from_seed(seed: u64, shapes: &[Shape]) -> Options {
        let mut r = Rng::new(seed ^ 0x0A7_1005);
        let shape = r.pick(shapes);
        let ncallables = r.range(1, 6) as usize;
        let callables = (0..ncallables)
            .map(|i| {
                let kernel = if r.coin() { VECTOR_ADD } else { REPEAT_VECTOR_ADD };
                // params[0] = n; distinct callables differ in kernel or in
                // their position (encoded in n's high range is not allowed, so
                // distinct n per index keeps digests distinct).
                let spec = CallableSpec::chip(kernel, vec![N + i as u64]);
                let digest = spec.digest();
                let prepare = Dist { base_ns: r.range(1, 3000) * 1000, jitter_ns: r.range(0, 2000) * 1000 };
                let run = Dist { base_ns: r.range(1, 3000) * 1000, jitter_ns: r.range(0, 2000) * 1000 };
                CallableOpt { spec, digest, prepare, run }
            })
            .collect();
        let on = |r: &mut Rng, p: u32| if r.coin() { r.range(1, u64::from(p)) as u32 } else { 0 };
        let faults = Faults {
            prepare_fail: on(&mut r, 200),
            run_fail: on(&mut r, 100),
            cancel_missed: on(&mut r, 500),
            replay_completion: on(&mut r, 300),
            slow_lane: on(&mut r, 200),
            slow_factor: r.range(2, 20),
            child_death: if shape == Shape::L3 && r.range(0, 3) == 0 { r.range(1, 30) as u32 } else { 0 },
            word_delay_max_ns: if shape == Shape::L3 && r.coin() { r.range(1, 200) * 1000 } else { 0 },
            restart: 0,
        };
        let mut opts = Options {
            seed,
            shape,
            callables,
            callers: r.range(1, 4) as u32,
            ops_per_caller: r.range(5, 40) as u32,
            capacity: r.range(1, 6) as usize,
            generation_max: if r.range(0, 3) == 0 { r.range(1, 4) as u32 } else { 1000 },
            bad_input: r.range(0, 250) as u32,
            async_ops: r.range(0, 1000) as u32,
            think: Dist { base_ns: 0, jitter_ns: r.range(0, 3000) * 1000 },
            wake: Dist { base_ns: 1000, jitter_ns: r.range(0, 50) * 1000 },
            release: Dist { base_ns: 1000, jitter_ns: r.range(0, 100) * 1000 },
            poll: Dist { base_ns: 1000, jitter_ns: r.range(0, 50) * 1000 },
            chips: 1,
            faults,
            planted_lost_completion: false,
        };
        // Drawn last, so the draws above keep their meaning.
        if shape == Shape::L3 {
            opts.chips = r.range(1, 2) as u32;
            opts.faults.restart = if r.range(0, 3) == 0 { 0 } else { r.range(300, 1000) as u32 };
        }
        opts
    }

    /// Total operations the workload will issue (before cleanup).
    pub fn workload_ops(&self) -> u64 {
        u64::from(self.callers) * u64::from(self.ops_per_caller)
    }
}

impl fmt::Display for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {} shape {:?}", self.seed, self.shape)?;
        writeln!(
            f,
            "  chips {}, callers {} x {} ops, table capacity {} generation_max {}, bad_input {}/1000, async {}/1000",
            self.chips,
            self.callers,
            self.ops_per_caller,
            self.capacity,
            self.generation_max,
            self.bad_input,
            self.async_ops
        )?;
        for (i, c) in self.callables.iter().enumerate() {
            writeln!(f, "  callable {i}: {}{:?} prepare {} run {}", c.spec.kernel, c.spec.params, c.prepare, c.run)?;
        }
        let x = &self.faults;
        write!(
            f,
            "  faults/1000: prepare_fail {} run_fail {} cancel_missed {} replay_completion {} slow_lane {} (x{}) \
             child_death {}/10000 restart {} word_delay_max {}us",
            x.prepare_fail,
            x.run_fail,
            x.cancel_missed,
            x.replay_completion,
            x.slow_lane,
            x.slow_factor,
            x.child_death,
            x.restart,
            x.word_delay_max_ns / 1000
        )
    }
}
