//! `cargo run -p chiplane-models --release --bin exhaustive [-- --quick]`:
//! the exhaustive state-space check of the composed pure protocol, for each
//! configuration; prints the states explored, the time, and the named states
//! reached; exits non-zero on a violation (printing the action path) or if a
//! named state was never reached.
use chiplane_models::exhaustive::{explore, Report};
use chiplane_models::system::Config;
use std::time::Instant;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let mut failed = false;
    for (name, cfg) in configs(quick) {
        let t = Instant::now();
        let r = explore(cfg, 50_000_000);
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{name}: {} states, {} transitions, {} terminal, depth {} in {secs:.1} s{}",
            r.states,
            r.transitions,
            r.terminal,
            r.depth_max,
            if r.truncated { " (TRUNCATED)" } else { "" }
        );
        failed |= verdict(&cfg, &r);
    }
    if failed {
        std::process::exit(1);
    }
}

/// The configurations checked: (name, config).
pub fn configs(quick: bool) -> Vec<(&'static str, Config)> {
    let base = Config::default();
    let mut v = vec![
        ("ops3+death+errors", Config { ops_max: 3, allow_death: true, allow_chip_errors: true, ..base }),
        ("ops4", Config { ops_max: 4, ..base }),
        ("ops4+busy-chip", Config { ops_max: 4, allow_memory: false, prepare_waits_for_runs: true, ..base }),
    ];
    if !quick {
        v.push(("ops4+death", Config { ops_max: 4, allow_death: true, ..base }));
    }
    v
}

fn verdict(cfg: &Config, r: &Report) -> bool {
    if let Some((v, path)) = &r.violation {
        println!("  VIOLATION: {v}\n  path ({} actions): {path:?}", path.len());
        return true;
    }
    let missing = r.missing(cfg);
    if !r.truncated && !missing.is_empty() {
        println!("  UNREACHED named states: {missing:?}");
        return true;
    }
    println!("  reached: {:?}", r.reached);
    false
}
