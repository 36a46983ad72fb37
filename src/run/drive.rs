//! Drives one suite's load: spawns the executions, the monitors, the readiness watchdogs
//! and the shellexec checks, and turns everything they report, the clock and the signals
//! into [`Event`]s for the [`Dispatcher`]. When the dispatcher says the load is over, it
//! stops sending, gives what is in flight a short grace (none after a signal), cancels
//! the rest, and hands the dispatcher back.

use crate::suite::raw::Phase;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};

use crate::load::InFlight;
use crate::monitor;
use crate::plan::SuitePlan;
use crate::report::files;
use crate::server::ManagedServer;
use crate::server::shellexec::{Shell, Stage};

use super::dispatcher::{Dispatcher, Event};
use super::progress::Progress;
use super::search;
use super::{CancelReason, PANIC_ON_PURPOSE, RunOptions, Signals, now_rfc3339};

/// How often results.json is rewritten during a load, marked incomplete.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);

/// The engine's events are filed in batches this often, not one wake-up per event: a fast
/// engine sends two events per request, and a round of the loop looks at every source.
const BATCH_EVERY: Duration = Duration::from_millis(2);

/// At most this many queued engine events are filed in one batch: the other sources (ticks,
/// readings, signals) are looked at between batches.
const EVENTS_PER_ROUND: usize = 16_384;

/// At most this many queued engine events are filed before a tick is: a dispatcher behind
/// a fast engine still ticks.
const DRAIN_BEFORE_TICK: usize = 65_536;

/// What one suite's load measured.
pub(super) struct Measured {
    /// When the load started (second 0).
    pub(super) started_at: String,
    pub(super) dispatcher: Dispatcher,
}

/// Takes a copy of what the dispatcher holds (the load started at the given time) for a
/// checkpoint, to be written away from the dispatcher.
pub(super) type Checkpoint<'a> = dyn FnMut(&Dispatcher, &str) -> CheckpointJob + Send + 'a;

/// Builds and writes one checkpoint (on a blocking thread).
pub(super) type CheckpointJob = Box<dyn FnOnce() -> std::io::Result<()> + Send + 'static>;

