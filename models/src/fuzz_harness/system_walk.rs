//! Target `system_walk`: the fuzz input drives the integrator's composed pure
//! system (`crate::system::System`: both endpoints, shared memory, slot
//! table, both lanes; also explored exhaustively by `crate::exhaustive`).
//!
//! The input is an `arbitrary`-derived [`Walk`]: the bounds (user operations,
//! child death, chip errors, ring capacity, memory controls, a register lane
//! that waits for finished runs, slot capacity and generations) and then one
//! choice per step among the *enabled* actions (users act on choices
//! divisible by 8 so that work is in flight when they do). When the choices
//! run out the walk drains (no new user operation, no death) until nothing
//! is enabled. A crash is any violation `System::step` records (its safety
//! checks run after every action) or `System::check_final` finds at rest
//! (every submission resolved exactly once, settlements too, nothing pinned,
//! every artifact held by a PREPARED slot or released).
//!
//! `mailbox_protocol` is the richer harness (faults, rule 1/3/9 checks,
//! transport checks, a final unregister-everything leak check); this one
//! fuzzes the system the exhaustive checker explores, far beyond its bounds.

use arbitrary::{Arbitrary, Unstructured};
use chiplane_core::ids::Generation;
use chiplane_core::slot::SlotLimits;

use crate::system::{Action, Config, System};

/// Longest walk before the drain (steps chosen by the input).
pub const CHOICES_MAX: usize = 2_000;
/// A walk that does not come to rest within this many steps is a finding.
pub const STEPS_MAX: usize = 50_000;

/// The bounds of one walk.
#[derive(Arbitrary, Clone, Copy, PartialEq, Eq, Debug)]
pub struct Bounds {
    pub ops_max: u8,
    pub allow_death: bool,
    pub allow_chip_errors: bool,
    pub ring_capacity: u8,
    pub allow_memory: bool,
    pub prepare_waits_for_runs: bool,
    pub capacity: u8,
    pub generation_max: u8,
}

impl Bounds {
    pub fn config(self) -> Config {
        Config {
            ops_max: 1 + self.ops_max % 16,
            allow_death: self.allow_death,
            allow_chip_errors: self.allow_chip_errors,
            ring_capacity: 1 + usize::from(self.ring_capacity % 3),
            allow_memory: self.allow_memory,
            prepare_waits_for_runs: self.prepare_waits_for_runs,
            limits: SlotLimits {
                capacity: 1 + usize::from(self.capacity % 3),
                generation_max: Generation(1 + u32::from(self.generation_max % 3)),
            },
        }
    }
}

/// The fuzz target body.
pub fn system_walk(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(bounds) = Bounds::arbitrary(&mut u) else { return };
    let mut choices = Vec::new();
    while !u.is_empty() && choices.len() < CHOICES_MAX {
        match u.arbitrary::<u8>() {
            Ok(c) => choices.push(c),
            Err(_) => break,
        }
    }
    walk(bounds.config(), &choices);
}

/// Walk `choices`, then drain; panics with the path on a violation.
pub fn walk(cfg: Config, choices: &[u8]) -> System {
    let mut s = System::new(cfg);
    let mut path: Vec<Action> = Vec::new();
    for i in 0..STEPS_MAX {
        let mut enabled = s.enabled();
        if i >= choices.len() {
            enabled.retain(|a| !a.is_user() && !a.is_fault());
        }
        if enabled.is_empty() {
            s.check_final();
            if let Some(v) = &s.violation {
                panic!("violation at rest: {v}\nconfig: {cfg:?}\npath: {path:?}");
            }
            return s;
        }
        let c = usize::from(choices.get(i).copied().unwrap_or(0));
        if !c.is_multiple_of(8) && enabled.iter().any(|a| !a.is_user()) {
            enabled.retain(|a| !a.is_user());
        }
        let a = enabled[(c / 8) % enabled.len()];
        path.push(a);
        s.step(a);
        if let Some(v) = &s.violation {
            panic!("violation: {v}\nconfig: {cfg:?}\npath: {path:?}");
        }
    }
    panic!("the walk does not come to rest within {STEPS_MAX} steps\nconfig: {cfg:?}");
}
