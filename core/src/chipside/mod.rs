//! The chip side: one chip's slot table, its run lane and register lane, the
//! mapping from L3 tasks and controls to slot inputs, and the routing of
//! every result to whoever waits for it. Pure (no threads, no clock, no
//! shared memory); every driver of a chip side uses this one machine:
//! [`crate::conc::node::ChipNode`] (a lock and two lane threads around it,
//! for the L2 worker and the L3 chip child), the simulator, the exhaustive
//! checker and the fuzz harness.
//!
//! # Who calls what
//! The *owner* feeds inputs with [`ChipSide::handle`] and then drains
//! [`ChipSide::poll`] until `None`, doing what each output says:
//! - callers' requests: `Register`, `Unregister`, `Run` (L2: each names a
//!   waiter token `T` that gets exactly one [`Resolution`]), `Task` and
//!   `Control` (L3: a frame the child endpoint copied out; results travel as
//!   [`ChildEvent`]s, the settlements the parent is owed);
//! - the lanes' reports: `PrepareFinished`, `RunFinished`, `ReleaseFinished`;
//! - `Shutdown`.
//!
//! Outputs, each owed exactly once, in the order it became owed:
//! - `StartPrepare` / `StartRelease`: the register lane's next job (at most
//!   one started and not yet reported); `Cancel`: ask the running prepare to
//!   stop at its next safe point;
//! - `StartRun`: the run lane's next job (at most one);
//! - `Resolve`: an L2 waiter's result; `Event`: an L3 result for the child
//!   endpoint (`ChildInput::RunFinished` / `ChildInput::Settled`).
//!
//! Call order of one prepare: `handle(Register)` -> `poll` yields
//! `StartPrepare` -> the owner prepares on its register lane (no lock held,
//! a cancel flag the owner sets on `Cancel`) -> `handle(PrepareFinished)` ->
//! `poll` yields the register's `Resolve` (or `Event(Settled)`). A run:
//! `handle(Run)` pins and queues -> `StartRun` once it is at the head of the
//! run lane and its slot is PREPARED -> `handle(RunFinished)` -> `Resolve`.
//!
//! # Rules it keeps (docs/protocol.md sections 3 and 5)
//! - pin before enqueue; one unpin per pin, when the run retires, whatever
//!   the outcome, before its result goes out;
//! - the run lane is FIFO: a run whose slot is PREPARING waits at the head
//!   (and everything behind it waits too); a run whose slot failed or was
//!   cancelled retires with that error without reaching the chip;
//! - a prepare still queued when its slot is cancelled never reaches the
//!   chip (it is reported cancelled here); a running one gets `Cancel`;
//! - every artifact is released exactly once, on the register lane; the
//!   final unregister resolves (or the `Freed` settlement goes out) only
//!   after the release of its artifact was reported;
//! - a prepare completion that matches no running prepare (a duplicate, or
//!   one of an older generation) is handed to the slot table, which drops
//!   and counts it and releases its artifact;
//! - L3: the settlement of a fresh register (`Prepared`) and of a final
//!   unregister (`Freed`) go out as `Event(Settled)` with the control's
//!   `{dispatch, slot, generation}`; a run's output that does not fit the
//!   task result frame becomes `RunError::TooLarge` (the child must always
//!   be able to write its result).
//!
//! # Shutdown
//! New requests are refused (`EndpointError::ShutDown`). Runs not yet on
//! the chip fail with `ShutDown` (unpinned); a run on the chip finishes.
//! Once the run lane is empty, every register waiter gets `ShutDown` and
//! every registration still held is ended (cancelling or freeing its slot);
//! the register lane finishes its prepare and every release. Then
//! [`ChipSide::quiescent`] holds: no slot is live, nothing is owed.
//!
//! # Audit
//! [`ChipSide::set_audit`] makes the machine record every slot-table input
//! with its reply, every slot-table output, and every run start, for a
//! checker that holds its own reference model (the simulator).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::chip::{CallableSpec, ChipError, RunConfig, RunOutput, TargetKind, TaskArgs};
use crate::error::{ControlError, EndpointError, RegisterError, RunError, UnregisterError};
use crate::frame::{ControlFrame, ControlOp, ControlReply, FrameId, Settlement, TaskFrame};
use crate::ids::{CallableHandle, DispatchId, WorkerId};
use crate::lane::{JobId, Lane, LaneInput, RegisterJob, RunJob};
use crate::slot::{SlotError, SlotInput, SlotLimits, SlotReply, SlotTable};

