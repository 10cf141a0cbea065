//! Bodies of the L3 (mailbox) scenarios of docs/protocol.md section 7, on the
//! production code: the chip child is core's `serve_loop` over core's
//! `NodeBackend` (a `ChipNode` with its real run-lane and register-lane
//! threads), the parent is core's `Link` (the caller's own steps and, where
//! a scenario says so, the driver thread's `Link::drive`), and both sleep on
//! the region's doorbells through [`LocalFutex`]. Nothing here steps a
//! machine by hand: the scenario is a caller of the production API, and the
//! chip is a [`TestChip`] whose gates build each hazard.
//!
//! Each body is one execution (the checker calls it once per schedule),
//! asserts its invariants, joins every thread, and returns what it saw, so
//! the runner can assert that the named situation occurred in at least one
//! explored execution.
//!
//! # Models never time out
//! Every sleep here is untimed (`LinkOptions::untimed`, a serve loop
//! without heartbeat): a missing ring is a deadlock the checker reports.
//! Where production relies on a timeout (the liveness poll that notices a
//! dead child), the model's [`ThreadWatch`] stands in: the child thread
//! rings the parent's bell when its loop ends, as the poll would notice.

use chiplane_core::conc::bell::{Doorbell, LocalFutex};
use chiplane_core::conc::cell::Completion;
use chiplane_core::conc::child::{serve_loop, LoopExit, NodeBackend, ServeOptions};
use chiplane_core::conc::l3::{SpawnError, Spawner};
use chiplane_core::conc::parent::{Link, LinkOptions};
use chiplane_core::conc::port::{ChildWatch, PendingControl, PendingTask, SettleResult, TaskResult};
use chiplane_core::conc::region::{Region, SharedRegion};
use chiplane_core::conc::serve::{Serve, ServeExit, ServeStats};
use chiplane_core::conc::word::POISONED;
use chiplane_core::conc::NodeConfig;
use chiplane_core::frame::{ControlOp, ControlReply, Settlement};
use chiplane_core::mailbox::word::WordState;
use chiplane_core::slot::SlotLimits;
use chiplane_core::sync::{thread, Arc, AtomicBool, Mutex, Ordering};
use chiplane_core::{
    CallableHandle, ControlError, EndpointError, Generation, RunConfig, RunError, SlotIndex, WorkerId,
};

use crate::harness::small_limits;
use crate::testchip::{args, spec, Gate, Hold, TestChip};

/// The chip child's worker id in the models.
pub const CHILD: WorkerId = WorkerId(7);

/// The child's slot table: enough slots for the ring scenarios' registers
/// (the table is plain data to the checkers; its size adds no schedules),
/// three generations (shrunk: retirement stays reachable).
fn rig_limits() -> SlotLimits {
    SlotLimits { capacity: 8, ..small_limits() }
}

type ModelLink = Link<SharedRegion, ThreadWatch, LocalFutex>;

/// The parent's view of a child thread (core's `ChildWatch`): the thread's
/// serve loop ended = the child process exited.
#[derive(Clone, Debug)]
pub struct ThreadWatch {
    kill: Arc<AtomicBool>,
    stopped: Arc<Completion<()>>,
    region: SharedRegion,
    futex: Arc<LocalFutex>,
}

impl ThreadWatch {
    fn kill(&self) {
        // Release: pairs with the child loop's Acquire load (`alive`).
        self.kill.store(true, Ordering::Release);
        // A sleeping child must see it.
        Doorbell::new(self.region.child_bell(), &*self.futex).ring();
    }
}

impl ChildWatch for ThreadWatch {
    fn check(&mut self, _region: &Region) -> Option<EndpointError> {
        self.stopped.is_ready().then_some(EndpointError::ChildDied)
    }

    fn kill_and_reap(&mut self) {
        self.kill();
        self.stopped.wait_ready();
    }

    fn finish(&mut self) {
        // The shutdown flag is set and the child rung: it leaves by itself.
        self.stopped.wait_ready();
    }
}

/// What the child thread saw.
#[derive(Debug)]
pub struct ChildEnd {
    /// How its loop ended.
    pub exit: LoopExit,
    /// Its serve statistics.
    pub stats: ServeStats,
    /// Runs whose TASK_DONE waited for a control (rule 2).
    pub deferred_done: u64,
}

/// Start a chip child thread on `region`: core's serve loop over core's
/// node backend (with its two lane threads) on `chip`.
fn start_child(
    region: SharedRegion,
    futex: Arc<LocalFutex>,
    chip: TestChip,
    worker: WorkerId,
    limits: SlotLimits,
    watch: &ThreadWatch,
) -> thread::JoinHandle<ChildEnd> {
    let (kill, stopped) = (watch.kill.clone(), watch.stopped.clone());
    thread::spawn(move || {
        let config = NodeConfig { worker, limits, events: None };
        let backend = NodeBackend::new(chip, config, region.clone(), futex.clone());
        let mut serve = Serve::new(region.clone(), backend);
        // Acquire: pairs with `ThreadWatch::kill`'s Release store.
        let exit = serve_loop(&mut serve, &*futex, ServeOptions { heartbeat: None }, || !kill.load(Ordering::Acquire));
        let end = ChildEnd { exit, stats: serve.stats().clone(), deferred_done: serve.endpoint().deferred_done() };
        assert!(stopped.complete(()).is_ok(), "the child stops once");
        // What the parent's liveness poll would notice: wake its sleepers.
        Doorbell::new(region.parent_bell(), &*futex).ring();
        // The node's lanes end with the "process" (joined here; a gated
        // lane job waits for the scenario to open its gate).
        drop(serve);
        end
    })
}

