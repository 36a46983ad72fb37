//! Relative criteria (`p95 of infer>baseline+10%`): the baseline run's value of a criterion's
//! KPI, its per-second values for the noise rule, and the threshold they make. Resolved once
//! when a suite starts, from [`SuiteReport`]s read from results.json files; the judge then
//! sees an ordinary threshold (see [`crate::criteria::eval::Baseline`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hdrhistogram::serialization::Deserializer;

use crate::criteria::eval::{Baseline, BaselineValue};
use crate::criteria::grammar::{Kpi, Subject};
use crate::metrics::{Agg, Unit, code_matches};
use crate::report::model::{LabelStats, SuiteReport, TimelineRow};
use crate::stats::median_spread;
use crate::suite::model::{Check, Criterion};

use super::history::{self, Same};
use super::{CompareError, HISTORY_RUNS, MIN_HISTORY};

/// Where a run's baselines come from.
#[derive(Clone, Debug)]
pub struct Source<'a> {
    /// A results.json or a history directory.
    pub path: &'a Path,
    /// A git revision (commit prefix) whose run is the baseline.
    pub rev: Option<&'a str>,
    /// Runs that started at or after this (RFC 3339) are not baselines: this run's own.
    pub before: &'a str,
}

/// The earlier runs of a suite found for its relative criteria and comparisons.
#[derive(Clone, Debug, Default)]
pub struct Found {
    /// The latest first; the first is the baseline.
    pub runs: Vec<(PathBuf, SuiteReport)>,
    /// Why there is no baseline.
    pub missing: Option<String>,
    /// Said on the console: the load changed since the baseline.
    pub warning: Option<String>,
    /// The baseline was given but could not be read: what needs it fails.
    pub unreadable: bool,
    /// Where the baselines were looked for; `None` when none was given.
    pub source: Option<PathBuf>,
    /// Damaged files of the history that were skipped, and why.
    pub skipped: Vec<String>,
}

impl Found {
    /// The baseline run's name (its file name without `.json`) and suite.
    pub fn baseline(&self) -> Option<(String, &SuiteReport)> {
        self.runs.first().map(|(p, s)| (history::run_name(p), s))
    }
}

/// Finds the earlier runs of suite `same` in `source`: up to a history's
/// [`history::DEFAULT_KEEP`], the latest first (the spread between runs reads the last
/// [`HISTORY_RUNS`], the change points all of them).
pub fn find(
    same: Same<'_>,
    load_hash: &str,
    source: Option<Source<'_>>,
) -> Result<Found, CompareError> {
    let earlier = match &source {
        Some(s) if s.path.exists() => {
            history::earlier(s.path, same, s.before, s.rev, history::DEFAULT_KEEP)?
        }
        _ => history::Earlier::default(),
    };
    // Only the baseline is read whole; the older runs come without their timelines.
    let runs = earlier.runs;
    let missing = match (&source, runs.is_empty()) {
        (None, _) => {
            Some("none was given (`--baseline`, `--history` or `settings.baseline`)".to_owned())
        }
        (Some(s), true) if !s.path.exists() => {
            Some(format!("`{}` does not exist yet", s.path.display()))
        }
        (Some(s), true) => Some(match s.rev {
            Some(rev) => format!(
                "no run of revision `{rev}` in `{}` has suite `{}`",
                s.path.display(),
                same.name
            ),
            None => format!(
                "no earlier run in `{}` has suite `{}`",
                s.path.display(),
                same.name
            ),
        }),
        _ => None,
    };
    let mut warnings: Vec<String> = earlier
        .skipped
        .iter()
        .map(|why| format!("skipped in the history: {why}"))
        .collect();
    if runs
        .first()
        .is_some_and(|(_, b)| b.identity.load_hash != load_hash)
    {
        warnings.push(format!(
            "suite `{}`: its load changed since the baseline (executions or scenarios differ): relative criteria compare different loads",
            same.name
        ));
    }
    let warning = (!warnings.is_empty()).then(|| warnings.join("\nwarning: "));
    Ok(Found {
        runs,
        missing,
        warning,
        unreadable: false,
        source: source.map(|s| s.path.to_owned()),
        skipped: earlier.skipped,
    })
}

