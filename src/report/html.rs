//! `report.html`: one self-contained page (inline CSS and SVG, no script, no network) that
//! works from file://.
//!
//! The page is a tera template (`templates/report.html.tera`, embedded) with autoescaping on:
//! every label, URL, message and log line from the suite or the server is text, never markup.
//! Charts are laid out here ([`Chart`]: coordinates, ticks, hover texts) and drawn as SVG by
//! the template, so their text is escaped like the rest. Each point has a `<title>`, so
//! hovering shows its value; the windows of triggered criteria are shaded.

use std::collections::BTreeMap;

use serde::Serialize;

use super::model::{CriterionReport, RunReport, SuiteReport, SuiteStatus};
use crate::criteria::eval::Verdict;

const TEMPLATE: &str = include_str!("../../templates/report.html.tera");

#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    #[error("the report template does not parse")]
    Template(#[source] tera::Error),
    #[error("failed to render the report")]
    Render(#[source] tera::Error),
}

/// Renders the whole run.
pub fn render(run: &RunReport) -> Result<String, HtmlError> {
    let mut tera = tera::Tera::default();
    tera.add_raw_template("report.html", TEMPLATE)
        .map_err(HtmlError::Template)?;
    let page = Page {
        verdict: super::summary::verdict(run),
        tool: &run.tool,
        started_at: &run.started_at,
        duration: format!("{:.1}s", run.duration_s),
        suites: run.suites.iter().map(suite_view).collect(),
    };
    let context = tera::Context::from_serialize(&page).map_err(HtmlError::Render)?;
    tera.render("report.html", &context)
        .map_err(HtmlError::Render)
}

#[derive(Serialize)]
struct Page<'a> {
    verdict: &'static str,
    tool: &'a str,
    started_at: &'a str,
    duration: String,
    suites: Vec<SuiteView<'a>>,
}

#[derive(Serialize)]
struct SuiteView<'a> {
    name: &'a str,
    anchor: String,
    path: &'a str,
    /// passed | failed | error | interrupted
    verdict: &'static str,
    duration: String,
    started_at: &'a str,
    seed: u64,
    executions: Vec<String>,
    stopped_by: Option<&'a str>,
    error: Option<&'a super::model::SuiteError>,
    criteria: Vec<CriterionView<'a>>,
    labels: Vec<Vec<String>>,
    charts: Vec<Chart>,
    errors: Vec<(String, u64)>,
    effective_yaml: &'a str,
    versus: Option<VersusView>,
    /// LLM requests per label (header first), when there were any.
    llm: Option<super::measures::Table>,
    /// Server time per component (header first), and per label the stacked bar.
    breakdown: Option<super::measures::Table>,
    bars: Vec<Bar>,
    timing_notes: Vec<String>,
    /// A capacity sweep's or search's steps, reading, notes and bottleneck.
    capacity: Option<CapacityView>,
}

/// The capacity section: the per-step table (header first), the figures in one line, the
/// notes, and what limits capacity.
#[derive(Serialize)]
struct CapacityView {
    table: super::measures::Table,
    /// Throughput and latency by load, and the bottleneck's evidence.
    charts: Vec<Chart>,
    reading: String,
    notes: Vec<String>,
    bottleneck: Option<super::bottleneck::Bottleneck>,
}

/// One label's mean server-side components and network, stacked to its response time.
#[derive(Serialize)]
struct Bar {
    label: String,
    /// (component, mean ms, share of the bar's width in percent, colour index)
    segments: Vec<(String, String, f64, usize)>,
}

fn bars(s: &SuiteReport) -> Vec<Bar> {
    super::measures::breakdowns(s)
        .into_iter()
        .map(|b| {
            let stacked: Vec<_> = b
                .parts
                .iter()
                .filter(|(name, ..)| !super::measures::Breakdown::is_total(name))
                .collect();
            let sum: f64 = stacked.iter().map(|(_, d, _)| d.mean).sum();
            let segments = stacked
                .iter()
                .enumerate()
                .map(|(i, (name, d, _))| {
                    let width = if sum > 0.0 { 100.0 * d.mean / sum } else { 0.0 };
                    (
                        name.clone(),
                        format!("{:.2}", d.mean),
                        (width * 10.0).round() / 10.0,
                        i % 8,
                    )
                })
                .collect();
            Bar {
                label: b.label,
                segments,
            }
        })
        .collect()
}

