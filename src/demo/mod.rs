//! `perfgate demo-server`: a reference model server that behaves like a real one.
//!
//! KServe v2 REST (`/v2/health/*`, `/v2/models/{m}`, `/v2/models/{m}/infer`) over a small
//! real model ([`model::Mlp`]), OpenAI-compatible text generation streamed as server-sent
//! events ([`llm`]), a Prometheus `/metrics` endpoint, `Server-Timing` and `X-Timing-Info`
//! headers, and knobs for tests (latency, jitter, error rate, a stall, token timing). With `--workers N` it runs like MMS
//! or gunicorn: a supervisor process and N worker processes sharing the port through
//! SO_REUSEPORT; workers die with their supervisor. It must not depend on the rest of perfgate.

pub mod llm;
pub mod model;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use model::{InferRequest, InferResponse, Mlp, OUTPUTS, OutputTensor, decode};

/// How the demo server behaves.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub host: IpAddr,
    /// 0 picks a free port (printed on start).
    pub port: u16,
    /// 0: one process serves; N: a supervisor and N worker processes.
    pub workers: u32,
    pub model: String,
    /// Added to every inference.
    pub latency: Duration,
    /// Up to this much more, uniformly.
    pub jitter: Duration,
    /// Share of inferences answered with a 500, in [0, 1].
    pub error_rate: f64,
    /// Requests arriving in `[stall_after, stall_after + stall_for)` wait until its end.
    pub stall_after: Option<Duration>,
    pub stall_for: Duration,
    /// At most this many inferences at once (per process); the rest wait in a queue, so the
    /// server's capacity is `max_concurrency / latency` requests per second.
    pub max_concurrency: Option<u32>,
    /// Internal: this process is a worker of a supervisor.
    pub worker: bool,
    /// The OpenAI-compatible text generation (`/v1/chat/completions`, `/v1/completions`).
    pub llm: llm::LlmOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("failed to bind {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start worker process")]
    Spawn(#[source] std::io::Error),
    #[error("failed to start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("server error")]
    Serve(#[source] std::io::Error),
    #[error("worker {pid} exited with {status}")]
    WorkerDied {
        pid: u32,
        status: std::process::ExitStatus,
    },
}

/// Where the server announces itself ("listening on ..."); the CLI prints it.
pub type Announce = fn(&str);

/// Runs the demo server until SIGTERM or SIGINT.
pub fn run(opts: DemoOptions, announce: Announce) -> Result<(), DemoError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(DemoError::Runtime)?;
    runtime.block_on(async move {
        if opts.workers > 0 && !opts.worker {
            supervise(opts, announce).await
        } else {
            serve(opts, announce).await
        }
    })
}

