//! Servers under test and their monitoring, with `tests/helpers/fakeserver.py`: worker
//! counts, a leaking worker, readiness timeouts, crashes, SIGTERM-ignoring servers, MMS-style
//! daemons with `ServerLocalClient`, a Prometheus scrape of demo-server, and perfgate killed
//! outright. After each, no process of the test is alive (checked through /proc).

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::path::{Path, PathBuf};
use std::process::Command;

mod helpers;
use helpers::perfgate_in;
use std::time::{Duration, Instant};

fn helper() -> PathBuf {
    helpers::fakeserver()
}

/// Live (not zombie) processes whose command line contains `tag`.
fn processes_with(tag: &str) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        });
        if cmd.contains(tag) && !zombie && pid != std::process::id() as i32 {
            found.push((pid, cmd));
        }
    }
    found
}

/// Asserts that, within a few seconds, no process carries `tag`.
fn assert_none_left(tag: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_with(tag);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn unique_tag(name: &str) -> String {
    format!("pgtest-{name}-{}", std::process::id())
}

fn results(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("out/results.json")).unwrap()).unwrap()
}

/// The points of a monitoring series of the first suite.
fn series(results: &serde_json::Value, subject: &str) -> Vec<f64> {
    results["suites"][0]["monitoring"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subject"] == subject)
        .unwrap_or_else(|| panic!("no series {subject}"))["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .collect()
}

/// `perfgate run SUITE -a OUT` in `dir`, in the background, its output discarded.
fn spawn_run(dir: &Path, suite: &str, out: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .args(["run", suite, "--no-progress", "-a", out])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn server_suite(tag: &str, flags: &str, extra: &str, hold: &str) -> String {
    format!(
        r#"settings: {{ports: [PORT]}}
services:
  - module: server
    label: srv
    command: [python3, "{helper}", --port, "${{PORT}}", --tag, {tag}{flags}]
    ready: {{tcp: "127.0.0.1:${{PORT}}", timeout: 3s, interval: 100ms}}
{extra}execution: [{{scenario: s, concurrency: 2, throughput: 20, hold-for: {hold}}}]
scenarios:
  s: {{default-address: "http://127.0.0.1:${{PORT}}", requests: [/]}}
"#,
        helper = helper().display()
    )
}

#[test]
fn workers_are_counted_and_a_leaking_worker_shows_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let tag = unique_tag("leak");
    let suite = server_suite(
        &tag,
        ", --workers, \"4\", --zombie-workers, \"1\", --leak-mb-per-s, \"20\"",
        "    monitoring: {interval: 500ms, logging: true, metrics: [total_workers, total_processes, max_workers_memory_rss, sum_workers_memory_rss, frontend_cpu_percent, orphans, zombies]}\n",
        "4s",
    );
    std::fs::write(dir.path().join("leak.yaml"), suite).unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "leak.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 0, "{out}");
    let r = results(dir.path());
    let workers = series(&r, "srv/total_workers");
    // A zombie worker is neither a worker nor a process, as MMS's agent counts them.
    assert!(workers.iter().all(|w| *w == 3.0), "{workers:?}");
    assert!(series(&r, "srv/total_processes").iter().all(|p| *p == 4.0));
    assert!(series(&r, "srv/zombies").iter().all(|p| *p == 1.0));
    assert!(series(&r, "srv/orphans").iter().all(|p| *p == 0.0));
    let max = series(&r, "srv/max_workers_memory_rss");
    let sum = series(&r, "srv/sum_workers_memory_rss");
    let mb = |v: f64| v / 1024.0 / 1024.0;
    assert!(
        mb(max[max.len() - 1] - max[0]) > 30.0,
        "the leaking worker grows: {max:?}"
    );
    assert!(mb(sum[sum.len() - 1] - sum[0]) > 30.0, "{sum:?}");
    let csv = std::fs::read_to_string(dir.path().join("out/leak/metrics.csv")).unwrap();
    assert!(
        csv.starts_with("ts,total_workers,total_processes,max_workers_memory_rss,"),
        "{csv}"
    );
    assert!(csv.lines().count() >= 6, "{csv}");
    assert_none_left(&tag);
}

#[test]
fn a_readiness_timeout_is_a_suite_error_and_kills_the_workers() {
    let dir = tempfile::tempdir().unwrap();
    let tag = unique_tag("never");
    let suite = server_suite(&tag, ", --workers, \"2\", --never-ready", "", "5s");
    std::fs::write(dir.path().join("never.yaml"), suite).unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "never.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("was not ready after 3s"), "{out}");
    assert!(
        out.contains("fakeserver: loading, never ready"),
        "log tail: {out}"
    );
    assert_none_left(&tag);
}

#[test]
fn a_crash_during_the_load_is_a_suite_error_and_its_orphans_go() {
    let dir = tempfile::tempdir().unwrap();
    let tag = unique_tag("crash");
    let suite = server_suite(&tag, ", --workers, \"2\", --crash-after, \"10\"", "", "20s");
    std::fs::write(dir.path().join("crash.yaml"), suite).unwrap();
    let started = Instant::now();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "crash.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(started.elapsed() < Duration::from_secs(15), "ends early");
    assert!(out.contains("exited during the load"), "{out}");
    assert!(out.contains("fakeserver: crashing now"), "log tail: {out}");
    assert_eq!(results(dir.path())["suites"][0]["status"], "error");
    assert_none_left(&tag);
}

#[test]
fn a_server_that_stops_answering_during_the_load_is_a_suite_error() {
    let dir = tempfile::tempdir().unwrap();
    let tag = unique_tag("hang");
    let suite = format!(
        r#"settings: {{ports: [PORT]}}
services:
  - module: server
    label: srv
    command: [python3, "{helper}", --port, "${{PORT}}", --tag, {tag}, --workers, "1", --hang-after, "10"]
    ready: {{tcp: "127.0.0.1:${{PORT}}", http: "http://127.0.0.1:${{PORT}}/", timeout: 3s, interval: 100ms, watchdog: 2s}}
  - module: shellexec
    check: ["echo check >> checks.txt"]
execution: [{{scenario: s, concurrency: 2, throughput: 20, hold-for: 40s}}]
scenarios:
  s: {{default-address: "http://127.0.0.1:${{PORT}}", requests: [/]}}
"#,
        helper = helper().display()
    );
    std::fs::write(dir.path().join("hang.yaml"), suite).unwrap();
    let started = Instant::now();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "hang.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "ends early: {out}"
    );
    assert!(
        // The backlog may still take connections (no HTTP answer) or be full (no TCP
        // connection): both are a server that stopped answering.
        out.contains("server `srv` stopped answering during the load (no HTTP answer from")
            || out.contains("server `srv` stopped answering during the load (no TCP connection to"),
        "{out}"
    );
    assert!(out.contains("fakeserver: hanging now"), "log tail: {out}");
    let results = results(dir.path());
    assert_eq!(results["suites"][0]["status"], "error");
    // shellexec `check` ran beside the load, once a second.
    let checks = std::fs::read_to_string(dir.path().join("out/hang/checks.txt")).unwrap();
    assert!(checks.lines().count() >= 2, "{checks}");
    assert_none_left(&tag);
}

#[test]
fn a_slow_check_command_does_not_hold_up_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let tag = unique_tag("slowcheck");
    let suite = format!(
        r#"
services:
  - module: shellexec
    check: ["sleep 30 # {tag}"]
execution: [{{scenario: s, concurrency: 1, throughput: 10, hold-for: 3s}}]
scenarios:
  s: {{requests: [{{url: "http://127.0.0.1:9/", timeout: 200ms}}]}}
"#
    );
    std::fs::write(dir.path().join("slow.yaml"), suite).unwrap();
    let started = Instant::now();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "slow.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 0, "{out}");
    // Run inline, the first check would have held the dispatcher for 30 s.
    assert!(started.elapsed() < Duration::from_secs(15), "{out}");
    // The round still running when the load ended was killed.
    assert_none_left(&tag);
}

