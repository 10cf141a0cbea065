//! The device conformance suite (feature `conformance`): one generic check
//! of the `Chip` contract (`crate::chip` module doc), run by every device's
//! tests (`hw/tests/conformance_host.rs`, the sim chip, CUDA on a GPU).
//!
//! [`run_all`] runs every check below and stops at the first failure:
//! - [`check_bind_lane`]: `bind_lane(Run)` and `bind_lane(Register)` succeed
//!   (the concurrent check binds again on each of its own threads);
//! - [`check_catalogue`]: prepare, run (twice per artifact, several argument
//!   sets), release of each catalogue kernel at several sizes, every result
//!   equal to `kernels::reference` (`max_diff == 0`: these kernels are
//!   exact-float, each device must follow the reference's float order), plus
//!   two artifacts alive at once, run in the opposite order of preparation;
//! - [`check_invalid_spec`]: unknown kernels, wrong param counts, `n` out of
//!   range, oversized `prepare_bytes` -> `InvalidSpec`;
//! - [`check_invalid_args`]: wrong tensor count or length, wrong scalars ->
//!   `InvalidArgs`, and the artifact still runs correctly afterwards;
//! - [`check_cancel`]: a probe cancelled from the start, and probes that
//!   cancel at their k-th poll: each prepare either returns `Cancelled` or an
//!   artifact (which the suite releases, as the register lane does); any
//!   other error fails. The report says whether the device ever observed a
//!   cancel (`Report::cancel_observed`);
//! - [`check_concurrent`]: a run-lane thread and a register-lane thread, each
//!   bound first, call `run` and `prepare` at the same time many times. The
//!   register thread prepares artifacts and hands them to the run thread,
//!   which runs each (checked) between runs of a long-lived C1 (checked),
//!   and hands them back for release on the register thread. This is the
//!   pipeline of the seed, and it catches a device whose runs read state
//!   that a concurrent prepare changed.
//!
//! A panic inside the device is caught and reported as a failure (a device
//! must return errors, never panic on bad input).

// This module is test support, not the concurrent layer: it spawns its own
// scoped threads to drive a device the way the two lanes do.
#![allow(clippy::disallowed_methods)]

use crate::chip::{
    CallableSpec, CancelProbe, Chip, ChipError, ChipErrorKind, LaneKind, NeverCancel, RunConfig, RunOutput, TaskArgs,
};
use crate::kernels::{self, HEAVY_PREPARE, N_MAX, PREPARE_BYTES_MAX, REPEAT_VECTOR_ADD, VECTOR_ADD};
use core::cell::Cell;
use core::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;

/// What the suite exercised on a device that passed.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Report {
    /// The device's `Chip::name`.
    pub device: String,
    /// Prepares the suite called (successful or not).
    pub prepares: usize,
    /// Runs the suite called.
    pub runs: usize,
    /// Artifacts the suite released.
    pub releases: usize,
    /// At least one prepare returned `Cancelled` (a device that never polls
    /// its probe passes with `false`; the host device must report `true`).
    pub cancel_observed: bool,
    /// Prepares done by the concurrent check (`Config::concurrent_iterations`,
    /// at least 1).
    pub concurrent_iterations: usize,
}

/// The first check that failed, and why.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConformanceFailure {
    /// The check's name (`bind_lane`, `catalogue`, ...).
    pub check: &'static str,
    /// What the device did wrong.
    pub detail: String,
}

impl fmt::Display for ConformanceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conformance check `{}` failed: {}", self.check, self.detail)
    }
}

impl std::error::Error for ConformanceFailure {}

/// Knobs of the suite.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Config {
    /// Prepares (and C1 runs) done by the concurrent check.
    pub concurrent_iterations: usize,
    /// `prepare_bytes` of the `heavy_prepare` specs.
    pub heavy_prepare_bytes: u64,
    /// Repeat count of the long C1 in the concurrent check.
    pub c1_repeat: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config { concurrent_iterations: 200, heavy_prepare_bytes: 3 << 20, c1_repeat: 200 }
    }
}

/// Run every check with the default [`Config`].
pub fn run_all<C: Chip>(chip: &C) -> Result<Report, ConformanceFailure> {
    run_all_with(chip, &Config::default())
}

/// Run every check.
pub fn run_all_with<C: Chip>(chip: &C, config: &Config) -> Result<Report, ConformanceFailure> {
    let mut report = Report { device: chip.name().to_string(), ..Report::default() };
    check_bind_lane(chip)?;
    check_catalogue(chip, config, &mut report)?;
    check_invalid_spec(chip, &mut report)?;
    check_invalid_args(chip, config, &mut report)?;
    check_cancel(chip, config, &mut report)?;
    check_concurrent(chip, config, &mut report)?;
    Ok(report)
}

