//! A capacity search while it runs: each probe is the execution at one load for one step;
//! the dispatcher, which holds the measurements, says which SLOs the probe's steady window
//! missed once every request due in it has finished; the search picks the next load from
//! the answers ([`Search::next`]) until the bracket is closed.

use std::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};

use crate::load::{InFlight, LoadEvent, drive_load, run_execution};
use crate::plan::ExecutionPlan;
use crate::suite::model::SweepStep;

/// A probe that has run, and where to send the SLOs its steady window missed.
#[derive(Debug)]
pub(crate) struct ProbeAsk {
    pub(crate) step: SweepStep,
    pub(crate) reply: oneshot::Sender<Vec<String>>,
}

/// Runs `plan`: its probes when it is a search, else its load as it is.
pub(super) async fn run(
    plan: ExecutionPlan,
    t0: Instant,
    events: crate::load::EventSender,
    mut stop: watch::Receiver<bool>,
    in_flight: InFlight,
    asks: mpsc::Sender<ProbeAsk>,
) {
    let Some(search) = plan.search.clone() else {
        return run_execution(plan, t0, events, stop, in_flight).await;
    };
    let stopped = |stop: &watch::Receiver<bool>| *stop.borrow();
    if !plan.delay.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(plan.delay) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
    let mut done: Vec<(f64, bool)> = Vec::new();
    let mut error = None;
    let mut ended = t0.elapsed();
    while let Some(value) = search.next(&done) {
        if stopped(&stop) {
            break;
        }
        let start = t0.elapsed();
        let probe = plan.probe(&search, value);
        let (failed, end) =
            drive_load(probe, t0, events.clone(), stop.clone(), in_flight.clone()).await;
        ended = end;
        if failed.is_some() {
            error = failed;
            break;
        }
        if stopped(&stop) {
            break;
        }
        let step = SweepStep {
            group: search.group,
            kind: search.kind,
            value,
            start,
            warm_up: search.warm_up,
            length: search.length,
            slo: search.slo.clone(),
        };
        let (reply, answer) = oneshot::channel();
        if asks.send(ProbeAsk { step, reply }).await.is_err() {
            break;
        }
        let missed = tokio::select! {
            missed = answer => missed,
            _ = stop.wait_for(|s| *s) => break,
        };
        let Ok(missed) = missed else { break };
        done.push((value, missed.is_empty()));
    }
    let _ = events
        .send(LoadEvent::Finished {
            index: plan.index,
            error,
            ended,
        })
        .await;
}