/// One chip child thread and the parent's link to it.
pub struct Rig {
    /// The shared region.
    pub region: SharedRegion,
    /// The parent side (production `Link`).
    pub link: Arc<ModelLink>,
    /// The chip (its record).
    pub chip: TestChip,
    watch: ThreadWatch,
    child: thread::JoinHandle<ChildEnd>,
    driver: Option<thread::JoinHandle<()>>,
}

impl core::fmt::Debug for Rig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Rig").field("link", &self.link).finish_non_exhaustive()
    }
}

impl Rig {
    /// A child on a fresh region with a ring of `ring_capacity` entries;
    /// `driver`: run the parent's driver thread too (else the waiting caller
    /// is the only thread that steps the port).
    pub fn start(ring_capacity: u32, chip: TestChip, driver: bool) -> Rig {
        let region = SharedRegion::new(ring_capacity);
        let futex = Arc::new(LocalFutex::new());
        let watch = ThreadWatch {
            kill: Arc::new(AtomicBool::new(false)),
            stopped: Arc::new(Completion::new()),
            region: region.clone(),
            futex: futex.clone(),
        };
        let child = start_child(region.clone(), futex.clone(), chip.clone(), CHILD, rig_limits(), &watch);
        let link = Arc::new(Link::new(region.clone(), watch.clone(), futex, LinkOptions::untimed()));
        let driver = driver.then(|| {
            let link = link.clone();
            thread::spawn(move || link.drive())
        });
        Rig { region, link, chip, watch, child, driver }
    }

    /// Kill the child (it stops before its next step, wherever it is).
    pub fn kill(&self) {
        self.watch.kill();
    }

    /// Stop the driver, shut the child down (or find it dead), join it.
    pub fn finish(self) -> ChildEnd {
        self.link.stop();
        if let Some(d) = self.driver {
            d.join().expect("driver thread");
        }
        self.link.shutdown();
        self.link.port().watch_mut().finish();
        let end = self.child.join().expect("child thread");
        assert!(!self.link.outstanding(), "work outstanding after the end: {:?}", self.link.port().endpoint());
        end
    }
}

fn register(link: &ModelLink, kernel: &str) -> Result<PendingControl, ControlError> {
    link.submit_control(SlotIndex(0), Generation::NONE, ControlOp::Register { spec: spec(kernel) })
}

fn run(link: &ModelLink, h: (SlotIndex, Generation), tag: u64) -> Result<PendingTask, RunError> {
    link.submit_task(h.0, h.1, RunConfig::default(), args(tag))
}

fn task(link: &ModelLink, t: &PendingTask) -> TaskResult {
    link.wait_until(|| t.is_ready());
    t.try_take().expect("a task resolves once")
}

fn reply(link: &ModelLink, c: &PendingControl) -> Result<ControlReply, ControlError> {
    link.wait_until(|| c.is_accepted());
    c.try_take_reply().expect("a reply is taken once")
}

/// Submit a memory control (64 bytes, an allocation).
fn memory(link: &ModelLink) -> PendingControl {
    link.submit_control(SlotIndex(0), Generation::NONE, ControlOp::Memory { bytes: 64, free: false })
        .expect("submit memory")
}

fn settled(link: &ModelLink, c: &PendingControl) -> SettleResult {
    link.wait_until(|| c.is_settled());
    c.try_take_settled().expect("a settlement is taken once")
}

fn fresh(reply: &Result<ControlReply, ControlError>) -> (SlotIndex, Generation) {
    match reply {
        Ok(ControlReply::Registered { slot, generation, fresh: true }) => (*slot, *generation),
        other => panic!("register reply {other:?}"),
    }
}

/// A run's output on the test chip: `[artifact id, tag]`.
fn ran(out: &TaskResult) -> (f32, f32) {
    let o = out.as_ref().unwrap_or_else(|e| panic!("run failed: {e:?}"));
    (o.tensors[0][0], o.tensors[0][1])
}

/// Register `kernel` before the scenario (through the mailbox, untimed).
fn preregister(link: &ModelLink, kernel: &str) -> (SlotIndex, Generation) {
    let c = register(link, kernel).expect("submit register");
    let at = fresh(&reply(link, &c));
    assert_eq!(settled(link, &c), Ok(Some(Settlement::Prepared(Ok(())))));
    at
}

/// A child whose chip holds every run of "c1" until `held` opens, with
/// "c1" registered (no driver thread, a two-entry ring).
fn held_c1() -> (Rig, Arc<Gate>, (SlotIndex, Generation)) {
    let chip = TestChip::new(true);
    let held = Gate::new();
    chip.gate("c1", Hold::Run, held.clone());
    let rig = Rig::start(2, chip, false);
    let h1 = preregister(&rig.link, "c1");
    (rig, held, h1)
}