mod audit;
mod machine;
mod routing;

pub use audit::Audit;
use routing::Waiter;

/// What an L3 chip side tells the child endpoint (fed as
/// `ChildInput::RunFinished` / `ChildInput::Settled`).
#[derive(Clone, Debug, PartialEq, Hash)]
pub enum ChildEvent {
    /// The run lane retired the task `dispatch` (its slot unpinned).
    RunFinished {
        /// The task's dispatch.
        dispatch: DispatchId,
        /// Its result (an output too large for the result frame is an error).
        result: Result<RunOutput, RunError>,
    },
    /// What control `id.dispatch` started settled (`id.slot`/`id.generation`
    /// name the slot): a prepare finished or failed, or an artifact was freed.
    Settled {
        /// The control's identity (for a register: the slot it got).
        id: FrameId,
        /// What settled.
        settlement: Settlement,
    },
}

/// An L2 waiter's result.
#[derive(Clone, Debug, PartialEq, Hash)]
pub enum Resolution {
    /// A register settled: `Ok(handle)` once PREPARED.
    Registered(Result<CallableHandle, RegisterError>),
    /// An unregister finished (a final one: its slot was freed).
    Unregistered(Result<(), UnregisterError>),
    /// A run retired.
    Ran(Result<RunOutput, RunError>),
}

/// Inputs of the chip side.
#[derive(Debug)]
pub enum ChipInput<A, T> {
    /// L2: register a chip callable; `waiter` resolves on its settlement.
    Register {
        /// What to prepare.
        spec: CallableSpec,
        /// Resolved with `Resolution::Registered`.
        waiter: T,
    },
    /// L2: end one registration; `waiter` resolves when accepted, or for the
    /// final one when the slot was freed.
    Unregister {
        /// The registration's handle.
        handle: CallableHandle,
        /// Resolved with `Resolution::Unregistered`.
        waiter: T,
    },
    /// L2: pin the slot and queue a run.
    Run {
        /// The callable to run.
        handle: CallableHandle,
        /// Its arguments.
        args: TaskArgs,
        /// Its configuration.
        config: RunConfig,
        /// Resolved with `Resolution::Ran`.
        waiter: T,
    },
    /// L3: a task frame the child endpoint copied out (`AcceptTask`).
    Task(TaskFrame),
    /// L3: a control frame the child endpoint copied out (`ApplyControl`).
    Control(ControlFrame),
    /// The register lane finished the prepare it started for `handle`.
    PrepareFinished {
        /// The handle `StartPrepare` named.
        handle: CallableHandle,
        /// The artifact, or the device's error.
        result: Result<A, ChipError>,
    },
    /// The run lane finished run `job`.
    RunFinished {
        /// The job `StartRun` named.
        job: JobId,
        /// The output, or the device's error.
        result: Result<RunOutput, ChipError>,
    },
    /// The register lane finished release `job`.
    ReleaseFinished {
        /// The job `StartRelease` named.
        job: JobId,
    },
    /// Stop (see the module doc).
    Shutdown,
}

/// The immediate reply of [`ChipSide::handle`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ChipReply {
    /// `Register`: the slot's handle; `fresh` = a prepare was queued.
    Registered {
        /// The slot's handle (usable for a run at once).
        handle: CallableHandle,
        /// A new generation began: a prepare is owed.
        fresh: bool,
    },
    /// `Unregister`: `last` = the final one (teardown started).
    Unregistered {
        /// The final unregister.
        last: bool,
    },
    /// `Run` / `Task`: pinned and queued.
    Queued,
    /// `Control`: accepted (the frame's reply).
    Control(ControlReply),
    /// A lane report or `Shutdown` was applied.
    Done,
}

