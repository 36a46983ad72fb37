//! The validated suite: what `plan` and `run` consume.
//!
//! [`Suite`] has every default resolved and every reference checked: scenario names exist,
//! criterion labels are request labels, monitoring subjects name a declared source and a metric
//! it provides. Nothing here refers to YAML, spans or serde input types.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::criteria::grammar::{Logic, Op, Subject, Threshold};
use crate::monitor::names::SourceKind;
pub use crate::suite::raw::{Arrival, AssertSubject, JunitDataSource};

#[derive(Clone, Debug, Serialize)]
pub struct Suite {
    /// The name reports use: the file stem, made unique among the suites of a run.
    pub name: String,
    pub path: PathBuf,
    pub settings: Settings,
    pub executions: Vec<Execution>,
    pub scenarios: Vec<Scenario>,
    pub services: Vec<Service>,
    /// Every monitoring source, from `server` services and `monitoring` modules.
    pub monitoring: Vec<MonitorSource>,
    pub reporters: Vec<Reporter>,
    pub criteria: Vec<Criterion>,
    /// MMS's `diff_percent` comparisons of monitoring series.
    pub diff_checks: Vec<DiffCheck>,
    /// Every request and transaction label, in first-seen order.
    pub labels: Vec<String>,
    /// The merged, interpolated config (written as `effective.yml`).
    #[serde(skip)]
    pub effective: serde_json::Value,
    /// The executions and scenarios as they run, the same from run to run of the same load
    /// (ports as their names): hashed into the suite's identity for comparisons.
    #[serde(skip)]
    pub load_identity: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub artifacts_dir: Option<String>,
    pub env: Vec<(String, String)>,
    pub ports: Vec<String>,
    pub secrets: Vec<String>,
    pub ramp_up_exclude: bool,
    #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
    pub check_interval: Duration,
    /// `modules.local.sequential`: executions run one after another (each `delay` counted
    /// from the end of the one before), not side by side.
    pub sequential: bool,
    /// `settings.max-dropped`, in percent of arrivals.
    pub max_dropped: f64,
    /// `settings.graceful-stop`: how long what is in flight at the end may take to finish.
    #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
    pub graceful_stop: Duration,
    /// `settings.baseline`: a results.json or a history directory, as written (relative to
    /// the suite's file).
    pub baseline: Option<String>,
    /// `settings.on-missing-baseline: fail`.
    pub fail_without_baseline: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Execution {
    pub scenario: String,
    pub concurrency: u32,
    #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
    pub ramp_up: Duration,
    pub steps: Option<u32>,
    #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
    pub hold_for: Duration,
    /// `None` runs for the duration; `Some(n)` stops after n iterations or the duration.
    pub iterations: Option<u64>,
    pub throughput: Option<f64>,
    pub arrival: Option<Arrival>,
    #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
    pub warm_up: Duration,
    #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
    pub delay: Duration,
    /// Before (`setup`), during (`main`) or after (`teardown`) the load.
    pub phase: crate::suite::raw::Phase,
    /// One step of a capacity sweep, when it is one.
    pub sweep: Option<SweepStep>,
    /// A capacity search, when it is one: its probes are chosen while it runs.
    pub search: Option<Search>,
}

/// A search for the highest load meeting every SLO: probes from `min`, doubling until one
/// fails or `max` passes (bracketing), then halving the gap between the highest passing and
/// the lowest failing load (bisection) until it is within `precision`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Search {
    /// The execution (as written) the search belongs to.
    pub group: usize,
    pub kind: SweepKind,
    pub min: f64,
    pub max: f64,
    /// The gap, as a fraction of the passing load, at which bisection stops.
    pub precision: f64,
    /// At most this many probes.
    pub probes: u32,
    #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
    pub warm_up: Duration,
    #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
    pub length: Duration,
    pub slo: Vec<Slo>,
    /// The most in flight in the open model (the execution's `concurrency`).
    pub max_in_flight: u32,
}