#[test]
fn a_panic_inside_perfgate_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let tag = unique_tag("panic");
    let extra = format!(
        "  - module: shellexec\n    startup: [{{command: \"sleep 60 # {tag}\", background: true}}]\n"
    );
    let suite = server_suite(&tag, ", --workers, \"2\"", &extra, "20s");
    std::fs::write(dir.path().join("panic.yaml"), suite).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .args(["run", "panic.yaml", "--no-progress", "-a", "out"])
        .current_dir(dir.path())
        .env("PERFGATE_TEST_PANIC", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("panics on purpose"), "{stderr}");
    assert!(stderr.contains("a bug"), "{stderr}");
    // It panicked with the server up and the background command running.
    let log = std::fs::read_to_string(dir.path().join("out/panic/srv.log")).unwrap();
    assert!(log.contains("2 workers started"), "{log}");
    assert_none_left(&tag);
}

#[test]
fn a_server_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let tag = unique_tag("stubborn");
    let suite = server_suite(
        &tag,
        ", --workers, \"2\", --ignore-term",
        "    stop: {signal: SIGTERM, grace: 1s}\n",
        "2s",
    );
    std::fs::write(dir.path().join("stubborn.yaml"), suite).unwrap();
    let started = Instant::now();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "stubborn.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 0, "{out}");
    let took = started.elapsed();
    assert!(
        took > Duration::from_secs(3) && took < Duration::from_secs(30),
        "waits the grace, then kills: {took:?}"
    );
    assert_none_left(&tag);
}