fn fail<T>(check: &'static str, detail: impl Into<String>) -> Result<T, ConformanceFailure> {
    Err(ConformanceFailure { check, detail: detail.into() })
}

/// Call into the device, turning a panic into a failure of `check`.
fn guarded<T>(check: &'static str, what: &str, f: impl FnOnce() -> T) -> Result<T, ConformanceFailure> {
    catch_unwind(AssertUnwindSafe(f)).or_else(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic".into());
        fail(check, format!("device panicked in {what}: {msg}"))
    })
}

fn prepare<C: Chip>(
    check: &'static str,
    chip: &C,
    spec: &CallableSpec,
    report: &mut Report,
) -> Result<C::Prepared, ConformanceFailure> {
    report.prepares += 1;
    match guarded(check, "prepare", || chip.prepare(spec, &NeverCancel))? {
        Ok(p) => Ok(p),
        Err(e) => fail(check, format!("prepare of valid spec {spec:?} failed: {e}")),
    }
}

fn release<C: Chip>(
    check: &'static str,
    chip: &C,
    p: C::Prepared,
    report: &mut Report,
) -> Result<(), ConformanceFailure> {
    report.releases += 1;
    guarded(check, "release", || chip.release(p))
}

/// Run `args` on `p` and compare with the reference.
fn run_checked<C: Chip>(
    check: &'static str,
    chip: &C,
    p: &C::Prepared,
    spec: &CallableSpec,
    args: &TaskArgs,
) -> Result<(), ConformanceFailure> {
    let want = match kernels::reference(spec, args) {
        Ok(w) => w,
        Err(e) => return fail(check, format!("suite bug: reference rejected {spec:?}: {e}")),
    };
    let got = match guarded(check, "run", || chip.run(p, args, &RunConfig::default()))? {
        Ok(o) => o,
        Err(e) => return fail(check, format!("run of {spec:?} failed: {e}")),
    };
    compare(check, spec, &got, &want)
}

fn compare(
    check: &'static str,
    spec: &CallableSpec,
    got: &RunOutput,
    want: &RunOutput,
) -> Result<(), ConformanceFailure> {
    let d = kernels::max_diff(got, want);
    if d == 0.0 {
        Ok(())
    } else {
        fail(check, format!("{spec:?}: max_diff {d} against the reference"))
    }
}

/// Deterministic arguments for a spec: tensors of mixed sign and magnitude
/// from a small LCG (`seed` varies them), and a repeat count for
/// `repeat_vector_add`.
pub fn args_for(spec: &CallableSpec, seed: u64, repeat: u64) -> TaskArgs {
    let n = spec.params.first().copied().unwrap_or(1) as usize;
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        // 24 random bits -> [-1, 1) scaled by a power of two in 2^-8..2^8.
        let m = ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
        let e = ((state >> 20) % 17) as i32 - 8;
        m * 2f32.powi(e)
    };
    let a = (0..n).map(|_| next()).collect();
    let b = (0..n).map(|_| next()).collect();
    let scalars = if spec.kernel == REPEAT_VECTOR_ADD { vec![repeat] } else { vec![] };
    TaskArgs { tensors: vec![a, b], scalars }
}

/// `bind_lane` succeeds for both lanes on the calling thread.
pub fn check_bind_lane<C: Chip>(chip: &C) -> Result<(), ConformanceFailure> {
    for lane in [LaneKind::Run, LaneKind::Register] {
        if let Err(e) = guarded("bind_lane", "bind_lane", || chip.bind_lane(lane))? {
            return fail("bind_lane", format!("bind_lane({lane:?}) failed: {e}"));
        }
    }
    Ok(())
}

fn catalogue_specs(config: &Config) -> Vec<CallableSpec> {
    vec![
        CallableSpec::chip(VECTOR_ADD, vec![1]),
        CallableSpec::chip(VECTOR_ADD, vec![7]),
        CallableSpec::chip(VECTOR_ADD, vec![N_MAX]),
        CallableSpec::chip(REPEAT_VECTOR_ADD, vec![1]),
        CallableSpec::chip(REPEAT_VECTOR_ADD, vec![33]),
        CallableSpec::chip(REPEAT_VECTOR_ADD, vec![N_MAX]),
        CallableSpec::chip(HEAVY_PREPARE, vec![5, 0]),
        CallableSpec::chip(HEAVY_PREPARE, vec![64, 4097]),
        CallableSpec::chip(HEAVY_PREPARE, vec![N_MAX, config.heavy_prepare_bytes]),
    ]
}