/// Why [`ChipSide::handle`] refused an input.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ChipRefusal {
    /// `Register` refused at the call.
    Register(RegisterError),
    /// `Unregister` refused at the call.
    Unregister(UnregisterError),
    /// `Run` / `Task` refused at the call.
    Run(RunError),
    /// `Control` refused (the child answers the control with this error).
    Control(ControlError),
    /// A lane report named a job that is not running: an owner bug.
    NotRunning(JobId),
}

/// What the owner owes.
#[derive(Debug, Clone, Hash)]
#[must_use]
pub enum ChipOutput<A, T> {
    /// Prepare `spec` for `handle` on the register lane, then report
    /// `PrepareFinished { handle, .. }`.
    StartPrepare {
        /// The slot's handle.
        handle: CallableHandle,
        /// What to prepare.
        spec: CallableSpec,
    },
    /// The running prepare of `handle` should stop at its next safe point.
    Cancel {
        /// The slot's handle.
        handle: CallableHandle,
    },
    /// Run `artifact` on the run lane, then report `RunFinished { job, .. }`.
    StartRun {
        /// The lane job.
        job: JobId,
        /// The slot's handle.
        handle: CallableHandle,
        /// The prepared callable (the slot keeps its own; the owner's copy
        /// must be gone before it reports).
        artifact: A,
        /// The run's arguments.
        args: TaskArgs,
        /// The run's configuration.
        config: RunConfig,
    },
    /// Release `artifact` (exactly once) on the register lane, then report
    /// `ReleaseFinished { job }`.
    StartRelease {
        /// The lane job.
        job: JobId,
        /// The slot it came from.
        handle: CallableHandle,
        /// The artifact.
        artifact: A,
    },
    /// An L2 waiter's result.
    Resolve {
        /// Who waits.
        waiter: T,
        /// The result.
        resolution: Resolution,
    },
    /// An L3 result for the child endpoint.
    Event(ChildEvent),
}

/// A run on the run lane.
#[derive(Debug, Clone, Hash)]
struct Ticket<T> {
    /// Taken when the run starts.
    work: Option<(TaskArgs, RunConfig)>,
    waiter: Waiter<T>,
}

/// The run at the head of the run lane.
#[derive(Debug, Clone, Hash)]
struct Head<T> {
    job: JobId,
    handle: CallableHandle,
    ticket: Ticket<T>,
    /// `StartRun` went out.
    running: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
enum RegCur {
    Prepare(CallableHandle),
    Release(CallableHandle),
}

/// The chip side. See the module doc.
#[derive(Debug, Clone, Hash)]
pub struct ChipSide<A, T> {
    table: SlotTable<A>,
    run_lane: Lane<RunJob<Ticket<T>>>,
    head: Option<Head<T>>,
    /// The head may have become runnable (or must be failed).
    recheck: bool,
    reg_lane: Lane<RegisterJob<A>>,
    reg_cur: Option<(JobId, RegCur)>,
    /// Spec of each prepare owed and not yet started.
    specs: BTreeMap<CallableHandle, CallableSpec>,
    settle_waiters: BTreeMap<CallableHandle, Vec<Waiter<T>>>,
    free_waiters: BTreeMap<CallableHandle, Vec<Waiter<T>>>,
    /// Releases queued or running, per slot handle.
    releases_owed: BTreeMap<CallableHandle, u32>,
    /// Slots freed while releases were still owed.
    freed: BTreeSet<CallableHandle>,
    shutting_down: bool,
    teardown_done: bool,
    outputs: VecDeque<ChipOutput<A, T>>,
    audit: Option<VecDeque<Audit<A>>>,
}

impl<A: Clone, T> ChipSide<A, T> {
    /// A chip side whose table has `limits` and issues handles of `worker`.
    pub fn new(worker: WorkerId, limits: SlotLimits) -> Self {
        ChipSide {
            table: SlotTable::new(worker, limits),
            run_lane: Lane::new(),
            head: None,
            recheck: false,
            reg_lane: Lane::new(),
            reg_cur: None,
            specs: BTreeMap::new(),
            settle_waiters: BTreeMap::new(),
            free_waiters: BTreeMap::new(),
            releases_owed: BTreeMap::new(),
            freed: BTreeSet::new(),
            shutting_down: false,
            teardown_done: false,
            outputs: VecDeque::new(),
            audit: None,
        }
    }

