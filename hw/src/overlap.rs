//! The seed's overlap experiment on a real device (`chiplane overlap`).
//!
//! C1 = a long `repeat_vector_add` (n = 4096, `repeat` calibrated at start so
//! one run takes about [`Options::c1_target_ms`]), C2 = `heavy_prepare`
//! (n = 4096, [`OVERLAP_DEMO_PREPARE_BYTES`]: a real multi-millisecond
//! prepare). Trials 5, delays 0 and 2 ms, at L2 (core's in-process
//! `Worker`) and L3 ([`crate::l3::L3Worker`], one chip child process).
//! C1 is registered once per level (untimed); C2 is registered afresh in
//! every trial and unregistered after it (untimed), so each trial pays its
//! full prepare.
//! - **serial**: `run(C1)`; sleep(delay); `register(C2)` (waits for the
//!   prepare); `run(C2)`;
//! - **overlap**: `run_async(C1)`; sleep(delay); `register_async(C2).wait()`
//!   while C1 runs; `run_async(C2)`; wait for both.
//!
//! The delay is part of the experiment (the seed's), not synchronisation.
//!
//! Components, measured in the same process on the same worker, one sample
//! of each per round, interleaved with the trials (so both see the same
//! machine load), medians over the rounds: `run(C1)`, `prepare(C2)` (= a
//! sync register of a fresh C2, control round trip included at L3),
//! `run(C2)`. From them: `ideal = max(run1, delay + prep2) + run2` and
//! `efficiency = (serial - overlap) / (serial - ideal)` (design.md section
//! 1), with serial and overlap the trial medians.
//!
//! Every run's output is compared with `kernels::reference` (`max_diff`).
//! The sim's prediction for the same components is
//! `chiplane_sim::overlap::trial` (virtual time; at L3 it adds the
//! simulated mailbox's own cost) fed the measured medians.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chiplane_core::chip::{CallableSpec, Chip, RunConfig, RunOutput, TaskArgs};
use chiplane_core::conc::{NodeConfig, Worker};
use chiplane_core::kernels::{self, HEAVY_PREPARE, REPEAT_VECTOR_ADD};
use chiplane_core::Handle;
use chiplane_sim::options::Shape;
use chiplane_sim::overlap::{self as sim_overlap, Mode};

use crate::devices::host::{HostChip, OVERLAP_DEMO_PREPARE_BYTES};
use crate::l3::trace::{chrome_json, mono_ns, Span, SpanLog, TracedChip};
use crate::l3::{Device, L3Config, L3Worker};

/// Which levels to run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Levels {
    L2,
    L3,
    Both,
}

/// Options of the experiment.
#[derive(Clone, Debug)]
pub struct Options {
    pub device: Device,
    pub levels: Levels,
    pub trials: usize,
    pub delays_ms: Vec<u64>,
    pub n: u64,
    pub c1_target_ms: f64,
    /// Fixed C1 repeat count (skips the calibration).
    pub c1_repeat: Option<u64>,
    pub c2_prepare_bytes: u64,
    pub trace: Option<PathBuf>,
    /// The chip child executable (default: next to the current one).
    pub child_exe: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            device: Device::Host,
            levels: Levels::Both,
            trials: 5,
            delays_ms: vec![0, 2],
            n: 4096,
            c1_target_ms: 15.0,
            c1_repeat: None,
            c2_prepare_bytes: OVERLAP_DEMO_PREPARE_BYTES,
            trace: None,
            child_exe: None,
        }
    }
}

/// Component medians of one level, in ns.
#[derive(Clone, Copy, Debug, Default)]
pub struct Components {
    pub run1_ns: u64,
    pub prep2_ns: u64,
    pub run2_ns: u64,
}

/// One row of the table.
#[derive(Clone, Debug)]
pub struct Row {
    pub level: &'static str,
    pub delay_ms: u64,
    pub serial_ns: u64,
    pub overlap_ns: u64,
    pub ideal_ns: u64,
    pub sim_serial_ns: u64,
    pub sim_overlap_ns: u64,
    /// Median over the rounds of each round's efficiency (its serial and
    /// overlap trial against the ideal from its own component samples).
    pub round_efficiency: f64,
    /// Median over the overlap trials of [`in_trial_efficiency`] (NaN when
    /// the lane spans are missing).
    pub in_trial_efficiency: f64,
}

