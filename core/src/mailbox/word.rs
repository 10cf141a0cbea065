//! The mailbox state word.
//!
//! ```text
//! IDLE          --parent: write task frame, publish-->          TASK_READY
//! TASK_READY    --child: copy out, pin, enqueue, publish-->     TASK_RUNNING
//! TASK_READY    --child: task refused (result written)-->       TASK_DONE
//! TASK_RUNNING  --parent: write control frame, publish-->       CONTROL_READY(task)
//! IDLE          --parent: write control frame, publish-->       CONTROL_READY(idle)
//! CONTROL_READY(u) --child: copy out, act, write result-->      CONTROL_DONE(u)
//! CONTROL_DONE(u)  --parent: read result, restore-->            u (TASK_RUNNING or IDLE)
//! TASK_RUNNING  --child: run finished, write result-->          TASK_DONE
//! TASK_DONE     --parent: read result-->                        IDLE
//! any           --parent (child died / identity mismatch) or child (malformed frame)--> POISONED
//! ```
//! Every transition is a compare-and-swap from the value the writer's role
//! expects (rule 7); `POISONED` is entered by a swap and never left (rule 10).
//! The `transition_to_*` functions are the pure half: given a snapshot they
//! return the next value or `Err(snapshot)` when the transition is not legal
//! from it.

/// Who is attempting a transition (for diagnostics and checkers).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Side {
    /// The parent (host) endpoint.
    Parent,
    /// The child (chip) endpoint.
    Child,
}

/// A snapshot of the state word.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum WordState {
    /// Nothing in flight: the parent may publish a task or a control.
    Idle,
    /// A task frame is published; the child copies it out next.
    TaskReady,
    /// The child copied the task out, pinned its slot and queued the run;
    /// chip-callable controls may enter now (rule 3).
    TaskRunning,
    /// A control is published; `under_task` = it entered during TASK_RUNNING.
    ControlReady {
        /// The control entered during TASK_RUNNING (else from IDLE).
        under_task: bool,
    },
    /// The control's result is written; the parent restores `under_task`.
    ControlDone {
        /// Restore TASK_RUNNING (else IDLE) after reading the result.
        under_task: bool,
    },
    /// The task's result is written; the parent reads it and returns to IDLE.
    TaskDone,
    /// Poisoned (one way, rule 10): nothing is published again.
    Poisoned,
}

impl WordState {
    /// All values (for exhaustive checks and reachability).
    pub const ALL: [WordState; 9] = [
        WordState::Idle,
        WordState::TaskReady,
        WordState::TaskRunning,
        WordState::ControlReady { under_task: false },
        WordState::ControlReady { under_task: true },
        WordState::ControlDone { under_task: false },
        WordState::ControlDone { under_task: true },
        WordState::TaskDone,
        WordState::Poisoned,
    ];

    /// The u32 stored in shared memory.
    pub const fn encode(self) -> u32 {
        match self {
            WordState::Idle => 0,
            WordState::TaskReady => 1,
            WordState::TaskRunning => 2,
            WordState::ControlReady { under_task: false } => 3,
            WordState::ControlReady { under_task: true } => 4,
            WordState::ControlDone { under_task: false } => 5,
            WordState::ControlDone { under_task: true } => 6,
            WordState::TaskDone => 7,
            WordState::Poisoned => 8,
        }
    }

    /// Decode a u32 read from shared memory; `None` for a value the protocol
    /// never writes (the reader poisons).
    pub const fn decode(v: u32) -> Option<WordState> {
        Some(match v {
            0 => WordState::Idle,
            1 => WordState::TaskReady,
            2 => WordState::TaskRunning,
            3 => WordState::ControlReady { under_task: false },
            4 => WordState::ControlReady { under_task: true },
            5 => WordState::ControlDone { under_task: false },
            6 => WordState::ControlDone { under_task: true },
            7 => WordState::TaskDone,
            8 => WordState::Poisoned,
            _ => return None,
        })
    }

    /// A task is published or running underneath (TASK_READY, TASK_RUNNING,
    /// a control entered during a task, or TASK_DONE not yet consumed).
    pub const fn task_outstanding(self) -> bool {
        matches!(
            self,
            WordState::TaskReady
                | WordState::TaskRunning
                | WordState::ControlReady { under_task: true }
                | WordState::ControlDone { under_task: true }
                | WordState::TaskDone
        )
    }

    /// A value the parent publishes for the child to act on (TASK_READY,
    /// CONTROL_READY, POISONED), as against a restore after consuming the
    /// child's result (IDLE, TASK_RUNNING): the parent rings the child's
    /// bell after the first kind and only nudges it after the second
    /// (`conc::bell`, "Rings and nudges").
    pub const fn child_acts(self) -> bool {
        matches!(self, WordState::TaskReady | WordState::ControlReady { .. } | WordState::Poisoned)
    }

