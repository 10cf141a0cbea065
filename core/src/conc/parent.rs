//! The parent side of one chip: its [`Port`] behind a lock, the caller's
//! fast path, and the driver loop. hw runs exactly this (its L3 worker is
//! core's [`super::l3::L3Worker`] over processes); the loom and shuttle
//! models run it with threads.
//!
//! # Who drives the port
//! - **the caller** that submits: it holds the lock the driver would take,
//!   so it publishes its own frame (the machine's `Write` and `Cas`) before
//!   it returns, and rings the child's doorbell;
//! - **the caller that waits** for a handle ([`Link::wait_until`]): it steps
//!   the port itself (it reads the word and completes its own handle),
//!   spinning for the process's spin budget (for a control under a running
//!   task, the under-task budget: [`super::wait::under_task_spin_budget`],
//!   then yielding its core for [`super::wait::under_task_yield_budget`]
//!   rounds); then it sleeps on the parent's
//!   doorbell, which the child rings when it publishes, and steps again when
//!   woken. One wake-up per hop, no thread in between;
//! - **the caller that polls** a handle (`is_ready`): it steps the port
//!   once first, so a poller sees what the child published without help;
//! - **the driver thread** ([`Link::drive`]), for what nobody waits on
//!   (async handles, settlements) and for liveness. It always blocks on the
//!   parent's doorbell's word, but it *announces* itself there (so that the
//!   child's publications wake it) only while work is outstanding *and no
//!   caller waits* in `wait_until`. Otherwise (nothing outstanding, or a
//!   waiter steps for it) it waits there unannounced, so a reply that a
//!   spinning caller will read costs the child no futex call and wakes no
//!   thread. A ring for a *sleeping* waiter still ends that wait (the
//!   futex wakes every thread blocked on the word); while a waiter is
//!   inside `wait_until` the driver then goes back to its wait without
//!   stepping the port, which the waiter steps (its step there only raced
//!   the waiter for the port and, on 2 cores, for a core: back-to-back
//!   no-op runs paid 0.72-0.79 futex calls on the parent's bell per run
//!   before, 0.48-0.52 after; runs/s moved within the VM's noise,
//!   hw/benches/README.md, "Eighth session").
//!
//! # The hand-over (docs/protocol.md section 4.7)
//! The last waiter to leave `wait_until` while work is still outstanding
//! hands the port back to the driver *without waking it*: it announces a
//! sleeper on the parent's bell on the driver's behalf (the *proxy*,
//! [`Doorbell::announce_for_another`]), then steps the port until a step
//! does nothing (the sleeper's re-check of the handshake, done for the
//! driver to the end; at most `HAND_OVER_STEPS` steps, and if the last
//! still found work it wakes the driver to finish it). From then on the
//! child's next publication rings the bell and wakes the driver. The next
//! caller to enter `wait_until` withdraws the proxy, so a caller that waits
//! for its handles one after the other (a pipeline) never wakes the driver.
//! Two cases still wake it at once: [`Link::stop`], and a hand-over while
//! the driver sleeps *idle* (nothing was outstanding when it went to sleep,
//! so its sleep is bounded by `idle_poll`, too long for its liveness duty).
//! Work submitted asynchronously and then neither waited on (through
//! `wait_until`) nor polled is found by the driver within its sleep bound
//! (`idle_poll`); a thread that blocks on a port handle's own `wait` (which
//! does not step) is served by the driver at once only if a `wait_until`
//! left after the submission (S15), else within that bound.
//!
//! # Rings for resolved handles
//! A step that resolved handles of *other* callers rings the parent's bell
//! only while a caller is inside `wait_until` (`waiter_may_sleep`: a
//! SeqCst fence, then `waiters`; the fence pairs with F1 of that caller's
//! sleep, which follows its increment of `waiters`). Nobody else sleeps
//! there for a handle: the driver sleeps for the child's publications, and
//! a handle's own `wait` sleeps on its cell. Before, such a ring found the
//! hand-over's proxy and woke the driver (mutant `unrung_waiter` leaves the
//! ring out altogether).
//!
//! # A pipeline stays with its caller
//! A caller that waits for many outstanding handles one after the other
//! leaves `wait_until` after each and is back within a microsecond. A
//! driver woken in that gap found no waiter, stepped, and announced itself:
//! from then on every publication of the child rang it, and the caller's
//! waits found their handles ready, so the driver kept the port (on the
//! 2-core VM, batches of 5,000 no-op runs in that state paid 1.4-2.8 futex
//! calls on the parent's bell per run, hw/benches/README.md, ninth
//! session). So a driver that wakes with no caller inside `wait_until`,
//! although one entered since it last looked (`waits`, counted only where
//! loops spin), first watches `waiters` for the spin budget without
//! stepping (`Link::let_waiter_return`; none beside a long task on a small
//! machine, none under the models).
//!
//! # A submission and the proxy
//! A caller that submits right after its previous `wait_until` handed the
//! port over would find the proxy still standing, and on a small machine
//! the child, woken by the submission, often answers before the caller has
//! entered its next `wait_until` and withdrawn it: the reply then wakes the
//! driver, which races the caller for it and rings the child once more. So
//! a submission takes the proxy down before it publishes
//! ([`Link::submit_task`], [`Link::submit_control`]) and puts it back after
//! it rang the child, unless a caller is inside `wait_until` (the last one
//! out hands over): it announces the proxy again and re-checks for the
//! driver to the end (steps until a step does nothing), so whatever the
//! child published while the proxy was down is read, and a step that only
//! resolved the submitter's own handle rings no parent bell. Scenario S18,
//! mutant `submit_drops_handover`.
//!
//! # Liveness (off the hot path)
//! Only a thread about to sleep on the parent's bell asks the port's
//! [`ChildWatch`] (part of its re-check after announcing; waitpid and the
//! heartbeat in hw, rate-limited by the watch itself), and its sleep is
//! bounded (`liveness_poll` while work is outstanding, `idle_poll` when
//! none is), so it asks again when the sleep runs its course. A child that
//! is alive and working rings the bell and is rarely polled.
//!
//! # Never a hang
//! Every handle resolves: the port resolves what the child answers, the
//! watch resolves what a dead child leaves, and [`Link::fail`] resolves
//! everything if the driver thread itself dies (the L3 worker wraps it in
//! `catch_unwind`: defence in depth).

