//! The L3 control round trip and per-run overhead against peers measured in
//! the same run, under the same conditions (`cargo bench -p chiplane-hw
//! --bench control_rtt`):
//!
//! - **one process per side**: every peer but crossbeam crosses a process
//!   boundary (crossbeam-channel cannot; it runs between two threads of one
//!   process and says so in its name);
//! - **the same background task**: the `busy` group measures while a
//!   long task keeps one core of the serving process busy (chiplane: a long
//!   `repeat_vector_add` on the chip child's run lane; the peers: a thread
//!   of the peer process spinning); the `idle` group without it;
//! - **the same wait policy**: the floor waits exactly as chiplane does
//!   (spin for the process's calibrated budget, then core's doorbell
//!   handshake on a futex in shared memory).
//!
//! Benchmarks (group/name):
//! - `{idle,busy}/floor_shm`: the bare cross-process shared-memory round
//!   trip: a counter bumped by the parent, echoed by the peer process, each
//!   side waiting with the policy above. The floor for this shape;
//! - `busy/floor_shm_task_policy`: the same with chiplane's policy beside a
//!   running task instead (docs/protocol.md 4.7): the under-task spin
//!   budget (0 on at most 2 cores) on both sides, then the requesting side
//!   yields for the under-task yield budget, then each sleeps. This is what
//!   chiplane's control does during TASK_RUNNING; `busy/floor_shm` is what
//!   a side that kept spinning beside the task would get;
//! - `{idle,busy}/unix_socket`: one byte each way over a Unix stream socket
//!   to the peer process (a kernel wake-up each way);
//! - `{idle,busy}/crossbeam_in_process`: a request and a reply through two
//!   bounded(1) crossbeam channels between two threads;
//! - `idle/l3_control`: an L3 register control of an already-registered
//!   callable (accepted at once: no prepare; it settles at once), at IDLE,
//!   through the synchronous `register`;
//! - `busy/l3_control`: the same while a long task runs on the chip (the word
//!   goes TASK_RUNNING -> CONTROL_READY -> CONTROL_DONE -> TASK_RUNNING);
//! - `busy/l3_control_async_wait`: the same through `register_async(..)`
//!   and then the handle's `wait` (the async path: between the two no
//!   caller is inside `wait_until`, so the driver's proxy may stand);
//! - `idle/l3_run_noop`: a run on the null device (no-op chip), from
//!   `run_async` to `wait` returning: the L3 per-run overhead. Every null
//!   run is short (`Chip::run_inline`), so the chip child's serve loop runs
//!   it itself (docs/protocol.md rule 9);
//! - `idle/l3_run_past_inline`: the smallest host run that is *not* short
//!   (`repeat_vector_add` of 4,096 elements, one repeat past
//!   `CHIPLANE_RUN_INLINE_OPS`): what a run pays on the run lane, a
//!   wake-up of the lane thread included;
//! - `one_thread/l3_control_steps` and `one_thread/l3_run_noop_steps`: the
//!   same register control and no-op run with the parent's `Port` and the
//!   child's `Serve` (over core's `NodeBackend` on the null device) stepped
//!   in turn by one thread, on one heap region: the protocol's software,
//!   both sides' work summed, without a second process, a cache line
//!   crossing cores or any wait. In two processes part of the two sides'
//!   work overlaps (the child pushes a settlement while the parent reads
//!   the reply), so `idle/l3_control` may come out below it; where it does
//!   or is near it, the round trip is the software, not the crossing or
//!   the waiting.
//!
//! After criterion, it prints the L3 pipelined throughput (batches of
//! back-to-back `run_async` of no-op tasks, runs/s per batch and the spread;
//! each batch is followed by a batch of `idle/floor_shm` round trips of
//! about the same length, whose spread is the machine's own over batches of
//! that length, and the spread of the ratio per pair is printed too),
//! the futex wake-ups per idle control and per no-op run, and the CPU an
//! idle worker's child uses.
//!
//! The chip child and the peer processes are the `chiplane` program (it
//! calls `chiplane_hw::init`) and this bench's own binary (`--peer ...`).
//!
//! Measured results (medians and ratios) are in `hw/benches/README.md`.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chiplane_core::chip::{CallableSpec, RunConfig, TaskArgs};
use chiplane_core::conc::bell::Doorbell;
use chiplane_core::conc::bell::LocalFutex;
use chiplane_core::conc::child::NodeBackend;
use chiplane_core::conc::port::{Port, SteppedChild};
use chiplane_core::conc::region::SharedRegion;
use chiplane_core::conc::serve::{Serve, Step};
use chiplane_core::conc::wait::{spin_until, under_task_spin_budget, under_task_yield_budget, Backoff};
use chiplane_core::conc::NodeConfig;
use chiplane_core::conc::Worker;
use chiplane_core::frame::{ControlOp, ControlReply};
use chiplane_core::kernels::{REPEAT_VECTOR_ADD, VECTOR_ADD};
use chiplane_core::mailbox::word::WordState;
use chiplane_core::slot::SlotLimits;
use chiplane_core::{Generation, SlotIndex, WorkerId};
use chiplane_hw::devices::null::NullChip;
use chiplane_hw::l3::memory::SysFutex;
use chiplane_hw::l3::{Device, L3Config, L3Worker};
use chiplane_hw::process::ChildCommand;
use chiplane_hw::shm::SharedMemory;
use criterion::Criterion;

