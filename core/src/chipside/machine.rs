//! The machine of a [`ChipSide`]: after every input, drain the slot table's
//! outputs onto the lanes, start what the register lane and the run lane
//! can start, retire runs, count releases, and tear down after a shutdown,
//! until nothing changes (see the `chipside` module doc for the rules).

use crate::chip::{ChipError, ChipErrorKind, RunOutput};
use crate::error::{EndpointError, RegisterError, RunError};
use crate::ids::CallableHandle;
use crate::lane::{LaneInput, LaneOutput, RegisterJob};
use crate::slot::{SlotInput, SlotOutput, SlotReply, SlotState};

use super::{Audit, ChipOutput, ChipSide, Head, RegCur};

impl<A: Clone, T> ChipSide<A, T> {
    /// Drain the table, start what the lanes can start, tear down once the
    /// run lane is empty after a shutdown; until nothing changes.
    pub(super) fn settle(&mut self) {
        loop {
            let mut progress = false;
            while let Some(out) = self.table.poll() {
                if let Some(audit) = self.audit.as_mut() {
                    audit.push_back(Audit::Output(out.clone()));
                }
                self.act(out);
                progress = true;
            }
            progress |= self.advance_register();
            progress |= self.advance_run();
            progress |= self.teardown();
            if !progress {
                break;
            }
        }
        // The table asserts its invariants only in debug builds; the model
        // checkers run optimised, so check them here under loom and shuttle.
        #[cfg(any(chiplane_loom, chiplane_shuttle))]
        if let Err(broken) = self.table.check_invariants() {
            panic!("slot table invariant broken: {broken}");
        }
    }

    fn act(&mut self, out: SlotOutput<A>) {
        match out {
            SlotOutput::StartPrepare { handle, digest } => {
                debug_assert!(self.specs.contains_key(&handle), "prepare owed without its spec");
                let _ = self.reg_lane.handle(LaneInput::Enqueue(RegisterJob::Prepare { handle, digest }));
            }
            SlotOutput::Cancel { handle } => {
                if self.reg_cur.is_some_and(|(_, c)| c == RegCur::Prepare(handle)) {
                    self.outputs.push_back(ChipOutput::Cancel { handle });
                    return;
                }
                let queued = self
                    .reg_lane
                    .remove_queued(|j| matches!(j, RegisterJob::Prepare { handle: h, .. } if *h == handle));
                assert_eq!(queued.len(), 1, "a cancel names a prepare queued or running");
                // Never started: it stops at its first safe point, before it began.
                self.specs.remove(&handle);
                let result = Err(ChipError::new(ChipErrorKind::Cancelled, "cancelled before it started"));
                let reply = self.feed(SlotInput::PrepareFinished { handle, result });
                assert!(reply.is_ok(), "a cancelled queued prepare was refused: {reply:?}");
            }
            SlotOutput::Release { handle, artifact } => {
                let _ = self.reg_lane.handle(LaneInput::Enqueue(RegisterJob::Release { handle, artifact }));
                *self.releases_owed.entry(handle).or_insert(0) += 1;
            }
            SlotOutput::Settled { handle, result } => {
                for w in self.settle_waiters.remove(&handle).unwrap_or_default() {
                    self.resolve_register(w, handle, result.clone());
                }
                // The head of the run lane may wait for this slot.
                self.recheck = true;
            }
            SlotOutput::Freed { handle } => {
                if self.releases_owed.contains_key(&handle) {
                    self.freed.insert(handle);
                } else {
                    self.resolve_freed(handle);
                }
            }
        }
    }

    fn advance_register(&mut self) -> bool {
        if self.reg_cur.is_some() {
            return false;
        }
        let Some(LaneOutput::Start { id, job }) = self.reg_lane.poll() else { return false };
        match job {
            RegisterJob::Prepare { handle, .. } => {
                let spec = self.specs.remove(&handle).expect("a prepare starts with its spec");
                self.reg_cur = Some((id, RegCur::Prepare(handle)));
                self.outputs.push_back(ChipOutput::StartPrepare { handle, spec });
            }
            RegisterJob::Release { handle, artifact } => {
                self.reg_cur = Some((id, RegCur::Release(handle)));
                self.outputs.push_back(ChipOutput::StartRelease { job: id, handle, artifact });
            }
        }
        true
    }

