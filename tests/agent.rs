//! Taurus `server-agent` monitoring end to end: a fake PerfMon ServerAgent on a loopback
//! port sends values; the suite's criteria and results.json read them as `label/metric`.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod helpers;

use std::io::{BufRead, BufReader, Write};

/// A fake agent: answers `test` with `Yep`, reads `interval` and `metrics`, then sends
/// `4\t37.5` every 100 ms until the client goes away.
fn fake_agent() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                if line.trim() != "test" {
                    return;
                }
                let _ = stream.write_all(b"Yep\n");
                for _ in 0..2 {
                    line.clear();
                    let _ = reader.read_line(&mut line);
                }
                while stream.write_all(b"4\t37.5\n").is_ok() {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            });
        }
    });
    port
}

#[test]
fn server_agent_values_reach_criteria_and_results() {
    let port = fake_agent();
    let dir = tempfile::tempdir().unwrap();
    let suite = format!(
        r#"
settings: {{ports: [PORT]}}
services:
  - module: server
    command: ["${{PERFGATE}}", "demo-server", "--port", "${{PORT}}"]
    ready: {{http: "http://127.0.0.1:${{PORT}}/v2/health/ready", timeout: 30s}}
  - module: monitoring
    server-agent:
      - address: 127.0.0.1:{port}
        label: remote
        interval: 1s
        metrics: [total_workers, sum_all_cpu_percent]
execution: [{{scenario: s, concurrency: 1, hold-for: 4s}}]
scenarios:
  s:
    default-address: "http://127.0.0.1:${{PORT}}"
    requests: [/v2/health/ready]
reporting:
  - module: passfail
    criteria:
      - remote/total_workers<4
      - remote/sum_all_cpu_percent>30
"#
    );
    std::fs::write(dir.path().join("s.yaml"), suite).unwrap();
    let (code, out) = helpers::perfgate_in(dir.path(), &["run", "s.yaml", "-a", "out"]);
    assert_eq!(
        code, 3,
        "the cpu criterion fails on the agent's 37.5: {out}"
    );
    assert!(out.contains("remote/sum_all_cpu_percent>30"), "{out}");
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/results.json")).unwrap(),
    )
    .unwrap();
    let series = results["suites"][0]["monitoring"].as_array().unwrap();
    let workers = series
        .iter()
        .find(|s| s["subject"] == "remote/total_workers")
        .unwrap();
    assert_eq!(workers["mean"], 4.0);
    let criteria = results["suites"][0]["criteria"].as_array().unwrap();
    let verdict = |name: &str| {
        criteria
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["verdict"].clone())
            .unwrap()
    };
    assert_eq!(verdict("remote/total_workers<4"), "passed");
    assert_eq!(verdict("remote/sum_all_cpu_percent>30"), "failed");
}