#[test]
fn perfgate_killed_outright_takes_its_servers_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let tag = unique_tag("sigkill");
    let suite = server_suite(&tag, ", --workers, \"2\", --ignore-term", "", "60s");
    std::fs::write(dir.path().join("kill.yaml"), suite).unwrap();
    let mut child = spawn_run(dir.path(), "kill.yaml", "out");
    let deadline = Instant::now() + Duration::from_secs(10);
    while processes_with(&tag).len() < 3 {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_none_left(&tag);
}

#[test]
fn an_mms_style_daemon_is_monitored_through_its_pid_file() {
    let dir = tempfile::tempdir().unwrap();
    let tag = unique_tag("mms");
    let suite = format!(
        r#"settings: {{ports: [PORT]}}
services:
  - module: shellexec
    prepare:
      - "python3 {helper} --daemon --pid-file {pid} --port ${{PORT}} --workers 2 --worker-name model_service_worker --tag {tag}"
      - "for i in $(seq 50); do [ -s {pid} ] && break; sleep 0.1; done; sleep 0.5"
    post-process:
      - "kill $(cat {pid}); echo stopped at exit code $TAURUS_EXIT_CODE > stopped.txt"
  - module: monitoring
    ServerLocalClient:
      - interval: 1s
        logging: true
        metrics: [total_workers, sum_workers_memory_rss, frontend_memory_rss, mem]
execution: [{{scenario: s, concurrency: 2, throughput: 20, hold-for: 3s}}]
scenarios:
  s: {{default-address: "http://127.0.0.1:${{PORT}}", requests: [/]}}
reporting:
  - module: passfail
    criteria:
      - class: bzt.modules.monitoring.MonitoringCriteria
        subject: ServerLocalClient/total_workers
        condition: '<'
        threshold: 2
        timeframe: 1s
      - ServerLocalClient/frontend_memory_rss>1KB, continue as failed
"#,
        helper = helper().display(),
        pid = dir.path().join(".model_server.pid").display(),
    );
    std::fs::write(dir.path().join("mms.yaml"), suite).unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "mms.yaml", "--no-progress", "-a", "out"],
    );
    // The MMS-style monitoring criterion passes; the cumulative one fails (exit 3), and the
    // post-process command saw that verdict.
    assert_eq!(code, 3, "{out}");
    let r = results(dir.path());
    assert_eq!(r["suites"][0]["labels"][0]["fail"], 0, "{out}");
    assert_eq!(r["suites"][0]["criteria"][0]["verdict"], "passed", "{out}");
    assert_eq!(r["suites"][0]["criteria"][1]["verdict"], "failed", "{out}");
    let workers = series(&r, "ServerLocalClient/total_workers");
    assert!(
        !workers.is_empty() && workers.iter().all(|w| *w == 2.0),
        "{workers:?}"
    );
    assert!(series(&r, "ServerLocalClient/frontend_memory_rss")[0] > 1e6);
    assert!(series(&r, "ServerLocalClient/mem")[0] > 0.0);
    let stopped = std::fs::read_to_string(dir.path().join("out/mms/stopped.txt")).unwrap();
    assert_eq!(stopped.trim(), "stopped at exit code 3");
    let csv = std::fs::read_to_string(dir.path().join("out/mms/metrics.csv")).unwrap();
    assert!(csv.starts_with("ts,total_workers,sum_workers_memory_rss,frontend_memory_rss,mem\n"));
    assert_none_left(&tag);
}

