//! The conformance suite against the host device, and proof that the suite
//! can fail: deliberately broken chips (built on the host device) must make
//! it report a failure.

use chiplane_core::chip::{CallableSpec, CancelProbe, Chip, ChipError, LaneKind, RunConfig, RunOutput, TaskArgs};
use chiplane_core::conformance::{self, Config, Report};
use chiplane_core::kernels::Kernel;
use chiplane_hw::devices::host::{HostArtifact, HostChip};
use std::sync::Mutex;

#[test]
fn host_device_passes_the_conformance_suite() {
    let chip = HostChip::new().expect("kernel library built by hw/build.rs");
    let report = conformance::run_all(&chip).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.device, "host");
    assert!(report.cancel_observed, "the host device polls its cancel probe");
    assert_eq!(report.concurrent_iterations, Config::default().concurrent_iterations);
    assert!(report.runs > 2 * report.concurrent_iterations, "{report:?}");
    assert_eq!(chip.live_artifacts(), 0, "every artifact the suite got was released: {report:?}");
}

/// What each broken chip gets wrong.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Flaw {
    /// Returns a + b + 1.
    OffByOne,
    /// Indexes the args without checking them (panics on bad args).
    PanicsOnBadArgs,
    /// Answers `InvalidSpec` for bad args (wrong error kind).
    WrongErrorKind,
    /// Runs "the kernel of the latest prepare" (a chip-wide record that
    /// prepare writes and run reads, like the seed's unlocked runner maps)
    /// instead of the artifact's own kernel.
    LatestPrepareWins,
    /// Ignores the cancel probe but says `Cancelled` anyway when it is not.
    SpuriousCancel,
    /// `bind_lane(Register)` fails.
    BindFails,
}

struct Broken {
    inner: HostChip,
    flaw: Flaw,
    latest: Mutex<Option<Kernel>>,
}

impl Broken {
    fn new(flaw: Flaw) -> Self {
        Broken { inner: HostChip::new().unwrap(), flaw, latest: Mutex::new(None) }
    }
}

struct NoProbe;
impl CancelProbe for NoProbe {
    fn is_cancelled(&self) -> bool {
        false
    }
}

impl Chip for Broken {
    type Prepared = HostArtifact;

    fn name(&self) -> &str {
        "broken"
    }

    fn bind_lane(&self, lane: LaneKind) -> Result<(), ChipError> {
        if self.flaw == Flaw::BindFails && lane == LaneKind::Register {
            return Err(ChipError::new(chiplane_core::ChipErrorKind::Device, "no context"));
        }
        self.inner.bind_lane(lane)
    }

    fn prepare(&self, spec: &CallableSpec, cancel: &dyn CancelProbe) -> Result<HostArtifact, ChipError> {
        if self.flaw == Flaw::SpuriousCancel && spec.params.first() == Some(&32) {
            return Err(ChipError::new(chiplane_core::ChipErrorKind::Cancelled, "cancelled without asking"));
        }
        let p = self.inner.prepare(spec, cancel)?;
        *self.latest.lock().unwrap() = Some(p.kernel());
        Ok(p)
    }

    fn run(&self, prepared: &HostArtifact, args: &TaskArgs, config: &RunConfig) -> Result<RunOutput, ChipError> {
        match self.flaw {
            Flaw::OffByOne => {
                let mut out = self.inner.run(prepared, args, config)?;
                out.tensors[0].iter_mut().for_each(|x| *x += 1.0);
                Ok(out)
            }
            Flaw::PanicsOnBadArgs => {
                let (a, b) = (&args.tensors[0], &args.tensors[1]);
                let n = prepared.kernel().n();
                let repeat = if let Kernel::RepeatVectorAdd { .. } = prepared.kernel() { args.scalars[0] } else { 1 };
                let mut c: Vec<f32> = (0..n).map(|i| a[i]).collect();
                for _ in 0..repeat {
                    for i in 0..n {
                        c[i] += b[i];
                    }
                }
                Ok(RunOutput { tensors: vec![c] })
            }
            Flaw::WrongErrorKind => self.inner.run(prepared, args, config).map_err(|mut e| {
                e.kind = chiplane_core::ChipErrorKind::InvalidSpec;
                e
            }),
            Flaw::LatestPrepareWins => {
                let latest = self.latest.lock().unwrap().expect("something was prepared");
                // Re-prepare "the current kernel" of the chip and run that.
                let spec = match latest {
                    Kernel::VectorAdd { .. } | Kernel::HeavyPrepare { .. } => {
                        CallableSpec::chip("vector_add", vec![prepared.kernel().n() as u64])
                    }
                    Kernel::RepeatVectorAdd { .. } => {
                        CallableSpec::chip("repeat_vector_add", vec![prepared.kernel().n() as u64])
                    }
                };
                let current = self.inner.prepare(&spec, &NoProbe)?;
                let mut args = args.clone();
                match (prepared.kernel(), latest) {
                    (Kernel::RepeatVectorAdd { .. }, Kernel::RepeatVectorAdd { .. }) => {}
                    (Kernel::RepeatVectorAdd { .. }, _) => args.scalars.clear(),
                    (_, Kernel::RepeatVectorAdd { .. }) => args.scalars = vec![1],
                    _ => {}
                }
                let out = self.inner.run(&current, &args, config);
                self.inner.release(current);
                out
            }
            Flaw::SpuriousCancel | Flaw::BindFails => self.inner.run(prepared, args, config),
        }
    }

    fn release(&self, prepared: HostArtifact) {
        self.inner.release(prepared)
    }
}

fn small() -> Config {
    Config { concurrent_iterations: 40, ..Config::default() }
}

fn expect_failure(flaw: Flaw, check: &str) {
    let chip = Broken::new(flaw);
    let failure = match conformance::run_all_with(&chip, &small()) {
        Ok(r) => panic!("{flaw:?} passed the suite: {r:?}"),
        Err(f) => f,
    };
    assert_eq!(failure.check, check, "{flaw:?}: {failure}");
}

#[test]
fn suite_fails_a_chip_that_computes_a_plus_b_plus_one() {
    expect_failure(Flaw::OffByOne, "catalogue");
}

#[test]
fn suite_fails_a_chip_that_panics_on_bad_args() {
    expect_failure(Flaw::PanicsOnBadArgs, "invalid_args");
}

#[test]
fn suite_fails_a_chip_with_the_wrong_error_kind() {
    expect_failure(Flaw::WrongErrorKind, "invalid_args");
}

#[test]
fn suite_fails_a_chip_whose_runs_follow_the_latest_prepare() {
    // Caught by the sequential interleaving in the catalogue check...
    expect_failure(Flaw::LatestPrepareWins, "catalogue");
    // ...and by the concurrent check on its own.
    let chip = Broken::new(Flaw::LatestPrepareWins);
    let mut report = Report::default();
    let f = conformance::check_concurrent(&chip, &small(), &mut report).unwrap_err();
    assert_eq!(f.check, "concurrent", "{f}");
}

#[test]
fn suite_fails_a_chip_that_cancels_unasked() {
    expect_failure(Flaw::SpuriousCancel, "cancel");
}

#[test]
fn suite_fails_a_chip_whose_register_lane_cannot_bind() {
    expect_failure(Flaw::BindFails, "bind_lane");
}
