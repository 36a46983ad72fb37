//! Model-server measurements end to end against `perfgate demo-server`: token streams (TTFT,
//! ITL, TPOT, tokens, finish reasons, goodput), broken and endless streams, server-side
//! component times, and criteria on all of them.
//!
//! The demo server's stream is deterministic (time to first token, then one token per
//! inter-token latency), so the measured values can never be below its delays; on a busy
//! machine they can be later, so medians are allowed 40 ms of lateness (the stated tolerance).

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod helpers;

use serde_json::Value;

/// Runs `suite` (with a demo server started by the suite itself) and returns the exit code,
/// the console and results.json.
fn run(suite: &str) -> (i32, String, Value) {
    run_with(suite, &[])
}

/// Like [`run`], with more files beside the suite.
fn run_with(suite: &str, files: &[(&str, &str)]) -> (i32, String, Value) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.yaml"), suite).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let (code, out) = helpers::perfgate_in(dir.path(), &["run", "s.yaml", "-a", "out"]);
    let text = std::fs::read_to_string(dir.path().join("out/results.json"))
        .unwrap_or_else(|e| panic!("no results.json ({e}): {out}"));
    (code, out, serde_json::from_str(&text).unwrap())
}

fn label<'a>(results: &'a Value, name: &str) -> &'a Value {
    results["suites"][0]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["label"] == name)
        .unwrap_or_else(|| panic!("no label {name}"))
}

fn server(knobs: &str) -> String {
    format!(
        r#"
settings:
  ports: [PORT]
services:
  - module: server
    command: ["${{PERFGATE}}", "demo-server", "--port", "${{PORT}}", "--model", "m", {knobs}]
    ready: {{http: "http://127.0.0.1:${{PORT}}/v2/health/ready", timeout: 30s}}
"#
    )
}

