//! Every scenario of the table under shuttle: PCT (depth 3) and random
//! scheduling, fixed seeds, `CHIPLANE_SHUTTLE_ITERS` schedules each
//! (default 10,000). The full shapes: the driver thread, three registers
//! through a one-entry ring, ring wraparound, core's whole L3 worker over
//! thread children.
//!
//! Run: `RUSTFLAGS="--cfg chiplane_shuttle" CARGO_TARGET_DIR=target/shuttle cargo test -p chiplane-models --release --test shuttle`
#![cfg(chiplane_shuttle)]

use chiplane_models::{l2, l3, scenario_tests};

fn shuttle(name: &'static str, hits: &'static std::sync::atomic::AtomicUsize, body: fn() -> bool) {
    // A seed per scenario (its name's hash), fixed across runs.
    let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let f = move || chiplane_models::scenarios::record(hits, body());
    chiplane_models::harness::shuttle_pct(seed, f);
    chiplane_models::harness::shuttle_random(seed, f);
}

scenario_tests! { shuttle;
    s1_pipeline => l3::s1_pipeline(false),
    s1_pipeline_driver => l3::s1_pipeline(true),
    s1_staged => l3::s1_staged(),
    s2_done_during_control => l3::s2_done_during_control(),
    s2_unsettled_control => l3::s2_unsettled_control(),
    s3_unregister_in_flight => l2::s3_unregister_in_flight(),
    s4_unregister_while_preparing => l2::s4_unregister_while_preparing(true),
    s4_prepare_ignores_cancel => l2::s4_unregister_while_preparing(false),
    s5_sync_after_async => l2::s5_sync_after_async(),
    s6_reregister => l2::s6_reregister(),
    s6_late_completion_l3 => l3::s6_late_completion(),
    s7_concurrent_register => l2::s7_concurrent_register(),
    s8_memory_waits_for_idle => l3::s8_memory_waits_for_idle(),
    s9_child_killed => l3::s9_child_death(l3::Death::Killed, true),
    s9_monitor_poisons => l3::s9_child_death(l3::Death::MonitorPoisons, true),
    s10_cell_wait_notify => l2::s10_cell_wait_notify(),
    s11_ring_full => l3::s11_ring(1, 3).0 > 0,
    // S12: seven settlements through a two-entry ring: three wraps.
    s12_ring_wraps => l3::s11_ring(2, 7).1 >= 3,
    s14_doorbell => l3::s14_doorbell(),
    s15_driver_handover => l3::s15_driver_handover(),
    s17_inline_run => l3::s17_inline_run(),
    s18_submit_after_handover => l3::s18_submit_after_handover(),
    l3_worker_pipeline => l3::l3_worker_pipeline(),
    l3_run_queue_handoff => l3::l3_run_queue_handoff(),
    l3_call_beside_a_run => l3::l3_call_beside_a_run(),
    l3_memory_control_poisoned => { l3::l3_memory_control_poisoned(); true },
    ring_push_pop => l3::ring_push_pop(),
}
