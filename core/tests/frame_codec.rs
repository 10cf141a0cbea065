//! Frame codec: one unit test per rejection, plus proptest properties:
//! (a) any bytes (random, and mutations of valid encodings) decode to Ok or a
//! typed error, and whatever decodes re-encodes to the same bytes;
//! (b) arbitrary frames of every kind (errors included) round-trip.

// proptest's `prop_oneof!` expands to `std::sync::Arc`; this test has no
// concurrency, so core's loom/shuttle ban on std::sync does not apply.
#![allow(clippy::disallowed_types)]

use chiplane_core::chip::{CallableSpec, ChipError, ChipErrorKind, RunConfig, TaskArgs};
use chiplane_core::error::{
    ControlError, EndpointError, HandleError, PoisonReason, RegisterError, RunError, UnregisterError,
};
use chiplane_core::frame::*;
use chiplane_core::slot::SlotState;
use proptest::prelude::*;

mod frame_support;
use frame_support::*;

// ---------------------------------------------------------------- helpers

fn task(tensors: Vec<Vec<f32>>, scalars: Vec<u64>) -> Frame {
    Frame::Task(TaskFrame {
        id: id(7, 3, 2),
        config: RunConfig { block_dim: 4, flags: 1 },
        args: TaskArgs { tensors, scalars },
    })
}

fn register(kernel: &str) -> Frame {
    Frame::Control(ControlFrame {
        id: id(8, 0, 0),
        op: ControlOp::Register { spec: CallableSpec::chip(kernel, vec![1, 2, 3]) },
    })
}

fn control_err(e: ControlError) -> Frame {
    Frame::ControlResult(ControlResultFrame { id: id(9, 1, 1), result: Err(e) })
}

/// Frames compared with f32 by bits (NaN payloads included).
fn same(a: &Frame, b: &Frame) -> bool {
    fn split(f: &Frame) -> (Frame, Vec<Vec<u32>>) {
        let bits = |ts: &mut Vec<Vec<f32>>| -> Vec<Vec<u32>> {
            let out = ts.iter().map(|t| t.iter().map(|x| x.to_bits()).collect()).collect();
            ts.clear();
            out
        };
        let mut f = f.clone();
        let b = match &mut f {
            Frame::Task(t) => bits(&mut t.args.tensors),
            Frame::TaskResult(TaskResultFrame { result: Ok(o), .. }) => bits(&mut o.tensors),
            _ => Vec::new(),
        };
        (f, b)
    }
    split(a) == split(b)
}

/// Encodes, checks `encoded_len`, decodes (whole and as a field), and
/// checks both decodings equal `f` by bits.
fn round_trip(f: &Frame) -> Vec<u8> {
    let bytes = f.encode().expect("encodes");
    assert_eq!(bytes.len(), f.encoded_len());
    if let Frame::Control(c) = f {
        assert_eq!(c.encoded_len(), bytes.len(), "ControlFrame::encoded_len");
    }
    let back = Frame::decode(&bytes).expect("decodes");
    assert!(same(f, &back), "round trip changed the frame:\n{f:?}\n{back:?}");
    let mut field = vec![0xAAu8; Frame::capacity(f.kind())];
    assert_eq!(f.encode_into(&mut field), Ok(bytes.len()));
    assert_eq!(&field[..bytes.len()], &bytes[..]);
    let back = Frame::decode_field(&field, f.kind()).expect("decodes as a field");
    assert!(same(f, &back));
    bytes
}

/// The canonical property for arbitrary bytes.
fn check_bytes(b: &[u8]) {
    if let Ok(f) = Frame::decode(b) {
        assert_eq!(f.encode().as_deref(), Ok(b), "non-canonical accept: {f:?}");
    }
    for kind in
        [FrameKind::Task, FrameKind::Control, FrameKind::TaskResult, FrameKind::ControlResult, FrameKind::Completion]
    {
        if let Ok(f) = Frame::decode_field(b, kind) {
            assert_eq!(f.kind(), kind);
            let enc = f.encode().expect("a decoded frame re-encodes");
            assert_eq!(&b[..enc.len()], &enc[..]);
        }
    }
}

