//! Comparing a run with an earlier one: per suite and label, each KPI before and now, its
//! change, and whether the change is a regression beyond the run-to-run noise.
//!
//! The rule: a KPI regresses when its whole-run value got worse by more than the threshold
//! (10% by default) *and* the change is beyond the noise: the 95% bootstrap confidence
//! interval of the ratio of the two runs' medians of the per-second values (2000 resamples,
//! seeded, so the same inputs give the same verdict) lies entirely on the worse side of 1.
//! With fewer than [`MIN_SECONDS`] per-second values in either run there is no noise estimate
//! and the threshold alone decides. Nothing here reads a clock or the network.

pub mod diff;
pub mod history;
pub mod relative;
pub mod render;
pub mod trend;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::report::model::{COMPARABLE_SINCE, FORMAT_VERSION, LabelStats, RunReport, SuiteReport};
pub use crate::report::versus::{
    Kpi, Row, ShiftNote, Thresholds, Trend, TrendSeries, Verdict, Versus,
};
use crate::stats::{median, ratio_interval};

pub use crate::stats::MIN_SECONDS;

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a perfgate results.json: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "{} is results format {found}; comparisons need format {COMPARABLE_SINCE} to {FORMAT_VERSION} (run the suite again with this perfgate to get one)",
        path.display()
    )]
    Version { path: PathBuf, found: u32 },
}

