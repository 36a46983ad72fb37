//! Running suites.
//!
//! [`run_suites`] runs suites one after another; `suite` runs one: its servers and
//! commands, then its load, which `drive` wires (executions, monitors, watchdogs, checks,
//! ticks, signals) into one stream of events for the `dispatcher`, the single owner of the
//! load's state and of the decision to stop. Whatever ends the load — its own end, a
//! criterion, a server crash, SIGINT or SIGTERM — is a [`CancelReason`]; what was measured
//! is judged and every report written before the servers are stopped.

mod dispatcher;
mod drive;
pub mod limits;
mod progress;
mod search;
mod suite;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use tokio::signal::unix::{SignalKind, signal};

use crate::plan::SuitePlan;
use crate::report::model::{self, RunReport, RunStatus, SuiteReport, SuiteStatus};

/// Why a suite's load ended, most serious last (the largest wins).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CancelReason {
    /// Every execution finished.
    Completed,
    /// A `stop` criterion triggered (its name).
    CriterionStop(String),
    /// A shellexec `startup` or `check` command failed.
    ShellFailed(String),
    /// An execution could not start (its data file could not be read, ...): the suite is an
    /// error, never an empty "completed".
    EngineFailed(String),
    /// A server under test exited or stopped answering during the load.
    ServerFailed {
        label: String,
        /// "exited during the load with …", "stopped answering during the load (…)".
        what: String,
        log_tail: String,
    },
    Interrupted,
    Terminated,
}

/// Fault injection for the tests: with `PERFGATE_TEST_PANIC=1`, the dispatcher panics at the
/// first second of the load, to prove that a bug in perfgate leaves no server behind.
pub(crate) static PANIC_ON_PURPOSE: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::env::var_os("PERFGATE_TEST_PANIC").is_some_and(|v| v == "1"));

/// How to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub artifacts_dir: PathBuf,
    /// Run-level report paths given on the command line.
    pub destinations: crate::report::Destinations,
    /// A progress line every 10 s (and a live line on a terminal).
    pub progress: bool,
    /// Stop after the first suite that does not complete.
    pub fail_fast: bool,
    pub seed: u64,
    /// `-e/--env NAME`: part of each suite's identity for comparisons.
    pub environment: Option<String>,
    /// Where relative criteria find their baselines.
    pub baselines: Baselines,
}

impl Default for Baselines {
    fn default() -> Self {
        Self {
            path: None,
            rev: None,
            history: None,
            threshold: crate::compare::Thresholds::uniform(10.0),
        }
    }
}

/// Where relative criteria (`p95>baseline+10%`) find their baselines: `--baseline`, else a
/// suite's `settings.baseline`, else `--history`.
#[derive(Clone, Debug)]
pub struct Baselines {
    /// `--baseline`: a results.json or a history directory.
    pub path: Option<PathBuf>,
    /// `--baseline-rev`.
    pub rev: Option<String>,
    /// `--history`.
    pub history: Option<PathBuf>,
    /// `--baseline-threshold` and `--baseline-kpi-threshold`: how much worse each KPI may
    /// get against the baseline.
    pub threshold: crate::compare::Thresholds,
}

/// Runs every suite; returns the report (already written to `results.json`). Progress and
/// notices go to `console`, each suite's table to `tables` (with the run's criteria table
/// and verdict, which the caller prints).
pub async fn run_suites(
    plans: Vec<SuitePlan>,
    opts: &RunOptions,
    console: &mut (dyn Write + Send),
    tables: &mut (dyn Write + Send),
) -> std::io::Result<RunReport> {
    // TLS through rustls with the ring provider (no C toolchain needed); once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let started = Instant::now();
    let mut report = RunReport {
        format_version: model::FORMAT_VERSION,
        tool: format!("perfgate {}", env!("CARGO_PKG_VERSION")),
        started_at: now_rfc3339(),
        duration_s: 0.0,
        status: RunStatus::Completed,
        meta: run_meta(),
        suites: Vec::new(),
    };
    let mut signals = Signals::new()?;
    for plan in plans {
        let reports = Reports {
            run: &report,
            started,
            opts,
        };
        let (suite, reason) = suite::run_suite(plan, opts, &mut signals, console, &reports).await?;
        write!(tables, "{}", crate::report::console::suite_table(&suite))?;
        let failed = suite.status != SuiteStatus::Completed;
        report.suites.push(suite);
        report.duration_s = started.elapsed().as_secs_f64();
        report.status = run_status(&reason);
        // Written after every suite: a crash later still leaves what was measured.
        crate::report::write_all(&report, &opts.artifacts_dir, &opts.destinations)?;
        if report.status != RunStatus::Completed || (failed && opts.fail_fast) {
            break;
        }
    }
    report.duration_s = started.elapsed().as_secs_f64();
    crate::report::write_all(&report, &opts.artifacts_dir, &opts.destinations)?;
    Ok(report)
}

