//! Lane traces for `chiplane overlap --trace FILE`: a [`TracedChip`] wraps a
//! device and records every prepare, run and release with the lane it ran
//! on (a short run that the chip child's serve loop executed itself,
//! docs/protocol.md rule 9, on its own track, "serve loop"), on the
//! system-wide monotonic clock (`CLOCK_MONOTONIC`, the same in
//! the parent and in every chip child, so their events line up).
//!
//! [`chrome_json`] writes the Chrome trace-event format (`chrome://tracing`,
//! Perfetto): one process per level/chip, one thread (track) per lane.

use std::sync::{Arc, Mutex};

use chiplane_core::chip::{CallableSpec, CancelProbe, Chip, ChipError, LaneKind, RunConfig, RunOutput, TaskArgs};

/// Nanoseconds on `CLOCK_MONOTONIC`.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// One complete event (a span on a track).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// The track within its process: a lane (`run lane`, `register lane`)
    /// or a caller's own track.
    pub track: String,
    /// What ran (`prepare vector_add[16]`, `run ...`, or a caller's label).
    pub name: String,
    /// Start, on `CLOCK_MONOTONIC` ([`mono_ns`]).
    pub start_ns: u64,
    /// End, on the same clock.
    pub end_ns: u64,
}

impl Span {
    /// One line: `track \t name \t start \t end` (the child's trace file).
    pub fn to_line(&self) -> String {
        format!("{}\t{}\t{}\t{}", self.track, self.name, self.start_ns, self.end_ns)
    }

    /// Parse a line written by [`Span::to_line`]; `None` if it is not one.
    pub fn from_line(line: &str) -> Option<Span> {
        let mut it = line.split('\t');
        let (track, name) = (it.next()?.to_string(), it.next()?.to_string());
        let (start_ns, end_ns) = (it.next()?.parse().ok()?, it.next()?.parse().ok()?);
        Some(Span { track, name, start_ns, end_ns })
    }
}

/// Shared list of spans.
#[derive(Debug, Default)]
pub struct SpanLog(Mutex<Vec<Span>>);

impl SpanLog {
    /// Record one span (any thread).
    pub fn push(&self, track: &str, name: String, start_ns: u64, end_ns: u64) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(Span { track: track.into(), name, start_ns, end_ns });
    }

    /// Every span recorded since the last `take`, in recording order; the
    /// log is empty afterwards.
    pub fn take(&self) -> Vec<Span> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A device that records its lane work into a [`SpanLog`].
#[derive(Debug)]
pub struct TracedChip<C> {
    /// The device that does the work.
    pub inner: C,
    /// Where its spans go.
    pub log: Arc<SpanLog>,
}

thread_local! {
    /// This thread called `bind_lane(Run)`: its runs go on the run lane's
    /// track; a run on any other thread was executed where it was accepted.
    static ON_RUN_LANE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn label(spec: &CallableSpec) -> String {
    format!("{}{:?}", spec.kernel, spec.params)
}

impl<C: Chip> Chip for TracedChip<C> {
    type Prepared = (String, C::Prepared);

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn bind_lane(&self, lane: LaneKind) -> Result<(), ChipError> {
        if lane == LaneKind::Run {
            ON_RUN_LANE.with(|on| on.set(true));
        }
        self.inner.bind_lane(lane)
    }

    fn prepare(&self, spec: &CallableSpec, cancel: &dyn CancelProbe) -> Result<Self::Prepared, ChipError> {
        let t0 = mono_ns();
        let r = self.inner.prepare(spec, cancel);
        self.log.push("register lane", format!("prepare {}", label(spec)), t0, mono_ns());
        r.map(|p| (label(spec), p))
    }

    fn run(&self, prepared: &Self::Prepared, args: &TaskArgs, config: &RunConfig) -> Result<RunOutput, ChipError> {
        let t0 = mono_ns();
        let r = self.inner.run(&prepared.1, args, config);
        let track = if ON_RUN_LANE.with(|on| on.get()) { "run lane" } else { "serve loop" };
        self.log.push(track, format!("run {}", prepared.0), t0, mono_ns());
        r
    }

    fn run_inline(&self, prepared: &Self::Prepared, args: &TaskArgs) -> bool {
        self.inner.run_inline(&prepared.1, args)
    }

    fn release(&self, prepared: Self::Prepared) {
        let t0 = mono_ns();
        self.inner.release(prepared.1);
        self.log.push("register lane", format!("release {}", prepared.0), t0, mono_ns());
    }
}

fn escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            c if (c as u32) < 0x20 => vec![' '],
            c => vec![c],
        })
        .collect()
}

/// Chrome trace-event JSON. `processes`: (process name, spans); each
/// distinct track of a process becomes a thread. Times are relative to the
/// earliest span, in microseconds.
pub fn chrome_json(processes: &[(String, Vec<Span>)]) -> String {
    let t0 = processes.iter().flat_map(|(_, s)| s.iter().map(|s| s.start_ns)).min().unwrap_or(0);
    let mut events = Vec::new();
    for (p, (pname, spans)) in processes.iter().enumerate() {
        let pid = p + 1;
        events.push(format!(
            r#"{{"name":"process_name","ph":"M","pid":{pid},"tid":0,"args":{{"name":"{}"}}}}"#,
            escape(pname)
        ));
        let mut tracks: Vec<&str> = Vec::new();
        for s in spans {
            if !tracks.contains(&s.track.as_str()) {
                tracks.push(&s.track);
            }
        }
        for (t, track) in tracks.iter().enumerate() {
            events.push(format!(
                r#"{{"name":"thread_name","ph":"M","pid":{pid},"tid":{},"args":{{"name":"{}"}}}}"#,
                t + 1,
                escape(track)
            ));
        }
        for s in spans {
            let tid = tracks.iter().position(|t| *t == s.track).unwrap_or(0) + 1;
            events.push(format!(
                r#"{{"name":"{}","ph":"X","pid":{pid},"tid":{tid},"ts":{:.3},"dur":{:.3}}}"#,
                escape(&s.name),
                (s.start_ns - t0) as f64 / 1000.0,
                s.end_ns.saturating_sub(s.start_ns) as f64 / 1000.0
            ));
        }
    }
    format!("{{\"traceEvents\":[\n{}\n]}}\n", events.join(",\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_round_trip_through_lines_and_json_names_tracks() {
        let s = Span { track: "run lane".into(), name: "run x".into(), start_ns: 5, end_ns: 2005 };
        assert_eq!(Span::from_line(&s.to_line()), Some(s.clone()));
        let j = chrome_json(&[("L2 \"overlap\"".into(), vec![s])]);
        assert!(j.contains(r#""name":"run lane""#) && j.contains(r#""dur":2.000"#) && j.contains(r#"L2 \"overlap\""#));
    }
}
