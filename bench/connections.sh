#!/usr/bin/env bash
# The engine's own HTTP/1.1 client against a real server from PyPI (uvicorn + FastAPI, the
# stack of many model servers), on what it has to get right beyond `return 200`:
#   - JSON bodies with Content-Length, chunked streaming bodies (StreamingResponse), HEAD;
#   - `Connection: close` answers (the next request opens a new connection);
#   - keep-alive connections the server closes while they are idle: uvicorn runs with
#     `--timeout-keep-alive 1` and the users think 1.5 s after `stream`, so `close` finds its
#     connection closed and must go again on a new one, transparently (its `ct` counted).
# Checked: every request perfgate counts is in uvicorn's access log and the other way round,
# none failed, the bodies were whole (assertions on their last bytes), connections were opened
# as the server's behaviour requires (perfgate's `ct` count).
#
#   usage: bench/connections.sh [SECONDS=20]   (VENV=dir reuses an environment)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
cargo build --release --quiet
perfgate="$PWD/target/release/perfgate"
venv=${VENV:-$HOME/.cache/perfgate-bench/uvicorn-venv}
if ! "$venv/bin/python" -c 'import uvicorn, fastapi' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet uvicorn fastapi
fi
"$venv/bin/python" -c 'import uvicorn, fastapi; print("uvicorn", uvicorn.__version__, "fastapi", fastapi.__version__)'
cat >"$work/app.py" <<'PY'
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, StreamingResponse

app = FastAPI()


@app.api_route("/json", methods=["GET", "HEAD"])
def json_body():
    return {"ok": True, "pad": "x" * 2048, "end": "json-end"}


@app.get("/stream")
def stream():
    def parts():
        for i in range(8):
            yield f"part {i} " + "y" * 1000 + "\n"
        yield "stream-end\n"
    return StreamingResponse(parts(), media_type="text/plain")


@app.get("/close")
def close():
    return PlainTextResponse("close-end", headers={"Connection": "close"})
PY
cat >"$work/suite.yaml" <<YAML
settings: {ports: [PORT]}
services:
  - module: server
    label: uvicorn
    command: [$venv/bin/uvicorn, app:app, --port, "\${PORT}", --timeout-keep-alive, "1", --app-dir, $work]
    ready: {http: "http://127.0.0.1:\${PORT}/json", timeout: 60s}
execution: [{scenario: s, concurrency: 4, hold-for: ${seconds}s}]
scenarios:
  s:
    default-address: http://127.0.0.1:\${PORT}
    keepalive: true
    requests:
      - {url: /json, label: json, assert: [{contains: [json-end]}]}
      - {url: /json, label: head, method: HEAD}
      # Idle past the server's keep-alive timeout: \`close\` finds its connection closed.
      - {url: /stream, label: stream, think-time: 1500ms, assert: [{contains: [stream-end]}]}
      - {url: /close, label: close, assert: [{contains: [close-end]}]}
YAML
(cd "$work" && "$perfgate" run suite.yaml --no-progress -a out >out.txt 2>&1) || true
python3 - "$work" <<'PY'
import json, re, sys, glob
work = sys.argv[1]
res = json.load(open(f"{work}/out/results.json"))
suite = res["suites"][0]
labels = {l["label"]: l for l in suite["labels"]}
log = open(glob.glob(f"{work}/out/**/uvicorn.log", recursive=True)[0]).read()
served = re.findall(r'"(GET|HEAD) (/\w+) HTTP/1.1" (\d+)', log)
# uvicorn's readiness probes are GETs of /json before the load: not perfgate's requests.
probes = sum(1 for line in log.splitlines() if "GET /json" in line) - labels["json"]["hits"]
print(f"status {suite['status']}")
for name in ("json", "head", "stream", "close"):
    l = labels[name]
    print(f"  {name:7} hits {l['hits']:5} failed {l['fail']:3} avg ct {l.get('avg_ct_ms')} ms "
          f"(None: every one on a kept-alive connection)")
print(f"perfgate requests {labels['']['hits']}, uvicorn served {len(served) - probes} "
      f"(+{probes} readiness probes), failures {labels['']['fail']}")
PY
