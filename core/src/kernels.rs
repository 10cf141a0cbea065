//! The kernel catalogue every device implements, with a reference
//! implementation (plain Rust on the host) that checkers compare against
//! (`max_diff`, as the seed does).
//!
//! | kernel | params | args | output |
//! |---|---|---|---|
//! | `vector_add` | `[n]` | tensors `a`, `b` (len n) | `[a + b]` |
//! | `repeat_vector_add` | `[n]` | tensors `a`, `b`; scalar `repeat` | `[a + repeat * b]`, computed as `repeat` passes of `c += b` (the long C1 of the seed) |
//! | `heavy_prepare` | `[n, prepare_bytes]` | tensors `a`, `b` | `[a + b]`; its prepare allocates and touches `prepare_bytes` (the seed's prewarm) |
//!
//! A device returns `ChipErrorKind::InvalidSpec` for an unknown kernel or
//! wrong params, and `ChipErrorKind::InvalidArgs` when the args do not fit.

use crate::chip::{CallableSpec, ChipError, ChipErrorKind, RunOutput, TaskArgs};

/// Kernel name of `a + b` (params `[n]`).
pub const VECTOR_ADD: &str = "vector_add";
/// Kernel name of `a + repeat * b` as `repeat` passes (params `[n]`, scalar
/// `repeat`): the long run.
pub const REPEAT_VECTOR_ADD: &str = "repeat_vector_add";
/// Kernel name of `a + b` whose prepare allocates and touches a buffer
/// (params `[n, prepare_bytes]`): the long prepare.
pub const HEAVY_PREPARE: &str = "heavy_prepare";

/// Largest `n` a spec may ask for (keeps a run's tensors inside a task frame).
pub const N_MAX: u64 = 4096;
/// Largest prepare buffer a `heavy_prepare` spec may ask for.
pub const PREPARE_BYTES_MAX: u64 = 1 << 30;

/// A validated kernel spec.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kernel {
    /// `vector_add`.
    VectorAdd {
        /// Tensor length (1 to `N_MAX`).
        n: usize,
    },
    /// `repeat_vector_add`.
    RepeatVectorAdd {
        /// Tensor length (1 to `N_MAX`).
        n: usize,
    },
    /// `heavy_prepare`.
    HeavyPrepare {
        /// Tensor length (1 to `N_MAX`).
        n: usize,
        /// Bytes the prepare allocates and touches (at most
        /// `PREPARE_BYTES_MAX`).
        prepare_bytes: u64,
    },
}

impl Kernel {
    /// Validate a spec against the catalogue.
    pub fn from_spec(spec: &CallableSpec) -> Result<Kernel, ChipError> {
        let bad = |d: &str| Err(ChipError::new(ChipErrorKind::InvalidSpec, d.to_string()));
        let n_of = |p: &[u64]| -> Result<usize, ChipError> {
            match p.first() {
                Some(&n) if (1..=N_MAX).contains(&n) => Ok(n as usize),
                _ => Err(ChipError::new(ChipErrorKind::InvalidSpec, format!("n must be in 1..={N_MAX}"))),
            }
        };
        match spec.kernel.as_str() {
            VECTOR_ADD if spec.params.len() == 1 => Ok(Kernel::VectorAdd { n: n_of(&spec.params)? }),
            REPEAT_VECTOR_ADD if spec.params.len() == 1 => Ok(Kernel::RepeatVectorAdd { n: n_of(&spec.params)? }),
            HEAVY_PREPARE if spec.params.len() == 2 => {
                let n = n_of(&spec.params)?;
                let prepare_bytes = spec.params[1];
                if prepare_bytes > PREPARE_BYTES_MAX {
                    return bad("prepare_bytes too large");
                }
                Ok(Kernel::HeavyPrepare { n, prepare_bytes })
            }
            VECTOR_ADD | REPEAT_VECTOR_ADD | HEAVY_PREPARE => bad("wrong number of params"),
            _ => bad("unknown kernel"),
        }
    }

    /// The tensor length every argument (and the output) has.
    pub fn n(&self) -> usize {
        match *self {
            Kernel::VectorAdd { n } | Kernel::RepeatVectorAdd { n } | Kernel::HeavyPrepare { n, .. } => n,
        }
    }

    /// Validate run arguments; returns the repeat count (1 for plain adds).
    pub fn check_args(&self, args: &TaskArgs) -> Result<u64, ChipError> {
        let n = self.n();
        let bad = |d: String| Err(ChipError::new(ChipErrorKind::InvalidArgs, d));
        if args.tensors.len() != 2 || args.tensors.iter().any(|t| t.len() != n) {
            return bad(format!("expected 2 tensors of length {n}"));
        }
        match self {
            Kernel::RepeatVectorAdd { .. } => match args.scalars.as_slice() {
                [repeat] => Ok(*repeat),
                _ => bad("expected 1 scalar (repeat)".into()),
            },
            _ if args.scalars.is_empty() => Ok(1),
            _ => bad("expected no scalars".into()),
        }
    }
}

/// The reference result of running `spec` on `args`.
pub fn reference(spec: &CallableSpec, args: &TaskArgs) -> Result<RunOutput, ChipError> {
    let k = Kernel::from_spec(spec)?;
    let repeat = k.check_args(args)?;
    let (a, b) = (&args.tensors[0], &args.tensors[1]);
    let mut c = a.clone();
    match k {
        // Same float order as the devices: `repeat` passes of c += b.
        Kernel::RepeatVectorAdd { .. } => {
            for _ in 0..repeat {
                for (ci, bi) in c.iter_mut().zip(b) {
                    *ci += *bi;
                }
            }
        }
        _ => {
            for (ci, bi) in c.iter_mut().zip(b) {
                *ci += *bi;
            }
        }
    }
    Ok(RunOutput { tensors: vec![c] })
}

/// Largest absolute difference between two outputs (`f32::INFINITY` when
/// their shapes differ).
pub fn max_diff(x: &RunOutput, y: &RunOutput) -> f32 {
    if x.tensors.len() != y.tensors.len() || x.tensors.iter().zip(&y.tensors).any(|(p, q)| p.len() != q.len()) {
        return f32::INFINITY;
    }
    x.tensors.iter().zip(&y.tensors).flat_map(|(p, q)| p.iter().zip(q)).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_validates_and_computes() {
        let s = CallableSpec::chip(REPEAT_VECTOR_ADD, vec![3]);
        let args = TaskArgs { tensors: vec![vec![1.0, 2.0, 3.0], vec![0.5, 0.5, 1.0]], scalars: vec![4] };
        let out = reference(&s, &args).unwrap();
        assert_eq!(out.tensors, vec![vec![3.0, 4.0, 7.0]]);
        assert_eq!(max_diff(&out, &out), 0.0);
        assert_eq!(
            Kernel::from_spec(&CallableSpec::chip("nope", vec![1])).unwrap_err().kind,
            ChipErrorKind::InvalidSpec
        );
        assert_eq!(
            Kernel::from_spec(&CallableSpec::chip(VECTOR_ADD, vec![0])).unwrap_err().kind,
            ChipErrorKind::InvalidSpec
        );
        let short = TaskArgs { tensors: vec![vec![1.0]], scalars: vec![] };
        assert_eq!(
            reference(&CallableSpec::chip(VECTOR_ADD, vec![3]), &short).unwrap_err().kind,
            ChipErrorKind::InvalidArgs
        );
    }
}
