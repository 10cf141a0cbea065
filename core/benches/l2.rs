//! L2 overhead, measured against a peer in the same run.
//!
//! - `l2/run_async_wait`: `worker.run_async(h, ..).wait()` on a no-op chip:
//!   pin, enqueue, wake the run lane, run, unpin, resolve the cell, wake the
//!   caller. Everything the L2 layer adds to a run.
//! - `l2/register_unregister`: `worker.register(spec)` (digest, slot, prepare
//!   on the register lane, settlement) then `worker.unregister(h)` (free,
//!   release on the register lane).
//! - `peer/mpsc_round_trip`: a plain `std::sync::mpsc` request to a worker
//!   thread and its reply: the floor any cross-thread hand-off pays.
//!
//! Report medians (target/criterion/*/new/estimates.json) and the ratios
//! `run_async_wait / mpsc_round_trip` and `register_unregister /
//! mpsc_round_trip`; never an absolute time on its own.
//!
//! Run: `cargo bench -p chiplane-core --bench l2`.
// The peer is plain std by design (it is what we compare against).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::sync::mpsc;

use chiplane_core::conc::{L2Worker, NodeConfig};
use chiplane_core::{CallableSpec, CancelProbe, Chip, ChipError, RunConfig, RunOutput, TaskArgs};
use criterion::{criterion_group, criterion_main, Criterion};

/// A chip whose prepare, run and release do nothing.
struct NoopChip;

impl Chip for NoopChip {
    type Prepared = ();

    fn name(&self) -> &str {
        "noop"
    }

    fn prepare(&self, _spec: &CallableSpec, _cancel: &dyn CancelProbe) -> Result<(), ChipError> {
        Ok(())
    }

    fn run(&self, _prepared: &(), _args: &TaskArgs, _config: &RunConfig) -> Result<RunOutput, ChipError> {
        Ok(RunOutput::default())
    }

    fn release(&self, _prepared: ()) {}
}

fn bench(c: &mut Criterion) {
    let worker = L2Worker::new(NoopChip, NodeConfig::default());
    let spec = CallableSpec::chip("noop", vec![1]);
    let h = worker.register(spec.clone()).unwrap();
    let config = RunConfig::default();

    let mut group = c.benchmark_group("l2");
    group.bench_function("run_async_wait", |b| {
        b.iter(|| worker.run_async(h, TaskArgs::default(), config).unwrap().wait().unwrap())
    });
    let other = CallableSpec::chip("noop", vec![2]);
    group.bench_function("register_unregister", |b| {
        b.iter(|| {
            let h = worker.register(other.clone()).unwrap();
            worker.unregister(h).unwrap();
        })
    });
    group.finish();

    let (req_tx, req_rx) = mpsc::channel::<u64>();
    let (rep_tx, rep_rx) = mpsc::channel::<u64>();
    let peer = std::thread::spawn(move || {
        for x in req_rx {
            if rep_tx.send(x).is_err() {
                break;
            }
        }
    });
    let mut group = c.benchmark_group("peer");
    group.bench_function("mpsc_round_trip", |b| {
        b.iter(|| {
            req_tx.send(1).unwrap();
            rep_rx.recv().unwrap()
        })
    });
    group.finish();
    drop(req_tx);
    peer.join().unwrap();
    worker.unregister(h).unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
