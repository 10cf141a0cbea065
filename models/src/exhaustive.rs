//! Exhaustive state-space check of the composed pure protocol
//! ([`crate::system::System`]: core's parent endpoint, child endpoint and
//! chip side over a simulated region, 2 callables, bounded user operations).
//!
//! # Search
//! Depth-first, on one or more threads, over every interleaving of
//! [`Action`]s, with a shared set of visited states keyed by a 128-bit
//! fingerprint of the state's fields (`system::part`; a collision could
//! only *skip* a state, never report a false violation). States are forked
//! copy-on-write, so a step copies only the parts it changes. With several
//! threads, a thread that runs dry takes the untried actions of the
//! shallowest state on a busy thread's stack.
//!
//! Every state is checked with [`System::check`] (and the checks made as
//! things happen); every state in which no action changes anything with
//! [`System::check_final`]. A state's successors are tried from
//! [`System::candidates`]; a word load whose successor has the state's own
//! fingerprint changed nothing and is not a step.
//!
//! # Bounds
//! A state cap, a depth cap and a time cap. A search that any of them cut
//! is *truncated* ([`Report::truncated`]): it proves nothing about what it
//! did not visit, and `bin/exhaustive` fails on it.
//!
//! # Reachability
//! Each named state of docs/protocol.md (every value of the word; every slot
//! state, RETIRED once the bounds allow a slot's last generation to be
//! freed and FAILED with chip errors; a control during TASK_RUNNING; a
//! deferred TASK_DONE; a full ring; with deaths a child death, a torn write
//! and an answer reaching a gone parent) must be reached at least once, or
//! the check fails: a property that holds only because its premise is
//! unreachable proves nothing.
//!
//! # Symmetry
//! The callables are interchangeable: `spec_of(c)` / `args_of(c)` differ
//! only in values (a parameter and the argument values), never in shape,
//! so every frame has the same length whichever callable it names, and no
//! machine orders or decides anything by a digest's value (the slot table
//! allocates by slot index; its digest map is only looked up). So renaming
//! two callables maps every run of the system onto a run of the system,
//! and every check (each one compares a callable with itself) onto itself.
//! In a state where no submission named either of two callables, the state
//! is its own image, so the subtree after registering one is the image of
//! the subtree after registering the other: `System::enabled` offers only
//! the first callable no submission has named. Slots are *not*
//! interchangeable (the table hands out the lowest free slot), so they are
//! not reduced.

use crate::system::part::FpKeys;
use crate::system::{Action, Config, Named, Reached, System};
use chiplane_core::mailbox::word::WordState;
use chiplane_core::slot::SlotState;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Bounds of one search.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Stop after this many distinct states.
    pub states_max: u64,
    /// Do not expand states this many actions deep.
    pub depth_max: usize,
    /// Stop after this long.
    pub time_max: Duration,
    /// Search threads.
    pub threads: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds { states_max: 200_000_000, depth_max: 10_000, time_max: Duration::from_secs(3600), threads: 1 }
    }
}

/// Which bound cut a search.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Cut {
    States,
    Depth,
    Time,
}

/// Result of one search.
#[derive(Debug, Default)]
pub struct Report {
    pub states: u64,
    pub transitions: u64,
    pub terminal: u64,
    pub depth_max: usize,
    /// Named states reached.
    pub reached: Reached,
    /// The first violation found and the action path that leads to it.
    pub violation: Option<(String, Vec<Action>)>,
    /// The bounds that cut the search (empty: it finished).
    pub truncated: Vec<Cut>,
    pub elapsed: Duration,
}

impl Report {
    /// Named states that must be reached by a full search with `cfg`.
    pub fn required(cfg: &Config) -> Vec<Named> {
        let mut v: Vec<Named> = WordState::ALL
            .iter()
            .filter(|w| **w != WordState::Poisoned || cfg.allow_death)
            .map(|w| Named::Word(*w))
            .collect();
        for s in [
            SlotState::Empty,
            SlotState::Preparing,
            SlotState::Prepared,
            SlotState::Cancelling,
            SlotState::Unregistering,
        ] {
            v.push(Named::Slot(s));
        }
        if cfg.allow_chip_errors {
            v.push(Named::Slot(SlotState::Failed));
        }
        // A slot retires when its last generation is freed: register and
        // unregister once per generation.
        if u32::from(cfg.ops_max) >= 2 * cfg.limits.generation_max.0 {
            v.push(Named::Slot(SlotState::Retired));
        }
        v.extend([Named::ControlDuringTask, Named::DeferredTaskDone, Named::RingFull]);
        if cfg.allow_death {
            v.extend([Named::ChildDeath, Named::TornWrite, Named::AnswerAfterGone]);
        }
        v
    }

