//! An L3 worker restarted past the old wrap point of its worker ids (16
//! bits of incarnation: the 65,536th restart made a handle of the first
//! child match): core's `L3Worker` over thread children (the models'
//! spawner, so the restarts are cheap), restarted 65,537 times; the first
//! incarnation's handle is foreign to every later one, and to the last.
#![cfg(not(any(chiplane_loom, chiplane_shuttle)))]

use chiplane_core::conc::l3::{L3Options, L3Worker};
use chiplane_core::conc::parent::LinkOptions;
use chiplane_core::conc::Worker;
use chiplane_core::error::{HandleError, RunError};
use chiplane_core::RunConfig;
use chiplane_models::l3::ThreadSpawner;
use chiplane_models::testchip::{args, spec, TestChip};

const RESTARTS: u32 = (1 << 16) + 1;

#[test]
fn a_handle_never_matches_a_later_incarnation_past_the_old_wrap_point() {
    let spawner = ThreadSpawner::fresh_chips(|| TestChip::new(true), 2);
    let w = L3Worker::new(spawner, L3Options { chips: 1, link: LinkOptions::untimed() }).unwrap();
    let first = w.register(spec("a")).unwrap();
    let mut ids = std::collections::BTreeSet::from([first.worker]);
    for _ in 0..RESTARTS {
        w.restart(0).unwrap();
        assert!(ids.insert(w.chip_worker(0).unwrap()), "an incarnation id repeated");
    }
    assert_eq!(w.incarnation(0), Some(u64::from(RESTARTS)));
    let now = w.register(spec("a")).unwrap();
    assert_eq!((now.index, now.generation), (first.index, first.generation), "same slot, same generation");
    let r = Worker::run(&w, first, args(1), RunConfig::default());
    assert!(matches!(r, Err(RunError::Handle(HandleError::Foreign { .. }))), "{r:?}");
    assert!(Worker::run(&w, now, args(2), RunConfig::default()).is_ok());
}
