//! The mutant table: which checkers must kill each mutant of design.md
//! section 8 (run by `cargo run -p chiplane-models --release --bin mutants`).
//!
//! A [`Checker`] is a name, a command and its environment. Add a row to
//! [`table`] when a new checker (a sim campaign, a fuzz target) learns to
//! kill a mutant: `Checker::cmd("sim", "cargo", &[..], &[..])` or one of
//! the constructors below. The runner builds each checker untimed first
//! (`build_args`), then times its run.
//!
//! Mutants whose site lives in code that is not written yet (the mailbox
//! ones) are listed with no checker: the runner prints them `NAME
//! no-checker` and counts that as a failure. A kill is never assumed.

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
        // --- mailbox (L3): checkers belong to the mailbox models (S1, S2,
        // S8, S9, S11) and the sim campaigns, not written yet ---
        row("done_during_control", vec![]),
        row("running_before_copy", vec![]),
        row("relaxed_publish", vec![]),
        row("memory_control_while_running", vec![]),
        row("shared_result_field", vec![]),
        row("blocking_control_wait", vec![]),
        row("restore_by_store", vec![]),
    ]
}
