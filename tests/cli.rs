//! The command line end to end: the suites in `suites/`, the committed schema, discovery
//! errors, usage errors and the `list` output.

use std::path::Path;
use std::process::Command;

use perfgate::suite::node::{FileId, parse_documents};

mod helpers;

fn perfgate_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run perfgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn perfgate(args: &[&str]) -> (i32, String, String) {
    perfgate_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_suite_in_suites_validates_without_warnings() {
    let (code, stdout, stderr) = perfgate(&["validate"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr, "", "suites/ should not even warn");
    let count = std::fs::read_dir(root().join("suites")).unwrap().count();
    assert!(count >= 3);
    assert!(
        stdout.ends_with(&format!("{count} suites valid\n")),
        "{stdout}"
    );
}

#[test]
fn committed_schema_matches_the_types() {
    let committed = std::fs::read_to_string(root().join("schemas/suite.schema.json")).unwrap();
    let (code, generated, _) = perfgate(&["schema"]);
    assert_eq!(code, 0);
    assert!(
        committed == generated,
        "schemas/suite.schema.json is out of date: run `cargo run -- schema -o schemas/suite.schema.json`"
    );
}

#[test]
fn committed_results_schema_matches_the_types() {
    let committed = std::fs::read_to_string(root().join("schemas/results.schema.json")).unwrap();
    let (code, generated, _) = perfgate(&["schema", "--results"]);
    assert_eq!(code, 0);
    assert!(
        committed == generated,
        "schemas/results.schema.json is out of date: run `cargo run -- schema --results -o schemas/results.schema.json`"
    );
}

#[test]
fn suites_and_compat_fixtures_conform_to_the_schema() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/suite.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(root().join("suites"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // Every Taurus- and MMS-style fixture of our own, layers included.
    files.extend(helpers::yaml_files(&root().join("tests/fixtures/compat")));
    for path in files {
        for doc in parse_documents(&std::fs::read_to_string(&path).unwrap(), FileId(0)).unwrap() {
            let json = doc.to_json();
            let errors: Vec<String> = validator
                .iter_errors(&json)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        }
    }
    // And the schema rejects what perfgate rejects.
    let typo = serde_json::json!({"execution": [{"scenario": "s", "concurency": 1}]});
    assert!(!validator.is_valid(&typo));
}

#[test]
fn suites_point_editors_at_the_schema() {
    for entry in std::fs::read_dir(root().join("suites")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schemas/suite.schema.json\n"),
            "{} lacks the schema comment",
            path.display()
        );
    }
}

#[test]
fn zero_matches_say_what_was_searched() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    let (code, _, stderr) = perfgate_in(dir.path(), &["validate", ".", "-x", "old/**"]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "error: no suite files found in `.` (pattern `*.{yaml,yml}`, excluding `old/**`)\n"
    );
    let (code, _, stderr) = perfgate_in(dir.path(), &["list", "missing/"]);
    assert_eq!(code, 1);
    assert_eq!(stderr, "error: `missing/` does not exist\n");
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, stderr) = perfgate(&["validate", "--no-such-flag"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, _) = perfgate(&["list", "--format", "yaml"]);
    assert_eq!(code, 2);
}

#[test]
fn help_documents_exit_codes() {
    let (code, stdout, _) = perfgate(&["--help"]);
    assert_eq!(code, 0);
    for line in [
        "0    all criteria passed",
        "3    a criterion failed",
        "130  interrupted by SIGINT",
        "143  terminated by SIGTERM",
    ] {
        assert!(stdout.contains(line), "{stdout}");
    }
}

#[test]
fn list_table_and_json() {
    let (code, stdout, stderr) = perfgate(&["list"]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!("list_table", stdout);
    let (code, stdout, _) = perfgate(&["list", "--format", "json"]);
    assert_eq!(code, 0);
    let suites: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let ramp = suites
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ramp_up")
        .unwrap();
    assert_eq!(
        ramp["labels"],
        serde_json::json!(["live", "metadata", "batch-infer", "infer-batch"])
    );
    assert_eq!(ramp["executions"][0]["steps"], 4);
    assert_eq!(ramp["criteria"][1]["window"]["logic"], "for");
    assert_eq!(
        ramp["criteria"][1]["check"]["threshold"],
        serde_json::json!({"unit": "duration", "value": "500ms"})
    );
    assert_eq!(ramp["criteria"][1]["window"]["timeframe"], "5s");
}

#[test]
fn validate_summarises_the_plan() {
    let (code, stdout, _) = perfgate(&["validate", "suites/open_model.yaml"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("validate_open_model", stdout);
}

/// The suite in the README's tour is valid, so the README stays true.
#[test]
fn readme_tour_suite_validates() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("```yaml\n")
        .expect("a yaml block in the README")
        + "```yaml\n".len();
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tour.yaml"), block).unwrap();
    let (code, stdout, stderr) = perfgate_in(dir.path(), &["validate", "tour.yaml"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("labels     infer"), "{stdout}");
}

/// Found by fuzzing the command line: each is a clear error with the documented exit code,
/// never a panic (101) or an abort (134).
#[test]
fn out_of_range_input_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.yaml"),
        "execution: [{scenario: s, concurrency: 1, hold-for: 18446744073709551616s}]\n\
         scenarios: {s: {requests: [{url: 'http://127.0.0.1:9/', label: x}]}}\n\
         reporting: [{module: passfail, criteria: ['avg-rt of x>1s for 99999999999999999999999d']}]\n",
    )
    .unwrap();
    let (code, _, stderr) = perfgate_in(dir.path(), &["validate", "s.yaml"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("invalid duration `18446744073709551616s`"),
        "{stderr}"
    );
    assert!(stderr.contains("invalid timeframe"), "{stderr}");
    let (code, _, stderr) = perfgate_in(
        dir.path(),
        &["validate", "s.yaml", "-o", "execution.0.hold-for=1e300"],
    );
    assert_eq!(code, 1, "{stderr}");
    // A suite or an include that is a device or a FIFO is an error, not an endless read.
    std::fs::write(
        dir.path().join("zero.yaml"),
        "included-configs: [/dev/zero]\nexecution: [{scenario: s, concurrency: 1, hold-for: 1s}]\nscenarios: {s: {requests: ['http://127.0.0.1:9/']}}\n",
    )
    .unwrap();
    nix::unistd::mkfifo(&dir.path().join("fifo.yaml"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let (code, _, stderr) = perfgate_in(dir.path(), &["validate", "zero.yaml", "fifo.yaml"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cannot read included config `/dev/zero`: not a regular file"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cannot read file `fifo.yaml`: not a regular file"),
        "{stderr}"
    );
    // Usage errors: exit 2.
    for args in [
        &["run", "s.yaml", "--threads", "100000"][..],
        &["run", "s.yaml", "--threads", "0"],
        &["validate", "s.yaml", "-o", "concurrency"],
        &["validate", "s.yaml", "-o", "execution..x=1"],
    ] {
        let (code, _, stderr) = perfgate_in(dir.path(), args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
    }
}