/// Gives each relative criterion its baseline from `runs` (the latest first), or
/// `missing` as the reason it has none.
pub fn apply(
    criteria: &mut [Criterion],
    runs: &[(PathBuf, SuiteReport)],
    missing: Option<&str>,
    fail_without_baseline: bool,
) {
    let suites: Vec<&SuiteReport> = runs.iter().map(|(_, s)| s).collect();
    for c in criteria.iter_mut() {
        let Some(relative) = c.relative.as_mut() else {
            continue;
        };
        relative
            .fail_without_baseline
            .get_or_insert(fail_without_baseline);
        let Check::Threshold {
            subject,
            label,
            threshold,
            ..
        } = &mut c.check
        else {
            continue;
        };
        let baseline = match (missing, runs.first()) {
            (None, Some((path, _))) => match found(subject, label, path, &suites) {
                Baseline::Found(mut b) => {
                    b.threshold = relative.threshold(subject, b.value, b.spread);
                    *threshold = subject.threshold_of(b.threshold);
                    Baseline::Found(b)
                }
                missing => missing,
            },
            (Some(why), _) => Baseline::Missing(why.to_owned()),
            (None, None) => Baseline::Missing("no earlier run".to_owned()),
        };
        c.baseline = Some(Arc::new(baseline));
    }
}

/// The baseline of one relative criterion: the latest run's value, its threshold, and
/// with a history the spread between runs.
fn found(subject: &Subject, label: &str, path: &Path, suites: &[&SuiteReport]) -> Baseline {
    let Some(c) = suites.first() else {
        return Baseline::Missing("no earlier run".to_owned());
    };
    let Some(value) = whole(subject, label, c) else {
        let of = if label.is_empty() {
            String::new()
        } else {
            format!(" of `{label}`")
        };
        return Baseline::Missing(format!("the baseline run has no `{subject}`{of}"));
    };
    let history: Vec<f64> = suites
        .iter()
        .take(HISTORY_RUNS)
        .filter_map(|s| whole(subject, label, s))
        .collect();
    let spread = (history.len() >= MIN_HISTORY).then(|| {
        let (centre, spread) = median_spread(&history);
        if subject.is_rate() {
            3.0 * spread
        } else if centre.abs() > 0.0 {
            3.0 * spread / centre.abs() * 100.0
        } else {
            0.0
        }
    });
    Baseline::Found(BaselineValue {
        run: history::run_name(path),
        value,
        threshold: value,
        seconds: per_second(subject, label, c),
        spread,
    })
}

/// A suite's whole-run value of a KPI, in the unit the judge observes it in: seconds for
/// times, percent of samples for the rates, bytes, a number; a monitoring series' mean.
pub fn whole(subject: &Subject, label: &str, suite: &SuiteReport) -> Option<f64> {
    if let Subject::Monitoring { source, metric } = subject {
        let name = format!("{source}/{metric}");
        return suite
            .monitoring
            .iter()
            .find(|s| s.subject == name)
            .map(|s| s.mean);
    }
    if let Subject::Capacity { figure } = subject {
        return suite.capacity.as_ref()?.figure(*figure);
    }
    let l = suite.labels.iter().find(|l| l.label == label)?;
    let share = |n: u64, of: u64| (of > 0).then(|| n as f64 * 100.0 / of as f64);
    let secs = |ms: Option<f64>| ms.map(|ms| ms / 1e3);
    match subject {
        Subject::Kpi { kpi } => match kpi {
            Kpi::Hits => Some(l.hits as f64),
            Kpi::Succ => share(l.succ, l.hits),
            Kpi::Fail => share(l.fail, l.hits),
            Kpi::Dropped => share(l.dropped, l.hits + l.dropped),
            Kpi::Unfinished => share(l.unfinished, l.hits),
            Kpi::Bytes => (l.hits > 0).then_some(l.bytes as f64),
            Kpi::AvgRt => secs(l.avg_rt_ms),
            Kpi::AvgLt => secs(l.avg_lt_ms),
            Kpi::AvgCt => secs(l.avg_ct_ms),
            Kpi::StdevRt => secs(l.stdev_rt_ms),
            Kpi::Concurrency => Some(l.concurrency as f64),
            Kpi::Throughput => l.throughput,
            Kpi::Goodput => l.llm.as_ref().and_then(|m| m.goodput),
            Kpi::Truncated => l.llm.as_ref().and_then(|m| m.truncated),
        },
        Subject::Percentile { level } => percentile(l, *level),
        Subject::Measure { agg, metric } => measure(l, *agg, metric),
        Subject::ResponseCode { pattern } => share(matching(&l.rc, pattern), l.hits),
        Subject::Monitoring { .. }
        | Subject::HistogramQuantile { .. }
        | Subject::Capacity { .. } => None,
    }
}

