//! The engine's steady state allocates nothing per request for a request without variables:
//! heap blocks allocated (DHAT's count, this test binary's global allocator) over thousands
//! of requests, against a server in plain threads that allocates nothing per request itself.
//! One test in this binary: the count is process-wide.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use perfgate::plan::SuitePlan;
use perfgate::run::{RunOptions, run_suites};

mod helpers;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const USERS: u64 = 4;
/// Iterations of the execution (all its users together).
const ITERATIONS: u64 = 40_000;
/// The window measured: after the connections, buffers and first seconds' buckets exist,
/// before the end.
const FROM: u64 = 8_000;
const TO: u64 = 32_000;

/// A keep-alive HTTP/1.1 server on a free loopback port, one thread per connection, each
/// answering every request head it reads with the same bytes; counts its answers.
fn server(answers: Arc<AtomicU64>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let answers = answers.clone();
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut buf = [0u8; 8192];
                let mut have = 0;
                loop {
                    let Ok(n) = stream.read(&mut buf[have..]) else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    have += n;
                    // Every complete head (the requests have no body) gets an answer.
                    while let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.copy_within(end + 4..have, 0);
                        have -= end + 4;
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(answer).is_err() {
                            return;
                        }
                        answers.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    port
}

fn plan(dir: &std::path::Path, port: u16) -> SuitePlan {
    helpers::suite_plan(
        dir,
        &format!(
            "execution: [{{scenario: s, concurrency: {USERS}, iterations: {ITERATIONS}}}]
scenarios:
  s:
    keepalive: true
    requests: [{{url: 'http://127.0.0.1:{port}/', label: hit}}]
"
        ),
    )
}

#[test]
fn a_request_without_variables_allocates_nothing_in_the_steady_state() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let answers = Arc::new(AtomicU64::new(0));
    let port = server(answers.clone());
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(dir.path(), port);
    // Heap blocks allocated so far when the server had answered FROM and TO requests: read
    // from a thread that itself allocates nothing while it waits.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (answers, done) = (answers.clone(), done.clone());
        std::thread::spawn(move || {
            let mut marks = [(0u64, 0u64); 2];
            for (mark, at) in marks.iter_mut().zip([FROM, TO]) {
                while answers.load(Ordering::SeqCst) < at {
                    if done.load(Ordering::SeqCst) {
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                *mark = (
                    answers.load(Ordering::SeqCst),
                    dhat::HeapStats::get().total_blocks,
                );
            }
            Some(marks)
        })
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let opts = RunOptions {
        artifacts_dir: dir.path().join("reports"),
        destinations: Default::default(),
        progress: false,
        fail_fast: false,
        seed: 7,
        environment: None,
        baselines: Default::default(),
    };
    let report = runtime.block_on(async {
        let (mut console, mut tables) = (Vec::new(), Vec::new());
        run_suites(vec![plan], &opts, &mut console, &mut tables)
            .await
            .unwrap()
    });
    done.store(true, Ordering::SeqCst);
    let overall = report.suites[0]
        .labels
        .iter()
        .find(|l| l.label.is_empty())
        .unwrap();
    assert_eq!(overall.hits, ITERATIONS, "{overall:#?}");
    let marks = watcher
        .join()
        .unwrap()
        .expect("the server answered every request");
    let [(from, before), (to, after)] = marks;
    let per_request = (after - before) as f64 / (to - from) as f64;
    eprintln!(
        "{} blocks over {} requests: {per_request:.4} per request",
        after - before,
        to - from
    );
    // What the run allocates by the second (the store's buckets, monitoring) is spread over
    // thousands of requests; one allocation per request would be 1.0.
    assert!(
        per_request < 0.05,
        "{per_request:.3} heap allocations per request in the steady state"
    );
}
