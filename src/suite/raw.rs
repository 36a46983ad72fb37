//! serde types that mirror the suite YAML after shorthand normalisation.
//!
//! Every field is optional here; `validate` decides what is required and turns these into the
//! domain [`super::model::Suite`]. [`Located`] fields keep spans for diagnostics and recover
//! from errors. `schemas/suite.schema.json` is generated from these types (with the shorthand
//! forms that [`normalize`] expands), so the editor schema and the parser cannot drift.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::de::{Located, struct_fields};
use super::node::{Entry, Kind, Node};
use super::units::parse_duration;

/// The top level of a suite file.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(
    rename_all = "kebab-case",
    expecting = "a suite (a map with execution, scenarios, ...)"
)]
#[schemars(title = "perfgate suite", deny_unknown_fields)]
pub struct RawSuite {
    /// Run-wide settings: artifacts directory, environment variables, ports, secrets.
    pub settings: Option<Located<RawSettings>>,
    /// What load to run: one map or a list; executions run concurrently.
    #[schemars(with = "Option<OneOrList<RawExecution>>")]
    pub execution: Option<Vec<Located<RawExecution>>>,
    /// Named scenarios referenced by `execution[].scenario` and `include-scenario`.
    pub scenarios: Option<Keyed<Located<RawScenario>>>,
    /// Servers under test, shell hooks and monitoring sources.
    #[schemars(with = "Option<Vec<StrOr<RawService>>>")]
    pub services: Option<Vec<Located<RawService>>>,
    /// Reporters: passfail (criteria), junit-xml, final-stats, html, console.
    #[schemars(with = "Option<Vec<StrOr<RawReporter>>>")]
    pub reporting: Option<Vec<Located<RawReporter>>>,
    /// Files merged after this one, relative to it.
    pub included_configs: Option<Vec<String>>,
    /// Module aliases and settings (Taurus `modules:`), e.g. an MMS monitoring class.
    pub modules: Option<Keyed<Located<serde_json::Value>>>,
    /// MMS: monitoring series compared with the baseline run (`diff_percent_previous`) or
    /// from their first reading to their last (`diff_percent_run`).
    #[serde(rename = "compare_criteria")]
    pub compare_criteria: Option<Vec<Located<RawCompareCriterion>>>,
}

/// An MMS `compare_criteria` entry.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(expecting = "a compare criterion (subject, diff_percent_previous, diff_percent_run)")]
#[schemars(deny_unknown_fields)]
pub struct RawCompareCriterion {
    /// `source/metric` (or a metric name one monitoring source collects).
    pub subject: Option<Located<String>>,
    /// The series' mean, max and min may differ from the baseline run's by at most this
    /// many percent (|a-b| / ((a+b)/2) × 100).
    pub diff_percent_previous: Option<Located<f64>>,
    /// The series' last reading may differ from its first by at most this many percent:
    /// leaks and drift within the run.
    pub diff_percent_run: Option<Located<f64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", expecting = "a settings map")]
#[schemars(deny_unknown_fields)]
pub struct RawSettings {
    /// Where reports go for this suite; default `reports/<UTC timestamp>/`.
    pub artifacts_dir: Option<Located<String>>,
    /// Variables for `${NAME}`, exported to servers and commands; values may use OS variables
    /// (`PATH: ${PATH}`); null is the empty string.
    pub env: Option<Keyed<Option<Scalar>>>,
    /// Names that each get a free loopback port, usable as `${NAME}`.
    pub ports: Option<Vec<Located<String>>>,
    /// Open model: the largest share of arrivals that may be dropped (the in-flight cap was
    /// reached) before the suite fails with a criterion of its own (default `1%`; `100%` turns
    /// it off). A `dropped` criterion of the suite's own replaces it.
    pub max_dropped: Option<Located<String>>,
    /// Where `ports` are picked: `LOW-HIGH` (default 20000-32766, below the ephemeral range
    /// that outgoing connections use, and below 32767, which MMS refuses).
    pub port_range: Option<Located<String>>,
    /// Environment variable names whose values are redacted in reports.
    pub secrets: Option<Vec<Located<String>>>,
    /// Leave ramp-up out of statistics and criteria.
    pub ramp_up_exclude: Option<bool>,
    /// How often criteria are evaluated (default 1s).
    pub check_interval: Option<Located<DurationValue>>,
    /// How long requests still in flight when the load ends (its duration, a `stop`
    /// criterion, a failed server) may take to finish before they are cancelled and counted
    /// as unfinished (default 2s, as k6's `gracefulStop`). A signal cancels them at once.
    pub graceful_stop: Option<Located<DurationValue>>,
    /// Where relative criteria (`p95>baseline+10%`) find their baseline: a results.json or
    /// a history directory, relative to this file. `perfgate run --baseline` overrides it.
    pub baseline: Option<Located<String>>,
    /// What a relative criterion is when there is no baseline yet (the first night):
    /// `notice` (default) or `fail`.
    pub on_missing_baseline: Option<Located<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", expecting = "an execution map")]
#[schemars(deny_unknown_fields)]
pub struct RawExecution {
    /// A scenario name, or an inline scenario map.
    #[schemars(with = "Option<StrOr<RawScenario>>")]
    pub scenario: Option<Located<String>>,
    /// Virtual users (closed model); with `arrival`, the most requests in flight.
    pub concurrency: Option<Located<u32>>,
    /// Linear ramp from 0 to `concurrency` (and to `throughput`).
    pub ramp_up: Option<Located<DurationValue>>,
    /// Stepped ramp-up in this many steps.
    pub steps: Option<Located<u32>>,
    /// Duration after ramp-up.
    pub hold_for: Option<Located<DurationValue>>,
    /// Total scenario iterations; the first of iterations and duration ends the load.
    pub iterations: Option<Located<u64>>,
    /// Requests per second: a cap on the closed model, the rate of the open model.
    pub throughput: Option<Located<f64>>,
    /// Open model: requests are scheduled regardless of responses.
    pub arrival: Option<Located<Arrival>>,
    /// Left out of statistics and criteria.
    pub warm_up: Option<Located<DurationValue>>,
    /// Start later than the other executions.
    pub delay: Option<Located<DurationValue>>,
    /// Criteria judged on this execution's scenario labels.
    pub criteria: Option<Located<RawCriteria>>,
    /// Taurus executor name; perfgate has one HTTP engine.
    pub executor: Option<Located<String>>,
    /// `setup` runs before the other executions and `teardown` after them (JMeter's setUp and
    /// tearDown thread groups); `main` (default) is the load.
    pub phase: Option<Located<Phase>>,
    /// A capacity sweep: one step per value, each `step` long, measured after `warm-up`.
    pub sweep: Option<Located<RawSweep>>,
    /// A capacity search: the highest load meeting every SLO, found by bracketing and
    /// bisection, each probe a step.
    pub search: Option<Located<RawSearch>>,
}

/// `search: {slo: ["p99<200ms", "fail<1%"], throughput: {min: 10, max: 2000}, step: 20s}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    rename_all = "kebab-case",
    expecting = "a search map (slo, throughput or concurrency {min, max}, step, warm-up, precision)"
)]
#[schemars(deny_unknown_fields)]
pub struct RawSearch {
    /// Service levels a probe must meet (`p99<200ms`, `fail<1%`).
    pub slo: Option<Vec<Located<String>>>,
    /// The range of offered requests per second searched (open model).
    pub throughput: Option<Located<RawRange>>,
    /// The range of virtual users searched (closed model).
    pub concurrency: Option<Located<RawRange>>,
    /// How long each probe lasts.
    pub step: Option<Located<DurationValue>>,
    /// The start of each probe left out of its statistics.
    pub warm_up: Option<Located<DurationValue>>,
    /// The search ends when the highest passing and lowest failing loads are this close
    /// (`5%`, the default; for users, also within one user).
    pub precision: Option<Located<String>>,
    /// At most this many probes (default 12).
    pub probes: Option<Located<u32>>,
}

