//! Judging criteria over the metrics store, live on every closed second and at the end.
//!
//! Taurus `passfail` semantics (DESIGN §5), with its known defects fixed:
//! - Without a timeframe, a criterion is judged once, at the end, on cumulative values.
//! - `for T`: triggers when the condition held at every measured second of a span of at least
//!   `T`, the span running from the streak's first measured second to its latest. A second
//!   with no data (such as between the readings of a 5 s monitoring source) does not break the
//!   streak; a measured second where the condition did not hold does.
//! - `within T`: the aggregate over the last `T` seconds (fewer at the start) meets the
//!   condition. `over T`: the same, only once a full `T` has passed.
//! - Aggregates merge the window's data, weighted by samples; percentiles come from the merged
//!   histogram, monitoring means are weighted by readings.
//! - A trigger is sticky: the first one is kept, with its observed value and window.
//! - A subject that got no data at all is "no data", which fails (never a silent pass); so
//!   is an `over` criterion whose load never filled one window.
//!
//! This is plain synchronous code over a [`Store`]: time comes from the store's seconds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::criteria::grammar::{Figure, Kpi, Logic, Op, Subject, Threshold};
use crate::metrics::{Agg, Select, Snapshot, Store};
use crate::suite::model::{Check, Criterion};

/// How a criterion ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The condition never held.
    Passed,
    /// The condition held (a failure condition): the suite fails.
    Failed,
    /// The condition held, but the criterion is `non-failed` (`fail: false`): a notice.
    Notice,
    /// Its subject got no data: fails, as nothing was shown to be fine.
    NoData,
    /// Never judged: the suite ended (an error or a signal) before its load ran. It does not
    /// fail the gate by itself; the suite's own error does.
    NotJudged,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Notice => "notice",
            Self::NoData => "no data",
            Self::NotJudged => "not judged",
        }
    }

    /// Whether it fails the suite.
    pub fn fails(self) -> bool {
        matches!(self, Self::Failed | Self::NoData)
    }
}

/// The baseline of a relative criterion (`p95 of infer>baseline+10%`), found when its
/// suite starts.
#[derive(Clone, Debug)]
pub enum Baseline {
    /// No earlier run has this suite, or this KPI: why.
    Missing(String),
    Found(BaselineValue),
}

/// What a relative criterion is judged against.
#[derive(Clone, Debug)]
pub struct BaselineValue {
    /// The baseline run, as people tell runs apart: its start time and commit.
    pub run: String,
    /// Its whole-run value of the KPI, in the unit values are observed in.
    pub value: f64,
    /// The threshold judged against: the relative threshold applied to `value`, moved out
    /// to the history's spread when that is wider.
    pub threshold: f64,
    /// Its per-second values of the KPI, for the noise rule (empty when its timeline does
    /// not keep this KPI: the threshold alone decides).
    pub seconds: Vec<f64>,
    /// How much the KPI moves between runs in the history: percent (points for a rate).
    pub spread: Option<f64>,
}

/// When and where a criterion's condition held first.
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    /// The window judged: seconds `from..to` of the load.
    pub from: u64,
    pub to: u64,
    pub observed: f64,
}

/// The judgement of one criterion.
#[derive(Clone, Debug)]
pub struct Judged {
    pub verdict: Verdict,
    pub trigger: Option<Trigger>,
    /// What was observed: at the trigger, else the value nearest to triggering (the worst
    /// window), else the cumulative value. `None` without data.
    pub observed: Option<f64>,
    /// The window of `observed`.
    pub window: Option<(u64, u64)>,
    /// Why an expression could not be judged, or what had no data.
    pub note: Option<String>,
    /// `expr:` criteria: the value of each side of each comparison, in `window`.
    pub sides: Option<String>,
    /// Relative criteria: the 95% interval of the ratio of this run's per-second values
    /// (median) to the baseline's, in the window judged.
    pub interval: Option<(f64, f64)>,
}

/// Live state of one criterion.
#[derive(Clone, Debug, Default)]
struct State {
    trigger: Option<Trigger>,
    /// First second of the current `for` streak.
    streak: Option<u64>,
    /// The value nearest to triggering so far, and its window.
    worst: Option<(f64, u64, u64)>,
    /// The first reason it could not be observed.
    note: Option<String>,
    /// Relative criteria: the noise interval of the last window checked.
    interval: Option<(f64, f64)>,
}

/// The criteria of one suite and their live state.
#[derive(Clone, Debug)]
pub struct Judge {
    criteria: Vec<Criterion>,
    /// Per criterion: the labels its scope stands for when it names none (`None`: all).
    scopes: Vec<Option<Vec<String>>>,
    states: Vec<State>,
    /// Seconds before this one were judged.
    next: u64,
    /// The capacity figures measured (`capacity.knee`, ...), each with why it is missing;
    /// `None` when the load ran no capacity steps.
    capacity: Option<Vec<(Figure, Result<f64, String>)>>,
}

impl Judge {
    /// `scope_labels` gives the labels of a scoped criterion (its scenario's requests).
    pub fn new(
        criteria: &[Criterion],
        scope_labels: impl Fn(&Criterion) -> Option<Vec<String>>,
    ) -> Self {
        Self {
            scopes: criteria.iter().map(scope_labels).collect(),
            states: vec![State::default(); criteria.len()],
            criteria: criteria.to_vec(),
            next: 0,
            capacity: None,
        }
    }

    /// The capacity figures the `capacity.<figure>` criteria judge at the end.
    pub fn set_capacity(&mut self, figures: Vec<(Figure, Result<f64, String>)>) {
        self.capacity = Some(figures);
    }