/// S1, the seed pipeline: run C1; register C2 while C1 is TASK_RUNNING (C1's
/// run cannot finish before C2's register was accepted); C2's prepare cannot
/// finish before the parent observed C1's result (seed hazard D: a child
/// loop that waits for the prepare deadlocks here); run C2 as soon as its
/// handle is known. All resolve with the right values, C2's run follows
/// C1's, each TASK_DONE is published once. Returns true when the register
/// entered during TASK_RUNNING (the named situation).
pub fn s1_pipeline(driver: bool) -> bool {
    let chip = TestChip::new(true);
    let (c1_held, c2_held) = (Gate::new(), Gate::new());
    chip.gate("c1", Hold::Run, c1_held.clone());
    chip.gate("c2", Hold::Prepare, c2_held.clone());
    let rig = Rig::start(2, chip, driver);
    let link = &rig.link;
    let h1 = preregister(link, "c1");
    let t1 = run(link, h1, 1).expect("submit C1");
    let r2 = register(link, "c2").expect("submit register C2");
    let h2 = fresh(&reply(link, &r2));
    c1_held.open();
    assert_eq!(ran(&task(link, &t1)), (0.0, 1.0), "C1's run");
    c2_held.open();
    let t2 = run(link, h2, 2).expect("submit C2");
    assert_eq!(settled(link, &r2), Ok(Some(Settlement::Prepared(Ok(())))));
    assert_eq!(ran(&task(link, &t2)), (1.0, 2.0), "C2's run");
    let chip = rig.chip.clone();
    let end = rig.finish();
    assert_eq!(end.exit, LoopExit::Serve(ServeExit::ShutDown));
    assert_eq!(end.stats.task_done_published, 2, "each TASK_DONE published once");
    assert_eq!(chip.runs(), vec![1, 2], "C2's run follows C1's");
    chip.assert_all_released();
    // C1's run was gated until C2's register was accepted: the control
    // entered during TASK_RUNNING.
    true
}

/// S17, a short run executed where it was accepted (`Chip::run_inline`):
/// the serve loop runs it itself, so the run lane is neither handed it nor
/// woken, and the mailbox waits for it. "short" is registered; a register
/// of "c" is accepted, and its prepare may still be on the register lane
/// while the short task runs inline, so the prepare's settlement and the
/// run's result reach the serve loop in either order. Then "c" runs on the
/// run lane and "short" inline again. Checks: results intact and in order,
/// each run executed once (a run executed both inline and on the lane is
/// refused by the chip side, and the test chip asserts one run at a time),
/// each TASK_DONE published once, every artifact released. Returns whether
/// both short runs ran off the run lane.
pub fn s17_inline_run() -> bool {
    let chip = TestChip::new(true);
    chip.inline("short");
    let rig = Rig::start(2, chip.clone(), false);
    let link = &rig.link;
    let hs = preregister(link, "short");
    let c = register(link, "c").expect("submit register c");
    let hc = fresh(&reply(link, &c));
    let t1 = run(link, hs, 1).expect("submit short");
    assert_eq!(ran(&task(link, &t1)), (0.0, 1.0), "the first short run");
    assert_eq!(settled(link, &c), Ok(Some(Settlement::Prepared(Ok(())))));
    assert_eq!(ran(&task(link, &run(link, hc, 2).expect("submit c"))), (1.0, 2.0), "c's run");
    assert_eq!(ran(&task(link, &run(link, hs, 3).expect("submit short"))), (0.0, 3.0), "the second short run");
    let end = rig.finish();
    assert_eq!(end.exit, LoopExit::Serve(ServeExit::ShutDown));
    assert_eq!(end.stats.task_done_published, 3, "each TASK_DONE published once");
    assert_eq!(chip.runs(), vec![1, 2, 3]);
    chip.assert_all_released();
    chip.off_lane_runs() == 2
}

/// S1, staging: two runs queued back to back; the parent stages the second
/// task into the task field as soon as it sees TASK_RUNNING for the first
/// (rule 1), safe only because the child copied the first out before
/// publishing TASK_RUNNING. Both resolve, in order.
pub fn s1_staged() -> bool {
    let (rig, held, h1) = held_c1();
    let link = &rig.link;
    let h2 = preregister(link, "c2");
    let t1 = run(link, h1, 1).expect("submit C1");
    let t2 = run(link, h2, 2).expect("submit C2");
    // Step until C1 runs (its run is held): the second task is staged then.
    link.wait_until(|| link.region().word().load() == WordState::TaskRunning.encode());
    link.step();
    held.open();
    assert_eq!(ran(&task(link, &t1)).1, 1.0, "first run");
    assert_eq!(ran(&task(link, &t2)).1, 2.0, "second run");
    let chip = rig.chip.clone();
    let end = rig.finish();
    assert_eq!(end.stats.task_done_published, 2);
    assert_eq!(chip.runs(), vec![1, 2]);
    true
}