    fn advance_run(&mut self) -> bool {
        let mut progress = false;
        if self.head.is_none() {
            let Some(LaneOutput::Start { id, job }) = self.run_lane.poll() else { return false };
            if let Some(audit) = self.audit.as_mut() {
                audit.push_back(Audit::Head { job: id });
            }
            self.head = Some(Head { job: id, handle: job.handle, ticket: job.payload, running: false });
            self.recheck = true;
            progress = true;
        }
        if !self.recheck {
            return progress;
        }
        self.recheck = false;
        let head = self.head.as_mut().expect("set above");
        if head.running {
            return progress;
        }
        if self.shutting_down {
            let head = self.head.take().expect("checked");
            self.retire(head, Err(RunError::Endpoint(EndpointError::ShutDown)));
            return true;
        }
        let runnable = self.table.runnable(head.handle).map(|a| a.cloned());
        if let Some(audit) = self.audit.as_mut() {
            audit.push_back(Audit::Runnable { handle: head.handle, result: runnable.clone() });
        }
        match runnable {
            Ok(Some(artifact)) => {
                let (args, config) = head.ticket.work.take().expect("a run starts once");
                head.running = true;
                let (job, handle) = (head.job, head.handle);
                self.outputs.push_back(ChipOutput::StartRun { job, handle, artifact, args, config });
                true
            }
            // PREPARING: wait (FIFO: everything behind waits too).
            Ok(None) => progress,
            Err(e) => {
                let head = self.head.take().expect("checked");
                self.retire(head, Err(e));
                true
            }
        }
    }

    /// After a shutdown, once the run lane is empty: fail register waiters,
    /// end every registration still held.
    fn teardown(&mut self) -> bool {
        if !self.run_lane_done() || self.teardown_done {
            return false;
        }
        self.teardown_done = true;
        let waiters = core::mem::take(&mut self.settle_waiters);
        for (handle, ws) in waiters {
            for w in ws {
                self.resolve_register(w, handle, Err(RegisterError::Endpoint(EndpointError::ShutDown)));
            }
        }
        let worker = self.table.worker();
        for i in 0..self.table.limits().capacity {
            let index = crate::ids::SlotIndex(i as u32);
            if !matches!(self.table.state(index), Some(SlotState::Preparing | SlotState::Prepared | SlotState::Failed))
            {
                continue;
            }
            let generation = self.table.generation(index).unwrap_or_default();
            let handle = CallableHandle { worker, index, generation };
            for _ in 0..self.table.registrations(index) {
                let reply = self.feed(SlotInput::Unregister { handle });
                assert!(reply.is_ok(), "teardown unregister refused: {reply:?}");
            }
        }
        true
    }

    /// The head retires: unpin (before its result goes out), finish the job.
    pub(super) fn retire(&mut self, head: Head<T>, result: Result<RunOutput, RunError>) {
        let unpinned = self.feed(SlotInput::Unpin { handle: head.handle });
        assert_eq!(unpinned, Ok(SlotReply::Unpinned), "one unpin per pin");
        let finished = self.run_lane.handle(LaneInput::Finished { id: head.job });
        assert_eq!(finished, Ok(None), "the head was the running job");
        self.resolve_run(head.ticket.waiter, result);
        self.recheck = true;
    }

    pub(super) fn release_done(&mut self, handle: CallableHandle) {
        let owed = self.releases_owed.get_mut(&handle).expect("a release was owed");
        *owed -= 1;
        if *owed == 0 {
            self.releases_owed.remove(&handle);
            if self.freed.remove(&handle) {
                self.resolve_freed(handle);
            }
        }
    }
}
