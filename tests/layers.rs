//! DESIGN §4.1 end to end: the order in which layers merge, and what each may do.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::path::Path;
use std::process::Command;

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `perfgate list --format json ARGS` in `dir`: the first suite, or the error output.
fn first_suite(dir: &Path, args: &[&str]) -> Result<serde_json::Value, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .args(["list", "--format", "json"])
        .args(args)
        .current_dir(dir)
        .env("PERFGATE_TEST_OS_VAR", "from-os")
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Ok(all[0].clone())
}

fn env_value(suite: &serde_json::Value, name: &str) -> Option<String> {
    suite["settings"]["env"]
        .as_array()?
        .iter()
        .find(|p| p[0] == name)
        .map(|p| p[1].as_str().unwrap().to_owned())
}

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "tests/global_config.yaml",
        "settings:\n  env: {WHO: global, FROM_GLOBAL: g}\n",
    );
    write(
        d,
        "base.yaml",
        "settings:\n  env: {WHO: config}\nscenarios:\n  s:\n    timeout: 2s\n",
    );
    write(
        d,
        "tests/suite/suite.yaml",
        "included-configs: [../common/inc.yaml]\n\
         settings:\n  env:\n    WHO: suite\n    HOLD: 30s\n    OS: '${PERFGATE_TEST_OS_VAR}-x'\n\
         execution:\n  - scenario: s\n    concurrency: 2\n    hold-for: ${HOLD}\n\
         scenarios:\n  s:\n    headers: {X-Who: '${WHO}'}\n    requests: [http://127.0.0.1:9/a]\n\
         ---\n\
         scenarios:\n  s:\n    requests: [http://127.0.0.1:9/b]\n",
    );
    write(
        d,
        "tests/common/inc.yaml",
        "settings:\n  env: {WHO: included}\n",
    );
    write(
        d,
        "tests/suite/environments/ci.yaml",
        "settings:\n  env: {WHO: env}\n",
    );
    dir
}

#[test]
fn layers_merge_in_design_order() {
    let dir = fixture();
    let d = dir.path();
    // global config → --config → suite (2 documents) → included-configs
    let s = first_suite(d, &["tests", "-c", "base.yaml"]).unwrap();
    assert_eq!(env_value(&s, "WHO").as_deref(), Some("included"));
    assert_eq!(env_value(&s, "FROM_GLOBAL").as_deref(), Some("g"));
    assert_eq!(s["scenarios"][0]["timeout"], "2s", "from --config");
    let urls: Vec<&str> = s["scenarios"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"],
        "lists from both documents concatenate"
    );
    // → environments/<env>.yaml
    let s = first_suite(d, &["tests", "-e", "ci"]).unwrap();
    assert_eq!(env_value(&s, "WHO").as_deref(), Some("env"));
    // → -o, last of all; values are YAML
    let s = first_suite(
        d,
        &[
            "tests",
            "-e",
            "ci",
            "-o",
            "settings.env.WHO=cli",
            "-o",
            "execution.0.concurrency=7",
        ],
    )
    .unwrap();
    assert_eq!(env_value(&s, "WHO").as_deref(), Some("cli"));
    assert_eq!(s["executions"][0]["concurrency"], 7);
    // -1 appends, ^ deletes
    let s = first_suite(
        d,
        &["tests", "-o", "execution.-1={scenario: s, iterations: 3}"],
    )
    .unwrap();
    assert_eq!(s["executions"][1]["iterations"], 3);
    let s = first_suite(d, &["tests", "-o", "settings.env.^FROM_GLOBAL="]).unwrap();
    assert_eq!(env_value(&s, "FROM_GLOBAL"), None);
}

#[test]
fn interpolation_uses_the_final_env() {
    let dir = fixture();
    let s = first_suite(dir.path(), &["tests", "-e", "ci"]).unwrap();
    assert_eq!(
        s["executions"][0]["hold_for"], "30s",
        "a whole-value reference keeps its type"
    );
    assert_eq!(
        s["scenarios"][0]["headers"][0][1], "env",
        "interpolated after every layer merged"
    );
    assert_eq!(
        env_value(&s, "OS").as_deref(),
        Some("from-os-x"),
        "settings.env values may use OS variables"
    );
}

#[test]
fn bad_overrides_and_missing_environments_are_reported() {
    let dir = fixture();
    let err = first_suite(dir.path(), &["tests", "-o", "execution.5.concurrency=1"]).unwrap_err();
    assert!(err.contains("-o execution.5.concurrency=1:1:1: error: cannot apply override: `execution` has 1 items, so index 5 is out of range"), "{err}");
    let err = first_suite(dir.path(), &["tests", "-o", "concurrency"]).unwrap_err();
    assert!(
        err.contains("expected KEY=VALUE, found `concurrency`"),
        "{err}"
    );
    // An override of the wrong type is located on the command line.
    let err =
        first_suite(dir.path(), &["tests", "-o", "execution.0.concurrency=many"]).unwrap_err();
    assert!(err.contains("-o execution.0.concurrency=many:1:25: error: expected a whole number (0 or more), found the string `many`"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .args(["validate", "tests", "-e", "prod"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("warning: `-e prod`: there is no tests/suite/environments/prod.yaml")
    );
}

/// Naming one MMS suite file applies its `global_config.yaml` as searching its folder does,
/// in both MMS layouts.
#[test]
fn a_named_file_gets_its_global_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let suite = "execution: [{scenario: s, concurrency: 1, hold-for: 1s}]\nscenarios: {s: {requests: ['http://127.0.0.1:9/${WHO}']}}\n";
    write(
        d,
        "master/global_config.yaml",
        "settings:\n  env: {WHO: global}\n",
    );
    write(d, "master/infer/infer.yaml", suite);
    write(
        d,
        "flat/common/global_config.yaml",
        "settings:\n  env: {WHO: common}\n",
    );
    write(d, "flat/infer.yaml", suite);
    for (file, who) in [
        ("master/infer/infer.yaml", "global"),
        ("flat/infer.yaml", "common"),
    ] {
        let named = first_suite(d, &[file]).unwrap();
        assert_eq!(env_value(&named, "WHO").as_deref(), Some(who), "{file}");
        let searched = first_suite(d, &[file.split('/').next().unwrap()]).unwrap();
        assert_eq!(env_value(&searched, "WHO").as_deref(), Some(who), "{file}");
    }
}

/// Two files that include each other are an error naming the cycle, never "0 suites valid";
/// a file another includes is still a suite when named on the command line.
#[test]
fn include_cycles_are_errors_and_named_files_are_suites() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let body = "execution: [{scenario: s, concurrency: 1, hold-for: 1s}]\nscenarios: {s: {requests: ['http://127.0.0.1:9/']}}\n";
    write(
        d,
        "cycle/a.yaml",
        &format!("included-configs: [b.yaml]\n{body}"),
    );
    write(d, "cycle/b.yaml", "included-configs: [a.yaml]\n");
    let out = Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .args(["validate", "cycle"])
        .current_dir(d)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("include cycle: "), "{stderr}");

    write(
        d,
        "inc/main.yaml",
        &format!("included-configs: [shared.yaml]\n{body}"),
    );
    write(d, "inc/shared.yaml", body);
    let listed = |args: &[&str]| -> Vec<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_perfgate"))
            .args(["list", "--format", "json"])
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        all.as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(listed(&["inc"]), ["main"]);
    assert_eq!(listed(&["inc/shared.yaml"]), ["shared"]);
}
