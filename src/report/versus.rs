//! A suite against its baseline run, as reports keep it: per label and KPI, before and now,
//! the change, the noise interval and the verdict ([`Row`]); the trend of the main KPIs over
//! the history's runs ([`Trend`]). The comparison itself is made in [`crate::compare`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// This suite against its baseline, kept in results.json.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct Versus {
    /// The baseline run: its history file name without `.json`.
    pub baseline: Option<String>,
    /// How much worse a KPI may get (percent; points for the error rate).
    pub threshold: f64,
    pub rows: Vec<Row>,
    /// What could not be compared, and warnings (a different load).
    pub notes: Vec<String>,
    /// The main KPIs over the earlier runs and this one.
    pub trend: Option<Trend>,
    /// The baseline was given but could not be read: the run is an error.
    pub error: Option<String>,
}

/// The main KPIs over the history's runs, oldest first, this run last.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct Trend {
    /// The runs' names; the last is this run.
    pub runs: Vec<String>,
    pub series: Vec<TrendSeries>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct TrendSeries {
    pub label: String,
    pub kpi: Kpi,
    /// One per run (`None` where a run lacks it).
    pub values: Vec<Option<f64>>,
}

/// A KPI compared, and which way is worse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Kpi {
    AvgRt,
    P50,
    P90,
    P99,
    Throughput,
    /// Failed samples, percent of hits (compared in percentage points).
    ErrorRate,
    /// A monitoring series' mean (its row's label is the series, `source/metric`). No way
    /// is worse: a change beyond the threshold and the noise is reported, never a
    /// regression (gate a series with a relative criterion or `diff_percent`).
    Mean,
    /// LLM labels: the 95th percentile of the time to first token (ms).
    TtftP95,
    /// LLM labels: the 95th percentile of the time per output token (ms).
    TpotP95,
    /// LLM labels: output tokens per second, all requests together.
    TokensPerS,
}

impl Kpi {
    pub const ALL: [Kpi; 6] = [
        Kpi::AvgRt,
        Kpi::P50,
        Kpi::P90,
        Kpi::P99,
        Kpi::Throughput,
        Kpi::ErrorRate,
    ];

    /// What LLM labels are compared on besides [`Kpi::ALL`].
    pub const LLM: [Kpi; 3] = [Kpi::TtftP95, Kpi::TpotP95, Kpi::TokensPerS];

    /// Every KPI, the monitored series' mean included.
    pub const EVERY: [Kpi; 10] = [
        Kpi::AvgRt,
        Kpi::P50,
        Kpi::P90,
        Kpi::P99,
        Kpi::Throughput,
        Kpi::ErrorRate,
        Kpi::Mean,
        Kpi::TtftP95,
        Kpi::TpotP95,
        Kpi::TokensPerS,
    ];

    fn index(self) -> usize {
        Self::EVERY.iter().position(|k| *k == self).unwrap_or(0)
    }

    /// The KPI named `name` (`p99`, `error-rate`, `mean`, ...).
    pub fn parse(name: &str) -> Option<Kpi> {
        Self::EVERY.into_iter().find(|k| k.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kpi::AvgRt => "avg-rt",
            Kpi::P50 => "p50",
            Kpi::P90 => "p90",
            Kpi::P99 => "p99",
            Kpi::Throughput => "throughput",
            Kpi::ErrorRate => "error-rate",
            Kpi::Mean => "mean",
            Kpi::TtftP95 => "ttft-p95",
            Kpi::TpotP95 => "tpot-p95",
            Kpi::TokensPerS => "tokens-per-s",
        }
    }

    /// Whether a larger value is worse (latency, errors) or better (throughput).
    pub fn higher_is_worse(self) -> bool {
        !matches!(self, Kpi::Throughput | Kpi::TokensPerS)
    }
}

/// How much worse each KPI may get before it counts as a regression: percent (percentage
/// points for the error rate), one for all KPIs unless overridden per KPI.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Thresholds {
    pub default: f64,
    /// Per KPI, in the order of [`Kpi::EVERY`].
    pub overrides: [Option<f64>; 10],
}

impl Thresholds {
    /// The same threshold for every KPI.
    pub fn uniform(default: f64) -> Self {
        Self {
            default,
            overrides: [None; 10],
        }
    }

    /// With `kpi`'s own threshold.
    pub fn with(mut self, kpi: Kpi, threshold: f64) -> Self {
        self.overrides[kpi.index()] = Some(threshold);
        self
    }

