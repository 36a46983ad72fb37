//! [`RunReport`]: what a run measured, versioned, with its JSON Schema in `schemas/`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::criteria::eval::Verdict;
use crate::metrics::{Agg, Snapshot, Store, Summary, Unit};

/// 3 added each suite's comparison with its baseline (`versus`), relative criteria's
/// `baseline`, and p95 in the timeline; format 2 files still serve as baselines.
pub const FORMAT_VERSION: u32 = 3;

/// The oldest results a comparison reads: version 2 added the whole-run histograms and the
/// suite's identity a baseline needs.
pub const COMPARABLE_SINCE: u32 = 2;
/// The scope of MMS's `diff_percent` comparisons among a suite's criteria.
pub const COMPARISON_SCOPE: &str = "comparison";
/// Percentile levels every report carries (any level is available to criteria).
pub const PERCENTILES: &[f64] = &[0.0, 50.0, 90.0, 95.0, 99.0, 99.9, 100.0];

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct RunReport {
    pub format_version: u32,
    /// `perfgate <version>`.
    pub tool: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_s: f64,
    pub status: RunStatus,
    /// Where and from what the run ran, to tell runs apart in a history.
    #[serde(default)]
    pub meta: RunMeta,
    pub suites: Vec<SuiteReport>,
}

/// Where and from what a run ran.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct RunMeta {
    /// The git commit of the working directory, when it is a git checkout.
    pub git_commit: Option<String>,
    /// Whether that checkout had uncommitted changes.
    #[serde(default)]
    pub git_dirty: bool,
    pub host: String,
}

/// What makes two runs of a suite comparable: the same suite, environment and load.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SuiteIdentity {
    /// `-e/--env NAME`, when given.
    pub environment: Option<String>,
    /// SHA-256 (hex) of the suite's executions and scenarios as they ran: a different hash
    /// is a different load.
    pub load_hash: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Completed,
    Interrupted,
    Terminated,
    /// A checkpoint written during the run: what was measured until then. If it is the
    /// last word, perfgate was killed (SIGKILL, a crash) before the run ended.
    Incomplete,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SuiteReport {
    pub name: String,
    pub path: String,
    pub status: SuiteStatus,
    /// Why the suite could not run to its end.
    pub error: Option<SuiteError>,
    /// Seeds think times and arrivals; rerun with the same seed for the same schedule.
    pub seed: u64,
    pub started_at: String,
    /// When the load started (second 0 of the timeline and of criteria windows), RFC 3339.
    #[serde(default)]
    pub load_started_at: Option<String>,
    pub duration_s: f64,
    pub executions: Vec<ExecutionReport>,
    /// Per label, `""` (all labels) first.
    pub labels: Vec<LabelStats>,
    /// Per second and label.
    pub timeline: Vec<TimelineRow>,
    /// Monitoring series (`source/metric`), sorted by subject.
    #[serde(default)]
    pub monitoring: Vec<SeriesReport>,
    /// Every criterion of the suite, judged (empty when the load never started).
    #[serde(default)]
    pub criteria: Vec<CriterionReport>,
    /// The name of the `stop` criterion that ended the load early.
    #[serde(default)]
    pub stopped_by: Option<String>,
    /// What the suite's `reporting` asks of the report files.
    #[serde(default)]
    pub outputs: SuiteOutputs,
    /// The suite as it ran (`effective.yml`), with secrets redacted.
    #[serde(default)]
    pub effective_yaml: String,
    #[serde(default)]
    pub identity: SuiteIdentity,
    /// Against its baseline run, when one was asked for (`--baseline`, `--history`,
    /// `settings.baseline`).
    #[serde(default)]
    pub versus: Option<super::versus::Versus>,
    /// A capacity sweep's steps, knee, saturation and recommended operating point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<super::capacity::Capacity>,
}

/// The report files a suite's `reporting` modules ask for.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct SuiteOutputs {
    /// One per `junit-xml` module, in declared order (none declared: `xunit.xml`, pass-fail).
    #[serde(default)]
    pub junit: Vec<JunitOutput>,
    /// `final-stats` `dump-csv`, relative to the suite's directory.
    pub dump_csv: Option<String>,
    /// `final-stats` `dump-xml`, relative to the suite's directory.
    pub dump_xml: Option<String>,
}

