//! The same seed gives the same trace hash; different seeds (almost always)
//! give different ones.

use std::collections::BTreeSet;

#[test]
fn same_seed_same_hash_over_300_seeds() {
    let mut distinct = BTreeSet::new();
    for seed in 0..300u64 {
        let (_, a) = chiplane_sim::run_seed(seed, false);
        let (_, b) = chiplane_sim::run_seed(seed, false);
        assert_eq!(a.hash, b.hash, "seed {seed}: trace hash differs between two runs");
        assert_eq!(a.events, b.events, "seed {seed}: event count differs");
        assert_eq!(a.virtual_ns, b.virtual_ns, "seed {seed}: virtual end time differs");
        distinct.insert(a.hash);
    }
    assert!(distinct.len() >= 295, "only {} distinct hashes over 300 seeds", distinct.len());
}

/// Recording a Chrome trace must not change the simulation.
#[test]
fn recording_spans_does_not_change_the_hash() {
    for seed in [3u64, 5, 8, 11, 42] {
        let (_, a) = chiplane_sim::run_seed(seed, false);
        let (_, b) = chiplane_sim::run_seed(seed, true);
        assert_eq!(a.hash, b.hash, "seed {seed}");
        assert!(!b.chrome.is_empty());
    }
}

/// A campaign on two threads finds the same verdicts as the seeds run alone.
#[test]
fn campaign_threads_do_not_change_verdicts() {
    let c = chiplane_sim::campaign::run(0..60, 2, false, false);
    assert_eq!(c.seeds_run, 60);
    let events: u64 = (0..60).map(|s| chiplane_sim::run_seed(s, false).1.events).sum();
    assert_eq!(c.events, events);
}
