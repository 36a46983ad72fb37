//! Criteria in every form the suite format accepts compile into the same model.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::process::Command;

fn criteria(suite: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.yaml"), suite).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .args(["list", "--format", "json", "s.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let suites: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    suites[0]["criteria"].clone()
}

const BASE: &str = "
modules:
  mon: {class: metrics_monitoring_inproc.Monitor}
services:
  - module: mon
    ServerLocalClient: [{metrics: [total_workers]}]
scenarios:
  s:
    default-address: http://127.0.0.1:9
    requests: [{url: /a, label: infer}, '/b']
";

#[test]
fn every_form_compiles() {
    let suite = format!(
        "{BASE}
execution:
  - scenario: s
    hold-for: 10s
    criteria: ['hits of infer<5']
reporting:
  - module: passfail
    criteria:
      too slow: avg-rt of infer>150ms
      by url: p99.9 of \"/b\">2s within 10s, stop
  - module: passfail
    criteria:
      - subject: fail
        label: infer
        condition: '!='
        threshold: 0
        logic: over
        timeframe: 30s
        stop: false
        fail: false
      - class: bzt.modules.monitoring.MonitoringCriteria
        subject: ServerLocalClient/total_workers
        condition: '<'
        threshold: 2
        timeframe: 1s
      - subject: rc4??
        condition: '>'
        threshold: 50%
        timeframe: -1
      - expr: 'hits(\"infer\") < 10 * hits(\"/b\")'
        message: balanced
---
scenarios:
  s:
    criteria: {{slow scenario: 'avg-rt of infer>1s for 5s, continue as non-failed'}}
"
    );
    let c = criteria(&suite);
    let names: Vec<&str> = c
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "hits of infer<5",
            "avg-rt of infer>1s for 5s",
            "avg-rt of infer>150ms",
            "p99.9 of /b>2s within 10s",
            "fail of infer!=0 over 30s",
            "ServerLocalClient/total_workers<2 for 1s",
            "rc4??>50%",
            "expr: hits(\"infer\") < 10 * hits(\"/b\")",
        ]
    );
    // scopes: execution, scenario, then suite-level reporters
    assert_eq!(
        c[0]["scope"],
        serde_json::json!({"scope": "execution", "name": 0})
    );
    assert_eq!(
        c[1]["scope"],
        serde_json::json!({"scope": "scenario", "name": "s"})
    );
    assert_eq!(c[2]["scope"], serde_json::json!({"scope": "suite"}));
    // dict of messages
    assert_eq!(c[1]["message"], "slow scenario");
    assert_eq!(c[2]["message"], "too slow");
    // actions
    assert_eq!(
        (c[1]["stop"].as_bool(), c[1]["fail"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(
        (c[3]["stop"].as_bool(), c[3]["fail"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(
        (c[4]["stop"].as_bool(), c[4]["fail"].as_bool()),
        (Some(false), Some(false))
    );
    // typed thresholds and windows; Taurus `timeframe: -1` means cumulative
    assert_eq!(
        c[3]["check"]["threshold"],
        serde_json::json!({"unit": "duration", "value": "2s"})
    );
    assert_eq!(c[3]["check"]["label"], "/b");
    assert_eq!(
        c[6]["check"]["threshold"],
        serde_json::json!({"unit": "percent", "value": 50.0})
    );
    assert_eq!(c[6]["window"], serde_json::Value::Null);
    assert_eq!(
        c[5]["check"]["subject"],
        serde_json::json!({"kind": "monitoring", "source": "ServerLocalClient", "metric": "total_workers"})
    );
    assert_eq!(c[7]["message"], "balanced");
}

/// A Prometheus selector with labels (values holding `{`, `}`, `,` and `/`) works as a
/// short-form subject and in `metric()`; a selector the source does not collect is an error.
#[test]
fn prometheus_selectors_with_labels_in_every_form() {
    let suite = r#"
services:
  - module: monitoring
    prometheus:
      - label: kserve
        url: http://127.0.0.1:9/metrics
        metrics: ['request_count{path="/v2/models/{model_name}/infer",code="200"}', request_seconds]
scenarios:
  s:
    default-address: http://127.0.0.1:9
    requests: [{url: /a, label: infer}]
execution: [{scenario: s, hold-for: 10s}]
reporting:
  - module: passfail
    criteria:
      - 'kserve/request_count{path="/v2/models/{model_name}/infer",code="200"}<1 for 5s'
      - expr: 'metric("kserve/request_count{path=\"/v2/models/{model_name}/infer\",code=\"200\"}") > 1000'
      - p95 of kserve/request_seconds>50ms for 10s
      - {subject: p99, label: kserve/request_seconds, condition: '>', threshold: 0.2}
      - avg of kserve/request_seconds>20ms
      - p95-ttft of infer>500ms for 10s
      - avg-server.inference of infer>40ms
      - goodput of infer<90%
"#;
    let c = criteria(suite);
    assert_eq!(
        c[0]["check"]["subject"],
        serde_json::json!({"kind": "monitoring", "source": "kserve",
            "metric": "request_count{path=\"/v2/models/{model_name}/infer\",code=\"200\"}"})
    );
    assert_eq!(c[0]["window"]["logic"], "for");
    assert!(c[1]["name"].as_str().unwrap().starts_with("expr: metric("));
    // A percentile of a Prometheus histogram, short and long.
    assert_eq!(c[2]["name"], "p95 of kserve/request_seconds>50ms for 10s");
    assert_eq!(
        c[2]["check"]["subject"],
        serde_json::json!({"kind": "histogram-quantile", "source": "kserve",
            "metric": "request_seconds", "agg": {"kind": "percentile", "level": 95.0}})
    );
    assert_eq!(c[2]["check"]["label"], "");
    assert_eq!(c[3]["check"]["subject"]["agg"]["level"], 99.0);
    // Its mean, and the named distributions of requests.
    assert_eq!(
        c[4]["check"]["subject"],
        serde_json::json!({"kind": "histogram-quantile", "source": "kserve",
            "metric": "request_seconds", "agg": {"kind": "avg"}})
    );
    assert_eq!(c[4]["name"], "avg of kserve/request_seconds>20ms");
    assert_eq!(
        c[5]["check"]["subject"],
        serde_json::json!({"kind": "measure", "agg": {"kind": "percentile", "level": 95.0}, "metric": "ttft"})
    );
    assert_eq!(c[5]["check"]["label"], "infer");
    assert_eq!(c[6]["check"]["subject"]["metric"], "server.inference");
    assert_eq!(
        c[7]["check"]["subject"],
        serde_json::json!({"kind": "kpi", "kpi": "goodput"})
    );
    assert_eq!(
        c[3]["check"]["threshold"],
        serde_json::json!({"unit": "number", "value": 0.2})
    );
    // Not collected: said, with the selectors that are.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, suite.replace(",code=\"200\"}<1", ",code=\"500\"}<1")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .args(["validate", path.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("does not collect"), "{text}");
    // A histogram the source does not collect is named with the fix.
    std::fs::write(
        &path,
        suite.replace(
            "p95 of kserve/request_seconds",
            "p95 of kserve/request_secs",
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .args(["validate", path.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("`kserve` does not collect `request_secs`"),
        "{text}"
    );
    assert!(text.contains("did you mean `request_seconds`"), "{text}");
}
