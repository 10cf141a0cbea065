//! Per-kind payloads and the error code tree (layouts in the `frame` module
//! doc). Each wire type has three functions kept side by side so they cannot
//! drift: `*_len` (exact size), `put_*` (encode) and `get_*` (decode).

use super::cursor::{Reader, Writer};
use super::{
    CompletionFrame, ControlOp, ControlReply, ControlResultFrame, FrameError, FrameId, Settlement, TaskFrame,
    TaskResultFrame, FIELD_NAMES, KERNEL_MAX_BYTES,
};
use crate::chip::{CallableSpec, ChipError, ChipErrorKind, RunConfig, RunOutput, TargetKind, TaskArgs};
use crate::error::{
    ControlError, EndpointError, HandleError, Limit, PoisonReason, RegisterError, RunError, TooLarge, UnregisterError,
};
use crate::ids::{Generation, SlotIndex, WorkerId};
use crate::slot::SlotState;

type R<T> = Result<T, FrameError>;

fn bad(what: &'static str) -> FrameError {
    FrameError::InvalidField(what)
}

// ---------------------------------------------------------------- tensors

fn tensors_len(ts: &[Vec<f32>]) -> usize {
    ts.iter().fold(4usize, |acc, t| acc.saturating_add(4).saturating_add(t.len().saturating_mul(4)))
}

fn put_tensors(w: &mut Writer<'_>, ts: &[Vec<f32>]) -> R<()> {
    w.count(ts.len())?;
    for t in ts {
        w.count(t.len())?;
        w.f32s(t)?;
    }
    Ok(())
}

fn get_tensors(r: &mut Reader<'_>) -> R<Vec<Vec<f32>>> {
    // Each tensor takes at least its 4-byte length.
    let n = r.count(4)?;
    let mut ts = Vec::with_capacity(n);
    for _ in 0..n {
        let len = r.count(4)?;
        ts.push(r.f32s(len)?);
    }
    Ok(ts)
}

// ---------------------------------------------------------------- task

pub(super) fn task_len(f: &TaskFrame) -> usize {
    args_len(&f.args)
}

/// Payload bytes of a task frame carrying `args` (config included).
pub(super) fn args_len(args: &TaskArgs) -> usize {
    // config (8) + tensors + scalar count (4) + scalars
    8usize
        .saturating_add(tensors_len(&args.tensors))
        .saturating_add(4)
        .saturating_add(args.scalars.len().saturating_mul(8))
}

/// Payload bytes of an `Ok` task result carrying `out`.
pub(super) fn output_len(out: &RunOutput) -> usize {
    1usize.saturating_add(tensors_len(&out.tensors))
}

pub(super) fn put_task(w: &mut Writer<'_>, f: &TaskFrame) -> R<()> {
    w.u32(f.config.block_dim)?;
    w.u32(f.config.flags)?;
    put_tensors(w, &f.args.tensors)?;
    w.count(f.args.scalars.len())?;
    for s in &f.args.scalars {
        w.u64(*s)?;
    }
    Ok(())
}

pub(super) fn get_task(r: &mut Reader<'_>, id: FrameId) -> R<TaskFrame> {
    let config = RunConfig { block_dim: r.u32()?, flags: r.u32()? };
    let tensors = get_tensors(r)?;
    let n = r.count(8)?;
    let mut scalars = Vec::with_capacity(n);
    for _ in 0..n {
        scalars.push(r.u64()?);
    }
    Ok(TaskFrame { id, config, args: TaskArgs { tensors, scalars } })
}

// ---------------------------------------------------------------- control

const OP_REGISTER: u8 = 1;
const OP_UNREGISTER: u8 = 2;
const OP_MEMORY: u8 = 3;
const OP_DOMAIN: u8 = 4;

pub(super) fn spec_len(s: &CallableSpec) -> usize {
    // kind (1) + kernel len (2) + kernel + count (4) + params
    7usize.saturating_add(s.kernel.len()).saturating_add(s.params.len().saturating_mul(8))
}

fn put_spec(w: &mut Writer<'_>, s: &CallableSpec) -> R<()> {
    w.u8(match s.kind {
        TargetKind::ChipCallable => 1,
        TargetKind::Orchestration => 2,
    })?;
    w.string(&s.kernel, KERNEL_MAX_BYTES)?;
    w.count(s.params.len())?;
    for p in &s.params {
        w.u64(*p)?;
    }
    Ok(())
}

