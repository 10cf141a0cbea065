//! The `host` device: the kernel catalogue (`chiplane_core::kernels`) run on
//! the CPU through a shared library that every prepare loads afresh.
//!
//! What a prepare does (register lane), polling the cancel probe between
//! steps and inside the long touch loop:
//! 1. validate the spec (`Kernel::from_spec`) -> `InvalidSpec`;
//! 2. copy the kernel library's bytes into a private anonymous file
//!    (`memfd_create`), so every prepare is its own load: the dynamic loader
//!    maps and relocates it again (`dlopen(RTLD_NOW | RTLD_LOCAL)` of
//!    `/proc/self/fd/N`). The memfd stays open as long as the library is
//!    loaded, so no two live artifacts share a path (glibc would otherwise
//!    hand back the already-loaded object of the same name);
//! 3. check the library's ABI version and resolve the kernel's symbol;
//! 4. `heavy_prepare` only: map `prepare_bytes` of fresh anonymous memory
//!    and write a pattern into every byte, faulting in every page (in 1 MiB
//!    steps, polling cancel between steps);
//! 5. warm up: one call of the kernel on small inputs whose result is
//!    checked, and (`heavy_prepare`) a full read-back of the pattern.
//!
//! `bind_lane` keeps each lane thread to its own half of the process's CPUs
//! (`crate::tune::LaneCpus`: the run lane and the register lane are two CPU
//! threads that must not queue behind each other) and makes it a
//! `SCHED_BATCH` thread (waking it never preempts the thread that woke it).
//!
//! `run` (run lane) validates the args (`check_args` -> `InvalidArgs`),
//! allocates the output and calls the kernel through the resolved pointer.
//! `release` drops the artifact: the buffer is freed, the library unloaded
//! (`dlclose`) and then the memfd closed.
//!
//! Concurrency: `HostChip` holds only immutable bytes and counters (atomics
//! with `Relaxed` ordering: they are statistics, nothing is published through
//! them), and every artifact owns everything it uses, so `prepare` and `run`
//! may be called from two threads at once with no shared mutable map.
//!
//! Measured costs (`cargo run -p chiplane-hw --example host_timings 41`,
//! dev profile, kernels built -O2, medians of 41 trials on the 2-core CI
//! machine while other builds ran, load average 7-8; two runs):
//!
//! | callable | prepare | run |
//! |---|---|---|
//! | `vector_add` n=4096 | 44 us | 1.7 us |
//! | `repeat_vector_add` n=4096, repeat 1000 | 57-82 us | 2.3 ms |
//! | `repeat_vector_add` n=4096, repeat 10000 | 143-148 us | 35-44 ms |
//! | `heavy_prepare` n=4096, 4 MiB | 2.2-2.4 ms | 4-5 us |
//! | `heavy_prepare` n=4096, 8 MiB | 4.6-8.5 ms | 6 us |
//! | `heavy_prepare` n=4096, 16 MiB | 13.6-17.6 ms | 7 us |
//!
//! A prepare without buffer costs ~45 us (memfd copy, dlopen, symbol
//! lookup, warm-up); `heavy_prepare` adds ~0.55-1 ms per MiB (page faults
//! plus the pattern write and read-back). [`OVERLAP_DEMO_PREPARE_BYTES`]
//! (8 MiB) gives the 5-10 ms prepare the overlap demo wants.
//!
//! The library is found at `$CHIPLANE_KERNELS_SO` (run time) or else at the
//! path `hw/build.rs` baked in when it compiled `kernels/kernels.c`.

use chiplane_core::chip::{
    CallableSpec, CancelProbe, Chip, ChipError, ChipErrorKind, LaneKind, RunConfig, RunOutput, TaskArgs,
};
use chiplane_core::kernels::Kernel;
use std::ffi::CStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::tune::LaneCpus;

/// Environment variable naming the kernel library at run time.
pub const KERNELS_SO_ENV: &str = "CHIPLANE_KERNELS_SO";
/// The library built by `hw/build.rs`.
pub const BUILT_KERNELS_SO: &str = env!("CHIPLANE_KERNELS_SO");
/// ABI version the library must report (`chiplane_kernels_abi`).
pub const KERNELS_ABI: u32 = 1;
/// `prepare_bytes` of the overlap demo's C2 (`heavy_prepare`): about 5-10
/// ms of prepare on the 2-core machine (see the table in the module doc).
pub const OVERLAP_DEMO_PREPARE_BYTES: u64 = 8 << 20;
/// Bytes touched between two polls of the cancel probe in `heavy_prepare`.
pub const TOUCH_STEP_BYTES: usize = 1 << 20;

