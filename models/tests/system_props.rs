//! Property test of the composed pure protocol: random walks through
//! [`System`] (parent endpoint, shared memory, child endpoint, slot table,
//! both lanes) with random bounds, far deeper than the exhaustive check's
//! bounds. Every step is checked against the system's invariants; at the
//! end the walk drains (no new user operations) and the liveness check must
//! hold: every submission resolved exactly once, nothing pinned, every
//! artifact held by a PREPARED slot or released exactly once.
#![allow(clippy::disallowed_types)]

use chiplane_core::ids::Generation;
use chiplane_core::slot::SlotLimits;
use chiplane_models::system::{Action, Config, Named, System};
use proptest::prelude::*;

fn config() -> impl Strategy<Value = Config> {
    (1u8..12, any::<bool>(), any::<bool>(), 1usize..4, any::<bool>(), 1usize..4, 1u32..4, any::<bool>()).prop_map(
        |(ops_max, allow_death, allow_chip_errors, ring_capacity, allow_memory, capacity, gmax, busy)| Config {
            ops_max,
            allow_death,
            allow_chip_errors,
            ring_capacity,
            allow_memory,
            prepare_waits_for_runs: busy,
            limits: SlotLimits { capacity, generation_max: Generation(gmax) },
        },
    )
}

fn walk(cfg: Config, choices: &[u16]) -> Result<System, (String, Vec<Action>)> {
    let mut s = System::new(cfg);
    let mut path = Vec::new();
    let mut i = 0usize;
    loop {
        let mut enabled = s.enabled();
        // After the choices run out, drain: no new user operations.
        if i >= choices.len() {
            enabled.retain(|a| !a.is_user() && !a.is_fault());
        }
        if enabled.is_empty() {
            s.check_final();
            break;
        }
        let c = choices.get(i).copied().unwrap_or(0) as usize;
        // Users act rarely (1 step in 8) so that work is in flight when they do.
        if !c.is_multiple_of(8) && enabled.iter().any(|a| !a.is_user()) {
            enabled.retain(|a| !a.is_user());
        }
        let pick = (c / 8) % enabled.len();
        i += 1;
        let a = enabled[pick];
        path.push(a);
        s.step(a);
        if let Some(v) = s.violation.clone() {
            return Err((v, path));
        }
        assert!(path.len() < 20_000, "walk does not terminate");
    }
    match s.violation.clone() {
        Some(v) => Err((v, path)),
        None => Ok(s),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_walks_keep_every_invariant(cfg in config(), choices in prop::collection::vec(any::<u16>(), 0..400)) {
        if let Err((v, path)) = walk(cfg, &choices) {
            prop_assert!(false, "violation: {v}\nconfig: {cfg:?}\npath: {path:?}");
        }
    }
}

/// The generator reaches the interesting states (a property that holds only
/// because its premise is never reached proves nothing).
#[test]
fn random_walks_reach_the_named_states() {
    let (mut deferred, mut during, mut deaths, mut resolved) = (0, 0, 0, 0);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..300 {
        let mut choices = Vec::new();
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            choices.push(x as u16);
        }
        let cfg = Config {
            ops_max: 8,
            allow_death: x.is_multiple_of(4),
            allow_chip_errors: x.is_multiple_of(3),
            ..Config::default()
        };
        let s = walk(cfg, &choices).expect("no violation");
        deferred += s.saw(Named::DeferredTaskDone) as u32;
        during += s.saw(Named::ControlDuringTask) as u32;
        deaths += s.saw(Named::ChildDeath) as u32;
        resolved += s.host().resolved.len();
    }
    assert!(deferred > 0 && during > 0 && deaths > 0 && resolved > 300, "{deferred} {during} {deaths} {resolved}");
}
