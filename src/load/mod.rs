//! The HTTP load engine: one engine, parameterised by a [`Schedule`].
//!
//! [`run_execution`] drives one execution: in the closed model, virtual users start along the
//! ramp and loop over the scenario (optionally paced to a throughput cap); in the open model,
//! a scheduler emits arrivals at the planned rate (constant or poisson, seeded) and each one
//! runs a scenario iteration if fewer than `max_in_flight` are outstanding, else it is counted
//! as dropped. Latency of an arrival is measured from its *scheduled* time. Every finished
//! request goes to the dispatcher as a [`LoadEvent`]; the engine keeps no statistics itself.

mod deadline;
mod events;
mod h1;
mod llm;
mod timing;
mod transport;
mod vu;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Exp};
use tokio::sync::{Semaphore, watch};

use crate::metrics::Sample;
use crate::plan::{ExecutionPlan, Schedule};
use crate::suite::model::Arrival;

pub use events::{Empty, EventReceiver, EventSender, channel as event_channel};
pub use vu::{LoadError, Shared};

/// What the engine tells the dispatcher.
#[derive(Clone, Debug, PartialEq)]
pub enum LoadEvent {
    /// A request (or transaction) was sent, due at `due` from the start of the run: it is in
    /// flight until its sample (or `Settled`) arrives with the same `id`.
    Started {
        id: u64,
        /// The execution (its index in the plan) that sent it.
        execution: usize,
        label: Arc<str>,
        due: Duration,
    },
    /// A load of `execution` was cut at `at` (from the start of the run): what it still had
    /// in flight was cancelled and will send nothing.
    Cut { execution: usize, at: Duration },
    /// What request `id` measured.
    Sample { id: u64, sample: Sample },
    /// Transaction `id` ended without a sample (none of its requests ran).
    Settled { id: u64 },
    /// An open-model arrival found no free slot.
    Dropped { second: u64, label: String },
    /// Execution `index` has sent everything it will send; its load ended at `ended` from
    /// the start of the run (the end of a time-bound load, not when what was in flight then
    /// finished).
    Finished {
        index: usize,
        error: Option<String>,
        ended: Duration,
    },
}

/// Requests (or busy virtual users) in flight right now, read by the dispatcher each second,
/// and the ids that tie a request's `Started` event to its sample, unique across a suite's
/// executions.
#[derive(Clone, Debug, Default)]
pub struct InFlight(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    busy: AtomicU64,
    ids: AtomicU64,
}

impl InFlight {
    pub fn get(&self) -> u64 {
        self.0.busy.load(Ordering::Relaxed)
    }
    fn enter(&self) -> InFlightGuard {
        self.0.busy.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(self.0.clone())
    }
    fn next_id(&self) -> u64 {
        self.0.ids.fetch_add(1, Ordering::Relaxed)
    }
}

