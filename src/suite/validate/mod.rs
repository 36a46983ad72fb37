//! Raw suite → validated [`Suite`], reporting every problem at once.
//!
//! [`validate`] resolves defaults and checks every cross-reference: scenario names, criterion
//! labels against request labels, monitoring subjects against declared sources and the metrics
//! they provide, `${name}` references against what defines them, and referenced files. It reads
//! only the raw types and the effective tree (for `${name}` positions); it never touches the
//! filesystem beyond checking that referenced files exist and reading CSV headers.
//!
//! This file holds the [`Validator`] and its shared helpers; the checks of each config element
//! (`settings`, `execution`, `scenarios`, `services`, `reporting`, criteria, variables) live in
//! `elements/`, each with its own unit tests.

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

mod elements;

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
    /// The suite's artifacts directory: files there are made during the run (a `prepare`
    /// command's download), so they are looked for when the load starts, not now.
    pub artifacts_dir: PathBuf,
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
/// The LLM APIs a request may speak.
const LLM_APIS: &[&str] = &["openai-chat", "openai-completions"];
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
    /// MMS `diff_percent` comparisons found in criteria and `compare_criteria`.
    diff_checks: Vec<DiffCheck>,
    /// An execution sweeps or searches: `capacity.<figure>` criteria have figures to judge.
    capacity: bool,
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
        diff_checks: Vec::new(),
        capacity: false,
    };
    let mut settings = v.settings(raw.settings.as_ref());
    settings.sequential = v.modules(raw);
    let scenarios = v.scenarios(raw);
    let mut pending = Vec::new();
    let executions = v.executions(raw, &mut pending);
    v.capacity = executions
        .iter()
        .any(|e| e.sweep.is_some() || e.search.is_some());
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
    let criteria = with_max_dropped(criteria, &executions, settings.max_dropped);
    v.compare_criteria(raw, &monitoring);
    v.check_urls();
    v.check_include_cycles(&scenarios);
    v.check_variables();

    let has_errors = v.diags.iter().any(Diagnostic::is_error);
    diags.extend(drop_cascades(v.diags));
    if has_errors {
        return None;
    }
    let effective = cx.effective.to_json();
    // The load as it ran, with the run's ports written as the names they came from: what two
    // runs must share to be compared.
    let load_identity = cx.stable_label(
        &serde_json::json!({
            "execution": effective.get("execution"),
            "scenarios": effective.get("scenarios"),
        })
        .to_string(),
    );
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
        diff_checks: v.diff_checks,
        labels: v.labels,
        effective,
        load_identity,
    })
}

/// An open-model suite fails when more than `settings.max-dropped` of its arrivals were
/// dropped, by a criterion of its own, unless the suite judges `dropped` itself: a latency
/// gate passed while most arrivals were never sent must not look green.
fn with_max_dropped(
    mut criteria: Vec<Criterion>,
    executions: &[Execution],
    max_dropped: f64,
) -> Vec<Criterion> {
    // A capacity sweep or search overloads on purpose: its steps judge their own drops.
    let open = executions
        .iter()
        .any(|e| e.arrival.is_some() && e.sweep.is_none() && e.search.is_none());
    let judged = criteria.iter().any(|c| {
        matches!(
            &c.check,
            Check::Threshold {
                subject: Subject::Kpi {
                    kpi: grammar::Kpi::Dropped
                },
                ..
            }
        )
    });
    if open && !judged && max_dropped < 100.0 {
        let threshold = format!("{max_dropped}%");
        criteria.push(Criterion {
            name: format!("dropped>{threshold}"),
            message: Some(
                "settings.max-dropped: arrivals the open model could not send (the in-flight cap was reached)".to_owned(),
            ),
            check: Check::Threshold {
                subject: Subject::Kpi {
                    kpi: grammar::Kpi::Dropped,
                },
                label: String::new(),
                op: Op::Gt,
                threshold: Threshold::Percent(max_dropped),
            },
            window: None,
            stop: false,
            fail: true,
            scope: Scope::Suite,
            relative: None,
            baseline: None,
        });
    }
    criteria
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
        let artifacts = &self.cx.artifacts_dir;
        let made_during_run = !artifacts.as_os_str().is_empty()
            && (path.starts_with(artifacts) || Path::new(text).starts_with(artifacts));
        if !text.contains("${") && !path.exists() && !made_during_run {
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
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