fn get_spec(r: &mut Reader<'_>) -> R<CallableSpec> {
    let kind = match r.u8()? {
        1 => TargetKind::ChipCallable,
        2 => TargetKind::Orchestration,
        _ => return Err(bad("target_kind")),
    };
    let kernel = r.string(KERNEL_MAX_BYTES)?;
    let n = r.count(8)?;
    let mut params = Vec::with_capacity(n);
    for _ in 0..n {
        params.push(r.u64()?);
    }
    Ok(CallableSpec { kind, kernel, params })
}

pub(super) fn control_len(op: &ControlOp) -> usize {
    1 + match op {
        ControlOp::Register { spec } => spec_len(spec),
        ControlOp::Unregister => 0,
        ControlOp::Memory { .. } => 9,
        ControlOp::Domain { .. } => 12,
    }
}

pub(super) fn put_control(w: &mut Writer<'_>, op: &ControlOp) -> R<()> {
    match op {
        ControlOp::Register { spec } => {
            w.u8(OP_REGISTER)?;
            put_spec(w, spec)
        }
        ControlOp::Unregister => w.u8(OP_UNREGISTER),
        ControlOp::Memory { bytes, free } => {
            w.u8(OP_MEMORY)?;
            w.u64(*bytes)?;
            w.bool(*free)
        }
        ControlOp::Domain { code, value } => {
            w.u8(OP_DOMAIN)?;
            w.u32(*code)?;
            w.u64(*value)
        }
    }
}

pub(super) fn get_control(r: &mut Reader<'_>) -> R<ControlOp> {
    Ok(match r.u8()? {
        OP_REGISTER => ControlOp::Register { spec: get_spec(r)? },
        OP_UNREGISTER => ControlOp::Unregister,
        OP_MEMORY => ControlOp::Memory { bytes: r.u64()?, free: r.bool("memory.free")? },
        OP_DOMAIN => ControlOp::Domain { code: r.u32()?, value: r.u64()? },
        _ => return Err(bad("control.op")),
    })
}

// ---------------------------------------------------------------- results

const TAG_OK: u8 = 0;
const TAG_ERR: u8 = 1;

pub(super) fn task_result_len(f: &TaskResultFrame) -> usize {
    1 + match &f.result {
        Ok(out) => tensors_len(&out.tensors),
        Err(e) => run_error_len(e),
    }
}

pub(super) fn put_task_result(w: &mut Writer<'_>, f: &TaskResultFrame) -> R<()> {
    match &f.result {
        Ok(out) => {
            w.u8(TAG_OK)?;
            put_tensors(w, &out.tensors)
        }
        Err(e) => {
            w.u8(TAG_ERR)?;
            put_run_error(w, e)
        }
    }
}

pub(super) fn get_task_result(r: &mut Reader<'_>, id: FrameId) -> R<TaskResultFrame> {
    let result = match r.u8()? {
        TAG_OK => Ok(RunOutput { tensors: get_tensors(r)? }),
        TAG_ERR => Err(get_run_error(r)?),
        _ => return Err(bad("task_result.tag")),
    };
    Ok(TaskResultFrame { id, result })
}

pub(super) fn control_result_len(f: &ControlResultFrame) -> usize {
    1 + match &f.result {
        Ok(ControlReply::Registered { .. }) => 10,
        Ok(ControlReply::Unregistered { .. }) => 2,
        Ok(ControlReply::Done) => 1,
        Err(e) => control_error_len(e),
    }
}

pub(super) fn put_control_result(w: &mut Writer<'_>, f: &ControlResultFrame) -> R<()> {
    match &f.result {
        Ok(reply) => {
            w.u8(TAG_OK)?;
            match *reply {
                ControlReply::Registered { slot, generation, fresh } => {
                    w.u8(1)?;
                    w.u32(slot.0)?;
                    w.u32(generation.0)?;
                    w.bool(fresh)
                }
                ControlReply::Unregistered { last } => {
                    w.u8(2)?;
                    w.bool(last)
                }
                ControlReply::Done => w.u8(3),
            }
        }
        Err(e) => {
            w.u8(TAG_ERR)?;
            put_control_error(w, e)
        }
    }
}

