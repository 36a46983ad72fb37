//! Capacity: a sweep's steps measured over their steady windows, and the curve read for its
//! knee, its saturation and a recommended operating point.
//!
//! - Each step's statistics use only its steady window: from the end of its warm-up to the end
//!   of the step, in whole seconds of the run.
//! - Knee (Kneedle, as capacity-planning frameworks compute it): the load values and the
//!   served throughput are each normalised to 0..1; the knee is the interior step (never the
//!   first or last) where the normalised throughput stands highest above the diagonal, i.e.
//!   where extra load stops buying throughput. With fewer than 3 steps, a curve that does not
//!   rise by at least 10% of its top, or a best distance under 0.1, there is no knee.
//! - Saturation: the first step whose efficiency (throughput per user in the closed model,
//!   served per offered in the open model) is below 80% of the first step's.
//! - SLO limit: with `slo:`, the largest step meeting every service level; its headroom is
//!   how much more load the next (failing) step offered.
//! - Recommended: the SLO limit when SLOs are given, else the lower of knee and saturation
//!   (the last step when there is neither).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::criteria::eval::{format_value, kpi_value, threshold_value};
use crate::criteria::grammar::Figure;

use super::bottleneck::{self, Bottleneck};
use crate::metrics::{Snapshot, Store};
use crate::suite::model::{Search, Slo, Suite, SweepKind, SweepStep};

/// Efficiency below this share of the first step's is saturation.
pub const SATURATION: f64 = 0.8;

/// A suite's sweep and what it says about capacity.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Capacity {
    /// `concurrency` or `throughput`: what the steps vary.
    pub kind: String,
    pub steps: Vec<Step>,
    /// The load value at the knee of the throughput curve.
    pub knee: Option<f64>,
    /// The load value where p99 latency starts to climb (the knee of the p99 curve).
    #[serde(default)]
    pub latency_knee: Option<f64>,
    /// The first load value whose efficiency fell below 80% of the first step's.
    pub saturation: Option<f64>,
    /// The highest served throughput of any step.
    pub max_throughput: Option<f64>,
    /// The largest step meeting every SLO (with `slo:`).
    #[serde(default)]
    pub slo_limit: Option<f64>,
    /// How much more load (percent) the first failing step above the SLO limit offered.
    #[serde(default)]
    pub slo_headroom: Option<f64>,
    /// The SLO limit, else the lower of knee and saturation, else the last step.
    pub recommended: Option<f64>,
    /// How the figures were found (or why not).
    pub notes: Vec<String>,
    /// The steps are a search's probes (the highest load meeting every SLO), not a sweep.
    #[serde(default)]
    pub search: bool,
    /// What limits capacity, with its evidence.
    #[serde(default)]
    pub bottleneck: Option<Bottleneck>,
}

impl Capacity {
    /// Where the steps start to show the limit: the lower of knee and saturation, else the
    /// first step missing an SLO; `None` when the load never reached a limit.
    pub fn pivot(&self) -> Option<f64> {
        let first_missed = self
            .steps
            .iter()
            .find(|s| s.slo_missed.as_ref().is_some_and(|m| !m.is_empty()))
            .map(|s| s.value);
        [self.knee, self.saturation, first_missed]
            .into_iter()
            .flatten()
            .reduce(f64::min)
    }

    /// Every figure, or why there is none, for the `capacity.<figure>` criteria.
    pub fn figures(&self) -> Vec<(Figure, Result<f64, String>)> {
        let note = |start: &str| {
            self.notes
                .iter()
                .find(|n| n.starts_with(start))
                .cloned()
                .unwrap_or_else(|| start.to_owned())
        };
        crate::criteria::grammar::FIGURES
            .iter()
            .map(|&(_, figure)| {
                let why = match figure {
                    Figure::Knee => note("no knee"),
                    Figure::LatencyKnee => {
                        "no knee in p99: latency does not climb over these steps".to_owned()
                    }
                    Figure::Saturation => format!(
                        "no saturation: no step's efficiency fell under {:.0}% of the first step's",
                        SATURATION * 100.0
                    ),
                    Figure::MaxThroughput => "no step served a request".to_owned(),
                    Figure::SloLimit if self.steps.iter().all(|s| s.slo_missed.is_none()) => {
                        "no SLO limit: the sweep lists no `slo`".to_owned()
                    }
                    Figure::SloLimit => "no SLO limit: no step met every SLO".to_owned(),
                    Figure::Recommended => "no recommended operating point".to_owned(),
                };
                (figure, self.figure(figure).ok_or(why))
            })
            .collect()
    }