/// Every catalogue kernel prepares, runs exactly like the reference, and
/// releases.
pub fn check_catalogue<C: Chip>(chip: &C, config: &Config, report: &mut Report) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "catalogue";
    for spec in catalogue_specs(config) {
        let p = prepare(CHECK, chip, &spec, report)?;
        for (seed, repeat) in [(1, 0), (2, 1), (3, 3), (4, 100)] {
            run_checked(CHECK, chip, &p, &spec, &args_for(&spec, seed, repeat))?;
            report.runs += 1;
        }
        release(CHECK, chip, p, report)?;
    }
    // Two artifacts alive at once, run in the opposite order of preparation:
    // each run must use its own artifact, not the device's latest prepare.
    let s1 = CallableSpec::chip(REPEAT_VECTOR_ADD, vec![16]);
    let s2 = CallableSpec::chip(VECTOR_ADD, vec![16]);
    let p1 = prepare(CHECK, chip, &s1, report)?;
    let p2 = prepare(CHECK, chip, &s2, report)?;
    run_checked(CHECK, chip, &p1, &s1, &args_for(&s1, 9, 5))?;
    run_checked(CHECK, chip, &p2, &s2, &args_for(&s2, 10, 0))?;
    report.runs += 2;
    release(CHECK, chip, p1, report)?;
    run_checked(CHECK, chip, &p2, &s2, &args_for(&s2, 11, 0))?;
    report.runs += 1;
    release(CHECK, chip, p2, report)
}

/// Specs outside the catalogue are refused with `InvalidSpec`.
pub fn check_invalid_spec<C: Chip>(chip: &C, report: &mut Report) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "invalid_spec";
    let bad = [
        CallableSpec::chip("no_such_kernel", vec![4]),
        CallableSpec::chip("", vec![]),
        CallableSpec::chip(VECTOR_ADD, vec![]),
        CallableSpec::chip(VECTOR_ADD, vec![0]),
        CallableSpec::chip(VECTOR_ADD, vec![N_MAX + 1]),
        CallableSpec::chip(VECTOR_ADD, vec![u64::MAX]),
        CallableSpec::chip(VECTOR_ADD, vec![4, 4]),
        CallableSpec::chip(REPEAT_VECTOR_ADD, vec![0]),
        CallableSpec::chip(REPEAT_VECTOR_ADD, vec![4, 2]),
        CallableSpec::chip(HEAVY_PREPARE, vec![4]),
        CallableSpec::chip(HEAVY_PREPARE, vec![0, 16]),
        CallableSpec::chip(HEAVY_PREPARE, vec![4, PREPARE_BYTES_MAX + 1]),
        CallableSpec::chip(HEAVY_PREPARE, vec![4, u64::MAX]),
    ];
    for spec in bad {
        report.prepares += 1;
        match guarded(CHECK, "prepare", || chip.prepare(&spec, &NeverCancel))? {
            Err(ChipError { kind: ChipErrorKind::InvalidSpec, .. }) => {}
            Err(e) => return fail(CHECK, format!("{spec:?}: expected InvalidSpec, got {e}")),
            Ok(p) => {
                release(CHECK, chip, p, report)?;
                return fail(CHECK, format!("{spec:?}: prepared a spec outside the catalogue"));
            }
        }
    }
    Ok(())
}

