//! Virtual users: one scenario iteration at a time, every request feature of DESIGN §4.4.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, Normal};
use regex::Regex;
use reqwest::cookie::Jar;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json_path::JsonPath;
use tokio::sync::watch;

use super::LoadEvent;
use super::h1::Keep;
use super::llm::{self, SseSink};
use super::transport::{BodySink, Failure, Http, Prepared, WholeBody, via_reqwest};
use crate::metrics::{Extra, Outcome, Sample};
use crate::plan::ExecutionPlan;
use crate::suite::model::{AssertSubject, Body, Extractor, Request, Scenario, Step, ThinkTime};

/// Why a virtual user stopped early.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("data source ran out of rows")]
    DataExhausted,
    #[error("failed to read data source `{path}`")]
    Data {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("cannot read `{path}`")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` line {line}: {message}")]
    Jsonl {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("failed to build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("invalid pattern `{0}`")]
    Pattern(String),
}

/// A CSV data source shared by every virtual user of an execution.
#[derive(Debug)]
struct DataSource {
    names: Vec<String>,
    rows: Vec<Vec<String>>,
    repeat: bool,
    next: Mutex<usize>,
}

/// What the virtual users of one execution share.
#[derive(Debug)]
pub struct Shared {
    pub plan: ExecutionPlan,
    t0: Instant,
    events: super::EventSender,
    pub stop: watch::Receiver<bool>,
    /// Set when a non-looping data source runs out: the execution ends.
    finished: std::sync::atomic::AtomicBool,
    data: Vec<DataSource>,
    regexes: HashMap<String, Regex>,
    paths: HashMap<String, JsonPath>,
    files: HashMap<PathBuf, Arc<Vec<u8>>>,
    /// The open model shares one client (and its connection pool) across arrivals.
    client: Option<reqwest::Client>,
    /// The end of the warm-up, fixed when the load starts.
    warm_until: std::sync::OnceLock<Instant>,
    /// The end of a time-bound load, fixed when it starts.
    ends_at: std::sync::OnceLock<Instant>,
    /// Requests in flight across the suite's executions (each sample records it).
    in_flight: super::InFlight,
}

impl Shared {
    pub fn new(
        plan: ExecutionPlan,
        t0: Instant,
        events: super::EventSender,
        stop: watch::Receiver<bool>,
        in_flight: super::InFlight,
    ) -> Result<Self, LoadError> {
        let mut data = Vec::new();
        for source in &plan.scenario.data_sources {
            if source.jsonl {
                data.push(DataSource {
                    names: source.variable_names.clone(),
                    rows: jsonl_rows(&source.path, &source.variable_names)?,
                    repeat: source.repeat,
                    next: Mutex::new(0),
                });
                continue;
            }
            let mut reader = csv::ReaderBuilder::new()
                .delimiter(u8::try_from(source.delimiter).unwrap_or(b','))
                .has_headers(false)
                .flexible(true)
                .quoting(true)
                .from_path(&source.path)
                .map_err(|e| LoadError::Data {
                    path: source.path.clone(),
                    source: e,
                })?;
            let mut rows: Vec<Vec<String>> = Vec::new();
            for record in reader.records() {
                let record = record.map_err(|e| LoadError::Data {
                    path: source.path.clone(),
                    source: e,
                })?;
                rows.push(record.iter().map(str::to_owned).collect());
            }
            // Without `variable-names`, the first line names the columns.
            if rows.first().is_some_and(|r| *r == source.variable_names) {
                rows.remove(0);
            }
            data.push(DataSource {
                names: source.variable_names.clone(),
                rows,
                repeat: source.repeat,
                next: Mutex::new(0),
            });
        }
        let mut regexes = HashMap::new();
        let mut paths = HashMap::new();
        let mut files = HashMap::new();
        for scenario in plan.scenarios.iter() {
            compile(&scenario.steps, &mut regexes, &mut paths, &mut files)?;
        }
        let client = matches!(plan.schedule, crate::plan::Schedule::Open { .. })
            .then(|| build_client(&plan.scenario, None, None))
            .transpose()?;
        Ok(Self {
            plan,
            t0,
            events,
            stop,
            finished: std::sync::atomic::AtomicBool::new(false),
            data,
            regexes,
            paths,
            files,
            client,
            warm_until: std::sync::OnceLock::new(),
            ends_at: std::sync::OnceLock::new(),
            in_flight,
        })
    }

    pub fn stopped(&self) -> bool {
        *self.stop.borrow() || self.finished.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn finish(&self) {
        self.finished
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn past_deadline(&self, start: Instant) -> bool {
        self.past_deadline_at(start, Instant::now())
    }

    pub fn past_deadline_at(&self, start: Instant, at: Instant) -> bool {
        self.plan
            .schedule
            .duration()
            .is_some_and(|d| at >= start + d)
    }

    fn second(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.t0).as_secs()
    }

    /// Marks the start of the load (after the delay): the warm-up, and the end of a
    /// time-bound load, count from here.
    pub fn begin(&self, start: Instant) {
        let _ = self.warm_until.set(start + self.plan.warm_up);
        if let Some(d) = self.plan.schedule.duration() {
            let _ = self.ends_at.set(start + d);
        }
    }

    /// When a time-bound load ends (`hold-for` is a hard end: think times are cut there).
    fn ends_at(&self) -> Option<Instant> {
        self.ends_at.get().copied()
    }

    /// When this execution's load ended: now, or the end of a time-bound load if that was
    /// earlier (what was in flight then may have taken longer).
    pub(super) fn ended(&self) -> Instant {
        let now = Instant::now();
        self.ends_at().map_or(now, |end| end.min(now))
    }

    /// Whether the load is over: stopped, or past the end of a time-bound load (no request
    /// is sent after it, even in the middle of an iteration).
    /// `due` is when the next request is due (an open-model arrival's scheduled time, or
    /// now).
    fn over(&self, due: Option<Instant>) -> bool {
        let due = due.unwrap_or_else(Instant::now);
        self.stopped() || self.ends_at().is_some_and(|end| due >= end)
    }

    /// Runs `wait` (the users or arrivals finishing), but a time-bound load is a hard end:
    /// what is still in flight `graceful_stop` after it is cancelled when this returns (the
    /// dispatcher counts it as unfinished).
    pub(super) async fn until_cut(&self, wait: impl std::future::Future<Output = ()>) {
        match self.ends_at() {
            Some(end) => {
                let cut = end + self.plan.graceful_stop;
                let _ = tokio::time::timeout_at(cut.into(), wait).await;
            }
            None => wait.await,
        }
    }

    /// Samples sent before the end of the warm-up are left out.
    fn warming(&self, sent: Instant) -> bool {
        self.warm_until.get().is_some_and(|until| sent < *until)
    }

    /// Announces a request (or transaction) sent at `sent`: the dispatcher knows it is in
    /// flight until its sample arrives. `None` during the warm-up (nothing is measured).
    async fn started(&self, label: &Arc<str>, sent: Instant) -> Option<u64> {
        if self.warming(sent) {
            return None;
        }
        let id = self.in_flight.next_id();
        let due = sent.saturating_duration_since(self.t0);
        let _ = self
            .events
            .send(LoadEvent::Started {
                id,
                execution: self.plan.index,
                label: label.clone(),
                due,
            })
            .await;
        Some(id)
    }

    /// Ends what [`Shared::started`] announced when no sample follows.
    async fn settle(&self, ticket: Option<u64>) {
        if let Some(id) = ticket {
            let _ = self.events.send(LoadEvent::Settled { id }).await;
        }
    }

    pub async fn dropped(&self, scheduled: Instant) {
        if self.warming(scheduled) {
            return;
        }
        let label = first_label(&self.plan.scenario.steps)
            .map(|l| l.to_string())
            .unwrap_or_default();
        let _ = self
            .events
            .send(LoadEvent::Dropped {
                second: self.second(scheduled),
                label,
            })
            .await;
    }

    /// A virtual user; `id` seeds its randomness (think times) with the execution's seed.
    pub fn user(self: &Arc<Self>, id: u64) -> Result<Vu, LoadError> {
        // The open model's arrivals share one pooled client; a closed-model user keeps its own
        // connection and cookie jar for the whole run.
        let (client, jar) = match &self.client {
            Some(c) => (c.clone(), None),
            None => {
                let jar = self
                    .plan
                    .scenario
                    .store_cookie
                    .then(|| Arc::new(Jar::default()));
                (build_client(&self.plan.scenario, None, jar.as_ref())?, jar)
            }
        };
        Ok(Vu {
            shared: self.clone(),
            direct: self.client.is_none(),
            client,
            http: Http::new(jar.clone()),
            deadlines: super::deadline::Deadlines::default(),
            jar,
            no_redirect: None,
            vars: HashMap::new(),
            rng: SmallRng::seed_from_u64(self.plan.seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            pacer: None,
            urls: HashMap::new(),
            prepared: HashMap::new(),
        })
    }
}

/// The rows of a JSON Lines file: per object, the values of `names` (strings as they are,
/// other values as JSON, missing ones empty). Blank lines are skipped.
fn jsonl_rows(path: &std::path::Path, names: &[String]) -> Result<Vec<Vec<String>>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::Jsonl {
        path: path.to_owned(),
        line: 0,
        message: e.to_string(),
    })?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| LoadError::Jsonl {
            path: path.to_owned(),
            line: i + 1,
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(format!("not JSON: {e}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| bad("not a JSON object".to_owned()))?;
        rows.push(
            names
                .iter()
                .map(|n| match object.get(n) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                })
                .collect(),
        );
    }
    Ok(rows)
}

fn first_label(steps: &[Step]) -> Option<Arc<str>> {
    steps.iter().find_map(|s| match s {
        Step::Request(r) => Some(r.label.clone()),
        Step::Transaction { name, .. } => Some(name.as_str().into()),
        Step::Loop { steps, .. } => first_label(steps),
        Step::If {
            then, otherwise, ..
        } => first_label(then).or_else(|| first_label(otherwise)),
        Step::IncludeScenario { .. } | Step::SetVariables { .. } => None,
    })
}

fn compile(
    steps: &[Step],
    regexes: &mut HashMap<String, Regex>,
    paths: &mut HashMap<String, JsonPath>,
    files: &mut HashMap<PathBuf, Arc<Vec<u8>>>,
) -> Result<(), LoadError> {
    for step in steps {
        match step {
            Step::Request(r) => {
                for a in r.assertions.iter().filter(|a| a.regexp) {
                    for p in &a.patterns {
                        let re = Regex::new(p).map_err(|_| LoadError::Pattern(p.clone()))?;
                        regexes.insert(p.clone(), re);
                    }
                }
                for a in &r.jsonpath_assertions {
                    let path = JsonPath::parse(&a.jsonpath)
                        .map_err(|_| LoadError::Pattern(a.jsonpath.clone()))?;
                    paths.insert(a.jsonpath.clone(), path);
                }
                for e in &r.extractors {
                    match e {
                        Extractor::JsonPath { jsonpath, .. } => {
                            let path = JsonPath::parse(jsonpath)
                                .map_err(|_| LoadError::Pattern(jsonpath.clone()))?;
                            paths.insert(jsonpath.clone(), path);
                        }
                        Extractor::Regexp { regexp, .. } => {
                            let re = Regex::new(regexp)
                                .map_err(|_| LoadError::Pattern(regexp.clone()))?;
                            regexes.insert(regexp.clone(), re);
                        }
                    }
                }
                // Files are read once, not per request.
                let body_file = match &r.body {
                    Some(Body::File(path)) => Some(path),
                    _ => None,
                };
                for path in body_file
                    .into_iter()
                    .chain(r.upload_files.iter().map(|u| &u.path))
                {
                    // Validation checked what existed then; a file a `prepare` command was
                    // to make is looked for now.
                    let bytes = std::fs::read(path).map_err(|e| LoadError::File {
                        path: path.clone(),
                        source: e,
                    })?;
                    files.insert(path.clone(), Arc::new(bytes));
                }
            }
            Step::Transaction { steps, .. } | Step::Loop { steps, .. } => {
                compile(steps, regexes, paths, files)?
            }
            Step::If {
                then, otherwise, ..
            } => {
                compile(then, regexes, paths, files)?;
                compile(otherwise, regexes, paths, files)?;
            }
            Step::IncludeScenario { .. } | Step::SetVariables { .. } => {}
        }
    }
    Ok(())
}

/// One TLS configuration for the whole process (rustls, the platform's verifier). Reading the
/// system's certificates costs milliseconds; every virtual user's client shares the result.
fn tls_config() -> Option<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Option<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = rustls_platform_verifier::Verifier::new(provider.clone()).ok()?;
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .ok()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Some(config)
        })
        .clone()
}

/// A client for `scenario`. With `jar`, cookies live there (a virtual user's own jar, which its
/// direct HTTP/1.1 path shares); without, in the client (the open model's shared client).
fn build_client(
    scenario: &Scenario,
    follow: Option<bool>,
    jar: Option<&Arc<Jar>>,
) -> Result<reqwest::Client, LoadError> {
    let follow = follow.unwrap_or(scenario.follow_redirects);
    let mut builder = reqwest::Client::builder();
    if let Some(tls) = tls_config() {
        builder = builder.tls_backend_preconfigured(tls);
    }
    builder = match jar {
        Some(jar) => builder.cookie_provider(jar.clone()),
        None => builder.cookie_store(scenario.store_cookie),
    };
    builder
        .pool_max_idle_per_host(if scenario.keepalive { usize::MAX } else { 0 })
        .redirect(if follow {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        })
        .timeout(scenario.timeout)
        .no_proxy()
        .build()
        .map_err(LoadError::Client)
}

/// One virtual user: its own connections, cookies and variables.
#[derive(Debug)]
pub struct Vu {
    shared: Arc<Shared>,
    client: reqwest::Client,
    /// A client for requests that override `follow-redirects` (built on first use).
    no_redirect: Option<reqwest::Client>,
    vars: HashMap<String, String>,
    rng: SmallRng,
    /// The closed model's throughput cap, shared by the execution's users.
    pacer: Option<Arc<super::Pacer>>,
    /// Whether plain-HTTP requests use this user's own keep-alive connections.
    direct: bool,
    /// This user's own HTTP/1.1 connections and cookies, for the direct path.
    http: Http,
    /// The direct path's request timeouts, on one timer.
    deadlines: super::deadline::Deadlines,
    /// This user's cookies (`store-cookie`), shared by both paths.
    jar: Option<Arc<Jar>>,
    /// Parsed URLs of requests without variables, by request (address, URL).
    urls: HashMap<usize, (Option<String>, reqwest::Url)>,
    /// Direct-path requests in which nothing varies, built once, by request (address,
    /// request; `None` when it varies).
    prepared: HashMap<usize, (Option<String>, Option<Prepared>)>,
}

/// Whether nothing in a request varies from one send to the next: no variables in its URL,
/// headers or body, no token-stream prompt, no uploaded files.
fn fixed_request(r: &Request, scenario: &Scenario, address: Option<&str>) -> bool {
    let var = |t: &str| t.contains("${");
    !var(&r.url)
        && !address.is_some_and(var)
        && r.llm.is_none()
        && r.upload_files.is_empty()
        && scenario
            .headers
            .iter()
            .chain(&r.headers)
            .all(|(k, v)| !var(k) && !var(v))
        && match &r.body {
            None | Some(Body::File(_)) => true,
            Some(Body::Text(t)) => !var(t),
            Some(Body::Structured(v)) => !var(&v.to_string()),
        }
}

type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<StepResult, LoadError>> + Send + 'a>>;

/// Where a response body goes: kept whole (for assertions), or read as a token stream.
#[derive(Debug)]
enum Sink {
    Whole(WholeBody),
    /// Boxed: plain requests keep the small variant (the request's future stays small).
    Stream(Box<SseSink>),
}

impl Sink {
    /// An empty sink of the same kind (the body of a followed redirect).
    fn fresh(&self, cap: u64) -> Self {
        match self {
            Self::Whole(w) => Self::Whole(w.fresh()),
            Self::Stream(s) => Self::Stream(Box::new(s.fresh(cap))),
        }
    }
}

impl BodySink for Sink {
    fn chunk(&mut self, data: &[u8], at: Duration) -> Result<(), Failure> {
        match self {
            Self::Whole(w) => w.chunk(data, at),
            Self::Stream(s) => s.chunk(data, at),
        }
    }
}

/// What one request (or transaction) measured: a sample without its place in the run.
#[derive(Debug)]
struct Measured {
    rt: Duration,
    lt: Duration,
    ct: Option<Duration>,
    bytes: u64,
    outcome: Outcome,
    extra: Option<Box<Extra>>,
}

/// What a block of steps did, for transactions.
#[derive(Clone, Copy, Debug, Default)]
struct StepResult {
    /// Time spent in requests (not think time).
    busy: Duration,
    ok: bool,
    requests: u32,
}

impl Vu {
    /// Runs the scenario once. `scheduled` is the open model's planned send time: the first
    /// request's latency is measured from it.
    pub async fn iteration(&mut self, scheduled: Option<Instant>) -> Result<(), LoadError> {
        self.vars.clear();
        for (k, v) in &self.shared.plan.scenario.variables {
            let v = substitute(v, &self.vars).into_owned();
            self.vars.insert(k.clone(), v);
        }
        for i in 0..self.shared.data.len() {
            self.next_row(i)?;
        }
        let shared = self.shared.clone();
        let scenario = &shared.plan.scenario;
        let mut scheduled = scheduled;
        // A scenario of requests only runs them in turn, without a boxed future per
        // iteration (nested steps need one: they recurse).
        if scenario.steps.iter().all(|s| matches!(s, Step::Request(_))) {
            let address = scenario.default_address.as_deref();
            for step in &scenario.steps {
                if self.shared.over(scheduled) {
                    break;
                }
                if let Step::Request(request) = step {
                    self.request(request, scenario, address, &mut scheduled)
                        .await?;
                }
            }
            return Ok(());
        }
        self.steps(
            &scenario.steps,
            scenario,
            scenario.default_address.clone(),
            &mut scheduled,
            0,
        )
        .await?;
        Ok(())
    }

    pub(super) fn pace(&mut self, pacer: Option<Arc<super::Pacer>>) {
        self.pacer = pacer;
    }

    fn next_row(&mut self, index: usize) -> Result<(), LoadError> {
        let source = &self.shared.data[index];
        let row = {
            let mut next = source
                .next
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *next >= source.rows.len() {
                if !source.repeat || source.rows.is_empty() {
                    return Err(LoadError::DataExhausted);
                }
                *next = 0;
            }
            *next += 1;
            source.rows[*next - 1].clone()
        };
        for (name, value) in source.names.iter().zip(row) {
            self.vars.insert(name.clone(), value);
        }
        Ok(())
    }

    fn steps<'a>(
        &'a mut self,
        steps: &'a [Step],
        scenario: &'a Scenario,
        address: Option<String>,
        scheduled: &'a mut Option<Instant>,
        depth: u32,
    ) -> StepFuture<'a> {
        Box::pin(async move {
            let mut result = StepResult {
                ok: true,
                ..StepResult::default()
            };
            for step in steps {
                if self.shared.over(*scheduled) {
                    break;
                }
                let r = match step {
                    Step::Request(request) => {
                        self.request(request, scenario, address.as_deref(), scheduled)
                            .await?
                    }
                    Step::IncludeScenario { scenario: name } => {
                        let shared = self.shared.clone();
                        let Some(included) = shared.plan.scenarios.iter().find(|s| &s.name == name)
                        else {
                            continue;
                        };
                        if depth > 32 {
                            continue;
                        }
                        let address = included.default_address.clone().or_else(|| address.clone());
                        self.steps(&included.steps, included, address, scheduled, depth + 1)
                            .await?
                    }
                    Step::Transaction { name, steps } => {
                        let started = Instant::now();
                        let name: Arc<str> = name.as_str().into();
                        let ticket = self.shared.started(&name, started).await;
                        let inner = self
                            .steps(steps, scenario, address.clone(), scheduled, depth + 1)
                            .await;
                        match &inner {
                            Ok(inner) if inner.requests > 0 => {
                                let measured = Measured {
                                    rt: inner.busy,
                                    lt: inner.busy,
                                    ct: None,
                                    bytes: 0,
                                    outcome: outcome_of(inner.ok),
                                    extra: None,
                                };
                                self.emit(ticket, &name, started, measured).await;
                            }
                            _ => self.shared.settle(ticket).await,
                        }
                        inner?
                    }
                    Step::Loop { count, steps } => {
                        let mut total = StepResult {
                            ok: true,
                            ..StepResult::default()
                        };
                        for _ in 0..*count {
                            let inner = self
                                .steps(steps, scenario, address.clone(), scheduled, depth + 1)
                                .await?;
                            total.busy += inner.busy;
                            total.ok &= inner.ok;
                            total.requests += inner.requests;
                        }
                        total
                    }
                    Step::If {
                        condition,
                        then,
                        otherwise,
                    } => {
                        let left = substitute(&condition.left, &self.vars).into_owned();
                        let right = substitute(&condition.right, &self.vars);
                        let branch = if (left == right) == condition.equal {
                            then
                        } else {
                            otherwise
                        };
                        self.steps(branch, scenario, address.clone(), scheduled, depth + 1)
                            .await?
                    }
                    Step::SetVariables { variables } => {
                        for (k, v) in variables {
                            let v = substitute(v, &self.vars).into_owned();
                            self.vars.insert(k.clone(), v);
                        }
                        StepResult {
                            ok: true,
                            ..StepResult::default()
                        }
                    }
                };
                result.busy += r.busy;
                result.ok &= r.ok;
                result.requests += r.requests;
            }
            Ok(result)
        })
    }

    async fn emit(&self, ticket: Option<u64>, label: &Arc<str>, sent: Instant, m: Measured) {
        let Some(id) = ticket else {
            return;
        };
        let sample = Sample {
            label: label.clone(),
            second: self.shared.second(sent),
            rt: m.rt,
            lt: m.lt,
            ct: m.ct,
            bytes: m.bytes,
            outcome: m.outcome,
            concurrency: self.shared.in_flight.get(),
            completed: self.shared.second(sent + m.rt),
            extra: m.extra,
        };
        let _ = self
            .shared
            .events
            .send(LoadEvent::Sample { id, sample })
            .await;
    }

    /// Builds the request for `url`: method, merged headers, body.
    fn build(
        &self,
        client: &reqwest::Client,
        r: &Request,
        scenario: &Scenario,
        method: reqwest::Method,
        url: Result<reqwest::Url, String>,
        llm_body: Option<&serde_json::Value>,
    ) -> reqwest::RequestBuilder {
        let builder = match url {
            Ok(url) => client.request(method, url),
            Err(text) => client.request(method, text),
        };
        let mut builder = builder.timeout(r.timeout.unwrap_or(scenario.timeout));
        let mut headers = HeaderMap::new();
        for (k, v) in scenario.headers.iter().chain(&r.headers) {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&substitute(v, &self.vars)),
            ) {
                headers.insert(name, value);
            }
        }
        let is_form = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("x-www-form-urlencoded"));
        if let Some(body) = llm_body {
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            let bytes = serde_json::to_vec(body).unwrap_or_default();
            return builder.body(bytes).headers(headers);
        }
        builder = match &r.body {
            Some(Body::Structured(value)) => {
                let value = substitute_json(value, &self.vars);
                match (&value, is_form) {
                    (serde_json::Value::Object(map), true) => {
                        let pairs: Vec<(String, String)> =
                            map.iter().map(|(k, v)| (k.clone(), json_text(v))).collect();
                        builder.form(&pairs)
                    }
                    _ => {
                        if !headers.contains_key(CONTENT_TYPE) {
                            headers
                                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                        }
                        builder.body(serde_json::to_vec(&value).unwrap_or_default())
                    }
                }
            }
            Some(Body::Text(text)) => builder.body(substitute(text, &self.vars).into_owned()),
            Some(Body::File(path)) => builder.body(
                self.shared
                    .files
                    .get(path)
                    .map(|b| b.as_ref().clone())
                    .unwrap_or_default(),
            ),
            None => builder,
        };
        if !r.upload_files.is_empty() {
            let mut form = reqwest::multipart::Form::new();
            for u in &r.upload_files {
                let bytes = self
                    .shared
                    .files
                    .get(&u.path)
                    .map(|b| b.as_ref().clone())
                    .unwrap_or_default();
                let name = u
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let mut part = reqwest::multipart::Part::bytes(bytes).file_name(name);
                if let Some(mime) = &u.mime_type {
                    part = part
                        .mime_str(mime)
                        .unwrap_or_else(|_| reqwest::multipart::Part::bytes(Vec::new()));
                }
                form = form.part(u.param.clone(), part);
            }
            builder = builder.multipart(form);
        }
        builder.headers(headers)
    }

    async fn request(
        &mut self,
        r: &Request,
        scenario: &Scenario,
        address: Option<&str>,
        scheduled: &mut Option<Instant>,
    ) -> Result<StepResult, LoadError> {
        // A request in which nothing varies, already prepared for this user's connection:
        // nothing to build, not even its URL.
        let key = std::ptr::from_ref(r) as usize;
        let ready = self.direct
            && scenario.keepalive
            && r.llm.is_none()
            && self
                .prepared
                .get(&key)
                .is_some_and(|(a, p)| p.is_some() && a.as_deref() == address);
        let url = match ready {
            true => Err(String::new()),
            false => self.url(r, address),
        };
        let method =
            reqwest::Method::from_bytes(r.method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let follow = r.follow_redirects.unwrap_or(scenario.follow_redirects);
        let client = if follow == scenario.follow_redirects {
            self.client.clone()
        } else {
            if self.no_redirect.is_none() {
                self.no_redirect = Some(build_client(scenario, Some(follow), self.jar.as_ref())?);
            }
            self.no_redirect
                .clone()
                .unwrap_or_else(|| self.client.clone())
        };
        // Plain HTTP with keep-alive goes over this user's own HTTP/1.1 connection; the rest
        // (TLS, HTTP/2, no keep-alive) through reqwest's pooled client.
        let direct = ready
            || self.direct
                && scenario.keepalive
                && url
                    .as_ref()
                    .is_ok_and(|u| u.scheme() == "http" && u.host_str().is_some());
        // An LLM request's body: the prompt filled in, usage asked for when it streams.
        let llm_body = r.llm.as_ref().map(|spec| {
            let mut body = match &r.body {
                Some(Body::Structured(v)) => substitute_json(v, &self.vars),
                _ => serde_json::json!({}),
            };
            let prompt =
                llm::prompt_value(spec, &mut self.rng).map(|p| substitute_json(&p, &self.vars));
            let stream = llm::complete_body(&mut body, spec, prompt);
            (body, stream)
        });
        // A request in which nothing varies is built once per user and sent as it is.
        let plain = direct && llm_body.is_none();
        if plain
            && !ready
            && self
                .prepared
                .get(&key)
                .is_none_or(|(a, _)| a.as_deref() != address)
        {
            let prepared = if fixed_request(r, scenario, address) {
                let builder = self.build(&client, r, scenario, method.clone(), url.clone(), None);
                self.http.prepare(builder).await
            } else {
                None
            };
            self.prepared
                .insert(key, (address.map(str::to_owned), prepared));
        }
        let reuse = ready || plain && self.prepared.get(&key).is_some_and(|(_, p)| p.is_some());
        let builder = (!reuse).then(|| {
            self.build(
                &client,
                r,
                scenario,
                method.clone(),
                url.clone(),
                llm_body.as_ref().map(|(b, _)| b),
            )
        });

        if let Some(pacer) = &self.pacer {
            let slot = pacer.slot(&self.shared.plan.schedule);
            super::sleep_until_or_stop(slot, self.shared.stop.clone()).await;
            if self.shared.over(None) {
                return Ok(StepResult::default());
            }
        }
        let sent = scheduled.take().unwrap_or_else(Instant::now);
        let ticket = self.shared.started(&r.label, sent).await;
        let timeout = r.timeout.unwrap_or(scenario.timeout);
        let inspects = !r.assertions.is_empty()
            || !r.jsonpath_assertions.is_empty()
            || !r.extractors.is_empty();
        // The response headers are kept whole only for what inspects them.
        let keep = match inspects {
            true => Keep::All,
            false => Keep::Engine,
        };
        let mut body = match (&r.llm, &llm_body) {
            (Some(spec), Some((_, true))) => Sink::Stream(Box::new(SseSink::new(
                spec.api,
                scenario.max_body,
                inspects,
            ))),
            _ => Sink::Whole(WholeBody::new(
                scenario.max_body,
                inspects || r.llm.is_some(),
            )),
        };
        let exchange = match (builder, self.prepared.get(&key)) {
            (None, Some((_, Some(prepared)))) => {
                // Pinned where it is: the deadline holds a pointer, not a copy of the future.
                let send = std::pin::pin!(self.http.send_prepared(prepared, keep, sent, &mut body));
                let deadline = sent + timeout;
                match self.deadlines.run(deadline, send).await {
                    Some(exchange) => exchange,
                    None => Err(Failure::timeout(timeout)),
                }
            }
            (Some(builder), _) if direct => {
                let send = std::pin::pin!(self.http.direct(builder, keep, sent, &mut body));
                let deadline = sent + timeout;
                match self.deadlines.run(deadline, send).await {
                    Some(exchange) => exchange,
                    None => Err(Failure::timeout(timeout)),
                }
            }
            (Some(builder), _) => via_reqwest(builder, sent, &mut body).await,
            (None, _) => Err(Failure::new(
                "request",
                "the request was not built".to_owned(),
            )),
        };
        // A redirect on the direct path is followed through reqwest (which follows any more).
        let exchange = match exchange {
            Ok(x) if direct && follow && x.redirect_to.is_some() => {
                let url = match ready {
                    true => self.url(r, address),
                    false => url,
                };
                let base = url.as_ref().ok();
                let location = x.redirect_to.as_deref().unwrap_or_default();
                let target = base
                    .and_then(|b| b.join(location).ok())
                    .ok_or_else(|| location.to_owned());
                let (method, again) = match x.status {
                    307 | 308 => (method, true),
                    _ => (reqwest::Method::GET, false),
                };
                let builder = if again {
                    let llm_body = llm_body.as_ref().map(|(b, _)| b);
                    self.build(&client, r, scenario, method, target, llm_body)
                } else {
                    let builder = match target {
                        Ok(t) => client.request(method, t),
                        Err(t) => client.request(method, t),
                    };
                    builder.timeout(timeout.saturating_sub(sent.elapsed()))
                };
                // The redirect's own body is not the answer: the followed one is.
                body = body.fresh(scenario.max_body);
                via_reqwest(builder, sent, &mut body).await.map(|mut y| {
                    y.timings.headers = x.timings.headers;
                    y.timings.connect = x.timings.connect;
                    y
                })
            }
            other => other,
        };
        let slo = r.llm.as_ref().and_then(|l| l.goodput.as_ref());
        let mut extra: Option<Box<Extra>> = None;
        let (result, outcome, lt, ct, bytes) = match exchange {
            Err(mut failure) => {
                let rt = sent.elapsed();
                if r.llm.is_some() {
                    if let Sink::Stream(sse) = &body {
                        let events = sse.content_events();
                        failure.message = match failure.kind {
                            "timeout" => format!(
                                "the event stream did not end within {} ({events} content events)",
                                humantime::format_duration(timeout)
                            ),
                            _ if events > 0 => format!(
                                "the event stream broke after {events} content events: {}",
                                failure.message
                            ),
                            _ => failure.message,
                        };
                    }
                    extra = Some(Box::new(Extra {
                        llm: Some(llm::Done::failed(slo)),
                        ..Extra::default()
                    }));
                }
                let outcome = Outcome::Error {
                    kind: failure.kind.into(),
                    message: failure.message,
                };
                let busy = StepResult {
                    busy: rt,
                    ok: false,
                    requests: 1,
                };
                (busy, outcome, failure.lt.unwrap_or(rt), failure.ct, 0)
            }
            Ok(x) => {
                let rt = x.timings.end;
                let (server, malformed) = super::timing::server_times(&x.headers, rt);
                let (body, bytes_read, llm_done) = match body {
                    Sink::Whole(whole) => {
                        let n = whole.seen();
                        let bytes = whole.into_bytes();
                        let done = match &r.llm {
                            Some(spec) if x.status < 400 => {
                                Some(Ok(llm::whole_response(spec.api, &bytes, rt, slo)))
                            }
                            _ => None,
                        };
                        (bytes, n, done)
                    }
                    Sink::Stream(sse) => {
                        let (n, kept) = (sse.bytes(), sse.kept());
                        let done = (x.status < 400).then(|| sse.finish(rt, slo));
                        (kept, n, done)
                    }
                };
                let mut stream_failure = None;
                let mut end = r.llm.as_ref().map(|_| llm::Done::failed(slo));
                let mut measures = server;
                match llm_done {
                    Some(Ok(done)) => {
                        measures.extend(done.measures);
                        end = Some(done.end);
                    }
                    Some(Err(failure)) => stream_failure = Some(failure),
                    None => {}
                }
                if !measures.is_empty() || malformed > 0 || end.is_some() {
                    extra = Some(Box::new(Extra {
                        measures,
                        llm: end,
                        malformed_timing: malformed,
                    }));
                }
                let (success, message) = if let Some(f) = stream_failure {
                    (false, Some(format!("{}: {}", f.kind, f.message)))
                } else if inspects {
                    let text = String::from_utf8_lossy(&body);
                    let head = x
                        .headers
                        .iter()
                        .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join("\n");
                    let texts = Texts {
                        body: &text,
                        headers: &head,
                        code: &x.status.to_string(),
                        url: x.url.as_str(),
                    };
                    let checked = self.check(r, x.status, &texts);
                    self.extract(r, &texts);
                    checked
                } else {
                    let ok = x.status < 400;
                    (ok, (!ok).then(|| format!("HTTP {}", x.status)))
                };
                // A failed request (a status, an assertion) is never good.
                if !success
                    && let Some(end) = extra.as_mut().and_then(|e| e.llm.as_mut())
                    && end.good.is_some()
                {
                    end.good = Some(false);
                }
                let outcome = Outcome::Response {
                    status: x.status,
                    success,
                    message,
                };
                let busy = StepResult {
                    busy: rt,
                    ok: success,
                    requests: 1,
                };
                (
                    busy,
                    outcome,
                    x.timings.headers,
                    x.timings.connect,
                    bytes_read,
                )
            }
        };
        let measured = Measured {
            rt: result.busy,
            lt,
            ct,
            bytes,
            outcome,
            extra,
        };
        self.emit(ticket, &r.label, sent, measured).await;
        if let Some(think) = r.think_time.or(scenario.think_time) {
            let pause = self.think(think);
            // Never past the end of the load: a think time longer than what remains is cut.
            let until = Instant::now()
                .checked_add(pause)
                .unwrap_or_else(|| Instant::now() + crate::suite::units::MAX_DURATION);
            let until = self.shared.ends_at().map_or(until, |end| until.min(end));
            let mut stop = self.shared.stop.clone();
            tokio::select! {
                () = tokio::time::sleep_until(until.into()) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        }
        Ok(result)
    }

    /// The request's URL: parsed once when it has no variables (parsing costs more than the
    /// rest of building a request), substituted and parsed each time otherwise.
    /// An unparsable URL comes back as text: sending it fails the sample with reqwest's reason.
    fn url(&mut self, r: &Request, address: Option<&str>) -> Result<reqwest::Url, String> {
        let fixed = !r.url.contains("${") && !address.is_some_and(|a| a.contains("${"));
        if !fixed {
            let path = substitute(&r.url, &self.vars);
            let url = join_url(address, &path);
            return reqwest::Url::parse(&url).map_err(|_| url.into_owned());
        }
        let key = std::ptr::from_ref(r) as usize;
        if let Some((a, url)) = self.urls.get(&key)
            && a.as_deref() == address
        {
            return Ok(url.clone());
        }
        let url = join_url(address, &r.url);
        let parsed = reqwest::Url::parse(&url).map_err(|_| url.clone().into_owned())?;
        self.urls
            .insert(key, (address.map(str::to_owned), parsed.clone()));
        Ok(parsed)
    }

    fn think(&mut self, think: ThinkTime) -> Duration {
        let secs = match think {
            ThinkTime::Constant { time } => time.as_secs_f64(),
            ThinkTime::Uniform { mean, dev } => {
                let (m, d) = (mean.as_secs_f64(), dev.as_secs_f64());
                if d > 0.0 {
                    self.rng.random_range(m - d..m + d)
                } else {
                    m
                }
            }
            ThinkTime::Gaussian { mean, dev } => Normal::new(mean.as_secs_f64(), dev.as_secs_f64())
                .map_or(mean.as_secs_f64(), |n| n.sample(&mut self.rng)),
            ThinkTime::Poisson { mean, offset } => {
                let lambda = (mean.as_secs_f64() - offset.as_secs_f64()).max(1e-3);
                offset.as_secs_f64()
                    + Exp::new(1.0 / lambda).map_or(lambda, |e| e.sample(&mut self.rng))
            }
        };
        Duration::from_secs_f64(secs.max(0.0))
    }

    /// Status and assertions: (success, failure message).
    fn check(&self, r: &Request, status: u16, texts: &Texts<'_>) -> (bool, Option<String>) {
        let assume = r.assertions.iter().any(|a| a.assume_success);
        let mut ok = assume || status < 400;
        let mut message = (!ok).then(|| format!("HTTP {status}"));
        for a in &r.assertions {
            let subject = texts.get(a.subject);
            for pattern in &a.patterns {
                let matched = if a.regexp {
                    self.shared
                        .regexes
                        .get(pattern)
                        .is_some_and(|re| re.is_match(subject))
                } else {
                    subject.contains(pattern.as_str())
                };
                if matched == a.not {
                    ok = false;
                    let verb = if a.not { "matches" } else { "does not match" };
                    message.get_or_insert_with(|| {
                        format!(
                            "assertion failed: {} {verb} `{pattern}`",
                            subject_name(a.subject)
                        )
                    });
                }
            }
        }
        if !r.jsonpath_assertions.is_empty() {
            let json: Option<serde_json::Value> = serde_json::from_str(texts.body).ok();
            for a in &r.jsonpath_assertions {
                let nodes: Vec<&serde_json::Value> =
                    match (&json, self.shared.paths.get(&a.jsonpath)) {
                        (Some(json), Some(path)) => path.query(json).all(),
                        _ => Vec::new(),
                    };
                let mut passed = if a.expect_null {
                    nodes.iter().any(|n| n.is_null())
                } else if a.validate {
                    a.expected_value
                        .as_ref()
                        .is_some_and(|want| nodes.iter().any(|n| json_text(n) == json_text(want)))
                } else {
                    !nodes.is_empty()
                };
                if a.invert {
                    passed = !passed;
                }
                if !passed {
                    ok = false;
                    message.get_or_insert_with(|| {
                        format!("assertion failed: JSONPath `{}`", a.jsonpath)
                    });
                }
            }
        }
        (ok, if ok { None } else { message })
    }

    fn extract(&mut self, r: &Request, texts: &Texts<'_>) {
        if r.extractors.is_empty() {
            return;
        }
        let json: Option<serde_json::Value> = serde_json::from_str(texts.body).ok();
        for e in &r.extractors {
            let (variable, value) = match e {
                Extractor::JsonPath {
                    variable,
                    jsonpath,
                    default,
                    match_no,
                } => {
                    let nodes: Vec<&serde_json::Value> =
                        match (&json, self.shared.paths.get(jsonpath)) {
                            (Some(json), Some(path)) => path.query(json).all(),
                            _ => Vec::new(),
                        };
                    let pick = pick(&nodes, *match_no).map(|n| json_text(n));
                    (
                        variable,
                        pick.or_else(|| default.clone())
                            .unwrap_or_else(|| "NOT_FOUND".into()),
                    )
                }
                Extractor::Regexp {
                    variable,
                    regexp,
                    template,
                    default,
                    match_no,
                    subject,
                } => {
                    let text = texts.get(*subject);
                    let found: Vec<String> = self
                        .shared
                        .regexes
                        .get(regexp)
                        .map(|re| {
                            re.captures_iter(text)
                                .map(|c| apply_template(template, &c))
                                .collect()
                        })
                        .unwrap_or_default();
                    let refs: Vec<&String> = found.iter().collect();
                    let pick = pick(&refs, *match_no).map(|s| (*s).clone());
                    (
                        variable,
                        pick.or_else(|| default.clone())
                            .unwrap_or_else(|| "NOT_FOUND".into()),
                    )
                }
            };
            self.vars.insert(variable.clone(), value);
        }
    }
}

/// JMeter match numbers: 1-based; 0 or less picks the first.
fn pick<T>(items: &[T], match_no: i64) -> Option<&T> {
    let index = usize::try_from(match_no.max(1) - 1).unwrap_or(0);
    items
        .get(index)
        .or_else(|| items.first().filter(|_| match_no <= 0))
}

/// `$1$` → group 1, `$0$` → the whole match.
fn apply_template(template: &str, captures: &regex::Captures<'_>) -> String {
    let mut out = template.to_owned();
    for i in (0..captures.len()).rev() {
        out = out.replace(
            &format!("${i}$"),
            captures.get(i).map_or("", |m| m.as_str()),
        );
    }
    out
}

struct Texts<'a> {
    body: &'a str,
    headers: &'a str,
    code: &'a str,
    url: &'a str,
}

impl Texts<'_> {
    fn get(&self, subject: AssertSubject) -> &str {
        match subject {
            AssertSubject::Body => self.body,
            AssertSubject::Headers => self.headers,
            AssertSubject::HttpCode => self.code,
            AssertSubject::Url => self.url,
        }
    }
}

fn subject_name(subject: AssertSubject) -> &'static str {
    match subject {
        AssertSubject::Body => "body",
        AssertSubject::Headers => "headers",
        AssertSubject::HttpCode => "http-code",
        AssertSubject::Url => "url",
    }
}

fn outcome_of(ok: bool) -> Outcome {
    Outcome::Response {
        status: if ok { 200 } else { 500 },
        success: ok,
        message: (!ok).then(|| "a request in the transaction failed".into()),
    }
}

/// Replaces `${name}` with the virtual user's variables; unknown names stay; the escape
/// `$${name}` is sent as the literal `${name}`.
pub fn substitute<'a>(text: &'a str, vars: &HashMap<String, String>) -> Cow<'a, str> {
    if !text.contains("${") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if start > 0 && rest.as_bytes()[start - 1] == b'$' {
            // `$${`: the first `$` escapes; keep `${` and whatever follows as text.
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match vars.get(name) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&rest[start..start + 3 + end]),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn substitute_json(value: &serde_json::Value, vars: &HashMap<String, String>) -> serde_json::Value {
    match value {
        serde_json::Value::String(s) => serde_json::Value::String(substitute(s, vars).into_owned()),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(|v| substitute_json(v, vars)).collect())
        }
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), substitute_json(v, vars)))
            .collect(),
        other => other.clone(),
    }
}

fn json_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn join_url<'a>(address: Option<&str>, url: &'a str) -> Cow<'a, str> {
    if url.contains("://") {
        return Cow::Borrowed(url);
    }
    match address {
        Some(base) => Cow::Owned(format!(
            "{}/{}",
            base.trim_end_matches('/'),
            url.trim_start_matches('/')
        )),
        None => Cow::Borrowed(url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_and_urls() {
        let vars: HashMap<String, String> = [("id".to_owned(), "7".to_owned())].into();
        assert_eq!(
            substitute("/a/${id}/${missing}/${id", &vars),
            "/a/7/${missing}/${id"
        );
        assert_eq!(substitute("/a/$${id}/${id}", &vars), "/a/${id}/7");
        assert_eq!(join_url(Some("http://h:1/"), "/x"), "http://h:1/x");
        assert_eq!(join_url(Some("http://h:1"), "http://o/y"), "http://o/y");
        let re = Regex::new("id=(\\d+)").unwrap();
        let caps = re.captures("id=42").unwrap();
        assert_eq!(apply_template("$1$", &caps), "42");
        assert_eq!(pick(&[1, 2, 3], 2), Some(&2));
        assert_eq!(pick(&[1, 2, 3], 0), Some(&1));
    }
}