/// `{min: 10, max: 2000}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a range {min, max}")]
pub struct RawRange {
    pub min: f64,
    pub max: f64,
}

/// `sweep: {concurrency: [1, 2, 4, 8], step: 30s, warm-up: 5s}` (closed model) or
/// `sweep: {throughput: [50, 100, 200], ...}` (open model).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    rename_all = "kebab-case",
    expecting = "a sweep map (concurrency or throughput, step, warm-up)"
)]
#[schemars(deny_unknown_fields)]
pub struct RawSweep {
    /// Virtual users of each step (closed model).
    pub concurrency: Option<Located<Vec<u32>>>,
    /// Requests per second of each step (open model).
    pub throughput: Option<Located<Vec<f64>>>,
    /// How long each step lasts.
    pub step: Option<Located<DurationValue>>,
    /// The start of each step left out of its statistics.
    pub warm_up: Option<Located<DurationValue>>,
    /// Service levels a step must meet, as criteria read them (`p99<200ms`, `fail<1%`): the
    /// SLO limit is the largest step meeting every one.
    pub slo: Option<Vec<Located<String>>>,
}

/// When an execution runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Setup,
    #[default]
    Main,
    Teardown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    Constant,
    Poisson,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", expecting = "a scenario map")]
#[schemars(deny_unknown_fields)]
pub struct RawScenario {
    /// Base URL that relative request URLs are joined to.
    pub default_address: Option<Located<String>>,
    pub headers: Option<Keyed<String>>,
    /// Per-request timeout (default 30s).
    pub timeout: Option<Located<DurationValue>>,
    /// The largest response body kept per request (default 10MiB): a larger one is a failed
    /// sample and is not read further, so a huge or endless body cannot exhaust memory.
    pub max_body: Option<Located<String>>,
    /// Pause after each request: `500ms`, `uniform(mean, dev)`, `gaussian(mean, dev)`,
    /// `poisson(mean, offset)`.
    pub think_time: Option<Located<ThinkTimeValue>>,
    pub keepalive: Option<bool>,
    pub follow_redirects: Option<bool>,
    pub store_cookie: Option<bool>,
    /// Runtime variables, usable as `${name}` in requests.
    pub variables: Option<Keyed<String>>,
    #[schemars(with = "Option<Vec<StrOr<RawDataSource>>>")]
    pub data_sources: Option<Vec<Located<RawDataSource>>>,
    pub criteria: Option<Located<RawCriteria>>,
    #[schemars(with = "Option<Vec<StrOr<RawRequest>>>")]
    pub requests: Option<Vec<Located<RawRequest>>>,
    /// A JMeter `.jmx` plan (not supported yet) or another script.
    pub script: Option<Located<String>>,
}

