//! Trends across a history: each KPI of each suite and label as a series over the runs, and
//! its change points (E-divisive means, [`crate::stats::change_points`]), with the run each
//! change began in, its size and its confidence. Reads [`RunReport`]s; writes nothing.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::report::model::{RunReport, SuiteReport};
use crate::stats::{change_points, median, seed_of};

use super::{CompareError, Kpi, history, load_light};

/// Change points need at least this many earlier runs (and tonight's).
pub const MIN_RUNS: usize = 6;
/// The permutation test's significance level.
pub const ALPHA: f64 = 0.05;
/// Shuffles per permutation test.
const PERMUTATIONS: usize = 199;

/// One run of a history, as a trend shows it.
#[derive(Clone, Debug, Serialize)]
pub struct RunPoint {
    /// Its file name without `.json` (`<UTC start>__<commit>`).
    pub run: String,
    pub started_at: String,
    pub commit: Option<String>,
}

/// One KPI of one label over the runs (`None` where a run lacks it).
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    pub suite: String,
    pub environment: Option<String>,
    pub label: String,
    pub kpi: Kpi,
    pub values: Vec<Option<f64>>,
}

/// A change point of a KPI's series.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    pub suite: String,
    pub label: String,
    pub kpi: Kpi,
    /// The run the change began in (index into the runs, oldest first) and its name.
    pub index: usize,
    pub run: String,
    /// Medians of the runs before (since the previous change) and from it (until the next).
    pub before: f64,
    pub after: f64,
    /// `after` against `before`: percent (percentage points for the error rate).
    pub change: f64,
    /// 1 − the permutation test's p-value.
    pub confidence: f64,
    /// Whether the change made the KPI worse.
    pub worse: bool,
}

/// A history read for trends.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Trends {
    /// Oldest first.
    pub runs: Vec<RunPoint>,
    pub series: Vec<Series>,
    pub changes: Vec<Change>,
}

/// A history's runs, oldest first, each with its file.
pub type Runs = Vec<(PathBuf, RunReport)>;

/// Reads every run of a history directory, oldest first; runs of older formats are left
/// out, damaged files too (returned, with why, to be said).
pub fn read(dir: &Path) -> Result<(Runs, Vec<String>), CompareError> {
    let paths = history::runs(dir).map_err(|source| CompareError::Read {
        path: dir.to_owned(),
        source,
    })?;
    let (mut runs, mut skipped) = (Vec::new(), Vec::new());
    for path in paths {
        match load_light(&path) {
            Ok(run) => runs.push((path, run)),
            Err(CompareError::Version { .. }) => continue,
            Err(e) => skipped.push(e.to_string()),
        }
    }
    Ok((runs, skipped))
}

/// The trends of `runs` (oldest first): a series per suite (and environment), label and KPI,
/// and the change points of those with at least [`MIN_RUNS`] values.
pub fn trends(runs: &[(PathBuf, RunReport)], min_change: f64) -> Trends {
    let points = runs
        .iter()
        .map(|(path, run)| RunPoint {
            run: history::run_name(path),
            started_at: run.started_at.clone(),
            commit: run.meta.git_commit.clone(),
        })
        .collect::<Vec<_>>();
    let mut keys: Vec<(String, Option<String>, String)> = Vec::new();
    for (_, run) in runs {
        for suite in &run.suites {
            for label in &suite.labels {
                let key = (
                    suite.name.clone(),
                    suite.identity.environment.clone(),
                    label.label.clone(),
                );
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
    }
    let mut out = Trends {
        runs: points,
        ..Trends::default()
    };
    for (suite, environment, label) in keys {
        for kpi in Kpi::ALL {
            let values: Vec<Option<f64>> = runs
                .iter()
                .map(|(_, run)| {
                    let s = same_suite(run, &suite, environment.as_deref())?;
                    kpi.whole(s.labels.iter().find(|l| l.label == label)?)
                })
                .collect();
            let series = Series {
                suite: suite.clone(),
                environment: environment.clone(),
                label: label.clone(),
                kpi,
                values,
            };
            out.changes.extend(changes(&series, &out.runs, min_change));
            out.series.push(series);
        }
    }
    out
}

fn same_suite<'a>(
    run: &'a RunReport,
    name: &str,
    environment: Option<&str>,
) -> Option<&'a SuiteReport> {
    run.suites
        .iter()
        .find(|s| s.name == name && s.identity.environment.as_deref() == environment)
}

/// The change points of one series at least `min_change` in size (percent, points for the
/// error rate).
pub fn changes(series: &Series, runs: &[RunPoint], min_change: f64) -> Vec<Change> {
    // The runs that have the KPI, and where they are.
    let (at, values): (Vec<usize>, Vec<f64>) = series
        .values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .unzip();
    if values.len() < MIN_RUNS {
        return Vec::new();
    }
    let seed = seed_of(&[&series.suite, &series.label, series.kpi.name()]);
    let found = change_points(&values, ALPHA, PERMUTATIONS, seed);
    let mut bounds: Vec<usize> = vec![0];
    bounds.extend(found.iter().map(|c| c.index));
    bounds.push(values.len());
    let mut out = Vec::new();
    for (k, cp) in found.iter().enumerate() {
        let (from, to) = (bounds[k], bounds[k + 2]);
        let before = median(&mut values[from..cp.index].to_vec());
        let after = median(&mut values[cp.index..to].to_vec());
        let change = match series.kpi {
            Kpi::ErrorRate => after - before,
            _ if before != 0.0 => (after - before) / before.abs() * 100.0,
            _ => continue,
        };
        if change.abs() < min_change {
            continue;
        }
        let worse = if series.kpi.higher_is_worse() {
            change > 0.0
        } else {
            change < 0.0
        };
        let index = at[cp.index];
        out.push(Change {
            suite: series.suite.clone(),
            label: series.label.clone(),
            kpi: series.kpi,
            index,
            run: runs.get(index).map(|r| r.run.clone()).unwrap_or_default(),
            before,
            after,
            change,
            confidence: 1.0 - cp.p_value,
            worse,
        });
    }
    out
}
