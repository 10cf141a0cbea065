//! Every scenario of the table on std threads (plain `cargo test`): each
//! body a few times, so a broken body shows up before the checkers run it.
#![cfg(not(any(chiplane_loom, chiplane_shuttle)))]

use chiplane_models::{l2, l3, scenario_tests};

fn repeat(_name: &'static str, hits: &'static std::sync::atomic::AtomicUsize, body: fn() -> bool) {
    for _ in 0..20 {
        chiplane_models::scenarios::record(hits, body());
    }
}

scenario_tests! { repeat;
    s1_pipeline => l3::s1_pipeline(false),
    s1_pipeline_driver => l3::s1_pipeline(true),
    s1_staged => l3::s1_staged(),
    s2_done_during_control => { l3::s2_done_during_control(); true },
    s2_unsettled_control => { l3::s2_unsettled_control(); true },
    s3_unregister_in_flight => l2::s3_unregister_in_flight(),
    s4_unregister_while_preparing => { l2::s4_unregister_while_preparing(true); l2::s4_unregister_while_preparing(false); true },
    s5_sync_after_async => l2::s5_sync_after_async(),
    s6_reregister => l2::s6_reregister(),
    s6_late_completion_l3 => l3::s6_late_completion(),
    s7_concurrent_register => l2::s7_concurrent_register(),
    s8_memory_waits_for_idle => l3::s8_memory_waits_for_idle(),
    s9_child_killed => { l3::s9_child_death(l3::Death::Killed, true); true },
    s9_monitor_poisons => { l3::s9_child_death(l3::Death::MonitorPoisons, false); true },
    s10_cell_wait_notify => l2::s10_cell_wait_notify(),
    s11_ring_full => { l3::s11_ring(1, 3); true },
    s12_ring_wraps => l3::s11_ring(2, 7).1 >= 3,
    s14_doorbell => { l3::s14_doorbell(); true },
    s17_inline_run => l3::s17_inline_run(),
    l3_worker_pipeline => l3::l3_worker_pipeline(),
    l3_run_queue_handoff => l3::l3_run_queue_handoff(),
    l3_call_beside_a_run => l3::l3_call_beside_a_run(),
    l3_memory_round_trip => l3::l3_memory_round_trip(),
    l3_memory_control_poisoned => { l3::l3_memory_control_poisoned(); true },
    l3_refused_task => l3::l3_refused_task(),
    l3_register_and_run => l3::l3_register_and_run(),
    ring_push_pop => { l3::ring_push_pop(); true },
}