/// S2: the run finishes during a control exchange (C1's run is held until
/// the register control reached the child's chip side, and released then,
/// while CONTROL_READY/CONTROL_DONE may be visible): TASK_DONE is deferred
/// when it is, and published exactly once either way; the task result and
/// the control result both arrive intact (rule 8); the control is not lost
/// (rules 2, 7). Returns whether the deferral happened in this execution.
pub fn s2_done_during_control() -> bool {
    let chip = TestChip::new(true);
    let held = Gate::new();
    chip.gate("c1", Hold::Run, held.clone());
    // The register's prepare opens C1's gate: the run finishes while the
    // register control is being answered or right after.
    let opener = held.clone();
    chip.on_prepare("c2", move || opener.open());
    let rig = Rig::start(2, chip, false);
    let link = &rig.link;
    let h1 = preregister(link, "c1");
    let t1 = run(link, h1, 1).expect("submit C1");
    link.wait_until(|| link.region().word().load() == WordState::TaskRunning.encode());
    let r2 = register(link, "c2").expect("submit register C2");
    assert_eq!(ran(&task(link, &t1)).1, 1.0, "C1's run");
    fresh(&reply(link, &r2));
    assert_eq!(settled(link, &r2), Ok(Some(Settlement::Prepared(Ok(())))));
    let end = rig.finish();
    assert_eq!(end.stats.task_done_published, 1, "TASK_DONE published exactly once");
    end.deferred_done > 0
}

/// S2 with a control that owes no settlement: C1 is registered twice and,
/// while its run holds the run lane, one registration ends (the reply is
/// `Unregistered { last: false }`: nothing comes through the ring after
/// it). The run's gate opens as the control is submitted, so in some
/// schedules the run finishes during the control and its TASK_DONE waits
/// for the parent's restore to TASK_RUNNING. Nothing but that restore tells
/// the child it may publish now (no settlement follows whose pop would ring
/// it), so the parent's step must nudge the child's bell after the restore,
/// and the child, which waits for that consumption, must sleep nudgeable
/// (mutant `deaf_to_restore`), or it sleeps on while the parent waits for
/// TASK_DONE. Returns true when TASK_DONE was deferred.
pub fn s2_unsettled_control() -> bool {
    let (rig, held, h1) = held_c1();
    let link = &rig.link;
    let again = register(link, "c1").expect("submit the second register");
    assert!(matches!(reply(link, &again), Ok(ControlReply::Registered { fresh: false, .. })));
    assert_eq!(settled(link, &again), Ok(Some(Settlement::Prepared(Ok(())))));
    let t1 = run(link, h1, 1).expect("submit C1");
    link.wait_until(|| link.region().word().load() == WordState::TaskRunning.encode());
    let u = link.submit_control(h1.0, h1.1, ControlOp::Unregister).expect("submit unregister");
    held.open();
    assert_eq!(reply(link, &u), Ok(ControlReply::Unregistered { last: false }));
    assert_eq!(ran(&task(link, &t1)).1, 1.0, "C1's run");
    assert_eq!(settled(link, &u), Ok(None));
    let end = rig.finish();
    assert_eq!(end.stats.task_done_published, 1, "TASK_DONE published exactly once");
    end.deferred_done > 0
}

/// S8: a memory control submitted while TASK_RUNNING waits for IDLE: the
/// child applies it only after the run retired (the chip logs no memory
/// controls, so the order is read from the parent: the control's reply
/// comes after the task's result).
pub fn s8_memory_waits_for_idle() -> bool {
    let (rig, held, h1) = held_c1();
    let link = &rig.link;
    let t1 = run(link, h1, 1).expect("submit C1");
    link.wait_until(|| link.region().word().load() == WordState::TaskRunning.encode());
    let m = link
        .submit_control(SlotIndex(0), Generation::NONE, ControlOp::Memory { bytes: 4096, free: false })
        .expect("submit memory");
    // While the run is held the memory control stays queued: it never
    // enters under the task (rule 3), so it is not accepted.
    link.step();
    assert!(!matches!(
        WordState::decode(link.region().word().load()),
        Some(WordState::ControlReady { .. } | WordState::ControlDone { .. })
    ));
    assert!(!m.is_accepted() && !t1.is_ready(), "held until IDLE");
    held.open();
    assert_eq!(ran(&task(link, &t1)).1, 1.0);
    assert_eq!(reply(link, &m), Ok(ControlReply::Done));
    assert_eq!(settled(link, &m), Ok(None));
    rig.finish();
    true
}

/// How S9 ends the child.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Death {
    /// The child is killed after the work was submitted (it stops before
    /// its next protocol action, wherever it is).
    Killed,
    /// A liveness monitor thread on the parent side swaps POISONED into the
    /// word at any point; poison is one way, so the word ends POISONED.
    MonitorPoisons,
}

