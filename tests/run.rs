//! `perfgate run` end to end with a managed server: one that never becomes ready, one that
//! dies during the load, and one that runs to completion. Each must leave no process behind.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod helpers;

fn perfgate_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// True while `pid` is a live (not zombie) process.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

/// Waits briefly for `pid` to go: reparented grandchildren are reaped asynchronously.
fn gone(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn pids(dir: &Path, name: &str) -> Vec<i32> {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

#[test]
fn a_server_that_never_becomes_ready_fails_the_suite_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    // The server writes its own pid and a child's pid, logs, and never listens.
    std::fs::write(
        dir.path().join("never.yaml"),
        r#"settings: {ports: [PORT]}
services:
  - module: server
    label: stubborn
    command: [sh, -c, 'sleep 60 & echo $$ $! > pids; echo loading weights; echo "CUDA out of memory" >&2; wait']
    ready: {tcp: "127.0.0.1:${PORT}", timeout: 1s}
execution: [{scenario: s, concurrency: 1, hold-for: 5s}]
scenarios:
  s: {default-address: "http://127.0.0.1:${PORT}", requests: [/]}
"#,
    )
    .unwrap();
    let started = Instant::now();
    let (code, stdout, stderr) = perfgate_in(
        dir.path(),
        &["run", "never.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains("server `stubborn` was not ready after 1s"),
        "{all}"
    );
    assert!(
        all.contains("CUDA out of memory"),
        "the log tail is shown: {all}"
    );
    let pids = pids(dir.path(), "pids");
    assert_eq!(pids.len(), 2);
    for pid in pids {
        assert!(gone(pid), "process {pid} was left behind");
    }
    // What was known is written: results.json names the error and keeps the log tail.
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/results.json")).unwrap(),
    )
    .unwrap();
    let suite = &results["suites"][0];
    assert_eq!(suite["status"], "error");
    assert!(
        suite["error"]["log_tail"]
            .as_str()
            .unwrap()
            .contains("loading weights")
    );
    assert!(dir.path().join("out/never/stubborn.log").exists());
}

#[test]
fn a_server_that_dies_during_the_load_ends_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dies.yaml"),
        r#"settings: {ports: [PORT]}
services:
  - module: server
    label: fragile
    command: [sh, -c, 'python3 "$0" --port ${PORT} --crash-after 20 & echo $$ $! > pids; wait $!; echo "segfault in worker" >&2; exit 3', FAKESERVER]
    ready: {http: "http://127.0.0.1:${PORT}/v2/health/ready", timeout: 10s}
execution: [{scenario: s, concurrency: 2, hold-for: 20s}]
scenarios:
  s: {default-address: "http://127.0.0.1:${PORT}", requests: [/v2/health/live]}
"#
        .replace("FAKESERVER", &helpers::fakeserver().display().to_string()),
    )
    .unwrap();
    let started = Instant::now();
    let (code, stdout, stderr) = perfgate_in(
        dir.path(),
        &["run", "dies.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the load stops when the server dies"
    );
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains("server `fragile` exited during the load with exit status: 3"),
        "{all}"
    );
    assert!(all.contains("segfault in worker"), "{all}");
    for pid in pids(dir.path(), "pids") {
        assert!(gone(pid), "process {pid} was left behind");
    }
    // What was measured before the crash is kept.
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/results.json")).unwrap(),
    )
    .unwrap();
    let hits = results["suites"][0]["labels"][0]["hits"].as_u64().unwrap();
    assert!(hits > 0, "{results}");
    assert!(dir.path().join("out/dies/final_stats.csv").exists());
}

#[test]
fn a_suite_runs_against_the_demo_server_and_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ok.yaml"),
        r#"settings: {ports: [PORT]}
services:
  - module: server
    label: model
    command: [sh, -c, 'echo $$ > pids; exec "${PERFGATE}" demo-server --port ${PORT} --workers 2']
    ready: {http: "http://127.0.0.1:${PORT}/v2/health/ready", timeout: 10s}