#[test]
fn a_daemon_nothing_stopped_is_killed_at_the_end_of_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let tag = unique_tag("forgotten");
    let suite = format!(
        r#"settings: {{ports: [PORT]}}
services:
  - module: shellexec
    prepare:
      - "python3 {helper} --daemon --pid-file p.pid --port ${{PORT}} --workers 1 --tag {tag}"
      - "sleep 1"
execution: [{{scenario: s, concurrency: 1, iterations: 5}}]
scenarios:
  s: {{default-address: "http://127.0.0.1:${{PORT}}", requests: [/]}}
"#,
        helper = helper().display(),
    );
    std::fs::write(dir.path().join("forgotten.yaml"), suite).unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "forgotten.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 0, "{out}");
    assert_none_left(&tag);
}

#[test]
fn a_failing_prepare_command_is_a_suite_error_unless_ignored() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fails.yaml"),
        r#"services:
  - module: shellexec
    prepare:
      - command: "echo about to fail; exit 4"
        ignore-failure: true
      - "echo this one counts >&2; exit 5"
execution: [{scenario: s, concurrency: 1, iterations: 1}]
scenarios:
  s: {requests: ["http://127.0.0.1:9/"]}
"#,
    )
    .unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "fails.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "shellexec prepare command `echo this one counts >&2; exit 5` exited with status 5"
        ),
        "{out}"
    );
    assert!(out.contains("this one counts"), "log tail: {out}");
}

#[test]
fn a_prometheus_scrape_of_demo_server_matches_the_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prom.yaml"),
        format!(
            r#"settings: {{ports: [PORT]}}
services:
  - module: server
    label: demo
    command: ["{exe}", demo-server, --port, "${{PORT}}"]
    ready: {{http: "http://127.0.0.1:${{PORT}}/v2/health/ready", timeout: 10s}}
  - module: monitoring
    prometheus:
      - url: "http://127.0.0.1:${{PORT}}/metrics"
        label: server
        interval: 1s
        metrics: ['demo_requests_total{{code="200"}}', demo_in_flight]
execution: [{{scenario: s, concurrency: 4, throughput: 100, hold-for: 6s}}]
scenarios:
  s: {{default-address: "http://127.0.0.1:${{PORT}}", requests: [/v2/health/live]}}
"#,
            exe = env!("CARGO_BIN_EXE_perfgate")
        ),
    )
    .unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "prom.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 0, "{out}");
    let r = results(dir.path());
    let rates = series(&r, "server/demo_requests_total{code=\"200\"}");
    assert!(rates.len() >= 3, "{rates:?}");
    // Leave out the first and last readings (ramping in and out); the scrape counts itself.
    let middle = &rates[1..rates.len() - 1];
    let mean = middle.iter().sum::<f64>() / middle.len() as f64;
    assert!(
        (mean - 101.0).abs() < 15.0,
        "rate {mean} vs 100 req/s: {rates:?}"
    );
    assert!(!series(&r, "server/demo_in_flight").is_empty());
}

