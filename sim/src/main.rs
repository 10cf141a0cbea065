//! The `chiplane-sim` command.

use std::ops::Range;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use chiplane_sim::options::Shape;
use chiplane_sim::world::Verdict;
use chiplane_sim::{campaign, overlap, trace};

/// Deterministic whole-system simulator of chiplane: one u64 seed decides
/// the options and the schedule; the same seed always gives the same trace
/// hash.
#[derive(Parser, Debug)]
#[command(name = "chiplane-sim", version, about, long_about = None, after_help = SHARDING)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

const SHARDING: &str = "\
Sharding a big campaign across machines: seeds are independent, so give each
machine its own part of the range, either as its own range
    machine 0: chiplane-sim campaign --seeds 0..500000
    machine 1: chiplane-sim campaign --seeds 500000..1000000
or as the same range and a shard number (I of N, contiguous parts):
    machine I: chiplane-sim campaign --seeds 0..1000000 --shard I/2
Each machine prints its failures with the command that replays each one.";

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run one seed: print its options, verdict and trace hash.
    Run {
        /// The seed.
        #[arg(long)]
        seed: u64,
        /// Write a Chrome trace-event JSON file (open in ui.perfetto.dev).
        #[arg(long, value_name = "FILE")]
        trace: Option<String>,
    },
    /// Run a range of seeds on several threads; exit 1 if any fails.
    #[command(after_help = SHARDING)]
    Campaign {
        /// Seeds to run, A..B (B excluded).
        #[arg(long, value_name = "A..B", value_parser = parse_range)]
        seeds: Range<u64>,
        /// Run only part I of N (0-based) of the range, for sharding.
        #[arg(long, value_name = "I/N", value_parser = parse_shard)]
        shard: Option<(u64, u64)>,
        /// Threads (default: the machine's parallelism).
        #[arg(long)]
        jobs: Option<usize>,
        /// Stop claiming seeds at the first failure; the smallest failing
        /// seed is still exact (every seed below it ran).
        #[arg(long)]
        stop_on_failure: bool,
        /// No progress bar (it is off anyway when stderr is not a terminal).
        #[arg(long)]
        no_progress: bool,
    },
    /// The seed's overlap experiment in virtual time (docs/protocol.md section 1).
    Overlap {
        /// Seed of the trial jitter.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Trials per row.
        #[arg(long, default_value_t = 5)]
        trials: usize,
        /// Write a Chrome trace-event JSON file.
        #[arg(long, value_name = "FILE")]
        trace: Option<String>,
    },
    /// Run each seed twice: the trace hashes must be equal.
    Determinism {
        /// Seeds to run, A..B (B excluded).
        #[arg(long, value_name = "A..B", value_parser = parse_range)]
        seeds: Range<u64>,
    },
}

fn parse_range(s: &str) -> Result<Range<u64>, String> {
    let (a, b) = s.split_once("..").ok_or_else(|| format!("{s:?}: expected A..B"))?;
    let a: u64 = a.trim().parse().map_err(|e| format!("{a:?}: {e}"))?;
    let b: u64 = b.trim().parse().map_err(|e| format!("{b:?}: {e}"))?;
    if b < a {
        return Err(format!("{s:?}: the end is below the start"));
    }
    Ok(a..b)
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("{s:?}: expected I/N"))?;
    let i: u64 = i.trim().parse().map_err(|e| format!("{i:?}: {e}"))?;
    let n: u64 = n.trim().parse().map_err(|e| format!("{n:?}: {e}"))?;
    if n == 0 || i >= n {
        return Err(format!("{s:?}: need 0 <= I < N"));
    }
    Ok((i, n))
}

