#!/usr/bin/env bash
# Memory of the measurement store over a long run with many labels.
#  1. Simulated clock: a store filled as an 8-hour run with 200 labels fills it (2 samples per
#     label and second), in a process of its own; its resident memory, against the goal of
#     50 MB, and against the same store without retention for 20 minutes (what memory grew
#     by before).
#  2. A real run: 200 labels against `perfgate demo-server` for SECONDS (default 120);
#     perfgate's peak resident memory (`/usr/bin/time -f %M`).
# Medians of 3 for the simulated figures.
#   usage: bench/store_memory.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
real_seconds=${1:-120}
cargo build --release --quiet
cargo test --release --quiet --test store_memory --no-run 2>/dev/null

soak() { # labels seconds bounded|unbounded -> "rss_kb=... rows=..."
  PERFGATE_STORE_SOAK="$1,$2,$3" cargo test --release --quiet --test store_memory -- \
    --exact the_store_stays_bounded_however_long_the_run --nocapture --test-threads=1 2>/dev/null |
    grep -o 'soak .*' | sed 's/^soak //'
}
median_kb() { # the median rss_kb of 3 runs of soak "$@"
  for _ in 1 2 3; do soak "$@" | grep -o 'rss_kb=[0-9]*' | cut -d= -f2; done | sort -n | sed -n 2p
}

echo "simulated store (200 labels, 2 samples per label and second), median of 3:"
for secs in 1200 7200 28800; do
  printf '  %6s s bounded:   %6s kB  (%s)\n' "$secs" "$(median_kb 200 "$secs" bounded)" \
    "$(soak 200 "$secs" bounded | grep -o 'rows=[0-9]*')"
done
printf '  %6s s unbounded: %6s kB\n' 1200 "$(median_kb 200 1200 unbounded)"

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
{
  cat <<YAML
settings: {ports: [PORT]}
services:
  - module: server
    label: model
    command: ["\${PERFGATE}", demo-server, --port, "\${PORT}"]
    ready: {http: "http://127.0.0.1:\${PORT}/v2/health/ready", timeout: 30s}
execution: [{scenario: s, concurrency: 8, hold-for: ${real_seconds}s}]
scenarios:
  s:
    default-address: "http://127.0.0.1:\${PORT}"
    requests:
YAML
  for i in $(seq 1 200); do echo "      - {url: /v2/health/live, label: live-$i}"; done
} > "$work/many.yaml"
/usr/bin/time -f '%M' -o "$work/rss" ./target/release/perfgate run "$work/many.yaml" \
  --no-progress -a "$work/out" > /dev/null
hits=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['suites'][0]['labels'][0]['hits'])" "$work/out/results.json")
echo "real run: 200 labels, ${real_seconds} s, $hits requests: perfgate peak RSS $(cat "$work/rss") kB"