/// The suite against its baseline: a table and the trend charts.
#[derive(Serialize)]
struct VersusView {
    baseline: String,
    threshold: String,
    /// Cells: label, kpi, baseline, now, change, interval, verdict.
    rows: Vec<(Vec<String>, &'static str)>,
    notes: Vec<String>,
    trends: Vec<Chart>,
}

fn versus_view(s: &SuiteReport) -> Option<VersusView> {
    use super::versus::Verdict as V;
    let v = s.versus.as_ref()?;
    let rows = v
        .rows
        .iter()
        .map(|r| {
            let class = match r.verdict {
                V::Regression => "failed",
                V::Improvement => "passed",
                V::Noise | V::Changed => "notice",
                V::Ok => "",
                V::NoData => "no-data",
            };
            // The same cells as every comparison table, without the suite.
            (r.cells()[1..].to_vec(), class)
        })
        .collect();
    Some(VersusView {
        baseline: v.baseline.clone().unwrap_or_else(|| "none".to_owned()),
        threshold: format!("{}%", number(v.threshold)),
        rows,
        notes: v.notes.clone(),
        trends: v
            .trend
            .as_ref()
            .map(|t| trend_charts(t, &v.rows))
            .unwrap_or_default(),
    })
}

/// The main KPIs of all labels over the history's runs, this run (the last) marked.
fn trend_charts(t: &super::versus::Trend, rows: &[super::versus::Row]) -> Vec<Chart> {
    use super::versus::Kpi;
    if t.runs.len() < 2 {
        return Vec::new();
    }
    let pick = |kpi: Kpi| -> Vec<(f64, f64)> {
        t.series
            .iter()
            .find(|s| s.label.is_empty() && s.kpi == kpi)
            .map(|s| {
                s.values
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| (i as f64, v)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let last = (t.runs.len() - 1) as f64;
    // This run, and where each shift for the worse of all labels began.
    let marks = |kpis: &[Kpi]| -> Vec<Mark> {
        let mut marks = vec![Mark {
            from: last - 0.5,
            to: last + 0.5,
            text: "this run".to_owned(),
        }];
        for r in rows
            .iter()
            .filter(|r| r.label.is_empty() && kpis.contains(&r.kpi))
        {
            let Some(shift) = &r.shift else { continue };
            if let Some(at) = t.runs.iter().position(|name| *name == shift.run) {
                let at = at as f64;
                let what = format!(
                    "{} {:+.1}% (confidence {:.1}%)",
                    r.kpi.name(),
                    shift.change,
                    shift.confidence * 100.0
                );
                // One shade per run, naming every KPI that shifted there.
                match marks.iter_mut().skip(1).find(|m| m.from == at - 0.5) {
                    Some(m) => m.text = format!("{}, {what}", m.text),
                    None => marks.push(Mark {
                        from: at - 0.5,
                        to: at + 0.5,
                        text: format!("a shift for the worse began here: {what}"),
                    }),
                }
            }
        }
        marks
    };
    let axis = XAxis::Runs(&t.runs);
    vec![
        chart_over(
            "Trend: response time (all labels), per run",
            "ms",
            &[
                ("p50", pick(Kpi::P50)),
                ("p90", pick(Kpi::P90)),
                ("p99", pick(Kpi::P99)),
                ("avg", pick(Kpi::AvgRt)),
            ],
            &marks(&[Kpi::P50, Kpi::P90, Kpi::P99, Kpi::AvgRt]),
            &axis,
        ),
        chart_over(
            "Trend: throughput and errors, per run",
            "req/s, %",
            &[
                ("throughput", pick(Kpi::Throughput)),
                ("error rate %", pick(Kpi::ErrorRate)),
            ],
            &marks(&[Kpi::Throughput, Kpi::ErrorRate]),
            &axis,
        ),
    ]
}

#[derive(Serialize)]
struct CriterionView<'a> {
    name: &'a str,
    message: Option<&'a str>,
    /// passed | failed | notice | no-data
    class: &'static str,
    result: &'static str,
    observed: &'a str,
    condition: String,
    logic: &'a str,
    when: String,
    scope: &'a str,
    action: String,
    detail: &'a str,
}

/// A count per second, also over a timeline row that merged several (a long run's history).
fn per_s(r: &super::model::TimelineRow, n: u64) -> f64 {
    n as f64 / r.seconds.max(1) as f64
}

fn suite_view(s: &SuiteReport) -> SuiteView<'_> {
    let verdict = match (s.status, s.criteria_failed()) {
        (SuiteStatus::Error, _) => "error",
        (SuiteStatus::Interrupted | SuiteStatus::Incomplete, _) => "interrupted",
        (SuiteStatus::Completed, true) => "failed",
        (SuiteStatus::Completed, false) => "passed",
    };
    let criteria = s
        .criteria
        .iter()
        .map(|c| CriterionView {
            name: &c.name,
            message: c.message.as_deref(),
            class: match c.verdict {
                Verdict::Passed => "passed",
                Verdict::Failed => "failed",
                Verdict::Notice => "notice",
                Verdict::NoData => "no-data",
                Verdict::NotJudged => "not-judged",
            },
            result: c.verdict.name(),
            observed: &c.observed_text,
            condition: format!("{} {}", c.condition, c.threshold),
            logic: &c.logic,
            when: match (c.verdict, c.window) {
                (Verdict::Failed | Verdict::Notice, Some((from, to))) => {
                    let wall = super::junit::wall_time(s, from)
                        .map(|t| format!(" ({t})"))
                        .unwrap_or_default();
                    format!("s {from}–{to}{wall}")
                }
                _ => String::new(),
            },
            scope: &c.scope,
            action: format!(
                "{}{}",
                if c.stop { "stop" } else { "continue" },
                if c.fail { "" } else { ", non-failed" }
            ),
            detail: &c.detail,
        })
        .collect();
    let ms = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.2}"));
    let labels = s
        .labels
        .iter()
        .map(|l| {
            let p = |level: &str| ms(l.percentiles_ms.get(level).copied());
            vec![
                if l.label.is_empty() {
                    "ALL".to_owned()
                } else {
                    l.label.clone()
                },
                l.hits.to_string(),
                if l.hits == 0 {
                    "–".to_owned()
                } else {
                    format!("{:.2}%", 100.0 * l.fail as f64 / l.hits as f64)
                },
                super::console::dropped_share(l),
                l.unfinished.to_string(),
                l.throughput.map_or("–".to_owned(), |t| format!("{t:.1}")),
                ms(l.avg_rt_ms),
                p("50.0"),
                p("90.0"),
                p("95.0"),
                p("99.0"),
                p("99.9"),
                p("100.0"),
                l.bytes.to_string(),
            ]
        })
        .collect();
    let mut errors: Vec<(String, u64)> = s
        .labels
        .iter()
        .filter(|l| l.label.is_empty())
        .flat_map(|l| l.errors.iter().map(|(m, n)| (m.clone(), *n)))
        .collect();
    errors.sort_by_key(|e| std::cmp::Reverse(e.1));
    SuiteView {
        name: &s.name,
        anchor: anchor(&s.name),
        path: &s.path,
        verdict,
        duration: format!("{:.1}s", s.duration_s),
        started_at: &s.started_at,
        seed: s.seed,
        executions: s
            .executions
            .iter()
            .map(|e| format!("{}: {}", e.scenario, e.shape))
            .collect(),
        stopped_by: s.stopped_by.as_deref(),
        error: s.error.as_ref(),
        criteria,
        labels,
        charts: charts(s),
        errors,
        effective_yaml: &s.effective_yaml,
        versus: versus_view(s),
        llm: super::measures::llm_table(s),
        breakdown: super::measures::breakdown_table(s),
        bars: bars(s),
        timing_notes: super::measures::timing_notes(s),
        capacity: s.capacity.as_ref().map(|c| {
            let reading = super::capacity::reading(c);
            CapacityView {
                table: super::capacity::table(c),
                charts: capacity_charts(s),
                reading,
                notes: c.notes.clone(),
                bottleneck: c.bottleneck.clone(),
            }
        }),
    }
}

/// An id for links: letters, digits and dashes only.
fn anchor(name: &str) -> String {
    let id: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("suite-{id}")
}

/// A shaded window on a chart: seconds `from..to` and what it marks.
struct Mark {
    from: f64,
    to: f64,
    text: String,
}

fn charts(s: &SuiteReport) -> Vec<Chart> {
    let overall: Vec<_> = s.timeline.iter().filter(|r| r.label.is_empty()).collect();
    // Only windowed criteria shade: a cumulative one is about the whole run, and shading the
    // whole chart would hide nothing and say nothing.
    let triggered: Vec<_> = s
        .criteria
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Failed | Verdict::Notice))
        .filter(|c| c.logic != "cumulative")
        .filter_map(|c| c.window.map(|w| (c, w)))
        .collect();
    let request_marks: Vec<Mark> = triggered
        .iter()
        .filter(|(c, _)| !c.subject.contains('/'))
        .map(|(c, (from, to))| Mark {
            from: *from as f64,
            to: *to as f64,
            text: c.name.clone(),
        })
        .collect();
    let mut out = Vec::new();
    if !overall.is_empty() {
        let t = |r: &&super::model::TimelineRow| r.second as f64;
        let pick = |f: fn(&super::model::TimelineRow) -> Option<f64>| -> Vec<(f64, f64)> {
            overall
                .iter()
                .filter_map(|r| f(r).map(|v| (t(r), v)))
                .collect()
        };

        out.push(line_chart(
            "Response time (all labels)",
            "ms",
            &[
                ("p50", pick(|r| r.p50_ms)),
                ("p90", pick(|r| r.p90_ms)),
                ("p99", pick(|r| r.p99_ms)),
                ("avg", pick(|r| r.avg_rt_ms)),
            ],
            &request_marks,
        ));
        out.push(line_chart(
            "Throughput and errors",
            "req/s",
            &[
                // Served: completions in each second; offered: arrivals due in it. An
                // overloaded server shows the gap.
                ("served/s", pick(|r| Some(per_s(r, r.served)))),
                ("offered/s", pick(|r| Some(per_s(r, r.hits + r.dropped)))),
                ("failed/s", pick(|r| Some(per_s(r, r.fail)))),
                ("dropped/s", pick(|r| Some(per_s(r, r.dropped)))),
            ],
            &request_marks,
        ));
        out.push(line_chart(
            "Concurrency",
            "in flight",
            &[("concurrency", pick(|r| Some(r.concurrency as f64)))],
            &request_marks,
        ));
        // Per label, when there are several: which request is slow.
        let labels: Vec<&str> = s
            .labels
            .iter()
            .map(|l| l.label.as_str())
            .filter(|l| !l.is_empty())
            .collect();
        if labels.len() > 1 {
            for label in labels {
                let rows: Vec<_> = s.timeline.iter().filter(|r| r.label == label).collect();
                let pick = |f: fn(&super::model::TimelineRow) -> Option<f64>| -> Vec<(f64, f64)> {
                    rows.iter()
                        .filter_map(|r| f(r).map(|v| (r.second as f64, v)))
                        .collect()
                };
                let marks: Vec<Mark> = triggered
                    .iter()
                    .filter(|(c, _)| c.name.contains(&format!(" of {label}")))
                    .map(|(c, (from, to))| Mark {
                        from: *from as f64,
                        to: *to as f64,
                        text: c.name.clone(),
                    })
                    .collect();
                out.push(line_chart(
                    &format!("Response time: {label}"),
                    "ms",
                    &[("p50", pick(|r| r.p50_ms)), ("p99", pick(|r| r.p99_ms))],
                    &marks,
                ));
            }
        }
        let mut codes: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        for r in &overall {
            for code in r.rc.keys() {
                codes.entry(code.as_str()).or_default();
            }
        }
        for (code, points) in codes.iter_mut() {
            *points = overall
                .iter()
                .map(|r| (t(r), per_s(r, r.rc.get(*code).copied().unwrap_or(0))))
                .collect();
        }
        if !codes.is_empty() {
            let series: Vec<(&str, Vec<(f64, f64)>)> = codes.into_iter().collect();
            out.push(line_chart(
                "Response codes",
                "per s",
                &series,
                &request_marks,
            ));
        }
    }
    out.extend(measure_charts(s, &triggered));
    for m in &s.monitoring {
        let marks: Vec<Mark> = triggered
            .iter()
            .filter(|(c, _)| c.subject == m.subject)
            .map(|(c, (from, to))| Mark {
                from: *from as f64,
                to: *to as f64,
                text: c.name.clone(),
            })
            .collect();
        let (unit, scale) = unit_of(&m.subject);
        let points = m
            .points
            .iter()
            .map(|(t, v)| (*t as f64, v / scale))
            .collect();
        out.push(line_chart(&m.subject, unit, &[("value", points)], &marks));
    }
    out
}

