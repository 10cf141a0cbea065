//! The overlap experiment reaches its ideal in virtual time (deterministic:
//! not a timed assertion).

use chiplane_sim::options::Shape;
use chiplane_sim::overlap;

#[test]
fn overlap_efficiency_at_least_0_999_at_l2_and_l3() {
    let mut chrome = Vec::new();
    let rows = overlap::experiment(0, 5, &[Shape::L2, Shape::L3], &mut chrome).expect("experiment runs");
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert!(r.efficiency_min >= 0.999, "{r:?}");
        assert!(r.overlap_ns < r.serial_ns, "{r:?}");
        assert!(r.overlap_ns >= r.ideal_ns, "faster than ideal: {r:?}");
    }
    // L2 has no mailbox: exactly ideal.
    for r in rows.iter().filter(|r| r.shape == Shape::L2) {
        assert_eq!(r.overlap_ns, r.ideal_ns, "{r:?}");
    }
    assert!(!chrome.is_empty());
}

/// The serial path is what the formula says (plus the mailbox's cost at L3).
#[test]
fn serial_path_matches_the_formula_at_l2() {
    for delay in [0, 2_000_000] {
        let lat = overlap::latencies(Shape::L2);
        let (s, _) = overlap::trial(Shape::L2, overlap::Mode::Serial, delay, lat, false).unwrap();
        assert_eq!(s, lat.0 + delay + lat.1 + lat.2);
    }
}
