//! The scenario table: every loom and shuttle model is one entry, run by
//! `tests/loom.rs` and `tests/shuttle.rs` (and once on std threads by
//! `tests/scenarios_std.rs`), so a new scenario is one line.
//!
//! A body is one execution; it returns whether its *named situation*
//! occurred in that execution (the S2 deferral, the S11 full ring, the S6
//! late completion, ...). The runner counts those per test (one counter per
//! test, never shared) and fails when no explored execution reached it: a
//! scenario that never reaches its state proves nothing.

/// `scenario_tests!(runner; name => body, ...)`: one `#[test]` per entry;
/// `runner(&'static str, &'static AtomicUsize, fn() -> bool)` explores it.
#[macro_export]
macro_rules! scenario_tests {
    ($runner:path; $($name:ident => $body:expr),* $(,)?) => {$(
        #[test]
        fn $name() {
            static HITS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            fn body() -> bool {
                $body
            }
            $runner(stringify!($name), &HITS, body);
            // Relaxed: read after every execution of the checker joined.
            let hits = HITS.load(std::sync::atomic::Ordering::Relaxed);
            assert!(hits > 0, "{}: the named situation never occurred in any explored execution", stringify!($name));
        }
    )*};
}

/// Count one execution's verdict (see the module doc).
pub fn record(hits: &std::sync::atomic::AtomicUsize, reached: bool) {
    if reached {
        // Relaxed: a statistic read once the checker is done.
        hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
