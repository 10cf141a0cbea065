//! The mutant runner (design.md section 8).
//!
//! ```text
//! cargo run -p chiplane-models --release --bin mutants [-- --quick] [--only NAME[,NAME]]
//! ```
//! First a baseline: every checker it will use must pass without a mutant
//! (a checker that fails on correct code would "kill" everything). Then for
//! each mutant it builds every checker with `CHIPLANE_MUTANT=NAME` (core's
//! build.rs turns that into `--cfg chiplane_mutant="NAME"`; each backend
//! keeps its own CARGO_TARGET_DIR so dependencies are not rebuilt), runs the
//! checkers in table order, stops at the first that fails and prints
//! `NAME killed-by CHECKER TEST in SECONDS s`, `NAME SURVIVED` (every
//! checker passed), or `NAME no-checker`. Exits 1 unless every selected
//! mutant was killed (2 when the baseline fails).
//!
//! A checker that times out or fails to build does not count as a kill.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chiplane_models::mutants::{table, Checker};

struct Opts {
    quick: bool,
    /// Run every checker of each mutant (the table's and `extra`), one line per kill.
    all: bool,
    only: Option<Vec<String>>,
}

fn parse_args() -> Result<Opts, String> {
    let mut opts = Opts { quick: false, all: false, only: None };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--all" => opts.all = true,
            "--only" => {
                let v = it.next().ok_or("--only needs NAME[,NAME]")?;
                opts.only = Some(v.split(',').map(|s| s.trim().to_string()).collect());
            }
            other => {
                return Err(format!("unknown argument {other}; usage: mutants [--quick] [--all] [--only NAME[,NAME]]"))
            }
        }
    }
    Ok(opts)
}

/// Outcome of one command.
enum Outcome {
    Passed,
    /// Failed; the first failing test's name if cargo printed one.
    Failed(Option<String>, String),
    TimedOut,
    SpawnError(String),
}

fn run(checker: &Checker, args: &[String], mutant: Option<&str>, quick: bool, timeout: Duration) -> Outcome {
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
    // Relative target dirs are relative to the workspace root.
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    // Own process group, so a timeout stops cargo and the test binary.
    cmd.process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::SpawnError(format!("{}: {e}", checker.program)),
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
            match status {
                Ok(s) if s.success() => Outcome::Passed,
                _ => Outcome::Failed(failing_test(&text), text),
            }
        }
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &format!("-{pid}")]).status();
            Outcome::TimedOut
        }
    }
}

/// The failing test: the first `test NAME ... FAILED` line of cargo's
/// output, else the test thread named in the first `thread 'NAME' ...
/// panicked` line (a test binary that aborts, as loom does after reporting
/// a deadlock, prints no FAILED line).
fn failing_test(text: &str) -> Option<String> {
    // A sim campaign: seeds to first failure.
    if let Some(seed) = text.lines().find_map(|l| l.trim().strip_prefix("first-failure seed=")) {
        let n: u64 = seed.trim().parse().unwrap_or(0);
        return Some(format!("campaign (first failure at seed {n}: {} seeds)", n + 1));
    }
    // The exhaustive check: the configuration whose exploration found it.
    let mut config = None;
    for l in text.lines() {
        if !l.starts_with(' ') && l.contains(" states, ") {
            config = l.split(':').next().map(str::to_string);
        }
        if l.trim_start().starts_with("VIOLATION") || l.trim_start().starts_with("UNREACHED") {
            return Some(format!("{} ({})", config.unwrap_or_default(), l.trim()));
        }
    }
    // fuzz/kill-mutant.sh: `NAME killed-by fuzz TARGET in S s`.
    if let Some(t) = text.lines().find_map(|l| {
        let (_, t) = l.split_once(" killed-by fuzz ")?;
        Some(t.split(" in ").next().unwrap_or(t).to_string())
    }) {
        return Some(t);
    }
    let failed = text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("test ")?;
        let name = rest.strip_suffix(" ... FAILED")?;
        Some(name.trim().to_string())
    });
    failed.or_else(|| {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix("thread '")?;
            let (name, tail) = rest.split_once('\'')?;
            (tail.contains("panicked") && name != "main").then(|| name.to_string())
        })
    })
}

