//! The criterion grammar: `[message:] subject [of label] cond threshold
//! [for|within|over timeframe][, stop|continue [as failed|non-failed]]`.
//!
//! Taurus's own parser accepts trailing garbage, unknown actions and `=<`, and splits a label
//! such as `http://h/x` at its colon; here each of those is an error with the position and a
//! fix. Labels may be quoted (`avg-rt of "http://h/x">1s`), and `!=` is accepted.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use serde::Serialize;

use crate::metrics::{Agg, METRIC_NAMES, Unit, is_metric};
use crate::suite::units::{parse_duration, parse_percent, parse_size};

/// A request KPI, by its Taurus name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kpi {
    Hits,
    Succ,
    Fail,
    Bytes,
    AvgRt,
    AvgLt,
    AvgCt,
    StdevRt,
    Concurrency,
    Throughput,
    Dropped,
    Unfinished,
    /// The share of LLM requests that met every goodput SLO.
    Goodput,
    /// The share of LLM responses cut at the token limit (`finish_reason: length`).
    Truncated,
}

/// Subject names and their aliases, as Taurus spells them.
pub const KPI_NAMES: &[(&str, Kpi)] = &[
    ("hits", Kpi::Hits),
    ("succ", Kpi::Succ),
    ("success", Kpi::Succ),
    ("fail", Kpi::Fail),
    ("failures", Kpi::Fail),
    ("bytes", Kpi::Bytes),
    ("avg-rt", Kpi::AvgRt),
    ("avg-lt", Kpi::AvgLt),
    ("avg-ct", Kpi::AvgCt),
    ("stdev-rt", Kpi::StdevRt),
    ("concurrency", Kpi::Concurrency),
    ("concurr", Kpi::Concurrency),
    ("throughput", Kpi::Throughput),
    ("dropped", Kpi::Dropped),
    ("unfinished", Kpi::Unfinished),
    ("goodput", Kpi::Goodput),
    ("truncated", Kpi::Truncated),
];

impl Kpi {
    pub fn name(self) -> &'static str {
        KPI_NAMES
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("", |(n, _)| n)
    }

    fn is_time(self) -> bool {
        matches!(
            self,
            Self::AvgRt | Self::AvgLt | Self::AvgCt | Self::StdevRt
        )
    }

    fn is_count(self) -> bool {
        matches!(
            self,
            Self::Hits
                | Self::Succ
                | Self::Fail
                | Self::Dropped
                | Self::Unfinished
                | Self::Goodput
                | Self::Truncated
        )
    }
}

/// A figure of a capacity sweep or search (`capacity.<name>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Figure {
    /// The load value at the knee of the throughput curve.
    Knee,
    /// The load value where p99 latency starts to climb.
    LatencyKnee,
    /// The first load value whose efficiency fell under 80% of the first step's.
    Saturation,
    /// The highest served throughput of any step (requests per second).
    MaxThroughput,
    /// The largest load meeting every SLO.
    SloLimit,
    /// The recommended operating point.
    Recommended,
}

/// `capacity.<name>` figures.
pub const FIGURES: &[(&str, Figure)] = &[
    ("knee", Figure::Knee),
    ("latency-knee", Figure::LatencyKnee),
    ("saturation", Figure::Saturation),
    ("max-throughput", Figure::MaxThroughput),
    ("slo-limit", Figure::SloLimit),
    ("recommended", Figure::Recommended),
];

impl Figure {
    pub fn name(self) -> &'static str {
        FIGURES
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("", |(n, _)| n)
    }
}

/// What a criterion measures.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Subject {
    Kpi {
        kpi: Kpi,
    },
    /// `p99.9`: a latency percentile from the HDR histogram.
    Percentile {
        level: f64,
    },
    /// `p95-ttft`, `avg-itl`, `max-server.inference`: an aggregate of a named distribution
    /// (the Taurus forms `avg-rt`, `avg-lt`, `avg-ct`, `stdev-rt` stay KPIs).
    Measure {
        agg: Agg,
        metric: String,
    },
    /// `rc5??`: the count of response codes matching a glob (`rcException` for errors).
    ResponseCode {
        pattern: String,
    },
    /// `source/metric`, from a monitoring source.
    Monitoring {
        source: String,
        metric: String,
    },
    /// `capacity.knee`, `capacity.max-throughput`, ...: a figure of the suite's capacity
    /// sweep or search, judged once at the end of the load.
    Capacity {
        figure: Figure,
    },
    /// `p95 of source/histogram`: a quantile of a Prometheus histogram's observations in the
    /// window, from its bucket rates (PromQL's `histogram_quantile`); `avg of
    /// source/histogram`: their mean (`rate(_sum) / rate(_count)`).
    HistogramQuantile {
        source: String,
        metric: String,
        /// `Percentile` or `Avg`.
        agg: Agg,
    },
}

