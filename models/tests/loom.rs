//! Every scenario of the table under loom (every interleaving, preemptions
//! bounded by `LOOM_MAX_PREEMPTIONS`, CI 2; see `harness::loom_builder`).
//! The L3 scenarios run the production child (core's serve loop over
//! core's node backend with its real lane threads) and the production
//! parent (core's `Link`), sleeping on the doorbells through `LocalFutex`.
//!
//! Run: `RUSTFLAGS="--cfg chiplane_loom" CARGO_TARGET_DIR=target/loom cargo test -p chiplane-models --release --test loom`
//!
//! Threads per scenario are at most loom's five: the main thread (the
//! caller), the chip child, its run lane and its register lane, plus one
//! (a monitor, a second caller) where the scenario says.
//!
//! Shrunk where loom cannot finish with real lane threads: with lanes that
//! do work (a prepare, a run), an L3 scenario does not finish within an
//! hour even at preemption bound 1, so loom runs the L3 shapes that need no
//! lane work (a memory control round trip, one with a monitor poisoning the
//! word, a task refused before it runs) plus the ring and the doorbell on
//! their own: together they cover every memory ordering of the mailbox
//! (the publishing CAS, the TASK_DONE CAS, the ring's tail, the doorbell's
//! fences), which only loom (and miri) can see. The full L3 shapes (S1, S2,
//! S6 at L3, S8, S9, S11, S12, the whole L3 worker) run under shuttle
//! (`tests/shuttle.rs`).
#![cfg(chiplane_loom)]

use chiplane_models::{l2, l3, scenario_tests};

/// The preemption bound of each scenario under `LOOM_MAX_PREEMPTIONS=2`
/// (CI): the L3 shapes with real lane threads are explored at bound 1 (a
/// bound of 2 takes minutes to hours each with five threads); their full
/// shapes run under shuttle.
fn bound(name: &str) -> usize {
    let ci = std::env::var("LOOM_MAX_PREEMPTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    match name {
        "s6_reregister"
        | "s7_concurrent_register"
        | "l3_memory_round_trip"
        | "l3_refused_task"
        | "l3_memory_control_poisoned" => ci.min(1),
        _ => ci,
    }
}

fn loom(name: &'static str, hits: &'static std::sync::atomic::AtomicUsize, body: fn() -> bool) {
    let mut b = chiplane_models::harness::loom_builder(2);
    b.preemption_bound = Some(bound(name));
    b.check(move || chiplane_models::scenarios::record(hits, body()));
}

scenario_tests! { loom;
    l3_memory_round_trip => l3::l3_memory_round_trip(),
    l3_memory_control_poisoned => { l3::l3_memory_control_poisoned(); true },
    l3_refused_task => l3::l3_refused_task(),
    ring_push_pop => { l3::ring_push_pop(); true },
    s3_unregister_in_flight => l2::s3_unregister_in_flight(),
    s4_unregister_while_preparing => l2::s4_unregister_while_preparing(true),
    s4_prepare_ignores_cancel => l2::s4_unregister_while_preparing(false),
    s5_sync_after_async => l2::s5_sync_after_async(),
    s6_reregister => l2::s6_reregister(),
    s7_concurrent_register => l2::s7_concurrent_register(),
    s10_cell_wait_notify => l2::s10_cell_wait_notify(),
    s14_doorbell => l3::s14_doorbell(),
}