/// A sweep's curves over its load values: throughput, and p50/p99 latency, with the knee and
/// the SLO limit marked.
fn capacity_charts(s: &SuiteReport) -> Vec<Chart> {
    let Some(c) = &s.capacity else {
        return Vec::new();
    };
    let unit = if c.kind == "concurrency" {
        "users"
    } else {
        "req/s offered"
    };
    let axis = XAxis::Load(unit);
    let pick = |f: fn(&super::capacity::Step) -> Option<f64>| -> Vec<(f64, f64)> {
        c.steps
            .iter()
            .filter_map(|st| Some((st.value, f(st)?)))
            .collect()
    };
    let mut marks = Vec::new();
    let width = c
        .steps
        .last()
        .zip(c.steps.first())
        .map_or(1.0, |(l, f)| (l.value - f.value).max(1.0) / 100.0);
    for (value, text) in [
        (c.knee, "knee"),
        (c.saturation, "saturation"),
        (c.slo_limit, "SLO limit"),
    ] {
        if let Some(v) = value {
            marks.push(Mark {
                from: v - width,
                to: v + width,
                text: format!("{text} at {}", number(v)),
            });
        }
    }
    let mut charts = vec![
        chart_over(
            "Capacity: throughput by load",
            "req/s",
            &[("served/s", pick(|st| st.throughput))],
            &marks,
            &axis,
        ),
        chart_over(
            "Capacity: latency by load",
            "ms",
            &[("p50", pick(|st| st.p50_ms)), ("p99", pick(|st| st.p99_ms))],
            &marks,
            &axis,
        ),
    ];
    // The bottleneck's evidence: CPU of the server, its busiest process and perfgate.
    let cpu: Vec<(&str, Vec<(f64, f64)>)> = [
        ("server processes", pick(|st| st.server_cpu)),
        (
            "busiest server process",
            pick(|st| st.server_max_process_cpu),
        ),
        ("perfgate", pick(|st| st.client_cpu)),
    ]
    .into_iter()
    .filter(|(_, points)| !points.is_empty())
    .collect();
    if !cpu.is_empty() {
        charts.push(chart_over(
            "Capacity: CPU by load (% of one core)",
            "%",
            &cpu,
            &marks,
            &axis,
        ));
    }
    let memory = pick(|st| st.server_memory.map(|m| m / 1e6));
    if !memory.is_empty() {
        charts.push(chart_over(
            "Capacity: server memory by load",
            "MB",
            &[("memory", memory)],
            &marks,
            &axis,
        ));
    }
    charts
}