pub(super) fn get_control_result(r: &mut Reader<'_>, id: FrameId) -> R<ControlResultFrame> {
    let result = match r.u8()? {
        TAG_OK => Ok(match r.u8()? {
            1 => ControlReply::Registered {
                slot: SlotIndex(r.u32()?),
                generation: Generation(r.u32()?),
                fresh: r.bool("reply.fresh")?,
            },
            2 => ControlReply::Unregistered { last: r.bool("reply.last")? },
            3 => ControlReply::Done,
            _ => return Err(bad("control_reply")),
        }),
        TAG_ERR => Err(get_control_error(r)?),
        _ => return Err(bad("control_result.tag")),
    };
    Ok(ControlResultFrame { id, result })
}

const SETTLE_PREPARED_OK: u8 = 1;
const SETTLE_PREPARED_ERR: u8 = 2;
const SETTLE_FREED: u8 = 3;

pub(super) fn completion_len(f: &CompletionFrame) -> usize {
    1 + match &f.settlement {
        Settlement::Prepared(Err(e)) => register_error_len(e),
        Settlement::Prepared(Ok(())) | Settlement::Freed => 0,
    }
}

pub(super) fn put_completion(w: &mut Writer<'_>, f: &CompletionFrame) -> R<()> {
    match &f.settlement {
        Settlement::Prepared(Ok(())) => w.u8(SETTLE_PREPARED_OK),
        Settlement::Prepared(Err(e)) => {
            w.u8(SETTLE_PREPARED_ERR)?;
            put_register_error(w, e)
        }
        Settlement::Freed => w.u8(SETTLE_FREED),
    }
}

pub(super) fn get_completion(r: &mut Reader<'_>, id: FrameId) -> R<CompletionFrame> {
    let settlement = match r.u8()? {
        SETTLE_PREPARED_OK => Settlement::Prepared(Ok(())),
        SETTLE_PREPARED_ERR => Settlement::Prepared(Err(get_register_error(r)?)),
        SETTLE_FREED => Settlement::Freed,
        _ => return Err(bad("settlement")),
    };
    Ok(CompletionFrame { id, settlement })
}

// ---------------------------------------------------------------- error tree

/// The detail that travels: at most `DETAIL_MAX_BYTES`, cut at a char boundary.
pub(super) fn wire_detail(detail: &str) -> &str {
    let mut end = detail.len().min(ChipError::DETAIL_MAX_BYTES);
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    &detail[..end]
}

fn chip_error_len(e: &ChipError) -> usize {
    4 + wire_detail(&e.detail).len()
}

fn put_chip_error(w: &mut Writer<'_>, e: &ChipError) -> R<()> {
    w.u16(e.kind as u16)?;
    w.string(wire_detail(&e.detail), ChipError::DETAIL_MAX_BYTES)
}

fn get_chip_error(r: &mut Reader<'_>) -> R<ChipError> {
    let kind = ChipErrorKind::from_code(r.u16()?).ok_or(bad("chip_error_kind"))?;
    let detail = r.string(ChipError::DETAIL_MAX_BYTES)?;
    Ok(ChipError { kind, detail })
}

fn slot_state_code(s: SlotState) -> u8 {
    match s {
        SlotState::Empty => 1,
        SlotState::Preparing => 2,
        SlotState::Prepared => 3,
        SlotState::Failed => 4,
        SlotState::Cancelling => 5,
        SlotState::Unregistering => 6,
        SlotState::Retired => 7,
    }
}

fn get_slot_state(r: &mut Reader<'_>) -> R<SlotState> {
    Ok(match r.u8()? {
        1 => SlotState::Empty,
        2 => SlotState::Preparing,
        3 => SlotState::Prepared,
        4 => SlotState::Failed,
        5 => SlotState::Cancelling,
        6 => SlotState::Unregistering,
        7 => SlotState::Retired,
        _ => return Err(bad("slot_state")),
    })
}

fn put_worker(w: &mut Writer<'_>, id: WorkerId) -> R<()> {
    w.u64((id.0 >> 64) as u64)?;
    w.u64(id.0 as u64)
}

fn get_worker(r: &mut Reader<'_>) -> R<WorkerId> {
    let hi = r.u64()?;
    let lo = r.u64()?;
    Ok(WorkerId((u128::from(hi) << 64) | u128::from(lo)))
}

const TOO_LARGE_LEN: usize = 17;

fn put_too_large(w: &mut Writer<'_>, e: &TooLarge) -> R<()> {
    w.u8(match e.limit {
        Limit::KernelName => 1,
        Limit::ControlFrame => 2,
        Limit::TaskFrame => 3,
        Limit::TaskResult => 4,
    })?;
    w.usize64(e.bytes)?;
    w.usize64(e.max)
}

