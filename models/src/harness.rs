//! Runners shared by the model files in `models/tests/`.
//!
//! - loom: [`loom_check`] explores every interleaving (bounded by
//!   `LOOM_MAX_PREEMPTIONS` when set; CI sets 2).
//! - shuttle: [`shuttle_pct`] (PCT, depth 3) and [`shuttle_random`], both
//!   with a fixed seed and `CHIPLANE_SHUTTLE_ITERS` iterations (default
//!   10,000). A failure prints the schedule; keep it as a regression with
//!   `shuttle::replay(body, "<schedule>")`.
//!
//! Model bodies use [`small_limits`]: the slot table shrunk to 2 slots and 3
//! generations, because every slot and generation multiplies the state space
//! the checkers explore, and no L2 scenario needs more.

use chiplane_core::conc::NodeConfig;
use chiplane_core::slot::SlotLimits;
use chiplane_core::{Generation, WorkerId};

/// Shrunk limits for model checking (see the module doc).
pub fn small_limits() -> SlotLimits {
    SlotLimits { capacity: 2, generation_max: Generation(3) }
}

/// A node config for models: worker 1, shrunk limits, L2.
pub fn small_config() -> NodeConfig {
    NodeConfig { worker: WorkerId(1), limits: small_limits(), events: None }
}

/// Iterations for each shuttle scheduler (env `CHIPLANE_SHUTTLE_ITERS`).
pub fn shuttle_iterations() -> usize {
    std::env::var("CHIPLANE_SHUTTLE_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

/// Loom exploration of `body`, preemptions bounded by
/// `LOOM_MAX_PREEMPTIONS` when it is set (CI: 2), else exhaustive. For
/// models that take over a minute unbounded.
#[cfg(chiplane_loom)]
pub fn loom_check(body: impl Fn() + Sync + Send + 'static) {
    // Builder::new reads LOOM_MAX_PREEMPTIONS / LOOM_MAX_BRANCHES.
    let builder = loom::model::Builder::new();
    builder.check(body);
}

/// loom's builder for the mailbox models (reads `LOOM_*` from the
/// environment). Every waiting loop yields, so a deadlock ends as "exceeded
/// maximum number of branches". Without `LOOM_MAX_PREEMPTIONS` the bound is
/// `default_bound` (the mailbox models take over a minute unbounded).
#[cfg(chiplane_loom)]
pub fn loom_builder(default_bound: usize) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.max_branches = 10_000;
    b.preemption_bound.get_or_insert(default_bound);
    b
}

/// Exhaustive loom exploration of `body`, ignoring `LOOM_MAX_PREEMPTIONS`:
/// for models that finish unbounded in well under a minute.
#[cfg(chiplane_loom)]
pub fn loom_check_unbounded(body: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = None;
    builder.check(body);
}

/// Shuttle PCT (depth 3) with a fixed seed.
#[cfg(chiplane_shuttle)]
pub fn shuttle_pct(seed: u64, body: impl Fn() + Send + Sync + 'static) {
    let iterations = shuttle_iterations();
    let scheduler = shuttle::scheduler::PctScheduler::new_from_seed(seed, 3, iterations);
    let ran = shuttle::Runner::new(scheduler, shuttle_config()).run(body);
    assert_eq!(ran, iterations, "shuttle ran fewer schedules than asked");
}

/// Every waiting loop in the models yields; a deadlock (every thread
/// spinning on the others) ends at this step bound as a failure.
#[cfg(chiplane_shuttle)]
pub fn shuttle_config() -> shuttle::Config {
    let mut c = shuttle::Config::new();
    c.max_steps = shuttle::MaxSteps::FailAfter(100_000);
    c
}

/// Shuttle random scheduling with a fixed seed.
#[cfg(chiplane_shuttle)]
pub fn shuttle_random(seed: u64, body: impl Fn() + Send + Sync + 'static) {
    let iterations = shuttle_iterations();
    let scheduler = shuttle::scheduler::RandomScheduler::new_from_seed(seed, iterations);
    let ran = shuttle::Runner::new(scheduler, shuttle_config()).run(body);
    assert_eq!(ran, iterations, "shuttle ran fewer schedules than asked");
}
