//! Prepare and run times of the host device's kernels (medians of repeated
//! trials), to pick a `heavy_prepare` size for the overlap demo.
//!
//! `cargo run -p chiplane-hw --example host_timings [TRIALS]`
//!
//! A measuring tool, not a benchmark of record: speed claims are made by
//! criterion benchmarks as ratios against a peer measured in the same run.

use chiplane_core::chip::{CallableSpec, Chip, NeverCancel, RunConfig};
use chiplane_core::conformance::args_for;
use chiplane_core::kernels::{HEAVY_PREPARE, REPEAT_VECTOR_ADD, VECTOR_ADD};
use chiplane_hw::devices::host::HostChip;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let trials: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(21);
    let chip = HostChip::new().expect("kernel library");
    let specs = [
        (CallableSpec::chip(VECTOR_ADD, vec![4096]), 1),
        (CallableSpec::chip(REPEAT_VECTOR_ADD, vec![4096]), 1000),
        (CallableSpec::chip(REPEAT_VECTOR_ADD, vec![4096]), 10000),
        (CallableSpec::chip(HEAVY_PREPARE, vec![4096, 0]), 1),
        (CallableSpec::chip(HEAVY_PREPARE, vec![4096, 4 << 20]), 1),
        (CallableSpec::chip(HEAVY_PREPARE, vec![4096, 6 << 20]), 1),
        (CallableSpec::chip(HEAVY_PREPARE, vec![4096, 8 << 20]), 1),
        (CallableSpec::chip(HEAVY_PREPARE, vec![4096, 16 << 20]), 1),
        (CallableSpec::chip(HEAVY_PREPARE, vec![4096, 32 << 20]), 1),
    ];
    println!(
        "{:<20} {:>10} {:>8} {:>14} {:>12} {:>12}",
        "kernel", "bytes", "repeat", "prepare_us", "run_us", "release_us"
    );
    for (spec, repeat) in &specs {
        let args = args_for(spec, 1, *repeat);
        let (mut prep, mut run, mut rel) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..trials {
            let t0 = Instant::now();
            let p = chip.prepare(spec, &NeverCancel).expect("prepare");
            let t1 = Instant::now();
            chip.run(&p, &args, &RunConfig::default()).expect("run");
            let t2 = Instant::now();
            chip.release(p);
            let t3 = Instant::now();
            prep.push(t1 - t0);
            run.push(t2 - t1);
            rel.push(t3 - t2);
        }
        println!(
            "{:<20} {:>10} {:>8} {:>14.1} {:>12.1} {:>12.1}",
            spec.kernel,
            spec.params.get(1).copied().unwrap_or(0),
            repeat,
            median(prep).as_secs_f64() * 1e6,
            median(run).as_secs_f64() * 1e6,
            median(rel).as_secs_f64() * 1e6
        );
    }
}
