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

use crate::frame::FrameKind;

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
///
/// This is the one place every driver (concurrent layer, simulator, fuzz
/// harness, exhaustive checker) picks a field, so the `shared_result_field`
/// mutant lives here.
pub fn field_for(kind: FrameKind) -> Option<Field> {
    match kind {
        FrameKind::Task => Some(Field::Task),
        FrameKind::Control => Some(Field::Control),
        FrameKind::TaskResult => Some(Field::TaskResult),
        // MUTANT shared_result_field: the control result overwrites the task result's field.
        #[cfg(chiplane_mutant = "shared_result_field")]
        FrameKind::ControlResult => Some(Field::TaskResult),
        #[cfg(not(chiplane_mutant = "shared_result_field"))]
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