/// Per LLM label: TTFT, ITL and TPOT, and tokens per second over time; per label with
/// server timings: each component's mean over time.
fn measure_charts(s: &SuiteReport, triggered: &[(&CriterionReport, (u64, u64))]) -> Vec<Chart> {
    use super::model::MeasureRow;
    let mut out = Vec::new();
    for l in s.labels.iter().filter(|l| !l.label.is_empty()) {
        let rows: Vec<_> = s.timeline.iter().filter(|r| r.label == l.label).collect();
        let series = |name: &str, f: fn(&MeasureRow) -> f64| -> Vec<(f64, f64)> {
            rows.iter()
                .filter_map(|r| r.measures.get(name).map(|m| (r.second as f64, f(m))))
                .collect()
        };
        let marks: Vec<Mark> = triggered
            .iter()
            .filter(|(c, _)| c.name.contains(&format!(" of {}", l.label)))
            .map(|(c, (from, to))| Mark {
                from: *from as f64,
                to: *to as f64,
                text: c.name.clone(),
            })
            .collect();
        if l.llm.is_some() {
            let label = &l.label;
            let ttft = [
                ("ttft p50", series("ttft", |m| m.p50)),
                ("ttft p95", series("ttft", |m| m.p95)),
                ("tpot p50", series("tpot", |m| m.p50)),
                ("itl p50", series("itl", |m| m.p50)),
            ];
            if ttft.iter().any(|(_, p)| !p.is_empty()) {
                out.push(line_chart(
                    &format!("Token latency: {label}"),
                    "ms",
                    &ttft,
                    &marks,
                ));
            }
            let tokens = [
                // Output tokens completed in each second (all requests together).
                (
                    "tokens/s",
                    rows.iter()
                        .filter_map(|r| {
                            let m = r.measures.get("output-tokens")?;
                            Some((r.second as f64, m.total / r.seconds.max(1) as f64))
                        })
                        .collect(),
                ),
                ("tok/s per request p50", series("tokens-per-s", |m| m.p50)),
            ];
            out.push(line_chart(
                &format!("Tokens per second: {label}"),
                "tokens/s",
                &tokens,
                &marks,
            ));
        }
        let components: Vec<&String> = l
            .distributions
            .keys()
            .filter(|n| n.starts_with(crate::metrics::SERVER_PREFIX) || *n == "network")
            .collect();
        if !components.is_empty() {
            let lines: Vec<(&str, Vec<(f64, f64)>)> = components
                .iter()
                .map(|n| (n.as_str(), series(n, |m| m.mean)))
                .collect();
            out.push(line_chart(
                &format!("Server time: {}", l.label),
                "ms",
                &lines,
                &marks,
            ));
        }
    }
    out
}