/// Offsets in the floor's mapping: request, reply, and a bell per side.
const REQ: usize = 0;
const REP: usize = 64;
const PEER_BELL: usize = 128;
const PARENT_BELL: usize = 192;
const FLOOR_BYTES: usize = 4096;

fn chiplane_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chiplane"))
}

/// How a floor side waits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// Spin for the process's budget, then sleep: chiplane's policy with no
    /// task running.
    Spin,
    /// Chiplane's policy beside a running task (docs/protocol.md 4.7): spin
    /// for the under-task budget (0 on at most 2 cores); the requesting side
    /// then yields its core for the under-task yield budget; then sleep.
    UnderTask,
}

/// Wait until `word` differs from `old` with `policy`, then sleep on the
/// bell (`seq`, `sleepers`). `requester`: the side that sent a request and
/// waits for its reply (the only side that yields under a task, as
/// chiplane's caller does and its serve loop does not).
fn wait_change(shm: &SharedMemory, word: usize, old: u32, bell: usize, policy: Policy, requester: bool) -> u32 {
    let w = shm.atomic_u32(word).expect("in the mapping");
    // Acquire: pairs with the other side's Release store.
    let changed = || w.load(Ordering::Acquire) != old;
    let ready = match policy {
        Policy::Spin => spin_until(changed),
        Policy::UnderTask => {
            let mut backoff = Backoff::default();
            let yields = if requester { under_task_yield_budget() } else { 0 };
            loop {
                if changed() {
                    break true;
                }
                if !backoff.spin_within(under_task_spin_budget()) && !backoff.yield_within(yields) {
                    break false;
                }
            }
        }
    };
    if !ready {
        let (seq, sleepers) = (shm.atomic_u32(bell).unwrap(), shm.atomic_u32(bell + 4).unwrap());
        let bell = Doorbell::from_words(seq, sleepers, &SysFutex);
        while !changed() {
            bell.sleep(changed, Some(Duration::from_millis(100)));
        }
    }
    // Acquire: as above.
    w.load(Ordering::Acquire)
}

fn publish(shm: &SharedMemory, word: usize, value: u32, bell: usize) {
    // Release: pairs with the waiter's Acquire loads.
    shm.atomic_u32(word).unwrap().store(value, Ordering::Release);
    let (seq, sleepers) = (shm.atomic_u32(bell).unwrap(), shm.atomic_u32(bell + 4).unwrap());
    Doorbell::from_words(seq, sleepers, &SysFutex).ring();
}

/// A thread that keeps one core busy until `stop`.
fn busy_thread(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut x = 0u64;
        // Relaxed: the flag only ends the loop.
        while !stop.load(Ordering::Relaxed) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    })
}

