//! Simulator throughput: simulated events per second over a fixed block of
//! 50 seeds (the events per block are fixed by the seeds, so
//! `Throughput::Elements` turns time per block into events/s).
//!
//! Peer measured in the same run: the same block with the Chrome trace
//! recording on (every lane job, handle and word change becomes a span), so
//! the report can state the cost of tracing as a ratio.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn block(record: bool) -> u64 {
    (0..50u64).map(|s| chiplane_sim::run_seed(s, record).1.events).sum()
}

fn bench(c: &mut Criterion) {
    let events = block(false);
    let mut g = c.benchmark_group("sim");
    g.throughput(Throughput::Elements(events));
    g.bench_function("50 seeds", |b| b.iter(|| block(false)));
    g.bench_function("50 seeds, trace recorded (peer)", |b| b.iter(|| block(true)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