/// Reads a results.json that a comparison can use.
pub fn load(path: &Path) -> Result<RunReport, CompareError> {
    let text = std::fs::read_to_string(path).map_err(|source| CompareError::Read {
        path: path.to_owned(),
        source,
    })?;
    // The version first: an older file may not parse as today's report.
    let version = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("format_version")?.as_u64())
        .and_then(|v| u32::try_from(v).ok());
    if let Some(found) = version
        && !(COMPARABLE_SINCE..=FORMAT_VERSION).contains(&found)
    {
        return Err(CompareError::Version {
            path: path.to_owned(),
            found,
        });
    }
    serde_json::from_str(&text).map_err(|source| CompareError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// Reads a results.json as [`load`] does, but without what only the run itself needs: the
/// timelines, the monitoring series' readings, the criteria and the suite's YAML. A history
/// of 30 large runs is read in the memory of a few.
pub fn load_light(path: &Path) -> Result<RunReport, CompareError> {
    #[derive(serde::Deserialize)]
    struct Run {
        format_version: u32,
        tool: String,
        started_at: String,
        duration_s: f64,
        status: crate::report::model::RunStatus,
        #[serde(default)]
        meta: crate::report::model::RunMeta,
        suites: Vec<Suite>,
    }
    #[derive(serde::Deserialize)]
    struct Suite {
        name: String,
        path: String,
        status: crate::report::model::SuiteStatus,
        started_at: String,
        labels: Vec<LabelStats>,
        #[serde(default)]
        monitoring: Vec<Series>,
        #[serde(default)]
        identity: crate::report::model::SuiteIdentity,
    }
    #[derive(serde::Deserialize)]
    struct Series {
        subject: String,
        min: f64,
        max: f64,
        mean: f64,
        last: f64,
    }
    let file = std::fs::File::open(path).map_err(|source| CompareError::Read {
        path: path.to_owned(),
        source,
    })?;
    let parsed: Result<Run, _> = serde_json::from_reader(std::io::BufReader::new(file));
    let run = match parsed {
        Ok(run) if (COMPARABLE_SINCE..=FORMAT_VERSION).contains(&run.format_version) => run,
        // Another version, or a file that is not what this perfgate writes: the full
        // reading says which.
        _ => return load(path),
    };
    Ok(RunReport {
        format_version: run.format_version,
        tool: run.tool,
        started_at: run.started_at,
        duration_s: run.duration_s,
        status: run.status,
        meta: run.meta,
        suites: run
            .suites
            .into_iter()
            .map(|s| {
                let mut r = SuiteReport::invalid(s.name, s.path, String::new(), String::new());
                r.error = None;
                r.status = s.status;
                r.started_at = s.started_at;
                r.labels = s.labels;
                r.identity = s.identity;
                r.monitoring = s
                    .monitoring
                    .into_iter()
                    .map(|m| crate::report::model::SeriesReport {
                        subject: m.subject,
                        min: m.min,
                        max: m.max,
                        mean: m.mean,
                        last: m.last,
                        points: Vec::new(),
                    })
                    .collect();
                r
            })
            .collect(),
    })
}

impl Kpi {
    /// The whole-run value: milliseconds, requests per second, or percent.
    pub fn whole(self, l: &LabelStats) -> Option<f64> {
        match self {
            Kpi::AvgRt => l.avg_rt_ms,
            Kpi::P50 => l.percentiles_ms.get("50.0").copied(),
            Kpi::P90 => l.percentiles_ms.get("90.0").copied(),
            Kpi::P99 => l.percentiles_ms.get("99.0").copied(),
            Kpi::Throughput => l.throughput,
            Kpi::ErrorRate => (l.hits > 0).then(|| 100.0 * l.fail as f64 / l.hits as f64),
            Kpi::Mean => None,
            Kpi::TtftP95 => l.distributions.get("ttft")?.percentile(95.0),
            Kpi::TpotP95 => l.distributions.get("tpot")?.percentile(95.0),
            Kpi::TokensPerS => l.llm.as_ref()?.output_tokens_per_s,
        }
    }

    /// The label's per-second values (single-second timeline rows only).
    fn per_second(self, suite: &SuiteReport, label: &str) -> Vec<f64> {
        suite
            .timeline
            .iter()
            .filter(|r| r.label == label && r.seconds <= 1)
            .filter_map(|r| match self {
                Kpi::AvgRt => r.avg_rt_ms,
                Kpi::P50 => r.p50_ms,
                Kpi::P90 => r.p90_ms,
                Kpi::P99 => r.p99_ms,
                Kpi::Throughput => Some(r.served as f64),
                Kpi::ErrorRate => (r.hits > 0).then(|| 100.0 * r.fail as f64 / r.hits as f64),
                Kpi::Mean => None,
                Kpi::TtftP95 => r.measures.get("ttft").map(|m| m.p95),
                Kpi::TpotP95 => r.measures.get("tpot").map(|m| m.p95),
                Kpi::TokensPerS => r.measures.get("output-tokens").map(|m| m.total),
            })
            .collect()
    }
}

/// A whole comparison.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Comparison {
    pub rows: Vec<Row>,
    /// Suites that could not be compared, and why.
    pub notes: Vec<String>,
}

impl Comparison {
    pub fn regressions(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Regression)
            .count()
    }
}

/// Compares every suite of `new` with the same suite (name and environment) in `old`;
/// `threshold` in percent (percentage points for the error rate).
pub fn compare(old: &RunReport, new: &RunReport, threshold: Thresholds) -> Comparison {
    let baselines: Vec<Vec<(String, SuiteReport)>> = new
        .suites
        .iter()
        .map(|suite| {
            old.suites
                .iter()
                .filter(|s| {
                    s.name == suite.name && s.identity.environment == suite.identity.environment
                })
                .take(1)
                .map(|s| (old.started_at.clone(), s.clone()))
                .collect()
        })
        .collect();
    compare_suites(new, &baselines, threshold)
}

