//! What limits capacity: the steps at and past the knee read against the first step, with
//! the monitoring perfgate collects, into one kind of bottleneck, its evidence in numbers,
//! a confidence, and the signals that were missing.
//!
//! The rules, first match wins:
//! - client: perfgate itself used at least 80% of the host's cores: the result is a floor,
//!   not the server's capacity.
//! - cpu: the server's process tree used at least 85% of the host's cores.
//! - single-thread: one server process at 90% or more of one core while the tree as a whole
//!   used less than 85% of the host (a GIL, one worker, one event loop).
//! - workers: every worker busy (requests in flight at least the worker count) while
//!   throughput stayed flat.
//! - errors: errors rose to 1% or more past the knee (from under 0.1% at the first step).
//! - memory: server memory grew by a quarter or more, step after step.
//! - queueing: p99 rose by half or more while throughput stayed flat (within 10%), with no
//!   resource signal saturated: requests wait inside the server (a concurrency limit, a
//!   lock, a downstream call).
//!
//! With no knee, no saturation and no missed SLO, the load never reached a limit.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::capacity::Step;

/// Share of the host's cores at which a process tree is CPU bound.
pub const CPU_BOUND: f64 = 0.85;
/// Share of the host's cores at which perfgate itself is the limit.
pub const CLIENT_BOUND: f64 = 0.8;
/// Percent of one core at which one process is pinned.
pub const PINNED: f64 = 90.0;

/// What limits capacity, and how sure perfgate is.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Bottleneck {
    /// `client`, `cpu`, `single-thread`, `workers`, `errors`, `memory`, `queueing`,
    /// `unknown`, or `none` (no limit reached).
    pub kind: String,
    /// In words.
    pub summary: String,
    /// The numbers behind it.
    pub evidence: Vec<String>,
    /// `high`, `medium` or `low`.
    pub confidence: String,
    /// Signals that were not collected and could have told more.
    pub missing: Vec<String>,
    /// The load value from which the steps were read (the knee, saturation or SLO limit).
    pub at: Option<f64>,
}

