#!/usr/bin/env bash
# The HTML report at scale: a 1-hour run with 20 labels and 4 monitored series (with 20
# one-second stalls), rendered by `perfgate report`, then opened in headless Chromium.
# Goals: report.html under 2 MB, rendered in under 1 s (Chromium's time to a screenshot of
# the report, minus its time for an empty page; medians of 3).
#   usage: bench/report_scale.sh            (needs python3 and chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

python3 - "$work/results.json" <<'PY'
import json, random, sys
random.seed(7)
secs, labels = 3600, [f"label-{i:02d}" for i in range(20)]
stalls = {97 + 180 * k for k in range(20)}
def row(second, label, hits, slow):
    p = 900.0 if slow else random.uniform(2, 8)
    return {"second": second, "label": label, "hits": hits, "fail": 0, "bytes": hits * 80,
            "dropped": 0, "concurrency": 16, "avg_rt_ms": p / 2, "p50_ms": p / 3,
            "p90_ms": p * 0.8, "p99_ms": p, "rc": {"200": hits}}
timeline = []
for s in range(secs):
    timeline.append(row(s, "", 2000, s in stalls))
    timeline += [row(s, l, 100, s in stalls) for l in labels]
def stats(label):
    return {"label": label, "hits": 360000, "succ": 360000, "fail": 0, "bytes": 1, "dropped": 0,
            "concurrency": 16, "throughput": 100.0, "avg_rt_ms": 3.0, "avg_lt_ms": 2.0,
            "avg_ct_ms": 0.0, "stdev_rt_ms": 1.0,
            "percentiles_ms": {"50.0": 3.0, "90.0": 6.0, "99.0": 8.0, "99.9": 900.0, "100.0": 900.0},
            "rc": {"200": 360000}, "errors": {}}
monitoring = [{"subject": f"model-server/{m}", "min": 0.0, "max": 1.0, "mean": 0.5, "last": 0.5,
               "points": [[s, random.uniform(0, 100)] for s in range(secs)]}
              for m in ["total_processes", "total_workers", "sum_all_cpu_percent", "sum_all_memory_rss"]]
criteria = [{"name": f"p99 of {l}>500ms for 1s", "message": None, "scope": "suite", "subject": "p99",
             "verdict": "failed", "observed": 0.9, "observed_text": "900ms", "condition": ">",
             "threshold": "500ms", "logic": "for 1s", "window": [97, 98], "stop": False,
             "fail": True, "stopped_load": False, "detail": "observed 900ms > 500ms"} for l in labels]
suite = {"name": "hour", "path": "hour.yaml", "status": "completed", "error": None, "seed": 1,
         "started_at": "2026-11-29T00:00:00Z", "load_started_at": "2026-11-29T00:00:01Z",
         "duration_s": float(secs), "executions": [{"scenario": "s", "shape": "16 users, hold-for 1h"}],
         "labels": [stats("")] + [stats(l) for l in labels], "timeline": timeline,
         "monitoring": monitoring, "criteria": criteria, "stopped_by": None,
         "outputs": {"junit": [], "dump_csv": None, "dump_xml": None}, "effective_yaml": "x: 1\n"}
json.dump({"format_version": 1, "tool": "perfgate bench", "started_at": "2026-11-29T00:00:00Z",
           "duration_s": float(secs), "status": "completed", "suites": [suite]},
          open(sys.argv[1], "w"))
PY

./target/release/perfgate report "$work/results.json" -a "$work/out" >/dev/null || true
size=$(stat -c %s "$work/out/report.html")
echo "report.html: $((size / 1024)) KiB ($(grep -o '<svg class="chart"' "$work/out/report.html" | wc -l) charts)"
echo '<html><body></body></html>' > "$work/empty.html"

shot() {
  local start end
  start=$(date +%s.%N)
  chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$work/profile" \
    --window-size=1280,4000 --screenshot="$work/shot.png" "file://$1" >/dev/null 2>&1
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
median() { sort -n | sed -n 2p; }
empty=$(for _ in 1 2 3; do shot "$work/empty.html"; done | median)
report=$(for _ in 1 2 3; do shot "$work/out/report.html"; done | median)
echo "chromium: empty page ${empty}s, report ${report}s: render cost $(echo "$report - $empty" | bc)s (median of 3)"
[ "$size" -lt $((2 * 1024 * 1024)) ] || { echo "FAIL: report.html is 2 MB or more"; exit 1; }