/// Baselines of every suite of `new` from `source` (a results.json or a history directory;
/// see [`history::baseline`]), then the comparison.
pub fn against(
    source: &Path,
    new: &RunReport,
    rev: Option<&str>,
    threshold: Thresholds,
) -> Result<Comparison, CompareError> {
    let mut baselines = Vec::new();
    let mut skipped = Vec::new();
    for suite in &new.suites {
        let same = history::Same {
            name: &suite.name,
            environment: suite.identity.environment.as_deref(),
        };
        let found = history::earlier(source, same, &new.started_at, rev, history::DEFAULT_KEEP)?;
        for why in found.skipped {
            if !skipped.contains(&why) {
                skipped.push(why);
            }
        }
        baselines.push(
            found
                .runs
                .into_iter()
                .map(|(p, s)| (history::run_name(&p), s))
                .collect(),
        );
    }
    let mut comparison = compare_suites(new, &baselines, threshold);
    comparison.notes.extend(
        skipped
            .into_iter()
            .map(|why| format!("skipped in the history: {why}")),
    );
    Ok(comparison)
}

/// Compares each suite of `new` with its earlier runs (`earlier[i]` for `new.suites[i]`, the
/// latest first): the latest is the baseline; with at least [`MIN_HISTORY`] of them, their
/// spread is part of the noise.
pub fn compare_suites(
    new: &RunReport,
    earlier: &[Vec<(String, SuiteReport)>],
    threshold: Thresholds,
) -> Comparison {
    let mut out = Comparison::default();
    for (suite, runs) in new.suites.iter().zip(earlier) {
        compare_suite(suite, runs, threshold, &mut out);
    }
    out
}

/// Compares `suite` with its earlier runs (the latest first) into `out`.
fn compare_suite(
    suite: &SuiteReport,
    runs: &[(String, SuiteReport)],
    threshold: Thresholds,
    out: &mut Comparison,
) {
    let Some((_, before)) = runs.first() else {
        out.notes
            .push(format!("suite `{}`: not in the baseline", suite.name));
        return;
    };
    if before.identity.load_hash != suite.identity.load_hash {
        out.notes.push(format!(
            "suite `{}`: its load changed since the baseline (executions or scenarios differ)",
            suite.name
        ));
    }
    for label in &suite.labels {
        let Some(old_label) = before.labels.iter().find(|l| l.label == label.label) else {
            continue;
        };
        let history: Vec<&LabelStats> = runs
            .iter()
            .take(HISTORY_RUNS)
            .filter_map(|(_, r)| r.labels.iter().find(|l| l.label == label.label))
            .collect();
        // LLM labels are compared on their token KPIs too, when both runs have them.
        let llm = Kpi::LLM
            .into_iter()
            .filter(|k| k.whole(label).is_some() && k.whole(old_label).is_some());
        for kpi in Kpi::ALL.into_iter().chain(llm) {
            let spread = between_runs(kpi, &history);
            let mut row = row(
                suite,
                before,
                label,
                old_label,
                kpi,
                threshold.of(kpi),
                spread,
            );
            shifted(&mut row, runs, label, threshold.of(kpi));
            out.rows.push(row);
        }
    }
    for new in &suite.monitoring {
        if let Some(old) = before.monitoring.iter().find(|s| s.subject == new.subject) {
            out.rows
                .push(series_row(suite, old, new, threshold.of(Kpi::Mean)));
        }
    }
}

