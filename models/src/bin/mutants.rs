//! The mutant runner (docs/protocol.md section 8; docs/verification.md).
//!
//! ```text
//! cargo run -p chiplane-models --release --bin mutants -- [MODE] [--only NAME[,NAME]] [--kind KIND[,KIND]]
//!   (no mode)       each mutant's quick kill (the fastest checker), full bounds
//!   --quick         the same at CI bounds (the quick stage of scripts/test-all)
//!   --all           the matrix: every checker kind of every mutant
//!   --interleaving  the interleaving-only mutants: the std suite passes, loom or shuttle kills
//! ```
//! First a baseline: every checker the mode will use must pass without a
//! mutant (a checker that fails on correct code would "kill" everything).
//! Then each mutant is built into each checker (`CHIPLANE_MUTANT=NAME`, which
//! core's build.rs turns into `--cfg chiplane_mutant="NAME"`; each backend
//! has its own build directory under [`target_base`], so a switch rebuilds
//! only core and its dependents) and run. A checker that times out or fails
//! to build does not count as a kill.
//!
//! Exit status: 0 when every selected mutant is killed as the table says
//! (`--all`: by every kind that should see it, and by two kinds unless the
//! table says why one is enough; `--interleaving`: the std suite passes and
//! loom or shuttle kills); 1 otherwise; 2 on bad usage or a failing
//! baseline.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chiplane_models::mutants::{
    miri_available, table, target_base, workspace, Cell, Checker, Kind, MutantRow, Verdict, REASONS,
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Kill,
    All,
    Interleaving,
}

struct Opts {
    mode: Mode,
    quick: bool,
    only: Option<Vec<String>>,
    kinds: Option<Vec<Kind>>,
}

const USAGE: &str =
    "usage: mutants [--quick | --all | --interleaving] [--only NAME[,NAME]] [--kind loom,shuttle,exhaustive,sim,fuzz,miri,std]";

fn parse_args() -> Result<Opts, String> {
    let mut opts = Opts { mode: Mode::Kill, quick: false, only: None, kinds: None };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--all" => opts.mode = Mode::All,
            "--interleaving" => opts.mode = Mode::Interleaving,
            "--only" => {
                let v = it.next().ok_or("--only needs NAME[,NAME]")?;
                opts.only = Some(v.split(',').map(|s| s.trim().to_string()).collect());
            }
            "--kind" => {
                let v = it.next().ok_or("--kind needs KIND[,KIND]")?;
                let kinds: Result<Vec<Kind>, String> =
                    v.split(',').map(|s| Kind::parse(s.trim()).ok_or(format!("unknown kind {s}"))).collect();
                opts.kinds = Some(kinds?);
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(opts)
}

/// Outcome of one command.
enum Outcome {
    Passed,
    /// Killed; what killed it (a test, a seed, a configuration).
    Killed(Option<String>),
    /// Neither: a kill script's error exit, a build failure.
    Error(String),
    TimedOut,
}

/// Run `args` of `checker` (its build step when `build`).
fn run(checker: &Checker, args: &[String], mutant: Option<&str>, quick: bool, timeout: Duration) -> (Outcome, String) {
    let mut cmd = Command::new(checker.program);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in &checker.env {
        cmd.env(k, v);
    }
    if quick {
        for (k, v) in &checker.quick_env {
            cmd.env(k, v);
        }
    }
    cmd.env("CHIPLANE_MUTANT", mutant.unwrap_or("none"));
    cmd.current_dir(workspace());
    // Own process group, so a timeout stops cargo and the test binary.
    cmd.process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (Outcome::Error(format!("cannot run {}: {e}", checker.program)), String::new()),
    };
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        let status = child.wait();
        let _ = tx.send((status, out));
    });
    match rx.recv_timeout(timeout) {
        Ok((status, out)) => {
            let err = err_reader.join().unwrap_or_default();
            let text = format!("{out}\n{err}");
            let code = status.ok().and_then(|s| s.code());
            let outcome = match (checker.verdict, code) {
                (Verdict::FailureKills, Some(0)) => Outcome::Passed,
                (Verdict::FailureKills, _) => Outcome::Killed(what_failed(&text)),
                (Verdict::KillScript, Some(0)) => Outcome::Killed(what_failed(&text)),
                (Verdict::KillScript, Some(1)) => Outcome::Passed,
                (Verdict::KillScript, c) => Outcome::Error(format!("exit {c:?}: {}", tail(&text, 5))),
            };
            (outcome, text)
        }
        Err(_) => {
            // `--` before the negative id: without it procps' kill took
            // `-KILL -PID` for something wider than the checker's group
            // (twice a timeout here killed every process of the session,
            // the runner included).
            let _ = Command::new("kill").args(["-s", "KILL", "--", &format!("-{pid}")]).status();
            (Outcome::TimedOut, String::new())
        }
    }
}

