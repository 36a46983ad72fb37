#!/usr/bin/env bash
# How often `perfgate compare` cries wolf, and how often it catches a real change, on this
# machine while something else loads it (a busy loop runs beside every run).
#  - A/A: PAIRS pairs of identical runs against `perfgate demo-server --latency 10ms`: how many
#    report a regression at the default rule (goal: at most 1 of 20).
#  - A/B: the same baseline against `--latency 12ms` (20% slower): how many are caught (goal:
#    at least 19 of 20).
# Each run: 4 users for SECONDS (default 8).
#   usage: bench/compare_noise.sh [PAIRS=20] [SECONDS=8]
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-20}
seconds=${2:-8}
cargo build --release --quiet
perfgate="$PWD/target/release/perfgate"
work=$(mktemp -d)
( while :; do :; done ) & busy=$!
trap 'kill $busy 2>/dev/null; rm -rf "$work"' EXIT

run() { # latency dir
  mkdir -p "$work/$2"
  cat > "$work/$2/latency.yaml" <<YAML
settings: {ports: [PORT]}
services:
  - module: server
    label: model
    command: ["$perfgate", demo-server, --port, "\${PORT}", --latency, $1, --jitter, 2ms]
    ready: {http: "http://127.0.0.1:\${PORT}/v2/health/ready", timeout: 30s}
execution: [{scenario: s, concurrency: 4, hold-for: ${seconds}s}]
scenarios:
  s: {default-address: "http://127.0.0.1:\${PORT}", requests: [{url: /v2/models/mlp/infer, label: infer, method: POST, body: {inputs: [{name: input, shape: [1, 4], datatype: FP32, data: [1, 2, 3, 4]}]}}]}
YAML
  (cd "$work/$2" && "$perfgate" run latency.yaml --no-progress -q -a out > /dev/null 2>&1 || true)
}
flagged() { # old new -> 1 when compare exits 3
  set +e
  "$perfgate" compare "$work/$1/out/results.json" "$work/$2/out/results.json" > "$work/cmp.txt" 2>&1
  local code=$?
  set -e
  [ "$code" -eq 3 ] && echo 1 || echo 0
}
false_alarms=0; caught=0
for i in $(seq 1 "$pairs"); do
  run 10ms "a$i"; run 10ms "b$i"; run 12ms "c$i"
  false_alarms=$((false_alarms + $(flagged "a$i" "b$i")))
  grep REGRESSION "$work/cmp.txt" | grep -v '^compare:' | sed 's/^/  A\/A: /' || true
  caught=$((caught + $(flagged "a$i" "c$i")))
  echo "pair $i: false alarms $false_alarms, caught $caught"
done
echo "A/A: $false_alarms false regressions in $pairs pairs; A/B (+20% latency): $caught of $pairs caught"
