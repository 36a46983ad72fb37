//! The process-tree sampler behind `server` and MMS `ServerLocalClient` sources.
//!
//! Each sample finds the tree afresh (children come and go), refreshes only those processes
//! in one persistent [`sysinfo::System`] (CPU percent needs two readings of the same process),
//! and reads from `/proc` what sysinfo does not give (user/system/iowait times, syscall
//! counts, descriptors). It then aggregates as MMS does: `frontend_<m>`,
//! `{sum,avg,min,max}_{workers,all}_<m>`, the counts and the system metrics.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use regex::Regex;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::names::PROCESS_MEASUREMENTS;
use super::system::DiskCounters;

/// How to find the process at the top of the tree (the "frontend").
#[derive(Clone, Debug)]
pub enum Root {
    /// A process perfgate started.
    Pid(u32),
    /// The pid written in a file (a daemon); read again on every sample.
    PidFile(PathBuf),
    /// The oldest process whose command line matches (a daemon without a pid file).
    Match(Regex),
}

/// One process's measurements, in [`PROCESS_MEASUREMENTS`] order.
type Measured = [f64; 13];

#[derive(Debug)]
pub struct ProcessTree {
    root: Root,
    /// The process that started the server (perfgate's guard): orphans are reparented to it.
    reaper: Option<u32>,
    workers: Option<Regex>,
    system: System,
    /// Processes read at the previous sample: only they have a CPU percent yet.
    seen: std::collections::HashSet<u32>,
    ticks: f64,
    disks: DiskCounters,
}

/// A snapshot of `/proc/<pid>/stat` for every process.
#[derive(Clone, Copy, Debug)]
struct Brief {
    ppid: u32,
    pgrp: u32,
    zombie: bool,
    start: u64,
}

impl ProcessTree {
    pub fn new(root: Root, reaper: Option<u32>, workers: Option<Regex>) -> Self {
        Self {
            root,
            reaper,
            workers,
            system: System::new(),
            seen: std::collections::HashSet::new(),
            ticks: procfs::ticks_per_second() as f64,
            disks: DiskCounters::default(),
        }
    }

    /// The pid at the top of the tree now, if there is one.
    fn root_pid(&self, table: &HashMap<u32, Brief>) -> Option<u32> {
        match &self.root {
            Root::Pid(pid) => Some(*pid),
            Root::PidFile(path) => std::fs::read_to_string(path).ok()?.trim().parse().ok(),
            Root::Match(re) => match_in(table, re, self.reaper),
        }
    }

    /// Every metric this source can give now, by name. Empty when the root is not running.
    pub fn sample(&mut self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        let table = process_table();
        let Some(root) = self.root_pid(&table).filter(|p| table.contains_key(p)) else {
            return out;
        };
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for (pid, b) in &table {
            children.entry(b.ppid).or_default().push(*pid);
        }
        let mut tree = vec![root];
        let mut i = 0;
        while i < tree.len() {
            if let Some(kids) = children.get(&tree[i]) {
                tree.extend(kids.iter().copied());
            }
            i += 1;
        }
        let in_tree: std::collections::HashSet<u32> = tree.iter().copied().collect();
        let group = table[&root].pgrp;
        // Orphans: processes of the server that lost their parent: adopted by perfgate's
        // guard (a subreaper) or by init, still in the server's process group.
        let orphans = table
            .iter()
            .filter(|(pid, b)| {
                !in_tree.contains(pid)
                    && Some(**pid) != self.reaper
                    && (Some(b.ppid) == self.reaper || (b.ppid == 1 && b.pgrp == group))
            })
            .count();
        let zombies = tree.iter().filter(|p| table[p].zombie).count();

        let pids: Vec<Pid> = tree.iter().map(|p| Pid::from_u32(*p)).collect();
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&pids),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        if self.system.total_memory() == 0 {
            self.system.refresh_memory();
        }
        let total_memory = self.system.total_memory().max(1) as f64;

        // Zombies are not workers (after a scale-down MMS's agent counts only the live ones).
        let worker_pids: std::collections::HashSet<u32> = tree
            .iter()
            .copied()
            .filter(|p| *p != root && !table[p].zombie && self.is_worker(*p))
            .collect();
        let total_workers = worker_pids.len();
        let mut frontend = None;
        let mut workers = Vec::new();
        let mut all = Vec::new();
        for &pid in &tree {
            if table[&pid].zombie {
                continue;
            }
            let Some(m) = self.measure(pid, total_memory) else {
                continue;
            };
            if pid == root {
                frontend = Some(m);
            } else if worker_pids.contains(&pid) {
                workers.push(m);
            }
            all.push(m);
        }

