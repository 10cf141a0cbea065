//! Doorbells: how a side of the mailbox sleeps until the other has done
//! something for it, and how the other wakes it *only if it sleeps*
//! (docs/protocol.md rule 11).
//!
//! # The words (in the shared region, one cache line per bell)
//! - `seq`: bumped by a waker that found a sleeper; the sleeper blocks on
//!   it with a futex (the OS half, [`Futex`]: hw's `FUTEX_WAIT` on the
//!   shared mapping, or [`LocalFutex`] in one process and under loom and
//!   shuttle);
//! - `sleepers`: how many threads announced that they are about to sleep
//!   on this bell (the parent side may have a driver thread and waiting
//!   callers; the child side has its serve loop), in its low 16 bits, and
//!   how many of them also want *nudges* ([`Interest::Any`]), in its high
//!   16 bits.
//!
//! # Rings and nudges
//! A waker that published work the sleeper must act on *rings*
//! ([`Doorbell::ring`]): every announced sleeper counts. A waker that only
//! consumed what the other side published (the parent read a result and
//! restored the word, or popped completions) *nudges*
//! ([`Doorbell::nudge`]): only a sleeper that announced [`Interest::Any`]
//! counts. The child's serve loop sleeps with [`Interest::Work`] while it
//! holds a running task and waits for no consumption (docs/protocol.md
//! rule 11): beside a long task, a wake-up for a restore it has nothing to
//! do for costs the core the task leaves to the caller.
//!
//! # The handshake (a Dekker pair)
//! ```text
//! sleeper                                  waker
//! seen = seq (Acquire)                     publish the change (a CAS, a push, ...)
//! sleepers += 1                            fence(SeqCst)            <- F2
//! fence(SeqCst)                 <- F1      if sleepers > 0:
//! if work is visible: sleepers -= 1, go        seq += 1 (Release); futex_wake(seq)
//! futex_wait(seq, seen); sleepers -= 1
//! ```
//! (a nudge is the same with "if nudgeable sleepers > 0": the sleeper's one
//! `fetch_add` announces both counts.)
//! F1 and F2 are sequentially consistent fences, so of the two loads that
//! follow them (the sleeper's re-check of the work, the waker's load of
//! `sleepers`) at least one sees the other side's store: either the sleeper
//! sees the work and does not sleep, or the waker sees the sleeper and
//! bumps `seq`, which makes the `futex_wait` on the old value return at
//! once or wakes it. No doorbell is lost, and a waker whose peer is awake
//! pays a fence and a load, never a system call.
//!
//! Mutant `missed_doorbell` (docs/protocol.md section 8) drops F2: the waker's
//! load of `sleepers` may miss a sleeper that has not yet seen the work
//! (the store-buffering outcome), and the sleeper sleeps with work waiting
//! (loom reports the deadlock: models never time out). Mutant
//! `deaf_to_restore` has the serve loop sleep for work only even while a
//! finished run's TASK_DONE waits for the parent's restore: the restore's
//! nudge then finds no nudgeable sleeper (S2's deadlock).
//!
//! # On behalf of another thread
//! The parent's driver may block on a bell's word *unannounced*
//! ([`Doorbell::wait_unannounced`]): rings skip it, unless a sleeper was
//! announced for it ([`Doorbell::announce_for_another`], the same count and
//! F1, with the re-check done by the announcing thread), or a
//! [`Doorbell::ring_always`] bumps `seq` whoever counts (see
//! `super::parent`, "The hand-over").
//!
//! # Timeouts
//! A sleep may be bounded (the parent's liveness polls, the child's
//! heartbeat); the protocol never depends on a timeout firing. Under loom a
//! timeout never fires.

// clippy's `disallowed-types` resolves `crate::sync`'s re-exports to the std
// types it bans (on the std backend they are the same types); this module
// uses only `crate::sync`.
#![allow(clippy::disallowed_types)]

use core::time::Duration;

use crate::sync::{fence, AtomicU32, Condvar, Mutex, Ordering};

/// The OS half of a doorbell: block on a 32-bit word.
pub trait Futex: Send + Sync {
    /// Sleep while `word` holds `expected`, at most `timeout` (`None`: no
    /// limit). May return early (spuriously, on a signal); the caller
    /// re-checks.
    fn wait(&self, word: &AtomicU32, expected: u32, timeout: Option<Duration>);
    /// Wake every thread sleeping on `word`.
    fn wake(&self, word: &AtomicU32);
}