    /// The slot table (read only).
    pub fn table(&self) -> &SlotTable<A> {
        &self.table
    }

    /// The worker whose handles this chip side issues.
    pub fn worker(&self) -> WorkerId {
        self.table.worker()
    }

    /// The next thing the owner owes.
    pub fn poll(&mut self) -> Option<ChipOutput<A, T>> {
        self.outputs.pop_front()
    }

    /// `Shutdown` was fed.
    pub fn shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// Shutting down and the run lane will never start another run.
    pub fn run_lane_done(&self) -> bool {
        self.shutting_down && self.head.is_none() && self.run_lane.is_idle()
    }

    /// Shutting down and nothing is left: no slot live, every lane idle,
    /// nothing owed (module doc).
    pub fn quiescent(&self) -> bool {
        self.run_lane_done() && self.teardown_done && self.reg_cur.is_none() && self.reg_lane.is_idle()
    }

    /// Both lanes idle and nothing started (runs may still be pinned? no:
    /// an idle run lane holds no pinned run).
    pub fn idle(&self) -> bool {
        self.head.is_none() && self.run_lane.is_idle() && self.reg_cur.is_none() && self.reg_lane.is_idle()
    }

    /// The run at the head of the run lane: its handle and whether it is on
    /// the chip (else it waits for its slot to settle).
    pub fn run_head(&self) -> Option<(CallableHandle, bool)> {
        self.head.as_ref().map(|h| (h.handle, h.running))
    }

    /// Runs queued behind the head.
    pub fn runs_queued(&self) -> usize {
        self.run_lane.queued()
    }

    /// The job the register lane runs, if any (`true`: a prepare).
    pub fn register_job(&self) -> Option<(JobId, CallableHandle, bool)> {
        self.reg_cur.map(|(id, c)| match c {
            RegCur::Prepare(h) => (id, h, true),
            RegCur::Release(h) => (id, h, false),
        })
    }

    /// Register-lane jobs queued.
    pub fn register_queued(&self) -> usize {
        self.reg_lane.queued()
    }

    /// Apply one input; the immediate reply or a typed refusal. Drain
    /// [`ChipSide::poll`] afterwards.
    pub fn handle(&mut self, input: ChipInput<A, T>) -> Result<ChipReply, ChipRefusal> {
        let r = match input {
            ChipInput::Register { spec, waiter } => self.register(spec, Waiter::Caller(waiter)),
            ChipInput::Unregister { handle, waiter } => self.unregister(handle, Some(waiter)),
            ChipInput::Run { handle, args, config, waiter } => {
                self.run(handle, args, config, Waiter::Caller(waiter)).map_err(ChipRefusal::Run)
            }
            ChipInput::Task(frame) => {
                let handle = self.handle_of(frame.id);
                self.run(handle, frame.args, frame.config, Waiter::Task(frame.id.dispatch)).map_err(ChipRefusal::Run)
            }
            ChipInput::Control(frame) => self.control(frame),
            ChipInput::PrepareFinished { handle, result } => {
                if self.reg_cur.is_some_and(|(_, c)| c == RegCur::Prepare(handle)) {
                    let (id, _) = self.reg_cur.take().expect("checked");
                    let finished = self.reg_lane.handle(LaneInput::Finished { id });
                    assert_eq!(finished, Ok(None), "the running prepare finished");
                }
                // Otherwise a stray completion (a duplicate, or of an older
                // generation): the table drops and counts it and releases
                // its artifact.
                let _ = self.feed(SlotInput::PrepareFinished { handle, result });
                Ok(ChipReply::Done)
            }
            ChipInput::RunFinished { job, result } => match self.head.take() {
                Some(head) if head.job == job && head.running => {
                    self.retire(head, result.map_err(RunError::Chip));
                    Ok(ChipReply::Done)
                }
                other => {
                    self.head = other;
                    Err(ChipRefusal::NotRunning(job))
                }
            },
            ChipInput::ReleaseFinished { job } => match self.reg_cur {
                Some((id, RegCur::Release(handle))) if id == job => {
                    self.reg_cur = None;
                    let finished = self.reg_lane.handle(LaneInput::Finished { id });
                    assert_eq!(finished, Ok(None), "the running release finished");
                    self.release_done(handle);
                    Ok(ChipReply::Done)
                }
                _ => Err(ChipRefusal::NotRunning(job)),
            },
            ChipInput::Shutdown => {
                self.shutdown();
                Ok(ChipReply::Done)
            }
        };
        self.settle();
        r
    }

