//! The model-server tables every report shows: token streams per LLM label (TTFT, ITL, TPOT,
//! tokens, tokens/s, goodput, truncation) and where each label's time goes on the server
//! (`server.<component>` and `network`, with their share of the response time). Built once
//! here as rows of text; the console, summary.md and the HTML report lay them out.

use super::model::{DistributionStats, LabelStats, SuiteReport};
use crate::metrics::SERVER_PREFIX;

/// A table: its header and rows, all text.
pub type Table = Vec<Vec<String>>;

fn label_name(l: &LabelStats) -> String {
    if l.label.is_empty() {
        "ALL".to_owned()
    } else {
        l.label.clone()
    }
}

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

fn pct(d: Option<&DistributionStats>, level: f64) -> Option<f64> {
    d?.percentile(level)
}

/// One row per label with LLM requests; `None` without any.
pub fn llm_table(suite: &SuiteReport) -> Option<Table> {
    let labels: Vec<&LabelStats> = suite.labels.iter().filter(|l| l.llm.is_some()).collect();
    // With one LLM label, ALL repeats it.
    let labels: Vec<&LabelStats> = if labels.len() == 2 {
        labels.into_iter().filter(|l| !l.label.is_empty()).collect()
    } else {
        labels
    };
    if labels.is_empty() {
        return None;
    }
    let header = [
        "label",
        "requests",
        "ttft p50",
        "ttft p90",
        "ttft p99",
        "itl p50",
        "itl p99",
        "tpot p50",
        "e2e p50",
        "out tokens",
        "tok/s/req",
        "tok/s",
        "goodput",
        "truncated",
    ];
    let mut rows: Table = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for l in labels {
        let Some(llm) = &l.llm else { continue };
        let d = |name: &str| l.distributions.get(name);
        let ms = |name: &str, level: f64| num(pct(d(name), level), 1);
        let counted = if llm.tokens_counted > 0 {
            " (counted)"
        } else {
            ""
        };
        rows.push(vec![
            label_name(l),
            llm.requests.to_string(),
            ms("ttft", 50.0),
            ms("ttft", 90.0),
            ms("ttft", 99.0),
            ms("itl", 50.0),
            ms("itl", 99.0),
            ms("tpot", 50.0),
            ms("e2e", 50.0),
            format!("{}{counted}", num(d("output-tokens").map(|d| d.mean), 1)),
            num(pct(d("tokens-per-s"), 50.0), 1),
            num(llm.output_tokens_per_s, 1),
            llm.goodput
                .map_or_else(|| "-".to_owned(), |g| format!("{g:.1}%")),
            llm.truncated
                .map_or_else(|| "-".to_owned(), |t| format!("{t:.1}%")),
        ]);
    }
    Some(rows)
}

/// A label's server-side components (and `network`) as the report shows them.
#[derive(Clone, Debug)]
pub struct Breakdown<'a> {
    pub label: String,
    /// (component name, its distribution, its mean's share of the mean response time in
    /// percent), components first, then the server's total, then `network`.
    pub parts: Vec<(String, &'a DistributionStats, Option<f64>)>,
}

impl Breakdown<'_> {
    /// Whether a part is a total the others add up to (not drawn stacked).
    pub fn is_total(name: &str) -> bool {
        matches!(name, "server_processing" | "total")
    }
}

/// Per label with server timings, its components; empty without any.
pub fn breakdowns(suite: &SuiteReport) -> Vec<Breakdown<'_>> {
    let mut out = Vec::new();
    for l in suite.labels.iter().filter(|l| !l.label.is_empty()) {
        let mut parts: Vec<(String, &DistributionStats, Option<f64>)> = l
            .distributions
            .iter()
            .filter_map(|(name, d)| {
                let part = match name.strip_prefix(SERVER_PREFIX) {
                    Some(component) => component.to_owned(),
                    None if name == "network" => name.clone(),
                    None => return None,
                };
                let share = l
                    .avg_rt_ms
                    .filter(|rt| *rt > 0.0)
                    .map(|rt| 100.0 * d.mean / rt);
                Some((part, d, share))
            })
            .collect();
        if parts.is_empty() {
            continue;
        }
        let rank = |name: &str| match name {
            "network" => 2,
            n if Breakdown::is_total(n) => 1,
            _ => 0,
        };
        parts.sort_by_key(|(name, ..)| rank(name));
        out.push(Breakdown {
            label: label_name(l),
            parts,
        });
    }
    out
}

/// Per label whose responses carried server timing headers that could not be read: a
/// sentence saying how many (they are counted, never fatal).
pub fn timing_notes(suite: &SuiteReport) -> Vec<String> {
    suite
        .labels
        .iter()
        .filter(|l| !l.label.is_empty() && l.malformed_timing > 0)
        .map(|l| {
            format!(
                "{}: {} Server-Timing / X-Timing-Info header(s) could not be read (not `name;dur=ms` entries, or not a JSON object of seconds)",
                l.label, l.malformed_timing
            )
        })
        .collect()
}

/// The breakdowns as one table: label, component, mean, p50, p95, p99, max, share.
pub fn breakdown_table(suite: &SuiteReport) -> Option<Table> {
    let breakdowns = breakdowns(suite);
    if breakdowns.is_empty() {
        return None;
    }
    let header = [
        "label",
        "component",
        "mean ms",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "share of rt",
    ];
    let mut rows: Table = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for b in breakdowns {
        for (name, d, share) in &b.parts {
            rows.push(vec![
                b.label.clone(),
                name.clone(),
                format!("{:.2}", d.mean),
                num(d.percentile(50.0), 2),
                num(d.percentile(95.0), 2),
                num(d.percentile(99.0), 2),
                format!("{:.2}", d.max),
                share.map_or_else(|| "-".to_owned(), |s| format!("{s:.1}%")),
            ]);
        }
    }
    Some(rows)
}

/// A table as Markdown (cells escaped: labels are untrusted text).
pub fn markdown(table: &Table) -> String {
    let mut out = String::new();
    for (i, row) in table.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|c| super::summary::cell(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
        if i == 0 {
            out.push_str(&format!("|{}\n", "---|".repeat(row.len())));
        }
    }
    out
}