    /// A criterion's whole-run value: a capacity figure, or what the store holds.
    fn observe_whole(&self, i: usize, store: &Store) -> Result<f64, String> {
        let c = &self.criteria[i];
        if let Check::Threshold {
            subject: Subject::Capacity { figure },
            ..
        } = &c.check
        {
            let Some(figures) = &self.capacity else {
                return Err(
                    "no capacity was measured: the load ran no sweep or search steps".to_owned(),
                );
            };
            return figures
                .iter()
                .find(|(f, _)| f == figure)
                .map_or_else(|| Err(format!("no {}", figure.name())), |(_, v)| v.clone());
        }
        observe(&c.check, self.scopes[i].as_deref(), store, None)
    }

    pub fn criteria(&self) -> &[Criterion] {
        &self.criteria
    }

    /// Judges the windowed criteria at every second before `closed` not judged yet. Returns
    /// the indices of the `stop` criteria that triggered now.
    pub fn closed(&mut self, store: &Store, closed: u64) -> Vec<usize> {
        let mut stops = Vec::new();
        while self.next < closed {
            let second = self.next;
            self.next += 1;
            for i in 0..self.criteria.len() {
                let was = self.states[i].trigger.is_some();
                self.judge_second(i, store, second);
                if !was && self.states[i].trigger.is_some() && self.criteria[i].stop {
                    stops.push(i);
                }
            }
        }
        stops
    }

    /// Seconds before this one have been judged.
    pub fn judged(&self) -> u64 {
        self.next
    }

    /// The `stop` criteria whose breach is already certain in seconds `judged()..upto`,
    /// seen through a store whose overlay holds the requests still in flight at their age
    /// so far. Only a criterion whose value can only grow as those requests complete
    /// (a latency average or percentile over `>`/`>=`) can be certain; its trigger is
    /// kept, so the final verdict shows the seconds of the breach. Nothing else changes.
    pub fn certain_stops(&mut self, store: &Store, upto: u64) -> Vec<usize> {
        let mut stops = Vec::new();
        for i in 0..self.criteria.len() {
            let c = &self.criteria[i];
            if !c.stop || self.states[i].trigger.is_some() || !only_grows(&c.check) {
                continue;
            }
            let before = self.states[i].clone();
            for second in self.next..upto {
                self.judge_second(i, store, second);
                if self.states[i].trigger.is_some() {
                    break;
                }
            }
            if self.states[i].trigger.is_some() {
                stops.push(i);
            } else {
                self.states[i] = before;
            }
        }
        stops
    }

    /// What the criteria say so far, for a checkpoint: the seconds judged, and the
    /// criteria without a timeframe on what was measured until now.
    pub fn so_far(&self, store: &Store) -> Vec<Judged> {
        let mut judge = self.clone();
        let judged = self.next;
        judge.finish(store, judged)
    }

    /// For the progress line: the first triggered criterion, or how many are fine so far.
    pub fn summary(&self) -> Option<String> {
        if self.criteria.is_empty() {
            return None;
        }
        let triggered: Vec<&Criterion> = self
            .criteria
            .iter()
            .zip(&self.states)
            .filter(|(_, s)| s.trigger.is_some())
            .map(|(c, _)| c)
            .collect();
        Some(match triggered.first() {
            None => format!("criteria: {} ok so far", self.criteria.len()),
            Some(c) if triggered.len() == 1 => format!("criterion triggered: {}", c.name),
            Some(c) => format!(
                "criteria triggered: {} and {} more",
                c.name,
                triggered.len() - 1
            ),
        })
    }

    /// Whether criterion `i` has triggered.
    pub fn triggered(&self, i: usize) -> bool {
        self.states[i].trigger.is_some()
    }

    /// The end: judges the remaining seconds (up to `end`, exclusive), then the criteria
    /// without a timeframe on cumulative values.
    pub fn finish(&mut self, store: &Store, end: u64) -> Vec<Judged> {
        self.closed(store, end);
        let mut out = Vec::with_capacity(self.criteria.len());
        for i in 0..self.criteria.len() {
            let c = &self.criteria[i];
            if c.window.is_none() {
                let whole = self.observe_whole(i, store);
                let state = &mut self.states[i];
                match whole {
                    Ok(_) if missing_baseline(c).is_some() => {}
                    Ok(v) => {
                        let to = store.seconds();
                        state.worst = Some((v, 0, to));
                        if holds(&c.check, v)
                            && beyond_noise(c, self.scopes[i].as_deref(), store, (0, to), state)
                        {
                            state.trigger = Some(Trigger {
                                from: 0,
                                to,
                                observed: v,
                            });
                        }
                    }
                    Err(why) => state.note = Some(why),
                }
            }
            let state = &mut self.states[i];
            let verdict = match (&state.trigger, &state.worst) {
                _ if let Some(why) = missing_baseline(c) => {
                    state.note = Some(why);
                    let fail = c
                        .relative
                        .as_ref()
                        .and_then(|r| r.fail_without_baseline)
                        .unwrap_or(false);
                    if fail && c.fail {
                        Verdict::Failed
                    } else {
                        Verdict::Notice
                    }
                }
                (Some(_), _) if c.fail => Verdict::Failed,
                (Some(_), _) => Verdict::Notice,
                (None, Some(_)) => Verdict::Passed,
                (None, None) => Verdict::NoData,
            };
            let state = &self.states[i];
            let (observed, window) = match (&state.trigger, state.worst) {
                (Some(t), _) => (Some(t.observed), Some((t.from, t.to))),
                (None, Some((v, from, to))) => (Some(v), Some((from, to))),
                (None, None) => (None, None),
            };
            let sides = match &c.check {
                Check::Expr { expr } if observed.is_some() => {
                    // A cumulative criterion's window is the whole run: no window filter.
                    let judged_window = c.window.as_ref().and(window);
                    expr_sides(expr, store, self.scopes[i].as_deref(), judged_window)
                }
                _ => None,
            };
            out.push(Judged {
                verdict,
                trigger: state.trigger.clone(),
                observed,
                window,
                note: state.note.clone(),
                sides,
                interval: state.interval,
            });
        }
        out
    }