// ---------------------------------------------------------------- unit: accepts

#[test]
fn header_layout_is_as_documented() {
    let b = round_trip(&task(vec![vec![1.0, 2.0]], vec![5]));
    assert_eq!(&b[0..4], &FRAME_MAGIC.to_le_bytes());
    assert_eq!(&b[4..6], &FRAME_VERSION.to_le_bytes());
    assert_eq!(b[6], FrameKind::Task as u8);
    assert_eq!(b[7], 0);
    assert_eq!(&b[8..16], &7u64.to_le_bytes());
    assert_eq!(&b[16..20], &3u32.to_le_bytes());
    assert_eq!(&b[20..24], &2u32.to_le_bytes());
    assert_eq!(&b[24..28], &((b.len() - HEADER_BYTES) as u32).to_le_bytes());
    assert_eq!(&b[28..32], &[0; 4]);
    // block_dim, flags, 1 tensor of 2, 1 scalar
    assert_eq!(b.len(), 32 + 8 + 4 + 4 + 8 + 4 + 8);
}

#[test]
fn tensor_elements_are_little_endian_bit_patterns() {
    // The codec copies whole tensors at once; the bytes must be what one
    // little-endian u32 of `to_bits` per element would be, in order.
    let xs = [1.5f32, -0.0, f32::from_bits(0x7fc0_1234), f32::MIN_POSITIVE, -7.25];
    let b = round_trip(&task(vec![xs.to_vec()], vec![]));
    let mut want = (xs.len() as u32).to_le_bytes().to_vec();
    for x in xs {
        want.extend_from_slice(&x.to_bits().to_le_bytes());
    }
    assert!(b.windows(want.len()).any(|w| w == want), "tensor bytes not found in {b:?}");
}

#[test]
fn nan_payloads_survive() {
    let weird = f32::from_bits(0x7fc0_1234);
    let b = round_trip(&task(vec![vec![weird, -0.0, f32::INFINITY]], vec![]));
    match Frame::decode(&b).unwrap() {
        Frame::Task(t) => assert_eq!(t.args.tensors[0][0].to_bits(), 0x7fc0_1234),
        other => panic!("{other:?}"),
    }
}

#[test]
fn detail_is_truncated_at_char_boundary() {
    // 'é' is 2 bytes; 97 of them = 194 bytes, the cut must fall at 192.
    let long = "é".repeat(97);
    let f = control_err(ControlError::Register(RegisterError::PrepareFailed(ChipError::new(
        ChipErrorKind::Device,
        long.clone(),
    ))));
    let b = f.encode().unwrap();
    assert_eq!(b.len(), f.encoded_len());
    let Frame::ControlResult(ControlResultFrame {
        result: Err(ControlError::Register(RegisterError::PrepareFailed(e))),
        ..
    }) = Frame::decode(&b).unwrap()
    else {
        panic!()
    };
    assert_eq!(e.detail, "é".repeat(96));
    // A 3-byte char straddling the limit: 191 ASCII + '€' (3 bytes) cuts to 191.
    let s = format!("{}€", "a".repeat(191));
    let f = control_err(ControlError::Register(RegisterError::PrepareFailed(ChipError::new(ChipErrorKind::Device, s))));
    let Frame::ControlResult(ControlResultFrame {
        result: Err(ControlError::Register(RegisterError::PrepareFailed(e))),
        ..
    }) = Frame::decode(&f.encode().unwrap()).unwrap()
    else {
        panic!()
    };
    assert_eq!(e.detail.len(), 191);
}

#[test]
fn decode_field_ignores_the_rest_of_the_field() {
    let f = register("vector_add");
    let b = f.encode().unwrap();
    let mut field = b.clone();
    field.extend_from_slice(&[0xFF; 100]);
    assert_eq!(Frame::decode_field(&field, FrameKind::Control), Ok(f));
    assert_eq!(Frame::decode(&field), Err(FrameError::TrailingBytes { extra: 100 }));
}

