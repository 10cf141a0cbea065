//! `chiplane overlap` in miniature (two pairs, short C1, small C2) at L2
//! and L3, plus the L2 worker of core on the host device: the experiment
//! runs end to end, every result matches the reference, the trace names the
//! lanes of both levels.

mod common;

use chiplane_core::chip::{CallableSpec, RunConfig, TaskArgs};
use chiplane_core::conc::{L2Worker, NodeConfig};
use chiplane_core::kernels::{self, HEAVY_PREPARE, REPEAT_VECTOR_ADD};
use chiplane_hw::devices::host::HostChip;
use chiplane_hw::overlap::{self, Levels, Options};

#[test]
fn overlap_experiment_runs_at_both_levels_and_writes_a_trace() {
    let trace = std::env::temp_dir().join(format!("chiplane-overlap-test-{}.json", std::process::id()));
    let opts = Options {
        levels: Levels::Both,
        pairs: 2,
        c1_repeat: Some(50),
        c2_prepare_bytes: 1 << 20,
        n: 256,
        trace: Some(trace.clone()),
        child_exe: Some(common::child_exe()),
        ..Options::default()
    };
    let report = overlap::run(&opts).unwrap();
    assert_eq!(report.rows.len(), 4, "two levels x two delays");
    assert_eq!(report.max_diff, 0.0);
    // Per level: 2 delays x (1 warm-up pair + 2 pairs) x 4 runs.
    assert_eq!(report.runs_checked, 2 * (2 * 3 * 4));
    assert!(report.rows.iter().all(|r| r.pairs.len() == 2));
    let table = report.render();
    assert!(table.contains("| L2 | 0 ms |") && table.contains("| L3 | 2 ms |"), "{table}");
    // Every overlap trial timed C2's prepare beside C1 (the last column).
    assert!(table.contains("prepare(C2) beside C1 / alone") && table.contains("cpu steal"), "{table}");
    assert!(table.contains("runtime efficiency") && table.contains("run(C1) beside prepare(C2) / alone"), "{table}");
    for r in &report.rows {
        assert!(
            r.pairs.iter().all(|p| {
                let l = p.overlap_lanes;
                l.prepare_ns > 0
                    && l.run_c1_ns > 0
                    && p.prepare_slowdown().is_finite()
                    && p.runtime_efficiency().is_finite()
            }),
            "{r:?}"
        );
    }
    let json = std::fs::read_to_string(&trace).unwrap();
    let _ = std::fs::remove_file(&trace);
    for needle in ["run lane", "register lane", "L3 chip child", "L2 worker", "overlap, delay 2 ms"] {
        assert!(json.contains(needle), "trace lacks {needle}");
    }
}

#[test]
fn core_l2_worker_drives_the_host_device() {
    let w = L2Worker::new(HostChip::new().unwrap(), NodeConfig::default());
    let c1 = CallableSpec::chip(REPEAT_VECTOR_ADD, vec![512]);
    let c2 = CallableSpec::chip(HEAVY_PREPARE, vec![512, 2 << 20]);
    let h1 = w.register(c1.clone()).unwrap();
    let a1 = TaskArgs { tensors: vec![vec![1.0; 512], vec![0.25; 512]], scalars: vec![3000] };
    let r1 = w.run_async(h1, a1.clone(), RunConfig::default()).unwrap();
    // C2 prepares on the register lane while C1 runs; its run queues behind.
    let reg = w.register_async(c2.clone()).unwrap();
    let h2 = reg.handle();
    let a2 = TaskArgs { tensors: vec![vec![2.0; 512], vec![0.5; 512]], scalars: vec![] };
    let r2 = w.run_async(h2, a2.clone(), RunConfig::default()).unwrap();
    assert_eq!(reg.wait().unwrap(), h2);
    let (o1, o2) = (r1.wait().unwrap(), r2.wait().unwrap());
    assert_eq!(kernels::max_diff(&o1, &kernels::reference(&c1, &a1).unwrap()), 0.0);
    assert_eq!(kernels::max_diff(&o2, &kernels::reference(&c2, &a2).unwrap()), 0.0);
    w.unregister(h1).unwrap();
    w.unregister(h2).unwrap();
    assert_eq!(w.node().chip().live_artifacts(), 0);
}