    fn judge_second(&mut self, i: usize, store: &Store, second: u64) {
        let c = &self.criteria[i];
        let state = &mut self.states[i];
        let Some(window) = c.window else { return };
        if state.trigger.is_some() || missing_baseline(c).is_some() {
            return;
        }
        let scope = self.scopes[i].as_deref();
        let tf = window.timeframe.as_secs_f64().ceil().max(1.0) as u64;
        let (from, to) = match window.logic {
            Logic::For => (second, second + 1),
            Logic::Within => ((second + 1).saturating_sub(tf), second + 1),
            Logic::Over if second + 1 < tf => {
                state.note.get_or_insert_with(|| {
                    format!("the load was shorter than one full {tf}s window")
                });
                return;
            }
            Logic::Over => (second + 1 - tf, second + 1),
        };
        let value = match observe(&c.check, scope, store, Some((from, to))) {
            Ok(v) => v,
            Err(why) => {
                state.note.get_or_insert(why);
                return;
            }
        };
        let held = holds(&c.check, value);
        if window.logic == Logic::For {
            if !held {
                state.streak = None;
                note_worst(state, &c.check, value, second, second + 1);
                return;
            }
            let start = *state.streak.get_or_insert(second);
            note_worst(state, &c.check, value, start, second + 1);
            if second + 1 - start >= tf && beyond_noise(c, scope, store, (start, second + 1), state)
            {
                state.trigger = Some(Trigger {
                    from: start,
                    to: second + 1,
                    observed: value,
                });
            }
            return;
        }
        note_worst(state, &c.check, value, from, to);
        if held && beyond_noise(c, scope, store, (from, to), state) {
            state.trigger = Some(Trigger {
                from,
                to,
                observed: value,
            });
        }
    }
}

/// Why a relative criterion has nothing to be judged against; `None` when it has (or is
/// not relative).
fn missing_baseline(c: &Criterion) -> Option<String> {
    c.relative.as_ref()?;
    match c.baseline.as_deref() {
        Some(Baseline::Found(_)) => None,
        Some(Baseline::Missing(why)) => Some(format!("no baseline: {why}")),
        None => Some(
            "no baseline: none was given (`--baseline`, `--history` or `settings.baseline`)"
                .to_owned(),
        ),
    }
}

/// The noise rule of a relative criterion whose threshold was crossed in `window`: it
/// triggers only when the 95% bootstrap interval of the ratio of this run's per-second
/// values (median) to the baseline's lies wholly on the worse side of 1. With fewer than
/// [`MIN_SECONDS`](crate::stats::MIN_SECONDS) values on either side the threshold alone
/// decides. Absolute criteria always pass it.
fn beyond_noise(
    c: &Criterion,
    scope: Option<&[String]>,
    store: &Store,
    (from, to): (u64, u64),
    state: &mut State,
) -> bool {
    use crate::stats::{MIN_SECONDS, ratio_interval, seed_of};
    let Some(Baseline::Found(base)) = c.baseline.as_deref() else {
        return true;
    };
    let higher_is_worse = match &c.check {
        Check::Threshold {
            op: Op::Gt | Op::Ge,
            ..
        } => true,
        Check::Threshold {
            op: Op::Lt | Op::Le,
            ..
        } => false,
        _ => return true,
    };
    if base.seconds.len() < MIN_SECONDS {
        return true;
    }
    let now: Vec<f64> = (from..to)
        .filter_map(|s| observe(&c.check, scope, store, Some((s, s + 1))).ok())
        .collect();
    if now.len() < MIN_SECONDS {
        return true;
    }
    let Some((lo, hi)) = ratio_interval(&base.seconds, &now, seed_of(&[&c.name])) else {
        return true;
    };
    state.interval = Some((lo, hi));
    let beyond = if higher_is_worse { lo > 1.0 } else { hi < 1.0 };
    if !beyond {
        state.note = Some(format!(
            "beyond the threshold in seconds {from}–{to}, but within the run-to-run noise (95% interval of the ratio to the baseline: {lo:.3}–{hi:.3})"
        ));
    }
    beyond
}

/// Whether a criterion's value can only grow when requests still in flight complete (each
/// takes at least its age so far): latency averages and percentiles compared with `>`/`>=`.
fn only_grows(check: &Check) -> bool {
    match check {
        Check::Threshold { subject, op, .. } => {
            matches!(op, Op::Gt | Op::Ge)
                && matches!(
                    subject,
                    Subject::Percentile { .. } | Subject::Kpi { kpi: Kpi::AvgRt }
                )
        }
        Check::Expr { .. } => false,
    }
}

/// Keeps the value nearest to triggering (for `>`: the largest).
fn note_worst(state: &mut State, check: &Check, value: f64, from: u64, to: u64) {
    let worse = match (state.worst, check) {
        (None, _) => true,
        (Some((old, ..)), Check::Threshold { op, .. }) => match op {
            Op::Gt | Op::Ge => value > old,
            Op::Lt | Op::Le => value < old,
            Op::Eq | Op::Ne => true,
        },
        (Some(_), Check::Expr { .. }) => value > 0.5,
    };
    if worse {
        state.worst = Some((value, from, to));
    }
}