#[test]
fn encode_into_small_buffer_is_too_large() {
    let f = register("k");
    let mut buf = [0u8; 40];
    assert_eq!(f.encode_into(&mut buf), Err(FrameError::TooLarge { bytes: f.encoded_len(), max: 40 }));
}

// ---------------------------------------------------------------- unit: rejections

#[test]
fn rejects_truncated() {
    let b = register("vector_add").encode().unwrap();
    assert_eq!(Frame::decode(&[]), Err(FrameError::Truncated { need: 32, have: 0 }));
    assert_eq!(Frame::decode(&b[..31]), Err(FrameError::Truncated { need: 32, have: 31 }));
    assert_eq!(Frame::decode(&b[..b.len() - 1]), Err(FrameError::Truncated { need: b.len(), have: b.len() - 1 }));
    assert_eq!(
        Frame::decode_field(&b[..b.len() - 1], FrameKind::Control),
        Err(FrameError::Truncated { need: b.len(), have: b.len() - 1 })
    );
    // payload_len consistent with the slice but a count inside overruns it.
    let mut t = task(vec![vec![1.0; 4]], vec![]).encode().unwrap();
    put_u32(&mut t, 44, 5); // element count of tensor 0: 5 > 4 present
    assert!(matches!(Frame::decode(&t), Err(FrameError::Truncated { .. })));
}

#[test]
fn rejects_huge_count_without_allocating() {
    let mut t = task(vec![], vec![]).encode().unwrap();
    put_u32(&mut t, 40, u32::MAX); // tensor count
    assert!(matches!(Frame::decode(&t), Err(FrameError::Truncated { .. })));
    let mut t = task(vec![], vec![]).encode().unwrap();
    put_u32(&mut t, 44, u32::MAX); // scalar count
    assert!(matches!(Frame::decode(&t), Err(FrameError::Truncated { .. })));
}

#[test]
fn rejects_bad_magic() {
    let mut b = register("k").encode().unwrap();
    b[0] ^= 1;
    assert_eq!(Frame::decode(&b), Err(FrameError::BadMagic(FRAME_MAGIC ^ 1)));
}

#[test]
fn rejects_bad_version() {
    let mut b = register("k").encode().unwrap();
    b[4] = (FRAME_VERSION + 1) as u8;
    assert_eq!(Frame::decode(&b), Err(FrameError::BadVersion(FRAME_VERSION + 1)));
}

#[test]
fn rejects_bad_kind() {
    for k in [0u8, 6, 255] {
        let mut b = register("k").encode().unwrap();
        b[6] = k;
        assert_eq!(Frame::decode(&b), Err(FrameError::BadKind(k)));
    }
}

#[test]
fn rejects_reserved_non_zero() {
    for at in [7usize, 28, 29, 30, 31] {
        let mut b = register("k").encode().unwrap();
        b[at] = 1;
        assert_eq!(Frame::decode(&b), Err(FrameError::ReservedNonZero), "byte {at}");
    }
}