/// S9: the child dies (or is poisoned) at each protocol step of "run C1,
/// register C2 during TASK_RUNNING": every handle resolves exactly once;
/// what did not complete resolves with an endpoint error; nothing hangs;
/// with `MonitorPoisons`, the word ends POISONED (rule 10). Returns whether
/// something failed with an endpoint error (the death was seen).
pub fn s9_child_death(death: Death, driver: bool) -> bool {
    let chip = TestChip::new(true);
    let held = Gate::new();
    chip.gate("c1", Hold::Run, held.clone());
    let rig = Rig::start(2, chip, driver);
    let link = rig.link.clone();
    let h1 = preregister(&link, "c1");
    let monitor = (death == Death::MonitorPoisons).then(|| {
        let (region, futex) = (rig.region.clone(), rig.watch.futex.clone());
        thread::spawn(move || {
            let _ = region.word().poison();
            // Wake both sides: each must see the verdict (one way).
            Doorbell::new(region.child_bell(), &*futex).ring();
            Doorbell::new(region.parent_bell(), &*futex).ring();
        })
    });
    let t1 = run(&link, h1, 1);
    let r2 = register(&link, "c2");
    if death == Death::Killed {
        rig.kill();
    }
    held.open();
    let mut failed = false;
    if let Ok(t1) = &t1 {
        let r = task(&link, t1);
        assert!(r.as_ref().is_ok_and(|o| o.tensors[0][1] == 1.0) || matches!(r, Err(RunError::Endpoint(_))), "{r:?}");
        failed |= r.is_err();
    }
    if let Ok(r2) = &r2 {
        match reply(&link, r2) {
            Ok(ControlReply::Registered { fresh: true, .. }) => {
                let s = settled(&link, r2);
                assert!(matches!(s, Ok(Some(Settlement::Prepared(Ok(())))) | Err(_)), "{s:?}");
                failed |= s.is_err();
            }
            Err(ControlError::Endpoint(_)) => {
                assert_eq!(settled(&link, r2), Ok(None));
                failed = true;
            }
            other => panic!("C2 reply: {other:?}"),
        }
    }
    failed |= t1.is_err() || r2.is_err();
    if let Some(m) = monitor {
        m.join().expect("monitor thread");
    }
    let region = rig.region.clone();
    rig.finish();
    if death == Death::MonitorPoisons {
        assert_eq!(region.word().load(), POISONED, "poison is one way: it was erased");
    }
    failed
}

/// S11 and S12: `registers` fresh registers through a ring of
/// `ring_capacity` entries, all submitted at once: the child holds the
/// settlements the ring has no room for; none is dropped or reordered
/// (they arrive in prepare order); every waiter resolves. Returns (the
/// most settlements held at once, how many times the ring wrapped).
pub fn s11_ring(ring_capacity: u32, registers: u64) -> (usize, u64) {
    let chip = TestChip::new(true);
    let rig = Rig::start(ring_capacity, chip, false);
    let link = &rig.link;
    let kernels: Vec<String> = (1..=registers).map(|t| format!("k{t}")).collect();
    let hs: Vec<PendingControl> = kernels.iter().map(|k| register(link, k).expect("submit register")).collect();
    for h in &hs {
        fresh(&reply(link, h));
    }
    for h in &hs {
        assert_eq!(settled(link, h), Ok(Some(Settlement::Prepared(Ok(())))));
    }
    let order: Vec<_> = hs.iter().map(|h| h.dispatch()).collect();
    {
        let port = link.port();
        let stats = port.stats();
        assert_eq!(stats.settled, registers, "every settlement counted");
        assert!(order.len() <= chiplane_core::conc::port::SETTLED_ORDER_KEPT, "the port keeps them all");
        assert!(stats.settled_order.iter().eq(&order), "settlements in prepare (FIFO) order");
    }
    let chip = rig.chip.clone();
    let end = rig.finish();
    assert_eq!(end.stats.pushes, registers, "one ring entry per settlement");
    assert_eq!(chip.prepares(), kernels);
    (end.stats.held_max, registers / u64::from(ring_capacity))
}

/// S6 at L3: a late completion across a re-registered generation. C is
/// registered (generation g) and unregistered; the release of its artifact
/// (and so the `Freed` settlement of generation g) is held until C was
/// registered again (generation g + 1) and ran. The old settlement
/// resolves the old unregister only; the old handle is stale; the new one
/// runs the new artifact. Returns whether the old generation's settlement
/// reached the parent after the new generation's reply.
pub fn s6_late_completion() -> bool {
    let chip = TestChip::new(true);
    let held = Gate::new();
    chip.gate("c", Hold::Release, held.clone());
    let rig = Rig::start(1, chip, false);
    let link = &rig.link;
    let old = preregister(link, "c");
    let u = link.submit_control(old.0, old.1, ControlOp::Unregister).expect("submit unregister");
    assert_eq!(reply(link, &u), Ok(ControlReply::Unregistered { last: true }));
    // The slot is torn down but not freed (its release is held): the new
    // registration takes another slot... or, with the release done, the
    // same slot under a newer generation. Either way it is a new handle.
    let r = register(link, "c").expect("submit re-register");
    let new = fresh(&reply(link, &r));
    assert_ne!(new, old, "a fresh slot generation");
    let late = !u.is_settled();
    held.open();
    assert_eq!(settled(link, &r), Ok(Some(Settlement::Prepared(Ok(())))));
    assert_eq!(settled(link, &u), Ok(Some(Settlement::Freed)), "the old generation's settlement");
    let stale = run(link, old, 9).expect("submitted: the child judges the handle");
    assert!(matches!(task(link, &stale), Err(RunError::Handle(_)) | Err(RunError::NotRunnable(_))));
    assert_eq!(ran(&task(link, &run(link, new, 3).expect("submit"))), (1.0, 3.0), "the new artifact");
    rig.finish();
    late
}