    /// A figure criteria judge (`capacity.knee<8`); `None` when there is none (no knee).
    pub fn figure(&self, figure: Figure) -> Option<f64> {
        match figure {
            Figure::Knee => self.knee,
            Figure::LatencyKnee => self.latency_knee,
            Figure::Saturation => self.saturation,
            Figure::MaxThroughput => self.max_throughput,
            Figure::SloLimit => self.slo_limit,
            Figure::Recommended => self.recommended,
        }
    }
}

/// One step over its steady window.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    pub value: f64,
    /// Seconds of the run the statistics cover.
    pub from: u64,
    pub to: u64,
    pub throughput: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Failed samples, percent.
    pub error_rate: Option<f64>,
    /// Arrivals dropped at the in-flight cap (open model), percent of those offered.
    #[serde(default)]
    pub dropped: Option<f64>,
    /// Mean CPU (percent of one core, summed over its processes) and memory (bytes) of the
    /// monitored server, when monitored.
    pub server_cpu: Option<f64>,
    pub server_memory: Option<f64>,
    /// The busiest server process's CPU (percent of one core), when monitored.
    #[serde(default)]
    pub server_max_process_cpu: Option<f64>,
    /// The server's worker processes, when monitored.
    #[serde(default)]
    pub workers: Option<f64>,
    /// The most requests in flight in any second.
    #[serde(default)]
    pub in_flight: Option<f64>,
    /// perfgate's own CPU (percent of one core).
    #[serde(default)]
    pub client_cpu: Option<f64>,
    /// The SLOs this step missed (with the value seen); `None` without SLOs.
    #[serde(default)]
    pub slo_missed: Option<Vec<String>>,
}

/// The steps of a suite's sweeps, known before the load (a search's are added as it
/// probes).
pub fn planned_steps(suite: &Suite) -> Vec<SweepStep> {
    suite
        .executions
        .iter()
        .filter_map(|e| e.sweep.clone())
        .collect()
}

/// The service levels a window missed, each with the value seen (or "no data"). A step
/// that could not offer its load (more than [`MAX_STEP_DROPPED`] percent of its arrivals
/// dropped at the in-flight cap) misses them too: its latency is not that of its load.
pub fn missed(slos: &[Slo], w: &Snapshot) -> Vec<String> {
    let mut missed: Vec<String> = slos
        .iter()
        .filter_map(|slo| {
            let value = kpi_value(&slo.subject, w, Some(slo.threshold));
            let met = value.is_some_and(|v| slo.op.holds(v, threshold_value(slo.threshold)));
            (!met).then(|| match value {
                Some(v) => format!("{} ({})", slo.text, format_value(Some(slo.threshold), v)),
                None => format!("{} (no data)", slo.text),
            })
        })
        .collect();
    if let Some(dropped) = dropped_share(w).filter(|d| *d > MAX_STEP_DROPPED) {
        missed.push(format!("dropped<={MAX_STEP_DROPPED}% ({dropped:.1}%)"));
    }
    missed
}

/// A step dropping more than this percent of its arrivals did not offer its load.
pub const MAX_STEP_DROPPED: f64 = 1.0;

fn dropped_share(w: &Snapshot) -> Option<f64> {
    let offered = w.hits() + w.dropped();
    (offered > 0).then(|| 100.0 * w.dropped() as f64 / offered as f64)
}

