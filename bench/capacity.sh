#!/usr/bin/env bash
# Capacity sweeps and searches against servers whose capacity is known, and against a real
# CPU-bound model server from PyPI, with the bottleneck perfgate names.
#
# 1. `perfgate demo-server --max-concurrency N --latency L` serves N requests at once, L each,
#    and queues the rest: its capacity is N/L requests per second and its knee is at N users.
#    For each (N, L): a closed-model sweep of 1..4N users, then an open-model search for the
#    highest rate with p99 under 3L (precision 5%). Printed: the true knee and capacity beside
#    the knee, the max throughput and the search's limit perfgate found.
# 2. MLServer 1.7.1 with mlserver-sklearn serving a RandomForest (300 trees) trained on the
#    digits data set that scikit-learn ships (no download), 64 rows per request: a sweep of
#    1..16 users. Python runs the trees on one core, so one process pinned at a core is the
#    expected bottleneck on a host with more. (MLServer's separate inference-worker pool fails
#    to load models on Python 3.11 here, "There is no current event loop"; the model runs in
#    the server process, `MLSERVER_PARALLEL_WORKERS=0`.)
#
#   usage: bench/capacity.sh [STEP=6]   (seconds per step; VENV=dir reuses an environment)
set -euo pipefail
cd "$(dirname "$0")/.."
step=${1:-6}
work=$(mktemp -d)
echo "work: $work" >&2
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
cargo build --release --quiet
perfgate="$PWD/target/release/perfgate"

# The capacity figures of a run, one line.
figures() {
  python3 - "$1" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["suites"][0]
c = s["capacity"]
b = c.get("bottleneck") or {}
print(json.dumps({
    "knee": c["knee"], "latency_knee": c["latency_knee"], "saturation": c["saturation"],
    "max_throughput": round(c["max_throughput"] or 0, 1), "slo_limit": c["slo_limit"],
    "probes": len(c["steps"]), "bottleneck": b.get("kind"), "confidence": b.get("confidence"),
    "evidence": b.get("evidence"), "status": s["status"],
}))
PY
}

scenario() { # url body
  cat <<YAML
scenarios:
  infer:
    default-address: "http://127.0.0.1:\${PORT}"
    keepalive: true
    requests:
      - url: $1
        label: infer
        method: POST
        headers: {Content-Type: application/json}
        body: $2
YAML
}

demo_body='{inputs: [{name: input, shape: [1, 4], datatype: FP32, data: [1, 2, 3, 4]}]}'
printf '%-22s %9s %9s %11s %11s %12s %7s\n' "demo-server" "true knee" "knee" "true max/s" "max/s" "search limit" "probes"
for case in "4 100" "8 50" "16 20"; do
  set -- $case
  n=$1 latency=$2
  true_max=$(python3 -c "print(round($n * 1000 / $latency, 1))")
  users=$(python3 -c "print(', '.join(str(2**i) for i in range(0, 8) if 2**i <= 4*$n))")
  dir="$work/demo-$n-$latency"
  mkdir -p "$dir"
  server="services:
  - module: server
    command: [\"$perfgate\", demo-server, --port, \"\${PORT}\", --max-concurrency, \"$n\", --latency, \"${latency}ms\"]
    ready: {http: \"http://127.0.0.1:\${PORT}/v2/health/ready\"}"
  {
    echo "settings: {ports: [PORT]}"
    echo "$server"
    echo "execution: [{scenario: infer, sweep: {concurrency: [$users], step: ${step}s, warm-up: 2s}}]"
    scenario /v2/models/mlp/infer "$demo_body"
  } > "$dir/sweep.yaml"
  {
    echo "settings: {ports: [PORT]}"
    echo "$server"
    echo "execution: [{scenario: infer, search: {slo: [\"p99<$((3 * latency))ms\", \"fail<1%\"], throughput: {min: $(python3 -c "print(round($true_max / 8, 1))"), max: $(python3 -c "print($true_max * 4)")}, step: ${step}s, warm-up: 2s}}]"
    scenario /v2/models/mlp/infer "$demo_body"
  } > "$dir/search.yaml"
  (cd "$dir" && "$perfgate" run sweep.yaml --no-progress -a sweep > sweep.out 2>&1) || true
  (cd "$dir" && "$perfgate" run search.yaml --no-progress -a search > search.out 2>&1) || true
  sweep=$(figures "$dir/sweep/results.json")
  search=$(figures "$dir/search/results.json")
  python3 - "$n" "$latency" "$true_max" "$sweep" "$search" <<'PY'
import json, sys
n, latency, true_max = sys.argv[1], sys.argv[2], sys.argv[3]
sw, se = json.loads(sys.argv[4]), json.loads(sys.argv[5])
print(f"{'N=' + n + ' L=' + latency + 'ms':<22} {n:>9} {str(sw['knee']):>9} {true_max:>11} {sw['max_throughput']:>11} {str(se['slo_limit']):>12} {se['probes']:>7}")
print(f"{'':<22} sweep bottleneck: {sw['bottleneck']} ({sw['confidence']}): {'; '.join(sw['evidence'] or [])}")
PY
done

# A real model server.
venv=${VENV:-$HOME/.cache/perfgate-bench/mlserver-venv}
if [ ! -x "$venv/bin/mlserver" ] || ! "$venv/bin/python" -c 'import mlserver_sklearn, sklearn' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "mlserver==1.7.1" "mlserver-sklearn==1.7.1" scikit-learn
fi
model="$work/mlserver/digits"
mkdir -p "$model"
"$venv/bin/python" - "$model/model.joblib" <<'PY'
import sys, joblib
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
X, y = load_digits(return_X_y=True)
joblib.dump(RandomForestClassifier(n_estimators=300, random_state=0, n_jobs=1).fit(X, y), sys.argv[1])
PY
echo '{"name": "digits", "implementation": "mlserver_sklearn.SKLearnModel", "parameters": {"uri": "./model.joblib", "version": "v1"}}' > "$model/model-settings.json"
rows=$(python3 -c "
from random import Random
r = Random(0)
print([float(r.randint(0, 16)) for _ in range(64 * 64)])")
{
  echo "settings: {ports: [PORT, GRPC, METRICS]}"
  cat <<YAML
services:
  - module: server
    label: mlserver
    command: [env, "MLSERVER_HTTP_PORT=\${PORT}", "MLSERVER_GRPC_PORT=\${GRPC}", "MLSERVER_METRICS_PORT=\${METRICS}",
              MLSERVER_PARALLEL_WORKERS=0, "$venv/bin/mlserver", start, "$model"]
    ready: {http: "http://127.0.0.1:\${PORT}/v2/models/digits/ready", timeout: 120s}
execution: [{scenario: infer, sweep: {concurrency: [1, 2, 4, 8, 16], step: ${step}s, warm-up: 2s, slo: ["p99<500ms", "fail<1%"]}}]
YAML
  scenario /v2/models/digits/infer "{inputs: [{name: predict, shape: [64, 64], datatype: FP32, data: $rows}]}"
} > "$work/mlserver/sweep.yaml"
(cd "$work/mlserver" && "$perfgate" run sweep.yaml --no-progress -a out > out.txt 2>&1) || true
sed -n '/Capacity (/,/^reports:/p' "$work/mlserver/out.txt" | grep -v '^reports:'
echo "cores: $(nproc)"
