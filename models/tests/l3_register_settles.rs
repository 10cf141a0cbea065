//! A register of a callable already registered is not fresh, and it still
//! settles at L3 as at L2 (docs/protocol.md 4.4, the settlement of every
//! register): a second `register_async(..).wait()` of a spec whose prepare
//! failed returns `PrepareFailed` again, not `Ok(handle)` at acceptance;
//! one of a prepared spec returns the same handle.
#![cfg(not(any(chiplane_loom, chiplane_shuttle)))]

use chiplane_core::conc::l3::{L3Options, L3Worker};
use chiplane_core::conc::parent::LinkOptions;
use chiplane_core::conc::{L2Worker, NodeConfig, Pending, Worker};
use chiplane_core::error::RegisterError;
use chiplane_models::l3::ThreadSpawner;
use chiplane_models::testchip::{spec, TestChip};

fn twice<W: Worker>(w: &W) {
    for _ in 0..2 {
        let r = w.register_async(spec("fail")).unwrap().wait();
        assert!(matches!(r, Err(RegisterError::PrepareFailed(_))), "{r:?}");
    }
    let first = w.register_async(spec("a")).unwrap().wait().unwrap();
    assert_eq!(w.register_async(spec("a")).unwrap().wait().unwrap(), first);
}

#[test]
fn a_second_register_of_a_failed_spec_fails_again_at_l3_and_l2() {
    let l3 = L3Worker::new(
        ThreadSpawner::fresh_chips(|| TestChip::new(true), 1),
        L3Options { chips: 1, link: LinkOptions::untimed() },
    )
    .unwrap();
    twice(&l3);
    twice(&L2Worker::new(TestChip::new(true), NodeConfig::default()));
}
