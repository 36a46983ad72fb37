//! Raw suite → validated [`Suite`], reporting every problem at once.
//!
//! [`validate`] resolves defaults and checks every cross-reference: scenario names, criterion
//! labels against request labels, monitoring subjects against declared sources and the metrics
//! they provide, `${name}` references against what defines them, and referenced files. It reads
//! only the raw types and the effective tree (for `${name}` positions); it never touches the
//! filesystem beyond checking that referenced files exist and reading CSV headers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use crate::criteria::eval::EXPR_FUNCTIONS as KPI_FUNCTIONS;
use crate::criteria::grammar::{
    self, Logic, Op, Subject, Threshold, parse_short, parse_subject, parse_threshold, subject_names,
};
use crate::monitor::names::{SourceKind, parse_selector};
use crate::suite::de::Located;
use crate::suite::diagnostics::{Diagnostic, Diagnostics};
use crate::suite::interpolate::references;
use crate::suite::model::*;

/// How long a server's readiness checks may go unanswered during the load.
const DEFAULT_WATCHDOG: Duration = Duration::from_secs(30);
use crate::suite::node::{Kind, Node, Span};
use crate::suite::raw::*;
use crate::suite::source::SourceMap;
use crate::suite::units::parse_duration;

/// What `validate` needs besides the raw suite.
#[derive(Debug)]
pub struct Context<'a> {
    pub name: String,
    pub path: PathBuf,
    pub sources: &'a SourceMap,
    /// The merged, interpolated tree the raw suite was read from.
    pub effective: &'a Node,
    /// Names that load-time interpolation knows (settings.env and built-ins).
    pub known_variables: BTreeSet<String>,
    /// `environments/<name>.yaml` files beside the suite and the names each declares.
    pub environments: Vec<(String, BTreeSet<String>)>,
    /// The ports of `settings.ports`, which differ from run to run.
    pub ports: Vec<(String, u16)>,
}

impl Context<'_> {
    /// A label as stable across runs: each port of `settings.ports` written as the `${NAME}`
    /// it came from (`http://127.0.0.1:${PORT}/x`), so a request without a label, and the
    /// criteria and JUnit testcases naming it, keep their names from one run to the next.
    pub fn stable_label(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (name, port) in &self.ports {
            let needle = format!(":{port}");
            let mut result = String::with_capacity(out.len());
            let mut rest = out.as_str();
            while let Some(i) = rest.find(&needle) {
                let after = &rest[i + needle.len()..];
                result.push_str(&rest[..i]);
                if after.starts_with(|c: char| c.is_ascii_digit()) {
                    result.push_str(&needle);
                } else {
                    result.push_str(&format!(":${{{name}}}"));
                }
                rest = after;
            }
            result.push_str(rest);
            out = result;
        }
        out
    }
}

const MONITOR_CLASSES: &[&str] = &[
    "metrics_monitoring_inproc.Monitor",
    "metrics_monitoring_taurus.Monitor",
    "bzt.modules.monitoring.Monitoring",
];
const PASSFAIL_CLASSES: &[&str] = &[
    "new_passfail.PassFailStatus",
    "bzt.modules.passfail.PassFailStatus",
];
const SHELLEXEC_CLASSES: &[&str] = &["bzt.modules.shellexec.ShellExecutor"];
const MONITORING_CRITERIA_CLASS: &str = "bzt.modules.monitoring.MonitoringCriteria";
const DATA_CRITERIA_CLASS: &str = "bzt.modules.passfail.DataCriterion";
/// Taurus tools whose `modules:` settings cannot apply to perfgate's engine.
const FOREIGN_TOOLS: &[&str] = &[
    "jmeter",
    "gatling",
    "locust",
    "selenium",
    "apiritif",
    "blazemeter",
    "k6",
    "siege",
    "tsung",
    "ab",
    "molotov",
    "newman",
    "pytest",
    "robot",
    "junit",
    "mocha",
    "nunit",
    "xunit",
    "console",
    "final-stats",
    "junit-xml",
    "passfail",
    "cloud",
    "virtual-display",
    "shellexec",
    "monitoring",
];
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
const SIGNALS: &[&str] = &[
    "SIGTERM", "SIGINT", "SIGKILL", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2",
];
const EVALEXPR_BUILTINS: &[&str] = &[
    "min",
    "max",
    "floor",
    "round",
    "ceil",
    "if",
    "contains",
    "contains_any",
    "typeof",
    "len",
    "math::abs",
    "math::sqrt",
    "math::ln",
    "math::log",
    "math::log2",
    "math::log10",
    "math::exp",
    "math::pow",
];

/// Which module a `services:` entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ModuleKind {
    Server,
    Shellexec,
    Monitoring,
    Passfail,
    Ignored,
}

impl ModuleKind {
    fn keys(self) -> &'static [&'static str] {
        match self {
            Self::Server => &[
                "label",
                "command",
                "shell",
                "cwd",
                "env",
                "pid-file",
                "process-match",
                "workers-match",
                "ready",
                "stop",
                "prepare",
                "post-process",
                "monitoring",
            ],
            Self::Shellexec => &[
                "prepare",
                "startup",
                "check",
                "shutdown",
                "post-process",
                "env",
            ],
            Self::Monitoring => &["local", "ServerLocalClient", "prometheus", "server-agent"],
            Self::Passfail => &["criteria"],
            Self::Ignored => &[],
        }
    }
}

/// A criterion waiting for labels and monitoring sources to be known.
struct PendingCriteria<'r> {
    criteria: &'r Located<RawCriteria>,
    scope: Scope,
}

struct Validator<'a> {
    cx: &'a Context<'a>,
    diags: Vec<Diagnostic>,
    labels: Vec<String>,
    runtime_vars: BTreeSet<String>,
    /// Scenarios whose requests perfgate cannot see (scripts): labels are unknown.
    opaque_scenarios: bool,
    /// Some requests failed to read; label checks would be guesses.
    incomplete: bool,
    includes: Vec<(String, String, Span)>,
    relative_urls: Vec<(String, String, Span)>,
    scenarios_with_address: BTreeSet<String>,
    aliases: BTreeMap<String, ModuleKind>,
    /// A CSV file could not be read, so its columns are unknown.
    unknown_columns: bool,
    /// Labels of monitoring sources already reported as unsupported.
    unsupported_sources: BTreeSet<String>,
}

/// Validates `raw` into a [`Suite`]; every problem goes to `diags`. `None` if any error.
pub fn validate(raw: &RawSuite, cx: &Context<'_>, diags: &mut Diagnostics) -> Option<Suite> {
    let mut v = Validator {
        cx,
        diags: Vec::new(),
        labels: Vec::new(),
        runtime_vars: BTreeSet::new(),
        opaque_scenarios: false,
        incomplete: false,
        includes: Vec::new(),
        relative_urls: Vec::new(),
        scenarios_with_address: BTreeSet::new(),
        aliases: BTreeMap::new(),
        unknown_columns: false,
        unsupported_sources: BTreeSet::new(),
    };
    let mut settings = v.settings(raw.settings.as_ref());
    settings.sequential = v.modules(raw);
    let scenarios = v.scenarios(raw);
    let mut pending = Vec::new();
    let executions = v.executions(raw, &mut pending);
    for scenario in raw.scenarios.iter().flat_map(|s| s.0.iter()) {
        if let (Some(name), Some(Some(criteria))) = (
            scenario.0.get(),
            scenario.1.get().map(|s| s.criteria.as_ref()),
        ) {
            pending.push(PendingCriteria {
                criteria,
                scope: Scope::Scenario(name.clone()),
            });
        }
    }
    let (services, monitoring) = v.services(raw, &mut pending);
    let reporters = v.reporters(raw, &mut pending);
    let criteria = pending
        .iter()
        .flat_map(|p| {
            p.criteria
                .get()
                .into_iter()
                .flat_map(|c| c.0.iter())
                .map(move |c| (c, p.scope.clone()))
        })
        .filter_map(|(c, scope)| v.criterion(c, scope, &monitoring))
        .collect();
    v.check_urls();
    v.check_include_cycles(&scenarios);
    v.check_variables();

    let has_errors = v.diags.iter().any(Diagnostic::is_error);
    diags.extend(drop_cascades(v.diags));
    if has_errors {
        return None;
    }
    Some(Suite {
        name: cx.name.clone(),
        path: cx.path.clone(),
        settings,
        executions,
        scenarios,
        services,
        monitoring,
        reporters,
        criteria,
        labels: v.labels,
        effective: cx.effective.to_json(),
    })
}

/// An undefined variable makes its line fail in other ways too (a duration that reads
/// `${X}`); keep only the root cause.
fn drop_cascades(diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let roots: BTreeSet<_> = diags
        .iter()
        .filter(|d| {
            d.message.starts_with("undefined variable") || d.message.starts_with("JMeter functions")
        })
        .filter_map(|d| d.span.map(|s| (s.file, s.line)))
        .collect();
    diags
        .into_iter()
        .filter(|d| {
            let root = d.message.starts_with("undefined variable")
                || d.message.starts_with("JMeter functions");
            // Only value-parse errors follow from an unresolved `${X}` on their line.
            let consequence =
                d.message.starts_with("invalid ") || d.message.starts_with("expected ");
            root || !consequence || d.span.is_none_or(|s| !roots.contains(&(s.file, s.line)))
        })
        .collect()
}

fn dur(v: Option<&Located<DurationValue>>) -> Option<Duration> {
    v.and_then(Located::get).map(|d| d.0)
}

fn keyed(k: Option<&Keyed<String>>) -> Vec<(String, String)> {
    k.map(|k| k.iter().map(|(a, b)| (a.to_owned(), b.clone())).collect())
        .unwrap_or_default()
}