/// The unit a monitoring series is drawn in, and what to divide its values by.
fn unit_of(subject: &str) -> (&'static str, f64) {
    let metric = subject.rsplit('/').next().unwrap_or(subject);
    if metric.contains("percent") || metric == "cpu" || metric == "mem" || metric == "disk-space" {
        ("%", 1.0)
    } else if metric.contains("memory_rss")
        || metric.contains("memory_vms")
        || metric.contains("bytes")
        || metric.starts_with("bytes-")
        || metric.starts_with("disk-")
    {
        ("MB", 1e6)
    } else if metric.contains("_time") {
        ("s", 1.0)
    } else {
        ("", 1.0)
    }
}

const COLORS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
const W: f64 = 760.0;
const H: f64 = 240.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 52.0;
/// Buckets per series at most: a longer series is drawn as each bucket's minimum and maximum
/// (so a one-second stall in an hour-long run still shows), with one hover point per bucket.
const MAX_BUCKETS: usize = 180;

/// A line chart, laid out: the template draws it as SVG (and escapes its text).
#[derive(Debug, Serialize)]
struct Chart {
    title: String,
    unit: String,
    /// What the x axis counts.
    x_label: &'static str,
    width: f64,
    height: f64,
    /// The plot area.
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
    y_ticks: Vec<Tick>,
    x_ticks: Vec<Tick>,
    series: Vec<Line>,
    marks: Vec<Shade>,
    empty: bool,
}

