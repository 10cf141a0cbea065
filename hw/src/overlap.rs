//! The seed's overlap experiment on a real device (`chiplane overlap`),
//! driven through the one worker API ([`Worker`]) at both levels.
//!
//! C1 = a long `repeat_vector_add` (n = 4096, `repeat` calibrated at start so
//! one run takes about [`Options::c1_target_ms`]), C2 = `heavy_prepare`
//! (n = 4096, [`OVERLAP_DEMO_PREPARE_BYTES`]: a real multi-millisecond
//! prepare). Delays 0 and 2 ms, at L2 (core's in-process `L2Worker`) and L3
//! (core's `L3Worker` over one chip child process). C1 is registered once
//! per level (untimed); C2 is registered afresh in every trial and
//! unregistered after it (untimed), so each trial pays its full prepare.
//!
//! # Paired trials
//! Each *pair* is one serial and one overlap trial, back to back, the order
//! alternating from pair to pair (so both see the same machine):
//! - **serial**: `run(C1)`; sleep(delay); `register(C2)` (waits for the
//!   prepare); `run(C2)`; each segment timed;
//! - **overlap**: `run_async(C1)`; sleep(delay); `register_async(C2).wait()`
//!   while C1 runs; `run_async(C2)`; wait for both.
//!
//! The serial trial's own segments are the components of that pair:
//! `ideal = max(run(C1), delay + prepare(C2)) + run(C2)` and
//! `efficiency = (serial - overlap) / (serial - ideal)` (docs/protocol.md
//! section 1), per pair. The report gives the median of each figure over the pairs with a 95%
//! distribution-free interval (order statistics of the binomial), so an
//! efficiency above 1 always shows how far its interval reaches. The delay
//! is part of the experiment (the seed's), not a synchronisation.
//!
//! The ideal assumes C1's run and C2's prepare keep their serial speed side
//! by side, and that the machine ran both trials of a pair at one speed.
//! Each row checks the first: the overlap trial also times
//! `register_async(C2).wait()` and C1's run (on a thread that only waits
//! for it), and the report gives each over the serial trial's (about 1
//! when the machine ran the lanes in parallel), with the CPU steal of the
//! whole run. The second fails on a shared VM: the same C1 took 6.6 to
//! 16.3 ms in serial trials of one `chiplane overlap` on the 2-core
//! machine, from one trial to the next, with nothing else running. So the
//! report also gives the **runtime efficiency**
//! ([`Pair::runtime_efficiency`]): the same formula over the overlap
//! trial's own lanes, which neither assumption enters.
//!
//! Every run's output is compared with `kernels::reference` (`max_diff`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chiplane_core::chip::{CallableSpec, Chip, RunConfig, RunOutput, TaskArgs};
use chiplane_core::error::report;
use chiplane_core::kernels::{self, HEAVY_PREPARE, REPEAT_VECTOR_ADD};
use chiplane_core::CallableHandle;
use chiplane_core::{L2Worker, NodeConfig, Pending, Worker};

use crate::devices::host::{HostChip, OVERLAP_DEMO_PREPARE_BYTES};
use crate::l3::trace::{chrome_json, mono_ns, Span, SpanLog, TracedChip};
use crate::l3::{Device, L3Config};

/// Which levels to run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Levels {
    /// In-process only.
    L2,
    /// Chip child process only.
    L3,
    /// Both.
    Both,
}

/// Options of the experiment.
#[derive(Clone, Debug)]
pub struct Options {
    /// The device.
    pub device: Device,
    /// Which levels.
    pub levels: Levels,
    /// Serial/overlap pairs per delay and level.
    pub pairs: usize,
    /// Delays before C2's register.
    pub delays_ms: Vec<u64>,
    /// Vector length of both callables.
    pub n: u64,
    /// What one run of C1 should take (its repeat count is calibrated).
    pub c1_target_ms: f64,
    /// Fixed C1 repeat count (skips the calibration).
    pub c1_repeat: Option<u64>,
    /// Bytes C2's prepare allocates and touches.
    pub c2_prepare_bytes: u64,
    /// Write a Chrome/Perfetto trace here.
    pub trace: Option<PathBuf>,
    /// The chip child executable (default: this program, re-executed).
    pub child_exe: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            device: Device::Host,
            levels: Levels::Both,
            pairs: 15,
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

/// A median and its 95% interval, in the unit of the figure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// The median.
    pub median: f64,
    /// Lower end of the 95% interval.
    pub low: f64,
    /// Upper end of the 95% interval.
    pub high: f64,
}