impl Row {
    pub fn speedup(&self) -> f64 {
        self.serial_ns as f64 / self.overlap_ns as f64
    }
    pub fn efficiency(&self) -> f64 {
        (self.serial_ns as f64 - self.overlap_ns as f64) / (self.serial_ns as f64 - self.ideal_ns as f64)
    }
    pub fn sim_speedup(&self) -> f64 {
        self.sim_serial_ns as f64 / self.sim_overlap_ns as f64
    }
    pub fn sim_efficiency(&self) -> f64 {
        (self.sim_serial_ns as f64 - self.sim_overlap_ns as f64) / (self.sim_serial_ns as f64 - self.ideal_ns as f64)
    }
}

/// The whole result.
#[derive(Clone, Debug)]
pub struct Report {
    pub device: &'static str,
    pub c1_repeat: u64,
    pub trials: usize,
    pub c2_prepare_bytes: u64,
    pub components: Vec<(&'static str, Components)>,
    pub rows: Vec<Row>,
    /// Largest `max_diff` of any run against `kernels::reference`.
    pub max_diff: f32,
    pub runs_checked: usize,
    /// `/proc/loadavg` (1, 5, 15 min) before and after: the machine is shared.
    pub load_before: String,
    pub load_after: String,
    pub elapsed: Duration,
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl Report {
    /// The table as printed by `chiplane overlap`.
    pub fn render(&self) -> String {
        let mut s = format!(
            "chiplane overlap: device {}, C1 = {REPEAT_VECTOR_ADD} n=4096 repeat {}, C2 = {HEAVY_PREPARE} n=4096 \
             prepare_bytes {} MiB, trials {}\n\n",
            self.device,
            self.c1_repeat,
            self.c2_prepare_bytes >> 20,
            self.trials,
        );
        s.push_str("measured components (medians, same process):\n\n");
        s.push_str("| level | run(C1) | prepare(C2) | run(C2) |\n|---|---|---|---|\n");
        for (level, c) in &self.components {
            s.push_str(&format!(
                "| {level} | {:.1} us | {:.1} us | {:.1} us |\n",
                us(c.run1_ns),
                us(c.prep2_ns),
                us(c.run2_ns)
            ));
        }
        s.push_str(
            "\n| level | delay before C2 register | serial median | overlap median | speedup | ideal overlap | \
             efficiency | per-round efficiency (median) | in-trial efficiency (median) | sim serial | sim overlap | sim speedup | sim efficiency |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            s.push_str(&format!(
                "| {} | {} ms | {:.1} us | {:.1} us | {:.2}x | {:.1} us | {:.3} | {:.3} | {:.3} | {:.1} us | {:.1} us | {:.2}x | {:.3} |\n",
                r.level,
                r.delay_ms,
                us(r.serial_ns),
                us(r.overlap_ns),
                r.speedup(),
                us(r.ideal_ns),
                r.efficiency(),
                r.round_efficiency,
                r.in_trial_efficiency,
                us(r.sim_serial_ns),
                us(r.sim_overlap_ns),
                r.sim_speedup(),
                r.sim_efficiency(),
            ));
        }
        s.push_str(&format!(
            "\nload average before / after: {} / {}\nideal = max(run(C1), delay + prepare(C2)) + run(C2) from the component medians; efficiency = (serial - overlap) / (serial - ideal) from the medians;\nper-round efficiency = the same per round, against that round's own component samples;\nin-trial efficiency = the same per overlap trial, against the chip's lane spans inside that trial (S = r1 + d + p2 + r2, I = max(r1, d + p2) + r2).\n\
             sim = chiplane_sim::overlap::trial fed the measured components (virtual time; L3 adds the simulated \
             mailbox's cost).\nmax_diff against kernels::reference over {} runs: {:e}\nwall time {:.1} s\n",
            self.load_before,
            self.load_after,
            self.runs_checked,
            self.max_diff,
            self.elapsed.as_secs_f64()
        ));
        s
    }
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn args(n: u64, repeat: Option<u64>) -> TaskArgs {
    let n = n as usize;
    let a: Vec<f32> = (0..n).map(|i| (i % 97) as f32 * 0.25).collect();
    let b: Vec<f32> = (0..n).map(|i| 1.0 + (i % 13) as f32 * 0.125).collect();
    TaskArgs { tensors: vec![a, b], scalars: repeat.into_iter().collect() }
}

/// What a level must offer the experiment.
trait Level {
    fn name(&self) -> &'static str;
    fn register(&self, spec: &CallableSpec) -> Result<Handle, String>;
    fn unregister(&self, h: Handle) -> Result<(), String>;
    fn run(&self, h: Handle, args: &TaskArgs) -> Result<RunOutput, String>;
    /// The overlap trial body after `t0`: returns both outputs and C2's handle.
    fn overlap(
        &self,
        h1: Handle,
        a1: &TaskArgs,
        c2: &CallableSpec,
        a2: &TaskArgs,
        delay: Duration,
    ) -> Result<(RunOutput, RunOutput, Handle), String>;
}

struct L2<C: Chip>(Worker<C>);

impl<C: Chip> Level for L2<C> {
    fn name(&self) -> &'static str {
        "L2"
    }
    fn register(&self, spec: &CallableSpec) -> Result<Handle, String> {
        self.0.register(spec.clone()).map_err(|e| format!("L2 register: {e}"))
    }
    fn unregister(&self, h: Handle) -> Result<(), String> {
        self.0.unregister(h).map_err(|e| format!("L2 unregister: {e}"))
    }
    fn run(&self, h: Handle, args: &TaskArgs) -> Result<RunOutput, String> {
        self.0.run(h, args.clone(), RunConfig::default()).map_err(|e| format!("L2 run: {e}"))
    }
    fn overlap(
        &self,
        h1: Handle,
        a1: &TaskArgs,
        c2: &CallableSpec,
        a2: &TaskArgs,
        delay: Duration,
    ) -> Result<(RunOutput, RunOutput, Handle), String> {
        let w = &self.0;
        let r1 = w.run_async(h1, a1.clone(), RunConfig::default()).map_err(|e| format!("L2 run_async C1: {e}"))?;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let h2 = w.register_async(c2.clone()).map_err(|e| format!("L2 register_async C2: {e}"))?;
        let h2 = h2.wait().map_err(|e| format!("L2 register C2: {e}"))?;
        let r2 = w.run_async(h2, a2.clone(), RunConfig::default()).map_err(|e| format!("L2 run_async C2: {e}"))?;
        let o1 = r1.wait().map_err(|e| format!("L2 C1: {e}"))?;
        let o2 = r2.wait().map_err(|e| format!("L2 C2: {e}"))?;
        Ok((o1, o2, h2))
    }
}