/// The capacity measured by the steps run (a sweep's, or a search's probes); `None`
/// without any.
pub fn analyse(
    steps: &[SweepStep],
    searched: Option<&Search>,
    store: &Store,
    client_cpu: &BTreeMap<u64, f64>,
) -> Option<Capacity> {
    let first = steps.first()?;
    let kind = first.kind;
    let cpu = series_ending(store, &["sum_all_cpu_percent"]);
    let busiest = series_ending(store, &["max_all_cpu_percent"]);
    let workers = series_ending(store, &["/total_workers"]);
    let memory = series_ending(store, &["sum_all_memory_rss"]);
    let series = |name: &Option<String>, from: u64, to: u64| {
        name.as_ref().and_then(|n| store.metric_window(n, from, to))
    };
    let client = |from: u64, to: u64| {
        let (sum, n) = client_cpu
            .range(from..to)
            .fold((0.0, 0u32), |(s, n), (_, v)| (s + v, n + 1));
        (n > 0).then(|| sum / f64::from(n))
    };
    let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64() * 1e3);
    let mut measured: Vec<Step> = steps
        .iter()
        .filter(|s| s.group == first.group)
        .map(|s| {
            let (from, to) = s.window();
            let w = store.window("", from, to);
            let seconds = (to - from) as f64;
            let slo_missed = (!s.slo.is_empty()).then(|| missed(&s.slo, &w));
            Step {
                value: s.value,
                from,
                to,
                throughput: (w.hits() > 0).then(|| w.served() as f64 / seconds),
                p50_ms: ms(w.percentile(50.0)),
                p99_ms: ms(w.percentile(99.0)),
                error_rate: (w.hits() > 0).then(|| 100.0 * w.fail() as f64 / w.hits() as f64),
                dropped: dropped_share(&w),
                server_cpu: series(&cpu, from, to),
                server_memory: series(&memory, from, to),
                server_max_process_cpu: series(&busiest, from, to),
                workers: series(&workers, from, to),
                // The last second's reading is taken as the next step starts: left out.
                in_flight: (w.hits() > 0).then(|| {
                    let inner = if to - from >= 2 {
                        store.window("", from, to - 1)
                    } else {
                        w.clone()
                    };
                    inner.concurrency() as f64
                }),
                client_cpu: client(from, to),
                slo_missed,
            }
        })
        .collect();
    // A search probes out of order: its curve reads by load.
    measured.sort_by(|a, b| a.value.total_cmp(&b.value));
    let mut capacity = read_curve(kind, measured);
    let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    capacity.bottleneck = Some(bottleneck::attribute(
        &capacity.steps,
        capacity.pivot(),
        cores,
    ));
    if let Some(search) = searched {
        capacity.notes.push(search_note(search, &capacity));
        capacity.search = true;
    }
    Some(capacity)
}

/// What a search found, in words: the bracket it closed, or why it could not.
fn search_note(search: &Search, c: &Capacity) -> String {
    let meets = |s: &&Step| s.slo_missed.as_ref().is_some_and(Vec::is_empty);
    let pass = c
        .steps
        .iter()
        .filter(meets)
        .map(|s| s.value)
        .reduce(f64::max);
    let fail = c
        .steps
        .iter()
        .filter(|s| !meets(s))
        .map(|s| s.value)
        .reduce(f64::min);
    let probes = c.steps.len();
    match (pass, fail) {
        (None, _) => format!(
            "search: the least load searched ({}) already misses an SLO: the limit is below it",
            search.min
        ),
        (Some(p), None) if p >= search.max => format!(
            "search: every probe up to the top of the range ({}) met every SLO: the limit is above it",
            search.max
        ),
        (Some(p), None) => format!(
            "search: stopped after {probes} probes with {p} meeting every SLO and no failing probe above it"
        ),
        (Some(p), Some(f)) => format!(
            "search: {probes} probes; {p} meets every SLO and {f} does not ({:.1}% apart, precision {:.1}%)",
            (f / p - 1.0) * 100.0,
            search.precision * 100.0
        ),
    }
}

fn series_ending(store: &Store, endings: &[&str]) -> Option<String> {
    store
        .metric_subjects()
        .find(|s| endings.iter().any(|e| s.ends_with(e)))
        .map(str::to_owned)
}

