//! The audit trail of a [`ChipSide`] (see the `chipside` module doc,
//! "Audit"): when it is on, every slot-table input with its reply, every
//! slot-table output, and every run-lane head and runnable check is
//! recorded, for a checker that holds its own reference model (the
//! simulator). Every input the chip side feeds its slot table goes through
//! [`ChipSide::feed`] here.

use std::collections::VecDeque;

use crate::error::RunError;
use crate::ids::CallableHandle;
use crate::lane::JobId;
use crate::slot::{SlotError, SlotInput, SlotOutput, SlotReply};

use super::ChipSide;

/// One audited step (see the `chipside` module doc, "Audit").
#[derive(Clone, Debug, Hash)]
pub enum Audit<A> {
    /// An input fed to the slot table and its reply.
    Input {
        /// The input.
        input: SlotInput<A>,
        /// The table's reply.
        reply: Result<SlotReply, SlotError>,
    },
    /// An output of the slot table.
    Output(SlotOutput<A>),
    /// The run at the head of the run lane asked the table whether it may
    /// run (`Ok(Some(..))`: it started).
    Runnable {
        /// The run's handle.
        handle: CallableHandle,
        /// The table's answer (the artifact cloned).
        result: Result<Option<A>, RunError>,
    },
    /// Run lane job `job` became the head (runs start in this order).
    Head {
        /// The lane job.
        job: JobId,
    },
}

impl<A: Clone, T> ChipSide<A, T> {
    /// Record (or stop recording) the audit trail (module doc).
    pub fn set_audit(&mut self, on: bool) {
        self.audit = on.then(VecDeque::new);
    }

    /// The next audited step, oldest first.
    pub fn poll_audit(&mut self) -> Option<Audit<A>> {
        self.audit.as_mut()?.pop_front()
    }

    /// Feed the slot table (audited).
    pub(super) fn feed(&mut self, input: SlotInput<A>) -> Result<SlotReply, SlotError> {
        let copy = self.audit.is_some().then(|| input.clone());
        let reply = self.table.handle(input);
        if let (Some(audit), Some(input)) = (self.audit.as_mut(), copy) {
            audit.push_back(Audit::Input { input, reply: reply.clone() });
        }
        reply
    }
}
