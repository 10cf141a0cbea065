//! The frame codec: fixed-capacity frames that cross the mailbox.
//!
//! Every frame starts with the same 32-byte header (little endian):
//! ```text
//! 0  u32 magic  = FRAME_MAGIC
//! 4  u16 version = FRAME_VERSION
//! 6  u8  kind   (FrameKind)
//! 7  u8  reserved, must be 0
//! 8  u64 dispatch_id
//! 16 u32 slot
//! 20 u32 generation
//! 24 u32 payload_len (bytes after the header)
//! 28 u32 reserved, must be 0
//! ```
//! Decoding validates *everything* (magic, version, kind, reserved bytes,
//! lengths, counts against capacities, enum codes, bools, UTF-8, trailing
//! bytes) and returns a typed `FrameError`; it never panics, never reads past
//! the slice (all reads go through a checked cursor), never allocates more
//! than the input could hold (a count is checked against the bytes left
//! before any `Vec::with_capacity`), and accepts only canonical encodings, so
//! `encode(decode(b)?) == b` for every `b` that decodes, and
//! `decode(encode(f)?) == f` for every `f` whose strings are within limits
//! (f32 values compare by bits: NaN payloads survive).
//!
//! Capacities (each mailbox field holds exactly one frame, header included):
//! `TASK_FRAME_BYTES`, `CONTROL_FRAME_BYTES`, `TASK_RESULT_BYTES`,
//! `CONTROL_RESULT_BYTES`, `COMPLETION_BYTES`. `encode` refuses a frame over
//! its kind's capacity with `TooLarge { bytes, max }`; `decode` refuses a
//! header whose `32 + payload_len` exceeds it.
//!
//! # Payloads
//! Notation: all integers little endian, no padding, no alignment.
//! `bool` = u8 0 or 1 (anything else is an error). `str(max)` = u16 byte
//! length (at most `max`) then that many bytes of UTF-8. `tensors` = u32
//! count, then per tensor a u32 element count and that many u32 f32 bit
//! patterns. `usize` fields travel as u64.
//!
//! | kind | payload |
//! |---|---|
//! | 1 Task | u32 block_dim, u32 flags, `tensors` (args), u32 scalar count, scalars as u64 |
//! | 2 Control | u8 op, then per op (below) |
//! | 3 TaskResult | u8 tag: 0 = `Ok` then `tensors` (output); 1 = `Err` then `RunError` |
//! | 4 ControlResult | u8 tag: 0 = `Ok` then `ControlReply`; 1 = `Err` then `ControlError` |
//! | 5 Completion | u8: 1 = `Prepared(Ok)`; 2 = `Prepared(Err)` then `RegisterError`; 3 = `Freed` |
//!
//! | ControlOp | code | fields |
//! |---|---|---|
//! | Register | 1 | `CallableSpec`: u8 kind (1 ChipCallable, 2 Orchestration), kernel `str(KERNEL_MAX_BYTES)`, u32 param count, params as u64 |
//! | Unregister | 2 | none |
//! | Memory | 3 | u64 bytes, bool free |
//! | Domain | 4 | u32 code, u64 value |
//!
//! | ControlReply | code | fields |
//! |---|---|---|
//! | Registered | 1 | u32 slot, u32 generation, bool fresh |
//! | Unregistered | 2 | bool last |
//! | Done | 3 | none |
//!
//! # Error code tree
//! Each error is a u8 code followed by the fields of its variant; a nested
//! error follows its parent's code directly. Unknown codes are
//! `InvalidField("<type name>")`.
//!
//! | type | codes |
//! |---|---|
//! | `RunError` | 1 Handle(`HandleError`), 2 NotRunnable(`SlotState`), 3 PrepareFailed(`ChipError`), 4 Cancelled, 5 Chip(`ChipError`), 6 TooLarge(`TooLarge`), 7 Endpoint(`EndpointError`) |
//! | `RegisterError` | 1 WrongTarget, 2 TableFull, 3 PrepareFailed(`ChipError`), 4 Cancelled, 5 Endpoint(`EndpointError`), 6 TooLarge(`TooLarge`), 7 NoSuchChip{u64 chip, u64 chips} |
//! | `UnregisterError` | 1 Handle(`HandleError`), 2 NotRegistered, 3 Endpoint(`EndpointError`) |
//! | `ControlError` | 1 Register(`RegisterError`), 2 Unregister(`UnregisterError`), 3 TooLarge(`TooLarge`), 4 Endpoint(`EndpointError`) |
//! | `TooLarge` | u8 limit (1 KernelName, 2 ControlFrame, 3 TaskFrame, 4 TaskResult), u64 bytes, u64 max |
//! | `HandleError` | 1 Foreign{`WorkerId` expected, `WorkerId` got}, 2 Stale{u32 current}, 3 OutOfRange |
//! | `WorkerId` | u64 nonce, u64 serial |
//! | `EndpointError` | 1 ChildDied, 2 LivenessTimeout, 3 Poisoned(`PoisonReason`), 4 ShutDown |
//! | `PoisonReason` | 1 MalformedFrame(`FrameError`), 2 IdentityMismatch, 3 UnexpectedState(u32), 4 ChildDied, 5 LivenessTimeout, 6 DriverDied |
//! | `FrameError` | 1 Truncated{u64 need, u64 have}, 2 TrailingBytes{u64 extra}, 3 BadMagic(u32), 4 BadVersion(u16), 5 BadKind(u8), 6 WrongKind{u8 expected, u8 got}, 7 ReservedNonZero, 8 TooLarge{u64 bytes, u64 max}, 9 InvalidField(u16 index into `FIELD_NAMES`), 10 InvalidUtf8 |
//! | `SlotState` | u8: 1 Empty, 2 Preparing, 3 Prepared, 4 Failed, 5 Cancelling, 6 Unregistering, 7 Retired |
//! | `ChipError` | u16 `ChipErrorKind` code (1..=5), detail `str(ChipError::DETAIL_MAX_BYTES)` |
//!
//! A `ChipError` detail longer than `ChipError::DETAIL_MAX_BYTES` is cut at
//! the last char boundary within the limit when *encoding*; a longer detail
//! on the wire is an error when decoding (so round trips of in-limit frames
//! stay exact). A kernel name longer than `KERNEL_MAX_BYTES` does not encode
//! (`TooLarge`). `FrameError::InvalidField` carries a `&'static str`: only
//! the names in `FIELD_NAMES` (every name this codec emits) travel; encoding
//! any other name fails with `InvalidField("frame_error.field")`.