/// A request or a logic block; which one is decided by its keys.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", expecting = "a request (a URL or a map)")]
#[schemars(deny_unknown_fields)]
pub struct RawRequest {
    /// Absolute, or relative to `default-address`.
    pub url: Option<Located<String>>,
    /// The join key for criteria; default: the URL as written.
    pub label: Option<Located<String>>,
    pub method: Option<Located<String>>,
    pub headers: Option<Keyed<String>>,
    /// A map or list is sent as JSON (or form-encoded if Content-Type says so); a string as is.
    pub body: Option<Located<serde_json::Value>>,
    pub body_file: Option<Located<String>>,
    pub upload_files: Option<Vec<Located<RawUpload>>>,
    pub think_time: Option<Located<ThinkTimeValue>>,
    pub timeout: Option<Located<DurationValue>>,
    pub follow_redirects: Option<bool>,
    #[schemars(with = "Option<Vec<StrOr<RawAssert>>>")]
    pub assert: Option<Vec<Located<RawAssert>>>,
    #[schemars(with = "Option<Vec<StrOr<RawAssertJsonPath>>>")]
    pub assert_jsonpath: Option<Vec<Located<RawAssertJsonPath>>>,
    #[schemars(with = "Option<Keyed<StrOr<RawExtractJsonPath>>>")]
    pub extract_jsonpath: Option<Keyed<Located<RawExtractJsonPath>>>,
    #[schemars(with = "Option<Keyed<StrOr<RawExtractRegexp>>>")]
    pub extract_regexp: Option<Keyed<Located<RawExtractRegexp>>>,
    /// An LLM request: `openai-chat` or `openai-completions`. Its stream (`stream: true` in
    /// the body) or response is measured in tokens: ttft, itl, tpot, e2e, tokens.
    pub llm: Option<Located<String>>,
    /// LLM: the prompt text (a chat API gets it as one user message).
    pub prompt: Option<Located<String>>,
    /// LLM chat: the messages (a list of `{role, content}`).
    pub messages: Option<Located<serde_json::Value>>,
    /// LLM: a synthetic prompt of about this many tokens (common one-token words).
    pub prompt_tokens: Option<Located<u32>>,
    /// LLM: the SLOs a request must meet to count towards `goodput`.
    pub goodput: Option<Located<RawGoodput>>,
    /// Run another scenario's requests here.
    pub include_scenario: Option<Located<String>>,
    /// Group `do:` under one label.
    pub transaction: Option<Located<String>>,
    /// Repeat `do:` this many times.
    #[serde(rename = "loop")]
    pub loop_: Option<Located<u64>>,
    #[serde(rename = "do")]
    #[schemars(with = "Option<Vec<StrOr<RawRequest>>>")]
    pub do_: Option<Vec<Located<RawRequest>>>,
    pub set_variables: Option<Keyed<String>>,
    /// Run `then:` when the condition holds, else `else:`: a comparison of two texts with
    /// variables, `"${model}" == "mlp"` or `${status} != 200` (also inside `${__jexl3(...)}`),
    /// or `true` / `false`.
    #[serde(rename = "if")]
    pub if_: Option<Located<String>>,
    #[schemars(with = "Option<Vec<StrOr<RawRequest>>>")]
    pub then: Option<Vec<Located<RawRequest>>>,
    #[serde(rename = "else")]
    #[schemars(with = "Option<Vec<StrOr<RawRequest>>>")]
    pub else_: Option<Vec<Located<RawRequest>>>,
    // JMeter logic that perfgate does not run; kept so the error can say so.
    #[serde(rename = "while")]
    #[schemars(skip)]
    pub while_: Option<Located<serde_json::Value>>,
    #[schemars(skip)]
    pub foreach: Option<Located<serde_json::Value>>,
    #[schemars(skip)]
    pub action: Option<Located<serde_json::Value>>,
    #[schemars(skip)]
    pub jsr223: Option<Located<serde_json::Value>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    rename_all = "kebab-case",
    expecting = "goodput SLOs (ttft, tpot, itl, e2e), e.g. {ttft: 500ms, tpot: 50ms}"
)]
#[schemars(deny_unknown_fields)]
pub struct RawGoodput {
    /// Time to first token at most this.
    pub ttft: Option<Located<DurationValue>>,
    /// Time per output token at most this.
    pub tpot: Option<Located<DurationValue>>,
    /// Every inter-token gap at most this.
    pub itl: Option<Located<DurationValue>>,
    /// The whole request at most this.
    pub e2e: Option<Located<DurationValue>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    rename_all = "kebab-case",
    expecting = "an upload map (param, path, mime-type)"
)]
#[schemars(deny_unknown_fields)]
pub struct RawUpload {
    pub param: Located<String>,
    pub path: Located<String>,
    pub mime_type: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    rename_all = "kebab-case",
    expecting = "an assertion (a regex or a map)"
)]
#[schemars(deny_unknown_fields)]
pub struct RawAssert {
    pub contains: Option<Vec<Located<String>>>,
    pub subject: Option<Located<AssertSubject>>,
    /// Treat `contains` as regular expressions (default true, as Taurus).
    pub regexp: Option<bool>,
    pub not: Option<bool>,
    pub assume_success: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssertSubject {
    Body,
    Headers,
    HttpCode,
    Url,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    rename_all = "kebab-case",
    expecting = "a JSONPath assertion (a path or a map)"
)]
#[schemars(deny_unknown_fields)]
pub struct RawAssertJsonPath {
    pub jsonpath: Located<String>,
    pub expected_value: Option<serde_json::Value>,
    pub validate: Option<bool>,
    pub invert: Option<bool>,
    pub expect_null: Option<bool>,
    pub regexp: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    rename_all = "kebab-case",
    expecting = "a JSONPath extractor (a path or a map)"
)]
#[schemars(deny_unknown_fields)]
pub struct RawExtractJsonPath {
    pub jsonpath: Located<String>,
    pub default: Option<String>,
    pub match_no: Option<i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    rename_all = "kebab-case",
    expecting = "a regexp extractor (a regex or a map)"
)]
#[schemars(deny_unknown_fields)]
pub struct RawExtractRegexp {
    pub regexp: Located<String>,
    pub default: Option<String>,
    pub match_no: Option<i64>,
    /// `$1$` picks the first group (JMeter syntax).
    pub template: Option<Located<String>>,
    pub subject: Option<Located<AssertSubject>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    rename_all = "kebab-case",
    expecting = "a data source (a CSV path or a map)"
)]
#[schemars(deny_unknown_fields)]
pub struct RawDataSource {
    pub path: Located<String>,
    pub delimiter: Option<Located<String>>,
    pub quoted: Option<bool>,
    /// Start again at the end of the file (default true); false stops the load.
    #[serde(rename = "loop")]
    pub loop_: Option<bool>,
    /// Comma-separated column names; default: the file's first line.
    pub variable_names: Option<Located<String>>,
}

