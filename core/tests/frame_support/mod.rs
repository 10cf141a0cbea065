//! Proptest strategies for every frame type (errors included) and byte
//! mutations of valid encodings, for `frame_codec.rs`.

use chiplane_core::chip::{CallableSpec, ChipError, ChipErrorKind, RunConfig, RunOutput, TargetKind, TaskArgs};
use chiplane_core::error::{
    ControlError, EndpointError, HandleError, Limit, PoisonReason, RegisterError, RunError, TooLarge, UnregisterError,
};
use chiplane_core::frame::*;
use chiplane_core::ids::{DispatchId, Generation, SlotIndex, WorkerId};
use chiplane_core::slot::SlotState;
use proptest::prelude::*;

pub fn id(d: u64, s: u32, g: u32) -> FrameId {
    FrameId { dispatch: DispatchId(d), slot: SlotIndex(s), generation: Generation(g) }
}

pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

pub fn arb_id() -> impl Strategy<Value = FrameId> {
    (any::<u64>(), any::<u32>(), any::<u32>()).prop_map(|(d, s, g)| id(d, s, g))
}

pub fn arb_f32() -> impl Strategy<Value = f32> {
    prop_oneof![any::<f32>(), any::<u32>().prop_map(f32::from_bits)]
}

pub fn arb_tensors() -> impl Strategy<Value = Vec<Vec<f32>>> {
    prop::collection::vec(prop::collection::vec(arb_f32(), 0..12), 0..5)
}

pub fn arb_string(max: usize) -> impl Strategy<Value = String> {
    "\\PC{0,80}".prop_map(move |s: String| {
        let mut end = s.len().min(max);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_owned()
    })
}

pub fn arb_chip_error() -> impl Strategy<Value = ChipError> {
    (1u16..=5, prop_oneof![arb_string(ChipError::DETAIL_MAX_BYTES), "[a-z]{150,192}"])
        .prop_map(|(k, d)| ChipError::new(ChipErrorKind::from_code(k).unwrap(), d))
}

pub fn arb_slot_state() -> impl Strategy<Value = SlotState> {
    prop::sample::select(vec![
        SlotState::Empty,
        SlotState::Preparing,
        SlotState::Prepared,
        SlotState::Failed,
        SlotState::Cancelling,
        SlotState::Unregistering,
        SlotState::Retired,
    ])
}

pub fn arb_handle_error() -> impl Strategy<Value = HandleError> {
    prop_oneof![
        (any::<u128>(), any::<u128>())
            .prop_map(|(e, g)| HandleError::Foreign { expected: WorkerId(e), got: WorkerId(g) }),
        any::<u32>().prop_map(|c| HandleError::Stale { current: Generation(c) }),
        Just(HandleError::OutOfRange),
    ]
}

pub fn arb_frame_error() -> impl Strategy<Value = FrameError> {
    let n = || any::<u64>().prop_map(|x| x as usize);
    prop_oneof![
        (n(), n()).prop_map(|(need, have)| FrameError::Truncated { need, have }),
        n().prop_map(|extra| FrameError::TrailingBytes { extra }),
        any::<u32>().prop_map(FrameError::BadMagic),
        any::<u16>().prop_map(FrameError::BadVersion),
        any::<u8>().prop_map(FrameError::BadKind),
        (any::<u8>(), any::<u8>()).prop_map(|(expected, got)| FrameError::WrongKind { expected, got }),
        Just(FrameError::ReservedNonZero),
        (n(), n()).prop_map(|(bytes, max)| FrameError::TooLarge { bytes, max }),
        prop::sample::select(FIELD_NAMES.to_vec()).prop_map(FrameError::InvalidField),
        Just(FrameError::InvalidUtf8),
    ]
}

pub fn arb_poison() -> impl Strategy<Value = PoisonReason> {
    prop_oneof![
        arb_frame_error().prop_map(PoisonReason::MalformedFrame),
        Just(PoisonReason::IdentityMismatch),
        any::<u32>().prop_map(PoisonReason::UnexpectedState),
        Just(PoisonReason::ChildDied),
        Just(PoisonReason::LivenessTimeout),
        Just(PoisonReason::DriverDied),
    ]
}

pub fn arb_endpoint() -> impl Strategy<Value = EndpointError> {
    prop_oneof![
        Just(EndpointError::ChildDied),
        Just(EndpointError::LivenessTimeout),
        arb_poison().prop_map(EndpointError::Poisoned),
        Just(EndpointError::ShutDown),
    ]
}

pub fn arb_run_error() -> impl Strategy<Value = RunError> {
    prop_oneof![
        arb_handle_error().prop_map(RunError::Handle),
        arb_slot_state().prop_map(RunError::NotRunnable),
        arb_chip_error().prop_map(RunError::PrepareFailed),
        Just(RunError::Cancelled),
        arb_chip_error().prop_map(RunError::Chip),
        arb_too_large().prop_map(RunError::TooLarge),
        arb_endpoint().prop_map(RunError::Endpoint),
    ]
}

pub fn arb_register_error() -> impl Strategy<Value = RegisterError> {
    prop_oneof![
        Just(RegisterError::WrongTarget),
        Just(RegisterError::TableFull),
        arb_chip_error().prop_map(RegisterError::PrepareFailed),
        Just(RegisterError::Cancelled),
        arb_endpoint().prop_map(RegisterError::Endpoint),
        arb_too_large().prop_map(RegisterError::TooLarge),
        (any::<u64>(), any::<u64>())
            .prop_map(|(c, n)| RegisterError::NoSuchChip { chip: c as usize, chips: n as usize }),
    ]
}

