//! Verdicts end to end against demo-server: criteria that pass (exit 0), a `stop` criterion
//! that ends the load early (exit 3), a server crash (exit 1, `<error>`); the JUnit files
//! parse back with quick-junit and match snapshots with timings redacted; untrusted labels are
//! escaped and secrets redacted everywhere; `perfgate report` re-renders the same files; and
//! the HTML report opens in headless Chromium with no console errors.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::path::{Path, PathBuf};
use std::process::Command;

mod helpers;
use helpers::perfgate_in;
use std::time::{Duration, Instant};

/// A demo-server suite: `server_args` after the port, `criteria` as YAML list items.
fn suite(server_args: &str, hold: &str, criteria: &[&str]) -> String {
    let criteria: String = criteria.iter().map(|c| format!("      - {c}\n")).collect();
    format!(
        r#"settings: {{ports: [PORT]}}
services:
  - module: server
    label: model-server
    command: ["${{PERFGATE}}", "demo-server", "--port", "${{PORT}}"{server_args}]
    ready: {{http: "http://127.0.0.1:${{PORT}}/v2/health/ready", timeout: 10s}}
    monitoring: {{metrics: [total_processes]}}
execution: [{{scenario: s, concurrency: 2, throughput: 50, hold-for: {hold}}}]
scenarios:
  s:
    default-address: "http://127.0.0.1:${{PORT}}"
    requests:
      - url: /v2/models/mlp/infer
        label: infer
        method: POST
        body: {{inputs: [{{name: input, shape: [1, 4], datatype: FP32, data: [1, 2, 3, 4]}}]}}
reporting:
  - module: passfail
    criteria:
{criteria}  - module: junit-xml
"#
    )
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

/// A JUnit file, after checking it as CI systems read it (junit-10.xsd, junitparser,
/// junit2html, xunit-viewer: see `helpers::check_junit`).
fn junit(path: impl AsRef<Path>) -> quick_junit::Report {
    helpers::check_junit(path.as_ref());
    quick_junit::Report::deserialize_from_str(&read(path)).unwrap()
}

/// JUnit text with what changes from run to run (times, timestamps, seeds, paths) redacted.
fn redacted(xml: &str) -> String {
    let rules = [
        (r#"time="[0-9.]+""#, r#"time="[time]""#),
        (r#"timestamp="[^"]+""#, r#"timestamp="[timestamp]""#),
        (
            r#"name="seed" value="\d+""#,
            r#"name="seed" value="[seed]""#,
        ),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[wall time]"),
        (r"observed: [0-9.]+(µs|ms|s)", "observed: [latency]"),
        (r"observed [0-9.]+(µs|ms|s)", "observed [latency]"),
        (r"second \d+", "second [n]"),
        (
            r"\d+ listening on http://127.0.0.1:\d+",
            "[pid] listening on http://127.0.0.1:[port]",
        ),
        (r"listening on \d+", "listening on [port]"),
        // Measured values: the properties CI charts, and percentages that depend on timing.
        (
            r#"(name="observed(-value)?: [^"]*" value=)"[^"]*""#,
            r#"$1"[observed]""#,
        ),
        (r"observed [0-9.]+%", "observed [percent]"),
        (r"nearest [0-9.]+(µs|ms|s)", "nearest [latency]"),
        (r"seconds \d+–\d+", "seconds [from]–[to]"),
    ];
    let mut out = xml.to_owned();
    for (pattern, with) in rules {
        out = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    out
}

#[test]
fn criteria_that_pass_exit_0_and_junit_parses_back() {
    let dir = tempfile::tempdir().unwrap();
    let text = suite(
        "",
        "3s",
        &[
            "avg-rt of infer>5s",
            "fail of infer>50%",
            "p99.9 of infer>10s within 2s",
            "model-server/total_processes>50 for 2s",
            "'expr: p(99, \"infer\") > 1000000'",
        ],
    )
    .replace("'expr: ", "{expr: '")
    .replace("1000000'", "1000000'}");
    std::fs::write(dir.path().join("pass.yaml"), text).unwrap();
    // $GITHUB_STEP_SUMMARY already holds an earlier step's summary.
    std::fs::write(dir.path().join("step-summary.md"), "# build\n\nall good\n").unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &[
            "run",
            "pass.yaml",
            "--no-progress",
            "-a",
            "out",
            "--summary-md",
            "step-summary.md",
            "--junit",
            "ci/junit.xml",
        ],
    );
    assert_eq!(code, 0, "{out}");
    // --summary-md appends (once, though reports are rewritten after every suite); --junit
    // puts the JUnit where CI wants it instead.
    let step = read(dir.path().join("step-summary.md"));
    assert!(
        step.starts_with("# build\n\nall good\n## perfgate: passed"),
        "{step}"
    );
    assert_eq!(step.matches("## perfgate:").count(), 1, "{step}");
    assert!(read(dir.path().join("out/summary.md")).starts_with("## perfgate: passed"));
    assert!(!dir.path().join("out/junit.xml").exists());
    std::fs::rename(
        dir.path().join("ci/junit.xml"),
        dir.path().join("out/junit.xml"),
    )
    .unwrap();
    assert!(out.contains("suite  criterion"), "final table: {out}");
    let report = junit(dir.path().join("out/junit.xml"));
    assert_eq!(report.tests, 5);
    assert_eq!(report.failures, 0);
    assert_eq!(report.errors, 0);
    let suite = &report.test_suites[0];
    assert_eq!(suite.name.as_str(), "pass");
    assert!(
        suite
            .test_cases
            .iter()
            .all(|c| c.classname.as_ref().map(|n| n.as_str()) == Some("pass"))
    );
    insta::assert_snapshot!(
        "junit_pass",
        redacted(&read(dir.path().join("out/junit.xml")))
    );
    // The suite's `junit-xml` has no data-source: as in Taurus, a testcase per label.
    let xunit = junit(dir.path().join("out/pass/xunit.xml"));
    assert_eq!(xunit.tests, 1);
    assert_eq!(xunit.test_suites[0].test_cases[0].name.as_str(), "infer");
}

#[test]
fn a_stop_criterion_ends_the_load_early_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let text = suite(
        r#", "--latency", "20ms""#,
        "60s",
        &["avg-rt of infer>5ms for 2s, stop as failed", "fail>50%"],
    );
    std::fs::write(dir.path().join("slow.yaml"), text).unwrap();
    let started = Instant::now();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "slow.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 3, "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped well before hold-for: {:?}",
        started.elapsed()
    );
    assert!(out.contains("triggered: stopping the load"), "{out}");
    let report = junit(dir.path().join("out/junit.xml"));
    assert_eq!((report.tests, report.failures, report.errors), (2, 1, 0));
    let xml = read(dir.path().join("out/junit.xml"));
    for fact in [
        "observed: ",
        "condition: &gt; 5ms",
        "logic: for 2s",
        "window start: second",
        "window end: second",
    ] {
        assert!(xml.contains(fact), "{fact} in {xml}");
    }
    insta::assert_snapshot!("junit_stop", redacted(&xml));
    let results: serde_json::Value =
        serde_json::from_str(&read(dir.path().join("out/results.json"))).unwrap();
    assert_eq!(
        results["suites"][0]["stopped_by"],
        "avg-rt of infer>5ms for 2s"
    );
    assert_eq!(results["suites"][0]["criteria"][0]["verdict"], "failed");
    assert_eq!(results["suites"][0]["criteria"][1]["verdict"], "passed");
}

#[test]
fn a_server_crash_is_an_error_testcase_with_the_log_tail() {
    let dir = tempfile::tempdir().unwrap();
    // The server falls over on its 11th request: during the load, however busy the machine.
    let text = r#"settings: {ports: [PORT]}
services:
  - module: server
    label: fragile
    command: [sh, -c, 'echo "fragile: about to fall over"; python3 "$0" --port "$1" --crash-after 10; exit 3', "FAKESERVER", "${PORT}"]
    ready: {tcp: "127.0.0.1:${PORT}", timeout: 10s}
execution: [{scenario: s, concurrency: 1, throughput: 20, hold-for: 30s}]
scenarios:
  s: {default-address: "http://127.0.0.1:${PORT}", requests: [/v2/health/ready]}
reporting:
  - module: passfail
    criteria: [fail>50%]
"#
    .replace("FAKESERVER", &helpers::fakeserver().display().to_string());
    std::fs::write(dir.path().join("crash.yaml"), text).unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "crash.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 1, "{out}");
    let report = junit(dir.path().join("out/junit.xml"));
    assert_eq!(report.errors, 1, "{out}");
    let xml = read(dir.path().join("out/crash/xunit.xml"));
    assert!(
        xml.contains(
            "<error message=\"server `fragile` exited during the load with exit status: 3\""
        ),
        "{xml}"
    );
    assert!(
        xml.contains("fragile: about to fall over"),
        "log tail: {xml}"
    );
    insta::assert_snapshot!(
        "junit_crash",
        redacted(&read(dir.path().join("out/junit.xml")))
    );
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn untrusted_text_is_escaped_secrets_are_redacted_and_reports_re_render() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"settings:
  ports: [PORT]
  env: {TOKEN: "tok-9f8e7d6c"}
  secrets: [TOKEN]
services:
  - module: server
    label: model-server
    command: ["${PERFGATE}", "demo-server", "--port", "${PORT}"]
    ready: {http: "http://127.0.0.1:${PORT}/v2/health/ready", timeout: 10s}
execution: [{scenario: s, concurrency: 1, throughput: 20, hold-for: 2s}]
scenarios:
  s:
    default-address: "http://127.0.0.1:${PORT}"
    headers: {Authorization: "Bearer abc.def.ghi", X-Api-Key: "key-1234567"}
    requests:
      - url: "/v2/health/ready?token=${TOKEN}"
        label: "<script>alert(1)</script>"
        headers: {Cookie: "session=s-42424242", X-Token: "${TOKEN}"}
reporting:
  - module: passfail
    criteria: ['avg-rt of "<script>alert(1)</script>">10s']
  - module: final-stats
    dump-xml: final_stats.xml
  - module: junit-xml
    filename: labels.xml
    data-source: sample-labels
"#;
    std::fs::write(dir.path().join("xss.yaml"), text).unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "xss.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 0, "{out}");
    let html = read(dir.path().join("out/report.html"));
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;")
            || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "escaped label"
    );
    assert!(
        !html.contains("<script>alert(1)"),
        "no live markup from a label"
    );
    assert!(!html.contains("<script"), "the report has no script at all");
    // `data-source: sample-labels`: a testcase per label, in the file `filename` names.
    let labels = junit(dir.path().join("out/xss/labels.xml"));
    let names: Vec<&str> = labels.test_suites[0]
        .test_cases
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["<script>alert(1)</script>"]);
    assert!(!dir.path().join("out/xss/xunit.xml").exists());
    for xml in [
        "out/junit.xml",
        "out/xss/labels.xml",
        "out/xss/final_stats.xml",
    ] {
        let text = read(dir.path().join(xml));
        assert!(!text.contains("<script>"), "{xml}: {text}");
    }
    quick_junit::Report::deserialize_from_str(&read(dir.path().join("out/junit.xml"))).unwrap();
    for path in files(&dir.path().join("out")) {
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        for secret in ["tok-9f8e7d6c", "abc.def.ghi", "key-1234567", "s-42424242"] {
            assert!(!text.contains(secret), "{} leaks {secret}", path.display());
        }
    }
    let effective = read(dir.path().join("out/xss/effective.yml"));
    assert!(
        effective.contains("Authorization: \"***\"")
            || effective.contains("Authorization: '***'")
            || effective.contains("Authorization: ***"),
        "{effective}"
    );
    // `perfgate report` renders the same files from results.json alone.
    let (code, out) = perfgate_in(dir.path(), &["report", "out/results.json", "-a", "again"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        read(dir.path().join("again/junit.xml")),
        read(dir.path().join("out/junit.xml"))
    );
    assert_eq!(
        read(dir.path().join("again/xss/final_stats.xml")),
        read(dir.path().join("out/xss/final_stats.xml"))
    );
    assert_eq!(
        read(dir.path().join("again/report.html")),
        read(dir.path().join("out/report.html"))
    );
    // A file that is not results.json is a clear error.
    std::fs::write(dir.path().join("bad.json"), "{\"suites\": 3}").unwrap();
    let (code, out) = perfgate_in(dir.path(), &["report", "bad.json"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("bad.json") && out.contains("not a perfgate results.json"),
        "{out}"
    );
}

/// Chromium's console messages (any level) while loading `url`, and the DOM it built.
fn chromium(url: &str, profile: &Path, extra: &[String]) -> (Vec<String>, String) {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    (console, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether Chromium is here; CI must have it (a test that needs it there cannot skip).
#[expect(clippy::print_stderr, reason = "a skipped test says so")]
fn have_chromium() -> bool {
    let found = Command::new("chromium").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install chromium (apt-get install chromium)"
        );
        eprintln!("skipped: no chromium on this machine (CI installs it)");
    }
    found
}

/// With a history, report.html has a "vs baseline" table and trend charts of the main KPIs
/// over the runs, this run shaded; Chromium renders them without a console message.
#[test]
fn the_trend_charts_render_in_headless_chromium() {
    if !have_chromium() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = suite(
        r#", "--latency", "5ms""#,
        "2s",
        &["p90 of infer>baseline+50%"],
    );
    std::fs::write(dir.path().join("trend.yaml"), text).unwrap();
    for night in ["n1", "n2", "n3"] {
        let (code, out) = perfgate_in(
            dir.path(),
            &[
                "run",
                "trend.yaml",
                "--no-progress",
                "-a",
                night,
                "--history",
                "hist",
            ],
        );
        assert!(code == 0 || code == 3, "{out}");
    }
    let url = format!("file://{}", dir.path().join("n3/report.html").display());
    let (console, dom) = chromium(
        &url,
        &dir.path().join("profile"),
        &["--dump-dom".to_owned()],
    );
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(
        dom.contains("<h3>vs baseline</h3>"),
        "the vs-baseline section"
    );
    assert!(
        dom.contains(r#"<table class="versus">"#),
        "the vs-baseline table"
    );
    assert!(
        dom.contains(r#"aria-label="Trend: response time (all labels), per run""#),
        "the latency trend chart"
    );
    assert!(
        dom.contains("runs of the history, oldest first (shaded: this run)"),
        "the trend's axis"
    );
    assert!(
        dom.contains("<title>this run</title>"),
        "this run is marked"
    );
    // Three runs: three points per trend line, the last one this run's.
    assert!(
        dom.contains("in this run: "),
        "a hover text for this run's point"
    );
}

/// A capacity sweep's page: the curves by load with the knee marked, the per-step table
/// and the bottleneck in words, rendered by Chromium without a console message.
#[test]
fn the_capacity_curve_renders_in_headless_chromium() {
    if !have_chromium() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = suite(
        r#", "--max-concurrency", "2", "--latency", "50ms""#,
        "1s",
        &["capacity.max-throughput<10/s"],
    )
    .replace(
        "execution: [{scenario: s, concurrency: 2, throughput: 50, hold-for: 1s}]",
        "execution: [{scenario: s, sweep: {concurrency: [1, 2, 4, 8], step: 3s, warm-up: 1s, slo: [\"p99<80ms\"]}}]",
    )
    .replace("monitoring: {metrics: [total_processes]}", "");
    assert!(text.contains("sweep:"), "{text}");
    std::fs::write(dir.path().join("sweep.yaml"), text).unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "sweep.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 0, "{out}");
    let url = format!("file://{}", dir.path().join("out/report.html").display());
    let (console, dom) = chromium(
        &url,
        &dir.path().join("profile"),
        &["--dump-dom".to_owned()],
    );
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(
        dom.contains(r#"aria-label="Capacity: throughput by load""#),
        "the throughput curve"
    );
    assert!(
        dom.contains(r#"aria-label="Capacity: latency by load""#),
        "the latency curve"
    );
    assert!(dom.contains("knee at 2"), "the knee marked: {out}");
    assert!(
        dom.contains(r#"<table class="capacity">"#),
        "per-step table"
    );
    assert!(
        dom.contains("<strong>Bottleneck: queueing</strong>"),
        "the bottleneck in words"
    );
    assert!(
        dom.contains(r#"aria-label="Capacity: CPU by load (% of one core)""#),
        "the evidence chart"
    );
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("capacity.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &url,
        &dir.path().join("profile-shot"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1200,2600".to_owned(),
        ],
    );
    assert!(std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0) > 10_000);
}

#[test]
fn the_html_report_renders_in_headless_chromium() {
    if !have_chromium() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = suite(
        r#", "--latency", "15ms""#,
        "30s",
        &[
            "avg-rt of infer>5ms for 2s, stop as failed",
            "p99 of infer>1s",
        ],
    );
    // A token stream too, for the LLM table and charts.
    let text = text.replace(
        "    requests:\n",
        "    requests:\n      - {url: /v1/chat/completions, label: chat, llm: openai-chat, prompt: hi, body: {model: mlp, stream: true}}\n",
    );
    std::fs::write(dir.path().join("page.yaml"), text).unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "page.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 3, "{out}");
    let report = dir.path().join("out/report.html");
    let url = format!("file://{}", report.display());

    // The detector works: a page with console errors is caught.
    let bad = dir.path().join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><script>console.error('x'); nope();</script>",
    )
    .unwrap();
    let (console, _) = chromium(
        &format!("file://{}", bad.display()),
        &dir.path().join("profile-bad"),
        &["--dump-dom".to_owned()],
    );
    assert!(!console.is_empty(), "console errors are seen");

    let (console, dom) = chromium(
        &url,
        &dir.path().join("profile"),
        &["--dump-dom".to_owned()],
    );
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(dom.contains("perfgate: failed"), "verdict banner");
    assert!(
        dom.contains(r#"<table class="criteria">"#),
        "criteria table"
    );
    assert!(
        dom.contains("avg-rt of infer&gt;5ms for 2s"),
        "criterion row"
    );
    assert!(dom.matches(r#"<svg class="chart""#).count() >= 4, "charts");
    // The model-server views: tokens, and the server's component times.
    assert!(dom.contains(r#"<table class="llm">"#), "LLM table");
    assert!(dom.contains("Token latency: chat"), "token latency chart");
    assert!(dom.contains("Tokens per second: chat"), "token rate chart");
    assert!(
        dom.contains(r#"<table class="breakdown">"#),
        "breakdown table"
    );
    assert!(dom.contains(r#"class="seg c0""#), "stacked bar");
    assert!(dom.contains("Server time: infer"), "component chart");
    assert!(
        dom.contains(r#"class="mark""#),
        "the triggered window is shaded"
    );

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("report.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &url,
        &dir.path().join("profile-shot"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1200,2000".to_owned(),
        ],
    );
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "a screenshot at {} ({size} bytes)",
        shot.display()
    );
}

/// The same criterion text at suite and execution level gives two testcases with distinct,
/// stable names, so viewers that key testcases by name do not merge them.
#[test]
fn testcase_names_are_unique_within_a_suite() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("twice.yaml"),
        r#"execution:
  - scenario: s
    concurrency: 1
    iterations: 3
    criteria: ["hits<1"]
scenarios:
  s: {requests: [{url: "http://127.0.0.1:9/", label: refused, timeout: 1s}]}
reporting:
  - module: passfail
    criteria: ["hits<1", "hits<1"]
"#,
    )
    .unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "twice.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 0, "{out}");
    let report = junit(dir.path().join("out/junit.xml"));
    let mut names: Vec<String> = report.test_suites[0]
        .test_cases
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["hits<1", "hits<1 #2", "hits<1 [execution 1]"]);
}

/// An invalid suite still gives CI a junit.xml with an `<error>` testcase holding the
/// diagnostics, and a summary.md, so it shows why instead of "no test results".
#[test]
fn an_invalid_suite_still_writes_junit_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("typo.yaml"),
        "execution: [{scenario: s, concurency: 1}]\nscenarios: {s: {requests: ['http://127.0.0.1:9/']}}\n",
    )
    .unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "typo.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("perfgate: ERROR in typo (invalid suite: unknown key `concurency`"),
        "{out}"
    );
    let report = junit(dir.path().join("out/junit.xml"));
    assert_eq!(report.errors, 1);
    let xml = read(dir.path().join("out/junit.xml"));
    assert!(
        xml.contains("typo.yaml:1:27: error: unknown key `concurency`"),
        "{xml}"
    );
    let summary = read(dir.path().join("out/summary.md"));
    assert!(summary.starts_with("## perfgate: error"), "{summary}");
}

/// Reports are written beside their target and renamed into place, so a symlink or a
/// device at a report's path is refused rather than replaced.
#[test]
fn a_report_path_that_is_a_symlink_or_device_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.yaml"),
        "execution: [{scenario: s, concurrency: 1, iterations: 1}]\nscenarios: {s: {requests: ['http://127.0.0.1:9/']}}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("precious"), "keep me").unwrap();
    std::os::unix::fs::symlink(dir.path().join("precious"), dir.path().join("link.xml")).unwrap();
    for target in ["link.xml", "/dev/null"] {
        let (code, out) = perfgate_in(
            dir.path(),
            &[
                "run",
                "s.yaml",
                "--no-progress",
                "-a",
                "out",
                "--junit",
                target,
            ],
        );
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("is not a regular file"), "{out}");
    }
    assert_eq!(read(dir.path().join("precious")), "keep me");
    assert!(
        std::fs::symlink_metadata(dir.path().join("link.xml"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

/// Secrets never appear in any output: not in any file of the artifacts directory (server
/// logs that echo request headers included), not on the console of `run`, `validate`, `list`
/// or a dry run. A failing post-process does not hide the server's crash.
#[test]
fn secrets_appear_in_no_file_and_no_console() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"settings:
  ports: [PORT]
  env: {TOKEN: "tok-77aa88bb", PASS: "pw-12ab34cd"}
  secrets: [TOKEN, PASS]
services:
  - module: server
    label: echo
    command: [python3, "FAKESERVER", --port, "${PORT}", --echo-headers, --crash-after, "6"]
    ready: {tcp: "127.0.0.1:${PORT}", timeout: 10s}
    post-process: ["exit 7"]
execution: [{scenario: s, concurrency: 1, throughput: 20, hold-for: 30s}]
scenarios:
  s:
    headers: {Authorization: "Bearer hdr-5566ccdd", X-Api-Key: "key-99ee00ff"}
    requests:
      - url: "http://user:${PASS}@127.0.0.1:${PORT}/a?token=${TOKEN}"
      - url: "http://127.0.0.1:${PORT}/b"
        headers: {Cookie: "sid=cookie-1a2b3c4d"}
reporting:
  - module: passfail
    criteria: ["fail>100%"]
"#
    .replace("FAKESERVER", &helpers::fakeserver().display().to_string());
    std::fs::write(dir.path().join("leak.yaml"), text).unwrap();
    let secrets = [
        "tok-77aa88bb",
        "pw-12ab34cd",
        "hdr-5566ccdd",
        "key-99ee00ff",
        "cookie-1a2b3c4d",
    ];
    let clean = |what: &str, text: &str| {
        for secret in secrets {
            assert!(!text.contains(secret), "{what} leaks {secret}:\n{text}");
        }
    };
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "leak.yaml", "--no-progress", "-a", "out"],
    );
    assert_eq!(code, 1, "{out}");
    clean("the run's console", &out);
    // The crash is the suite's error, not the failing post-process after it.
    assert!(
        out.contains("server `echo` exited during the load"),
        "{out}"
    );
    let log = read(dir.path().join("out/leak/echo.log"));
    assert!(
        log.contains("authorization"),
        "the server echoed headers: {log}"
    );
    for path in files(&dir.path().join("out")) {
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        clean(&path.display().to_string(), &text);
    }
    for args in [
        &["validate", "leak.yaml"][..],
        &["list", "leak.yaml"],
        &["list", "leak.yaml", "--format", "json"],
        &["run", "leak.yaml", "--dry-run"],
    ] {
        let (_, out) = perfgate_in(dir.path(), args);
        clean(&format!("{args:?}"), &out);
    }
    // An invalid suite's diagnostics quote its lines: a line holding a secret is masked, on
    // the console and in the junit.xml and summary.md written for it.
    let invalid = read(dir.path().join("leak.yaml"))
        .replace("    headers: {Authorization", "    headerz: {Authorization");
    assert!(invalid.contains("headerz"));
    std::fs::write(dir.path().join("leak.yaml"), invalid).unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &["run", "leak.yaml", "--no-progress", "-a", "invalid"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("unknown key `headerz`"), "{out}");
    clean("an invalid suite's diagnostics", &out);
    for path in files(&dir.path().join("invalid")) {
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        clean(&path.display().to_string(), &text);
    }
}

/// A request without a label is named by its URL as written, `${PORT}` and all, so its
/// criteria's testcase names are the same in every run (CI tracks testcases by name).
#[test]
fn testcase_names_are_stable_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"settings: {ports: [PORT]}
services:
  - module: server
    label: model
    command: ["${PERFGATE}", demo-server, --port, "${PORT}"]
    ready: {http: "http://127.0.0.1:${PORT}/v2/health/ready", timeout: 30s}
execution: [{scenario: s, concurrency: 1, iterations: 5}]
scenarios:
  s: {requests: ["http://127.0.0.1:${PORT}/v2/health/live"]}
reporting:
  - module: passfail
    criteria: ['avg-rt of "http://127.0.0.1:${PORT}/v2/health/live">10s']
"#;
    std::fs::write(dir.path().join("stable.yaml"), text).unwrap();
    let names = |out: &str| -> Vec<String> {
        let (code, console) = perfgate_in(
            dir.path(),
            &["run", "stable.yaml", "--no-progress", "-a", out],
        );
        assert_eq!(code, 0, "{console}");
        let report = junit(dir.path().join(out).join("junit.xml"));
        report.test_suites[0]
            .test_cases
            .iter()
            .map(|c| c.name.to_string())
            .collect()
    };
    let first = names("one");
    assert_eq!(
        first,
        ["avg-rt of http://127.0.0.1:${PORT}/v2/health/live>10s"]
    );
    assert_eq!(names("two"), first);
}

/// `perfgate report` on a crafted results.json writes only inside its `-a` directory: suite
/// names become one path component, report paths that climb out are refused.
#[test]
fn a_crafted_results_file_writes_only_inside_the_artifacts_directory() {
    let dir = tempfile::tempdir().unwrap();
    let suite = |name: &str, junit: &str| {
        serde_json::json!({
            "name": name, "path": "x.yaml", "status": "completed", "error": null, "seed": 1,
            "started_at": "2026-01-01T00:00:00Z", "duration_s": 1.0, "executions": [],
            "labels": [], "timeline": [], "monitoring": [], "criteria": [],
            "outputs": {"junit": [{"filename": junit, "sample_labels": false}], "dump_csv": null, "dump_xml": null}
        })
    };
    let results = |suites: Vec<serde_json::Value>| {
        serde_json::json!({
            "format_version": 1, "tool": "perfgate", "started_at": "2026-01-01T00:00:00Z",
            "duration_s": 1.0, "status": "completed", "suites": suites
        })
        .to_string()
    };
    std::fs::create_dir(dir.path().join("box")).unwrap();
    std::fs::write(
        dir.path().join("names.json"),
        results(vec![
            suite("../../escaped", "xunit.xml"),
            suite("..", "xunit.xml"),
        ]),
    )
    .unwrap();
    let (code, out) = perfgate_in(dir.path(), &["report", "names.json", "-a", "box/out"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        dir.path().join("box/out/.._.._escaped/xunit.xml").exists(),
        "{out}"
    );
    assert!(dir.path().join("box/out/___/xunit.xml").exists(), "{out}");
    assert!(!dir.path().join("escaped").exists());
    std::fs::write(
        dir.path().join("paths.json"),
        results(vec![suite("s", "../../../evil.xml")]),
    )
    .unwrap();
    let (code, out) = perfgate_in(dir.path(), &["report", "paths.json", "-a", "box/out2"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("leaves the suite's artifacts directory"),
        "{out}"
    );
    assert!(!dir.path().join("evil.xml").exists());
    assert!(!dir.path().join("box/evil.xml").exists());
}
