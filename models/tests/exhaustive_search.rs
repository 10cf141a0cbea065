//! The exhaustive search itself: a cut search is reported as truncated (and
//! fails `bin/exhaustive`), and the parallel search visits exactly the
//! states the sequential one does.

use chiplane_models::exhaustive::{explore, Bounds, Cut};
use chiplane_models::system::Config;
use std::process::Command;
use std::time::Duration;

fn small() -> Config {
    Config { ops_max: 2, allow_death: true, ..Config::default() }
}

#[test]
fn each_bound_truncates_the_search() {
    let full = explore(small(), Bounds::default());
    assert!(full.truncated.is_empty() && full.violation.is_none(), "{full:?}");
    assert!(full.states > 1000, "the small configuration has {} states", full.states);

    let r = explore(small(), Bounds { states_max: 500, ..Bounds::default() });
    assert_eq!(r.truncated, vec![Cut::States]);
    assert!(r.states < full.states);

    let r = explore(small(), Bounds { depth_max: 10, ..Bounds::default() });
    assert_eq!(r.truncated, vec![Cut::Depth]);
    assert!(r.states < full.states);

    let r = explore(small(), Bounds { time_max: Duration::ZERO, ..Bounds::default() });
    assert_eq!(r.truncated, vec![Cut::Time]);
}

#[test]
fn two_threads_visit_the_same_states_as_one() {
    let cfg = Config { ops_max: 3, ..Config::default() };
    let one = explore(cfg, Bounds { threads: 1, ..Bounds::default() });
    let two = explore(cfg, Bounds { threads: 2, ..Bounds::default() });
    assert!(one.violation.is_none() && two.violation.is_none());
    assert_eq!((one.states, one.transitions, one.terminal), (two.states, two.transitions, two.terminal));
    assert_eq!(one.reached, two.reached);
}

/// `bin/exhaustive` fails and says TRUNCATED when a bound cut the search.
#[test]
fn the_binary_fails_on_a_truncated_search() {
    let out = Command::new(env!("CARGO_BIN_EXE_exhaustive"))
        .args(["--only", "ops4", "--states-max", "1000"])
        .output()
        .expect("run bin/exhaustive");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "a truncated search passed:\n{text}");
    assert!(text.contains("TRUNCATED"), "{text}");
}
