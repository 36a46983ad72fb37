#!/usr/bin/env bash
# Validates N generated suite files (default 1000) with a release build and reports the time.
#
#   bench/validate_many.sh [N]
#
# Each generated suite is realistic: a managed server with monitoring, two executions,
# 12 requests with bodies, assertions and extractors, CSV data, 8 criteria (short, long,
# monitoring, expr). The goal (issue 2) is under 2 seconds for 1000 files; the script exits
# non-zero when the goal is missed. It measures three runs and reports the best.
set -euo pipefail

n=${1:-1000}
goal_ms=${GOAL_MS:-2000}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT; echo "work: $work"

cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/perfgate"

mkdir -p "$work/suites/data"
printf 'user,token\nalice,a1\nbob,b2\n' > "$work/suites/data/users.csv"
for i in $(seq 1 "$n"); do
  requests=""
  for r in $(seq 1 10); do
    requests+="
      - url: /v2/models/model${r}/infer
        label: infer-${r}
        method: POST
        headers: {Content-Type: application/json, X-User: '\${user}'}
        body: {inputs: [{name: input, shape: [1, 4], datatype: FP32, data: [0.1, 0.2, 0.3, ${r}]}]}
        assert-jsonpath: ['\$.outputs[0].data']
        extract-jsonpath: {out${r}: '\$.outputs[0].name'}"
  done
  cat > "$work/suites/suite_${i}.yaml" <<YAML
# generated suite ${i}
settings:
  ports: [PORT]
  env: {MODEL: mlp, P99: 250ms}
services:
  - module: server
    label: model-server
    command: ["\${PERFGATE}", demo-server, --port, "\${PORT}", --workers, "2"]
    ready: {http: "http://127.0.0.1:\${PORT}/v2/health/ready", timeout: 30s}
    monitoring: {metrics: [total_workers, sum_workers_memory_rss, sum_all_cpu_percent]}
  - module: monitoring
    local: [{metrics: [cpu, mem]}]
execution:
  - {scenario: infer, concurrency: 8, ramp-up: 5s, hold-for: 30s}
  - {scenario: infer, throughput: 100, arrival: poisson, concurrency: 32, hold-for: 30s, delay: 5s}
scenarios:
  infer:
    default-address: "http://127.0.0.1:\${PORT}"
    think-time: uniform(10ms, 5ms)
    data-sources: [data/users.csv]
    requests:
      - {url: /v2/health/ready, label: health}
      - {url: "/v2/models/\${MODEL}", label: metadata}${requests}
reporting:
  - module: passfail
    criteria:
      - avg-rt of infer-1>50ms for 10s, stop as failed
      - p99 of infer-2>\${P99}
      - p99.9 of infer-3>500ms within 10s, continue as failed
      - fail>1%
      - rc5??>0
      - subject: model-server/sum_workers_memory_rss
        condition: '>'
        threshold: 512MB
        timeframe: 5s
      - local/cpu>95 for 10s
      - expr: 'p(99, "infer-4") > 3 * p(50, "infer-4")'
  - module: junit-xml
  - module: final-stats
YAML
done

best=""
for run in 1 2 3; do
  start=$(date +%s%N)
  "$bin" validate "$work/suites" > "$work/out.txt" 2>&1 || { cat "$work/out.txt" | tail -20; exit 1; }
  end=$(date +%s%N)
  ms=$(( (end - start) / 1000000 ))
  echo "run $run: validated $n suites in ${ms} ms"
  if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
done
tail -1 "$work/out.txt"
echo "best: ${best} ms for ${n} suites (goal: under ${goal_ms} ms)"
[ "$best" -lt "$goal_ms" ]