/// Knee, saturation and recommendation of measured steps.
pub fn read_curve(kind: SweepKind, steps: Vec<Step>) -> Capacity {
    let mut notes = Vec::new();
    let points: Vec<(f64, f64)> = steps
        .iter()
        .filter_map(|s| Some((s.value, s.throughput?)))
        .collect();
    let knee = knee(&points);
    let p99: Vec<(f64, f64)> = steps
        .iter()
        .filter_map(|s| Some((s.value, s.p99_ms?)))
        .collect();
    let latency_knee = latency_knee(&p99);
    if let Some(k) = latency_knee {
        notes.push(format!(
            "p99 starts to climb after {k} (the knee of the p99 curve)"
        ));
    }
    match (&knee, points.len()) {
        (None, n) if n < 3 => notes.push(format!("no knee: {n} steps with throughput, 3 needed")),
        (None, _) => notes.push(
            "no knee: throughput does not bend (flat, linear or noisy) over these steps".to_owned(),
        ),
        (Some(k), _) => notes.push(format!(
            "knee at {k}: the step where normalised throughput stands highest above the diagonal (endpoints excluded)"
        )),
    }
    let efficiency = |v: f64, t: f64| match kind {
        SweepKind::Concurrency => t / v,
        SweepKind::Throughput => t / v,
    };
    let saturation = points.first().and_then(|&(v0, t0)| {
        let base = efficiency(v0, t0);
        (base > 0.0)
            .then(|| {
                points
                    .iter()
                    .skip(1)
                    .find(|&&(v, t)| efficiency(v, t) < SATURATION * base)
                    .map(|&(v, _)| v)
            })
            .flatten()
    });
    if let Some(s) = saturation {
        notes.push(format!(
            "saturated at {s}: efficiency below {:.0}% of the first step's",
            SATURATION * 100.0
        ));
    }
    let max_throughput = points.iter().map(|p| p.1).reduce(f64::max);
    let with_slo = steps.iter().any(|s| s.slo_missed.is_some());
    let meets = |s: &Step| s.slo_missed.as_ref().is_some_and(Vec::is_empty);
    let slo_limit = steps
        .iter()
        .filter(|s| meets(s))
        .map(|s| s.value)
        .reduce(f64::max);
    let slo_headroom = slo_limit.and_then(|limit| {
        steps
            .iter()
            .filter(|s| s.value > limit && !meets(s))
            .map(|s| s.value)
            .reduce(f64::min)
            .map(|next| (next / limit - 1.0) * 100.0)
    });
    if with_slo {
        notes.push(match slo_limit {
            Some(l) => format!("SLO limit {l}: the largest step meeting every SLO"),
            None => "no step met every SLO".to_owned(),
        });
    }
    let recommended = if with_slo {
        slo_limit
    } else {
        match (knee, saturation) {
            (Some(k), Some(s)) => Some(k.min(s)),
            (k, s) => k.or(s).or(points.last().map(|p| p.0)),
        }
    };
    Capacity {
        kind: match kind {
            SweepKind::Concurrency => "concurrency".to_owned(),
            SweepKind::Throughput => "throughput".to_owned(),
        },
        steps,
        knee,
        latency_knee,
        saturation,
        max_throughput,
        slo_limit,
        slo_headroom,
        recommended,
        notes,
        search: false,
        bottleneck: None,
    }
}

/// The knee of a rising, flattening curve (Kneedle); `None` when there is none to find.
pub fn knee(points: &[(f64, f64)]) -> Option<f64> {
    knee_of(points, true)
}

/// The knee of a flat-then-rising curve (p99 latency by load): where latency starts to climb.
pub fn latency_knee(points: &[(f64, f64)]) -> Option<f64> {
    knee_of(points, false)
}

