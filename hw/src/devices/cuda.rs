//! The `cuda` device (Cargo feature `cuda`): the kernel catalogue on an
//! NVIDIA GPU through `cudarc`, with the driver (`libcuda`) and NVRTC
//! (`libnvrtc`) loaded at run time, so this builds on machines without CUDA.
//!
//! - [`CudaChip::new`] checks that both libraries can be loaded and creates
//!   the device's primary context; without them it returns a `Device` error
//!   (never a panic: cudarc panics when a library or symbol is missing, so
//!   every call into it here runs under `catch_unwind` and a panic becomes a
//!   `Device` error).
//! - `bind_lane` binds the context on the calling lane thread.
//! - `prepare` (register lane): validate the spec; NVRTC-compile the kernel
//!   source (a real compile per prepare, fmad and flush-to-zero off so the
//!   float results equal the reference); load the module on a stream of the
//!   artifact's own; allocate the input and output buffers; for
//!   `heavy_prepare` allocate `prepare_bytes` on the device and write a
//!   pattern into all of it with a kernel; warm up with one checked run.
//!   Cancel is polled between those steps.
//! - `run` (run lane): copy the inputs in, launch on the artifact's stream,
//!   synchronise, copy the output out. An artifact's device buffers sit
//!   behind a mutex, so two runs of one artifact never share them.
//! - `release`: drops module, buffers and stream (cudarc binds the context
//!   in those drops).

use chiplane_core::chip::{
    CallableSpec, CancelProbe, Chip, ChipError, ChipErrorKind, LaneKind, RunConfig, RunOutput, TaskArgs,
};
use chiplane_core::kernels::Kernel;
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

/// The catalogue in CUDA C. Same float order as `kernels::reference`: each
/// element starts from `a[i]` and adds `b[i]` `repeat` times.
pub const KERNELS_CU: &str = r#"
extern "C" __global__ void chiplane_vector_add(const float *a, const float *b, float *c, unsigned long long n) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) c[i] = a[i] + b[i];
}

extern "C" __global__ void chiplane_repeat_vector_add(const float *a, const float *b, float *c,
                                                      unsigned long long n, unsigned long long repeat) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float x = a[i];
        float y = b[i];
        for (unsigned long long r = 0; r < repeat; r++) x += y;
        c[i] = x;
    }
}

extern "C" __global__ void chiplane_fill_pattern(unsigned char *buf, unsigned long long len) {
    unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += stride)
        buf[i] = (unsigned char)((i * 131u) ^ (i >> 12));
}
"#;

fn device_err(detail: impl Into<String>) -> ChipError {
    let mut d: String = detail.into();
    if d.len() > ChipError::DETAIL_MAX_BYTES {
        let mut cut = ChipError::DETAIL_MAX_BYTES;
        while !d.is_char_boundary(cut) {
            cut -= 1;
        }
        d.truncate(cut);
    }
    ChipError::new(ChipErrorKind::Device, d)
}

/// Run a cudarc call, turning its errors and its panics (missing library
/// or symbol) into `Device` errors.
fn cu<T, E: std::fmt::Display>(what: &str, f: impl FnOnce() -> Result<T, E>) -> Result<T, ChipError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(device_err(format!("{what}: {e}"))),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Err(device_err(format!("{what}: {msg}")))
        }
    }
}

fn cancelled(step: &str) -> ChipError {
    ChipError::new(ChipErrorKind::Cancelled, format!("prepare cancelled {step}"))
}

/// One GPU.
#[derive(Debug)]
pub struct CudaChip {
    ctx: Arc<CudaContext>,
    ordinal: usize,
}

impl CudaChip {
    /// The GPU with this ordinal. `Device` error when the CUDA driver or
    /// NVRTC cannot be loaded, or the device cannot be opened.
    pub fn new(ordinal: usize) -> Result<Self, ChipError> {
        // SAFETY: only tries to dlopen the driver library by its usual names.
        let driver = cu("loading libcuda", || Ok::<_, String>(unsafe { cudarc::driver::sys::is_culib_present() }))?;
        if !driver {
            return Err(device_err("CUDA driver library (libcuda) not found"));
        }
        // SAFETY: only tries to dlopen the NVRTC library by its usual names.
        let nvrtc = cu("loading libnvrtc", || Ok::<_, String>(unsafe { cudarc::nvrtc::sys::is_culib_present() }))?;
        if !nvrtc {
            return Err(device_err("NVRTC library (libnvrtc) not found"));
        }
        let ctx = cu("creating the CUDA context", || CudaContext::new(ordinal))?;
        Ok(CudaChip { ctx, ordinal })
    }

    /// The device ordinal.
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }
}

struct Buffers {
    a: CudaSlice<f32>,
    b: CudaSlice<f32>,
    c: CudaSlice<f32>,
}

/// A prepared CUDA callable.
pub struct CudaArtifact {
    kernel: Kernel,
    func: CudaFunction,
    buffers: Mutex<Buffers>,
    prepare_buffer: Option<CudaSlice<u8>>,
    _module: Arc<CudaModule>,
    stream: Arc<CudaStream>,
}

impl std::fmt::Debug for CudaArtifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaArtifact")
            .field("kernel", &self.kernel)
            .field("prepare_buffer_bytes", &self.prepare_buffer.as_ref().map_or(0, |b| b.len()))
            .finish_non_exhaustive()
    }
}

