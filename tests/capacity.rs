//! Capacity sweeps against a demo server of known capacity (4 inferences at once, 100 ms
//! each: 40 requests/s): the knee is where the true one is, and no step serves more than the
//! server can.

mod helpers;

/// The demo server of 40 requests/s, managed by the suite.
const SERVER: &str = r#"settings: {ports: [PORT]}
services:
  - module: server
    command: ["${PERFGATE}", "demo-server", "--port", "${PORT}", "--max-concurrency", "4", "--latency", "100ms"]
    ready: {http: "http://127.0.0.1:${PORT}/v2/health/ready", timeout: 30s}
"#;

/// Inference requests to it.
const SCENARIO: &str = r#"scenarios:
  infer:
    default-address: "http://127.0.0.1:${PORT}"
    requests:
      - url: /v2/models/mlp/infer
        label: infer
        method: POST
        body: {inputs: [{name: input, shape: [1, 4], datatype: FP32, data: [1, 2, 3, 4]}]}
"#;

/// A suite against the demo server of 40 requests/s: `middle` is its executions and criteria.
fn against_known_capacity(middle: &str) -> String {
    format!("{SERVER}{middle}{SCENARIO}")
}

#[test]
fn a_sweep_finds_the_knee_of_a_known_capacity() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.yaml"),
        against_known_capacity(
            r#"execution:
  - scenario: infer
    sweep: {concurrency: [1, 2, 4, 8, 16], step: 4s, warm-up: 1s, slo: ["p99<180ms", "fail<1%"]}
reporting:
  - module: passfail
    criteria:
      - capacity.knee<2
      - capacity.max-throughput<20/s
      - capacity.slo-limit<8, continue as non-failed
      - capacity.saturation<4
"#,
        ),
    )
    .unwrap();
    let (code, out) = helpers::perfgate_in(dir.path(), &["run", "s.yaml", "-a", "out"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Capacity (steady window of each step)"),
        "{out}"
    );
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/results.json")).unwrap(),
    )
    .unwrap();
    let c = &results["suites"][0]["capacity"];
    assert_eq!(c["kind"], "concurrency");
    assert_eq!(c["steps"].as_array().unwrap().len(), 5);
    // Each step's window is its own, after its warm-up: 4 s steps from second 0.
    assert_eq!(
        (c["steps"][2]["from"].as_u64(), c["steps"][2]["to"].as_u64()),
        (Some(9), Some(12))
    );
    let max = c["max_throughput"].as_f64().unwrap();
    assert!(max <= 40.5, "never more than the server's capacity: {max}");
    assert!(max >= 20.0, "{c}");
    assert_eq!(c["knee"], 4.0, "{c}");
    assert_eq!(c["latency_knee"], 4.0, "{c}");
    // 8 users queue for a second round (>= 200 ms): the SLO limit is 4, 100% below 8.
    assert_eq!(c["slo_limit"], 4.0, "{c}");
    assert_eq!(c["slo_headroom"], 100.0, "{c}");
    assert_eq!(c["recommended"], 4.0, "{c}");
    assert!(
        c["steps"][3]["slo_missed"][0]
            .as_str()
            .unwrap()
            .starts_with("p99<180ms")
    );
    // The report draws the curves and the table.
    let html = std::fs::read_to_string(dir.path().join("out/report.html")).unwrap();
    assert!(
        html.contains("Capacity: throughput by load"),
        "throughput curve"
    );
    assert!(html.contains("Capacity: latency by load"), "latency curve");
    assert!(
        html.contains(r#"<table class="capacity">"#),
        "per-step table"
    );
    assert!(html.contains("knee at 4"), "the knee marked");
    // Criteria on the figures, judged once at the end.
    let verdicts: Vec<(String, String, f64)> = results["suites"][0]["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["verdict"].as_str().unwrap().to_owned(),
                c["observed"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    assert_eq!(
        verdicts[0],
        ("capacity.knee<2".into(), "passed".into(), 4.0)
    );
    assert_eq!(verdicts[1].1, "passed", "{verdicts:?}");
    assert_eq!(
        verdicts[2],
        ("capacity.slo-limit<8".into(), "notice".into(), 4.0),
        "4 users is under 8: the criterion holds, as a notice"
    );
    assert_eq!(verdicts[3].1, "passed", "{verdicts:?}");
    // Past the knee the queue shows in latency: 16 users wait 4 rounds.
    assert!(c["steps"][4]["p50_ms"].as_f64().unwrap() >= 390.0, "{c}");
}

/// The open model against 40 requests/s of capacity: below it latency stays at the
/// inference time; above it the queue grows every second. The search closes in on 40.
#[test]
fn a_search_finds_the_highest_rate_meeting_the_slos() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.yaml"),
        against_known_capacity(
            r#"execution:
  - scenario: infer
    search: {slo: ["p99<300ms", "fail<1%"], throughput: {min: 20, max: 80}, step: 3s, warm-up: 1s, precision: 10%}
"#,
        ),
    )
    .unwrap();
    let (code, out) = helpers::perfgate_in(dir.path(), &["run", "s.yaml", "-a", "out"]);
    assert_eq!(code, 0, "{out}");
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/results.json")).unwrap(),
    )
    .unwrap();
    let c = &results["suites"][0]["capacity"];
    assert_eq!(c["search"], true, "{c}");
    let steps = c["steps"].as_array().unwrap();
    let values: Vec<f64> = steps.iter().map(|s| s["value"].as_f64().unwrap()).collect();
    assert!(
        values.windows(2).all(|w| w[0] < w[1]),
        "probes read by load: {values:?}"
    );
    assert!(values.len() >= 4 && values.len() <= 12, "{values:?}");
    let limit = c["slo_limit"].as_f64().unwrap();
    assert!(
        (30.0..=45.0).contains(&limit),
        "the limit is near the true 40/s: {c}"
    );
    // The bracket closed: the lowest failing probe is within the precision of the limit.
    let fail = steps
        .iter()
        .filter(|s| !s["slo_missed"].as_array().unwrap().is_empty())
        .map(|s| s["value"].as_f64().unwrap())
        .reduce(f64::min)
        .unwrap();
    assert!(fail > limit && fail <= limit * 1.1 + 0.01, "{c}");
    assert_eq!(c["recommended"], limit);
    assert!(
        out.contains("note: search: ") && out.contains("meets every SLO"),
        "{out}"
    );
}