fn tail(text: &str, lines: usize) -> String {
    let v: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

fn build(checker: &Checker, mutant: Option<&str>, quick: bool) -> Result<(), String> {
    if checker.build_args.is_empty() {
        return Ok(());
    }
    match run(checker, &checker.build_args, mutant, quick, Duration::from_secs(1800)) {
        Outcome::Passed => Ok(()),
        Outcome::Failed(_, text) => Err(tail(&text, 15)),
        Outcome::TimedOut => Err("build timed out".into()),
        Outcome::SpawnError(e) => Err(e),
    }
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
    if opts.all {
        for r in rows.iter_mut() {
            r.checkers.extend(chiplane_models::mutants::extra(r.name));
        }
    }
    if let Some(only) = &opts.only {
        for name in only {
            if !rows.iter().any(|r| r.name == name) {
                eprintln!("unknown mutant {name}");
                return ExitCode::from(2);
            }
        }
        rows.retain(|r| only.iter().any(|n| n == r.name));
    }

    // Baseline: every checker in use passes on correct code.
    let mut seen = std::collections::BTreeSet::new();
    for checker in rows.iter().flat_map(|r| r.checkers.iter()) {
        if !seen.insert(checker.key()) {
            continue;
        }
        if let Err(e) = build(checker, None, opts.quick) {
            println!("baseline build-failed {} {:?}\n{e}", checker.name, checker.args);
            return ExitCode::from(2);
        }
        let t0 = Instant::now();
        match run(checker, &checker.args, None, opts.quick, Duration::from_secs(checker.timeout_s)) {
            Outcome::Passed => {
                eprintln!("baseline ok {} {} in {:.1} s", checker.name, test_of(checker), t0.elapsed().as_secs_f64())
            }
            Outcome::Failed(test, text) => {
                println!("baseline FAILED {} {}\n{}", checker.name, test.unwrap_or_default(), tail(&text, 30));
                return ExitCode::from(2);
            }
            Outcome::TimedOut => {
                println!("baseline TIMEOUT {} {}", checker.name, test_of(checker));
                return ExitCode::from(2);
            }
            Outcome::SpawnError(e) => {
                println!("baseline cannot run {}: {e}", checker.name);
                return ExitCode::from(2);
            }
        }
    }

    let mut all_killed = true;
    for row in &rows {
        if row.checkers.is_empty() {
            println!("{} no-checker", row.name);
            all_killed = false;
            continue;
        }
        let mut verdict = None;
        for checker in &row.checkers {
            if let Err(e) = build(checker, Some(row.name), opts.quick) {
                eprintln!("{}: {} build failed:\n{e}", row.name, checker.name);
                continue;
            }
            let t0 = Instant::now();
            match run(checker, &checker.args, Some(row.name), opts.quick, Duration::from_secs(checker.timeout_s)) {
                Outcome::Passed => eprintln!("{}: {} {} passed (not killed)", row.name, checker.name, test_of(checker)),
                Outcome::Failed(test, text) => {
                    let secs = t0.elapsed().as_secs_f64();
                    let test =
                        test.unwrap_or_else(|| format!("{}(unnamed failure: {})", test_of(checker), tail(&text, 1)));
                    let line = format!("{} killed-by {} {} in {:.1} s", row.name, checker.name, test, secs);
                    if opts.all {
                        println!("{line}");
                        verdict.get_or_insert(line);
                        continue;
                    }
                    verdict = Some(line);
                    break;
                }
                Outcome::TimedOut => eprintln!("{}: {} timed out (not a kill)", row.name, checker.name),
                Outcome::SpawnError(e) => eprintln!("{}: {} cannot run: {e}", row.name, checker.name),
            }
        }
        match verdict {
            Some(_) if opts.all => {}
            Some(v) => println!("{v}"),
            None => {
                println!("{} SURVIVED", row.name);
                all_killed = false;
            }
        }
    }
    if all_killed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The `--test` target of a cargo checker (for messages).
fn test_of(checker: &Checker) -> String {
    checker.args.iter().skip_while(|a| *a != "--test").nth(1).cloned().unwrap_or_else(|| checker.args.join(" "))
}
