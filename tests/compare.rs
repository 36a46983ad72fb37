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
    let v: Value = serde_json::from_str(&out).unwrap();
    let avg = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["label"] == "infer" && r["kpi"] == "avg-rt")
        .unwrap();
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