execution: [{scenario: s, concurrency: 2, iterations: 40}]
scenarios:
  s:
    default-address: "http://127.0.0.1:${PORT}"
    requests:
      - url: /v2/models/mlp/infer
        label: infer
        method: POST
        body: {inputs: [{name: input, shape: [1, 4], datatype: FP32, data: [0.1, 0.2, 0.3, 0.4]}]}
        assert-jsonpath: ['$.outputs[0].data']
"#,
    )
    .unwrap();
    let (code, stdout, stderr) = perfgate_in(
        dir.path(),
        &["run", "ok.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/results.json")).unwrap(),
    )
    .unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/results.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&results)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "results.json does not match its schema: {errors:#?}"
    );
    let infer = results["suites"][0]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["label"] == "infer")
        .unwrap()
        .clone();
    assert_eq!(
        (infer["hits"].as_u64(), infer["fail"].as_u64()),
        (Some(40), Some(0)),
        "{infer}"
    );
    // final_stats.csv reads as Taurus's dump-csv: the same columns in the same order,
    // `throughput` the sample count (as dump-xml writes it), per-label concurrency, 0 for a
    // KPI without data, labels before the overall row.
    let csv = std::fs::read_to_string(dir.path().join("out/ok/final_stats.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows[0][..10],
        [
            "label",
            "avg_ct",
            "avg_lt",
            "avg_rt",
            "bytes",
            "concurrency",
            "fail",
            "stdev_rt",
            "succ",
            "throughput"
        ],
        "{csv}"
    );
    assert!(rows[0][10].starts_with("perc_"), "{csv}");
    let col = |name: &str| rows[0].iter().position(|c| *c == name).unwrap();
    assert_eq!(rows.len(), 3, "infer, then the overall row: {csv}");
    let (infer, overall) = (&rows[1], &rows[2]);
    assert_eq!((infer[0], overall[0]), ("infer", ""), "{csv}");
    assert_eq!(infer[col("throughput")], "40", "{csv}");
    assert_eq!(infer[col("succ")], "40", "{csv}");
    let concurrency: u64 = infer[col("concurrency")].parse().unwrap();
    assert!((1..=2).contains(&concurrency), "{csv}");
    assert!(
        infer[col("avg_ct")].parse::<f64>().is_ok(),
        "avg_ct is a number: {csv}"
    );
    assert_eq!(infer[col("rc_200")], "40", "{csv}");
    for pid in pids(dir.path(), "pids") {
        assert!(gone(pid), "server {pid} was left behind");
    }
}

