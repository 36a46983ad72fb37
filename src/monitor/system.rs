//! Host-wide measurements: MMS `system_*` metrics and Taurus `local` metrics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sysinfo::{Networks, System};

/// Whole-disk I/O counters from `/proc/diskstats` (partitions left out so nothing counts twice).
#[derive(Clone, Copy, Debug, Default)]
pub struct DiskCounters {
    pub reads: u64,
    pub writes: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
}

impl DiskCounters {
    pub fn read() -> Self {
        let mut c = Self::default();
        for d in procfs::diskstats().unwrap_or_default() {
            if !Path::new("/sys/block").join(&d.name).exists() || d.name.starts_with("loop") {
                continue;
            }
            c.reads += d.reads;
            c.writes += d.writes;
            c.read_bytes += d.sectors_read * 512;
            c.write_bytes += d.sectors_written * 512;
        }
        c
    }
}

/// Percent used of the filesystem holding `path`.
fn disk_used_percent(path: &Path) -> Option<f64> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    let total = s.blocks() as f64;
    let free = s.blocks_free() as f64;
    let avail = s.blocks_available() as f64;
    let used = total - free;
    // As `df` and psutil: used / (used + available to unprivileged users).
    (used + avail > 0.0).then(|| used / (used + avail) * 100.0)
}

/// MMS `system_*` metrics (cumulative disk counters, as psutil gives them).
pub fn system_metrics(system: &System, disks: &mut DiskCounters) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    if let Some(used) = disk_used_percent(Path::new("/")) {
        out.insert("system_disk_used".into(), used);
    }
    let total = system.total_memory() as f64;
    if total > 0.0 {
        out.insert(
            "system_memory_percent".into(),
            (total - system.available_memory() as f64) / total * 100.0,
        );
    }
    *disks = DiskCounters::read();
    out.insert("system_read_count".into(), disks.reads as f64);
    out.insert("system_write_count".into(), disks.writes as f64);
    out.insert("system_read_bytes".into(), disks.read_bytes as f64);
    out.insert("system_write_bytes".into(), disks.write_bytes as f64);
    out
}

/// Taurus `local` host metrics. Byte counters are per second since the previous sample.
#[derive(Debug)]
pub struct Host {
    system: System,
    networks: Networks,
    disks: DiskCounters,
    last: Instant,
    artifacts: PathBuf,
}

impl Host {
    pub fn new(artifacts: &Path) -> Self {
        let mut system = System::new();
        system.refresh_cpu_usage();
        Self {
            system,
            networks: Networks::new_with_refreshed_list(),
            disks: DiskCounters::read(),
            last: Instant::now(),
            artifacts: artifacts.to_owned(),
        }
    }

    pub fn sample(&mut self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        let dt = self.last.elapsed().as_secs_f64().max(1e-3);
        self.last = Instant::now();
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        out.insert("cpu".into(), f64::from(self.system.global_cpu_usage()));
        let total = self.system.total_memory() as f64;
        if total > 0.0 {
            out.insert(
                "mem".into(),
                (total - self.system.available_memory() as f64) / total * 100.0,
            );
        }
        if let Some(used) = disk_used_percent(&self.artifacts) {
            out.insert("disk-space".into(), used);
        }
        self.networks.refresh(true);
        let (recv, sent) = self.networks.iter().fold((0, 0), |(r, s), (_, n)| {
            (r + n.received(), s + n.transmitted())
        });
        out.insert("bytes-recv".into(), recv as f64 / dt);
        out.insert("bytes-sent".into(), sent as f64 / dt);
        let disks = DiskCounters::read();
        out.insert(
            "disk-read".into(),
            disks.read_bytes.saturating_sub(self.disks.read_bytes) as f64 / dt,
        );
        out.insert(
            "disk-write".into(),
            disks.write_bytes.saturating_sub(self.disks.write_bytes) as f64 / dt,
        );
        self.disks = disks;
        if let Some(conns) = connections() {
            out.insert("conn-all".into(), conns);
        }
        out
    }
}

/// Every TCP and UDP socket of the host (IPv4 and IPv6, TIME_WAIT included), as psutil's
/// `net_connections()` counts them. From `/proc/net/sockstat{,6}`: reading `/proc/net/tcp`
/// walks the kernel's whole hash table and costs milliseconds.
fn connections() -> Option<f64> {
    let mut total = 0.0;
    for file in ["/proc/net/sockstat", "/proc/net/sockstat6"] {
        let text = std::fs::read_to_string(file).ok()?;
        for line in text.lines() {
            let Some((proto, rest)) = line.split_once(':') else {
                continue;
            };
            if !matches!(proto, "TCP" | "TCP6" | "UDP" | "UDP6") {
                continue;
            }
            let words: Vec<&str> = rest.split_whitespace().collect();
            for pair in words.chunks(2) {
                if let [key, value] = pair
                    && (*key == "inuse" || (*key == "tw" && proto == "TCP"))
                {
                    total += value.parse::<f64>().ok()?;
                }
            }
        }
    }
    Some(total)
}