pub fn arb_too_large() -> impl Strategy<Value = TooLarge> {
    (
        prop::sample::select(vec![Limit::KernelName, Limit::ControlFrame, Limit::TaskFrame, Limit::TaskResult]),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(limit, b, m)| TooLarge { limit, bytes: b as usize, max: m as usize })
}

pub fn arb_unregister_error() -> impl Strategy<Value = UnregisterError> {
    prop_oneof![
        arb_handle_error().prop_map(UnregisterError::Handle),
        Just(UnregisterError::NotRegistered),
        arb_endpoint().prop_map(UnregisterError::Endpoint),
    ]
}

pub fn arb_control_error() -> impl Strategy<Value = ControlError> {
    prop_oneof![
        arb_register_error().prop_map(ControlError::Register),
        arb_unregister_error().prop_map(ControlError::Unregister),
        arb_too_large().prop_map(ControlError::TooLarge),
        arb_endpoint().prop_map(ControlError::Endpoint),
    ]
}

pub fn arb_spec() -> impl Strategy<Value = CallableSpec> {
    (any::<bool>(), arb_string(KERNEL_MAX_BYTES), prop::collection::vec(any::<u64>(), 0..8)).prop_map(
        |(chip, kernel, params)| CallableSpec {
            kind: if chip { TargetKind::ChipCallable } else { TargetKind::Orchestration },
            kernel,
            params,
        },
    )
}

pub fn arb_control_op() -> impl Strategy<Value = ControlOp> {
    prop_oneof![
        arb_spec().prop_map(|spec| ControlOp::Register { spec }),
        Just(ControlOp::Unregister),
        (any::<u64>(), any::<bool>()).prop_map(|(bytes, free)| ControlOp::Memory { bytes, free }),
        (any::<u32>(), any::<u64>()).prop_map(|(code, value)| ControlOp::Domain { code, value }),
    ]
}

pub fn arb_reply() -> impl Strategy<Value = ControlReply> {
    prop_oneof![
        (any::<u32>(), any::<u32>(), any::<bool>()).prop_map(|(s, g, fresh)| {
            ControlReply::Registered { slot: SlotIndex(s), generation: Generation(g), fresh }
        }),
        any::<bool>().prop_map(|last| ControlReply::Unregistered { last }),
        Just(ControlReply::Done),
    ]
}

pub fn arb_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (arb_id(), any::<u32>(), any::<u32>(), arb_tensors(), prop::collection::vec(any::<u64>(), 0..8)).prop_map(
            |(id, block_dim, flags, tensors, scalars)| {
                Frame::Task(TaskFrame {
                    id,
                    config: RunConfig { block_dim, flags },
                    args: TaskArgs { tensors, scalars },
                })
            }
        ),
        (arb_id(), arb_control_op()).prop_map(|(id, op)| Frame::Control(ControlFrame { id, op })),
        (
            arb_id(),
            prop_oneof![arb_tensors().prop_map(|tensors| Ok(RunOutput { tensors })), arb_run_error().prop_map(Err)]
        )
            .prop_map(|(id, result)| Frame::TaskResult(TaskResultFrame { id, result })),
        (arb_id(), prop_oneof![arb_reply().prop_map(Ok), arb_control_error().prop_map(Err)])
            .prop_map(|(id, result)| Frame::ControlResult(ControlResultFrame { id, result })),
        (
            arb_id(),
            prop_oneof![
                Just(Settlement::Freed),
                Just(Settlement::Prepared(Ok(()))),
                arb_register_error().prop_map(|e| Settlement::Prepared(Err(e)))
            ]
        )
            .prop_map(|(id, settlement)| Frame::Completion(CompletionFrame { id, settlement })),
    ]
}

#[derive(Clone, Debug)]
pub enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    SetU32 { at: usize, value: u32 },
    Truncate { at: usize },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
}

pub fn arb_mutation() -> impl Strategy<Value = Mutation> {
    let at = || any::<prop::sample::Index>().prop_map(|i| i.index(1 << 16));
    prop_oneof![
        (at(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (at(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (at(), prop_oneof![any::<u32>(), 0u32..300]).prop_map(|(at, value)| Mutation::SetU32 { at, value }),
        at().prop_map(|at| Mutation::Truncate { at }),
        (at(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        at().prop_map(|at| Mutation::Remove { at }),
    ]
}

pub fn apply(b: &mut Vec<u8>, m: &Mutation) {
    if b.is_empty() {
        return;
    }
    let n = b.len();
    match *m {
        Mutation::Flip { at, bit } => b[at % n] ^= 1 << bit,
        Mutation::Set { at, byte } => b[at % n] = byte,
        Mutation::SetU32 { at, value } => {
            if n >= 4 {
                let at = at % (n - 3);
                b[at..at + 4].copy_from_slice(&value.to_le_bytes());
            }
        }
        Mutation::Truncate { at } => b.truncate(at % n),
        Mutation::Insert { at, byte } => b.insert(at % (n + 1), byte),
        Mutation::Remove { at } => {
            b.remove(at % n);
        }
    }
}

/// Fixes `payload_len` after a length-changing mutation so that the
/// mutation reaches the payload decoder instead of stopping at the header.
pub fn fix_payload_len(b: &mut [u8]) {
    if b.len() >= 32 {
        let pl = (b.len() - 32) as u32;
        put_u32(b, 24, pl);
    }
}