mod cursor;
mod payload;

use cursor::{Reader, Writer};

use crate::chip::{CallableSpec, RunConfig, RunOutput, TaskArgs};
use crate::error::{ControlError, Limit, RegisterError, RunError, TooLarge};
use crate::ids::{DispatchId, Generation, SlotIndex};

/// The first four bytes of every frame (`"CHLP"` read as little endian);
/// anything else decodes as `FrameError::BadMagic`.
pub const FRAME_MAGIC: u32 = 0x504c_4843; // "CHLP"
/// The frame format version this codec writes and the only one it reads
/// (any other decodes as `FrameError::BadVersion`).
pub const FRAME_VERSION: u16 = 2;
/// Size of the fixed header that starts every frame.
pub const HEADER_BYTES: usize = 32;
/// Capacity of the mailbox's task field: the largest `TaskFrame`, header
/// included.
pub const TASK_FRAME_BYTES: usize = 64 * 1024;
/// Capacity of the mailbox's control field: the largest `ControlFrame`,
/// header included.
pub const CONTROL_FRAME_BYTES: usize = 4 * 1024;
/// Capacity of the mailbox's task result field: the largest
/// `TaskResultFrame`, header included.
pub const TASK_RESULT_BYTES: usize = 64 * 1024;
/// Capacity of the mailbox's control result field: the largest
/// `ControlResultFrame`, header included.
pub const CONTROL_RESULT_BYTES: usize = 1024;
/// Capacity of one completion ring entry: the largest `CompletionFrame`,
/// header included.
pub const COMPLETION_BYTES: usize = 512;
/// Longest kernel name a control frame carries.
pub const KERNEL_MAX_BYTES: usize = 256;