impl Subject {
    pub fn is_monitoring(&self) -> bool {
        matches!(
            self,
            Self::Monitoring { .. } | Self::HistogramQuantile { .. }
        )
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kpi { kpi } => f.write_str(kpi.name()),
            Self::Percentile { level } => write!(f, "p{level}"),
            Self::Measure { agg, metric } => write!(f, "{agg}-{metric}"),
            Self::ResponseCode { pattern } => write!(f, "rc{pattern}"),
            Self::Monitoring { source, metric } => write!(f, "{source}/{metric}"),
            Self::HistogramQuantile {
                source,
                metric,
                agg,
            } => write!(f, "{agg} of {source}/{metric}"),
            Self::Capacity { figure } => write!(f, "capacity.{}", figure.name()),
        }
    }
}

/// The measurement subjects with `agg` a user can write (`p95-ttft`, ...), for did-you-mean.
pub fn measure_names(agg: &str) -> Vec<String> {
    METRIC_NAMES.iter().map(|m| format!("{agg}-{m}")).collect()
}

/// The subject names a user can write, for did-you-mean.
pub fn subject_names() -> impl Iterator<Item = &'static str> {
    KPI_NAMES.iter().map(|(n, _)| *n).chain([
        "p95-ttft",
        "avg-itl",
        "avg-tpot",
        "avg-tokens-per-s",
        "p95-e2e",
        "p50",
        "p90",
        "p95",
        "p99",
        "p99.9",
        "rc200",
        "rc5??",
        "rcException",
    ])
}

/// Parses a subject name: a KPI, `pN`, `<agg>-<measurement>`, `rc<glob>` or `source/metric`.
pub fn parse_subject(text: &str) -> Result<Subject, String> {
    if let Some(name) = text.strip_prefix("capacity.") {
        return FIGURES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, figure)| Subject::Capacity { figure: *figure })
            .ok_or_else(|| {
                let names: Vec<String> = FIGURES
                    .iter()
                    .map(|(n, _)| format!("capacity.{n}"))
                    .collect();
                format!(
                    "unknown capacity figure `{text}`: figures are {}",
                    names.join(", ")
                )
            });
    }
    if let Some((source, metric)) = text.split_once('/') {
        if source.is_empty() || metric.is_empty() {
            return Err(format!("`{text}` is not `source/metric`"));
        }
        return Ok(Subject::Monitoring {
            source: source.to_owned(),
            metric: metric.to_owned(),
        });
    }
    if let Some((_, kpi)) = KPI_NAMES.iter().find(|(n, _)| *n == text) {
        return Ok(Subject::Kpi { kpi: *kpi });
    }
    if let Some((agg, metric)) = text.split_once('-')
        && let Some(agg) = Agg::parse(agg)
    {
        return if is_metric(metric) {
            Ok(Subject::Measure {
                agg,
                metric: metric.to_owned(),
            })
        } else {
            Err(format!(
                "unknown measurement `{metric}` in `{text}`: measurements are {}, and server.<component>",
                METRIC_NAMES.join(", ")
            ))
        };
    }
    let level = text
        .strip_prefix("perc_")
        .or_else(|| text.strip_prefix('p'));
    if let Some(level) = level.filter(|l| l.starts_with(|c: char| c.is_ascii_digit())) {
        return match level.parse::<f64>() {
            Ok(level) if (0.0..=100.0).contains(&level) => Ok(Subject::Percentile { level }),
            _ => Err(format!("`{text}` is not a percentile between p0 and p100")),
        };
    }
    if let Some(pattern) = text.strip_prefix("rc").filter(|p| !p.is_empty()) {
        let valid = pattern == "Exception"
            || pattern
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '?' | '*' | 'x' | 'X'));
        return if valid {
            Ok(Subject::ResponseCode {
                pattern: pattern.to_owned(),
            })
        } else {
            Err(format!(
                "`{text}` is not a response code such as rc200, rc5?? or rcException"
            ))
        };
    }
    Err(format!("unknown subject `{text}`"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

impl Op {
    /// Whether `value op threshold` holds.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Gt => value > threshold,
            Self::Ge => value >= threshold,
            Self::Lt => value < threshold,
            Self::Le => value <= threshold,
            Self::Eq => value == threshold,
            Self::Ne => value != threshold,
        }
    }

    pub fn parse(text: &str) -> Result<Self, (String, Option<&'static str>)> {
        match text {
            "<" => Ok(Self::Lt),
            ">" => Ok(Self::Gt),
            "<=" => Ok(Self::Le),
            ">=" => Ok(Self::Ge),
            "=" | "==" => Ok(Self::Eq),
            "!=" => Ok(Self::Ne),
            "=<" => Err(("`=<` is not an operator".into(), Some("<="))),
            "=>" => Err(("`=>` is not an operator".into(), Some(">="))),
            "<>" => Err(("`<>` is not an operator".into(), Some("!="))),
            other => Err((format!("`{other}` is not an operator"), None)),
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Self::Lt => "<",
            Self::Gt => ">",
            Self::Le => "<=",
            Self::Ge => ">=",
            Self::Eq => "=",
            Self::Ne => "!=",
        }
    }
}

