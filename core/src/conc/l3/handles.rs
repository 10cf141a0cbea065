//! The L3 worker's pending results and the orchestrator. Every `wait`
//! steps the chip's link itself ([`Link::wait_until`]): a waiting caller
//! completes its own handle.

#![allow(clippy::disallowed_types)]

use crate::chip::{RunConfig, RunOutput, TaskArgs};
use crate::conc::cell::Completion;
use crate::conc::port::{PendingControl, PendingTask, TaskResult};
use crate::error::{EndpointError, RegisterError, RunError, UnregisterError};
use crate::frame::{ControlReply, Settlement};
use crate::ids::{CallableHandle, DispatchId, WorkerId};
use crate::sync::{Arc, Mutex};

use super::queue::Job;
use super::{LinkOf, Shared, Spawner};

/// A register at L3: accepted (CONTROL_DONE) then settled (the prepare
/// finished, through the completion ring).
pub struct L3PendingRegister<S: Spawner> {
    link: Arc<LinkOf<S>>,
    worker: WorkerId,
    control: PendingControl,
    accepted: Option<Result<CallableHandle, RegisterError>>,
}

impl<S: Spawner> core::fmt::Debug for L3PendingRegister<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("L3PendingRegister").field("dispatch", &self.control.dispatch()).finish_non_exhaustive()
    }
}

fn register_error(e: crate::error::ControlError) -> RegisterError {
    match e {
        crate::error::ControlError::Register(e) => e,
        crate::error::ControlError::TooLarge(t) => RegisterError::TooLarge(t),
        crate::error::ControlError::Endpoint(e) => RegisterError::Endpoint(e),
        crate::error::ControlError::Unregister(_) => {
            RegisterError::Endpoint(EndpointError::Poisoned(crate::error::PoisonReason::IdentityMismatch))
        }
    }
}

impl<S: Spawner> L3PendingRegister<S> {
    pub(super) fn new(link: Arc<LinkOf<S>>, worker: WorkerId, control: PendingControl) -> Self {
        L3PendingRegister { link, worker, control, accepted: None }
    }

    /// The control's dispatch id.
    pub fn dispatch(&self) -> DispatchId {
        self.control.dispatch()
    }

    /// True once the settlement arrived (or the control was refused).
    /// Steps the chip's port once first (a poller makes progress itself).
    pub fn is_ready(&self) -> bool {
        self.link.ready_after_step(|| self.control.is_settled())
    }

    /// Block until the child accepted the control; the handle of the slot
    /// (usable at once: a run on a PREPARING slot waits for the prepare).
    pub fn wait_accepted(&mut self) -> Result<CallableHandle, RegisterError> {
        if let Some(r) = &self.accepted {
            return r.clone();
        }
        if !self.control.is_accepted() {
            self.link.wait_until(|| self.control.is_accepted());
        }
        let r = match self.control.try_take_reply().expect("the reply is taken only here") {
            Ok(ControlReply::Registered { slot, generation, .. }) => {
                Ok(CallableHandle { worker: self.worker, index: slot, generation })
            }
            Ok(other) => unreachable!("a register control replied {other:?}"),
            Err(e) => Err(register_error(e)),
        };
        self.accepted = Some(r.clone());
        r
    }

    /// Block until the control settled (a refusal settles at once), in
    /// one wait for the reply and the settlement together: two waits in a
    /// row would hand the port back to the driver between them (the last
    /// waiter out rings it while the settlement is owed), a wake-up of the
    /// driver for nothing.
    pub(super) fn settle(&self) {
        if !self.control.is_settled() {
            self.link.wait_until(|| self.control.is_settled());
        }
    }

    /// Block until the prepare settled: `Ok(handle)` when PREPARED.
    pub fn wait(mut self) -> Result<CallableHandle, RegisterError> {
        self.settle();
        let handle = self.wait_accepted()?;
        match self.control.try_take_settled().expect("the settlement is taken only here") {
            Ok(None) | Ok(Some(Settlement::Prepared(Ok(())))) => Ok(handle),
            Ok(Some(Settlement::Prepared(Err(e)))) => Err(e),
            Ok(Some(Settlement::Freed)) => unreachable!("a register settled as freed"),
            Err(e) => Err(RegisterError::Endpoint(e)),
        }
    }
}

