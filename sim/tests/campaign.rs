//! A small campaign with faults on, both shapes, in plain `cargo test`.

use chiplane_sim::options::{Options, Shape};
use chiplane_sim::sched::Coverage;

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
    assert!(f(|o| o.faults.restart > 0));
    assert!(f(|o| o.chips == 2));
    assert!(all.iter().all(|o| o.chips == 1 || o.shape == Shape::L3));
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

/// Every named scenario of docs/protocol.md section 7 is reached within 500 seeds
/// (rule 12's stale answer is rarer: `regressions.rs` searches for it).
#[test]
fn every_named_scenario_is_reached() {
    let c = chiplane_sim::campaign::run(0..500, 2, false, false);
    assert!(c.failures.is_empty());
    for (i, (name, n)) in Coverage::NAMES.iter().zip(c.cov.0).enumerate() {
        if i + 1 != Coverage::STALE_ANSWER {
            assert!(n > 0, "{name} never reached in 500 seeds");
        }
    }
}

/// S13 in the simulator: chip children are restarted, and handles of the
/// other chip or of a dead incarnation are rejected as foreign (the counters
/// the campaign prints), in both one-chip and two-chip seeds.
#[test]
fn restarts_and_foreign_handle_rejections_are_reached() {
    let (mut restarts, mut rejected, mut two_chip_rejected, mut restarted_rejected) = (0, 0, 0, 0);
    for seed in 0..500u64 {
        let (opts, r) = chiplane_sim::run_seed(seed, false);
        assert_eq!(r.verdict, chiplane_sim::world::Verdict::Pass, "seed {seed}");
        let restarted = r.cov.0[Coverage::RESTART - 1];
        let foreign = r.cov.0[Coverage::FOREIGN_REJECTED - 1];
        assert_eq!(restarted, r.restarts, "seed {seed}: the counter is the report's");
        restarts += restarted;
        rejected += foreign;
        if opts.chips == 2 {
            two_chip_rejected += foreign;
        }
        if restarted > 0 {
            restarted_rejected += foreign;
        }
    }
    assert!(restarts >= 3, "restarts {restarts}");
    assert!(rejected >= 50, "foreign rejections {rejected}");
    assert!(two_chip_rejected > 0, "no handle of the other chip was rejected");
    assert!(restarted_rejected > 0, "no handle of a dead incarnation was rejected");
}
