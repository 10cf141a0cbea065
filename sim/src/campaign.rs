//! Campaigns: many seeds on `jobs` threads, one seed per thread at a time.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::world::Verdict;

/// What a campaign found.
#[derive(Debug, Default)]
pub struct Campaign {
    pub seeds_run: u64,
    pub counts: BTreeMap<&'static str, u64>,
    /// Failing seeds (sorted) with their verdicts.
    pub failures: Vec<(u64, Verdict)>,
    pub events: u64,
    pub elapsed: Duration,
    pub cov: crate::sched::Coverage,
}

impl Campaign {
    pub fn first_failure(&self) -> Option<u64> {
        self.failures.first().map(|f| f.0)
    }

    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Run `seeds` on `jobs` threads. With `stop_on_failure` the campaign stops
/// claiming seeds at the first failure; every seed claimed before it is
/// still finished, so the smallest failing seed reported is exact.
pub fn run(seeds: Range<u64>, jobs: usize, stop_on_failure: bool, progress: bool) -> Campaign {
    let next = AtomicU64::new(seeds.start);
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let out = Mutex::new(Campaign::default());
    let total = seeds.end.saturating_sub(seeds.start);
    let start = Instant::now();
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                let mut local = Campaign::default();
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // Pairs with nothing: a plain ticket counter.
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        break;
                    }
                    let (_, r) = crate::run_seed(seed, false);
                    local.seeds_run += 1;
                    local.events += r.events;
                    local.cov.add(&r.cov);
                    *local.counts.entry(r.verdict.label()).or_insert(0) += 1;
                    if r.verdict != Verdict::Pass {
                        local.failures.push((seed, r.verdict));
                        if stop_on_failure {
                            // Relaxed: a hint to stop claiming; the join below
                            // publishes every result.
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                o.seeds_run += local.seeds_run;
                o.events += local.events;
                o.cov.add(&local.cov);
                for (k, v) in local.counts {
                    *o.counts.entry(k).or_insert(0) += v;
                }
                o.failures.extend(local.failures);
            });
        }
        if progress {
            s.spawn(|| {
                let mut err = std::io::stderr();
                loop {
                    let d = done.load(Ordering::Relaxed);
                    let width = 40u64;
                    let filled = (d * width).checked_div(total).unwrap_or(width) as usize;
                    let _ = write!(
                        err,
                        "\r[{}{}] {d}/{total} seeds, {:.1}s",
                        "#".repeat(filled),
                        "-".repeat(width as usize - filled),
                        start.elapsed().as_secs_f64()
                    );
                    let _ = err.flush();
                    if d >= total || stop.load(Ordering::Relaxed) {
                        let _ = writeln!(err);
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        }
    });
    std::panic::set_hook(quiet);
    let mut c = out.into_inner().unwrap_or_else(|e| e.into_inner());
    c.elapsed = start.elapsed();
    c.failures.sort_by_key(|f| f.0);
    c
}
