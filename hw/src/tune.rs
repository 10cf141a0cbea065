//! Machine-dependent waiting: how long core's loops spin before they sleep,
//! measured on this machine (core reads no clock; it takes the budget as an
//! input, `chiplane_core::conc::wait::set_spin_budget`).
//!
//! [`calibrate`] (once per process, idempotent) measures
//! - what one `spin_loop` iteration costs, and
//! - what a futex wake-up costs here (a ping-pong between two threads
//!   through core's doorbell on [`SysFutex`]: the time a sleeper takes to
//!   run again after a ring),
//!
//! and sets the spin budget to about one wake-up: spinning longer than a
//! wake-up costs wastes more than sleeping would. When the machine has few
//! cores (at most 2: a busy lane may already hold one) the budget is a
//! quarter of that, so a spinning thread does not keep a lane off its core.
//! `CHIPLANE_SPIN_NS` overrides the measured budget (0: never spin).
//! [`set_budgets`] also sets core's under-task budget: 0 on at most 2
//! cores (a long task holds one; the caller and the serve loop share the
//! other), else the same as the budget. On at most 2 cores [`calibrate`]
//! also sets the under-task *yield* budget (`under_task_yields`): a caller
//! waiting for a control's reply beside a long task gives its core to the
//! serve loop a bounded number of times before it sleeps.
//!
//! [`LaneCpus`] keeps a device's two lanes off each other's CPUs (the host
//! device binds its lane threads with it; see there for why).
//! [`run_inline_ops_max`] says which host runs are short enough for the
//! chip child's serve loop to execute itself (`Chip::run_inline`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chiplane_core::chip::LaneKind;
use chiplane_core::conc::bell::{BellWords, Doorbell};
use chiplane_core::conc::wait::{set_spin_budget, set_under_task_spin_budget, set_under_task_yield_budget};

use crate::l3::memory::SysFutex;

/// What [`calibrate`] measured and set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Calibration {
    /// One `spin_loop` iteration, in nanoseconds.
    pub spin_iter_ns: f64,
    /// A futex wake-up (ring to the sleeper running), median, nanoseconds.
    pub wake_ns: u64,
    /// Cores this process may use.
    pub cores: usize,
    /// The budget set, nanoseconds.
    pub spin_ns: u64,
    /// The budget set, iterations.
    pub spin_iters: u32,
    /// `sched_yield` rounds a caller waiting for a control's reply under a
    /// running task makes before it sleeps (`under_task_yield_budget`).
    pub under_task_yields: u32,
}

/// The under-task yield budget: on at most 2 cores (where the under-task
/// spin budget is 0), about four wake-ups' worth of rounds at a quarter of
/// a microsecond each (a round that hands the core over takes longer, so
/// the bound in time is looser), 64 to 2,000; 0 on more cores (the caller
/// spins there) or when spinning is off (`CHIPLANE_SPIN_NS=0`).
/// Why: a control under a task costs the serve loop a wake-up; a caller
/// that sleeps meanwhile costs a second one when the reply comes. Yielding
/// instead gives the woken serve loop the core at once (busy register
/// medians 26-34 µs against 41-65 µs in four alternating probe rounds on
/// the 2-core machine, hw/benches/README.md).
fn under_task_yields(cores: usize, wake_ns: u64, spin_iters: u32) -> u32 {
    if cores > 2 || spin_iters == 0 {
        return 0;
    }
    (wake_ns.saturating_mul(4) / 250).clamp(64, 2_000) as u32
}

static CALIBRATION: OnceLock<Calibration> = OnceLock::new();

/// Measure and set the spin budget (once per process; later calls return
/// the first result).
pub fn calibrate() -> Calibration {
    *CALIBRATION.get_or_init(|| {
        let spin_iter_ns = spin_iter_ns();
        let wake_ns = wake_ns();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let measured = if cores <= 2 { wake_ns / 4 } else { wake_ns };
        let spin_ns = std::env::var("CHIPLANE_SPIN_NS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| measured.clamp(1_000, 100_000));
        let spin_iters = ((spin_ns as f64 / spin_iter_ns.max(0.1)) as u64).min(u64::from(u32::MAX)) as u32;
        set_budgets(spin_iters);
        let yields = under_task_yields(cores, wake_ns, spin_iters);
        set_under_task_yield_budget(yields);
        Calibration { spin_iter_ns, wake_ns, cores, spin_ns, spin_iters, under_task_yields: yields }
    })
}

/// Set the process's spin budgets from `spin_iters` (a calibration's, or
/// the one a chip child gets from its parent): the budget itself, and the
/// under-task budget (`chiplane_core::conc::wait::under_task_spin_budget`),
/// which is 0 on a machine of at most 2 cores: there a long task holds one
/// core and the two sides of a control share the other, so a side that
/// spins keeps the other off it (hw/benches/README.md measured it).
pub fn set_budgets(spin_iters: u32) {
    set_spin_budget(spin_iters);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    set_under_task_spin_budget(if cores <= 2 { 0 } else { spin_iters });
}

/// What one `spin_loop` iteration costs: the fastest of several short
/// rounds. A preemption or a VM pause inside a round only makes it slower,
/// so the fastest round is the iteration's own cost (one round of 20,000
/// iterations read 27 to 121 ns on the 2-core VM from one process start to
/// the next, so the same budget in time became 75 to 355 iterations; the
/// fastest of 15 rounds of 1,000 read 28.0 to 30.4 ns over eight starts).
fn spin_iter_ns() -> f64 {
    const ROUNDS: usize = 15;
    const N: u32 = 1_000;
    (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..N {
                std::hint::spin_loop();
            }
            t.elapsed().as_nanos() as f64 / f64::from(N)
        })
        .fold(f64::INFINITY, f64::min)
}

