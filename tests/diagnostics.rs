//! One fixture file per diagnostic: each states its exit code and message in `# expect:` lines,
//! and its whole output is a snapshot.

use std::path::Path;
use std::process::Command;

/// Runs `perfgate args...` from the crate root; returns (exit code, stdout, stderr).
fn perfgate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run perfgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_fixture_gives_its_diagnostic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diagnostics");
    let mut fixtures: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    fixtures.sort();
    assert!(
        fixtures.len() >= 25,
        "the corpus has {} fixtures",
        fixtures.len()
    );
    let mut failures = Vec::new();
    for path in &fixtures {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let expects: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        let code: i32 = expects
            .iter()
            .find_map(|e| e.strip_prefix("exit "))
            .unwrap_or_else(|| panic!("{name}: no `# expect: exit N` line"))
            .parse()
            .unwrap();
        let relative = format!("tests/fixtures/diagnostics/{name}.yaml");
        let (got, stdout, stderr) = perfgate(&["validate", &relative]);
        if got != code {
            failures.push(format!("{name}: exit {got}, expected {code}\n{stderr}"));
        }
        for message in expects.iter().filter(|e| !e.starts_with("exit ")) {
            if !stderr.contains(message) && !stdout.contains(message) {
                failures.push(format!("{name}: expected `{message}` in\n{stderr}"));
            }
        }
        insta::assert_snapshot!(
            name.clone(),
            format!("exit: {got}\n--- stderr\n{stderr}--- stdout\n{stdout}")
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