pub const OPERATORS: &str = "`>`, `<`, `>=`, `<=`, `=`, `!=`";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Logic {
    /// The condition held every second for the whole timeframe.
    For,
    /// The aggregate over the last timeframe (partial window allowed).
    Within,
    /// The aggregate over a full last timeframe.
    Over,
}

impl Logic {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "for" => Some(Self::For),
            "within" => Some(Self::Within),
            "over" => Some(Self::Over),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::For => "for",
            Self::Within => "within",
            Self::Over => "over",
        }
    }
}

/// A typed threshold, depending on the subject.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "unit", content = "value")]
pub enum Threshold {
    /// For times: avg-rt, percentiles, ...
    Duration(#[serde(serialize_with = "crate::suite::units::human_serde::duration")] Duration),
    /// A share of all samples, for succ, fail, rc and dropped.
    Percent(f64),
    Bytes(u64),
    Number(f64),
}

/// Reads `text` as the kind of threshold `subject` compares against.
pub fn parse_threshold(subject: &Subject, text: &str) -> Result<Threshold, String> {
    let text = text.trim();
    let number = || text.parse::<f64>().ok().filter(|n| n.is_finite());
    match subject {
        Subject::Kpi { kpi } if kpi.is_time() => time_threshold(text),
        Subject::Percentile { .. } => time_threshold(text),
        Subject::Measure { metric, .. } if Unit::of(metric) == Unit::Seconds => {
            time_threshold(text)
        }
        Subject::Measure { .. } => number()
            .map(Threshold::Number)
            .ok_or_else(|| format!("`{text}` is not a number")),
        // Prometheus histograms are in seconds by convention; a bare number is that number.
        Subject::HistogramQuantile { .. } => text
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Threshold::Number)
            .map_or_else(|| time_threshold(text), Ok),
        Subject::Kpi { kpi: Kpi::Hits } => number()
            .map(Threshold::Number)
            .ok_or_else(|| format!("`{text}` is not a count of samples")),
        Subject::Kpi { kpi } if kpi.is_count() => count_threshold(text),
        Subject::ResponseCode { .. } => count_threshold(text),
        Subject::Kpi { kpi: Kpi::Bytes } => parse_size(text)
            .map(Threshold::Bytes)
            .map_err(|e| format!("{e}: write a size such as 1MB")),
        Subject::Kpi { .. } => number()
            .map(Threshold::Number)
            .ok_or_else(|| format!("`{text}` is not a number")),
        Subject::Monitoring { .. } => number()
            .map(Threshold::Number)
            .or_else(|| parse_size(text).ok().map(Threshold::Bytes))
            .ok_or_else(|| format!("`{text}` is not a number")),
        // Users or requests per second: `8`, `200/s`.
        Subject::Capacity { .. } => text
            .strip_suffix("/s")
            .unwrap_or(text)
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Threshold::Number)
            .ok_or_else(|| {
                format!("`{text}` is not a load: write users (`8`) or a rate (`200/s`)")
            }),
    }
}

/// A threshold relative to the baseline run's whole-run value of the same KPI:
/// `baseline+10%`, `baseline-5%`, `baseline*1.2`, `baseline+20ms`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Relative {
    pub offset: Offset,
    /// As written: `baseline+10%`.
    pub text: String,
    /// `on-missing-baseline`: without a baseline the criterion fails (`Some(true)`) or is a
    /// notice (`Some(false)`); `None` leaves it to `settings.on-missing-baseline`.
    pub fail_without_baseline: Option<bool>,
}

/// How a relative threshold departs from the baseline's value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum Offset {
    /// `+N%` / `-N%` (signed): percent of the baseline's value; percentage points for the
    /// rates (`fail`, `succ`, `dropped`, `unfinished`, `rc...`).
    Percent(f64),
    /// `*F`: the baseline's value times F.
    Factor(f64),
    /// `+20ms`, `-3` (signed): in the subject's unit (seconds for times).
    Absolute(f64),
}

impl Subject {
    /// Whether its values are shares of all samples (percent): a relative `+1%` is then
    /// percentage points.
    pub fn is_rate(&self) -> bool {
        match self {
            Self::Kpi { kpi } => kpi.is_count() && *kpi != Kpi::Hits,
            Self::ResponseCode { .. } => true,
            _ => false,
        }
    }