/// Median time from a ring to the sleeper running again.
fn wake_ns() -> u64 {
    const ROUNDS: usize = 15;
    let words = Arc::new(BellWords::new());
    let go = Arc::new(AtomicBool::new(false));
    let woke_at: Arc<std::sync::Mutex<Vec<Instant>>> = Arc::default();
    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        // Release: pairs with the sleeper's Acquire load (a fresh round).
        go.store(false, Ordering::Release);
        let sleeper = {
            let (words, go, woke_at) = (words.clone(), go.clone(), woke_at.clone());
            std::thread::spawn(move || {
                let bell = Doorbell::new(&words, &SysFutex);
                // Acquire: pairs with the Release store of `go` below.
                while !go.load(Ordering::Acquire) {
                    bell.sleep(|| go.load(Ordering::Acquire), Some(Duration::from_millis(50)));
                }
                woke_at.lock().unwrap_or_else(|e| e.into_inner()).push(Instant::now());
            })
        };
        // Let the sleeper announce and block.
        let t = Instant::now();
        while words.sleepers() == 0 && t.elapsed() < Duration::from_millis(50) {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_micros(200));
        let rung = Instant::now();
        // Release: pairs with the sleeper's Acquire loads.
        go.store(true, Ordering::Release);
        Doorbell::new(&words, &SysFutex).ring();
        let _ = sleeper.join();
        if let Some(w) = woke_at.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            samples.push(w.saturating_duration_since(rung).as_nanos() as u64);
        }
    }
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or(20_000)
}

/// Ask the kernel for exact timer wake-ups on this thread: the bounded
/// sleeps of the mailbox loops would otherwise be stretched by the default
/// timer slack (50 us).
pub fn tight_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK only sets this thread's timer slack (1 ns);
    // no pointers are passed.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
}

/// Environment variable: `0` leaves lane threads where the OS scheduler
/// puts them ([`LaneCpus`]).
pub const LANE_AFFINITY_ENV: &str = "CHIPLANE_LANE_AFFINITY";

/// Environment variable: the most element operations (tensor length times
/// repeats) of a host run that the chip child's serve loop executes itself
/// instead of waking the run lane ([`run_inline_ops_max`]); `0` sends every
/// run to the run lane.
pub const RUN_INLINE_ENV: &str = "CHIPLANE_RUN_INLINE_OPS";

/// Default of [`run_inline_ops_max`]: one vector add of the catalogue's
/// largest tensor (4,096 elements), well under a microsecond of arithmetic,
/// where waking the run lane costs 10-40 µs on the 2-core machine.
pub const RUN_INLINE_OPS_DEFAULT: u64 = chiplane_core::kernels::N_MAX;

/// The largest run (in element operations) the host and null devices call
/// short (`Chip::run_inline`): `$CHIPLANE_RUN_INLINE_OPS`, else
/// [`RUN_INLINE_OPS_DEFAULT`]. Read once per process.
pub fn run_inline_ops_max() -> u64 {
    static MAX: OnceLock<u64> = OnceLock::new();
    *MAX.get_or_init(|| {
        std::env::var(RUN_INLINE_ENV).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(RUN_INLINE_OPS_DEFAULT)
    })
}

/// The CPUs a process may use, split between a device's two lanes: the run
/// lane gets every other one (the 1st, 3rd, ...), the register lane the
/// rest, so a prepare never waits behind a run for the same CPU.
///
/// Why: on a machine with few cores the scheduler places a woken lane
/// thread on the CPU it last ran on. After a serial trial both lanes last
/// ran on one CPU, so the register lane woken for C2's prepare queues behind
/// C1's run there, and an idle CPU beside it does not pull it over while
/// its idle periods are short (the mailbox loops sleep and wake every few
/// microseconds): the prepare waited up to a scheduler tick (4 ms) in
/// `perf sched` traces of `chiplane overlap` on the 2-core machine.
///
/// Fewer than two CPUs, a mask that cannot be read, or
/// `CHIPLANE_LANE_AFFINITY=0`: no split, and binding does nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneCpus {
    /// `[run, register]`; empty when there is no split.
    halves: [Vec<usize>; 2],
}

impl LaneCpus {
    /// The split of the calling thread's CPU mask (call it where the
    /// device is made, before any lane thread binds).
    pub fn of_this_thread() -> LaneCpus {
        let off = std::env::var(LANE_AFFINITY_ENV).is_ok_and(|v| v.trim() == "0");
        let cpus = if off { Vec::new() } else { allowed_cpus() };
        LaneCpus::split(&cpus)
    }