/// Every field name the codec reports in `FrameError::InvalidField`, in wire
/// order (a `FrameError` on the wire names its field by index into this
/// table). Append only: the index is part of the format.
pub const FIELD_NAMES: &[&str] = &[
    "target_kind",
    "control.op",
    "memory.free",
    "task_result.tag",
    "control_reply",
    "reply.fresh",
    "reply.last",
    "control_result.tag",
    "settlement",
    "chip_error_kind",
    "slot_state",
    "handle_error",
    "frame_error",
    "frame_error.field",
    "usize",
    "poison_reason",
    "endpoint_error",
    "run_error",
    "register_error",
    "unregister_error",
    "control_error",
    "limit",
];

/// Why bytes did not decode (or a value did not fit when encoding).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FrameError {
    /// Fewer bytes than the header or than the header's `payload_len` says.
    Truncated {
        /// Bytes the frame needs.
        need: usize,
        /// Bytes that were there.
        have: usize,
    },
    /// More bytes than header + payload_len.
    TrailingBytes {
        /// Bytes past the end of the frame.
        extra: usize,
    },
    /// The first four bytes are not `FRAME_MAGIC` (carried: what was read).
    BadMagic(u32),
    /// The header's version is not `FRAME_VERSION` (carried: what was read).
    BadVersion(u16),
    /// The header's kind byte names no `FrameKind` (carried: the byte).
    BadKind(u8),
    /// The frame is of another kind than the field it was read from.
    WrongKind {
        /// The `FrameKind` code the field holds.
        expected: u8,
        /// The `FrameKind` code the header named.
        got: u8,
    },
    /// A reserved byte or field was not zero.
    ReservedNonZero,
    /// The frame (or a count inside it) exceeds its capacity.
    TooLarge {
        /// Bytes the frame (or count) needs.
        bytes: usize,
        /// Bytes its field holds at most.
        max: usize,
    },
    /// A field held an out-of-range value (an enum code, a bool, a count).
    InvalidField(&'static str),
    /// A string was not UTF-8.
    InvalidUtf8,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            FrameError::Truncated { need, have } => write!(f, "truncated: {need} bytes needed, {have} there"),
            FrameError::TrailingBytes { extra } => write!(f, "{extra} bytes after the frame"),
            FrameError::BadMagic(m) => write!(f, "bad magic {m:#010x}"),
            FrameError::BadVersion(v) => write!(f, "frame format version {v}, expected {FRAME_VERSION}"),
            FrameError::BadKind(k) => write!(f, "unknown frame kind {k}"),
            FrameError::WrongKind { expected, got } => write!(f, "a frame of kind {got} where kind {expected} belongs"),
            FrameError::ReservedNonZero => f.write_str("a reserved field is not zero"),
            FrameError::TooLarge { bytes, max } => write!(f, "{bytes} bytes where at most {max} fit"),
            FrameError::InvalidField(name) => write!(f, "field {name} holds an invalid value"),
            FrameError::InvalidUtf8 => f.write_str("a string is not UTF-8"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Check a register control's spec against every limit of the control
/// frame: the kernel name first (`KERNEL_MAX_BYTES`), then the whole frame
/// (`CONTROL_FRAME_BYTES`). Computed without encoding or copying.
pub fn check_spec(spec: &CallableSpec) -> Result<(), TooLarge> {
    if spec.kernel.len() > KERNEL_MAX_BYTES {
        return Err(TooLarge { limit: Limit::KernelName, bytes: spec.kernel.len(), max: KERNEL_MAX_BYTES });
    }
    // header + op code (1) + spec
    let bytes = HEADER_BYTES.saturating_add(1).saturating_add(payload::spec_len(spec));
    if bytes > CONTROL_FRAME_BYTES {
        return Err(TooLarge { limit: Limit::ControlFrame, bytes, max: CONTROL_FRAME_BYTES });
    }
    Ok(())
}

/// Check a run's arguments against the task frame (`TASK_FRAME_BYTES`),
/// without encoding or copying them.
pub fn check_args(args: &TaskArgs) -> Result<(), TooLarge> {
    let bytes = HEADER_BYTES.saturating_add(payload::args_len(args));
    if bytes > TASK_FRAME_BYTES {
        return Err(TooLarge { limit: Limit::TaskFrame, bytes, max: TASK_FRAME_BYTES });
    }
    Ok(())
}

/// Check a run's output against the task result frame
/// (`TASK_RESULT_BYTES`): an L3 chip child answers a run whose output does
/// not fit with this error instead.
pub fn check_output(out: &RunOutput) -> Result<(), TooLarge> {
    let bytes = HEADER_BYTES.saturating_add(payload::output_len(out));
    if bytes > TASK_RESULT_BYTES {
        return Err(TooLarge { limit: Limit::TaskResult, bytes, max: TASK_RESULT_BYTES });
    }
    Ok(())
}

/// Frame kinds: the header's kind byte (the discriminant is the wire code).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum FrameKind {
    /// A `TaskFrame` (parent -> child, the task field).
    Task = 1,
    /// A `ControlFrame` (parent -> child, the control field).
    Control = 2,
    /// A `TaskResultFrame` (child -> parent, the task result field).
    TaskResult = 3,
    /// A `ControlResultFrame` (child -> parent, the control result field).
    ControlResult = 4,
    /// A `CompletionFrame` (child -> parent, the completion ring).
    Completion = 5,
}

impl FrameKind {
    /// The kind with wire code `code`, or `None` for an unknown code.
    pub fn from_code(code: u8) -> Option<FrameKind> {
        Some(match code {
            1 => FrameKind::Task,
            2 => FrameKind::Control,
            3 => FrameKind::TaskResult,
            4 => FrameKind::ControlResult,
            5 => FrameKind::Completion,
            _ => return None,
        })
    }
}

/// A validated header.
#[derive(Clone, Copy, Debug)]
struct Header {
    kind: FrameKind,
    id: FrameId,
    payload_len: u32,
}

impl Header {
    /// Reads and validates the header at the start of `bytes` (magic,
    /// version, kind, reserved bytes, and `32 + payload_len` against the
    /// kind's capacity). Does not look at the payload.
    fn read(bytes: &[u8]) -> Result<Header, FrameError> {
        let mut r = Reader::new(bytes);
        if r.remaining() < HEADER_BYTES {
            return Err(FrameError::Truncated { need: HEADER_BYTES, have: bytes.len() });
        }
        let magic = r.u32()?;
        if magic != FRAME_MAGIC {
            return Err(FrameError::BadMagic(magic));
        }
        let version = r.u16()?;
        if version != FRAME_VERSION {
            return Err(FrameError::BadVersion(version));
        }
        let code = r.u8()?;
        let kind = FrameKind::from_code(code).ok_or(FrameError::BadKind(code))?;
        let reserved0 = r.u8()?;
        let id =
            FrameId { dispatch: DispatchId(r.u64()?), slot: SlotIndex(r.u32()?), generation: Generation(r.u32()?) };
        let payload_len = r.u32()?;
        let reserved1 = r.u32()?;
        if reserved0 != 0 || reserved1 != 0 {
            return Err(FrameError::ReservedNonZero);
        }
        let header = Header { kind, id, payload_len };
        let max = Frame::capacity(kind);
        if header.total_len() > max {
            return Err(FrameError::TooLarge { bytes: header.total_len(), max });
        }
        Ok(header)
    }

    fn total_len(&self) -> usize {
        HEADER_BYTES.saturating_add(self.payload_len as usize)
    }
}

/// The identity every frame carries.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FrameId {
    /// The dispatch this frame belongs to; a reply carries its request's.
    pub dispatch: DispatchId,
    /// The slot the frame is about (0 for a register control).
    pub slot: SlotIndex,
    /// The slot's generation the sender saw (0 for a register control).
    pub generation: Generation,
}