struct L3(L3Worker);

fn submit_one(w: &L3Worker, h: Handle, args: TaskArgs) -> crate::l3::L3RunHandle<Result<(), String>> {
    w.run_async(move |o| o.submit(0, h, args, RunConfig::default()).map(|_| ()).map_err(|e| format!("L3 submit: {e}")))
}

fn task_output(out: crate::l3::RunOutcome<Result<(), String>>) -> Result<RunOutput, String> {
    out.value?;
    match out.tasks.into_iter().next() {
        Some(Ok(o)) => Ok(o),
        Some(Err(e)) => Err(format!("L3 run: {e}")),
        None => Err("L3 run submitted no task".into()),
    }
}

impl Level for L3 {
    fn name(&self) -> &'static str {
        "L3"
    }
    fn register(&self, spec: &CallableSpec) -> Result<Handle, String> {
        self.0.register(0, spec.clone()).map_err(|e| format!("L3 register: {e}"))
    }
    fn unregister(&self, h: Handle) -> Result<(), String> {
        self.0.unregister(0, h).map_err(|e| format!("L3 unregister: {e}"))
    }
    fn run(&self, h: Handle, args: &TaskArgs) -> Result<RunOutput, String> {
        task_output(submit_one(&self.0, h, args.clone()).wait())
    }
    fn overlap(
        &self,
        h1: Handle,
        a1: &TaskArgs,
        c2: &CallableSpec,
        a2: &TaskArgs,
        delay: Duration,
    ) -> Result<(RunOutput, RunOutput, Handle), String> {
        let w = &self.0;
        let r1 = submit_one(w, h1, a1.clone());
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let h2 = w.register_async(0, c2.clone()).map_err(|e| format!("L3 register_async C2: {e}"))?;
        let h2 = h2.wait().map_err(|e| format!("L3 register C2: {e}"))?;
        let r2 = submit_one(w, h2, a2.clone());
        let o1 = task_output(r1.wait())?;
        let o2 = task_output(r2.wait())?;
        Ok((o1, o2, h2))
    }
}

struct Checker {
    max_diff: f32,
    runs: usize,
}

impl Checker {
    fn check(&mut self, spec: &CallableSpec, args: &TaskArgs, out: &RunOutput) -> Result<(), String> {
        let reference = kernels::reference(spec, args).map_err(|e| format!("reference: {e}"))?;
        let d = kernels::max_diff(out, &reference);
        self.max_diff = self.max_diff.max(d);
        self.runs += 1;
        Ok(())
    }
}

