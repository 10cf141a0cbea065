//! The mailbox protocol between a host parent and a chip child.
//!
//! - [`word`]: the state word's values and its pure `transition_to_*`
//!   functions (the only legal transitions, each owned by one side);
//! - [`parent`]: the parent endpoint machine;
//! - [`child`]: the child endpoint machine;
//! - [`ring`]: the completion ring's indices.
//!
//! Both machines are pure: they never touch memory shared with the other
//! side. They tell their driver what to read, what to write and which
//! compare-and-swap to attempt on the word; the driver (the concurrent layer,
//! the simulator, the fuzz harness, the exhaustive checker) does it and
//! reports back.

pub mod child;
pub mod parent;
pub mod ring;
pub mod word;

use crate::frame::{Frame, FrameError, FrameKind};

/// The fields of a mailbox region. Each holds one frame (or, for the ring,
/// one completion per entry).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Field {
    /// Parent -> child task frame.
    Task,
    /// Parent -> child control frame.
    Control,
    /// Child -> parent task result (never shared with the control result: rule 8).
    TaskResult,
    /// Child -> parent control result.
    ControlResult,
}

/// The field a frame of `kind` is written to and read from. Completions go
/// through the ring, not a field (`None`).
pub fn field_for(kind: FrameKind) -> Option<Field> {
    match kind {
        FrameKind::Task => Some(Field::Task),
        FrameKind::Control => Some(Field::Control),
        FrameKind::TaskResult => Some(Field::TaskResult),
        // MUTANT shared_result_field: the control result shares the task
        // result's field (and `read` accepts either kind there), so a task
        // result written while a control's result waits overwrites it.
        FrameKind::ControlResult if cfg!(chiplane_mutant = "shared_result_field") => Some(Field::TaskResult),
        FrameKind::ControlResult => Some(Field::ControlResult),
        FrameKind::Completion => None,
    }
}

/// Which frame kind the reader of `field` expects.
pub fn kind_in(field: Field) -> FrameKind {
    match field {
        Field::Task => FrameKind::Task,
        Field::Control => FrameKind::Control,
        Field::TaskResult => FrameKind::TaskResult,
        Field::ControlResult => FrameKind::ControlResult,
    }
}

/// Decode the frame at the start of `field`'s bytes. The one reader of a
/// field every driver uses (the region, the simulated memories): a frame
/// of another kind than the field holds is `FrameError::WrongKind`, except
/// under the `shared_result_field` mutant, where the shared result field
/// decodes either result kind (one field, one decodable kind), so the
/// mutant shows only when a task result overwrites a control result
/// between its write and the parent's read.
pub fn read(field: Field, bytes: &[u8]) -> Result<Frame, FrameError> {
    let r = Frame::decode_field(bytes, kind_in(field));
    if cfg!(chiplane_mutant = "shared_result_field") && field == Field::TaskResult {
        if let Err(FrameError::WrongKind { got, .. }) = r {
            if got == FrameKind::ControlResult as u8 {
                return Frame::decode_field(bytes, FrameKind::ControlResult);
            }
        }
    }
    r
}