impl Search {
    /// The next load to probe after the probes `done` (value, met every SLO), or `None`
    /// when the search is over.
    pub fn next(&self, done: &[(f64, bool)]) -> Option<f64> {
        if done.len() >= self.probes as usize {
            return None;
        }
        let Some(&(last, passed)) = done.last() else {
            return Some(self.round(self.min));
        };
        let highest_pass = done.iter().filter(|d| d.1).map(|d| d.0).reduce(f64::max);
        let lowest_fail = done.iter().filter(|d| !d.1).map(|d| d.0).reduce(f64::min);
        match (highest_pass, lowest_fail) {
            // Even the least load misses an SLO.
            (None, _) => None,
            // Bracketing: double until a probe fails or the top of the range passes.
            (Some(pass), None) => {
                (passed && last < self.max).then(|| self.round((pass * 2.0).min(self.max)))
            }
            (Some(pass), Some(fail)) => {
                if fail <= pass || (fail - pass) <= self.precision * pass {
                    return None;
                }
                let mid = self.round((pass + fail) / 2.0);
                (mid > pass && mid < fail).then_some(mid)
            }
        }
    }

    /// Users are whole; rates keep three significant decimals.
    fn round(&self, v: f64) -> f64 {
        match self.kind {
            SweepKind::Concurrency => v.round().max(1.0),
            SweepKind::Throughput => (v * 1000.0).round() / 1000.0,
        }
    }
}

/// A step of a capacity sweep: its load value and where its steady window is.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepStep {
    /// The execution (as written) the sweep belongs to.
    pub group: usize,
    /// `concurrency` (closed model) or `throughput` (open model).
    pub kind: SweepKind,
    pub value: f64,
    /// When the step starts, from the start of the load.
    #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
    pub start: Duration,
    #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
    pub warm_up: Duration,
    #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
    pub length: Duration,
    /// Service levels each step is checked against.
    pub slo: Vec<Slo>,
}

impl SweepStep {
    /// Its steady window: whole seconds of the run from the end of its warm-up to its end.
    pub fn window(&self) -> (u64, u64) {
        let from = (self.start + self.warm_up).as_secs_f64().ceil() as u64;
        let to = ((self.start + self.length).as_secs_f64().floor() as u64).max(from + 1);
        (from, to)
    }
}

/// A service level a sweep's steps must meet: `p99<200ms` holds when the step's p99 is
/// under 200 ms.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Slo {
    pub text: String,
    pub subject: crate::criteria::grammar::Subject,
    pub op: crate::criteria::grammar::Op,
    pub threshold: crate::criteria::grammar::Threshold,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SweepKind {
    Concurrency,
    Throughput,
}

impl Execution {
    /// How long the load lasts if iterations do not end it first.
    pub fn duration(&self) -> Duration {
        self.ramp_up + self.hold_for
    }