    /// The threshold a relative criterion is judged against once its baseline value is
    /// known, in the unit its values are observed in.
    pub fn threshold_of(&self, value: f64) -> Threshold {
        match self {
            Self::Kpi { kpi } if kpi.is_time() => {
                Threshold::Duration(Duration::from_secs_f64(value.max(0.0)))
            }
            Self::Percentile { .. } | Self::HistogramQuantile { .. } => {
                Threshold::Duration(Duration::from_secs_f64(value.max(0.0)))
            }
            Self::Measure { metric, .. } if Unit::of(metric) == Unit::Seconds => {
                Threshold::Duration(Duration::from_secs_f64(value.max(0.0)))
            }
            _ if self.is_rate() => Threshold::Percent(value),
            Self::Kpi { kpi: Kpi::Bytes } => Threshold::Bytes(value.max(0.0).round() as u64),
            _ => Threshold::Number(value),
        }
    }
}

/// Reads `baseline+10%`, `baseline-5%`, `baseline*1.2` or `baseline+20ms`; `None` when
/// `text` does not start with `baseline`.
pub fn parse_relative(subject: &Subject, text: &str) -> Option<Result<Relative, String>> {
    let rest = text.trim().strip_prefix("baseline")?;
    let rest = rest.trim_start();
    let fix = "write `baseline+10%`, `baseline-5%`, `baseline*1.2` or `baseline+20ms`";
    let offset = if rest.is_empty() {
        Ok(Offset::Percent(0.0))
    } else if let Some(f) = rest.strip_prefix('*') {
        match f.trim().parse::<f64>() {
            Ok(f) if f.is_finite() && f > 0.0 => Ok(Offset::Factor(f)),
            _ => Err(format!("`{}` is not a positive factor: {fix}", f.trim())),
        }
    } else if let Some((sign, amount)) = rest
        .strip_prefix('+')
        .map(|a| (1.0, a))
        .or_else(|| rest.strip_prefix('-').map(|a| (-1.0, a)))
    {
        let amount = amount.trim();
        if let Some(p) = amount.strip_suffix('%') {
            match p.trim().parse::<f64>() {
                Ok(p) if p.is_finite() && p >= 0.0 => Ok(Offset::Percent(sign * p)),
                _ => Err(format!("`{amount}` is not a percentage: {fix}")),
            }
        } else {
            match parse_threshold(subject, amount) {
                Ok(Threshold::Percent(p)) => Ok(Offset::Percent(sign * p)),
                Ok(t) => Ok(Offset::Absolute(
                    sign * crate::criteria::eval::threshold_value(t),
                )),
                Err(why) => Err(format!("{why}: {fix}")),
            }
        }
    } else {
        Err(format!("unexpected `{rest}` after `baseline`: {fix}"))
    };
    Some(offset.map(|offset| Relative {
        offset,
        text: text.trim().to_owned(),
        fail_without_baseline: None,
    }))
}

impl Relative {
    /// The threshold for a baseline value `base`, in the same unit; `spread` (percent, or
    /// points for a rate) is how much the KPI moves between runs in the history: a
    /// threshold nearer the baseline than that is moved out to it.
    pub fn threshold(&self, subject: &Subject, base: f64, spread: Option<f64>) -> f64 {
        let rate = subject.is_rate();
        let t = match self.offset {
            Offset::Percent(p) if rate => base + p,
            Offset::Percent(p) => base * (1.0 + p / 100.0),
            Offset::Factor(f) => base * f,
            Offset::Absolute(a) => base + a,
        };
        let Some(spread) = spread.filter(|s| *s > 0.0) else {
            return t;
        };
        let direction = (t - base).signum();
        if t == base {
            return t;
        }
        let bar = if rate {
            spread
        } else {
            base.abs() * spread / 100.0
        };
        if (t - base).abs() < bar {
            base + direction * bar
        } else {
            t
        }
    }
}

fn time_threshold(text: &str) -> Result<Threshold, String> {
    parse_duration(text)
        .map(Threshold::Duration)
        .map_err(|e| format!("{e}: write a time such as 150ms or 1.5s"))
}

fn count_threshold(text: &str) -> Result<Threshold, String> {
    if text.ends_with('%') {
        return parse_percent(text)
            .map(Threshold::Percent)
            .map_err(|e| e.to_string());
    }
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .map(Threshold::Number)
        .ok_or_else(|| format!("`{text}` is not a count or a percentage such as 5%"))
}

/// A piece of a criterion string and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub text: String,
    pub range: Range<usize>,
}

/// A short-form criterion split into its parts; values are checked by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShortCriterion {
    pub message: Option<Part>,
    pub subject: Part,
    pub label: Option<Part>,
    pub op: Part,
    pub threshold: Part,
    pub logic: Option<Part>,
    pub timeframe: Option<Part>,
    /// `stop` or `continue`.
    pub action: Option<Part>,
    /// `failed` or `non-failed`.
    pub outcome: Option<Part>,
}

