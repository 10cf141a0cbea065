//! One worker API for both levels (docs/protocol.md section 5): the same method
//! set on the L2 worker ([`super::worker::L2Worker`], in-process) and the L3
//! worker ([`super::l3::L3Worker`], chip children), so code written against
//! one runs against the other. At L3 the chip comes from the handle.
//!
//! Every sync method is its async form followed by [`Pending::wait`]; a
//! sync `run` therefore goes through the same run queue as `run_async` and
//! never overtakes it. Dropping a pending result neither cancels the work
//! nor leaks it.
//!
//! The L3 worker also keeps its orchestration entry points, inherent
//! `run(orch_fn)` / `run_async(orch_fn)`; in generic code (`W: Worker`) the
//! trait's `run(handle, args, config)` is the one in scope (on a concrete
//! `L3Worker`, call it as `Worker::run(&w, h, args, config)`).

use crate::chip::{CallableSpec, RunConfig, RunOutput, TaskArgs};
use crate::error::{RegisterError, RunError, UnregisterError};
use crate::ids::CallableHandle;

/// A result that arrives later, exactly once.
pub trait Pending {
    /// What it resolves to.
    type Output;
    /// True once the result is there.
    fn is_ready(&self) -> bool;
    /// Block until the result is there and return it.
    fn wait(self) -> Self::Output;
}

/// The worker API (module doc).
pub trait Worker {
    /// A register's settlement: `Ok(handle)` once PREPARED.
    type Register: Pending<Output = Result<CallableHandle, RegisterError>>;
    /// An unregister's end (for the final one: its slot freed).
    type Unregister: Pending<Output = Result<(), UnregisterError>>;
    /// A run's result.
    type Run: Pending<Output = Result<RunOutput, RunError>>;

    /// Register (and prepare) a chip callable; resolves on the prepare's
    /// settlement. Anything but a chip callable is `WrongTarget` at the call.
    fn register_async(&self, spec: CallableSpec) -> Result<Self::Register, RegisterError>;
    /// `register_async(spec)?.wait()`; a registration whose prepare failed
    /// is ended before the error returns.
    fn register(&self, spec: CallableSpec) -> Result<CallableHandle, RegisterError>;
    /// End one registration (the final one tears the slot down once no run
    /// holds it).
    fn unregister_async(&self, handle: CallableHandle) -> Result<Self::Unregister, UnregisterError>;
    /// `unregister_async(handle)?.wait()`.
    fn unregister(&self, handle: CallableHandle) -> Result<(), UnregisterError> {
        self.unregister_async(handle)?.wait()
    }
    /// Queue a run of `handle` (FIFO with every other run of the worker).
    fn run_async(&self, handle: CallableHandle, args: TaskArgs, config: RunConfig) -> Result<Self::Run, RunError>;
    /// `run_async(..)?.wait()`.
    fn run(&self, handle: CallableHandle, args: TaskArgs, config: RunConfig) -> Result<RunOutput, RunError> {
        self.run_async(handle, args, config)?.wait()
    }
}
