//! Report files, each written atomically (temporary file + rename).

use std::path::Path;

use super::model::{LabelStats, PERCENTILES, RunReport, TimelineRow, level_name};
use crate::monitor::Reading;
use crate::suite::model::MonitorSource;

/// Writes through a temporary file in the same directory and renames it into place, so a
/// reader never sees a half-written report. Only a regular file (or nothing) is replaced: a
/// symlink, a device (`/dev/full`) or a FIFO at `path` is an error, never swapped for a file.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_file() => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "`{}` is not a regular file (a symlink, device or directory); refusing to replace it",
                    path.display()
                ),
            ));
        }
        _ => {}
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// A suite's directory under the run's: its name as one path component (anything but
/// letters, digits, `.`, `-` and `_` becomes `_`), so a crafted name never leaves `root`.
pub fn suite_dir(root: &Path, name: &str) -> std::path::PathBuf {
    let mut safe: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() || safe.chars().all(|c| c == '.') {
        safe = safe.replace('.', "_") + "_";
    }
    root.join(safe)
}

/// `relative` under `dir`, refused when it would leave it: absolute paths and `..` are
/// errors (a suite's report files stay in its artifacts directory).
pub fn inside(dir: &Path, relative: &str) -> std::io::Result<std::path::PathBuf> {
    use std::path::Component;
    let path = Path::new(relative);
    let mut out = dir.to_path_buf();
    for part in path.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "`{relative}` leaves the suite's artifacts directory; report paths are relative to it, without `..`"
                    ),
                ));
            }
        }
    }
    if out == dir {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{relative}` names no file"),
        ));
    }
    Ok(out)
}

pub fn results_json(path: &Path, report: &RunReport) -> std::io::Result<()> {
    // Compact: a long run's timeline is most of it.
    let mut text = serde_json::to_vec(report).map_err(std::io::Error::other)?;
    text.push(b'\n');
    write_atomically(path, &text)
}

/// `final_stats.csv` as Taurus's final-stats `dump-csv` writes it, column by column: `label`,
/// the KPIs in name order (`throughput` is the sample count, as in Taurus), `perc_<level>`,
/// `rc_<code>`; times in seconds with 5 decimals, a KPI without data as 0; one row per label,
/// then the overall row (label empty). `dropped` (the open model's shortfall) and `unfinished`
/// (cut in flight at the end) follow Taurus's columns, so scripts that read them by name are
/// unaffected.
pub fn final_stats_csv(path: &Path, labels: &[LabelStats]) -> std::io::Result<()> {
    let codes: std::collections::BTreeSet<&String> =
        labels.iter().flat_map(|l| l.rc.keys()).collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = [
        "label",
        "avg_ct",
        "avg_lt",
        "avg_rt",
        "bytes",
        "concurrency",
        "fail",
        "stdev_rt",
        "succ",
        "throughput",
    ]
    .map(str::to_owned)
    .to_vec();
    header.extend(
        PERCENTILES
            .iter()
            .map(|l| format!("perc_{}", level_name(*l))),
    );
    header.extend(codes.iter().map(|c| format!("rc_{c}")));
    header.push("dropped".to_owned());
    header.push("unfinished".to_owned());
    w.write_record(&header).map_err(std::io::Error::other)?;
    let secs = |ms: Option<f64>| format!("{:.5}", ms.unwrap_or(0.0) / 1000.0);
    let overall = labels.iter().filter(|l| l.label.is_empty());
    for l in labels.iter().filter(|l| !l.label.is_empty()).chain(overall) {
        let mut row = vec![
            l.label.clone(),
            secs(l.avg_ct_ms),
            secs(l.avg_lt_ms),
            secs(l.avg_rt_ms),
            l.bytes.to_string(),
            l.concurrency.to_string(),
            l.fail.to_string(),
            secs(l.stdev_rt_ms),
            l.succ.to_string(),
            l.hits.to_string(),
        ];
        row.extend(
            PERCENTILES
                .iter()
                .map(|p| secs(l.percentiles_ms.get(&level_name(*p)).copied())),
        );
        row.extend(
            codes
                .iter()
                .map(|c| l.rc.get(*c).copied().unwrap_or(0).to_string()),
        );
        row.push(l.dropped.to_string());
        row.push(l.unfinished.to_string());
        w.write_record(&row).map_err(std::io::Error::other)?;
    }
    write_atomically(
        path,
        &w.into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?,
    )
}

/// `timeline.csv`: one row per second and label.
pub fn timeline_csv(path: &Path, rows: &[TimelineRow]) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "second",
        "seconds",
        "label",
        "hits",
        "fail",
        "bytes",
        "dropped",
        "served",
        "unfinished",
        "concurrency",
        "avg_rt_ms",
        "p50_ms",
        "p90_ms",
        "p99_ms",
    ])
    .map_err(std::io::Error::other)?;
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.3}"));
    for r in rows {
        w.write_record([
            r.second.to_string(),
            r.seconds.to_string(),
            r.label.clone(),
            r.hits.to_string(),
            r.fail.to_string(),
            r.bytes.to_string(),
            r.dropped.to_string(),
            r.served.to_string(),
            r.unfinished.to_string(),
            r.concurrency.to_string(),
            opt(r.avg_rt_ms),
            opt(r.p50_ms),
            opt(r.p90_ms),
            opt(r.p99_ms),
        ])
        .map_err(std::io::Error::other)?;
    }
    write_atomically(
        path,
        &w.into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?,
    )
}

/// `effective.yml`: the merged, interpolated suite that ran.
/// Writes `effective.yml`; returns the YAML.
pub fn effective_yml(path: &Path, effective: &serde_json::Value) -> std::io::Result<String> {
    let text =
        serde_saphyr::to_string(effective).map_err(|e| std::io::Error::other(e.to_string()))?;
    write_atomically(
        path,
        format!(
            "# The suite as perfgate ran it: every layer merged, variables substituted, secrets redacted.\n{text}"
        )
        .as_bytes(),
    )?;
    Ok(text)
}

/// The readings of the monitoring sources with `logging: true`, for `metrics.csv`.
#[derive(Debug, Default)]
pub struct MetricsLog {
    /// (source, metric) per column, in declared order.
    columns: Vec<(String, String)>,
    /// Unix time and a value per column.
    rows: Vec<(f64, Vec<Option<f64>>)>,
}

impl MetricsLog {
    pub fn new(sources: &[MonitorSource]) -> Self {
        let columns = sources
            .iter()
            .filter(|s| s.logging)
            .flat_map(|s| s.metrics.iter().map(|m| (s.name.clone(), m.clone())))
            .collect();
        Self {
            columns,
            rows: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Keeps a reading's logged metrics as one row.
    pub fn add(&mut self, reading: &Reading) {
        if !self.columns.iter().any(|(s, _)| *s == reading.source) {
            return;
        }
        let row = self
            .columns
            .iter()
            .map(|(source, metric)| {
                (*source == reading.source)
                    .then(|| {
                        reading
                            .values
                            .iter()
                            .find(|(m, _)| m == metric)
                            .map(|v| v.1)
                    })
                    .flatten()
            })
            .collect();
        self.rows.push((reading.ts, row));
    }
}

/// `metrics.csv`: `ts,<metric>...` in declared order (`source/metric` when several sources
/// log), one row per reading; an empty cell is a metric the source could not read then.
pub fn metrics_csv(path: &Path, log: &MetricsLog) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let several = log
        .columns
        .iter()
        .any(|(s, _)| log.columns.first().is_some_and(|(f, _)| f != s));
    let header = std::iter::once("ts".to_owned()).chain(log.columns.iter().map(|(s, m)| {
        if several {
            format!("{s}/{m}")
        } else {
            m.clone()
        }
    }));
    w.write_record(header).map_err(std::io::Error::other)?;
    for (ts, values) in &log.rows {
        let cells = std::iter::once(format!("{ts:.3}")).chain(
            values
                .iter()
                .map(|v| v.map_or(String::new(), |v| format!("{v}"))),
        );
        w.write_record(cells).map_err(std::io::Error::other)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    write_atomically(path, &bytes)
}
