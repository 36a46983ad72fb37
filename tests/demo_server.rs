//! `perfgate demo-server` as a separate process: the KServe v2 API, its process tree, SIGTERM.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Demo {
    child: Child,
    port: u16,
}

impl Demo {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_perfgate"))
            .args(["demo-server", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let port = first.rsplit(':').next().unwrap().parse().unwrap();
        // Keep reading so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let demo = Self { child, port };
        demo.wait_ready();
        demo
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self
                .request("GET", "/v2/health/ready", "")
                .map(|(status, _)| status)
                == Some(200)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("demo-server never became ready");
    }

    /// A minimal HTTP/1.1 exchange: (status, body).
    fn request(&self, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split(' ').nth(1)?.parse().ok()?;
        let body = response.split_once("\r\n\r\n")?.1.to_owned();
        Some((status, body))
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Processes whose parent is `pid`, read from /proc.
fn children_of(pid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit(')')
                        .next()?
                        .split_whitespace()
                        .nth(1)?
                        .parse::<i32>()
                        .ok()
                })
                == Some(pid)
        })
        .collect()
}

fn alive(pid: i32) -> bool {
    // A zombie has exited; only its exit status is left.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

const INPUT: &str = r#"{"id":"42","inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[[0.1,0.2,0.3,0.4],[1,-1,0.5,0]]}]}"#;

#[test]
fn serves_kserve_v2_with_a_known_output() {
    let demo = Demo::start(&[]);
    let (status, body) = demo.request("POST", "/v2/models/mlp/infer", INPUT).unwrap();
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["id"], "42");
    assert_eq!(json["outputs"][0]["shape"], serde_json::json!([2, 3]));
    let data: Vec<f64> = json["outputs"][0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let expected = [0.159_369_05, 0.695_547_76, 0.145_083_16];
    for (got, want) in data.iter().zip(expected) {
        assert!((got - want).abs() < 1e-6, "{data:?}");
    }
    let (status, body) = demo.request("GET", "/v2/models/mlp", "").unwrap();
    assert_eq!(
        (status, body.contains("\"platform\":\"perfgate-demo\"")),
        (200, true),
        "{body}"
    );
    let (status, _) = demo.request("GET", "/v2/models/other/ready", "").unwrap();
    assert_eq!(status, 404);
}

#[test]
fn bad_tensors_get_400_with_a_json_error() {
    let demo = Demo::start(&[]);
    let cases = [
        (
            r#"{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}"#,
            "must have shape [batch, 4]",
        ),
        (
            r#"{"inputs":[{"name":"input","shape":[1,4],"datatype":"BYTES","data":[1,2,3,4]}]}"#,
            "unsupported datatype `BYTES`",
        ),
        ("not json", "invalid inference request"),
    ];
    for (body, message) in cases {
        let (status, response) = demo.request("POST", "/v2/models/mlp/infer", body).unwrap();
        assert_eq!(status, 400, "{response}");
        let json: serde_json::Value = serde_json::from_str(&response).unwrap();
        assert!(
            json["error"].as_str().unwrap().contains(message),
            "{response}"
        );
    }
    let (status, metrics) = demo.request("GET", "/metrics", "").unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("demo_requests_total{code=\"400\"} 3"),
        "{metrics}"
    );
}

#[test]
fn workers_make_a_process_tree_that_sigterm_stops() {
    let mut demo = Demo::start(&["--workers", "2"]);
    let workers = children_of(demo.pid());
    assert_eq!(workers.len(), 2, "a supervisor and 2 workers");
    for _ in 0..20 {
        assert_eq!(
            demo.request("POST", "/v2/models/mlp/infer", INPUT)
                .unwrap()
                .0,
            200
        );
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(demo.pid()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = demo.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while workers.iter().any(|w| alive(*w)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        workers.iter().all(|w| !alive(*w)),
        "workers outlived the supervisor"
    );
}

/// `--max-concurrency 2 --latency 100ms`: six requests at once are served two at a time, so
/// the last of them waits for three rounds (a server of known capacity: 20 requests/s).
#[test]
fn max_concurrency_queues_the_rest() {
    let demo = Demo::start(&["--max-concurrency", "2", "--latency", "100ms"]);
    let start = Instant::now();
    let statuses: Vec<Option<u16>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    demo.request("POST", "/v2/models/mlp/infer", INPUT)
                        .map(|(status, _)| status)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == Some(200)), "{statuses:?}");
    // Never faster than the queue allows (a busy machine can only be slower).
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn error_rate_and_latency_knobs() {
    let demo = Demo::start(&["--error-rate", "1", "--latency", "50ms"]);
    let start = Instant::now();
    let (status, body) = demo.request("POST", "/v2/models/mlp/infer", INPUT).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert_eq!(status, 500, "{body}");
}

/// Reads a server-sent-events response as it arrives: each `data:` payload and when it came,
/// since the request was sent.
fn sse(port: u16, path: &str, body: serde_json::Value) -> (Vec<(String, Duration)>, Duration) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let sent = Instant::now();
        let mut response = client
            .post(format!("http://127.0.0.1:{port}{path}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "an SSE stream"
        );
        let (mut events, mut pending) = (Vec::new(), String::new());
        while let Some(chunk) = response.chunk().await.unwrap() {
            let at = sent.elapsed();
            pending.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = pending.find("\n\n") {
                let event: String = pending.drain(..end + 2).collect();
                let data = event.trim().strip_prefix("data: ").unwrap().to_owned();
                events.push((data, at));
            }
        }
        (events, sent.elapsed())
    })
}

