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
//! The payload layout depends on the kind (see each type's `encode`).
//! Decoding validates *everything* (magic, version, kind, reserved bytes,
//! lengths, counts against capacities, enum codes, UTF-8) and returns a typed
//! `FrameError`; it never panics, never reads past the slice, and accepts only
//! canonical encodings, so `encode(decode(b)?) == b` for every `b` that
//! decodes.
//!
//! Capacities (each mailbox field holds exactly one frame):
//! `TASK_FRAME_BYTES`, `CONTROL_FRAME_BYTES`, `TASK_RESULT_BYTES`,
//! `CONTROL_RESULT_BYTES`, `COMPLETION_BYTES`.

use crate::chip::{CallableSpec, RunConfig, RunOutput, TaskArgs};
use crate::error::{ControlError, RegisterError, RunError};
use crate::ids::{DispatchId, Generation, SlotIndex};

pub const FRAME_MAGIC: u32 = 0x504c_4843; // "CHLP"
pub const FRAME_VERSION: u16 = 1;
pub const HEADER_BYTES: usize = 32;
pub const TASK_FRAME_BYTES: usize = 64 * 1024;
pub const CONTROL_FRAME_BYTES: usize = 4 * 1024;
pub const TASK_RESULT_BYTES: usize = 64 * 1024;
pub const CONTROL_RESULT_BYTES: usize = 1024;
pub const COMPLETION_BYTES: usize = 512;

/// Why bytes did not decode (or a value did not fit when encoding).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FrameError {
    /// Fewer bytes than the header or than the header's `payload_len` says.
    Truncated { need: usize, have: usize },
    /// More bytes than header + payload_len.
    TrailingBytes { extra: usize },
    BadMagic(u32),
    BadVersion(u16),
    BadKind(u8),
    /// The frame is of another kind than the field it was read from.
    WrongKind { expected: u8, got: u8 },
    /// A reserved byte or field was not zero.
    ReservedNonZero,
    /// The frame (or a count inside it) exceeds its capacity.
    TooLarge { bytes: usize, max: usize },
    /// A field held an out-of-range value (an enum code, a bool, a count).
    InvalidField(&'static str),
    /// A string was not UTF-8.
    InvalidUtf8,
}

/// Frame kinds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum FrameKind {
    Task = 1,
    Control = 2,
    TaskResult = 3,
    ControlResult = 4,
    Completion = 5,
}

/// The identity every frame carries.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FrameId {
    pub dispatch: DispatchId,
    pub slot: SlotIndex,
    pub generation: Generation,
}

/// Parent -> child: run a prepared callable.
#[derive(Clone, PartialEq, Debug)]
pub struct TaskFrame {
    pub id: FrameId,
    pub config: RunConfig,
    pub args: TaskArgs,
}

/// What a control asks for.
#[derive(Clone, PartialEq, Debug)]
pub enum ControlOp {
    /// Register (and prepare) a chip callable. `id.slot`/`id.generation` are 0.
    Register { spec: CallableSpec },
    /// End one registration of the handle named by `id.slot`/`id.generation`.
    Unregister,
    /// A memory control (allocate/free device memory); waits for IDLE.
    Memory { bytes: u64, free: bool },
    /// A domain control (device-wide settings); waits for IDLE.
    Domain { code: u32, value: u64 },
}

impl ControlOp {
    /// Chip-callable controls may enter during TASK_RUNNING; memory and
    /// domain controls wait for IDLE (design.md section 4, rule 3).
    pub fn allowed_during_task(&self) -> bool {
        matches!(self, ControlOp::Register { .. } | ControlOp::Unregister)
    }
}

/// Parent -> child: a control.
#[derive(Clone, PartialEq, Debug)]
pub struct ControlFrame {
    pub id: FrameId,
    pub op: ControlOp,
}

/// Child -> parent: the result of a task.
#[derive(Clone, PartialEq, Debug)]
pub struct TaskResultFrame {
    pub id: FrameId,
    pub result: Result<RunOutput, RunError>,
}

/// What an accepted control did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ControlReply {
    /// Register accepted: the handle's slot and generation; `fresh` = a
    /// prepare was queued (its settlement comes through the completion ring).
    Registered { slot: SlotIndex, generation: Generation, fresh: bool },
    /// Unregister accepted; `last` = teardown started (the free's settlement
    /// comes through the completion ring).
    Unregistered { last: bool },
    /// Memory or domain control done.
    Done,
}

/// Child -> parent: the result of a control (separate field from the task
/// result: rule 8).
#[derive(Clone, PartialEq, Debug)]
pub struct ControlResultFrame {
    pub id: FrameId,
    pub result: Result<ControlReply, ControlError>,
}

/// What settled.
#[derive(Clone, PartialEq, Debug)]
pub enum Settlement {
    /// The prepare finished: `Ok` = PREPARED, `Err` = FAILED or cancelled.
    Prepared(Result<(), RegisterError>),
    /// The slot's artifact was freed (teardown finished).
    Freed,
}

/// Child -> parent through the completion ring.
#[derive(Clone, PartialEq, Debug)]
pub struct CompletionFrame {
    pub id: FrameId,
    pub settlement: Settlement,
}

/// Any frame.
#[derive(Clone, PartialEq, Debug)]
pub enum Frame {
    Task(TaskFrame),
    Control(ControlFrame),
    TaskResult(TaskResultFrame),
    ControlResult(ControlResultFrame),
    Completion(CompletionFrame),
}

impl Frame {
    /// Encode into a fresh buffer; `TooLarge` if it exceeds its kind's capacity.
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        todo!()
    }

    /// Exact encoded size in bytes (header included), without encoding.
    pub fn encoded_len(&self) -> usize {
        todo!()
    }

    /// Encode into `buf` (a mailbox field); returns the bytes written.
    pub fn encode_into(&self, buf: &mut [u8]) -> Result<usize, FrameError> {
        let _ = buf;
        todo!()
    }

    /// Decode exactly one frame occupying all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
        let _ = bytes;
        todo!()
    }

    /// Decode the frame at the start of a mailbox field: reads the header's
    /// `payload_len` and decodes exactly header + payload (the rest of the
    /// field is ignored). Checks the kind is `expected`.
    pub fn decode_field(field: &[u8], expected: FrameKind) -> Result<Frame, FrameError> {
        let _ = (field, expected);
        todo!()
    }

    pub fn kind(&self) -> FrameKind {
        match self {
            Frame::Task(_) => FrameKind::Task,
            Frame::Control(_) => FrameKind::Control,
            Frame::TaskResult(_) => FrameKind::TaskResult,
            Frame::ControlResult(_) => FrameKind::ControlResult,
            Frame::Completion(_) => FrameKind::Completion,
        }
    }

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

// Errors crossing the wire: RunError, RegisterError, UnregisterError,
// ControlError (with ChipError, HandleError, EndpointError inside) are encoded
// as a tagged tree of codes; ChipError details are truncated to
// ChipError::DETAIL_MAX_BYTES at a char boundary when *encoding* (decoding a
// longer detail is an error, so round trips stay exact).