/// Whether the failure condition holds for `value`.
fn holds(check: &Check, value: f64) -> bool {
    match check {
        Check::Expr { .. } => value != 0.0,
        Check::Threshold { op, threshold, .. } => op.holds(value, threshold_value(*threshold)),
    }
}

/// A threshold in the unit values are observed in: seconds, percent, bytes, a number.
pub fn threshold_value(t: Threshold) -> f64 {
    match t {
        Threshold::Duration(d) => d.as_secs_f64(),
        Threshold::Percent(p) => p,
        Threshold::Bytes(b) => b as f64,
        Threshold::Number(n) => n,
    }
}

/// Writes `value` in the unit of `threshold`: `152ms`, `2.5%`, `1.2MB`, `17`.
pub fn format_value(threshold: Option<Threshold>, value: f64) -> String {
    match threshold {
        Some(Threshold::Duration(_)) => format_seconds(value),
        Some(Threshold::Percent(_)) => format!("{}%", round_sig(value)),
        Some(Threshold::Bytes(_)) => format_bytes(value),
        Some(Threshold::Number(_)) | None => round_sig(value),
    }
}

fn format_seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{}s", round_sig(s))
    } else if s >= 0.001 {
        format!("{}ms", round_sig(s * 1e3))
    } else {
        format!("{}µs", round_sig(s * 1e6))
    }
}

fn format_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b;
    let mut unit = 0;
    // Decimal, as thresholds read them (`512MB` is 512e6 bytes).
    while v.abs() >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    format!("{}{}", round_sig(v), UNITS[unit])
}

