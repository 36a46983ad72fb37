//! A history directory: one results.json per run, named `<UTC start>__<commit>.json` so that
//! names sort by time, the last N kept. Baselines are found in it (or in a single file).

use std::path::{Path, PathBuf};

use crate::report::model::{RunReport, SuiteReport};

use super::{CompareError, load, load_light};

/// Runs kept by default.
pub const DEFAULT_KEEP: usize = 30;

/// The file name of `run` in a history: its start time (sortable), then its commit.
pub fn file_name(run: &RunReport) -> String {
    let when: String = run
        .started_at
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let commit: String = run
        .meta
        .git_commit
        .as_deref()
        .unwrap_or("no-commit")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect();
    format!("{when}__{commit}.json")
}

/// A run as people tell runs apart: its file name without `.json`.
pub fn run_name(path: &Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}

/// Stores `run` in `dir` (created if needed) and removes the oldest runs beyond `keep`.
/// Returns the file written.
pub fn store(dir: &Path, run: &RunReport, keep: usize) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file_name(run));
    crate::report::files::results_json(&path, run)?;
    let runs = runs(dir)?;
    let excess = runs.len().saturating_sub(keep.max(1));
    for old in &runs[..excess] {
        std::fs::remove_file(old)?;
    }
    Ok(path)
}

/// The runs of a history, oldest first.
pub fn runs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.contains("__"))
                && std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file())
        })
        .collect();
    runs.sort();
    Ok(runs)
}

/// The baseline of `suite`: the same suite (name and environment) in `source`, a
/// results.json or a history directory. In a history, the latest run before `before` (the
/// run being judged, by its start time) that has it; with `rev`, the latest whose commit
/// starts with it. `Ok(None)`: no run has it.
pub fn baseline(
    source: &Path,
    suite: &SuiteReport,
    before: &str,
    rev: Option<&str>,
) -> Result<Option<(PathBuf, SuiteReport)>, CompareError> {
    let same = Same {
        name: &suite.name,
        environment: suite.identity.environment.as_deref(),
    };
    Ok(earlier(source, same, before, rev, 1)?
        .runs
        .into_iter()
        .next())
}

/// Earlier runs of a suite, and the files of a history that could not be read.
#[derive(Debug, Default)]
pub struct Earlier {
    /// The latest first.
    pub runs: Vec<(PathBuf, SuiteReport)>,
    /// Files of the history skipped because they are not a readable results.json (a
    /// damaged or foreign file), and why: said, never silently dropped.
    pub skipped: Vec<String>,
}

/// Which suite a baseline is: the same name and environment.
#[derive(Clone, Copy, Debug)]
pub struct Same<'a> {
    pub name: &'a str,
    pub environment: Option<&'a str>,
}

/// Up to `limit` earlier runs of `suite` in `source`, the latest first (see [`baseline`]).
pub fn earlier(
    source: &Path,
    suite: Same<'_>,
    before: &str,
    rev: Option<&str>,
    limit: usize,
) -> Result<Earlier, CompareError> {
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    let candidates = if source.is_dir() {
        let mut runs = runs(source).map_err(|e| CompareError::Read {
            path: source.to_owned(),
            source: e,
        })?;
        runs.reverse();
        runs
    } else {
        vec![source.to_owned()]
    };
    for path in candidates {
        // Every run is read without its timelines (what a history spread and a trend need);
        // the baseline, the latest that matches, is read whole (its seconds are the noise).
        let run = match load_light(&path) {
            Ok(run) => run,
            // A history may hold runs of an older perfgate: they are skipped, not fatal.
            Err(CompareError::Version { .. }) if source.is_dir() => continue,
            // A damaged file does not take the history with it; it is named.
            Err(e @ (CompareError::Parse { .. } | CompareError::Read { .. }))
                if source.is_dir() =>
            {
                skipped.push(e.to_string());
                continue;
            }
            Err(e) => return Err(e),
        };
        if source.is_dir() && run.started_at.as_str() >= before {
            continue;
        }
        if let Some(rev) = rev
            && !run
                .meta
                .git_commit
                .as_deref()
                .is_some_and(|c| c.starts_with(rev))
        {
            continue;
        }
        let is_same = |s: &SuiteReport| {
            s.name == suite.name && s.identity.environment.as_deref() == suite.environment
        };
        let same = if found.is_empty() && run.suites.iter().any(is_same) {
            load(&path)?.suites.into_iter().find(is_same)
        } else {
            run.suites.into_iter().find(is_same)
        };
        if let Some(same) = same {
            found.push((path, same));
            if found.len() >= limit {
                break;
            }
        }
    }
    Ok(Earlier {
        runs: found,
        skipped,
    })
}
