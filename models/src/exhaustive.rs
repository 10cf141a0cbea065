//! Exhaustive state-space check of the composed pure protocol
//! ([`crate::system::System`]: parent endpoint + child endpoint + both lanes
//! + slot table, 2 callables, bounded user operations).
//!
//! A depth-first search over every interleaving of [`Action`]s, with a set
//! of visited states (a 128-bit fingerprint of the state's canonical
//! `Debug` rendering: two independently prefixed SipHash digests; a collision would
//! only *skip* a state, never report a false violation). Every state is
//! checked with [`System::check`]; every state without an enabled action
//! with [`System::check_final`]. Reachability: each named state of
//! design.md (every value of the word, every slot state, a control during
//! TASK_RUNNING, a deferred TASK_DONE, a tombstoned slot, a full ring, child
//! death) must be reached at least once, or the check fails: a property
//! that holds only because its premise is unreachable proves nothing.

use crate::system::{Action, Config, System};
use chiplane_core::ids::SlotIndex;
use chiplane_core::mailbox::word::WordState;
use chiplane_core::slot::SlotState;
use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hasher};

/// Result of one exploration.
#[derive(Debug, Default)]
pub struct Report {
    pub states: u64,
    pub transitions: u64,
    pub terminal: u64,
    pub depth_max: usize,
    /// Named states reached.
    pub reached: BTreeSet<String>,
    /// The first violation and the action path that leads to it.
    pub violation: Option<(String, Vec<Action>)>,
    /// The exploration stopped at `states_max` before finishing.
    pub truncated: bool,
}

impl Report {
    /// Named states that must be reached by a full exploration with `cfg`.
    pub fn required(cfg: &Config) -> Vec<String> {
        let mut v: Vec<String> = WordState::ALL
            .iter()
            .filter(|w| **w != WordState::Poisoned || cfg.allow_death)
            .map(|w| format!("word:{w:?}"))
            .collect();
        for s in [SlotState::Preparing, SlotState::Prepared, SlotState::Cancelling, SlotState::Unregistering] {
            v.push(format!("slot:{s:?}"));
        }
        if cfg.allow_chip_errors {
            v.push(format!("slot:{:?}", SlotState::Failed));
        }
        v.push("control-during-task".into());
        v.push("deferred-task-done".into());
        v.push("ring-full".into());
        if cfg.allow_death {
            v.push("child-death".into());
        }
        v
    }

    /// Required named states not reached.
    pub fn missing(&self, cfg: &Config) -> Vec<String> {
        Self::required(cfg).into_iter().filter(|r| !self.reached.contains(r)).collect()
    }
}

struct HashWriter(DefaultHasher);

impl std::fmt::Write for HashWriter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.write(s.as_bytes());
        Ok(())
    }
}

fn fingerprint(s: &System) -> u128 {
    // DefaultHasher::new() has fixed keys (deterministic); the second hash is
    // made independent by a different prefix.
    let mut a = HashWriter(DefaultHasher::new());
    let mut b = HashWriter(DefaultHasher::new());
    b.0.write(b"chiplane-second-key");
    let _ = write!(a, "{s:?}");
    let _ = write!(b, "{s:?}");
    ((a.0.finish() as u128) << 64) | b.0.finish() as u128
}

fn note(s: &System, reached: &mut BTreeSet<String>, capacity: usize) {
    if let Some(w) = WordState::decode(s.word) {
        reached.insert(format!("word:{w:?}"));
    }
    for i in 0..capacity as u32 {
        if let Some(st) = s.table.state(SlotIndex(i)) {
            reached.insert(format!("slot:{st:?}"));
        }
    }
    if s.saw_control_during_task {
        reached.insert("control-during-task".into());
    }
    if s.saw_deferred_done {
        reached.insert("deferred-task-done".into());
    }
    if s.child_dead && s.fault_injected {
        reached.insert("child-death".into());
    }
    if s.ring_full() {
        reached.insert("ring-full".into());
    }
}

/// Explore every interleaving from the initial state of `cfg`.
pub fn explore(cfg: Config, states_max: u64) -> Report {
    let mut report = Report::default();
    let mut visited: HashSet<u128> = HashSet::new();
    let root = System::new(cfg);
    visited.insert(fingerprint(&root));
    report.states = 1;
    // Iterative DFS: the path of (state, remaining actions).
    let mut path: Vec<Action> = Vec::new();
    let mut stack: Vec<(System, Vec<Action>)> = vec![{
        let acts = root.enabled();
        (root, acts)
    }];
    while let Some((state, actions)) = stack.last_mut() {
        let Some(a) = actions.pop() else {
            stack.pop();
            path.pop();
            continue;
        };
        let mut next = state.clone();
        next.step(a);
        report.transitions += 1;
        let fp = fingerprint(&next);
        if !visited.insert(fp) {
            continue;
        }
        report.states += 1;
        path.push(a);
        report.depth_max = report.depth_max.max(path.len());
        note(&next, &mut report.reached, cfg.limits.capacity);
        let acts = next.enabled();
        if acts.is_empty() {
            report.terminal += 1;
            next.check_final();
        }
        if let Some(v) = next.violation.clone() {
            report.violation = Some((v, path.clone()));
            return report;
        }
        if report.states >= states_max {
            report.truncated = true;
            return report;
        }
        stack.push((next, acts));
    }
    report
}