/// A `junit-xml` module's file.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct JunitOutput {
    /// Relative to the suite's directory: the module's `filename`, else `xunit.xml`,
    /// `xunit-1.xml`, ... as Taurus names them.
    pub filename: String,
    /// `data-source: sample-labels` (Taurus's default): a testcase per label; else per criterion.
    pub sample_labels: bool,
}

impl SuiteReport {
    /// A suite that never ran because its file is invalid: an error with the diagnostics.
    pub fn invalid(name: String, path: String, message: String, diagnostics: String) -> Self {
        Self {
            name,
            path,
            status: SuiteStatus::Error,
            error: Some(SuiteError {
                message,
                log_tail: Some(diagnostics),
                log: None,
                hint: Some(
                    "fix the file and run again; `perfgate validate` checks it without running"
                        .to_owned(),
                ),
            }),
            seed: 0,
            started_at: String::new(),
            load_started_at: None,
            duration_s: 0.0,
            executions: Vec::new(),
            labels: Vec::new(),
            timeline: Vec::new(),
            monitoring: Vec::new(),
            criteria: Vec::new(),
            stopped_by: None,
            outputs: SuiteOutputs::default(),
            effective_yaml: String::new(),
            identity: SuiteIdentity::default(),
            versus: None,
            capacity: None,
        }
    }

    /// Whether the suite's gate failed: a criterion failed (or had no data), or a KPI
    /// regressed against the baseline.
    pub fn criteria_failed(&self) -> bool {
        self.criteria.iter().any(|c| c.verdict.fails()) || self.regressions() > 0
    }

    /// KPIs that regressed against the baseline.
    pub fn regressions(&self) -> usize {
        self.versus.as_ref().map_or(0, |v| {
            v.rows
                .iter()
                .filter(|r| r.verdict == super::versus::Verdict::Regression)
                .count()
        })
    }
}

/// A judged criterion.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct CriterionReport {
    /// As Taurus names it (`avg-rt of infer>150ms for 10s`): the JUnit testcase name.
    pub name: String,
    pub message: Option<String>,
    /// `suite`, `execution 2`, `scenario infer`.
    pub scope: String,
    /// What it judges: `avg-rt`, `p99.9`, `rc5??`, a monitoring series `source/metric`, or
    /// `expr`.
    #[serde(default)]
    pub subject: String,
    pub verdict: Verdict,
    /// In the threshold's unit: seconds, percent, bytes or a number (1 or 0 for `expr`).
    /// At the trigger; otherwise the value nearest to triggering; `None` without data.
    pub observed: Option<f64>,
    /// `observed` as people read it: `152ms`, `2.5%`, `no data`.
    pub observed_text: String,
    /// `>`, `<=`, ... or `expr`.
    pub condition: String,
    /// `150ms`, `1%`, or the expression.
    pub threshold: String,
    /// `for 10s`, `within 5s`, `over 30s`, or `cumulative`.
    pub logic: String,
    /// The window of `observed`: `[from, to)` in seconds since the load started.
    pub window: Option<(u64, u64)>,
    pub stop: bool,
    pub fail: bool,
    /// This criterion's trigger ended the load.
    pub stopped_load: bool,
    /// One sentence: what was observed where, against what.
    pub detail: String,
    /// A relative criterion (`p95>baseline+10%`): its baseline and the noise rule.
    #[serde(default)]
    pub baseline: Option<CriterionBaseline>,
}

/// What a relative criterion was judged against.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct CriterionBaseline {
    /// The threshold as written: `baseline+10%`.
    pub relative: String,
    /// The baseline run (its history file name), when one was found.
    pub run: Option<String>,
    /// The baseline's whole-run value, in the criterion's unit.
    pub value: Option<f64>,
    pub value_text: Option<String>,
    /// How much the KPI moved between the history's last runs (percent, or points for a
    /// rate): a threshold nearer than that was moved out to it.
    pub spread: Option<f64>,
    /// 95% bootstrap interval of the ratio of this run's per-second median to the
    /// baseline's, in the window judged; `None` with too few seconds (the threshold alone
    /// decided).
    pub interval: Option<(f64, f64)>,
    /// Why there was no baseline.
    pub missing: Option<String>,
}

/// One monitoring series: a reading per second (the mean when a second had several).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SeriesReport {
    /// `source/metric`, as criteria name it.
    pub subject: String,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub last: f64,
    /// `[second since the load started, value]`.
    pub points: Vec<(u64, f64)>,
}

