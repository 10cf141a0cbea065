//! Target `frame_decode`: arbitrary bytes into `Frame::decode` and
//! `Frame::decode_field` (for every kind).
//!
//! Checks (a panic is a crash):
//! - no panic, whatever the bytes;
//! - whatever `decode` accepts re-encodes to exactly the same bytes
//!   (the codec accepts only canonical encodings);
//! - whatever `decode_field` accepts has the expected kind and re-encodes to
//!   the prefix of the field it was read from;
//! - the input is also tried with its header's `payload_len` patched to the
//!   input's length, so mutations reach the payload decoders instead of
//!   stopping at the length check.

use chiplane_core::chip::{CallableSpec, ChipError, ChipErrorKind, RunConfig, RunOutput, TaskArgs};
use chiplane_core::error::{ControlError, EndpointError, PoisonReason, RegisterError, RunError, UnregisterError};
use chiplane_core::frame::{
    CompletionFrame, ControlFrame, ControlOp, ControlReply, ControlResultFrame, Frame, FrameError, FrameId, FrameKind,
    Settlement, TaskFrame, TaskResultFrame, HEADER_BYTES,
};
use chiplane_core::ids::{DispatchId, Generation, SlotIndex};
use chiplane_core::slot::SlotState;
use chiplane_core::HandleError;

const KINDS: [FrameKind; 5] =
    [FrameKind::Task, FrameKind::Control, FrameKind::TaskResult, FrameKind::ControlResult, FrameKind::Completion];

/// The fuzz target body.
pub fn frame_decode(data: &[u8]) {
    check(data);
    if data.len() >= HEADER_BYTES {
        let mut patched = data.to_vec();
        let payload_len = u32::try_from(data.len() - HEADER_BYTES).unwrap_or(u32::MAX);
        patched[24..28].copy_from_slice(&payload_len.to_le_bytes());
        check(&patched);
    }
}

fn check(data: &[u8]) {
    if let Ok(frame) = Frame::decode(data) {
        match frame.encode() {
            Ok(bytes) => assert!(bytes == data, "decode accepted a non-canonical encoding of {frame:?}"),
            Err(e) => panic!("decoded frame does not re-encode ({e:?}): {frame:?}"),
        }
        assert_eq!(frame.encoded_len(), data.len(), "encoded_len disagrees");
    }
    for kind in KINDS {
        match Frame::decode_field(data, kind) {
            Ok(frame) => {
                assert_eq!(frame.kind(), kind, "decode_field returned another kind");
                let bytes = frame.encode().expect("a decoded frame re-encodes");
                assert!(data.get(..bytes.len()) == Some(&bytes[..]), "field prefix differs from re-encoding");
            }
            Err(FrameError::WrongKind { expected, .. }) => assert_eq!(expected, kind as u8),
            Err(_) => {}
        }
    }
}