/// `suite` against the earlier runs `found` (the latest first): the comparison and the
/// trend of the main KPIs that reports keep.
pub fn versus(suite: &SuiteReport, found: &relative::Found, threshold: Thresholds) -> Versus {
    let runs: Vec<(String, SuiteReport)> = found
        .runs
        .iter()
        .map(|(p, s)| (history::run_name(p), s.clone()))
        .collect();
    let mut comparison = Comparison::default();
    comparison.notes.extend(
        found
            .skipped
            .iter()
            .map(|why| format!("skipped in the history: {why}")),
    );
    if let Some(why) = &found.missing {
        comparison
            .notes
            .push(format!("suite `{}`: no baseline: {why}", suite.name));
    } else {
        compare_suite(suite, &runs, threshold, &mut comparison);
    }
    let runs = &runs;
    let trend = (!found.runs.is_empty()).then(|| {
        let mut names: Vec<String> = found
            .runs
            .iter()
            .rev()
            .map(|(p, _)| history::run_name(p))
            .collect();
        names.push("this run".to_owned());
        let series = suite
            .labels
            .iter()
            .flat_map(|label| {
                Kpi::ALL.into_iter().map(move |kpi| {
                    let mut values: Vec<Option<f64>> = runs
                        .iter()
                        .rev()
                        .map(|(_, s)| kpi.whole(s.labels.iter().find(|l| l.label == label.label)?))
                        .collect();
                    values.push(kpi.whole(label));
                    TrendSeries {
                        label: label.label.clone(),
                        kpi,
                        values,
                    }
                })
            })
            .collect();
        Trend {
            runs: names,
            series,
        }
    });
    Versus {
        baseline: found.baseline().map(|(name, _)| name),
        threshold: threshold.default,
        rows: comparison.rows,
        notes: comparison.notes,
        trend,
        error: found.unreadable.then(|| found.missing.clone()).flatten(),
    }
}

/// A shift for the worse fails the gate while its latest change point is at most this many
/// runs back from tonight (still moving); a shift that has settled for longer is the new
/// level, and shows in `perfgate history`.
pub const RECENT_SHIFT_RUNS: usize = 5;

/// With at least [`trend::MIN_RUNS`] earlier runs: the change points of the KPI across them
/// and tonight. A shift for the worse still moving in the last [`RECENT_SHIFT_RUNS`] runs (a
/// step tonight, or a slow drift: a staircase of small worse changes that no single night
/// shows against the one before) that has taken tonight beyond the threshold against the
/// runs before it began is a regression, attributed to the run where it began.
fn shifted(row: &mut Row, earlier: &[(String, SuiteReport)], label: &LabelStats, threshold: f64) {
    if earlier.len() < trend::MIN_RUNS || row.verdict == Verdict::Regression {
        return;
    }
    let Some(now) = row.kpi.whole(label) else {
        return;
    };
    let mut values: Vec<Option<f64>> = earlier
        .iter()
        .rev()
        .map(|(_, s)| {
            let l = s.labels.iter().find(|l| l.label == label.label)?;
            row.kpi.whole(l)
        })
        .collect();
    values.push(Some(now));
    let points: Vec<trend::RunPoint> = (0..values.len())
        .map(|i| trend::RunPoint {
            run: if i + 1 == values.len() {
                "tonight".to_owned()
            } else {
                earlier[earlier.len() - 1 - i].0.clone()
            },
            started_at: String::new(),
            commit: None,
        })
        .collect();
    let series = trend::Series {
        suite: row.suite.clone(),
        environment: None,
        label: row.label.clone(),
        kpi: row.kpi,
        values,
    };
    // Every change point, however small: a drift is a staircase of small ones.
    let changes = trend::changes(&series, &points, 0.0);
    let Some(last) = changes.last() else { return };
    if !last.worse || last.index + RECENT_SHIFT_RUNS < points.len() {
        return;
    }
    // Where the staircase of worse changes began.
    let began = changes
        .iter()
        .rev()
        .take_while(|c| c.worse)
        .last()
        .unwrap_or(last);
    let change = match row.kpi {
        Kpi::ErrorRate => now - began.before,
        _ if began.before != 0.0 => (now - began.before) / began.before.abs() * 100.0,
        _ => return,
    };
    let worse = if row.kpi.higher_is_worse() {
        change
    } else {
        -change
    };
    if worse > threshold {
        row.verdict = Verdict::Regression;
        row.shift = Some(ShiftNote {
            run: began.run.clone(),
            change,
            confidence: began.confidence,
        });
    }
}

/// Earlier runs a history comparison reads.
pub const HISTORY_RUNS: usize = 10;
/// Earlier runs needed for a between-run spread.
pub const MIN_HISTORY: usize = 3;