struct InFlightGuard(Arc<Counters>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs one execution to its end (duration, iterations, exhausted data, or `stop`).
pub async fn run_execution(
    plan: ExecutionPlan,
    t0: Instant,
    events: EventSender,
    stop: watch::Receiver<bool>,
    in_flight: InFlight,
) {
    let index = plan.index;
    let (error, ended) = drive_load(plan, t0, events.clone(), stop, in_flight).await;
    let _ = events
        .send(LoadEvent::Finished {
            index,
            error,
            ended,
        })
        .await;
}

/// Runs one execution's load to its end without saying it finished (a search's probes are
/// one execution): why it could not run, if it could not, and when its load ended, from the
/// start of the run.
pub async fn drive_load(
    plan: ExecutionPlan,
    t0: Instant,
    events: EventSender,
    stop: watch::Receiver<bool>,
    in_flight: InFlight,
) -> (Option<String>, Duration) {
    let execution = plan.index;
    let (error, ended) = match Shared::new(plan, t0, events.clone(), stop, in_flight.clone()) {
        Ok(shared) => {
            let shared = Arc::new(shared);
            sleep_until_or_stop(Instant::now() + shared.plan.delay, shared.stop.clone()).await;
            if !shared.stopped() {
                match shared.plan.schedule.clone() {
                    Schedule::Closed { .. } => closed(shared.clone(), in_flight).await,
                    Schedule::Open { .. } => open(shared.clone(), in_flight).await,
                }
            }
            (None, shared.ended())
        }
        Err(e) => (Some(e.to_string()), Instant::now()),
    };
    let at = t0.elapsed();
    let _ = events.send(LoadEvent::Cut { execution, at }).await;
    (error, ended.saturating_duration_since(t0))
}

async fn sleep_until_or_stop(at: Instant, mut stop: watch::Receiver<bool>) {
    if at <= Instant::now() || *stop.borrow() {
        return;
    }
    tokio::select! {
        () = tokio::time::sleep_until(at.into()) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
}

/// Shares out the iteration budget: `None` once it is spent.
#[derive(Debug)]
struct Budget(Option<AtomicU64>);

impl Budget {
    fn new(iterations: Option<u64>) -> Self {
        Self(iterations.map(AtomicU64::new))
    }
    fn take(&self) -> bool {
        match &self.0 {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

/// Taurus `throughput` in the closed model: a cap on the request rate, ramped like the users.
/// Each request takes the next slot; a slot is never earlier than now, so users that fell
/// behind do not burst to catch up.
#[derive(Debug)]
pub(crate) struct Pacer {
    rate: f64,
    start: Instant,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(rate: f64, start: Instant) -> Self {
        Self {
            rate,
            start,
            next: Mutex::new(start),
        }
    }

    /// The time this request may be sent.
    fn slot(&self, schedule: &Schedule) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = (*next).max(Instant::now());
        let work = schedule.work(slot - self.start);
        *next = self.start + schedule.at_work(work + 1.0 / self.rate);
        slot
    }
}

async fn closed(shared: Arc<Shared>, in_flight: InFlight) {
    let Schedule::Closed {
        users,
        ramp_up,
        steps,
        iterations,
        throughput,
        ..
    } = shared.plan.schedule
    else {
        return;
    };
    let start = Instant::now();
    shared.begin(start);
    let budget = Arc::new(Budget::new(iterations));
    let pacer = throughput
        .filter(|r| *r > 0.0)
        .map(|rate| Arc::new(Pacer::new(rate, start)));
    let mut tasks = tokio::task::JoinSet::new();
    for user in 0..users {
        // Users start along the ramp: evenly, or in `steps` groups.
        let share = f64::from(user) / f64::from(users);
        let share = match steps {
            Some(n) if n > 0 => (share * f64::from(n)).floor() / f64::from(n),
            _ => share,
        };
        let start_at = start + ramp_up.mul_f64(share);
        let (shared, budget, in_flight, pacer) = (
            shared.clone(),
            budget.clone(),
            in_flight.clone(),
            pacer.clone(),
        );
        tasks.spawn(async move {
            sleep_until_or_stop(start_at, shared.stop.clone()).await;
            let mut vu = shared.user(u64::from(user))?;
            vu.pace(pacer);
            while !shared.stopped() && !shared.past_deadline(start) && budget.take() {
                let _busy = in_flight.enter();
                vu.iteration(None).await?;
            }
            Ok::<(), LoadError>(())
        });
    }
    let reap = async {
        while let Some(result) = tasks.join_next().await {
            if let Ok(Err(LoadError::DataExhausted)) = result {
                shared.finish();
            }
        }
    };
    shared.until_cut(reap).await;
    // What was cut is cancelled before the load says so: nothing of it reports later.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

async fn open(shared: Arc<Shared>, in_flight: InFlight) {
    let Schedule::Open {
        rate,
        arrival,
        max_in_flight,
        iterations,
        ..
    } = shared.plan.schedule
    else {
        return;
    };
    let start = Instant::now();
    shared.begin(start);
    let slots = Arc::new(Semaphore::new(max_in_flight as usize));
    let budget = Budget::new(iterations);
    let mut rng = SmallRng::seed_from_u64(shared.plan.seed);
    let unit = Exp::new(1.0).ok();
    let mut tasks = tokio::task::JoinSet::new();
    // Arrival k is due when `k` arrivals' worth of work is done (constant), or after a sum of
    // unit exponential gaps (poisson); mapping through the ramp's inverse keeps both exact
    // while the rate changes.
    let mut due = 0.0f64;
    let mut arrivals = 0u64;
    loop {
        let next = start + shared.plan.schedule.at_work(due / rate);
        due += match (arrival, &unit) {
            (Arrival::Poisson, Some(unit)) => unit.sample(&mut rng),
            _ => 1.0,
        };
        if shared.past_deadline_at(start, next) || !budget.take() {
            break;
        }
        sleep_until_or_stop(next, shared.stop.clone()).await;
        if shared.stopped() {
            break;
        }
        arrivals += 1;
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                let (shared, in_flight) = (shared.clone(), in_flight.clone());
                tasks.spawn(async move {
                    let _permit = permit;
                    let _busy = in_flight.enter();
                    let mut vu = shared.user(arrivals)?;
                    vu.iteration(Some(next)).await
                });
            }
            Err(_) => shared.dropped(next).await,
        }
        // Reap finished arrivals so the set does not grow with the run.
        while let Some(result) = tasks.try_join_next() {
            if let Ok(Err(LoadError::DataExhausted)) = result {
                shared.finish();
            }
        }
    }
    shared
        .until_cut(async { while tasks.join_next().await.is_some() {} })
        .await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}