/// Part `i` of `n` of `seeds` (contiguous; the parts cover it exactly).
fn shard_of(seeds: &Range<u64>, (i, n): (u64, u64)) -> Range<u64> {
    let len = u128::from(seeds.end - seeds.start);
    let at = |k: u64| seeds.start + (len * u128::from(k) / u128::from(n)) as u64;
    at(i)..at(i + 1)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn real_main(cmd: Cmd) -> Result<ExitCode, String> {
    let mutant = option_env!("CHIPLANE_MUTANT").unwrap_or("none");
    let env = if mutant == "none" { String::new() } else { format!("CHIPLANE_MUTANT={mutant} ") };
    match cmd {
        Cmd::Run { seed, trace } => {
            let (opts, r) = chiplane_sim::run_seed(seed, trace.is_some());
            println!("{opts}");
            println!("result: {}{}", r.verdict.label(), detail(&r.verdict, usize::MAX));
            println!(
                "events {} ops {} (errors {}) runs {} prepares {} stale completions {} child deaths {} \
                 restarts {} virtual time {:.3} ms",
                r.events,
                r.ops,
                r.errors,
                r.runs,
                r.prepares,
                r.stale_completions,
                r.deaths,
                r.restarts,
                r.virtual_ns as f64 / 1e6
            );
            println!("trace hash {:016x}", r.hash);
            if let Some(path) = trace {
                trace::write_chrome(path.as_ref(), &r.chrome).map_err(|e| format!("{path}: {e}"))?;
                println!("chrome trace written to {path}");
            }
            Ok(if r.verdict == Verdict::Pass { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Cmd::Campaign { seeds, shard, jobs, stop_on_failure, no_progress } => {
            let range = shard.map_or(seeds.clone(), |s| shard_of(&seeds, s));
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())).max(1);
            if mutant != "none" {
                println!("built with mutant {mutant}");
            }
            if let Some((i, n)) = shard {
                println!("shard {i}/{n} of {}..{}: seeds {}..{}", seeds.start, seeds.end, range.start, range.end);
            }
            let c = campaign::run(range.clone(), jobs, stop_on_failure, !no_progress);
            println!(
                "seeds {}..{} ({} run) in {:.2} s on {jobs} jobs: {} events, {:.0} events/s",
                range.start,
                range.end,
                c.seeds_run,
                c.elapsed.as_secs_f64(),
                c.events,
                c.events_per_sec()
            );
            for (k, v) in &c.counts {
                println!("  {k}: {v}");
            }
            println!("named scenarios reached (docs/protocol.md section 7):");
            for (name, n) in chiplane_sim::sched::Coverage::NAMES.iter().zip(c.cov.0) {
                println!("  {name}: {n}");
            }
            for (seed, v) in c.failures.iter().take(20) {
                println!("FAIL seed {seed} ({}){}", v.label(), detail(v, 300));
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
        Cmd::Overlap { seed, trials, trace } => {
            let mut chrome = Vec::new();
            let shapes: Vec<Shape> = chiplane_sim::OVERLAP_SHAPES.to_vec();
            let rows = overlap::experiment(seed, trials.max(1), &shapes, &mut chrome)?;
            println!("overlap experiment (virtual time), seed {seed}, trials {trials}");
            print!("{}", overlap::table(&rows));
            if let Some(path) = trace {
                trace::write_chrome(path.as_ref(), &chrome).map_err(|e| format!("{path}: {e}"))?;
                println!("chrome trace written to {path}");
            }
            let ok = rows.iter().all(|r| r.efficiency_min >= 0.999);
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Cmd::Determinism { seeds } => {
            let mut bad = 0;
            for seed in seeds.clone() {
                let (_, x) = chiplane_sim::run_seed(seed, false);
                let (_, y) = chiplane_sim::run_seed(seed, false);
                if x.hash != y.hash {
                    println!("seed {seed}: {:016x} != {:016x}", x.hash, y.hash);
                    println!("  replay: {env}cargo run --release -p chiplane-sim -- run --seed {seed}");
                    bad += 1;
                }
            }
            println!("determinism: {} seeds, {bad} differ", seeds.end - seeds.start);
            Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

fn detail(v: &Verdict, max: usize) -> String {
    match v {
        Verdict::Pass => String::new(),
        Verdict::Safety(m) | Verdict::Liveness(m) | Verdict::Panic(m) => {
            format!(": {}", m.chars().take(max).collect::<String>())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_range_exactly() {
        let seeds = 7..1_000_003;
        let mut next = seeds.start;
        for i in 0..7 {
            let r = shard_of(&seeds, (i, 7));
            assert_eq!(r.start, next);
            next = r.end;
        }
        assert_eq!(next, seeds.end);
        assert!(parse_shard("3/3").is_err());
        assert!(parse_range("5..2").is_err());
        assert_eq!(parse_range("0..10"), Ok(0..10));
    }

    #[test]
    fn the_command_line_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