impl Estimate {
    /// Median and distribution-free 95% interval of `v` (order statistics
    /// `k` and `n + 1 - k`, `k` the largest with `P(Bin(n, 1/2) < k) <=
    /// 0.025`; for fewer than 6 samples the interval is the range).
    pub fn of(mut v: Vec<f64>) -> Estimate {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n == 0 {
            return Estimate { median: f64::NAN, low: f64::NAN, high: f64::NAN };
        }
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        // P(Bin(n, 1/2) <= j), accumulated.
        let mut k = 0usize;
        let mut cdf = 0.0f64;
        let mut pmf = 0.5f64.powi(n as i32);
        for j in 0..n {
            cdf += pmf;
            if cdf > 0.025 {
                break;
            }
            k = j + 1;
            pmf = pmf * (n - j) as f64 / (j + 1) as f64;
        }
        let (lo, hi) = if k == 0 { (0, n - 1) } else { (k - 1, n - k) };
        Estimate { median, low: v[lo], high: v[hi] }
    }

    /// `median [low, high]` with `prec` decimals.
    pub fn show(&self, prec: usize) -> String {
        format!("{:.*} [{:.*}, {:.*}]", prec, self.median, prec, self.low, prec, self.high)
    }

    /// Width of the interval.
    pub fn width(&self) -> f64 {
        self.high - self.low
    }
}

/// One serial/overlap pair at one delay.
#[derive(Clone, Copy, Debug)]
pub struct Pair {
    /// The delay before C2's register.
    pub delay_ms: u64,
    /// The serial trial.
    pub serial_ns: u64,
    /// The overlap trial.
    pub overlap_ns: u64,
    /// The serial trial's `run(C1)`, `prepare(C2)` (a sync register), `run(C2)`.
    pub components_ns: (u64, u64, u64),
    /// The overlap trial's own lanes: when C2's register was issued (the
    /// delay as slept), how long C2's prepare took beside C1
    /// (`register_async(C2).wait()`), and how long C1's run took (from
    /// `run_async(C1)` to its `wait` returning, on a thread that does
    /// nothing else).
    pub overlap_lanes: OverlapLanes,
}

/// What the lanes took in one overlap trial (see [`Pair::overlap_lanes`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct OverlapLanes {
    /// From the trial's start to C2's `register_async`.
    pub register_at_ns: u64,
    /// C2's prepare beside C1's run.
    pub prepare_ns: u64,
    /// C1's run beside C2's prepare.
    pub run_c1_ns: u64,
}

impl Pair {
    /// `max(run(C1), delay + prepare(C2)) + run(C2)` of this pair.
    pub fn ideal_ns(&self) -> u64 {
        let (r1, p2, r2) = self.components_ns;
        r1.max(self.delay_ms * 1_000_000 + p2) + r2
    }

    /// `(serial - overlap) / (serial - ideal)` of this pair.
    pub fn efficiency(&self) -> f64 {
        (self.serial_ns as f64 - self.overlap_ns as f64) / (self.serial_ns as f64 - self.ideal_ns() as f64)
    }

    /// The same formula over the overlap trial's own lanes: with `r1`, `d`
    /// and `p2` what C1's run, the delay and C2's prepare took *in that
    /// trial* and `r2` the serial trial's `run(C2)`, `serial = r1 + d + p2 +
    /// r2`, `ideal = max(r1, d + p2) + r2`, and the figure is
    /// `(serial - overlap) / (serial - ideal)`, that is `1 - (overlap -
    /// ideal) / min(r1, d + p2)`. It is the share of the time these lanes,
    /// at the speed the machine gave them in this trial, could save that the
    /// runtime did save: what the machine did to the lanes' speed (the
    /// checks [`Pair::prepare_slowdown`] and [`Pair::run_slowdown`]) and
    /// how its speed changed between the two trials of the pair do not
    /// enter it.
    pub fn runtime_efficiency(&self) -> f64 {
        let l = self.overlap_lanes;
        let (r1, d_p2, r2) =
            (l.run_c1_ns as f64, (l.register_at_ns + l.prepare_ns) as f64, self.components_ns.2 as f64);
        let serial = r1 + d_p2 + r2;
        let ideal = r1.max(d_p2) + r2;
        (serial - self.overlap_ns as f64) / (serial - ideal)
    }

