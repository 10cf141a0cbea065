//! Scenario bodies shared by the loom and shuttle mailbox models
//! (design.md section 7). Each body is one execution: it builds a region, a
//! model chip, a child thread running `conc::serve::Serve` and the parent's
//! `conc::port::Port` on the calling thread, runs the scenario, asserts its
//! invariants and joins every thread. The checker (loom or shuttle) calls it
//! once per explored schedule.
//!
//! Common invariants asserted by every body:
//! - every handle resolves exactly once (the port asserts "resolved twice";
//!   the bodies take every result);
//! - a value that arrives is the right one (a run of tag `t` outputs
//!   `[[t]]`), and an error is a typed endpoint error only where the
//!   scenario kills or poisons the child;
//! - all threads end (no deadlock: loom reports one as a deadlock or as
//!   "exceeded maximum number of branches", shuttle as a step-bound failure).

use chiplane_core::conc::port::{ControlHandle, Port, SettleResult, TaskHandle};
use chiplane_core::conc::region::SharedRegion;
use chiplane_core::conc::serve::{Serve, ServeExit, ServeStats, Step};
use chiplane_core::conc::word::POISONED;
use chiplane_core::frame::{ControlOp, ControlReply, Settlement};
use chiplane_core::mailbox::word::WordState;
use chiplane_core::sync::{thread, Arc, AtomicBool, Ordering};
use chiplane_core::{ControlError, DispatchId, Generation, RunConfig, RunError, RunOutput, SlotIndex, TaskArgs};

use super::{spec, LaneMode, ModelBackend, ModelChip, ModelWatch, Record, RunGate};

/// Executions in which the child held a settlement for want of ring room
/// (S11 asserts the checker reached that state at least once).
pub static RING_FULL_SEEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

type ModelPort = Port<SharedRegion, ModelWatch>;

struct ChildEnd {
    exit: Option<ServeExit>,
    stats: ServeStats,
}

/// The threads of one execution.
struct Rig {
    region: SharedRegion,
    chip: Arc<ModelChip>,
    watch: ModelWatch,
    child: thread::JoinHandle<ChildEnd>,
    lanes: Vec<thread::JoinHandle<()>>,
}

impl Rig {
    /// `killable`: the child loop checks the watch's kill flag before every
    /// step (S9), i.e. it can die between any two protocol actions.
    fn start(ring_capacity: u32, mode: LaneMode, chip: Arc<ModelChip>, killable: bool) -> (Rig, ModelPort) {
        let region = SharedRegion::new(ring_capacity);
        let watch = ModelWatch::default();
        let lanes = ModelChip::spawn_lanes(&chip, mode);
        let child = {
            let region = region.clone();
            let backend = ModelBackend::new(chip.clone(), mode);
            let watch = watch.clone();
            thread::spawn(move || {
                let mut serve = Serve::new(region, backend);
                let exit = loop {
                    // Acquire: pairs with the killer's / watch's Release store.
                    if killable && watch.kill.load(Ordering::Acquire) {
                        break None;
                    }
                    match serve.step() {
                        Step::Busy => {}
                        Step::Idle => thread::yield_now(),
                        Step::Exit(e) => break Some(e),
                    }
                };
                let stats = serve.stats().clone();
                // Release: pairs with the watch's Acquire loads (reaped).
                watch.exited.store(true, Ordering::Release);
                ChildEnd { exit, stats }
            })
        };
        let port = Port::new(region.clone(), watch.clone());
        (Rig { region, chip, watch, child, lanes }, port)
    }

    /// Shut down, join everything; the child's end and the chip's log.
    fn finish(self, mut port: ModelPort) -> (ChildEnd, Vec<Record>) {
        port.shutdown();
        let end = self.child.join().expect("child thread");
        self.chip.stop();
        for l in self.lanes {
            l.join().expect("lane thread");
        }
        assert!(!port.outstanding(), "work outstanding after the end: {:?}", port.endpoint());
        let _ = &self.watch;
        let _ = &self.region;
        (end, self.chip.log())
    }
}

fn run_args() -> (RunConfig, TaskArgs) {
    (RunConfig::default(), TaskArgs::default())
}

fn out(tag: u64) -> RunOutput {
    RunOutput { tensors: vec![vec![tag as f32]] }
}

