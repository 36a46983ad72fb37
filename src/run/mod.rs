//! Running suites: the dispatcher that owns the decision to stop.
//!
//! [`run_suites`] runs suites one after another. For each, it starts the servers, spawns one
//! load task per execution, and loops in one `select!` over engine events, a one-second tick
//! (progress, closing seconds), server exits and signals. Whatever ends the load — its own end,
//! a server crash, SIGINT or SIGTERM — is a [`CancelReason`]; measurements so far are kept,
//! servers are stopped, and the suite's files are written before the next suite starts.

pub mod limits;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use crate::criteria::eval::Judge;
use crate::load::{InFlight, LoadEvent, run_execution};
use crate::metrics::Store;
use crate::monitor;
use crate::plan::SuitePlan;
use crate::report::files;
use crate::report::model::{
    self, ExecutionReport, RunReport, RunStatus, SuiteError, SuiteReport, SuiteStatus,
};
use crate::report::redact::Redactor;
use crate::server::shellexec::{Shell, Stage};
use crate::server::{ManagedServer, ServerError};
use crate::suite::interpolate::unescape;
use crate::suite::model::Launch;
use crate::suite::model::{Service, ShellExec};

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
static PANIC_ON_PURPOSE: std::sync::LazyLock<bool> =
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
        suites: Vec::new(),
    };
    let mut signals = Signals::new()?;
    for plan in plans {
        let (suite, reason) = run_suite(plan, opts, &mut signals, console).await?;
        write!(tables, "{}", crate::report::console::suite_table(&suite))?;
        let failed = suite.status != SuiteStatus::Completed;
        report.suites.push(suite);
        report.duration_s = started.elapsed().as_secs_f64();
        match reason {
            CancelReason::Interrupted => report.status = RunStatus::Interrupted,
            CancelReason::Terminated => report.status = RunStatus::Terminated,
            _ => {}
        }
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

/// `settings.env` followed by a process's own `env` (later entries win when spawned).
fn with_settings_env(
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

async fn run_suite(
    plan: SuitePlan,
    opts: &RunOptions,
    signals: &mut Signals,
    console: &mut (dyn Write + Send),
) -> std::io::Result<(SuiteReport, CancelReason)> {
    let suite = &plan.suite;
    let dir = files::suite_dir(&opts.artifacts_dir, &suite.name);
    std::fs::create_dir_all(&dir)?;
    // Secrets never reach a report: headers such as Authorization, and settings.secrets.
    let redactor = Redactor::for_suite(suite);
    let mut effective = suite.effective.clone();
    redactor.config(&mut effective);
    let effective_yaml = files::effective_yml(&dir.join("effective.yml"), &effective)?;
    let started_at = now_rfc3339();
    let started = Instant::now();
    let mut report = SuiteReport {
        name: suite.name.clone(),
        path: suite.path.display().to_string(),
        status: SuiteStatus::Completed,
        error: None,
        seed: plan.seed,
        started_at,
        duration_s: 0.0,
        executions: suite
            .executions
            .iter()
            .map(|e| ExecutionReport {
                scenario: e.scenario.clone(),
                shape: e.shape(),
            })
            .collect(),
        labels: Vec::new(),
        timeline: Vec::new(),
        monitoring: Vec::new(),
        criteria: Vec::new(),
        stopped_by: None,
        outputs: outputs(suite),
        effective_yaml,
        load_started_at: None,
    };
    // Every shellexec module's commands, stage by stage in declared order.
    let mut shell_config = ShellExec::default();
    for service in &suite.services {
        if let Service::Shellexec(s) = service {
            shell_config.prepare.extend(s.prepare.iter().cloned());
            shell_config.startup.extend(s.startup.iter().cloned());
            shell_config.check.extend(s.check.iter().cloned());
            shell_config.shutdown.extend(s.shutdown.iter().cloned());
            shell_config
                .post_process
                .extend(s.post_process.iter().cloned());
        }
    }
    // `settings.env` is exported to every command, as Taurus does; a command's own `env` wins.
    for stage in [
        &mut shell_config.prepare,
        &mut shell_config.startup,
        &mut shell_config.check,
        &mut shell_config.shutdown,
        &mut shell_config.post_process,
    ] {
        for command in stage.iter_mut() {
            command.env = with_settings_env(&suite.settings.env, &command.env);
            command.command = unescape(&command.command).into_owned();
        }
    }
    let mut shell = Shell::new(shell_config, &dir);
    let mut servers: Vec<ManagedServer> = Vec::new();

    let setup = tokio::select! {
        r = start_servers(suite, &dir, &mut shell, &mut servers) => r.map_err(Ok),
        reason = signals.recv() => Err(Err(reason)),
    };
    let (reason, mut store) = match setup {
        Ok(()) => {
            let (reason, store) =
                drive(&plan, opts, &mut servers, &mut shell, signals, console).await;
            (reason, Some(store))
        }
        Err(Ok(error)) => {
            report.status = SuiteStatus::Error;
            report.error = Some(error);
            (CancelReason::Completed, None)
        }
        Err(Err(reason)) => {
            report.status = SuiteStatus::Interrupted;
            (reason, None)
        }
    };
    // Errors of the shutdown and post-process stages, reported after the load's own cause.
    let mut late_errors: Vec<SuiteError> = Vec::new();
    // The load is over: the criteria are judged now, so shutdown commands see the verdict.
    let judged = store
        .as_mut()
        .map(|m| m.judge.finish(&m.store, m.store.seconds()));
    if store.is_some() {
        let failed = judged.iter().flatten().any(|j| j.verdict.fails());
        let code = match taurus_exit_code(&reason) {
            0 if failed => 3,
            code => code,
        };
        shell.outcome_env = vec![
            ("TAURUS_EXIT_CODE".to_owned(), code.to_string()),
            (
                "TAURUS_STOPPING_REASON".to_owned(),
                stopping_reason(&reason),
            ),
        ];
        if let Err(e) = shell.stage(Stage::Shutdown).await {
            late_errors.push(shell_error(&dir, e));
        }
    }
    // A second signal (CI's cancel sequence, an impatient Ctrl-C) skips the stop grace: the
    // servers are killed at once.
    let mut hurry = false;
    for s in &mut servers {
        if hurry {
            s.kill_now();
            continue;
        }
        let interrupted = tokio::select! {
            () = s.stop() => false,
            _ = signals.recv() => true,
        };
        if interrupted {
            hurry = true;
            s.kill_now();
        }
    }
    for s in &mut servers {
        if let Err(message) = s.post_process().await {
            late_errors.push(SuiteError {
                message: format!("server `{}`: {message}", s.label),
                log_tail: Some(s.log_tail()),
                log: Some(s.log.display().to_string()),
                hint: Some("the command's output is in the server's log".to_owned()),
            });
        }
    }
    if let Err(e) = shell.stage(Stage::PostProcess).await {
        let mut error = shell_error(&dir, e);
        if !servers.is_empty() {
            error.hint = Some(
                "shellexec `post-process` runs after the servers stopped: a command that needs a running server belongs in `shutdown`".to_owned(),
            );
        }
        late_errors.push(error);
    }
    shell.finish().await;
    drop(servers);
    // Logs are artifacts too: secrets a server or command echoed are masked in them.
    redact_logs(&dir, &redactor);

    report.duration_s = started.elapsed().as_secs_f64();
    match &reason {
        CancelReason::Completed => {}
        CancelReason::CriterionStop(name) => report.stopped_by = Some(name.clone()),
        CancelReason::ShellFailed(e) => set_error(&mut report, shell_error(&dir, e.clone())),
        CancelReason::EngineFailed(e) => set_error(
            &mut report,
            SuiteError {
                message: e.clone(),
                log_tail: None,
                log: None,
                hint: Some("fix what the message names; `perfgate validate` checks files it can see before a run".to_owned()),
            },
        ),
        CancelReason::ServerFailed {
            label,
            what,
            log_tail,
        } => set_error(
            &mut report,
            SuiteError {
                message: format!("server `{label}` {what}"),
                log_tail: Some(log_tail.clone()),
                log: Some(dir.join(format!("{label}.log")).display().to_string()),
                hint: Some(
                    "what was measured until then is kept; the server's log says why it stopped"
                        .to_owned(),
                ),
            },
        ),
        CancelReason::Interrupted | CancelReason::Terminated => {
            report.status = SuiteStatus::Interrupted
        }
    }
    // After the cause: a failing shutdown or post-process never hides a server crash.
    for e in late_errors {
        set_error(&mut report, e);
    }
    report.criteria = match &judged {
        Some(judged) => suite
            .criteria
            .iter()
            .zip(judged)
            .map(|(c, j)| {
                let stopped = report.stopped_by.as_deref() == Some(c.name.as_str());
                model::criterion_report(c, Some(j), stopped)
            })
            .collect(),
        None => suite
            .criteria
            .iter()
            .map(|c| model::criterion_report(c, None, false))
            .collect(),
    };
    if let Some(store) = store {
        report.load_started_at = Some(store.started_at.clone());
        let (labels, timeline) = model::stats(&store.store);
        report.labels = labels;
        report.timeline = timeline;
        report.monitoring = model::series(&store.store);
        if !store.logged.is_empty() {
            files::metrics_csv(&dir.join("metrics.csv"), &store.logged)?;
        }
    }
    Ok((redactor.report(report), reason))
}

/// Masks secrets in the `*.log` files of a suite's directory (server output, shellexec
/// output), line by line, each rewritten beside itself and renamed into place.
fn redact_logs(dir: &Path, redactor: &Redactor) {
    use std::io::{BufRead, Write};
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        let is_log = path.extension().is_some_and(|e| e == "log")
            && std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
        if !is_log {
            continue;
        }
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        let tmp = path.with_extension("log.redacting");
        let rewritten = (|| -> std::io::Result<bool> {
            let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            let mut changed = false;
            for line in std::io::BufReader::new(file).split(b'\n') {
                let line = line?;
                let text = String::from_utf8_lossy(&line);
                let masked = redactor.text(&text);
                changed |= masked != text;
                if masked == text {
                    out.write_all(&line)?;
                } else {
                    out.write_all(masked.as_bytes())?;
                }
                out.write_all(b"\n")?;
            }
            out.flush()?;
            Ok(changed)
        })();
        match rewritten {
            Ok(true) => {
                let _ = std::fs::rename(&tmp, &path);
            }
            _ => {
                let _ = std::fs::remove_file(&tmp);
            }
        }
    }
}

/// The first error of a suite is the one reported; the suite is an error from then on.
fn set_error(report: &mut SuiteReport, error: SuiteError) {
    if report.error.is_none() {
        report.error = Some(error);
    }
    if report.status == SuiteStatus::Completed {
        report.status = SuiteStatus::Error;
    }
}

fn shell_error(dir: &Path, message: String) -> SuiteError {
    let log = dir.join("shellexec.log");
    SuiteError {
        message,
        log_tail: Some(crate::server::tail(&log, crate::server::LOG_TAIL_LINES)),
        log: Some(log.display().to_string()),
        hint: Some("fix the command, or mark it `ignore-failure: true`".to_owned()),
    }
}

/// What Taurus would exit with had the run ended here (for `TAURUS_EXIT_CODE`).
fn taurus_exit_code(reason: &CancelReason) -> i32 {
    match reason {
        CancelReason::Completed => 0,
        CancelReason::CriterionStop(_) => 3,
        CancelReason::ShellFailed(_)
        | CancelReason::EngineFailed(_)
        | CancelReason::ServerFailed { .. } => 1,
        CancelReason::Interrupted => 130,
        CancelReason::Terminated => 143,
    }
}

fn stopping_reason(reason: &CancelReason) -> String {
    match reason {
        CancelReason::Completed => String::new(),
        CancelReason::CriterionStop(name) => format!("criterion `{name}` triggered"),
        CancelReason::ShellFailed(e) | CancelReason::EngineFailed(e) => e.clone(),
        CancelReason::ServerFailed { label, what, .. } => format!("server `{label}` {what}"),
        CancelReason::Interrupted => "interrupted (SIGINT)".to_owned(),
        CancelReason::Terminated => "terminated (SIGTERM)".to_owned(),
    }
}

/// shellexec `prepare`, then each server: start, wait until ready, its `prepare` commands.
async fn start_servers(
    suite: &crate::suite::model::Suite,
    dir: &Path,
    shell: &mut Shell,
    servers: &mut Vec<ManagedServer>,
) -> Result<(), SuiteError> {
    let has_servers = suite
        .services
        .iter()
        .any(|s| matches!(s, Service::Server(_)));
    shell.stage(Stage::Prepare).await.map_err(|e| {
        let mut error = shell_error(dir, e);
        if has_servers {
            error.hint = Some(
                "shellexec `prepare` runs before the servers start: a command that talks to a server belongs in that server's own `prepare:` (run once it is ready)".to_owned(),
            );
        }
        error
    })?;
    for service in &suite.services {
        let Service::Server(config) = service else {
            continue;
        };
        let server_error = |e: ServerError| SuiteError {
            message: e.to_string(),
            log_tail: e.log_tail().map(str::to_owned),
            log: e.log_tail().map(|_| {
                dir.join(format!("{}.log", config.label))
                    .display()
                    .to_string()
            }),
            hint: Some(e.hint().to_owned()),
        };
        // `settings.env` is exported to servers too; the server's own `env` wins.
        let mut config = config.clone();
        config.env = with_settings_env(&suite.settings.env, &config.env);
        // `$${X}` reaches the server and its hooks as `${X}`.
        config.launch = match &config.launch {
            Launch::Argv(argv) => {
                Launch::Argv(argv.iter().map(|a| unescape(a).into_owned()).collect())
            }
            Launch::Shell(line) => Launch::Shell(unescape(line).into_owned()),
        };
        for hook in config
            .prepare
            .iter_mut()
            .chain(config.post_process.iter_mut())
        {
            *hook = unescape(hook).into_owned();
        }
        if let Some(stop) = &mut config.stop.command {
            *stop = unescape(stop).into_owned();
        }
        let server = ManagedServer::spawn(&config, dir).map_err(server_error)?;
        servers.push(server);
        let server = servers.last_mut().expect("just pushed");
        server.wait_ready().await.map_err(server_error)?;
        server.prepare().await.map_err(server_error)?;
    }
    Ok(())
}

/// What one suite's load measured.
struct Measured {
    /// When the load started (second 0).
    started_at: String,
    store: Store,
    logged: files::MetricsLog,
    judge: Judge,
}

/// The dispatcher loop of one suite.
async fn drive(
    plan: &SuitePlan,
    opts: &RunOptions,
    servers: &mut [ManagedServer],
    shell: &mut Shell,
    signals: &mut Signals,
    console: &mut (dyn Write + Send),
) -> (CancelReason, Measured) {
    let dir = files::suite_dir(&opts.artifacts_dir, &plan.suite.name);
    let mut store = Store::default();
    let mut logged = files::MetricsLog::new(&plan.suite.monitoring);
    let mut judge = Judge::new(&plan.suite.criteria, |c| scope_labels(plan, c));
    if let Err(e) = shell.stage(Stage::Startup).await {
        let reason = CancelReason::ShellFailed(e);
        return (
            reason,
            Measured {
                started_at: now_rfc3339(),
                store,
                logged,
                judge,
            },
        );
    }
    let t0 = Instant::now();
    let started_at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let (events_tx, mut events) = mpsc::channel(8192);
    let (stop_tx, stop) = watch::channel(false);
    let in_flight = InFlight::default();
    let mut tasks = tokio::task::JoinSet::new();
    if plan.suite.settings.sequential {
        // One after another: each starts (its delay counted) when the one before has ended.
        let (executions, events, stop, in_flight) = (
            plan.executions.clone(),
            events_tx.clone(),
            stop.clone(),
            in_flight.clone(),
        );
        tasks.spawn(async move {
            for e in executions {
                run_execution(e, t0, events.clone(), stop.clone(), in_flight.clone()).await;
            }
        });
    } else {
        for e in plan.executions.clone() {
            tasks.spawn(run_execution(
                e,
                t0,
                events_tx.clone(),
                stop.clone(),
                in_flight.clone(),
            ));
        }
    }
    drop(events_tx);
    let targets = servers
        .iter()
        .map(|s| (s.label.clone(), s.target()))
        .collect();
    let (readings_tx, mut readings) = mpsc::channel(1024);
    let mut monitors = monitor::start(
        &plan.suite.monitoring,
        &targets,
        &dir,
        t0,
        readings_tx,
        stop.clone(),
    );
    let mut running = plan.executions.len();
    let mut reason = CancelReason::Completed;
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let progress = Progress::new(opts.progress, &plan.suite.name, plan.duration());
    // Responses received so far: the watchdogs' evidence that a slow server is not hung.
    let answers = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut watchdogs = tokio::task::JoinSet::new();
    for s in servers.iter() {
        watchdogs.spawn(s.watchdog(answers.clone()));
    }
    // shellexec `check` runs beside the loop: a slow check never holds up the dispatcher.
    let mut checks = tokio::task::JoinSet::new();
    if shell.has(Stage::Check) {
        let every = plan.suite.settings.check_interval;
        checks.spawn(shell.checks().check_until(every, stop.clone()));
    }
    while running > 0 {
        tokio::select! {
            event = events.recv() => match event {
                Some(LoadEvent::Sample(sample)) => {
                    if matches!(sample.outcome, crate::metrics::Outcome::Response { .. }) {
                        answers.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    store.record(&sample);
                }
                Some(LoadEvent::Dropped { second, label }) => store.record_dropped(second, &label, 1),
                Some(LoadEvent::Finished { index, error }) => {
                    running -= 1;
                    if let Some(e) = error {
                        reason = reason.max(CancelReason::EngineFailed(format!("execution {} could not run: {e}", index + 1)));
                        break;
                    }
                }
                None => break,
            },
            Some(reading) = readings.recv() => file_reading(&mut store, &mut logged, &reading),
            _ = tick.tick() => {
                let second = t0.elapsed().as_secs();
                store.record_concurrency(second.saturating_sub(1), "", in_flight.get());
                // Late samples of the previous second may still arrive; close the one before.
                store.close_before(second.saturating_sub(1));
                // Criteria are judged on closed seconds; a `stop` one ends the load.
                if let Some(&i) = judge.closed(&store, second.saturating_sub(1)).first() {
                    let name = judge.criteria()[i].name.clone();
                    writeln_or_ignore(console, &format!("{}: criterion `{name}` triggered: stopping the load", plan.suite.name));
                    reason = reason.max(CancelReason::CriterionStop(name));
                    break;
                }
                progress.line(console, &plan.suite.name, t0.elapsed(), &store, judge.summary());
                if *PANIC_ON_PURPOSE {
                    panic!("PERFGATE_TEST_PANIC is set: the dispatcher panics on purpose");
                }
            }
            Some(Ok(Err(e))) = checks.join_next() => {
                reason = reason.max(CancelReason::ShellFailed(e));
                break;
            }
            (label, status) = first_exit(servers) => {
                let log_tail = servers.iter().find(|s| s.label == label).map(ManagedServer::log_tail).unwrap_or_default();
                let what = format!("exited during the load with {status}");
                reason = reason.max(CancelReason::ServerFailed { label, what, log_tail });
                break;
            }
            Some(Ok((label, what))) = watchdogs.join_next() => {
                let log_tail = servers.iter().find(|s| s.label == label).map(ManagedServer::log_tail).unwrap_or_default();
                reason = reason.max(CancelReason::ServerFailed { label, what, log_tail });
                break;
            }
            signalled = signals.recv() => { reason = reason.max(signalled); break; }
        }
    }
    progress.finish();
    watchdogs.abort_all();
    // The last, partial second: its concurrency, and the end of the measured time.
    store.record_concurrency(t0.elapsed().as_secs(), "", in_flight.get());
    store.set_end(t0.elapsed());
    let _ = stop_tx.send(true);
    // Keep what is still in flight: drain until every execution reports it has finished.
    let drain = async {
        while running > 0 {
            match events.recv().await {
                Some(LoadEvent::Sample(sample)) => store.record(&sample),
                Some(LoadEvent::Dropped { second, label }) => {
                    store.record_dropped(second, &label, 1)
                }
                Some(LoadEvent::Finished { .. }) => running -= 1,
                None => break,
            }
        }
    };
    // A server that failed will not answer what is in flight: no point waiting long for it.
    let patience = match reason {
        CancelReason::ServerFailed { .. } => Duration::from_secs(3),
        _ => Duration::from_secs(35),
    };
    // A signal while draining (a second one, after a Ctrl-C) cuts the wait short.
    let signalled = tokio::select! {
        _ = tokio::time::timeout(patience, drain) => None,
        signal = signals.recv() => Some(signal),
    };
    if let Some(signal) = signalled {
        reason = reason.max(signal);
    }
    tasks.abort_all();
    monitors.abort_all();
    // `stop` ends the checks; a round still running is killed (by its shell).
    let _ = tokio::time::timeout(Duration::from_secs(10), checks.join_all()).await;
    while let Ok(reading) = readings.try_recv() {
        file_reading(&mut store, &mut logged, &reading);
    }
    (
        reason,
        Measured {
            started_at,
            store,
            logged,
            judge,
        },
    )
}

fn writeln_or_ignore(console: &mut (dyn Write + Send), line: &str) {
    let _ = writeln!(console, "{line}");
}

/// The labels a scoped criterion without a label stands for: its scenario's requests.
fn scope_labels(plan: &SuitePlan, c: &crate::suite::model::Criterion) -> Option<Vec<String>> {
    use crate::suite::model::{Check, Scope};
    if let Check::Threshold { label, .. } = &c.check
        && !label.is_empty()
    {
        return None;
    }
    let scenario = match &c.scope {
        Scope::Suite => return None,
        Scope::Execution(i) => plan.suite.executions.get(*i)?.scenario.clone(),
        Scope::Scenario(name) => name.clone(),
    };
    let mut labels = Vec::new();
    let mut seen = Vec::new();
    collect_labels(&plan.suite.scenarios, &scenario, &mut labels, &mut seen);
    // Only when the scenario is not the whole suite's load does the scope narrow anything.
    let everything = plan.suite.executions.iter().all(|e| e.scenario == scenario);
    (!everything).then_some(labels)
}

fn collect_labels(
    scenarios: &[crate::suite::model::Scenario],
    name: &str,
    labels: &mut Vec<String>,
    seen: &mut Vec<String>,
) {
    use crate::suite::model::Step;
    if seen.iter().any(|s| s == name) {
        return;
    }
    seen.push(name.to_owned());
    fn walk(
        steps: &[Step],
        scenarios: &[crate::suite::model::Scenario],
        labels: &mut Vec<String>,
        seen: &mut Vec<String>,
    ) {
        for step in steps {
            match step {
                Step::Request(r) => {
                    if !labels.contains(&r.label) {
                        labels.push(r.label.clone());
                    }
                }
                Step::IncludeScenario { scenario } => {
                    collect_labels(scenarios, scenario, labels, seen)
                }
                Step::Transaction { name, steps } => {
                    if !labels.contains(name) {
                        labels.push(name.clone());
                    }
                    walk(steps, scenarios, labels, seen);
                }
                Step::Loop { steps, .. } => walk(steps, scenarios, labels, seen),
                Step::SetVariables { .. } => {}
            }
        }
    }
    if let Some(s) = scenarios.iter().find(|s| s.name == name) {
        walk(&s.steps, scenarios, labels, seen);
    }
}

fn file_reading(store: &mut Store, logged: &mut files::MetricsLog, reading: &monitor::Reading) {
    for (metric, value) in &reading.values {
        store.record_metric(
            reading.second,
            &format!("{}/{metric}", reading.source),
            *value,
        );
    }
    logged.add(reading);
}

/// The label and exit status of the first server to exit.
async fn first_exit(servers: &mut [ManagedServer]) -> (String, String) {
    if servers.is_empty() {
        return std::future::pending().await;
    }
    let waits: Vec<_> = servers
        .iter_mut()
        .map(|s| {
            let label = s.label.clone();
            Box::pin(async move {
                let status = s
                    .exited()
                    .await
                    .map_or_else(|| "an unknown status".to_owned(), |st| st.to_string());
                (label, status)
            })
        })
        .collect();
    let mut waits = waits;
    std::future::poll_fn(move |cx| {
        for w in &mut waits {
            if let std::task::Poll::Ready(out) = w.as_mut().poll(cx) {
                return std::task::Poll::Ready(out);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// A progress line per suite: a live bar on a terminal (indicatif), a plain line every 10 s
/// otherwise (CI logs).
struct Progress {
    enabled: bool,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(enabled: bool, suite: &str, total: Option<Duration>) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let (bar, template) = match total {
                Some(t) => (
                    indicatif::ProgressBar::new(t.as_secs()),
                    "{prefix} [{bar:24}] {pos}/{len}s  {msg}",
                ),
                None => (
                    indicatif::ProgressBar::new_spinner(),
                    "{prefix} {spinner} {elapsed}  {msg}",
                ),
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(suite.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self { enabled, bar }
    }

    fn line(
        &self,
        console: &mut dyn Write,
        suite: &str,
        elapsed: Duration,
        store: &Store,
        criteria: Option<String>,
    ) {
        let secs = elapsed.as_secs();
        if !self.enabled || (self.bar.is_none() && !secs.is_multiple_of(10)) {
            return;
        }
        let last = store.window("", secs.saturating_sub(2), secs.saturating_sub(1));
        let all = store.cumulative("");
        let p99 = all.percentile(99.0).map_or("-".to_owned(), |d| {
            format!("{:.1}ms", d.as_secs_f64() * 1000.0)
        });
        let mut status = format!(
            "{} req/s  p99 {p99}  errors {}  dropped {}",
            last.served(),
            all.fail(),
            all.dropped()
        );
        if let Some(c) = criteria {
            status.push_str("  ");
            status.push_str(&c);
        }
        match &self.bar {
            Some(bar) => {
                bar.set_position(secs);
                bar.set_message(status);
            }
            None => {
                let _ = writeln!(console, "{suite}: {secs}s  {status}");
                let _ = console.flush();
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
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
fn outputs(suite: &crate::suite::model::Suite) -> model::SuiteOutputs {
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
