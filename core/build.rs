//! Mutant selection.
//!
//! `CHIPLANE_MUTANT=NAME cargo ...` compiles core with
//! `--cfg chiplane_mutant="NAME"`, which re-introduces exactly one bug that
//! the design prevents (docs/protocol.md section 8). The cfg is emitted here rather
//! than through RUSTFLAGS so that switching mutants rebuilds only core and its
//! dependents, never the dependency tree. `RUSTFLAGS=--cfg chiplane_mutant=..`
//! works as well.
const MUTANTS: &[&str] = &[
    "done_during_control",
    "running_before_copy",
    "free_while_pinned",
    "no_generation_check",
    "sync_bypasses_queue",
    "relaxed_publish",
    "lost_wakeup",
    "prepared_after_cancel",
    "memory_control_while_running",
    "shared_result_field",
    "blocking_control_wait",
    "restore_by_store",
    "relaxed_ring_tail",
    "weak_done_cas",
    "lost_lane_wake",
    "missed_doorbell",
    "stale_incarnation",
    "driver_not_rung",
    "submit_drops_handover",
    "deaf_to_restore",
    "orchestrator_not_woken",
    "inline_run_also_queued",
    "unrung_waiter",
    "claim_kept",
];

fn main() {
    println!("cargo:rerun-if-env-changed=CHIPLANE_MUTANT");
    println!("cargo:rerun-if-changed=build.rs");
    if let Ok(name) = std::env::var("CHIPLANE_MUTANT") {
        let name = name.trim();
        if name.is_empty() || name == "none" {
            return;
        }
        assert!(MUTANTS.contains(&name), "CHIPLANE_MUTANT={name} is not a known mutant; known: {MUTANTS:?}");
        println!("cargo:rustc-cfg=chiplane_mutant=\"{name}\"");
        println!("cargo:warning=chiplane-core built with mutant {name}");
    }
}