/// Requests the demo server whose port is written in `dir/port` has answered so far (its
/// `demo_requests_total` counter), 0 before it answers.
fn served(dir: &Path) -> u64 {
    use std::io::{Read, Write};
    let Ok(port) = std::fs::read_to_string(dir.join("port")) else {
        return 0;
    };
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port.trim().parse().unwrap()))
    else {
        return 0;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text.lines()
        .filter_map(|l| l.strip_prefix("demo_requests_total{code=\"200\"} "))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// Starts a long suite against the demo server, sends `signal` once requests flow, and
/// checks the exit code, that what was measured is written, and that the server is gone.
fn interrupted_by(signal: nix::sys::signal::Signal, code: i32, status: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("long.yaml"),
        r#"settings: {ports: [PORT]}
services:
  - module: server
    label: model
    command: [sh, -c, 'echo $$ > pids; echo ${PORT} > port; exec "${PERFGATE}" demo-server --port ${PORT}']
    ready: {http: "http://127.0.0.1:${PORT}/v2/health/ready", timeout: 10s}
execution: [{scenario: s, concurrency: 2, hold-for: 60s}]
scenarios:
  s: {default-address: "http://127.0.0.1:${PORT}", requests: [/v2/health/live]}
"#,
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .args(["run", "long.yaml", "--no-progress", "-a", "out"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Signal once the load flows: the server has answered 200 requests (its own count).
    let deadline = Instant::now() + Duration::from_secs(60);
    while served(dir.path()) < 200 {
        assert!(
            Instant::now() < deadline,
            "the load never reached the server"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, signal).unwrap();
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stops promptly"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(results["status"], status);
    assert_eq!(results["suites"][0]["status"], "interrupted");
    assert!(
        results["suites"][0]["labels"][0]["hits"].as_u64().unwrap() > 0,
        "{results}"
    );
    assert!(dir.path().join("out/long/final_stats.csv").exists());
    for pid in pids(dir.path(), "pids") {
        assert!(gone(pid), "server {pid} was left behind");
    }
}

#[test]
fn ctrl_c_keeps_what_was_measured_and_exits_130() {
    interrupted_by(nix::sys::signal::Signal::SIGINT, 130, "interrupted");
}

#[test]
fn sigterm_keeps_what_was_measured_and_exits_143() {
    interrupted_by(nix::sys::signal::Signal::SIGTERM, 143, "terminated");
}

#[test]
fn ctrl_c_while_waiting_for_readiness_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("slow.yaml"),
        r#"settings: {ports: [PORT]}
services:
  - module: server
    label: slow
    command: [sh, -c, 'echo $$ > pids; exec sleep 60']
    ready: {tcp: "127.0.0.1:${PORT}", timeout: 60s}
execution: [{scenario: s, concurrency: 1, hold-for: 5s}]
scenarios:
  s: {default-address: "http://127.0.0.1:${PORT}", requests: [/]}
"#,
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .args(["run", "slow.yaml", "--no-progress", "-a", "out"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids(dir.path(), "pids").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "does not wait out the readiness timeout"
    );
    assert_eq!(out.status.code(), Some(130));
    for pid in pids(dir.path(), "pids") {
        assert!(gone(pid), "server {pid} was left behind");
    }
    let results = std::fs::read_to_string(dir.path().join("out/results.json")).unwrap();
    assert!(results.contains("\"interrupted\""), "{results}");
}

#[test]
fn a_closed_terminal_sighup_stops_the_server_and_exits_143() {
    interrupted_by(nix::sys::signal::Signal::SIGHUP, 143, "terminated");
}

/// The tables and the verdict go to stdout, in that order, the verdict last; a passing and a
/// failing criterion in the same run give a FAILED verdict naming the suite.
#[test]
fn stdout_ends_with_one_verdict_line_after_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    let suite = |name: &str, criteria: &str| {
        format!(
            r#"settings: {{ports: [PORT]}}
services:
  - module: server
    label: model
    command: ["${{PERFGATE}}", demo-server, --port, "${{PORT}}"]
    ready: {{http: "http://127.0.0.1:${{PORT}}/v2/health/ready", timeout: 30s}}
execution: [{{scenario: s, concurrency: 1, iterations: 20}}]
scenarios:
  s: {{default-address: "http://127.0.0.1:${{PORT}}", requests: [{{url: /v2/health/live, label: live}}]}}
reporting:
  - module: passfail
    criteria: [{criteria}]
# {name}
"#
        )
    };
    std::fs::create_dir(dir.path().join("suites")).unwrap();
    std::fs::write(
        dir.path().join("suites/a_good.yaml"),
        suite("good", "fail>50%, hits<1"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("suites/b_bad.yaml"),
        suite("bad", "fail>50%, hits>5"),
    )
    .unwrap();
    let (code, stdout, stderr) =
        perfgate_in(dir.path(), &["run", "suites", "--no-progress", "-a", "out"]);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.last().copied(),
        Some("perfgate: FAILED, 1 of 4 criteria failed in b_bad"),
        "{stdout}"
    );
    // Per-suite tables, then the criteria table, on the same stream as the verdict.
    let table = |needle: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in {stdout}"))
    };
    assert!(table("a_good (completed") < table("b_bad (completed"));
    assert!(table("b_bad (completed") < table("suite "));
    assert!(table("suite ") < table("reports: out"));
    assert!(!stderr.contains("(completed"), "tables on stderr: {stderr}");

    std::fs::remove_file(dir.path().join("suites/b_bad.yaml")).unwrap();
    let (code, stdout, stderr) = perfgate_in(
        dir.path(),
        &["run", "suites", "--no-progress", "-a", "out2"],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(
        stdout.lines().last(),
        Some("perfgate: passed, 1 suite, 2 criteria"),
        "{stdout}"
    );
}

/// Output that cannot be written never turns a failed gate into a pass.
#[test]
fn a_full_disk_on_stdout_or_stderr_never_turns_a_failure_into_0() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "execution: [{scenario: s, concurency: 1}]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("good.yaml"),
        "execution: [{scenario: s, concurrency: 1, hold-for: 1s}]\nscenarios: {s: {requests: ['http://127.0.0.1:9/']}}\n",
    )
    .unwrap();
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let run = |args: &[&str], stdout_full: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_perfgate"));
        cmd.args(args).current_dir(dir.path());
        if stdout_full {
            cmd.stdout(full()).stderr(std::process::Stdio::null());
        } else {
            cmd.stderr(full()).stdout(std::process::Stdio::null());
        }
        cmd.status().unwrap().code()
    };
    // The diagnostics cannot be written: still invalid.
    assert_eq!(run(&["validate", "bad.yaml"], false), Some(1));
    assert_eq!(run(&["validate", "bad.yaml"], true), Some(1));
    // A valid suite whose report could not be shown is not a silent pass.
    assert_eq!(run(&["validate", "good.yaml"], true), Some(1));
    // A closed pipe is not an error of ours.
    let mut child = Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .args(["list", "good.yaml"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// Taurus keys as MMS's suites use them: `${ARTIFACTS_DIR}` is the suite's real artifacts
/// directory during `run`; `settings.env` is exported to commands (null as empty); two
/// `junit-xml` modules write two files, named as Taurus names them, the unnamed one per label.
#[test]
fn artifacts_dir_env_export_and_two_junit_reporters() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mms.yaml"),
        r#"settings:
  env: {MODEL_NAME: squeezenet, EMPTY: null}
services:
  - module: shellexec
    prepare:
      - 'echo "[$MODEL_NAME][$EMPTY][${ARTIFACTS_DIR}]" > seen.txt'
      - "for f in a b; do echo \"$f\" >> loop.txt; done; echo '$${LITERAL}' > literal.txt"
execution: [{scenario: s, concurrency: 1, iterations: 2}]
scenarios:
  s: {requests: [{url: "http://127.0.0.1:9/", label: refused, timeout: 1s}]}
reporting:
  - module: passfail
    criteria: ["fail>200%"]
  - module: junit-xml
    data-source: pass-fail
  - module: junit-xml
"#,
    )
    .unwrap();
    let (code, stdout, stderr) = perfgate_in(
        dir.path(),
        &["run", "mms.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let suite_dir = std::path::absolute(dir.path().join("out/mms")).unwrap();
    let seen = std::fs::read_to_string(suite_dir.join("seen.txt")).unwrap();
    assert_eq!(
        seen.trim(),
        format!("[squeezenet][][{}]", suite_dir.display())
    );
    assert!(!dir.path().join("reports").exists(), "nothing outside -a");
    // A shell's own `$f` is left alone; `$${X}` reaches the shell as `${X}`.
    let looped = std::fs::read_to_string(suite_dir.join("loop.txt")).unwrap();
    assert_eq!(looped, "a\nb\n");
    let literal = std::fs::read_to_string(suite_dir.join("literal.txt")).unwrap();
    assert_eq!(literal.trim(), "${LITERAL}");
    let per_criterion = std::fs::read_to_string(suite_dir.join("xunit.xml")).unwrap();
    assert!(
        per_criterion.contains("name=\"fail&gt;200%\""),
        "{per_criterion}"
    );
    let per_label = std::fs::read_to_string(suite_dir.join("xunit-1.xml")).unwrap();
    assert!(
        per_label.contains("<testcase name=\"refused\""),
        "{per_label}"
    );
}

/// A shellexec `prepare` that fails in a suite with a server says where such commands go
/// (it runs before the server starts); a failing `post-process`, that the server is stopped.
#[test]
fn shellexec_stage_failures_hint_at_the_stage_order() {
    let dir = tempfile::tempdir().unwrap();
    let suite = |stage: &str| {
        format!(
            r#"settings: {{ports: [PORT]}}
services:
  - module: server
    label: model
    command: ["${{PERFGATE}}", demo-server, --port, "${{PORT}}"]
    ready: {{http: "http://127.0.0.1:${{PORT}}/v2/health/ready", timeout: 30s}}
  - module: shellexec
    {stage}: ["exit 4"]
execution: [{{scenario: s, concurrency: 1, iterations: 2}}]
scenarios:
  s: {{requests: ["http://127.0.0.1:${{PORT}}/v2/health/live"]}}
"#
        )
    };
    for (stage, hint) in [
        ("prepare", "belongs in that server's own `prepare:`"),
        ("post-process", "belongs in `shutdown`"),
    ] {
        std::fs::write(dir.path().join("hooks.yaml"), suite(stage)).unwrap();
        let (code, stdout, stderr) = perfgate_in(
            dir.path(),
            &["run", "hooks.yaml", "--no-progress", "-a", stage],
        );
        assert_eq!(code, 1, "{stdout}\n{stderr}");
        assert!(stdout.contains(hint), "{stage}: {stdout}");
    }
}

/// An execution that cannot start (its CSV is not UTF-8) makes the suite an error, exit 1,
/// never an empty "completed" with exit 0.
#[test]
fn an_execution_that_cannot_start_is_a_suite_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.csv"), b"id\n\xff\xfe\n").unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "execution: [{scenario: s, concurrency: 1, hold-for: 5s}]\n\
         scenarios: {s: {data-sources: [{path: users.csv, variable-names: id}], requests: ['http://127.0.0.1:9/${id}']}}\n",
    )
    .unwrap();
    let (code, stdout, stderr) = perfgate_in(
        dir.path(),
        &["run", "bad.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("execution 1 could not run"), "{stdout}");
    assert!(stdout.contains("perfgate: ERROR in bad"), "{stdout}");
}

/// More users than the open-file limit allows is refused before anything starts; a soft
/// limit below the hard one is raised (servers and commands inherit it).
#[test]
fn the_open_file_limit_is_raised_or_the_run_refused() {
    let dir = tempfile::tempdir().unwrap();
    let suite = |users: u32| {
        format!(
            "services: [{{module: shellexec, prepare: ['ulimit -n > limit.txt']}}]\n\
             execution: [{{scenario: s, concurrency: {users}, iterations: {users}}}]\n\
             scenarios: {{s: {{requests: [{{url: 'http://127.0.0.1:9/', timeout: 1s}}]}}}}\n"
        )
    };
    let run = |limits: &str, users: u32, out: &str| {
        std::fs::write(dir.path().join("many.yaml"), suite(users)).unwrap();
        let script = format!("{limits}; exec \"$0\" run many.yaml --no-progress -a {out}");
        let output = Command::new("sh")
            .args(["-c", &script, env!("CARGO_BIN_EXE_perfgate")])
            .current_dir(dir.path())
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = run("ulimit -n 256", 2000, "refused");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("need up to 2000 connections"), "{stderr}");
    assert!(!dir.path().join("refused/many").exists(), "nothing started");
    // Soft 256 under a higher hard limit: raised, so 300 users fit.
    let (code, stderr) = run("ulimit -Sn 256", 300, "raised");
    assert_eq!(code, Some(0), "{stderr}");
    let limit = std::fs::read_to_string(dir.path().join("raised/many/limit.txt")).unwrap();
    assert!(limit.trim().parse::<u64>().unwrap() > 256, "{limit}");
}

/// An open model whose in-flight cap drops most arrivals fails by default (`settings.max-dropped`,
/// 1%), and the dropped share shows in the console, summary.md and final_stats.csv.
#[test]
fn dropped_arrivals_fail_the_suite_and_show_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let suite = |settings: &str| {
        format!(
            r#"settings: {{ports: [PORT]{settings}}}
services:
  - module: server
    label: model
    command: ["${{PERFGATE}}", demo-server, --port, "${{PORT}}", --latency, 50ms]
    ready: {{http: "http://127.0.0.1:${{PORT}}/v2/health/ready", timeout: 30s}}
execution: [{{scenario: s, throughput: 100, arrival: constant, concurrency: 2, hold-for: 2s}}]
scenarios:
  s: {{default-address: "http://127.0.0.1:${{PORT}}", requests: [{{url: /v2/models/mlp/infer, label: infer, method: POST, body: {{inputs: [{{name: input, shape: [1, 4], datatype: FP32, data: [1, 2, 3, 4]}}]}}}}]}}
reporting:
  - module: passfail
    criteria: ["p99 of infer>10s"]
"#
        )
    };
    std::fs::write(dir.path().join("overload.yaml"), suite("")).unwrap();
    let (code, stdout, stderr) = perfgate_in(
        dir.path(),
        &["run", "overload.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(stdout.contains("dropped>1%"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.trim_start().starts_with("label") && l.contains("dropped")),
        "a dropped column: {stdout}"
    );
    let summary = std::fs::read_to_string(dir.path().join("out/summary.md")).unwrap();
    assert!(summary.contains("| dropped |"), "{summary}");
    let csv = std::fs::read_to_string(dir.path().join("out/overload/final_stats.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let dropped = header.iter().position(|c| *c == "dropped").unwrap();
    let overall = csv.lines().last().unwrap().split(',').nth(dropped).unwrap();
    assert!(overall.parse::<u64>().unwrap() > 50, "{csv}");
    // `max-dropped: 100%` turns the check off.
    std::fs::write(
        dir.path().join("overload.yaml"),
        suite(", max-dropped: 100%"),
    )
    .unwrap();
    let (code, stdout, stderr) = perfgate_in(
        dir.path(),
        &["run", "overload.yaml", "--no-progress", "-a", "out2"],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
}

/// An open-model suite against the demo server with a stall, and the criteria it is judged by.
fn stalled_suite(stall: &str, hold: &str, criteria: &str) -> String {
    format!(
        r#"settings: {{ports: [PORT]}}
services:
  - module: server
    label: model
    command: ["${{PERFGATE}}", demo-server, --port, "${{PORT}}", {stall}]
    ready: {{http: "http://127.0.0.1:${{PORT}}/v2/health/ready", timeout: 30s}}
execution: [{{scenario: s, throughput: 40, arrival: constant, concurrency: 2000, hold-for: {hold}}}]
scenarios:
  s: {{default-address: "http://127.0.0.1:${{PORT}}", timeout: 120s, requests: [{{url: /v2/models/mlp/infer, label: infer, method: POST, body: {{inputs: [{{name: input, shape: [1, 4], datatype: FP32, data: [1, 2, 3, 4]}}]}}}}]}}
reporting:
  - module: passfail
    criteria: [{criteria}]
"#
    )
}

/// The overall timeline's p99 (ms) of each second.
fn p99_by_second(results: &serde_json::Value) -> std::collections::BTreeMap<u64, f64> {
    results["suites"][0]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["label"] == "")
        .filter_map(|r| Some((r["second"].as_u64()?, r["p99_ms"].as_f64()?)))
        .collect()
}

/// The seconds `from..to` a criterion was judged on.
fn criterion_window(results: &serde_json::Value) -> (u64, u64) {
    let c = &results["suites"][0]["criteria"][0];
    let from = c["window"][0].as_u64().unwrap_or_else(|| panic!("{c}"));
    let to = c["window"][1].as_u64().unwrap_or_else(|| panic!("{c}"));
    (from, to)
}

/// Requests that arrive during a stall complete when it ends, seconds later. Each second is
/// judged only once its requests have completed, so a `for` criterion sees the stall (it
/// used to judge each second while its slow requests were in flight, and passed) and fails
/// with the seconds whose final p99 is over the threshold.
#[test]
fn an_overload_fails_a_for_criterion_with_the_seconds_of_the_breach() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stall.yaml"),
        stalled_suite(
            "--stall-after, 3s, --stall-for, 5s",
            "12s",
            "\"p99>1500ms for 2s, continue as failed\"",
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = perfgate_in(
        dir.path(),
        &["run", "stall.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/results.json")).unwrap(),
    )
    .unwrap();
    let c = &results["suites"][0]["criteria"][0];
    assert_eq!(c["verdict"], "failed", "{c}");
    let (from, to) = criterion_window(&results);
    assert!(to - from >= 2, "{c}");
    let p99 = p99_by_second(&results);
    for second in from..to {
        assert!(
            p99.get(&second).is_some_and(|ms| *ms > 1500.0),
            "second {second} of the breach {from}..{to} has p99 {:?}: {p99:?}",
            p99.get(&second)
        );
    }
    // Everything completed: the stall ended long before the requests' timeout.
    let all = &results["suites"][0]["labels"][0];
    assert_eq!(all["unfinished"], 0, "{all}");
    assert_eq!(all["hits"], all["succ"], "{all}");
    // The offered rate is over the load's 12 s, not the wait for its last answers.
    let offered = all["offered"].as_f64().unwrap();
    assert!((36.0..=44.0).contains(&offered), "offered {offered}: {all}");
}

/// A server that stalls for good: a `stop` criterion on latency acts as soon as the requests
/// in flight are older than its threshold (its breach is certain), without waiting for their
/// 120 s timeout; what is still in flight then is counted as unfinished, at its age.
#[test]
fn a_stalled_server_stops_the_run_long_before_the_request_timeout() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stuck.yaml"),
        stalled_suite(
            "--stall-after, 3s, --stall-for, 600s",
            "300s",
            "\"p99>1s for 2s, stop as failed\"",
        ),
    )
    .unwrap();
    let started = Instant::now();
    let (code, stdout, stderr) = perfgate_in(
        dir.path(),
        &["run", "stuck.yaml", "--no-progress", "-a", "out"],
    );
    let took = started.elapsed();
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        took < Duration::from_secs(60),
        "stopped by the criterion, not the 120 s timeout: {took:?}"
    );
    assert!(stderr.contains("counted as unfinished"), "{stderr}");
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/results.json")).unwrap(),
    )
    .unwrap();
    let suite = &results["suites"][0];
    assert_eq!(suite["stopped_by"], "p99>1s for 2s", "{suite}");
    let all = &suite["labels"][0];
    let unfinished = all["unfinished"].as_u64().unwrap();
    assert!(unfinished >= 40, "a second's arrivals at least: {all}");
    // Their age is a lower bound of their latency: the p99 is over the threshold.
    assert!(
        all["percentiles_ms"]["99.0"].as_f64().unwrap() > 1000.0,
        "{all}"
    );
    let (from, to) = criterion_window(&results);
    let p99 = p99_by_second(&results);
    for second in from..to {
        assert!(
            p99.get(&second).is_some_and(|ms| *ms > 1000.0),
            "second {second} of {from}..{to}: {p99:?}"
        );
    }
    let csv = std::fs::read_to_string(dir.path().join("out/stuck/final_stats.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let column = header.iter().position(|c| *c == "unfinished").unwrap();
    let overall = csv.lines().last().unwrap().split(',').nth(column).unwrap();
    assert_eq!(overall.parse::<u64>().unwrap(), unfinished, "{csv}");
    let summary = std::fs::read_to_string(dir.path().join("out/summary.md")).unwrap();
    assert!(summary.contains("| unfinished |"), "{summary}");
}

/// A server whose listening process died while its supervisor lives on (a wrapper script, a
/// frontend whose workers crashed): connections are refused, and the load stops at once
/// instead of spinning on them for the rest of the run.
#[test]
fn a_server_that_stops_listening_ends_the_load_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deaf.yaml"),
        r#"settings: {ports: [PORT]}
services:
  - module: server
    label: deaf
    command: [sh, -c, 'python3 "$0" --port ${PORT} --crash-after 20; echo "worker died"; sleep 60', FAKESERVER]
    ready: {http: "http://127.0.0.1:${PORT}/v2/health/ready", timeout: 10s}
execution: [{scenario: s, concurrency: 8, hold-for: 60s}]
scenarios:
  s: {default-address: "http://127.0.0.1:${PORT}", requests: [/v2/health/live]}
"#
        .replace("FAKESERVER", &helpers::fakeserver().display().to_string()),
    )
    .unwrap();
    let started = Instant::now();
    let (code, stdout, stderr) = perfgate_in(
        dir.path(),
        &["run", "deaf.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "not the 60 s hold: {:?}",
        started.elapsed()
    );
    assert!(
        stdout.contains("server `deaf` stopped listening during the load"),
        "{stdout}"
    );
    assert!(stdout.contains("worker died"), "the log tail: {stdout}");
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/results.json")).unwrap(),
    )
    .unwrap();
    let refused: u64 = results["suites"][0]["labels"][0]["errors"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(message, _)| message.contains("refused"))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    assert!(
        (100..500).contains(&refused),
        "stopped soon after the first refusals: {refused}"
    );
}
