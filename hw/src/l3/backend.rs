//! [`NodeBackend`]: core's child serve loop ([`ChildBackend`]) on top of a
//! [`ChipNode`] (the chip child's slot registry and lane threads).
//!
//! Every method returns at once (design.md rule 9): a task is pinned and
//! queued by `ChipNode::run`, a register queues its prepare, an unregister
//! tombstones or cancels; what they started ends later, on a lane thread,
//! and comes back through [`ChildBackend::poll_event`], which only
//! `try_wait`s the node's handles.
//!
//! # Settlements
//! The parent owes a settlement to a *fresh* register (one that queued a
//! prepare) and to a *final* unregister (one that started the teardown).
//! The serve loop is the only caller of the node, so the backend counts the
//! registrations of each handle itself: a register whose handle it does not
//! hold yet is fresh; an unregister that drops the count to 0 is final. Each
//! owed settlement is the node handle of that control, mapped to the
//! control's `{dispatch, slot, generation}`:
//! - fresh register: `Settlement::Prepared(result)` when the prepare settles;
//! - final unregister: `Settlement::Freed` when the artifact was released.
//!
//! Handles the node returns for controls that owe nothing are dropped (which
//! neither cancels nor leaks their work).

use std::collections::{BTreeMap, VecDeque};

use chiplane_core::chip::Chip;
use chiplane_core::conc::node::{RegisterHandle, RunHandle, UnregisterHandle};
use chiplane_core::conc::serve::{ChildBackend, ChildEvent};
use chiplane_core::conc::ChipNode;
use chiplane_core::error::{ControlError, RunError};
use chiplane_core::frame::{ControlFrame, ControlOp, ControlReply, FrameId, Settlement, TaskFrame};
use chiplane_core::ids::{DispatchId, Handle};

/// The chip child's backend. See the module doc.
#[derive(Debug)]
pub struct NodeBackend<C: Chip> {
    node: ChipNode<C>,
    runs: VecDeque<(DispatchId, RunHandle)>,
    prepares: VecDeque<(FrameId, RegisterHandle)>,
    frees: VecDeque<(FrameId, UnregisterHandle)>,
    registrations: BTreeMap<Handle, u32>,
}

impl<C: Chip> NodeBackend<C> {
    pub fn new(node: ChipNode<C>) -> Self {
        NodeBackend {
            node,
            runs: VecDeque::new(),
            prepares: VecDeque::new(),
            frees: VecDeque::new(),
            registrations: BTreeMap::new(),
        }
    }

    pub fn node(&self) -> &ChipNode<C> {
        &self.node
    }

    /// Stop the node (joins its lanes; see `ChipNode::shutdown`).
    pub fn into_node(self) -> ChipNode<C> {
        self.node
    }

    fn handle_of(&self, id: &FrameId) -> Handle {
        Handle { worker: self.node.worker(), index: id.slot, generation: id.generation }
    }
}

impl<C: Chip> ChildBackend for NodeBackend<C> {
    fn accept_task(&mut self, task: TaskFrame) -> Result<(), RunError> {
        let handle = self.handle_of(&task.id);
        let pending = self.node.run(handle, task.args, task.config)?;
        self.runs.push_back((task.id.dispatch, pending));
        Ok(())
    }

    fn apply_control(&mut self, control: ControlFrame) -> Result<ControlReply, ControlError> {
        let id = control.id;
        match control.op {
            ControlOp::Register { spec } => {
                let pending = self.node.register(spec).map_err(ControlError::Register)?;
                let handle = pending.handle();
                let count = self.registrations.entry(handle).or_insert(0);
                let fresh = *count == 0;
                *count += 1;
                if fresh {
                    let settle = FrameId { dispatch: id.dispatch, slot: handle.index, generation: handle.generation };
                    self.prepares.push_back((settle, pending));
                }
                Ok(ControlReply::Registered { slot: handle.index, generation: handle.generation, fresh })
            }
            ControlOp::Unregister => {
                let handle = self.handle_of(&id);
                let pending = self.node.unregister(handle).map_err(ControlError::Unregister)?;
                let last = match self.registrations.get_mut(&handle) {
                    Some(n) if *n > 1 => {
                        *n -= 1;
                        false
                    }
                    _ => {
                        self.registrations.remove(&handle);
                        true
                    }
                };
                if last {
                    self.frees.push_back((id, pending));
                }
                Ok(ControlReply::Unregistered { last })
            }
            // No device-wide memory or domain state on these devices: the
            // control is accepted (it reached the child at IDLE, rule 3).
            ControlOp::Memory { .. } | ControlOp::Domain { .. } => Ok(ControlReply::Done),
        }
    }

    fn poll_event(&mut self) -> Option<ChildEvent> {
        // The run lane retires runs in FIFO order.
        if let Some((_, pending)) = self.runs.front_mut() {
            if let Some(result) = pending.try_wait() {
                let (dispatch, _) = self.runs.pop_front().expect("front exists");
                return Some(ChildEvent::RunFinished { dispatch, result });
            }
        }
        // Prepares settle in register-lane order; a cancelled one settles
        // before the free of the same slot, so prepares are looked at first.
        for i in 0..self.prepares.len() {
            if let Some(result) = self.prepares[i].1.try_wait() {
                let (id, _) = self.prepares.remove(i).expect("index in range");
                return Some(ChildEvent::Settled { id, settlement: Settlement::Prepared(result.map(|_| ())) });
            }
        }
        for i in 0..self.frees.len() {
            if self.frees[i].1.try_wait().is_some() {
                let (id, _) = self.frees.remove(i).expect("index in range");
                return Some(ChildEvent::Settled { id, settlement: Settlement::Freed });
            }
        }
        None
    }
}