/// `p95 of source/histogram`: a quantile of demo-server's own request-duration histogram,
/// from its bucket rates over the window (PromQL's histogram_quantile). Requests take 20 ms,
/// so the observations fall in the (16 ms, 32 ms] bucket and p95 interpolates to ~31 ms; the
/// histogram's own series is the mean of its observations.
#[test]
fn a_prometheus_histogram_gives_quantiles_for_criteria() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hist.yaml"),
        format!(
            r#"settings: {{ports: [PORT]}}
services:
  - module: server
    label: demo
    command: ["{exe}", demo-server, --port, "${{PORT}}", --latency, 20ms]
    ready: {{http: "http://127.0.0.1:${{PORT}}/v2/health/ready", timeout: 10s}}
  - module: monitoring
    prometheus:
      - url: "http://127.0.0.1:${{PORT}}/metrics"
        label: server
        interval: 500ms
        metrics: [demo_request_duration_seconds]
execution: [{{scenario: s, concurrency: 4, hold-for: 5s}}]
scenarios:
  s: {{default-address: "http://127.0.0.1:${{PORT}}", requests: [{{url: /v2/models/mlp/infer, method: POST, body: {{inputs: [{{name: input, shape: [1, 4], datatype: FP32, data: [1, 2, 3, 4]}}]}}}}]}}
reporting:
  - module: passfail
    criteria:
      - p95 of server/demo_request_duration_seconds>16ms, continue as failed
      - p95 of server/demo_request_duration_seconds>50ms within 2s, continue as failed
"#,
            exe = env!("CARGO_BIN_EXE_perfgate")
        ),
    )
    .unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "hist.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 3, "{out}");
    let r = results(dir.path());
    let criteria = r["suites"][0]["criteria"].as_array().unwrap();
    assert_eq!(criteria[0]["verdict"], "failed", "{out}");
    let p95 = criteria[0]["observed"].as_f64().unwrap();
    assert!((0.016..=0.032).contains(&p95), "p95 {p95}: {out}");
    assert_eq!(criteria[1]["verdict"], "passed", "{out}");
    assert_eq!(
        criteria[0]["subject"],
        "p95 of server/demo_request_duration_seconds"
    );
    let means = series(&r, "server/demo_request_duration_seconds");
    assert!(!means.is_empty());
    assert!(means.iter().all(|m| (0.019..0.2).contains(m)), "{means:?}");
}

#[test]
fn a_missing_program_is_named_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("missing.yaml"),
        r#"services:
  - module: server
    label: ghost
    command: [no-such-server-binary, --port, "1"]
    ready: {tcp: "127.0.0.1:9"}
execution: [{scenario: s, concurrency: 1, iterations: 1}]
scenarios:
  s: {requests: ["http://127.0.0.1:9/"]}
"#,
    )
    .unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "missing.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("`no-such-server-binary` is not an executable file or a program on PATH"),
        "{out}"
    );
}

/// A server's own `prepare` and `post-process` commands run under the guard: what they start
/// in the background goes when the suite ends, and when perfgate is killed outright.
#[test]
fn what_server_hooks_start_never_outlives_perfgate() {
    let dir = tempfile::tempdir().unwrap();
    let tag = unique_tag("hooks");
    let suite = |hold: &str| {
        format!(
            r#"settings: {{ports: [PORT]}}
services:
  - module: server
    label: srv
    command: [python3, "{helper}", --port, "${{PORT}}", --tag, {tag}-server]
    ready: {{tcp: "127.0.0.1:${{PORT}}", timeout: 10s}}
    prepare: ["sh -c 'sleep 60; : {tag}-prepare' &"]
    post-process: ["sh -c 'sleep 60; : {tag}-post' &"]
execution: [{{scenario: s, concurrency: 1, throughput: 5, hold-for: {hold}}}]
scenarios:
  s: {{default-address: "http://127.0.0.1:${{PORT}}", requests: [/]}}
"#,
            helper = helper().display()
        )
    };
    // A normal end: hooks in the background return at once; their daemons go with the run.
    std::fs::write(dir.path().join("hooks.yaml"), suite("1s")).unwrap();
    let started = Instant::now();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "hooks.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "background hooks do not block"
    );
    assert_none_left(&tag);
    // perfgate killed outright while a prepare's daemon runs.
    std::fs::write(dir.path().join("hooks.yaml"), suite("60s")).unwrap();
    let mut child = spawn_run(dir.path(), "hooks.yaml", "killed");
    let deadline = Instant::now() + Duration::from_secs(30);
    while processes_with(&format!("{tag}-prepare")).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the prepare daemon never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_none_left(&tag);
}

