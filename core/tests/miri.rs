//! Two-thread tests of the mailbox's unsafe code, sized for Miri.
//!
//! `scripts/test-all` runs this file under Miri (its "miri" stage), where
//! the data-race detector and the weak-memory emulation see the real
//! orderings of the region (`StateWord::cas`, `write_frame`/`read_frame`),
//! the completion ring (`Producer`/`Consumer`), the completion cells and
//! the doorbells (`Doorbell` over `LocalFutex`). Under plain `cargo test`
//! they are ordinary (fast) thread tests.
//!
//! What each test can catch under Miri:
//! - a field or ring entry read without a happens-before edge to its write
//!   (a missing Release/Acquire pair): Miri reports a data race on the
//!   field's bytes. The spin variant waits by `yield_now` only, so no lock
//!   adds an edge the code under test does not make itself;
//! - an out-of-bounds or dangling access in the region's accessors: Miri
//!   reports undefined behaviour;
//! - a lost wake-up: every sleep here is untimed, so a missed ring leaves
//!   every thread blocked and Miri reports a deadlock.
//!
//! Keep them small: Miri interprets every instruction, and the stage runs
//! this binary once per seed (`-Zmiri-many-seeds`).
#![cfg(not(any(chiplane_loom, chiplane_shuttle)))]
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use chiplane_core::chip::{CallableSpec, RunConfig, RunOutput, TaskArgs};
use chiplane_core::conc::bell::{BellWords, Doorbell, Interest, LocalFutex};
use chiplane_core::conc::cell::Completion;
use chiplane_core::conc::region::SharedRegion;
use chiplane_core::conc::ring::{Consumer, Producer};
use chiplane_core::frame::{
    CompletionFrame, ControlFrame, ControlOp, ControlReply, ControlResultFrame, Frame, FrameId, FrameKind, Settlement,
    TaskFrame, TaskResultFrame,
};
use chiplane_core::mailbox::field_for;
use chiplane_core::mailbox::word::WordState;
use chiplane_core::sync::{thread, Arc, AtomicU32, Ordering};
use chiplane_core::{DispatchId, Generation, SlotIndex};

// ------------------------------------------------------------ the frames

fn id(dispatch: u64) -> FrameId {
    FrameId { dispatch: DispatchId(dispatch), slot: SlotIndex(1), generation: Generation(1) }
}

fn task(round: u64) -> Frame {
    Frame::Task(TaskFrame {
        id: id(10 * round + 1),
        config: RunConfig { block_dim: 4, flags: 0 },
        args: TaskArgs { tensors: vec![vec![1.0, 2.0, round as f32]], scalars: vec![round] },
    })
}

fn control(round: u64) -> Frame {
    Frame::Control(ControlFrame {
        id: id(10 * round + 2),
        op: ControlOp::Register { spec: CallableSpec::chip("k", vec![round]) },
    })
}

fn control_result(round: u64) -> Frame {
    Frame::ControlResult(ControlResultFrame {
        id: id(10 * round + 2),
        result: Ok(ControlReply::Registered { slot: SlotIndex(2), generation: Generation(1), fresh: true }),
    })
}

fn task_result(round: u64) -> Frame {
    Frame::TaskResult(TaskResultFrame {
        id: id(10 * round + 1),
        result: Ok(RunOutput { tensors: vec![vec![3.0, round as f32]] }),
    })
}

fn completion(round: u64, settlement: Settlement) -> CompletionFrame {
    CompletionFrame { id: id(10 * round + 3), settlement }
}

/// A frame's field, as every driver picks it.
fn field(kind: FrameKind) -> chiplane_core::mailbox::Field {
    field_for(kind).expect("a field frame")
}

// ------------------------------------------------- one side of the region

/// How a side waits for its peer.
#[derive(Clone, Copy, Debug)]
enum Wait {
    /// `yield_now` only: no lock adds a happens-before edge, so Miri's race
    /// detector judges the region's own orderings alone.
    Spin,
    /// The production path: sleep on the side's own doorbell (untimed),
    /// ring the peer's after every publication.
    Bell,
}

/// The parent or the child of one region.
struct Side {
    region: SharedRegion,
    futex: Arc<LocalFutex>,
    wait: Wait,
    parent: bool,
}

impl Side {
    fn mine(&self) -> &BellWords {
        if self.parent {
            self.region.parent_bell()
        } else {
            self.region.child_bell()
        }
    }

    fn peer(&self) -> &BellWords {
        if self.parent {
            self.region.child_bell()
        } else {
            self.region.parent_bell()
        }
    }