    // ---------------------------------------------------------------- requests

    fn handle_of(&self, id: FrameId) -> CallableHandle {
        CallableHandle { worker: self.table.worker(), index: id.slot, generation: id.generation }
    }

    fn register(&mut self, spec: CallableSpec, waiter: Waiter<T>) -> Result<ChipReply, ChipRefusal> {
        let l3 = !matches!(waiter, Waiter::Caller(_));
        let refuse = |e: RegisterError| {
            if l3 {
                ChipRefusal::Control(ControlError::Register(e))
            } else {
                ChipRefusal::Register(e)
            }
        };
        if self.shutting_down {
            return Err(refuse(RegisterError::Endpoint(EndpointError::ShutDown)));
        }
        if spec.kind != TargetKind::ChipCallable {
            return Err(refuse(RegisterError::WrongTarget));
        }
        let digest = spec.digest();
        let (handle, fresh) = match self.feed(SlotInput::Register { digest }) {
            Ok(SlotReply::Registered { handle, fresh }) => (handle, fresh),
            Err(SlotError::Register(e)) => return Err(refuse(e)),
            other => unreachable!("register replied {other:?}"),
        };
        let waiter = match waiter {
            // L3: the settlement names the slot the register got.
            Waiter::Settle(id) => {
                Waiter::Settle(FrameId { dispatch: id.dispatch, slot: handle.index, generation: handle.generation })
            }
            w => w,
        };
        if fresh {
            self.specs.insert(handle, spec);
            self.settle_waiters.entry(handle).or_default().push(waiter);
        } else {
            // Already registered: settled now (PREPARED or FAILED) or with
            // the prepare in flight (PREPARING), at L2 and L3 alike.
            match self.table.runnable(handle) {
                Ok(Some(_)) => self.resolve_register(waiter, handle, Ok(())),
                Ok(None) => self.settle_waiters.entry(handle).or_default().push(waiter),
                Err(RunError::PrepareFailed(e)) => {
                    self.resolve_register(waiter, handle, Err(RegisterError::PrepareFailed(e)))
                }
                Err(e) => unreachable!("a registered slot is neither runnable, preparing nor failed: {e:?}"),
            }
        }
        Ok(ChipReply::Registered { handle, fresh })
    }

    /// `waiter` is the L2 caller; L3 passes `None` and the control's id
    /// through `control`.
    fn unregister(&mut self, handle: CallableHandle, waiter: Option<T>) -> Result<ChipReply, ChipRefusal> {
        self.unregister_as(handle, waiter.map(Waiter::Caller)).map_err(ChipRefusal::Unregister)
    }

    fn unregister_as(
        &mut self,
        handle: CallableHandle,
        waiter: Option<Waiter<T>>,
    ) -> Result<ChipReply, UnregisterError> {
        if self.shutting_down {
            return Err(UnregisterError::Endpoint(EndpointError::ShutDown));
        }
        let last = match self.feed(SlotInput::Unregister { handle }) {
            Ok(SlotReply::Unregistered { last }) => last,
            Err(SlotError::Unregister(e)) => return Err(e),
            other => unreachable!("unregister replied {other:?}"),
        };
        match (waiter, last) {
            // The `Freed` output (if the slot freed at once) is drained after
            // this, so the waiter is in place before it.
            (Some(w), true) => self.free_waiters.entry(handle).or_default().push(w),
            (Some(Waiter::Caller(t)), false) => {
                self.outputs.push_back(ChipOutput::Resolve { waiter: t, resolution: Resolution::Unregistered(Ok(())) })
            }
            _ => {}
        }
        Ok(ChipReply::Unregistered { last })
    }