/// Arguments that do not fit the prepared kernel are refused with
/// `InvalidArgs`, and leave the artifact usable.
pub fn check_invalid_args<C: Chip>(chip: &C, config: &Config, report: &mut Report) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "invalid_args";
    let n = 8usize;
    let v = |len: usize| vec![1.5f32; len];
    let specs = [
        CallableSpec::chip(VECTOR_ADD, vec![n as u64]),
        CallableSpec::chip(REPEAT_VECTOR_ADD, vec![n as u64]),
        CallableSpec::chip(HEAVY_PREPARE, vec![n as u64, config.heavy_prepare_bytes.min(1 << 16)]),
    ];
    for spec in specs {
        let p = prepare(CHECK, chip, &spec, report)?;
        let ok_scalars = if spec.kernel == REPEAT_VECTOR_ADD { vec![2] } else { vec![] };
        let mut bad = vec![
            TaskArgs { tensors: vec![], scalars: ok_scalars.clone() },
            TaskArgs { tensors: vec![v(n)], scalars: ok_scalars.clone() },
            TaskArgs { tensors: vec![v(n), v(n), v(n)], scalars: ok_scalars.clone() },
            TaskArgs { tensors: vec![v(n - 1), v(n)], scalars: ok_scalars.clone() },
            TaskArgs { tensors: vec![v(n), v(n + 1)], scalars: ok_scalars.clone() },
            TaskArgs { tensors: vec![v(0), v(0)], scalars: ok_scalars.clone() },
        ];
        if spec.kernel == REPEAT_VECTOR_ADD {
            bad.push(TaskArgs { tensors: vec![v(n), v(n)], scalars: vec![] });
            bad.push(TaskArgs { tensors: vec![v(n), v(n)], scalars: vec![1, 2] });
        } else {
            bad.push(TaskArgs { tensors: vec![v(n), v(n)], scalars: vec![1] });
        }
        for args in &bad {
            report.runs += 1;
            match guarded(CHECK, "run", || chip.run(&p, args, &RunConfig::default()))? {
                Err(ChipError { kind: ChipErrorKind::InvalidArgs, .. }) => {}
                Err(e) => {
                    release(CHECK, chip, p, report)?;
                    return fail(CHECK, format!("{spec:?} with {args:?}: expected InvalidArgs, got {e}"));
                }
                Ok(_) => {
                    release(CHECK, chip, p, report)?;
                    return fail(CHECK, format!("{spec:?} ran with unfit args {args:?}"));
                }
            }
        }
        run_checked(CHECK, chip, &p, &spec, &args_for(&spec, 77, 3))?;
        report.runs += 1;
        release(CHECK, chip, p, report)?;
    }
    Ok(())
}

/// A probe that reports cancelled from its `after`-th poll on (0: always).
#[derive(Debug)]
pub struct CancelAfter {
    after: u32,
    polls: Cell<u32>,
}

impl CancelAfter {
    /// A probe that answers `false` to its first `after` polls and `true`
    /// from then on.
    pub fn new(after: u32) -> Self {
        CancelAfter { after, polls: Cell::new(0) }
    }

    /// How often the device polled this probe.
    pub fn polls(&self) -> u32 {
        self.polls.get()
    }
}

impl CancelProbe for CancelAfter {
    fn is_cancelled(&self) -> bool {
        let k = self.polls.get();
        self.polls.set(k.saturating_add(1));
        k >= self.after
    }
}

/// Cancellation is honoured or harmless: each prepare under a cancelling
/// probe returns `Cancelled` or an artifact (then released), and the device
/// prepares and runs normally afterwards.
pub fn check_cancel<C: Chip>(chip: &C, config: &Config, report: &mut Report) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "cancel";
    let specs = [
        CallableSpec::chip(VECTOR_ADD, vec![32]),
        CallableSpec::chip(REPEAT_VECTOR_ADD, vec![32]),
        CallableSpec::chip(HEAVY_PREPARE, vec![32, config.heavy_prepare_bytes]),
    ];
    for spec in &specs {
        for after in 0..12 {
            let probe = CancelAfter::new(after);
            report.prepares += 1;
            match guarded(CHECK, "prepare", || chip.prepare(spec, &probe))? {
                Err(ChipError { kind: ChipErrorKind::Cancelled, .. }) => {
                    report.cancel_observed = true;
                    if probe.polls() <= after {
                        return fail(
                            CHECK,
                            format!(
                                "{spec:?}: Cancelled after {} polls, but the probe said cancelled only from poll {}",
                                probe.polls(),
                                after + 1
                            ),
                        );
                    }
                }
                Err(e) => {
                    return fail(CHECK, format!("{spec:?}, cancel at poll {after}: expected Cancelled or Ok, got {e}"))
                }
                // Cancel came after the device's last safe point: the
                // register lane releases such an artifact unpublished.
                Ok(p) => release(CHECK, chip, p, report)?,
            }
        }
        let p = prepare(CHECK, chip, spec, report)?;
        run_checked(CHECK, chip, &p, spec, &args_for(spec, 5, 4))?;
        report.runs += 1;
        release(CHECK, chip, p, report)?;
    }
    Ok(())
}

/// Messages from the register thread to the run thread.
type Prepared<C> = (CallableSpec, u64, <C as Chip>::Prepared);

