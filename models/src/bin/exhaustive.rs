//! `cargo run -p chiplane-models --release --bin exhaustive [-- OPTIONS]`:
//! the exhaustive state-space check of the composed pure protocol, for each
//! configuration; prints the states explored, the time, states/s and the
//! named states reached. Exits non-zero on a violation (printing the action
//! path), on a named state never reached, and on a search that a bound cut
//! (`TRUNCATED`: a partial search proves nothing about the rest).
//!
//! Options: `--quick` (the CI set, about a minute), `--only NAME` (one
//! configuration), `--threads N` (default: the machine's cores, at most 2),
//! `--states-max N`, `--depth-max N`, `--time-max SECONDS` (the bounds;
//! generous by default). A bound that cuts the search fails it, e.g.
//! `cargo run -p chiplane-models --release --bin exhaustive -- --only ops4
//! --states-max 1000` prints `ops4: 1000 states, ... TRUNCATED by [States]`
//! and exits 1 (`tests/exhaustive_search.rs` runs exactly that).
use chiplane_models::exhaustive::{explore, Bounds, Report};
use chiplane_models::system::Config;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (quick, only, bounds) = match parse(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("exhaustive: {e}");
            std::process::exit(2);
        }
    };
    let mut failed = false;
    let mut ran = 0;
    for (name, cfg) in configs(quick) {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        ran += 1;
        let r = explore(cfg, bounds);
        println!(
            "{name}: {} states, {} transitions, {} terminal, depth {} in {:.1} s ({:.0} states/s, {} threads){}",
            r.states,
            r.transitions,
            r.terminal,
            r.depth_max,
            r.elapsed.as_secs_f64(),
            r.states_per_s(),
            bounds.threads,
            if r.truncated.is_empty() { String::new() } else { format!(" TRUNCATED by {:?}", r.truncated) }
        );
        failed |= verdict(&cfg, &r);
    }
    if ran == 0 {
        eprintln!("exhaustive: no configuration named {only:?}");
        std::process::exit(2);
    }
    if failed {
        std::process::exit(1);
    }
}

fn parse(args: &[String]) -> Result<(bool, Option<String>, Bounds), String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut bounds = Bounds { threads: cores.min(2), ..Bounds::default() };
    let (mut quick, mut only) = (false, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |what: &str| -> Result<u64, String> {
            let v = it.next().ok_or_else(|| format!("{a} needs {what}"))?;
            v.parse().map_err(|e| format!("{a} {v}: {e}"))
        };
        match a.as_str() {
            "--quick" => quick = true,
            "--only" => only = Some(it.next().ok_or("--only needs a configuration name")?.clone()),
            "--threads" => bounds.threads = value("a thread count")?.max(1) as usize,
            "--states-max" => bounds.states_max = value("a state count")?,
            "--depth-max" => bounds.depth_max = value("a depth")? as usize,
            "--time-max" => bounds.time_max = Duration::from_secs(value("seconds")?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok((quick, only, bounds))
}

/// The configurations checked: (name, config). `--quick` keeps the first
/// six (under a minute on the 2-core machine); the full set adds two more
/// five-operation ones (under ten minutes).
pub fn configs(quick: bool) -> Vec<(&'static str, Config)> {
    let base = Config::default();
    let busy = Config { allow_memory: false, prepare_waits_for_runs: true, ..base };
    let mut v = vec![
        ("ops3+death+errors", Config { ops_max: 3, allow_death: true, allow_chip_errors: true, ..base }),
        ("ops4", Config { ops_max: 4, ..base }),
        ("ops4+busy-chip", Config { ops_max: 4, ..busy }),
        ("ops4+death", Config { ops_max: 4, allow_death: true, ..base }),
        ("ops4+death+errors", Config { ops_max: 4, allow_death: true, allow_chip_errors: true, ..base }),
        ("ops5", Config { ops_max: 5, ..base }),
    ];
    if !quick {
        v.push(("ops5+busy-chip", Config { ops_max: 5, ..busy }));
        v.push(("ops5+death", Config { ops_max: 5, allow_death: true, ..base }));
    }
    v
}

fn verdict(cfg: &Config, r: &Report) -> bool {
    if let Some((v, path)) = &r.violation {
        println!("  VIOLATION: {v}\n  path ({} actions): {path:?}", path.len());
        return true;
    }
    if !r.truncated.is_empty() {
        println!(
            "  TRUNCATED: the search was cut by {:?}; it proves nothing about the states it did not visit",
            r.truncated
        );
        return true;
    }
    let missing = r.missing(cfg);
    if !missing.is_empty() {
        println!("  UNREACHED named states: {missing:?}");
        return true;
    }
    println!("  reached: {:?}", r.reached.names());
    false
}
