//! Allocations per operation on the hot path (issue 11, "no work that is not
//! asked for"): a parent `Port` and a child `Serve` over core's
//! `NodeBackend` on the null device, on one heap region, stepped in turn by
//! this thread (the shape of the `one_thread` group of the `control_rtt`
//! bench). After a warm-up, each operation's allocations on this thread are
//! counted by this test binary's global allocator and held to a budget
//! that names every allocation it allows. A clone of the task's arguments to
//! check their size, a copy of a frame into a fresh buffer, a trace record
//! or a lock that allocates on every run would each break a budget.
//!
//! Counted, not timed: the same code allocates the same number of times on
//! any machine. Allocations of the lane threads are not counted (a no-op
//! run on the null device is executed by the serve loop itself, docs/protocol.md
//! rule 9; a register of a registered callable never reaches a lane).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use chiplane_core::chip::{CallableSpec, RunConfig, TaskArgs};
use chiplane_core::conc::api::Worker;
use chiplane_core::conc::bell::LocalFutex;
use chiplane_core::conc::child::NodeBackend;
use chiplane_core::conc::port::{Port, SteppedChild};
use chiplane_core::conc::region::SharedRegion;
use chiplane_core::conc::serve::{Serve, Step};
use chiplane_core::conc::worker::L2Worker;
use chiplane_core::conc::NodeConfig;
use chiplane_core::frame::{ControlOp, ControlReply};
use chiplane_core::{Generation, SlotIndex, WorkerId};
use chiplane_hw::devices::null::NullChip;
use chiplane_hw::l3::Device;

mod common;