#[derive(Debug, Serialize)]
struct Tick {
    at: String,
    text: String,
}

#[derive(Debug, Serialize)]
struct Line {
    name: String,
    color: &'static str,
    /// `x,y x,y ...` for a polyline.
    points: String,
    dots: Vec<Dot>,
    legend_x: f64,
}

/// A point with its hover text.
#[derive(Debug, Serialize)]
struct Dot {
    x: String,
    y: String,
    title: String,
}

#[derive(Debug, Serialize)]
struct Shade {
    x: String,
    width: String,
    title: String,
}

/// What a chart's x axis counts.
enum XAxis<'a> {
    /// Seconds of the load.
    Seconds,
    /// Runs of a history, by name (x is the index).
    Runs(&'a [String]),
    /// A capacity sweep's load values: users, or offered requests per second.
    Load(&'static str),
}

impl XAxis<'_> {
    /// Where a point is, for its hover text.
    fn at(&self, x: f64) -> String {
        match self {
            XAxis::Seconds => format!("at {}s", number(x)),
            XAxis::Runs(names) => {
                let i = x.max(0.0) as usize;
                format!("in {}", names.get(i).map_or("?", String::as_str))
            }
            XAxis::Load(unit) => format!("at {} {unit}", number(x)),
        }
    }

    /// A span of points, for the hover text of a bucket.
    fn span(&self, from: f64, to: f64) -> String {
        match self {
            XAxis::Seconds => format!("{}–{}s", number(from), number(to)),
            XAxis::Runs(_) => format!("runs {}–{}", number(from + 1.0), number(to + 1.0)),
            XAxis::Load(unit) => format!("{}–{} {unit}", number(from), number(to)),
        }
    }
}

