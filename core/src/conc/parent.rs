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
//!   spinning for the process's spin budget; then it sleeps on the parent's
//!   doorbell, which the child rings when it publishes, and steps again when
//!   woken. One wake-up per hop, no thread in between;
//! - **the driver thread** ([`Link::drive`]), for what nobody waits on
//!   (async handles, settlements) and for liveness: it sleeps on the same
//!   doorbell and steps the port when rung.
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
use crate::sync::{Arc, AtomicBool, Mutex, MutexGuard, Ordering};

use super::bell::{Doorbell, Futex};
use super::port::{ChildWatch, PendingControl, PendingTask, Port};
use super::region::Region;
use super::wait::Backoff;

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
    options: LinkOptions,
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

    /// One step of the port under its lock; rings the child when the step
    /// published something (or freed ring room). True when it did anything.
    /// Handles it resolved for *other* waiters (more than `mine`) wake the
    /// parent side's sleepers: a waiter sleeping on the parent's bell learns
    /// of a handle another thread resolved for it.
    fn step_as(&self, mine: impl FnOnce() -> bool) -> bool {
        let mut port = self.port();
        let before = port.stats().resolved;
        let did = port.progress();
        let resolved = port.stats().resolved - before;
        drop(port);
        if did {
            self.child_bell().ring();
            if resolved > u64::from(mine()) {
                self.parent_bell().ring();
            }
        }
        did
    }

    /// One step by a thread that waits for nothing in particular (the
    /// driver): see `step_as`.
    pub fn step(&self) -> bool {
        self.step_as(|| false)
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
        let mut port = self.port();
        let h = port.submit_task(slot, generation, config, args)?;
        let did = port.progress();
        drop(port);
        if did {
            self.child_bell().ring();
        }
        Ok(h)
    }

    /// Queue a control and publish it if the mailbox allows.
    pub fn submit_control(
        &self,
        slot: SlotIndex,
        generation: Generation,
        op: ControlOp,
    ) -> Result<PendingControl, ControlError> {
        let mut port = self.port();
        let h = port.submit_control(slot, generation, op)?;
        let did = port.progress();
        drop(port);
        if did {
            self.child_bell().ring();
        }
        Ok(h)
    }

    /// Block until `ready()` holds, stepping the port meanwhile (module doc:
    /// the caller's fast path, then sleeps on the parent's bell). `ready`
    /// must turn true through this port (a handle of it resolving).
    pub fn wait_until(&self, mut ready: impl FnMut() -> bool) {
        let mut backoff = Backoff::default();
        loop {
            if ready() {
                return;
            }
            if self.step_as(&mut ready) {
                backoff.reset();
                continue;
            }
            if backoff.spin() {
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
        loop {
            if self.step() {
                continue;
            }
            let outstanding = self.outstanding();
            // Acquire: pairs with `stop`'s Release store.
            if self.stop.load(Ordering::Acquire) && !outstanding {
                return;
            }
            let timeout = if outstanding { self.options.liveness_poll } else { self.options.idle_poll };
            // Acquire: as above (a stop rung meanwhile ends the sleep).
            self.parent_bell()
                .sleep(|| self.stop.load(Ordering::Acquire) || self.step() || self.check_liveness(), timeout);
        }
    }

    /// Ask the driver to return once nothing is outstanding, and wake it.
    pub fn stop(&self) {
        // Release: pairs with the driver's Acquire loads.
        self.stop.store(true, Ordering::Release);
        // Wake the driver even if it sleeps without a timeout (a ring finds
        // it through the sleepers count).
        self.parent_bell().ring();
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
