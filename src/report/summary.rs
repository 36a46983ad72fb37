//! `summary.md`: the verdict and criteria as Markdown, for `$GITHUB_STEP_SUMMARY`.

use std::fmt::Write as _;

use super::model::{RunReport, RunStatus, SuiteStatus};
use crate::criteria::eval::Verdict;

/// The whole run: a verdict line, a table of suites, a table of criteria.
pub fn markdown(run: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## perfgate: {}\n", verdict(run));
    let _ = writeln!(
        out,
        "| suite | status | requests | errors | dropped | unfinished | p99 | criteria |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---|");
    for s in &run.suites {
        let all = s.labels.iter().find(|l| l.label.is_empty());
        let hits = all.map_or(0, |l| l.hits);
        let errors = all.map_or("-".to_owned(), |l| {
            if l.hits == 0 {
                "-".to_owned()
            } else {
                format!("{:.2}%", 100.0 * l.fail as f64 / l.hits as f64)
            }
        });
        let p99 = all
            .and_then(|l| l.percentiles_ms.get("99.0"))
            .map_or("-".to_owned(), |v| format!("{v:.1} ms"));
        let failed = s.criteria.iter().filter(|c| c.verdict.fails()).count();
        let mut criteria = if s.criteria.is_empty() {
            "none".to_owned()
        } else {
            format!("{} of {} failed", failed, s.criteria.len())
        };
        if s.regressions() > 0 {
            criteria.push_str(&format!(
                "; {} KPI(s) regressed against the baseline",
                s.regressions()
            ));
        }
        let status = match (s.status, s.criteria_failed()) {
            (SuiteStatus::Error, _) => "❌ error",
            (SuiteStatus::Interrupted, _) => "⚠️ interrupted",
            (SuiteStatus::Incomplete, _) => "⚠️ incomplete",
            (SuiteStatus::Completed, true) => "❌ failed",
            (SuiteStatus::Completed, false) => "✅ passed",
        };
        let dropped = all.map_or("-".to_owned(), super::console::dropped_share);
        let unfinished = all.map_or(0, |l| l.unfinished);
        let _ = writeln!(
            out,
            "| {} | {status} | {hits} | {errors} | {dropped} | {unfinished} | {p99} | {criteria} |",
            cell(&s.name)
        );
    }
    let criteria: Vec<_> = run
        .suites
        .iter()
        .flat_map(|s| s.criteria.iter().map(move |c| (s, c)))
        .collect();
    if !criteria.is_empty() {
        let _ = writeln!(out, "\n| suite | criterion | result | observed |");
        let _ = writeln!(out, "|---|---|---|---|");
        for (s, c) in criteria {
            let result = match c.verdict {
                Verdict::Passed => "✅ passed",
                Verdict::Failed => "❌ failed",
                Verdict::Notice => "ℹ️ notice",
                Verdict::NoData => "❌ no data",
                Verdict::NotJudged => "⏭️ not judged",
            };
            let _ = writeln!(
                out,
                "| {} | `{}` | {result} | {} |",
                cell(&s.name),
                c.name.replace('`', "'").replace('|', "\\|"),
                cell(&c.detail)
            );
        }
    }
    for s in &run.suites {
        let Some(v) = &s.versus else { continue };
        let regressions = s.regressions();
        let _ = writeln!(
            out,
            "\n### {} vs baseline {}: {}\n",
            cell(&s.name),
            v.baseline.as_deref().map_or_else(
                || "(none)".to_owned(),
                |b| format!("`{}`", b.replace('`', "'"))
            ),
            if regressions == 0 {
                "no regression".to_owned()
            } else {
                format!("{regressions} REGRESSION(S)")
            }
        );
        super::versus::markdown_table(&v.rows, &v.notes, &mut out);
    }
    for s in &run.suites {
        for (title, table) in [
            ("LLM requests (times in ms)", super::measures::llm_table(s)),
            (
                "server time per component",
                super::measures::breakdown_table(s),
            ),
            (
                "capacity (steady window of each step)",
                s.capacity.as_ref().map(super::capacity::table),
            ),
        ] {
            if let Some(table) = table {
                let _ = writeln!(out, "\n### {}: {title}\n", cell(&s.name));
                out.push_str(&super::measures::markdown(&table));
            }
        }
        if let Some(c) = &s.capacity {
            let _ = writeln!(out, "\n{}", cell(&super::capacity::reading(c)));
            if let Some(b) = &c.bottleneck {
                let _ = writeln!(
                    out,
                    "\nBottleneck: **{}** ({} confidence): {}",
                    cell(&b.kind),
                    cell(&b.confidence),
                    cell(&b.summary)
                );
            }
        }
    }
    for s in run.suites.iter().filter(|s| s.error.is_some()) {
        if let Some(e) = &s.error {
            let _ = writeln!(out, "\n**{}**: {}", cell(&s.name), cell(&e.message));
        }
    }
    out
}

/// One word for the whole run.
pub fn verdict(run: &RunReport) -> &'static str {
    match run.status {
        RunStatus::Interrupted | RunStatus::Terminated => "interrupted",
        RunStatus::Incomplete => "incomplete",
        RunStatus::Completed
            if run
                .suites
                .iter()
                .any(|s| s.status != SuiteStatus::Completed) =>
        {
            "error"
        }
        RunStatus::Completed if run.suites.iter().any(|s| s.criteria_failed()) => "failed",
        RunStatus::Completed => "passed",
    }
}

/// Text safe in a Markdown table cell: no markup, no HTML, no line breaks.
pub(crate) fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '!' => {
                out.push('\\');
                out.push(ch);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
