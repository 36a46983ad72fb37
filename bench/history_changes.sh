#!/usr/bin/env bash
# Change points across nights on synthetic histories of 30 nights (`perfgate history`):
#  - step:  a 10% latency step at night 20 (nights numbered from 0);
#  - drift: 1% slower every night;
#  - flat:  no change at all (false change points).
# Each night's latency has Gaussian night-to-night noise of NOISE percent (default 2) and
# 20 per-second values; HISTORIES seeded histories of each kind (default 10). Prints, per
# kind, the change points found in avg-rt and the nights they are attributed to.
#   usage: bench/history_changes.sh [HISTORIES=10] [NOISE=2]
set -euo pipefail
cd "$(dirname "$0")/.."
histories=${1:-10}
noise=${2:-2}
cargo build --release --quiet
perfgate="$PWD/target/release/perfgate"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$work" "$histories" "$noise" <<'PY'
import json, os, random, sys
work, histories, noise = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
levels = {
    "step": lambda i: 10.0 if i < 20 else 11.0,
    "drift": lambda i: 10.0 * 1.01 ** i,
    "flat": lambda i: 10.0,
}
for kind, level in levels.items():
    for h in range(histories):
        rng = random.Random(f"{kind}{h}")
        d = os.path.join(work, kind, str(h))
        os.makedirs(d)
        for i in range(30):
            night = level(i) * (1 + rng.gauss(0, noise / 100))
            secs = [night * (1 + rng.gauss(0, 0.03)) for _ in range(20)]
            row = lambda s, v, label: {"second": s, "seconds": 1, "label": label, "hits": 100,
                "fail": 0, "bytes": 0, "dropped": 0, "served": 100, "concurrency": 4,
                "avg_rt_ms": v, "p50_ms": v, "p90_ms": v * 1.1, "p99_ms": v * 1.2}
            stats = lambda label: {"label": label, "hits": 2000, "succ": 2000, "fail": 0,
                "bytes": 0, "dropped": 0, "concurrency": 4, "throughput": 100.0,
                "avg_rt_ms": night, "avg_lt_ms": night, "avg_ct_ms": None, "stdev_rt_ms": 1.0,
                "percentiles_ms": {"50.0": night, "90.0": night * 1.1, "99.0": night * 1.2},
                "rc": {"200": 2000}, "errors": {}}
            when = f"2026-10-{i + 1:02d}T02:00:00Z"
            run = {"format_version": 2, "tool": "bench", "started_at": when, "duration_s": 20,
                "status": "completed", "meta": {"git_commit": f"n{i:02d}", "git_dirty": False, "host": "h"},
                "suites": [{"name": "s", "path": "s.yaml", "status": "completed", "error": None,
                    "seed": 1, "started_at": when, "duration_s": 20, "executions": [],
                    "labels": [stats(""), stats("infer")],
                    "timeline": [row(s, v, l) for s, v in enumerate(secs) for l in ("", "infer")],
                    "identity": {"environment": None, "load_hash": "h"}}]}
            name = f"2026-10-{i + 1:02d}T02-00-00Z__n{i:02d}.json"
            with open(os.path.join(d, name), "w") as f:
                json.dump(run, f)
PY

for kind in step drift flat; do
  found=()
  for h in $(seq 0 $((histories - 1))); do
    nights=$("$perfgate" history "$work/$kind/$h" --format json | python3 -c '
import json, sys
t = json.load(sys.stdin)
cps = [c for c in t["changes"] if c["label"] == "infer" and c["kpi"] == "avg-rt"]
print(", ".join("night %d (%+.1f%%, confidence %.1f%%)" % (c["index"], c["change"], c["confidence"] * 100) for c in cps) or "none")
' || true)
    found+=("$nights")
  done
  echo "$kind: change points of avg-rt (night(size,confidence)) in $histories histories:"
  for i in "${!found[@]}"; do echo "  history $i: ${found[$i]}"; done
done
