//! The mutant table: for each mutant of docs/protocol.md section 8 (core/build.rs
//! lists them), which checkers must kill it, which cannot see it and why
//! (run by `cargo run -p chiplane-models --release --bin mutants`; see
//! docs/verification.md).
//!
//! Every mutant has one [`MutantRow`]: a cell per checker [`Kind`] (loom,
//! shuttle, the exhaustive check, the sim, the fuzz targets, miri, the std
//! suite), each either the checkers of that kind that should kill it
//! ([`Cell::Kill`], tried in order until one does) or [`Cell::CannotSee`]
//! with the reason; plus the one checker the quick stage uses (the fastest
//! measured kill) and whether the mutant is *interleaving-only* (the std
//! suite, proptests included, passes with it compiled in; only a checker of
//! schedules sees it).
//!
//! A kill is never assumed: the runner first runs every checker it will use
//! without a mutant (each must pass), and a checker that times out or fails
//! to build does not count as a kill.

use std::path::PathBuf;

/// A checker kind: one column of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Loom,
    Shuttle,
    Exhaustive,
    Sim,
    Fuzz,
    Miri,
    Std,
}

impl Kind {
    /// The columns, in the matrix's order.
    pub const ALL: [Kind; 7] =
        [Kind::Loom, Kind::Shuttle, Kind::Exhaustive, Kind::Sim, Kind::Fuzz, Kind::Miri, Kind::Std];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Loom => "loom",
            Kind::Shuttle => "shuttle",
            Kind::Exhaustive => "exhaustive",
            Kind::Sim => "sim",
            Kind::Fuzz => "fuzz",
            Kind::Miri => "miri",
            Kind::Std => "std suite",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s || (s == "std" && *k == Kind::Std))
    }
}

/// How a checker's exit status reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A failing run (non-zero exit) is a kill: a test suite, a model.
    FailureKills,
    /// Exit 0 is a kill, 1 is a survival, anything else an error:
    /// `fuzz/kill-mutant.sh`.
    KillScript,
}