    /// The split of `cpus` (no split below two).
    pub fn split(cpus: &[usize]) -> LaneCpus {
        if cpus.len() < 2 {
            return LaneCpus { halves: [Vec::new(), Vec::new()] };
        }
        let half = |parity| cpus.iter().enumerate().filter(|(i, _)| i % 2 == parity).map(|(_, &c)| c).collect();
        LaneCpus { halves: [half(0), half(1)] }
    }

    /// The split turned by `by`: for an odd `by` the two lanes swap halves.
    pub fn turned(mut self, by: usize) -> LaneCpus {
        if by % 2 == 1 {
            self.halves.swap(0, 1);
        }
        self
    }

    /// The CPUs of `lane` (empty: no split).
    pub fn of(&self, lane: LaneKind) -> &[usize] {
        match lane {
            LaneKind::Run => &self.halves[0],
            LaneKind::Register => &self.halves[1],
        }
    }

    /// Restrict the calling thread to `lane`'s CPUs and make it a
    /// `SCHED_BATCH` thread. Best effort: a mask or policy the OS refuses
    /// leaves the thread as it was (placement is a tuning, never a
    /// condition of correctness).
    ///
    /// Why batch: a lane thread pinned to one CPU that wakes there preempts
    /// whatever runs on it, and when that is the caller that just woke it
    /// (`run_async(C1)` at L2), the caller waits for the scheduler to move
    /// it to the other CPU. In `chiplane overlap` on the 2-core machine, C2's
    /// register (at delay 0, right after `run_async(C1)`) was issued
    /// 1.2-4.4 ms late in 8 of 45 L2 overlap trials (three runs; 10-60 µs
    /// otherwise). A `SCHED_BATCH` thread does not preempt on wake-up: it
    /// runs once the caller sleeps or its time slice ends. Lane work is long
    /// computation, the case that policy is for; with it none of 45 trials,
    /// in three runs alternating with those, issued the register over
    /// 0.2 ms late.
    pub fn bind(&self, lane: LaneKind) {
        let cpus = self.of(lane);
        if cpus.is_empty() {
            return;
        }
        let mut set = empty_cpu_set();
        for &c in cpus {
            // SAFETY: `c` came from `allowed_cpus`, so it is below CPU_SETSIZE.
            unsafe { libc::CPU_SET(c, &mut set) };
        }
        // SAFETY: pid 0 is the calling thread; the pointer and size are
        // those of `set`, which outlives the call.
        let _ = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        let batch = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `batch` outlives the call
        // (SCHED_BATCH takes priority 0 and needs no privilege).
        let _ = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &batch) };
    }
}

fn empty_cpu_set() -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain bits; all zeroes is the empty set.
    unsafe { std::mem::zeroed() }
}

/// The CPUs the calling thread may run on (empty if the mask cannot be read).
pub(crate) fn allowed_cpus() -> Vec<usize> {
    let mut set = empty_cpu_set();
    // SAFETY: pid 0 is the calling thread; the pointer and size are those
    // of `set`, which outlives the call.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return Vec::new();
    }
    // SAFETY: every index is below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

#[cfg(test)]
mod tests {
    use super::{LaneCpus, LaneKind};

    #[test]
    fn lanes_get_disjoint_halves_of_the_cpus() {
        let s = LaneCpus::split(&[0, 1, 2, 3, 5]);
        assert_eq!(s.of(LaneKind::Run), &[0, 2, 5]);
        assert_eq!(s.of(LaneKind::Register), &[1, 3]);
        let two = LaneCpus::split(&[4, 7]);
        assert_eq!((two.of(LaneKind::Run), two.of(LaneKind::Register)), (&[4][..], &[7][..]));
        // Chip 1 of a worker: its run lane takes the other half.
        let turned = LaneCpus::split(&[4, 7]).turned(1);
        assert_eq!((turned.of(LaneKind::Run), turned.of(LaneKind::Register)), (&[7][..], &[4][..]));
        assert_eq!(LaneCpus::split(&[4, 7]).turned(2), two);
        // One CPU: nothing to split, binding leaves the thread alone.
        let one = LaneCpus::split(&[3]);
        assert!(one.of(LaneKind::Run).is_empty() && one.of(LaneKind::Register).is_empty());
    }

    #[test]
    fn a_bound_lane_thread_is_a_batch_thread_on_its_half() {
        let cpus = super::allowed_cpus();
        let split = LaneCpus::split(&cpus);
        let (policy, on) = std::thread::spawn(move || {
            split.bind(LaneKind::Register);
            // SAFETY: pid 0 is the calling thread.
            (unsafe { libc::sched_getscheduler(0) }, super::allowed_cpus())
        })
        .join()
        .unwrap();
        if cpus.len() < 2 {
            assert_eq!((policy, on), (libc::SCHED_OTHER, cpus));
        } else {
            assert_eq!(policy, libc::SCHED_BATCH);
            assert_eq!(on, LaneCpus::split(&cpus).of(LaneKind::Register));
        }
    }
}