// clippy's `disallowed-types` resolves `crate::sync`'s re-exports to the std
// types it bans (on the std backend they are the same types); this module
// uses only `crate::sync`.
#![allow(clippy::disallowed_types)]

use core::ops::Deref;
use core::time::Duration;

use crate::chip::{RunConfig, TaskArgs};
use crate::error::{ControlError, EndpointError, RunError};
use crate::frame::ControlOp;
use crate::ids::{Generation, SlotIndex};
use crate::sync::{fence, Arc, AtomicBool, AtomicU32, Mutex, MutexGuard, Ordering};

use super::bell::{Doorbell, Futex};
use super::port::{ChildWatch, PendingControl, PendingTask, Port, Progress};
use super::region::Region;
use super::wait::{
    control_under_task, spin_budget, spin_budget_beside, spin_until_within, task_holds_lane, under_task_yield_budget,
    Backoff,
};

/// Most steps of the hand-over's re-check (module doc, "The hand-over").
const HAND_OVER_STEPS: usize = 4;

/// How the parent side sleeps.
#[derive(Clone, Copy, Debug)]
pub struct LinkOptions {
    /// Longest sleep while work is outstanding, before the watch is asked.
    pub liveness_poll: Option<Duration>,
    /// Longest sleep of the driver while nothing is outstanding.
    pub idle_poll: Option<Duration>,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions { liveness_poll: Some(Duration::from_millis(10)), idle_poll: Some(Duration::from_millis(100)) }
    }
}

impl LinkOptions {
    /// No timeouts: under loom and shuttle (a timeout never fires there; a
    /// model that kills a child rings the parent's bell instead).
    pub const fn untimed() -> Self {
        LinkOptions { liveness_poll: None, idle_poll: None }
    }
}