type AbiFn = unsafe extern "C" fn() -> u32;
type VectorAddFn = unsafe extern "C" fn(*const f32, *const f32, *mut f32, usize);
type RepeatVectorAddFn = unsafe extern "C" fn(*const f32, *const f32, *mut f32, usize, u64);
type FillPatternFn = unsafe extern "C" fn(*mut u8, usize, usize);
type CheckPatternFn = unsafe extern "C" fn(*const u8, usize) -> usize;

fn device_err(detail: impl Into<String>) -> ChipError {
    ChipError::new(ChipErrorKind::Device, detail)
}

/// A loader error as a `Device` error whose detail carries the loader's own
/// reason (the `dlerror()` text): libloading's `Display` says only "dlopen
/// failed" / "dlsym failed" and keeps that text in `source()`.
fn loader_err(what: impl std::fmt::Display, e: &libloading::Error) -> ChipError {
    match std::error::Error::source(e) {
        Some(reason) => device_err(format!("{what}: {e}: {reason}")),
        None => device_err(format!("{what}: {e}")),
    }
}

fn cancelled(step: &str) -> ChipError {
    ChipError::new(ChipErrorKind::Cancelled, format!("prepare cancelled {step}"))
}

/// The host CPU device.
#[derive(Debug)]
pub struct HostChip {
    so_path: PathBuf,
    so_bytes: Vec<u8>,
    prepares: AtomicU64,
    releases: AtomicU64,
    /// The lanes' CPUs (`bind_lane`), split when the device is made.
    lane_cpus: LaneCpus,
}

impl HostChip {
    /// The device using `$CHIPLANE_KERNELS_SO`, or else the library built
    /// with this crate. Fails with `Device` when the library cannot be read.
    pub fn new() -> Result<Self, ChipError> {
        match std::env::var_os(KERNELS_SO_ENV) {
            Some(p) if !p.is_empty() => Self::with_library(Path::new(&p)),
            _ => Self::with_library(Path::new(BUILT_KERNELS_SO)),
        }
    }

    /// The device using the kernel library at `path`. The bytes are read
    /// once here; each prepare loads its own private copy of them.
    pub fn with_library(path: &Path) -> Result<Self, ChipError> {
        let so_bytes = std::fs::read(path)
            .map_err(|e| device_err(format!("cannot read kernel library {}: {e}", path.display())))?;
        Ok(HostChip {
            so_path: path.to_path_buf(),
            so_bytes,
            prepares: AtomicU64::new(0),
            releases: AtomicU64::new(0),
            lane_cpus: LaneCpus::of_this_thread(),
        })
    }

    /// The same device with its lane split turned by `chip` (chip `i` of a
    /// worker: an odd one gives its run lane the CPUs the even ones give
    /// their register lanes), so two chips' run lanes do not share CPUs.
    pub fn with_lane_turn(mut self, chip: usize) -> Self {
        self.lane_cpus = self.lane_cpus.turned(chip);
        self
    }

    /// Path of the kernel library this device loads.
    pub fn library_path(&self) -> &Path {
        &self.so_path
    }

    /// Artifacts returned by `prepare` and not yet released.
    pub fn live_artifacts(&self) -> u64 {
        // Relaxed: a statistic; pairs with the Relaxed increments in
        // `prepare` (fetch_add on `prepares`) and `release` (on `releases`).
        self.prepares.load(Ordering::Relaxed).saturating_sub(self.releases.load(Ordering::Relaxed))
    }