    /// Wait until `f` yields something.
    fn until<T>(&self, mut f: impl FnMut() -> Option<T>) -> T {
        loop {
            if let Some(v) = f() {
                return v;
            }
            match self.wait {
                Wait::Spin => thread::yield_now(),
                Wait::Bell => {
                    let mut got = None;
                    // Untimed: a lost doorbell is a deadlock Miri reports.
                    Doorbell::new(self.mine(), &*self.futex).sleep(
                        || {
                            got = f();
                            got.is_some()
                        },
                        None,
                    );
                    if let Some(v) = got {
                        return v;
                    }
                }
            }
        }
    }

    fn await_word(&self, want: WordState) {
        self.until(|| (self.region.word().snapshot() == Some(want)).then_some(()));
    }

    /// The publishing CAS, then the peer's doorbell.
    fn publish(&self, from: WordState, to: WordState) {
        assert_eq!(self.region.word().cas(from, to), Ok(()), "{from:?} -> {to:?}");
        self.ring_peer();
    }

    fn ring_peer(&self) {
        if let Wait::Bell = self.wait {
            Doorbell::new(self.peer(), &*self.futex).ring();
        }
    }
}

/// The child: per round, take the task, settle a registration through the
/// ring, serve a control under the task, settle a second completion
/// (the ring wraps: capacity 1), then publish the task result.
fn child(side: Side, rounds: u64) {
    let r = &side.region;
    let mut producer = Producer::new(r);
    let under_task = true;
    for round in 0..rounds {
        side.await_word(WordState::TaskReady);
        assert_eq!(r.read_frame(field(FrameKind::Task)), Ok(task(round)));
        side.publish(WordState::TaskReady, WordState::TaskRunning);

        // A settlement, published by the ring's tail alone.
        side.until(|| (producer.free(r, true) > 0).then_some(()));
        producer.push(r, completion(round, Settlement::Prepared(Ok(())))).expect("room");
        side.ring_peer();

        side.await_word(WordState::ControlReady { under_task });
        assert_eq!(r.read_frame(field(FrameKind::Control)), Ok(control(round)));
        r.write_frame(field(FrameKind::ControlResult), &control_result(round)).unwrap();
        side.publish(WordState::ControlReady { under_task }, WordState::ControlDone { under_task });

        // The entry the parent popped is overwritten: the head's
        // Release/Acquire must order its copy before this write.
        side.until(|| (producer.free(r, true) > 0).then_some(()));
        producer.push(r, completion(round, Settlement::Freed)).expect("room");
        side.ring_peer();

        // The run finishes after the control: the result is published by
        // the TASK_DONE CAS and nothing else.
        side.await_word(WordState::TaskRunning);
        r.write_frame(field(FrameKind::TaskResult), &task_result(round)).unwrap();
        side.publish(WordState::TaskRunning, WordState::TaskDone);
    }
}

/// The parent side of [`child`].
fn parent(side: Side, rounds: u64) {
    let r = &side.region;
    let mut consumer = Consumer::new(r);
    let under_task = true;
    for round in 0..rounds {
        // Round > 0: the task field was read by the child in the previous
        // round; the TASK_RUNNING/TASK_DONE CASes order that read before
        // this write.
        r.write_frame(field(FrameKind::Task), &task(round)).unwrap();
        side.publish(WordState::Idle, WordState::TaskReady);

        side.await_word(WordState::TaskRunning);
        let first = side.until(|| consumer.pop(r));
        assert_eq!(first, Ok(Frame::Completion(completion(round, Settlement::Prepared(Ok(()))))));
        side.ring_peer(); // ring room

        r.write_frame(field(FrameKind::Control), &control(round)).unwrap();
        side.publish(WordState::TaskRunning, WordState::ControlReady { under_task });
        side.await_word(WordState::ControlDone { under_task });
        assert_eq!(r.read_frame(field(FrameKind::ControlResult)), Ok(control_result(round)));
        side.publish(WordState::ControlDone { under_task }, WordState::TaskRunning);

        let second = side.until(|| consumer.pop(r));
        assert_eq!(second, Ok(Frame::Completion(completion(round, Settlement::Freed))));
        side.ring_peer();

        side.await_word(WordState::TaskDone);
        assert_eq!(r.read_frame(field(FrameKind::TaskResult)), Ok(task_result(round)));
        side.publish(WordState::TaskDone, WordState::Idle);
    }
    assert_eq!(consumer.pop(r), None, "nothing left in the ring");
}

/// A parent thread (this one) and a child thread exchange `rounds` tasks
/// and controls through one region.
fn exchange(wait: Wait, rounds: u64) {
    let region = SharedRegion::new(1);
    let futex = Arc::new(LocalFutex::new());
    let c = {
        let side = Side { region: region.clone(), futex: futex.clone(), wait, parent: false };
        thread::spawn(move || child(side, rounds))
    };
    parent(Side { region: region.clone(), futex, wait, parent: true }, rounds);
    c.join().expect("child thread");
    assert_eq!(region.word().snapshot(), Some(WordState::Idle));
    assert_eq!(region.ring_indices(), (2 * rounds, 2 * rounds));
}