/// S14, the doorbell handshake alone: a sleeper waits on the bell for a
/// flag; a waker sets the flag and rings. No doorbell is lost (a lost one
/// is a deadlock: nothing times out). Returns whether the sleeper slept.
pub fn s14_doorbell() -> bool {
    let region = SharedRegion::new(1);
    let futex = Arc::new(LocalFutex::new());
    let work = Arc::new(AtomicBool::new(false));
    let slept = Arc::new(Mutex::new(false));
    let sleeper = {
        let (region, futex, work, slept) = (region.clone(), futex.clone(), work.clone(), slept.clone());
        thread::spawn(move || {
            let bell = Doorbell::new(region.child_bell(), &*futex);
            // Acquire: pairs with the waker's Release store.
            while !work.load(Ordering::Acquire) {
                if bell.sleep(|| work.load(Ordering::Acquire), None) {
                    *slept.lock().unwrap() = true;
                }
            }
        })
    };
    // Release: pairs with the sleeper's Acquire loads.
    work.store(true, Ordering::Release);
    Doorbell::new(region.child_bell(), &*futex).ring();
    sleeper.join().unwrap();
    let s = *slept.lock().unwrap();
    s
}

/// Starts chip children as threads on heap regions (the models' OS half of
/// core's `L3Worker`): each child is core's serve loop over core's node
/// backend on a [`TestChip`].
#[derive(Debug)]
pub struct ThreadSpawner {
    chip: fn() -> TestChip,
    shared: Option<TestChip>,
    futex: Arc<LocalFutex>,
    ring_capacity: u32,
    children: Mutex<Vec<thread::JoinHandle<ChildEnd>>>,
}

impl ThreadSpawner {
    /// Children on `chip` (its record shared by every incarnation: a
    /// worker that never restarts), rings of `ring_capacity`.
    pub fn new(chip: TestChip, ring_capacity: u32) -> Self {
        ThreadSpawner {
            chip: || TestChip::new(true),
            shared: Some(chip),
            futex: Arc::new(LocalFutex::new()),
            ring_capacity,
            children: Mutex::new(Vec::new()),
        }
    }

    /// Children each on a fresh chip from `chip` (a worker that restarts:
    /// a new child process has a new device).
    pub fn fresh_chips(chip: fn() -> TestChip, ring_capacity: u32) -> Self {
        ThreadSpawner {
            chip,
            shared: None,
            futex: Arc::new(LocalFutex::new()),
            ring_capacity,
            children: Mutex::new(Vec::new()),
        }
    }
}

impl Drop for ThreadSpawner {
    fn drop(&mut self) {
        for child in self.children.lock().unwrap().drain(..) {
            child.join().expect("child thread");
        }
    }
}

impl Spawner for ThreadSpawner {
    type Region = SharedRegion;
    type Watch = ThreadWatch;
    type Futex = LocalFutex;

    fn futex(&self) -> Arc<LocalFutex> {
        self.futex.clone()
    }

    fn spawn(&self, _chip: usize, worker: WorkerId) -> Result<(SharedRegion, ThreadWatch), SpawnError> {
        let region = SharedRegion::new(self.ring_capacity);
        let watch = ThreadWatch {
            kill: Arc::new(AtomicBool::new(false)),
            stopped: Arc::new(Completion::new()),
            region: region.clone(),
            futex: self.futex.clone(),
        };
        let chip = self.shared.clone().unwrap_or_else(self.chip);
        let child = start_child(region.clone(), self.futex.clone(), chip, worker, rig_limits(), &watch);
        let mut children = self.children.lock().unwrap();
        // A restart spawns after the previous incarnation was killed and
        // reaped: join its thread now (it ends once its lanes did).
        for old in children.drain(..) {
            old.join().expect("child thread");
        }
        children.push(child);
        Ok((region, watch))
    }
}

/// The full L3 shape under shuttle: core's `L3Worker` (run queue,
/// orchestrator, drivers, handles) over [`ThreadSpawner`]: the seed's L3
/// usage (register, run_async(C1), register_async(C2) while C1 runs, run,
/// wait, unregister_async) with C1's run held until C2's register was
/// accepted. Returns true (the control entered during the task).
pub fn l3_worker_pipeline() -> bool {
    use chiplane_core::conc::l3::{L3Options, L3Worker};
    use chiplane_core::conc::Worker;
    let chip = TestChip::new(true);
    let held = Gate::new();
    chip.gate("c1", Hold::Run, held.clone());
    let spawner = ThreadSpawner::new(chip.clone(), 2);
    let options = L3Options { chips: 1, link: LinkOptions::untimed() };
    let w = L3Worker::new(spawner, options).expect("thread children start");
    let h1: CallableHandle = w.register(spec("c1")).expect("register C1");
    let r1 = w.run_async(move |o| o.submit(h1, args(1), RunConfig::default()).expect("submit C1"));
    let mut r2 = w.register_async(spec("c2")).expect("register_async C2");
    let h2 = r2.wait_accepted().expect("C2 accepted while C1 runs");
    held.open();
    assert_eq!(r2.wait(), Ok(h2));
    let out2 = Worker::run(&w, h2, args(2), RunConfig::default()).expect("run C2");
    assert_eq!(out2.tensors[0][1], 2.0);
    let out1 = r1.wait();
    assert_eq!(out1.task(&out1.value).as_ref().map(|o| o.tensors[0][1]), Ok(1.0));
    w.unregister_async(h2).expect("unregister_async C2").wait().expect("C2 freed");
    w.unregister(h1).expect("unregister C1");
    drop(w);
    assert_eq!(chip.runs(), vec![1, 2]);
    chip.assert_all_released();
    true
}