    pub fn of(&self, kpi: Kpi) -> f64 {
        self.overrides[kpi.index()].unwrap_or(self.default)
    }
}

impl std::fmt::Display for Thresholds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}%", self.default)?;
        let own: Vec<String> = Kpi::EVERY
            .iter()
            .filter_map(|k| self.overrides[k.index()].map(|t| format!("{} {t}%", k.name())))
            .collect();
        if !own.is_empty() {
            write!(f, " ({})", own.join(", "))?;
        }
        Ok(())
    }
}

/// What a comparison concludes about one KPI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Within the threshold.
    Ok,
    /// Worse beyond the threshold, but within the run-to-run noise.
    Noise,
    /// Worse beyond the threshold and beyond the noise.
    Regression,
    /// Better beyond the threshold and beyond the noise.
    Improvement,
    /// A monitoring series moved beyond the threshold and the noise (no way is worse).
    Changed,
    /// No value in one of the runs.
    NoData,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Noise => "within noise",
            Verdict::Regression => "REGRESSION",
            Verdict::Improvement => "improved",
            Verdict::Changed => "changed",
            Verdict::NoData => "no data",
        }
    }
}

/// One KPI of one label, before and now.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Row {
    pub suite: String,
    pub label: String,
    pub kpi: Kpi,
    pub old: Option<f64>,
    pub new: Option<f64>,
    /// Relative change in percent (percentage points for the error rate).
    pub change: Option<f64>,
    /// 95% interval of the ratio new/old of the per-second medians, when both runs have
    /// enough seconds.
    pub interval: Option<(f64, f64)>,
    /// How much the KPI moves from run to run in the history (percent, or points for the
    /// error rate), when there were enough earlier runs: a change must exceed it too.
    pub between_runs: Option<f64>,
    /// A lasting shift across the history that makes this a regression (see
    /// `crate::compare::RECENT_SHIFT_RUNS`).
    pub shift: Option<ShiftNote>,
    pub verdict: Verdict,
}

/// A change point found across the history and tonight: where a lasting shift began.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ShiftNote {
    /// The run it began in (tonight's is `tonight`).
    pub run: String,
    /// Tonight against the runs before the shift: percent (points for the error rate).
    pub change: f64,
    /// 1 − the permutation test's p-value.
    pub confidence: f64,
}

impl Kpi {
    /// A value of this KPI as tables show it: `12.34ms`, `115.8/s`, `0.25%`.
    pub fn format(self, v: Option<f64>) -> String {
        value(self, v)
    }
}

fn value(kpi: Kpi, v: Option<f64>) -> String {
    match (kpi, v) {
        (_, None) => "-".to_owned(),
        (Kpi::Mean, Some(v)) => crate::criteria::eval::format_value(None, v),
        (Kpi::Throughput, Some(v)) => format!("{v:.1}/s"),
        (Kpi::TokensPerS, Some(v)) => format!("{v:.1} tokens/s"),
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

impl Row {
    /// The row as table cells, in the order of [`HEADER`].
    pub fn cells(&self) -> [String; 8] {
        let r = self;
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
            match &r.shift {
                Some(s) => format!(
                    "{} (a shift since {}: {:+.1}%, confidence {:.1}%)",
                    r.verdict.name(),
                    s.run,
                    s.change,
                    s.confidence * 100.0
                ),
                None => r.verdict.name().to_owned(),
            },
        ]
    }
}

/// The columns of a comparison table.
pub const HEADER: [&str; 8] = [
    "suite",
    "label",
    "kpi",
    "baseline",
    "now",
    "change",
    "95% interval",
    "verdict",
];

/// The rows as a Markdown table, then the notes; every cell escaped (labels and notes are
/// untrusted text), regressions marked.
pub fn markdown_table(rows: &[Row], notes: &[String], out: &mut String) {
    use super::summary::cell;
    use std::fmt::Write as _;
    if !rows.is_empty() {
        let _ = writeln!(out, "| {} |", HEADER.join(" | "));
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---|");
        for r in rows {
            let mut cells = r.cells().map(|s| cell(&s));
            if r.verdict == Verdict::Regression {
                cells[7] = format!("❌ {}", cells[7]);
            }
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
    }
    for note in notes {
        let _ = writeln!(out, "\n> {}", cell(note));
    }
}