impl Validator<'_> {
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Reports `value` unless it is one of `choices`, with a did-you-mean.
    fn one_of(&mut self, span: Span, what: &str, value: &str, choices: &[&str]) {
        if !choices.contains(&value) {
            self.push(
                Diagnostic::error(span, format!("unknown {what} `{value}`"))
                    .with_suggestion(value, choices.iter().copied())
                    .with_hint(format!("expected one of {}", choices.join(", "))),
            );
        }
    }

    fn resolve_path(&self, span: Span, text: &str) -> PathBuf {
        let path = Path::new(text);
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.cx.sources.base_dir(span.file).join(path)
        }
    }

    /// The path of a referenced file, reporting it when it does not exist.
    fn existing_file(&mut self, loc: &Located<String>, what: &str) -> Option<PathBuf> {
        let text = loc.get()?;
        let path = self.resolve_path(loc.span, text);
        if !text.contains("${") && !path.exists() {
            self.push(
                Diagnostic::error(loc.span, format!("{what} `{text}` does not exist"))
                    .with_label(format!("looked for {}", path.display()))
                    .with_hint("relative paths are resolved against the directory of the file that declares them"),
            );
        }
        Some(path)
    }

    fn regex(&mut self, loc: &Located<String>, what: &str) -> Option<String> {
        let text = loc.get()?;
        if let Err(e) = regex::Regex::new(text) {
            let detail = e
                .to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_owned();
            self.push(
                Diagnostic::error(loc.span, format!("invalid regular expression in {what}"))
                    .with_label(detail)
                    .with_hint(
                        "escape special characters such as `(`, `[` and `.` with a backslash",
                    ),
            );
        }
        Some(text.clone())
    }

    fn settings(&mut self, raw: Option<&Located<RawSettings>>) -> Settings {
        let s = raw.and_then(Located::get);
        let mut ports = Vec::new();
        for port in s.and_then(|s| s.ports.as_ref()).into_iter().flatten() {
            let Some(name) = port.get() else { continue };
            if !is_identifier(name) {
                self.push(
                    Diagnostic::error(
                        port.span,
                        format!("`{name}` is not a valid port variable name"),
                    )
                    .with_hint("use letters, digits and `_`, e.g. PORT or MGMT_PORT"),
                );
            }
            ports.push(name.clone());
        }
        if let Some(dir) = s.and_then(|s| s.artifacts_dir.as_ref()) {
            self.push(
                Diagnostic::warning(
                    dir.span,
                    "`settings.artifacts-dir` is ignored: a run's reports go to one directory for all its suites",
                )
                .with_hint("choose it with `perfgate run -a DIR` (default reports/<UTC timestamp>/)"),
            );
        }
        if let Some(range) = s.and_then(|s| s.port_range.as_ref())
            && let Some(text) = range.get()
            && crate::suite::load::parse_port_range(text).is_none()
        {
            self.push(
                Diagnostic::error(range.span, format!("invalid port range `{text}`")).with_hint(
                    "write LOW-HIGH with 1024 <= LOW <= HIGH <= 65535, e.g. 20000-32766",
                ),
            );
        }
        Settings {
            artifacts_dir: s
                .and_then(|s| s.artifacts_dir.as_ref())
                .and_then(|a| a.get().cloned()),
            env: s
                .and_then(|s| s.env.as_ref())
                .map(|e| {
                    e.iter()
                        // `X: null` is defined and empty, as Taurus exports it.
                        .map(|(k, v)| {
                            (
                                k.to_owned(),
                                v.as_ref().map_or_else(String::new, |v| v.0.clone()),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            ports,
            secrets: s
                .and_then(|s| s.secrets.as_ref())
                .map(|list| list.iter().filter_map(|l| l.get().cloned()).collect())
                .unwrap_or_default(),
            ramp_up_exclude: s.and_then(|s| s.ramp_up_exclude).unwrap_or(false),
            check_interval: dur(s.and_then(|s| s.check_interval.as_ref()))
                .unwrap_or(Duration::from_secs(1)),
            sequential: false,
        }
    }

    /// Module aliases and the Taurus module settings that change behaviour; returns
    /// `modules.local.sequential`.
    fn modules(&mut self, raw: &RawSuite) -> bool {
        let mut sequential = false;
        let Some(modules) = &raw.modules else {
            return sequential;
        };
        for (key, value) in &modules.0 {
            let (Some(alias), Some(settings)) = (key.get(), value.get()) else {
                continue;
            };
            let class = settings.get("class").and_then(|c| c.as_str());
            match class {
                Some(class) => {
                    let kind = if MONITOR_CLASSES.contains(&class) {
                        ModuleKind::Monitoring
                    } else if PASSFAIL_CLASSES.contains(&class) {
                        ModuleKind::Passfail
                    } else if SHELLEXEC_CLASSES.contains(&class) {
                        ModuleKind::Shellexec
                    } else {
                        let known: Vec<&str> = MONITOR_CLASSES
                            .iter()
                            .chain(PASSFAIL_CLASSES)
                            .chain(SHELLEXEC_CLASSES)
                            .copied()
                            .collect();
                        self.push(
                            Diagnostic::error(
                                value.span,
                                format!("unknown module class `{class}` for module `{alias}`"),
                            )
                            .with_suggestion(class, known.iter().copied())
                            .with_hint(format!("perfgate knows the classes {}", known.join(", "))),
                        );
                        continue;
                    };
                    self.aliases.insert(alias.clone(), kind);
                }
                None if alias == "local" && settings.get("sequential").is_some() => {
                    match settings.get("sequential").and_then(serde_json::Value::as_bool) {
                        Some(on) => sequential = on,
                        None => self.push(
                            Diagnostic::error(key.span, "`modules.local.sequential` must be true or false")
                                .with_hint("`sequential: true` runs the executions one after another, as Taurus does"),
                        ),
                    }
                }
                None if FOREIGN_TOOLS.contains(&alias.as_str()) || alias == "local" => {
                    self.push(Diagnostic::warning(
                        key.span,
                        format!("`modules.{alias}` is ignored: these are settings for a Taurus module that perfgate replaces"),
                    ));
                }
                None => self.push(
                    Diagnostic::warning(
                        key.span,
                        format!("`modules.{alias}` has no `class` and is ignored"),
                    )
                    .with_hint(
                        "module aliases need `class:`, e.g. metrics_monitoring_inproc.Monitor",
                    ),
                ),
            }
        }
        sequential
    }

    fn scenarios(&mut self, raw: &RawSuite) -> Vec<Scenario> {
        let Some(scenarios) = &raw.scenarios else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, scenario) in &scenarios.0 {
            let Some(name) = name.get() else { continue };
            let Some(s) = scenario.get() else {
                self.incomplete = true;
                continue;
            };
            if let Some(script) = &s.script {
                self.script(script);
                self.opaque_scenarios = true;
                continue;
            }
            for (var, _) in s.variables.iter().flat_map(Keyed::iter) {
                self.runtime_vars.insert(var.to_owned());
            }
            if s.default_address.as_ref().and_then(Located::get).is_some() {
                self.scenarios_with_address.insert(name.clone());
            }
            if s.requests.is_none() {
                self.push(
                    Diagnostic::error(
                        scenario.span,
                        format!("scenario `{name}` has no `requests`"),
                    )
                    .with_hint("list the requests to send, e.g. `requests: [/v2/health/ready]`"),
                );
            }
            let data_sources = s
                .data_sources
                .iter()
                .flatten()
                .filter_map(|d| self.data_source(d))
                .collect();
            let steps = self.steps(name, s.requests.as_deref().unwrap_or_default());
            out.push(Scenario {
                name: name.clone(),
                default_address: s.default_address.as_ref().and_then(|a| a.get().cloned()),
                headers: keyed(s.headers.as_ref()),
                timeout: dur(s.timeout.as_ref()).unwrap_or(Duration::from_secs(30)),
                think_time: s.think_time.as_ref().and_then(|t| t.get()).map(think_time),
                keepalive: s.keepalive.unwrap_or(true),
                follow_redirects: s.follow_redirects.unwrap_or(true),
                store_cookie: s.store_cookie.unwrap_or(true),
                variables: keyed(s.variables.as_ref()),
                data_sources,
                steps,
            });
        }
        out
    }

    fn script(&mut self, script: &Located<String>) {
        let Some(text) = script.get() else { return };
        if text.to_ascii_lowercase().ends_with(".jmx") {
            self.push(
                Diagnostic::error(script.span, format!("JMX plans are not supported yet: `{text}`"))
                    .with_hint("describe the plan's requests as a `requests:` list in this scenario; JMX import is planned"),
            );
        } else {
            self.push(
                Diagnostic::error(
                    script.span,
                    format!("scenario scripts are not supported: `{text}`"),
                )
                .with_hint(
                    "perfgate runs HTTP `requests:` scenarios; describe the requests in YAML",
                ),
            );
        }
    }

    fn data_source(&mut self, raw: &Located<RawDataSource>) -> Option<DataSource> {
        let d = raw.get()?;
        let path = self.existing_file(&d.path, "data source")?;
        if d.variable_names.is_none() && !path.is_file() {
            self.unknown_columns = true;
        }
        let delimiter = match d
            .delimiter
            .as_ref()
            .and_then(Located::get)
            .map(String::as_str)
        {
            None => ',',
            Some("tab" | "\\t" | "\t") => '\t',
            Some(text) if text.chars().count() == 1 => text.chars().next().unwrap_or(','),
            Some(text) => {
                let span = d.delimiter.as_ref().map(|l| l.span);
                self.push(
                    Diagnostic::error(span, format!("the delimiter `{text}` is not one character"))
                        .with_hint("write a single character such as `,` or `;`, or `tab`"),
                );
                ','
            }
        };
        let variable_names: Vec<String> = match d.variable_names.as_ref().and_then(Located::get) {
            Some(names) => names
                .split(',')
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect(),
            // The first line only, of a regular file only: a CSV may be huge, a FIFO endless.
            None => path
                .is_file()
                .then(|| first_line(&path))
                .flatten()
                .map(|h| {
                    h.split(delimiter)
                        .map(|c| c.trim().trim_matches('"').to_owned())
                        .collect()
                })
                .unwrap_or_default(),
        };
        self.runtime_vars.extend(variable_names.iter().cloned());
        Some(DataSource {
            path,
            delimiter,
            quoted: d.quoted.unwrap_or(false),
            repeat: d.loop_.unwrap_or(true),
            variable_names,
        })
    }

    fn steps(&mut self, scenario: &str, raw: &[Located<RawRequest>]) -> Vec<Step> {
        let mut steps = Vec::new();
        for item in raw {
            match item.get() {
                Some(r) => steps.extend(self.step(scenario, item.span, r)),
                None => self.incomplete = true,
            }
        }
        steps
    }

    fn step(&mut self, scenario: &str, span: Span, r: &RawRequest) -> Option<Step> {
        let unsupported = [
            ("if", r.if_.as_ref()),
            ("while", r.while_.as_ref()),
            ("foreach", r.foreach.as_ref()),
            ("action", r.action.as_ref()),
            ("jsr223", r.jsr223.as_ref()),
        ];
        for (key, value) in unsupported {
            if let Some(value) = value {
                self.push(
                    Diagnostic::error(
                        value.span,
                        format!("`{key}` is JMeter logic that perfgate does not run"),
                    )
                    .with_hint("use `loop`, `transaction`, `include-scenario` or `set-variables`"),
                );
                self.incomplete = true;
                return None;
            }
        }
        let kinds: Vec<&str> = [
            ("url", r.url.is_some()),
            ("include-scenario", r.include_scenario.is_some()),
            ("transaction", r.transaction.is_some()),
            ("loop", r.loop_.is_some()),
            ("set-variables", r.set_variables.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, present)| present.then_some(k))
        .collect();
        match kinds.as_slice() {
            [] => {
                self.push(
                    Diagnostic::error(span, "a request needs `url`")
                        .with_hint("a step is a request (`url:`) or one of `include-scenario`, `transaction`, `loop`, `set-variables`"),
                );
                self.incomplete = true;
                None
            }
            [one] => {
                if *one != "url" {
                    self.no_request_keys(one, r);
                }
                if r.do_.is_some() && !matches!(*one, "transaction" | "loop") {
                    self.push(Diagnostic::error(
                        span,
                        format!("`do` belongs to `transaction` or `loop`, not to `{one}`"),
                    ));
                }
                match *one {
                    "url" => self
                        .request(scenario, r)
                        .map(|req| Step::Request(Box::new(req))),
                    "include-scenario" => {
                        let target = r.include_scenario.as_ref()?;
                        let name = target.get()?.clone();
                        self.includes
                            .push((scenario.to_owned(), name.clone(), target.span));
                        Some(Step::IncludeScenario { scenario: name })
                    }
                    "transaction" => {
                        let name = r.transaction.as_ref()?.get()?.clone();
                        self.add_label(&name);
                        let steps = self.steps(scenario, r.do_.as_deref().unwrap_or_default());
                        Some(Step::Transaction { name, steps })
                    }
                    "loop" => {
                        let count = *r.loop_.as_ref()?.get()?;
                        if r.do_.is_none() {
                            self.push(Diagnostic::error(
                                span,
                                "`loop` needs a `do:` list of steps to repeat",
                            ));
                        }
                        let steps = self.steps(scenario, r.do_.as_deref().unwrap_or_default());
                        Some(Step::Loop { count, steps })
                    }
                    _ => {
                        let variables = keyed(r.set_variables.as_ref());
                        self.runtime_vars
                            .extend(variables.iter().map(|(k, _)| k.clone()));
                        Some(Step::SetVariables { variables })
                    }
                }
            }
            [first, second, ..] => {
                self.push(
                    Diagnostic::error(
                        span,
                        format!("a step cannot be both `{first}` and `{second}`"),
                    )
                    .with_hint("split it into two list items"),
                );
                self.incomplete = true;
                None
            }
        }
    }

    /// Request-only keys on a logic block are mistakes (probably bad indentation).
    fn no_request_keys(&mut self, kind: &str, r: &RawRequest) {
        let spans = [
            ("label", r.label.as_ref().map(|l| l.span)),
            ("method", r.method.as_ref().map(|l| l.span)),
            ("body", r.body.as_ref().map(|l| l.span)),
            ("body-file", r.body_file.as_ref().map(|l| l.span)),
            ("timeout", r.timeout.as_ref().map(|l| l.span)),
        ];
        for (key, span) in spans {
            if let Some(span) = span {
                self.push(
                    Diagnostic::error(span, format!("`{key}` has no effect on a `{kind}` step"))
                        .with_hint(
                            "check the indentation: request keys belong to an item with `url:`",
                        ),
                );
            }
        }
    }

    fn add_label(&mut self, label: &str) {
        if !self.labels.iter().any(|l| l == label) {
            self.labels.push(label.to_owned());
        }
    }

    fn request(&mut self, scenario: &str, r: &RawRequest) -> Option<Request> {
        let url_loc = r.url.as_ref()?;
        let url = url_loc.get()?.clone();
        let lower = url.to_ascii_lowercase();
        if lower.contains("://") {
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                self.push(
                    Diagnostic::error(url_loc.span, format!("unsupported URL scheme in `{url}`"))
                        .with_hint("perfgate sends HTTP; use http:// or https://"),
                );
            }
        } else if !url.starts_with("${") {
            self.relative_urls
                .push((scenario.to_owned(), url.clone(), url_loc.span));
        }
        let label = r
            .label
            .as_ref()
            .and_then(Located::get)
            .cloned()
            .unwrap_or_else(|| self.cx.stable_label(&url));
        self.add_label(&label);
        let method = match &r.method {
            Some(m) => {
                let text = m.get()?.to_ascii_uppercase();
                self.one_of(m.span, "HTTP method", &text, METHODS);
                text
            }
            None => "GET".to_owned(),
        };
        let body = match (&r.body, &r.body_file) {
            (Some(body), Some(file)) => {
                self.push(
                    Diagnostic::error(
                        file.span,
                        "a request has either `body` or `body-file`, not both",
                    )
                    .with_label(format!("`body` is at line {}", body.span.line)),
                );
                None
            }
            (Some(body), None) => body.get().and_then(|b| match b {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(Body::Text(s.clone())),
                v @ (serde_json::Value::Object(_) | serde_json::Value::Array(_)) => {
                    Some(Body::Structured(v.clone()))
                }
                other => Some(Body::Text(other.to_string())),
            }),
            (None, Some(file)) => self.existing_file(file, "body file").map(Body::File),
            (None, None) => None,
        };
        let mut upload_files = Vec::new();
        for upload in r.upload_files.iter().flatten() {
            let Some(u) = upload.get() else { continue };
            let Some(path) = self.existing_file(&u.path, "upload file") else {
                continue;
            };
            upload_files.push(Upload {
                param: u.param.get().cloned().unwrap_or_default(),
                path,
                mime_type: u.mime_type.clone(),
            });
        }
        let mut assertions = Vec::new();
        for a in r.assert.iter().flatten() {
            let Some(a) = a.get() else { continue };
            let regexp = a.regexp.unwrap_or(true);
            let mut patterns = Vec::new();
            for p in a.contains.iter().flatten() {
                let text = if regexp {
                    self.regex(p, "`assert`")
                } else {
                    p.get().cloned()
                };
                patterns.extend(text);
            }
            assertions.push(Assertion {
                subject: a
                    .subject
                    .as_ref()
                    .and_then(|s| s.get().copied())
                    .unwrap_or(AssertSubject::Body),
                patterns,
                regexp,
                not: a.not.unwrap_or(false),
                assume_success: a.assume_success.unwrap_or(false),
            });
        }
        let mut jsonpath_assertions = Vec::new();
        for a in r.assert_jsonpath.iter().flatten() {
            let Some(a) = a.get() else { continue };
            let Some(jsonpath) = self.jsonpath(&a.jsonpath) else {
                continue;
            };
            jsonpath_assertions.push(JsonPathAssertion {
                jsonpath,
                expected_value: a.expected_value.clone(),
                validate: a.validate.unwrap_or(a.expected_value.is_some()),
                invert: a.invert.unwrap_or(false),
                expect_null: a.expect_null.unwrap_or(false),
                regexp: a.regexp.unwrap_or(false),
            });
        }
        let mut extractors = Vec::new();
        for (var, e) in r.extract_jsonpath.iter().flat_map(Keyed::iter) {
            self.runtime_vars.insert(var.to_owned());
            let Some(e) = e.get() else { continue };
            let Some(jsonpath) = self.jsonpath(&e.jsonpath) else {
                continue;
            };
            extractors.push(Extractor::JsonPath {
                variable: var.to_owned(),
                jsonpath,
                default: e.default.clone(),
                match_no: e.match_no.unwrap_or(1),
            });
        }
        for (var, e) in r.extract_regexp.iter().flat_map(Keyed::iter) {
            self.runtime_vars.insert(var.to_owned());
            let Some(e) = e.get() else { continue };
            let Some(regexp) = self.regex(&e.regexp, "`extract-regexp`") else {
                continue;
            };
            extractors.push(Extractor::Regexp {
                variable: var.to_owned(),
                regexp,
                template: e
                    .template
                    .as_ref()
                    .and_then(|t| t.get().cloned())
                    .unwrap_or_else(|| "$1$".into()),
                default: e.default.clone(),
                match_no: e.match_no.unwrap_or(1),
                subject: e
                    .subject
                    .as_ref()
                    .and_then(|s| s.get().copied())
                    .unwrap_or(AssertSubject::Body),
            });
        }
        Some(Request {
            label,
            url,
            method,
            headers: keyed(r.headers.as_ref()),
            body,
            upload_files,
            think_time: r.think_time.as_ref().and_then(|t| t.get()).map(think_time),
            timeout: dur(r.timeout.as_ref()),
            follow_redirects: r.follow_redirects,
            assertions,
            jsonpath_assertions,
            extractors,
        })
    }

    fn jsonpath(&mut self, loc: &Located<String>) -> Option<String> {
        let text = loc.get()?;
        if !text.trim_start().starts_with('$') {
            self.push(
                Diagnostic::error(loc.span, format!("`{text}` is not a JSONPath")).with_hint(
                    "JSONPath expressions start at the root `$`, e.g. `$.outputs[0].data`",
                ),
            );
        }
        Some(text.clone())
    }

    fn executions<'r>(
        &mut self,
        raw: &'r RawSuite,
        pending: &mut Vec<PendingCriteria<'r>>,
    ) -> Vec<Execution> {
        let Some(list) = &raw.execution else {
            self.push(
                Diagnostic::error(
                    None,
                    format!(
                        "`{}` has no `execution`: there is nothing to run",
                        self.cx.path.display()
                    ),
                )
                .with_hint("add `execution: [{scenario: NAME, concurrency: 1, hold-for: 10s}]`"),
            );
            return Vec::new();
        };
        let names: Vec<&str> = raw
            .scenarios
            .iter()
            .flat_map(|s| s.iter().map(|(n, _)| n))
            .collect();
        let mut out = Vec::new();
        for (index, item) in list.iter().enumerate() {
            let Some(e) = item.get() else { continue };
            if let Some(executor) = &e.executor
                && let Some(name) = executor.get().filter(|n| n.as_str() != "perfgate")
            {
                self.push(Diagnostic::warning(
                        executor.span,
                        format!("`executor: {name}` is ignored: perfgate runs `requests:` scenarios with its own HTTP engine"),
                    ));
            }
            let scenario = match &e.scenario {
                None => {
                    self.push(
                        Diagnostic::error(item.span, "an execution needs `scenario`")
                            .with_hint("name a scenario from `scenarios:` or write one inline"),
                    );
                    continue;
                }
                Some(s) => {
                    let Some(name) = s.get() else { continue };
                    if !names.contains(&name.as_str()) {
                        self.push(
                            Diagnostic::error(s.span, format!("unknown scenario `{name}`"))
                                .with_suggestion(name, names.iter().copied())
                                .with_hint(if names.is_empty() {
                                    "declare it under `scenarios:`".to_owned()
                                } else {
                                    format!("scenarios in this suite: {}", names.join(", "))
                                }),
                        );
                    }
                    name.clone()
                }
            };
            let concurrency = e
                .concurrency
                .as_ref()
                .and_then(|c| c.get().copied())
                .unwrap_or(1);
            if concurrency == 0 {
                self.push(Diagnostic::error(
                    e.concurrency.as_ref().map(|c| c.span),
                    "`concurrency` must be at least 1",
                ));
            }
            let ramp_up = dur(e.ramp_up.as_ref()).unwrap_or_default();
            let hold_for = dur(e.hold_for.as_ref()).unwrap_or_default();
            let steps = e.steps.as_ref().and_then(|s| s.get().copied());
            if let (Some(steps_loc), Some(n)) = (&e.steps, steps)
                && (n == 0 || ramp_up.is_zero())
            {
                self.push(
                    Diagnostic::error(
                        steps_loc.span,
                        "`steps` needs a `ramp-up` and at least 1 step",
                    )
                    .with_hint("stepped ramp-up divides `ramp-up` into `steps` equal stages"),
                );
            }
            let throughput = e.throughput.as_ref().and_then(|t| t.get().copied());
            if let (Some(t), Some(loc)) = (throughput, &e.throughput)
                && t <= 0.0
            {
                self.push(Diagnostic::error(
                    loc.span,
                    "`throughput` must be more than 0 requests per second",
                ));
            }
            let arrival = e.arrival.as_ref().and_then(|a| a.get().copied());
            if let (Some(loc), None) = (&e.arrival, throughput) {
                self.push(
                    Diagnostic::error(
                        loc.span,
                        "`arrival` needs `throughput`, the rate at which requests arrive",
                    )
                    .with_hint("add e.g. `throughput: 100` (requests per second)"),
                );
            }
            let mut iterations = e.iterations.as_ref().and_then(|i| i.get().copied());
            if iterations.is_none() && hold_for.is_zero() && ramp_up.is_zero() {
                // As Taurus: with no duration, run the scenario once per user.
                iterations = Some(1);
            }
            if let Some(criteria) = &e.criteria {
                pending.push(PendingCriteria {
                    criteria,
                    scope: Scope::Execution(index),
                });
            }
            out.push(Execution {
                scenario,
                concurrency,
                ramp_up,
                steps,
                hold_for,
                iterations,
                throughput,
                arrival,
                warm_up: dur(e.warm_up.as_ref()).unwrap_or_default(),
                delay: dur(e.delay.as_ref()).unwrap_or_default(),
            });
        }
        out
    }

    fn module_kind(
        &mut self,
        module: &Located<String>,
        allowed: &[(&str, ModuleKind)],
    ) -> Option<ModuleKind> {
        let name = module.get()?;
        if let Some((_, kind)) = allowed.iter().find(|(n, _)| n == name) {
            return Some(*kind);
        }
        if let Some(kind) = self.aliases.get(name) {
            return Some(*kind);
        }
        let candidates: Vec<&str> = allowed
            .iter()
            .map(|(n, _)| *n)
            .chain(self.aliases.keys().map(String::as_str))
            .collect();
        self.push(
            Diagnostic::error(module.span, format!("unknown module `{name}`"))
                .with_suggestion(name, candidates.iter().copied())
                .with_hint(format!("modules here: {}", candidates.join(", "))),
        );
        None
    }

    fn services<'r>(
        &mut self,
        raw: &'r RawSuite,
        pending: &mut Vec<PendingCriteria<'r>>,
    ) -> (Vec<Service>, Vec<MonitorSource>) {
        let mut services = Vec::new();
        let mut monitoring = Vec::new();
        let allowed = [
            ("server", ModuleKind::Server),
            ("shellexec", ModuleKind::Shellexec),
            ("monitoring", ModuleKind::Monitoring),
            ("passfail", ModuleKind::Passfail),
            ("virtual-display", ModuleKind::Ignored),
        ];
        for item in raw.services.iter().flatten() {
            let Some(s) = item.get() else { continue };
            let Some(kind) = self.module_kind(&s.module, &allowed) else {
                continue;
            };
            let module = s.module.get().cloned().unwrap_or_default();
            self.service_keys(s, kind, &module);
            match kind {
                ModuleKind::Server => {
                    if let Some(server) = self.server(item.span, s, &services) {
                        monitoring.push(self.monitor_source(
                            s.monitoring.as_ref(),
                            server.label.clone(),
                            SourceKind::Server,
                        ));
                        services.push(Service::Server(Box::new(server)));
                    }
                }
                ModuleKind::Shellexec => {
                    let cmds = |v: &mut Self,
                                list: &Option<Vec<Located<RawCommand>>>|
                     -> Vec<ShellCommand> {
                        list.iter()
                            .flatten()
                            .filter_map(|c| v.shell_command(c))
                            .collect()
                    };
                    services.push(Service::Shellexec(ShellExec {
                        prepare: cmds(self, &s.prepare),
                        startup: cmds(self, &s.startup),
                        check: cmds(self, &s.check),
                        shutdown: cmds(self, &s.shutdown),
                        post_process: cmds(self, &s.post_process),
                    }));
                }
                ModuleKind::Monitoring => {
                    for src in s.local.iter().flatten() {
                        monitoring.push(self.monitor_source(
                            Some(src),
                            "local".into(),
                            SourceKind::Local,
                        ));
                    }
                    for src in s.server_local_client.iter().flatten() {
                        monitoring.push(self.monitor_source(
                            Some(src),
                            "ServerLocalClient".into(),
                            SourceKind::ServerLocalClient,
                        ));
                    }
                    for src in s.prometheus.iter().flatten() {
                        let name = src
                            .get()
                            .and_then(|p| p.label.as_ref())
                            .and_then(|l| l.get().cloned())
                            .unwrap_or_else(|| "prometheus".into());
                        monitoring.push(self.monitor_source(
                            Some(src),
                            name,
                            SourceKind::Prometheus,
                        ));
                    }
                    for agent in s.server_agent.iter().flatten() {
                        if let Some(label) = agent
                            .get()
                            .and_then(|a| a.get("label"))
                            .and_then(|l| l.as_str())
                        {
                            self.unsupported_sources.insert(label.to_owned());
                        }
                        self.push(
                            Diagnostic::error(agent.span, "Taurus `server-agent` monitoring is not supported")
                                .with_hint("let perfgate watch the server itself: a `server` service, or `ServerLocalClient` for MMS"),
                        );
                    }
                }
                ModuleKind::Passfail => {
                    if let Some(criteria) = &s.criteria {
                        pending.push(PendingCriteria {
                            criteria,
                            scope: Scope::Suite,
                        });
                    }
                }
                ModuleKind::Ignored => self.push(Diagnostic::warning(
                    s.module.span,
                    format!("module `{module}` is ignored: it has no effect on HTTP load"),
                )),
            }
        }
        let mut seen = BTreeSet::new();
        for source in &monitoring {
            if source.kind != SourceKind::Local
                && source.kind != SourceKind::ServerLocalClient
                && !seen.insert(source.name.clone())
            {
                self.push(
                    Diagnostic::error(
                        None,
                        format!("two monitoring sources are named `{}`", source.name),
                    )
                    .with_hint("give each server and prometheus source its own `label`"),
                );
            }
        }
        (services, monitoring)
    }

    fn service_keys(&mut self, s: &RawService, kind: ModuleKind, module: &str) {
        let present = [
            ("label", s.label.as_ref().map(|l| l.span)),
            ("command", s.command.as_ref().map(|l| l.span)),
            ("shell", s.shell.as_ref().map(|l| l.span)),
            ("cwd", s.cwd.as_ref().map(|l| l.span)),
            ("pid-file", s.pid_file.as_ref().map(|l| l.span)),
            ("process-match", s.process_match.as_ref().map(|l| l.span)),
            ("workers-match", s.workers_match.as_ref().map(|l| l.span)),
            ("ready", s.ready.as_ref().map(|l| l.span)),
            ("stop", s.stop.as_ref().map(|l| l.span)),
            (
                "startup",
                s.startup.as_ref().and_then(|l| l.first()).map(|l| l.span),
            ),
            (
                "check",
                s.check.as_ref().and_then(|l| l.first()).map(|l| l.span),
            ),
            (
                "shutdown",
                s.shutdown.as_ref().and_then(|l| l.first()).map(|l| l.span),
            ),
            (
                "prepare",
                s.prepare.as_ref().and_then(|l| l.first()).map(|l| l.span),
            ),
            (
                "post-process",
                s.post_process
                    .as_ref()
                    .and_then(|l| l.first())
                    .map(|l| l.span),
            ),
            ("monitoring", s.monitoring.as_ref().map(|l| l.span)),
            (
                "local",
                s.local.as_ref().and_then(|l| l.first()).map(|l| l.span),
            ),
            (
                "ServerLocalClient",
                s.server_local_client
                    .as_ref()
                    .and_then(|l| l.first())
                    .map(|l| l.span),
            ),
            (
                "prometheus",
                s.prometheus
                    .as_ref()
                    .and_then(|l| l.first())
                    .map(|l| l.span),
            ),
            (
                "server-agent",
                s.server_agent
                    .as_ref()
                    .and_then(|l| l.first())
                    .map(|l| l.span),
            ),
            ("criteria", s.criteria.as_ref().map(|l| l.span)),
        ];
        if kind == ModuleKind::Ignored {
            return;
        }
        for (key, span) in present {
            let Some(span) = span else { continue };
            if !kind.keys().contains(&key) {
                self.push(
                    Diagnostic::error(span, format!("`{key}` does not apply to module `{module}`"))
                        .with_hint(format!(
                            "module `{module}` takes: {}",
                            kind.keys().join(", ")
                        )),
                );
            }
        }
    }

    fn server(&mut self, span: Span, s: &RawService, existing: &[Service]) -> Option<Server> {
        let label = s
            .label
            .as_ref()
            .and_then(|l| l.get().cloned())
            .unwrap_or_else(|| "server".into());
        if existing
            .iter()
            .any(|e| matches!(e, Service::Server(o) if o.label == label))
        {
            self.push(
                Diagnostic::error(
                    s.label.as_ref().map_or(span, |l| l.span),
                    format!("two servers are labelled `{label}`"),
                )
                .with_hint(
                    "give each server its own `label`; it names its log and monitoring series",
                ),
            );
        }
        let launch = match (&s.command, &s.shell) {
            (Some(argv), None) => {
                let argv = argv.get()?.clone();
                if argv.is_empty() {
                    self.push(Diagnostic::error(
                        s.command.as_ref().map(|c| c.span),
                        "`command` is empty",
                    ));
                }
                Launch::Argv(argv)
            }
            (None, Some(shell)) => Launch::Shell(shell.get()?.clone()),
            (Some(_), Some(shell)) => {
                self.push(
                    Diagnostic::error(shell.span, "a server has `command` or `shell`, not both")
                        .with_hint("`command` is an argv list; `shell` is one /bin/sh line for daemonising scripts"),
                );
                return None;
            }
            (None, None) => {
                self.push(
                    Diagnostic::error(
                        span,
                        format!("server `{label}` needs `command` (an argv list) or `shell`"),
                    )
                    .with_hint("e.g. command: [\"${PERFGATE}\", demo-server, --port, \"${PORT}\"]"),
                );
                return None;
            }
        };
        let ready = match s.ready.as_ref() {
            None => {
                self.push(
                    Diagnostic::error(s.module.span, format!("server `{label}` has no readiness check"))
                        .with_hint("add `ready: {tcp: \"127.0.0.1:${PORT}\"}` (or `http:` / `log:`) instead of sleeping"),
                );
                return None;
            }
            Some(r) => {
                let r = r.get()?;
                if r.tcp.is_none() && r.http.is_none() && r.log.is_none() {
                    self.push(
                        Diagnostic::error(
                            s.ready.as_ref().map(|l| l.span),
                            "`ready` needs `tcp`, `http` or `log`",
                        )
                        .with_hint(
                            "e.g. ready: {http: \"http://127.0.0.1:${PORT}/v2/health/ready\"}",
                        ),
                    );
                }
                if let Some(tcp) = r.tcp.as_ref()
                    && let Some(text) = tcp.get()
                {
                    let port_ok = text
                        .rsplit_once(':')
                        .is_some_and(|(_, p)| p.parse::<u16>().is_ok() || p.contains("${"));
                    if !port_ok {
                        self.push(
                            Diagnostic::error(tcp.span, format!("`{text}` is not host:port"))
                                .with_hint("e.g. tcp: \"127.0.0.1:${PORT}\""),
                        );
                    }
                }
                if let Some(http) = r.http.as_ref()
                    && let Some(text) = http
                        .get()
                        .filter(|t| !t.starts_with("http://") && !t.starts_with("https://"))
                {
                    self.push(Diagnostic::error(
                        http.span,
                        format!("`{text}` is not an http:// URL"),
                    ));
                }
                let log = r.log.as_ref().and_then(|l| self.regex(l, "`ready.log`"));
                Ready {
                    tcp: r.tcp.as_ref().and_then(|t| t.get().cloned()),
                    http: r.http.as_ref().and_then(|t| t.get().cloned()),
                    status: r
                        .status
                        .as_ref()
                        .and_then(|s| s.get().copied())
                        .unwrap_or(200),
                    log,
                    timeout: dur(r.timeout.as_ref()).unwrap_or(Duration::from_secs(60)),
                    interval: dur(r.interval.as_ref()).unwrap_or(Duration::from_millis(250)),
                    watchdog: dur(r.watchdog.as_ref()).unwrap_or(DEFAULT_WATCHDOG),
                }
            }
        };
        let stop_raw = s.stop.as_ref().and_then(Located::get);
        let signal = match stop_raw.and_then(|s| s.signal.as_ref()) {
            Some(sig) => {
                let text = sig
                    .get()
                    .map(|t| t.to_ascii_uppercase())
                    .unwrap_or_default();
                let full = if text.starts_with("SIG") {
                    text
                } else {
                    format!("SIG{text}")
                };
                self.one_of(sig.span, "signal", &full, SIGNALS);
                full
            }
            None => "SIGTERM".into(),
        };
        let cwd = s
            .cwd
            .as_ref()
            .and_then(|c| self.existing_file(c, "working directory"));
        let commands = |list: &Option<Vec<Located<RawCommand>>>| -> Vec<String> {
            list.iter()
                .flatten()
                .filter_map(|c| c.get())
                .filter_map(|c| c.command.get().cloned())
                .collect()
        };
        Some(Server {
            label,
            launch,
            cwd,
            env: keyed(s.env.as_ref()),
            pid_file: s.pid_file.as_ref().and_then(|p| p.get()).map(PathBuf::from),
            process_match: s
                .process_match
                .as_ref()
                .and_then(|p| self.regex(p, "`process-match`")),
            workers_match: s
                .workers_match
                .as_ref()
                .and_then(|p| self.regex(p, "`workers-match`")),
            ready,
            stop: Stop {
                signal,
                grace: dur(stop_raw.and_then(|s| s.grace.as_ref()))
                    .unwrap_or(Duration::from_secs(10)),
                command: stop_raw
                    .and_then(|s| s.command.as_ref())
                    .and_then(|c| c.get().cloned()),
            },
            prepare: commands(&s.prepare),
            post_process: commands(&s.post_process),
        })
    }

    fn shell_command(&mut self, raw: &Located<RawCommand>) -> Option<ShellCommand> {
        let c = raw.get()?;
        Some(ShellCommand {
            command: c.command.get()?.clone(),
            background: c.background.unwrap_or(false),
            ignore_failure: c.ignore_failure.unwrap_or(false),
            out: c.out.as_ref().and_then(|o| o.get().cloned()),
            err: c.err.as_ref().and_then(|o| o.get().cloned()),
            cwd: c.cwd.as_ref().and_then(|d| d.get()).map(PathBuf::from),
            env: keyed(c.env.as_ref()),
        })
    }

    fn monitor_source(
        &mut self,
        raw: Option<&Located<RawMonitorSource>>,
        name: String,
        kind: SourceKind,
    ) -> MonitorSource {
        let src = raw.and_then(Located::get);
        let mut metrics = Vec::new();
        let listed = src.and_then(|s| s.metrics.as_ref());
        for m in listed.into_iter().flatten() {
            let Some(metric) = m.get() else { continue };
            if metric == "all" && kind != SourceKind::Prometheus {
                metrics.extend(kind.all().into_iter().map(str::to_owned));
                continue;
            }
            if kind == SourceKind::Prometheus {
                if let Err(why) = parse_selector(metric) {
                    self.push(
                        Diagnostic::error(m.span, format!("invalid Prometheus selector: {why}"))
                            .with_hint("write `metric_name` or `metric_name{label=\"value\"}`"),
                    );
                }
            } else if !kind.provides(metric) {
                let all = kind.all();
                self.push(
                    Diagnostic::error(
                        m.span,
                        format!("`{name}` does not provide the metric `{metric}`"),
                    )
                    .with_suggestion(metric, all.iter().copied())
                    .with_hint(metric_hint(kind)),
                );
                continue;
            }
            if !metrics.contains(metric) {
                metrics.push(metric.clone());
            }
        }
        match (kind.unsupported_on(std::env::consts::OS), listed) {
            (None, None) => metrics = kind.defaults().into_iter().map(str::to_owned).collect(),
            (None, Some(_)) => {}
            // A `server` that lists nothing is simply not monitored here.
            (Some(_), None) => metrics.clear(),
            (Some(why), Some(_)) => {
                self.push(
                    Diagnostic::error(
                        raw.map(|r| r.span),
                        format!("`{name}` cannot be monitored on this platform: {why}"),
                    )
                    .with_hint("run on Linux, or scrape the server's own metrics with a `prometheus` source"),
                );
                metrics.clear();
            }
        }
        let url = src
            .and_then(|s| s.url.as_ref())
            .and_then(|u| u.get().cloned());
        if kind == SourceKind::Prometheus {
            let span = raw.map(|r| r.span);
            if url.is_none() {
                self.push(
                    Diagnostic::error(span, "a prometheus source needs `url`")
                        .with_hint("e.g. url: \"http://127.0.0.1:${PORT}/metrics\""),
                );
            }
            if metrics.is_empty() {
                self.push(
                    Diagnostic::error(
                        span,
                        "a prometheus source needs `metrics`: the series to scrape",
                    )
                    .with_hint("e.g. metrics: [\"http_requests_total{code=\\\"200\\\"}\"]"),
                );
            }
        }
        if kind != SourceKind::Prometheus {
            if let Some(label) = src.and_then(|s| s.label.as_ref()) {
                self.push(Diagnostic::error(
                    label.span,
                    "`label` only applies to prometheus sources",
                ));
            }
            if let Some(u) = src.and_then(|s| s.url.as_ref()) {
                self.push(Diagnostic::error(
                    u.span,
                    "`url` only applies to prometheus sources",
                ));
            }
        }
        MonitorSource {
            name,
            kind,
            interval: dur(src.and_then(|s| s.interval.as_ref())).unwrap_or(Duration::from_secs(1)),
            logging: src.and_then(|s| s.logging).unwrap_or(false),
            metrics,
            url,
        }
    }

    fn reporters<'r>(
        &mut self,
        raw: &'r RawSuite,
        pending: &mut Vec<PendingCriteria<'r>>,
    ) -> Vec<Reporter> {
        let allowed = [
            ("passfail", ModuleKind::Passfail),
            ("junit-xml", ModuleKind::Ignored),
            ("final-stats", ModuleKind::Ignored),
            ("html", ModuleKind::Ignored),
            ("console", ModuleKind::Ignored),
            ("blazemeter", ModuleKind::Ignored),
        ];
        let mut out = Vec::new();
        for item in raw.reporting.iter().flatten() {
            let Some(r) = item.get() else { continue };
            let Some(kind) = self.module_kind(&r.module, &allowed) else {
                continue;
            };
            let name = r.module.get().map(String::as_str).unwrap_or_default();
            let reporter = match (kind, name) {
                (ModuleKind::Passfail, _) => {
                    if let Some(criteria) = &r.criteria {
                        pending.push(PendingCriteria {
                            criteria,
                            scope: Scope::Suite,
                        });
                    }
                    Reporter::Passfail
                }
                (_, "junit-xml") => Reporter::JunitXml {
                    filename: self.report_path(r.filename.as_ref()),
                    // Taurus's default: a testcase per sample label.
                    data_source: r
                        .data_source
                        .as_ref()
                        .and_then(|d| d.get().copied())
                        .unwrap_or(JunitDataSource::SampleLabels),
                },
                (_, "final-stats") => Reporter::FinalStats {
                    dump_csv: self.report_path(r.dump_csv.as_ref()),
                    dump_xml: self.report_path(r.dump_xml.as_ref()),
                    summary: r.summary.unwrap_or(true),
                    percentiles: r.percentiles.unwrap_or(true),
                    summary_labels: r.summary_labels.unwrap_or(false),
                    failed_labels: r.failed_labels.unwrap_or(false),
                    test_duration: r.test_duration.unwrap_or(true),
                },
                (_, "html") => Reporter::Html {
                    filename: r.filename.as_ref().and_then(|f| f.get().cloned()),
                },
                (_, "console") => Reporter::Console,
                _ => {
                    self.push(Diagnostic::warning(
                        r.module.span,
                        format!(
                            "reporter `{name}` is ignored: perfgate writes its reports locally"
                        ),
                    ));
                    continue;
                }
            };
            out.push(reporter);
        }
        out
    }

    /// The span of a part of a string node: exact when the string is on one line as written.
    fn span_in(&self, node: Span, text: &str, range: std::ops::Range<usize>) -> Span {
        let line = self
            .cx
            .sources
            .line(node.file, node.line)
            .unwrap_or_default();
        let start_col = usize::try_from(node.col).unwrap_or(1).saturating_sub(1);
        let written: String = line.chars().skip(start_col).collect();
        let quote = usize::from(written.starts_with(['"', '\'']));
        let prefix = text.get(..range.start).unwrap_or_default();
        if written.get(quote..).is_some_and(|w| w.starts_with(prefix)) {
            let width = text
                .get(range.clone())
                .map_or(1, |s| s.chars().count().max(1));
            return Span {
                col: node.col + u32::try_from(quote + prefix.chars().count()).unwrap_or(0),
                len: u32::try_from(width).unwrap_or(1),
                ..node
            };
        }
        node
    }

    fn criterion(
        &mut self,
        item: &Located<RawCriterion>,
        scope: Scope,
        monitoring: &[MonitorSource],
    ) -> Option<Criterion> {
        let c = item.get()?;
        match c {
            RawCriterion::Short { text, message } => {
                self.short_criterion(item.span, text, message.clone(), scope, monitoring)
            }
            RawCriterion::Long(long) => self.long_criterion(item.span, long, scope, monitoring),
        }
    }

    fn short_criterion(
        &mut self,
        span: Span,
        text: &str,
        message: Option<String>,
        scope: Scope,
        monitoring: &[MonitorSource],
    ) -> Option<Criterion> {
        if text.contains("${") {
            return None; // reported as an undefined variable
        }
        let parsed = match parse_short(text) {
            Ok(p) => p,
            Err(e) => {
                let mut d = Diagnostic::error(
                    self.span_in(span, text, e.range.clone()),
                    format!("invalid criterion: {}", e.message),
                )
                .with_hint(e.hint);
                if let Some(s) = e.suggestion {
                    d = d.with_label(format!("did you mean `{s}`?"));
                }
                self.push(d);
                return None;
            }
        };
        let at = |v: &Self, p: &grammar::Part| v.span_in(span, text, p.range.clone());
        let subject = self.subject(at(self, &parsed.subject), &parsed.subject.text)?;
        let threshold = match parse_threshold(&subject, &parsed.threshold.text) {
            Ok(t) => t,
            Err(why) => {
                self.push(Diagnostic::error(
                    at(self, &parsed.threshold),
                    format!("invalid threshold: {why}"),
                ));
                return None;
            }
        };
        let op = Op::parse(&parsed.op.text).ok()?;
        let window = match (&parsed.logic, &parsed.timeframe) {
            (Some(logic), Some(tf)) => match parse_duration(&tf.text) {
                Ok(timeframe) if !timeframe.is_zero() => Some(Window {
                    logic: Logic::parse(&logic.text)?,
                    timeframe,
                }),
                _ => {
                    self.push(
                        Diagnostic::error(at(self, tf), format!("invalid timeframe `{}`", tf.text))
                            .with_hint("write a duration of at least 1s, e.g. `for 10s`"),
                    );
                    return None;
                }
            },
            _ => None,
        };
        let label = parsed
            .label
            .as_ref()
            .map(|l| self.cx.stable_label(&l.text))
            .unwrap_or_default();
        if let Some(l) = &parsed.label {
            self.check_label(at(self, l), &subject, &label);
        }
        self.check_monitoring(at(self, &parsed.subject), &subject, monitoring);
        let stop = parsed.action.as_ref().is_none_or(|a| a.text == "stop");
        let fail = parsed.outcome.as_ref().is_none_or(|o| o.text == "failed");
        Some(Criterion {
            name: criterion_name(
                &subject,
                &label,
                op,
                &parsed.threshold.text,
                window.as_ref().map(|w| {
                    (
                        w.logic,
                        parsed.timeframe.as_ref().map_or("", |t| t.text.as_str()),
                    )
                }),
            ),
            message: message.or_else(|| parsed.message.map(|m| m.text)),
            check: Check::Threshold {
                subject,
                label,
                op,
                threshold,
            },
            window,
            stop,
            fail,
            scope,
        })
    }

    fn subject(&mut self, span: Span, text: &str) -> Option<Subject> {
        match parse_subject(text) {
            Ok(s) => Some(s),
            Err(why) => {
                self.push(
                    Diagnostic::error(span, why)
                        .with_suggestion(text, subject_names())
                        .with_hint("subjects: avg-rt, avg-lt, avg-ct, stdev-rt, hits, succ, fail, bytes, concurrency, throughput, dropped, p<level> (p99.9), rc<code> (rc5??), or source/metric"),
                );
                None
            }
        }
    }

    fn check_label(&mut self, span: Span, subject: &Subject, label: &str) {
        if subject.is_monitoring() || label.is_empty() || self.opaque_scenarios || self.incomplete {
            return;
        }
        if !self.labels.iter().any(|l| l == label) {
            let shown: Vec<&str> = self.labels.iter().take(12).map(String::as_str).collect();
            self.push(
                Diagnostic::error(span, format!("unknown label `{label}`"))
                    .with_suggestion(label, self.labels.iter().map(String::as_str))
                    .with_hint(if shown.is_empty() {
                        "this suite has no requests".to_owned()
                    } else {
                        format!("labels in this suite: {} (a request's label defaults to its URL as written)", shown.join(", "))
                    }),
            );
        }
    }

    fn check_monitoring(&mut self, span: Span, subject: &Subject, monitoring: &[MonitorSource]) {
        let Subject::Monitoring { source, metric } = subject else {
            return;
        };
        if self.unsupported_sources.contains(source) {
            return;
        }
        let Some(found) = monitoring.iter().find(|m| &m.name == source) else {
            let names: Vec<&str> = monitoring.iter().map(|m| m.name.as_str()).collect();
            self.push(
                Diagnostic::error(span, format!("unknown monitoring source `{source}`"))
                    .with_suggestion(source, names.iter().copied())
                    .with_hint(if names.is_empty() {
                        "declare a source under `services:` (a `server`, or `monitoring` with local, ServerLocalClient or prometheus)".to_owned()
                    } else {
                        format!("sources in this suite: {}", names.join(", "))
                    }),
            );
            return;
        };
        if found.kind != SourceKind::Prometheus && !found.kind.provides(metric) {
            let all = found.kind.all();
            self.push(
                Diagnostic::error(
                    span,
                    format!("`{source}` does not provide the metric `{metric}`"),
                )
                .with_suggestion(metric, all.iter().copied())
                .with_hint(metric_hint(found.kind)),
            );
        } else if !found.metrics.iter().any(|m| m == metric) {
            self.push(
                Diagnostic::error(span, format!("`{source}` does not collect `{metric}`"))
                    .with_suggestion(metric, found.metrics.iter().map(String::as_str))
                    .with_hint(format!("add `{metric}` to the `metrics:` of `{source}`")),
            );
        }
    }

    /// A report file's path: relative to the suite's artifacts directory and inside it.
    fn report_path(&mut self, path: Option<&Located<String>>) -> Option<String> {
        let path = path?;
        let text = path.get()?;
        let escapes = std::path::Path::new(text).components().any(|c| {
            !matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        });
        if escapes || text.trim().is_empty() {
            self.push(
                Diagnostic::error(
                    path.span,
                    format!("report path `{text}` leaves the suite's artifacts directory"),
                )
                .with_hint("report files are written under <artifacts>/<suite>/: give a relative path without `..`, e.g. `final_stats.csv`"),
            );
            return None;
        }
        Some(text.clone())
    }

    fn long_criterion(
        &mut self,
        span: Span,
        c: &RawCriterionLong,
        scope: Scope,
        monitoring: &[MonitorSource],
    ) -> Option<Criterion> {
        if let Some(d) = &c.diff_percent {
            self.push(Diagnostic::warning(
                d.span,
                "`diff_percent` (MMS baseline comparison) is ignored: criteria compare against `threshold`",
            ));
        }
        let stop = c.stop.unwrap_or(true);
        let fail = c.fail.unwrap_or(true);
        let window = self.long_window(c)?;
        if let Some(expr) = &c.expr {
            let text = self.expr(expr, monitoring)?;
            return Some(Criterion {
                name: format!("expr: {text}"),
                message: c.message.clone(),
                check: Check::Expr { expr: text },
                window,
                stop,
                fail,
                scope,
            });
        }
        let class = c
            .class
            .as_ref()
            .and_then(|cl| cl.get().map(|t| (cl.span, t.as_str())));
        if let Some((cspan, class)) = class
            && class != MONITORING_CRITERIA_CLASS
            && class != DATA_CRITERIA_CLASS
        {
            self.push(
                    Diagnostic::error(cspan, format!("unknown criterion class `{class}`"))
                        .with_suggestion(class, [MONITORING_CRITERIA_CLASS, DATA_CRITERIA_CLASS])
                        .with_hint(format!("use `{MONITORING_CRITERIA_CLASS}` for `source/metric` subjects, or leave `class` out")),
                );
            return None;
        }
        let missing = |v: &mut Self, key: &str, example: &str| {
            v.push(
                Diagnostic::error(span, format!("a criterion map needs `{key}`"))
                    .with_hint(format!("e.g. {key}: {example}")),
            );
        };
        let Some(subject_loc) = &c.subject else {
            missing(self, "subject", "avg-rt");
            return None;
        };
        let (Some(condition), Some(threshold_loc)) = (&c.condition, &c.threshold) else {
            if c.condition.is_none() {
                missing(self, "condition", "'>'");
            }
            if c.threshold.is_none() {
                missing(self, "threshold", "150ms");
            }
            return None;
        };
        let subject_text = subject_loc.get()?;
        if subject_text.contains("${") {
            return None;
        }
        let subject = self.subject(subject_loc.span, subject_text)?;
        if class.is_some_and(|(_, cl)| cl == MONITORING_CRITERIA_CLASS) && !subject.is_monitoring()
        {
            self.push(
                Diagnostic::error(
                    subject_loc.span,
                    format!("monitoring criteria name `source/metric`, not `{subject_text}`"),
                )
                .with_hint("e.g. subject: ServerLocalClient/total_workers"),
            );
            return None;
        }
        let op_text = condition.get()?;
        let op = match Op::parse(op_text.trim()) {
            Ok(op) => op,
            Err((why, suggestion)) => {
                let mut d = Diagnostic::error(condition.span, why)
                    .with_hint(format!("operators are {}", grammar::OPERATORS));
                if let Some(s) = suggestion {
                    d = d.with_label(format!("did you mean `{s}`?"));
                }
                self.push(d);
                return None;
            }
        };
        let threshold_text = threshold_loc.get()?;
        if threshold_text.contains("${") {
            return None;
        }
        let threshold: Threshold = match parse_threshold(&subject, threshold_text) {
            Ok(t) => t,
            Err(why) => {
                self.push(Diagnostic::error(
                    threshold_loc.span,
                    format!("invalid threshold: {why}"),
                ));
                return None;
            }
        };
        let label = c
            .label
            .as_ref()
            .and_then(|l| l.get().map(|l| self.cx.stable_label(l)))
            .unwrap_or_default();
        if let Some(l) = &c.label {
            self.check_label(l.span, &subject, &label);
        }
        self.check_monitoring(subject_loc.span, &subject, monitoring);
        let tf_text = c
            .timeframe
            .as_ref()
            .and_then(|t| t.get().cloned())
            .unwrap_or_default();
        Some(Criterion {
            name: criterion_name(
                &subject,
                &label,
                op,
                threshold_text,
                window.as_ref().map(|w| (w.logic, tf_text.as_str())),
            ),
            message: c.message.clone(),
            check: Check::Threshold {
                subject,
                label,
                op,
                threshold,
            },
            window,
            stop,
            fail,
            scope,
        })
    }

    /// `logic` + `timeframe` of the long form. `None` on error; `Some(None)` for no window.
    #[expect(clippy::option_option, reason = "error vs. no window")]
    fn long_window(&mut self, c: &RawCriterionLong) -> Option<Option<Window>> {
        let logic = match &c.logic {
            Some(l) => {
                let text = l.get()?;
                let Some(logic) = Logic::parse(text) else {
                    self.push(
                        Diagnostic::error(l.span, format!("unknown logic `{text}`"))
                            .with_suggestion(text, ["for", "within", "over"])
                            .with_hint("logic is `for`, `within` or `over`"),
                    );
                    return None;
                };
                Some(logic)
            }
            None => None,
        };
        let Some(tf) = &c.timeframe else {
            if let (Some(_), Some(l)) = (logic, &c.logic) {
                self.push(
                    Diagnostic::error(l.span, "`logic` needs a `timeframe`")
                        .with_hint("e.g. timeframe: 10s"),
                );
                return None;
            }
            return Some(None);
        };
        let text = tf.get()?;
        if text.contains("${") {
            return None;
        }
        if text.trim().parse::<f64>().is_ok_and(|n| n <= 0.0) {
            return Some(None); // Taurus: -1 means "no timeframe"
        }
        match parse_duration(text) {
            Ok(timeframe) if !timeframe.is_zero() => Some(Some(Window {
                logic: logic.unwrap_or(Logic::For),
                timeframe,
            })),
            _ => {
                self.push(
                    Diagnostic::error(tf.span, format!("invalid timeframe `{text}`"))
                        .with_hint("write a duration such as 10s or 1m"),
                );
                None
            }
        }
    }

    fn expr(&mut self, loc: &Located<String>, monitoring: &[MonitorSource]) -> Option<String> {
        let text = loc.get()?;
        let tree = match evalexpr::build_operator_tree(text) {
            Ok(tree) => tree,
            Err(e) => {
                self.push(
                    Diagnostic::error(loc.span, format!("invalid expression: {e}"))
                        .with_hint("e.g. expr: 'p(99, \"infer\") > 3 * p(50, \"infer\")'"),
                );
                return None;
            }
        };
        let mut ok = true;
        for function in tree.iter_function_identifiers() {
            if !KPI_FUNCTIONS.contains(&function) && !EVALEXPR_BUILTINS.contains(&function) {
                ok = false;
                self.push(
                    Diagnostic::error(
                        loc.span,
                        format!("unknown function `{function}` in expression"),
                    )
                    .with_suggestion(function, KPI_FUNCTIONS.iter().copied())
                    .with_hint(format!(
                        "KPI functions: {} (times in milliseconds)",
                        KPI_FUNCTIONS.join(", ")
                    )),
                );
            }
        }
        for variable in tree.iter_variable_identifiers() {
            ok = false;
            self.push(
                Diagnostic::error(loc.span, format!("unknown name `{variable}` in expression"))
                    .with_hint(
                        "labels are strings: p(99, \"infer\"); functions need parentheses: hits()",
                    ),
            );
        }
        // Check the labels and subjects named in calls such as p(99, "infer") or metric("a/b").
        static CALLS: LazyLock<regex::Regex> = LazyLock::new(|| {
            regex::Regex::new(r#"(\w+)\s*\(\s*(?:[\d.]+\s*,\s*)?"([^"]*)""#).expect("a valid regex")
        });
        for cap in CALLS.captures_iter(text) {
            let (function, arg) = (&cap[1], &cap[2]);
            match function {
                "metric" => match parse_subject(arg) {
                    Ok(subject @ Subject::Monitoring { .. }) => {
                        self.check_monitoring(loc.span, &subject, monitoring)
                    }
                    _ => {
                        ok = false;
                        self.push(Diagnostic::error(
                            loc.span,
                            format!("`metric(\"{arg}\")` needs `source/metric`"),
                        ));
                    }
                },
                "rc" => {}
                _ if KPI_FUNCTIONS.contains(&function) => {
                    self.check_label(
                        loc.span,
                        &Subject::Kpi {
                            kpi: grammar::Kpi::Hits,
                        },
                        arg,
                    );
                }
                _ => {}
            }
        }
        ok.then(|| text.clone())
    }

    fn check_urls(&mut self) {
        // A scenario may use relative URLs when every scenario that includes it has an address.
        let mut with_address = self.scenarios_with_address.clone();
        loop {
            let before = with_address.len();
            for (from, to, _) in &self.includes {
                if with_address.contains(from) {
                    with_address.insert(to.clone());
                }
            }
            if with_address.len() == before {
                break;
            }
        }
        let missing: Vec<_> = self
            .relative_urls
            .iter()
            .filter(|(scenario, _, _)| !with_address.contains(scenario))
            .cloned()
            .collect();
        for (scenario, url, span) in missing {
            self.push(
                Diagnostic::error(span, format!("relative URL `{url}` but scenario `{scenario}` has no `default-address`"))
                    .with_hint("add `default-address: http://127.0.0.1:${PORT}` to the scenario, or write an absolute URL"),
            );
        }
    }

    fn check_include_cycles(&mut self, scenarios: &[Scenario]) {
        let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
        let all: Vec<String> = self
            .cx
            .effective
            .get("scenarios")
            .and_then(Node::as_map)
            .map(|m| m.iter().map(|e| e.key.clone()).collect())
            .unwrap_or_default();
        let includes = self.includes.clone();
        for (from, to, span) in &includes {
            if !all.contains(to) {
                self.push(
                    Diagnostic::error(*span, format!("unknown scenario `{to}`"))
                        .with_suggestion(to, all.iter().map(String::as_str))
                        .with_hint(format!("scenarios in this suite: {}", all.join(", "))),
                );
                continue;
            }
            // Follow includes from `to`; reaching `from` closes a cycle.
            let mut path = vec![from.clone(), to.clone()];
            let mut frontier = vec![to.clone()];
            let mut seen = BTreeSet::new();
            while let Some(next) = frontier.pop() {
                if !seen.insert(next.clone()) {
                    continue;
                }
                for (a, b, _) in includes.iter().filter(|(a, _, _)| *a == next) {
                    if b == from {
                        path.push(from.clone());
                        self.push(
                            Diagnostic::error(
                                *span,
                                format!("include cycle: {}", path.join(" → ")),
                            )
                            .with_hint(
                                "a scenario cannot include itself, directly or through others",
                            ),
                        );
                        frontier.clear();
                        break;
                    }
                    let _ = a;
                    frontier.push(b.clone());
                }
            }
        }
        let _ = names;
    }

    fn check_variables(&mut self) {
        let Some(entries) = self.cx.effective.as_map() else {
            return;
        };
        let mut found = Vec::new();
        // Which of `found` are in `services` (shell commands, server command lines).
        let mut in_services = std::ops::Range::default();
        for entry in entries {
            let in_requests = entry.key == "scenarios";
            if entry.key == "services" {
                let start = found.len();
                collect_refs(&entry.value, false, &mut found);
                in_services = start..found.len();
                continue;
            }
            if entry.key == "settings" {
                for s in entry
                    .value
                    .as_map()
                    .into_iter()
                    .flatten()
                    .filter(|s| s.key != "env")
                {
                    collect_refs(&s.value, false, &mut found);
                }
                continue;
            }
            collect_refs(&entry.value, in_requests, &mut found);
        }
        for (index, (span, text, reference, in_requests)) in found.into_iter().enumerate() {
            let name = reference.name.as_str();
            let at = self.span_in(span, &text, reference.range.clone());
            if name.starts_with("__") {
                self.push(
                    Diagnostic::error(
                        at,
                        format!("JMeter functions such as `${{{name}}}` are not supported"),
                    )
                    .with_hint("declare the value under `settings.env` or as a scenario variable"),
                );
                continue;
            }
            if in_requests && (self.runtime_vars.contains(name) || self.unknown_columns) {
                continue;
            }
            if self.cx.known_variables.contains(name) {
                continue;
            }
            let candidates: Vec<&str> = self
                .cx
                .known_variables
                .iter()
                .chain(
                    if in_requests {
                        Some(&self.runtime_vars)
                    } else {
                        None
                    }
                    .into_iter()
                    .flatten(),
                )
                .map(String::as_str)
                .collect();
            let defined_in: Vec<&str> = self
                .cx
                .environments
                .iter()
                .filter(|(_, names)| names.contains(name))
                .map(|(env, _)| env.as_str())
                .collect();
            let hint = if let Some(env) = defined_in.first() {
                format!("`{name}` is defined in environments/{env}.yaml: run with `-e {env}`")
            } else if in_services.contains(&index) {
                format!(
                    "perfgate fills in `${{NAME}}` before a command runs: for a shell variable write `${name}` (no braces), or `$${{{name}}}` to pass `${{{name}}}` to the shell; or declare `{name}` under `settings.env`"
                )
            } else if in_requests {
                format!(
                    "declare `{name}` under `settings.env`, as a scenario variable, a CSV column or an extractor"
                )
            } else {
                format!(
                    "declare `{name}` under `settings.env` (request-time variables only work in requests)"
                )
            };
            self.push(
                Diagnostic::error(at, format!("undefined variable `${{{name}}}`"))
                    .with_suggestion(name, candidates)
                    .with_hint(hint),
            );
        }
    }
}