/// TTFT, ITL, TPOT, e2e and tokens against the deterministic stream: 100 ms to the first
/// token, then 8 more tokens 20 ms apart; the prompt is 12 words (the demo server counts words).
#[test]
fn token_stream_measurements_match_the_servers_timing() {
    let suite = format!(
        r#"{}
execution:
  - {{scenario: s, concurrency: 2, iterations: 6}}
scenarios:
  s:
    default-address: "http://127.0.0.1:${{PORT}}"
    requests:
      - url: /v1/chat/completions
        label: chat
        llm: openai-chat
        prompt-tokens: 12
        body: {{model: m, stream: true}}
        goodput: {{ttft: 5s}}
      - url: /v1/completions
        label: capped
        llm: openai-completions
        prompt: "one two three"
        body: {{model: m, stream: true, max_tokens: 4}}
      - url: /v1/chat/completions
        label: whole
        llm: openai-chat
        messages: [{{role: user, content: "a b"}}]
        body: {{model: m}}
reporting:
  - module: passfail
    criteria:
      - p95-ttft of chat>5s
      - avg-itl of chat>1s
      - goodput of chat<100%
      - truncated of capped<100%
"#,
        server(r#""--ttft", "100ms", "--itl", "20ms", "--tokens", "9""#)
    );
    let (code, out, results) = run(&suite);
    assert_eq!(code, 0, "{out}");
    let chat = label(&results, "chat");
    let d = &chat["distributions"];
    let ms = |name: &str, key: &str| d[name][key].as_f64().unwrap();
    // Never earlier than the server's delays; medians within the tolerance.
    assert!(ms("ttft", "min") >= 100.0, "{}", d["ttft"]);
    let p50 = |name: &str| d[name]["percentiles"]["50.0"].as_f64().unwrap();
    assert!(p50("ttft") < 140.0, "ttft {}", d["ttft"]);
    // One late arrival shortens the gap after it: only the median is bounded below.
    assert!(p50("itl") >= 19.0 && p50("itl") < 60.0, "itl {}", d["itl"]);
    assert_eq!(d["itl"]["count"], 6 * 8, "8 gaps per reply of 9 tokens");
    assert!(p50("tpot") >= 20.0 && p50("tpot") < 60.0, "{}", d["tpot"]);
    assert!(ms("e2e", "min") >= 100.0 + 8.0 * 20.0, "{}", d["e2e"]);
    assert_eq!(
        (ms("output-tokens", "min"), ms("output-tokens", "max")),
        (9.0, 9.0)
    );
    assert_eq!(
        (ms("input-tokens", "min"), ms("input-tokens", "max")),
        (12.0, 12.0)
    );
    assert_eq!(d["output-tokens"]["unit"], "tokens");
    assert_eq!(d["ttft"]["unit"], "ms");
    let llm = &chat["llm"];
    assert_eq!(llm["requests"], 6);
    assert_eq!(
        (llm["good"].as_u64(), llm["judged"].as_u64()),
        (Some(6), Some(6))
    );
    assert_eq!(llm["finish_reasons"]["stop"], 6);
    assert_eq!(llm["tokens_counted"], 0, "usage was asked for and given");
    // max_tokens cuts the reply: finish_reason length, 4 tokens.
    let capped = label(&results, "capped");
    assert_eq!(capped["llm"]["truncated"], 100.0);
    assert_eq!(capped["distributions"]["output-tokens"]["max"], 4.0);
    assert_eq!(capped["distributions"]["input-tokens"]["max"], 3.0);
    // A whole response: e2e and tokens from usage, no stream timings.
    let whole = &label(&results, "whole")["distributions"];
    assert_eq!(whole["output-tokens"]["max"], 9.0);
    assert!(whole.get("ttft").is_none() && whole.get("itl").is_none());
    assert!(whole["e2e"]["min"].as_f64().unwrap() >= 260.0);
    // The timeline has the per-second measures for the charts.
    let timeline = results["suites"][0]["timeline"].as_array().unwrap();
    assert!(
        timeline
            .iter()
            .any(|r| r["label"] == "chat" && r["measures"]["ttft"]["count"].as_u64() > Some(0))
    );
    for criterion in [
        "p95-ttft of chat>5s",
        "goodput of chat<100%",
        "truncated of capped<100%",
    ] {
        assert!(out.contains(criterion), "{criterion} in {out}");
    }
}

/// A stream the server breaks off, and one that never ends, fail their samples with the
/// reason; a criterion on the same label sees them (goodput counts them as not good).
#[test]
fn broken_and_endless_streams_fail_with_their_reason() {
    let suite = format!(
        r#"{}
execution:
  - {{scenario: s, concurrency: 1, iterations: 1}}
scenarios:
  s:
    default-address: "http://127.0.0.1:${{PORT}}"
    requests:
      - url: /v1/chat/completions
        label: broken
        llm: openai-chat
        prompt: hi
        body: {{model: m, stream: true, demo_break_after: 2}}
        goodput: {{e2e: 10s}}
      - url: /v1/chat/completions
        label: endless
        llm: openai-chat
        prompt: hi
        timeout: 1500ms
        body: {{model: m, stream: true, demo_stall_after: 3}}
reporting:
  - module: passfail
    criteria:
      - goodput of broken<100%
"#,
        server(r#""--ttft", "10ms", "--itl", "10ms", "--tokens", "8""#)
    );
    let (code, out, results) = run(&suite);
    assert_eq!(code, 3, "failed samples fail the gate: {out}");
    let broken = label(&results, "broken");
    assert_eq!(broken["fail"], 1);
    let reason = broken["errors"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    // The abort may overtake the last token in flight: 1 or 2 content events arrived.
    assert!(reason.contains("the event stream broke after"), "{reason}");
    assert_eq!(broken["llm"]["good"], 0);
    let endless = label(&results, "endless");
    assert_eq!(endless["fail"], 1);
    let reason = endless["errors"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    assert!(
        reason.contains("timeout: the event stream did not end within 1s 500ms (3 content events)"),
        "{reason}"
    );
}

/// Server-Timing and X-Timing-Info of the inference route become `server.<name>`
/// distributions and `network`; criteria read them.
#[test]
fn server_component_times_per_label() {
    let suite = format!(
        r#"{}
execution:
  - {{scenario: s, concurrency: 1, iterations: 10}}
scenarios:
  s:
    default-address: "http://127.0.0.1:${{PORT}}"
    requests:
      - url: /v2/models/m/infer
        label: infer
        method: POST
        body: {{inputs: [{{name: input, shape: [1, 4], datatype: FP32, data: [0.1, 0.2, 0.3, 0.4]}}]}}
reporting:
  - module: passfail
    criteria:
      - p99-server.inference of infer>1s
      - avg-network of infer>1s
"#,
        server(r#""--latency", "30ms""#)
    );
    let (code, out, results) = run(&suite);
    assert_eq!(code, 0, "{out}");
    let infer = label(&results, "infer");
    let d = &infer["distributions"];
    for name in [
        "server.preprocessing",
        "server.inference",
        "server.postprocessing",
        "server.server_processing",
        "network",
    ] {
        assert_eq!(d[name]["count"], 10, "{name}: {d}");
    }
    // The demo server's extra latency is spent in inference.
    assert!(
        d["server.inference"]["min"].as_f64().unwrap() >= 30.0,
        "{d}"
    );
    let total = d["server.server_processing"]["mean"].as_f64().unwrap();
    let rt = infer["avg_rt_ms"].as_f64().unwrap();
    let network = d["network"]["mean"].as_f64().unwrap();
    assert!(
        (rt - total - network).abs() < 0.01,
        "{rt} = {total} + {network}"
    );
    assert!(infer.get("malformed_timing").is_none());
}

/// Prompts from data sources: a JSON Lines file of chat messages and a CSV of prompt texts;
/// the server's usage counts each prompt's words, so input tokens tell which rows were sent.
#[test]
fn prompts_from_jsonl_and_csv_data_sources() {
    let suite = format!(
        r#"{}
execution:
  - {{scenario: chat, concurrency: 1, iterations: 4}}
  - {{scenario: text, concurrency: 1, iterations: 2}}
scenarios:
  chat:
    default-address: "http://127.0.0.1:${{PORT}}"
    data-sources: [{{path: prompts.jsonl}}]
    requests:
      - url: /v1/chat/completions
        label: chat
        llm: openai-chat
        messages: "${{messages}}"
        body: {{model: m, stream: true, max_tokens: 2}}
  text:
    default-address: "http://127.0.0.1:${{PORT}}"
    data-sources: [{{path: prompts.csv}}]
    requests:
      - url: /v1/completions
        label: text
        llm: openai-completions
        prompt: "${{prompt}}"
        body: {{model: m, stream: true}}
"#,
        server(r#""--ttft", "5ms", "--itl", "1ms", "--tokens", "6""#)
    );
    let jsonl = concat!(
        r#"{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "one two three"}], "max": 2}"#,
        "\n\n",
        r#"{"messages": [{"role": "user", "content": "hello"}], "max": 5}"#,
        "\n"
    );
    let csv = "prompt\nalpha beta gamma delta\nepsilon\n";
    let (code, out, results) = run_with(&suite, &[("prompts.jsonl", jsonl), ("prompts.csv", csv)]);
    assert_eq!(code, 0, "{out}");
    let chat = &label(&results, "chat")["distributions"];
    assert!(chat.get("input-tokens").is_some(), "{out} {results}");
    // Rows 1, 2, 1, 2: 5 and 1 prompt words (the system message counts too).
    assert_eq!(chat["input-tokens"]["count"], 4);
    assert_eq!(
        (
            chat["input-tokens"]["min"].as_f64(),
            chat["input-tokens"]["max"].as_f64()
        ),
        (Some(1.0), Some(5.0))
    );
    assert_eq!(chat["output-tokens"]["max"], 2.0);
    assert!((chat["input-tokens"]["mean"].as_f64().unwrap() - 3.0).abs() < 1e-9);
    let text = &label(&results, "text")["distributions"];
    assert_eq!(
        (
            text["input-tokens"]["min"].as_f64(),
            text["input-tokens"]["max"].as_f64()
        ),
        (Some(1.0), Some(4.0))
    );
}