fn get_too_large(r: &mut Reader<'_>) -> R<TooLarge> {
    let limit = match r.u8()? {
        1 => Limit::KernelName,
        2 => Limit::ControlFrame,
        3 => Limit::TaskFrame,
        4 => Limit::TaskResult,
        _ => return Err(bad("limit")),
    };
    Ok(TooLarge { limit, bytes: r.usize64("usize")?, max: r.usize64("usize")? })
}

fn handle_error_len(e: &HandleError) -> usize {
    1 + match e {
        HandleError::Foreign { .. } => 32,
        HandleError::Stale { .. } => 4,
        HandleError::OutOfRange => 0,
    }
}

fn put_handle_error(w: &mut Writer<'_>, e: &HandleError) -> R<()> {
    match *e {
        HandleError::Foreign { expected, got } => {
            w.u8(1)?;
            put_worker(w, expected)?;
            put_worker(w, got)
        }
        HandleError::Stale { current } => {
            w.u8(2)?;
            w.u32(current.0)
        }
        HandleError::OutOfRange => w.u8(3),
    }
}

fn get_handle_error(r: &mut Reader<'_>) -> R<HandleError> {
    Ok(match r.u8()? {
        1 => HandleError::Foreign { expected: get_worker(r)?, got: get_worker(r)? },
        2 => HandleError::Stale { current: Generation(r.u32()?) },
        3 => HandleError::OutOfRange,
        _ => return Err(bad("handle_error")),
    })
}

fn frame_error_len(e: &FrameError) -> usize {
    1 + match e {
        FrameError::Truncated { .. } | FrameError::TooLarge { .. } => 16,
        FrameError::TrailingBytes { .. } => 8,
        FrameError::BadMagic(_) => 4,
        FrameError::BadVersion(_) | FrameError::WrongKind { .. } | FrameError::InvalidField(_) => 2,
        FrameError::BadKind(_) => 1,
        FrameError::ReservedNonZero | FrameError::InvalidUtf8 => 0,
    }
}

fn put_frame_error(w: &mut Writer<'_>, e: &FrameError) -> R<()> {
    match *e {
        FrameError::Truncated { need, have } => {
            w.u8(1)?;
            w.usize64(need)?;
            w.usize64(have)
        }
        FrameError::TrailingBytes { extra } => {
            w.u8(2)?;
            w.usize64(extra)
        }
        FrameError::BadMagic(m) => {
            w.u8(3)?;
            w.u32(m)
        }
        FrameError::BadVersion(v) => {
            w.u8(4)?;
            w.u16(v)
        }
        FrameError::BadKind(k) => {
            w.u8(5)?;
            w.u8(k)
        }
        FrameError::WrongKind { expected, got } => {
            w.u8(6)?;
            w.u8(expected)?;
            w.u8(got)
        }
        FrameError::ReservedNonZero => w.u8(7),
        FrameError::TooLarge { bytes, max } => {
            w.u8(8)?;
            w.usize64(bytes)?;
            w.usize64(max)
        }
        FrameError::InvalidField(name) => {
            // Only names of the published table travel (compared by content).
            let index = FIELD_NAMES.iter().position(|n| *n == name).ok_or(bad("frame_error.field"))?;
            w.u8(9)?;
            w.u16(index as u16)
        }
        FrameError::InvalidUtf8 => w.u8(10),
    }
}

fn get_frame_error(r: &mut Reader<'_>) -> R<FrameError> {
    Ok(match r.u8()? {
        1 => FrameError::Truncated { need: r.usize64("usize")?, have: r.usize64("usize")? },
        2 => FrameError::TrailingBytes { extra: r.usize64("usize")? },
        3 => FrameError::BadMagic(r.u32()?),
        4 => FrameError::BadVersion(r.u16()?),
        5 => FrameError::BadKind(r.u8()?),
        6 => FrameError::WrongKind { expected: r.u8()?, got: r.u8()? },
        7 => FrameError::ReservedNonZero,
        8 => FrameError::TooLarge { bytes: r.usize64("usize")?, max: r.usize64("usize")? },
        9 => {
            let index = r.u16()? as usize;
            FrameError::InvalidField(FIELD_NAMES.get(index).copied().ok_or(bad("frame_error.field"))?)
        }
        10 => FrameError::InvalidUtf8,
        _ => return Err(bad("frame_error")),
    })
}

