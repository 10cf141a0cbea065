//! The trace: a running FNV-1a 64 hash over a canonical record of every
//! simulated event (the determinism check compares it across runs), and, when
//! asked, spans for a Chrome trace-event JSON file (lanes as tracks; opens in
//! Perfetto and chrome://tracing).

use std::fmt::Write as _;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// One span or instant on a track.
#[derive(Clone, Debug)]
pub struct Span {
    pub track: u32,
    pub name: String,
    pub start_ns: u64,
    /// `None` = an instant event.
    pub dur_ns: Option<u64>,
}

/// Hash plus optional spans.
#[derive(Debug)]
pub struct Trace {
    hash: u64,
    pub events: u64,
    spans: Option<Vec<Span>>,
    tracks: Vec<(u32, String)>,
}

impl Trace {
    pub fn new(record_spans: bool) -> Self {
        Trace { hash: FNV_OFFSET, events: 0, spans: record_spans.then(Vec::new), tracks: Vec::new() }
    }

    #[inline]
    pub fn mix(&mut self, v: u64) {
        let mut h = self.hash;
        for b in v.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(FNV_PRIME);
        }
        self.hash = h;
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    pub fn recording(&self) -> bool {
        self.spans.is_some()
    }

    pub fn name_track(&mut self, track: u32, name: impl Into<String>) {
        if self.spans.is_some() && !self.tracks.iter().any(|(t, _)| *t == track) {
            self.tracks.push((track, name.into()));
        }
    }

    pub fn span(&mut self, track: u32, name: impl Into<String>, start_ns: u64, end_ns: u64) {
        if let Some(s) = &mut self.spans {
            s.push(Span { track, name: name.into(), start_ns, dur_ns: Some(end_ns.saturating_sub(start_ns)) });
        }
    }

    pub fn instant(&mut self, track: u32, name: impl Into<String>, at_ns: u64) {
        if let Some(s) = &mut self.spans {
            s.push(Span { track, name: name.into(), start_ns: at_ns, dur_ns: None });
        }
    }

    /// Append this trace's tracks and spans to a Chrome trace as process `pid`.
    pub fn chrome_events(&self, pid: u32, process: &str, out: &mut Vec<String>) {
        out.push(format!(
            r#"{{"ph":"M","pid":{pid},"tid":0,"name":"process_name","args":{{"name":"{}"}}}}"#,
            escape(process)
        ));
        for (t, name) in &self.tracks {
            out.push(format!(
                r#"{{"ph":"M","pid":{pid},"tid":{t},"name":"thread_name","args":{{"name":"{}"}}}}"#,
                escape(name)
            ));
            out.push(format!(
                r#"{{"ph":"M","pid":{pid},"tid":{t},"name":"thread_sort_index","args":{{"sort_index":{t}}}}}"#
            ));
        }
        for s in self.spans.iter().flatten() {
            let mut e = String::new();
            let ts = s.start_ns as f64 / 1000.0;
            match s.dur_ns {
                Some(d) => write!(
                    e,
                    r#"{{"ph":"X","pid":{pid},"tid":{},"name":"{}","ts":{ts:.3},"dur":{:.3}}}"#,
                    s.track,
                    escape(&s.name),
                    d as f64 / 1000.0
                ),
                None => write!(
                    e,
                    r#"{{"ph":"i","s":"t","pid":{pid},"tid":{},"name":"{}","ts":{ts:.3}}}"#,
                    s.track,
                    escape(&s.name)
                ),
            }
            .expect("write to String");
            out.push(e);
        }
    }
}

/// Write a Chrome trace-event JSON file from pre-rendered events.
pub fn write_chrome(path: &std::path::Path, events: &[String]) -> std::io::Result<()> {
    let mut s = String::from("{\"traceEvents\":[\n");
    for (i, e) in events.iter().enumerate() {
        s.push_str(e);
        s.push_str(if i + 1 == events.len() { "\n" } else { ",\n" });
    }
    s.push_str("],\"displayTimeUnit\":\"ns\"}\n");
    std::fs::write(path, s)
}

fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => write!(o, "\\u{:04x}", c as u32).expect("write to String"),
            c => o.push(c),
        }
    }
    o
}