/// `prepare` on one thread while `run` goes on on another, many times; see
/// the module doc.
pub fn check_concurrent<C: Chip>(chip: &C, config: &Config, report: &mut Report) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "concurrent";
    let iterations = config.concurrent_iterations.max(1);
    let c1_spec = CallableSpec::chip(REPEAT_VECTOR_ADD, vec![256]);
    let c1 = prepare(CHECK, chip, &c1_spec, report)?;
    let specs = [
        CallableSpec::chip(VECTOR_ADD, vec![256]),
        CallableSpec::chip(HEAVY_PREPARE, vec![64, config.heavy_prepare_bytes.min(1 << 18)]),
        CallableSpec::chip(REPEAT_VECTOR_ADD, vec![100]),
        CallableSpec::chip(VECTOR_ADD, vec![3]),
    ];
    let (to_run, from_register) = mpsc::channel::<Prepared<C>>();
    let (to_register, from_run) = mpsc::channel::<C::Prepared>();
    let c1_ref = &c1;
    let (run_result, register_result) = std::thread::scope(|s| {
        let run_lane = s.spawn(move || -> Result<(usize, usize), ConformanceFailure> {
            check_bind_lane_one(chip, LaneKind::Run)?;
            let (mut runs, mut received) = (0usize, 0usize);
            let mut seed = 1000u64;
            let mut step = |item: Option<Prepared<C>>, runs: &mut usize| -> Result<(), ConformanceFailure> {
                seed += 1;
                run_checked(CHECK, chip, c1_ref, &c1_spec, &args_for(&c1_spec, seed, config.c1_repeat))?;
                *runs += 1;
                if let Some((spec, seed, p)) = item {
                    let r = run_checked(CHECK, chip, &p, &spec, &args_for(&spec, seed, 1 + seed % 7));
                    // Hand it back for release whatever the result; if the
                    // register thread is gone, dropping it is all we can do.
                    let _ = to_register.send(p);
                    r?;
                    *runs += 1;
                }
                Ok(())
            };
            for _ in 0..iterations {
                let item = from_register.try_recv().ok();
                received += usize::from(item.is_some());
                step(item, &mut runs)?;
            }
            // Drain what is still coming; stops when the register thread
            // has sent everything (or failed and hung up).
            while let Ok(item) = from_register.recv() {
                received += 1;
                step(Some(item), &mut runs)?;
            }
            Ok((runs, received))
        });
        let register_lane = s.spawn(move || -> Result<(usize, usize), ConformanceFailure> {
            check_bind_lane_one(chip, LaneKind::Register)?;
            let (mut prepared, mut released) = (0usize, 0usize);
            let release_ready = |released: &mut usize| -> Result<(), ConformanceFailure> {
                while let Ok(p) = from_run.try_recv() {
                    guarded(CHECK, "release", || chip.release(p))?;
                    *released += 1;
                }
                Ok(())
            };
            for i in 0..iterations {
                let spec = &specs[i % specs.len()];
                let p = match guarded(CHECK, "prepare", || chip.prepare(spec, &NeverCancel))? {
                    Ok(p) => p,
                    Err(e) => return fail(CHECK, format!("concurrent prepare of {spec:?} failed: {e}")),
                };
                prepared += 1;
                if to_run.send((spec.clone(), i as u64, p)).is_err() {
                    return fail(CHECK, "run thread stopped early");
                }
                release_ready(&mut released)?;
            }
            drop(to_run);
            while released < prepared {
                match from_run.recv() {
                    Ok(p) => {
                        guarded(CHECK, "release", || chip.release(p))?;
                        released += 1;
                    }
                    // The run thread failed; its result says why.
                    Err(_) => break,
                }
            }
            Ok((prepared, released))
        });
        let join = |h: std::thread::ScopedJoinHandle<'_, Result<(usize, usize), ConformanceFailure>>| {
            h.join().unwrap_or_else(|_| fail(CHECK, "a lane thread panicked outside the device calls"))
        };
        (join(run_lane), join(register_lane))
    });
    release(CHECK, chip, c1, report)?;
    let (runs, received) = run_result?;
    let (prepared, released) = register_result?;
    if received != prepared || released != prepared {
        return fail(CHECK, format!("prepared {prepared}, run {received}, released {released}"));
    }
    report.runs += runs;
    report.prepares += prepared;
    report.releases += released;
    report.concurrent_iterations = iterations;
    Ok(())
}

fn check_bind_lane_one<C: Chip>(chip: &C, lane: LaneKind) -> Result<(), ConformanceFailure> {
    match guarded("concurrent", "bind_lane", || chip.bind_lane(lane))? {
        Ok(()) => Ok(()),
        Err(e) => fail("concurrent", format!("bind_lane({lane:?}) on its lane thread failed: {e}")),
    }
}