/// The parent side of one chip. See the module doc.
pub struct Link<R, W, F: ?Sized> {
    port: Mutex<Port<R, W>>,
    region: R,
    futex: Arc<F>,
    /// The driver returns once this is set and nothing is outstanding.
    stop: AtomicBool,
    /// Callers inside [`Link::wait_until`] (they step the port themselves).
    waiters: AtomicU32,
    /// Entries into [`Link::wait_until`], counted only where loops spin
    /// (never under the models): the driver's hint that a caller waits
    /// for its handles one after the other (`Link::let_waiter_return`).
    waits: AtomicU32,
    /// A sleeper is announced on the parent's bell for the driver (the
    /// hand-over's proxy, module doc); whoever clears it withdraws it.
    proxy: AtomicBool,
    /// How the driver sleeps (a [`DriverSleep`] as `u32`): the hand-over
    /// wakes an idle one.
    driver_state: AtomicU32,
    /// Unannounced sleeps of the driver that a ring ended (diagnostics).
    driver_wakes: AtomicU32,
    options: LinkOptions,
}

/// How the driver sleeps right now (diagnostics and tests; the hand-over
/// reads it to wake an idle driver).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u32)]
pub enum DriverSleep {
    /// Running its loop.
    Awake,
    /// Waiting unannounced on the parent's bell while a caller steps the
    /// port (the child's rings skip it).
    BesideWaiter,
    /// Waiting unannounced on the parent's bell with nothing outstanding.
    Idle,
    /// Sleeping announced on the parent's bell (the child's rings wake it).
    Announced,
}

impl<R, W, F: ?Sized> core::fmt::Debug for Link<R, W, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Link").field("options", &self.options).finish_non_exhaustive()
    }
}

