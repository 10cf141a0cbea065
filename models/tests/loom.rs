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
//! (the driver, a monitor, a second caller) where the scenario says.
//! Shrunk where loom cannot finish with real lane threads (said per entry);
//! the full shape runs under shuttle (`tests/shuttle.rs`).
#![cfg(chiplane_loom)]

use chiplane_models::{l2, l3, scenario_tests};

fn loom(_name: &'static str, hits: &'static std::sync::atomic::AtomicUsize, body: fn() -> bool) {
    chiplane_models::harness::loom_builder(2).check(move || chiplane_models::scenarios::record(hits, body()));
}

scenario_tests! { loom;
    l3_memory_round_trip => l3::l3_memory_round_trip(),
    l3_refused_task => l3::l3_refused_task(),
    l3_register_and_run => l3::l3_register_and_run(),
    // S1 without the driver thread (the waiting caller steps the link):
    // four threads; the driver's loop is S9's and shuttle's.
    s1_pipeline => l3::s1_pipeline(false),
    s1_staged => l3::s1_staged(),
    s2_done_during_control => l3::s2_done_during_control(),
    s3_unregister_in_flight => l2::s3_unregister_in_flight(),
    s4_unregister_while_preparing => l2::s4_unregister_while_preparing(true),
    s4_prepare_ignores_cancel => l2::s4_unregister_while_preparing(false),
    s5_sync_after_async => l2::s5_sync_after_async(),
    s6_reregister => l2::s6_reregister(),
    s6_late_completion_l3 => l3::s6_late_completion(),
    s7_concurrent_register => l2::s7_concurrent_register(),
    s8_memory_waits_for_idle => l3::s8_memory_waits_for_idle(),
    s9_child_killed => l3::s9_child_death(l3::Death::Killed, true),
    s9_monitor_poisons => l3::s9_child_death(l3::Death::MonitorPoisons, false),
    s10_cell_wait_notify => l2::s10_cell_wait_notify(),
    // S11 with two registers through a one-entry ring (the third settlement
    // adds nothing loom would not see with two: the child holds one).
    s11_ring_full => l3::s11_ring(1, 2).0 > 0,
    s14_doorbell => l3::s14_doorbell(),
}