/// One announced sleeper in `sleepers` (the low half).
const SLEEPER: u32 = 1;
/// One announced sleeper that also wants nudges (the high half).
const NUDGEABLE: u32 = 1 << 16;

/// What an announced sleeper wants to be woken for (module doc, "Rings
/// and nudges").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Interest {
    /// Rings and nudges: any change the other side makes.
    Any,
    /// Rings only: work published for this side.
    Work,
}

impl Interest {
    /// What the sleeper adds to `sleepers`.
    const fn count(self) -> u32 {
        match self {
            Interest::Any => SLEEPER + NUDGEABLE,
            Interest::Work => SLEEPER,
        }
    }
}

/// One doorbell's words (a cache line of the shared region).
#[repr(C, align(64))]
#[derive(Debug)]
pub struct BellWords {
    seq: AtomicU32,
    sleepers: AtomicU32,
}

impl BellWords {
    /// A quiet bell (zeroed memory is one too).
    pub fn new() -> Self {
        BellWords { seq: AtomicU32::new(0), sleepers: AtomicU32::new(0) }
    }

    /// Threads announced as sleeping (diagnostics and tests).
    pub fn sleepers(&self) -> u32 {
        // Relaxed: a diagnostic snapshot.
        self.sleepers.load(Ordering::Relaxed) % NUDGEABLE
    }

    /// Threads announced as sleeping that also want nudges (diagnostics
    /// and tests).
    pub fn nudgeable(&self) -> u32 {
        // Relaxed: a diagnostic snapshot.
        self.sleepers.load(Ordering::Relaxed) / NUDGEABLE
    }

    /// How many times a waker found a sleeper (diagnostics and tests).
    pub fn rings(&self) -> u32 {
        // Relaxed: a diagnostic snapshot.
        self.seq.load(Ordering::Relaxed)
    }
}

impl Default for BellWords {
    fn default() -> Self {
        Self::new()
    }
}

/// A doorbell: its words and the futex to block on them. See the module doc.
pub struct Doorbell<'a, F: Futex + ?Sized> {
    seq: &'a AtomicU32,
    sleepers: &'a AtomicU32,
    futex: &'a F,
}

impl<F: Futex + ?Sized> core::fmt::Debug for Doorbell<'_, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Relaxed: a diagnostic snapshot.
        f.debug_struct("Doorbell").field("sleepers", &self.sleepers.load(Ordering::Relaxed)).finish()
    }
}

impl<'a, F: Futex + ?Sized> Doorbell<'a, F> {
    /// The bell `words`, blocking through `futex`.
    pub fn new(words: &'a BellWords, futex: &'a F) -> Self {
        Doorbell { seq: &words.seq, sleepers: &words.sleepers, futex }
    }

    /// A bell on any two words (a benchmark's own shared memory, say): the
    /// same handshake as a region's bells.
    pub fn from_words(seq: &'a AtomicU32, sleepers: &'a AtomicU32, futex: &'a F) -> Self {
        Doorbell { seq, sleepers, futex }
    }

    /// After publishing work a sleeper may wait for: wake the sleepers,
    /// if there are any. Returns true when it found one (and made the
    /// futex call).
    pub fn ring(&self) -> bool {
        self.wake_if(|sleepers| sleepers % NUDGEABLE > 0)
    }

    /// After consuming what the other side published (module doc, "Rings
    /// and nudges"): wake the sleepers if one of them announced
    /// [`Interest::Any`]. Returns true when it found one (and made the
    /// futex call).
    pub fn nudge(&self) -> bool {
        self.wake_if(|sleepers| sleepers / NUDGEABLE > 0)
    }

    /// The waker's half of the handshake: F2, then wake when `counts`
    /// says a sleeper that wants this wake-up is announced.
    fn wake_if(&self, counts: impl FnOnce(u32) -> bool) -> bool {
        // F2: pairs with F1 in `sleep` (module doc). The publication this
        // ring follows is ordered before the load of `sleepers` below.
        #[cfg(not(chiplane_mutant = "missed_doorbell"))]
        fence(Ordering::SeqCst);
        // MUTANT missed_doorbell: without F2 the load below may read a
        // `sleepers` older than the sleeper's announcement.
        // Relaxed: ordered by F2 (and F1 on the sleeper's side).
        if !counts(self.sleepers.load(Ordering::Relaxed)) {
            return false;
        }
        // Release: pairs with the sleeper's Acquire load of `seen`; the
        // value change is what the futex compares.
        self.seq.fetch_add(1, Ordering::Release);
        self.futex.wake(self.seq);
        true
    }