impl<R, W, F> Link<R, W, F>
where
    R: Deref<Target = Region> + Clone,
    W: ChildWatch,
    F: Futex + ?Sized,
{
    /// The parent of `region` (fresh: IDLE, empty ring), watching its child
    /// with `watch`, sleeping through `futex`.
    pub fn new(region: R, watch: W, futex: Arc<F>, options: LinkOptions) -> Self {
        Link {
            port: Mutex::new(Port::new(region.clone(), watch)),
            region,
            futex,
            stop: AtomicBool::new(false),
            waiters: AtomicU32::new(0),
            waits: AtomicU32::new(0),
            proxy: AtomicBool::new(false),
            driver_state: AtomicU32::new(DriverSleep::Awake as u32),
            driver_wakes: AtomicU32::new(0),
            options,
        }
    }

    /// The region (lock-free reads: the word, the bells, diagnostics).
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// The port, locked (submissions, diagnostics; a test that holds it
    /// keeps every other thread from stepping the port).
    pub fn port(&self) -> MutexGuard<'_, Port<R, W>> {
        // A panic while the lock was held (an assert inside the port) left
        // the port at a consistent step: the machine withdraws whatever a
        // half-executed step had issued (rule 12). Carry on.
        self.port.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn child_bell(&self) -> Doorbell<'_, F> {
        Doorbell::new(self.region.child_bell(), &*self.futex)
    }

    fn parent_bell(&self) -> Doorbell<'_, F> {
        Doorbell::new(self.region.parent_bell(), &*self.futex)
    }

    /// How the driver sleeps right now (diagnostics and tests).
    pub fn driver_sleep(&self) -> DriverSleep {
        // Relaxed: a diagnostic snapshot.
        match self.driver_state.load(Ordering::Relaxed) {
            s if s == DriverSleep::BesideWaiter as u32 => DriverSleep::BesideWaiter,
            s if s == DriverSleep::Idle as u32 => DriverSleep::Idle,
            s if s == DriverSleep::Announced as u32 => DriverSleep::Announced,
            _ => DriverSleep::Awake,
        }
    }

    /// How many of the driver's unannounced waits a ring ended (a proxy
    /// announcement answered by the child, a hand-over to an idle driver,
    /// `stop`): diagnostics and tests.
    pub fn driver_wakes(&self) -> u32 {
        // Relaxed: a diagnostic counter.
        self.driver_wakes.load(Ordering::Relaxed)
    }

    /// Take back the hand-over's proxy announcement, if one is made; true
    /// when this call took it back.
    fn withdraw_proxy(&self) -> bool {
        // AcqRel: exactly one of the swaps that see `true` withdraws the
        // one announcement the swap to `true` made.
        let stood = self.proxy.swap(false, Ordering::AcqRel);
        if stood {
            self.parent_bell().withdraw();
        }
        stood
    }

    /// A submission took the proxy down while it published (module doc,
    /// "A submission and the proxy"): put it back unless a caller inside
    /// `wait_until` steps for the driver (the last one out hands over),
    /// and do the re-check to the end. `mine` says whether the submitter's
    /// own handle resolved: a step that resolves only that rings no parent
    /// bell (nobody sleeps on it but the proxy), and a re-check that read a
    /// publication wakes no driver (it read all there was; what the child
    /// publishes after the proxy is visible rings it).
    fn hand_back_after_submit(&self, mine: impl Fn() -> bool) {
        if self.waiters() > 0 {
            return;
        }
        let idle = self.announce_proxy();
        loop {
            let was = mine();
            if !self.step_as(|| !was && mine()) {
                break;
            }
        }
        if idle {
            self.wake_driver();
        }
    }

    /// Announce the proxy on the parent's bell (or fence for one still
    /// standing): F1 of the driver's hand-over. Returns whether the driver
    /// sleeps idle, read after F1 (pairs with the SeqCst fence in the
    /// driver's `wait_unannounced`, before which it writes its state).
    fn announce_proxy(&self) -> bool {
        // AcqRel: see `withdraw_proxy`.
        if !self.proxy.swap(true, Ordering::AcqRel) {
            // Counts the driver as a sleeper; F1 follows.
            self.parent_bell().announce_for_another();
        } else {
            // F1 of an announcement still standing (pairs with the
            // driver's fence in `wait_unannounced`).
            fence(Ordering::SeqCst);
        }
        // Relaxed: ordered by F1 above.
        self.driver_state.load(Ordering::Relaxed) == DriverSleep::Idle as u32
    }

    /// The last waiter left with work outstanding: the port is the
    /// driver's again (module doc, "The hand-over").
    fn hand_over(&self) {
        let idle = self.announce_proxy();
        // The re-check, done for the driver: a publication the child made
        // before the announcement was visible found no sleeper to ring.
        // Done to the end (a step that does nothing), so nothing is left
        // that only the driver would have seen, for at most
        // `HAND_OVER_STEPS` steps (the caller is waiting to return); a
        // re-check still busy then wakes the driver to finish it.
        let mut busy = false;
        for _ in 0..HAND_OVER_STEPS {
            busy = self.step();
            if !busy {
                break;
            }
        }
        if busy || idle {
            self.wake_driver();
        }
    }

    /// Wake the driver wherever it sleeps.
    fn wake_driver(&self) {
        self.parent_bell().ring_always();
    }

    /// Callers inside `wait_until`.
    fn waiters(&self) -> u32 {
        // Relaxed: every decision on it is re-checked under a doorbell
        // handshake (its fences order this load; module doc of `bell`).
        self.waiters.load(Ordering::Relaxed)
    }

    /// One step of the port under its lock; rings the child when the step
    /// published work, nudges it when the step only consumed (read the
    /// word or a result, restored the word, freed ring room). True when it
    /// did anything. A nudge wakes a serve loop that sleeps with
    /// [`super::bell::Interest::Any`], which is every sleep but one beside
    /// a running task that waits for no consumption: a serve loop woken
    /// after this caller consumed TASK_DONE has nothing to do yet, but it
    /// then spins while this caller submits its next run (a ring only after
    /// publications measured slower for back-to-back no-op runs on the
    /// 2-core machine: hw/benches/README.md, "Tried and not kept"); beside
    /// a long task it spins for nothing (the under-task budget) and the
    /// wake-up only costs the caller its core.
    /// Handles it resolved for *other* waiters (more than `mine`) wake the
    /// parent side's sleepers: a waiter sleeping on the parent's bell learns
    /// of a handle another thread resolved for it. A handle counts once per
    /// step ([`Port::handles_resolved`]): a register's reply and its
    /// settlement popped in the same step are one handle, the stepping
    /// waiter's own (counted as two, they rang the parent's bell after
    /// every register, which woke the driver whenever the proxy stood).
    /// Only a caller inside `wait_until` can be asleep for a handle (the
    /// driver sleeps for the child's publications, and a handle's own
    /// `wait` sleeps on its cell), so the ring is made only while one is
    /// counted (module doc, "Rings for resolved handles").
    fn step_as(&self, mine: impl FnOnce() -> bool) -> bool {
        let mut port = self.port();
        let progress = port.progress();
        let resolved = port.handles_resolved();
        drop(port);
        self.tell_child(progress);
        if progress.did() && resolved > usize::from(mine()) && self.waiter_may_sleep() {
            self.parent_bell().ring();
        }
        progress.did()
    }

    /// After resolving handles: may a caller inside `wait_until` sleep on
    /// the parent's bell for one of them? The fence pairs with F1 of that
    /// caller's sleep (`Doorbell::sleep`), which follows its increment of
    /// `waiters` (`Waiting::enter`): either this load sees the increment,
    /// or the caller's re-check after F1 sees the resolved cell.
    fn waiter_may_sleep(&self) -> bool {
        // MUTANT unrung_waiter: a step that resolved another caller's
        // handle rings nobody; a caller asleep in `wait_until` for it (it
        // re-checked while the stepper held the port) is never woken (S1
        // with the driver, S9, S18: a deadlock in the models, where nothing
        // times out; a delay of up to `liveness_poll` in production).
        if cfg!(chiplane_mutant = "unrung_waiter") {
            return false;
        }
        fence(Ordering::SeqCst);
        self.waiters() > 0
    }

    /// Pay what a step owes the child's bell: a ring after a publication,
    /// a nudge after a consumption (`super::bell`, "Rings and nudges": the
    /// serve loop beside a running task that waits for no consumption does
    /// not wake for it).
    fn tell_child(&self, progress: Progress) {
        match progress {
            Progress::Published => {
                self.child_bell().ring();
            }
            Progress::Consumed => {
                self.child_bell().nudge();
            }
            Progress::Nothing => {}
        }
    }

    /// One step by a thread that waits for nothing in particular (the
    /// driver): see `step_as`.
    pub fn step(&self) -> bool {
        self.step_as(|| false)
    }

    /// A poller's answer: `ready()`, and if not yet, once more after one
    /// step of the port (so a poller makes progress without the driver).
    pub fn ready_after_step(&self, ready: impl Fn() -> bool) -> bool {
        ready() || {
            self.step();
            ready()
        }
    }

    /// Queue a run of `{slot, generation}` and publish it if the mailbox
    /// allows (the caller's own step).
    pub fn submit_task(
        &self,
        slot: SlotIndex,
        generation: Generation,
        config: RunConfig,
        args: TaskArgs,
    ) -> Result<PendingTask, RunError> {
        self.submit(|port| port.submit_task(slot, generation, config, args), PendingTask::is_ready)
    }

    /// Queue a control and publish it if the mailbox allows.
    pub fn submit_control(
        &self,
        slot: SlotIndex,
        generation: Generation,
        op: ControlOp,
    ) -> Result<PendingControl, ControlError> {
        self.submit(|port| port.submit_control(slot, generation, op), PendingControl::is_accepted)
    }

    /// One submission (module doc, "A submission and the proxy"): take a
    /// standing proxy down, queue with `queue` and publish under the port's
    /// lock, ring or nudge the child as that step owes (`tell_child`), then
    /// hand the proxy back. `resolved` says whether the submitter's handle
    /// resolved.
    fn submit<H, E>(
        &self,
        queue: impl FnOnce(&mut Port<R, W>) -> Result<H, E>,
        resolved: impl Fn(&H) -> bool,
    ) -> Result<H, E> {
        let proxy = self.withdraw_proxy();
        let submitted = {
            let mut port = self.port();
            queue(&mut port).map(|h| (h, port.progress()))
        };
        let h = submitted.map(|(h, progress)| {
            self.tell_child(progress);
            h
        });
        // MUTANT submit_drops_handover: the submission takes the proxy down
        // and leaves it down; with no caller inside `wait_until` the driver
        // waits unannounced while nobody steps (S18: a deadlock in the
        // models; a delay of up to the driver's sleep bound in production).
        #[cfg(not(chiplane_mutant = "submit_drops_handover"))]
        if proxy {
            self.hand_back_after_submit(|| h.as_ref().is_ok_and(&resolved));
        }
        #[cfg(chiplane_mutant = "submit_drops_handover")]
        let _ = (proxy, resolved);
        h
    }

    /// Block until `ready()` holds, stepping the port meanwhile (module doc:
    /// the caller's fast path, then sleeps on the parent's bell). `ready`
    /// must turn true through this port (a handle of it resolving).
    pub fn wait_until(&self, mut ready: impl FnMut() -> bool) {
        // While we wait we step the port: the driver may leave the
        // parent's bell to us (module doc). The guard hands it back, also
        // when `ready` holds at once: work submitted before this wait and
        // still outstanding after it is the driver's from here on.
        let _waiting = Waiting::enter(self);
        let mut backoff = Backoff::default();
        loop {
            if ready() {
                return;
            }
            if self.step_as(&mut ready) {
                backoff.reset();
                continue;
            }
            // A control under a running task spins by the under-task
            // budget (`wait::under_task_spin_budget`: the child needs the
            // core the task leaves).
            let under_task = || control_under_task(self.region.word().load());
            let budget = spin_budget_beside(under_task);
            if backoff.spin_within(budget) {
                continue;
            }
            // Beside a long task on a small machine: the serve loop we woke
            // needs a core, and sleeping now would cost us a wake-up of our
            // own when its reply comes; give the core away a bounded number
            // of times first (`wait::under_task_yield_budget`; 0 under the
            // models, which check the sleep below).
            let yields = under_task_yield_budget();
            if yields > 0 && under_task() && backoff.yield_within(yields) {
                continue;
            }
            // The re-check after announcing includes the watch: a child whose
            // death is visible needs no ring (and under the models nothing
            // times out).
            self.parent_bell()
                .sleep(|| ready() || self.step_as(&mut ready) || self.check_liveness(), self.options.liveness_poll);
            backoff.reset();
        }
    }

    /// Work is queued or in flight.
    pub fn outstanding(&self) -> bool {
        self.port().outstanding()
    }

    /// Ask the watch whether the child is gone (while work is outstanding).
    /// When it is, everything outstanding resolved: wake every other
    /// sleeper of the parent side (a waiter whose handle this resolved).
    pub fn check_liveness(&self) -> bool {
        let gone = self.port().check_liveness();
        if gone {
            self.parent_bell().ring();
        }
        gone
    }

    /// The driver thread's loop (module doc). Returns after [`Link::stop`]
    /// once nothing is outstanding.
    pub fn drive(&self) {
        // Acquire: pairs with `stop`'s Release store.
        let stopping = || self.stop.load(Ordering::Acquire);
        let mut waits_seen = 0;
        loop {
            // Awake: a proxy announcement made for us (the hand-over) has
            // done its work; take it back.
            self.withdraw_proxy();
            self.let_waiter_return(&mut waits_seen, stopping);
            // Beside a waiter, the waiter steps: a ring that ended our wait
            // was for it (a futex wake-up reaches every thread blocked on
            // the bell's word), and a step here would only race it for the
            // port (module doc, "Who drives the port").
            let beside_waiter = self.waiters() > 0 && !stopping();
            if !beside_waiter && self.step() {
                continue;
            }
            let outstanding = self.outstanding();
            if stopping() && !outstanding {
                return;
            }
            if outstanding && self.waiters() == 0 {
                // Nobody else steps: the child's rings are for us.
                self.set_driver_state(DriverSleep::Announced);
                self.parent_bell()
                    .sleep(|| stopping() || self.step() || self.check_liveness(), self.options.liveness_poll);
            } else {
                // Idle, or a waiter steps for us: wait unannounced (the
                // child's rings skip us); `stop`, or the last waiter leaving
                // with work left (module doc, "The hand-over"), ends it.
                let (state, timeout) = if outstanding {
                    (DriverSleep::BesideWaiter, self.options.liveness_poll)
                } else {
                    (DriverSleep::Idle, self.options.idle_poll)
                };
                self.set_driver_state(state);
                let before = self.region.parent_bell().rings();
                let slept = self
                    .parent_bell()
                    .wait_unannounced(|| stopping() || (self.waiters() == 0 && self.outstanding()), timeout);
                if slept && self.region.parent_bell().rings() != before {
                    // Relaxed: a diagnostic counter.
                    self.driver_wakes.fetch_add(1, Ordering::Relaxed);
                }
            }
            self.set_driver_state(DriverSleep::Awake);
        }
    }

    /// The driver, awake with no caller inside `wait_until` although one
    /// entered since it last looked (`waits` moved): a caller that waits
    /// for its handles one after the other is back within a microsecond,
    /// and a driver that took the port over meanwhile would keep it (module
    /// doc, "A pipeline stays with its caller"). Watch `waiters` for the
    /// spin budget, without stepping (none beside a long task on a small
    /// machine; never under the models, where `waits` stays 0).
    fn let_waiter_return(&self, seen: &mut u32, stopping: impl Fn() -> bool) {
        if spin_budget() == 0 {
            return;
        }
        // Relaxed: a hint; what the driver then does is re-checked under
        // a doorbell handshake.
        let waits = self.waits.load(Ordering::Relaxed);
        if waits == *seen {
            return;
        }
        *seen = waits;
        if self.waiters() > 0 {
            return;
        }
        let budget = spin_budget_beside(|| task_holds_lane(self.region.word().load()));
        if budget > 0 {
            spin_until_within(budget, || stopping() || self.waiters() > 0);
        }
    }

    fn set_driver_state(&self, state: DriverSleep) {
        // Relaxed: ordered by the SeqCst fence of the sleep that follows
        // (F1, or the one in `wait_unannounced`), which pairs with F1 of
        // the hand-over before its load of the state.
        self.driver_state.store(state as u32, Ordering::Relaxed);
    }

    /// Ask the driver to return once nothing is outstanding, and wake it.
    pub fn stop(&self) {
        // Release: pairs with the driver's Acquire loads.
        self.stop.store(true, Ordering::Release);
        // Wake the driver wherever it sleeps, announced or not.
        self.wake_driver();
    }

    /// Refuse new submissions and raise the region's sticky shutdown flag;
    /// wake the child so it sees it.
    pub fn shutdown(&self) {
        self.port().shutdown();
        self.child_bell().ring();
    }

    /// Fail everything outstanding (and everything later) with `err`:
    /// poison, kill and reap the child. Wakes every sleeper of the parent
    /// side so waiting callers see their handles resolved.
    pub fn fail(&self, err: EndpointError) {
        self.port().fail(err);
        self.parent_bell().ring();
    }
}

