//! One suite from start to end: servers and shellexec commands around its load, the
//! verdict, and the order that loses nothing: reports first, then the servers are stopped.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::compare::relative::Found;
use crate::criteria::eval::Judged;
use crate::metrics::Store;
use crate::plan::SuitePlan;
use crate::report::files;
use crate::report::model::{
    self, ExecutionReport, SuiteError, SuiteIdentity, SuiteReport, SuiteStatus,
};
use crate::report::redact::Redactor;
use crate::server::shellexec::{Shell, Stage};
use crate::server::{ManagedServer, ServerError};
use crate::suite::interpolate::unescape;
use crate::suite::model::{Criterion, Launch, Service, ShellExec};

use super::dispatcher::Dispatcher;
use super::drive::{CheckpointJob, drive};
use super::{CancelReason, Reports, RunOptions, Signals, now_rfc3339, outputs, with_settings_env};

/// Runs one suite: its servers and commands, its load (see [`drive`]), its verdict. Every
/// report is written (through `reports`) as soon as the load is judged, before the servers
/// are stopped, and once more at the end with what stopping them added.
pub(super) async fn run_suite(
    plan: SuitePlan,
    opts: &RunOptions,
    signals: &mut Signals,
    console: &mut (dyn Write + Send),
    reports: &Reports<'_>,
) -> std::io::Result<(SuiteReport, CancelReason)> {
    let mut plan = plan;
    let baseline = resolve_baselines(&mut plan, opts, console)?;
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
        versus: None,
        capacity: None,
        identity: SuiteIdentity {
            environment: opts.environment.clone(),
            load_hash: load_hash(&suite.load_identity),
        },
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
    let (reason, mut measured) = match setup {
        Ok(()) => {
            // Every few seconds, results.json of what was measured so far, marked incomplete:
            // even a SIGKILL leaves a valid one.
            // The dispatcher hands over a copy of what it holds; the report is built and
            // written beside the load, not in its way.
            let mut checkpoint = |d: &Dispatcher, load_started_at: &str| -> CheckpointJob {
                let mut partial = report.clone();
                partial.status = SuiteStatus::Incomplete;
                partial.duration_s = started.elapsed().as_secs_f64();
                partial.load_started_at = Some(load_started_at.to_owned());
                let (store, judge) = (d.store.clone(), d.judge.clone());
                let (criteria, redactor) = (suite.criteria.clone(), redactor.clone());
                let writer = reports.detached();
                Box::new(move || {
                    fill_criteria(&mut partial, &criteria, Some(&judge.so_far(&store)));
                    fill_measurements(&mut partial, &store);
                    writer.checkpoint(redactor.suite_report(partial))
                })
            };
            let (reason, measured) = drive(
                &plan,
                opts,
                &mut servers,
                &mut shell,
                signals,
                console,
                &mut checkpoint,
            )
            .await;
            (reason, Some(measured))
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
    // The load is over: the criteria are judged now, so shutdown commands see the verdict.
    let judged = measured.as_mut().map(|m| m.dispatcher.finish());
    apply_reason(&mut report, &reason, &dir);
    fill_criteria(&mut report, &suite.criteria, judged.as_deref());
    if let Some(m) = &measured {
        report.load_started_at = Some(m.started_at.clone());
        fill_measurements(&mut report, &m.dispatcher.store);
        report.capacity = m.dispatcher.capacity();
        if baseline.source.is_some() {
            report.versus = Some(crate::compare::versus(
                &report,
                &baseline,
                opts.baselines.threshold,
            ));
        }
        let compared = crate::compare::diff::checks(
            &suite.diff_checks,
            &report,
            baseline.baseline(),
            baseline.missing.as_deref(),
            suite.settings.fail_without_baseline || baseline.unreadable,
        );
        report.criteria.extend(compared);
        if !m.dispatcher.logged.is_empty() {
            files::metrics_csv(&dir.join("metrics.csv"), &m.dispatcher.logged)?;
        }
    }
    drop(measured);
    report.duration_s = started.elapsed().as_secs_f64();
    // Every report now, before the servers stop: a server that takes its grace to stop, or
    // a KILL that follows a TERM, does not cost what was measured.
    reports.write(redactor.suite_report(report.clone()), &reason)?;

    // Errors of the shutdown and post-process stages, reported after the load's own cause.
    let mut late_errors: Vec<SuiteError> = Vec::new();
    if judged.is_some() {
        let failed = report.criteria_failed();
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
    // After the cause: a failing shutdown or post-process never hides a server crash.
    for e in late_errors {
        set_error(&mut report, e);
    }
    Ok((redactor.suite_report(report), reason))
}

/// SHA-256 (hex) of what makes the load: the executions and the scenarios as they ran.
fn load_hash(load_identity: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, load_identity.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The suite's status and error from why its load ended.
fn apply_reason(report: &mut SuiteReport, reason: &CancelReason, dir: &Path) {
    match reason {
        CancelReason::Completed => {}
        CancelReason::CriterionStop(name) => report.stopped_by = Some(name.clone()),
        CancelReason::ShellFailed(e) => set_error(report, shell_error(dir, e.clone())),
        CancelReason::EngineFailed(e) => set_error(
            report,
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
            report,
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
}

/// Finds the baselines of the suite's relative criteria before its load (see
/// [`crate::compare::relative::resolve`]); says on the console what is missing or differs.
fn resolve_baselines(
    plan: &mut SuitePlan,
    opts: &RunOptions,
    console: &mut (dyn Write + Send),
) -> std::io::Result<Found> {
    use crate::compare::history::Same;
    use crate::compare::relative::{Source, apply, find};
    let suite = &mut plan.suite;
    let from_settings = suite.settings.baseline.as_ref().map(|b| {
        let dir = suite.path.parent().unwrap_or(Path::new("."));
        dir.join(b)
    });
    let path = opts
        .baselines
        .path
        .clone()
        .or(from_settings)
        .or_else(|| opts.baselines.history.clone());
    let needed =
        suite.criteria.iter().any(|c| c.relative.is_some()) || !suite.diff_checks.is_empty();
    if path.is_none() && !needed {
        return Ok(Found::default());
    }
    let now = now_rfc3339();
    let source = path.as_deref().map(|path| Source {
        path,
        rev: opts.baselines.rev.as_deref(),
        before: &now,
    });
    let same = Same {
        name: &suite.name,
        environment: opts.environment.as_deref(),
    };
    let hash = load_hash(&suite.load_identity);
    let fail = suite.settings.fail_without_baseline;
    match find(same, &hash, source) {
        Ok(found) => {
            if let Some(warning) = &found.warning {
                writeln!(console, "warning: {warning}")?;
            }
            apply(
                &mut suite.criteria,
                &found.runs,
                found.missing.as_deref(),
                fail,
            );
            Ok(found)
        }
        Err(e) => {
            // An unreadable baseline is not a first night: its criteria fail, saying why.
            writeln!(
                console,
                "error: the baseline of suite `{}`: {e}",
                suite.name
            )?;
            for c in suite.criteria.iter_mut() {
                if let Some(r) = c.relative.as_mut() {
                    r.fail_without_baseline = Some(true);
                    c.baseline = Some(std::sync::Arc::new(
                        crate::criteria::eval::Baseline::Missing(format!(
                            "the baseline could not be read: {e}"
                        )),
                    ));
                }
            }
            Ok(Found {
                missing: Some(format!("the baseline could not be read: {e}")),
                unreadable: true,
                source: path.clone(),
                ..Found::default()
            })
        }
    }
}

/// The criteria of the report: judged, or "not judged" when the load never ran.
fn fill_criteria(report: &mut SuiteReport, criteria: &[Criterion], judged: Option<&[Judged]>) {
    report.criteria = match judged {
        Some(judged) => criteria
            .iter()
            .zip(judged)
            .map(|(c, j)| {
                let stopped = report.stopped_by.as_deref() == Some(c.name.as_str());
                model::criterion_report(c, Some(j), stopped)
            })
            .collect(),
        None => criteria
            .iter()
            .map(|c| model::criterion_report(c, None, false))
            .collect(),
    };
}

/// Per-label statistics, the timeline and the monitoring series from the store.
fn fill_measurements(report: &mut SuiteReport, store: &Store) {
    let (labels, timeline) = model::stats(store);
    report.labels = labels;
    report.timeline = timeline;
    report.monitoring = model::series(store);
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