/// An unregister at L3: accepted, and for the final one, settled when the
/// artifact was freed.
pub struct L3PendingUnregister<S: Spawner> {
    link: Arc<LinkOf<S>>,
    control: PendingControl,
}

impl<S: Spawner> core::fmt::Debug for L3PendingUnregister<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("L3PendingUnregister").field("dispatch", &self.control.dispatch()).finish_non_exhaustive()
    }
}

impl<S: Spawner> L3PendingUnregister<S> {
    pub(super) fn new(link: Arc<LinkOf<S>>, control: PendingControl) -> Self {
        L3PendingUnregister { link, control }
    }

    /// True once finished (or refused). Steps the chip's port once first.
    pub fn is_ready(&self) -> bool {
        self.link.ready_after_step(|| self.control.is_settled())
    }

    /// Block until accepted, and for a final unregister until freed.
    pub fn wait(self) -> Result<(), UnregisterError> {
        self.link.wait_until(|| self.control.is_settled());
        match self.control.try_take_reply().expect("the reply is taken only here") {
            Ok(_) => {}
            Err(crate::error::ControlError::Unregister(e)) => return Err(e),
            Err(crate::error::ControlError::Endpoint(e)) => return Err(UnregisterError::Endpoint(e)),
            Err(other) => unreachable!("an unregister refused with {other:?}"),
        }
        match self.control.try_take_settled().expect("the settlement is taken only here") {
            Ok(_) => Ok(()),
            Err(e) => Err(UnregisterError::Endpoint(e)),
        }
    }
}

/// A task an orchestration function submitted: its index in the run's
/// [`RunOutcome::tasks`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TaskRef {
    /// Index in [`RunOutcome::tasks`].
    pub index: usize,
    /// The chip it went to.
    pub chip: usize,
    /// Its dispatch on that chip's mailbox.
    pub dispatch: DispatchId,
}

type Submitted<S> = Vec<(Arc<LinkOf<S>>, PendingTask)>;

/// What an orchestration function sees: submits chip tasks.
pub struct Orchestrator<S: Spawner> {
    shared: Arc<Shared<S>>,
    tasks: Submitted<S>,
}

impl<S: Spawner> core::fmt::Debug for Orchestrator<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Orchestrator").field("tasks", &self.tasks.len()).finish()
    }
}

impl<S: Spawner> Orchestrator<S> {
    pub(super) fn new(shared: Arc<Shared<S>>) -> Self {
        Orchestrator { shared, tasks: Vec::new() }
    }

    /// Number of chips of the worker.
    pub fn chips(&self) -> usize {
        self.shared.chips.len()
    }

    /// Submit a run of `handle` with `args`, on the chip whose current
    /// child issued the handle; published before this returns when the
    /// mailbox allows. Errors at the call: a handle of another worker, chip
    /// incarnation (`Handle(Foreign)`), `TooLarge` (named limit), an
    /// endpoint error.
    pub fn submit(&mut self, handle: CallableHandle, args: TaskArgs, config: RunConfig) -> Result<TaskRef, RunError> {
        let (chip, link) = self.shared.link_of(handle).map_err(RunError::Handle)?;
        let t = link.submit_task(handle.index, handle.generation, config, args)?;
        let dispatch = t.dispatch();
        self.tasks.push((link, t));
        Ok(TaskRef { index: self.tasks.len() - 1, chip, dispatch })
    }
}

struct JobResult<S: Spawner, R> {
    value: Result<R, String>,
    tasks: Submitted<S>,
}

/// What a run produced: the orchestration function's value and the result
/// of every task it submitted, in submission order.
#[derive(Debug)]
pub struct RunOutcome<R> {
    /// What the function returned.
    pub value: R,
    /// Every task's result, in submission order.
    pub tasks: Vec<TaskResult>,
}

impl<R> RunOutcome<R> {
    /// The result of task `t`.
    pub fn task(&self, t: &TaskRef) -> &TaskResult {
        &self.tasks[t.index]
    }
}

/// A queued run.
pub struct L3PendingRun<S: Spawner, R> {
    // The Mutex makes the cell `Sync` for any `R: Send`.
    cell: Arc<Completion<Mutex<JobResult<S, R>>>>,
}

impl<S: Spawner, R> core::fmt::Debug for L3PendingRun<S, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("L3PendingRun").field("orchestrated", &self.cell.is_ready()).finish()
    }
}

