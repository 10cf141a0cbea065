//! Campaigns: many seeds on `jobs` threads, one seed per thread at a time,
//! with an `indicatif` progress bar on stderr (drawn only when stderr is a
//! terminal and `progress` is asked for).

use std::collections::BTreeMap;
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
    /// Events already counted in the progress message (per thread).
    events_reported: u64,
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
    let events_done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let out = Mutex::new(Campaign::default());
    let total = seeds.end.saturating_sub(seeds.start);
    let start = Instant::now();
    let bar = if progress {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} seeds ({per_sec}, eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("#>-"),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                let mut local = Campaign::default();
                let mut since_update = 0u64;
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
                    since_update += 1;
                    if since_update == 64 {
                        // Relaxed: a statistic for the progress message.
                        let ev = events_done.fetch_add(local.events, Ordering::Relaxed) + local.events;
                        local.events_reported += local.events;
                        local.events = 0;
                        bar.inc(since_update);
                        since_update = 0;
                        let rate = ev as f64 / start.elapsed().as_secs_f64().max(1e-9);
                        bar.set_message(format!("{:.2}M events/s", rate / 1e6));
                    }
                }
                bar.inc(since_update);
                local.events += local.events_reported;
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
    });
    bar.finish_and_clear();
    std::panic::set_hook(quiet);
    let mut c = out.into_inner().unwrap_or_else(|e| e.into_inner());
    c.elapsed = start.elapsed();
    c.failures.sort_by_key(|f| f.0);
    c
}