/// An aggregate of a label's named distribution over the whole run, in its unit's base
/// (seconds for times): percentiles from its histogram when kept.
fn measure(l: &LabelStats, agg: Agg, metric: &str) -> Option<f64> {
    if metric == "rt" {
        let secs = |ms: Option<f64>| ms.map(|ms| ms / 1e3);
        return match agg {
            Agg::Avg => secs(l.avg_rt_ms),
            Agg::Stdev => secs(l.stdev_rt_ms),
            Agg::Percentile(level) => percentile(l, level),
            Agg::Min => decoded(l.histogram.as_deref(), |h| h.min() as f64 / 1e6),
            Agg::Max => decoded(l.histogram.as_deref(), |h| h.max() as f64 / 1e6),
        };
    }
    let d = l.distributions.get(metric)?;
    let unit = Unit::of(metric);
    // Reports keep times in milliseconds.
    let base = |v: f64| if unit == Unit::Seconds { v / 1e3 } else { v };
    match agg {
        Agg::Avg => Some(base(d.mean)),
        Agg::Min => Some(base(d.min)),
        Agg::Max => Some(base(d.max)),
        Agg::Stdev => Some(base(d.stdev)),
        Agg::Percentile(level) => decoded(d.histogram.as_deref(), |h| {
            h.value_at_quantile(level / 100.0) as f64 / unit.scale()
        })
        .or_else(|| d.percentile(level).map(base)),
    }
}

/// `read` of a base64 HdrHistogram; `None` when absent, unreadable or empty.
fn decoded(text: Option<&str>, read: impl Fn(&hdrhistogram::Histogram<u64>) -> f64) -> Option<f64> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text?)
        .ok()?;
    let h: hdrhistogram::Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .ok()?;
    (!h.is_empty()).then(|| read(&h))
}

/// Samples whose response code matches `pattern` (`5??`, `Exception`).
fn matching(codes: &std::collections::BTreeMap<String, u64>, pattern: &str) -> u64 {
    codes
        .iter()
        .filter(|(code, _)| code_matches(pattern, code))
        .map(|(_, n)| n)
        .sum()
}

/// Any percentile of a label, in seconds: from its whole-run histogram, else from the
/// levels every report lists.
fn percentile(l: &LabelStats, level: f64) -> Option<f64> {
    let decoded = decoded(l.histogram.as_deref(), |h| {
        h.value_at_quantile(level / 100.0) as f64 / 1e6
    });
    decoded.or_else(|| {
        l.percentiles_ms
            .iter()
            .find(|(k, _)| k.parse::<f64>().is_ok_and(|k| (k - level).abs() < 1e-9))
            .map(|(_, ms)| ms / 1e3)
    })
}

