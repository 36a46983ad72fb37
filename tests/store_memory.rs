//! The measurement store's memory does not grow with the run's length: a soak of many labels
//! keeps recent seconds exact and older history merged (see `Retention`). Measured as the
//! resident memory of a child process that does nothing but fill a store, so the figure is
//! the store's own. `bench/store_memory.sh` runs the full 8-hour, 200-label case in release.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]
#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the child reports its figures on stdout; the figures go to the test log"
)]

use std::process::Command;
use std::time::Duration;

use perfgate::metrics::{Outcome, Retention, Sample, Store};

/// Fills a store as a run of `labels` labels over `seconds` seconds would (a few samples per
/// label and second, closed a second behind, as the dispatcher does); returns it and the
/// number of samples.
fn soak(labels: usize, seconds: u64, retention: Option<Retention>) -> (Store, u64) {
    let mut store = retention.map_or_else(Store::default, Store::with_retention);
    let names: Vec<std::sync::Arc<str>> = (0..labels)
        .map(|i| format!("/api/v1/model-{i}").into())
        .collect();
    let mut samples = 0;
    for second in 0..seconds {
        for (i, label) in names.iter().enumerate() {
            for k in 0..2u64 {
                let ms = 5 + (second * 7 + i as u64 * 13 + k * 31) % 200;
                store.record(&Sample {
                    label: label.clone(),
                    second,
                    rt: Duration::from_millis(ms),
                    lt: Duration::from_millis(ms / 2),
                    ct: None,
                    bytes: 512,
                    outcome: Outcome::Response {
                        status: if (second + k) % 97 == 0 { 503 } else { 200 },
                        success: (second + k) % 97 != 0,
                        message: None,
                    },
                    concurrency: 8,
                    completed: second,
                    extra: None,
                });
                samples += 1;
            }
        }
        store.close_before(second);
    }
    store.close_before(seconds);
    (store, samples)
}

fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// In the child: fills the store the environment asks for and prints its resident memory.
fn child_soak() -> bool {
    let Ok(spec) = std::env::var("PERFGATE_STORE_SOAK") else {
        return false;
    };
    let mut parts = spec.split(',');
    let labels: usize = parts.next().unwrap().parse().unwrap();
    let seconds: u64 = parts.next().unwrap().parse().unwrap();
    let bounded = parts.next() != Some("unbounded");
    let before = rss_kb();
    let retention = bounded.then(|| Retention::keeping(62));
    let (store, samples) = soak(labels, seconds, retention);
    let after = rss_kb();
    let rows = store.spans().count();
    let all = store.cumulative("");
    assert_eq!(all.hits(), samples, "nothing is lost in merging");
    println!("soak rss_kb={after} baseline_kb={before} rows={rows} samples={samples}");
    true
}

/// Runs the soak in a child process; returns (resident kB, rows of history).
fn measure(labels: usize, seconds: u64, bounded: bool) -> (u64, u64) {
    let spec = format!(
        "{labels},{seconds},{}",
        if bounded { "bounded" } else { "unbounded" }
    );
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_store_stays_bounded_however_long_the_run",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PERFGATE_STORE_SOAK", spec)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("soak ").map(|(_, figures)| figures))
        .unwrap_or_else(|| panic!("{stdout}"));
    eprintln!("{labels} labels, {seconds} s, bounded {bounded}: {line}");
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .unwrap()
            .parse()
            .unwrap()
    };
    (field("rss_kb="), field("rows="))
}

/// 200 labels: doubling the run's length does not grow memory (it used to grow with labels ×
/// seconds: 56 MB after 2 minutes), and stays under 50 MB. `PERFGATE_SOAK_SECONDS` sets the
/// longer run (the bench script runs 8 hours: 28800).
#[test]
fn the_store_stays_bounded_however_long_the_run() {
    if child_soak() {
        return;
    }
    let long: u64 = std::env::var("PERFGATE_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3600);
    let (short_kb, _) = measure(200, long / 2, true);
    let (long_kb, rows) = measure(200, long, true);
    assert!(rows < 600, "history rows bounded: {rows}");
    assert!(
        long_kb < 50 << 10,
        "{long_kb} kB resident after {long} s of 200 labels"
    );
    assert!(
        long_kb < short_kb + (short_kb / 5),
        "twice the run, about the same memory: {short_kb} kB then {long_kb} kB"
    );
}

/// A short run keeps every second: nothing is merged while the budget allows.
#[test]
fn a_short_run_keeps_every_second() {
    let (store, _) = soak(2, 600, Some(Retention::keeping(62)));
    assert_eq!(store.spans().count(), 600);
    assert!(store.spans().all(|(from, to)| to == from + 1));
}

/// Merged history keeps exact totals and maxima, and percentiles of the whole run.
#[test]
fn merged_history_keeps_totals_percentiles_and_peaks() {
    let small = Retention {
        keep: 62,
        fine_bytes: 2 << 20,
        coarse_bytes: 1 << 20,
    };
    let (bounded, _) = soak(50, 900, Some(small));
    let (full, _) = soak(50, 900, None);
    assert!(bounded.spans().count() < full.spans().count());
    for label in ["", "/api/v1/model-7"] {
        let (b, f) = (bounded.cumulative(label), full.cumulative(label));
        assert_eq!(
            (b.hits(), b.fail(), b.bytes()),
            (f.hits(), f.fail(), f.bytes())
        );
        for level in [50.0, 99.0, 100.0] {
            assert_eq!(
                b.percentile(level),
                f.percentile(level),
                "p{level} of {label}"
            );
        }
        assert_eq!(b.concurrency(), f.concurrency());
    }
    // The recent seconds criteria look at (`keep`) are still exact, second by second.
    for second in 900 - small.keep..900 {
        let (b, f) = (
            bounded.window("", second, second + 1),
            full.window("", second, second + 1),
        );
        assert_eq!(b.hits(), f.hits());
        assert_eq!(b.percentile(99.0), f.percentile(99.0));
    }
}