        self.seen = tree.iter().copied().collect();
        for (i, name) in PROCESS_MEASUREMENTS.iter().enumerate() {
            if let Some(f) = frontend.filter(|f| !f[i].is_nan()) {
                out.insert(format!("frontend_{name}"), f[i]);
            }
            for (group, set) in [("workers", &workers), ("all", &all)] {
                // A process with no value yet (CPU percent at its first reading) is left out;
                // when none has one, the metric has no value this time.
                if !set.is_empty() && set.iter().all(|m| m[i].is_nan()) {
                    continue;
                }
                let values: Vec<f64> = set.iter().map(|m| m[i]).filter(|v| !v.is_nan()).collect();
                let sum: f64 = values.iter().sum();
                out.insert(format!("sum_{group}_{name}"), sum);
                if !values.is_empty() {
                    out.insert(format!("avg_{group}_{name}"), sum / values.len() as f64);
                    out.insert(
                        format!("min_{group}_{name}"),
                        values.iter().copied().fold(f64::INFINITY, f64::min),
                    );
                    out.insert(
                        format!("max_{group}_{name}"),
                        values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    );
                }
            }
        }
        out.insert("total_processes".into(), (tree.len() - zombies) as f64);
        out.insert("total_workers".into(), total_workers as f64);
        out.insert("orphans".into(), orphans as f64);
        out.insert("zombies".into(), zombies as f64);
        self.system.refresh_memory();
        out.extend(super::system::system_metrics(&self.system, &mut self.disks));
        out
    }

    fn is_worker(&self, pid: u32) -> bool {
        let Some(re) = &self.workers else {
            return true;
        };
        procfs::process::Process::new(pid as i32)
            .and_then(|p| p.cmdline())
            .is_ok_and(|cmd| re.is_match(&cmd.join(" ")))
    }

    fn measure(&self, pid: u32, total_memory: f64) -> Option<Measured> {
        let proc_ = procfs::process::Process::new(pid as i32).ok()?;
        let stat = proc_.stat().ok()?;
        let sys = self.system.process(Pid::from_u32(pid));
        let rss = sys.map_or(stat.rss * procfs::page_size(), |p| p.memory()) as f64;
        let vms = sys.map_or(stat.vsize, |p| p.virtual_memory()) as f64;
        // The first reading of a process has no CPU percent yet: unknown, not 0.
        let cpu = match sys {
            Some(p) if self.seen.contains(&pid) => f64::from(p.cpu_usage()),
            _ => f64::NAN,
        };
        let io = proc_.io().ok();
        // The entries of /proc/PID/fd, as MMS's agent (psutil's num_fds) and `ls` count them;
        // procfs's fast path (the directory's st_size) can differ from that count.
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count) as f64;
        Some([
            cpu,
            stat.utime as f64 / self.ticks,
            stat.stime as f64 / self.ticks,
            stat.delayacct_blkio_ticks.unwrap_or(0) as f64 / self.ticks,
            rss / total_memory * 100.0,
            rss,
            vms,
            io.as_ref().map_or(0.0, |i| i.syscr as f64),
            io.as_ref().map_or(0.0, |i| i.syscw as f64),
            io.as_ref().map_or(0.0, |i| i.read_bytes as f64),
            io.as_ref().map_or(0.0, |i| i.write_bytes as f64),
            fds,
            stat.num_threads as f64,
        ])
    }
}

/// The oldest process whose command line matches `re` (not perfgate, not its guard).
pub fn find_match(re: &Regex, guard: Option<i32>) -> Option<u32> {
    match_in(
        &process_table(),
        re,
        guard.and_then(|g| u32::try_from(g).ok()),
    )
}

fn match_in(table: &HashMap<u32, Brief>, re: &Regex, guard: Option<u32>) -> Option<u32> {
    let own = std::process::id();
    let mut found: Option<(u64, u32)> = None;
    for (pid, brief) in table {
        if *pid == own || Some(*pid) == guard || brief.zombie {
            continue;
        }
        let Ok(cmd) = procfs::process::Process::new(*pid as i32).and_then(|p| p.cmdline()) else {
            continue;
        };
        if re.is_match(&cmd.join(" ")) && found.is_none_or(|(s, _)| brief.start < s) {
            found = Some((brief.start, *pid));
        }
    }
    found.map(|(_, pid)| pid)
}

/// Whether `pid` is `ancestor` or one of its descendants.
pub fn descends_from(pid: i32, ancestor: i32) -> bool {
    let mut pid = pid;
    for _ in 0..64 {
        if pid == ancestor {
            return true;
        }
        if pid <= 1 {
            return false;
        }
        match procfs::process::Process::new(pid).and_then(|p| p.stat()) {
            Ok(stat) => pid = stat.ppid,
            Err(_) => return false,
        }
    }
    false
}

/// pid → parent, group, zombie, start time, for every process (one read of each
/// `/proc/<pid>/stat`; no command lines, no memory maps).
fn process_table() -> HashMap<u32, Brief> {
    let mut table = HashMap::new();
    let Ok(all) = procfs::process::all_processes() else {
        return table;
    };
    for p in all.flatten() {
        let Ok(stat) = p.stat() else { continue };
        let (Ok(pid), Ok(ppid), Ok(pgrp)) = (
            u32::try_from(stat.pid),
            u32::try_from(stat.ppid),
            u32::try_from(stat.pgrp),
        ) else {
            continue;
        };
        table.insert(
            pid,
            Brief {
                ppid,
                pgrp,
                zombie: stat.state == 'Z',
                start: stat.starttime,
            },
        );
    }
    table
}
