//! Settlement routing of a [`ChipSide`]: who waits for a result (an L2
//! caller's token, or at L3 the settlement or task result owed to the
//! child endpoint) and the output each result becomes.

use crate::chip::RunOutput;
use crate::error::{RegisterError, RunError};
use crate::frame::{FrameId, Settlement};
use crate::ids::{CallableHandle, DispatchId};

use super::{ChildEvent, ChipOutput, ChipSide, Resolution};

/// Who waits for a result.
#[derive(Debug, Clone, Hash)]
pub(super) enum Waiter<T> {
    Caller(T),
    /// L3: the settlement of a fresh register, under this identity.
    Settle(FrameId),
    /// L3: the settlement of a final unregister.
    Free(FrameId),
    /// L3: the result of a task.
    Task(DispatchId),
}

impl<T> Waiter<T> {
    fn kind(&self) -> &'static str {
        match self {
            Waiter::Caller(_) => "caller",
            Waiter::Settle(_) => "settlement",
            Waiter::Free(_) => "free",
            Waiter::Task(_) => "task",
        }
    }
}

impl<A: Clone, T> ChipSide<A, T> {
    pub(super) fn resolve_register(&mut self, w: Waiter<T>, handle: CallableHandle, result: Result<(), RegisterError>) {
        let out = match w {
            Waiter::Caller(t) => {
                ChipOutput::Resolve { waiter: t, resolution: Resolution::Registered(result.map(|()| handle)) }
            }
            Waiter::Settle(id) => {
                ChipOutput::Event(ChildEvent::Settled { id, settlement: Settlement::Prepared(result) })
            }
            other => unreachable!("a {} waiter waits for a register", other.kind()),
        };
        self.outputs.push_back(out);
    }

    pub(super) fn resolve_freed(&mut self, handle: CallableHandle) {
        for w in self.free_waiters.remove(&handle).unwrap_or_default() {
            let out = match w {
                Waiter::Caller(t) => ChipOutput::Resolve { waiter: t, resolution: Resolution::Unregistered(Ok(())) },
                Waiter::Free(id) => ChipOutput::Event(ChildEvent::Settled { id, settlement: Settlement::Freed }),
                other => unreachable!("a {} waiter waits for a free", other.kind()),
            };
            self.outputs.push_back(out);
        }
    }

    pub(super) fn resolve_run(&mut self, w: Waiter<T>, result: Result<RunOutput, RunError>) {
        let out = match w {
            Waiter::Caller(t) => ChipOutput::Resolve { waiter: t, resolution: Resolution::Ran(result) },
            Waiter::Task(dispatch) => {
                // The child must always be able to write its result frame.
                let result = match result {
                    Ok(out) => crate::frame::check_output(&out).map(|()| out).map_err(RunError::TooLarge),
                    Err(e) => Err(e),
                };
                ChipOutput::Event(ChildEvent::RunFinished { dispatch, result })
            }
            other => unreachable!("a {} waiter waits for a run", other.kind()),
        };
        self.outputs.push_back(out);
    }
}
