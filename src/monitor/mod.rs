//! Monitoring of servers and hosts.
//!
//! [`start`] spawns one task per monitoring source of a suite. Each samples at its interval
//! and sends a [`Reading`] to the dispatcher, which files it in the metrics store as
//! `source/metric` series. Samplers that read `/proc` run on the blocking pool so the load
//! engine's threads never wait on them. [`names`] is the catalog of what each kind of source
//! provides; validation checks subjects against it, and the samplers report exactly those
//! names.

pub mod agent;
pub mod exposition;
pub mod names;
pub mod process;
pub mod prometheus;
pub mod system;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use regex::Regex;
use tokio::sync::{mpsc, watch};

use crate::suite::model::MonitorSource;
use names::SourceKind;
use process::{ProcessTree, Root};
use system::Host;

/// One source's readings at one moment.
#[derive(Clone, Debug)]
pub struct Reading {
    /// The second of the load it was taken in.
    pub second: u64,
    /// Unix time, seconds.
    pub ts: f64,
    pub source: String,
    /// Declared metric → value, only the declared metrics that had a value.
    pub values: Vec<(String, f64)>,
    /// Declared Prometheus histograms → their buckets' rates since the last scrape, by
    /// upper bound (`le`, `+Inf` last): what a quantile over a window is computed from.
    pub buckets: Vec<(String, Vec<(f64, f64)>)>,
}

/// How to find a `server` service's processes.
#[derive(Clone, Debug)]
pub struct ServerTarget {
    pub root: Root,
    /// perfgate's guard process above the server, which adopts its orphans.
    pub reaper: Option<u32>,
    pub workers: Option<Regex>,
}

/// MMS writes its frontend's pid here.
pub fn mms_pid_file() -> std::path::PathBuf {
    std::env::temp_dir().join(".model_server.pid")
}

enum Sampler {
    Process(Box<ProcessTree>),
    Host(Box<Host>),
    /// MMS `ServerLocalClient`: the model server's tree and the host.
    Both(Box<ProcessTree>, Box<Host>),
    Prometheus(Box<prometheus::Prometheus>),
    Agent(Box<agent::Agent>),
}

impl Sampler {
    async fn sample(self) -> (Self, BTreeMap<String, f64>) {
        match self {
            Self::Prometheus(mut p) => {
                let values = p.sample().await;
                (Self::Prometheus(p), values)
            }
            Self::Agent(mut a) => {
                let values = a.sample().await;
                (Self::Agent(a), values)
            }
            blocking => tokio::task::spawn_blocking(move || {
                let mut blocking = blocking;
                let values = match &mut blocking {
                    Self::Process(t) => t.sample(),
                    Self::Host(h) => h.sample(),
                    Self::Both(t, h) => {
                        let mut v = h.sample();
                        v.extend(t.sample());
                        v
                    }
                    Self::Prometheus(_) | Self::Agent(_) => BTreeMap::new(),
                };
                (blocking, values)
            })
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())),
        }
    }
}

/// Starts sampling every source until `stop` turns true. Sources whose target is unknown
/// (a `server` that is not running) are left out.
pub fn start(
    sources: &[MonitorSource],
    servers: &HashMap<String, ServerTarget>,
    artifacts: &Path,
    t0: Instant,
    tx: mpsc::Sender<Reading>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinSet<()> {
    let mut tasks = tokio::task::JoinSet::new();
    let mms_workers = Regex::new("model_service_worker").ok();
    for source in sources.iter().filter(|s| !s.metrics.is_empty()) {
        let sampler = match source.kind {
            SourceKind::Server => {
                let Some(t) = servers.get(&source.name) else {
                    continue;
                };
                Sampler::Process(Box::new(ProcessTree::new(
                    t.root.clone(),
                    t.reaper,
                    t.workers.clone(),
                )))
            }
            SourceKind::ServerLocalClient => Sampler::Both(
                Box::new(ProcessTree::new(
                    Root::PidFile(mms_pid_file()),
                    None,
                    mms_workers.clone(),
                )),
                Box::new(Host::new(artifacts)),
            ),
            SourceKind::Local => Sampler::Host(Box::new(Host::new(artifacts))),
            SourceKind::Prometheus => Sampler::Prometheus(Box::new(prometheus::Prometheus::new(
                source.url.as_deref().unwrap_or_default(),
                &source.metrics,
                source
                    .interval
                    .clamp(Duration::from_millis(200), Duration::from_secs(5)),
            ))),
            SourceKind::ServerAgent => Sampler::Agent(Box::new(agent::Agent::new(
                source.url.as_deref().unwrap_or_default(),
                &source.metrics,
                source.interval,
            ))),
        };
        tasks.spawn(sample_loop(
            sampler,
            source.clone(),
            t0,
            tx.clone(),
            stop.clone(),
        ));
    }
    tasks
}

async fn sample_loop(
    mut sampler: Sampler,
    source: MonitorSource,
    t0: Instant,
    tx: mpsc::Sender<Reading>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(source.interval.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let (back, mut values) = sampler.sample().await;
        sampler = back;
        let reading = Reading {
            second: t0.elapsed().as_secs(),
            ts: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            source: source.name.clone(),
            buckets: source
                .metrics
                .iter()
                .filter_map(|m| {
                    let prefix = format!("{m}{}", prometheus::BUCKET);
                    let mut buckets: Vec<(f64, f64)> = values
                        .iter()
                        .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.parse().ok()?, *v)))
                        .collect();
                    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                    (!buckets.is_empty()).then(|| (m.clone(), buckets))
                })
                .collect(),
            values: source
                .metrics
                .iter()
                .filter_map(|m| Some((m.clone(), values.remove(m)?)))
                .collect(),
        };
        if tx.send(reading).await.is_err() {
            return;
        }
    }
}
