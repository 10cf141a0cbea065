//! Test helper for `hw/tests/process.rs`: a child that maps the memfd its
//! parent handed it (`chiplane_hw::process::inherited_shm`) and writes a u64.
//!
//! Usage: `chiplane-shm-child write|write-and-hang OFFSET VALUE
//! --chiplane-shm-fd N --chiplane-shm-len L`
//! - `write`: store VALUE (Release) at byte OFFSET, exit with code 7;
//! - `write-and-hang`: store, then block forever (the parent kills it).
//!
//! Exit codes: 7 done, 2 bad arguments, 3 cannot map the region.

use std::sync::atomic::Ordering;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, offset, value) = match (args.get(1), args.get(2), args.get(3)) {
        (Some(m), Some(o), Some(v)) => match (o.parse::<usize>(), v.parse::<u64>()) {
            (Ok(o), Ok(v)) => (m.as_str(), o, v),
            _ => std::process::exit(2),
        },
        _ => std::process::exit(2),
    };
    // SAFETY: called once, at start-up, with the arguments our parent gave:
    // the fd they name was inherited for this mapping and nothing else here
    // owns it.
    let shm = match unsafe { chiplane_hw::process::inherited_shm(args.iter().cloned()) } {
        Ok(m) => m,
        Err(e) => {
            eprintln!("chiplane-shm-child: {e}");
            std::process::exit(3);
        }
    };
    let Some(word) = shm.atomic_u64(offset) else { std::process::exit(2) };
    // Release: pairs with the parent's Acquire load of this word.
    word.store(value, Ordering::Release);
    match mode {
        "write" => std::process::exit(7),
        "write-and-hang" => loop {
            // Blocks until killed; park may return spuriously, so loop.
            std::thread::park();
        },
        _ => std::process::exit(2),
    }
}