/// One checker: how to build it and how to run it.
#[derive(Clone, Debug)]
pub struct Checker {
    pub kind: Kind,
    /// What it runs, for the matrix (`s14_doorbell`, `seeds 0..60000`).
    pub label: String,
    pub program: &'static str,
    /// Arguments of the timed run.
    pub args: Vec<String>,
    /// Arguments of the untimed build step (empty: no build step).
    pub build_args: Vec<String>,
    /// Environment of both steps (the runner adds `CHIPLANE_MUTANT`).
    pub env: Vec<(&'static str, String)>,
    /// Environment under `--quick` (overrides `env`).
    pub quick_env: Vec<(&'static str, String)>,
    /// Seconds before the run is stopped (a hang is not a kill).
    pub timeout_s: u64,
    pub verdict: Verdict,
}

/// Where the runner's builds go: `$CHIPLANE_MUTANTS_TARGET`, else
/// `$CARGO_TARGET_DIR/mutants`, else `target/mutants` of the workspace.
/// The std suite builds in it directly, every other backend in its own
/// directory below it (`loom`, `shuttle`, `release`, `fuzz`, `miri`), so a
/// mutant switch rebuilds only core and its dependents there. The suite
/// (`scripts/test-all`) sets it to the workspace's `target` and exports the
/// same profile settings as [`profile_env`], so the mutant stage reuses
/// the builds of the std, loom, shuttle and miri stages.
pub fn target_base() -> PathBuf {
    if let Some(d) = std::env::var_os("CHIPLANE_MUTANTS_TARGET").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        let d = PathBuf::from(d);
        return if d.is_absolute() { d.join("mutants") } else { workspace().join(d).join("mutants") };
    }
    workspace().join("target").join("mutants")
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn target(sub: &str) -> String {
    target_base().join(sub).display().to_string()
}

/// The build profile of every mutant build: incremental, no debug info.
/// Switching mutants changes core's cfg, which rebuilds core and, through
/// the incremental cache, only what changed in its dependents: about 4 s a
/// mutant for the loom test binary instead of about 36 s.
fn profile_env() -> Vec<(&'static str, String)> {
    vec![
        ("CARGO_PROFILE_RELEASE_DEBUG", "0".into()),
        ("CARGO_PROFILE_RELEASE_INCREMENTAL", "true".into()),
        ("CARGO_PROFILE_DEV_DEBUG", "0".into()),
        ("CARGO_PROFILE_TEST_DEBUG", "0".into()),
    ]
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Checker {
    fn cargo(kind: Kind, label: String, args: &[&str], build_args: &[&str], dir: &str) -> Self {
        let mut env = profile_env();
        env.push(("CARGO_TARGET_DIR", target(dir)));
        Checker {
            kind,
            label,
            program: "cargo",
            args: strings(args),
            build_args: strings(build_args),
            env,
            quick_env: Vec::new(),
            timeout_s: 600,
            verdict: Verdict::FailureKills,
        }
    }

    fn model_test(kind: Kind, cfg: &str, file: &str, test: &str) -> Self {
        let base = ["test", "-p", "chiplane-models", "--release", "--test", file];
        let mut args = base.to_vec();
        args.extend(["--", "--exact", test]);
        let mut build = base.to_vec();
        build.push("--no-run");
        let mut c = Self::cargo(kind, test.to_string(), &args, &build, file);
        c.env.push(("RUSTFLAGS", format!("--cfg {cfg}")));
        c
    }

    /// A scenario of `tests/loom.rs` (`LOOM_MAX_PREEMPTIONS=2`, as in CI;
    /// the per-scenario bounds are in that file).
    pub fn loom(test: &str) -> Self {
        let mut c = Self::model_test(Kind::Loom, "chiplane_loom", "loom", test);
        c.env.push(("LOOM_MAX_PREEMPTIONS", "2".into()));
        c
    }

    /// A scenario of `tests/shuttle.rs`: 10,000 schedules per scheduler
    /// (1,000 under `--quick`).
    pub fn shuttle(test: &str) -> Self {
        let mut c = Self::model_test(Kind::Shuttle, "chiplane_shuttle", "shuttle", test);
        c.env.push(("CHIPLANE_SHUTTLE_ITERS", "10000".into()));
        c.quick_env.push(("CHIPLANE_SHUTTLE_ITERS", "1000".into()));
        c
    }

    /// One configuration of the exhaustive check's quick set
    /// (`--bin exhaustive -- --quick --only CONFIG`).
    pub fn exhaustive(config: &str) -> Self {
        let args = [
            "run",
            "-q",
            "--release",
            "-p",
            "chiplane-models",
            "--bin",
            "exhaustive",
            "--",
            "--quick",
            "--only",
            config,
        ];
        Self::cargo(
            Kind::Exhaustive,
            config.to_string(),
            &args,
            &["build", "--release", "-p", "chiplane-models", "--bin", "exhaustive"],
            "release",
        )
    }

    /// A sim campaign over [`SIM_SEEDS`] that stops at the first failing
    /// seed and prints `first-failure seed=N`.
    pub fn sim() -> Self {
        let args = [
            "run",
            "-q",
            "--release",
            "-p",
            "chiplane-sim",
            "--",
            "campaign",
            "--seeds",
            SIM_SEEDS,
            "--stop-on-failure",
            "--no-progress",
        ];
        Self::cargo(
            Kind::Sim,
            format!("seeds {SIM_SEEDS}"),
            &args,
            &["build", "--release", "-p", "chiplane-sim"],
            "release",
        )
    }

    /// A libFuzzer campaign of `target` from its committed seeds, at most
    /// [`FUZZ_SECS`] (`fuzz/kill-mutant.sh NAME TARGET SECS`, which builds
    /// it with the mutant and exits 0 on a kill, 1 on a survival).
    pub fn fuzz(target_name: &str) -> Self {
        let script = format!("fuzz/kill-mutant.sh \"$CHIPLANE_MUTANT\" {target_name} {FUZZ_SECS}");
        let mut c = Self::cargo(Kind::Fuzz, target_name.to_string(), &[], &[], "fuzz");
        c.program = "bash";
        c.args = vec!["-c".into(), script];
        c.verdict = Verdict::KillScript;
        c
    }

    /// The std suite: `cargo test --workspace` (unit, property,
    /// conformance, sim, fuzz-replay tests and the scenarios on std
    /// threads), stopping at the first failing test binary.
    pub fn std_suite() -> Self {
        Self::cargo(
            Kind::Std,
            "cargo test --workspace".into(),
            &["test", "--workspace"],
            &["test", "--workspace", "--no-run"],
            "",
        )
    }

    /// One test of the std suite on its own (`cargo test -p PKG --test
    /// FILE NAME`): the quick stage's kill where a test is faster than a
    /// model (same build directory as [`Checker::std_suite`]).
    pub fn std_test(pkg: &str, file: &str, name: &str) -> Self {
        Self::cargo(
            Kind::Std,
            format!("{pkg} --test {file} {name}"),
            &["test", "-p", pkg, "--test", file, "--", name],
            &["test", "-p", pkg, "--test", file, "--no-run"],
            "",
        )
    }

    /// The miri stage of `scripts/test-all` (`cargo +nightly miri test -p
    /// chiplane-core --test miri`, weak memory emulation and data race
    /// detection on core's region, ring, word, cell and doorbell code).
    /// Runs where the nightly toolchain has Miri ([`miri_available`]);
    /// elsewhere the miri column reads `no miri here`.
    pub fn miri() -> Self {
        let mut c = Self::cargo(
            Kind::Miri,
            "core --test miri".into(),
            &["+nightly", "miri", "test", "-p", "chiplane-core", "--test", "miri"],
            &[],
            "miri",
        );
        c.env.push(("MIRIFLAGS", "-Zmiri-strict-provenance -Zmiri-many-seeds=0..32".into()));
        c.timeout_s = 1200;
        c
    }

    /// A stable identity (for the baseline's de-duplication).
    pub fn key(&self) -> String {
        format!("{} {:?} {:?}", self.program, self.args, self.env)
    }
}

/// Can the miri checker run here (`cargo +nightly miri` installed)?
pub fn miri_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::process::Command::new("cargo")
            .args(["+nightly", "miri", "--version"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// The sim campaign's seeds: `restore_by_store` first fails at seed 52,614,
/// every other mutant the sim sees within the first few hundred.
pub const SIM_SEEDS: &str = "0..60000";

/// Seconds of each fuzz campaign (kills come while the seeds load, or in
/// under 10 s: fuzz/README.md).
pub const FUZZ_SECS: u32 = 30;

/// One cell of the matrix.
#[derive(Clone, Debug)]
pub enum Cell {
    /// Checkers of this kind that must kill the mutant, tried in order
    /// until one does.
    Kill(Vec<Checker>),
    /// This kind cannot see the mutant, and why.
    CannotSee(Reason),
}

/// One mutant.
#[derive(Clone, Debug)]
pub struct MutantRow {
    pub name: &'static str,
    /// Where core plants it.
    pub site: &'static str,
    /// The std suite (proptests included) passes with it; only a checker
    /// of schedules kills it (`mutants --interleaving` shows both).
    pub interleaving_only: bool,
    /// How many times `--interleaving` runs the std suite (more than once
    /// where a std test could see it by chance).
    pub std_runs: u32,
    /// Why one checker kind is enough (`None`: two must kill it).
    pub single: Option<&'static str>,
    /// One cell per [`Kind::ALL`], in that order.
    pub cells: Vec<Cell>,
    /// The quick stage's kill (the fastest measured).
    pub quick: Checker,
}

impl MutantRow {
    pub fn cell(&self, kind: Kind) -> &Cell {
        &self.cells[Kind::ALL.iter().position(|k| *k == kind).expect("a kind")]
    }
}

// Reasons a kind cannot see a mutant.
/// Why a kind cannot see a mutant: a short name for the matrix's cell and
/// the reason in full for its legend.
pub type Reason = (&'static str, &'static str);

const SC: Reason = ("SC atomics", "shuttle runs every atomic access sequentially consistent: a missing Release or fence changes nothing it can schedule");
const SEQ_MEM: Reason =
    ("sequential memory", "it steps the protocol over plain words and bytes, one access at a time: no weak memory");
const CONC: Reason = ("concurrent layer", "the site is in core's concurrent layer (threads, condvars, lanes, handles), which it does not run: it drives the pure machines");
const NO_LANE_WORK: Reason = ("no lane work under loom", "it needs a run or prepare that finishes during an exchange: loom cannot finish an L3 shape whose lanes work (tests/loom.rs), shuttle runs those");
const MIRI_SCOPE: Reason =
    ("not in miri's tests", "miri's tests exercise core's region, ring, word, cell and doorbell code, not this site");
const NO_RESTART: Reason = (
    "no restart",
    "no scenario presents a handle of another worker or incarnation (each runs one child with a fixed worker id)",
);
const INTERLEAVING: Reason =
    ("interleaving-only", "the std suite passes with it compiled in (mutants --interleaving shows it)");
const NO_TARGET: Reason = ("no target", "no fuzz target drives the concurrent layer");
const NOT_SYS: Reason = ("one worker", "its system has one worker and one incarnation: no foreign handle to present");
const FIVE_THREADS: Reason = ("driver beside the lanes", "the hand-over needs the parent's driver thread beside the child and its two lanes: loom did not finish that shape in 7 minutes at preemption bound 1 (shuttle runs it)");
const HANGS: Reason = ("hangs, no verdict", "the std suite hangs with it compiled in (a waiter, a lane or a doorbell sleeper that misses its wake-up sleeps for good or until a timeout: lost_wakeup in core's unit tests, lost_lane_wake in hw's conformance_l3, missed_doorbell in models' l3_restarts, each until the runner's 600 s timeout); a hang is not counted as a kill, so this column claims nothing, and the mutant is not interleaving-only");
const SEVEN_THREADS: Reason = ("whole L3 worker", "the hand-off needs core's whole L3 worker (orchestrator, driver, a child with its two lanes) and a second submitter: seven threads, over loom's limit of five (shuttle runs it)");
const HEARTBEAT: Reason = ("heartbeat-bounded sleep", "the serve loop's sleep is bounded by its heartbeat (50 ms): a restore that wakes nobody only delays TASK_DONE, and no std test times it; only the models, whose sleeps are untimed, deadlock on it");
const BOUNDED_WAIT: Reason = ("bounded waits", "production's sleeps in wait_until are bounded (liveness_poll, 10 ms): a caller nobody rings wakes then and finds its handle; no std test times a wait; only the models, whose sleeps are untimed, deadlock on it");
const BOUNDED: Reason = ("bounded sleeps", "production's driver sleeps are bounded (liveness_poll, 10 ms, or idle_poll, 100 ms): a lost hand-over only delays the driver, and no std test times a hand-over; only the models, whose sleeps are untimed, deadlock on it");

/// Every reason, for the legend.
pub const REASONS: &[Reason] = &[
    SC,
    SEQ_MEM,
    CONC,
    NO_LANE_WORK,
    MIRI_SCOPE,
    NO_RESTART,
    INTERLEAVING,
    NO_TARGET,
    NOT_SYS,
    FIVE_THREADS,
    HANGS,
    BOUNDED,
    BOUNDED_WAIT,
    HEARTBEAT,
    SEVEN_THREADS,
];

/// The table. Every mutant of core/build.rs appears exactly once, its
/// cells in [`Kind::ALL`] order.
pub fn table() -> Vec<MutantRow> {
    use Cell::{CannotSee as No, Kill};
    let loom = |ts: &[&str]| Kill(ts.iter().map(|t| Checker::loom(t)).collect());
    let shuttle = |ts: &[&str]| Kill(ts.iter().map(|t| Checker::shuttle(t)).collect());
    let exh = |cs: &[&str]| Kill(cs.iter().map(|c| Checker::exhaustive(c)).collect());
    let fuzz = |t: &str| Kill(vec![Checker::fuzz(t)]);
    let sim = || Kill(vec![Checker::sim()]);
    let std = || Kill(vec![Checker::std_suite()]);
    let miri = || Kill(vec![Checker::miri()]);
    let row = |name, site, cells: Vec<Cell>, quick| MutantRow {
        name,
        site,
        interleaving_only: false,
        std_runs: 1,
        single: None,
        cells,
        quick,
    };
    let il = |mut r: MutantRow, std_runs: u32| {
        r.interleaving_only = true;
        r.std_runs = std_runs;
        r
    };
    let single = |mut r: MutantRow, why| {
        r.single = Some(why);
        r
    };
    vec![
        // --- the pure machines (slot table, mailbox endpoints, word table) ---
        row(
            "done_during_control",
            "core/src/mailbox/word.rs (transition_to_task_done)",
            vec![
                No(NO_LANE_WORK),
                shuttle(&["s2_done_during_control"]),
                exh(&["ops4"]),
                sim(),
                fuzz("mailbox_protocol"),
                No(MIRI_SCOPE),
                std(),
            ],
            Checker::shuttle("s2_done_during_control"),
        ),
        row(
            "running_before_copy",
            "core/src/mailbox/child.rs (TASK_RUNNING before the copy)",
            vec![
                loom(&["l3_refused_task"]),
                shuttle(&["s1_staged", "s1_pipeline"]),
                exh(&["ops4"]),
                sim(),
                fuzz("mailbox_protocol"),
                No(MIRI_SCOPE),
                std(),
            ],
            Checker::loom("l3_refused_task"),
        ),
        row(
            "free_while_pinned",
            "core/src/slot.rs (final unregister of a pinned PREPARED slot)",
            vec![
                loom(&["s3_unregister_in_flight"]),
                shuttle(&["s3_unregister_in_flight"]),
                exh(&["ops4"]),
                sim(),
                fuzz("slot_table"),
                No(MIRI_SCOPE),
                std(),
            ],
            Checker::loom("s3_unregister_in_flight"),
        ),
        row(
            "no_generation_check",
            "core/src/slot.rs (the one handle check)",
            vec![
                loom(&["s6_reregister"]),
                shuttle(&["s6_reregister", "s6_late_completion_l3"]),
                exh(&["ops4"]),
                sim(),
                fuzz("slot_table"),
                No(MIRI_SCOPE),
                std(),
            ],
            Checker::loom("s6_reregister"),
        ),
        row(
            "prepared_after_cancel",
            "core/src/slot.rs (prepare result in CANCELLING)",
            vec![
                loom(&["s4_unregister_while_preparing"]),
                shuttle(&["s4_unregister_while_preparing"]),
                exh(&["ops4"]),
                sim(),
                fuzz("slot_table"),
                No(MIRI_SCOPE),
                std(),
            ],
            Checker::loom("s4_unregister_while_preparing"),
        ),
        row(
            "memory_control_while_running",
            "core/src/mailbox/parent.rs (allowed_during_task)",
            vec![
                No(NO_LANE_WORK),
                shuttle(&["s8_memory_waits_for_idle"]),
                exh(&["ops4"]),
                sim(),
                fuzz("mailbox_protocol"),
                No(MIRI_SCOPE),
                std(),
            ],
            Checker::shuttle("s8_memory_waits_for_idle"),
        ),
        row(
            "shared_result_field",
            "core/src/mailbox/mod.rs (field_for, read)",
            vec![
                No(NO_LANE_WORK),
                shuttle(&["s2_done_during_control"]),
                exh(&["ops4"]),
                sim(),
                fuzz("mailbox_protocol"),
                No(MIRI_SCOPE),
                std(),
            ],
            Checker::shuttle("s2_done_during_control"),
        ),
        row(
            "blocking_control_wait",
            "core/src/mailbox/child.rs (control answer waits for the settlement)",
            vec![
                No(NO_LANE_WORK),
                shuttle(&["s1_pipeline"]),
                exh(&["ops4+busy-chip"]),
                sim(),
                fuzz("mailbox_protocol"),
                No(MIRI_SCOPE),
                std(),
            ],
            Checker::shuttle("s1_pipeline"),
        ),
        row(
            "stale_incarnation",
            "core/src/ids.rs (Handle::check_worker)",
            vec![
                No(NO_RESTART),
                No(NO_RESTART),
                No(NOT_SYS),
                sim(),
                No(NOT_SYS),
                No(MIRI_SCOPE),
                std(),
            ],
            Checker::std_test("chiplane-hw", "l3_worker", "handles_never_cross"),
        ),
        // --- the concurrent layer (core/src/conc) ---
        row(
            "sync_bypasses_queue",
            "core/src/conc/worker.rs (sync run calls the chip directly)",
            vec![
                loom(&["s5_sync_after_async"]),
                shuttle(&["s5_sync_after_async"]),
                No(CONC),
                No(CONC),
                No(NO_TARGET),
                No(MIRI_SCOPE),
                std(),
            ],
            Checker::loom("s5_sync_after_async"),
        ),
        // Not interleaving-only: the std suite hangs with it (core's unit
        // tests, twice); a hang is not a kill.
        row(
            "lost_wakeup",
            "core/src/conc/cell.rs (notify before the value is published)",
            vec![
                loom(&["s10_cell_wait_notify"]),
                shuttle(&["s10_cell_wait_notify"]),
                No(CONC),
                No(CONC),
                No(NO_TARGET),
                miri(),
                No(HANGS),
            ],
            Checker::loom("s10_cell_wait_notify"),
        ),
        // Not interleaving-only: the std suite hangs with it (hw's
        // conformance_l3: a run lane asleep with a run queued).
        row(
            "lost_lane_wake",
            "core/src/conc/node.rs (the run lane trusts its lock-free spin)",
            vec![
                loom(&["s3_unregister_in_flight", "s5_sync_after_async"]),
                shuttle(&["s3_unregister_in_flight", "s5_sync_after_async", "s1_pipeline"]),
                No(CONC),
                No(CONC),
                No(NO_TARGET),
                No(MIRI_SCOPE),
                No(HANGS),
            ],
            Checker::loom("s3_unregister_in_flight"),
        ),
        il(
            single(
                row(
                    "relaxed_publish",
                    "core/src/conc/word.rs (publication with Relaxed)",
                    vec![
                        loom(&["l3_memory_round_trip", "l3_refused_task"]),
                        No(SC),
                        No(SEQ_MEM),
                        No(SEQ_MEM),
                        No(SEQ_MEM),
                        miri(),
                        No(INTERLEAVING),
                    ],
                    Checker::loom("l3_memory_round_trip"),
                ),
                "a missing Release is visible only to checkers of weak memory: loom and miri",
            ),
            1,
        ),
        il(
            single(
                row(
                    "weak_done_cas",
                    "core/src/conc/word.rs (TASK_DONE's CAS without Release)",
                    vec![
                        loom(&["l3_refused_task"]),
                        No(SC),
                        No(SEQ_MEM),
                        No(SEQ_MEM),
                        No(SEQ_MEM),
                        miri(),
                        No(INTERLEAVING),
                    ],
                    Checker::loom("l3_refused_task"),
                ),
                "a missing Release is visible only to checkers of weak memory: loom and miri",
            ),
            1,
        ),
        il(
            single(
                row(
                    "relaxed_ring_tail",
                    "core/src/conc/ring.rs (Producer::push stores the tail Relaxed)",
                    vec![
                        loom(&["ring_push_pop"]),
                        No(SC),
                        No(SEQ_MEM),
                        No(SEQ_MEM),
                        No(SEQ_MEM),
                        miri(),
                        No(INTERLEAVING),
                    ],
                    Checker::loom("ring_push_pop"),
                ),
                "a missing Release is visible only to checkers of weak memory: loom and miri",
            ),
            1,
        ),
        // Not interleaving-only: the std suite hangs with it (models'
        // l3_restarts: on x86 a store may pass a load, so a ring can miss
        // a sleeper).
        single(
            row(
                "missed_doorbell",
                "core/src/conc/bell.rs (Doorbell::ring without its SeqCst fence)",
                vec![
                    loom(&["s14_doorbell", "l3_memory_round_trip"]),
                    No(SC),
                    No(CONC),
                    No(CONC),
                    No(NO_TARGET),
                    miri(),
                    No(HANGS),
                ],
                Checker::loom("s14_doorbell"),
            ),
            "a missing SeqCst fence (store-buffer reordering) is visible only to checkers of weak memory: loom and miri",
        ),
        // Not interleaving-only: core's unit test
        // conc::region::tests::poison_is_one_way_against_every_cas kills it.
        row(
            "restore_by_store",
            "core/src/mailbox/word.rs (write_kind: restore by plain store)",
            vec![
                loom(&["l3_memory_control_poisoned"]),
                shuttle(&["s9_monitor_poisons", "l3_memory_control_poisoned"]),
                exh(&["ops4+death"]),
                sim(),
                fuzz("system_walk"),
                No(MIRI_SCOPE),
                std(),
            ],
            Checker::loom("l3_memory_control_poisoned"),
        ),
        single(
            row(
            "driver_not_rung",
            "core/src/conc/parent.rs (the last waiter leaves without handing the port back to the driver)",
            vec![
                No(FIVE_THREADS),
                shuttle(&["s15_driver_handover"]),
                No(CONC),
                No(CONC),
                No(NO_TARGET),
                No(MIRI_SCOPE),
                No(BOUNDED),
            ],
            Checker::shuttle("s15_driver_handover"),
            ),
            "only the models sleep untimed, and of them only shuttle finishes the shape with the driver thread beside the child's lanes",
        ),
        single(
            row(
            "submit_drops_handover",
            "core/src/conc/parent.rs (a submission takes the driver's proxy down and leaves it down)",
            vec![
                No(FIVE_THREADS),
                shuttle(&["s18_submit_after_handover"]),
                No(CONC),
                No(CONC),
                No(NO_TARGET),
                No(MIRI_SCOPE),
                No(BOUNDED),
            ],
            Checker::shuttle("s18_submit_after_handover"),
            ),
            "only the models sleep untimed, and of them only shuttle finishes the shape with the driver thread beside the child's lanes",
        ),
        single(
            row(
            "unrung_waiter",
            "core/src/conc/parent.rs (Link::step_as: a step that resolved another caller's handle rings nobody)",
            vec![
                No(FIVE_THREADS),
                shuttle(&["s1_pipeline_driver", "s18_submit_after_handover", "s9_child_killed"]),
                No(CONC),
                No(CONC),
                No(NO_TARGET),
                No(MIRI_SCOPE),
                No(BOUNDED_WAIT),
            ],
            Checker::shuttle("s1_pipeline_driver"),
            ),
            "only the models sleep untimed, and of them only shuttle finishes the shapes with the driver thread beside the child's lanes",
        ),
        single(
            row(
                "deaf_to_restore",
                "core/src/conc/serve.rs (the serve loop sleeps for work only while a finished run's TASK_DONE waits for the parent's restore)",
                vec![
                    No(NO_LANE_WORK),
                    shuttle(&["s2_done_during_control", "s2_unsettled_control"]),
                    No(CONC),
                    No(CONC),
                    No(NO_TARGET),
                    No(MIRI_SCOPE),
                    No(HEARTBEAT),
                ],
                Checker::shuttle("s2_unsettled_control"),
            ),
            "only the models sleep untimed, and of them only shuttle finishes a run during a control",
        ),
        // Not interleaving-only: the std suite hangs with it (models'
        // scenarios_std l3_run_queue_handoff: the orchestrator's wait is
        // untimed in production too).
        single(
            row(
                "orchestrator_not_woken",
                "core/src/conc/l3/queue.rs (RunQueue::finished does not wake the orchestrator for a queued job)",
                vec![
                    No(SEVEN_THREADS),
                    shuttle(&["l3_run_queue_handoff"]),
                    No(CONC),
                    No(CONC),
                    No(NO_TARGET),
                    No(MIRI_SCOPE),
                    No(HANGS),
                ],
                Checker::shuttle("l3_run_queue_handoff"),
            ),
            "loom cannot hold the shape's seven threads; the std suite hangs on it, which is no verdict",
        ),
        row(
            "inline_run_also_queued",
            "core/src/conc/node.rs (a short run is executed where it was accepted and also handed to the run lane)",
            vec![
                No(NO_LANE_WORK),
                shuttle(&["s17_inline_run"]),
                No(CONC),
                No(CONC),
                No(NO_TARGET),
                No(MIRI_SCOPE),
                std(),
            ],
            Checker::shuttle("s17_inline_run"),
        ),
        row(
            "claim_kept",
            "core/src/conc/l3/queue.rs (a single task's claim of the idle run queue is never handed back)",
            vec![
                No(SEVEN_THREADS),
                shuttle(&["l3_worker_pipeline"]),
                No(CONC),
                No(CONC),
                No(NO_TARGET),
                No(MIRI_SCOPE),
                std(),
            ],
            Checker::shuttle("l3_worker_pipeline"),
        ),
    ]
}