    /// C2's prepare beside C1's run over the same prepare alone (the serial
    /// trial's): about 1 when the machine ran the two lanes in parallel,
    /// about 2 when it gave them one core's worth of time between them.
    pub fn prepare_slowdown(&self) -> f64 {
        self.overlap_lanes.prepare_ns as f64 / self.components_ns.1 as f64
    }

    /// C1's run beside C2's prepare over C1's run alone (the serial
    /// trial's), read like [`Pair::prepare_slowdown`].
    pub fn run_slowdown(&self) -> f64 {
        self.overlap_lanes.run_c1_ns as f64 / self.components_ns.0 as f64
    }
}

/// One row of the table.
#[derive(Clone, Debug)]
pub struct Row {
    /// `L2` or `L3`.
    pub level: &'static str,
    /// The delay.
    pub delay_ms: u64,
    /// Every pair.
    pub pairs: Vec<Pair>,
}

impl Row {
    /// Serial trials, microseconds.
    pub fn serial_us(&self) -> Estimate {
        Estimate::of(self.pairs.iter().map(|p| p.serial_ns as f64 / 1e3).collect())
    }
    /// Overlap trials, microseconds.
    pub fn overlap_us(&self) -> Estimate {
        Estimate::of(self.pairs.iter().map(|p| p.overlap_ns as f64 / 1e3).collect())
    }
    /// Ideal overlap per pair, microseconds.
    pub fn ideal_us(&self) -> Estimate {
        Estimate::of(self.pairs.iter().map(|p| p.ideal_ns() as f64 / 1e3).collect())
    }
    /// Speedup per pair.
    pub fn speedup(&self) -> Estimate {
        Estimate::of(self.pairs.iter().map(|p| p.serial_ns as f64 / p.overlap_ns as f64).collect())
    }
    /// Efficiency per pair.
    pub fn efficiency(&self) -> Estimate {
        Estimate::of(self.pairs.iter().map(Pair::efficiency).collect())
    }
    /// Runtime efficiency per pair ([`Pair::runtime_efficiency`]).
    pub fn runtime_efficiency(&self) -> Estimate {
        Estimate::of(self.pairs.iter().map(Pair::runtime_efficiency).collect())
    }
    /// Prepare slowdown beside C1 per pair ([`Pair::prepare_slowdown`]).
    pub fn prepare_slowdown(&self) -> Estimate {
        Estimate::of(self.pairs.iter().map(Pair::prepare_slowdown).collect())
    }
    /// C1's slowdown beside the prepare per pair ([`Pair::run_slowdown`]).
    pub fn run_slowdown(&self) -> Estimate {
        Estimate::of(self.pairs.iter().map(Pair::run_slowdown).collect())
    }
}

/// The whole result.
#[derive(Clone, Debug)]
pub struct Report {
    /// The device's name.
    pub device: &'static str,
    /// C1's repeat count.
    pub c1_repeat: u64,
    /// Pairs per row.
    pub pairs: usize,
    /// C2's prepare size.
    pub c2_prepare_bytes: u64,
    /// The rows.
    pub rows: Vec<Row>,
    /// Largest `max_diff` of any run against `kernels::reference`.
    pub max_diff: f32,
    /// Runs checked.
    pub runs_checked: usize,
    /// `/proc/loadavg` (1, 5, 15 min) before and after: the machine is shared.
    pub load_before: String,
    /// See `load_before`.
    pub load_after: String,
    /// Share of the machine's CPU time the hypervisor gave to other guests
    /// during the experiment (`steal` of `/proc/stat`), in percent; `None`
    /// where it cannot be read.
    pub steal_percent: Option<f64>,
    /// Wall time of the whole experiment.
    pub elapsed: Duration,
}