struct Specs {
    c1: CallableSpec,
    c2: CallableSpec,
    a1: TaskArgs,
    a2: TaskArgs,
}

/// Run the components and the trials on one level.
fn measure(
    level: &dyn Level,
    specs: &Specs,
    opts: &Options,
    check: &mut Checker,
    caller: &SpanLog,
) -> Result<(Components, Vec<Trial>), String> {
    let track = format!("{} caller", level.name());
    let h1 = level.register(&specs.c1)?;
    // Warm-up (untimed): one run of each, one prepare of C2.
    let h2 = level.register(&specs.c2)?;
    check.check(&specs.c1, &specs.a1, &level.run(h1, &specs.a1)?)?;
    check.check(&specs.c2, &specs.a2, &level.run(h2, &specs.a2)?)?;
    level.unregister(h2)?;
    // Rounds: one sample of each component, then a serial and an overlap
    // trial per delay (alternating which goes first), so the components and
    // the trials see the same machine load.
    let (mut run1, mut prep2, mut run2) = (vec![], vec![], vec![]);
    let mut trials = Vec::new();
    for round in 0..opts.trials {
        let t = mono_ns();
        let o = level.run(h1, &specs.a1)?;
        let t1 = mono_ns();
        run1.push(t1 - t);
        caller.push(&track, "component run(C1)".into(), t, t1);
        check.check(&specs.c1, &specs.a1, &o)?;
        let t = mono_ns();
        let h2 = level.register(&specs.c2)?;
        let t1 = mono_ns();
        prep2.push(t1 - t);
        caller.push(&track, "component prepare(C2)".into(), t, t1);
        let t = mono_ns();
        let o = level.run(h2, &specs.a2)?;
        let t1 = mono_ns();
        run2.push(t1 - t);
        caller.push(&track, "component run(C2)".into(), t, t1);
        check.check(&specs.c2, &specs.a2, &o)?;
        level.unregister(h2)?;
        for &delay_ms in &opts.delays_ms {
            let delay = Duration::from_millis(delay_ms);
            let (mut serial, mut overlap, mut window) = (0, 0, (0, 0));
            for k in 0..2 {
                if (k + round) % 2 == 0 {
                    let t0 = mono_ns();
                    let o1 = level.run(h1, &specs.a1)?;
                    if !delay.is_zero() {
                        std::thread::sleep(delay);
                    }
                    let h2 = level.register(&specs.c2)?;
                    let o2 = level.run(h2, &specs.a2)?;
                    let t1 = mono_ns();
                    caller.push(&track, format!("serial, delay {delay_ms} ms"), t0, t1);
                    check.check(&specs.c1, &specs.a1, &o1)?;
                    check.check(&specs.c2, &specs.a2, &o2)?;
                    level.unregister(h2)?;
                    serial = t1 - t0;
                } else {
                    let t0 = mono_ns();
                    let (o1, o2, h2) = level.overlap(h1, &specs.a1, &specs.c2, &specs.a2, delay)?;
                    let t1 = mono_ns();
                    caller.push(&track, format!("overlap, delay {delay_ms} ms"), t0, t1);
                    check.check(&specs.c1, &specs.a1, &o1)?;
                    check.check(&specs.c2, &specs.a2, &o2)?;
                    level.unregister(h2)?;
                    overlap = t1 - t0;
                    window = (t0, t1);
                }
            }
            let r = *run1.last().expect("sampled this round");
            let p = *prep2.last().expect("sampled this round");
            let q = *run2.last().expect("sampled this round");
            let ideal = r.max(delay_ms * 1_000_000 + p) + q;
            trials.push(Trial { delay_ms, serial_ns: serial, overlap_ns: overlap, ideal_ns: ideal, window });
        }
    }
    let comp = Components { run1_ns: median(run1), prep2_ns: median(prep2), run2_ns: median(run2) };
    level.unregister(h1)?;
    Ok((comp, trials))
}

/// One round's serial and overlap trial at one delay, and the ideal from
/// the same round's components.
#[derive(Clone, Copy, Debug)]
struct Trial {
    delay_ms: u64,
    serial_ns: u64,
    overlap_ns: u64,
    ideal_ns: u64,
    /// The overlap trial's start and end (`mono_ns`).
    window: (u64, u64),
}