/// An overloaded server whose readiness probes go unanswered while the load's responses keep
/// completing is busy, not hung: the watchdog does not end the suite.
#[test]
fn a_server_that_answers_the_load_is_not_hung_though_its_probes_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let tag = unique_tag("busy");
    let suite = format!(
        r#"settings: {{ports: [PORT]}}
services:
  - module: server
    label: srv
    command: [python3, "{helper}", --port, "${{PORT}}", --tag, {tag}, --ready-hang-after, "3"]
    ready: {{http: "http://127.0.0.1:${{PORT}}/ready", timeout: 10s, interval: 100ms, watchdog: 2s}}
execution: [{{scenario: s, concurrency: 1, throughput: 20, hold-for: 6s}}]
scenarios:
  s: {{default-address: "http://127.0.0.1:${{PORT}}", requests: [/work]}}
"#,
        helper = helper().display()
    );
    std::fs::write(dir.path().join("busy.yaml"), suite).unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "busy.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("stopped answering"), "{out}");
    assert_none_left(&tag);
}

/// A second Ctrl-C skips the stop grace: with a server that ignores SIGTERM and a 60 s grace,
/// perfgate exits promptly after the second signal, reports written and nothing left.
#[test]
fn a_second_signal_skips_the_stop_grace() {
    let dir = tempfile::tempdir().unwrap();
    let tag = unique_tag("second");
    let suite = server_suite(
        &tag,
        ", --workers, \"1\", --ignore-term",
        "    stop: {signal: SIGTERM, grace: 60s}\n",
        "60s",
    );
    std::fs::write(dir.path().join("second.yaml"), suite).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .args(["run", "second.yaml", "--no-progress", "-a", "out"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = dir.path().join("out/second/srv.log");
    let wait_for = |text: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains(text)) {
            assert!(Instant::now() < deadline, "no `{text}` in the server's log");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    wait_for("listening on");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    // perfgate is now in the stop grace of a server that ignores SIGTERM.
    wait_for("ignoring SIGTERM");
    let second = Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        second.elapsed() < Duration::from_secs(20),
        "the second signal skipped the 60 s grace: {:?}",
        second.elapsed()
    );
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("out/results.json").exists());
    assert_none_left(&tag);
}