#[test]
fn rejects_too_large() {
    // Encoding: a task one f32 over capacity.
    let n = (TASK_FRAME_BYTES - 32 - 8 - 4 - 4 - 4) / 4;
    let fits = task(vec![vec![0.5; n]], vec![]);
    assert_eq!(fits.encoded_len(), TASK_FRAME_BYTES);
    round_trip(&fits);
    let over = task(vec![vec![0.5; n + 1]], vec![]);
    assert_eq!(over.encode(), Err(FrameError::TooLarge { bytes: TASK_FRAME_BYTES + 4, max: TASK_FRAME_BYTES }));
    assert_eq!(
        over.encode_into(&mut vec![0; 1 << 20]),
        Err(FrameError::TooLarge { bytes: TASK_FRAME_BYTES + 4, max: TASK_FRAME_BYTES })
    );
    // Decoding: a header claiming more than the kind's capacity.
    let mut b = Frame::Completion(CompletionFrame { id: id(1, 1, 1), settlement: Settlement::Freed }).encode().unwrap();
    put_u32(&mut b, 24, COMPLETION_BYTES as u32);
    assert_eq!(Frame::decode(&b), Err(FrameError::TooLarge { bytes: COMPLETION_BYTES + 32, max: COMPLETION_BYTES }));
    // A kernel name over its bound.
    let long = register(&"k".repeat(KERNEL_MAX_BYTES + 1));
    assert_eq!(long.encode(), Err(FrameError::TooLarge { bytes: KERNEL_MAX_BYTES + 1, max: KERNEL_MAX_BYTES }));
    round_trip(&register(&"k".repeat(KERNEL_MAX_BYTES)));
    // A detail over its bound on the wire.
    let f =
        control_err(ControlError::Register(RegisterError::PrepareFailed(ChipError::new(ChipErrorKind::Device, "ab"))));
    let mut b = f.encode().unwrap();
    let len_at = b.len() - 4; // u16 detail length precedes "ab"
    b[len_at..len_at + 2].copy_from_slice(&193u16.to_le_bytes());
    assert_eq!(Frame::decode(&b), Err(FrameError::TooLarge { bytes: 193, max: ChipError::DETAIL_MAX_BYTES }));
}

#[test]
fn rejects_bad_enum_codes() {
    // control op
    let mut b = register("k").encode().unwrap();
    b[32] = 9;
    assert_eq!(Frame::decode(&b), Err(FrameError::InvalidField("control.op")));
    // target kind
    let mut b = register("k").encode().unwrap();
    b[33] = 3;
    assert_eq!(Frame::decode(&b), Err(FrameError::InvalidField("target_kind")));
    // bool
    let mut b = Frame::Control(ControlFrame { id: id(1, 0, 0), op: ControlOp::Memory { bytes: 1, free: true } })
        .encode()
        .unwrap();
    let last = b.len() - 1;
    b[last] = 2;
    assert_eq!(Frame::decode(&b), Err(FrameError::InvalidField("memory.free")));
    // result tag, error codes down the tree
    let cases: Vec<(Frame, usize, &str)> = vec![
        (
            Frame::TaskResult(TaskResultFrame { id: id(1, 1, 1), result: Err(RunError::Cancelled) }),
            32,
            "task_result.tag",
        ),
        (Frame::TaskResult(TaskResultFrame { id: id(1, 1, 1), result: Err(RunError::Cancelled) }), 33, "run_error"),
        (
            Frame::TaskResult(TaskResultFrame {
                id: id(1, 1, 1),
                result: Err(RunError::NotRunnable(SlotState::Empty)),
            }),
            34,
            "slot_state",
        ),
        (
            Frame::TaskResult(TaskResultFrame {
                id: id(1, 1, 1),
                result: Err(RunError::Handle(HandleError::OutOfRange)),
            }),
            34,
            "handle_error",
        ),
        (
            Frame::TaskResult(TaskResultFrame {
                id: id(1, 1, 1),
                result: Err(RunError::Chip(ChipError::new(ChipErrorKind::Device, ""))),
            }),
            34,
            "chip_error_kind",
        ),
        (control_err(ControlError::Endpoint(EndpointError::ShutDown)), 33, "control_error"),
        (control_err(ControlError::Endpoint(EndpointError::ShutDown)), 34, "endpoint_error"),
        (control_err(ControlError::Unregister(UnregisterError::NotRegistered)), 34, "unregister_error"),
        (control_err(ControlError::Register(RegisterError::TableFull)), 34, "register_error"),
        (control_err(ControlError::Endpoint(EndpointError::Poisoned(PoisonReason::ChildDied))), 35, "poison_reason"),
        (
            control_err(ControlError::Endpoint(EndpointError::Poisoned(PoisonReason::MalformedFrame(
                FrameError::InvalidUtf8,
            )))),
            36,
            "frame_error",
        ),
        (
            Frame::ControlResult(ControlResultFrame { id: id(1, 1, 1), result: Ok(ControlReply::Done) }),
            32,
            "control_result.tag",
        ),
        (
            Frame::ControlResult(ControlResultFrame { id: id(1, 1, 1), result: Ok(ControlReply::Done) }),
            33,
            "control_reply",
        ),
        (
            Frame::ControlResult(ControlResultFrame {
                id: id(1, 1, 1),
                result: Ok(ControlReply::Unregistered { last: true }),
            }),
            34,
            "reply.last",
        ),
        (Frame::Completion(CompletionFrame { id: id(1, 1, 1), settlement: Settlement::Freed }), 32, "settlement"),
    ];
    for (f, at, what) in cases {
        let mut b = f.encode().unwrap();
        b[at] = if at == 34 && what == "chip_error_kind" { 0 } else { 0xEE };
        assert_eq!(Frame::decode(&b), Err(FrameError::InvalidField(what)), "{f:?}");
    }
    // InvalidField index past the table
    let f = control_err(ControlError::Endpoint(EndpointError::Poisoned(PoisonReason::MalformedFrame(
        FrameError::InvalidField("usize"),
    ))));
    let mut b = f.encode().unwrap();
    let at = b.len() - 2;
    b[at..].copy_from_slice(&(FIELD_NAMES.len() as u16).to_le_bytes());
    assert_eq!(Frame::decode(&b), Err(FrameError::InvalidField("frame_error.field")));
}