/// Every monitoring series of a store.
pub fn series(store: &Store) -> Vec<SeriesReport> {
    store
        .metric_subjects()
        .filter_map(|subject| {
            let points = store.metric_points(subject);
            let last = points.last()?.1;
            let values = points.iter().map(|p| p.1);
            Some(SeriesReport {
                subject: subject.to_owned(),
                min: values.clone().fold(f64::INFINITY, f64::min),
                max: values.clone().fold(f64::NEG_INFINITY, f64::max),
                mean: values.sum::<f64>() / points.len() as f64,
                last,
                points,
            })
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SuiteStatus {
    /// The load ran to its end (criteria are judged separately).
    Completed,
    /// A server failed or the engine could not run.
    Error,
    /// Stopped by SIGINT or SIGTERM; what was measured is here.
    Interrupted,
    /// Still running when this checkpoint was written: what was measured until then.
    Incomplete,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SuiteError {
    pub message: String,
    /// The last lines of the server's log, when a server failed.
    pub log_tail: Option<String>,
    /// The server's whole log, when a server failed.
    pub log: Option<String>,
    /// What to do about it.
    pub hint: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ExecutionReport {
    pub scenario: String,
    /// "8 users, ramp-up 5s, hold-for 30s".
    pub shape: String,
}

/// Cumulative KPIs of one label. Times are milliseconds; `None` when there was no sample.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct LabelStats {
    pub label: String,
    pub hits: u64,
    pub succ: u64,
    pub fail: u64,
    pub bytes: u64,
    pub dropped: u64,
    /// Requests still in flight when the load ended, counted in `hits` (neither `succ` nor
    /// `fail`) with their age then as a lower bound of their latency.
    #[serde(default)]
    pub unfinished: u64,
    pub concurrency: u64,
    /// Served throughput: responses completed per second over the measured time.
    pub throughput: Option<f64>,
    /// Offered rate: arrivals (sent or dropped) per second over the measured time.
    #[serde(default)]
    pub offered: Option<f64>,
    pub avg_rt_ms: Option<f64>,
    pub avg_lt_ms: Option<f64>,
    pub avg_ct_ms: Option<f64>,
    pub stdev_rt_ms: Option<f64>,
    /// Level ("99.9") → milliseconds.
    pub percentiles_ms: BTreeMap<String, f64>,
    /// Response code ("200", "Exception") → count.
    pub rc: BTreeMap<String, u64>,
    /// Error message → count (at most 50 kinds).
    pub errors: BTreeMap<String, u64>,
    /// The whole run's latency histogram (microseconds), HdrHistogram V2, base64: what a
    /// later comparison merges and tests.
    #[serde(default)]
    pub histogram: Option<String>,
    /// Every named distribution besides `rt` (`lt`, `ct`, `ttft`, `itl`, `tpot`, `e2e`,
    /// `output-tokens`, `input-tokens`, `tokens-per-s`, `server.<component>`, `network`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub distributions: BTreeMap<String, DistributionStats>,
    /// What LLM requests of this label did (token streams), when it sent any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmStats>,
    /// `Server-Timing` / `X-Timing-Info` headers that could not be read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub malformed_timing: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A named distribution over the whole run, in its unit (`ms`, `tokens`, `tokens/s`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct DistributionStats {
    pub unit: String,
    pub count: u64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub stdev: f64,
    /// Level ("99.0") → value.
    pub percentiles: BTreeMap<String, f64>,
    /// Its values (scaled to integers: microseconds, tokens, thousandths of tokens/s),
    /// HdrHistogram V2, base64.
    #[serde(default)]
    pub histogram: Option<String>,
}

impl DistributionStats {
    fn from_summary(name: &str, d: &Summary) -> Option<Self> {
        let unit = Unit::of(name);
        let shown = |agg: Agg| {
            d.aggregate(agg, unit).map(|v| match unit {
                Unit::Seconds => (v * 1e6).round() / 1e3,
                _ => (v * 1e3).round() / 1e3,
            })
        };
        Some(Self {
            unit: unit.label().to_owned(),
            count: d.count(),
            mean: shown(Agg::Avg)?,
            min: shown(Agg::Min)?,
            max: shown(Agg::Max)?,
            stdev: shown(Agg::Stdev)?,
            percentiles: PERCENTILES
                .iter()
                .filter_map(|&l| Some((level_name(l), shown(Agg::Percentile(l))?)))
                .collect(),
            histogram: d.histogram_base64(),
        })
    }

    /// A percentile it lists ("95.0").
    pub fn percentile(&self, level: f64) -> Option<f64> {
        self.percentiles.get(&level_name(level)).copied()
    }
}

/// LLM requests of a label: goodput, truncation, how they ended, token throughput.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct LlmStats {
    pub requests: u64,
    /// The share (percent) of requests judged against the goodput SLOs that met them all.
    pub goodput: Option<f64>,
    /// Requests judged against the goodput SLOs, and those that met every one.
    pub judged: u64,
    pub good: u64,
    /// The share (percent) of finished responses cut at the token limit (`length`).
    pub truncated: Option<f64>,
    /// `finish_reason` → count.
    pub finish_reasons: BTreeMap<String, u64>,
    /// Output tokens per second over the measured time (all requests together).
    pub output_tokens_per_s: Option<f64>,
    /// Requests whose output tokens were counted from stream events because the server
    /// sent no `usage` (the rest read `usage`).
    pub tokens_counted: u64,
}

impl LlmStats {
    fn from_snapshot(s: &Snapshot) -> Option<Self> {
        if s.llm_requests() == 0 {
            return None;
        }
        let (good, judged) = s.goodput_counts();
        let output_tokens_per_s = s
            .distribution("output-tokens")
            .zip(s.throughput_seconds())
            .map(|(d, secs)| d.total(Unit::Count) / secs);
        Some(Self {
            requests: s.llm_requests(),
            goodput: s.goodput().map(|g| g * 100.0),
            judged,
            good,
            truncated: s.truncated().map(|t| t * 100.0),
            finish_reasons: s.finish_reasons(),
            output_tokens_per_s,
            tokens_counted: s.tokens_counted(),
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct TimelineRow {
    /// Seconds since the suite started.
    pub second: u64,
    /// How many seconds the row covers: 1, or more for older history of a long run, merged
    /// to bound memory (its counts are totals over them).
    #[serde(default = "one")]
    pub seconds: u64,
    pub label: String,
    pub hits: u64,
    pub fail: u64,
    pub bytes: u64,
    pub dropped: u64,
    /// Responses completed in this second (hits and dropped count by when they were due).
    #[serde(default)]
    pub served: u64,
    /// Requests due in this second still in flight when the load ended.
    #[serde(default)]
    pub unfinished: u64,
    pub concurrency: u64,
    pub avg_rt_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    #[serde(default)]
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Response code ("200", "Exception") → count in this second.
    #[serde(default)]
    pub rc: BTreeMap<String, u64>,
    /// Named distributions besides the times (`ttft`, `server.inference`, ...) in this
    /// second: name → mean, p50, p95, p99 in its unit.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub measures: BTreeMap<String, MeasureRow>,
}

/// A named distribution in one timeline row, in its unit.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct MeasureRow {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    /// The sum of the values (total output tokens in the second, ...).
    pub total: f64,
}

fn one() -> u64 {
    1
}

fn ms(d: Option<std::time::Duration>) -> Option<f64> {
    d.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3)
}

/// A percentile level as Taurus writes it: `50.0`, `99.9`.
pub fn level_name(level: f64) -> String {
    format!("{level:.1}")
}

impl LabelStats {
    pub fn from_snapshot(label: &str, s: &Snapshot) -> Self {
        Self {
            label: label.to_owned(),
            hits: s.hits(),
            succ: s.succ(),
            fail: s.fail(),
            bytes: s.bytes(),
            dropped: s.dropped(),
            unfinished: s.unfinished(),
            concurrency: s.concurrency(),
            throughput: s.throughput(),
            offered: s.offered(),
            avg_rt_ms: ms(s.avg_rt()),
            avg_lt_ms: ms(s.avg_lt()),
            avg_ct_ms: ms(s.avg_ct()),
            stdev_rt_ms: ms(s.stdev_rt()),
            percentiles_ms: PERCENTILES
                .iter()
                .filter_map(|&l| Some((level_name(l), ms(s.percentile(l))?)))
                .collect(),
            rc: s.codes(),
            errors: s.errors(),
            histogram: s.histogram_base64(),
            distributions: s
                .distributions()
                .filter(|(name, _)| *name != "rt")
                .filter_map(|(name, d)| {
                    Some((name.to_owned(), DistributionStats::from_summary(name, d)?))
                })
                .collect(),
            llm: LlmStats::from_snapshot(s),
            malformed_timing: s.malformed_timing(),
        }
    }
}

/// Per-label cumulative stats (`""` first) and the per-second timeline of a store.
pub fn stats(store: &Store) -> (Vec<LabelStats>, Vec<TimelineRow>) {
    let labels: Vec<String> = store.labels().map(str::to_owned).collect();
    let stats = labels
        .iter()
        .map(|l| LabelStats::from_snapshot(l, &store.cumulative(l)))
        .collect();
    let mut timeline = Vec::new();
    for (second, to) in store.spans() {
        for label in &labels {
            let s = store.window(label, second, to);
            if s.hits() == 0 && s.dropped() == 0 && s.concurrency() == 0 && s.served() == 0 {
                continue;
            }
            timeline.push(TimelineRow {
                second,
                seconds: to - second,
                label: label.clone(),
                hits: s.hits(),
                fail: s.fail(),
                bytes: s.bytes(),
                dropped: s.dropped(),
                served: s.served(),
                unfinished: s.unfinished(),
                concurrency: s.concurrency(),
                avg_rt_ms: ms(s.avg_rt()),
                p50_ms: ms(s.percentile(50.0)),
                p90_ms: ms(s.percentile(90.0)),
                p95_ms: ms(s.percentile(95.0)),
                p99_ms: ms(s.percentile(99.0)),
                rc: s.codes(),
                measures: measure_rows(&s),
            });
        }
    }
    (stats, timeline)
}

/// A timeline row's named distributions besides the request times.
fn measure_rows(s: &Snapshot) -> BTreeMap<String, MeasureRow> {
    s.distributions()
        .filter(|(name, _)| !matches!(*name, "rt" | "lt" | "ct"))
        .filter_map(|(name, d)| {
            let unit = Unit::of(name);
            let factor = if unit == Unit::Seconds { 1e3 } else { 1.0 };
            let at = |agg| {
                d.aggregate(agg, unit)
                    .map(|v| (v * factor * 1e3).round() / 1e3)
            };
            let row = MeasureRow {
                count: d.count(),
                mean: at(Agg::Avg)?,
                p50: at(Agg::Percentile(50.0))?,
                p95: at(Agg::Percentile(95.0))?,
                p99: at(Agg::Percentile(99.0))?,
                total: d.total(unit) * factor,
            };
            Some((name.to_owned(), row))
        })
        .collect()
}

/// The JSON Schema of `results.json`, as committed in `schemas/results.schema.json`.
pub fn results_schema() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<RunReport>();
    serde_json::to_value(schema).unwrap_or_default()
}

/// The report of a judged criterion (`judged: None`: the load never ran).
pub fn criterion_report(
    c: &crate::suite::model::Criterion,
    judged: Option<&crate::criteria::eval::Judged>,
    stopped_load: bool,
) -> CriterionReport {
    use crate::criteria::eval::{format_value, threshold_value};
    use crate::suite::model::{Check, Scope};
    let subject = match &c.check {
        Check::Threshold { subject, .. } => subject.to_string(),
        Check::Expr { .. } => "expr".to_owned(),
    };
    let (condition, threshold, unit) = match &c.check {
        Check::Threshold { op, threshold, .. } => (
            op.symbol().to_owned(),
            format_value(Some(*threshold), threshold_value(*threshold)),
            Some(*threshold),
        ),
        Check::Expr { expr } => ("expr".to_owned(), expr.clone(), None),
    };
    let logic = c.window.map_or_else(
        || "cumulative".to_owned(),
        |w| {
            format!(
                "{} {}",
                w.logic.name(),
                humantime::format_duration(w.timeframe)
            )
        },
    );
    let scope = match &c.scope {
        Scope::Suite => "suite".to_owned(),
        Scope::Execution(i) => format!("execution {}", i + 1),
        Scope::Scenario(s) => format!("scenario {s}"),
    };
    let baseline = c.relative.as_ref().map(|r| {
        use crate::criteria::eval::Baseline;
        let mut b = CriterionBaseline {
            relative: r.text.clone(),
            run: None,
            value: None,
            value_text: None,
            spread: None,
            interval: judged.and_then(|j| j.interval),
            missing: None,
        };
        match c.baseline.as_deref() {
            Some(Baseline::Found(found)) => {
                b.run = Some(found.run.clone());
                b.value = Some(found.value);
                b.value_text = Some(format_value(unit, found.value));
                b.spread = found.spread;
            }
            Some(Baseline::Missing(why)) => b.missing = Some(why.clone()),
            None => b.missing = Some("none was given".to_owned()),
        }
        b
    });
    let threshold = match (&c.relative, &baseline) {
        (Some(r), Some(CriterionBaseline { missing: None, .. })) => {
            format!("{} ({threshold})", r.text)
        }
        (Some(r), _) => r.text.clone(),
        _ => threshold,
    };
    let Some(j) = judged else {
        return CriterionReport {
            name: c.name.clone(),
            message: c.message.clone(),
            scope,
            subject,
            verdict: Verdict::NotJudged,
            observed: None,
            observed_text: "not judged".to_owned(),
            condition,
            threshold,
            logic,
            window: None,
            stop: c.stop,
            fail: c.fail,
            stopped_load: false,
            detail: "not judged: the load did not run".to_owned(),
            baseline,
        };
    };
    let observed_text = match (j.observed, &c.check) {
        (None, _) => "no data".to_owned(),
        (Some(v), Check::Expr { .. }) => {
            let held = if v != 0.0 { "true" } else { "false" };
            match &j.sides {
                Some(sides) => format!("{sides}: {held}"),
                None => held.to_owned(),
            }
        }
        (Some(v), Check::Threshold { .. }) => format_value(unit, v),
    };
    let window = j
        .window
        .map(|(from, to)| format!(" in seconds {from}–{to} of the load"))
        .unwrap_or_default();
    let versus = match &baseline {
        Some(CriterionBaseline {
            run: Some(run),
            value_text: Some(value),
            ..
        }) => {
            let interval = j.interval.map_or(String::new(), |(lo, hi)| {
                format!("; 95% interval of the ratio {lo:.3}–{hi:.3}")
            });
            format!(" (baseline {value} in {run}{interval})")
        }
        _ => String::new(),
    };
    let detail = match (&c.check, j.verdict) {
        _ if baseline.as_ref().is_some_and(|b| b.missing.is_some()) => format!(
            "{}: {}",
            j.note.as_deref().unwrap_or("no baseline"),
            if j.verdict == Verdict::Failed {
                "fails (on-missing-baseline: fail)"
            } else {
                "a notice (on-missing-baseline: notice)"
            }
        ),
        (Check::Threshold { .. }, Verdict::Passed) if j.interval.is_some() && j.note.is_some() => {
            j.note.clone().unwrap_or_default()
        }
        (_, Verdict::NoData) => format!(
            "no data: {}",
            j.note.as_deref().unwrap_or("nothing was measured")
        ),
        (_, Verdict::NotJudged) => "not judged".to_owned(),
        (Check::Expr { expr }, Verdict::Failed | Verdict::Notice) => {
            format!("`{expr}` held{window}")
        }
        (Check::Expr { expr }, _) => format!("`{expr}` never held"),
        (Check::Threshold { .. }, Verdict::Failed | Verdict::Notice) => format!(
            "observed {observed_text} {condition} {threshold} ({logic}){window}{}",
            if stopped_load {
                "; the load was stopped"
            } else {
                ""
            }
        ),
        (Check::Threshold { .. }, Verdict::Passed) => match c.window {
            Some(_) => {
                format!("never {condition} {threshold} ({logic}); nearest {observed_text}{window}")
            }
            None => format!("observed {observed_text}, not {condition} {threshold} (cumulative)"),
        },
    };
    let observed_text = match &baseline {
        Some(b) if b.missing.is_some() && j.observed.is_none() => "no baseline".to_owned(),
        _ => observed_text,
    };
    CriterionReport {
        name: c.name.clone(),
        message: c.message.clone(),
        scope,
        subject,
        verdict: j.verdict,
        observed: j.observed,
        observed_text,
        condition,
        threshold,
        logic,
        window: j.window,
        stop: c.stop,
        fail: c.fail,
        stopped_load,
        detail: format!("{detail}{versus}"),
        baseline,
    }
}