/// Parent -> child: run a prepared callable.
#[derive(Clone, PartialEq, Debug, Hash)]
pub struct TaskFrame {
    /// The dispatch and the handle (slot, generation) to run.
    pub id: FrameId,
    /// How to launch the callable.
    pub config: RunConfig,
    /// The run's inputs.
    pub args: TaskArgs,
}

/// What a control asks for.
#[derive(Clone, PartialEq, Debug, Hash)]
pub enum ControlOp {
    /// Register (and prepare) a chip callable. `id.slot`/`id.generation` are 0.
    Register {
        /// What to register.
        spec: CallableSpec,
    },
    /// End one registration of the handle named by `id.slot`/`id.generation`.
    Unregister,
    /// A memory control (allocate/free device memory); waits for IDLE.
    Memory {
        /// Size of the allocation.
        bytes: u64,
        /// `true` frees, `false` allocates.
        free: bool,
    },
    /// A domain control (device-wide settings); waits for IDLE.
    Domain {
        /// Which setting (device-defined).
        code: u32,
        /// Its new value.
        value: u64,
    },
}

impl ControlOp {
    /// Chip-callable controls may enter during TASK_RUNNING; memory and
    /// domain controls wait for IDLE (docs/protocol.md section 4, rule 3).
    pub fn allowed_during_task(&self) -> bool {
        matches!(self, ControlOp::Register { .. } | ControlOp::Unregister)
    }
}