/// One `services:` entry. Keys are shared across modules; `validate` rejects keys that the
/// entry's module does not use.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", expecting = "a service map with `module`")]
#[schemars(deny_unknown_fields)]
pub struct RawService {
    /// `server`, `shellexec`, `monitoring`, `passfail`, or an alias from `modules:`.
    pub module: Located<String>,
    /// server: the name of its monitoring series (`<label>/<metric>`) and log file.
    pub label: Option<Located<String>>,
    /// server: argv of the server process.
    pub command: Option<Located<Vec<String>>>,
    /// server: a /bin/sh command line, for start scripts that daemonise.
    pub shell: Option<Located<String>>,
    pub cwd: Option<Located<String>>,
    pub env: Option<Keyed<String>>,
    /// server: the pid file a daemonising command writes.
    pub pid_file: Option<Located<String>>,
    /// server: find the server process by command-line regex.
    pub process_match: Option<Located<String>>,
    /// server: which descendants are workers (default: all).
    pub workers_match: Option<Located<String>>,
    pub ready: Option<Located<RawReady>>,
    pub stop: Option<Located<RawStop>>,
    /// server: commands after ready, before load; shellexec: before startup.
    #[schemars(with = "Option<Vec<StrOr<RawCommand>>>")]
    pub prepare: Option<Vec<Located<RawCommand>>>,
    #[schemars(with = "Option<Vec<StrOr<RawCommand>>>")]
    pub startup: Option<Vec<Located<RawCommand>>>,
    #[schemars(with = "Option<Vec<StrOr<RawCommand>>>")]
    pub check: Option<Vec<Located<RawCommand>>>,
    #[schemars(with = "Option<Vec<StrOr<RawCommand>>>")]
    pub shutdown: Option<Vec<Located<RawCommand>>>,
    #[schemars(with = "Option<Vec<StrOr<RawCommand>>>")]
    pub post_process: Option<Vec<Located<RawCommand>>>,
    /// server: process monitoring (default: total_processes, total_workers, sum_all_cpu_percent,
    /// max_all_cpu_percent, sum_all_memory_rss each second; `metrics: [all]` for every process
    /// metric).
    pub monitoring: Option<Located<RawMonitorSource>>,
    /// monitoring: Taurus host metrics.
    pub local: Option<Vec<Located<RawMonitorSource>>>,
    /// monitoring: MMS server process metrics.
    #[serde(rename = "ServerLocalClient")]
    pub server_local_client: Option<Vec<Located<RawMonitorSource>>>,
    /// monitoring: scrape a Prometheus text endpoint.
    pub prometheus: Option<Vec<Located<RawMonitorSource>>>,
    /// monitoring: Taurus ServerAgent (not supported).
    pub server_agent: Option<Vec<Located<RawMonitorSource>>>,
    /// passfail: criteria, when declared as a service.
    pub criteria: Option<Located<RawCriteria>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", expecting = "a command (a string or a map)")]
#[schemars(deny_unknown_fields)]
pub struct RawCommand {
    pub command: Located<String>,
    pub background: Option<bool>,
    pub ignore_failure: Option<bool>,
    pub out: Option<Located<String>>,
    pub err: Option<Located<String>>,
    pub cwd: Option<Located<String>>,
    pub env: Option<Keyed<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    rename_all = "kebab-case",
    expecting = "a readiness map (tcp, http, status, log, timeout, interval, watchdog)"
)]
#[schemars(deny_unknown_fields)]
pub struct RawReady {
    /// `host:port` that must accept a connection.
    pub tcp: Option<Located<String>>,
    /// URL that must answer with `status`.
    pub http: Option<Located<String>>,
    pub status: Option<Located<u16>>,
    /// Regex a log line must match.
    pub log: Option<Located<String>>,
    pub timeout: Option<Located<DurationValue>>,
    pub interval: Option<Located<DurationValue>>,
    /// During the load, how long the `tcp`/`http` checks may go unanswered before the suite
    /// ends as an error (default 30s; 0 turns the watchdog off).
    pub watchdog: Option<Located<DurationValue>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    rename_all = "kebab-case",
    expecting = "a stop map (signal, grace, command)"
)]
#[schemars(deny_unknown_fields)]
pub struct RawStop {
    pub signal: Option<Located<String>>,
    pub grace: Option<Located<DurationValue>>,
    pub command: Option<Located<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", expecting = "a monitoring source map")]
#[schemars(deny_unknown_fields)]
pub struct RawMonitorSource {
    pub interval: Option<Located<DurationValue>>,
    /// Write samples to `metrics.csv`.
    pub logging: Option<bool>,
    pub metrics: Option<Vec<Located<String>>>,
    /// prometheus: the source name in `<label>/<metric>` (default `prometheus`).
    pub label: Option<Located<String>>,
    /// prometheus: the endpoint to scrape.
    pub url: Option<Located<String>>,
    /// server-agent: `host:port` of the agent (port 4444 when not given).
    pub address: Option<Located<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", expecting = "a reporter map with `module`")]
#[schemars(deny_unknown_fields)]
pub struct RawReporter {
    /// `passfail`, `junit-xml`, `final-stats`, `html`, `console`.
    pub module: Located<String>,
    pub criteria: Option<Located<RawCriteria>>,
    /// junit-xml / html: output file name.
    pub filename: Option<Located<String>>,
    /// junit-xml: `pass-fail` (criteria) or `sample-labels` (one testcase per label).
    pub data_source: Option<Located<JunitDataSource>>,
    /// final-stats: also write the Taurus CSV here.
    pub dump_csv: Option<Located<String>>,
    /// final-stats: also write the Jenkins Performance Plugin XML here.
    pub dump_xml: Option<Located<String>>,
    pub summary: Option<bool>,
    pub percentiles: Option<bool>,
    pub summary_labels: Option<bool>,
    pub failed_labels: Option<bool>,
    pub test_duration: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JunitDataSource {
    PassFail,
    SampleLabels,
}

/// Criteria: a list, or a map of message → criterion.
#[derive(Debug, JsonSchema)]
#[schemars(with = "CriteriaSchema")]
pub struct RawCriteria(pub Vec<Located<RawCriterion>>);

#[derive(JsonSchema)]
#[schemars(untagged)]
#[expect(dead_code, reason = "schema only")]
enum CriteriaSchema {
    List(Vec<StrOr<RawCriterionLong>>),
    Messages(std::collections::BTreeMap<String, StrOr<RawCriterionLong>>),
}

/// A criterion: the short string form, or the long map form.
#[derive(Debug, JsonSchema)]
#[schemars(with = "StrOr<RawCriterionLong>")]
pub enum RawCriterion {
    Short {
        text: String,
        message: Option<String>,
    },
    Long(Box<RawCriterionLong>),
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(
    rename_all = "kebab-case",
    expecting = "a criterion map (subject, condition, threshold, ...)"
)]
#[schemars(deny_unknown_fields)]
pub struct RawCriterionLong {
    /// A KPI (`avg-rt`, `p99`, `fail`, `rc5??`, ...) or `source/metric`.
    pub subject: Option<Located<String>>,
    pub label: Option<Located<String>>,
    /// `>`, `<`, `>=`, `<=`, `=`, `!=`.
    pub condition: Option<Located<String>>,
    pub threshold: Option<Located<String>>,
    /// `for`, `within` or `over` (needs `timeframe`).
    pub logic: Option<Located<String>>,
    pub timeframe: Option<Located<String>>,
    /// Stop the load when triggered (default true).
    pub stop: Option<bool>,
    /// Fail the suite when triggered (default true).
    pub fail: Option<bool>,
    pub message: Option<String>,
    /// `bzt.modules.monitoring.MonitoringCriteria` for `source/metric` subjects.
    pub class: Option<Located<String>>,
    /// An evalexpr expression over KPI functions, e.g. `p(99, "infer") > 3 * p(50, "infer")`.
    pub expr: Option<Located<String>>,
    /// MMS: the series' mean, max and min may differ from the baseline run's by at most
    /// this many percent (symmetric: |a-b| / ((a+b)/2) × 100).
    #[serde(rename = "diff_percent")]
    pub diff_percent: Option<Located<f64>>,
    /// For a relative threshold (`baseline+10%`) with no baseline: `notice` (default) or
    /// `fail`.
    pub on_missing_baseline: Option<Located<String>>,
}

impl<'de> Deserialize<'de> for RawCriteria {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CriteriaVisitor;
        impl<'de> Visitor<'de> for CriteriaVisitor {
            type Value = RawCriteria;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of criteria, or a map of message to criterion")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawCriteria, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(RawCriteria(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawCriteria, A::Error> {
                let mut items = Vec::new();
                while let Some(message) = map.next_key::<String>()? {
                    let mut item: Located<RawCriterion> = map.next_value()?;
                    match &mut item.value {
                        Some(RawCriterion::Short { message: m, .. }) => *m = Some(message),
                        Some(RawCriterion::Long(long)) => {
                            long.message.get_or_insert(message);
                        }
                        None => {}
                    }
                    items.push(item);
                }
                Ok(RawCriteria(items))
            }
        }
        deserializer.deserialize_any(CriteriaVisitor)
    }
}

impl<'de> Deserialize<'de> for RawCriterion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CriterionVisitor;
        impl<'de> Visitor<'de> for CriterionVisitor {
            type Value = RawCriterion;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a criterion string (`avg-rt>150ms`) or a criterion map")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawCriterion, E> {
                Ok(RawCriterion::Short {
                    text: v.to_owned(),
                    message: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawCriterion, A::Error> {
                RawCriterionLong::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|long| RawCriterion::Long(Box::new(long)))
            }
        }
        deserializer.deserialize_struct(
            "RawCriterion",
            struct_fields::<RawCriterionLong>(),
            CriterionVisitor,
        )
    }
}

