//! The mailbox protocol between a host parent and a chip child.
//!
//! - [`word`]: the state word's values and its pure `transition_to_*`
//!   functions (the only legal transitions, each owned by one side);
//! - [`parent`]: the parent endpoint machine;
//! - [`child`]: the child endpoint machine.
//!
//! Both machines are pure: they never touch memory shared with the other
//! side. They tell their driver what to read, what to write and which
//! compare-and-swap to attempt on the word; the driver (the concurrent layer,
//! the simulator, the fuzz harness, the exhaustive checker) does it and
//! reports back.

pub mod word;
