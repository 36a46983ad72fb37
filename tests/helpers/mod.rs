//! What the end-to-end tests share.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `tests/helpers/fakeserver.py`, a server that misbehaves on demand (after N requests, not
/// after a time, so it misbehaves during the load however busy the machine is).
#[allow(dead_code, reason = "not every test binary starts the fake server")]
pub fn fakeserver() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/fakeserver.py")
}

/// Every `*.yaml` and `*.yml` file under `dir`, sorted.
#[allow(dead_code, reason = "not every test binary reads fixtures")]
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("a readable fixture folder") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// Runs perfgate in `dir` (also its TMPDIR, where MMS pid files go); returns the exit code
/// and stdout followed by stderr.
#[allow(dead_code, reason = "not every test binary uses it")]
pub fn perfgate_in(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("TMPDIR", dir)
        .output()
        .expect("perfgate runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Per-suite counts of a JUnit file: (name, tests, failures, errors, skipped).
pub type SuiteCounts = (String, u64, u64, u64, u64);

/// Checks a JUnit XML file as CI systems read it, and returns its per-suite counts:
///
/// - against the rules of the Jenkins xunit-plugin's `junit-10.xsd` (restated here: which
///   elements may hold which, which attributes each may carry, which are required, the
///   number format of `time`);
/// - parsed by junitparser and junit2html (Python) and xunit-viewer (Node), which must agree
///   with the file's own counts. Each consumer is used when installed, and required when `CI`
///   is set (`.ci/run` installs them; xunit-viewer is found through `PERFGATE_XUNIT_VIEWER`).
#[allow(dead_code, reason = "not every test binary reads JUnit")]
pub fn check_junit(path: &Path) -> Vec<SuiteCounts> {
    let xml = std::fs::read_to_string(path).expect("the JUnit file exists");
    let counts = junit10(&xml)
        .unwrap_or_else(|e| panic!("{}: not junit-10.xsd: {e}\n{xml}", path.display()));
    let ci = std::env::var_os("CI").is_some();
    let as_counts = |v: &serde_json::Value| -> Vec<SuiteCounts> {
        v.as_array()
            .expect("a list of suites")
            .iter()
            .map(|s| {
                let n = |k: &str| s[k].as_u64().expect("a count");
                (
                    s["name"].as_str().expect("a name").to_owned(),
                    n("tests"),
                    n("failures"),
                    n("errors"),
                    n("skipped"),
                )
            })
            .collect()
    };
    let helpers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/junit");
    let out = Command::new("python3")
        .arg(helpers.join("junit_counts.py"))
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}: a Python JUnit reader failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let python: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // junit2html has one "failed" outcome for failures and errors.
    let merged: Vec<SuiteCounts> = counts
        .iter()
        .map(|(n, t, f, e, s)| (n.clone(), *t, f + e, 0, *s))
        .collect();
    for (tool, expected) in [("junitparser", &counts), ("junit2html", &merged)] {
        match python.get(tool) {
            Some(v) => assert_eq!(
                &as_counts(v),
                expected,
                "{tool} reads {} differently",
                path.display()
            ),
            None => assert!(!ci, "{tool} is not installed (pip install {tool})"),
        }
    }
    match std::env::var_os("PERFGATE_XUNIT_VIEWER") {
        Some(dir) => {
            let out = Command::new("node")
                .arg(helpers.join("xunit_viewer_counts.mjs"))
                .arg(dir)
                .arg(path)
                .output()
                .expect("node runs");
            assert!(
                out.status.success(),
                "xunit-viewer failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
            assert_eq!(
                as_counts(&v),
                counts,
                "xunit-viewer reads {} differently",
                path.display()
            );
        }
        None => assert!(
            !ci,
            "PERFGATE_XUNIT_VIEWER does not name an xunit-viewer install"
        ),
    }
    counts
}

/// The rules of `junit-10.xsd`; returns the per-suite counts of testcases and their outcomes,
/// after checking that each suite's attributes state them.
fn junit10(xml: &str) -> Result<Vec<SuiteCounts>, String> {
    use quick_xml::events::Event;
    let allowed = |element: &str| -> Option<(&[&str], &[&str], &[&str])> {
        // (attributes, required attributes, child elements)
        Some(match element {
            "testsuites" => (
                &["name", "time", "tests", "failures", "errors"],
                &[],
                &["testsuite"],
            ),
            "testsuite" => (
                &[
                    "name",
                    "tests",
                    "failures",
                    "errors",
                    "group",
                    "time",
                    "skipped",
                    "timestamp",
                    "hostname",
                    "id",
                    "package",
                    "file",
                    "log",
                    "url",
                ],
                &["name", "tests", "failures", "errors"],
                &[
                    "testsuite",
                    "properties",
                    "testcase",
                    "system-out",
                    "system-err",
                ],
            ),
            "properties" => (&[], &[], &["property"]),
            "property" => (&["name", "value"], &["name", "value"], &[]),
            "testcase" => (
                &["name", "time", "classname", "group"],
                &["name"],
                &[
                    "skipped",
                    "error",
                    "failure",
                    "rerunFailure",
                    "rerunError",
                    "flakyFailure",
                    "flakyError",
                    "system-out",
                    "system-err",
                ],
            ),
            "failure" | "error" | "skipped" => (&["type", "message"], &[], &[]),
            "system-out" | "system-err" => (&[], &[], &[]),
            _ => return None,
        })
    };
    let time = regex::Regex::new(r"^(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?$")
        .expect("a valid regex");
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut suites: Vec<(SuiteCounts, SuiteCounts)> = Vec::new();
    loop {
        let (start, empty) = match reader.read_event().map_err(|e| e.to_string())? {
            Event::Eof => break,
            Event::Start(s) => (s.into_owned(), false),
            Event::Empty(s) => (s.into_owned(), true),
            Event::End(_) => {
                stack.pop();
                continue;
            }
            _ => continue,
        };
        let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
        let (attrs, required, _) = allowed(&name).ok_or(format!("unknown element <{name}>"))?;
        match stack.last() {
            None if name != "testsuites" && name != "testsuite" => {
                return Err(format!("the root is <{name}>"));
            }
            Some(parent) => {
                let (_, _, children) = allowed(parent).expect("checked when opened");
                if !children.contains(&name.as_str()) {
                    return Err(format!("<{parent}> may not hold <{name}>"));
                }
            }
            None => {}
        }
        let mut seen = std::collections::HashMap::new();
        for attr in start.attributes() {
            let attr = attr.map_err(|e| e.to_string())?;
            let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
            if !attrs.contains(&key.as_str()) {
                return Err(format!("<{name}> may not carry `{key}`"));
            }
            let value = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| e.to_string())?
                .into_owned();
            if key == "time"
                && (name == "testsuite" || name == "testsuites")
                && !time.is_match(&value)
            {
                return Err(format!("<{name} time=\"{value}\"> is not a SUREFIRE_TIME"));
            }
            seen.insert(key, value);
        }
        if let Some(missing) = required.iter().find(|r| !seen.contains_key(**r)) {
            return Err(format!("<{name}> lacks `{missing}`"));
        }
        let count = |k: &str| seen.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        match name.as_str() {
            "testsuite" => suites.push((
                (
                    seen["name"].clone(),
                    count("tests"),
                    count("failures"),
                    count("errors"),
                    count("skipped"),
                ),
                (seen["name"].clone(), 0, 0, 0, 0),
            )),
            "testcase" => suites.last_mut().ok_or("a testcase outside a suite")?.1.1 += 1,
            "failure" => suites.last_mut().ok_or("a failure outside a suite")?.1.2 += 1,
            "error" => suites.last_mut().ok_or("an error outside a suite")?.1.3 += 1,
            "skipped" => suites.last_mut().ok_or("skipped outside a suite")?.1.4 += 1,
            _ => {}
        }
        if !empty {
            stack.push(name);
        }
    }
    let mut out = Vec::new();
    for (stated, counted) in suites {
        if stated != counted {
            return Err(format!(
                "suite `{}` states {stated:?} but holds {counted:?}",
                stated.0
            ));
        }
        out.push(counted);
    }
    Ok(out)
}

/// Loads `yaml`, written to `dir/suite.yaml`, as a suite plan (artifacts under `dir/reports`);
/// a suite with errors fails the test with its diagnostics.
#[allow(dead_code, reason = "not every test binary runs suites in-process")]
pub fn suite_plan(dir: &Path, yaml: &str) -> perfgate::plan::SuitePlan {
    use perfgate::suite::discover::Discovery;
    use perfgate::suite::load::{LoadOptions, load};
    let path = dir.join("suite.yaml");
    std::fs::write(&path, yaml).expect("write the suite");
    let loaded = load(
        &Discovery {
            suites: vec![path],
            ..Discovery::default()
        },
        &LoadOptions {
            artifacts_root: dir.join("reports"),
            ..LoadOptions::default()
        },
    );
    assert!(
        !loaded.diagnostics.has_errors(),
        "{}",
        loaded.diagnostics.render(&loaded.sources)
    );
    let suite = loaded.suites.into_iter().next().expect("one suite");
    perfgate::plan::SuitePlan::new(suite, 7)
}