/// A grammar error with the byte range of the offending text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrammarError {
    pub message: String,
    pub range: Range<usize>,
    pub suggestion: Option<String>,
    pub hint: String,
}

pub const SHORT_FORM: &str = "criteria read `[message:] subject [of label] cond threshold [for|within|over timeframe][, stop|continue [as failed|non-failed]]`, e.g. `avg-rt of infer>150ms for 10s, stop as failed`";

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    /// Takes characters while `keep` holds.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> Part {
        let start = self.pos;
        let len = self.rest().find(|c| !keep(c)).unwrap_or(self.rest().len());
        self.pos += len;
        Part {
            text: self.text[start..self.pos].to_owned(),
            range: start..self.pos,
        }
    }

    fn word(&mut self) -> Part {
        self.take_while(|c| c.is_alphanumeric() || c == '-' || c == '_')
    }

    /// An error at `range`, clamped to the text (an empty range marks its end).
    fn error(&self, range: Range<usize>, message: impl Into<String>) -> GrammarError {
        let end = range.end.min(self.text.len());
        let range = range.start.min(end)..end;
        GrammarError {
            message: message.into(),
            range,
            suggestion: None,
            hint: SHORT_FORM.to_owned(),
        }
    }
}

fn is_op_char(c: char) -> bool {
    matches!(c, '<' | '>' | '=' | '!')
}

/// Splits a short-form criterion into its parts.
pub fn parse_short(text: &str) -> Result<ShortCriterion, GrammarError> {
    let mut c = Cursor { text, pos: 0 };
    let message = split_message(text)?;
    if let Some(m) = &message {
        c.pos = m.range.end + 1;
    }
    c.skip_ws();
    let subject = read_subject(&mut c);
    if subject.text.is_empty() {
        return Err(c.error(c.pos..c.pos + 1, "missing subject"));
    }
    c.skip_ws();
    let mut label = None;
    if c.rest().starts_with("of ")
        || c.rest().starts_with("of\t")
        || c.rest().starts_with("of\"")
        || c.rest().starts_with("of'")
    {
        c.pos += 2;
        c.skip_ws();
        label = Some(read_label(&mut c)?);
        c.skip_ws();
    }
    let op = c.take_while(is_op_char);
    if op.text.is_empty() {
        let found = c.word();
        let range = if found.text.is_empty() {
            c.pos..c.pos + 1
        } else {
            found.range
        };
        return Err(c.error(
            range,
            format!("expected a comparison operator ({OPERATORS})"),
        ));
    }
    if let Err((message, suggestion)) = Op::parse(&op.text) {
        let mut e = c.error(op.range.clone(), message);
        e.suggestion = suggestion.map(str::to_owned);
        e.hint = format!("operators are {OPERATORS}");
        return Err(e);
    }
    c.skip_ws();
    let threshold = c.take_while(|ch| !ch.is_whitespace() && ch != ',');
    if threshold.text.is_empty() {
        return Err(c.error(c.pos.min(text.len())..c.pos + 1, "missing threshold"));
    }
    c.skip_ws();
    let (mut logic, mut timeframe) = (None, None);
    if !c.rest().is_empty() && !c.rest().starts_with(',') {
        let word = c.word();
        if Logic::parse(&word.text).is_none() {
            let range = if word.text.is_empty() {
                c.pos..text.len()
            } else {
                word.range.clone()
            };
            let mut e = c.error(
                range.clone(),
                format!("unexpected `{}` after the threshold", &text[range]),
            );
            e.suggestion =
                crate::suite::diagnostics::did_you_mean(&word.text, ["for", "within", "over"])
                    .map(str::to_owned);
            return Err(e);
        }
        c.skip_ws();
        let tf = c.take_while(|ch| !ch.is_whitespace() && ch != ',');
        if tf.text.is_empty() {
            return Err(c.error(
                word.range,
                format!("`{}` needs a timeframe such as 10s", word.text),
            ));
        }
        logic = Some(word);
        timeframe = Some(tf);
        c.skip_ws();
    }
    let (mut action, mut outcome) = (None, None);
    if c.rest().starts_with(',') {
        c.pos += 1;
        c.skip_ws();
        let word = c.word();
        if word.text != "stop" && word.text != "continue" {
            let range = if word.text.is_empty() {
                c.pos..text.len().max(c.pos + 1)
            } else {
                word.range.clone()
            };
            let shown = if word.text.is_empty() {
                c.rest().trim()
            } else {
                word.text.as_str()
            };
            let mut e = c.error(
                range,
                format!("unknown action `{shown}`; expected `stop` or `continue`"),
            );
            e.suggestion =
                crate::suite::diagnostics::did_you_mean(&word.text, ["stop", "continue"])
                    .map(str::to_owned);
            return Err(e);
        }
        action = Some(word);
        c.skip_ws();
        if c.rest().starts_with("as") {
            let as_word = c.word();
            if as_word.text == "as" {
                c.skip_ws();
                let result = c.word();
                if result.text != "failed" && result.text != "non-failed" {
                    let range = if result.text.is_empty() {
                        as_word.range
                    } else {
                        result.range.clone()
                    };
                    let mut e = c.error(
                        range,
                        format!(
                            "expected `failed` or `non-failed` after `as`, found `{}`",
                            result.text
                        ),
                    );
                    e.suggestion = crate::suite::diagnostics::did_you_mean(
                        &result.text,
                        ["failed", "non-failed"],
                    )
                    .map(str::to_owned);
                    return Err(e);
                }
                outcome = Some(result);
                c.skip_ws();
            } else {
                c.pos = as_word.range.start;
            }
        }
    }
    if !c.rest().trim().is_empty() {
        let start = c.pos;
        return Err(c.error(
            start..text.trim_end().len(),
            format!(
                "unexpected `{}` at the end of the criterion",
                c.rest().trim()
            ),
        ));
    }
    Ok(ShortCriterion {
        message,
        subject,
        label,
        op,
        threshold,
        logic,
        timeframe,
        action,
        outcome,
    })
}

