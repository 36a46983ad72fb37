//! `report.html`: one self-contained page (inline CSS and SVG, no script, no network) that
//! works from file://.
//!
//! The page is a tera template (`templates/report.html.tera`, embedded) with autoescaping on:
//! every label, URL, message and log line from the suite or the server is text, never markup.
//! Charts are SVG drawn here; the only text in them goes through [`escape`]. Each point has a
//! `<title>`, so hovering shows its value; the windows of triggered criteria are shaded.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::model::{RunReport, SuiteReport, SuiteStatus};
use crate::criteria::eval::Verdict;

const TEMPLATE: &str = include_str!("../../templates/report.html.tera");

/// Renders the whole run.
pub fn render(run: &RunReport) -> Result<String, String> {
    let mut tera = tera::Tera::default();
    tera.add_raw_template("report.html", TEMPLATE)
        .map_err(|e| format!("the report template: {e}"))?;
    let page = Page {
        verdict: super::summary::verdict(run),
        tool: &run.tool,
        started_at: &run.started_at,
        duration: format!("{:.1}s", run.duration_s),
        suites: run.suites.iter().map(suite_view).collect(),
    };
    let context =
        tera::Context::from_serialize(&page).map_err(|e| format!("the report data: {e}"))?;
    tera.render("report.html", &context)
        .map_err(|e| format!("rendering the report: {e:?}"))
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
    /// Pre-rendered SVG (escaped here).
    charts: Vec<String>,
    errors: Vec<(String, u64)>,
    effective_yaml: &'a str,
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

fn suite_view(s: &SuiteReport) -> SuiteView<'_> {
    let verdict = match (s.status, s.criteria_failed()) {
        (SuiteStatus::Error, _) => "error",
        (SuiteStatus::Interrupted, _) => "interrupted",
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

fn charts(s: &SuiteReport) -> Vec<String> {
    let overall: Vec<_> = s.timeline.iter().filter(|r| r.label.is_empty()).collect();
    let triggered: Vec<_> = s
        .criteria
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Failed | Verdict::Notice))
        .filter_map(|c| c.window.map(|w| (c, w)))
        .collect();
    let request_marks: Vec<Mark> = triggered
        .iter()
        .filter(|(c, _)| !c.name.contains('/'))
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
                ("hits/s", pick(|r| Some(r.hits as f64))),
                ("failed/s", pick(|r| Some(r.fail as f64))),
                ("dropped/s", pick(|r| Some(r.dropped as f64))),
            ],
            &request_marks,
        ));
        out.push(line_chart(
            "Concurrency",
            "in flight",
            &[("concurrency", pick(|r| Some(r.concurrency as f64)))],
            &request_marks,
        ));
        let mut codes: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        for r in &overall {
            for code in r.rc.keys() {
                codes.entry(code.as_str()).or_default();
            }
        }
        for (code, points) in codes.iter_mut() {
            *points = overall
                .iter()
                .map(|r| (t(r), r.rc.get(*code).copied().unwrap_or(0) as f64))
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
    for m in &s.monitoring {
        let marks: Vec<Mark> = triggered
            .iter()
            .filter(|(c, _)| c.name.contains(m.subject.as_str()))
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
/// Points drawn per series at most; longer runs are thinned evenly.
const MAX_POINTS: usize = 600;

/// An SVG line chart with axes, units, a legend, a `<title>` per point and shaded marks.
fn line_chart(
    title: &str,
    unit: &str,
    series: &[(&str, Vec<(f64, f64)>)],
    marks: &[Mark],
) -> String {
    let all = series.iter().flat_map(|(_, p)| p.iter());
    let x_max = all
        .clone()
        .map(|p| p.0 + 1.0)
        .chain(marks.iter().map(|m| m.to))
        .fold(1.0_f64, f64::max);
    let y_max = nice(all.map(|p| p.1).fold(0.0_f64, f64::max));
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let x = |v: f64| LEFT + v / x_max * pw;
    let y = |v: f64| TOP + ph - v / y_max * ph;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = escape(title)
    );
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="18" class="chart-title">{}</text>"#,
        escape(title)
    );
    for m in marks {
        let (x0, x1) = (x(m.from), x(m.to.max(m.from + 0.2)));
        let _ = write!(
            svg,
            r##"<rect class="mark" x="{x0:.1}" y="{TOP}" width="{:.1}" height="{ph}" fill="#d62728" fill-opacity="0.15"><title>triggered: {}</title></rect>"##,
            x1 - x0,
            escape(&m.text)
        );
    }
    // Axes and grid.
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let py = y(v);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{py:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            py + 4.0,
            number(v)
        );
    }
    let step = nice(x_max / 8.0).max(1.0);
    let mut t = 0.0;
    while t <= x_max {
        let px = x(t);
        let _ = write!(
            svg,
            r##"<line x1="{px:.1}" x2="{px:.1}" y1="{:.1}" y2="{:.1}" stroke="#999"/><text x="{px:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"##,
            TOP + ph,
            TOP + ph + 4.0,
            TOP + ph + 16.0,
            number(t)
        );
        t += step;
    }
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{:.1}" stroke="#333"/><line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#333"/>"##,
        TOP + ph,
        W - RIGHT,
        TOP + ph,
        TOP + ph
    );
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis">seconds since the load started</text>"#,
        LEFT + pw / 2.0,
        TOP + ph + 32.0
    );
    let _ = write!(
        svg,
        r#"<text x="14" y="{:.1}" text-anchor="middle" transform="rotate(-90 14 {:.1})" class="axis">{}</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        escape(unit)
    );
    // Series, thinned, each point with its value on hover.
    let mut legend_x = LEFT;
    for (i, (name, points)) in series.iter().enumerate() {
        if points.is_empty() {
            continue;
        }
        let color = COLORS[i % COLORS.len()];
        let stride = points.len().div_ceil(MAX_POINTS).max(1);
        let shown: Vec<&(f64, f64)> = points.iter().step_by(stride).collect();
        let path: Vec<String> = shown
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline class="series" fill="none" stroke="{color}" stroke-width="1.6" points="{}"/>"#,
            path.join(" ")
        );
        for (t, v) in &shown {
            let _ = write!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}" fill-opacity="0.01" class="pt"><title>{} at {}s: {} {}</title></circle>"#,
                x(*t),
                y(*v),
                escape(name),
                number(*t),
                number(*v),
                escape(unit)
            );
        }
        let _ = write!(
            svg,
            r#"<rect x="{legend_x:.1}" y="{:.1}" width="10" height="10" fill="{color}"/><text x="{:.1}" y="{:.1}" class="legend">{}</text>"#,
            H - 12.0,
            legend_x + 14.0,
            H - 3.0,
            escape(name)
        );
        legend_x += 24.0 + 7.0 * name.chars().count() as f64;
    }
    if series.iter().all(|(_, p)| p.is_empty()) {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis">no data</text>"#,
            LEFT + pw / 2.0,
            TOP + ph / 2.0
        );
    }
    svg.push_str("</svg>");
    svg
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

/// Text for HTML and SVG: `<`, `>`, `&`, quotes become entities.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_text_is_escaped() {
        let svg = line_chart(
            "<script>alert(1)</script>",
            "ms",
            &[("<b>x</b>", vec![(0.0, 1.0), (1.0, 2.0)])],
            &[Mark {
                from: 0.0,
                to: 1.0,
                text: "avg-rt of \"<i>\">1ms".to_owned(),
            }],
        );
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
        assert!(!svg.contains("<i>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
    }

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(nice(7.3), 10.0);
        assert_eq!(nice(180.0), 200.0);
        assert_eq!(nice(0.22), 0.25);
    }
}