/// Parent -> child: a control.
#[derive(Clone, PartialEq, Debug, Hash)]
pub struct ControlFrame {
    /// The dispatch and, for an unregister, the handle (slot, generation).
    pub id: FrameId,
    /// What the control asks for.
    pub op: ControlOp,
}

impl ControlFrame {
    /// Exact encoded size in bytes (header included), without encoding
    /// and without building a [`Frame`] (which would take the frame by
    /// value); saturates as [`Frame::encoded_len`] does.
    pub fn encoded_len(&self) -> usize {
        HEADER_BYTES.saturating_add(payload::control_len(&self.op))
    }
}

/// Child -> parent: the result of a task.
#[derive(Clone, PartialEq, Debug, Hash)]
pub struct TaskResultFrame {
    /// The task's identity, echoed.
    pub id: FrameId,
    /// The run's output or why it failed.
    pub result: Result<RunOutput, RunError>,
}

/// What an accepted control did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ControlReply {
    /// Register accepted: the handle's slot and generation; `fresh` = a
    /// prepare was queued (its settlement comes through the completion ring).
    Registered {
        /// The handle's slot.
        slot: SlotIndex,
        /// The handle's generation.
        generation: Generation,
        /// A prepare was queued (the callable was not registered yet).
        fresh: bool,
    },
    /// Unregister accepted; `last` = teardown started (the free's settlement
    /// comes through the completion ring).
    Unregistered {
        /// That was the last registration: the slot's teardown started.
        last: bool,
    },
    /// Memory or domain control done.
    Done,
}

impl ControlReply {
    /// Does the parent wait for a settlement through the completion ring
    /// after this reply? Every accepted register (it resolves on its
    /// slot's settlement: PREPARED or FAILED, now or after the prepare) and
    /// a final unregister (it resolves when the artifact was freed).
    pub fn owes_settlement(&self) -> bool {
        match self {
            ControlReply::Registered { .. } => true,
            ControlReply::Unregistered { last } => *last,
            ControlReply::Done => false,
        }
    }
}