    /// Announce, re-check with `busy`, and sleep unless it found work (or
    /// until rung or nudged, or `timeout`). Returns true when it slept
    /// (woken, timed out or spurious), false when `busy` found work at once.
    pub fn sleep(&self, busy: impl FnOnce() -> bool, timeout: Option<Duration>) -> bool {
        self.sleep_for(Interest::Any, busy, timeout)
    }

    /// [`Doorbell::sleep`] announced with `interest`: with
    /// [`Interest::Work`] a nudge does not wake it (`busy` must still
    /// re-check everything a nudge would have told it about, so a change
    /// made before the announcement was visible is seen).
    pub fn sleep_for(&self, interest: Interest, busy: impl FnOnce() -> bool, timeout: Option<Duration>) -> bool {
        let count = interest.count();
        // Acquire: pairs with `wake_if`'s Release increment.
        let seen = self.seq.load(Ordering::Acquire);
        // Relaxed: ordered by F1 below.
        self.sleepers.fetch_add(count, Ordering::Relaxed);
        // F1: pairs with F2 in `ring` (module doc).
        fence(Ordering::SeqCst);
        let slept = if busy() {
            false
        } else {
            self.futex.wait(self.seq, seen, timeout);
            true
        };
        // Relaxed: a waker that still sees us counted rings once more,
        // which is harmless (a spurious wake-up).
        self.sleepers.fetch_sub(count, Ordering::Relaxed);
        slept
    }
}

impl<F: Futex + ?Sized> Doorbell<'_, F> {
    /// Announce a sleeper *on behalf of another thread*, which waits on this
    /// bell's word without announcing itself ([`Doorbell::wait_unannounced`]):
    /// from here on a [`Doorbell::ring`] makes the futex call, which wakes
    /// it. F1 follows, as in `sleep`; the caller then re-checks for work
    /// that was published before the announcement was visible (the
    /// sleeper's half of the handshake, done for the other thread). Undone
    /// by [`Doorbell::withdraw`], once.
    pub fn announce_for_another(&self) {
        // Relaxed: ordered by F1 below.
        self.sleepers.fetch_add(Interest::Any.count(), Ordering::Relaxed);
        // F1: pairs with F2 in `ring`.
        fence(Ordering::SeqCst);
    }

    /// Take back one [`Doorbell::announce_for_another`].
    pub fn withdraw(&self) {
        // Relaxed: a ring that still counts it wakes the other thread once
        // more, which is harmless (a spurious wake-up).
        self.sleepers.fetch_sub(Interest::Any.count(), Ordering::Relaxed);
    }

    /// Wake every thread blocked on this bell's word, announced or not
    /// (always a futex call).
    pub fn ring_always(&self) {
        // Release: pairs with the Acquire load of `seen` in the sleep
        // functions; the value change is what the futex compares.
        self.seq.fetch_add(1, Ordering::Release);
        self.futex.wake(self.seq);
    }

    /// Block on this bell's word *without announcing*: only
    /// [`Doorbell::ring_always`], or a [`Doorbell::ring`] that finds an
    /// announcement made for this thread ([`Doorbell::announce_for_another`]),
    /// wakes it early; `busy` is asked after `seen` was read and a SeqCst
    /// fence, so a change made before a ring that bumps `seen` is seen
    /// either by `busy` or by the futex's compare. Returns true when it
    /// slept.
    pub fn wait_unannounced(&self, busy: impl FnOnce() -> bool, timeout: Option<Duration>) -> bool {
        // Acquire: pairs with the Release increments of the rings.
        let seen = self.seq.load(Ordering::Acquire);
        // Pairs with the SeqCst fence of whoever changes what `busy` reads
        // (the parent's last waiter: F1 of `announce_for_another`).
        fence(Ordering::SeqCst);
        if busy() {
            return false;
        }
        self.futex.wait(self.seq, seen, timeout);
        true
    }
}

/// A futex for threads of one process (tests, models, in-process peers):
/// a mutex and a condvar from [`crate::sync`], so loom and shuttle see
/// every sleep and wake.
#[derive(Debug, Default)]
pub struct LocalFutex {
    gate: Mutex<()>,
    wake: Condvar,
}

