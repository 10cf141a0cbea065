//! Regressions: each failure found during development, kept as a test.

use chiplane_sim::options::Options;
use chiplane_sim::world::Verdict;

/// L3: a run through a fabricated handle whose generation was issued only
/// after the submission was pinned successfully by the child (correctly),
/// but the checker took the expected callable at submission, not at the pin,
/// and reported a false "run through a handle that names no callable"
/// (seeds 34, 375, 500, ... of the first options generator). Fixed by
/// `Note::Pinned`. The seeds that reach this case move whenever the options
/// generator changes, so the test finds them: there must be some, and they
/// must pass.
#[test]
fn l3_run_checked_against_callable_at_pin_time() {
    let mut found = Vec::new();
    for seed in 0..3000u64 {
        let (opts, r) = chiplane_sim::run_seed(seed, false);
        if r.renamed_runs > 0 {
            assert_eq!(r.verdict, Verdict::Pass, "seed {seed}\n{opts}");
            found.push(seed);
        }
        if found.len() >= 5 {
            break;
        }
    }
    assert!(!found.is_empty(), "no seed reaches a run renamed between submission and pin");
}

/// The liveness checker has teeth: a run completion lost by the (planted,
/// test-only) driver bug leaves a handle unresolved, at L2 and at L3.
#[test]
fn a_lost_completion_is_a_liveness_failure() {
    let mut shapes = std::collections::BTreeSet::new();
    for seed in 0..200u64 {
        let mut opts = Options::from_seed(seed, chiplane_sim::SHAPES);
        let clean = chiplane_sim::run_options(opts.clone(), false);
        if clean.runs == 0 || clean.deaths > 0 {
            continue;
        }
        opts.planted_lost_completion = true;
        let r = chiplane_sim::run_options(opts.clone(), false);
        assert!(matches!(r.verdict, Verdict::Liveness(_)), "seed {seed} {:?}: {:?}", opts.shape, r.verdict);
        shapes.insert(format!("{:?}", opts.shape));
    }
    assert_eq!(shapes.len(), 2, "both shapes exercised: {shapes:?}");
}

/// L3 with one child death: the parent endpoint handed out a `Cas` (or a
/// `Read`, or a `Write` + `Cas`), the simulator queued it, then `ChildGone`
/// arrived; the stale output ran against the word and its answer was
/// refused ("CasResult without a Cas", "ReadResult without a Read"). Found
/// by `campaign --seeds 0..1000000` (57 of 1,000,000 seeds). Fixed by rule
/// 12 in the parent endpoint: once poisoned or gone it withdraws queued
/// memory outputs and ignores answers to outputs it issued before. The
/// seeds that reach the case move whenever the simulator changes, so the
/// test finds them (the rule-12 coverage counter): there must be some, and
/// they must pass.
#[test]
fn parent_ignores_answers_to_stale_outputs_after_child_death() {
    let mut found = Vec::new();
    for seed in 0..40_000u64 {
        let opts = Options::from_seed(seed, chiplane_sim::SHAPES);
        if opts.faults.child_death == 0 {
            continue;
        }
        let r = chiplane_sim::run_options(opts.clone(), false);
        if r.cov.0[chiplane_sim::sched::Coverage::STALE_ANSWER - 1] > 0 {
            assert_eq!(r.verdict, Verdict::Pass, "seed {seed}\n{opts}");
            assert!(r.deaths > 0, "seed {seed}: a stale answer without a child death");
            found.push(seed);
        }
        if found.len() >= 3 {
            break;
        }
    }
    assert!(!found.is_empty(), "no seed reaches an answer to a parent output issued before the child was gone");
}