/// The peer processes (this binary, `--peer KIND [busy] ...`).
fn peer_main(args: &[String]) {
    chiplane_hw::tune::calibrate();
    let busy = args.iter().any(|a| a == "busy");
    let stop = Arc::new(AtomicBool::new(false));
    let background = busy.then(|| busy_thread(stop.clone()));
    match args[2].as_str() {
        "floor" => {
            // SAFETY: called once with the arguments the parent passed.
            let shm = unsafe { chiplane_hw::process::inherited_shm(args.iter().cloned()) }.expect("mapping");
            let policy = if args.iter().any(|a| a == "task-policy") { Policy::UnderTask } else { Policy::Spin };
            let mut seen = 0u32;
            loop {
                seen = wait_change(&shm, REQ, seen, PEER_BELL, policy, false);
                if seen == u32::MAX {
                    break;
                }
                publish(&shm, REP, seen, PARENT_BELL);
            }
        }
        "socket" => {
            let mut s = UnixStream::connect(&args[3]).expect("connect");
            let mut b = [0u8; 1];
            while s.read_exact(&mut b).is_ok() {
                if s.write_all(&b).is_err() {
                    break;
                }
            }
        }
        other => panic!("unknown peer {other}"),
    }
    // Relaxed: see `busy_thread`.
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = background {
        let _ = t.join();
    }
}

fn this_exe() -> PathBuf {
    std::env::current_exe().expect("bench path")
}

/// The floor's peer process and the parent's end of it.
struct FloorPeer {
    shm: SharedMemory,
    child: chiplane_hw::process::ChipChild,
    policy: Policy,
    next: u32,
}

impl FloorPeer {
    fn spawn(busy: bool, policy: Policy) -> FloorPeer {
        let shm = SharedMemory::create(FLOOR_BYTES).unwrap();
        let mut cmd = ChildCommand::new(this_exe()).arg("--peer").arg("floor").quiet();
        if busy {
            cmd = cmd.arg("busy");
        }
        if policy == Policy::UnderTask {
            cmd = cmd.arg("task-policy");
        }
        let child = cmd.spawn(&shm).unwrap();
        FloorPeer { shm, child, policy, next: 1 }
    }

    /// One request and its echo.
    fn round_trip(&mut self) {
        publish(&self.shm, REQ, self.next, PEER_BELL);
        let got = wait_change(&self.shm, REP, self.next - 1, PARENT_BELL, self.policy, true);
        assert_eq!(got, self.next);
        self.next += 1;
    }

    fn finish(mut self) {
        publish(&self.shm, REQ, u32::MAX, PEER_BELL);
        let _ = self.child.wait_timeout(Duration::from_secs(10));
    }
}

fn floor(c: &mut Criterion, group: &str, busy: bool, policy: Policy) {
    let name = match policy {
        Policy::Spin => "floor_shm",
        Policy::UnderTask => "floor_shm_task_policy",
    };
    let mut peer = FloorPeer::spawn(busy, policy);
    c.benchmark_group(group).bench_function(name, |b| b.iter(|| peer.round_trip()));
    peer.finish();
}