/// Child -> parent: the result of a control (separate field from the task
/// result: rule 8).
#[derive(Clone, PartialEq, Debug, Hash)]
pub struct ControlResultFrame {
    /// The control's identity, echoed.
    pub id: FrameId,
    /// What the control did, or why it was refused.
    pub result: Result<ControlReply, ControlError>,
}

/// What settled.
#[derive(Clone, PartialEq, Debug, Hash)]
pub enum Settlement {
    /// The prepare finished: `Ok` = PREPARED, `Err` = FAILED or cancelled.
    Prepared(Result<(), RegisterError>),
    /// The slot's artifact was freed (teardown finished).
    Freed,
}

/// Child -> parent through the completion ring.
#[derive(Clone, PartialEq, Debug, Hash)]
pub struct CompletionFrame {
    /// The dispatch of the control that owed this settlement and the slot
    /// (slot, generation) that settled.
    pub id: FrameId,
    /// What settled.
    pub settlement: Settlement,
}

/// Any frame.
#[derive(Clone, PartialEq, Debug, Hash)]
pub enum Frame {
    /// Parent -> child: run a prepared callable.
    Task(TaskFrame),
    /// Parent -> child: a control.
    Control(ControlFrame),
    /// Child -> parent: the result of a task.
    TaskResult(TaskResultFrame),
    /// Child -> parent: the result of a control.
    ControlResult(ControlResultFrame),
    /// Child -> parent: a settlement through the completion ring.
    Completion(CompletionFrame),
}