/// A line chart over the seconds of the load.
fn line_chart(
    title: &str,
    unit: &str,
    series: &[(&str, Vec<(f64, f64)>)],
    marks: &[Mark],
) -> Chart {
    chart_over(title, unit, series, marks, &XAxis::Seconds)
}

/// Lays out a line chart: axes with round ticks, one line per series (at most
/// [`MAX_BUCKETS`] buckets, each drawn by its extremes), a hover text per bucket, shaded marks.
fn chart_over(
    title: &str,
    unit: &str,
    series: &[(&str, Vec<(f64, f64)>)],
    marks: &[Mark],
    axis: &XAxis<'_>,
) -> Chart {
    let all = series.iter().flat_map(|(_, p)| p.iter());
    let x_max = all
        .clone()
        .map(|p| p.0 + 1.0)
        .chain(marks.iter().map(|m| m.to))
        .fold(1.0_f64, f64::max);
    let y_max = nice(all.map(|p| p.1).fold(0.0_f64, f64::max));
    let (right, bottom) = (W - RIGHT, H - BOTTOM);
    let x = |v: f64| LEFT + v / x_max * (right - LEFT);
    let y = |v: f64| bottom - v / y_max * (bottom - TOP);
    let px = |v: f64| format!("{v:.1}");
    let y_ticks = (0..=4)
        .map(|i| {
            let v = y_max * f64::from(i) / 4.0;
            Tick {
                at: px(y(v)),
                text: number(v),
            }
        })
        .collect();
    let step = nice(x_max / 8.0).max(1.0);
    let x_ticks = (0..)
        .map(|i| f64::from(i) * step)
        .take_while(|t| *t <= x_max)
        .map(|t| Tick {
            at: px(x(t)),
            text: number(t),
        })
        .collect();
    let mut legend_x = LEFT;
    let mut lines = Vec::new();
    for (i, (name, points)) in series.iter().enumerate() {
        if points.is_empty() {
            continue;
        }
        let stride = points.len().div_ceil(MAX_BUCKETS).max(1);
        let mut line_points = Vec::new();
        let mut dots = Vec::new();
        for bucket in points.chunks(stride) {
            let by_value = |a: &&(f64, f64), b: &&(f64, f64)| a.1.total_cmp(&b.1);
            let (Some(low), Some(high)) = (
                bucket.iter().min_by(by_value),
                bucket.iter().max_by(by_value),
            ) else {
                continue;
            };
            // Both extremes, in time order: the line keeps every peak and every dip.
            let (first, second) = if low.0 <= high.0 {
                (low, high)
            } else {
                (high, low)
            };
            line_points.push(*first);
            if second != first {
                line_points.push(*second);
            }
            let title = if bucket.len() == 1 {
                format!("{name} {}: {} {unit}", axis.at(high.0), number(high.1))
            } else {
                let (t0, t1) = (bucket[0].0, bucket[bucket.len() - 1].0);
                format!(
                    "{name} {}: {} to {} {unit}",
                    axis.span(t0, t1),
                    number(low.1),
                    number(high.1)
                )
            };
            dots.push(Dot {
                x: px(x(high.0)),
                y: px(y(high.1)),
                title,
            });
        }
        lines.push(Line {
            name: (*name).to_owned(),
            color: COLORS[i % COLORS.len()],
            points: line_points
                .iter()
                .map(|(t, v)| format!("{},{}", px(x(*t)), px(y(*v))))
                .collect::<Vec<_>>()
                .join(" "),
            dots,
            legend_x: (legend_x * 10.0).round() / 10.0,
        });
        legend_x += 24.0 + 7.0 * name.chars().count() as f64;
    }
    let marks = marks
        .iter()
        .map(|m| {
            let (x0, x1) = (x(m.from), x(m.to.max(m.from + 0.2)));
            Shade {
                x: px(x0),
                width: px(x1 - x0),
                title: match axis {
                    XAxis::Seconds => format!("triggered: {}", m.text),
                    XAxis::Runs(_) | XAxis::Load(_) => m.text.clone(),
                },
            }
        })
        .collect();
    Chart {
        title: title.to_owned(),
        unit: unit.to_owned(),
        x_label: match axis {
            XAxis::Seconds => "seconds since the load started",
            XAxis::Runs(_) => "runs of the history, oldest first (shaded: this run)",
            XAxis::Load(unit) => match *unit {
                "users" => "concurrency (users) of each step",
                _ => "offered requests per second of each step",
            },
        },
        width: W,
        height: H,
        left: LEFT,
        top: TOP,
        right,
        bottom,
        y_ticks,
        x_ticks,
        empty: lines.is_empty(),
        series: lines,
        marks,
    }
}