    /// A one-line description: "10 users, ramp-up 5s, hold-for 1m".
    pub fn shape(&self) -> String {
        use crate::suite::units::format_duration as d;
        if let Some(s) = &self.search {
            let (what, unit) = match s.kind {
                SweepKind::Concurrency => ("users", ""),
                SweepKind::Throughput => ("rate", " req/s"),
            };
            let slo: Vec<&str> = s.slo.iter().map(|s| s.text.as_str()).collect();
            return format!(
                "search {what} {}..{}{unit} meeting {}, probes of {} (warm-up {}), at most {}",
                s.min,
                s.max,
                slo.join(", "),
                d(s.length),
                d(s.warm_up),
                s.probes
            );
        }
        if let Some(step) = &self.sweep {
            let unit = match step.kind {
                SweepKind::Concurrency if step.value == 1.0 => "user",
                SweepKind::Concurrency => "users",
                SweepKind::Throughput => "req/s",
            };
            return format!(
                "sweep step {} {unit}, {} from {} (warm-up {})",
                step.value,
                d(step.length),
                d(step.start),
                d(step.warm_up)
            );
        }
        let mut parts = Vec::new();
        match (self.arrival, self.throughput) {
            (Some(arrival), Some(rate)) => parts.push(format!(
                "{rate} req/s {} arrivals, at most {} in flight",
                match arrival {
                    Arrival::Constant => "constant",
                    Arrival::Poisson => "poisson",
                },
                self.concurrency
            )),
            _ => {
                let users = if self.concurrency == 1 {
                    "user"
                } else {
                    "users"
                };
                parts.push(format!("{} {users}", self.concurrency));
                if let Some(rate) = self.throughput {
                    parts.push(format!("capped at {rate} req/s"));
                }
            }
        }
        if !self.ramp_up.is_zero() {
            let steps = self
                .steps
                .map_or(String::new(), |s| format!(" in {s} steps"));
            parts.push(format!("ramp-up {}{steps}", d(self.ramp_up)));
        }
        if !self.hold_for.is_zero() {
            parts.push(format!("hold-for {}", d(self.hold_for)));
        }
        if let Some(n) = self.iterations {
            parts.push(format!(
                "{n} {}",
                if n == 1 { "iteration" } else { "iterations" }
            ));
        }
        if !self.warm_up.is_zero() {
            parts.push(format!("warm-up {}", d(self.warm_up)));
        }
        if !self.delay.is_zero() {
            parts.push(format!("delay {}", d(self.delay)));
        }
        parts.join(", ")
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Scenario {
    pub name: String,
    pub default_address: Option<String>,
    pub headers: Vec<(String, String)>,
    #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
    pub timeout: Duration,
    /// Bytes of a response body kept at most; a larger body fails its sample.
    pub max_body: u64,
    pub think_time: Option<ThinkTime>,
    pub keepalive: bool,
    pub follow_redirects: bool,
    pub store_cookie: bool,
    pub variables: Vec<(String, String)>,
    pub data_sources: Vec<DataSource>,
    pub steps: Vec<Step>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "distribution")]
pub enum ThinkTime {
    Constant {
        #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
        time: Duration,
    },
    Uniform {
        #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
        mean: Duration,
        #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
        dev: Duration,
    },
    Gaussian {
        #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
        mean: Duration,
        #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
        dev: Duration,
    },
    Poisson {
        #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
        mean: Duration,
        #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
        offset: Duration,
    },
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case", tag = "step")]
pub enum Step {
    Request(Box<Request>),
    IncludeScenario {
        scenario: String,
    },
    Transaction {
        name: String,
        steps: Vec<Step>,
    },
    Loop {
        count: u64,
        steps: Vec<Step>,
    },
    /// `if` / `then` / `else`: a comparison of two texts after substitution.
    If {
        condition: Condition,
        then: Vec<Step>,
        otherwise: Vec<Step>,
    },
    SetVariables {
        variables: Vec<(String, String)>,
    },
}

impl Condition {
    /// The expression inside `${__jexl3(...)}`, `${__groovy(...)}` or `${__javaScript(...)}`
    /// (JMeter's If Controller writes conditions so), else the text, trimmed.
    pub fn unwrap(text: &str) -> &str {
        let mut t = text.trim();
        for wrapper in ["${__jexl3(", "${__groovy(", "${__javaScript("] {
            if let Some(inner) = t.strip_prefix(wrapper).and_then(|r| r.strip_suffix(")}")) {
                t = inner.trim();
            }
        }
        t
    }
}

/// `left == right` or `left != right`, each a text with `${variables}`; `true` is `"" == ""`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Condition {
    pub left: String,
    pub equal: bool,
    pub right: String,
}

impl Condition {
    /// Reads `"${a}" == "b"`, `${a} != 5`, `${__jexl3(...)}` / `${__groovy(...)}` around one, or
    /// `true` / `false`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let t = Self::unwrap(text);
        match t {
            "true" => {
                return Some(Self {
                    left: String::new(),
                    equal: true,
                    right: String::new(),
                });
            }
            "false" => {
                return Some(Self {
                    left: String::new(),
                    equal: false,
                    right: String::new(),
                });
            }
            _ => {}
        }
        let (at, equal) = match (t.find("=="), t.find("!=")) {
            (Some(i), None) => (i, true),
            (None, Some(i)) => (i, false),
            _ => return None,
        };
        let side = |s: &str| -> Option<String> {
            let s = s.trim();
            let unquoted = s
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .or_else(|| s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
                .unwrap_or(s);
            (!unquoted.contains(['"', '&', '|', '(', ')'])).then(|| unquoted.to_owned())
        };
        Some(Self {
            left: side(&t[..at])?,
            equal,
            right: side(&t[at + 2..])?,
        })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Request {
    /// Shared with every sample the request makes (no copy per request).
    pub label: std::sync::Arc<str>,
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Body>,
    pub upload_files: Vec<Upload>,
    pub think_time: Option<ThinkTime>,
    #[serde(serialize_with = "crate::suite::units::human_serde::option")]
    pub timeout: Option<Duration>,
    pub follow_redirects: Option<bool>,
    pub assertions: Vec<Assertion>,
    pub jsonpath_assertions: Vec<JsonPathAssertion>,
    pub extractors: Vec<Extractor>,
    /// An LLM request (`llm: openai-chat`): its stream or response is measured in tokens.
    pub llm: Option<Llm>,
}

/// An LLM request to an OpenAI-compatible server.
#[derive(Clone, Debug, Serialize)]
pub struct Llm {
    pub api: LlmApi,
    /// What goes into `messages` / `prompt` (the body may carry them itself instead).
    pub prompt: Option<Prompt>,
    /// The SLOs a request must meet to count towards `goodput`.
    pub goodput: Option<Goodput>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LlmApi {
    /// `/v1/chat/completions`: `messages`, content in `choices[].delta.content`.
    #[serde(rename = "openai-chat")]
    Chat,
    /// `/v1/completions`: `prompt`, content in `choices[].text`.
    #[serde(rename = "openai-completions")]
    Completions,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum Prompt {
    /// `prompt:` text (variables substituted), sent as one user message to a chat API.
    Text(String),
    /// `messages:` as written (variables substituted in every string).
    Messages(serde_json::Value),
    /// `prompt-tokens: N`: N common one-token words, different for each request.
    Synthetic { tokens: u32 },
}

/// Goodput SLOs (vLLM's `--goodput`): a request is good when every one given holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Goodput {
    #[serde(serialize_with = "crate::suite::units::human_serde::option")]
    pub ttft: Option<Duration>,
    #[serde(serialize_with = "crate::suite::units::human_serde::option")]
    pub tpot: Option<Duration>,
    /// Every inter-token gap.
    #[serde(serialize_with = "crate::suite::units::human_serde::option")]
    pub itl: Option<Duration>,
    #[serde(serialize_with = "crate::suite::units::human_serde::option")]
    pub e2e: Option<Duration>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum Body {
    /// A map or list: JSON, or form-encoded when Content-Type says so.
    Structured(serde_json::Value),
    Text(String),
    File(PathBuf),
}

#[derive(Clone, Debug, Serialize)]
pub struct Upload {
    pub param: String,
    pub path: PathBuf,
    pub mime_type: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Assertion {
    pub subject: AssertSubject,
    pub patterns: Vec<String>,
    pub regexp: bool,
    pub not: bool,
    pub assume_success: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct JsonPathAssertion {
    pub jsonpath: String,
    pub expected_value: Option<serde_json::Value>,
    pub validate: bool,
    pub invert: bool,
    pub expect_null: bool,
    pub regexp: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Extractor {
    JsonPath {
        variable: String,
        jsonpath: String,
        default: Option<String>,
        match_no: i64,
    },
    Regexp {
        variable: String,
        regexp: String,
        template: String,
        default: Option<String>,
        match_no: i64,
        subject: AssertSubject,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct DataSource {
    pub path: PathBuf,
    /// CSV, or JSON Lines (`.jsonl`, `.ndjson`: one object per line, its keys the variables).
    pub jsonl: bool,
    pub delimiter: char,
    pub quoted: bool,
    /// Start again at the end (true) or end the load (false).
    pub repeat: bool,
    pub variable_names: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case", tag = "module")]
pub enum Service {
    Server(Box<Server>),
    Shellexec(ShellExec),
}

#[derive(Clone, Debug, Serialize)]
pub struct Server {
    pub label: String,
    pub launch: Launch,
    pub cwd: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub pid_file: Option<PathBuf>,
    pub process_match: Option<String>,
    pub workers_match: Option<String>,
    pub ready: Ready,
    pub stop: Stop,
    pub prepare: Vec<String>,
    pub post_process: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Launch {
    Argv(Vec<String>),
    Shell(String),
}

#[derive(Clone, Debug, Serialize)]
pub struct Ready {
    pub tcp: Option<String>,
    pub http: Option<String>,
    pub status: u16,
    pub log: Option<String>,
    #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
    pub timeout: Duration,
    #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
    pub interval: Duration,
    /// How long the `tcp`/`http` checks may go unanswered during the load; zero: never checked.
    #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
    pub watchdog: Duration,
}

#[derive(Clone, Debug, Serialize)]
pub struct Stop {
    pub signal: String,
    #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
    pub grace: Duration,
    pub command: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ShellExec {
    pub prepare: Vec<ShellCommand>,
    pub startup: Vec<ShellCommand>,
    pub check: Vec<ShellCommand>,
    pub shutdown: Vec<ShellCommand>,
    pub post_process: Vec<ShellCommand>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ShellCommand {
    pub command: String,
    pub background: bool,
    pub ignore_failure: bool,
    pub out: Option<String>,
    pub err: Option<String>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<(String, String)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MonitorSource {
    /// The `source` of `source/metric` subjects.
    pub name: String,
    pub kind: SourceKind,
    #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
    pub interval: Duration,
    pub logging: bool,
    /// Metric names (prometheus: selectors), in declared order.
    pub metrics: Vec<String>,
    /// prometheus: the endpoint.
    pub url: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case", tag = "module")]
pub enum Reporter {
    Passfail,
    JunitXml {
        filename: Option<String>,
        data_source: JunitDataSource,
    },
    FinalStats {
        dump_csv: Option<String>,
        dump_xml: Option<String>,
        summary: bool,
        percentiles: bool,
        summary_labels: bool,
        failed_labels: bool,
        test_duration: bool,
    },
    Html {
        filename: Option<String>,
    },
    Console,
}

#[derive(Clone, Debug, Serialize)]
pub struct Criterion {
    /// The Taurus-style testcase name: `avg-rt of infer>150ms for 10s`.
    pub name: String,
    pub message: Option<String>,
    pub check: Check,
    pub window: Option<Window>,
    /// End the load when triggered.
    pub stop: bool,
    /// Fail the suite when triggered (`false`: a notice).
    pub fail: bool,
    pub scope: Scope,
    /// A threshold relative to a baseline run (`baseline+10%`): `check`'s threshold is only
    /// its unit until [`Criterion::baseline`] is resolved before the load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relative: Option<crate::criteria::grammar::Relative>,
    /// The baseline a relative criterion is judged against, found when its suite starts.
    #[serde(skip)]
    pub baseline: Option<std::sync::Arc<crate::criteria::eval::Baseline>>,
}

/// An MMS comparison of a monitoring series: percent differences with MMS's symmetric
/// formula |a-b| / ((a+b)/2) × 100, passing when at most `limit` (0: only equal values).
#[derive(Clone, Debug, Serialize)]
pub struct DiffCheck {
    /// `source/metric`.
    pub subject: String,
    pub against: DiffAgainst,
    pub limit: f64,
    /// The key as written: `diff_percent`, `diff_percent_previous` or `diff_percent_run`.
    pub key: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiffAgainst {
    /// The series' mean, max and min against the baseline run's.
    Baseline,
    /// The series' last reading against its first.
    FirstReading,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Check {
    Threshold {
        subject: Subject,
        label: String,
        op: Op,
        threshold: Threshold,
    },
    Expr {
        expr: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    pub logic: Logic,
    #[serde(serialize_with = "crate::suite::units::human_serde::duration")]
    pub timeframe: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "scope", content = "name")]
pub enum Scope {
    Suite,
    Execution(usize),
    Scenario(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(kind: SweepKind, min: f64, max: f64) -> Search {
        Search {
            group: 0,
            kind,
            min,
            max,
            precision: 0.05,
            probes: 12,
            warm_up: Duration::ZERO,
            length: Duration::from_secs(1),
            slo: Vec::new(),
            max_in_flight: 1,
        }
    }

    /// Runs a search against a server whose SLOs hold up to `limit`.
    fn probe_all(s: &Search, limit: f64) -> Vec<(f64, bool)> {
        let mut done = Vec::new();
        while let Some(v) = s.next(&done) {
            done.push((v, v <= limit));
        }
        done
    }

    #[test]
    fn a_search_brackets_then_bisects_to_its_precision() {
        let s = search(SweepKind::Throughput, 10.0, 2000.0);
        let done = probe_all(&s, 137.0);
        let values: Vec<f64> = done.iter().map(|d| d.0).collect();
        // Doubling until 160 fails, then halving the gap between 80 and 160.
        assert_eq!(&values[..5], &[10.0, 20.0, 40.0, 80.0, 160.0]);
        assert_eq!(&values[5..], &[120.0, 140.0, 130.0, 135.0]);
        let pass = done.iter().filter(|d| d.1).map(|d| d.0).reduce(f64::max);
        let fail = done.iter().filter(|d| !d.1).map(|d| d.0).reduce(f64::min);
        let (pass, fail) = (pass.unwrap(), fail.unwrap());
        assert_eq!(pass, 135.0);
        assert_eq!(fail, 140.0, "3.7% above: within the precision");
    }

    #[test]
    fn a_search_stops_at_the_ends_of_its_range_and_its_probe_budget() {
        let s = search(SweepKind::Throughput, 10.0, 100.0);
        let above = probe_all(&s, 1e9);
        assert_eq!(
            above.iter().map(|d| d.0).collect::<Vec<_>>(),
            [10.0, 20.0, 40.0, 80.0, 100.0],
            "the top of the range passes: nothing more to probe"
        );
        let below = probe_all(&s, 5.0);
        assert_eq!(below, [(10.0, false)], "the least load fails: done");
        let mut few = s.clone();
        few.probes = 3;
        assert_eq!(probe_all(&few, 50.0).len(), 3);
    }

    #[test]
    fn a_concurrency_search_probes_whole_users() {
        let s = search(SweepKind::Concurrency, 1.0, 64.0);
        let done = probe_all(&s, 5.0);
        let values: Vec<f64> = done.iter().map(|d| d.0).collect();
        assert_eq!(values, [1.0, 2.0, 4.0, 8.0, 6.0, 5.0]);
        assert!(values.iter().all(|v| v.fract() == 0.0));
    }

    #[test]
    fn conditions() {
        let c = |t: &str| Condition::parse(t);
        let eq = |l: &str, e: bool, r: &str| {
            Some(Condition {
                left: l.into(),
                equal: e,
                right: r.into(),
            })
        };
        assert_eq!(c(r#""${model}" == "mlp""#), eq("${model}", true, "mlp"));
        assert_eq!(c("${status} != 200"), eq("${status}", false, "200"));
        assert_eq!(c(r#"${__jexl3("${a}" == "b")}"#), eq("${a}", true, "b"));
        assert_eq!(c(r#"${__groovy('${a}' != 'b')}"#), eq("${a}", false, "b"));
        assert_eq!(c("true"), eq("", true, ""));
        assert_eq!(c("false"), eq("", false, ""));
        assert_eq!(c(r#""${a}" == "b" && "${c}" == "d""#), None);
        assert_eq!(c("${a} > 3"), None);
    }
}
