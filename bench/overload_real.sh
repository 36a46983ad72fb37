#!/usr/bin/env bash
# Overload against a real server: a CPU-bound embeddings endpoint on FastAPI + uvicorn (from
# PyPI, in a virtualenv under target/), first measured at its capacity (closed model, 4 users),
# then driven by the open model at twice that rate. What the gate must show: the `for`
# criterion fails with the seconds where the final per-second p99 is over its threshold, served
# throughput is the server's capacity (not the offered rate), and requests cut at the end are
# counted as unfinished.
#   usage: bench/overload_real.sh [SECONDS=20]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
cargo build --release --quiet
venv=target/bench-venv
[ -x "$venv/bin/uvicorn" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q fastapi uvicorn; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cat > "$work/embed.py" <<'PY'
import hashlib
from fastapi import FastAPI
app = FastAPI()

@app.get("/health")
def health():
    return {"ok": True}

@app.post("/embed")
def embed(body: dict):
    # About 20 ms of CPU per request, under the GIL: one core's worth of capacity.
    digest = str(body.get("text", "")).encode()
    for _ in range(20000):
        digest = hashlib.sha256(digest).digest()
    return {"embedding": [b / 255 for b in digest]}
PY
suite() { # name execution criteria
  cat > "$work/$1.yaml" <<YAML
settings: {ports: [PORT]}
services:
  - module: server
    label: embed
    command: ["$PWD/$venv/bin/uvicorn", "--app-dir", "$work", "embed:app", "--port", "\${PORT}", "--log-level", "warning"]
    ready: {http: "http://127.0.0.1:\${PORT}/health", timeout: 30s}
execution: [$2]
scenarios:
  s:
    default-address: "http://127.0.0.1:\${PORT}"
    timeout: 60s
    requests: [{url: /embed, label: embed, method: POST, body: {text: "the quick brown fox"}}]
reporting:
  - module: passfail
    criteria: [$3]
YAML
}
json() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); $2" "$3"; }

suite capacity "{scenario: s, concurrency: 4, hold-for: 10s}" '"p99>60s, continue as non-failed"'
./target/release/perfgate run "$work/capacity.yaml" --no-progress -a "$work/cap" > /dev/null || true
capacity=$(json x "print(round(r['suites'][0]['labels'][0]['throughput']))" "$work/cap/results.json")
rate=$((capacity * 2))
echo "capacity (closed model, 4 users): $capacity req/s; open model at $rate req/s for ${seconds}s"

suite overload "{scenario: s, throughput: $rate, arrival: constant, concurrency: 5000, hold-for: ${seconds}s}" \
  '"p99>5s for 3s, continue as failed"'
set +e
./target/release/perfgate run "$work/overload.yaml" --no-progress -a "$work/over" > "$work/out.txt" 2>&1
code=$?
set -e
echo "exit code $code"
grep -E "p99>5s|ALL|unfinished" "$work/out.txt" || true
json x "
s = r['suites'][0]; a = s['labels'][0]; c = s['criteria'][0]
print('verdict', c['verdict'], 'window', c['window'], 'observed', c['observed_text'])
print('offered %.1f/s served %.1f/s hits %d unfinished %d dropped %d' % (a['offered'], a['throughput'], a['hits'], a['unfinished'], a['dropped']))
p99 = {t['second']: t['p99_ms'] for t in s['timeline'] if t['label'] == ''}
f, t = c['window']
print('final p99 (s) in the breach:', [round(p99[x] / 1000, 1) for x in range(f, t)])
print('final p99 (s) per second:', [round(p99[x] / 1000, 1) for x in sorted(p99) if p99[x] is not None])
" "$work/over/results.json"