/// The in-trial efficiency of one overlap trial from the chip's own lane
/// spans inside its window: with r1, p2, r2 the run of C1, the prepare of
/// C2 and the run of C2 as they happened in that trial, `S = r1 + d + p2 +
/// r2` (the serial schedule of those latencies), `I = max(r1, d + p2) + r2`
/// and `O` the trial's elapsed time: `(S - O) / (S - I)`. Machine load that
/// stretches a lane job shows in S and I alike, so this isolates what the
/// runtime itself adds.
fn in_trial_efficiency(t: &Trial, lanes: &[Span]) -> Option<f64> {
    let (t0, t1) = t.window;
    let dur = |prefix: &str| {
        lanes
            .iter()
            .find(|s| s.start_ns >= t0 && s.end_ns <= t1 && s.name.starts_with(prefix))
            .map(|s| s.end_ns - s.start_ns)
    };
    let r1 = dur(&format!("run {REPEAT_VECTOR_ADD}"))?;
    let p2 = dur(&format!("prepare {HEAVY_PREPARE}"))?;
    let r2 = dur(&format!("run {HEAVY_PREPARE}"))?;
    let d = t.delay_ms * 1_000_000;
    let serial = (r1 + d + p2 + r2) as f64;
    let ideal = (r1.max(d + p2) + r2) as f64;
    Some((serial - t.overlap_ns as f64) / (serial - ideal))
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn rows(
    level: &'static str,
    shape: Shape,
    comp: Components,
    trials: &[Trial],
    delays: &[u64],
    lanes: &[Span],
) -> Result<Vec<Row>, String> {
    let mut out = Vec::new();
    for &d in delays {
        let at: Vec<&Trial> = trials.iter().filter(|t| t.delay_ms == d).collect();
        let serial = median(at.iter().map(|t| t.serial_ns).collect());
        let overlap = median(at.iter().map(|t| t.overlap_ns).collect());
        let round_efficiency = median_f(
            at.iter()
                .map(|t| (t.serial_ns as f64 - t.overlap_ns as f64) / (t.serial_ns as f64 - t.ideal_ns as f64))
                .collect(),
        );
        let in_trial: Vec<f64> = at.iter().filter_map(|t| in_trial_efficiency(t, lanes)).collect();
        let in_trial_efficiency = if in_trial.is_empty() { f64::NAN } else { median_f(in_trial) };
        let delay_ns = d * 1_000_000;
        let ideal = comp.run1_ns.max(delay_ns + comp.prep2_ns) + comp.run2_ns;
        let lat = (comp.run1_ns, comp.prep2_ns, comp.run2_ns);
        let (sim_serial, _) = sim_overlap::trial(shape, Mode::Serial, delay_ns, lat, false)?;
        let (sim_overlap, _) = sim_overlap::trial(shape, Mode::Overlap, delay_ns, lat, false)?;
        out.push(Row {
            level,
            delay_ms: d,
            serial_ns: serial,
            overlap_ns: overlap,
            ideal_ns: ideal,
            sim_serial_ns: sim_serial,
            sim_overlap_ns: sim_overlap,
            round_efficiency,
            in_trial_efficiency,
        });
    }
    Ok(out)
}

/// Pick C1's repeat count so one run takes about `target_ms`: the fastest
/// of 5 runs of repeat 400 on `level` (the minimum, not the median: on a
/// shared machine the slower runs measure other processes' load).
fn calibrate(level: &dyn Level, n: u64, target_ms: f64) -> Result<u64, String> {
    let c1 = CallableSpec::chip(REPEAT_VECTOR_ADD, vec![n]);
    let h = level.register(&c1)?;
    let probe = 400;
    let a = args(n, Some(probe));
    let _ = level.run(h, &a)?;
    let mut t = Vec::new();
    for _ in 0..5 {
        let s = Instant::now();
        let _ = level.run(h, &a)?;
        t.push(s.elapsed().as_nanos() as u64);
    }
    level.unregister(h)?;
    let fastest = t.into_iter().min().unwrap_or(1);
    let per_repeat_ns = (fastest as f64 / probe as f64).max(1.0);
    Ok(((target_ms * 1e6 / per_repeat_ns) as u64).clamp(10, 1_000_000))
}

fn l2_level(device: Device, log: Arc<SpanLog>) -> Result<Box<dyn Level>, String> {
    match device {
        Device::Host => {
            let chip = HostChip::new().map_err(|e| format!("host device: {e}"))?;
            Ok(Box::new(L2(Worker::new(TracedChip { inner: chip, log }, NodeConfig::default()))))
        }
        #[cfg(feature = "cuda")]
        Device::Cuda => {
            let chip = crate::devices::cuda::CudaChip::new(0).map_err(|e| format!("cuda device: {e}"))?;
            Ok(Box::new(L2(Worker::new(TracedChip { inner: chip, log }, NodeConfig::default()))))
        }
        #[cfg(not(feature = "cuda"))]
        Device::Cuda => Err("built without the `cuda` feature (cargo run --features cuda ...)".into()),
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Run the experiment.
pub fn run(opts: &Options) -> Result<Report, String> {
    let started = Instant::now();
    let load_before = loadavg();
    let mut check = Checker { max_diff: 0.0, runs: 0 };
    let caller = Arc::new(SpanLog::default());
    let l2_lanes = Arc::new(SpanLog::default());
    let mut processes: Vec<(String, Vec<Span>)> = Vec::new();
    let mut components = Vec::new();
    let mut table = Vec::new();
    let want_l2 = matches!(opts.levels, Levels::L2 | Levels::Both);
    let want_l3 = matches!(opts.levels, Levels::L3 | Levels::Both);

    let mut l2 =
        if want_l2 || opts.c1_repeat.is_none() { Some(l2_level(opts.device, l2_lanes.clone())?) } else { None };
    let repeat = match (opts.c1_repeat, &l2) {
        (Some(r), _) => r,
        (None, Some(l)) => calibrate(l.as_ref(), opts.n, opts.c1_target_ms)?,
        (None, None) => unreachable!("an L2 level exists when calibrating"),
    };
    let specs = Specs {
        c1: CallableSpec::chip(REPEAT_VECTOR_ADD, vec![opts.n]),
        c2: CallableSpec::chip(HEAVY_PREPARE, vec![opts.n, opts.c2_prepare_bytes]),
        a1: args(opts.n, Some(repeat)),
        a2: args(opts.n, None),
    };
    l2_lanes.take();
    caller.take();
    let l2_result = match (want_l2, &l2) {
        (true, Some(level)) => Some(measure(level.as_ref(), &specs, opts, &mut check, &caller)?),
        _ => None,
    };
    // Stop the L2 worker (joins its lanes) before L3 starts.
    l2.take();
    let lanes = l2_lanes.take();
    if let Some((comp, trials)) = l2_result {
        components.push(("L2", comp));
        table.extend(rows("L2", Shape::L2, comp, &trials, &opts.delays_ms, &lanes)?);
        processes.push(("L2 worker (in process)".into(), lanes));
    }
    if want_l3 {
        // The chip child writes its lane spans here when it shuts down (the
        // in-trial efficiency needs them; --trace also writes them out).
        let trace_dir = Some(std::env::temp_dir().join(format!("chiplane-spans-{}", std::process::id())));
        if let Some(d) = &trace_dir {
            std::fs::create_dir_all(d).map_err(|e| format!("trace dir {}: {e}", d.display()))?;
        }
        let config = L3Config {
            chips: 1,
            device: opts.device,
            child_exe: opts.child_exe.clone(),
            trace_dir: trace_dir.clone(),
            ..L3Config::default()
        };
        let worker = L3Worker::new(config).map_err(|e| format!("starting the L3 worker: {e}"))?;
        let pid = worker.child_pid(0).unwrap_or(0);
        let level = L3(worker);
        let measured = measure(&level, &specs, opts, &mut check, &caller);
        drop(level);
        let mut spans: Vec<Span> = Vec::new();
        if let Some(d) = &trace_dir {
            let file = d.join("chip-0-0.spans");
            spans = std::fs::read_to_string(&file)
                .map(|s| s.lines().filter_map(Span::from_line).collect())
                .unwrap_or_default();
            let _ = std::fs::remove_dir_all(d);
        }
        let (comp, trials) = measured?;
        components.push(("L3", comp));
        table.extend(rows("L3", Shape::L3, comp, &trials, &opts.delays_ms, &spans)?);
        processes.push((format!("L3 chip child 0 (pid {pid})"), spans));
    }
    processes.push(("caller (parent)".into(), caller.take()));
    if let Some(path) = &opts.trace {
        std::fs::write(path, chrome_json(&processes)).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(Report {
        device: opts.device.as_str(),
        c1_repeat: repeat,
        trials: opts.trials,
        c2_prepare_bytes: opts.c2_prepare_bytes,
        components,
        rows: table,
        max_diff: check.max_diff,
        runs_checked: check.runs,
        load_before,
        load_after: loadavg(),
        elapsed: started.elapsed(),
    })
}