    /// Parent: IDLE -> TASK_READY.
    pub fn transition_to_task_ready(self) -> Result<WordState, WordState> {
        match self {
            WordState::Idle => Ok(WordState::TaskReady),
            s => Err(s),
        }
    }

    /// Child: TASK_READY -> TASK_RUNNING (payload copied out, slot pinned).
    pub fn transition_to_task_running(self) -> Result<WordState, WordState> {
        match self {
            WordState::TaskReady => Ok(WordState::TaskRunning),
            s => Err(s),
        }
    }

    /// Parent: IDLE or TASK_RUNNING -> CONTROL_READY. Only controls with
    /// `allowed_during_task` may enter during TASK_RUNNING (rule 3).
    pub fn transition_to_control_ready(self, allowed_during_task: bool) -> Result<WordState, WordState> {
        match self {
            WordState::Idle => Ok(WordState::ControlReady { under_task: false }),
            WordState::TaskRunning if allowed_during_task => Ok(WordState::ControlReady { under_task: true }),
            s => Err(s),
        }
    }

    /// Child: CONTROL_READY(u) -> CONTROL_DONE(u).
    pub fn transition_to_control_done(self) -> Result<WordState, WordState> {
        match self {
            WordState::ControlReady { under_task } => Ok(WordState::ControlDone { under_task }),
            s => Err(s),
        }
    }

    /// Parent: CONTROL_DONE(u) -> u (TASK_RUNNING or IDLE).
    pub fn transition_to_restored(self) -> Result<WordState, WordState> {
        match self {
            WordState::ControlDone { under_task: true } => Ok(WordState::TaskRunning),
            WordState::ControlDone { under_task: false } => Ok(WordState::Idle),
            s => Err(s),
        }
    }

    /// Child: TASK_RUNNING -> TASK_DONE, or TASK_READY -> TASK_DONE for a
    /// task refused before it ran. Never from a CONTROL_* value: a run that
    /// finishes during a control defers its TASK_DONE (rule 2).
    pub fn transition_to_task_done(self) -> Result<WordState, WordState> {
        match self {
            WordState::TaskRunning | WordState::TaskReady => Ok(WordState::TaskDone),
            // MUTANT done_during_control: TASK_DONE overwrites a control in flight.
            #[cfg(chiplane_mutant = "done_during_control")]
            WordState::ControlReady { under_task: true } | WordState::ControlDone { under_task: true } => {
                Ok(WordState::TaskDone)
            }
            s => Err(s),
        }
    }

    /// Parent: TASK_DONE -> IDLE (result read).
    pub fn transition_to_idle(self) -> Result<WordState, WordState> {
        match self {
            WordState::TaskDone => Ok(WordState::Idle),
            s => Err(s),
        }
    }

    /// Either side: any -> POISONED (by swap; one way).
    pub fn transition_to_poisoned(self) -> WordState {
        WordState::Poisoned
    }
}

/// Design.md section 4's table, as data: every CAS transition each side may
/// make. Written from the design, not from the `transition_to_*` functions
/// (a unit test checks those against it), so a checker that tests a
/// driver's CAS against this table is independent of the code it checks.
/// POISONED is entered by a swap, never a CAS, and is not in the table.
pub const LEGAL: &[(Side, WordState, WordState)] = {
    use WordState::*;
    &[
        (Side::Parent, Idle, TaskReady),
        (Side::Parent, Idle, ControlReady { under_task: false }),
        (Side::Parent, TaskRunning, ControlReady { under_task: true }),
        (Side::Parent, ControlDone { under_task: true }, TaskRunning),
        (Side::Parent, ControlDone { under_task: false }, Idle),
        (Side::Parent, TaskDone, Idle),
        (Side::Child, TaskReady, TaskRunning),
        (Side::Child, TaskReady, TaskDone),
        (Side::Child, ControlReady { under_task: false }, ControlDone { under_task: false }),
        (Side::Child, ControlReady { under_task: true }, ControlDone { under_task: true }),
        (Side::Child, TaskRunning, TaskDone),
    ]
};

/// May `side` move the word `from -> to` by CAS? (The [`LEGAL`] table.)
pub fn legal(side: Side, from: WordState, to: WordState) -> bool {
    LEGAL.contains(&(side, from, to))
}

/// How a writer puts a transition into the shared word.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum WordWrite {
    /// Compare-and-swap from the value the writer's role expects (rule 7:
    /// every transition).
    Cas,
    /// A plain store (only under the `restore_by_store` mutant).
    Store,
}

