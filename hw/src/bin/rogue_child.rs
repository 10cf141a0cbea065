//! Test helper for `hw/tests/l3_rogue.rs`: a chip child that breaks the
//! mailbox protocol on purpose. It attaches the region like the real child
//! (`chiplane-child`), beats once (so the parent sees it started), then
//! waits for the parent's first task or control and answers with one kind of
//! malformed frame:
//!
//! - `bad-result-len`: TASK_DONE with a task-result header whose payload
//!   length is ~4 GiB (the parent must not read past the field);
//! - `bad-result-tag`: TASK_DONE with a valid header and an invalid result
//!   tag byte;
//! - `wrong-dispatch`: TASK_DONE with a well-formed result for another
//!   dispatch id;
//! - `bad-word`: a state word value the protocol never writes;
//! - `bad-ring`: a completion-ring tail far beyond its capacity while a
//!   control is in flight;
//! - `bad-completion`: accepts the first register control properly (a
//!   fresh registration: the parent now owes... expects a settlement), then
//!   waits for the shutdown flag (the test's go signal, raised while it
//!   holds the parent's port) and pushes a completion naming a dispatch
//!   nothing waits for (the test then submits a task while it sits in the
//!   ring: rule 12).
//!
//! Usage: the L3 worker starts it as any chip child, `EXE MARKER MODE
//! [child args]` (MODE comes from `L3Config::child_args`). It then waits
//! (bounded) to be killed. Exit codes: 2 bad arguments, 3 no region, 6 the
//! parent never sent work, 7 a layout probe failed.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chiplane_core::frame::{Frame, TaskResultFrame, FRAME_MAGIC};
use chiplane_core::mailbox::word::WordState;
use chiplane_core::mailbox::Field;
use chiplane_core::{DispatchId, RunOutput};
use chiplane_hw::l3::memory::Mailbox;
use chiplane_hw::shm::SharedMemory;

const PATIENCE: Duration = Duration::from_secs(30);

fn wait_word(mailbox: &Mailbox, want: &[WordState]) -> WordState {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(w) = mailbox.word().snapshot() {
            if want.contains(&w) {
                return w;
            }
        }
        if Instant::now() > deadline {
            std::process::exit(6);
        }
        std::thread::yield_now();
    }
}

