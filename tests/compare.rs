//! `perfgate compare OLD NEW` on synthetic results: exit codes, formats, the noise rule.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::path::Path;

use serde_json::{Value, json};

mod helpers;
use helpers::perfgate_in;

/// A results.json with one suite `s` and label `infer` whose per-second average latency is
/// `ms[i]` in second `i` (and the whole run's, their mean).
fn results(ms: &[f64], load_hash: &str, version: u32) -> Value {
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    let timeline: Vec<Value> = ms
        .iter()
        .enumerate()
        .flat_map(|(s, v)| {
            ["", "infer"].map(|label| {
                json!({"second": s, "seconds": 1, "label": label, "hits": 100, "fail": 0,
                       "bytes": 0, "dropped": 0, "served": 100, "concurrency": 4,
                       "avg_rt_ms": v, "p50_ms": v, "p90_ms": v * 1.1, "p99_ms": v * 1.2})
            })
        })
        .collect();
    let label = |name: &str| {
        json!({"label": name, "hits": 100 * ms.len(), "succ": 100 * ms.len(), "fail": 0,
               "bytes": 0, "dropped": 0, "concurrency": 4, "throughput": 100.0,
               "avg_rt_ms": mean, "avg_lt_ms": mean, "avg_ct_ms": null, "stdev_rt_ms": 1.0,
               "percentiles_ms": {"50.0": mean, "90.0": mean * 1.1, "99.0": mean * 1.2},
               "rc": {"200": 100 * ms.len()}, "errors": {}})
    };
    json!({
        "format_version": version, "tool": "perfgate test", "started_at": "2026-11-29T00:00:00Z",
        "duration_s": ms.len(), "status": "completed",
        "meta": {"git_commit": "abc", "git_dirty": false, "host": "h"},
        "suites": [{
            "name": "s", "path": "s.yaml", "status": "completed", "error": null, "seed": 1,
            "started_at": "2026-11-29T00:00:00Z", "duration_s": ms.len(), "executions": [],
            "labels": [label(""), label("infer")], "timeline": timeline,
            "identity": {"environment": null, "load_hash": load_hash}
        }]
    })
}

/// Latencies around `centre` with a spread of ±`spread` ms over 20 seconds.
fn around(centre: f64, spread: f64, phase: usize) -> Vec<f64> {
    (0..20)
        .map(|i| centre + spread * ((((i + phase) * 7) % 11) as f64 / 5.0 - 1.0))
        .collect()
}

/// The `avg-rt` row of label `infer` in `compare --format json` output.
fn avg_rt_of_infer(json: &str) -> Value {
    let v: Value = serde_json::from_str(json).unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["label"] == "infer" && r["kpi"] == "avg-rt")
        .cloned()
        .unwrap_or_else(|| panic!("{json}"))
}

fn write(dir: &Path, name: &str, v: &Value) -> String {
    std::fs::write(dir.join(name), v.to_string()).unwrap();
    name.to_owned()
}

fn compare(dir: &Path, old: &Value, new: &Value, extra: &[&str]) -> (i32, String) {
    let (a, b) = (write(dir, "old.json", old), write(dir, "new.json", new));
    let mut args = vec!["compare", a.as_str(), b.as_str()];
    args.extend_from_slice(extra);
    perfgate_in(dir, &args)
}

