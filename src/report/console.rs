//! What a run prints on stdout: a table per label after each suite, the criteria of the
//! whole run at the end, and one verdict line last.

use std::fmt::Write as _;

use super::model::{RunReport, SuiteReport, SuiteStatus};

/// The share of a label's arrivals that were dropped (the open model's in-flight cap was
/// reached), `0.00%` when none were.
pub fn dropped_share(l: &super::model::LabelStats) -> String {
    let arrivals = l.hits + l.dropped;
    if arrivals == 0 {
        "–".to_owned()
    } else {
        format!("{:.2}%", 100.0 * l.dropped as f64 / arrivals as f64)
    }
}

/// `label | hits | fail | rps | avg | p50 | p90 | p99 | max` for every label, `""` shown as ALL,
/// with a `dropped` column when arrivals were dropped and an `unfinished` one when requests
/// were cut in flight.
pub fn suite_table(suite: &SuiteReport) -> String {
    let dropped = suite.labels.iter().any(|l| l.dropped > 0);
    let unfinished = suite.labels.iter().any(|l| l.unfinished > 0);
    let mut rows: Vec<Vec<String>> = vec![
        [
            "label", "hits", "fail", "rps", "avg ms", "p50 ms", "p90 ms", "p99 ms", "max ms",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    if unfinished {
        rows[0].insert(3, "unfinished".to_owned());
    }
    if dropped {
        rows[0].insert(3, "dropped".to_owned());
    }
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    for l in &suite.labels {
        let p = |level: &str| ms(l.percentiles_ms.get(level).copied());
        let fail = if l.hits == 0 {
            "-".to_owned()
        } else {
            format!("{:.2}%", 100.0 * l.fail as f64 / l.hits as f64)
        };
        let mut row = vec![
            if l.label.is_empty() {
                "ALL".to_owned()
            } else {
                l.label.clone()
            },
            l.hits.to_string(),
            fail,
            l.throughput.map_or("-".into(), |t| format!("{t:.1}")),
            ms(l.avg_rt_ms),
            p("50.0"),
            p("90.0"),
            p("99.0"),
            p("100.0"),
        ];
        if unfinished {
            row.insert(3, l.unfinished.to_string());
        }
        if dropped {
            row.insert(3, dropped_share(l));
        }
        rows.push(row);
    }
    let mut out = String::new();
    let status = match suite.status {
        SuiteStatus::Completed => "completed",
        SuiteStatus::Error => "ERROR",
        SuiteStatus::Interrupted => "interrupted",
        SuiteStatus::Incomplete => "INCOMPLETE",
    };
    let _ = writeln!(out, "{} ({status}, {:.1}s)", suite.name, suite.duration_s);
    // Without samples, the header alone says nothing.
    let rows = if suite.labels.is_empty() {
        &rows[..0]
    } else {
        &rows[..]
    };
    out.push_str(&columns(rows));
    for (title, table) in [
        (
            "LLM requests (times in ms)",
            super::measures::llm_table(suite),
        ),
        (
            "Server time per component",
            super::measures::breakdown_table(suite),
        ),
    ] {
        if let Some(table) = table {
            let _ = writeln!(out, "  {title}");
            out.push_str(&columns(&table));
        }
    }
    if let Some(c) = &suite.capacity {
        let _ = writeln!(out, "  Capacity (steady window of each step)");
        out.push_str(&columns(&super::capacity::table(c)));
        let value = |v: Option<f64>| v.map_or_else(|| "none".to_owned(), |v| format!("{v}"));
        let _ = writeln!(
            out,
            "  knee {} (p99 climbs after {}), saturation {}, max {}, recommended {} {}",
            value(c.knee),
            value(c.latency_knee),
            value(c.saturation),
            c.max_throughput
                .map_or_else(|| "-".to_owned(), |t| format!("{t:.1} req/s")),
            c.kind,
            value(c.recommended)
        );
        if let Some(b) = &c.bottleneck {
            let _ = writeln!(
                out,
                "  bottleneck: {} ({} confidence): {}",
                b.kind, b.confidence, b.summary
            );
            for e in &b.evidence {
                let _ = writeln!(out, "    - {e}");
            }
            if !b.missing.is_empty() {
                let _ = writeln!(out, "    not collected: {}", b.missing.join("; "));
            }
        }
        for note in &c.notes {
            let _ = writeln!(out, "  note: {note}");
        }
    }
    for note in super::measures::timing_notes(suite) {
        let _ = writeln!(out, "  note: {note}");
    }
    if let Some(name) = &suite.stopped_by {
        let _ = writeln!(out, "  stopped early: criterion `{name}` triggered");
    }
    if let Some(e) = &suite.error {
        let _ = writeln!(out, "  error: {}", e.message);
        if let Some(tail) = &e.log_tail {
            for line in tail.lines() {
                let _ = writeln!(out, "  | {line}");
            }
        }
        if let Some(log) = &e.log {
            let _ = writeln!(out, "  log: {log}");
        }
        if let Some(hint) = &e.hint {
            let _ = writeln!(out, "  hint: {hint}");
        }
    }
    out
}

/// Rows as aligned columns indented by two spaces: the first (a name) left-aligned, the
/// rest (numbers) right-aligned.
pub(crate) fn columns(rows: &[Vec<String>]) -> String {
    let count = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..count)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c == 0 {
                let _ = write!(line, "  {cell:<w$}", w = widths[c]);
            } else {
                let _ = write!(line, "  {cell:>w$}", w = widths[c]);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// `suite | criterion | result | observed` for every criterion of the run; empty without any.
pub fn criteria_table(run: &RunReport) -> String {
    let mut rows: Vec<[String; 4]> =
        vec![["suite", "criterion", "result", "observed"].map(str::to_owned)];
    for suite in &run.suites {
        for c in &suite.criteria {
            let result = match c.verdict {
                crate::criteria::eval::Verdict::Passed => "passed",
                crate::criteria::eval::Verdict::Failed => "FAILED",
                crate::criteria::eval::Verdict::Notice => "notice",
                crate::criteria::eval::Verdict::NoData => "NO DATA",
                crate::criteria::eval::Verdict::NotJudged => "not judged",
            };
            let mut observed = match c.window {
                Some((from, to)) if c.observed.is_some() && c.logic != "cumulative" => {
                    format!("{} (s {from}-{to})", c.observed_text)
                }
                _ => c.observed_text.clone(),
            };
            if let Some(versus) = versus_baseline(c) {
                let _ = write!(observed, " {versus}");
            }
            rows.push([
                suite.name.clone(),
                c.name.clone(),
                result.to_owned(),
                observed,
            ]);
        }
    }
    if rows.len() == 1 {
        return String::new();
    }
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// A relative criterion's observed value against its baseline's: `+12.3% vs <run>`
/// (percentage points for a rate).
fn versus_baseline(c: &crate::report::model::CriterionReport) -> Option<String> {
    let b = c.baseline.as_ref()?;
    let (observed, base, run) = (c.observed?, b.value?, b.run.as_deref()?);
    if c.scope == crate::report::model::COMPARISON_SCOPE {
        return None;
    }
    let rate = crate::criteria::grammar::parse_subject(&c.subject).is_ok_and(|s| s.is_rate());
    if rate {
        Some(format!("{:+.2}pp vs {run}", observed - base))
    } else if base != 0.0 {
        Some(format!(
            "{:+.1}% vs {run}",
            (observed - base) / base.abs() * 100.0
        ))
    } else {
        None
    }
}

/// The last line of a run, the one a CI log is read for:
/// `perfgate: passed, 3 suites, 12 criteria`,
/// `perfgate: FAILED, 1 of 12 criteria failed in open_model`,
/// `perfgate: ERROR in hang (server `srv` exited ...), 2 suites`,
/// `perfgate: INTERRUPTED after 1 of 3 suites`.
pub fn verdict_line(run: &RunReport) -> String {
    use super::model::RunStatus;
    let suites = run.suites.len();
    let criteria: usize = run.suites.iter().map(|s| s.criteria.len()).sum();
    let failed: usize = run
        .suites
        .iter()
        .map(|s| s.criteria.iter().filter(|c| c.verdict.fails()).count())
        .sum();
    let no_data: usize = run
        .suites
        .iter()
        .map(|s| {
            s.criteria
                .iter()
                .filter(|c| c.verdict == crate::criteria::eval::Verdict::NoData)
                .count()
        })
        .sum();
    let failing: Vec<&str> = run
        .suites
        .iter()
        .filter(|s| s.criteria_failed())
        .map(|s| s.name.as_str())
        .collect();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let measured = format!(
        "{}, {}",
        plural(suites, "suite", "suites"),
        plural(criteria, "criterion", "criteria")
    );
    match run.status {
        RunStatus::Interrupted => {
            return format!(
                "perfgate: INTERRUPTED (SIGINT) after {measured}; reports hold what was measured"
            );
        }
        RunStatus::Terminated => {
            return format!(
                "perfgate: TERMINATED (SIGTERM) after {measured}; reports hold what was measured"
            );
        }
        RunStatus::Incomplete => {
            return format!(
                "perfgate: INCOMPLETE after {measured}: a checkpoint of a run that did not end"
            );
        }
        RunStatus::Completed => {}
    }
    let broken: Vec<String> = run
        .suites
        .iter()
        .filter(|s| s.status != SuiteStatus::Completed)
        .map(|s| match &s.error {
            Some(e) => format!("{} ({})", s.name, e.message),
            None => s.name.clone(),
        })
        .collect();
    if !broken.is_empty() {
        return format!("perfgate: ERROR in {}; {measured}", broken.join(", "));
    }
    if failed > 0 {
        let no_data = if no_data > 0 {
            format!(" ({no_data} with no data)")
        } else {
            String::new()
        };
        return format!(
            "perfgate: FAILED, {failed} of {} failed{no_data} in {}",
            plural(criteria, "criterion", "criteria"),
            failing.join(", ")
        );
    }
    let regressed: usize = run.suites.iter().map(SuiteReport::regressions).sum();
    if regressed > 0 {
        return format!(
            "perfgate: FAILED, {regressed} KPI(s) regressed against the baseline in {}",
            failing.join(", ")
        );
    }
    format!("perfgate: passed, {measured}")
}