fn poison_len(p: &PoisonReason) -> usize {
    1 + match p {
        PoisonReason::MalformedFrame(e) => frame_error_len(e),
        PoisonReason::UnexpectedState(_) => 4,
        PoisonReason::IdentityMismatch
        | PoisonReason::ChildDied
        | PoisonReason::LivenessTimeout
        | PoisonReason::DriverDied => 0,
    }
}

fn put_poison(w: &mut Writer<'_>, p: &PoisonReason) -> R<()> {
    match p {
        PoisonReason::MalformedFrame(e) => {
            w.u8(1)?;
            put_frame_error(w, e)
        }
        PoisonReason::IdentityMismatch => w.u8(2),
        PoisonReason::UnexpectedState(s) => {
            w.u8(3)?;
            w.u32(*s)
        }
        PoisonReason::ChildDied => w.u8(4),
        PoisonReason::LivenessTimeout => w.u8(5),
        PoisonReason::DriverDied => w.u8(6),
    }
}

fn get_poison(r: &mut Reader<'_>) -> R<PoisonReason> {
    Ok(match r.u8()? {
        1 => PoisonReason::MalformedFrame(get_frame_error(r)?),
        2 => PoisonReason::IdentityMismatch,
        3 => PoisonReason::UnexpectedState(r.u32()?),
        4 => PoisonReason::ChildDied,
        5 => PoisonReason::LivenessTimeout,
        6 => PoisonReason::DriverDied,
        _ => return Err(bad("poison_reason")),
    })
}

fn endpoint_len(e: &EndpointError) -> usize {
    1 + match e {
        EndpointError::Poisoned(p) => poison_len(p),
        EndpointError::ChildDied | EndpointError::LivenessTimeout | EndpointError::ShutDown => 0,
    }
}

fn put_endpoint(w: &mut Writer<'_>, e: &EndpointError) -> R<()> {
    match e {
        EndpointError::ChildDied => w.u8(1),
        EndpointError::LivenessTimeout => w.u8(2),
        EndpointError::Poisoned(p) => {
            w.u8(3)?;
            put_poison(w, p)
        }
        EndpointError::ShutDown => w.u8(4),
    }
}

fn get_endpoint(r: &mut Reader<'_>) -> R<EndpointError> {
    Ok(match r.u8()? {
        1 => EndpointError::ChildDied,
        2 => EndpointError::LivenessTimeout,
        3 => EndpointError::Poisoned(get_poison(r)?),
        4 => EndpointError::ShutDown,
        _ => return Err(bad("endpoint_error")),
    })
}

fn run_error_len(e: &RunError) -> usize {
    1 + match e {
        RunError::Handle(h) => handle_error_len(h),
        RunError::NotRunnable(_) => 1,
        RunError::PrepareFailed(c) | RunError::Chip(c) => chip_error_len(c),
        RunError::Cancelled => 0,
        RunError::TooLarge(_) => TOO_LARGE_LEN,
        RunError::Endpoint(e) => endpoint_len(e),
    }
}

fn put_run_error(w: &mut Writer<'_>, e: &RunError) -> R<()> {
    match e {
        RunError::Handle(h) => {
            w.u8(1)?;
            put_handle_error(w, h)
        }
        RunError::NotRunnable(s) => {
            w.u8(2)?;
            w.u8(slot_state_code(*s))
        }
        RunError::PrepareFailed(c) => {
            w.u8(3)?;
            put_chip_error(w, c)
        }
        RunError::Cancelled => w.u8(4),
        RunError::Chip(c) => {
            w.u8(5)?;
            put_chip_error(w, c)
        }
        RunError::TooLarge(e) => {
            w.u8(6)?;
            put_too_large(w, e)
        }
        RunError::Endpoint(e) => {
            w.u8(7)?;
            put_endpoint(w, e)
        }
    }
}

fn get_run_error(r: &mut Reader<'_>) -> R<RunError> {
    Ok(match r.u8()? {
        1 => RunError::Handle(get_handle_error(r)?),
        2 => RunError::NotRunnable(get_slot_state(r)?),
        3 => RunError::PrepareFailed(get_chip_error(r)?),
        4 => RunError::Cancelled,
        5 => RunError::Chip(get_chip_error(r)?),
        6 => RunError::TooLarge(get_too_large(r)?),
        7 => RunError::Endpoint(get_endpoint(r)?),
        _ => return Err(bad("run_error")),
    })
}