thread_local! {
    /// Allocations (and reallocations) made by this thread.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator; the
// count is a const-initialised thread-local (`try_with` neither allocates
// nor panics, also while the thread is being torn down).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract for `realloc`, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

type OneServe = Serve<SharedRegion, NodeBackend<NullChip, SharedRegion, LocalFutex>>;
type OnePort = Port<SharedRegion, SteppedChild>;

/// A port and a serve loop on one region; "noop" registered.
struct OneThread {
    port: OnePort,
    serve: OneServe,
    noop: (SlotIndex, Generation),
}

/// Bound on steps for one operation (a healthy one takes a handful).
const STEPS_MAX: usize = 10_000;

impl OneThread {
    fn new() -> Self {
        let region = SharedRegion::new(64);
        let config = NodeConfig { worker: WorkerId(1), limits: Default::default(), events: None };
        let backend = NodeBackend::new(NullChip, config, region.clone(), Arc::new(LocalFutex::new()));
        let serve = Serve::new(region.clone(), backend);
        let port = Port::new(region, SteppedChild);
        let mut t = OneThread { port, serve, noop: (SlotIndex(0), Generation::NONE) };
        // The first register prepares on the register lane (another
        // thread): step until it settled.
        let c = t.port.submit_control(SlotIndex(0), Generation::NONE, ControlOp::Register { spec: noop() }).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !(c.is_accepted() && c.is_settled()) {
            assert!(std::time::Instant::now() < deadline, "the first register did not settle");
            t.step_both();
            std::thread::yield_now();
        }
        match c.try_take_reply() {
            Some(Ok(ControlReply::Registered { slot, generation, .. })) => t.noop = (slot, generation),
            other => panic!("register replied {other:?}"),
        }
        t
    }

    fn step_both(&mut self) {
        let _ = self.port.progress();
        while let Step::Busy = self.serve.step() {}
    }

    /// Submit a control and step until it is accepted and settled.
    fn control(&mut self, op: ControlOp) {
        let c = self.port.submit_control(SlotIndex(0), Generation::NONE, op).unwrap();
        for _ in 0..STEPS_MAX {
            self.step_both();
            if c.is_accepted() && c.is_settled() {
                assert!(matches!(c.try_take_reply(), Some(Ok(_))), "control refused");
                return;
            }
        }
        panic!("a control did not settle in {STEPS_MAX} steps");
    }

    /// Submit a run of "noop" and step until its result is back.
    fn run(&mut self, args: TaskArgs) {
        let (slot, generation) = self.noop;
        let t = self.port.submit_task(slot, generation, RunConfig::default(), args).unwrap();
        for _ in 0..STEPS_MAX {
            self.step_both();
            if t.is_ready() {
                assert!(matches!(t.try_take(), Some(Ok(_))), "run failed");
                return;
            }
        }
        panic!("a run did not finish in {STEPS_MAX} steps");
    }
}

fn noop() -> CallableSpec {
    CallableSpec::chip("noop", vec![1])
}

const WARM_UP: usize = 200;
const COUNTED: usize = 1_000;

/// Allocations per operation of `op` on `t`: see [`per_call`].
fn per_op<I>(t: &mut OneThread, make: impl Fn() -> I, mut op: impl FnMut(&mut OneThread, I)) -> f64 {
    per_call(make, |input| op(t, input))
}

#[test]
fn the_hot_path_allocates_only_what_it_hands_back() {
    let mut t = OneThread::new();

    // A no-op run: the task's completion cell (shared by the handle and
    // the port). Its empty arguments and empty output own nothing.
    let run = per_op(&mut t, TaskArgs::default, OneThread::run);

    // A run with two tensors of 256 elements: besides the cell, the child's
    // decoded copy of the arguments (the outer list and each tensor: 3).
    // The caller's arguments are moved into the frame's encoding, never
    // cloned.
    let tensors = || TaskArgs { tensors: vec![vec![1.0; 256], vec![2.0; 256]], scalars: vec![] };
    let run_args = per_op(&mut t, tensors, OneThread::run);

    // A domain control: its cells (the reply and the settlement, in one
    // allocation).
    let domain = per_op(&mut t, || ControlOp::Domain { code: 1, value: 2 }, OneThread::control);

    // A register of the registered "noop": the cells (1), and the child's
    // decoded spec (its kernel name and its parameters: 2).
    let register = per_op(&mut t, || ControlOp::Register { spec: noop() }, OneThread::control);

    println!("allocations per operation: no-op run {run}, run with 2 x 256 f32 {run_args}, domain control {domain}, register of a registered callable {register}");
    assert_eq!(run, 1.0, "a no-op run allocates its completion cell only");
    assert_eq!(run_args, 4.0, "a run with two tensors allocates its cell and the child's decoded arguments only");
    assert_eq!(domain, 1.0, "a domain control allocates its cells only");
    assert_eq!(register, 3.0, "a register of a registered callable allocates its cells and the decoded spec only");
}

/// Allocations per call of the public worker API on the calling thread,
/// after a warm-up: `run(handle, no arguments)` and `register` of a
/// registered callable.
fn api_per_op<W: Worker>(w: &W) -> (f64, f64) {
    let h = w.register(noop()).unwrap();
    let run = per_call(TaskArgs::default, |args| {
        w.run(h, args, RunConfig::default()).unwrap();
    });
    let register = per_call(noop, |spec| {
        assert_eq!(w.register(spec).unwrap(), h);
    });
    (run, register)
}

/// Allocations on this thread per `call`, over `COUNTED` calls after
/// `WARM_UP` calls; `make` builds each call's input outside the count
/// (what the caller owns is the caller's business).
fn per_call<I>(make: impl Fn() -> I, mut call: impl FnMut(I)) -> f64 {
    for _ in 0..WARM_UP {
        call(make());
    }
    let inputs: Vec<I> = (0..COUNTED).map(|_| make()).collect();
    let before = allocs();
    for input in inputs {
        call(input);
    }
    (allocs() - before) as f64 / COUNTED as f64
}

#[test]
fn the_worker_api_allocates_only_what_it_hands_back() {
    // L3: a chip child process on the null device. The caller's thread
    // allocates the completion cells (a run: 1; a register: the reply and
    // the settlement in one allocation, 1), nothing else: a single task on an idle run queue
    // boxes no orchestration job, and the waits, the caller's own stepping
    // of the port and its rings allocate nothing.
    let l3 = common::within("the L3 worker's calls", || {
        let w = chiplane_hw::l3::L3Config { device: Device::Null, ..common::config(1) }.start().unwrap();
        let counts = api_per_op(&w);
        drop(w);
        counts
    });
    // L2: in process; the run lane executes the run. The caller allocates
    // the handle's completion cell (a run: 1). A register of a registered
    // callable settles at the call, so the caller's drain also hands out
    // its resolution, in a list built under the node's lock (1 more; kept
    // as a `Vec`: an inline first entry made every drain's result larger
    // and cost every L3 control and run about 300 instructions more).
    let l2 = common::within("the L2 worker's calls", || {
        let config = NodeConfig { worker: WorkerId(1), limits: Default::default(), events: None };
        api_per_op(&L2Worker::new(NullChip, config))
    });
    println!(
        "allocations per call on the caller's thread: L3 run {} register {}; L2 run {} register {}",
        l3.0, l3.1, l2.0, l2.1
    );
    assert_eq!(l3, (1.0, 1.0), "L3 (run, register of a registered callable)");
    assert_eq!(l2, (1.0, 2.0), "L2 (run, register of a registered callable)");
}