/// What failed, from the checker's output: the sim's first failing seed,
/// the exhaustive check's violated configuration, the fuzz target, or the
/// first failing test (`test NAME ... FAILED`, else the panicking test
/// thread: loom aborts after reporting a deadlock), with the test binary
/// cargo was running.
fn what_failed(text: &str) -> Option<String> {
    if let Some(seed) = text.lines().find_map(|l| l.trim().strip_prefix("first-failure seed=")) {
        return Some(format!("seed {}", seed.trim()));
    }
    let mut config = None;
    for l in text.lines() {
        if !l.starts_with(' ') && l.contains(" states, ") {
            config = l.split(':').next().map(str::to_string);
        }
        let t = l.trim_start();
        if t.starts_with("VIOLATION") || t.starts_with("UNREACHED") {
            let what: String = t.chars().take(70).collect();
            return Some(format!("{}: {what}", config.unwrap_or_default()));
        }
    }
    if let Some(t) = text.lines().find_map(|l| {
        let (_, t) = l.split_once(" killed-by fuzz ")?;
        Some(t.split(" in ").next().unwrap_or(t).to_string())
    }) {
        return Some(t);
    }
    // Miri: undefined behaviour (a data race, say) or a deadlock aborts the
    // test process, so no `... FAILED` line follows; name the test it was in.
    let mut current: Option<&str> = None;
    for l in text.lines() {
        let t = l.trim();
        if let Some((name, _)) = t.strip_prefix("test ").and_then(|r| r.split_once(" ... ")) {
            current = Some(name);
        }
        if let Some((_, e)) = t.split_once("error: ") {
            if e.starts_with("Undefined Behavior") || e.starts_with("the evaluated program deadlocked") {
                let what: String = e.chars().take(70).collect();
                return Some(format!("{}: {what}", current.unwrap_or("miri")));
            }
        }
    }
    let mut binary: Option<String> = None;
    let mut panicked: Option<String> = None;
    for l in text.lines() {
        let t = l.trim();
        if let Some(rest) = t.strip_prefix("Running ") {
            // `Running tests/loom.rs (target/...)` or `Running unittests src/lib.rs (...)`
            let path = rest.split(" (").next().unwrap_or(rest);
            binary = Some(path.trim_start_matches("unittests ").to_string());
            if let Some(dir) = rest.split(" (").nth(1) {
                // the package, from target/.../deps/NAME-HASH
                let file = dir.trim_end_matches(')').rsplit('/').next().unwrap_or("");
                let pkg = file.rsplit_once('-').map_or(file, |(n, _)| n);
                if path.starts_with("src/") || path.starts_with("unittests") {
                    binary = Some(format!("{pkg} {}", path.trim_start_matches("unittests ")));
                }
            }
        }
        if let Some(name) = t.strip_prefix("test ").and_then(|r| r.strip_suffix(" ... FAILED")) {
            let name = name.trim();
            return Some(match &binary {
                Some(b) => format!("{b} {name}"),
                None => name.to_string(),
            });
        }
        if panicked.is_none() {
            if let Some((name, tail)) = l.strip_prefix("thread '").and_then(|r| r.split_once('\'')) {
                if tail.contains("panicked") && name != "main" {
                    panicked = Some(match &binary {
                        Some(b) => format!("{b} {name}"),
                        None => name.to_string(),
                    });
                }
            }
        }
    }
    panicked
}