/// The subject: a name up to whitespace, an operator or `,`, where a Prometheus selector's
/// `{...}` is read whole (its `=`, `,` and quoted values are part of it).
fn read_subject(c: &mut Cursor<'_>) -> Part {
    let start = c.pos;
    let mut braces = false;
    let mut quoted = false;
    let mut escaped = false;
    let mut end = c.text.len();
    for (i, ch) in c.rest().char_indices() {
        if quoted {
            match (escaped, ch) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match ch {
            '{' => braces = true,
            '}' if braces => braces = false,
            '"' if braces => quoted = true,
            _ if braces => {}
            c if c.is_whitespace() || is_op_char(c) || c == ',' => {
                end = start + i;
                break;
            }
            _ => {}
        }
    }
    c.pos = end;
    Part {
        text: c.text[start..end].to_owned(),
        range: start..end,
    }
}

fn read_label(c: &mut Cursor<'_>) -> Result<Part, GrammarError> {
    let start = c.pos;
    if let Some(quote) = c.rest().chars().next().filter(|q| *q == '"' || *q == '\'') {
        let body = &c.rest()[1..];
        let Some(end) = body.find(quote) else {
            return Err(c.error(start..c.text.len(), "unterminated quoted label"));
        };
        c.pos = start + 1 + end + 1;
        return Ok(Part {
            text: body[..end].to_owned(),
            range: start..c.pos,
        });
    }
    let raw = c.take_while(|ch| !is_op_char(ch));
    let trimmed = raw.text.trim_end();
    if trimmed.is_empty() {
        return Err(c.error(start..start + 1, "missing label after `of`"));
    }
    Ok(Part {
        text: trimmed.to_owned(),
        range: start..start + trimmed.len(),
    })
}

/// Finds a leading `message:`. A colon inside what reads as `subject of label` is a label
/// with a colon, which must be quoted.
fn split_message(text: &str) -> Result<Option<Part>, GrammarError> {
    let Some(colon) = text.find(':') else {
        return Ok(None);
    };
    let prefix = &text[..colon];
    if prefix.contains(is_op_char) || prefix.contains(['"', '\'']) {
        return Ok(None);
    }
    let mut words = prefix.split_whitespace();
    let first = words.next().unwrap_or("");
    if words.next() == Some("of") && parse_subject(first).is_ok() {
        let label_start = prefix.find(" of ").map_or(0, |i| i + 4);
        let label_start =
            label_start + text[label_start..].len() - text[label_start..].trim_start().len();
        let label_end = text[label_start..]
            .find(is_op_char)
            .map_or(text.len(), |i| label_start + i);
        let label = text[label_start..label_end].trim_end();
        return Err(GrammarError {
            message: "a label that contains `:` must be quoted".into(),
            range: label_start..label_start + label.len(),
            suggestion: None,
            hint: format!(
                "write `{}\"{label}\"{}`; unquoted, Taurus reads everything before the first `:` as the message",
                &text[..label_start],
                &text[label_start + label.len()..]
            ),
        });
    }
    let message = prefix.trim();
    let start = text.find(message).unwrap_or(0);
    Ok(Some(Part {
        text: message.to_owned(),
        range: start..colon,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> Vec<Option<String>> {
        let c = parse_short(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        let t = |p: &Option<Part>| p.as_ref().map(|p| p.text.clone());
        vec![
            t(&c.message),
            Some(c.subject.text),
            t(&c.label),
            Some(c.op.text),
            Some(c.threshold.text),
            t(&c.logic),
            t(&c.timeframe),
            t(&c.action),
            t(&c.outcome),
        ]
    }

    fn s(v: &[Option<&str>]) -> Vec<Option<String>> {
        v.iter().map(|x| x.map(str::to_owned)).collect()
    }

    #[test]
    fn parses_taurus_forms() {
        let cases: &[(&str, &[Option<&str>])] = &[
            (
                "avg-rt>150ms",
                &[
                    None,
                    Some("avg-rt"),
                    None,
                    Some(">"),
                    Some("150ms"),
                    None,
                    None,
                    None,
                    None,
                ],
            ),
            (
                "avg-rt of infer>150ms for 10s, stop as failed",
                &[
                    None,
                    Some("avg-rt"),
                    Some("infer"),
                    Some(">"),
                    Some("150ms"),
                    Some("for"),
                    Some("10s"),
                    Some("stop"),
                    Some("failed"),
                ],
            ),
            (
                "My criteria description: avg-rt of label>100ms for 1m, continue as non-failed",
                &[
                    Some("My criteria description"),
                    Some("avg-rt"),
                    Some("label"),
                    Some(">"),
                    Some("100ms"),
                    Some("for"),
                    Some("1m"),
                    Some("continue"),
                    Some("non-failed"),
                ],
            ),
            (
                "avg-rt of double label>100ms for 1m, continue as non-failed",
                &[
                    None,
                    Some("avg-rt"),
                    Some("double label"),
                    Some(">"),
                    Some("100ms"),
                    Some("for"),
                    Some("1m"),
                    Some("continue"),
                    Some("non-failed"),
                ],
            ),
            (
                "p90 of s2_p90 >250ms  , stop as failed",
                &[
                    None,
                    Some("p90"),
                    Some("s2_p90"),
                    Some(">"),
                    Some("250ms"),
                    None,
                    None,
                    Some("stop"),
                    Some("failed"),
                ],
            ),
            (
                "hits of reserve >10 for 13s, continue as failed",
                &[
                    None,
                    Some("hits"),
                    Some("reserve"),
                    Some(">"),
                    Some("10"),
                    Some("for"),
                    Some("13s"),
                    Some("continue"),
                    Some("failed"),
                ],
            ),
            (
                "rc4??>50%",
                &[
                    None,
                    Some("rc4??"),
                    None,
                    Some(">"),
                    Some("50%"),
                    None,
                    None,
                    None,
                    None,
                ],
            ),
            (
                "concurr>=10 for 15s, stop as non-failed",
                &[
                    None,
                    Some("concurr"),
                    None,
                    Some(">="),
                    Some("10"),
                    Some("for"),
                    Some("15s"),
                    Some("stop"),
                    Some("non-failed"),
                ],
            ),
            (
                r#"avg-rt of "http://h/x">1s"#,
                &[
                    None,
                    Some("avg-rt"),
                    Some("http://h/x"),
                    Some(">"),
                    Some("1s"),
                    None,
                    None,
                    None,
                    None,
                ],
            ),
            (
                "fail!=0 within 5s, stop",
                &[
                    None,
                    Some("fail"),
                    None,
                    Some("!="),
                    Some("0"),
                    Some("within"),
                    Some("5s"),
                    Some("stop"),
                    None,
                ],
            ),
            (
                "local/cpu>90 over 10s",
                &[
                    None,
                    Some("local/cpu"),
                    None,
                    Some(">"),
                    Some("90"),
                    Some("over"),
                    Some("10s"),
                    None,
                    None,
                ],
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parts(text), s(expected), "{text}");
        }
    }

    fn error(text: &str) -> (String, String, Option<String>) {
        let e = parse_short(text).expect_err(text);
        (e.message, text[e.range].to_owned(), e.suggestion)
    }

    #[test]
    fn rejects_what_taurus_lets_through() {
        assert_eq!(
            error("avg-rt>150ms garbage"),
            (
                "unexpected `garbage` after the threshold".into(),
                "garbage".into(),
                None
            )
        );
        assert_eq!(
            error("avg-rt>150ms for 10s, stop as failed xyz"),
            (
                "unexpected `xyz` at the end of the criterion".into(),
                "xyz".into(),
                None
            )
        );
        assert_eq!(
            error("avg-rt>150ms, halt"),
            (
                "unknown action `halt`; expected `stop` or `continue`".into(),
                "halt".into(),
                None
            )
        );
        assert_eq!(
            error("avg-rt>150ms, stpo"),
            (
                "unknown action `stpo`; expected `stop` or `continue`".into(),
                "stpo".into(),
                Some("stop".into())
            )
        );
        assert_eq!(
            error("avg-rt=<150ms"),
            (
                "`=<` is not an operator".into(),
                "=<".into(),
                Some("<=".into())
            )
        );
        assert_eq!(
            error("avg-rt>150ms fro 10s"),
            (
                "unexpected `fro` after the threshold".into(),
                "fro".into(),
                Some("for".into())
            )
        );
        assert_eq!(
            error("avg-rt of http://h/x>1s").0,
            "a label that contains `:` must be quoted"
        );
        assert_eq!(error("avg-rt of http://h/x>1s").1, "http://h/x");
        assert_eq!(
            error("avg-rt 150ms").0,
            format!("expected a comparison operator ({OPERATORS})")
        );
        assert_eq!(error("avg-rt>").0, "missing threshold");
        assert_eq!(
            error("avg-rt>1s for").0,
            "`for` needs a timeframe such as 10s"
        );
    }

    /// `<agg>-<measurement>` names any distribution; the Taurus forms stay KPIs.
    #[test]
    fn measurement_subjects() {
        let measure = |agg, metric: &str| Subject::Measure {
            agg,
            metric: metric.to_owned(),
        };
        assert_eq!(
            parse_subject("p95-ttft"),
            Ok(measure(Agg::Percentile(95.0), "ttft"))
        );
        assert_eq!(
            parse_subject("p99.9-itl"),
            Ok(measure(Agg::Percentile(99.9), "itl"))
        );
        assert_eq!(
            parse_subject("avg-tokens-per-s"),
            Ok(measure(Agg::Avg, "tokens-per-s"))
        );
        assert_eq!(
            parse_subject("p99-server.inference"),
            Ok(measure(Agg::Percentile(99.0), "server.inference"))
        );
        assert_eq!(parse_subject("max-rt"), Ok(measure(Agg::Max, "rt")));
        assert_eq!(
            parse_subject("avg-rt"),
            Ok(Subject::Kpi { kpi: Kpi::AvgRt })
        );
        assert_eq!(
            parse_subject("goodput"),
            Ok(Subject::Kpi { kpi: Kpi::Goodput })
        );
        let unknown = parse_subject("avg-ttf").expect_err("no such measurement");
        assert!(unknown.contains("unknown measurement `ttf`"), "{unknown}");
        assert!(parse_subject("p95-server.").is_err());
        assert_eq!(
            measure(Agg::Percentile(95.0), "ttft").to_string(),
            "p95-ttft"
        );
        let ttft = measure(Agg::Percentile(95.0), "ttft");
        assert_eq!(
            parse_threshold(&ttft, "500ms"),
            Ok(Threshold::Duration(Duration::from_millis(500)))
        );
        let rate = measure(Agg::Avg, "tokens-per-s");
        assert_eq!(parse_threshold(&rate, "20"), Ok(Threshold::Number(20.0)));
        assert!(parse_threshold(&rate, "20ms").is_err());
        let goodput = Subject::Kpi { kpi: Kpi::Goodput };
        assert_eq!(
            parse_threshold(&goodput, "90%"),
            Ok(Threshold::Percent(90.0))
        );
        assert!(goodput.is_rate());
        let short = parse_short("p95-ttft of chat>500ms for 10s").expect("parses");
        assert_eq!(short.subject.text, "p95-ttft");
        assert_eq!(short.label.map(|l| l.text).as_deref(), Some("chat"));
    }

    #[test]
    fn subjects_and_thresholds() {
        assert_eq!(
            parse_subject("p99.9"),
            Ok(Subject::Percentile { level: 99.9 })
        );
        assert_eq!(
            parse_subject("perc_75"),
            Ok(Subject::Percentile { level: 75.0 })
        );
        assert!(parse_subject("p101").is_err());
        assert_eq!(
            parse_subject("rc5??"),
            Ok(Subject::ResponseCode {
                pattern: "5??".into()
            })
        );
        assert!(parse_subject("avg_rt").is_err());
        let p = Subject::Percentile { level: 99.0 };
        assert_eq!(
            parse_threshold(&p, "250ms"),
            Ok(Threshold::Duration(Duration::from_millis(250)))
        );
        assert_eq!(
            parse_threshold(&p, "50"),
            Ok(Threshold::Duration(Duration::from_secs(50)))
        );
        let fail = Subject::Kpi { kpi: Kpi::Fail };
        assert_eq!(parse_threshold(&fail, "80%"), Ok(Threshold::Percent(80.0)));
        assert!(parse_threshold(&Subject::Kpi { kpi: Kpi::Hits }, "5%").is_err());
        assert!(parse_threshold(&Subject::Kpi { kpi: Kpi::AvgRt }, "fast").is_err());
    }
}