/// A scalar from `settings.env`, kept as text.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Scalar(#[schemars(with = "ScalarSchema")] pub String);

#[derive(JsonSchema)]
#[schemars(untagged)]
#[expect(dead_code, reason = "schema only")]
enum ScalarSchema {
    Text(String),
    Number(f64),
    Flag(bool),
}

/// A duration: `500ms`, `1.5s`, `1m30s`, `2h`; a bare number is seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurationValue(pub Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text)
            .map(DurationValue)
            .map_err(|e| de::Error::custom(format_args!("{e}\nhint: {}", e.hint())))
    }
}

impl JsonSchema for DurationValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration: 500ms, 1.5s, 1m30s, 2h; a bare number is seconds.",
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": "^\\s*(\\d+(\\.\\d+)?\\s*(ms|s|sec|m|min|h|d)?\\s*)+$"}
            ]
        })
    }
}

/// Think time: a duration or `uniform(mean, dev)`, `gaussian(mean, dev)`, `poisson(mean, offset)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ThinkTimeValue {
    Constant(Duration),
    Uniform { mean: Duration, dev: Duration },
    Gaussian { mean: Duration, dev: Duration },
    Poisson { mean: Duration, offset: Duration },
}

impl ThinkTimeValue {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let Some((name, rest)) = text.split_once('(') else {
            return parse_duration(text)
                .map(Self::Constant)
                .map_err(|e| e.to_string());
        };
        let args = rest
            .strip_suffix(')')
            .ok_or_else(|| format!("invalid think time `{text}`: missing `)`"))?;
        let parts: Vec<&str> = args.split(',').map(str::trim).collect();
        let [a, b] = parts.as_slice() else {
            return Err(format!(
                "invalid think time `{text}`: `{name}` takes two durations"
            ));
        };
        let a = parse_duration(a).map_err(|e| e.to_string())?;
        let b = parse_duration(b).map_err(|e| e.to_string())?;
        match name.trim() {
            "uniform" => Ok(Self::Uniform { mean: a, dev: b }),
            "gaussian" => Ok(Self::Gaussian { mean: a, dev: b }),
            "poisson" => Ok(Self::Poisson { mean: a, offset: b }),
            other => Err(format!(
                "unknown think-time distribution `{other}`; expected `uniform`, `gaussian` or `poisson`"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for ThinkTimeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(|e| {
            de::Error::custom(format_args!(
                "{e}\nhint: write a duration (`500ms`) or uniform(mean, dev), gaussian(mean, dev), poisson(mean, offset)"
            ))
        })
    }
}

impl JsonSchema for ThinkTimeValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ThinkTime".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration, or uniform(mean, dev), gaussian(mean, dev), poisson(mean, offset).",
            "type": ["number", "string"]
        })
    }
}