    fn load_library(&self) -> Result<LoadedLibrary, ChipError> {
        // SAFETY: memfd_create takes a NUL-terminated name and flags; it
        // returns a new fd or -1, checked below.
        let raw = unsafe { libc::memfd_create(c"chiplane-kernels".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(device_err(format!("memfd_create: {}", std::io::Error::last_os_error())));
        }
        // SAFETY: `raw` is a fresh fd we own exclusively.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut file = File::from(fd);
        file.write_all(&self.so_bytes).map_err(|e| device_err(format!("writing kernel library copy: {e}")))?;
        let fd = OwnedFd::from(file);
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        // SAFETY: loading runs the library's initialisers; ours (kernels.c)
        // has none, and the bytes are the library this crate built (or the
        // one its operator named in CHIPLANE_KERNELS_SO).
        let lib = unsafe {
            libloading::os::unix::Library::open(
                Some(&path),
                libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL,
            )
        }
        .map_err(|e| loader_err("dlopen of kernel library copy", &e))?;
        Ok(LoadedLibrary { lib, _memfd: fd })
    }
}

/// A loaded private copy of the kernel library. Field order matters: the
/// library is unloaded before its memfd is closed.
struct LoadedLibrary {
    lib: libloading::os::unix::Library,
    _memfd: OwnedFd,
}

impl LoadedLibrary {
    fn symbol<T: Copy>(&self, name: &CStr) -> Result<T, ChipError> {
        // SAFETY: every `T` used with this names the C signature of the
        // symbol in kernels.c (see the type aliases above); the copied
        // pointer is only called while `self.lib` is loaded, since the
        // artifact owns both.
        let sym = unsafe { self.lib.get::<T>(name.to_bytes_with_nul()) }
            .map_err(|e| loader_err(format_args!("symbol {name:?}"), &e))?;
        Ok(*sym)
    }
}

/// The `heavy_prepare` buffer: a private anonymous mapping of its own, so
/// every prepare gets fresh (not yet resident) pages to touch, whatever the
/// allocator would have recycled; unmapped on drop.
struct PrepareBuffer {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone; it is written only
// during prepare (through `&mut`-free raw pointer use before the artifact
// exists) and never touched again until drop.
unsafe impl Send for PrepareBuffer {}
// SAFETY: as above: shared references never access the bytes.
unsafe impl Sync for PrepareBuffer {}

impl PrepareBuffer {
    fn map(len: usize) -> Result<PrepareBuffer, ChipError> {
        if len == 0 {
            return Ok(PrepareBuffer { ptr: std::ptr::NonNull::dangling().as_ptr(), len: 0 });
        }
        // SAFETY: a fresh private anonymous mapping chosen by the kernel;
        // the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(device_err(format!("mapping {len} prepare bytes: {}", std::io::Error::last_os_error())));
        }
        Ok(PrepareBuffer { ptr: p.cast(), len })
    }
}

impl Drop for PrepareBuffer {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: `ptr..ptr+len` is the mapping made in `map`, unmapped
            // once, here.
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
        }
    }
}

#[derive(Clone, Copy)]
enum Entry {
    VectorAdd(VectorAddFn),
    RepeatVectorAdd(RepeatVectorAddFn),
}

/// A prepared host callable: its own loaded library, the resolved kernel
/// and (for `heavy_prepare`) the touched prepare buffer.
pub struct HostArtifact {
    kernel: Kernel,
    entry: Entry,
    prepare_buffer: Option<PrepareBuffer>,
    // Declared last: dropped after everything that points into it.
    _library: LoadedLibrary,
}

impl std::fmt::Debug for HostArtifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostArtifact")
            .field("kernel", &self.kernel)
            .field("prepare_buffer_bytes", &self.prepare_buffer_bytes())
            .finish_non_exhaustive()
    }
}

impl HostArtifact {
    /// The validated kernel this artifact runs.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Bytes of the touched prepare buffer (0 unless `heavy_prepare`).
    pub fn prepare_buffer_bytes(&self) -> usize {
        self.prepare_buffer.as_ref().map_or(0, |b| b.len)
    }

    fn call(&self, a: &[f32], b: &[f32], repeat: u64) -> Vec<f32> {
        let n = a.len();
        assert!(b.len() == n, "caller checked the lengths");
        let mut c = vec![0.0f32; n];
        match self.entry {
            // SAFETY: `a`, `b` and `c` are valid for `n` f32 each and do
            // not overlap (`c` is fresh); the pointer came from the library
            // `self.library` keeps loaded.
            Entry::VectorAdd(f) => unsafe { f(a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), n) },
            // SAFETY: as above; `repeat` is a plain count.
            Entry::RepeatVectorAdd(f) => unsafe { f(a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), n, repeat) },
        }
        c
    }
}