impl Report {
    /// The table as printed by `chiplane overlap`.
    pub fn render(&self) -> String {
        let mut s = format!(
            "chiplane overlap: device {}, C1 = {REPEAT_VECTOR_ADD} n=4096 repeat {}, C2 = {HEAVY_PREPARE} n=4096 \
             prepare_bytes {} MiB, {} serial/overlap pairs per row\n\n",
            self.device,
            self.c1_repeat,
            self.c2_prepare_bytes >> 20,
            self.pairs,
        );
        s.push_str(
            "| level | delay before C2 register | serial (us) | overlap (us) | speedup | ideal overlap (us) | efficiency | \
             runtime efficiency | prepare(C2) beside C1 / alone | run(C1) beside prepare(C2) / alone |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            s.push_str(&format!(
                "| {} | {} ms | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.level,
                r.delay_ms,
                r.serial_us().show(1),
                r.overlap_us().show(1),
                r.speedup().show(2),
                r.ideal_us().show(1),
                r.efficiency().show(3),
                r.runtime_efficiency().show(3),
                r.prepare_slowdown().show(2),
                r.run_slowdown().show(2),
            ));
        }
        s.push_str(&format!(
            "\neach cell: median over the pairs [95% interval of the median]. Per pair: ideal = max(run(C1), delay + \
             prepare(C2)) + run(C2) from that pair's serial trial; efficiency = (serial - overlap) / (serial - ideal). \
             The ideal assumes the two lanes run side by side at their serial speed, and that the machine ran both \
             trials of the pair at one speed. Runtime efficiency: the same formula over the overlap trial's own \
             lanes (run(C1), delay and prepare(C2) as they took in that trial; run(C2) the serial trial's), so \
             neither assumption enters it: the share of what those lanes could save that the runtime saved. The \
             last two columns check the first assumption (each lane beside the other, over the same work alone in \
             the serial trial): near 1 the machine ran them in parallel, near 2 it gave them one core's worth of \
             time between them, and the efficiency measures the machine, not the runtime.\n\
             max_diff against kernels::reference over {} runs: {:e}\nload average before / after: {} / {}\ncpu \
             steal during the experiment: {}\nwall time {:.1} s\n",
            self.runs_checked,
            self.max_diff,
            self.load_before,
            self.load_after,
            self.steal_percent.map_or_else(|| "unknown".to_string(), |p| format!("{p:.1}%")),
            self.elapsed.as_secs_f64()
        ));
        s
    }
}

fn args(n: u64, repeat: Option<u64>) -> TaskArgs {
    let n = n as usize;
    let a: Vec<f32> = (0..n).map(|i| (i % 97) as f32 * 0.25).collect();
    let b: Vec<f32> = (0..n).map(|i| 1.0 + (i % 13) as f32 * 0.125).collect();
    TaskArgs { tensors: vec![a, b], scalars: repeat.into_iter().collect() }
}

fn err(what: &str, e: &dyn std::error::Error) -> String {
    format!("{what}: {}", report(e))
}

struct Checker {
    max_diff: f32,
    runs: usize,
}