/// Byte offset of the task-result field: write a recognisable frame there
/// through the region API, then find its header in the mapping.
fn task_result_offset(mailbox: &Mailbox, shm: &SharedMemory) -> usize {
    let probe = Frame::TaskResult(TaskResultFrame {
        id: chiplane_core::frame::FrameId {
            dispatch: DispatchId(0x5eed_0000_0000_0001),
            slot: chiplane_core::SlotIndex(0),
            generation: chiplane_core::Generation(0),
        },
        result: Ok(RunOutput::default()),
    });
    mailbox.write_frame(Field::TaskResult, &probe).expect("probe fits");
    let bytes = probe.encode().expect("probe encodes");
    (0..shm.len() - bytes.len())
        .step_by(64)
        .find(|&off| {
            // SAFETY: `off + bytes.len() <= len`: inside the mapping. Only this
            // process writes the task-result field now (the parent reads it
            // after TASK_DONE, which we have not published).
            let here = unsafe { std::slice::from_raw_parts(shm.as_ptr().add(off), bytes.len()) };
            here == bytes.as_slice()
        })
        .unwrap_or_else(|| std::process::exit(7))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // argv[0], the child marker, then the mode.
    let Some(mode) = args.get(2).cloned() else { std::process::exit(2) };
    // SAFETY: called once at start-up with our parent's arguments: the fd
    // they name was inherited for this mapping and nothing else owns it.
    let shm = match unsafe { chiplane_hw::process::inherited_shm(args.iter().cloned()) } {
        Ok(m) => m,
        Err(_) => std::process::exit(3),
    };
    // A second mapping of the same memfd for raw byte access; the first
    // becomes the attached region.
    let dup = shm.fd().try_clone_to_owned().unwrap_or_else(|_| std::process::exit(3));
    let raw = SharedMemory::from_fd(dup, shm.len()).unwrap_or_else(|_| std::process::exit(3));
    let mailbox = Mailbox::attach(shm).unwrap_or_else(|_| std::process::exit(3));
    mailbox.beat();
    // Layout probes (line 1 holds the word at 64, line 2 the ring tail at
    // 128, line 3 the heartbeat at 192); each is checked against the API.
    let word_raw: &AtomicU32 = raw.atomic_u32(64).unwrap_or_else(|| std::process::exit(7));
    let tail_raw: &AtomicU64 = raw.atomic_u64(128).unwrap_or_else(|| std::process::exit(7));
    // Relaxed: a probe of our own increment above.
    if raw.atomic_u64(192).map(|a| a.load(Ordering::Relaxed)) != Some(mailbox.heartbeat()) {
        std::process::exit(7);
    }

    match mode.as_str() {
        "bad-result-len" | "bad-result-tag" | "wrong-dispatch" => {
            wait_word(&mailbox, &[WordState::TaskReady]);
            let task = match mailbox.read_frame(Field::Task) {
                Ok(Frame::Task(t)) => t,
                _ => std::process::exit(6),
            };
            mailbox.word().cas(WordState::TaskReady, WordState::TaskRunning).unwrap_or_else(|_| std::process::exit(6));
            let dispatch =
                if mode == "wrong-dispatch" { DispatchId(task.id.dispatch.0 + 100) } else { task.id.dispatch };
            let off = task_result_offset(&mailbox, &raw);
            let frame = Frame::TaskResult(TaskResultFrame {
                id: chiplane_core::frame::FrameId { dispatch, ..task.id },
                result: Ok(RunOutput { tensors: vec![vec![1.0; 4]] }),
            });
            mailbox.write_frame(Field::TaskResult, &frame).expect("fits");
            // SAFETY: inside the task-result field (found above), which the
            // child owns until it publishes TASK_DONE.
            unsafe {
                let p = raw.as_ptr().add(off);
                assert_eq!(std::ptr::read_unaligned(p.cast::<u32>()), FRAME_MAGIC.to_le());
                match mode.as_str() {
                    // payload_len (bytes 24..28) = 0xffff_fff0.
                    "bad-result-len" => std::ptr::write_unaligned(p.add(24).cast::<u32>(), 0xffff_fff0u32.to_le()),
                    // The first payload byte is the Ok/Err tag: 9 is neither.
                    "bad-result-tag" => *p.add(32) = 9,
                    _ => {}
                }
            }
            mailbox.word().cas(WordState::TaskRunning, WordState::TaskDone).unwrap_or_else(|_| std::process::exit(6));
        }
        "bad-word" => {
            let seen = wait_word(&mailbox, &[WordState::TaskReady, WordState::ControlReady { under_task: false }]);
            // Acquire: pairs with the parent's publishing CAS (a probe).
            if word_raw.load(Ordering::Acquire) != seen.encode() {
                std::process::exit(7);
            }
            // Release: publishes like a CAS would; 77 is no WordState.
            word_raw.store(77, Ordering::Release);
        }
        "bad-ring" => {
            // Probe: one well-formed push moves the tail we found to 1 (the
            // parent pops only while a settlement is owed or a control is in
            // flight, so it has not looked yet).
            let mut producer = chiplane_core::conc::ring::Producer::new(&mailbox);
            let c = chiplane_core::frame::CompletionFrame {
                id: chiplane_core::frame::FrameId {
                    dispatch: DispatchId(1),
                    slot: chiplane_core::SlotIndex(0),
                    generation: chiplane_core::Generation(1),
                },
                settlement: chiplane_core::frame::Settlement::Freed,
            };
            producer.push(&mailbox, c).unwrap_or_else(|_| std::process::exit(7));
            // Acquire: pairs with our own Release store in `push` (a probe).
            if tail_raw.load(Ordering::Acquire) != 1 {
                std::process::exit(7);
            }
            wait_word(&mailbox, &[WordState::ControlReady { under_task: false }]);
            // Release: pairs with the parent's Acquire load of the tail.
            tail_raw.store(1_000_000, Ordering::Release);
        }
        "bad-completion" => {
            wait_word(&mailbox, &[WordState::ControlReady { under_task: false }]);
            let control = match mailbox.read_frame(Field::Control) {
                Ok(Frame::Control(c)) => c,
                _ => std::process::exit(6),
            };
            let reply = chiplane_core::frame::ControlReply::Registered {
                slot: chiplane_core::SlotIndex(0),
                generation: chiplane_core::Generation(1),
                fresh: true,
            };
            let result =
                Frame::ControlResult(chiplane_core::frame::ControlResultFrame { id: control.id, result: Ok(reply) });
            mailbox.write_frame(Field::ControlResult, &result).expect("fits");
            let done = WordState::ControlDone { under_task: false };
            mailbox
                .word()
                .cas(WordState::ControlReady { under_task: false }, done)
                .unwrap_or_else(|_| std::process::exit(6));
            wait_word(&mailbox, &[WordState::Idle]);
            // The test holds the parent's port, then raises the shutdown
            // flag as its go signal: the push lands while nobody can pop it.
            let deadline = Instant::now() + PATIENCE;
            while !mailbox.shutdown_requested() {
                if Instant::now() > deadline {
                    std::process::exit(6);
                }
                std::thread::yield_now();
            }
            // A settlement for a dispatch nothing waits for.
            let mut producer = chiplane_core::conc::ring::Producer::new(&mailbox);
            let bogus = chiplane_core::frame::CompletionFrame {
                id: chiplane_core::frame::FrameId {
                    dispatch: DispatchId(control.id.dispatch.0 + 1000),
                    slot: chiplane_core::SlotIndex(0),
                    generation: chiplane_core::Generation(1),
                },
                settlement: chiplane_core::frame::Settlement::Freed,
            };
            producer.push(&mailbox, bogus).unwrap_or_else(|_| std::process::exit(7));
        }
        _ => std::process::exit(2),
    }
    // Wait to be killed (bounded: never outlive a broken test by long).
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        std::thread::park_timeout(Duration::from_millis(100));
    }
}