impl Chip for HostChip {
    type Prepared = HostArtifact;

    fn name(&self) -> &str {
        "host"
    }

    /// The run lane and the register lane of the host device are two CPU
    /// threads: each is kept to its own half of the process's CPUs
    /// ([`LaneCpus`]), as a real device's run and prepare paths are
    /// separate engines, and runs as a `SCHED_BATCH` thread, so waking it
    /// never preempts the caller that woke it. `CHIPLANE_LANE_AFFINITY=0`
    /// turns both off.
    fn bind_lane(&self, lane: LaneKind) -> Result<(), ChipError> {
        self.lane_cpus.bind(lane);
        Ok(())
    }

    fn prepare(&self, spec: &CallableSpec, cancel: &dyn CancelProbe) -> Result<HostArtifact, ChipError> {
        let kernel = Kernel::from_spec(spec)?;
        if cancel.is_cancelled() {
            return Err(cancelled("before loading"));
        }
        let library = self.load_library()?;
        if cancel.is_cancelled() {
            return Err(cancelled("after loading"));
        }
        let abi: AbiFn = library.symbol(c"chiplane_kernels_abi")?;
        // SAFETY: `chiplane_kernels_abi` takes nothing and returns a u32.
        let abi_version = unsafe { abi() };
        if abi_version != KERNELS_ABI {
            return Err(device_err(format!("kernel library ABI {abi_version}, expected {KERNELS_ABI}")));
        }
        let entry = match kernel {
            Kernel::VectorAdd { .. } | Kernel::HeavyPrepare { .. } => {
                Entry::VectorAdd(library.symbol(c"chiplane_vector_add")?)
            }
            Kernel::RepeatVectorAdd { .. } => Entry::RepeatVectorAdd(library.symbol(c"chiplane_repeat_vector_add")?),
        };
        if cancel.is_cancelled() {
            return Err(cancelled("after resolving"));
        }
        let mut prepare_buffer = None;
        if let Kernel::HeavyPrepare { prepare_bytes, .. } = kernel {
            let len = usize::try_from(prepare_bytes).map_err(|_| device_err("prepare_bytes exceeds usize"))?;
            let fill: FillPatternFn = library.symbol(c"chiplane_fill_pattern")?;
            let buf = PrepareBuffer::map(len)?;
            // The fresh mapping's pages are not resident yet: the fill below
            // writes every byte, faulting every page in, step by step.
            let mut start = 0;
            while start < len {
                if cancel.is_cancelled() {
                    return Err(cancelled("while touching the prepare buffer"));
                }
                let end = len.min(start + TOUCH_STEP_BYTES);
                // SAFETY: `start..end` lies inside the `len` bytes of the
                // page-aligned mapping `buf`, which nothing else uses.
                unsafe { fill(buf.ptr, start, end) };
                start = end;
            }
            let check: CheckPatternFn = library.symbol(c"chiplane_check_pattern")?;
            // SAFETY: the mapping is valid for `len` bytes.
            let bad = unsafe { check(buf.ptr, len) };
            if bad != 0 {
                return Err(device_err(format!("prewarm read-back found {bad} wrong words")));
            }
            prepare_buffer = Some(buf);
        }
        let artifact = HostArtifact { kernel, entry, prepare_buffer, _library: library };
        // Warm-up: one real call on small inputs, checked.
        let n = kernel.n().min(8);
        let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..n).map(|i| 0.5 + i as f32).collect();
        let c = artifact.call(&a, &b, 2);
        let repeat = if matches!(kernel, Kernel::RepeatVectorAdd { .. }) { 2.0 } else { 1.0 };
        if c.iter().enumerate().any(|(i, &x)| x != a[i] + repeat * b[i]) {
            return Err(device_err("warm-up call returned a wrong result"));
        }
        if cancel.is_cancelled() {
            return Err(cancelled("after warm-up"));
        }
        // Relaxed: statistic, pairs with the Relaxed loads in live_artifacts.
        self.prepares.fetch_add(1, Ordering::Relaxed);
        Ok(artifact)
    }

    fn run(&self, prepared: &HostArtifact, args: &TaskArgs, _config: &RunConfig) -> Result<RunOutput, ChipError> {
        let repeat = prepared.kernel.check_args(args)?;
        let c = prepared.call(&args.tensors[0], &args.tensors[1], repeat);
        Ok(RunOutput { tensors: vec![c] })
    }

    /// Short: at most [`crate::tune::run_inline_ops_max`] element
    /// operations (tensor length times repeats), or arguments the kernel
    /// refuses (the run fails at once).
    fn run_inline(&self, prepared: &HostArtifact, args: &TaskArgs) -> bool {
        match prepared.kernel.check_args(args) {
            Ok(repeat) => {
                (prepared.kernel.n() as u64).saturating_mul(repeat.max(1)) <= crate::tune::run_inline_ops_max()
            }
            Err(_) => true,
        }
    }

    fn release(&self, prepared: HostArtifact) {
        // Frees the buffer, dlcloses the library, closes the memfd.
        drop(prepared);
        // Relaxed: statistic, pairs with the Relaxed loads in live_artifacts.
        self.releases.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chiplane_core::chip::NeverCancel;
    use chiplane_core::kernels::{self, HEAVY_PREPARE, REPEAT_VECTOR_ADD, VECTOR_ADD};

    #[test]
    fn each_prepare_loads_its_own_copy() {
        let chip = HostChip::new().unwrap();
        let s = CallableSpec::chip(VECTOR_ADD, vec![4]);
        let x = chip.prepare(&s, &NeverCancel).unwrap();
        let y = chip.prepare(&s, &NeverCancel).unwrap();
        let (VectorAddFnPtr(px), VectorAddFnPtr(py)) = (x.entry.into(), y.entry.into());
        assert_ne!(px, py, "two artifacts must be two loads of the library");
        assert_eq!(chip.live_artifacts(), 2);
        chip.release(x);
        // y still works after x's library was unloaded.
        let args = TaskArgs { tensors: vec![vec![1.0; 4], vec![2.0; 4]], scalars: vec![] };
        assert_eq!(chip.run(&y, &args, &RunConfig::default()).unwrap().tensors, vec![vec![3.0; 4]]);
        chip.release(y);
        assert_eq!(chip.live_artifacts(), 0);
    }

    /// `bind_lane` keeps each lane thread to its half of the CPUs the
    /// device was made with (read back with `sched_getaffinity` on fresh
    /// threads); on one CPU there is nothing to split.
    #[test]
    fn lanes_are_bound_to_disjoint_cpus() {
        let mask = crate::tune::allowed_cpus;
        let all = mask();
        for turn in [0, 1] {
            let chip = std::sync::Arc::new(HostChip::new().unwrap().with_lane_turn(turn));
            let on = |lane| {
                let chip = chip.clone();
                std::thread::spawn(move || {
                    chip.bind_lane(lane).unwrap();
                    mask()
                })
                .join()
                .unwrap()
            };
            let (run, register) = (on(LaneKind::Run), on(LaneKind::Register));
            if all.len() < 2 {
                assert_eq!((&run, &register), (&all, &all));
                continue;
            }
            assert!(!run.is_empty() && !register.is_empty());
            assert!(run.iter().all(|c| !register.contains(c)), "run {run:?} and register {register:?} overlap");
            let mut both: Vec<usize> = run.iter().chain(&register).copied().collect();
            both.sort_unstable();
            assert_eq!(both, all, "the two halves cover the CPUs");
            assert_eq!(run.contains(&all[0]), turn == 0, "chip {turn}'s run lane takes the {} half", turn);
        }
    }

    struct VectorAddFnPtr(usize);
    impl From<Entry> for VectorAddFnPtr {
        fn from(e: Entry) -> Self {
            match e {
                Entry::VectorAdd(f) => VectorAddFnPtr(f as usize),
                Entry::RepeatVectorAdd(f) => VectorAddFnPtr(f as usize),
            }
        }
    }

    #[test]
    fn heavy_prepare_touches_its_buffer_and_matches_reference() {
        let chip = HostChip::new().unwrap();
        let s = CallableSpec::chip(HEAVY_PREPARE, vec![3, 3 * TOUCH_STEP_BYTES as u64 + 5]);
        let art = chip.prepare(&s, &NeverCancel).unwrap();
        assert_eq!(art.prepare_buffer_bytes(), 3 * TOUCH_STEP_BYTES + 5);
        let args = TaskArgs { tensors: vec![vec![0.1, 0.2, 0.3], vec![0.7, 0.8, 0.9]], scalars: vec![] };
        let out = chip.run(&art, &args, &RunConfig::default()).unwrap();
        assert_eq!(kernels::max_diff(&out, &kernels::reference(&s, &args).unwrap()), 0.0);
        chip.release(art);
    }

    #[test]
    fn only_runs_within_the_inline_limit_are_short() {
        let chip = HostChip::new().unwrap();
        let max = crate::tune::run_inline_ops_max();
        let args = |n: usize, scalars: Vec<u64>| TaskArgs { tensors: vec![vec![1.0; n], vec![2.0; n]], scalars };
        let add = chip.prepare(&CallableSpec::chip(VECTOR_ADD, vec![64]), &NeverCancel).unwrap();
        let repeat = chip.prepare(&CallableSpec::chip(REPEAT_VECTOR_ADD, vec![64]), &NeverCancel).unwrap();
        assert_eq!(chip.run_inline(&add, &args(64, vec![])), 64 <= max);
        // n times repeat element operations: at the limit, and one past it.
        let at = (max / 64).max(1);
        assert_eq!(chip.run_inline(&repeat, &args(64, vec![at])), 64 * at <= max);
        assert!(!chip.run_inline(&repeat, &args(64, vec![at + 1])));
        assert!(!chip.run_inline(&repeat, &args(64, vec![u64::MAX])), "no overflow into a short run");
        // Arguments the kernel refuses fail at once: short.
        assert!(chip.run_inline(&add, &args(3, vec![])));
        chip.release(add);
        chip.release(repeat);
    }

    #[test]
    fn repeat_matches_reference_bitwise() {
        let chip = HostChip::new().unwrap();
        let s = CallableSpec::chip(REPEAT_VECTOR_ADD, vec![5]);
        let art = chip.prepare(&s, &NeverCancel).unwrap();
        let args = TaskArgs {
            tensors: vec![vec![0.1, -3.3, 1e7, 2.5, 0.0], vec![0.01, 0.3, 0.1, -1e-3, 7.0]],
            scalars: vec![1000],
        };
        let out = chip.run(&art, &args, &RunConfig::default()).unwrap();
        let want = kernels::reference(&s, &args).unwrap();
        let bits = |o: &RunOutput| o.tensors[0].iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&out), bits(&want));
        chip.release(art);
    }

    /// Cancels from its `after`-th poll on.
    struct CancelAt(std::cell::Cell<u32>, u32);
    impl CancelProbe for CancelAt {
        fn is_cancelled(&self) -> bool {
            let k = self.0.get();
            self.0.set(k + 1);
            k >= self.1
        }
    }

    #[test]
    fn cancel_is_honoured_inside_the_touch_loop() {
        let chip = HostChip::new().unwrap();
        let s = CallableSpec::chip(HEAVY_PREPARE, vec![3, 8 * TOUCH_STEP_BYTES as u64]);
        // Polls 0-2 come before the buffer; poll 5 is the fourth touch step.
        let probe = CancelAt(std::cell::Cell::new(0), 5);
        let e = chip.prepare(&s, &probe).unwrap_err();
        assert_eq!(e.kind, ChipErrorKind::Cancelled);
        assert!(e.detail.contains("touching"), "{e}");
        assert_eq!(probe.0.get(), 6, "stopped at the first poll that said cancelled");
        assert_eq!(chip.live_artifacts(), 0);
    }

    #[test]
    fn missing_library_is_a_typed_error() {
        let e = HostChip::with_library(Path::new("/nonexistent/libchiplane_kernels.so")).unwrap_err();
        assert_eq!(e.kind, ChipErrorKind::Device);
    }

    #[test]
    fn a_library_that_is_not_an_elf_fails_at_prepare() {
        let dir = std::env::temp_dir().join(format!("chiplane-host-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bogus.so");
        std::fs::write(&p, b"not a shared object").unwrap();
        let chip = HostChip::with_library(&p).unwrap();
        let e = chip.prepare(&CallableSpec::chip(VECTOR_ADD, vec![1]), &NeverCancel).unwrap_err();
        assert_eq!(e.kind, ChipErrorKind::Device);
        // The loader's reason (dlerror(), which names the file it tried)
        // travels in the detail, not only "dlopen failed".
        assert!(e.detail.contains("dlopen failed: /proc/self/fd/"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