impl LocalFutex {
    /// A futex nobody sleeps on yet.
    pub fn new() -> Self {
        LocalFutex { gate: Mutex::new(()), wake: Condvar::new() }
    }
}

impl Futex for LocalFutex {
    fn wait(&self, word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
        let guard = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        // SeqCst: a waker bumps the word *before* it takes the gate, so
        // under the gate either we see the bump or its notify comes after
        // we wait (it blocks on the gate until `wait` releases it).
        if word.load(Ordering::SeqCst) != expected {
            return;
        }
        match timeout {
            #[cfg(not(chiplane_loom))]
            Some(t) => drop(self.wake.wait_timeout(guard, t).unwrap_or_else(|e| e.into_inner())),
            _ => drop(self.wake.wait(guard).unwrap_or_else(|e| e.into_inner())),
        }
    }

    fn wake(&self, _word: &AtomicU32) {
        // Taking the gate orders this notify after a sleeper's check (see
        // `wait`); notify after unlocking so the sleeper does not block on it.
        drop(self.gate.lock().unwrap_or_else(|e| e.into_inner()));
        self.wake.notify_all();
    }
}

#[cfg(all(test, not(any(chiplane_loom, chiplane_shuttle))))]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use crate::sync::{thread, Arc, AtomicBool};

    #[test]
    fn a_ring_without_sleepers_makes_no_futex_call() {
        let words = BellWords::new();
        let futex = LocalFutex::new();
        let bell = Doorbell::new(&words, &futex);
        assert!(!bell.ring());
        assert_eq!(words.rings(), 0);
        // Work visible at the re-check: no sleep.
        assert!(!bell.sleep(|| true, None));
        assert_eq!(words.sleepers(), 0);
    }

    /// A thread that sleeps on a fresh bell with `interest` until `work`.
    #[allow(clippy::type_complexity)]
    fn sleeper(interest: Interest) -> (Arc<BellWords>, Arc<LocalFutex>, Arc<AtomicBool>, thread::JoinHandle<()>) {
        let words = Arc::new(BellWords::new());
        let futex = Arc::new(LocalFutex::new());
        let work = Arc::new(AtomicBool::new(false));
        let sleeper = {
            let (words, futex, work) = (words.clone(), futex.clone(), work.clone());
            thread::spawn(move || {
                let bell = Doorbell::new(&words, &*futex);
                // Acquire: pairs with the tests' Release stores.
                while !work.load(Ordering::Acquire) {
                    bell.sleep_for(interest, || work.load(Ordering::Acquire), None);
                }
            })
        };
        (words, futex, work, sleeper)
    }

    #[test]
    fn a_nudge_wakes_only_a_sleeper_that_takes_nudges() {
        for interest in [Interest::Work, Interest::Any] {
            let (words, futex, work, sleeper) = sleeper(interest);
            // The sleeper's announcement (it stays announced until woken).
            while words.sleepers() == 0 {
                thread::yield_now();
            }
            let bell = Doorbell::new(&words, &*futex);
            match interest {
                Interest::Work => {
                    // Announced for work only: never counted for a nudge.
                    assert_eq!(words.nudgeable(), 0);
                    assert!(!bell.nudge());
                    assert_eq!(words.rings(), 0, "a nudge that found no nudgeable sleeper makes no futex call");
                }
                Interest::Any => {
                    // Counted for nudges while announced (a spurious wake-up
                    // un-announces it for a moment; it announces again).
                    while !bell.nudge() {
                        thread::yield_now();
                    }
                    assert!(words.rings() > 0);
                }
            }
            // Release: pairs with the sleeper's Acquire loads.
            work.store(true, Ordering::Release);
            bell.ring();
            sleeper.join().unwrap();
            assert_eq!((words.sleepers(), words.nudgeable()), (0, 0));
        }
    }

    #[test]
    fn a_sleeper_is_woken_by_the_ring_that_follows_the_work() {
        let (words, futex, work, sleeper) = sleeper(Interest::Any);
        // Release: pairs with the sleeper's Acquire loads.
        work.store(true, Ordering::Release);
        Doorbell::new(&words, &*futex).ring();
        sleeper.join().unwrap();
        assert_eq!(words.sleepers(), 0);
    }
}