/// At most 4 significant digits, no trailing zeros.
fn round_sig(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    let text = format!("{v:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// The value of a check over seconds `from..to` (or everything, cumulative, for `None`).
fn observe(
    check: &Check,
    scope: Option<&[String]>,
    store: &Store,
    window: Option<(u64, u64)>,
) -> Result<f64, String> {
    match check {
        Check::Threshold {
            subject,
            label,
            threshold,
            ..
        } => {
            if let Subject::HistogramQuantile {
                source,
                metric,
                agg,
            } = subject
            {
                let name = format!("{source}/{metric}");
                let (from, to) = window.unwrap_or((0, u64::MAX));
                let value = match agg {
                    Agg::Percentile(level) => {
                        store.histogram_quantile(&name, level / 100.0, from, to)
                    }
                    _ => store.histogram_mean(&name, from, to),
                };
                return value.ok_or_else(|| format!("no observations in the buckets of `{name}`"));
            }
            if let Subject::Monitoring { source, metric } = subject {
                let name = format!("{source}/{metric}");
                let (from, to) = window.unwrap_or((0, u64::MAX));
                return store
                    .metric_window(&name, from, to)
                    .ok_or_else(|| format!("no readings of `{name}`"));
            }
            let names = distributions_read(subject);
            let snapshot = snapshot(store, label, scope, window, Select::Only(&names));
            kpi_value(subject, &snapshot, Some(*threshold)).ok_or_else(|| {
                let of = if label.is_empty() {
                    String::new()
                } else {
                    format!(" of `{label}`")
                };
                format!("no samples{of}")
            })
        }
        Check::Expr { expr } => eval_expr(expr, store, scope, window),
    }
}

/// The distributions a subject reads (a window merges only those).
fn distributions_read(subject: &Subject) -> Vec<&str> {
    match subject {
        Subject::Kpi {
            kpi: Kpi::AvgRt | Kpi::StdevRt,
        }
        | Subject::Percentile { .. } => vec!["rt"],
        Subject::Kpi { kpi: Kpi::AvgLt } => vec!["lt"],
        Subject::Kpi { kpi: Kpi::AvgCt } => vec!["ct"],
        Subject::Measure { metric, .. } => vec![metric.as_str()],
        _ => Vec::new(),
    }
}

fn snapshot(
    store: &Store,
    label: &str,
    scope: Option<&[String]>,
    window: Option<(u64, u64)>,
    select: Select<'_>,
) -> Snapshot {
    let (from, to) = window.unwrap_or((0, store.seconds()));
    let one = [label];
    let mut s = match (label, scope) {
        ("", Some(labels)) => store.window_selecting(labels, from, to, select),
        _ => store.window_selecting(&one, from, to, select),
    };
    if window.is_none() {
        // Cumulative: throughput over the measured time (a label from its first sample).
        match (label, scope) {
            ("", Some(_)) => {
                if let Some(end) = store.end() {
                    s.set_seconds(end.as_secs_f64());
                }
            }
            _ => s.set_seconds(store.cumulative_seconds(label).unwrap_or(0.0)),
        }
    }
    s
}

/// A request KPI of a snapshot in the unit its threshold uses; `None` without samples.
pub(crate) fn kpi_value(
    subject: &Subject,
    s: &Snapshot,
    threshold: Option<Threshold>,
) -> Option<f64> {
    let percent = matches!(threshold, Some(Threshold::Percent(_)));
    let share = |n: u64, of: u64| -> Option<f64> {
        if percent {
            (of > 0).then(|| n as f64 * 100.0 / of as f64)
        } else {
            (of > 0).then_some(n as f64)
        }
    };
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    match subject {
        Subject::Kpi { kpi } => match kpi {
            Kpi::Hits => (s.hits() + s.dropped() > 0).then_some(s.hits() as f64),
            Kpi::Succ => share(s.succ(), s.hits()),
            Kpi::Fail => share(s.fail(), s.hits()),
            Kpi::Dropped => share(s.dropped(), s.hits() + s.dropped()),
            Kpi::Unfinished => share(s.unfinished(), s.hits()),
            Kpi::Bytes => (s.hits() > 0).then_some(s.bytes() as f64),
            Kpi::AvgRt => secs(s.avg_rt()),
            Kpi::AvgLt => secs(s.avg_lt()),
            Kpi::AvgCt => secs(s.avg_ct()),
            Kpi::StdevRt => secs(s.stdev_rt()),
            Kpi::Concurrency => (s.hits() + s.concurrency() > 0).then_some(s.concurrency() as f64),
            Kpi::Throughput => (s.hits() + s.served() > 0)
                .then(|| s.throughput())
                .flatten(),
            Kpi::Goodput => {
                let (good, judged) = s.goodput_counts();
                share(good, judged)
            }
            Kpi::Truncated => {
                let (cut, finished) = s.truncated_counts();
                share(cut, finished)
            }
        },
        Subject::Percentile { level } => secs(s.percentile(*level)),
        Subject::Measure { agg, metric } => s.aggregate(metric, *agg),
        Subject::ResponseCode { pattern } => share(s.rc(pattern), s.hits()),
        Subject::Monitoring { .. }
        | Subject::HistogramQuantile { .. }
        | Subject::Capacity { .. } => None,
    }
}

/// Evaluates an `expr:` criterion; 1.0 when it holds. KPI functions give floats (compare
/// with `<`, `>`, or `== 100.0`: evalexpr tells 100 from 100.0), times in milliseconds: `p(99, "infer")`, `avg_rt()`, `fail("infer")`, `rc("5??")`,
/// `metric("server/total_workers")`.
fn eval_expr(
    expr: &str,
    store: &Store,
    scope: Option<&[String]>,
    window: Option<(u64, u64)>,
) -> Result<f64, String> {
    use evalexpr::EvalexprError;
    let ctx = expr_context(store, scope, window)?;
    match evalexpr::eval_boolean_with_context(expr, &ctx) {
        Ok(b) => Ok(if b { 1.0 } else { 0.0 }),
        Err(EvalexprError::CustomMessage(m)) => Err(m),
        Err(e) => Err(format!("the expression could not be evaluated: {e}")),
    }
}

/// The values of each comparison in an `expr:` criterion over `window`, as
/// `12.3 > 61.5 && 12.3 > 500`: what the reports show instead of a bare `true`/`false`.
pub fn expr_sides(
    expr: &str,
    store: &Store,
    scope: Option<&[String]>,
    window: Option<(u64, u64)>,
) -> Option<String> {
    use evalexpr::Operator;
    fn describe(node: &evalexpr::Node, ctx: &evalexpr::HashMapContext) -> Option<String> {
        let symbol = match node.operator() {
            Operator::RootNode if node.children().len() == 1 => {
                return describe(&node.children()[0], ctx);
            }
            Operator::And => "&&",
            Operator::Or => "||",
            Operator::Gt => ">",
            Operator::Lt => "<",
            Operator::Geq => ">=",
            Operator::Leq => "<=",
            Operator::Eq => "==",
            Operator::Neq => "!=",
            _ => return None,
        };
        let [left, right] = node.children() else {
            return None;
        };
        if matches!(node.operator(), Operator::And | Operator::Or) {
            return Some(format!(
                "{} {symbol} {}",
                describe(left, ctx)?,
                describe(right, ctx)?
            ));
        }
        let value = |n: &evalexpr::Node| {
            n.eval_number_with_context(ctx)
                .ok()
                .map(|v| format!("{}", (v * 1000.0).round() / 1000.0))
        };
        Some(format!("{} {symbol} {}", value(left)?, value(right)?))
    }
    let ctx = expr_context(store, scope, window).ok()?;
    let tree = evalexpr::build_operator_tree(expr).ok()?;
    describe(&tree, &ctx)
}

/// The functions an `expr:` criterion calls, over the data of `window`.
fn expr_context(
    store: &Store,
    scope: Option<&[String]>,
    window: Option<(u64, u64)>,
) -> Result<evalexpr::HashMapContext, String> {
    use evalexpr::{ContextWithMutableFunctions, Function, HashMapContext, Value};

    // The functions own what they read: snapshots per label and monitoring values.
    let mut labels: Vec<String> = store.labels().map(str::to_owned).collect();
    if labels.is_empty() {
        labels.push(String::new());
    }
    let mut snapshots: HashMap<String, Snapshot> = labels
        .iter()
        .map(|l| (l.clone(), snapshot(store, l, None, window, Select::All)))
        .collect();
    if scope.is_some() {
        snapshots.insert(
            String::new(),
            snapshot(store, "", scope, window, Select::All),
        );
    }
    let metrics: HashMap<String, Option<f64>> = store
        .metric_subjects()
        .map(|m| {
            let (from, to) = window.unwrap_or((0, u64::MAX));
            (m.to_owned(), store.metric_window(m, from, to))
        })
        .collect();
    let data = Arc::new((snapshots, metrics));

    let mut ctx = HashMapContext::new();
    let set = |ctx: &mut HashMapContext, name: &str, f: Function| {
        ctx.set_function(name.to_owned(), f)
            .map_err(|e| e.to_string())
    };
    for (name, kind) in expr_functions() {
        let data = Arc::clone(&data);
        set(
            &mut ctx,
            name,
            Function::new(move |arg| call(name, &kind, arg, &data.0).map(Value::Float)),
        )?;
    }
    {
        let data = Arc::clone(&data);
        set(
            &mut ctx,
            "metric",
            Function::new(move |arg| {
                let name = arg.as_string()?;
                let v = data
                    .1
                    .get(&name)
                    .copied()
                    .flatten()
                    .ok_or_else(|| no_data(&format!("metric(\"{name}\")")))?;
                Ok(Value::Float(v))
            }),
        )?;
    }
    Ok(ctx)
}

/// Every function an `expr:` criterion may call besides evalexpr's own (validation checks
/// expressions against this list).
pub const EXPR_FUNCTIONS: &[&str] = &[
    "p",
    "avg_rt",
    "avg_lt",
    "avg_ct",
    "stdev_rt",
    "hits",
    "succ",
    "fail",
    "bytes",
    "throughput",
    "concurrency",
    "dropped",
    "unfinished",
    "rc",
    "metric",
];

/// What an `expr:` KPI function reads from a label's snapshot.
#[derive(Clone, Debug)]
enum ExprFn {
    /// `avg_rt("label")`, `hits()`: a KPI; `true` for times, given in milliseconds.
    Kpi(Kpi, bool),
    /// `p(99.9, "label")`: a percentile in milliseconds.
    Percentile,
    /// `rc("5??", "label")`: the count of matching response codes.
    ResponseCode,
}

/// The KPI functions of `expr:` criteria: [`EXPR_FUNCTIONS`] but `metric`.
fn expr_functions() -> Vec<(&'static str, ExprFn)> {
    let mut all: Vec<(&'static str, ExprFn)> = [
        ("avg_rt", Kpi::AvgRt, true),
        ("avg_lt", Kpi::AvgLt, true),
        ("avg_ct", Kpi::AvgCt, true),
        ("stdev_rt", Kpi::StdevRt, true),
        ("hits", Kpi::Hits, false),
        ("succ", Kpi::Succ, false),
        ("fail", Kpi::Fail, false),
        ("bytes", Kpi::Bytes, false),
        ("throughput", Kpi::Throughput, false),
        ("concurrency", Kpi::Concurrency, false),
        ("dropped", Kpi::Dropped, false),
        ("unfinished", Kpi::Unfinished, false),
    ]
    .into_iter()
    .map(|(name, kpi, ms)| (name, ExprFn::Kpi(kpi, ms)))
    .collect();
    all.push(("p", ExprFn::Percentile));
    all.push(("rc", ExprFn::ResponseCode));
    all
}

fn no_data(what: &str) -> evalexpr::EvalexprError {
    evalexpr::EvalexprError::CustomMessage(format!("no data for {what}"))
}

/// Calls a KPI function: `[level or code,] [label]`, the label `""` (all) when left out.
fn call(
    name: &str,
    kind: &ExprFn,
    arg: &evalexpr::Value,
    snapshots: &HashMap<String, Snapshot>,
) -> evalexpr::EvalexprResult<f64> {
    use evalexpr::{EvalexprError, Value};
    let args = match arg {
        Value::Tuple(t) => t.clone(),
        Value::Empty => Vec::new(),
        v => vec![v.clone()],
    };
    let (param, rest) = match kind {
        ExprFn::Kpi(..) => (None, &args[..]),
        ExprFn::Percentile | ExprFn::ResponseCode => {
            let first = args.first().ok_or_else(|| {
                EvalexprError::CustomMessage(format!("{name}() needs a first argument"))
            })?;
            (Some(first), &args[1..])
        }
    };
    let label = match rest.first() {
        Some(v) => v.as_string()?,
        None => String::new(),
    };
    let shown = match param {
        Some(p) => format!("{name}({p}, \"{label}\")"),
        None => format!("{name}(\"{label}\")"),
    };
    let s = snapshots.get(&label).ok_or_else(|| no_data(&shown))?;
    let value = match (kind, param) {
        (ExprFn::Kpi(kpi, ms), _) => {
            kpi_value(&Subject::Kpi { kpi: *kpi }, s, None).map(|v| if *ms { v * 1e3 } else { v })
        }
        (ExprFn::Percentile, Some(level)) => s
            .percentile(level.as_number()?)
            .map(|d| d.as_secs_f64() * 1e3),
        (ExprFn::ResponseCode, Some(code)) => Some(s.rc(&code.as_string()?) as f64),
        (_, None) => None,
    };
    value.ok_or_else(|| no_data(&shown))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::criteria::grammar::{parse_short, parse_subject, parse_threshold};
    use crate::metrics::{Outcome, Sample};
    use crate::suite::model::{Scope, Window};

    /// A criterion from its short form, as validation compiles it.
    pub(crate) fn crit(text: &str) -> Criterion {
        let p = parse_short(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        let subject = parse_subject(&p.subject.text).expect("subject");
        let relative = crate::criteria::grammar::parse_relative(&subject, &p.threshold.text)
            .map(|r| r.expect("relative threshold"));
        let threshold = match &relative {
            Some(_) => subject.threshold_of(0.0),
            None => parse_threshold(&subject, &p.threshold.text).expect("threshold"),
        };
        let window = p.logic.as_ref().map(|l| Window {
            logic: Logic::parse(&l.text).expect("logic"),
            timeframe: crate::suite::units::parse_duration(&p.timeframe.as_ref().expect("tf").text)
                .expect("duration"),
        });
        Criterion {
            name: text.to_owned(),
            message: None,
            check: Check::Threshold {
                subject,
                label: p.label.map(|l| l.text).unwrap_or_default(),
                op: Op::parse(&p.op.text).expect("op"),
                threshold,
            },
            window,
            stop: p.action.as_ref().is_none_or(|a| a.text == "stop"),
            fail: p.outcome.as_ref().is_none_or(|o| o.text == "failed"),
            scope: Scope::Suite,
            relative,
            baseline: None,
        }
    }

    fn expr(text: &str) -> Criterion {
        Criterion {
            name: text.to_owned(),
            message: None,
            check: Check::Expr {
                expr: text.to_owned(),
            },
            window: None,
            stop: false,
            fail: true,
            scope: Scope::Suite,
            relative: None,
            baseline: None,
        }
    }

    /// `n` samples of `label` in `second`, each taking `ms`, failing when `ok` is false.
    pub(crate) fn add(store: &mut Store, second: u64, label: &str, ms: u64, n: u64, ok: bool) {
        for _ in 0..n {
            store.record(&Sample {
                label: label.into(),
                second,
                rt: Duration::from_millis(ms),
                lt: Duration::from_millis(ms / 2),
                ct: None,
                bytes: 100,
                concurrency: 1,
                completed: second,
                extra: None,
                outcome: Outcome::Response {
                    status: if ok { 200 } else { 503 },
                    success: ok,
                    message: None,
                },
            });
        }
    }

    /// A store where label `a` has one latency per second (10 samples each).
    fn latencies(ms: &[u64]) -> Store {
        let mut s = Store::default();
        for (t, &m) in ms.iter().enumerate() {
            if m > 0 {
                add(&mut s, t as u64, "a", m, 10, true);
            }
        }
        s.set_end(Duration::from_secs(ms.len() as u64));
        s
    }

    /// Judges `c` second by second; returns the verdict and the trigger window.
    fn judge(c: Criterion, store: &Store) -> (Verdict, Option<(u64, u64)>) {
        let mut j = Judge::new(&[c], |_| None);
        j.closed(store, store.seconds());
        let r = j.finish(store, store.seconds()).remove(0);
        (r.verdict, r.trigger.map(|t| (t.from, t.to)))
    }

    #[test]
    fn semantics_table() {
        use Verdict::*;
        // (criterion, per-second avg latency of `a` in ms (0: no samples), verdict, window)
        type Case<'a> = (&'a str, &'a [u64], Verdict, Option<(u64, u64)>);
        let cases: &[Case] = &[
            // for: three seconds in a row above 100 ms
            (
                "avg-rt of a>100ms for 3s",
                &[50, 150, 150, 150, 50],
                Failed,
                Some((1, 4)),
            ),
            // for: a break in the streak resets it
            (
                "avg-rt of a>100ms for 3s",
                &[150, 150, 50, 150, 150, 50],
                Passed,
                None,
            ),
            // for: a second without samples does not break the streak
            (
                "avg-rt of a>100ms for 3s",
                &[150, 0, 150, 50],
                Failed,
                Some((0, 3)),
            ),
            ("avg-rt of a>100ms for 3s", &[150, 0, 50, 150], Passed, None),
            // within: a partial window at the start is judged
            (
                "avg-rt of a>100ms within 10s",
                &[300, 50],
                Failed,
                Some((0, 1)),
            ),
            // within: weighted by samples over the window (mean 100 = not above)
            ("avg-rt of a>100ms within 2s", &[50, 150, 50], Passed, None),
            (
                "avg-rt of a>90ms within 2s",
                &[50, 150, 50],
                Failed,
                Some((0, 2)),
            ),
            // over: needs a full window; two seconds of a 3 s window do not count
            ("avg-rt of a>100ms over 3s", &[300, 300], NoData, None),
            (
                "avg-rt of a>100ms over 3s",
                &[300, 300, 300],
                Failed,
                Some((0, 3)),
            ),
            // cumulative at the end, no timeframe
            ("avg-rt of a>100ms", &[50, 50, 500], Failed, Some((0, 3))),
            ("avg-rt of a>300ms", &[50, 50, 500], Passed, None),
            // non-failed: a notice
            (
                "avg-rt of a>100ms, continue as non-failed",
                &[500],
                Notice,
                Some((0, 1)),
            ),
            // no data: a label that got no sample fails
            ("avg-rt of b>100ms", &[50], NoData, None),
            ("avg-rt of b>100ms for 2s", &[50, 50], NoData, None),
            // != and <
            ("avg-rt of a!=50ms", &[50, 50], Passed, None),
            (
                "avg-rt of a<60ms within 1s",
                &[70, 50],
                Failed,
                Some((1, 2)),
            ),
            // percentiles at any level
            ("p99.9 of a>100ms", &[50, 150], Failed, Some((0, 2))),
            ("p50>120ms over 2s", &[50, 150, 150], Failed, Some((1, 3))),
            ("p75>120ms over 2s", &[50, 150, 150], Failed, Some((0, 2))),
            ("p75>160ms over 2s", &[50, 150, 150], Passed, None),
        ];
        for (text, ms, verdict, window) in cases {
            let got = judge(crit(text), &latencies(ms));
            assert_eq!(got, (*verdict, *window), "{text} on {ms:?}");
        }
    }

    #[test]
    fn sticky_triggers_keep_the_first_window() {
        let store = latencies(&[300, 50, 50, 300]);
        let (verdict, window) = judge(crit("avg-rt of a>100ms within 1s"), &store);
        assert_eq!((verdict, window), (Verdict::Failed, Some((0, 1))));
    }

    #[test]
    fn stop_criteria_are_reported_once_when_they_trigger() {
        let store = latencies(&[50, 300, 300, 300]);
        let mut j = Judge::new(
            &[
                crit("avg-rt of a>100ms for 2s, stop as failed"),
                crit("avg-rt of a>100ms for 1s, continue as failed"),
            ],
            |_| None,
        );
        assert!(j.closed(&store, 2).is_empty());
        assert!(j.triggered(1), "continue triggers without stopping");
        assert_eq!(j.closed(&store, 3), vec![0]);
        assert!(j.closed(&store, 4).is_empty(), "sticky: not reported again");
        assert_eq!(
            j.summary().as_deref(),
            Some("criteria triggered: avg-rt of a>100ms for 2s, stop as failed and 1 more")
        );
        assert_eq!(
            Judge::new(&[crit("fail>1%")], |_| None)
                .summary()
                .as_deref(),
            Some("criteria: 1 ok so far")
        );
    }

    #[test]
    fn label_scoped_vs_overall_and_shares() {
        let mut s = Store::default();
        add(&mut s, 0, "ok", 10, 90, true);
        add(&mut s, 0, "bad", 10, 10, false);
        s.set_end(Duration::from_secs(1));
        assert_eq!(judge(crit("fail>5%"), &s).0, Verdict::Failed);
        assert_eq!(judge(crit("fail>15%"), &s).0, Verdict::Passed);
        assert_eq!(judge(crit("fail of ok>0%"), &s).0, Verdict::Passed);
        assert_eq!(judge(crit("fail of bad>99%"), &s).0, Verdict::Failed);
        assert_eq!(judge(crit("rc503>9"), &s).0, Verdict::Failed);
        assert_eq!(judge(crit("rc5??>10%"), &s).0, Verdict::Passed);
        assert_eq!(judge(crit("hits of ok<90"), &s).0, Verdict::Passed);
        // A scoped criterion without a label reads its scenario's labels only.
        let mut j = Judge::new(&[crit("fail>5%")], |_| Some(vec!["ok".to_owned()]));
        j.closed(&s, 1);
        assert_eq!(j.finish(&s, 1)[0].verdict, Verdict::Passed);
    }

    #[test]
    fn monitoring_criteria() {
        let mut s = latencies(&[10, 10, 10, 10]);
        for (t, v) in [(0, 100.0), (1, 600.0), (2, 700.0), (3, 200.0)] {
            s.record_metric(t, "srv/sum_workers_memory_rss", v * 1e6);
        }
        let c = "srv/sum_workers_memory_rss>512MB for 2s";
        assert_eq!(judge(crit(c), &s), (Verdict::Failed, Some((1, 3))));
        let c = "srv/sum_workers_memory_rss>512MB for 3s";
        assert_eq!(judge(crit(c), &s).0, Verdict::Passed);
        // Cumulative: the mean of every reading.
        assert_eq!(
            judge(crit("srv/sum_workers_memory_rss>400MB"), &s).0,
            Verdict::Passed
        );
        assert_eq!(judge(crit("srv/total_workers>1"), &s).0, Verdict::NoData);
        // A reading every other second still makes a `for` streak.
        let mut sparse = latencies(&[10, 10, 10, 10, 10]);
        for t in [0, 2, 4] {
            sparse.record_metric(t, "srv/cpu", 95.0);
        }
        assert_eq!(
            judge(crit("srv/cpu>90 for 5s"), &sparse),
            (Verdict::Failed, Some((0, 5)))
        );
    }

    #[test]
    fn expressions() {
        let mut s = Store::default();
        add(&mut s, 0, "infer", 10, 99, true);
        add(&mut s, 0, "infer", 500, 1, true);
        s.record_metric(0, "srv/total_workers", 4.0);
        s.set_end(Duration::from_secs(1));
        let run = |e: &str| {
            let mut j = Judge::new(&[expr(e)], |_| None);
            j.closed(&s, 1);
            j.finish(&s, 1).remove(0)
        };
        assert_eq!(
            run(r#"p(99.9, "infer") > 3 * p(50, "infer")"#).verdict,
            Verdict::Failed
        );
        assert_eq!(run(r#"avg_rt("infer") > 100"#).verdict, Verdict::Passed);
        assert_eq!(
            run(r#"hits() < 100 || metric("srv/total_workers") < 4"#).verdict,
            Verdict::Passed
        );
        let missing = run(r#"p(99, "nothing") > 1"#);
        assert_eq!(missing.verdict, Verdict::NoData);
        assert!(
            missing
                .note
                .unwrap_or_default()
                .contains("no data for p(99, \"nothing\")")
        );
    }

    #[test]
    fn validation_and_evaluation_know_the_same_functions() {
        let mut registered: Vec<&str> = expr_functions().into_iter().map(|(n, _)| n).collect();
        registered.push("metric");
        registered.sort_unstable();
        let mut listed = EXPR_FUNCTIONS.to_vec();
        listed.sort_unstable();
        assert_eq!(registered, listed);
    }

    #[test]
    fn values_are_written_in_the_threshold_unit() {
        let d = Some(Threshold::Duration(Duration::ZERO));
        assert_eq!(format_value(d, 0.1523), "152.3ms");
        assert_eq!(format_value(d, 2.5), "2.5s");
        assert_eq!(format_value(Some(Threshold::Percent(1.0)), 2.5), "2.5%");
        assert_eq!(format_value(Some(Threshold::Bytes(1)), 1.5e6), "1.5MB");
        assert_eq!(format_value(None, 17.0), "17");
    }
}
