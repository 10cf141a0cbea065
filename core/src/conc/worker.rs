//! The L2 worker: in-process. Callers, the run lane thread and the register
//! lane thread share one [`ChipNode`] (the slot registry and the lanes).
//!
//! Every sync call is exactly its async form followed by `wait()`
//! (docs/protocol.md section 5): a sync `run` goes through the one run queue, so it
//! never overtakes an earlier `run_async`.
//!
//! `register_async` / `unregister_async` take chip callables only; an
//! orchestration target is `RegisterError::WrongTarget` at the call.
//!
//! One difference of the sync `register`: it never hands the caller a
//! handle when the prepare failed, so it ends that registration itself
//! before returning `PrepareFailed` (an async caller holds
//! `PendingRegister::handle()` and unregisters it when it chooses).
//!
//! Mutant `sync_bypasses_queue` (docs/protocol.md section 8): the sync `run` calls
//! the chip directly on the caller's thread.

use crate::chip::{CallableSpec, Chip, RunConfig, RunOutput, TaskArgs};
use crate::error::{RegisterError, RunError, UnregisterError};
use crate::ids::CallableHandle;

use super::node::{ChipNode, NodeConfig, PendingRegister, PendingRun, PendingUnregister};

/// The L2 worker. See the module doc.
#[derive(Debug)]
pub struct L2Worker<C: Chip> {
    node: ChipNode<C>,
}

impl<C: Chip> L2Worker<C> {
    /// Start a worker on `chip` (spawns its two lane threads).
    pub fn new(chip: C, config: NodeConfig) -> Self {
        L2Worker { node: ChipNode::new(chip, config) }
    }

    /// The node underneath (inspection: slots, counters).
    pub fn node(&self) -> &ChipNode<C> {
        &self.node
    }

    /// Register (and prepare, on the register lane) a chip callable; returns
    /// at once. Errors at the call: `WrongTarget`, `TableFull`,
    /// `Endpoint(ShutDown)`. The pending register holds the handle at once
    /// (runs may be queued on it) and resolves on the prepare's settlement:
    /// `Ok(handle)` when PREPARED, else `PrepareFailed` or `Cancelled`.
    pub fn register_async(&self, spec: CallableSpec) -> Result<PendingRegister, RegisterError> {
        self.node.register(spec)
    }

    /// `register_async(spec)?.wait()`; on `PrepareFailed` the registration
    /// is ended before returning (see the module doc).
    pub fn register(&self, spec: CallableSpec) -> Result<CallableHandle, RegisterError> {
        let pending = self.register_async(spec)?;
        let handle = pending.handle();
        let result = pending.wait();
        if let Err(RegisterError::PrepareFailed(_)) = &result {
            // Our registration is still held (the slot is FAILED): end it.
            // An error here means a concurrent teardown ended it already.
            if let Ok(h) = self.node.unregister(handle) {
                let _ = h.wait();
            }
        }
        result
    }

    /// Queue a run of `handle` on the run lane (FIFO with every other run
    /// of this worker; the slot is pinned first). Errors at the call: a
    /// foreign or stale handle, a slot that is not runnable, a failed
    /// prepare, `Endpoint(ShutDown)`. A run of a callable still preparing
    /// waits for the settlement.
    pub fn run_async(&self, handle: CallableHandle, args: TaskArgs, config: RunConfig) -> Result<PendingRun, RunError> {
        self.node.run(handle, args, config)
    }

    /// `run_async(..)?.wait()`.
    pub fn run(&self, handle: CallableHandle, args: TaskArgs, config: RunConfig) -> Result<RunOutput, RunError> {
        #[cfg(chiplane_mutant = "sync_bypasses_queue")]
        {
            // MUTANT: the sync run skips the run queue.
            self.node.run_direct(handle, args, config)
        }
        #[cfg(not(chiplane_mutant = "sync_bypasses_queue"))]
        {
            self.run_async(handle, args, config)?.wait()
        }
    }

    /// End one registration of `handle`; returns at once. The pending
    /// unregister resolves when accepted, the final one when its slot was
    /// freed (after the last queued run of it retired). Errors at the call:
    /// a foreign or stale handle, `NotRegistered` (its registrations already
    /// ended), `Endpoint(ShutDown)`.
    pub fn unregister_async(&self, handle: CallableHandle) -> Result<PendingUnregister, UnregisterError> {
        self.node.unregister(handle)
    }

    /// `unregister_async(handle)?.wait()`.
    pub fn unregister(&self, handle: CallableHandle) -> Result<(), UnregisterError> {
        self.unregister_async(handle)?.wait()
    }

    /// Stop the worker: joins the lanes, resolves everything outstanding.
    pub fn shutdown(mut self) {
        self.node.shutdown();
    }
}

impl<R> super::api::Pending for super::node::Deferred<R> {
    type Output = R;
    fn is_ready(&self) -> bool {
        super::node::Deferred::is_ready(self)
    }
    fn wait(self) -> R {
        super::node::Deferred::wait(self)
    }
}

impl super::api::Pending for PendingRegister {
    type Output = Result<CallableHandle, RegisterError>;
    fn is_ready(&self) -> bool {
        PendingRegister::is_ready(self)
    }
    fn wait(self) -> Self::Output {
        PendingRegister::wait(self)
    }
}

impl<C: Chip> super::api::Worker for L2Worker<C> {
    type Register = PendingRegister;
    type Unregister = PendingUnregister;
    type Run = PendingRun;

    fn register_async(&self, spec: CallableSpec) -> Result<PendingRegister, RegisterError> {
        L2Worker::register_async(self, spec)
    }
    fn register(&self, spec: CallableSpec) -> Result<CallableHandle, RegisterError> {
        L2Worker::register(self, spec)
    }
    fn unregister_async(&self, handle: CallableHandle) -> Result<PendingUnregister, UnregisterError> {
        L2Worker::unregister_async(self, handle)
    }
    fn run_async(&self, handle: CallableHandle, args: TaskArgs, config: RunConfig) -> Result<PendingRun, RunError> {
        L2Worker::run_async(self, handle, args, config)
    }
    fn run(&self, handle: CallableHandle, args: TaskArgs, config: RunConfig) -> Result<RunOutput, RunError> {
        L2Worker::run(self, handle, args, config)
    }
}
