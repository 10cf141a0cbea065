//! The original feature's L3 usage, on a chip child process, from the crate root only.
//! `cargo run --release -p chiplane-hw --example seed_l3` (one binary: the child is this program).
use chiplane_hw::{CallableSpec, L3Config, RunConfig, TaskArgs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    chiplane_hw::init(); // in the chip child this serves the mailbox and never returns
    let worker = L3Config::default().start()?;
    let n = 4096;
    let args = move |a: f32, b: f32, scalars| TaskArgs { tensors: vec![vec![a; n], vec![b; n]], scalars };
    let h1 = worker.register(CallableSpec::chip("repeat_vector_add", vec![n as u64]))?;
    let cfg = RunConfig::default();
    let run_h = worker.run_async(move |o| o.submit(h1, args(1.0, 0.5, vec![20_000]), cfg));
    // C2 is prepared on the register lane while C1 runs on the run lane.
    let h2 = worker.register_async(CallableSpec::chip("vector_add", vec![n as u64]))?.wait()?;
    let c1_running = !run_h.is_ready();
    let c2 = worker.run(move |o| o.submit(h2, args(2.0, 3.0, vec![]), cfg));
    let c1 = run_h.wait();
    worker.unregister_async(h2)?.wait()?;
    worker.unregister(h1)?;
    let (c1, c2) = (c1.task(&c1.value.clone()?).clone()?, c2.task(&c2.value.clone()?).clone()?);
    println!("C2 registered while C1 was still running: {c1_running}");
    println!("C1[0] = {} (1 + 20000 * 0.5), C2[0] = {} (2 + 3)", c1.tensors[0][0], c2.tensors[0][0]);
    Ok(())
}