/// Reads the bottleneck of measured steps (by load, ascending) on a host of `cores`.
pub fn attribute(steps: &[Step], pivot: Option<f64>, cores: f64) -> Bottleneck {
    let missing = missing(steps);
    let mut out = Bottleneck {
        kind: "none".to_owned(),
        summary: String::new(),
        evidence: Vec::new(),
        confidence: "high".to_owned(),
        missing,
        at: pivot,
    };
    let (Some(first), Some(pivot)) = (steps.first(), pivot) else {
        out.summary = "no limit reached: throughput still grows with load and every step met its SLOs; raise the top step to find the limit".to_owned();
        return out;
    };
    let loaded: Vec<&Step> = steps.iter().filter(|s| s.value >= pivot).collect();
    let Some(top) = loaded.last().copied() else {
        out.summary = "no step at or past the knee to read".to_owned();
        return out;
    };
    let at = loaded[0];
    let most = |f: fn(&Step) -> Option<f64>| loaded.iter().filter_map(|s| f(s)).reduce(f64::max);
    let whole = cores * 100.0;
    let flat = match (at.throughput, top.throughput) {
        (Some(a), Some(t)) if a > 0.0 => t <= a * 1.1,
        _ => false,
    };
    let rising = match (first.p99_ms, top.p99_ms) {
        (Some(f), Some(t)) if f > 0.0 => t >= f * 1.5,
        _ => false,
    };
    let mut curve = Vec::new();
    if let (Some(a), Some(t)) = (at.throughput, top.throughput) {
        curve.push(format!(
            "throughput {a:.1}/s at {} and {t:.1}/s at {}{}",
            at.value,
            top.value,
            if flat { " (flat)" } else { "" }
        ));
    }
    if let (Some(f), Some(t)) = (first.p99_ms, top.p99_ms) {
        curve.push(format!(
            "p99 {f:.1} ms at {} and {t:.1} ms at {}",
            first.value, top.value
        ));
    }
    let confident = |resource: bool| {
        if resource && flat {
            "high"
        } else if resource || flat {
            "medium"
        } else {
            "low"
        }
        .to_owned()
    };
    let server_cpu = most(|s| s.server_cpu);
    let busiest = most(|s| s.server_max_process_cpu);
    let client = most(|s| s.client_cpu);
    let mut rule = |kind: &str, summary: String, evidence: Vec<String>, confidence: String| {
        out.kind = kind.to_owned();
        out.summary = summary;
        out.evidence = evidence;
        out.evidence.extend(curve.iter().cloned());
        out.confidence = confidence;
    };
    if let Some(c) = client.filter(|c| *c >= CLIENT_BOUND * whole) {
        rule(
            "client",
            "perfgate itself was short of CPU: the throughput found is a floor, not the server's capacity; run perfgate on another host or with fewer steps in parallel".to_owned(),
            vec![format!("perfgate used {c:.0}% CPU of the host's {cores} cores ({:.0}%)", c / whole * 100.0)],
            "high".to_owned(),
        );
    } else if let Some(c) = server_cpu.filter(|c| *c >= CPU_BOUND * whole) {
        rule(
            "cpu",
            format!(
                "CPU bound: the server's processes used {:.0}% of the host's {cores} cores",
                c / whole * 100.0
            ),
            vec![format!(
                "server process tree CPU {c:.0}% (of {whole:.0}%) from {}",
                at.value
            )],
            confident(true),
        );
    } else if let Some(b) = busiest.filter(|b| *b >= PINNED && cores > 1.0) {
        rule(
            "single-thread",
            format!(
                "single-thread bound: one server process is pinned at {b:.0}% of a core while the host has {cores} cores (a GIL, one worker or one event loop)"
            ),
            vec![
                format!("busiest server process {b:.0}% of one core"),
                format!(
                    "server process tree {} of {whole:.0}%",
                    server_cpu.map_or_else(|| "unknown".to_owned(), |c| format!("{c:.0}%"))
                ),
            ],
            confident(true),
        );
    } else if let (Some(w), Some(inflight)) =
        (most(|s| s.workers).filter(|w| *w >= 1.0), top.in_flight)
        && inflight >= w
        && flat
    {
        rule(
            "workers",
            format!(
                "every worker busy: {inflight:.0} requests in flight for {w:.0} workers while throughput stayed flat; more workers (or faster ones) raise capacity"
            ),
            vec![format!(
                "{w:.0} workers, {inflight:.0} requests in flight at {}",
                top.value
            )],
            confident(true),
        );
    } else if let (Some(e), Some(e0)) = (most(|s| s.error_rate), first.error_rate)
        && e >= 1.0
        && e0 < 0.1
    {
        rule(
            "errors",
            format!("the server sheds load: errors rose to {e:.1}% past the knee"),
            vec![format!(
                "errors {e0:.2}% at {} and {e:.1}% past the knee",
                first.value
            )],
            confident(flat),
        );
    } else if let Some((m0, m)) = memory_growth(steps) {
        rule(
            "memory",
            format!(
                "memory grows with load: {} to {} across the steps",
                bytes(m0),
                bytes(m)
            ),
            vec![format!(
                "server memory {} at {} and {} at {}",
                bytes(m0),
                first.value,
                bytes(m),
                top.value
            )],
            "medium".to_owned(),
        );
    } else if flat && rising {
        let idle =
            server_cpu.map(|c| format!("server CPU only {:.0}% of the host's {whole:.0}%", c));
        let known = idle.is_some();
        rule(
            "queueing",
            "requests queue inside the server: latency rises while throughput stays flat and no resource perfgate sees is saturated (a concurrency limit, a lock or a downstream call)".to_owned(),
            idle.into_iter().collect(),
            if known { "medium" } else { "low" }.to_owned(),
        );
    } else {
        rule(
            "unknown",
            "throughput stops growing, but no signal perfgate collects explains why".to_owned(),
            Vec::new(),
            "low".to_owned(),
        );
    }
    // Memory growth is worth saying even when something else is the limit.
    if out.kind != "memory"
        && let Some((m0, m)) = memory_growth(steps)
    {
        out.evidence.push(format!(
            "server memory also grew: {} to {}",
            bytes(m0),
            bytes(m)
        ));
    }
    out
}

/// First and last server memory when it grew by a quarter or more, never falling by more
/// than 5% from one step to the next.
fn memory_growth(steps: &[Step]) -> Option<(f64, f64)> {
    let m: Vec<f64> = steps.iter().filter_map(|s| s.server_memory).collect();
    let (&first, &last) = (m.first()?, m.last()?);
    let steady = m.windows(2).all(|w| w[1] >= w[0] * 0.95);
    (m.len() >= 3 && first > 0.0 && last >= first * 1.25 && steady).then_some((first, last))
}

fn bytes(b: f64) -> String {
    format!("{:.1} MB", b / 1e6)
}