/// On SIGINT with requests stuck on a hung server, every report is written at once, before
/// the servers are stopped: here the server ignores SIGTERM for a 60 s grace and the requests
/// have a 60 s timeout, yet the reports appear while perfgate is still in that grace. The
/// requests stuck in flight are counted as unfinished. A second signal ends the grace.
#[test]
fn a_signal_during_a_hung_request_writes_every_report_before_the_servers_stop() {
    let dir = tempfile::tempdir().unwrap();
    let tag = unique_tag("hung");
    let suite = server_suite(
        &tag,
        ", --hang-after, \"20\", --ignore-term",
        "    stop: {signal: SIGTERM, grace: 60s}\n",
        "120s",
    )
    .replace("requests: [/]", "timeout: 60s, requests: [/]");
    std::fs::write(dir.path().join("hung.yaml"), suite).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .args(["run", "hung.yaml", "--no-progress", "-a", "out"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = dir.path().join("out/hung/srv.log");
    let wait_for = |text: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains(text)) {
            assert!(Instant::now() < deadline, "no `{text}` in the server's log");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("hanging now");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let signalled = Instant::now();
    let results_path = dir.path().join("out/results.json");
    let files = ["junit.xml", "report.html", "summary.md", "hung/xunit.xml"];
    let written = || {
        files
            .iter()
            .all(|f| dir.path().join("out").join(f).exists())
            && std::fs::read_to_string(&results_path)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .is_some_and(|r| r["status"] == "interrupted")
    };
    while !written() {
        assert!(
            signalled.elapsed() < Duration::from_secs(30),
            "no reports of an interrupted run"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let written = signalled.elapsed();
    eprintln!("reports written {written:?} after the signal");
    // The server still has most of its 60 s grace: the reports came first.
    assert!(child.try_wait().unwrap().is_none(), "perfgate still runs");
    assert!(
        written < Duration::from_secs(10),
        "reports within seconds, not after the timeout or the grace: {written:?}"
    );
    let r = results(dir.path());
    let all = &r["suites"][0]["labels"][0];
    assert_eq!(all["label"], "");
    assert!(all["unfinished"].as_u64().unwrap() >= 1, "{all}");
    assert_eq!(
        all["hits"].as_u64().unwrap(),
        all["succ"].as_u64().unwrap()
            + all["fail"].as_u64().unwrap()
            + all["unfinished"].as_u64().unwrap(),
        "{all}"
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_none_left(&tag);
}

/// During a load, results.json is rewritten every 10 s with what was measured so far, marked
/// incomplete: a SIGKILL (nothing can catch it) still leaves a valid one, and `perfgate
/// report` renders it as an incomplete run that does not pass.
#[test]
fn a_sigkill_leaves_the_last_checkpoint_of_results_json() {
    let dir = tempfile::tempdir().unwrap();
    let tag = unique_tag("checkpoint");
    let suite = server_suite(&tag, "", "", "120s");
    std::fs::write(dir.path().join("kill.yaml"), suite).unwrap();
    let mut child = spawn_run(dir.path(), "kill.yaml", "out");
    let path = dir.path().join("out/results.json");
    let checkpoint = || {
        std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .filter(|r| r["status"] == "incomplete")
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let seen = loop {
        if let Some(r) = checkpoint() {
            break r;
        }
        assert!(Instant::now() < deadline, "no checkpoint");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(seen["suites"][0]["status"], "incomplete");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_none_left(&tag);
    let r = results(dir.path());
    assert_eq!(r["status"], "incomplete", "{r}");
    let all = &r["suites"][0]["labels"][0];
    assert!(all["hits"].as_u64().unwrap() > 0, "{all}");
    assert!(!r["suites"][0]["timeline"].as_array().unwrap().is_empty());
    let (code, out) = perfgate_in(dir.path(), &["report", "out/results.json", "-a", "again"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("INCOMPLETE"), "{out}");
    let xml = std::fs::read_to_string(dir.path().join("again/junit.xml")).unwrap();
    assert!(xml.contains("incomplete"), "{xml}");
}

/// The end of the load waits for what is in flight only `settings.graceful-stop` (2 s by
/// default), not the requests' 60 s timeout: requests stuck on a hung server are then
/// cancelled and counted as unfinished.
#[test]
fn the_end_of_the_load_waits_only_the_graceful_stop() {
    let dir = tempfile::tempdir().unwrap();
    let tag = unique_tag("grace");
    let suite = server_suite(&tag, ", --hang-after, \"10\"", "", "3s")
        .replace("requests: [/]", "timeout: 60s, requests: [/]");
    std::fs::write(dir.path().join("grace.yaml"), suite).unwrap();
    let started = Instant::now();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "grace.yaml", "--no-progress", "-a", "out"],
    );
    let took = started.elapsed();
    assert_eq!(code, 0, "{out}");
    assert!(
        took < Duration::from_secs(40),
        "the drain is bounded by the grace, not the timeout: {took:?}"
    );
    assert!(out.contains("counted as unfinished"), "{out}");
    let r = results(dir.path());
    let all = &r["suites"][0]["labels"][0];
    // Both users are stuck on the hung server when the load ends.
    assert_eq!(all["unfinished"], 2, "{all}");
    assert_eq!(all["succ"], 10, "{all}");
    assert_none_left(&tag);
}