fn tail(text: &str, lines: usize) -> String {
    let v: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

fn build(checker: &Checker, mutant: Option<&str>, quick: bool) -> Result<(), String> {
    if checker.build_args.is_empty() {
        return Ok(());
    }
    let mut c = checker.clone();
    c.verdict = Verdict::FailureKills;
    match run(&c, &checker.build_args, mutant, quick, Duration::from_secs(3600)) {
        (Outcome::Passed, _) => Ok(()),
        (Outcome::TimedOut, _) => Err("build timed out".into()),
        (Outcome::Error(e), _) => Err(e),
        (Outcome::Killed(_), text) => Err(tail(&text, 15)),
    }
}

/// The result of one checker against one mutant.
#[derive(Clone, Debug)]
enum Result1 {
    Killed { secs: f64, what: String },
    Survived { secs: f64 },
    NotRun(String),
}

fn attempt(checker: &Checker, mutant: &str, quick: bool) -> Result1 {
    if let Err(e) = build(checker, Some(mutant), quick) {
        eprintln!("  {mutant}: {} {} build failed (not a kill):\n{e}", checker.kind.name(), checker.label);
        return Result1::NotRun("build failed".into());
    }
    let t0 = Instant::now();
    let (outcome, text) = run(checker, &checker.args, Some(mutant), quick, Duration::from_secs(checker.timeout_s));
    let secs = t0.elapsed().as_secs_f64();
    let r = match outcome {
        Outcome::Passed => Result1::Survived { secs },
        Outcome::Killed(what) => Result1::Killed {
            secs,
            what: what.unwrap_or_else(|| format!("{} (unnamed failure: {})", checker.label, tail(&text, 1))),
        },
        Outcome::Error(e) => {
            eprintln!("  {mutant}: {} {} error (not a kill): {e}", checker.kind.name(), checker.label);
            Result1::NotRun("error".into())
        }
        Outcome::TimedOut => Result1::NotRun(format!("timed out after {} s", checker.timeout_s)),
    };
    eprintln!("  {mutant}: {} {}: {}", checker.kind.name(), checker.label, describe(&r));
    r
}

fn describe(r: &Result1) -> String {
    match r {
        Result1::Killed { secs, what } => format!("killed in {secs:.1} s ({what})"),
        Result1::Survived { secs } => format!("survived ({secs:.0} s)"),
        Result1::NotRun(why) => why.clone(),
    }
}

/// Run `checkers` in order until one kills.
fn first_kill(checkers: &[Checker], mutant: &str, quick: bool) -> Result1 {
    let mut last = Result1::NotRun("no checker".into());
    for c in checkers {
        last = attempt(c, mutant, quick);
        if matches!(last, Result1::Killed { .. }) {
            return last;
        }
    }
    last
}

/// Every checker the runs will use must pass without a mutant.
fn baseline(checkers: Vec<&Checker>, quick: bool) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for checker in checkers {
        if !seen.insert(checker.key()) {
            continue;
        }
        build(checker, None, quick)
            .map_err(|e| format!("baseline build failed: {} {}\n{e}", checker.kind.name(), checker.label))?;
        let t0 = Instant::now();
        let (outcome, text) = run(checker, &checker.args, None, quick, Duration::from_secs(checker.timeout_s));
        let secs = t0.elapsed().as_secs_f64();
        match outcome {
            Outcome::Passed => eprintln!("baseline ok {} {} in {secs:.1} s", checker.kind.name(), checker.label),
            Outcome::Killed(what) => {
                return Err(format!(
                    "baseline FAILED {} {}: {}\n{}",
                    checker.kind.name(),
                    checker.label,
                    what.unwrap_or_default(),
                    tail(&text, 30)
                ))
            }
            Outcome::TimedOut => return Err(format!("baseline TIMEOUT {} {}", checker.kind.name(), checker.label)),
            Outcome::Error(e) => return Err(format!("baseline error {} {}: {e}", checker.kind.name(), checker.label)),
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut rows = table();
    if let Some(only) = &opts.only {
        for name in only {
            if !rows.iter().any(|r| r.name == name) {
                eprintln!("unknown mutant {name}");
                return ExitCode::from(2);
            }
        }
        rows.retain(|r| only.iter().any(|n| n == r.name));
    }
    if opts.mode == Mode::Interleaving {
        rows.retain(|r| r.interleaving_only);
    }
    eprintln!("mutant builds under {}", target_base().display());
    let t0 = Instant::now();
    let ok = match opts.mode {
        Mode::Kill => quick_kills(&rows, &opts),
        Mode::All => matrix(&rows, &opts),
        Mode::Interleaving => interleaving(&rows, &opts),
    };
    let wall = t0.elapsed().as_secs_f64();
    println!("wall time {:.0} s ({:.1} min)", wall, wall / 60.0);
    match ok {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            println!("{e}");
            ExitCode::from(2)
        }
    }
}

/// Default and `--quick`: one kill per mutant, its fastest checker.
fn quick_kills(rows: &[MutantRow], opts: &Opts) -> Result<bool, String> {
    baseline(rows.iter().map(|r| &r.quick).collect(), opts.quick)?;
    let mut all = true;
    for row in rows {
        match attempt(&row.quick, row.name, opts.quick) {
            Result1::Killed { secs, what } => {
                println!("{} killed-by {} {} in {secs:.1} s", row.name, row.quick.kind.name(), what)
            }
            other => {
                println!("{} SURVIVED {} {}: {}", row.name, row.quick.kind.name(), row.quick.label, describe(&other));
                all = false;
            }
        }
        let _ = std::io::stdout().flush();
    }
    Ok(all)
}

fn wanted(opts: &Opts, kind: Kind) -> bool {
    opts.kinds.as_ref().is_none_or(|k| k.contains(&kind))
}

/// The checkers of a cell the matrix runs (`None`: nothing to run).
fn runnable<'a>(row: &'a MutantRow, kind: Kind, opts: &Opts) -> Option<&'a [Checker]> {
    match row.cell(kind) {
        Cell::Kill(cs) if wanted(opts, kind) && (kind != Kind::Miri || miri_available()) => Some(cs),
        _ => None,
    }
}