impl WordState {
    /// How the transition `self -> to` is written. Every driver (the atomic
    /// helper in `conc::word`, the simulator, the exhaustive checker, the
    /// fuzz harness) asks here, so the `restore_by_store` mutant has one
    /// site.
    pub fn write_kind(self, to: WordState) -> WordWrite {
        // MUTANT restore_by_store: the parent restores CONTROL_DONE(u) -> u
        // by a plain store, which erases a POISONED swapped in meanwhile.
        if cfg!(chiplane_mutant = "restore_by_store") && self.transition_to_restored() == Ok(to) {
            return WordWrite::Store;
        }
        WordWrite::Cas
    }

    /// The transition `from -> to` applied to a plain word (the simulated
    /// memories of the simulator, the exhaustive checker and the fuzz
    /// harness): a CAS, or a store where [`WordState::write_kind`] says so.
    /// `Err(actual)` when a CAS found another value.
    pub fn apply(word: &mut u32, from: WordState, to: WordState) -> Result<(), u32> {
        match from.write_kind(to) {
            WordWrite::Store => {
                *word = to.encode();
                Ok(())
            }
            WordWrite::Cas if *word == from.encode() => {
                *word = to.encode();
                Ok(())
            }
            WordWrite::Cas => Err(*word),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_acts_on_what_the_parent_publishes_not_on_its_restores() {
        for from in WordState::ALL {
            // The parent's publications.
            for to in [from.transition_to_task_ready(), from.transition_to_control_ready(true)]
                .into_iter()
                .flatten()
                .chain([from.transition_to_poisoned()])
            {
                assert!(to.child_acts(), "{from:?} -> {to:?}");
            }
            // The parent's consumptions.
            for to in [from.transition_to_restored(), from.transition_to_idle()].into_iter().flatten() {
                assert!(!to.child_acts(), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn encode_decode_round_trip_and_rejects_unknown() {
        for s in WordState::ALL {
            assert_eq!(WordState::decode(s.encode()), Some(s));
        }
        for v in 9..64 {
            assert_eq!(WordState::decode(v), None);
        }
        assert_eq!(WordState::decode(u32::MAX), None);
    }

    /// Every (state, transition) pair: exactly the docs/protocol.md table is legal.
    #[test]
    fn transition_table_is_exactly_the_design() {
        use WordState::*;
        for s in WordState::ALL {
            assert_eq!(s.transition_to_task_ready().is_ok(), s == Idle, "{s:?}");
            assert_eq!(s.transition_to_task_running().is_ok(), s == TaskReady, "{s:?}");
            assert_eq!(s.transition_to_control_ready(false).is_ok(), s == Idle, "{s:?}");
            assert_eq!(s.transition_to_control_ready(true).is_ok(), s == Idle || s == TaskRunning, "{s:?}");
            assert_eq!(s.transition_to_control_done().is_ok(), matches!(s, ControlReady { .. }), "{s:?}");
            assert_eq!(s.transition_to_restored().is_ok(), matches!(s, ControlDone { .. }), "{s:?}");
            #[cfg(not(chiplane_mutant = "done_during_control"))]
            assert_eq!(s.transition_to_task_done().is_ok(), s == TaskRunning || s == TaskReady, "{s:?}");
            assert_eq!(s.transition_to_idle().is_ok(), s == TaskDone, "{s:?}");
            assert_eq!(s.transition_to_poisoned(), Poisoned);
        }
        assert_eq!(TaskRunning.transition_to_control_ready(true), Ok(ControlReady { under_task: true }));
        assert_eq!(ControlDone { under_task: true }.transition_to_restored(), Ok(TaskRunning));
        assert_eq!(ControlDone { under_task: false }.transition_to_restored(), Ok(Idle));
        // memory/domain controls never enter during a task
        assert_eq!(TaskRunning.transition_to_control_ready(false), Err(TaskRunning));
    }

    /// The `transition_to_*` functions allow exactly the `LEGAL` table.
    #[test]
    #[cfg(not(chiplane_mutant = "done_during_control"))]
    fn transitions_agree_with_the_legal_table() {
        let mut made = Vec::new();
        for s in WordState::ALL {
            let parent = [
                s.transition_to_task_ready(),
                s.transition_to_control_ready(true),
                s.transition_to_control_ready(false),
                s.transition_to_restored(),
                s.transition_to_idle(),
            ];
            let child = [s.transition_to_task_running(), s.transition_to_control_done(), s.transition_to_task_done()];
            made.extend(parent.into_iter().flatten().map(|to| (Side::Parent, s, to)));
            made.extend(child.into_iter().flatten().map(|to| (Side::Child, s, to)));
        }
        made.sort_by_key(|&(side, a, b)| (side as u8, a.encode(), b.encode()));
        made.dedup();
        let mut table = LEGAL.to_vec();
        table.sort_by_key(|&(side, a, b)| (side as u8, a.encode(), b.encode()));
        assert_eq!(made, table);
    }
}