impl<S: Spawner, R: Send + 'static> L3PendingRun<S, R> {
    /// The run's handle and its queue job.
    pub(super) fn job<F>(orch_fn: F) -> (Self, Job<Orchestrator<S>>)
    where
        F: FnOnce(&mut Orchestrator<S>) -> R + Send + 'static,
    {
        let cell: Arc<Completion<Mutex<JobResult<S, R>>>> = Arc::new(Completion::new());
        let done = cell.clone();
        let job: Job<Orchestrator<S>> = Box::new(move |orch: &mut Orchestrator<S>| {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| orch_fn(orch)));
            let tasks = core::mem::take(&mut orch.tasks);
            let value = r.map_err(|p| {
                p.downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "orchestration function panicked".into())
            });
            assert!(done.complete(Mutex::new(JobResult { value, tasks })).is_ok(), "a run resolves once");
        });
        (L3PendingRun { cell }, job)
    }
}

impl<S: Spawner, R> L3PendingRun<S, R> {
    /// True once the function returned and every task it submitted
    /// resolved. Steps the port of each task not yet resolved once first.
    pub fn is_ready(&self) -> bool {
        if !self.cell.is_ready() {
            return false;
        }
        // Peek without taking: the tasks' cells say whether they resolved.
        self.cell
            .peek(|r| {
                r.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .tasks
                    .iter()
                    .all(|(link, t)| link.ready_after_step(|| t.is_ready()))
            })
            .unwrap_or(true)
    }

    /// Block until the orchestration function returned and every task it
    /// submitted resolved. A panic of the function is resumed here.
    pub fn wait(self) -> RunOutcome<R> {
        let JobResult { value, tasks } = self
            .cell
            .wait()
            .expect("a run's result is taken only here")
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        let tasks: Vec<TaskResult> = tasks
            .into_iter()
            .map(|(link, t)| {
                link.wait_until(|| t.is_ready());
                t.try_take().expect("a task's result is taken only here")
            })
            .collect();
        match value {
            Ok(value) => RunOutcome { value, tasks },
            Err(msg) => panic!("orchestration function panicked: {msg}"),
        }
    }
}

/// One chip task run through the run queue (`L3Worker::call_async`).
pub struct L3PendingCall<S: Spawner> {
    call: Call<S>,
}

enum Call<S: Spawner> {
    /// Submitted at the call (the queue was idle): the task on its chip's
    /// link, or why the submission was refused.
    Submitted(Result<(Arc<LinkOf<S>>, PendingTask), RunError>),
    /// Queued behind earlier runs: an orchestration of one task.
    Queued(L3PendingRun<S, Result<TaskRef, RunError>>),
}

impl<S: Spawner> core::fmt::Debug for L3PendingCall<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match &self.call {
            Call::Submitted(Ok((_, t))) => f.debug_struct("L3PendingCall").field("dispatch", &t.dispatch()).finish(),
            Call::Submitted(Err(e)) => f.debug_struct("L3PendingCall").field("refused", e).finish(),
            Call::Queued(run) => run.fmt(f),
        }
    }
}

impl<S: Spawner> L3PendingCall<S> {
    pub(super) fn submitted(submitted: Result<(Arc<LinkOf<S>>, PendingTask), RunError>) -> Self {
        L3PendingCall { call: Call::Submitted(submitted) }
    }

    pub(super) fn queued(run: L3PendingRun<S, Result<TaskRef, RunError>>) -> Self {
        L3PendingCall { call: Call::Queued(run) }
    }

    /// True once the task resolved (or was refused).
    pub fn is_ready(&self) -> bool {
        match &self.call {
            Call::Submitted(Ok((link, t))) => link.ready_after_step(|| t.is_ready()),
            Call::Submitted(Err(_)) => true,
            Call::Queued(run) => run.is_ready(),
        }
    }

    /// Block until the task resolved.
    pub fn wait(self) -> Result<RunOutput, RunError> {
        match self.call {
            Call::Submitted(Ok((link, t))) => {
                link.wait_until(|| t.is_ready());
                t.try_take().expect("a task's result is taken only here")
            }
            Call::Submitted(Err(e)) => Err(e),
            Call::Queued(run) => {
                let out = run.wait();
                let t = out.value?;
                out.tasks.into_iter().nth(t.index).expect("the submitted task has a result")
            }
        }
    }
}
