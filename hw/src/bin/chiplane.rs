//! `chiplane`: the command-line tool. See `chiplane --help`.
//!
//! `chiplane overlap` runs the seed's overlap experiment (see
//! `chiplane_hw::overlap`) and prints the table. The L3 level's chip child
//! is this program itself, re-executed (`chiplane_hw::init` below). The
//! command line is parsed by `chiplane_hw::cli`.

use chiplane_hw::cli::{self, Cli};
use chiplane_hw::overlap;

fn main() {
    // This program is also the chip child of its own L3 worker.
    chiplane_hw::init();
    let opts = match cli::parse(std::env::args_os().skip(1)) {
        Ok(Cli::Help(text)) => {
            print!("{text}");
            return;
        }
        Ok(Cli::Version(text)) => {
            println!("{text}");
            return;
        }
        Ok(Cli::Overlap(opts)) => opts,
        Err(e) => {
            eprintln!("error: {e}\n\n{}\n\nFor more information, try '--help'.", cli::USAGE);
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
