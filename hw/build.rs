//! Compiles `kernels/kernels.c` into `$OUT_DIR/libchiplane_kernels.so` with
//! the C compiler the `cc` crate finds, and bakes its path into the crate as
//! `CHIPLANE_KERNELS_SO` (the host device reads the env var of that name at
//! run time first, so an installed copy can be used instead).
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=kernels/kernels.c");
    println!("cargo:rerun-if-changed=build.rs");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let so = out_dir.join("libchiplane_kernels.so");
    let compiler = cc::Build::new().opt_level(2).get_compiler();
    let mut cmd: Command = compiler.to_command();
    // No -ffast-math: the kernels must reproduce the reference bit for bit.
    cmd.args(["-shared", "-fPIC", "-O2", "-fno-fast-math", "-ffp-contract=off", "-o"])
        .arg(&so)
        .arg("kernels/kernels.c");
    let status = cmd.status().unwrap_or_else(|e| panic!("could not run the C compiler {:?}: {e}", compiler.path()));
    assert!(status.success(), "compiling kernels/kernels.c failed: {status}");
    println!("cargo:rustc-env=CHIPLANE_KERNELS_SO={}", so.display());
}