/// How much a KPI moves from run to run in a history: 3 robust standard deviations (1.4826 ×
/// the median absolute deviation), in percent of the median (percentage points for the error
/// rate); `None` with fewer than [`MIN_HISTORY`] runs.
fn between_runs(kpi: Kpi, history: &[&LabelStats]) -> Option<f64> {
    let mut values: Vec<f64> = history.iter().filter_map(|l| kpi.whole(l)).collect();
    if values.len() < MIN_HISTORY {
        return None;
    }
    let centre = median(&mut values);
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - centre).abs()).collect();
    let mad = median(&mut deviations) * 1.4826;
    match kpi {
        Kpi::ErrorRate => Some(3.0 * mad),
        _ if centre > 0.0 => Some(3.0 * mad / centre * 100.0),
        _ => None,
    }
}

fn row(
    suite: &SuiteReport,
    before: &SuiteReport,
    label: &LabelStats,
    old_label: &LabelStats,
    kpi: Kpi,
    threshold: f64,
    between_runs: Option<f64>,
) -> Row {
    let (old, new) = (kpi.whole(old_label), kpi.whole(label));
    let seconds = (
        kpi.per_second(before, &label.label),
        kpi.per_second(suite, &label.label),
    );
    let seed = crate::stats::seed_of(&[&suite.name, &label.label, kpi.name()]);
    let (change, interval, verdict) =
        judge(kpi, (old, new), &seconds, seed, threshold, between_runs);
    Row {
        suite: suite.name.clone(),
        label: label.label.clone(),
        kpi,
        old,
        new,
        change,
        interval,
        between_runs,
        shift: None,
        verdict,
    }
}

/// A monitoring series of both runs: its mean, reported when it moved (never a regression).
fn series_row(
    suite: &SuiteReport,
    old: &crate::report::model::SeriesReport,
    new: &crate::report::model::SeriesReport,
    threshold: f64,
) -> Row {
    let values = |s: &crate::report::model::SeriesReport| -> Vec<f64> {
        s.points.iter().map(|p| p.1).collect()
    };
    let seconds = (values(old), values(new));
    let seed = crate::stats::seed_of(&[&suite.name, &new.subject, "mean"]);
    let (change, interval, verdict) = judge(
        Kpi::Mean,
        (Some(old.mean), Some(new.mean)),
        &seconds,
        seed,
        threshold,
        None,
    );
    Row {
        suite: suite.name.clone(),
        label: new.subject.clone(),
        kpi: Kpi::Mean,
        old: Some(old.mean),
        new: Some(new.mean),
        change,
        interval,
        between_runs: None,
        shift: None,
        verdict,
    }
}