/// A suite's per-second values of a KPI (single-second timeline rows, or a monitoring
/// series' readings), in the judge's unit; empty when the timeline does not keep it.
pub fn per_second(subject: &Subject, label: &str, suite: &SuiteReport) -> Vec<f64> {
    if let Subject::Monitoring { source, metric } = subject {
        let name = format!("{source}/{metric}");
        return suite
            .monitoring
            .iter()
            .find(|s| s.subject == name)
            .map(|s| s.points.iter().map(|p| p.1).collect())
            .unwrap_or_default();
    }
    let rows = suite
        .timeline
        .iter()
        .filter(|r| r.label == label && r.seconds <= 1);
    let value = |r: &TimelineRow| -> Option<f64> {
        let share = |n: u64, of: u64| (of > 0).then(|| n as f64 * 100.0 / of as f64);
        match subject {
            Subject::Kpi { kpi } => match kpi {
                Kpi::Hits => Some(r.hits as f64),
                Kpi::Succ => share(
                    r.hits.saturating_sub(r.fail).saturating_sub(r.unfinished),
                    r.hits,
                ),
                Kpi::Fail => share(r.fail, r.hits),
                Kpi::Dropped => share(r.dropped, r.hits + r.dropped),
                Kpi::Unfinished => share(r.unfinished, r.hits),
                Kpi::Bytes => (r.hits > 0).then_some(r.bytes as f64),
                Kpi::AvgRt => r.avg_rt_ms.map(|ms| ms / 1e3),
                Kpi::Concurrency => Some(r.concurrency as f64),
                Kpi::Throughput => Some(r.served as f64),
                Kpi::AvgLt | Kpi::AvgCt | Kpi::StdevRt | Kpi::Goodput | Kpi::Truncated => None,
            },
            Subject::Measure { agg, metric } if metric == "rt" => {
                let (p50, p95, p99) = (r.p50_ms, r.p95_ms, r.p99_ms);
                let ms = match agg {
                    Agg::Avg => r.avg_rt_ms,
                    Agg::Percentile(l) if (l - 50.0).abs() < 1e-9 => p50,
                    Agg::Percentile(l) if (l - 95.0).abs() < 1e-9 => p95,
                    Agg::Percentile(l) if (l - 99.0).abs() < 1e-9 => p99,
                    _ => None,
                };
                ms.map(|ms| ms / 1e3)
            }
            Subject::Measure { agg, metric } => {
                let m = r.measures.get(metric)?;
                let base = |v: f64| {
                    if Unit::of(metric) == Unit::Seconds {
                        v / 1e3
                    } else {
                        v
                    }
                };
                match agg {
                    Agg::Avg => Some(base(m.mean)),
                    Agg::Percentile(l) if (l - 50.0).abs() < 1e-9 => Some(base(m.p50)),
                    Agg::Percentile(l) if (l - 95.0).abs() < 1e-9 => Some(base(m.p95)),
                    Agg::Percentile(l) if (l - 99.0).abs() < 1e-9 => Some(base(m.p99)),
                    _ => None,
                }
            }
            Subject::Percentile { level } => {
                let kept = [
                    (50.0, r.p50_ms),
                    (90.0, r.p90_ms),
                    (95.0, r.p95_ms),
                    (99.0, r.p99_ms),
                ];
                let ms = kept
                    .iter()
                    .find(|(l, _)| (l - level).abs() < 1e-9)
                    .and_then(|(_, ms)| *ms);
                ms.map(|ms| ms / 1e3)
            }
            Subject::ResponseCode { pattern } => share(matching(&r.rc, pattern), r.hits),
            Subject::Monitoring { .. }
            | Subject::HistogramQuantile { .. }
            | Subject::Capacity { .. } => None,
        }
    };
    rows.filter_map(value).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::criteria::eval::tests::{add, crit};
    use crate::criteria::eval::{Judge, Judged, Verdict};
    use crate::metrics::Store;
    use crate::report::model;

    /// A store where label `a` takes `ms[i]` in second `i` (20 samples a second, a few ms
    /// of spread), and `fail` failed samples more each second.
    fn store(ms: &[u64], fail: u64) -> Store {
        let mut s = Store::default();
        for (t, &m) in ms.iter().enumerate() {
            let t = t as u64;
            for k in 0..4 {
                add(&mut s, t, "a", m + k, 5, true);
            }
            add(&mut s, t, "a", m, fail, false);
            s.record_metric(t, "srv/rss", 100.0 + m as f64);
        }
        s.set_end(std::time::Duration::from_secs(ms.len() as u64));
        s
    }

    /// Plain requests only.
    pub(crate) fn store_of_plain() -> Store {
        store(&flat(10, 10), 0)
    }

    pub(crate) fn flat(ms: u64, seconds: usize) -> Vec<u64> {
        (0..seconds).map(|i| ms + (i as u64 * 7) % 3).collect()
    }

    pub(crate) fn suite_of(s: &Store, name: &str) -> (PathBuf, SuiteReport) {
        let mut r = SuiteReport::invalid("s".into(), "s.yaml".into(), String::new(), String::new());
        (r.labels, r.timeline) = model::stats(s);
        r.monitoring = model::series(s);
        (PathBuf::from(format!("{name}.json")), r)
    }

    /// Judges `text` on `now` against `runs` (the latest first).
    fn judge(text: &str, runs: &[(PathBuf, SuiteReport)], now: &Store, fail: bool) -> Judged {
        let mut criteria = vec![crit(text)];
        let missing = runs.is_empty().then_some("the first night");
        apply(&mut criteria, runs, missing, fail);
        let mut j = Judge::new(&criteria, |_| None);
        j.finish(now, now.seconds()).remove(0)
    }

    #[test]
    fn each_relative_form_against_a_baseline() {
        let base = [suite_of(&store(&flat(10, 20), 0), "night1")];
        let slower = store(&flat(13, 20), 0);
        let same = store(&flat(10, 20), 0);
        for (text, now, expected) in [
            ("avg-rt of a>baseline+10%", &slower, Verdict::Failed),
            ("avg-rt of a>baseline+10%", &same, Verdict::Passed),
            ("avg-rt of a>baseline+50%", &slower, Verdict::Passed),
            ("avg-rt of a>baseline*1.2", &slower, Verdict::Failed),
            ("avg-rt of a>baseline*1.5", &slower, Verdict::Passed),
            ("p95 of a>baseline+10%", &slower, Verdict::Failed),
            ("p95 of a>baseline+2ms", &slower, Verdict::Failed),
            ("p95 of a>baseline+5ms", &slower, Verdict::Passed),
            ("avg-rt of a>baseline+10% for 5s", &slower, Verdict::Failed),
            ("avg-rt of a>baseline+10% within 5s", &same, Verdict::Passed),
            ("srv/rss>baseline+2%", &slower, Verdict::Failed),
            ("srv/rss>baseline+5%", &slower, Verdict::Passed),
            // Throughput: lower is worse; the same load serves the same.
            ("throughput of a<baseline-5%", &same, Verdict::Passed),
        ] {
            let j = judge(text, &base, now, false);
            assert_eq!(j.verdict, expected, "{text}: {j:?}");
        }
    }

    /// A store where LLM label `a` has a TTFT of `ms[i]` (and 20 ms spread) in second `i`,
    /// and `rate` tokens per second per request.
    pub(crate) fn llm_store(ms: &[u64], rate: f64) -> Store {
        use crate::metrics::{Extra, Measure, Outcome, Sample};
        let mut s = Store::default();
        for (t, &m) in ms.iter().enumerate() {
            let t = t as u64;
            for k in 0..20 {
                let ttft = (m + k) as f64 / 1e3;
                s.record(&Sample {
                    label: "a".into(),
                    second: t,
                    rt: std::time::Duration::from_millis(m * 4),
                    lt: std::time::Duration::from_millis(1),
                    ct: None,
                    bytes: 10,
                    outcome: Outcome::Response {
                        status: 200,
                        success: true,
                        message: None,
                    },
                    concurrency: 1,
                    completed: t,
                    extra: Some(Box::new(Extra {
                        measures: vec![
                            Measure::new("ttft", ttft),
                            Measure::new("tokens-per-s", rate + (k % 3) as f64),
                        ],
                        ..Extra::default()
                    })),
                });
            }
        }
        s.set_end(std::time::Duration::from_secs(ms.len() as u64));
        s
    }

    /// Relative thresholds on named distributions: the baseline's value comes from its
    /// results (histogram), the noise rule from its timeline's per-second measures.
    #[test]
    fn measurements_against_a_baseline() {
        let base = [suite_of(&llm_store(&flat(100, 20), 30.0), "night1")];
        let slower = llm_store(&flat(130, 20), 30.0);
        let same = llm_store(&flat(100, 20), 30.0);
        let fewer = llm_store(&flat(100, 20), 20.0);
        for (text, now, expected) in [
            ("p95-ttft of a>baseline+10%", &slower, Verdict::Failed),
            ("p95-ttft of a>baseline+10%", &same, Verdict::Passed),
            ("avg-ttft of a>baseline+20ms", &slower, Verdict::Failed),
            ("avg-ttft of a>baseline+50ms", &slower, Verdict::Passed),
            (
                "avg-tokens-per-s of a<baseline-10%",
                &fewer,
                Verdict::Failed,
            ),
            ("avg-tokens-per-s of a<baseline-10%", &same, Verdict::Passed),
        ] {
            let j = judge(text, &base, now, false);
            assert_eq!(j.verdict, expected, "{text}: {j:?}");
        }
        // The baseline's value is the whole run's, from its histogram.
        let subject = crate::criteria::grammar::parse_subject("p95-ttft").unwrap();
        let p95 = whole(&subject, "a", &base[0].1).unwrap();
        assert!((p95 - 0.119).abs() < 0.001, "{p95}");
    }

    /// For rates, `+N%` is percentage points: 10% failures against 0% is over `+5%`, not
    /// over `+15%` (it would be over any relative percentage of 0).
    #[test]
    fn rates_compare_in_percentage_points() {
        let base = [suite_of(&store(&flat(10, 20), 0), "night1")];
        let failing = store(&flat(10, 20), 2);
        assert_eq!(
            judge("fail>baseline+5%", &base, &failing, false).verdict,
            Verdict::Failed
        );
        assert_eq!(
            judge("fail>baseline+15%", &base, &failing, false).verdict,
            Verdict::Passed
        );
        assert_eq!(
            judge("succ<baseline-5%", &base, &failing, false).verdict,
            Verdict::Failed
        );
    }

    /// A change beyond the threshold but inside what the two runs' seconds vary by is not a
    /// failure: the interval of the ratio straddles 1.
    #[test]
    fn a_change_within_the_noise_passes_and_says_so() {
        let noisy = |centre: u64, phase: usize| -> Vec<u64> {
            (0..20)
                .map(|i| centre + ((i + phase) as u64 * 7 % 11) * 3)
                .collect()
        };
        let base = [suite_of(&store(&noisy(10, 0), 0), "night1")];
        let now = store(&noisy(12, 5), 0);
        let j = judge("avg-rt of a>baseline+5%", &base, &now, false);
        assert_eq!(j.verdict, Verdict::Passed, "{j:?}");
        let (lo, hi) = j.interval.unwrap();
        assert!(lo < 1.0 && hi > 1.0, "{lo}..{hi}");
        assert!(j.note.unwrap().contains("within the run-to-run noise"));
    }

    /// With a history, a threshold tighter than the KPI's night-to-night spread is moved out
    /// to it.
    #[test]
    fn the_history_spread_widens_a_tight_threshold() {
        let nights: Vec<(PathBuf, SuiteReport)> = [10, 13, 11, 14, 10]
            .iter()
            .enumerate()
            .map(|(i, &ms)| suite_of(&store(&flat(ms, 20), 0), &format!("night{i}")))
            .collect();
        let now = store(&flat(12, 20), 0);
        // Against the last night alone (10 ms), 12 ms is over +10%.
        assert_eq!(
            judge("avg-rt of a>baseline+10%", &nights[..1], &now, false).verdict,
            Verdict::Failed
        );
        // The history swings by ~30% from night to night: not a regression.
        let j = judge("avg-rt of a>baseline+10%", &nights, &now, false);
        assert_eq!(j.verdict, Verdict::Passed, "{j:?}");
    }

    #[test]
    fn without_a_baseline_a_notice_or_a_failure() {
        let now = store(&flat(10, 20), 0);
        let j = judge("avg-rt of a>baseline+10%", &[], &now, false);
        assert_eq!(j.verdict, Verdict::Notice);
        assert!(j.note.unwrap().contains("no baseline: the first night"));
        let j = judge("avg-rt of a>baseline+10%", &[], &now, true);
        assert_eq!(j.verdict, Verdict::Failed);
        // A baseline without the label is no baseline for that criterion.
        let base = [suite_of(&store(&flat(10, 20), 0), "night1")];
        let j = judge("avg-rt of b>baseline+10%", &base, &now, false);
        assert_eq!(j.verdict, Verdict::Notice, "{j:?}");
    }
}
