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

#[test]
fn error_rate_and_latency_knobs() {
    let demo = Demo::start(&["--error-rate", "1", "--latency", "50ms"]);
    let start = Instant::now();
    let (status, body) = demo.request("POST", "/v2/models/mlp/infer", INPUT).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert_eq!(status, 500, "{body}");
}