#[test]
fn unknown_field_name_does_not_encode() {
    let f = control_err(ControlError::Endpoint(EndpointError::Poisoned(PoisonReason::MalformedFrame(
        FrameError::InvalidField("not in the table"),
    ))));
    assert_eq!(f.encode(), Err(FrameError::InvalidField("frame_error.field")));
    for name in FIELD_NAMES {
        round_trip(&control_err(ControlError::Endpoint(EndpointError::Poisoned(PoisonReason::MalformedFrame(
            FrameError::InvalidField(name),
        )))));
    }
}

#[test]
fn rejects_bad_utf8() {
    let mut b = register("kk").encode().unwrap();
    b[36] = 0xFF; // first kernel byte (op 32, kind 33, len 34..36)
    assert_eq!(Frame::decode(&b), Err(FrameError::InvalidUtf8));
}

#[test]
fn rejects_trailing_bytes() {
    let mut b = register("k").encode().unwrap();
    b.push(0);
    assert_eq!(Frame::decode(&b), Err(FrameError::TrailingBytes { extra: 1 }));
    // Inside payload_len: the header says one more byte than the payload uses.
    b.truncate(b.len() - 1);
    let pl = (b.len() - 32 + 1) as u32;
    put_u32(&mut b, 24, pl);
    b.push(0);
    assert_eq!(Frame::decode(&b), Err(FrameError::TrailingBytes { extra: 1 }));
}

#[test]
fn rejects_wrong_kind() {
    let b = register("k").encode().unwrap();
    assert_eq!(Frame::decode_field(&b, FrameKind::Task), Err(FrameError::WrongKind { expected: 1, got: 2 }));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_frames_round_trip(f in arb_frame()) {
        round_trip(&f);
    }

    #[test]
    fn random_bytes_decode_canonically(b in prop::collection::vec(any::<u8>(), 0..200)) {
        check_bytes(&b);
    }

    #[test]
    fn random_payload_after_valid_header_decodes_canonically(kind in 1u8..=5, payload in prop::collection::vec(any::<u8>(), 0..120)) {
        let mut b = Frame::Completion(CompletionFrame { id: id(1, 2, 3), settlement: Settlement::Freed }).encode().unwrap();
        b.truncate(32);
        b[6] = kind;
        b.extend_from_slice(&payload);
        fix_payload_len(&mut b);
        check_bytes(&b);
    }

    #[test]
    fn mutated_encodings_decode_canonically(f in arb_frame(), ms in prop::collection::vec(arb_mutation(), 1..4), fix in any::<bool>()) {
        let mut b = f.encode().unwrap();
        for m in &ms {
            apply(&mut b, m);
        }
        if fix {
            fix_payload_len(&mut b);
        }
        check_bytes(&b);
    }
}