fn register(port: &mut ModelPort, tag: u64) -> Result<ControlHandle, ControlError> {
    port.submit_control(SlotIndex(0), Generation(0), ControlOp::Register { spec: spec(tag) })
}

fn run(port: &mut ModelPort, at: (SlotIndex, Generation)) -> Result<TaskHandle, RunError> {
    let (config, args) = run_args();
    port.submit_task(at.0, at.1, config, args)
}

/// Drive until the child published TASK_RUNNING for the task in flight (or
/// the task resolved, or the endpoint failed).
fn drive_until_running(port: &mut ModelPort, t: &TaskHandle) {
    loop {
        if port.word() == WordState::TaskRunning || t.is_ready() || port.endpoint().gone().is_some() {
            return;
        }
        if !port.progress() {
            thread::yield_now();
        }
    }
}

fn runs(log: &[Record]) -> Vec<(DispatchId, Option<u64>)> {
    log.iter()
        .filter_map(|r| match r {
            Record::Run { dispatch, tag, .. } => Some((*dispatch, *tag)),
            _ => None,
        })
        .collect()
}

fn assert_fresh(reply: &Result<ControlReply, ControlError>) -> (SlotIndex, Generation) {
    match reply {
        Ok(ControlReply::Registered { slot, generation, fresh: true }) => (*slot, *generation),
        other => panic!("register reply {other:?}"),
    }
}

fn assert_prepared_ok(s: &SettleResult) {
    assert_eq!(s, &Ok(Some(Settlement::Prepared(Ok(())))), "settlement");
}

/// S1, the seed pipeline: run_async(C1); register_async(C2) while C1 is
/// TASK_RUNNING (C1's run cannot finish before C2 is registered); C2's
/// prepare cannot finish before the parent observed C1's completion (seed
/// hazard D: a child loop that waits for the prepare deadlocks here);
/// run_async(C2) as soon as C2's handle is known. All resolve, values are
/// right, C2's run follows C1's, each TASK_DONE is published once.
pub fn s1_pipeline(mode: LaneMode) {
    let chip = ModelChip::new(2);
    let c1 = chip.preregister(&spec(1));
    let c2_observed = Arc::new(AtomicBool::new(false));
    chip.set_run_gate(spec(1).digest(), RunGate::Registered(spec(2).digest()));
    chip.set_prepare_gate(spec(2).digest(), c2_observed.clone());
    let (rig, mut port) = Rig::start(2, mode, chip, false);

    let t1 = run(&mut port, c1).expect("submit C1");
    drive_until_running(&mut port, &t1);
    let r2 = register(&mut port, 2).expect("submit register C2");
    assert_eq!(port.wait_task(&t1), Ok(out(1)), "C1's run");
    // Release: pairs with the register lane's Acquire load of the gate.
    c2_observed.store(true, Ordering::Release);
    let c2 = assert_fresh(&port.wait_control(&r2));
    let t2 = run(&mut port, c2).expect("submit C2");
    assert_prepared_ok(&port.wait_settled(&r2));
    assert_eq!(port.wait_task(&t2), Ok(out(2)), "C2's run");
    assert_eq!(port.stats().settled_order, vec![r2.dispatch()]);

    let (end, log) = rig.finish(port);
    assert_eq!(end.exit, Some(ServeExit::ShutDown));
    assert_eq!(end.stats.task_done_published, 2, "each TASK_DONE published once");
    assert_eq!(runs(&log), vec![(t1.dispatch(), Some(1)), (t2.dispatch(), Some(2))], "C2's run follows C1's");
}

/// S1, staging: two runs queued back to back; the parent stages the second
/// task into the task field as soon as it sees TASK_RUNNING for the first
/// (rule 1), which is safe only because the child copied the first out
/// before publishing TASK_RUNNING. Both resolve with the right value, in
/// order, each TASK_DONE published once.
pub fn s1_staged(mode: LaneMode) {
    let chip = ModelChip::new(2);
    let c1 = chip.preregister(&spec(1));
    let c2 = chip.preregister(&spec(2));
    let (rig, mut port) = Rig::start(2, mode, chip, false);

    let t1 = run(&mut port, c1).expect("submit C1");
    let t2 = run(&mut port, c2).expect("submit C2");
    assert_eq!(port.wait_task(&t1), Ok(out(1)), "first run");
    assert_eq!(port.wait_task(&t2), Ok(out(2)), "second run");

    let (end, log) = rig.finish(port);
    assert_eq!(end.exit, Some(ServeExit::ShutDown));
    assert_eq!(end.stats.task_done_published, 2);
    assert_eq!(runs(&log), vec![(t1.dispatch(), Some(1)), (t2.dispatch(), Some(2))]);
}