/// A caller inside [`Link::wait_until`]: counted while it waits (entering
/// withdraws the hand-over's proxy); the last one out hands the port back
/// to the driver when work is still outstanding (module doc, "The
/// hand-over").
struct Waiting<'a, R, W, F>
where
    R: Deref<Target = Region> + Clone,
    W: ChildWatch,
    F: Futex + ?Sized,
{
    link: &'a Link<R, W, F>,
}

impl<'a, R, W, F> Waiting<'a, R, W, F>
where
    R: Deref<Target = Region> + Clone,
    W: ChildWatch,
    F: Futex + ?Sized,
{
    fn enter(link: &'a Link<R, W, F>) -> Self {
        // Relaxed: the driver reads it only to choose how to sleep and
        // re-checks under that sleep's handshake; a stale read costs it one
        // wake-up.
        link.waiters.fetch_add(1, Ordering::Relaxed);
        if spin_budget() > 0 {
            // Relaxed: a hint for the driver's spin (`let_waiter_return`).
            link.waits.fetch_add(1, Ordering::Relaxed);
        }
        // We step from here: the child's rings need not wake the driver.
        link.withdraw_proxy();
        Waiting { link }
    }
}

impl<R, W, F> Drop for Waiting<'_, R, W, F>
where
    R: Deref<Target = Region> + Clone,
    W: ChildWatch,
    F: Futex + ?Sized,
{
    fn drop(&mut self) {
        // Relaxed: ordered before the driver's re-check by the hand-over's
        // F1 (which pairs with the fence in the driver's `wait_unannounced`).
        let was = self.link.waiters.fetch_sub(1, Ordering::Relaxed);
        if was == 1 {
            // Outstanding is asked under the port's lock, after the
            // decrement: a driver that re-checks after it sees `waiters`
            // 0; one that re-checked before is rung through the proxy.
            // MUTANT driver_not_rung: the last waiter leaves without
            // handing the port back; the driver waits unannounced with work
            // outstanding and the child's rings skip it (a deadlock in the
            // models, where sleeps are untimed; a delay of up to the
            // driver's sleep bound in production).
            #[cfg(not(chiplane_mutant = "driver_not_rung"))]
            if self.link.outstanding() {
                self.link.hand_over();
            }
        }
    }
}
