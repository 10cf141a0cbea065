//! Fixed-seed regressions: each seed here failed once during development;
//! the comment says why. They must keep passing.

fn pass(seed: u64) {
    let (opts, r) = chiplane_sim::run_seed(seed, false);
    assert_eq!(r.verdict, chiplane_sim::world::Verdict::Pass, "seed {seed}\n{opts}");
}

/// L3: a run through a fabricated handle whose generation was issued only
/// later was pinned successfully by the child (correctly), but the checker
/// had taken the expected callable at submission, not at the pin: a false
/// "run through a handle that names no callable". Fixed by `Note::Pinned`.
#[test]
fn l3_run_checked_against_callable_at_pin_time() {
    for seed in [34, 375, 500, 581, 634, 928, 1103, 1134, 1153, 1331] {
        pass(seed);
    }
}
