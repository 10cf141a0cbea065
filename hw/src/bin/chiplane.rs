//! `chiplane`: the command-line tool. See `chiplane --help`.
//!
//! `chiplane overlap` runs the seed's overlap experiment (see
//! `chiplane_hw::overlap`) and prints the table. The L3 level's chip child
//! is this program itself, re-executed (`chiplane_hw::init` below).

use std::path::PathBuf;

use chiplane_hw::l3::Device;
use chiplane_hw::overlap::{self, Levels, Options};
use clap::{Parser, Subcommand, ValueEnum};

/// chiplane: prepare the next callable while the chip still runs the last
/// one, through a model-checked mailbox protocol, and measure what it saves.
#[derive(Parser, Debug)]
#[command(name = "chiplane", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The overlap experiment: C1 (a long repeat_vector_add) runs while C2
    /// (heavy_prepare) is registered, against the serial order; paired
    /// trials, medians with 95% intervals, efficiency against the ideal.
    Overlap(OverlapArgs),
}

#[derive(clap::Args, Debug)]
struct OverlapArgs {
    /// The device.
    #[arg(long, value_enum, default_value_t = DeviceArg::Host)]
    device: DeviceArg,
    /// Which levels: l2 (in process), l3 (a chip child process) or both.
    #[arg(long, value_enum, default_value_t = LevelArg::Both)]
    level: LevelArg,
    /// Serial/overlap pairs per level and delay.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..))]
    pairs: u64,
    /// Delays before C2's register, in ms (comma separated).
    #[arg(long, value_delimiter = ',', default_values_t = [0u64, 2])]
    delays: Vec<u64>,
    /// Fixed C1 repeat count (default: calibrated to --c1-ms).
    #[arg(long)]
    repeat: Option<u64>,
    /// Target duration of one run of C1, in ms.
    #[arg(long, default_value_t = 15.0)]
    c1_ms: f64,
    /// Write a Chrome/Perfetto trace (lanes as tracks) to this file.
    #[arg(long)]
    trace: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DeviceArg {
    /// The host CPU.
    Host,
    /// CUDA (needs the `cuda` feature and a GPU).
    Cuda,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LevelArg {
    L2,
    L3,
    Both,
}

fn main() {
    // This program is also the chip child of its own L3 worker.
    chiplane_hw::init();
    let cli = Cli::parse();
    let Command::Overlap(a) = cli.command;
    let opts = Options {
        device: match a.device {
            DeviceArg::Host => Device::Host,
            DeviceArg::Cuda => Device::Cuda,
        },
        levels: match a.level {
            LevelArg::L2 => Levels::L2,
            LevelArg::L3 => Levels::L3,
            LevelArg::Both => Levels::Both,
        },
        pairs: a.pairs as usize,
        delays_ms: a.delays,
        c1_target_ms: a.c1_ms,
        c1_repeat: a.repeat,
        trace: a.trace,
        ..Options::default()
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