/// The signals no step had.
fn missing(steps: &[Step]) -> Vec<String> {
    let none = |f: fn(&Step) -> Option<f64>| steps.iter().all(|s| f(s).is_none());
    let mut out = Vec::new();
    if none(|s| s.server_cpu) {
        out.push("server CPU: monitor the server (a `server` service, or `ServerLocalClient` monitoring)".to_owned());
    }
    if none(|s| s.server_max_process_cpu) {
        out.push(
            "per-process CPU (`max_all_cpu_percent`): tells a single-thread bound apart".to_owned(),
        );
    }
    if none(|s| s.workers) {
        out.push("workers (`total_workers`): tells a busy worker pool apart".to_owned());
    }
    if none(|s| s.server_memory) {
        out.push("server memory (`sum_all_memory_rss`)".to_owned());
    }
    if none(|s| s.client_cpu) {
        out.push("perfgate's own CPU".to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A closed-model curve of 1..16 users flattening at 4, latency climbing after it.
    fn curve() -> Vec<Step> {
        [
            (1.0, 10.0, 100.0),
            (2.0, 20.0, 101.0),
            (4.0, 39.0, 104.0),
            (8.0, 40.0, 205.0),
            (16.0, 40.0, 410.0),
        ]
        .into_iter()
        .map(|(value, t, p99)| Step {
            value,
            from: 0,
            to: 1,
            throughput: Some(t),
            p50_ms: Some(p99 * 0.9),
            p99_ms: Some(p99),
            error_rate: Some(0.0),
            dropped: None,
            server_cpu: None,
            server_memory: None,
            server_max_process_cpu: None,
            workers: None,
            in_flight: Some(value),
            client_cpu: None,
            slo_missed: None,
        })
        .collect()
    }

    fn with(mut steps: Vec<Step>, f: impl Fn(&mut Step)) -> Vec<Step> {
        steps.iter_mut().for_each(f);
        steps
    }

    #[test]
    fn each_rule_on_synthetic_monitoring() {
        // The server's processes fill 4 cores.
        let cpu = with(curve(), |s| {
            s.server_cpu = Some((s.value * 100.0).min(380.0));
            s.server_max_process_cpu = Some(100.0);
        });
        let b = attribute(&cpu, Some(4.0), 4.0);
        assert_eq!(
            (b.kind.as_str(), b.confidence.as_str()),
            ("cpu", "high"),
            "{b:?}"
        );
        assert!(b.evidence[0].contains("380%"), "{b:?}");
        // One process pinned at a core on a 4-core host.
        let gil = with(curve(), |s| {
            s.server_cpu = Some(s.value.min(4.0) * 25.0);
            s.server_max_process_cpu = Some(s.value.min(4.0) * 25.0);
        });
        assert_eq!(attribute(&gil, Some(4.0), 4.0).kind, "single-thread");
        // perfgate itself was the limit: a floor.
        let client = with(curve(), |s| s.client_cpu = Some(s.value.min(4.0) * 90.0));
        let b = attribute(&client, Some(4.0), 4.0);
        assert_eq!(b.kind, "client");
        assert!(b.summary.contains("floor"), "{b:?}");
        // Four workers, all busy; the CPU idle.
        let workers = with(curve(), |s| {
            s.workers = Some(4.0);
            s.server_cpu = Some(20.0);
        });
        assert_eq!(attribute(&workers, Some(4.0), 4.0).kind, "workers");
        // Errors rising past the knee.
        let errors = with(curve(), |s| {
            s.error_rate = Some(if s.value > 4.0 { 12.0 } else { 0.0 })
        });
        assert_eq!(attribute(&errors, Some(4.0), 4.0).kind, "errors");
        // Memory growing step after step, nothing else saturated.
        let memory = with(curve(), |s| {
            s.server_memory = Some(1e8 * (1.0 + s.value / 4.0))
        });
        let mut flat_latency = memory.clone();
        flat_latency.iter_mut().for_each(|s| s.p99_ms = Some(100.0));
        assert_eq!(attribute(&flat_latency, Some(4.0), 4.0).kind, "memory");
        // Memory growth is named beside another bottleneck.
        let both = with(memory, |s| {
            s.server_cpu = Some((s.value * 100.0).min(380.0))
        });
        let b = attribute(&both, Some(4.0), 4.0);
        assert_eq!(b.kind, "cpu");
        assert!(
            b.evidence
                .iter()
                .any(|e| e.starts_with("server memory also grew")),
            "{b:?}"
        );
        // Latency climbing on flat throughput with the CPU idle: queueing.
        let queue = with(curve(), |s| s.server_cpu = Some(5.0));
        let b = attribute(&queue, Some(4.0), 4.0);
        assert_eq!(
            (b.kind.as_str(), b.confidence.as_str()),
            ("queueing", "medium")
        );
        // The same without any server signal: a guess, and the missing signals named.
        let b = attribute(&curve(), Some(4.0), 4.0);
        assert_eq!(
            (b.kind.as_str(), b.confidence.as_str()),
            ("queueing", "low")
        );
        assert!(
            b.missing.iter().any(|m| m.starts_with("server CPU")),
            "{b:?}"
        );
        assert!(
            b.missing
                .iter()
                .any(|m| m.starts_with("perfgate's own CPU"))
        );
        // No knee, no saturation, no missed SLO: no limit reached.
        let b = attribute(&curve()[..3], None, 4.0);
        assert_eq!(b.kind, "none");
        assert!(b.summary.contains("raise the top step"));
    }
}