/// S16, the L3 run queue's hand-off: a `run_async` that arrives while another
/// orchestration function still runs on its caller's thread is queued, and
/// the orchestrator thread runs it once that function returned, because
/// `RunQueue::finished` wakes it (it waits for nothing else). A second
/// thread submits while the first function holds the queue (gates order
/// the two), so the queued path is taken in every schedule; a `finished`
/// that did not wake the orchestrator leaves the second handle unresolved
/// for good (a deadlock the checkers report). Returns true.
pub fn l3_run_queue_handoff() -> bool {
    use chiplane_core::conc::l3::{L3Options, L3Worker};
    let chip = TestChip::new(true);
    let spawner = ThreadSpawner::new(chip.clone(), 2);
    let options = L3Options { chips: 1, link: LinkOptions::untimed() };
    let w = Arc::new(L3Worker::new(spawner, options).expect("thread children start"));
    let second = while_a_function_holds_the_queue(&w, |w, submitted| {
        // The first function holds the queue: this one is queued.
        let r = w.run_async(|_| 2u32);
        submitted.open();
        r.wait().value
    });
    assert_eq!(second, 2, "the queued function ran");
    drop(w);
    true
}

/// Run `second` on another thread while an orchestration function of `w`
/// holds its run queue: gates order the two, so `second` starts once the
/// function runs, and the function returns (value 1) only once `second`
/// opened the gate it is given, after its submission. Returns `second`'s
/// value.
fn while_a_function_holds_the_queue<T: Send + 'static>(
    w: &Arc<chiplane_core::conc::l3::L3Worker<ThreadSpawner>>,
    second: impl FnOnce(&chiplane_core::conc::l3::L3Worker<ThreadSpawner>, Arc<Gate>) -> T + Send + 'static,
) -> T {
    let (started, go) = (Gate::new(), Gate::new());
    let handle = {
        let (w, started, go) = (w.clone(), started.clone(), go.clone());
        thread::spawn(move || {
            started.wait();
            second(&w, go)
        })
    };
    let r1 = w.run_async(move |_| {
        started.open();
        go.wait();
        1u32
    });
    assert_eq!(r1.wait().value, 1);
    handle.join().expect("second submitter")
}

/// S16 for a single task: `Worker::run_async(handle, ..)` (`call_async`)
/// while an orchestration function holds the run queue. Its claim of the
/// queue fails, so it must leave the holder's claim alone and queue a
/// one-task function behind it (a failed claim that handed the queue back,
/// or touched the queue's lock again while holding it, is a deadlock or a
/// second run beside the first). Then a call on the idle queue claims it
/// and submits at once. The chip runs 2 (queued), then 3 (claimed).
/// Returns true.
pub fn l3_call_beside_a_run() -> bool {
    use chiplane_core::conc::l3::{L3Options, L3Worker};
    use chiplane_core::conc::Worker;
    let chip = TestChip::new(true);
    let spawner = ThreadSpawner::new(chip.clone(), 2);
    let options = L3Options { chips: 1, link: LinkOptions::untimed() };
    let w = Arc::new(L3Worker::new(spawner, options).expect("thread children start"));
    let h: CallableHandle = w.register(spec("c")).expect("register");
    let second = while_a_function_holds_the_queue(&w, move |w, submitted| {
        // The function holds the queue: this call is queued.
        let r = Worker::run_async(w, h, args(2), RunConfig::default()).expect("call beside a run");
        submitted.open();
        r.wait().expect("the queued call ran").tensors[0][1]
    });
    assert_eq!(second, 2.0);
    // The queue is idle again: this call claims it and submits at once.
    let out = Worker::run(&*w, h, args(3), RunConfig::default()).expect("call on an idle queue");
    assert_eq!(out.tensors[0][1], 3.0);
    w.unregister(h).expect("unregister");
    drop(w);
    assert_eq!(chip.runs(), vec![2, 3]);
    chip.assert_all_released();
    true
}

/// A control round trip at IDLE that needs no lane (a memory control): the
/// smallest L3 shape, for loom with every thread of production present
/// (the child's lanes exist and sleep). Returns true.
pub fn l3_memory_round_trip() -> bool {
    let rig = Rig::start(1, TestChip::new(true), false);
    let link = &rig.link;
    let m = link
        .submit_control(SlotIndex(0), Generation::NONE, ControlOp::Memory { bytes: 64, free: false })
        .expect("submit memory");
    assert_eq!(reply(link, &m), Ok(ControlReply::Done));
    assert_eq!(settled(link, &m), Ok(None));
    rig.finish();
    true
}

/// S15, the driver's hand-over: a caller waits (`wait_until`, stepping the
/// port; the driver waits unannounced meanwhile, so the child's rings skip
/// it) for the first of two memory controls and leaves while the second is
/// still outstanding; then it blocks on the second *without stepping*
/// (`wait_reply`), so only the driver can finish it. The last waiter out
/// must hand the port back: announce the driver on the parent's bell (the
/// proxy) so the child's next ring wakes it, or wake it itself when the
/// child already published or the driver sleeps idle (a lost hand-over is
/// a deadlock: nothing times out). Returns whether a ring ended one of the
/// driver's unannounced waits (the named situation).
pub fn s15_driver_handover() -> bool {
    handover(false)
}