fn register_error_len(e: &RegisterError) -> usize {
    1 + match e {
        RegisterError::PrepareFailed(c) => chip_error_len(c),
        RegisterError::Endpoint(e) => endpoint_len(e),
        RegisterError::TooLarge(_) => TOO_LARGE_LEN,
        RegisterError::NoSuchChip { .. } => 16,
        RegisterError::WrongTarget | RegisterError::TableFull | RegisterError::Cancelled => 0,
    }
}

fn put_register_error(w: &mut Writer<'_>, e: &RegisterError) -> R<()> {
    match e {
        RegisterError::WrongTarget => w.u8(1),
        RegisterError::TableFull => w.u8(2),
        RegisterError::PrepareFailed(c) => {
            w.u8(3)?;
            put_chip_error(w, c)
        }
        RegisterError::Cancelled => w.u8(4),
        RegisterError::Endpoint(e) => {
            w.u8(5)?;
            put_endpoint(w, e)
        }
        RegisterError::TooLarge(e) => {
            w.u8(6)?;
            put_too_large(w, e)
        }
        RegisterError::NoSuchChip { chip, chips } => {
            w.u8(7)?;
            w.usize64(*chip)?;
            w.usize64(*chips)
        }
    }
}

fn get_register_error(r: &mut Reader<'_>) -> R<RegisterError> {
    Ok(match r.u8()? {
        1 => RegisterError::WrongTarget,
        2 => RegisterError::TableFull,
        3 => RegisterError::PrepareFailed(get_chip_error(r)?),
        4 => RegisterError::Cancelled,
        5 => RegisterError::Endpoint(get_endpoint(r)?),
        6 => RegisterError::TooLarge(get_too_large(r)?),
        7 => RegisterError::NoSuchChip { chip: r.usize64("usize")?, chips: r.usize64("usize")? },
        _ => return Err(bad("register_error")),
    })
}

fn unregister_error_len(e: &UnregisterError) -> usize {
    1 + match e {
        UnregisterError::Handle(h) => handle_error_len(h),
        UnregisterError::NotRegistered => 0,
        UnregisterError::Endpoint(e) => endpoint_len(e),
    }
}

fn put_unregister_error(w: &mut Writer<'_>, e: &UnregisterError) -> R<()> {
    match e {
        UnregisterError::Handle(h) => {
            w.u8(1)?;
            put_handle_error(w, h)
        }
        UnregisterError::NotRegistered => w.u8(2),
        UnregisterError::Endpoint(e) => {
            w.u8(3)?;
            put_endpoint(w, e)
        }
    }
}

fn get_unregister_error(r: &mut Reader<'_>) -> R<UnregisterError> {
    Ok(match r.u8()? {
        1 => UnregisterError::Handle(get_handle_error(r)?),
        2 => UnregisterError::NotRegistered,
        3 => UnregisterError::Endpoint(get_endpoint(r)?),
        _ => return Err(bad("unregister_error")),
    })
}

fn control_error_len(e: &ControlError) -> usize {
    1 + match e {
        ControlError::Register(e) => register_error_len(e),
        ControlError::Unregister(e) => unregister_error_len(e),
        ControlError::TooLarge(_) => TOO_LARGE_LEN,
        ControlError::Endpoint(e) => endpoint_len(e),
    }
}

fn put_control_error(w: &mut Writer<'_>, e: &ControlError) -> R<()> {
    match e {
        ControlError::Register(e) => {
            w.u8(1)?;
            put_register_error(w, e)
        }
        ControlError::Unregister(e) => {
            w.u8(2)?;
            put_unregister_error(w, e)
        }
        ControlError::TooLarge(e) => {
            w.u8(3)?;
            put_too_large(w, e)
        }
        ControlError::Endpoint(e) => {
            w.u8(4)?;
            put_endpoint(w, e)
        }
    }
}

fn get_control_error(r: &mut Reader<'_>) -> R<ControlError> {
    Ok(match r.u8()? {
        1 => ControlError::Register(get_register_error(r)?),
        2 => ControlError::Unregister(get_unregister_error(r)?),
        3 => ControlError::TooLarge(get_too_large(r)?),
        4 => ControlError::Endpoint(get_endpoint(r)?),
        _ => return Err(bad("control_error")),
    })
}