/// `--all`: the matrix.
fn matrix(rows: &[MutantRow], opts: &Opts) -> Result<bool, String> {
    let used: Vec<&Checker> =
        rows.iter().flat_map(|r| Kind::ALL.iter().filter_map(|&k| runnable(r, k, opts)).flatten()).collect();
    baseline(used, opts.quick)?;
    let mut lines = Vec::new();
    let mut ok = true;
    let mut problems = Vec::new();
    for row in rows {
        eprintln!("{}:", row.name);
        let mut cells = Vec::new();
        let mut kills = Vec::new();
        for kind in Kind::ALL {
            let text = match (row.cell(kind), runnable(row, kind, opts)) {
                (Cell::CannotSee((short, _)), _) => format!("cannot see: {short}"),
                (Cell::Kill(_), None) if kind == Kind::Miri && !miri_available() => {
                    "no miri here (cargo +nightly miri)".to_string()
                }
                (Cell::Kill(_), None) => "not selected".to_string(),
                (Cell::Kill(_), Some(cs)) => {
                    let r = first_kill(cs, row.name, opts.quick);
                    match &r {
                        Result1::Killed { secs, what } => {
                            kills.push(kind);
                            format!("killed in {secs:.1} s ({what})")
                        }
                        Result1::Survived { .. } => {
                            problems.push(format!("{}: {} survived", row.name, kind.name()));
                            "SURVIVED".to_string()
                        }
                        Result1::NotRun(why) => {
                            problems.push(format!("{}: {} {why}", row.name, kind.name()));
                            format!("not a kill: {why}")
                        }
                    }
                }
            };
            cells.push(text);
        }
        let verdict = match (kills.len(), row.single) {
            (0, _) if opts.kinds.is_none() => {
                problems.push(format!("{}: SURVIVED every checker that should see it", row.name));
                "SURVIVED".to_string()
            }
            (0, _) => "no kill in the selected kinds".to_string(),
            (1, Some(_)) => "killed by 1 kind (only one can see it)".to_string(),
            (1, None) if opts.kinds.is_none() => {
                problems.push(format!("{}: killed by one kind only, and the table gives no reason", row.name));
                "killed by 1 kind: NOT ENOUGH".to_string()
            }
            (n, _) => format!("killed by {n} kinds"),
        };
        let line = format!("| `{}` | {} | {verdict} |", row.name, cells.join(" | "));
        eprintln!("{line}");
        lines.push(line);
    }
    if !problems.is_empty() {
        ok = false;
    }
    let header: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    println!("| mutant | {} | verdict |", header.join(" | "));
    println!("|---|{}---|", "---|".repeat(header.len()));
    for l in &lines {
        println!("{l}");
    }
    println!();
    for row in rows.iter().filter(|r| r.single.is_some()) {
        println!("- `{}`: one kind suffices: {}", row.name, row.single.unwrap_or_default());
    }
    println!();
    println!("cannot see:");
    for (short, long) in REASONS {
        println!("- {short}: {long}");
    }
    if problems.is_empty() {
        println!("every mutant killed as the table says");
    } else {
        for p in &problems {
            println!("PROBLEM {p}");
        }
    }
    Ok(ok)
}

