//! The metric names each monitoring source provides, spelled exactly as MMS and Taurus do.
//!
//! [`SourceKind::provides`] answers whether a source can give a metric; [`SourceKind::all`]
//! lists them for did-you-mean and for `metrics: [all]`.

use std::sync::LazyLock;

/// Per-process measurements that MMS aggregates over the frontend, workers and all.
pub const PROCESS_MEASUREMENTS: &[&str] = &[
    "cpu_percent",
    "cpu_user_time",
    "cpu_system_time",
    "cpu_iowait_time",
    "memory_percent",
    "memory_rss",
    "memory_vms",
    "io_read_count",
    "io_write_count",
    "io_read_bytes",
    "io_write_bytes",
    "file_descriptors",
    "threads",
];

pub const PROCESS_COUNTS: &[&str] = &["total_processes", "total_workers", "orphans", "zombies"];

pub const SYSTEM_METRICS: &[&str] = &[
    "system_disk_used",
    "system_memory_percent",
    "system_read_count",
    "system_write_count",
    "system_read_bytes",
    "system_write_bytes",
];

/// A server's metrics when its `monitoring` lists none.
pub const DEFAULT_PROCESS_METRICS: &[&str] = &[
    "total_processes",
    "total_workers",
    "sum_all_cpu_percent",
    "max_all_cpu_percent",
    "sum_all_memory_rss",
];

/// Taurus `local` host metrics.
pub const HOST_METRICS: &[&str] = &[
    "cpu",
    "mem",
    "disk-space",
    "bytes-recv",
    "bytes-sent",
    "disk-read",
    "disk-write",
    "conn-all",
];

/// Every process metric name of DESIGN §4.6: `frontend_<m>`, `{sum,avg,min,max}_workers_<m>`,
/// `{sum,avg,min,max}_all_<m>`, the counts and the system metrics.
pub static PROCESS_METRICS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut names = Vec::new();
    for m in PROCESS_MEASUREMENTS {
        names.push(format!("frontend_{m}"));
        for group in ["workers", "all"] {
            for agg in ["sum", "avg", "min", "max"] {
                names.push(format!("{agg}_{group}_{m}"));
            }
        }
    }
    names.extend(PROCESS_COUNTS.iter().map(|s| (*s).to_owned()));
    names.extend(SYSTEM_METRICS.iter().map(|s| (*s).to_owned()));
    names
});

/// What kind of source a monitoring subject names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// Taurus `local`: host metrics.
    Local,
    /// MMS `ServerLocalClient`: the server's process tree, plus host metrics.
    ServerLocalClient,
    /// A `server` service: its process tree.
    Server,
    /// A Prometheus endpoint: whatever selectors it lists.
    Prometheus,
    /// Taurus `server-agent`: a JMeter PerfMon ServerAgent (or an agent speaking its
    /// protocol, as MMS's) sends the values of the metrics it is asked for.
    ServerAgent,
}

impl SourceKind {
    /// Why this kind of source cannot be sampled on `os` (as `std::env::consts::OS` spells
    /// it), or `None` when it can. Process and host metrics are read from Linux's `/proc`;
    /// a Prometheus scrape works anywhere.
    pub fn unsupported_on(self, os: &str) -> Option<String> {
        match self {
            Self::Prometheus | Self::ServerAgent => None,
            _ if os == "linux" => None,
            _ => Some(format!(
                "process and host metrics are read from /proc, which {os} does not have"
            )),
        }
    }

    /// Whether this kind of source can provide `metric` (prometheus: any valid selector).
    pub fn provides(self, metric: &str) -> bool {
        match self {
            Self::Local => HOST_METRICS.contains(&metric),
            Self::Server => PROCESS_METRICS.iter().any(|m| m == metric),
            Self::ServerLocalClient => {
                HOST_METRICS.contains(&metric) || PROCESS_METRICS.iter().any(|m| m == metric)
            }
            Self::Prometheus => parse_selector(metric).is_ok(),
            // The agent knows its metrics; it answers for whatever it is asked.
            Self::ServerAgent => !metric.trim().is_empty(),
        }
    }

    /// What a source samples when it lists no `metrics`: for a server's process tree a small
    /// set that says whether it is alive, busy and growing (every one of the 127 process metrics
    /// is `metrics: [all]`); for the host, every host metric.
    pub fn defaults(self) -> Vec<&'static str> {
        match self {
            Self::Server | Self::ServerLocalClient => DEFAULT_PROCESS_METRICS.to_vec(),
            other => other.all(),
        }
    }

    /// The fixed names this kind provides (empty for Prometheus).
    pub fn all(self) -> Vec<&'static str> {
        let process = || PROCESS_METRICS.iter().map(String::as_str);
        match self {
            Self::Local => HOST_METRICS.to_vec(),
            Self::Server => process().collect(),
            Self::ServerLocalClient => HOST_METRICS.iter().copied().chain(process()).collect(),
            Self::Prometheus | Self::ServerAgent => Vec::new(),
        }
    }
}

/// A Prometheus series selector: `name` or `name{label="value",...}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Selector {
    pub name: String,
    pub labels: Vec<(String, String)>,
}

/// Parses a selector; the error says what is wrong.
pub fn parse_selector(text: &str) -> Result<Selector, String> {
    let text = text.trim();
    let (name, rest) = match text.find('{') {
        Some(i) => (&text[..i], Some(&text[i..])),
        None => (text, None),
    };
    let valid_name = |s: &str, colon: bool| {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
    };
    if !valid_name(name, true) {
        return Err(format!("`{name}` is not a valid Prometheus metric name"));
    }
    let mut labels = Vec::new();
    if let Some(rest) = rest {
        let (parsed, after) = super::exposition::label_set(rest)?;
        if !after.trim().is_empty() {
            return Err(format!("`{text}`: label matchers must end with `}}`"));
        }
        labels = parsed;
    }
    Ok(Selector {
        name: name.to_owned(),
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_prometheus_works_without_proc() {
        for kind in [
            SourceKind::Local,
            SourceKind::Server,
            SourceKind::ServerLocalClient,
        ] {
            assert_eq!(kind.unsupported_on("linux"), None);
            let why = kind.unsupported_on("macos").unwrap_or_default();
            assert!(why.contains("/proc") && why.contains("macos"), "{why}");
        }
        assert_eq!(SourceKind::Prometheus.unsupported_on("windows"), None);
    }

    #[test]
    fn mms_names_are_exact() {
        for name in [
            "sum_workers_memory_rss",
            "sum_all_file_descriptors",
            "frontend_file_descriptors",
            "total_workers",
            "orphans",
            "max_workers_cpu_percent",
            "system_memory_percent",
        ] {
            assert!(SourceKind::Server.provides(name), "{name}");
        }
        assert!(!SourceKind::Server.provides("sum_worker_memory_rss"));
        assert!(!SourceKind::Server.provides("cpu"));
        assert!(SourceKind::ServerLocalClient.provides("cpu"));
        assert!(SourceKind::Local.provides("conn-all"));
        assert_eq!(PROCESS_METRICS.len(), 13 * 9 + 4 + 6);
    }

    #[test]
    fn selectors() {
        let s = parse_selector(r#"http_requests_total{code="200", method="POST"}"#).unwrap();
        assert_eq!(s.name, "http_requests_total");
        assert_eq!(
            s.labels,
            [
                ("code".into(), "200".into()),
                ("method".into(), "POST".into())
            ]
        );
        assert!(parse_selector("9bad").is_err());
        assert!(parse_selector("x{code=200}").is_err());
        assert!(parse_selector("x{code=\"2\"").is_err());
    }
}