impl CudaArtifact {
    /// The validated kernel this artifact runs.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn call(&self, a: &[f32], b: &[f32], repeat: u64) -> Result<Vec<f32>, ChipError> {
        let n = a.len();
        let mut guard = self.buffers.lock().map_err(|_| device_err("buffer lock poisoned"))?;
        let Buffers { a: da, b: db, c: dc } = &mut *guard;
        let stream = &self.stream;
        cu("copy a in", || stream.memcpy_htod(a, da))?;
        cu("copy b in", || stream.memcpy_htod(b, db))?;
        let n64 = n as u64;
        let blocks = u32::try_from(n).map_err(|_| device_err("n exceeds u32"))?;
        cu("launch", || {
            let mut launch = stream.launch_builder(&self.func);
            launch.arg(&*da).arg(&*db).arg(&mut *dc).arg(&n64);
            if matches!(self.kernel, Kernel::RepeatVectorAdd { .. }) {
                launch.arg(&repeat);
            }
            // SAFETY: the arguments match the kernel's signature in
            // KERNELS_CU (three f32 device pointers of at least n elements,
            // n, and repeat for the repeat kernel), and the grid covers n
            // threads, each guarded by `i < n`.
            unsafe { launch.launch(LaunchConfig::for_num_elems(blocks)) }
        })?;
        cu("synchronise", || stream.synchronize())?;
        let mut out = cu("copy c out", || stream.clone_dtoh(&*dc))?;
        out.truncate(n);
        Ok(out)
    }
}

impl Chip for CudaChip {
    type Prepared = CudaArtifact;

    fn name(&self) -> &str {
        "cuda"
    }

    fn bind_lane(&self, _lane: LaneKind) -> Result<(), ChipError> {
        cu("binding the context", || self.ctx.bind_to_thread())
    }

    fn prepare(&self, spec: &CallableSpec, cancel: &dyn CancelProbe) -> Result<CudaArtifact, ChipError> {
        let kernel = Kernel::from_spec(spec)?;
        if cancel.is_cancelled() {
            return Err(cancelled("before compiling"));
        }
        cu("binding the context", || self.ctx.bind_to_thread())?;
        let opts = CompileOptions {
            fmad: Some(false),
            ftz: Some(false),
            prec_div: Some(true),
            prec_sqrt: Some(true),
            use_fast_math: Some(false),
            ..CompileOptions::default()
        };
        let ptx = cu("NVRTC compile", || compile_ptx_with_opts(KERNELS_CU, opts))?;
        if cancel.is_cancelled() {
            return Err(cancelled("after compiling"));
        }
        let stream = cu("creating a stream", || self.ctx.new_stream())?;
        let module = cu("loading the module", || self.ctx.load_module(ptx))?;
        let name = match kernel {
            Kernel::VectorAdd { .. } | Kernel::HeavyPrepare { .. } => "chiplane_vector_add",
            Kernel::RepeatVectorAdd { .. } => "chiplane_repeat_vector_add",
        };
        let func = cu("resolving the kernel", || module.load_function(name))?;
        let n = kernel.n();
        let buffers = Buffers {
            a: cu("allocating a", || stream.alloc_zeros::<f32>(n))?,
            b: cu("allocating b", || stream.alloc_zeros::<f32>(n))?,
            c: cu("allocating c", || stream.alloc_zeros::<f32>(n))?,
        };
        if cancel.is_cancelled() {
            return Err(cancelled("after allocating"));
        }
        let mut prepare_buffer = None;
        if let Kernel::HeavyPrepare { prepare_bytes, .. } = kernel {
            let len = usize::try_from(prepare_bytes).map_err(|_| device_err("prepare_bytes exceeds usize"))?;
            if len > 0 {
                let mut buf = cu("allocating the prepare buffer", || stream.alloc_zeros::<u8>(len))?;
                let fill = cu("resolving the fill kernel", || module.load_function("chiplane_fill_pattern"))?;
                let len64 = len as u64;
                cu("filling the prepare buffer", || {
                    let mut launch = stream.launch_builder(&fill);
                    launch.arg(&mut buf).arg(&len64);
                    let cfg = LaunchConfig { grid_dim: (256, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
                    // SAFETY: (u8 pointer of len bytes, len) matches
                    // chiplane_fill_pattern, whose grid-stride loop stays
                    // below len.
                    unsafe { launch.launch(cfg) }
                })?;
                cu("synchronise", || stream.synchronize())?;
                prepare_buffer = Some(buf);
            }
        }
        let artifact =
            CudaArtifact { kernel, func, buffers: Mutex::new(buffers), prepare_buffer, _module: module, stream };
        // Warm-up: one checked call.
        let m = n.min(8);
        let mut a = vec![0.0f32; n];
        let mut b = vec![0.0f32; n];
        for i in 0..m {
            a[i] = i as f32;
            b[i] = 0.5 + i as f32;
        }
        let c = artifact.call(&a, &b, 2)?;
        let repeat = if matches!(kernel, Kernel::RepeatVectorAdd { .. }) { 2.0 } else { 1.0 };
        if (0..m).any(|i| c[i] != a[i] + repeat * b[i]) {
            return Err(device_err("warm-up run returned a wrong result"));
        }
        if cancel.is_cancelled() {
            return Err(cancelled("after warm-up"));
        }
        Ok(artifact)
    }

    fn run(&self, prepared: &CudaArtifact, args: &TaskArgs, _config: &RunConfig) -> Result<RunOutput, ChipError> {
        let repeat = prepared.kernel.check_args(args)?;
        let c = prepared.call(&args.tensors[0], &args.tensors[1], repeat)?;
        Ok(RunOutput { tensors: vec![c] })
    }

    fn release(&self, prepared: CudaArtifact) {
        // Drops buffers, module and stream; a panic in a driver call during
        // drop must not escape either.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(prepared)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_without_a_driver_is_a_typed_error_or_a_device() {
        match CudaChip::new(0) {
            Ok(chip) => assert_eq!(chip.name(), "cuda"),
            Err(e) => assert_eq!(e.kind, ChipErrorKind::Device, "{e}"),
        }
    }
}
