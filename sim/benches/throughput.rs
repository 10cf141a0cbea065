//! Simulator throughput: simulated events per second over a fixed block of
//! seeds (criterion reports time per block; events per block are fixed by
//! the seeds, so `Throughput::Elements` turns it into events/s).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let seeds = 0..50u64;
    let events: u64 = seeds.clone().map(|s| chiplane_sim::run_seed(s, false).1.events).sum();
    let mut g = c.benchmark_group("sim");
    g.throughput(Throughput::Elements(events));
    g.bench_function("50 seeds (events/s)", |b| {
        b.iter(|| {
            let mut n = 0;
            for s in seeds.clone() {
                n += chiplane_sim::run_seed(s, false).1.events;
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