fn bind(opts: &DemoOptions, listen: bool) -> Result<std::net::TcpListener, DemoError> {
    use socket2::{Domain, Socket, Type};
    let addr = SocketAddr::new(opts.host, opts.port);
    let err = |source| DemoError::Bind { addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(err)?;
    socket.set_reuse_address(true).map_err(err)?;
    // Workers share the port; the kernel spreads connections across them.
    socket.set_reuse_port(opts.workers > 0).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    if listen {
        socket.listen(1024).map_err(err)?;
        socket.set_nonblocking(true).map_err(err)?;
    }
    Ok(socket.into())
}

/// A duration as the command line reads it, to the microsecond.
fn millis(d: Duration) -> String {
    format!("{}ms", d.as_secs_f64() * 1000.0)
}

/// The supervisor: holds the port (bound, not listening), runs the workers, forwards signals.
async fn supervise(mut opts: DemoOptions, announce: Announce) -> Result<(), DemoError> {
    let holder = bind(&opts, false)?;
    let port = holder.local_addr().map_err(DemoError::Serve)?.port();
    opts.port = port;
    let exe = std::env::current_exe().map_err(DemoError::Spawn)?;
    let mut children = Vec::new();
    for _ in 0..opts.workers {
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.arg("demo-server")
            .args([
                "--host",
                &opts.host.to_string(),
                "--port",
                &port.to_string(),
            ])
            .args([
                "--workers",
                &opts.workers.to_string(),
                "--model",
                &opts.model,
            ])
            .args(["--latency", &format!("{}ms", opts.latency.as_millis())])
            .args(["--jitter", &format!("{}ms", opts.jitter.as_millis())])
            .args(["--error-rate", &opts.error_rate.to_string()])
            .args(["--stall-for", &format!("{}ms", opts.stall_for.as_millis())])
            .args(["--ttft", &millis(opts.llm.ttft)])
            .args(["--itl", &millis(opts.llm.itl)])
            .args(["--tokens", &opts.llm.tokens.to_string()])
            .arg("--worker")
            .kill_on_drop(true);
        if let Some(after) = opts.stall_after {
            cmd.args(["--stall-after", &format!("{}ms", after.as_millis())]);
        }
        if let Some(n) = opts.max_concurrency {
            cmd.args(["--max-concurrency", &n.to_string()]);
        }
        children.push(cmd.spawn().map_err(DemoError::Spawn)?);
    }
    announce(&format!(
        "perfgate demo-server: supervisor {} with {} workers on http://{}",
        std::process::id(),
        opts.workers,
        SocketAddr::new(opts.host, port)
    ));
    let died = async {
        let waits = children.iter_mut().map(|c| Box::pin(c.wait()));
        let (status, index) = first_of(waits).await;
        (index, status)
    };
    let outcome = tokio::select! {
        () = shutdown_signal() => Ok(()),
        (index, status) = died => Err((index, status)),
    };
    for child in &children {
        if let Some(pid) = child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
    for child in &mut children {
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
    drop(holder);
    match outcome {
        Ok(()) => Ok(()),
        Err((index, status)) => Err(DemoError::WorkerDied {
            pid: children[index].id().unwrap_or_default(),
            status: status.map_err(DemoError::Serve)?,
        }),
    }
}

/// The output and index of the first of several futures to finish.
async fn first_of<F: std::future::Future + Unpin>(
    futures: impl IntoIterator<Item = F>,
) -> (F::Output, usize) {
    let mut futures: Vec<F> = futures.into_iter().collect();
    std::future::poll_fn(move |cx| {
        for (i, f) in futures.iter_mut().enumerate() {
            if let std::task::Poll::Ready(out) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready((out, i));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

struct AppState {
    opts: DemoOptions,
    mlp: Mlp,
    started: Instant,
    rng: Mutex<SmallRng>,
    requests: Family<CodeLabels, Counter>,
    duration: Histogram,
    in_flight: Gauge,
    registry: Registry,
    /// `--max-concurrency`: the inferences that may run at once.
    slots: Option<tokio::sync::Semaphore>,
}

/// The HTTP routes, for embedding in tests.
pub fn router(opts: DemoOptions) -> Router {
    let mut registry = Registry::default();
    let requests = Family::<CodeLabels, Counter>::default();
    let duration = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
    let in_flight = Gauge::default();
    registry.register(
        "demo_requests",
        "HTTP requests served, by status code",
        requests.clone(),
    );
    registry.register(
        "demo_request_duration_seconds",
        "Time to serve a request",
        duration.clone(),
    );
    registry.register("demo_in_flight", "Requests being served", in_flight.clone());
    let slots = opts
        .max_concurrency
        .map(|n| tokio::sync::Semaphore::new(n.max(1) as usize));
    let state = Arc::new(AppState {
        slots,
        opts,
        mlp: Mlp::default(),
        started: Instant::now(),
        rng: Mutex::new(SmallRng::seed_from_u64(u64::from(std::process::id()))),
        requests,
        duration,
        in_flight,
        registry,
    });
    Router::new()
        .route(
            "/v2/health/live",
            get(|| async { axum::Json(json!({"live": true})) }),
        )
        .route(
            "/v2/health/ready",
            get(|| async { axum::Json(json!({"ready": true})) }),
        )
        .route("/v2/models/{model}", get(metadata))
        .route("/v2/models/{model}/ready", get(model_ready))
        .route("/v2/models/{model}/infer", post(infer))
        .route("/v1/chat/completions", post(llm::chat))
        .route("/v1/completions", post(llm::completions))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

async fn serve(opts: DemoOptions, announce: Announce) -> Result<(), DemoError> {
    let listener =
        tokio::net::TcpListener::from_std(bind(&opts, true)?).map_err(DemoError::Serve)?;
    let addr = listener.local_addr().map_err(DemoError::Serve)?;
    if opts.worker {
        // A worker ends with its supervisor, however the supervisor ends.
        let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM);
        if nix::unistd::getppid() == nix::unistd::Pid::from_raw(1) {
            return Ok(());
        }
    }
    announce(&format!(
        "perfgate demo-server: {} listening on http://{addr}",
        std::process::id()
    ));
    axum::serve(listener, router(opts))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(DemoError::Serve)
}

/// Counts every request by status and times it; tracks requests in flight.
async fn count(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    state.in_flight.inc();
    let response = next.run(request).await;
    state.in_flight.dec();
    state
        .requests
        .get_or_create(&CodeLabels {
            code: response.status().as_u16().to_string(),
        })
        .inc();
    state.duration.observe(start.elapsed().as_secs_f64());
    response
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

/// The 404 for a model this server does not have.
fn unknown_model(state: &AppState, model: &str) -> Option<Response> {
    if model == state.opts.model {
        None
    } else {
        Some(error(
            StatusCode::NOT_FOUND,
            format!(
                "model `{model}` is not loaded; this server has `{}`",
                state.opts.model
            ),
        ))
    }
}

async fn metadata(State(state): State<Arc<AppState>>, Path(model): Path<String>) -> Response {
    if let Some(r) = unknown_model(&state, &model) {
        return r;
    }
    axum::Json(json!({
        "name": model,
        "versions": ["1"],
        "platform": "perfgate-demo",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, model::INPUTS]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, OUTPUTS]}],
    }))
    .into_response()
}

async fn model_ready(State(state): State<Arc<AppState>>, Path(model): Path<String>) -> Response {
    unknown_model(&state, &model)
        .unwrap_or_else(|| axum::Json(json!({"name": model, "ready": true})).into_response())
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &state.registry).is_err() {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed to encode metrics",
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn infer(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
    body: Bytes,
) -> Response {
    let opts = &state.opts;
    // A fixed number of inferences at once; the rest queue here (their wait is latency).
    let _slot = match &state.slots {
        Some(s) => s.acquire().await.ok(),
        None => None,
    };
    if let Some(after) = opts.stall_after {
        let now = state.started.elapsed();
        if now >= after && now < after + opts.stall_for {
            tokio::time::sleep(after + opts.stall_for - now).await;
        }
    }
    let (extra, fail) = {
        let mut rng = state
            .rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let jitter = if opts.jitter.is_zero() {
            Duration::ZERO
        } else {
            opts.jitter.mul_f64(rng.random::<f64>())
        };
        (
            opts.latency + jitter,
            opts.error_rate > 0.0 && rng.random::<f64>() < opts.error_rate,
        )
    };
    if let Some(r) = unknown_model(&state, &model) {
        return r;
    }
    if fail {
        // A failing inference takes its time too.
        tokio::time::sleep(extra).await;
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "injected failure (--error-rate)",
        );
    }
    let t0 = Instant::now();
    let request: InferRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid inference request: {e}"),
            );
        }
    };
    let (batch, data) = match decode(&request) {
        Ok(decoded) => decoded,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let t1 = Instant::now();
    // `--latency` and `--jitter` are inference time (the component timings say so).
    if !extra.is_zero() {
        tokio::time::sleep(extra).await;
    }
    let probabilities = state.mlp.forward(&data);
    let t2 = Instant::now();
    let response = InferResponse {
        model_name: model,
        id: request.id,
        outputs: vec![OutputTensor {
            name: "probabilities".into(),
            shape: vec![batch, OUTPUTS],
            datatype: "FP32",
            data: probabilities,
        }],
    };
    let mut http = axum::Json(response).into_response();
    let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
    let timing = format!(
        "preprocessing;dur={:.3}, inference;dur={:.3}, postprocessing;dur={:.3}",
        ms(t0, t1),
        ms(t1, t2),
        ms(t2, Instant::now())
    );
    if let Ok(value) = HeaderValue::from_str(&timing) {
        http.headers_mut().insert("server-timing", value);
    }
    // The same in seconds as a JSON object, as component-timing benchmarks read it.
    let s = |a: Instant, b: Instant| (b - a).as_secs_f64();
    let end = Instant::now();
    let info = json!({
        "preprocessing": s(t0, t1),
        "inference": s(t1, t2),
        "postprocessing": s(t2, end),
        "server_processing": s(t0, end),
    });
    if let Ok(value) = HeaderValue::from_str(&info.to_string()) {
        http.headers_mut().insert("x-timing-info", value);
    }
    http
}