/// A round upper bound for an axis: 1, 2, 2.5 or 5 times a power of ten.
fn nice(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if max <= m * magnitude {
            return m * magnitude;
        }
    }
    10.0 * magnitude
}

fn number(v: f64) -> String {
    if v == 0.0 {
        "0".to_owned()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run of one suite with one monitored series and one failed criterion on it.
    fn one_suite(
        name: &str,
        subject: &str,
        criterion: &str,
        logic: &str,
        detail: &str,
    ) -> RunReport {
        serde_json::from_value(serde_json::json!({
            "format_version": 1, "tool": "perfgate", "started_at": "2026-01-01T00:00:00Z",
            "duration_s": 1.0, "status": "completed",
            "suites": [{
                "name": name, "path": "x.yaml", "status": "completed", "error": null,
                "seed": 1, "started_at": "2026-01-01T00:00:00Z", "duration_s": 1.0,
                "executions": [], "labels": [], "timeline": [],
                "monitoring": [{"subject": subject, "min": 1.0, "max": 1.0, "mean": 1.0,
                                "last": 1.0, "points": [[0, 1.0], [1, 1.0]]}],
                "criteria": [{"name": criterion, "message": null, "scope": "suite",
                              "subject": subject, "verdict": "failed", "observed": 1.0, "observed_text": "1",
                              "condition": ">", "threshold": "0", "logic": logic,
                              "window": [0, 1], "stop": true, "fail": true,
                              "stopped_load": false, "detail": detail}]
            }]
        }))
        .expect("a valid report")
    }

    #[test]
    fn untrusted_text_in_charts_is_escaped_by_the_template() {
        let run = one_suite(
            "<b>suite</b>",
            "<i>src</i>/m",
            "<script>x</script>/m>0",
            "for 1s",
            "<u>d</u>",
        );
        let page = render(&run).expect("renders");
        for raw in ["<b>suite", "<i>src", "<script>", "<u>d"] {
            assert!(!page.contains(raw), "{raw} is escaped");
        }
        assert!(
            page.contains("&lt;i&gt;src&lt;&#x2F;i&gt;&#x2F;m"),
            "the chart title as text"
        );
        assert!(
            page.contains(r#"<rect class="mark""#),
            "the triggered window is shaded"
        );
    }

    /// An hour of seconds with 20 one-second stalls: every stall survives the bucketing, as
    /// a peak of the line and a hover point.
    #[test]
    fn long_series_keep_their_peaks() {
        let points: Vec<(f64, f64)> = (0..3600)
            .map(|t| (f64::from(t), if t % 180 == 97 { 900.0 } else { 5.0 }))
            .collect();
        let chart = line_chart("p99", "ms", &[("p99", points)], &[]);
        let line = &chart.series[0];
        assert!(line.dots.len() <= MAX_BUCKETS);
        let peaks = line
            .dots
            .iter()
            .filter(|d| d.title.contains("to 900 ms"))
            .count();
        assert_eq!(peaks, 20, "every stall is a hover point");
        let peak_y = &line
            .dots
            .iter()
            .find(|d| d.title.contains("to 900 ms"))
            .expect("a peak")
            .y;
        let on_line = line
            .points
            .split(' ')
            .filter(|p| p.ends_with(&format!(",{peak_y}")))
            .count();
        assert_eq!(on_line, 20, "every stall is a peak of the line");
    }

    #[test]
    fn cumulative_criteria_do_not_shade() {
        let mut run = one_suite("s", "src/m", "src/m>0", "cumulative", "d");
        assert!(
            !render(&run)
                .expect("renders")
                .contains(r#"<rect class="mark""#)
        );
        run.suites[0].criteria[0].logic = "for 1s".to_owned();
        assert!(
            render(&run)
                .expect("renders")
                .contains(r#"<rect class="mark""#)
        );
    }

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(nice(7.3), 10.0);
        assert_eq!(nice(180.0), 200.0);
        assert_eq!(nice(0.22), 0.25);
    }
}