fn unix_socket(c: &mut Criterion, group: &str, busy: bool) {
    let path = std::env::temp_dir().join(format!("chiplane-bench-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let mut cmd = Command::new(this_exe());
    cmd.arg("--peer").arg("socket").arg(&path).stdout(Stdio::null()).stderr(Stdio::null());
    if busy {
        cmd.arg("busy");
    }
    let mut child: Child = cmd.spawn().unwrap();
    let (mut s, _) = listener.accept().unwrap();
    c.benchmark_group(group).bench_function("unix_socket", |b| {
        let mut buf = [7u8; 1];
        b.iter(|| {
            s.write_all(&buf).unwrap();
            s.read_exact(&mut buf).unwrap();
        })
    });
    drop(s);
    let _ = child.wait();
    let _ = std::fs::remove_file(&path);
}

fn crossbeam(c: &mut Criterion, group: &str, busy: bool) {
    let stop = Arc::new(AtomicBool::new(false));
    let background = busy.then(|| busy_thread(stop.clone()));
    let (req_tx, req_rx) = crossbeam_channel::bounded::<u64>(1);
    let (rep_tx, rep_rx) = crossbeam_channel::bounded::<u64>(1);
    let peer = std::thread::spawn(move || {
        while let Ok(v) = req_rx.recv() {
            if rep_tx.send(v + 1).is_err() {
                break;
            }
        }
    });
    c.benchmark_group(group).bench_function("crossbeam_in_process", |b| {
        b.iter(|| {
            req_tx.send(1).unwrap();
            rep_rx.recv().unwrap()
        })
    });
    drop(req_tx);
    peer.join().unwrap();
    // Relaxed: see `busy_thread`.
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = background {
        t.join().unwrap();
    }
}

fn l3(device: Device) -> L3Worker {
    L3Config { device, child_exe: Some(chiplane_exe()), quiet_children: true, ..L3Config::default() }.start().unwrap()
}

fn long_args() -> TaskArgs {
    TaskArgs { tensors: vec![vec![1.0; 4096], vec![0.5; 4096]], scalars: vec![3_000_000] }
}

/// How `l3_control` registers: the synchronous call, or an async handle
/// waited on.
#[derive(Clone, Copy, PartialEq)]
enum Call {
    Sync,
    AsyncWait,
}

fn l3_control(c: &mut Criterion, group: &str, busy: bool, call: Call) {
    let w = l3(Device::Host);
    let c1 = w.register(CallableSpec::chip(REPEAT_VECTOR_ADD, vec![4096])).unwrap();
    let spec = CallableSpec::chip(VECTOR_ADD, vec![64]);
    let h = w.register(spec.clone()).unwrap();
    let mut running: Option<chiplane_hw::l3::L3PendingCall> = None;
    let mut outside = 0u64;
    let word = |w: &L3Worker| w.word(0);
    let name = match call {
        Call::Sync => "l3_control",
        Call::AsyncWait => "l3_control_async_wait",
    };
    c.benchmark_group(group).bench_function(name, |b| {
        b.iter_custom(|iters| {
            if busy && word(&w) != Some(WordState::TaskRunning.encode()) {
                if let Some(r) = running.take() {
                    r.wait().expect("the long task");
                }
                running = Some(Worker::run_async(&w, c1, long_args(), RunConfig::default()).unwrap());
                let deadline = Instant::now() + Duration::from_secs(10);
                while word(&w) != Some(WordState::TaskRunning.encode()) {
                    assert!(Instant::now() < deadline, "the long task never started");
                    std::thread::yield_now();
                }
            }
            let t = Instant::now();
            for _ in 0..iters {
                let got = match call {
                    Call::Sync => w.register(spec.clone()).unwrap(),
                    Call::AsyncWait => w.register_async(spec.clone()).unwrap().wait().unwrap(),
                };
                assert_eq!(got, h);
            }
            let elapsed = t.elapsed();
            if busy && word(&w) != Some(WordState::TaskRunning.encode()) {
                outside += 1;
            }
            for _ in 0..iters {
                w.unregister(h).unwrap();
            }
            elapsed
        })
    });
    if let Some(r) = running.take() {
        let _ = r.wait();
    }
    if busy {
        eprintln!("{group}/{name}: {outside} batch(es) ended after the long task finished");
    }
}

/// The smallest host run past the inline limit (module doc).
fn l3_run_past_inline(c: &mut Criterion, group: &str) {
    let w = l3(Device::Host);
    let n = chiplane_core::kernels::N_MAX;
    let h = w.register(CallableSpec::chip(REPEAT_VECTOR_ADD, vec![n])).unwrap();
    let repeat = chiplane_hw::tune::run_inline_ops_max() / n + 1;
    let args = TaskArgs { tensors: vec![vec![1.0; n as usize], vec![0.5; n as usize]], scalars: vec![repeat] };
    c.benchmark_group(group).bench_function("l3_run_past_inline", |b| {
        b.iter(|| Worker::run_async(&w, h, args.clone(), RunConfig::default()).unwrap().wait().unwrap())
    });
}

type OneThreadServe = Serve<SharedRegion, NodeBackend<NullChip, SharedRegion, LocalFutex>>;

/// Step the child until it finds nothing to do, then the parent once.
fn step_both(port: &mut Port<SharedRegion, SteppedChild>, serve: &mut OneThreadServe) {
    while serve.step() == Step::Busy {}
    let _owed = port.progress();
}

/// Step both sides until `ready`, then once more (the parent consumes
/// what resolved it, the child sees that).
fn step_both_until(port: &mut Port<SharedRegion, SteppedChild>, serve: &mut OneThreadServe, ready: impl Fn() -> bool) {
    while !ready() {
        let _owed = port.progress();
        step_both(port, serve);
    }
    step_both(port, serve);
}

/// The module doc's `one_thread` group: a port and a serve loop on one
/// region, stepped in turn by this thread; "noop" registered first.
fn one_thread(c: &mut Criterion) {
    let region = SharedRegion::new(L3Config::default().ring_capacity);
    let futex = std::sync::Arc::new(LocalFutex::new());
    let config = NodeConfig { worker: WorkerId(1), limits: SlotLimits::default(), events: None };
    let backend = NodeBackend::new(NullChip, config, region.clone(), futex);
    let mut serve = Serve::new(region.clone(), backend);
    let mut port = Port::new(region, SteppedChild);
    let spec = CallableSpec::chip("noop", vec![1]);
    let register = |port: &mut Port<SharedRegion, SteppedChild>, serve: &mut OneThreadServe| {
        let op = ControlOp::Register { spec: spec.clone() };
        let control = port.submit_control(SlotIndex(0), Generation::NONE, op).unwrap();
        step_both_until(port, serve, || control.is_accepted() && control.is_settled());
        match control.try_take_reply() {
            Some(Ok(ControlReply::Registered { slot, generation, .. })) => (slot, generation),
            other => panic!("register replied {other:?}"),
        }
    };
    // The first register prepares on the register lane (a thread); every
    // later one finds the callable registered and settles at once.
    let (slot, generation) = register(&mut port, &mut serve);
    c.benchmark_group("one_thread").bench_function("l3_control_steps", |b| {
        b.iter(|| register(&mut port, &mut serve));
    });
    c.benchmark_group("one_thread").bench_function("l3_run_noop_steps", |b| {
        b.iter(|| {
            let task = port.submit_task(slot, generation, RunConfig::default(), TaskArgs::default()).unwrap();
            step_both_until(&mut port, &mut serve, || task.is_ready());
            task.try_take().unwrap().unwrap()
        });
    });
}

fn l3_run_noop(c: &mut Criterion, group: &str) {
    let w = l3(Device::Null);
    let h = w.register(CallableSpec::chip("noop", vec![1])).unwrap();
    c.benchmark_group(group).bench_function("l3_run_noop", |b| {
        b.iter(|| Worker::run_async(&w, h, TaskArgs::default(), RunConfig::default()).unwrap().wait().unwrap())
    });
}

/// Back-to-back `run_async` of no-op tasks, waited in order: runs/s per
/// batch. Each batch is followed by a batch of the idle floor's round trips
/// (`FLOOR_PER_RUN` of them per run, about as long), so the two see the
/// same phases of the machine: the floor's spread is what the machine
/// alone does to batches of that length, and the spread of the ratio per
/// pair is chiplane's own.
fn throughput() {
    const BATCH: usize = 5_000;
    const BATCHES: usize = 8;
    const FLOOR_PER_RUN: usize = 16;
    let w = l3(Device::Null);
    let h = w.register(CallableSpec::chip("noop", vec![1])).unwrap();
    let mut floor = FloorPeer::spawn(false, Policy::Spin);
    let (mut rates, mut floor_rates) = (Vec::new(), Vec::new());
    for _ in 0..BATCHES + 1 {
        let t = Instant::now();
        let handles: Vec<_> =
            (0..BATCH).map(|_| Worker::run_async(&w, h, TaskArgs::default(), RunConfig::default()).unwrap()).collect();
        for r in handles {
            r.wait().unwrap();
        }
        rates.push(BATCH as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        for _ in 0..BATCH * FLOOR_PER_RUN {
            floor.round_trip();
        }
        floor_rates.push((BATCH * FLOOR_PER_RUN) as f64 / t.elapsed().as_secs_f64());
    }
    floor.finish();
    // The first pair is a warm-up.
    let ratios: Vec<f64> = rates.iter().zip(&floor_rates).skip(1).map(|(r, f)| r / f).collect();
    let stats = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        let median = v[v.len() / 2];
        (median, v[0], v[v.len() - 1], (v[v.len() - 1] - v[0]) / median * 100.0)
    };
    let (median, min, max, spread) = stats(&rates[1..]);
    println!(
        "l3_pipelined_throughput: median {median:.0} runs/s over {BATCHES} batches of {BATCH} (min {min:.0}, max {max:.0}, spread {spread:.1}%)"
    );
    let (median, min, max, spread) = stats(&floor_rates[1..]);
    println!(
        "l3_pipelined_throughput peer: idle/floor_shm batches of {} after each: median {median:.0} round trips/s (min {min:.0}, max {max:.0}, spread {spread:.1}%)",
        BATCH * FLOOR_PER_RUN
    );
    let (median, min, max, spread) = stats(&ratios);
    println!(
        "l3_pipelined_throughput per pair: runs per floor round trip median {median:.4} (min {min:.4}, max {max:.4}, spread {spread:.1}%)"
    );
}

/// Futex wake calls per operation (doorbell rings that made the call: the
/// parent's bell, rung by the child for a sleeping caller or driver, and by
/// a hand-over that wakes the driver itself; the child's bell, rung by the
/// parent) for back-to-back idle register controls, no-op runs, and
/// pipelined no-op runs (a batch submitted, then waited in order), and of
/// those the parent's driver's wake-ups (its unannounced waits that a ring
/// ended; counted in the parent's column too). A caller that waits steps
/// the port itself and the driver waits unannounced meanwhile, so these are
/// the hops that still sleep.
fn wakeups() {
    const OPS: u64 = 5_000;
    let rings = |w: &L3Worker| {
        let link = w.link(0).expect("chip 0");
        let r = link.region();
        (r.parent_bell().rings(), r.child_bell().rings(), link.driver_wakes())
    };
    let report = |what: &str, before: (u32, u32, u32), after: (u32, u32, u32)| {
        let per = |a: u32, b: u32| a.wrapping_sub(b) as f64 / OPS as f64;
        println!(
            "wakeups {what}: per op {:.2} futex wakes of the parent, {:.2} of the child, {:.2} of the parent's driver",
            per(after.0, before.0),
            per(after.1, before.1),
            per(after.2, before.2)
        );
    };
    let w = l3(Device::Host);
    let spec = CallableSpec::chip(VECTOR_ADD, vec![64]);
    let h = w.register(spec.clone()).unwrap();
    let before = rings(&w);
    for _ in 0..OPS {
        assert_eq!(w.register(spec.clone()).unwrap(), h);
        w.unregister(h).unwrap();
    }
    report("idle/l3_control (register + unregister)", before, rings(&w));
    let w = l3(Device::Null);
    let h = w.register(CallableSpec::chip("noop", vec![1])).unwrap();
    let before = rings(&w);
    for _ in 0..OPS {
        Worker::run_async(&w, h, TaskArgs::default(), RunConfig::default()).unwrap().wait().unwrap();
    }
    report("idle/l3_run_noop", before, rings(&w));
    let before = rings(&w);
    let handles: Vec<_> =
        (0..OPS).map(|_| Worker::run_async(&w, h, TaskArgs::default(), RunConfig::default()).unwrap()).collect();
    for r in handles {
        r.wait().unwrap();
    }
    report("l3_pipelined (no-op runs)", before, rings(&w));
}

/// CPU time (user + system, clock ticks) of process `pid`.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after ")".
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

/// An idle worker (nothing outstanding) should sleep: its child's CPU over
/// two seconds, in percent of one core.
fn idle_cpu() {
    let w = l3(Device::Host);
    let h = w.register(CallableSpec::chip(VECTOR_ADD, vec![16])).unwrap();
    let _ = Worker::run(&w, h, TaskArgs { tensors: vec![vec![1.0; 16]; 2], scalars: vec![] }, RunConfig::default());
    let pid = w.link(0).unwrap().port().watch_mut().pid();
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    std::thread::sleep(Duration::from_secs(2));
    let (dt, dc) = (t0.elapsed().as_secs_f64(), cpu_ticks(pid) - c0);
    println!("idle_worker_child_cpu: {:.2}% of one core over {dt:.1} s", dc as f64 / hz / dt * 100.0);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--peer") {
        peer_main(&args);
        return;
    }
    let cal = chiplane_hw::tune::calibrate();
    println!(
        "machine: {} cores, futex wake-up {:.1} us, spin budget {:.1} us ({} iterations)",
        cal.cores,
        cal.wake_ns as f64 / 1e3,
        cal.spin_ns as f64 / 1e3,
        cal.spin_iters
    );
    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    for (group, busy) in [("idle", false), ("busy", true)] {
        floor(&mut c, group, busy, Policy::Spin);
        if busy {
            floor(&mut c, group, busy, Policy::UnderTask);
        }
        unix_socket(&mut c, group, busy);
        crossbeam(&mut c, group, busy);
        l3_control(&mut c, group, busy, Call::Sync);
        if busy {
            l3_control(&mut c, group, busy, Call::AsyncWait);
        }
    }
    l3_run_noop(&mut c, "idle");
    l3_run_past_inline(&mut c, "idle");
    one_thread(&mut c);
    c.final_summary();
    throughput();
    wakeups();
    idle_cpu();
}