/// A map whose keys are the user's names, in written order, with their spans.
#[derive(Debug)]
pub struct Keyed<V>(pub Vec<(Located<String>, V)>);

impl<V> Keyed<V> {
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.0
            .iter()
            .filter_map(|(k, v)| k.get().map(|k| (k.as_str(), v)))
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Keyed<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyedVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for KeyedVisitor<V> {
            type Value = Keyed<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keyed<V>, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(Keyed(entries))
            }
        }
        deserializer.deserialize_map(KeyedVisitor(PhantomData))
    }
}

impl<V: JsonSchema> JsonSchema for Keyed<V> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "object", "additionalProperties": generator.subschema_for::<V>()})
    }
}

/// Schema only: a string shorthand or the full map.
#[derive(Debug)]
pub struct StrOr<T>(PhantomData<T>);

impl<T: JsonSchema> JsonSchema for StrOr<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("StringOr_{}", T::schema_name()).into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({"anyOf": [{"type": "string"}, generator.subschema_for::<T>()]})
    }
}

/// Schema only: one map or a list of them.
#[derive(Debug)]
pub struct OneOrList<T>(PhantomData<T>);

impl<T: JsonSchema> JsonSchema for OneOrList<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("OneOrList_{}", T::schema_name()).into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let item = generator.subschema_for::<T>();
        json_schema!({"anyOf": [item.clone(), {"type": "array", "items": item}]})
    }
}

