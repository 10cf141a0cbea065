//! The mutant table: which checkers must kill each mutant of design.md
//! section 8 (run by `cargo run -p chiplane-models --release --bin mutants`).
//!
//! A [`Checker`] is a name, a command and its environment. Add a row to
//! [`table`] when a new checker (a sim campaign, a fuzz target) learns to
//! kill a mutant: `Checker::cmd("sim", "cargo", &[..], &[..])` or one of
//! the constructors below. The runner builds each checker untimed first
//! (`build_args`), then times its run.
//!
//! A mutant with no checker prints `NAME no-checker` and counts as a
//! failure. A kill is never assumed.
//!
//! Besides loom and shuttle (the [`table`], one line per mutant), the
//! runner's `--all` mode also runs the [`extra`] checkers of every mutant
//! they can see: the exhaustive check of the pure protocol, a sim campaign
//! (seeds to first failure) and the fuzz targets, printing one line per
//! checker.

/// One checker: how to build it and how to run it.
#[derive(Clone, Debug)]
pub struct Checker {
    /// Short name printed in `killed-by CHECKER` (`loom`, `shuttle`, ...).
    pub name: &'static str,
    pub program: &'static str,
    /// Arguments of the timed run.
    pub args: Vec<String>,
    /// Arguments of the untimed build step (empty: no build step).
    pub build_args: Vec<String>,
    /// Environment of both steps (the runner adds `CHIPLANE_MUTANT`).
    pub env: Vec<(&'static str, String)>,
    /// Extra environment under `--quick`.
    pub quick_env: Vec<(&'static str, String)>,
    /// Seconds before the run is stopped (a hang is not a kill).
    pub timeout_s: u64,
}

impl Checker {
    /// A generic command.
    pub fn cmd(name: &'static str, program: &'static str, args: &[&str], env: &[(&'static str, &str)]) -> Self {
        Checker {
            name,
            program,
            args: args.iter().map(|s| s.to_string()).collect(),
            build_args: Vec::new(),
            env: env.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            quick_env: Vec::new(),
            timeout_s: 600,
        }
    }

    fn cargo_test(name: &'static str, cfg: &str, target_dir: &str, test: &str) -> Self {
        let base = ["test", "-p", "chiplane-models", "--release", "--test", test];
        let mut args: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        let mut build_args = args.clone();
        build_args.push("--no-run".into());
        args.extend(["--".to_string(), "--test-threads=1".to_string()]);
        Checker {
            name,
            program: "cargo",
            args,
            build_args,
            env: vec![("RUSTFLAGS", format!("--cfg {cfg}")), ("CARGO_TARGET_DIR", target_dir.to_string())],
            quick_env: Vec::new(),
            timeout_s: 600,
        }
    }

    /// A loom model file (`models/tests/loom_*.rs`), preemption bound 2
    /// (1 under `--quick`).
    pub fn loom(test: &str) -> Self {
        let mut c = Self::cargo_test("loom", "chiplane_loom", "target/loom", test);
        c.env.push(("LOOM_MAX_PREEMPTIONS", "2".into()));
        c.quick_env.push(("LOOM_MAX_PREEMPTIONS", "1".into()));
        c
    }

    /// A shuttle model file (`models/tests/shuttle_*.rs`), 10,000 iterations
    /// per scheduler (1,000 under `--quick`).
    pub fn shuttle(test: &str) -> Self {
        let mut c = Self::cargo_test("shuttle", "chiplane_shuttle", "target/shuttle", test);
        c.env.push(("CHIPLANE_SHUTTLE_ITERS", "10000".into()));
        c.quick_env.push(("CHIPLANE_SHUTTLE_ITERS", "1000".into()));
        c
    }

    /// A stable identity (for the baseline's de-duplication).
    pub fn key(&self) -> String {
        format!("{} {} {:?}", self.name, self.program, self.args)
    }
}

/// One mutant and the checkers expected to kill it, fastest first.
#[derive(Clone, Debug)]
pub struct MutantRow {
    pub name: &'static str,
    pub checkers: Vec<Checker>,
}

/// The table. Every mutant of design.md section 8 appears exactly once.
pub fn table() -> Vec<MutantRow> {
    let row = |name, checkers| MutantRow { name, checkers };
    vec![
        // --- L2 concurrent layer (core/src/conc, core/src/slot.rs) ---
        row(
            "sync_bypasses_queue",
            vec![Checker::loom("loom_s5_sync_after_async"), Checker::shuttle("shuttle_s5_sync_after_async")],
        ),
        row(
            "lost_wakeup",
            vec![Checker::loom("loom_s10_cell_wait_notify"), Checker::shuttle("shuttle_s10_cell_wait_notify")],
        ),
        row(
            "free_while_pinned",
            vec![Checker::loom("loom_s3_unregister_in_flight"), Checker::shuttle("shuttle_s3_unregister_in_flight")],
        ),
        row(
            "no_generation_check",
            vec![Checker::shuttle("shuttle_s6_reregister"), Checker::loom("loom_s6_reregister")],
        ),
        row(
            "prepared_after_cancel",
            vec![
                Checker::loom("loom_s4_unregister_while_preparing"),
                Checker::shuttle("shuttle_s4_unregister_while_preparing"),
            ],
        ),
        // --- mailbox (L3): core/src/mailbox, core/src/conc/{word,region} ---
        row(
            "done_during_control",
            vec![Checker::loom("loom_s2_done_during_control"), Checker::shuttle("shuttle_s2_done_during_control")],
        ),
        row("running_before_copy", vec![Checker::loom("loom_s1_pipeline"), Checker::shuttle("shuttle_s1_pipeline")]),
        // Shuttle's atomics are sequentially consistent: only loom sees a Relaxed publication.
        row("relaxed_publish", vec![Checker::loom("loom_s2_done_during_control"), Checker::loom("loom_s1_pipeline")]),
        row(
            "memory_control_while_running",
            vec![Checker::loom("loom_s8_memory_waits_for_idle"), Checker::shuttle("shuttle_s8_memory_waits_for_idle")],
        ),
        row(
            "shared_result_field",
            vec![Checker::loom("loom_s2_done_during_control"), Checker::shuttle("shuttle_s2_done_during_control")],
        ),
        row("blocking_control_wait", vec![Checker::loom("loom_s1_pipeline"), Checker::shuttle("shuttle_s1_pipeline")]),
        row("restore_by_store", vec![Checker::loom("loom_s9_child_death"), Checker::shuttle("shuttle_s9_child_death")]),
    ]
}

/// The exhaustive check of the composed pure protocol (quick bounds).
pub fn exhaustive() -> Checker {
    let mut c = Checker::cmd(
        "exhaustive",
        "cargo",
        &["run", "-q", "--release", "-p", "chiplane-models", "--bin", "exhaustive", "--", "--quick"],
        &[("CARGO_TARGET_DIR", "target/mutants-std")],
    );
    c.build_args = ["build", "--release", "-p", "chiplane-models", "--bin", "exhaustive"].map(String::from).to_vec();
    c
}

/// A sim campaign of at most 10,000 seeds that stops at the first failure
/// and prints `first-failure seed=N`.
pub fn sim() -> Checker {
    let mut c = Checker::cmd(
        "sim",
        "cargo",
        &["run", "-q", "--release", "-p", "chiplane-sim", "--", "campaign", "--seeds", "0..10000", "--stop-on-failure"],
        &[("CARGO_TARGET_DIR", "target/mutants-std")],
    );
    c.build_args = ["build", "--release", "-p", "chiplane-sim"].map(String::from).to_vec();
    c
}

/// A 60 s libFuzzer campaign of `target` from its seeds
/// (`fuzz/kill-mutant.sh`, which exits 0 on a kill: inverted here so that a
/// kill is a failing checker).
pub fn fuzz(target: &'static str) -> Checker {
    let script: &'static str = match target {
        "mailbox_protocol" => "! fuzz/kill-mutant.sh \"$CHIPLANE_MUTANT\" mailbox_protocol 60",
        "slot_table" => "! fuzz/kill-mutant.sh \"$CHIPLANE_MUTANT\" slot_table 60",
        _ => "! fuzz/kill-mutant.sh \"$CHIPLANE_MUTANT\" system_walk 60",
    };
    Checker::cmd("fuzz", "bash", &["-c", script], &[])
}

/// Checkers beyond loom and shuttle, per mutant (`--all`): every mutant the
/// single-threaded checkers can see. `relaxed_publish`, `restore_by_store`,
/// `lost_wakeup` and `sync_bypasses_queue` live in the concurrent layer,
/// which only loom and shuttle run.
pub fn extra(mutant: &str) -> Vec<Checker> {
    let fuzz_target = match mutant {
        "free_while_pinned" | "no_generation_check" | "prepared_after_cancel" => "slot_table",
        _ => "mailbox_protocol",
    };
    match mutant {
        "done_during_control"
        | "running_before_copy"
        | "free_while_pinned"
        | "no_generation_check"
        | "prepared_after_cancel"
        | "memory_control_while_running"
        | "shared_result_field"
        | "blocking_control_wait" => vec![exhaustive(), sim(), fuzz(fuzz_target)],
        _ => Vec::new(),
    }
}
