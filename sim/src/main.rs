//! The `chiplane-sim` command.

use std::process::ExitCode;

use chiplane_sim::options::Shape;
use chiplane_sim::world::Verdict;
use chiplane_sim::{campaign, overlap, trace};

const USAGE: &str = "usage:
  chiplane-sim run --seed N [--trace FILE]
  chiplane-sim campaign --seeds A..B [--jobs J] [--stop-on-failure] [--no-progress]
  chiplane-sim overlap [--seed N] [--trials T] [--trace FILE]
  chiplane-sim determinism --seeds A..B   (each seed twice: same trace hash)";

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

fn parse_u64(s: Option<&str>, what: &str) -> Result<Option<u64>, String> {
    s.map(|v| v.parse::<u64>().map_err(|e| format!("{what}: {e}"))).transpose()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match real_main(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn real_main(args: &[String]) -> Result<ExitCode, String> {
    let cmd = args.first().map(String::as_str).ok_or("no command")?;
    let mutant = option_env!("CHIPLANE_MUTANT").unwrap_or("none");
    match cmd {
        "run" => {
            let seed = parse_u64(arg(args, "--seed"), "--seed")?.ok_or("--seed N is required")?;
            let record = arg(args, "--trace");
            let (opts, r) = chiplane_sim::run_seed(seed, record.is_some());
            println!("{opts}");
            println!(
                "result: {}{}",
                r.verdict.label(),
                match &r.verdict {
                    Verdict::Pass => String::new(),
                    Verdict::Safety(m) | Verdict::Liveness(m) | Verdict::Panic(m) => format!(": {m}"),
                }
            );
            println!(
                "events {} ops {} (errors {}) runs {} prepares {} stale completions {} child deaths {} \
                 virtual time {:.3} ms",
                r.events,
                r.ops,
                r.errors,
                r.runs,
                r.prepares,
                r.stale_completions,
                r.deaths,
                r.virtual_ns as f64 / 1e6
            );
            println!("trace hash {:016x}", r.hash);
            if let Some(path) = record {
                trace::write_chrome(path.as_ref(), &r.chrome).map_err(|e| format!("{path}: {e}"))?;
                println!("chrome trace written to {path}");
            }
            Ok(if r.verdict == Verdict::Pass { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        "campaign" => {
            let (a, b) = seeds(args)?;
            let jobs = parse_u64(arg(args, "--jobs"), "--jobs")?
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get() as u64))
                as usize;
            let stop = args.iter().any(|a| a == "--stop-on-failure");
            let progress = !args.iter().any(|a| a == "--no-progress") && !stop;
            if mutant != "none" {
                println!("built with mutant {mutant}");
            }
            let c = campaign::run(a..b, jobs, stop, progress);
            println!(
                "seeds {} in {:.2} s on {jobs} jobs: {} events, {:.0} events/s",
                c.seeds_run,
                c.elapsed.as_secs_f64(),
                c.events,
                c.events_per_sec()
            );
            for (k, v) in &c.counts {
                println!("  {k}: {v}");
            }
            println!("named scenarios reached (design.md section 7):");
            for (name, n) in chiplane_sim::sched::Coverage::NAMES.iter().zip(c.cov.0) {
                println!("  {name}: {n}");
            }
            for (seed, v) in c.failures.iter().take(20) {
                println!("FAIL seed {seed} ({}): {}", v.label(), detail(v));
                let env = if mutant == "none" { String::new() } else { format!("CHIPLANE_MUTANT={mutant} ") };
                println!("  replay: {env}cargo run --release -p chiplane-sim -- run --seed {seed}");
            }
            if c.failures.len() > 20 {
                println!("... and {} more failures", c.failures.len() - 20);
            }
            if let Some(s) = c.first_failure() {
                println!("first-failure seed={s}");
                return Ok(ExitCode::FAILURE);
            }
            println!("all seeds passed");
            Ok(ExitCode::SUCCESS)
        }
        "overlap" => {
            let seed = parse_u64(arg(args, "--seed"), "--seed")?.unwrap_or(0);
            let trials = parse_u64(arg(args, "--trials"), "--trials")?.unwrap_or(5) as usize;
            let mut chrome = Vec::new();
            let shapes: Vec<Shape> = chiplane_sim::OVERLAP_SHAPES.to_vec();
            let rows = overlap::experiment(seed, trials.max(1), &shapes, &mut chrome)?;
            println!("overlap experiment (virtual time), seed {seed}, trials {trials}");
            print!("{}", overlap::table(&rows));
            if let Some(path) = arg(args, "--trace") {
                trace::write_chrome(path.as_ref(), &chrome).map_err(|e| format!("{path}: {e}"))?;
                println!("chrome trace written to {path}");
            }
            let ok = rows.iter().all(|r| r.efficiency_min >= 0.999);
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        "determinism" => {
            let (a, b) = seeds(args)?;
            let mut bad = 0;
            for seed in a..b {
                let (_, x) = chiplane_sim::run_seed(seed, false);
                let (_, y) = chiplane_sim::run_seed(seed, false);
                if x.hash != y.hash {
                    println!("seed {seed}: {:016x} != {:016x}", x.hash, y.hash);
                    bad += 1;
                }
            }
            println!("determinism: {} seeds, {bad} differ", b - a);
            Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unknown command {other}")),
    }
}

fn seeds(args: &[String]) -> Result<(u64, u64), String> {
    let spec = arg(args, "--seeds").ok_or("--seeds A..B is required")?;
    let (a, b) = spec.split_once("..").ok_or("--seeds takes A..B")?;
    let a: u64 = a.parse().map_err(|e| format!("--seeds: {e}"))?;
    let b: u64 = b.parse().map_err(|e| format!("--seeds: {e}"))?;
    Ok((a, b))
}

fn detail(v: &Verdict) -> String {
    let m = match v {
        Verdict::Pass => "",
        Verdict::Safety(m) | Verdict::Liveness(m) | Verdict::Panic(m) => m,
    };
    m.chars().take(300).collect()
}