/// `--interleaving`: for each interleaving-only mutant, the std suite
/// (proptests included) passes with it compiled in, and loom or shuttle
/// kills it.
fn interleaving(rows: &[MutantRow], opts: &Opts) -> Result<bool, String> {
    let std_suite = Checker::std_suite();
    let models = |r: &MutantRow| -> Vec<Checker> {
        [Kind::Loom, Kind::Shuttle]
            .into_iter()
            .flat_map(|k| match r.cell(k) {
                Cell::Kill(cs) => cs.clone(),
                Cell::CannotSee(_) => Vec::new(),
            })
            .collect()
    };
    let all_models: Vec<Checker> = rows.iter().flat_map(models).collect();
    let mut used: Vec<&Checker> = vec![&std_suite];
    used.extend(all_models.iter());
    baseline(used, opts.quick)?;
    let mut ok = true;
    let mut lines = Vec::new();
    for row in rows {
        eprintln!("{}:", row.name);
        let mut runs = Vec::new();
        let mut seen_by = None;
        for _ in 0..row.std_runs {
            let r = attempt(&std_suite, row.name, opts.quick);
            match &r {
                Result1::Survived { secs } => runs.push(format!("passes ({secs:.0} s)")),
                Result1::Killed { what, .. } => {
                    runs.push(format!("FAILS: {what}"));
                    seen_by.get_or_insert(what.clone());
                }
                Result1::NotRun(why) => runs.push(format!("not run: {why}")),
            }
        }
        let kill = first_kill(&models(row), row.name, opts.quick);
        let killed = match &kill {
            Result1::Killed { secs, what } => {
                let kind = models(row)
                    .iter()
                    .find(|c| what.contains(c.label.as_str()))
                    .map_or("", |c| c.kind.name())
                    .to_string();
                format!("killed by {kind} in {secs:.1} s ({what})")
            }
            other => format!("NOT KILLED: {}", describe(other)),
        };
        let passes = runs.iter().all(|r| r.starts_with("passes"));
        let verdict = if let Some(t) = seen_by {
            ok = false;
            format!("NOT interleaving-only: seen by {t}")
        } else if !passes {
            ok = false;
            "std suite not run".to_string()
        } else if !matches!(kill, Result1::Killed { .. }) {
            ok = false;
            "SURVIVED the models".to_string()
        } else {
            "interleaving-only".to_string()
        };
        let line = format!("| `{}` | {} | {killed} | {verdict} |", row.name, runs.join("; "));
        eprintln!("{line}");
        lines.push(line);
    }
    println!("| mutant | std suite with the mutant (cargo test --workspace) | loom / shuttle | verdict |");
    println!("|---|---|---|---|");
    for l in &lines {
        println!("{l}");
    }
    Ok(ok)
}