/// Where this run runs: the working directory's git commit (when it is a checkout) and the
/// host.
pub fn run_meta() -> model::RunMeta {
    let git = |args: &[&str]| -> Option<String> {
        let out = std::process::Command::new("git")
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let git_commit = git(&["rev-parse", "HEAD"]).filter(|c| !c.is_empty());
    let git_dirty = git_commit.is_some()
        && git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    model::RunMeta {
        git_commit,
        git_dirty,
        host: nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default(),
    }
}

/// The run's status after a suite that ended for `reason`.
fn run_status(reason: &CancelReason) -> RunStatus {
    match reason {
        CancelReason::Interrupted => RunStatus::Interrupted,
        CancelReason::Terminated => RunStatus::Terminated,
        _ => RunStatus::Completed,
    }
}

/// Writes the reports of the run so far with the suite that is running: all of them once
/// its load is judged, `results.json` alone (marked incomplete) as a checkpoint.
pub(crate) struct Reports<'a> {
    /// The suites before this one.
    run: &'a RunReport,
    started: Instant,
    opts: &'a RunOptions,
}

impl Reports<'_> {
    fn with(&self, suite: SuiteReport, status: RunStatus) -> RunReport {
        let mut run = self.run.clone();
        run.suites.push(suite);
        run.status = status;
        run.duration_s = self.started.elapsed().as_secs_f64();
        run
    }

    /// Every report, with `suite` as it was judged after ending for `reason`.
    fn write(&self, suite: SuiteReport, reason: &CancelReason) -> std::io::Result<()> {
        let run = self.with(suite, run_status(reason));
        crate::report::write_all(&run, &self.opts.artifacts_dir, &self.opts.destinations)
    }

    /// What a checkpoint written away from the run needs.
    fn detached(&self) -> Checkpoints {
        let path = self
            .opts
            .destinations
            .json
            .clone()
            .unwrap_or_else(|| self.opts.artifacts_dir.join("results.json"));
        Checkpoints {
            run: self.run.clone(),
            started: self.started,
            path,
        }
    }
}

/// Writes checkpoints of `results.json`: the suites before this one and this one so far.
pub(crate) struct Checkpoints {
    run: RunReport,
    started: Instant,
    path: PathBuf,
}

impl Checkpoints {
    /// `results.json` with `suite` as measured so far, the run marked incomplete.
    fn checkpoint(mut self, suite: SuiteReport) -> std::io::Result<()> {
        self.run.suites.push(suite);
        self.run.status = RunStatus::Incomplete;
        self.run.duration_s = self.started.elapsed().as_secs_f64();
        crate::report::files::results_json(&self.path, &self.run)
    }
}

/// `settings.env` followed by a process's own `env` (later entries win when spawned).
pub(crate) fn with_settings_env(
    settings: &[(String, String)],
    own: &[(String, String)],
) -> Vec<(String, String)> {
    settings.iter().chain(own).cloned().collect()
}

/// The signals that end a run: SIGINT (Ctrl-C) interrupts; SIGTERM, and SIGHUP from a closed
/// terminal, terminate. Either way the servers are stopped and what was measured is written.
#[derive(Debug)]
pub struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) -> CancelReason {
        tokio::select! {
            _ = self.interrupt.recv() => CancelReason::Interrupted,
            _ = self.terminate.recv() => CancelReason::Terminated,
            _ = self.hangup.recv() => CancelReason::Terminated,
        }
    }
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// The run's artifacts directory: `reports/<UTC timestamp>/` unless given.
pub fn default_artifacts_dir() -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(':', "-");
    Path::new("reports").join(stamp.trim_end_matches('Z'))
}

/// Creates the run's default artifacts directory, `reports/<UTC timestamp>/`, or with `-2`,
/// `-3`, ... when another run started in the same second already has it.
pub fn claim_default_artifacts_dir() -> std::io::Result<PathBuf> {
    let base = default_artifacts_dir();
    if let Some(parent) = base.parent() {
        std::fs::create_dir_all(parent)?;
    }
    for n in 1..1000 {
        let dir = if n == 1 {
            base.clone()
        } else {
            PathBuf::from(format!("{}-{n}", base.display()))
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "every name `{}-N` is taken",
        base.display()
    )))
}

/// What the suite's `reporting` modules ask of the report files.
pub(crate) fn outputs(suite: &crate::suite::model::Suite) -> model::SuiteOutputs {
    use crate::suite::model::{JunitDataSource, Reporter};
    let mut out = model::SuiteOutputs::default();
    for r in &suite.reporters {
        match r {
            Reporter::JunitXml {
                filename,
                data_source,
            } => {
                // Unnamed files are xunit.xml, xunit-1.xml, ... as Taurus names them.
                let filename = filename.clone().unwrap_or_else(|| {
                    let taken = |name: &str| out.junit.iter().any(|j| j.filename == name);
                    (0..)
                        .map(|n| match n {
                            0 => "xunit.xml".to_owned(),
                            n => format!("xunit-{n}.xml"),
                        })
                        .find(|name| !taken(name))
                        .unwrap_or_default()
                });
                out.junit.push(model::JunitOutput {
                    filename,
                    sample_labels: matches!(data_source, JunitDataSource::SampleLabels),
                });
            }
            Reporter::FinalStats {
                dump_csv, dump_xml, ..
            } => {
                out.dump_csv.clone_from(dump_csv);
                out.dump_xml.clone_from(dump_xml);
            }
            _ => {}
        }
    }
    out
}