/// Taurus and JMeter keys that cannot change results here, per raw type: a warning, not an
/// error, when loading; allowed (and described as ignored) by the JSON Schema.
const IGNORABLE_KEYS: &[(&str, &[&str], &str)] = &[
    (
        "RawScenario",
        &[
            "store-cache",
            "use-dns-cache-mgr",
            "retrieve-resources",
            "concurrent-pool-size",
        ],
        "a JMeter cache/resource option with no effect on perfgate's HTTP engine",
    ),
    (
        "RawScenario",
        &["properties"],
        "JMeter properties do not apply here; use `settings.env`",
    ),
    (
        "RawScenario",
        &["browser"],
        "browser scenarios need Selenium; perfgate sends HTTP requests",
    ),
    (
        "RawScenario",
        &["simulation"],
        "an option of the Gatling executor",
    ),
    (
        "RawRequest",
        &["include-timers"],
        "a JMeter transaction option; transactions here time their requests",
    ),
    (
        "RawExecution",
        &["locations", "locations-weighted", "provisioning"],
        "cloud locations do not apply: perfgate generates load from this machine",
    ),
    (
        "RawExecution",
        &["runner", "write-xml-jtl", "files"],
        "an option of another Taurus executor",
    ),
    (
        "RawSettings",
        &[
            "default-executor",
            "aggregator",
            "verbose",
            "check-updates",
            "proxy",
        ],
        "a Taurus setting that does not apply to perfgate",
    ),
    (
        "RawSuite",
        &["version", "provisioning", "cli-aliases"],
        "a Taurus setting that does not apply to perfgate",
    ),
];

/// Why `key` of the raw type `struct_name` is ignored, if it is one of [`IGNORABLE_KEYS`].
pub(crate) fn ignorable_key(struct_name: &str, key: &str) -> Option<&'static str> {
    IGNORABLE_KEYS
        .iter()
        .find(|(s, keys, _)| *s == struct_name && keys.contains(&key))
        .map(|(_, _, why)| *why)
}

/// A whole-value `${NAME}` reference, accepted wherever a number or a patterned string is.
const VARIABLE_PATTERN: &str = "^\\$\\{[^}]+\\}$";

/// The JSON Schema of the suite format, as committed in `schemas/suite.schema.json`.
///
/// It accepts every suite the validator accepts: keys that only warn, `${VAR}` in number and
/// duration fields (filled in from `settings.env` before validation), numeric thresholds and
/// header values.
pub fn suite_schema() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<RawSuite>();
    let mut value = serde_json::to_value(schema).unwrap_or_default();
    allow_variables(&mut value);
    if let Some(defs) = value
        .get_mut("definitions")
        .and_then(serde_json::Value::as_object_mut)
    {
        for (name, keys, why) in IGNORABLE_KEYS {
            let Some(props) = defs
                .get_mut(*name)
                .and_then(|d| d.get_mut("properties"))
                .and_then(serde_json::Value::as_object_mut)
            else {
                continue;
            };
            for key in *keys {
                props.insert(
                    (*key).to_owned(),
                    serde_json::json!({"description": format!("Ignored (a warning): {why}.")}),
                );
            }
        }
    }
    if let Some(root_props) = value
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        for (name, keys, why) in IGNORABLE_KEYS {
            if *name == "RawSuite" {
                for key in *keys {
                    root_props.insert(
                        (*key).to_owned(),
                        serde_json::json!({"description": format!("Ignored (a warning): {why}.")}),
                    );
                }
            }
        }
    }
    value
}