/// Runs the suite's load to its end; returns why it ended and what it measured.
pub(super) async fn drive(
    plan: &SuitePlan,
    opts: &RunOptions,
    servers: &mut [ManagedServer],
    shell: &mut Shell,
    signals: &mut Signals,
    console: &mut (dyn Write + Send),
    checkpoint: &mut Checkpoint<'_>,
) -> (CancelReason, Measured) {
    let dir = files::suite_dir(&opts.artifacts_dir, &plan.suite.name);
    let mut dispatcher = Dispatcher::new(plan);
    dispatcher.watch_servers(servers.iter().map(|s| s.label.clone()).collect());
    if let Err(e) = shell.stage(Stage::Startup).await {
        let measured = Measured {
            started_at: now_rfc3339(),
            dispatcher,
        };
        return (CancelReason::ShellFailed(e), measured);
    }
    let t0 = Instant::now();
    let started_at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let (events_tx, mut events) = crate::load::event_channel(8192);
    let (stop_tx, stop) = watch::channel(false);
    // A search's probes, each waiting for the SLOs its steady window missed.
    let (asks_tx, mut asks) = mpsc::channel(4);
    let in_flight = InFlight::default();
    let mut tasks = tokio::task::JoinSet::new();
    {
        // Setup executions together, then the load (side by side, or one after another:
        // each starts, its delay counted, when the one before has ended), then teardown.
        let (executions, events, stop, in_flight, asks) = (
            plan.executions.clone(),
            events_tx.clone(),
            stop.clone(),
            in_flight.clone(),
            asks_tx,
        );
        let sequential = plan.suite.settings.sequential;
        tasks.spawn(async move {
            for phase in [Phase::Setup, Phase::Main, Phase::Teardown] {
                let these: Vec<_> = executions
                    .iter()
                    .filter(|e| e.phase == phase)
                    .cloned()
                    .collect();
                if sequential && phase == Phase::Main {
                    for e in these {
                        let (events, stop, in_flight) =
                            (events.clone(), stop.clone(), in_flight.clone());
                        search::run(e, t0, events, stop, in_flight, asks.clone()).await;
                    }
                } else {
                    let mut together = tokio::task::JoinSet::new();
                    for e in these {
                        together.spawn(search::run(
                            e,
                            t0,
                            events.clone(),
                            stop.clone(),
                            in_flight.clone(),
                            asks.clone(),
                        ));
                    }
                    while together.join_next().await.is_some() {}
                }
            }
        });
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
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let progress = Progress::new(opts.progress, &plan.suite.name, plan.duration());
    // Responses received so far: the watchdogs' evidence that a slow server is not hung.
    let answers = Arc::new(AtomicU64::new(0));
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
    let mut reason = if plan.executions.is_empty() {
        Some(CancelReason::Completed)
    } else {
        None
    };
    let mut next_checkpoint = CHECKPOINT_EVERY;
    let mut writing: Option<tokio::task::JoinHandle<std::io::Result<()>>> = None;
    let mut batch = tokio::time::interval(BATCH_EVERY);
    batch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while reason.is_none() {
        let event = tokio::select! {
            _ = batch.tick() => {
                let mut closed = false;
                for _ in 0..EVENTS_PER_ROUND {
                    match events.try_recv() {
                        Ok(event) => reason = dispatcher.handle(Event::Load(event)),
                        Err(crate::load::Empty::Now) => break,
                        Err(crate::load::Empty::Closed) => {
                            closed = true;
                            break;
                        }
                    }
                    if reason.is_some() {
                        break;
                    }
                }
                // The engine's side closed: every execution has ended.
                (closed && reason.is_none()).then_some(Event::Stop(CancelReason::Completed))
            }
            Some(reading) = readings.recv() => Some(Event::Reading(reading)),
            Some(ask) = asks.recv() => Some(Event::Probe(ask)),
            _ = tick.tick() => {
                // What the engine reported before this moment is filed before the tick, so
                // the watermark sees every request started until now.
                for _ in 0..DRAIN_BEFORE_TICK {
                    let Ok(event) = events.try_recv() else { break };
                    reason = dispatcher.handle(Event::Load(event));
                    if reason.is_some() {
                        break;
                    }
                }
                if reason.is_some() {
                    break;
                }
                Some(Event::Tick { now: t0.elapsed(), in_flight: in_flight.get(), cpu: own_cpu() })
            }
            Some(Ok(Err(e))) = checks.join_next() => Some(Event::Stop(CancelReason::ShellFailed(e))),
            (label, status) = first_exit(servers) => {
                let log_tail = log_tail(servers, &label);
                let what = format!("exited during the load with {status}");
                Some(Event::Stop(CancelReason::ServerFailed { label, what, log_tail }))
            }
            Some(Ok((label, what))) = watchdogs.join_next() => {
                let log_tail = log_tail(servers, &label);
                Some(Event::Stop(CancelReason::ServerFailed { label, what, log_tail }))
            }
            signalled = signals.recv() => Some(Event::Stop(signalled)),
        };
        let ticked = matches!(event, Some(Event::Tick { .. }));
        if let Some(event) = event
            && reason.is_none()
        {
            reason = dispatcher.handle(event);
        }
        answers.store(dispatcher.answers(), Ordering::Relaxed);
        if let Some(CancelReason::CriterionStop(name)) = &reason {
            let _ = writeln!(
                console,
                "{}: criterion `{name}` triggered: stopping the load",
                plan.suite.name
            );
        }
        if ticked && reason.is_none() {
            let elapsed = t0.elapsed();
            let summary = dispatcher.judge.summary();
            progress.line(
                console,
                &plan.suite.name,
                elapsed,
                &dispatcher.store,
                summary,
            );
            // One checkpoint at a time: a slow disk skips one rather than piling them up.
            if elapsed >= next_checkpoint && writing.as_ref().is_none_or(|w| w.is_finished()) {
                if let Some(done) = writing.take() {
                    checkpoint_written(done.await, console, &plan.suite.name);
                }
                writing = Some(tokio::task::spawn_blocking(checkpoint(
                    &dispatcher,
                    &started_at,
                )));
            }
            while next_checkpoint <= elapsed {
                next_checkpoint += CHECKPOINT_EVERY;
            }
            if *PANIC_ON_PURPOSE {
                panic!("PERFGATE_TEST_PANIC is set: the dispatcher panics on purpose");
            }
        }
    }
    let mut reason = reason.unwrap_or(CancelReason::Completed);
    // A checkpoint still being written ends first: it must not land after the final report.
    if let Some(done) = writing.take() {
        checkpoint_written(done.await, console, &plan.suite.name);
    }
    // A server the dispatcher found down (refusing connections): what its log says.
    if let CancelReason::ServerFailed {
        label,
        log_tail: tail,
        ..
    } = &mut reason
        && tail.is_empty()
    {
        *tail = log_tail(servers, label);
    }
    progress.finish();
    watchdogs.abort_all();
    // The end of the measured time, and the concurrency of its last, partial second.
    let end = t0.elapsed();
    dispatcher.end_load(end);
    dispatcher
        .store
        .record_concurrency(end.as_secs(), "", in_flight.get());
    let _ = stop_tx.send(true);
    // What is in flight gets a short grace to finish (none after a signal: the user wants
    // out, and the reports come first); a signal while waiting cuts it short.
    let signalled = matches!(reason, CancelReason::Interrupted | CancelReason::Terminated);
    if !signalled && dispatcher.running() > 0 {
        let grace = plan.suite.settings.graceful_stop;
        let drain = async {
            while dispatcher.running() > 0 {
                match events.recv().await {
                    Some(event) => {
                        dispatcher.handle(Event::Load(event));
                    }
                    None => break,
                }
            }
        };
        let signal = tokio::select! {
            _ = tokio::time::timeout(grace, drain) => None,
            signal = signals.recv() => Some(signal),
        };
        if let Some(signal) = signal {
            reason = reason.max(signal);
        }
    }
    // Whatever has not finished is cancelled and counted as unfinished, at its age.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    while let Ok(event) = events.try_recv() {
        dispatcher.handle(Event::Load(event));
    }
    let unfinished = dispatcher.cut(t0.elapsed());
    if unfinished > 0 {
        let _ = writeln!(
            console,
            "{}: {unfinished} requests were still in flight when their load ended: counted as unfinished",
            plan.suite.name
        );
    }
    monitors.abort_all();
    // `stop` ends the checks; a round still running is killed (by its shell). After a
    // signal nothing waits for them.
    if matches!(reason, CancelReason::Interrupted | CancelReason::Terminated) {
        checks.abort_all();
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), checks.join_all()).await;
    while let Ok(reading) = readings.try_recv() {
        dispatcher.handle(Event::Reading(reading));
    }
    let measured = Measured {
        started_at,
        dispatcher,
    };
    (reason, measured)
}

/// perfgate's own CPU time so far, user and system.
fn own_cpu() -> Option<Duration> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let time = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(u64::try_from(t.tv_sec()).ok()?)
            .checked_add(Duration::from_micros(u64::try_from(t.tv_usec()).ok()?))
    };
    time(usage.user_time())?.checked_add(time(usage.system_time())?)
}

fn checkpoint_written(
    done: Result<std::io::Result<()>, tokio::task::JoinError>,
    console: &mut (dyn Write + Send),
    suite: &str,
) {
    let error = match done {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    let _ = writeln!(
        console,
        "{suite}: could not write a checkpoint of results.json: {error}"
    );
}

fn log_tail(servers: &[ManagedServer], label: &str) -> String {
    servers
        .iter()
        .find(|s| s.label == label)
        .map(ManagedServer::log_tail)
        .unwrap_or_default()
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