/// Kneedle on a rising curve: `flattening` (concave: throughput) or rising sharply after a
/// flat start (convex: latency); the interior point farthest from the diagonal on its side.
fn knee_of(points: &[(f64, f64)], flattening: bool) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let (x0, x1) = (points[0].0, points[points.len() - 1].0);
    let (ymin, ymax) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    if x1 <= x0 || ymax <= 0.0 || (ymax - ymin) < 0.1 * ymax {
        return None;
    }
    let best = points[1..points.len() - 1]
        .iter()
        .map(|&(x, y)| {
            let nx = (x - x0) / (x1 - x0);
            let ny = (y - ymin) / (ymax - ymin);
            (x, if flattening { ny - nx } else { nx - ny })
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    (best.1 >= 0.1).then_some(best.0)
}

/// The figures in one line: knee, where p99 climbs, saturation, SLO limit, max throughput
/// and the recommended operating point.
pub fn reading(c: &Capacity) -> String {
    let v = |x: Option<f64>| x.map_or_else(|| "none".to_owned(), |v| format!("{v}"));
    format!(
        "knee {} · p99 climbs after {} · saturation {} · SLO limit {} · max {} req/s · recommended {} {}",
        v(c.knee),
        v(c.latency_knee),
        v(c.saturation),
        v(c.slo_limit),
        c.max_throughput
            .map_or_else(|| "-".to_owned(), |t| format!("{t:.1}")),
        c.kind,
        v(c.recommended)
    )
}

/// The per-step table for the console: load, throughput, p50, p99, errors, server CPU.
pub fn table(c: &Capacity) -> super::measures::Table {
    let num = |v: Option<f64>, d: usize| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.d$}"));
    let open = c.kind == "throughput";
    let mut header = vec![c.kind.as_str(), "req/s", "p50 ms", "p99 ms", "errors"];
    if open {
        header.push("dropped");
    }
    header.extend(["server cpu", "SLO"]);
    let mut rows = vec![header.into_iter().map(str::to_owned).collect()];
    let percent = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |e| format!("{e:.2}%"));
    for s in &c.steps {
        let mut row = vec![
            format!("{}", s.value),
            num(s.throughput, 1),
            num(s.p50_ms, 1),
            num(s.p99_ms, 1),
            percent(s.error_rate),
        ];
        if open {
            row.push(percent(s.dropped));
        }
        row.extend([
            s.server_cpu
                .map_or_else(|| "-".to_owned(), |c| format!("{c:.0}%")),
            match &s.slo_missed {
                None => "-".to_owned(),
                Some(m) if m.is_empty() => "met".to_owned(),
                Some(m) => format!("missed {}", m.join(", ")),
            },
        ]);
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
        points.to_vec()
    }

    /// A server of capacity 40/s driven at 1..32 users of 100 ms each: linear to 4 users,
    /// flat after.
    #[test]
    fn knees_of_clean_flat_noisy_and_monotone_curves() {
        let clean = curve(&[
            (1.0, 10.0),
            (2.0, 20.0),
            (4.0, 39.0),
            (8.0, 40.0),
            (16.0, 40.0),
            (32.0, 40.0),
        ]);
        assert_eq!(knee(&clean), Some(4.0));
        let flat = curve(&[(1.0, 40.0), (2.0, 40.5), (4.0, 39.8), (8.0, 40.2)]);
        assert_eq!(knee(&flat), None, "flat: no knee");
        let linear = curve(&[(1.0, 10.0), (2.0, 20.0), (3.0, 30.0), (4.0, 40.0)]);
        assert_eq!(knee(&linear), None, "still rising linearly: no knee");
        let two = curve(&[(1.0, 10.0), (2.0, 20.0)]);
        assert_eq!(knee(&two), None, "fewer than 3 points");
        let noisy = curve(&[
            (1.0, 10.0),
            (2.0, 21.0),
            (4.0, 38.0),
            (8.0, 41.0),
            (16.0, 39.0),
            (32.0, 40.5),
        ]);
        assert_eq!(
            knee(&noisy),
            Some(4.0),
            "noise after the knee does not move it"
        );
        // Latency flat until the server is full, then each doubling of users doubles it.
        let p99 = curve(&[
            (1.0, 103.0),
            (2.0, 105.0),
            (4.0, 105.0),
            (8.0, 205.0),
            (16.0, 409.0),
        ]);
        assert_eq!(latency_knee(&p99), Some(4.0));
        let steady = curve(&[(1.0, 100.0), (2.0, 101.0), (4.0, 99.0), (8.0, 100.0)]);
        assert_eq!(latency_knee(&steady), None, "flat latency: no knee");
    }

    /// A step's statistics are its steady window's: the slow start of the step (its warm-up)
    /// and the next step's seconds are left out; CPU and perfgate's CPU are the window's.
    #[test]
    fn a_step_reads_only_its_steady_window() {
        use crate::metrics::{Outcome, Sample};
        use std::time::Duration;
        let sample = |second: u64, ms: u64| Sample {
            label: "infer".into(),
            second,
            rt: Duration::from_millis(ms),
            lt: Duration::from_millis(ms),
            ct: None,
            bytes: 1,
            outcome: Outcome::Response {
                status: 200,
                success: true,
                message: None,
            },
            concurrency: 1,
            completed: second,
            extra: None,
        };
        let mut store = Store::default();
        // Second 0 is the warm-up (cold caches: 1 s each); 1..4 the steady window; 4.. the
        // next step.
        for (second, ms, n) in [
            (0, 1000, 5),
            (1, 10, 10),
            (2, 10, 10),
            (3, 10, 10),
            (4, 500, 50),
        ] {
            for _ in 0..n {
                store.record(&sample(second, ms));
            }
            store.record_metric(
                second,
                "srv/sum_all_cpu_percent",
                if second == 4 { 190.0 } else { 50.0 },
            );
        }
        let steps = [SweepStep {
            group: 0,
            kind: SweepKind::Concurrency,
            value: 1.0,
            start: Duration::ZERO,
            warm_up: Duration::from_secs(1),
            length: Duration::from_secs(4),
            slo: Vec::new(),
        }];
        let client: BTreeMap<u64, f64> =
            [(0, 100.0), (1, 20.0), (2, 20.0), (3, 20.0), (4, 100.0)].into();
        let c = analyse(&steps, None, &store, &client).unwrap();
        let s = &c.steps[0];
        assert_eq!((s.from, s.to), (1, 4));
        assert_eq!(s.throughput, Some(10.0));
        assert!(s.p99_ms.unwrap() < 11.0, "{s:?}");
        assert_eq!(s.server_cpu, Some(50.0));
        assert_eq!(s.client_cpu, Some(20.0));
    }

    fn step(value: f64, throughput: f64) -> Step {
        Step {
            value,
            from: 0,
            to: 1,
            throughput: Some(throughput),
            p50_ms: None,
            p99_ms: None,
            error_rate: None,
            dropped: None,
            server_cpu: None,
            server_memory: None,
            server_max_process_cpu: None,
            workers: None,
            in_flight: None,
            client_cpu: None,
            slo_missed: None,
        }
    }

    #[test]
    fn the_slo_limit_is_the_largest_step_meeting_every_slo() {
        let mut steps = vec![
            step(1.0, 10.0),
            step(2.0, 20.0),
            step(4.0, 39.0),
            step(8.0, 40.0),
        ];
        for (s, missed) in steps.iter_mut().zip([0, 0, 0, 1]) {
            s.slo_missed = Some(vec!["p99<200ms (205ms)".to_owned(); missed]);
        }
        let c = read_curve(SweepKind::Concurrency, steps);
        assert_eq!(c.slo_limit, Some(4.0));
        assert_eq!(
            c.slo_headroom,
            Some(100.0),
            "the next step offered twice the load"
        );
        assert_eq!(c.recommended, Some(4.0));
    }

    #[test]
    fn saturation_and_recommendation() {
        let steps = vec![
            step(1.0, 10.0),
            step(2.0, 20.0),
            step(4.0, 39.0),
            step(8.0, 40.0),
            step(16.0, 40.0),
        ];
        let c = read_curve(SweepKind::Concurrency, steps);
        assert_eq!(c.knee, Some(4.0));
        // 40/8 = 5 per user, under 80% of the first step's 10.
        assert_eq!(c.saturation, Some(8.0));
        assert_eq!(c.recommended, Some(4.0));
        assert_eq!(c.max_throughput, Some(40.0));
        let open = read_curve(
            SweepKind::Throughput,
            vec![step(50.0, 50.0), step(100.0, 99.0), step(200.0, 120.0)],
        );
        assert_eq!(open.saturation, Some(200.0), "served 60% of offered");
    }
}