/// One valid frame of every kind and every payload variant (the seed
/// corpus, and the base of the replay smoke's mutations).
pub fn seed_frames() -> Vec<Frame> {
    let id =
        |d: u64, s: u32, g: u32| FrameId { dispatch: DispatchId(d), slot: SlotIndex(s), generation: Generation(g) };
    let chip_err = || ChipError::new(ChipErrorKind::Device, "out of memory: needed 4096 bytes");
    let poisoned = EndpointError::Poisoned(PoisonReason::MalformedFrame(FrameError::InvalidField("run_error")));
    let mut frames = vec![
        Frame::Task(TaskFrame {
            id: id(1, 0, 1),
            config: RunConfig { block_dim: 24, flags: 0 },
            args: TaskArgs {
                tensors: vec![vec![1.0, 2.0, 3.0], vec![], vec![f32::from_bits(0x7fc0_0001)]],
                scalars: vec![3, u64::MAX],
            },
        }),
        Frame::Task(TaskFrame { id: id(2, 5, 9), config: RunConfig::default(), args: TaskArgs::default() }),
        Frame::Control(ControlFrame {
            id: id(3, 0, 0),
            op: ControlOp::Register { spec: CallableSpec::chip("vector_add", vec![1024, 4]) },
        }),
        Frame::Control(ControlFrame { id: id(4, 2, 1), op: ControlOp::Unregister }),
        Frame::Control(ControlFrame { id: id(5, 0, 0), op: ControlOp::Memory { bytes: 1 << 20, free: true } }),
        Frame::Control(ControlFrame { id: id(6, 0, 0), op: ControlOp::Domain { code: 7, value: 42 } }),
        Frame::TaskResult(TaskResultFrame { id: id(1, 0, 1), result: Ok(RunOutput { tensors: vec![vec![2.0, 4.0]] }) }),
        Frame::ControlResult(ControlResultFrame {
            id: id(3, 0, 0),
            result: Ok(ControlReply::Registered { slot: SlotIndex(2), generation: Generation(1), fresh: true }),
        }),
        Frame::ControlResult(ControlResultFrame {
            id: id(4, 2, 1),
            result: Ok(ControlReply::Unregistered { last: true }),
        }),
        Frame::ControlResult(ControlResultFrame { id: id(5, 0, 0), result: Ok(ControlReply::Done) }),
        Frame::Completion(CompletionFrame { id: id(3, 2, 1), settlement: Settlement::Prepared(Ok(())) }),
        Frame::Completion(CompletionFrame { id: id(4, 2, 1), settlement: Settlement::Freed }),
    ];
    let run_errors = [
        RunError::Handle(HandleError::Stale { current: Generation(3) }),
        RunError::NotRunnable(SlotState::Cancelling),
        RunError::PrepareFailed(chip_err()),
        RunError::Cancelled,
        RunError::Chip(ChipError::new(ChipErrorKind::InvalidArgs, "é€")),
        RunError::TooLarge(chiplane_core::error::TooLarge {
            limit: chiplane_core::error::Limit::TaskFrame,
            bytes: 70000,
            max: 65536,
        }),
        RunError::TooLarge(chiplane_core::error::TooLarge {
            limit: chiplane_core::error::Limit::TaskResult,
            bytes: 70001,
            max: 65536,
        }),
        RunError::Endpoint(poisoned.clone()),
    ];
    frames
        .extend(run_errors.into_iter().map(|e| Frame::TaskResult(TaskResultFrame { id: id(9, 1, 1), result: Err(e) })));
    let register_errors = [
        RegisterError::WrongTarget,
        RegisterError::TableFull,
        RegisterError::PrepareFailed(chip_err()),
        RegisterError::Cancelled,
        RegisterError::Endpoint(EndpointError::ChildDied),
        RegisterError::TooLarge(chiplane_core::error::TooLarge {
            limit: chiplane_core::error::Limit::KernelName,
            bytes: 300,
            max: 256,
        }),
        RegisterError::NoSuchChip { chip: 3, chips: 2 },
        RegisterError::Endpoint(EndpointError::Poisoned(PoisonReason::DriverDied)),
    ];
    frames.extend(
        register_errors
            .iter()
            .cloned()
            .map(|e| Frame::Completion(CompletionFrame { id: id(10, 1, 1), settlement: Settlement::Prepared(Err(e)) })),
    );
    let control_errors = [
        ControlError::Register(RegisterError::TableFull),
        ControlError::Unregister(UnregisterError::Handle(HandleError::Foreign {
            expected: chiplane_core::WorkerId(1),
            got: chiplane_core::WorkerId(u128::MAX - 2),
        })),
        ControlError::Unregister(UnregisterError::NotRegistered),
        ControlError::Unregister(UnregisterError::Endpoint(EndpointError::LivenessTimeout)),
        ControlError::TooLarge(chiplane_core::error::TooLarge {
            limit: chiplane_core::error::Limit::ControlFrame,
            bytes: 5000,
            max: 4096,
        }),
        ControlError::Endpoint(EndpointError::Poisoned(PoisonReason::UnexpectedState(9))),
        ControlError::Endpoint(EndpointError::Poisoned(PoisonReason::MalformedFrame(FrameError::Truncated {
            need: 40,
            have: 33,
        }))),
        ControlError::Endpoint(EndpointError::ShutDown),
        ControlError::Endpoint(poisoned),
    ];
    frames.extend(
        control_errors
            .into_iter()
            .map(|e| Frame::ControlResult(ControlResultFrame { id: id(11, 1, 1), result: Err(e) })),
    );
    frames
}