fn collect_refs(
    node: &Node,
    in_requests: bool,
    out: &mut Vec<(Span, String, crate::suite::interpolate::Reference, bool)>,
) {
    match &node.kind {
        Kind::Str(text) => {
            for r in references(text) {
                out.push((node.span, text.clone(), r, in_requests));
            }
        }
        Kind::Seq(items) => items.iter().for_each(|i| collect_refs(i, in_requests, out)),
        Kind::Map(entries) => entries
            .iter()
            .for_each(|e| collect_refs(&e.value, in_requests, out)),
        _ => {}
    }
}

fn metric_hint(kind: SourceKind) -> String {
    match kind {
        SourceKind::Local => "`local` provides cpu, mem, disk-space, bytes-recv, bytes-sent, disk-read, disk-write, conn-all".into(),
        SourceKind::Server | SourceKind::ServerLocalClient => {
            "process metrics are frontend_<m>, {sum,avg,min,max}_{workers,all}_<m> for m in cpu_percent, memory_rss, file_descriptors, ...; and total_processes, total_workers, orphans, zombies, system_*".into()
        }
        SourceKind::Prometheus => "list the selectors under the source's `metrics:`".into(),
    }
}

fn think_time(t: &ThinkTimeValue) -> ThinkTime {
    match *t {
        ThinkTimeValue::Constant(time) => ThinkTime::Constant { time },
        ThinkTimeValue::Uniform { mean, dev } => ThinkTime::Uniform { mean, dev },
        ThinkTimeValue::Gaussian { mean, dev } => ThinkTime::Gaussian { mean, dev },
        ThinkTimeValue::Poisson { mean, offset } => ThinkTime::Poisson { mean, offset },
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The Taurus-style testcase name: `avg-rt of infer>150ms for 10s`.
/// The first line of a file (at most 64 KiB of it), without its line end.
fn first_line(path: &std::path::Path) -> Option<String> {
    use std::io::{BufRead, Read};
    let file = std::fs::File::open(path).ok()?;
    let mut line = String::new();
    std::io::BufReader::new(file.take(64 * 1024))
        .read_line(&mut line)
        .ok()?;
    Some(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn criterion_name(
    subject: &Subject,
    label: &str,
    op: Op,
    threshold: &str,
    window: Option<(Logic, &str)>,
) -> String {
    let subject_text = match subject {
        Subject::Percentile { level } => format!("p{level}"),
        other => other.to_string(),
    };
    let of = if label.is_empty() {
        String::new()
    } else {
        format!(" of {label}")
    };
    let window = window.map_or(String::new(), |(logic, tf)| {
        format!(" {} {tf}", logic.name())
    });
    format!(
        "{subject_text}{of}{}{}{window}",
        op.symbol(),
        threshold.trim()
    )
}