/// S2: the run finishes during a control exchange (C1's run is held until
/// the register control was applied, i.e. while CONTROL_READY/CONTROL_DONE
/// is visible): TASK_DONE is deferred and published exactly once, the task
/// result and the control result both arrive intact (rule 8), the control
/// is not lost (rule 2/7).
pub fn s2_done_during_control(mode: LaneMode) {
    let chip = ModelChip::new(2);
    let c1 = chip.preregister(&spec(1));
    chip.set_run_gate(spec(1).digest(), RunGate::Registered(spec(2).digest()));
    let (rig, mut port) = Rig::start(2, mode, chip, false);

    let t1 = run(&mut port, c1).expect("submit C1");
    drive_until_running(&mut port, &t1);
    let r2 = register(&mut port, 2).expect("submit register C2");
    assert_eq!(port.wait_task(&t1), Ok(out(1)), "C1's run");
    assert_fresh(&port.wait_control(&r2));
    assert_prepared_ok(&port.wait_settled(&r2));

    let (end, log) = rig.finish(port);
    assert_eq!(end.exit, Some(ServeExit::ShutDown));
    assert_eq!(end.stats.task_done_published, 1, "TASK_DONE published exactly once");
    assert_eq!(runs(&log), vec![(t1.dispatch(), Some(1))]);
}

/// S8: a memory control submitted while TASK_RUNNING waits for IDLE: the
/// chip applies it only when no task is open, after the run retired.
pub fn s8_memory_waits_for_idle(mode: LaneMode) {
    let chip = ModelChip::new(2);
    let c1 = chip.preregister(&spec(1));
    let submitted = Arc::new(AtomicBool::new(false));
    chip.set_run_gate(spec(1).digest(), RunGate::Flag(submitted.clone()));
    let (rig, mut port) = Rig::start(2, mode, chip, false);

    let t1 = run(&mut port, c1).expect("submit C1");
    drive_until_running(&mut port, &t1);
    assert_eq!(port.word(), WordState::TaskRunning, "C1's run is held until the memory control is submitted");
    let m = port
        .submit_control(SlotIndex(0), Generation(0), ControlOp::Memory { bytes: 4096, free: false })
        .expect("submit memory");
    // One step with the memory control queued while TASK_RUNNING is known.
    port.progress();
    // Release: pairs with the run lane's Acquire load of the gate.
    submitted.store(true, Ordering::Release);
    assert_eq!(port.wait_control(&m), Ok(ControlReply::Done), "memory control");
    assert_eq!(port.wait_settled(&m), Ok(None));
    assert_eq!(port.wait_task(&t1), Ok(out(1)), "C1's run");

    let (end, log) = rig.finish(port);
    assert_eq!(end.exit, Some(ServeExit::ShutDown));
    let run_at = log.iter().position(|r| matches!(r, Record::Run { .. })).expect("run logged");
    let mem_at = log.iter().position(|r| matches!(r, Record::Control { .. })).expect("memory control logged");
    assert!(run_at < mem_at, "memory control applied after the run retired: {log:?}");
    assert_eq!(log[mem_at], Record::Control { dispatch: m.dispatch(), tasks_open: 0 }, "held until IDLE");
}

/// How S9 ends the child.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Death {
    /// A killer thread kills the child (it stops between two protocol
    /// actions, at any point); the parent's watch sees it exited.
    Killed,
    /// A liveness monitor on the parent side swaps POISONED into the word at
    /// any point; poison is one way, so the word ends POISONED.
    MonitorPoisons,
    /// The monitor fires while a control's result waits (it polls until it
    /// sees CONTROL_DONE, or until the parent is done, then swaps): the
    /// moment a restore by plain store would erase it. Random schedulers
    /// rarely keep a one-shot monitor waiting that long on their own.
    MonitorPoisonsAtControlDone,
}