    fn run(
        &mut self,
        handle: CallableHandle,
        args: TaskArgs,
        config: RunConfig,
        waiter: Waiter<T>,
    ) -> Result<ChipReply, RunError> {
        if self.shutting_down {
            return Err(RunError::Endpoint(EndpointError::ShutDown));
        }
        match self.feed(SlotInput::Pin { handle }) {
            Ok(SlotReply::Pinned { .. }) => {}
            Err(SlotError::Pin(e)) => return Err(e),
            other => unreachable!("pin replied {other:?}"),
        }
        let ticket = Ticket { work: Some((args, config)), waiter };
        let _ = self.run_lane.handle(LaneInput::Enqueue(RunJob { handle, payload: ticket }));
        Ok(ChipReply::Queued)
    }

    fn control(&mut self, frame: ControlFrame) -> Result<ChipReply, ChipRefusal> {
        let id = frame.id;
        let reply = match frame.op {
            ControlOp::Register { spec } => match self.register(spec, Waiter::Settle(id))? {
                ChipReply::Registered { handle, fresh } => {
                    ControlReply::Registered { slot: handle.index, generation: handle.generation, fresh }
                }
                other => unreachable!("register replied {other:?}"),
            },
            ControlOp::Unregister => {
                let handle = self.handle_of(id);
                match self.unregister_as(handle, Some(Waiter::Free(id))) {
                    Ok(ChipReply::Unregistered { last }) => ControlReply::Unregistered { last },
                    Ok(other) => unreachable!("unregister replied {other:?}"),
                    Err(e) => return Err(ChipRefusal::Control(ControlError::Unregister(e))),
                }
            }
            // No device-wide memory or domain state on chiplane's devices:
            // the control is accepted (it reached the child at IDLE, rule 3).
            ControlOp::Memory { .. } | ControlOp::Domain { .. } => ControlReply::Done,
        };
        Ok(ChipReply::Control(reply))
    }

    fn shutdown(&mut self) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        // Runs not on the chip fail (the head, if it waits, in `advance_run`).
        for (_, job) in self.run_lane.remove_queued(|_| true) {
            let unpinned = self.feed(SlotInput::Unpin { handle: job.handle });
            assert_eq!(unpinned, Ok(SlotReply::Unpinned), "one unpin per pin");
            self.resolve_run(job.payload.waiter, Err(RunError::Endpoint(EndpointError::ShutDown)));
        }
        self.recheck = true;
    }
}

/// MUTANT `sync_bypasses_queue` support (docs/protocol.md section 8): a run that
/// goes around the run lane.
#[cfg(chiplane_mutant = "sync_bypasses_queue")]
impl<A: Clone, T> ChipSide<A, T> {
    /// Pin `handle` and hand out its artifact without queueing the run.
    pub fn bypass_pin(&mut self, handle: CallableHandle) -> Result<A, RunError> {
        match self.feed(SlotInput::Pin { handle }) {
            Ok(_) => {}
            Err(SlotError::Pin(e)) => return Err(e),
            Err(e) => unreachable!("{e:?}"),
        }
        let artifact = match self.table.runnable(handle) {
            Ok(Some(a)) => Ok(a.clone()),
            Ok(None) => Err(RunError::Cancelled),
            Err(e) => Err(e),
        };
        if artifact.is_err() {
            self.bypass_unpin(handle);
        }
        artifact
    }

    /// Unpin after a bypassing run.
    pub fn bypass_unpin(&mut self, handle: CallableHandle) {
        let _ = self.feed(SlotInput::Unpin { handle });
        self.settle();
    }
}
