//! Reports: every format renders the one serialisable [`RunReport`].
//!
//! [`model`] builds the report from the metrics store; [`files`] writes `results.json`,
//! `final_stats.csv` (Taurus dump-csv columns), `timeline.csv` and `effective.yml`; [`junit`]
//! the JUnit XML, [`html`] the HTML report, [`summary`] `summary.md`, [`dump`] the Jenkins
//! Performance Plugin XML. [`write_all`] writes every run-level and per-suite report, each
//! atomically, from a `RunReport` alone, so `perfgate report` re-renders them from
//! `results.json`. [`redact`] keeps secrets out of all of them. Nothing here measures or
//! runs anything.

pub mod bottleneck;
pub mod capacity;
pub mod console;
pub mod dump;
pub mod files;
pub mod html;
pub mod junit;
pub mod measures;
pub mod model;
pub mod redact;
pub mod summary;
pub mod versus;

use std::path::{Path, PathBuf};

pub use model::RunReport;

/// Where the run-level reports go; `None`: the default name in the artifacts directory.
#[derive(Clone, Debug, Default)]
pub struct Destinations {
    pub junit: Option<PathBuf>,
    pub html: Option<PathBuf>,
    pub json: Option<PathBuf>,
    /// Appended to, as `$GITHUB_STEP_SUMMARY` expects (`summary.md` is written as well).
    pub summary_md: Option<PathBuf>,
    /// What `summary_md` held before this run: every write keeps it and appends this run's
    /// summary, so rewriting after each suite never repeats it.
    pub summary_md_before: String,
}

/// Writes every report of `run` under `dir`: `results.json`, `junit.xml`, `report.html`,
/// `summary.md`, and per suite `xunit.xml` (or its `junit-xml` `filename`),
/// `final_stats.csv`, `timeline.csv` and the `final-stats` dumps it asks for.
pub fn write_all(run: &RunReport, dir: &Path, to: &Destinations) -> std::io::Result<()> {
    let at = |given: &Option<PathBuf>, name: &str| given.clone().unwrap_or_else(|| dir.join(name));
    files::results_json(&at(&to.json, "results.json"), run)?;
    let xml = junit::to_xml;
    files::write_atomically(
        &at(&to.junit, "junit.xml"),
        xml(&junit::run_report(run))?.as_bytes(),
    )?;
    for suite in &run.suites {
        let suite_dir = files::suite_dir(dir, &suite.name);
        let default = [model::JunitOutput {
            filename: "xunit.xml".to_owned(),
            sample_labels: false,
        }];
        let junits = if suite.outputs.junit.is_empty() {
            &default[..]
        } else {
            &suite.outputs.junit[..]
        };
        for out in junits {
            files::write_atomically(
                &files::inside(&suite_dir, &out.filename)?,
                xml(&junit::suite_report(suite, out.sample_labels))?.as_bytes(),
            )?;
        }
        // Written here, from the redacted report, so `perfgate report` renders them too.
        if suite.load_started_at.is_some() {
            files::final_stats_csv(&suite_dir.join("final_stats.csv"), &suite.labels)?;
            files::timeline_csv(&suite_dir.join("timeline.csv"), &suite.timeline)?;
        }
        if let Some(csv) = &suite.outputs.dump_csv {
            files::final_stats_csv(&files::inside(&suite_dir, csv)?, &suite.labels)?;
        }
        if let Some(xml_path) = &suite.outputs.dump_xml {
            files::write_atomically(
                &files::inside(&suite_dir, xml_path)?,
                &dump::final_stats_xml(suite)?,
            )?;
        }
    }
    let markdown = summary::markdown(run);
    files::write_atomically(&dir.join("summary.md"), markdown.as_bytes())?;
    if let Some(path) = &to.summary_md {
        let mut text = to.summary_md_before.clone();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&markdown);
        files::write_atomically(path, text.as_bytes())?;
    }
    let page = html::render(run).map_err(|e| std::io::Error::other(chain(&e)))?;
    files::write_atomically(&at(&to.html, "report.html"), page.as_bytes())?;
    Ok(())
}

/// An error and its causes on one line: "failed to render the report: ...: ...".
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