/// The change of a KPI, the noise interval of its per-second values (`seconds`: before,
/// now), and the verdict of the rule.
fn judge(
    kpi: Kpi,
    (old, new): (Option<f64>, Option<f64>),
    (a, b): &(Vec<f64>, Vec<f64>),
    seed: u64,
    threshold: f64,
    between_runs: Option<f64>,
) -> (Option<f64>, Option<(f64, f64)>, Verdict) {
    let change = match (old, new) {
        (Some(o), Some(n)) if kpi == Kpi::ErrorRate => Some(n - o),
        (Some(o), Some(n)) if o > 0.0 => Some((n - o) / o * 100.0),
        (Some(o), Some(n)) if o == n => Some(0.0),
        _ => None,
    };
    let interval = (a.len() >= MIN_SECONDS && b.len() >= MIN_SECONDS)
        .then(|| ratio_interval(a, b, seed))
        .flatten();
    let verdict = match change {
        None => Verdict::NoData,
        Some(c) => {
            let worse = if kpi.higher_is_worse() { c } else { -c };
            let beyond_noise = |worse_side: bool| match interval {
                // The whole interval of new/old on one side of 1.
                Some((lo, hi)) => {
                    let higher = lo > 1.0;
                    let lower = hi < 1.0;
                    if worse_side == kpi.higher_is_worse() {
                        higher
                    } else {
                        lower
                    }
                }
                None => true,
            };
            // A change the history shows from night to night is noise too.
            let bar = threshold.max(between_runs.unwrap_or(0.0));
            let verdict = if worse > threshold {
                if worse > bar && beyond_noise(true) {
                    Verdict::Regression
                } else {
                    Verdict::Noise
                }
            } else if -worse > threshold && beyond_noise(false) {
                Verdict::Improvement
            } else {
                Verdict::Ok
            };
            match (kpi, verdict) {
                (Kpi::Mean, Verdict::Regression | Verdict::Improvement) => Verdict::Changed,
                (_, v) => v,
            }
        }
    };
    (change, interval, verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::SeriesReport;

    fn suite(series: &[(&str, Vec<f64>)]) -> SuiteReport {
        let mut s = SuiteReport::invalid("s".into(), "s.yaml".into(), String::new(), String::new());
        s.monitoring = series
            .iter()
            .map(|(name, v)| SeriesReport {
                subject: (*name).to_owned(),
                min: v.iter().copied().fold(f64::INFINITY, f64::min),
                max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                mean: v.iter().sum::<f64>() / v.len() as f64,
                last: v[v.len() - 1],
                points: v.iter().enumerate().map(|(i, x)| (i as u64, *x)).collect(),
            })
            .collect();
        s
    }

    /// Monitored series are compared by their mean: a move beyond the threshold and the
    /// noise is `changed`, never a regression; a steady one is ok.
    #[test]
    fn monitored_series_are_reported_not_gated() {
        let steady: Vec<f64> = (0..20).map(|i| 100.0 + f64::from(i % 3)).collect();
        let grown: Vec<f64> = steady.iter().map(|v| v * 1.5).collect();
        let before = suite(&[("srv/rss", steady.clone()), ("srv/workers", vec![2.0; 20])]);
        let now = suite(&[("srv/rss", grown), ("srv/workers", vec![2.0; 20])]);
        let mut out = Comparison::default();
        compare_suite(
            &now,
            &[("night1".to_owned(), before)],
            Thresholds::uniform(10.0),
            &mut out,
        );
        let verdict = |label: &str| {
            out.rows
                .iter()
                .find(|r| r.label == label && r.kpi == Kpi::Mean)
                .map(|r| r.verdict)
        };
        assert_eq!(verdict("srv/rss"), Some(Verdict::Changed));
        assert_eq!(verdict("srv/workers"), Some(Verdict::Ok));
        assert_eq!(out.regressions(), 0);
    }

    /// LLM labels are compared on TTFT too: a slower first token is a regression; a label
    /// without token streams gets no LLM rows.
    #[test]
    fn llm_labels_are_compared_on_their_tokens() {
        use super::relative::tests::{flat, llm_store, suite_of};
        let (_, before) = suite_of(&llm_store(&flat(100, 20), 30.0), "night1");
        let (_, now) = suite_of(&llm_store(&flat(130, 20), 30.0), "tonight");
        let mut out = Comparison::default();
        compare_suite(
            &now,
            &[("night1".to_owned(), before)],
            Thresholds::uniform(10.0),
            &mut out,
        );
        let row = |kpi: Kpi| out.rows.iter().find(|r| r.label == "a" && r.kpi == kpi);
        assert_eq!(
            row(Kpi::TtftP95).map(|r| r.verdict),
            Some(Verdict::Regression)
        );
        assert!(row(Kpi::TpotP95).is_none(), "no tpot in these samples");
        let (_, plain) = suite_of(&relative::tests::store_of_plain(), "plain");
        let mut out = Comparison::default();
        compare_suite(
            &plain,
            &[("p".to_owned(), plain.clone())],
            Thresholds::uniform(10.0),
            &mut out,
        );
        assert!(out.rows.iter().all(|r| !Kpi::LLM.contains(&r.kpi)));
    }
}
