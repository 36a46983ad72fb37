//! The load engine against in-process servers on port 0: counts, concurrency, rates, stalls
//! and every request feature, asserting what the server received.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use perfgate::plan::SuitePlan;
use perfgate::report::RunReport;
use perfgate::run::{RunOptions, run_suites};

mod helpers;

#[derive(Clone, Debug)]
struct Received {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: String,
}

#[derive(Default)]
struct ServerState {
    received: Mutex<Vec<Received>>,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    delay: Duration,
    /// Requests arriving in [from, to) after start wait until `to`.
    stall: Option<(Duration, Duration)>,
    started: Mutex<Option<Instant>>,
}

struct TestServer {
    port: u16,
    state: Arc<ServerState>,
}

impl TestServer {
    async fn start(delay: Duration, stall: Option<(Duration, Duration)>) -> Self {
        let state = Arc::new(ServerState {
            delay,
            stall,
            ..ServerState::default()
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { port, state }
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

async fn handle(State(state): State<Arc<ServerState>>, request: Request) -> Response {
    let now = Instant::now();
    let started = *state.started.lock().unwrap().get_or_insert(now);
    let n = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(n, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    state.received.lock().unwrap().push(Received {
        method: parts.method.to_string(),
        path: parts.uri.to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    if let Some((from, to)) = state.stall {
        let at = now - started;
        if at >= from && at < to {
            tokio::time::sleep(to - at).await;
        }
    }
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    let response = respond(&path, &parts.headers, &body).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn respond(path: &str, headers: &HeaderMap, _body: &Bytes) -> Response {
    match path {
        "/login" => (
            [(header::SET_COOKIE, "session=abc123; Path=/")],
            axum::Json(serde_json::json!({"token": "t-123", "items": [{"id": 7}, {"id": 8}], "note": "ref=42"})),
        )
            .into_response(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            StatusCode::OK.into_response()
        }
        "/missing" => StatusCode::NOT_FOUND.into_response(),
        "/big" => vec![b'x'; 3 << 20].into_response(),
        // 1 GiB, an endless body, and one that stalls after its first chunk: streamed, so
        // the server holds one chunk at a time.
        "/huge" => streamed(Some(1 << 30), false),
        "/endless" => streamed(None, false),
        "/stalled" => streamed(None, true),
        "/bye" => ([(header::CONNECTION, "close")], "bye").into_response(),
        "/go" => (StatusCode::FOUND, [(header::LOCATION, "/whoami?from=go")]).into_response(),
        "/go307" => (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, "/kept")]).into_response(),
        "/whoami" => {
            let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok()).unwrap_or("none").to_owned();
            axum::Json(serde_json::json!({"cookie": cookie})).into_response()
        }
        _ => axum::Json(serde_json::json!({"ok": true})).into_response(),
    }
}

/// A body of 64 KiB chunks: `len` bytes (forever without), or one chunk and then nothing
/// (the connection stays open) when `stall`. The sender stops when the client goes away.
fn streamed(len: Option<u64>, stall: bool) -> Response {
    let (mut tx, body) = http_body_util::channel::Channel::<bytes::Bytes>::new(4);
    tokio::spawn(async move {
        let chunk = bytes::Bytes::from(vec![b'x'; 64 << 10]);
        let mut sent = 0u64;
        while len.is_none_or(|len| sent < len) {
            if tx.send_data(chunk.clone()).await.is_err() {
                return;
            }
            sent += chunk.len() as u64;
            if stall {
                // Hold the connection open without another byte.
                std::future::pending::<()>().await;
            }
        }
    });
    let mut response = axum::body::Body::new(body).into_response();
    if let Some(len) = len {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, len.into());
    }
    response
}

/// Loads `yaml` (with `{port}` replaced) as a suite in `dir`.
fn suite(dir: &std::path::Path, yaml: &str, port: u16) -> SuitePlan {
    helpers::suite_plan(dir, &yaml.replace("{port}", &port.to_string()))
}

async fn run(plan: SuitePlan, dir: &std::path::Path) -> RunReport {
    let opts = RunOptions {
        artifacts_dir: dir.join("reports"),
        destinations: Default::default(),
        progress: false,
        fail_fast: false,
        seed: 7,
        environment: None,
        baselines: Default::default(),
    };
    let (mut console, mut tables) = (Vec::new(), Vec::new());
    run_suites(vec![plan], &opts, &mut console, &mut tables)
        .await
        .unwrap()
}

fn stats<'a>(report: &'a RunReport, label: &str) -> &'a perfgate::report::model::LabelStats {
    report.suites[0]
        .labels
        .iter()
        .find(|l| l.label == label)
        .unwrap_or_else(|| panic!("no label {label}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iterations_are_exact() {
    let server = TestServer::start(Duration::ZERO, None).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = suite(
        dir.path(),
        "execution: [{scenario: s, concurrency: 5, iterations: 25}]
scenarios:
  s:
    default-address: http://127.0.0.1:{port}
    requests: [/a, /b]",
        server.port,
    );
    let report = run(plan, dir.path()).await;
    eprintln!("{:#?}", report.suites[0].labels[0]);
    assert_eq!(server.received().len(), 50);
    assert_eq!(stats(&report, "").hits, 50);
    assert_eq!(stats(&report, "/a").hits, 25);
    assert_eq!(stats(&report, "/a").rc.get("200"), Some(&25));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_concurrency_is_honoured() {
    let server = TestServer::start(Duration::from_millis(40), None).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = suite(
        dir.path(),
        "execution: [{scenario: s, concurrency: 8, hold-for: 1500ms}]
scenarios:
  s: {default-address: 'http://127.0.0.1:{port}', requests: [/x]}",
        server.port,
    );
    let started = Instant::now();
    let report = run(plan, dir.path()).await;
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(server.state.max_in_flight.load(Ordering::SeqCst), 8);
    // 8 users × 1.5 s / 40 ms ≈ 300 requests.
    let hits = stats(&report, "").hits;
    assert!((200..=310).contains(&hits), "{hits}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_caps_the_closed_model() {
    let server = TestServer::start(Duration::ZERO, None).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = suite(
        dir.path(),
        "execution: [{scenario: s, concurrency: 4, throughput: 50, hold-for: 2s}]
scenarios:
  s: {default-address: 'http://127.0.0.1:{port}', requests: [/x]}",
        server.port,
    );
    run(plan, dir.path()).await;
    let n = server.received().len();
    assert!((95..=105).contains(&n), "50 req/s for 2 s, got {n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_rate_is_within_2_percent() {
    let server = TestServer::start(Duration::from_millis(5), None).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = suite(
        dir.path(),
        "execution: [{scenario: s, throughput: 200, arrival: constant, concurrency: 50, hold-for: 3s}]
scenarios:
  s: {default-address: 'http://127.0.0.1:{port}', requests: [/x]}",
        server.port,
    );
    let report = run(plan, dir.path()).await;
    let n = server.received().len() as f64;
    assert!((n - 600.0).abs() <= 12.0, "200/s for 3 s: {n}");
    assert_eq!(stats(&report, "").dropped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_latency_and_dropped() {
    let server = TestServer::start(
        Duration::ZERO,
        Some((Duration::from_millis(1000), Duration::from_millis(2000))),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let plan = suite(
        dir.path(),
        "execution: [{scenario: s, throughput: 100, arrival: constant, concurrency: 20, hold-for: 3s}]
scenarios:
  s: {default-address: 'http://127.0.0.1:{port}', requests: [{url: /x, label: x}]}",
        server.port,
    );
    let report = run(plan, dir.path()).await;
    let x = stats(&report, "x");
    // 20 slots fill within 0.2 s of the stall; the rest of that second's ~80 arrivals drop.
    assert!(x.dropped >= 60, "dropped {}", x.dropped);
    // The first stalled request waited ~1 s: measured from its scheduled time, it shows.
    assert!(
        x.percentiles_ms["100.0"] >= 900.0,
        "max {:?}",
        x.percentiles_ms
    );
    assert!(
        x.percentiles_ms["99.0"] >= 500.0,
        "p99 {:?}",
        x.percentiles_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_features_reach_the_server() {
    let server = TestServer::start(Duration::ZERO, None).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.csv"),
        "user,pass\nalice,a1\nbob,b2\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("payload.json"), r#"{"from": "file"}"#).unwrap();
    std::fs::write(dir.path().join("kitten.jpg"), b"JPEGDATA").unwrap();
    let plan = suite(
        dir.path(),
        r#"execution: [{scenario: main, concurrency: 1, iterations: 2}]
scenarios:
  common:
    requests:
      - {url: /included, label: included}
  main:
    default-address: http://127.0.0.1:{port}
    headers: {X-Suite: perfgate, X-Both: scenario}
    variables: {model: mlp}
    data-sources: [users.csv]
    requests:
      - url: /login
        method: POST
        headers: {X-Both: request}
        body: {user: '${user}', model: '${model}'}
        extract-jsonpath: {token: '$.token', second_id: {jsonpath: '$.items[*].id', match-no: 2}}
        extract-regexp: {ref: 'ref=(\d+)'}
      - url: /items/${second_id}?t=${token}&ref=${ref}
        label: item
      - url: /form
        method: POST
        headers: {Content-Type: application/x-www-form-urlencoded}
        body: {name: '${user}', pass: '${pass}'}
      - {url: /file, method: PUT, body-file: payload.json}
      - url: /upload
        method: POST
        upload-files: [{param: image, path: kitten.jpg, mime-type: image/jpeg}]
      - /whoami
      - url: /missing
        label: missing
      - url: /assert
        assert: [{contains: ['nope'], subject: body}]
      - {url: /slow, label: slow, timeout: 200ms}
      - set-variables: {stage: two}
      - transaction: tx
        do:
          - {url: '/tx/${stage}', label: tx-inner}
      - loop: 3
        do: [{url: /looped, label: looped}]
      - include-scenario: common
"#,
        server.port,
    );
    let report = run(plan, dir.path()).await;
    let got = server.received();
    let at = |path: &str| {
        got.iter()
            .filter(|r| r.path.starts_with(path))
            .cloned()
            .collect::<Vec<_>>()
    };

    let login = at("/login");
    assert_eq!(login.len(), 2);
    assert_eq!(login[0].method, "POST");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&login[0].body).unwrap(),
        serde_json::json!({"user": "alice", "model": "mlp"})
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&login[1].body).unwrap()["user"],
        "bob",
        "CSV rows in order"
    );
    assert_eq!(login[0].headers["x-suite"], "perfgate");
    assert_eq!(
        login[0].headers["x-both"], "request",
        "request headers override scenario headers"
    );
    assert_eq!(login[0].headers["content-type"], "application/json");
    assert_eq!(
        at("/items")[0].path,
        "/items/8?t=t-123&ref=42",
        "extractors feed later requests"
    );
    assert_eq!(at("/form")[0].body, "name=alice&pass=a1");
    assert_eq!(at("/file")[0].body, r#"{"from": "file"}"#);
    let upload = &at("/upload")[0];
    assert!(
        upload.headers["content-type"].starts_with("multipart/form-data"),
        "{upload:?}"
    );
    assert!(
        upload
            .body
            .contains("name=\"image\"; filename=\"kitten.jpg\"")
            && upload.body.contains("JPEGDATA"),
        "{}",
        upload.body
    );
    assert!(upload.body.contains("Content-Type: image/jpeg"));
    assert_eq!(
        at("/whoami")[0].headers.get("cookie").map(String::as_str),
        Some("session=abc123"),
        "cookies are kept"
    );
    assert_eq!(at("/tx/two").len(), 2, "set-variables");
    assert_eq!(at("/looped").len(), 6);
    assert_eq!(at("/included").len(), 2);

    assert_eq!(stats(&report, "missing").fail, 2, "status >= 400 fails");
    assert_eq!(stats(&report, "missing").rc.get("404"), Some(&2));
    assert_eq!(stats(&report, "/assert").fail, 2, "failed assertion");
    assert!(
        stats(&report, "/assert")
            .errors
            .keys()
            .any(|e| e.contains("assertion failed: body does not match `nope`"))
    );
    let slow = stats(&report, "slow");
    assert_eq!(slow.rc.get("Exception"), Some(&2), "timeout");
    assert!(
        slow.errors.keys().all(|e| e.starts_with("timeout")),
        "{:?}",
        slow.errors
    );
    assert_eq!(
        stats(&report, "tx").hits,
        2,
        "a transaction is a sample of its own"
    );
    assert_eq!(stats(&report, "looped").hits, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_cookies_and_keep_alive() {
    let server = TestServer::start(Duration::ZERO, None).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = suite(
        dir.path(),
        r#"execution: [{scenario: main, concurrency: 2, iterations: 10}]
scenarios:
  main:
    default-address: http://127.0.0.1:{port}
    requests:
      - /login
      - {url: /go, label: go}
      - {url: /go, label: go-nofollow, follow-redirects: false}
      - {url: /go307, label: kept, method: POST, body: {a: 1}}
      - {url: /bye, label: bye}
"#,
        server.port,
    );
    let report = run(plan, dir.path()).await;
    let got = server.received();
    let at = |path: &str| got.iter().filter(|r| r.path.starts_with(path)).count();

    assert_eq!(
        got.iter().filter(|r| r.path == "/go").count(),
        20,
        "both /go requests reach the server"
    );
    assert_eq!(at("/whoami?from=go"), 10, "only the following one goes on");
    let whoami = got.iter().find(|r| r.path.starts_with("/whoami")).unwrap();
    assert_eq!(
        whoami.headers.get("cookie").map(String::as_str),
        Some("session=abc123"),
        "the redirect target gets the user's cookies"
    );
    assert_eq!(stats(&report, "go").rc.get("200"), Some(&10));
    assert_eq!(stats(&report, "go-nofollow").rc.get("302"), Some(&10));
    let kept: Vec<_> = got.iter().filter(|r| r.path == "/kept").collect();
    assert_eq!(kept.len(), 10);
    assert_eq!(kept[0].method, "POST", "307 keeps the method");
    assert_eq!(kept[0].body, r#"{"a":1}"#, "and the body");
    assert!(got.iter().all(|r| r.headers.contains_key("host")));

    // The server closing a kept-alive connection is not an error: the next request reconnects.
    let bye = stats(&report, "bye");
    assert_eq!((bye.hits, bye.fail), (10, 0), "{:?}", bye.errors);
    let all = stats(&report, "");
    assert_eq!((all.hits, all.fail), (50, 0), "{:?}", all.errors);
    assert!(all.avg_ct_ms.is_some(), "connect time is measured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_up_is_left_out() {
    let server = TestServer::start(Duration::from_millis(10), None).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = suite(
        dir.path(),
        "execution: [{scenario: s, throughput: 100, arrival: constant, concurrency: 10, warm-up: 1s, hold-for: 2s}]
scenarios:
  s: {default-address: 'http://127.0.0.1:{port}', requests: [/x]}",
        server.port,
    );
    let report = run(plan, dir.path()).await;
    let sent = server.received().len() as u64;
    let counted = stats(&report, "").hits;
    assert!((180..=220).contains(&sent), "{sent}");
    assert!(
        counted < sent && counted >= sent - 110 && counted <= sent - 90,
        "sent {sent}, counted {counted}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_a_failed_sample() {
    // A port that was ours a moment ago and now has no listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let plan = suite(
        dir.path(),
        "execution: [{scenario: s, concurrency: 2, iterations: 4}]
scenarios:
  s: {default-address: 'http://127.0.0.1:{port}', requests: [/x]}",
        port,
    );
    let started = Instant::now();
    let report = run(plan, dir.path()).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let x = stats(&report, "/x");
    assert_eq!((x.hits, x.fail), (4, 4));
    assert_eq!(x.rc.get("Exception"), Some(&4));
    assert!(
        x.errors.keys().all(|e| e.starts_with("connect")),
        "{:?}",
        x.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linear_ramp_paces_the_throughput_cap() {
    let server = TestServer::start(Duration::ZERO, None).await;
    let dir = tempfile::tempdir().unwrap();
    // 100/s ramped linearly over 2 s, then held 1 s: 100 during the ramp + 100 after.
    let plan = suite(
        dir.path(),
        "execution: [{scenario: s, concurrency: 4, throughput: 100, ramp-up: 2s, hold-for: 1s}]
scenarios:
  s: {default-address: 'http://127.0.0.1:{port}', requests: [/x]}",
        server.port,
    );
    let report = run(plan, dir.path()).await;
    // Never more than the schedule; on a starved machine a few late ones may miss the end.
    let n = server.received().len();
    assert!((180..=210).contains(&n), "expected about 200, got {n}");
    // Seconds 0 and 1 of the ramp carry about 25 and 75 requests (a flat cap: 100 and 100).
    // A stalled scheduler shifts a few between them, never the ratio's direction.
    let overall: Vec<_> = report.suites[0]
        .timeline
        .iter()
        .filter(|row| row.label.is_empty())
        .collect();
    let (first, second) = (overall[0], overall[1]);
    assert!((10..=45).contains(&first.hits), "first second {first:?}");
    assert!(
        2 * first.hits < second.hits,
        "the ramp rises: {first:?} then {second:?}"
    );
}

/// `modules.local.sequential`: the second execution starts when the first has ended, as in
/// Taurus; without it they run side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_executions_run_one_after_another() {
    let server = TestServer::start(Duration::from_millis(2), None).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = suite(
        dir.path(),
        "modules: {local: {sequential: true}}
execution:
  - {scenario: a, concurrency: 2, iterations: 30, hold-for: 30s}
  - {scenario: b, concurrency: 2, iterations: 30, hold-for: 30s}
scenarios:
  a: {default-address: 'http://127.0.0.1:{port}', requests: [/a]}
  b: {default-address: 'http://127.0.0.1:{port}', requests: [/b]}",
        server.port,
    );
    run(plan, dir.path()).await;
    let received = server.received();
    let last_a = received.iter().rposition(|r| r.path == "/a").unwrap();
    let first_b = received.iter().position(|r| r.path == "/b").unwrap();
    assert_eq!(received.len(), 60);
    assert!(
        last_a < first_b,
        "a ends at {last_a}, b starts at {first_b}"
    );
}

/// `hold-for` is a hard end: a think time longer than what remains is cut, so a 2 s load with
/// a 20 s think time ends in about 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn think_time_never_outlasts_the_load() {
    let server = TestServer::start(Duration::ZERO, None).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = suite(
        dir.path(),
        "execution: [{scenario: s, concurrency: 2, hold-for: 2s}]
scenarios:
  s: {default-address: 'http://127.0.0.1:{port}', think-time: 20s, requests: [/x]}",
        server.port,
    );
    let started = Instant::now();
    run(plan, dir.path()).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "ended after {:?}",
        started.elapsed()
    );
    assert_eq!(
        server.received().len(),
        2,
        "one request per user, then the think time"
    );
}

/// A response body larger than `max-body` fails its sample, on the direct path (closed model)
/// and through reqwest (open model), and is not kept; smaller ones pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_larger_than_max_body_fail_their_sample() {
    let server = TestServer::start(Duration::ZERO, None).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = suite(
        dir.path(),
        "execution:
  - {scenario: s, concurrency: 1, iterations: 3}
  - {scenario: s, throughput: 5, arrival: constant, concurrency: 2, hold-for: 1s}
scenarios:
  s:
    default-address: 'http://127.0.0.1:{port}'
    max-body: 1MiB
    requests: [{url: /big, label: big}, {url: /x, label: small}]",
        server.port,
    );
    let report = run(plan, dir.path()).await;
    let big = stats(&report, "big");
    assert!(big.hits >= 3, "{big:?}");
    assert_eq!(big.fail, big.hits, "every big body fails: {big:?}");
    assert!(
        big.errors
            .keys()
            .any(|e| e.contains("larger than max-body")),
        "{:?}",
        big.errors
    );
    let small = stats(&report, "small");
    assert_eq!(small.fail, 0, "{small:?}");
}

/// A 1 GiB body and an endless one fail at `max-body` (default 10 MiB) without being read
/// further, on both paths; a body that stalls fails at the request timeout. The process's
/// peak memory stays far below the gigabyte it was offered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_endless_and_stalled_bodies_are_cut() {
    let server = TestServer::start(Duration::ZERO, None).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = suite(
        dir.path(),
        "execution:
  - {scenario: s, concurrency: 1, iterations: 2}
  - {scenario: s, throughput: 2, arrival: constant, concurrency: 4, hold-for: 1s}
scenarios:
  s:
    default-address: 'http://127.0.0.1:{port}'
    timeout: 2s
    requests: [{url: /huge, label: huge}, {url: /endless, label: endless}, {url: /stalled, label: stalled}]",
        server.port,
    );
    let report = run(plan, dir.path()).await;
    for label in ["huge", "endless"] {
        let s = stats(&report, label);
        assert!(s.hits >= 3, "{s:?}");
        assert_eq!(s.fail, s.hits, "{s:?}");
        assert!(
            s.errors.keys().all(|e| e.contains("larger than max-body")),
            "{label}: {:?}",
            s.errors
        );
    }
    let stalled = stats(&report, "stalled");
    assert_eq!(stalled.fail, stalled.hits, "{stalled:?}");
    assert!(
        stalled.errors.keys().all(|e| e.contains("timeout")),
        "{:?}",
        stalled.errors
    );
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(
        peak_kb < 512 << 10,
        "peak RSS {peak_kb} kB: a body was kept whole"
    );
}

/// Served throughput counts completions when they complete: while the server stalls, the
/// offered rate goes on (arrivals are due) but nothing is served; the stalled requests are
/// served together once it recovers. results.json keeps both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_and_offered_throughput_are_told_apart() {
    let server = TestServer::start(
        Duration::ZERO,
        Some((Duration::from_secs(1), Duration::from_secs(3))),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let plan = suite(
        dir.path(),
        "execution: [{scenario: s, throughput: 50, arrival: constant, concurrency: 500, hold-for: 5s}]
scenarios:
  s: {default-address: 'http://127.0.0.1:{port}', timeout: 10s, requests: [/x]}",
        server.port,
    );
    let report = run(plan, dir.path()).await;
    let overall: Vec<_> = report.suites[0]
        .timeline
        .iter()
        .filter(|r| r.label.is_empty())
        .collect();
    // A second in the stall: arrivals were due (offered) but nothing completed (served).
    let stalled = overall
        .iter()
        .find(|r| r.second == 2)
        .unwrap_or_else(|| panic!("{overall:?}"));
    assert!(stalled.hits >= 40, "offered in the stall: {stalled:?}");
    assert_eq!(
        stalled.served, 0,
        "nothing served in the stall: {stalled:?}"
    );
    // The same number of responses in all, served in a burst after the stall.
    let served: u64 = overall.iter().map(|r| r.served).sum();
    let hits: u64 = overall.iter().map(|r| r.hits).sum();
    assert_eq!(served, hits);
    assert!(
        overall.iter().any(|r| r.served > 80),
        "the burst: {overall:?}"
    );
    let all = stats(&report, "");
    let offered = all.offered.unwrap();
    assert!((45.0..=55.0).contains(&offered), "offered {offered}");
}
