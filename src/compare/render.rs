//! A comparison as a console table, Markdown, an HTML page and JUnit XML; the change points
//! of a history as a table and Markdown.

use std::fmt::Write as _;

use super::trend::{Change, Trends};
use super::{Comparison, Kpi, Thresholds, Verdict};
use crate::report::versus::HEADER;

fn verdict_line(c: &Comparison, threshold: &Thresholds) -> String {
    match c.regressions() {
        0 => format!("compare: no regression beyond {threshold} and the noise"),
        n => format!("compare: {n} REGRESSION(S) beyond {threshold} and the noise"),
    }
}

/// Rows as left-aligned columns two spaces apart, a line each.
fn aligned<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// Aligned columns, the notes, then one verdict line.
pub fn table(c: &Comparison, threshold: &Thresholds) -> String {
    let mut rows: Vec<[String; 8]> = vec![HEADER.map(str::to_owned)];
    rows.extend(c.rows.iter().map(super::Row::cells));
    let mut out = aligned(&rows);
    for note in &c.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let _ = writeln!(out, "{}", verdict_line(c, threshold));
    out
}

/// A Markdown table (for `$GITHUB_STEP_SUMMARY`); cells cannot break the table.
pub fn markdown(c: &Comparison, threshold: &Thresholds) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## {}\n", verdict_line(c, threshold));
    crate::report::versus::markdown_table(&c.rows, &c.notes, &mut out);
    out
}

fn change_cells(c: &Change) -> [String; 7] {
    let size = match c.kpi {
        Kpi::ErrorRate => format!("{:+.2}pp", c.change),
        _ => format!("{:+.1}%", c.change),
    };
    [
        c.suite.clone(),
        if c.label.is_empty() {
            "ALL".to_owned()
        } else {
            c.label.clone()
        },
        c.kpi.name().to_owned(),
        format!(
            "{} → {}",
            c.kpi.format(Some(c.before)),
            c.kpi.format(Some(c.after))
        ),
        if c.worse {
            format!("{size} worse")
        } else {
            format!("{size} better")
        },
        format!("{:.1}%", c.confidence * 100.0),
        c.run.clone(),
    ]
}

const CHANGE_HEADER: [&str; 7] = [
    "suite",
    "label",
    "kpi",
    "before → after",
    "change",
    "confidence",
    "began in run",
];

fn trend_line(t: &Trends) -> String {
    let span = match (t.runs.first(), t.runs.last()) {
        (Some(a), Some(b)) => format!("{} runs, {} to {}", t.runs.len(), a.run, b.run),
        _ => "no runs".to_owned(),
    };
    let worse = t.changes.iter().filter(|c| c.worse).count();
    format!(
        "history: {span}; {} change point(s), {worse} for the worse",
        t.changes.len()
    )
}

/// The change points of a history as aligned columns, then one summary line.
pub fn changes_table(t: &Trends) -> String {
    let mut rows: Vec<[String; 7]> = vec![CHANGE_HEADER.map(str::to_owned)];
    rows.extend(t.changes.iter().map(change_cells));
    let mut out = if t.changes.is_empty() {
        String::new()
    } else {
        aligned(&rows)
    };
    if t.runs.len() < super::trend::MIN_RUNS {
        let _ = writeln!(
            out,
            "note: change points need at least {} runs",
            super::trend::MIN_RUNS
        );
    }
    let _ = writeln!(out, "{}", trend_line(t));
    out
}

/// The change points of a history as Markdown.
pub fn changes_markdown(t: &Trends) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace(['\n', '\r'], " ");
    let mut out = String::new();
    let _ = writeln!(out, "## {}\n", trend_line(t));
    if t.changes.is_empty() {
        return out;
    }
    let _ = writeln!(out, "| {} |", CHANGE_HEADER.join(" | "));
    let _ = writeln!(out, "|---|---|---|---|---:|---:|---|");
    for c in &t.changes {
        let mut cells = change_cells(c).map(|s| cell(&s));
        if c.worse {
            cells[4] = format!("❌ {}", cells[4]);
        }
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

const COMPARE_TEMPLATE: &str = include_str!("../../templates/compare.html.tera");

fn row_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Regression => "failed",
        Verdict::Improvement => "passed",
        Verdict::Noise | Verdict::Changed => "notice",
        Verdict::Ok | Verdict::NoData => "",
    }
}

/// A self-contained HTML page (no script, no network) of a comparison; every text is escaped.
pub fn html(c: &Comparison, threshold: &Thresholds) -> Result<String, tera::Error> {
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec!["compare.html"]);
    tera.add_raw_template("compare.html", COMPARE_TEMPLATE)?;
    let mut context = tera::Context::new();
    context.insert("verdict", &verdict_line(c, threshold));
    context.insert(
        "class",
        if c.regressions() > 0 {
            "failed"
        } else {
            "passed"
        },
    );
    context.insert("threshold", &threshold.to_string());
    context.insert("notes", &c.notes);
    context.insert("header", &HEADER);
    let rows: Vec<(Vec<String>, &str)> = c
        .rows
        .iter()
        .map(|r| (r.cells().to_vec(), row_class(r.verdict)))
        .collect();
    context.insert("rows", &rows);
    tera.render("compare.html", &context)
}

/// JUnit XML of a comparison: a testsuite per suite (`<suite> comparison`), a testcase per
/// label and KPI (`infer p99`), failed when it regressed.
pub fn junit(c: &Comparison, threshold: &Thresholds) -> quick_junit::Report {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("perfgate compare");
    let mut suites: Vec<TestSuite> = Vec::new();
    for r in &c.rows {
        let name = format!("{} comparison", r.suite);
        let at = match suites.iter().position(|s| s.name.as_str() == name) {
            Some(at) => at,
            None => {
                suites.push(TestSuite::new(name.as_str()));
                suites.len() - 1
            }
        };
        let [_, label, kpi, old, new, change, interval, verdict] = r.cells();
        let text = format!(
            "{kpi} of {label}: baseline {old}, now {new}, change {change}, 95% interval {interval}: {verdict}"
        );
        let status = if r.verdict == Verdict::Regression {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_message(format!("{text} (threshold {threshold})"));
            st.set_type("regression");
            st
        } else {
            TestCaseStatus::success()
        };
        let mut case = TestCase::new(format!("{label} {kpi}"), status);
        case.set_classname(r.suite.as_str());
        if r.verdict != Verdict::Regression {
            case.set_system_out(text);
        }
        suites[at].add_test_case(case);
    }
    report.add_test_suites(suites);
    report
}