/// The OpenAI-compatible endpoints stream deterministic tokens: the role at once, the first
/// token after `--ttft`, one more every `--itl`, the finish reason, the usage when asked,
/// then `[DONE]`; `max_tokens` cuts the reply (`length`); non-streamed replies carry usage.
/// Timings are checked as lower bounds only: a busy machine is late, never early.
#[test]
fn openai_compatible_streams_tokens_with_known_timing() {
    let demo = Demo::start(&["--ttft", "150ms", "--itl", "30ms", "--tokens", "6"]);
    let (events, total) = sse(
        demo.port,
        "/v1/chat/completions",
        serde_json::json!({"model": "mlp", "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "four words of prompt"}]}),
    );
    let json = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    assert_eq!(events.last().unwrap().0, "[DONE]");
    let content: Vec<(String, Duration)> = events
        .iter()
        .filter(|(d, _)| d != "[DONE]")
        .filter_map(|(d, at)| {
            let text = json(d)["choices"][0]["delta"]["content"]
                .as_str()?
                .to_owned();
            (!text.is_empty()).then_some((text, *at))
        })
        .collect();
    assert_eq!(content.len(), 6, "{events:#?}");
    assert_eq!(content[0].0, "the");
    assert!(
        content[0].1 >= Duration::from_millis(150),
        "ttft {:?}",
        content[0].1
    );
    for pair in content.windows(2) {
        assert!(pair[1].1 >= pair[0].1, "in order");
    }
    assert!(total >= Duration::from_millis(150 + 5 * 30), "{total:?}");
    let finish = json(&events[events.len() - 3].0);
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = json(&events[events.len() - 2].0);
    assert_eq!(usage["usage"]["completion_tokens"], 6);
    assert_eq!(usage["usage"]["prompt_tokens"], 4);
    // Completions, cut by max_tokens, without usage.
    let (events, _) = sse(
        demo.port,
        "/v1/completions",
        serde_json::json!({"prompt": "hi", "stream": true, "max_tokens": 2}),
    );
    let texts: Vec<String> = events
        .iter()
        .filter(|(d, _)| d != "[DONE]")
        .map(|(d, _)| {
            json(d)["choices"][0]["text"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(texts, ["the", " model"]);
    let finish = json(&events[events.len() - 2].0);
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    assert!(events.iter().all(|(d, _)| !d.contains("usage")));
    // Not streamed: one JSON answer with the usage.
    let (status, body) = demo
        .request(
            "POST",
            "/v1/chat/completions",
            r#"{"messages": [{"role": "user", "content": "one two"}], "max_tokens": 3}"#,
        )
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let reply = json(&body);
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "the model server"
    );
    assert_eq!(reply["choices"][0]["finish_reason"], "length");
    assert_eq!(reply["usage"]["total_tokens"], 5);
}

/// The inference route reports its component times twice: `Server-Timing` in milliseconds
/// and `X-Timing-Info` as a JSON object in seconds.
#[test]
fn inference_reports_component_times() {
    let demo = Demo::start(&[]);
    let mut stream = TcpStream::connect(("127.0.0.1", demo.port)).unwrap();
    let body = r#"{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}"#;
    write!(
        stream,
        "POST /v2/models/mlp/infer HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let header = |name: &str| {
        response
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
            .unwrap_or_else(|| panic!("no {name}: {response}"))
    };
    assert!(header("server-timing").contains("inference;dur="));
    let info: serde_json::Value = serde_json::from_str(&header("x-timing-info")).unwrap();
    for part in [
        "preprocessing",
        "inference",
        "postprocessing",
        "server_processing",
    ] {
        assert!(info[part].as_f64().unwrap() >= 0.0, "{part}: {info}");
    }
    let total = info["server_processing"].as_f64().unwrap();
    let parts = ["preprocessing", "inference", "postprocessing"]
        .iter()
        .map(|p| info[p].as_f64().unwrap())
        .sum::<f64>();
    assert!(parts <= total + 1e-9, "{info}");
}
