//! What the element tests share: a suite text through the whole loader.

use crate::suite::discover::Discovery;
use crate::suite::load::{LoadOptions, load};
use crate::suite::model::Suite;

/// Loads `yaml` as a suite file; returns the suite (when valid) and every message, errors
/// and warnings alike.
pub(crate) fn check(yaml: &str) -> (Option<Suite>, Vec<String>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("suite.yaml");
    std::fs::write(&path, yaml).expect("the suite is written");
    let loaded = load(
        &Discovery {
            suites: vec![path],
            ..Discovery::default()
        },
        &LoadOptions {
            artifacts_root: dir.path().join("reports"),
            ..LoadOptions::default()
        },
    );
    let messages = loaded
        .diagnostics
        .iter()
        .map(|d| d.message.clone())
        .collect();
    (loaded.suites.into_iter().next(), messages)
}

/// A minimal valid suite around `extra` top-level YAML.
pub(crate) fn suite_with(extra: &str) -> String {
    format!(
        "execution: [{{scenario: s, concurrency: 1, hold-for: 1s}}]\nscenarios: {{s: {{requests: [{{url: 'http://127.0.0.1:9/x', label: x}}]}}}}\n{extra}"
    )
}
