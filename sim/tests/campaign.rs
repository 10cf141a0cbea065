//! A small campaign with faults on, both shapes, in plain `cargo test`.

use chiplane_sim::options::{Options, Shape};

#[test]
fn campaign_200_seeds_passes() {
    let c = chiplane_sim::campaign::run(0..200, 2, false, false);
    assert_eq!(c.seeds_run, 200);
    assert!(c.failures.is_empty(), "failures: {:?}", &c.failures[..c.failures.len().min(3)]);
}

/// The swarm options really vary: both shapes, faults on and off, small and
/// larger tables, all within 200 seeds.
#[test]
fn options_cover_both_shapes_and_every_fault() {
    let all: Vec<Options> = (0..200).map(|s| Options::from_seed(s, chiplane_sim::SHAPES)).collect();
    assert!(all.iter().any(|o| o.shape == Shape::L2));
    assert!(all.iter().any(|o| o.shape == Shape::L3));
    let f = |p: fn(&Options) -> bool| all.iter().any(p) && !all.iter().all(p);
    assert!(f(|o| o.faults.prepare_fail > 0));
    assert!(f(|o| o.faults.run_fail > 0));
    assert!(f(|o| o.faults.cancel_missed > 0));
    assert!(f(|o| o.faults.replay_completion > 0));
    assert!(f(|o| o.faults.slow_lane > 0));
    assert!(f(|o| o.faults.child_death > 0));
    assert!(f(|o| o.faults.word_delay_max_ns > 0));
    assert!(f(|o| o.capacity == 1));
    assert!(f(|o| o.generation_max <= 4));
}

/// Faults actually happen and the interesting paths are reached.
#[test]
fn faults_and_paths_are_exercised() {
    let mut stale = 0;
    let mut runs = 0;
    for seed in 0..200 {
        let (_, r) = chiplane_sim::run_seed(seed, false);
        stale += r.stale_completions;
        runs += r.runs;
    }
    assert!(stale > 0, "no stale completion was ever replayed");
    assert!(runs > 1000, "only {runs} runs in 200 seeds");
}

/// Every named scenario of design.md section 7 is reached within 500 seeds.
#[test]
fn every_named_scenario_is_reached() {
    let c = chiplane_sim::campaign::run(0..500, 2, false, false);
    assert!(c.failures.is_empty());
    for (name, n) in chiplane_sim::sched::Coverage::NAMES.iter().zip(c.cov.0) {
        assert!(n > 0, "{name} never reached in 500 seeds");
    }
}