#[test]
fn region_parent_and_child_exchange_frames_spinning() {
    exchange(Wait::Spin, 2);
}

#[test]
fn region_parent_and_child_exchange_frames_on_doorbells() {
    exchange(Wait::Bell, 2);
}

// ------------------------------------------------------------------ ring

/// More completions than entries: the producer waits for room (the head's
/// Release/Acquire), the consumer for entries (the tail's); FIFO, nothing lost.
#[test]
fn ring_wraps_between_two_threads() {
    const N: u64 = 5;
    let region = SharedRegion::new(2);
    let p = {
        let region = region.clone();
        thread::spawn(move || {
            let mut producer = Producer::new(&region);
            for i in 0..N {
                while producer.free(&region, true) == 0 {
                    thread::yield_now();
                }
                producer.push(&region, completion(i, Settlement::Freed)).expect("room");
            }
        })
    };
    let mut consumer = Consumer::new(&region);
    for i in 0..N {
        let got = loop {
            match consumer.pop(&region) {
                Some(f) => break f,
                None => thread::yield_now(),
            }
        };
        assert_eq!(got, Ok(Frame::Completion(completion(i, Settlement::Freed))));
    }
    p.join().unwrap();
    assert_eq!(consumer.pop(&region), None);
}

// ------------------------------------------------------------ completion

/// Completed on one thread, taken on another, while a third only waits:
/// the value (a heap string) is written before the publish and moved out
/// after the take. The spin budget is 0 so the waiters go straight to the
/// park path (PARKED under the gate lock, the producer's notify); the
/// budget is process-wide, and no other test here spins on it.
#[test]
fn completion_completed_on_one_thread_taken_on_another() {
    chiplane_core::conc::wait::set_spin_budget(0);
    let cell = Arc::new(Completion::<String>::new());
    let watcher = {
        let cell = cell.clone();
        thread::spawn(move || {
            cell.wait_ready();
            assert!(cell.is_ready());
        })
    };
    let taker = {
        let cell = cell.clone();
        thread::spawn(move || cell.wait())
    };
    // Let the waiters reach the gate first (a yield orders nothing).
    for _ in 0..8 {
        thread::yield_now();
    }
    assert_eq!(cell.complete(String::from("done")), Ok(()));
    assert_eq!(taker.join().unwrap().as_deref(), Some("done"));
    watcher.join().unwrap();
    assert_eq!(cell.try_take(), None, "taken once");
}

// -------------------------------------------------------------- doorbell

/// Ping-pong over two doorbells on `LocalFutex`: each side publishes a
/// counter (Release), wakes the peer's bell, and sleeps (untimed) on its
/// own until the peer's answer is visible. Side 0 sleeps taking nudges
/// (`Interest::Any`) and side 1 nudges it; side 1 sleeps for work only
/// and side 0 rings it. Every round is a Dekker handshake on each bell; a
/// lost ring or nudge is a deadlock.
#[test]
fn doorbells_ping_pong_without_a_lost_wakeup() {
    const ROUNDS: u32 = 6;
    struct Pair {
        count: AtomicU32,
        ping: BellWords,
        pong: BellWords,
        futex: LocalFutex,
    }
    let pair = Arc::new(Pair {
        count: AtomicU32::new(0),
        ping: BellWords::new(),
        pong: BellWords::new(),
        futex: LocalFutex::new(),
    });
    // Side `me` (0 or 1) moves the count from 2k+me to 2k+me+1.
    fn play(pair: &Pair, me: u32) {
        let (mine, peer) = if me == 0 { (&pair.ping, &pair.pong) } else { (&pair.pong, &pair.ping) };
        for k in 0..ROUNDS {
            let turn = 2 * k + me;
            // Acquire: pairs with the peer's Release store below.
            let ready = || pair.count.load(Ordering::Acquire) == turn;
            let interest = if me == 0 { Interest::Any } else { Interest::Work };
            while !ready() {
                Doorbell::new(mine, &pair.futex).sleep_for(interest, ready, None);
            }
            // Release: pairs with the peer's Acquire load above.
            pair.count.store(turn + 1, Ordering::Release);
            let bell = Doorbell::new(peer, &pair.futex);
            if me == 0 {
                bell.ring();
            } else {
                bell.nudge();
            }
        }
    }
    let other = {
        let pair = pair.clone();
        thread::spawn(move || play(&pair, 1))
    };
    play(&pair, 0);
    other.join().unwrap();
    assert_eq!(pair.count.load(Ordering::Acquire), 2 * ROUNDS);
    assert_eq!((pair.ping.sleepers(), pair.pong.sleepers()), (0, 0));
}
