//! The documentation stands alone and stays true: no file a user reads points outside the
//! repository; the suite-format reference names every key of the schema; the criteria
//! reference names every subject and expression function; the CI recipes parse as the CI
//! systems read them.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The README, docs, examples, benches and tests never need the folder beside the clone: a clone is
/// complete. (Only `.ci/run` reads the compat corpus there, as an extra check.)
#[test]
fn nothing_points_outside_the_repository() {
    let mut files = vec![root().join("README.md")];
    for dir in ["docs", "suites", "bench", "tests", "src"] {
        walk(&root().join(dir), &mut files);
    }
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        assert!(
            !text.contains(&["..", "/shared"].concat()),
            "{} points outside the repository",
            path.display()
        );
    }
}

/// Every key the suite schema accepts is in the suite-format or criteria reference, as `key`.
#[test]
fn the_suite_reference_names_every_key() {
    let doc = read("docs/suite-format.md") + &read("docs/criteria.md");
    let schema: serde_json::Value =
        serde_json::from_str(&read("schemas/suite.schema.json")).unwrap();
    let mut keys: Vec<String> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for (_, def) in schema["definitions"].as_object().unwrap() {
        if let Some(props) = def["properties"].as_object() {
            keys.extend(props.keys().cloned());
        }
    }
    keys.sort();
    keys.dedup();
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| {
            !doc.contains(&format!("`{k}`"))
                && !doc.contains(&format!("`{k}:"))
                && !doc.contains(&format!("{k}: "))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/suite-format.md does not name {missing:?}"
    );
}

/// Every criteria subject and `expr:` function is in docs/criteria.md.
#[test]
fn the_criteria_reference_names_every_subject_and_function() {
    let doc = read("docs/criteria.md");
    for (name, _) in perfgate::criteria::grammar::KPI_NAMES {
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/criteria.md lacks `{name}`"
        );
    }
    for (name, _) in perfgate::criteria::grammar::FIGURES {
        assert!(
            doc.contains(&format!("`capacity.{name}`")),
            "docs/criteria.md lacks `capacity.{name}`"
        );
    }
    for name in perfgate::criteria::eval::EXPR_FUNCTIONS {
        assert!(
            doc.contains(&format!("`{name}(")),
            "docs/criteria.md lacks `{name}(`"
        );
    }
}

/// Every monitoring metric name is in docs/metrics.md, spelled out or as `<agg>_<group>_<m>`.
#[test]
fn the_metrics_reference_names_every_metric() {
    use perfgate::monitor::names::{
        HOST_METRICS, PROCESS_COUNTS, PROCESS_MEASUREMENTS, SYSTEM_METRICS,
    };
    let doc = read("docs/metrics.md");
    for name in HOST_METRICS
        .iter()
        .chain(PROCESS_COUNTS)
        .chain(PROCESS_MEASUREMENTS)
        .chain(SYSTEM_METRICS)
    {
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/metrics.md lacks `{name}`"
        );
    }
}

/// The CI recipes are valid YAML with the structure GitHub Actions and GitLab read: a
/// workflow's jobs have steps that run perfgate and publish junit.xml and the step summary;
/// GitLab's job declares `artifacts:reports:junit`. The Jenkinsfile publishes with `junit`.
#[test]
fn the_ci_recipes_parse_as_ci_systems_read_them() {
    let gh: serde_json::Value =
        serde_saphyr::from_str(&read("docs/ci/github-actions.yml")).unwrap();
    assert!(gh["on"].is_object(), "a workflow has triggers");
    let steps = gh["jobs"]["perfgate"]["steps"].as_array().unwrap();
    assert!(
        steps
            .iter()
            .all(|s| s["uses"].is_string() || s["run"].is_string())
    );
    let run = steps
        .iter()
        .find_map(|s| s["run"].as_str().filter(|r| r.starts_with("perfgate run")))
        .unwrap();
    assert!(
        run.contains("--summary-md \"$GITHUB_STEP_SUMMARY\""),
        "{run}"
    );
    let junit = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("mikepenz/action-junit-report@"))
        })
        .unwrap();
    assert_eq!(junit["if"], "always()");
    assert_eq!(junit["with"]["report_paths"], "reports/ci/junit.xml");

    let gl: serde_json::Value = serde_saphyr::from_str(&read("docs/ci/gitlab-ci.yml")).unwrap();
    let job = &gl["perfgate"];
    assert_eq!(job["stage"], "performance");
    assert_eq!(job["artifacts"]["reports"]["junit"], "reports/ci/junit.xml");
    assert_eq!(job["artifacts"]["when"], "always");
    assert!(
        job["script"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.contains("perfgate run")))
    );

    let jenkins = read("docs/ci/Jenkinsfile");
    assert!(jenkins.contains("junit testResults: 'reports/ci/junit.xml'"));
    assert!(jenkins.contains("returnStatus: true"));
    let open = jenkins.matches('{').count();
    assert_eq!(open, jenkins.matches('}').count(), "balanced braces");
}
