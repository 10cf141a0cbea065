//! The control round trip during TASK_RUNNING across processes, against its
//! peers, in one criterion run (`cargo bench -p chiplane-hw --bench
//! control_rtt`):
//! - `atomic_pingpong`: two threads bounce a value through one `AtomicU64`
//!   (spin, then yield): the floor of any shared-memory round trip;
//! - `crossbeam_channel`: a request and a reply through two bounded(1)
//!   crossbeam channels between two threads;
//! - `unix_socket`: one byte each way over a `UnixStream` pair between two
//!   threads (a kernel wake-up each way);
//! - `l3_control_during_task`: an L3 register control of an
//!   already-registered callable (accepted at once, no prepare, no
//!   settlement owed) entering while a long task runs on the chip child
//!   (the word goes TASK_RUNNING -> CONTROL_READY -> CONTROL_DONE ->
//!   TASK_RUNNING), through the worker's driver thread: caller -> driver ->
//!   memfd mailbox -> child serve loop -> node -> back. Each batch is
//!   followed (untimed) by as many unregisters.
//!
//! Every iteration is one complete round trip; the ratios against the floor
//! are what the report quotes.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chiplane_core::chip::{CallableSpec, RunConfig, TaskArgs};
use chiplane_core::kernels::{REPEAT_VECTOR_ADD, VECTOR_ADD};
use chiplane_core::mailbox::word::WordState;
use chiplane_hw::l3::{L3Config, L3RunHandle, L3Worker, TaskHandle};
use criterion::{criterion_group, criterion_main, Criterion};

/// Spin briefly, then yield (the machine may have fewer free cores than
/// spinning threads).
fn wait_for(flag: &AtomicU64, want: u64) {
    let mut spins = 0u32;
    // Acquire: pairs with the peer's Release store of `want`.
    while flag.load(Ordering::Acquire) != want {
        spins += 1;
        if spins < 256 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

fn atomic_pingpong(c: &mut Criterion) {
    let word = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let peer = {
        let (word, stop) = (word.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = 0u64;
            let mut spins = 0u32;
            // Relaxed: the stop flag only ends the loop; no data with it.
            while !stop.load(Ordering::Relaxed) {
                // Acquire: pairs with the bench thread's Release store (ping).
                let v = word.load(Ordering::Acquire);
                if v != seen && v % 2 == 1 {
                    seen = v + 1;
                    spins = 0;
                    // Release: pairs with `wait_for`'s Acquire load (pong).
                    word.store(seen, Ordering::Release);
                } else if spins < 256 {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        })
    };
    let mut next = 1u64;
    c.bench_function("atomic_pingpong", |b| {
        b.iter(|| {
            // Release: pairs with the peer's Acquire load (ping).
            word.store(next, Ordering::Release);
            wait_for(&word, next + 1);
            next += 2;
        })
    });
    // Relaxed: see the peer's loop.
    stop.store(true, Ordering::Relaxed);
    peer.join().unwrap();
}

fn crossbeam(c: &mut Criterion) {
    let (req_tx, req_rx) = crossbeam_channel::bounded::<u64>(1);
    let (rep_tx, rep_rx) = crossbeam_channel::bounded::<u64>(1);
    let peer = std::thread::spawn(move || {
        while let Ok(v) = req_rx.recv() {
            if rep_tx.send(v + 1).is_err() {
                break;
            }
        }
    });
    c.bench_function("crossbeam_channel", |b| {
        b.iter(|| {
            req_tx.send(1).unwrap();
            rep_rx.recv().unwrap()
        })
    });
    drop(req_tx);
    peer.join().unwrap();
}

fn unix_socket(c: &mut Criterion) {
    let (mut a, mut b_end) = UnixStream::pair().unwrap();
    let peer = std::thread::spawn(move || {
        let mut buf = [0u8; 1];
        while b_end.read_exact(&mut buf).is_ok() {
            if b_end.write_all(&buf).is_err() {
                break;
            }
        }
    });
    c.bench_function("unix_socket", |b| {
        let mut buf = [7u8; 1];
        b.iter(|| {
            a.write_all(&buf).unwrap();
            a.read_exact(&mut buf).unwrap();
        })
    });
    drop(a);
    peer.join().unwrap();
}

fn child_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chiplane-child"))
}

fn long_task(w: &L3Worker, h: chiplane_core::Handle) -> L3RunHandle<TaskHandle> {
    let args = TaskArgs { tensors: vec![vec![1.0; 4096], vec![0.5; 4096]], scalars: vec![1_500_000] };
    w.run_async(move |o| o.submit(0, h, args, RunConfig::default()).unwrap())
}

fn l3_control_during_task(c: &mut Criterion) {
    let cfg = L3Config { child_exe: Some(child_exe()), ..L3Config::default() };
    let w = L3Worker::new(cfg).expect("chip child");
    let c1 = w.register(0, CallableSpec::chip(REPEAT_VECTOR_ADD, vec![4096])).unwrap();
    let spec = CallableSpec::chip(VECTOR_ADD, vec![64]);
    let h = w.register(0, spec.clone()).unwrap();
    let mut running: Option<L3RunHandle<TaskHandle>> = None;
    let mut outside_task = 0u64;
    c.bench_function("l3_control_during_task", |b| {
        b.iter_custom(|iters| {
            // Keep a long task running (a few seconds each on this machine).
            let running_now = w.word(0) == Some(WordState::TaskRunning.encode());
            if !running_now {
                if let Some(r) = running.take() {
                    let out = r.wait();
                    assert!(out.tasks[0].is_ok(), "{:?}", out.tasks);
                }
                running = Some(long_task(&w, c1));
                let deadline = Instant::now() + Duration::from_secs(10);
                while w.word(0) != Some(WordState::TaskRunning.encode()) {
                    assert!(Instant::now() < deadline, "the long task never started");
                    std::thread::yield_now();
                }
            }
            let t = Instant::now();
            for _ in 0..iters {
                let got = w.register_async(0, spec.clone()).unwrap().wait().unwrap();
                assert_eq!(got, h);
            }
            let elapsed = t.elapsed();
            if w.word(0) != Some(WordState::TaskRunning.encode()) {
                outside_task += 1;
            }
            for _ in 0..iters {
                w.unregister(0, h).unwrap();
            }
            elapsed
        })
    });
    if let Some(r) = running.take() {
        let _ = r.wait();
    }
    eprintln!("l3_control_during_task: {outside_task} batch(es) ended after the long task finished");
}

fn benches(c: &mut Criterion) {
    atomic_pingpong(c);
    crossbeam(c);
    unix_socket(c);
    l3_control_during_task(c);
}

criterion_group! {
    name = control_rtt;
    config = Criterion::default().sample_size(30).warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(control_rtt);
