//! `chiplane`: the command-line tool.
//!
//! ```text
//! chiplane overlap [--device host|cuda] [--level l2|l3|both] [--trace FILE]
//!                  [--trials N] [--repeat R] [--c1-ms MS]
//! ```
//! Runs the seed's overlap experiment (see `chiplane_hw::overlap`) and prints
//! the table: serial and overlap medians, speedup, the ideal overlap from the
//! measured components, the efficiency, max_diff against the reference, and
//! the sim's prediction for the same components.

use chiplane_hw::l3::Device;
use chiplane_hw::overlap::{self, Levels, Options};

const USAGE: &str = "usage: chiplane overlap [--device host|cuda] [--level l2|l3|both] [--trace FILE] \
                     [--trials N] [--repeat R] [--c1-ms MS]";

fn parse(args: &[String]) -> Result<Options, String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("overlap") => {}
        Some("-h" | "--help") | None => return Err(USAGE.into()),
        Some(other) => return Err(format!("unknown command {other}\n{USAGE}")),
    }
    let mut o = Options::default();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{a} needs a value\n{USAGE}"));
        match a.as_str() {
            "--device" => {
                let v = value()?;
                o.device = Device::parse(&v).ok_or_else(|| format!("unknown device {v} (host or cuda)"))?;
            }
            "--level" => {
                o.levels = match value()?.as_str() {
                    "l2" | "L2" => Levels::L2,
                    "l3" | "L3" => Levels::L3,
                    "both" => Levels::Both,
                    v => return Err(format!("unknown level {v} (l2, l3 or both)")),
                }
            }
            "--trace" => o.trace = Some(value()?.into()),
            "--trials" => o.trials = value()?.parse().map_err(|e| format!("--trials: {e}"))?,
            "--repeat" => o.c1_repeat = Some(value()?.parse().map_err(|e| format!("--repeat: {e}"))?),
            "--c1-ms" => o.c1_target_ms = value()?.parse().map_err(|e| format!("--c1-ms: {e}"))?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if o.trials == 0 {
        return Err("--trials must be at least 1".into());
    }
    Ok(o)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    match overlap::run(&opts) {
        Ok(report) => {
            print!("{}", report.render());
            if let Some(t) = &opts.trace {
                println!("trace written to {} (chrome://tracing or ui.perfetto.dev)", t.display());
            }
        }
        Err(e) => {
            eprintln!("chiplane overlap: {e}");
            std::process::exit(1);
        }
    }
}