/// S9: the child dies (or is poisoned) at each protocol step of "run C1,
/// register C2 during TASK_RUNNING": every handle resolves exactly once;
/// what was not completed resolves with an endpoint error; nothing hangs.
/// With `MonitorPoisons`, the word is POISONED at the end (rule 10).
pub fn s9_child_death(death: Death) {
    let chip = ModelChip::new(2);
    let c1 = chip.preregister(&spec(1));
    chip.set_run_gate(spec(1).digest(), RunGate::Registered(spec(2).digest()));
    let (rig, mut port) = Rig::start(2, LaneMode::Inline, chip, death == Death::Killed);
    let parent_done = Arc::new(AtomicBool::new(false));
    let third = {
        let region = rig.region.clone();
        let kill = rig.watch.kill.clone();
        let parent_done = parent_done.clone();
        thread::spawn(move || match death {
            // Release: pairs with the child loop's Acquire load.
            Death::Killed => kill.store(true, Ordering::Release),
            Death::MonitorPoisons => {
                let _ = region.word().poison();
            }
            Death::MonitorPoisonsAtControlDone => {
                // Acquire: pairs with the parent's Release store below.
                while !matches!(region.word().snapshot(), Some(WordState::ControlDone { .. }))
                    && !parent_done.load(Ordering::Acquire)
                {
                    thread::yield_now();
                }
                let _ = region.word().poison();
            }
        })
    };

    let t1 = run(&mut port, c1).expect("submit C1 (nothing can have failed yet)");
    drive_until_running(&mut port, &t1);
    let r2 = register(&mut port, 2);
    let t1r = port.wait_task(&t1);
    assert!(matches!(t1r, Ok(ref o) if *o == out(1)) || matches!(t1r, Err(RunError::Endpoint(_))), "C1: {t1r:?}");
    match &r2 {
        Ok(r2) => {
            let reply = port.wait_control(r2);
            let settled = port.wait_settled(r2);
            match reply {
                Ok(ControlReply::Registered { fresh: true, .. }) => {
                    assert!(
                        matches!(settled, Ok(Some(Settlement::Prepared(Ok(())))) | Err(_)),
                        "C2 settled: {settled:?}"
                    );
                }
                Err(ControlError::Endpoint(_)) => assert_eq!(settled, Ok(None)),
                other => panic!("C2 reply: {other:?}"),
            }
        }
        Err(e) => assert!(matches!(e, ControlError::Endpoint(_)), "submit C2: {e:?}"),
    }
    // Release: pairs with the monitor's Acquire load.
    parent_done.store(true, Ordering::Release);
    third.join().expect("killer/monitor thread");
    let region = rig.region.clone();
    let (_end, _log) = rig.finish(port);
    if death != Death::Killed {
        assert_eq!(region.word().load(), POISONED, "poison is one way: it was erased");
    }
}

/// S11: the completion ring (one entry) is full while settlements keep
/// coming: the child holds them; none is dropped or reordered; every
/// waiter resolves. `registers` fresh registers are submitted at once.
pub fn s11_ring_full(mode: LaneMode, registers: u64) {
    let chip = ModelChip::new(registers as usize + 1);
    let (rig, mut port) = Rig::start(1, mode, chip, false);

    let hs: Vec<ControlHandle> = (1..=registers).map(|t| register(&mut port, t).expect("submit register")).collect();
    for h in &hs {
        assert_fresh(&port.wait_control(h));
    }
    for h in &hs {
        assert_prepared_ok(&port.wait_settled(h));
    }
    let order: Vec<DispatchId> = hs.iter().map(|h| h.dispatch()).collect();
    assert_eq!(port.stats().settled_order, order, "settlements in prepare (FIFO) order");

    let (end, log) = rig.finish(port);
    assert_eq!(end.exit, Some(ServeExit::ShutDown));
    assert_eq!(end.stats.pushes, registers, "one ring entry per settlement");
    if end.stats.held_max > 0 {
        // Relaxed: a statistic read after the checker's run (pairs with the
        // test's Relaxed load once every execution was joined).
        RING_FULL_SEEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let prepared: Vec<u64> = log
        .iter()
        .filter_map(|r| match r {
            Record::Prepared { tag } => Some(*tag),
            _ => None,
        })
        .collect();
    assert_eq!(prepared, (1..=registers).collect::<Vec<_>>());
}
