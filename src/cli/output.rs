//! Text the CLI prints: plan summaries, the `list` table, error chains.

use std::fmt::Write as _;

use crate::suite::model::{Check, Service, Suite};
use crate::suite::units::format_duration;

/// `error: a: b: c` for an error and its sources.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    text
}

/// One paragraph per suite for `validate`: what would run (secrets as `***`).
pub fn plan_summary(suite: &Suite) -> String {
    crate::report::redact::Redactor::for_suite(suite).text(&summary_text(suite))
}

fn summary_text(suite: &Suite) -> String {
    let mut out = format!("ok  {} ({})\n", suite.name, suite.path.display());
    for e in &suite.executions {
        let _ = writeln!(out, "      execution  {}: {}", e.scenario, e.shape());
    }
    let servers: Vec<&str> = suite
        .services
        .iter()
        .filter_map(|s| match s {
            Service::Server(server) => Some(server.label.as_str()),
            Service::Shellexec(_) => None,
        })
        .collect();
    if !servers.is_empty() {
        let _ = writeln!(out, "      servers    {}", servers.join(", "));
    }
    if !suite.monitoring.is_empty() {
        let sources: Vec<String> = suite
            .monitoring
            .iter()
            .map(|m| {
                format!(
                    "{} ({} metrics every {})",
                    m.name,
                    m.metrics.len(),
                    format_duration(m.interval)
                )
            })
            .collect();
        let _ = writeln!(out, "      monitoring {}", sources.join(", "));
    }
    let _ = writeln!(
        out,
        "      labels     {}",
        if suite.labels.is_empty() {
            "-".into()
        } else {
            suite.labels.join(", ")
        }
    );
    let _ = writeln!(out, "      criteria   {}", suite.criteria.len());
    out
}

/// The `list` table: one row per execution, then the criteria of each suite (secrets as
/// `***`).
pub fn table(suites: &[Suite]) -> String {
    suites
        .iter()
        .map(crate::report::redact::Redactor::for_suite)
        .fold(crate::report::redact::Redactor::default(), |a, b| {
            a.merge(b)
        })
        .text(&table_text(suites))
}

fn table_text(suites: &[Suite]) -> String {
    let mut rows = vec![[
        "SUITE".to_owned(),
        "SCENARIO".into(),
        "LOAD".into(),
        "LABELS".into(),
    ]];
    for suite in suites {
        let mut first = true;
        for e in &suite.executions {
            let labels = suite.labels.join(", ");
            rows.push([
                if first {
                    suite.name.clone()
                } else {
                    String::new()
                },
                e.scenario.clone(),
                e.shape(),
                if first { labels } else { String::new() },
            ]);
            first = false;
        }
    }
    let mut out = align(&rows);
    let mut criteria = vec![[
        "SUITE".to_owned(),
        "CRITERION".into(),
        "ON TRIGGER".into(),
        "SCOPE".into(),
    ]];
    for suite in suites {
        for (i, c) in suite.criteria.iter().enumerate() {
            let action = match (c.stop, c.fail) {
                (true, true) => "stop as failed",
                (true, false) => "stop as non-failed",
                (false, true) => "continue as failed",
                (false, false) => "continue as non-failed",
            };
            let name = match (&c.message, &c.check) {
                (Some(m), _) => format!("{} ({m})", c.name),
                (None, Check::Threshold { .. } | Check::Expr { .. }) => c.name.clone(),
            };
            let scope = match &c.scope {
                crate::suite::model::Scope::Suite => "suite".to_owned(),
                crate::suite::model::Scope::Execution(i) => format!("execution {}", i + 1),
                crate::suite::model::Scope::Scenario(s) => format!("scenario {s}"),
            };
            criteria.push([
                if i == 0 {
                    suite.name.clone()
                } else {
                    String::new()
                },
                name,
                action.into(),
                scope,
            ]);
        }
    }
    if criteria.len() > 1 {
        out.push('\n');
        out.push_str(&align(&criteria));
    }
    out
}

fn align(rows: &[[String; 4]]) -> String {
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
