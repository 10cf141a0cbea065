//! Property test of the lane machine against a VecDeque reference: jobs
//! start in enqueue order, one at a time; `Finished` for anything but the
//! running job is refused and changes nothing.
// proptest's prop_oneof! expands to std::sync::Arc (test code, not the concurrent layer).
#![allow(clippy::disallowed_types)]

use chiplane_core::lane::{JobId, Lane, LaneError, LaneInput, LaneOutput};
use proptest::prelude::*;
use std::collections::VecDeque;

#[derive(Clone, Debug)]
enum Op {
    Enqueue(u8),
    Poll,
    Finish(u64),
    FinishRunning,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<u8>().prop_map(Op::Enqueue),
        Just(Op::Poll),
        (0u64..8).prop_map(Op::Finish),
        Just(Op::FinishRunning)
    ]
}

proptest! {
    #[test]
    fn lane_matches_reference(ops in prop::collection::vec(op(), 0..200)) {
        let mut lane = Lane::new();
        let mut queue: VecDeque<(JobId, u8)> = VecDeque::new();
        let mut running: Option<JobId> = None;
        let mut next = 0u64;
        let mut started = Vec::new();
        let mut enqueued = Vec::new();
        for o in ops {
            match o {
                Op::Enqueue(j) => {
                    let id = lane.handle(LaneInput::Enqueue(j)).unwrap().unwrap();
                    prop_assert_eq!(id, JobId(next));
                    next += 1;
                    queue.push_back((id, j));
                    enqueued.push(j);
                }
                Op::Poll => {
                    let got = lane.poll();
                    let want = if running.is_none() { queue.pop_front() } else { None };
                    match (got, want) {
                        (Some(LaneOutput::Start { id, job }), Some((wid, wj))) => {
                            prop_assert_eq!((id, job), (wid, wj));
                            running = Some(id);
                            started.push(job);
                        }
                        (None, None) => {}
                        (g, w) => prop_assert!(false, "got {:?}, want {:?}", g, w),
                    }
                }
                Op::Finish(k) => {
                    let id = JobId(k);
                    let r = lane.handle(LaneInput::Finished { id });
                    if running == Some(id) {
                        prop_assert_eq!(r, Ok(None));
                        running = None;
                    } else {
                        prop_assert_eq!(r, Err(LaneError::NotRunning { id }));
                    }
                }
                Op::FinishRunning => {
                    if let Some(id) = running.take() {
                        prop_assert_eq!(lane.handle(LaneInput::Finished { id }), Ok(None));
                    }
                }
            }
            prop_assert_eq!(lane.running(), running);
            prop_assert_eq!(lane.queued(), queue.len());
        }
        prop_assert_eq!(&started[..], &enqueued[..started.len()], "FIFO");
    }
}
