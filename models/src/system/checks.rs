//! The state checks ([`System::check`] after every action,
//! [`System::check_final`] at quiescence) and the named states a run went
//! through ([`Reached`]).

use chiplane_core::ids::SlotIndex;
use chiplane_core::mailbox::word::WordState;
use chiplane_core::slot::SlotState;

use super::{Resolution, System};

/// A named state of docs/protocol.md that a check must be shown to reach.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Named {
    /// The word held this value.
    Word(WordState),
    /// Some slot was in this state.
    Slot(SlotState),
    /// A control entered during TASK_RUNNING.
    ControlDuringTask,
    /// A run finished while a control was in flight (its TASK_DONE deferred).
    DeferredTaskDone,
    /// The completion ring was full.
    RingFull,
    /// The child died.
    ChildDeath,
    /// The child died in the middle of a frame write.
    TornWrite,
    /// The parent got the answer to a memory output after it was poisoned
    /// or gone (rule 12).
    AnswerAfterGone,
}

const SLOT_STATES: [SlotState; 7] = {
    use SlotState::*;
    [Empty, Preparing, Prepared, Failed, Cancelling, Unregistering, Retired]
};

impl Named {
    /// Every named state.
    pub fn all() -> Vec<Named> {
        let mut v: Vec<Named> = WordState::ALL.iter().map(|w| Named::Word(*w)).collect();
        v.extend(SLOT_STATES.iter().map(|s| Named::Slot(*s)));
        v.extend([
            Named::ControlDuringTask,
            Named::DeferredTaskDone,
            Named::RingFull,
            Named::ChildDeath,
            Named::TornWrite,
            Named::AnswerAfterGone,
        ]);
        v
    }

    fn bit(self) -> u32 {
        match self {
            Named::Word(w) => w.encode(),
            Named::Slot(s) => 16 + SLOT_STATES.iter().position(|x| *x == s).expect("every slot state listed") as u32,
            Named::ControlDuringTask => 32,
            Named::DeferredTaskDone => 33,
            Named::RingFull => 34,
            Named::ChildDeath => 35,
            Named::TornWrite => 36,
            Named::AnswerAfterGone => 37,
        }
    }

    /// The name printed in reports.
    pub fn name(self) -> String {
        match self {
            Named::Word(w) => format!("word:{w:?}"),
            Named::Slot(s) => format!("slot:{s:?}"),
            Named::ControlDuringTask => "control-during-task".into(),
            Named::DeferredTaskDone => "deferred-task-done".into(),
            Named::RingFull => "ring-full".into(),
            Named::ChildDeath => "child-death".into(),
            Named::TornWrite => "torn-write".into(),
            Named::AnswerAfterGone => "answer-after-gone".into(),
        }
    }
}

/// A set of named states.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Debug)]
pub struct Reached(pub u64);

impl Reached {
    pub fn insert(&mut self, n: Named) {
        self.0 |= 1 << n.bit();
    }

    pub fn contains(self, n: Named) -> bool {
        self.0 & (1 << n.bit()) != 0
    }

    /// The named states in `self`.
    pub fn names(self) -> Vec<String> {
        Named::all().into_iter().filter(|n| self.contains(*n)).map(Named::name).collect()
    }
}

impl System {
    /// Safety invariants and named states, after every step.
    pub fn check(&mut self) {
        // The table can only have changed if the chip part was edited.
        if self.child.chip.dirty() {
            let table = self.child.chip.side.table();
            for i in 0..self.cfg.limits.capacity as u32 {
                if let Some(st) = table.state(SlotIndex(i)) {
                    self.reached.insert(Named::Slot(st));
                }
            }
            if let Err(e) = table.check_invariants() {
                self.fail(format!("slot table: {e}"));
            }
        }
        if self.mem.poisoned && self.mem.word != WordState::Poisoned.encode() {
            self.fail(format!("POISONED was overwritten with {} (poison is one way: rule 10)", self.mem.word));
        }
        if let Some(w) = self.word_state() {
            self.reached.insert(Named::Word(w));
            if w == (WordState::ControlReady { under_task: true }) {
                self.reached.insert(Named::ControlDuringTask);
            }
        }
        if self.mem.ring_len() >= self.cfg.ring_capacity as u64 {
            self.reached.insert(Named::RingFull);
        }
    }

    /// Liveness, in a state where no action changes anything.
    pub fn check_final(&mut self) {
        if self.violation.is_some() {
            return;
        }
        let h = &self.host;
        if h.held.is_some() {
            return self.fail("the parent's driver still holds an output at quiescence".into());
        }
        if let Some(d) = h.submitted.keys().find(|d| !h.resolved.contains_key(d)) {
            return self.fail(format!("dispatch {d:?} never resolved (stuck)"));
        }
        if h.parent.settlements_owed() > 0 {
            return self.fail("a settlement is still owed at quiescence".into());
        }
        let owed = |r: &Resolution| matches!(r, Resolution::Control(Ok(reply)) if reply.owes_settlement());
        if let Some(d) = h.resolved.iter().find(|(d, r)| owed(r) && !h.settled.contains_key(d)).map(|(d, _)| *d) {
            return self.fail(format!("settlement for {d:?} never arrived"));
        }
        let c = &self.child;
        if c.dead {
            return;
        }
        if !c.chip_idle() || c.outputs_queued() > 0 {
            return self.fail("chip work left at quiescence".into());
        }
        let table = c.chip.side.table();
        if let Some(i) = (0..self.cfg.limits.capacity as u32).find(|i| table.pins(SlotIndex(*i)) != 0) {
            return self.fail(format!("slot {i} still pinned at quiescence"));
        }
        // Every artifact is held by a PREPARED slot or released.
        let held = (0..self.cfg.limits.capacity as u32)
            .filter(|i| table.state(SlotIndex(*i)) == Some(SlotState::Prepared))
            .count();
        let unreleased = c.chip.created.difference(&c.chip.released).count();
        if unreleased != held {
            self.fail(format!("{unreleased} artifacts unreleased but {held} PREPARED slots hold one"));
        }
    }
}
