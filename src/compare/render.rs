//! A comparison as a console table and as Markdown.

use std::fmt::Write as _;

use super::{Comparison, Kpi, Row, Verdict};

fn value(kpi: Kpi, v: Option<f64>) -> String {
    match (kpi, v) {
        (_, None) => "-".to_owned(),
        (Kpi::Throughput, Some(v)) => format!("{v:.1}/s"),
        (Kpi::ErrorRate, Some(v)) => format!("{v:.2}%"),
        (_, Some(v)) => format!("{v:.2}ms"),
    }
}

fn change(r: &Row) -> String {
    match (r.kpi, r.change) {
        (_, None) => "-".to_owned(),
        (Kpi::ErrorRate, Some(c)) => format!("{c:+.2}pp"),
        (_, Some(c)) => format!("{c:+.1}%"),
    }
}

fn interval(r: &Row) -> String {
    r.interval.map_or("-".to_owned(), |(lo, hi)| {
        format!("{:+.1}%..{:+.1}%", (lo - 1.0) * 100.0, (hi - 1.0) * 100.0)
    })
}

fn cells(r: &Row) -> [String; 8] {
    [
        r.suite.clone(),
        if r.label.is_empty() {
            "ALL".to_owned()
        } else {
            r.label.clone()
        },
        r.kpi.name().to_owned(),
        value(r.kpi, r.old),
        value(r.kpi, r.new),
        change(r),
        interval(r),
        r.verdict.name().to_owned(),
    ]
}

const HEADER: [&str; 8] = [
    "suite",
    "label",
    "kpi",
    "baseline",
    "now",
    "change",
    "95% interval",
    "verdict",
];

fn verdict_line(c: &Comparison, threshold: f64) -> String {
    match c.regressions() {
        0 => format!("compare: no regression beyond {threshold}% and the noise"),
        n => format!("compare: {n} REGRESSION(S) beyond {threshold}% and the noise"),
    }
}

/// Aligned columns, the notes, then one verdict line.
pub fn table(c: &Comparison, threshold: f64) -> String {
    let mut rows: Vec<[String; 8]> = vec![HEADER.map(str::to_owned)];
    rows.extend(c.rows.iter().map(cells));
    let widths: Vec<usize> = (0..8)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    for note in &c.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let _ = writeln!(out, "{}", verdict_line(c, threshold));
    out
}

/// A Markdown table (for `$GITHUB_STEP_SUMMARY`); cells cannot break the table.
pub fn markdown(c: &Comparison, threshold: f64) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace(['\n', '\r'], " ");
    let mut out = String::new();
    let _ = writeln!(out, "## {}\n", verdict_line(c, threshold));
    let _ = writeln!(out, "| {} |", HEADER.join(" | "));
    let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---|");
    for r in &c.rows {
        let mut cells = cells(r).map(|s| cell(&s));
        if r.verdict == Verdict::Regression {
            cells[7] = format!("❌ {}", cells[7]);
        }
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    for note in &c.notes {
        let _ = writeln!(out, "\n> {}", cell(note));
    }
    out
}