/// S15's shape; with `submit_third`, S18's submission after the hand-over.
fn handover(submit_third: bool) -> bool {
    let rig = Rig::start(1, TestChip::new(true), true);
    let link = &rig.link;
    let (first, second) = (memory(link), memory(link));
    assert_eq!(reply(link, &first), Ok(ControlReply::Done));
    let third = submit_third.then(|| memory(link));
    assert_eq!(second.wait_reply(), Some(Ok(ControlReply::Done)), "only the driver steps now");
    if let Some(third) = third {
        assert_eq!(reply(link, &third), Ok(ControlReply::Done));
    }
    let handed_over = link.driver_wakes() > 0;
    rig.finish();
    handed_over
}

/// S18, a submission after the hand-over: as S15, a caller waits for the
/// first of two memory controls and leaves with the second outstanding (the
/// driver's proxy stands); then it submits a third, blocks on the second
/// *without stepping* (only the driver can finish it), and waits for the
/// third (`wait_until`). The submission takes the proxy down while it
/// publishes (so the child's reply to a caller about to wait wakes no
/// driver) and must put it back: a submission that drops it leaves the
/// driver unannounced while nobody steps (a deadlock: nothing times out).
/// (A non-stepping wait for the third itself is outside the contract: the
/// driver may have gone idle before the third was submitted, and nothing
/// that waits rings it; module doc of `core::conc::parent`.) Returns
/// whether a ring ended one of the driver's unannounced waits.
pub fn s18_submit_after_handover() -> bool {
    handover(true)
}

/// A task the child refuses before it runs (a handle of no registration):
/// TASK_READY -> TASK_DONE without the run lane. Returns true.
pub fn l3_refused_task() -> bool {
    let rig = Rig::start(1, TestChip::new(true), false);
    let link = &rig.link;
    let t = run(link, (SlotIndex(0), Generation(1)), 1).expect("submit");
    assert!(matches!(task(link, &t), Err(RunError::Handle(_))));
    rig.finish();
    true
}

/// Register a callable (a control, its prepare on the register lane, its
/// settlement through the ring) and run it once (the run lane). Returns
/// true.
pub fn l3_register_and_run() -> bool {
    let rig = Rig::start(1, TestChip::new(true), false);
    let link = &rig.link;
    let h = preregister(link, "c");
    assert_eq!(ran(&task(link, &run(link, h, 1).expect("submit"))), (0.0, 1.0));
    rig.finish();
    true
}

/// The completion ring alone (core's `conc::ring` producer and consumer on
/// a region, two threads): three completions through a two-entry ring,
/// FIFO, none lost; the consumer reads an entry only after the producer's
/// tail published it (loom tracks every entry's bytes). Returns whether the
/// producer found the ring full at least once.
pub fn ring_push_pop() -> bool {
    use chiplane_core::conc::ring::{Consumer, Producer};
    use chiplane_core::frame::{CompletionFrame, Frame, FrameId};
    use chiplane_core::DispatchId;
    let region = SharedRegion::new(2);
    let completion = |d: u64| CompletionFrame {
        id: FrameId { dispatch: DispatchId(d), slot: SlotIndex(0), generation: Generation(1) },
        settlement: Settlement::Freed,
    };
    let producer = {
        let region = region.clone();
        thread::spawn(move || {
            let mut p = Producer::new(&region);
            let mut full = false;
            for d in 1..=3 {
                while p.free(&region, true) == 0 {
                    full = true;
                    thread::yield_now();
                }
                p.push(&region, completion(d)).expect("room was seen");
            }
            full
        })
    };
    let mut c = Consumer::new(&region);
    let mut got = Vec::new();
    while got.len() < 3 {
        match c.pop(&region) {
            Some(Ok(Frame::Completion(f))) => got.push(f.id.dispatch.0),
            Some(other) => panic!("ring entry {other:?}"),
            None => thread::yield_now(),
        }
    }
    assert_eq!(got, vec![1, 2, 3], "FIFO, none lost");
    producer.join().unwrap()
}

/// A control round trip at IDLE while a liveness monitor poisons the word
/// at any point: poison is one way, so the word ends POISONED whatever the
/// parent was doing (a restore by plain store would erase it); the control
/// resolves (done, or with the endpoint error). Returns whether the poison
/// landed while the control was in flight.
pub fn l3_memory_control_poisoned() -> bool {
    let rig = Rig::start(1, TestChip::new(true), false);
    let monitor = {
        let (region, futex) = (rig.region.clone(), rig.watch.futex.clone());
        thread::spawn(move || {
            let before = region.word().poison();
            Doorbell::new(region.child_bell(), &*futex).ring();
            Doorbell::new(region.parent_bell(), &*futex).ring();
            before
        })
    };
    let link = &rig.link;
    let m = link.submit_control(SlotIndex(0), Generation::NONE, ControlOp::Memory { bytes: 64, free: false });
    if let Ok(m) = &m {
        let r = reply(link, m);
        assert!(matches!(r, Ok(ControlReply::Done) | Err(ControlError::Endpoint(_))), "{r:?}");
    }
    let before = monitor.join().unwrap();
    let region = rig.region.clone();
    rig.finish();
    assert_eq!(region.word().load(), POISONED, "poison is one way: it was erased");
    matches!(WordState::decode(before), Some(WordState::ControlReady { .. } | WordState::ControlDone { .. }))
}