    /// Required named states not reached.
    pub fn missing(&self, cfg: &Config) -> Vec<String> {
        Self::required(cfg).into_iter().filter(|n| !self.reached.contains(*n)).map(Named::name).collect()
    }

    /// Distinct states per second of search.
    pub fn states_per_s(&self) -> f64 {
        self.states as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

const SHARDS: usize = 64;

/// A subtree handed to a thread: a state (already counted and checked), its
/// fingerprint, the path to it, which of its actions to try, and whether it
/// is known to have a successor (it is not terminal).
struct Item {
    state: System,
    fp: u128,
    path: Vec<Action>,
    actions: Vec<Action>,
    changed: bool,
}

struct Pool {
    items: Vec<Item>,
    idle: usize,
    done: bool,
}

struct Shared {
    bounds: Bounds,
    start: Instant,
    visited: Vec<Mutex<HashSet<u128, FpKeys>>>,
    pool: Mutex<Pool>,
    wake: Condvar,
    /// Threads waiting for work (a hint for donors).
    hungry: AtomicUsize,
    stop: AtomicBool,
    states: AtomicU64,
    transitions: AtomicU64,
    terminal: AtomicU64,
    depth_max: AtomicUsize,
    reached: AtomicU64,
    cut: Mutex<Vec<Cut>>,
    violation: Mutex<Option<(String, Vec<Action>)>>,
}

impl Shared {
    /// First visit of `fp`?
    fn visit(&self, fp: u128) -> bool {
        let shard = (fp >> 64) as usize % SHARDS;
        self.visited[shard].lock().expect("visited set").insert(fp)
    }

    fn cut(&self, c: Cut) {
        let mut cuts = self.cut.lock().expect("cuts");
        if !cuts.contains(&c) {
            cuts.push(c);
        }
        if c != Cut::Depth {
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    fn found(&self, msg: String, path: Vec<Action>) {
        let mut v = self.violation.lock().expect("violation");
        if v.is_none() {
            *v = Some((msg, path));
        }
        self.stop.store(true, Ordering::Relaxed);
        self.wake.notify_all();
    }

    /// The next subtree, or `None` when the search is over.
    fn take(&self) -> Option<Item> {
        let mut pool = self.pool.lock().expect("pool");
        loop {
            if self.stop.load(Ordering::Relaxed) || pool.done {
                return None;
            }
            if let Some(item) = pool.items.pop() {
                return Some(item);
            }
            pool.idle += 1;
            if pool.idle == self.bounds.threads {
                pool.done = true;
                self.wake.notify_all();
                return None;
            }
            self.hungry.fetch_add(1, Ordering::Relaxed);
            pool = self.wake.wait(pool).expect("pool");
            self.hungry.fetch_sub(1, Ordering::Relaxed);
            pool.idle -= 1;
        }
    }

    fn give(&self, items: Vec<Item>) {
        self.pool.lock().expect("pool").items.extend(items);
        self.wake.notify_all();
    }
}

/// One state on a thread's stack.
struct Node {
    state: System,
    fp: u128,
    /// The action that led here from the node below (`None` for the root
    /// of a subtree).
    via: Option<Action>,
    /// Its candidate actions (`System::candidates`: a word load may turn
    /// out to change nothing).
    actions: Vec<Action>,
    next: usize,
    /// Some action led to another state: not terminal.
    changed: bool,
}

/// A state no action changes: the liveness check.
fn terminal(sh: &Shared, mut state: System, path: &[Action]) -> bool {
    sh.terminal.fetch_add(1, Ordering::Relaxed);
    state.check_final();
    match state.violation.take() {
        Some(v) => {
            sh.found(v, path.to_vec());
            true
        }
        None => false,
    }
}

/// Search the subtree `item` depth first.
fn search(sh: &Shared, item: Item, reached: &mut Reached) {
    let mut path = item.path;
    let root =
        Node { state: item.state, fp: item.fp, via: None, actions: item.actions, next: 0, changed: item.changed };
    let mut stack = vec![root];
    let mut expanded = 0u64;
    while let Some(top) = stack.last_mut() {
        if top.next == top.actions.len() {
            let done = stack.pop().expect("the top node");
            if !done.changed && terminal(sh, done.state, &path) {
                return;
            }
            if done.via.is_some() {
                path.pop();
            }
            continue;
        }
        let a = top.actions[top.next];
        top.next += 1;
        let mut next = top.state.clone();
        next.step(a);
        reached.0 |= next.reached.0;
        if let Some(v) = next.violation.take() {
            path.push(a);
            return sh.found(v, path);
        }
        let fp = next.fingerprint();
        if fp == top.fp {
            // A word load that changed nothing: not a step.
            continue;
        }
        top.changed = true;
        sh.transitions.fetch_add(1, Ordering::Relaxed);
        if !sh.visit(fp) {
            continue;
        }
        let n = sh.states.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= sh.bounds.states_max {
            sh.cut(Cut::States);
        }
        let depth = path.len() + 1;
        sh.depth_max.fetch_max(depth, Ordering::Relaxed);
        path.push(a);
        if depth >= sh.bounds.depth_max {
            // Not expanded: a terminal state is still checked, anything
            // else is cut.
            if next.enabled().is_empty() {
                if terminal(sh, next, &path) {
                    return;
                }
            } else {
                sh.cut(Cut::Depth);
            }
            path.pop();
            continue;
        }
        let actions = next.candidates();
        stack.push(Node { state: next, fp, via: Some(a), actions, next: 0, changed: false });
        expanded += 1;
        if expanded.is_multiple_of(1024) {
            if sh.start.elapsed() >= sh.bounds.time_max {
                sh.cut(Cut::Time);
            }
            if sh.stop.load(Ordering::Relaxed) {
                return;
            }
        }
        if sh.hungry.load(Ordering::Relaxed) > 0 {
            donate(sh, &mut stack, &path);
        }
    }
}

/// Hand the untried actions of the shallowest node that has any to the
/// pool.
fn donate(sh: &Shared, stack: &mut [Node], path: &[Action]) {
    // path[..base + i] leads to stack[i]. A node below the top has a
    // successor (the node above it), so the receiver knows it is not
    // terminal whatever the donated actions do.
    let (depth, base) = (stack.len(), path.len() + 1 - stack.len());
    for (i, node) in stack.iter_mut().enumerate() {
        if node.next < node.actions.len() && i + 1 < depth {
            let actions = node.actions.split_off(node.next);
            let prefix = path[..base + i].to_vec();
            let (state, fp) = (node.state.clone(), node.fp);
            return sh.give(vec![Item { state, fp, path: prefix, actions, changed: true }]);
        }
    }
}

/// Explore every interleaving from the initial state of `cfg`.
pub fn explore(cfg: Config, bounds: Bounds) -> Report {
    let start = Instant::now();
    let threads = bounds.threads.max(1);
    let bounds = Bounds { threads, ..bounds };
    let sh = Shared {
        bounds,
        start,
        visited: (0..SHARDS).map(|_| Mutex::new(HashSet::default())).collect(),
        pool: Mutex::new(Pool { items: Vec::new(), idle: 0, done: false }),
        wake: Condvar::new(),
        hungry: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        states: AtomicU64::new(1),
        transitions: AtomicU64::new(0),
        terminal: AtomicU64::new(0),
        depth_max: AtomicUsize::new(0),
        reached: AtomicU64::new(0),
        cut: Mutex::new(Vec::new()),
        violation: Mutex::new(None),
    };
    let mut root = System::new(cfg);
    let fp = root.fingerprint();
    sh.visit(fp);
    sh.reached.fetch_or(root.reached.0, Ordering::Relaxed);
    if let Some(v) = root.violation.take() {
        sh.found(v, Vec::new());
    }
    let actions = root.candidates();
    sh.give(vec![Item { state: root, fp, path: Vec::new(), actions, changed: false }]);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut reached = Reached::default();
                while let Some(item) = sh.take() {
                    search(&sh, item, &mut reached);
                }
                sh.reached.fetch_or(reached.0, Ordering::Relaxed);
                sh.wake.notify_all();
            });
        }
    });
    let mut truncated = sh.cut.into_inner().expect("cuts");
    truncated.sort();
    Report {
        states: sh.states.into_inner(),
        transitions: sh.transitions.into_inner(),
        terminal: sh.terminal.into_inner(),
        depth_max: sh.depth_max.into_inner(),
        reached: Reached(sh.reached.into_inner()),
        violation: sh.violation.into_inner().expect("violation"),
        truncated,
        elapsed: start.elapsed(),
    }
}