/// Lets every number, and every string with a pattern, also be a `${NAME}` reference; lets
/// every string-only value (thresholds, header values) also be a number or a boolean, as YAML
/// authors write them.
fn allow_variables(schema: &mut serde_json::Value) {
    use serde_json::{Value, json};
    match schema {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                // The names of properties are not schemas; their values are.
                if key == "properties" || key == "definitions" {
                    if let Value::Object(props) = child {
                        props.values_mut().for_each(allow_variables);
                    }
                } else if key != "enum" && key != "const" && key != "required" {
                    allow_variables(child);
                }
            }
            let types: Vec<&str> = match map.get("type") {
                Some(Value::String(t)) => vec![t.as_str()],
                Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
                _ => return,
            };
            let numeric = types.iter().any(|t| *t == "integer" || *t == "number");
            let patterned = types.contains(&"string") && map.contains_key("pattern");
            let plain_string = types.contains(&"string")
                && !numeric
                && !patterned
                && !map.contains_key("enum")
                && !map.contains_key("format");
            if plain_string {
                let mut widened: Vec<Value> = types.iter().map(|t| json!(t)).collect();
                widened.extend([json!("number"), json!("boolean")]);
                map.insert("type".into(), Value::Array(widened));
            } else if numeric || patterned {
                let description = map.remove("description");
                let original = Value::Object(std::mem::take(map));
                map.insert(
                    "anyOf".into(),
                    json!([original, {"type": "string", "pattern": VARIABLE_PATTERN}]),
                );
                if let Some(d) = description {
                    map.insert("description".into(), d);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(allow_variables),
        _ => {}
    }
}

/// Expands shorthand forms in place, so the raw types see one shape per thing:
/// a single `execution` map becomes a list, an inline `execution[].scenario` map moves to
/// `scenarios` under a generated name, and string items become maps (`- http://x` →
/// `{url: http://x}`, `- monitoring` → `{module: monitoring}`, ...).
pub fn normalize(root: &mut Node) {
    let Kind::Map(_) = root.kind else { return };
    if let Some(exec) = root.get_mut("execution")
        && let Kind::Map(_) = exec.kind
    {
        let single = exec.clone();
        exec.kind = Kind::Seq(vec![single]);
    }
    hoist_inline_scenarios(root);
    for_each_item(root.get_mut("services"), |service| {
        wrap_str(service, "module");
        for hook in ["prepare", "startup", "check", "shutdown", "post-process"] {
            for_each_item(service.get_mut(hook), |c| wrap_str(c, "command"));
        }
    });
    for_each_item(root.get_mut("reporting"), |r| wrap_str(r, "module"));
    if let Some(Node {
        kind: Kind::Map(scenarios),
        ..
    }) = root.get_mut("scenarios")
    {
        for scenario in scenarios {
            for_each_item(scenario.value.get_mut("data-sources"), |d| {
                wrap_str(d, "path")
            });
            normalize_requests(scenario.value.get_mut("requests"));
        }
    }
}

fn normalize_requests(requests: Option<&mut Node>) {
    for_each_item(requests, |request| {
        wrap_str(request, "url");
        for_each_item(request.get_mut("assert"), |a| {
            if let Kind::Str(_) = a.kind {
                let regex = a.clone();
                a.kind = Kind::Map(vec![Entry {
                    key: "contains".into(),
                    key_span: a.span,
                    value: Node::new(Kind::Seq(vec![regex]), a.span),
                }]);
            }
        });
        for_each_item(request.get_mut("assert-jsonpath"), |a| {
            wrap_str(a, "jsonpath")
        });
        for (key, field) in [
            ("extract-jsonpath", "jsonpath"),
            ("extract-regexp", "regexp"),
        ] {
            if let Some(Node {
                kind: Kind::Map(entries),
                ..
            }) = request.get_mut(key)
            {
                for entry in entries {
                    wrap_str(&mut entry.value, field);
                }
            }
        }
        for block in ["do", "then", "else"] {
            normalize_requests(request.get_mut(block));
        }
    });
}

fn for_each_item(list: Option<&mut Node>, mut f: impl FnMut(&mut Node)) {
    if let Some(Node {
        kind: Kind::Seq(items),
        ..
    }) = list
    {
        items.iter_mut().for_each(&mut f);
    }
}

/// `"x"` → `{key: "x"}`.
fn wrap_str(node: &mut Node, key: &str) {
    if let Kind::Str(_) | Kind::Int(_) | Kind::Float(_) = node.kind {
        let value = node.clone();
        node.kind = Kind::Map(vec![Entry {
            key: key.to_owned(),
            key_span: node.span,
            value,
        }]);
    }
}

fn hoist_inline_scenarios(root: &mut Node) {
    let mut hoisted = Vec::new();
    let mut taken: Vec<String> = root
        .get("scenarios")
        .and_then(Node::as_map)
        .map(|m| m.iter().map(|e| e.key.clone()).collect())
        .unwrap_or_default();
    if let Some(Node {
        kind: Kind::Seq(items),
        ..
    }) = root.get_mut("execution")
    {
        for (i, exec) in items.iter_mut().enumerate() {
            let Some(scenario) = exec.get_mut("scenario") else {
                continue;
            };
            if let Kind::Map(_) = scenario.kind {
                let mut name = format!("execution-{}", i + 1);
                while taken.contains(&name) {
                    name.push('\'');
                }
                taken.push(name.clone());
                let body =
                    std::mem::replace(scenario, Node::new(Kind::Str(name.clone()), scenario.span));
                hoisted.push(Entry {
                    key: name,
                    key_span: body.span,
                    value: body,
                });
            }
        }
    }
    if hoisted.is_empty() {
        return;
    }
    let span = root.span;
    let Kind::Map(entries) = &mut root.kind else {
        return;
    };
    let scenarios = match entries.iter().position(|e| e.key == "scenarios") {
        Some(i) => &mut entries[i].value,
        None => {
            entries.push(Entry {
                key: "scenarios".into(),
                key_span: span,
                value: Node::new(Kind::Map(Vec::new()), span),
            });
            &mut entries.last_mut().expect("just pushed").value
        }
    };
    match &mut scenarios.kind {
        Kind::Map(existing) => existing.extend(hoisted),
        other => *other = Kind::Map(hoisted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_describes_shorthands() {
        let schema = suite_schema();
        let text = schema.to_string();
        assert!(text.contains("\"execution\""), "{text}");
        assert!(
            schema.pointer("/properties/execution/anyOf").is_some(),
            "{:#}",
            schema["properties"]["execution"]
        );
        assert_eq!(schema["additionalProperties"], false);
    }
}