impl Checker {
    fn check(&mut self, spec: &CallableSpec, args: &TaskArgs, out: &RunOutput) -> Result<(), String> {
        let reference = kernels::reference(spec, args).map_err(|e| format!("reference: {e}"))?;
        self.max_diff = self.max_diff.max(kernels::max_diff(out, &reference));
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

fn cfg() -> RunConfig {
    RunConfig::default()
}

/// One serial trial: its elapsed time and its three segments.
fn serial<W: Worker>(
    w: &W,
    h1: CallableHandle,
    s: &Specs,
    delay: Duration,
    check: &mut Checker,
) -> Result<Pair, String> {
    let t0 = Instant::now();
    let o1 = w.run(h1, s.a1.clone(), cfg()).map_err(|e| err("run(C1)", &e))?;
    let t1 = Instant::now();
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    let t2 = Instant::now();
    let h2 = w.register(s.c2.clone()).map_err(|e| err("register(C2)", &e))?;
    let t3 = Instant::now();
    let o2 = w.run(h2, s.a2.clone(), cfg()).map_err(|e| err("run(C2)", &e))?;
    let t4 = Instant::now();
    check.check(&s.c1, &s.a1, &o1)?;
    check.check(&s.c2, &s.a2, &o2)?;
    w.unregister(h2).map_err(|e| err("unregister(C2)", &e))?;
    let ns = |a: Instant, b: Instant| b.duration_since(a).as_nanos() as u64;
    Ok(Pair {
        delay_ms: delay.as_millis() as u64,
        serial_ns: ns(t0, t4),
        overlap_ns: 0,
        components_ns: (ns(t0, t1), ns(t2, t3), ns(t3, t4)),
        overlap_lanes: OverlapLanes::default(),
    })
}

/// One overlap trial: its elapsed time and what its lanes took. C1's
/// `wait` runs on a scoped thread of its own, so the end of C1's run is
/// seen when it happens, not when the caller gets to it (behind C2's
/// prepare when that is the longer); that thread sleeps in the `wait`. It
/// is started after C2's register is issued, so starting it does not delay
/// the register.
fn overlap<W: Worker>(
    w: &W,
    h1: CallableHandle,
    s: &Specs,
    delay: Duration,
    check: &mut Checker,
) -> Result<(u64, OverlapLanes), String>
where
    W::Run: Send,
{
    let ns = |d: Duration| d.as_nanos() as u64;
    let (elapsed, lanes, o1, o2, h2) = std::thread::scope(|scope| {
        let t0 = Instant::now();
        let r1 = w.run_async(h1, s.a1.clone(), cfg()).map_err(|e| err("run_async(C1)", &e))?;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let t_register = Instant::now();
        let register = w.register_async(s.c2.clone()).map_err(|e| err("register_async(C2)", &e));
        let c1 = scope.spawn(move || {
            let o1 = r1.wait();
            (t0.elapsed(), o1)
        });
        let prepared = register.and_then(|h2| h2.wait().map_err(|e| err("register_async(C2).wait()", &e)));
        let prepare = t_register.elapsed();
        let r2 = prepared.and_then(|h2| {
            let r2 = w.run_async(h2, s.a2.clone(), cfg()).map_err(|e| err("run_async(C2)", &e))?;
            Ok((h2, r2))
        });
        // C1 is waited for on every path, so no run outlives the trial.
        let (run_c1, o1) = c1.join().map_err(|_| "the thread waiting for C1 panicked".to_string())?;
        let (h2, r2) = r2?;
        let o2 = r2.wait().map_err(|e| err("C2", &e))?;
        let elapsed = t0.elapsed();
        let o1 = o1.map_err(|e| err("C1", &e))?;
        let lanes = OverlapLanes {
            register_at_ns: ns(t_register.duration_since(t0)),
            prepare_ns: ns(prepare),
            run_c1_ns: ns(run_c1),
        };
        Ok::<_, String>((elapsed, lanes, o1, o2, h2))
    })?;
    check.check(&s.c1, &s.a1, &o1)?;
    check.check(&s.c2, &s.a2, &o2)?;
    w.unregister(h2).map_err(|e| err("unregister(C2)", &e))?;
    Ok((ns(elapsed), lanes))
}

/// Warm up, then the pairs of every delay, interleaved.
fn measure<W: Worker>(
    level: &'static str,
    w: &W,
    s: &Specs,
    opts: &Options,
    check: &mut Checker,
    caller: &SpanLog,
) -> Result<Vec<Row>, String>
where
    W::Run: Send,
{
    let h1 = w.register(s.c1.clone()).map_err(|e| err("register(C1)", &e))?;
    // Warm-up (untimed): one of each trial.
    for &d in &opts.delays_ms {
        serial(w, h1, s, Duration::from_millis(d), check)?;
        overlap(w, h1, s, Duration::from_millis(d), check)?;
    }
    let mut rows: Vec<Row> = opts.delays_ms.iter().map(|&d| Row { level, delay_ms: d, pairs: Vec::new() }).collect();
    let track = format!("{level} caller");
    for pair in 0..opts.pairs {
        for row in rows.iter_mut() {
            let delay = Duration::from_millis(row.delay_ms);
            let (mut p, mut o) = (None, (0, OverlapLanes::default()));
            for k in 0..2 {
                let t = mono_ns();
                if (k + pair) % 2 == 0 {
                    p = Some(serial(w, h1, s, delay, check)?);
                    caller.push(&track, format!("serial, delay {} ms", row.delay_ms), t, mono_ns());
                } else {
                    o = overlap(w, h1, s, delay, check)?;
                    caller.push(&track, format!("overlap, delay {} ms", row.delay_ms), t, mono_ns());
                }
            }
            let mut p = p.expect("one serial trial per pair");
            (p.overlap_ns, p.overlap_lanes) = o;
            row.pairs.push(p);
        }
    }
    w.unregister(h1).map_err(|e| err("unregister(C1)", &e))?;
    Ok(rows)
}

/// Pick C1's repeat count so one run takes about `target_ms`: the fastest
/// of 5 runs of repeat 400 (the minimum, not the median: on a shared
/// machine the slower runs measure other processes' load).
fn calibrate<W: Worker>(w: &W, n: u64, target_ms: f64) -> Result<u64, String> {
    let c1 = CallableSpec::chip(REPEAT_VECTOR_ADD, vec![n]);
    let h = w.register(c1).map_err(|e| err("calibration register", &e))?;
    let probe = 400;
    let a = args(n, Some(probe));
    let _ = w.run(h, a.clone(), cfg()).map_err(|e| err("calibration run", &e))?;
    let mut fastest = u64::MAX;
    for _ in 0..5 {
        let s = Instant::now();
        let _ = w.run(h, a.clone(), cfg()).map_err(|e| err("calibration run", &e))?;
        fastest = fastest.min(s.elapsed().as_nanos() as u64);
    }
    w.unregister(h).map_err(|e| err("calibration unregister", &e))?;
    let per_repeat_ns = (fastest as f64 / probe as f64).max(1.0);
    Ok(((target_ms * 1e6 / per_repeat_ns) as u64).clamp(10, 1_000_000))
}

/// `(steal, total)` CPU time of the machine so far (`/proc/stat`'s `cpu`
/// line, in clock ticks).
fn cpu_steal() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line.split_whitespace().skip(1).map_while(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is in user)
    let total = f.iter().take(8).sum();
    Some((*f.get(7)?, total))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The L2 part: calibrates C1 when asked, then measures when asked.
fn on_l2<C: Chip>(
    chip: C,
    opts: &Options,
    calibrate_only: bool,
    check: &mut Checker,
    caller: &SpanLog,
) -> Result<(u64, Vec<Row>), String> {
    let w = L2Worker::new(chip, NodeConfig::default());
    let repeat = match opts.c1_repeat {
        Some(r) => r,
        None => calibrate(&w, opts.n, opts.c1_target_ms)?,
    };
    if calibrate_only {
        return Ok((repeat, Vec::new()));
    }
    let s = specs(opts, repeat);
    Ok((repeat, measure("L2", &w, &s, opts, check, caller)?))
}

fn specs(opts: &Options, repeat: u64) -> Specs {
    Specs {
        c1: CallableSpec::chip(REPEAT_VECTOR_ADD, vec![opts.n]),
        c2: CallableSpec::chip(HEAVY_PREPARE, vec![opts.n, opts.c2_prepare_bytes]),
        a1: args(opts.n, Some(repeat)),
        a2: args(opts.n, None),
    }
}

/// Run the experiment.
pub fn run(opts: &Options) -> Result<Report, String> {
    if opts.pairs == 0 {
        return Err("at least one pair".into());
    }
    crate::tune::calibrate();
    let started = Instant::now();
    let load_before = loadavg();
    let steal_before = cpu_steal();
    let mut check = Checker { max_diff: 0.0, runs: 0 };
    let caller = Arc::new(SpanLog::default());
    let mut processes: Vec<(String, Vec<Span>)> = Vec::new();
    let mut table = Vec::new();
    let want_l2 = matches!(opts.levels, Levels::L2 | Levels::Both);
    let want_l3 = matches!(opts.levels, Levels::L3 | Levels::Both);
    let tracing = opts.trace.is_some();

    // L2 (also where C1 is calibrated). Lanes are traced only for --trace.
    let l2_lanes = Arc::new(SpanLog::default());
    let calibrate_only = !want_l2;
    let (repeat, rows) = match opts.device {
        Device::Host => {
            let chip = HostChip::new().map_err(|e| format!("host device: {e}"))?;
            if tracing {
                on_l2(TracedChip { inner: chip, log: l2_lanes.clone() }, opts, calibrate_only, &mut check, &caller)?
            } else {
                on_l2(chip, opts, calibrate_only, &mut check, &caller)?
            }
        }
        #[cfg(feature = "cuda")]
        Device::Cuda => {
            let chip = crate::devices::cuda::CudaChip::new(0).map_err(|e| format!("cuda device: {e}"))?;
            if tracing {
                on_l2(TracedChip { inner: chip, log: l2_lanes.clone() }, opts, calibrate_only, &mut check, &caller)?
            } else {
                on_l2(chip, opts, calibrate_only, &mut check, &caller)?
            }
        }
        #[cfg(not(feature = "cuda"))]
        Device::Cuda => return Err("built without the `cuda` feature (cargo run --features cuda ...)".into()),
        Device::Null => return Err("the null device computes nothing: the experiment needs host or cuda".into()),
    };
    table.extend(rows);
    if want_l2 && tracing {
        processes.push(("L2 worker (in process)".into(), l2_lanes.take()));
    }
    if want_l3 {
        let trace_dir = tracing.then(|| std::env::temp_dir().join(format!("chiplane-spans-{}", std::process::id())));
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
        let worker = config.start().map_err(|e| format!("starting the L3 worker: {e}"))?;
        let s = specs(opts, repeat);
        let measured = measure("L3", &worker, &s, opts, &mut check, &caller);
        drop(worker);
        if let Some(d) = &trace_dir {
            for entry in std::fs::read_dir(d).map_err(|e| format!("{}: {e}", d.display()))?.flatten() {
                let spans = std::fs::read_to_string(entry.path())
                    .map(|s| s.lines().filter_map(Span::from_line).collect())
                    .unwrap_or_default();
                processes.push((format!("L3 chip child ({})", entry.file_name().to_string_lossy()), spans));
            }
            let _ = std::fs::remove_dir_all(d);
        }
        table.extend(measured?);
    }
    if let Some(path) = &opts.trace {
        processes.push(("caller (parent)".into(), caller.take()));
        std::fs::write(path, chrome_json(&processes)).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(Report {
        device: opts.device.as_str(),
        c1_repeat: repeat,
        pairs: opts.pairs,
        c2_prepare_bytes: opts.c2_prepare_bytes,
        rows: table,
        max_diff: check.max_diff,
        runs_checked: check.runs,
        load_before,
        load_after: loadavg(),
        steal_percent: steal_before.zip(cpu_steal()).and_then(|((s0, t0), (s1, t1))| {
            (t1 > t0).then(|| s1.saturating_sub(s0) as f64 / (t1 - t0) as f64 * 100.0)
        }),
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_interval_is_the_binomial_order_statistics() {
        let e = Estimate::of((1..=15).map(f64::from).collect());
        assert_eq!(e.median, 8.0);
        // n = 15: k = 4 (P(Bin(15, 1/2) <= 3) = 0.0176 <= 0.025 < P(<= 4) = 0.059).
        assert_eq!((e.low, e.high), (4.0, 12.0));
        let e = Estimate::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((e.median, e.low, e.high), (2.0, 1.0, 3.0));
        assert!(Estimate::of(vec![]).median.is_nan());
    }

    fn pair(serial_us: u64, overlap_us: u64, components_us: (u64, u64, u64), lanes_us: (u64, u64, u64)) -> Pair {
        let (r1, p2, r2) = components_us;
        let (at, prepare, run_c1) = lanes_us;
        Pair {
            delay_ms: 0,
            serial_ns: serial_us * 1000,
            overlap_ns: overlap_us * 1000,
            components_ns: (r1 * 1000, p2 * 1000, r2 * 1000),
            overlap_lanes: OverlapLanes {
                register_at_ns: at * 1000,
                prepare_ns: prepare * 1000,
                run_c1_ns: run_c1 * 1000,
            },
        }
    }

    #[test]
    fn runtime_efficiency_uses_the_overlap_trials_own_lanes() {
        // The machine ran C1 twice as fast in the serial trial: the pair's
        // efficiency blames the runtime, the runtime efficiency does not.
        let p = pair(17_100, 15_100, (7_000, 10_000, 100), (0, 10_000, 15_000));
        assert!((p.efficiency() - 0.2857).abs() < 1e-3, "{}", p.efficiency());
        assert!((p.runtime_efficiency() - 1.0).abs() < 1e-9, "{}", p.runtime_efficiency());
        assert!((p.run_slowdown() - 15_000.0 / 7_000.0).abs() < 1e-9);
        // C2 started 1 ms after C1 ended: 1 ms of the 10 ms the lanes could
        // save is lost, whichever lane was the longer.
        let late = pair(25_100, 16_100, (15_000, 10_000, 100), (0, 10_000, 15_000));
        assert!((late.runtime_efficiency() - 0.9).abs() < 1e-9, "{}", late.runtime_efficiency());
        let late = pair(25_100, 16_100, (15_000, 10_000, 100), (5_000, 10_000, 10_000));
        assert!((late.runtime_efficiency() - 0.9).abs() < 1e-9, "{}", late.runtime_efficiency());
        // A prepare slowed beside C1 is the machine's, shown by its check.
        let slowed = pair(25_100, 20_100, (15_000, 10_000, 100), (0, 20_000, 15_000));
        assert!((slowed.runtime_efficiency() - 1.0).abs() < 1e-9);
        assert!((slowed.prepare_slowdown() - 2.0).abs() < 1e-9);
    }
}