impl Frame {
    /// Encode into a fresh buffer; `TooLarge` if it exceeds its kind's capacity.
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        let len = self.checked_len()?;
        let mut buf = vec![0u8; len];
        let n = self.write(&mut buf, len)?;
        debug_assert_eq!(n, len, "encoded_len disagrees with the encoder");
        Ok(buf)
    }

    /// Exact encoded size in bytes (header included), without encoding.
    /// Saturates instead of overflowing for absurd frames (which then fail
    /// `encode` with `TooLarge`).
    pub fn encoded_len(&self) -> usize {
        HEADER_BYTES.saturating_add(self.payload_len())
    }

    /// Encode into `buf` (a mailbox field); returns the bytes written.
    /// `TooLarge` if the frame exceeds its kind's capacity or `buf`; the
    /// bytes of `buf` past the frame are left untouched.
    pub fn encode_into(&self, buf: &mut [u8]) -> Result<usize, FrameError> {
        let len = self.checked_len()?;
        if len > buf.len() {
            return Err(FrameError::TooLarge { bytes: len, max: buf.len() });
        }
        self.write(buf, len)
    }

    /// Decode exactly one frame occupying all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
        Frame::decode_after(Header::read(bytes)?, bytes)
    }

    /// [`Frame::decode`] of `bytes` whose header `header` was read already.
    fn decode_after(header: Header, bytes: &[u8]) -> Result<Frame, FrameError> {
        let total = header.total_len();
        if total > bytes.len() {
            return Err(FrameError::Truncated { need: total, have: bytes.len() });
        }
        if bytes.len() > total {
            return Err(FrameError::TrailingBytes { extra: bytes.len() - total });
        }
        let mut r = Reader::new(bytes);
        r.take(HEADER_BYTES)?;
        let id = header.id;
        let frame = match header.kind {
            FrameKind::Task => Frame::Task(payload::get_task(&mut r, id)?),
            FrameKind::Control => Frame::Control(ControlFrame { id, op: payload::get_control(&mut r)? }),
            FrameKind::TaskResult => Frame::TaskResult(payload::get_task_result(&mut r, id)?),
            FrameKind::ControlResult => Frame::ControlResult(payload::get_control_result(&mut r, id)?),
            FrameKind::Completion => Frame::Completion(payload::get_completion(&mut r, id)?),
        };
        r.finish()?;
        Ok(frame)
    }

    /// Decode the frame at the start of a mailbox field: reads the header's
    /// `payload_len` and decodes exactly header + payload (the rest of the
    /// field is ignored). Checks the kind is `expected`.
    pub fn decode_field(field: &[u8], expected: FrameKind) -> Result<Frame, FrameError> {
        let header = Header::read(field)?;
        if header.kind != expected {
            return Err(FrameError::WrongKind { expected: expected as u8, got: header.kind as u8 });
        }
        let total = header.total_len();
        match field.get(..total) {
            Some(frame) => Frame::decode_after(header, frame),
            None => Err(FrameError::Truncated { need: total, have: field.len() }),
        }
    }

    fn payload_len(&self) -> usize {
        match self {
            Frame::Task(f) => payload::task_len(f),
            Frame::Control(f) => payload::control_len(&f.op),
            Frame::TaskResult(f) => payload::task_result_len(f),
            Frame::ControlResult(f) => payload::control_result_len(f),
            Frame::Completion(f) => payload::completion_len(f),
        }
    }

    /// The encoded length, checked against the kind's capacity.
    fn checked_len(&self) -> Result<usize, FrameError> {
        let len = self.encoded_len();
        let max = Frame::capacity(self.kind());
        if len > max {
            return Err(FrameError::TooLarge { bytes: len, max });
        }
        Ok(len)
    }

    /// Writes header + payload (`len` bytes, already checked) into `buf`.
    fn write(&self, buf: &mut [u8], len: usize) -> Result<usize, FrameError> {
        let mut w = Writer::new(buf);
        let id = self.id();
        w.u32(FRAME_MAGIC)?;
        w.u16(FRAME_VERSION)?;
        w.u8(self.kind() as u8)?;
        w.u8(0)?;
        w.u64(id.dispatch.0)?;
        w.u32(id.slot.0)?;
        w.u32(id.generation.0)?;
        // Fits: len <= capacity <= 64 KiB.
        w.u32((len - HEADER_BYTES) as u32)?;
        w.u32(0)?;
        match self {
            Frame::Task(f) => payload::put_task(&mut w, f)?,
            Frame::Control(f) => payload::put_control(&mut w, &f.op)?,
            Frame::TaskResult(f) => payload::put_task_result(&mut w, f)?,
            Frame::ControlResult(f) => payload::put_control_result(&mut w, f)?,
            Frame::Completion(f) => payload::put_completion(&mut w, f)?,
        }
        assert_eq!(w.written(), len, "frame encoder wrote a different length than encoded_len");
        Ok(len)
    }

    /// This frame's kind (the header's kind byte).
    pub fn kind(&self) -> FrameKind {
        match self {
            Frame::Task(_) => FrameKind::Task,
            Frame::Control(_) => FrameKind::Control,
            Frame::TaskResult(_) => FrameKind::TaskResult,
            Frame::ControlResult(_) => FrameKind::ControlResult,
            Frame::Completion(_) => FrameKind::Completion,
        }
    }

    /// The identity in this frame's header.
    pub fn id(&self) -> FrameId {
        match self {
            Frame::Task(f) => f.id,
            Frame::Control(f) => f.id,
            Frame::TaskResult(f) => f.id,
            Frame::ControlResult(f) => f.id,
            Frame::Completion(f) => f.id,
        }
    }

    /// Capacity of this kind's mailbox field.
    pub fn capacity(kind: FrameKind) -> usize {
        match kind {
            FrameKind::Task => TASK_FRAME_BYTES,
            FrameKind::Control => CONTROL_FRAME_BYTES,
            FrameKind::TaskResult => TASK_RESULT_BYTES,
            FrameKind::ControlResult => CONTROL_RESULT_BYTES,
            FrameKind::Completion => COMPLETION_BYTES,
        }
    }
}