#[test]
fn a_regression_beyond_threshold_and_noise_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let old = results(&around(10.0, 0.5, 0), "h1", 2);
    let slower = results(&around(12.0, 0.5, 3), "h1", 2);
    let (code, out) = compare(dir.path(), &old, &slower, &[]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("REGRESSION"), "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .contains("REGRESSION(S) beyond 10%"),
        "{out}"
    );
    // A KPI's own threshold: avg-rt may get 50% worse, the others still 10%.
    let (code, out) = compare(
        dir.path(),
        &old,
        &slower,
        &["--kpi-threshold", "avg-rt=50%", "--format", "json"],
    );
    assert_eq!(code, 3, "{out}");
    assert_eq!(avg_rt_of_infer(&out)["verdict"], "ok", "{out}");
    let (code, out) = compare(dir.path(), &old, &slower, &["--kpi-threshold", "p42=5%"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("unknown KPI `p42`"), "{out}");
    // The same as an HTML page and as JUnit XML.
    let (code, out) = compare(
        dir.path(),
        &old,
        &slower,
        &["--html", "cmp.html", "--junit", "cmp.xml"],
    );
    assert_eq!(code, 3, "{out}");
    let page = std::fs::read_to_string(dir.path().join("cmp.html")).unwrap();
    assert!(page.contains("REGRESSION(S) beyond 10%"), "{page}");
    assert!(page.contains(r#"<tr class="failed">"#), "{page}");
    let junit = std::fs::read_to_string(dir.path().join("cmp.xml")).unwrap();
    assert!(
        junit.contains(r#"<testsuite name="s comparison""#),
        "{junit}"
    );
    assert!(
        junit.contains(r#"<testcase name="infer avg-rt""#),
        "{junit}"
    );
    assert!(junit.contains(r#"type="regression""#), "{junit}");
    // Identical runs, and a 5% change under the 10% threshold: nothing.
    let same = results(&around(10.0, 0.5, 5), "h1", 2);
    let (code, out) = compare(dir.path(), &old, &same, &[]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = compare(
        dir.path(),
        &old,
        &results(&around(10.5, 0.5, 2), "h1", 2),
        &[],
    );
    assert_eq!(code, 0, "{out}");
    // A lower threshold catches it.
    let (code, out) = compare(
        dir.path(),
        &old,
        &results(&around(10.8, 0.2, 2), "h1", 2),
        &["--threshold", "5%"],
    );
    assert_eq!(code, 3, "{out}");
}

/// A change beyond the threshold that the run-to-run noise explains is not a regression.
#[test]
fn a_change_within_the_noise_is_not_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let old = results(&around(10.0, 6.0, 0), "h1", 2);
    let new = results(&around(11.2, 6.0, 4), "h1", 2);
    let (code, out) = compare(dir.path(), &old, &new, &["--format", "json"]);
    assert_eq!(code, 0, "{out}");
    let avg = avg_rt_of_infer(&out);
    assert!(avg["change"].as_f64().unwrap() > 10.0, "{avg}");
    assert_eq!(avg["verdict"], "noise", "{avg}");
    let (lo, hi) = (
        avg["interval"][0].as_f64().unwrap(),
        avg["interval"][1].as_f64().unwrap(),
    );
    assert!(lo < 1.0 && hi > 1.0, "{avg}");
}

#[test]
fn formats_notes_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let old = results(&around(10.0, 0.5, 0), "h1", 2);
    let new = results(&around(10.0, 0.5, 1), "h2", 2);
    let (code, out) = compare(dir.path(), &old, &new, &["--format", "markdown"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("## compare: no regression"), "{out}");
    assert!(out.contains("| suite | label | kpi |"), "{out}");
    assert!(out.contains("its load changed since the baseline"), "{out}");
    // A suite the baseline does not have is said, not compared.
    let mut other = new.clone();
    other["suites"][0]["name"] = json!("t");
    let (code, out) = compare(dir.path(), &old, &other, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("suite `t`: not in the baseline"), "{out}");
    // Results of format 1 lack the histograms: refused, naming the file.
    let (code, out) = compare(dir.path(), &results(&[10.0], "h1", 1), &new, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("old.json is results format 1"), "{out}");
    let (code, out) = perfgate_in(dir.path(), &["compare", "missing.json", "new.json"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cannot read missing.json"), "{out}");
    let (code, out) = perfgate_in(
        dir.path(),
        &["compare", "old.json", "new.json", "--threshold", "lots"],
    );
    assert_eq!(code, 2, "{out}");
}

/// `results` started at `when` from commit `commit`.
fn run_at(when: &str, commit: &str, centre: f64) -> Value {
    let mut r = results(&around(centre, 0.5, 1), "h1", 2);
    r["started_at"] = json!(when);
    r["meta"]["git_commit"] = json!(commit);
    r
}

fn report(v: &Value) -> perfgate::report::RunReport {
    serde_json::from_value(v.clone()).unwrap()
}

/// A history keeps the last N runs, names them by time and commit, and gives each suite the
/// latest earlier run as its baseline (or the run of a revision); none when no run has it.
#[test]
fn a_history_rotates_and_picks_baselines() {
    use perfgate::compare::history;
    let dir = tempfile::tempdir().unwrap();
    let hist = dir.path().join("history");
    for (i, commit) in ["aaa111", "bbb222", "ccc333", "ddd444", "eee555"]
        .iter()
        .enumerate()
    {
        let r = report(&run_at(
            &format!("2026-11-2{}T02:00:00Z", i + 1),
            commit,
            10.0 + i as f64,
        ));
        history::store(&hist, &r, 3).unwrap();
    }
    let names: Vec<String> = history::runs(&hist)
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "2026-11-23T02-00-00Z__ccc333.json",
            "2026-11-24T02-00-00Z__ddd444.json",
            "2026-11-25T02-00-00Z__eee555.json"
        ]
    );
    let tonight = report(&run_at("2026-11-26T02:00:00Z", "fff666", 14.0));
    let suite = &tonight.suites[0];
    let latest = history::baseline(&hist, suite, &tonight.started_at, None)
        .unwrap()
        .unwrap();
    assert!(latest.0.ends_with("2026-11-25T02-00-00Z__eee555.json"));
    let by_rev = history::baseline(&hist, suite, &tonight.started_at, Some("ccc"))
        .unwrap()
        .unwrap();
    assert!(by_rev.0.ends_with("2026-11-23T02-00-00Z__ccc333.json"));
    assert!(
        history::baseline(&hist, suite, &tonight.started_at, Some("zzz"))
            .unwrap()
            .is_none()
    );
    // Only earlier runs: a run is never its own baseline.
    let first = report(&run_at("2026-11-20T02:00:00Z", "000000", 10.0));
    assert!(
        history::baseline(&hist, &first.suites[0], &first.started_at, None)
            .unwrap()
            .is_none()
    );
    // Another environment is another suite.
    let mut staging = tonight.clone();
    staging.suites[0].identity.environment = Some("staging".to_owned());
    assert!(
        history::baseline(&hist, &staging.suites[0], &staging.started_at, None)
            .unwrap()
            .is_none()
    );
    // A damaged file in the history is skipped and named, not fatal and not silent.
    std::fs::write(
        hist.join("2026-11-25T03-00-00Z__broken.json"),
        "{\"format_version\": 3, \"tru",
    )
    .unwrap();
    let latest = history::baseline(&hist, suite, &tonight.started_at, None)
        .unwrap()
        .unwrap();
    assert!(latest.0.ends_with("2026-11-25T02-00-00Z__eee555.json"));
    write(
        dir.path(),
        "tonight.json",
        &run_at("2026-11-26T02:00:00Z", "fff666", 14.0),
    );
    let (code, out) = perfgate_in(dir.path(), &["compare", "history", "tonight.json"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("note: skipped in the history:") && out.contains("__broken.json"),
        "{out}"
    );
    let (code, out) = perfgate_in(dir.path(), &["history", "history"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warning: skipped in the history:"), "{out}");
    std::fs::remove_file(hist.join("2026-11-25T03-00-00Z__broken.json")).unwrap();
    // `perfgate compare DIR NEW`: 14 ms against the latest (14 ms): no regression; against
    // commit ccc333's 12 ms it would be one.
    write(
        dir.path(),
        "tonight.json",
        &run_at("2026-11-26T02:00:00Z", "fff666", 14.0),
    );
    let (code, out) = perfgate_in(dir.path(), &["compare", "history", "tonight.json"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = perfgate_in(
        dir.path(),
        &[
            "compare",
            "history/2026-11-23T02-00-00Z__ccc333.json",
            "tonight.json",
        ],
    );
    assert_eq!(code, 3, "{out}");
}

/// `perfgate run --history DIR`: the first night has no baseline and passes; a night twice as
/// slow as the one before fails with exit 3 and says so on its last line; both nights are kept.
#[test]
fn a_run_with_a_history_gates_on_the_night_before() {
    let dir = tempfile::tempdir().unwrap();
    let suite = |latency: &str| {
        format!(
            r#"settings: {{ports: [PORT]}}
services:
  - module: server
    label: model
    command: ["${{PERFGATE}}", demo-server, --port, "${{PORT}}", --latency, {latency}]
    ready: {{http: "http://127.0.0.1:${{PORT}}/v2/health/ready", timeout: 30s}}
execution: [{{scenario: s, concurrency: 2, hold-for: 6s}}]
scenarios:
  s: {{default-address: "http://127.0.0.1:${{PORT}}", requests: [{{url: /v2/models/mlp/infer, label: infer, method: POST, body: {{inputs: [{{name: input, shape: [1, 4], datatype: FP32, data: [1, 2, 3, 4]}}]}}}}]}}
"#
        )
    };
    std::fs::write(dir.path().join("nightly.yaml"), suite("10ms")).unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &[
            "run",
            "nightly.yaml",
            "--no-progress",
            "-a",
            "n1",
            "--history",
            "hist",
        ],
    );
    assert_eq!(code, 0, "{out}");
    // (The 6 s load puts the next night in a later second than the first.)
    let first = std::fs::read_dir(dir.path().join("hist")).unwrap().count();
    assert_eq!(first, 1);
    std::fs::write(dir.path().join("nightly.yaml"), suite("20ms")).unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &[
            "run",
            "nightly.yaml",
            "--no-progress",
            "-a",
            "n2",
            "--history",
            "hist",
        ],
    );
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("vs baseline (hist)"), "{out}");
    assert!(out.contains("REGRESSION"), "{out}");
    let last = out.lines().rfind(|l| l.starts_with("perfgate: ")).unwrap();
    assert!(last.contains("regressed against the baseline"), "{out}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("hist")).unwrap().count(),
        2
    );
    // The deltas are beside the reports and in the summary CI shows.
    let summary = std::fs::read_to_string(dir.path().join("n2/summary.md")).unwrap();
    assert!(summary.contains("### nightly vs baseline `"), "{summary}");
    assert!(summary.contains("❌ REGRESSION"), "{summary}");
    let kept: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("n2/compare.json")).unwrap())
            .unwrap();
    assert!(
        kept["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["verdict"] == "regression")
    );
    // An explicit baseline that does not exist is an error, not a silent pass.
    let (code, out) = perfgate_in(
        dir.path(),
        &[
            "run",
            "nightly.yaml",
            "--no-progress",
            "-a",
            "n3",
            "--baseline",
            "nope.json",
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("the baseline `nope.json` does not exist"),
        "{out}"
    );
}

/// With a history, a KPI's night-to-night spread is noise too: +15% against a history that
/// swings by more than that is not a regression; against a steady history it is.
#[test]
fn a_history_that_swings_raises_the_bar() {
    let dir = tempfile::tempdir().unwrap();
    let nights = |name: &str, centres: &[f64]| {
        let hist = dir.path().join(name);
        for (i, centre) in centres.iter().enumerate() {
            let r = report(&run_at(&format!("2026-11-1{i}T02:00:00Z"), "abc", *centre));
            perfgate::compare::history::store(&hist, &r, 30).unwrap();
        }
    };
    nights("swinging", &[10.0, 13.0, 8.0, 12.5, 8.5, 10.0]);
    nights("steady", &[10.0, 10.1, 9.9, 10.0, 10.05, 10.0]);
    write(
        dir.path(),
        "tonight.json",
        &run_at("2026-11-20T02:00:00Z", "def", 11.5),
    );
    let (code, out) = perfgate_in(
        dir.path(),
        &["compare", "swinging", "tonight.json", "--format", "json"],
    );
    assert_eq!(code, 0, "{out}");
    let avg = avg_rt_of_infer(&out);
    assert_eq!(avg["verdict"], "noise", "{avg}");
    assert!(avg["between_runs"].as_f64().unwrap() > 15.0, "{avg}");
    let (code, out) = perfgate_in(dir.path(), &["compare", "steady", "tonight.json"]);
    assert_eq!(code, 3, "{out}");
}

/// Relative criteria in a suite: the first night (no baseline yet) is a notice; with
/// `settings.baseline` naming the night before, a latency twice as high fails the criterion,
/// and the reports show the baseline's value; `on-missing-baseline: fail` fails the first
/// night instead.
#[test]
fn relative_criteria_judge_against_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let suite = |latency: &str, settings: &str| {
        format!(
            r#"settings: {{ports: [PORT]{settings}}}
services:
  - module: server
    label: model
    command: ["${{PERFGATE}}", demo-server, --port, "${{PORT}}", --latency, {latency}]
    ready: {{http: "http://127.0.0.1:${{PORT}}/v2/health/ready", timeout: 30s}}
execution: [{{scenario: s, concurrency: 2, hold-for: 6s}}]
scenarios:
  s: {{default-address: "http://127.0.0.1:${{PORT}}", requests: [{{url: /v2/models/mlp/infer, label: infer, method: POST, body: {{inputs: [{{name: input, shape: [1, 4], datatype: FP32, data: [1, 2, 3, 4]}}]}}}}]}}
reporting:
  - module: passfail
    criteria:
      - avg-rt of infer>baseline+30%, continue as failed
      - subject: p90
        label: infer
        condition: '>'
        threshold: baseline*1.3
        stop: false
"#
        )
    };
    let run = |artifacts: &str| {
        perfgate_in(
            dir.path(),
            &["run", "nightly.yaml", "--no-progress", "-a", artifacts],
        )
    };
    std::fs::write(
        dir.path().join("nightly.yaml"),
        suite("10ms", ", baseline: n0/results.json"),
    )
    .unwrap();
    let (code, out) = run("n1");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no baseline"), "{out}");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("n1/results.json")).unwrap())
            .unwrap();
    let first = &results["suites"][0]["criteria"][0];
    assert_eq!(first["verdict"], "notice", "{first}");
    assert!(
        first["baseline"]["missing"]
            .as_str()
            .unwrap()
            .contains("does not exist yet"),
        "{first}"
    );
    // Night 2, twice as slow, against night 1.
    std::fs::write(
        dir.path().join("nightly.yaml"),
        suite("20ms", ", baseline: n1/results.json"),
    )
    .unwrap();
    let (code, out) = run("n2");
    assert_eq!(code, 3, "{out}");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("n2/results.json")).unwrap())
            .unwrap();
    for c in results["suites"][0]["criteria"].as_array().unwrap() {
        assert_eq!(c["verdict"], "failed", "{c}");
        let base = &c["baseline"];
        assert_eq!(base["run"], "results", "{c}");
        let value = base["value"].as_f64().unwrap();
        assert!((0.009..0.05).contains(&value), "{c}");
        assert!(
            c["threshold"].as_str().unwrap().starts_with("baseline"),
            "{c}"
        );
        assert!(c["detail"].as_str().unwrap().contains("(baseline "), "{c}");
    }
    let junit = std::fs::read_to_string(dir.path().join("n2/nightly/xunit.xml")).unwrap();
    assert!(junit.contains("baseline+30%"), "{junit}");
    // A first night that must have a baseline fails.
    std::fs::write(
        dir.path().join("nightly.yaml"),
        suite("10ms", ", baseline: none.json, on-missing-baseline: fail"),
    )
    .unwrap();
    let (code, out) = run("n3");
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("no baseline"), "{out}");
}

/// MMS's comparisons: `diff_percent` on a monitoring criterion (mean, max and min against the
/// baseline run) and `compare_criteria` with `diff_percent_run` (first against last reading),
/// in a comparison testsuite of their own named as MMS names them; `diff_percent: 0` passes
/// on equal values and fails on any change.
#[test]
fn mms_diff_percent_compares_series_with_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let suite = |workers: &str, baseline: &str| {
        format!(
            r#"settings: {{ports: [PORT], baseline: {baseline}}}
services:
  - module: server
    label: srv
    command: ["${{PERFGATE}}", demo-server, --port, "${{PORT}}", --workers, "{workers}"]
    ready: {{http: "http://127.0.0.1:${{PORT}}/v2/health/ready", timeout: 30s}}
    monitoring: {{interval: 500ms, metrics: [total_workers, total_processes]}}
execution: [{{scenario: s, concurrency: 1, hold-for: 3s}}]
scenarios:
  s: {{default-address: "http://127.0.0.1:${{PORT}}", requests: [/v2/health/ready]}}
reporting:
  - module: passfail
    criteria:
      - class: bzt.modules.monitoring.MonitoringCriteria
        subject: srv/total_workers
        condition: '>'
        threshold: 100
        timeframe: 1s
        diff_percent: 0
compare_criteria:
  - subject: total_processes
    diff_percent_run: 0
"#
        )
    };
    // These nights are about the series: the latency of a 3 s run of sub-millisecond
    // health checks (too short for a noise estimate) is not what they gate.
    let night = |workers: &str, baseline: &str, out: &str| {
        std::fs::write(dir.path().join("nightly.yaml"), suite(workers, baseline)).unwrap();
        perfgate_in(
            dir.path(),
            &[
                "run",
                "nightly.yaml",
                "--no-progress",
                "-a",
                out,
                "--baseline-threshold",
                "1000%",
            ],
        )
    };
    let (code, out) = night("2", "n0/results.json", "n1");
    assert_eq!(code, 0, "{out}");
    let junit = std::fs::read_to_string(dir.path().join("n1/nightly/xunit.xml")).unwrap();
    assert!(
        junit.contains(r#"<testsuite name="nightly comparison""#),
        "{junit}"
    );
    for name in [
        "mean_total_workers: diff_percent &lt; 0",
        "max_total_workers: diff_percent &lt; 0",
        "min_total_workers: diff_percent &lt; 0",
        "total_processes_diff_run &gt; 0",
    ] {
        assert!(junit.contains(name), "{name}: {junit}");
    }
    assert!(out.contains("no baseline"), "{out}");
    // Three workers against two: 40% apart, over 0.
    let (code, out) = night("3", "n1/results.json", "n2");
    assert_eq!(code, 3, "{out}");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("n2/results.json")).unwrap())
            .unwrap();
    let mean = results["suites"][0]["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "mean_total_workers: diff_percent < 0")
        .unwrap()
        .clone();
    assert_eq!(mean["verdict"], "failed", "{mean}");
    assert_eq!(mean["scope"], "comparison", "{mean}");
    assert!(
        (mean["observed"].as_f64().unwrap() - 40.0).abs() < 1e-9,
        "{mean}"
    );
    // Three against three: equal, so `diff_percent: 0` passes.
    let (code, out) = night("3", "n2/results.json", "n3");
    assert_eq!(code, 0, "{out}");
}

/// `perfgate history DIR`: a 10% step at night 20 of 30 is one change point, attributed to
/// night 20, with its size and confidence; a history whose latest night steps up exits 3.
#[test]
fn history_finds_where_a_step_began() {
    let dir = tempfile::tempdir().unwrap();
    let nights = |name: &str, centre: &dyn Fn(usize) -> f64| {
        let hist = dir.path().join(name);
        for i in 0..30 {
            // ±2% of night-to-night noise on top of the level.
            let wobble = 1.0 + (((i * 7919) % 13) as f64 / 13.0 * 4.0 - 2.0) / 100.0;
            let r = report(&run_at(
                &format!("2026-10-{:02}T02:00:00Z", i + 1),
                &format!("c{i:03}"),
                centre(i) * wobble,
            ));
            perfgate::compare::history::store(&hist, &r, 30).unwrap();
        }
    };
    nights("step", &|i| if i < 20 { 10.0 } else { 11.0 });
    let (code, out) = perfgate_in(dir.path(), &["history", "step", "--format", "json"]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let changes: Vec<&Value> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["label"] == "infer" && c["kpi"] == "avg-rt")
        .collect();
    assert_eq!(changes.len(), 1, "{out}");
    assert_eq!(changes[0]["index"], 20);
    assert!(
        changes[0]["run"].as_str().unwrap().ends_with("__c020"),
        "{out}"
    );
    assert_eq!(changes[0]["worse"], true);
    let size = changes[0]["change"].as_f64().unwrap();
    assert!((7.0..13.0).contains(&size), "{size}");
    assert!(changes[0]["confidence"].as_f64().unwrap() > 0.95);
    let (code, table) = perfgate_in(dir.path(), &["history", "step"]);
    assert_eq!(code, 0, "{table}");
    assert!(table.contains("began in run"), "{table}");
    assert!(table.contains("worse"), "{table}");
    // Tonight is the first night after the step: exit 3.
    nights("tonight", &|i| if i < 29 { 10.0 } else { 13.0 });
    let (code, out) = perfgate_in(dir.path(), &["history", "tonight"]);
    assert_eq!(code, 3, "{out}");
    let (code, out) = perfgate_in(dir.path(), &["history", "missing"]);
    assert_eq!(code, 1, "{out}");
}

/// A slow drift that no night shows against the night before (+2% a night) is a regression
/// once the history's change points show it began a few runs ago and tonight is beyond the
/// threshold against the runs before it.
#[test]
fn a_drift_across_nights_is_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let hist = dir.path().join("hist");
    let level = |i: usize| {
        if i < 10 {
            10.0
        } else {
            10.0 * 1.025f64.powi(i as i32 - 9)
        }
    };
    for i in 0..16 {
        let r = report(&run_at(
            &format!("2026-10-{:02}T02:00:00Z", i + 1),
            &format!("c{i:03}"),
            level(i),
        ));
        perfgate::compare::history::store(&hist, &r, 30).unwrap();
    }
    write(
        dir.path(),
        "tonight.json",
        &run_at("2026-10-20T02:00:00Z", "tonight", level(16)),
    );
    // Against the last night alone: +2.5%, nothing.
    let last = std::fs::read_dir(&hist)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let (code, out) = perfgate_in(
        dir.path(),
        &["compare", last.to_str().unwrap(), "tonight.json"],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = perfgate_in(
        dir.path(),
        &["compare", "hist", "tonight.json", "--format", "json"],
    );
    assert_eq!(code, 3, "{out}");
    let avg = avg_rt_of_infer(&out);
    assert_eq!(avg["verdict"], "regression", "{avg}");
    assert!(avg["shift"]["change"].as_f64().unwrap() > 10.0, "{avg}");
}

/// A history's older runs are read without their timelines: the same labels and identity,
/// no seconds.
#[test]
fn history_runs_are_read_light() {
    let dir = tempfile::tempdir().unwrap();
    let v = run_at("2026-11-20T02:00:00Z", "abc", 10.0);
    write(dir.path(), "r.json", &v);
    let full = perfgate::compare::load(&dir.path().join("r.json")).unwrap();
    let light = perfgate::compare::load_light(&dir.path().join("r.json")).unwrap();
    assert!(!full.suites[0].timeline.is_empty());
    assert!(light.suites[0].timeline.is_empty());
    assert_eq!(
        serde_json::to_value(&full.suites[0].labels).unwrap(),
        serde_json::to_value(&light.suites[0].labels).unwrap()
    );
    assert_eq!(full.suites[0].identity, light.suites[0].identity);
    assert_eq!(full.started_at, light.started_at);
    // A file of another format is refused as the full reading refuses it.
    write(dir.path(), "old.json", &results(&[10.0], "h1", 1));
    let e = perfgate::compare::load_light(&dir.path().join("old.json")).unwrap_err();
    assert!(e.to_string().contains("results format 1"), "{e}");
}
