#!/usr/bin/env bash
# perfgate's load engine against its peers, in one run on one machine.
#
# Starts a one-worker nginx (`return 200`, private config, loopback, a free port), then drives
# it for DURATION at CONNECTIONS connections with oha and with perfgate, and prints for each:
# requests/s, CPU-seconds per 100k requests (user + system of the load generator only) and peak
# RSS. Then it checks perfgate's goals (issue 3):
#   - requests/s   >= 0.8 x oha's
#   - CPU/request  <= 1.25 x oha's
#   - peak RSS     < 50 MB
#   - peak RSS after 10M requests within 10% of the peak after 1M (skipped with --quick)
#   - time from `perfgate run` to the first request < 100 ms
#
# Usage: bench/peers.sh [--quick] [DURATION=10s] [CONNECTIONS=64]
# PERFGATE_BIN=/path/to/perfgate measures that build instead of building this checkout.
# Needs nginx (Debian package `nginx`) and oha (`cargo install oha --locked`); installs them
# when missing. Compare ratios, not absolute figures: the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
if [[ "${1:-}" == "--quick" ]]; then
  quick=true
  shift
fi
duration="${1:-10s}"
connections="${2:-64}"

if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
  echo "== installing nginx (Debian package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >/dev/null
fi
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v oha >/dev/null; then
  echo "== installing oha (cargo install oha --locked)"
  cargo install -q oha --locked
fi

if [[ -n "${PERFGATE_BIN:-}" ]]; then
  # Another build to compare (say, before a change): PERFGATE_BIN=/path/to/perfgate.
  perfgate="$PERFGATE_BIN"
else
  echo "== building perfgate (release)"
  cargo build -q --release
  perfgate="$PWD/target/release/perfgate"
fi

work="$(mktemp -d)"
source bench/nginx.sh
trap 'stop_nginx; rm -rf "$work"' EXIT

nginx_setup "$work"
start_nginx
echo "== nginx pid $nginx_pid on $url; $duration at $connections connections"

# measure OUT CMD...: runs CMD, writes {"cpu_s", "maxrss_kb", "wall_s"} of it and its children.
measure() {
  local out="$1"
  shift
  python3 - "$out" "$@" <<'PY'
import json, os, subprocess, sys, time
out, argv = sys.argv[1], sys.argv[2:]
t0 = time.monotonic()
child = subprocess.Popen(argv, stdout=subprocess.DEVNULL if "oha" not in argv[0] else open(out + ".stdout", "w"))
_, status, ru = os.wait4(child.pid, 0)
wall = time.monotonic() - t0
json.dump({"cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_kb": ru.ru_maxrss, "wall_s": wall,
           "status": os.waitstatus_to_exitcode(status)}, open(out, "w"))
PY
}

suite() { # suite FILE HOLD ITERATIONS
  cat >"$1" <<EOF
execution:
  - scenario: hit
    concurrency: $connections
    hold-for: $2
$( [[ -n "${3:-}" ]] && echo "    iterations: $3" )
scenarios:
  hit:
    keepalive: true
    requests:
      - url: $url
        label: hit
EOF
}

echo "== oha"
measure "$work/oha.json" oha -z "$duration" -c "$connections" --no-tui --output-format json "$url"
echo "== perfgate"
suite "$work/perfgate.yaml" "$duration"
measure "$work/perfgate.json" "$perfgate" run -q -a "$work/pg" "$work/perfgate.yaml"

python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
oha_run = json.load(open(f"{work}/oha.json"))
oha_out = json.load(open(f"{work}/oha.json.stdout"))
pg_run = json.load(open(f"{work}/perfgate.json"))
pg = json.load(open(f"{work}/pg/results.json"))
overall = next(l for l in pg["suites"][0]["labels"] if l["label"] == "")
oha_n = sum(oha_out["statusCodeDistribution"].values())
oha_rps = oha_out["summary"]["requestsPerSec"]
rows = [
    ("oha", oha_rps, oha_n, oha_run),
    ("perfgate", overall["throughput"], overall["hits"], pg_run),
]
print(f"{'tool':10} {'req/s':>10} {'requests':>10} {'CPU-s/100k':>11} {'peak RSS':>10}")
figures = {}
for name, rps, n, run in rows:
    cpu100k = run["cpu_s"] / n * 100_000
    rss = run["maxrss_kb"] / 1024
    figures[name] = (rps, cpu100k, rss)
    print(f"{name:10} {rps:10.0f} {n:10d} {cpu100k:11.3f} {rss:8.1f}MB")
(orps, ocpu, _), (prps, pcpu, prss) = figures["oha"], figures["perfgate"]
checks = [
    (f"req/s {prps / orps:.2f}x oha's (goal >= 0.8x)", prps >= 0.8 * orps),
    (f"CPU per request {pcpu / ocpu:.2f}x oha's (goal <= 1.25x)", pcpu <= 1.25 * ocpu),
    (f"peak RSS {prss:.1f} MB (goal < 50 MB)", prss < 50),
]
json.dump(checks, open(f"{work}/checks.json", "w"))
PY

if ! $quick; then
  echo "== perfgate peak RSS after 1M and 10M requests"
  for n in 1000000 10000000; do
    suite "$work/n$n.yaml" 1h "$n"
    measure "$work/n$n.json" "$perfgate" run -q -a "$work/n$n" "$work/n$n.yaml"
  done
  python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
checks = json.load(open(f"{work}/checks.json"))
rss = {}
for n in (1000000, 10000000):
    run = json.load(open(f"{work}/n{n}.json"))
    res = json.load(open(f"{work}/n{n}/results.json"))
    hits = next(l for l in res["suites"][0]["labels"] if l["label"] == "")["hits"]
    rss[n] = run["maxrss_kb"] / 1024
    print(f"  {hits:>9} requests in {run['wall_s']:6.1f}s: peak RSS {rss[n]:.1f} MB")
growth = rss[10000000] / rss[1000000]
checks.append((f"peak RSS after 10M is {growth:.3f}x the peak after 1M (goal within 10%)",
               abs(growth - 1) <= 0.10))
json.dump(checks, open(f"{work}/checks.json", "w"))
PY
fi

echo "== time from \`perfgate run\` to the first request"
python3 - "$perfgate" "$work" <<'PY'
import json, os, socket, subprocess, sys, time
perfgate, work = sys.argv[1], sys.argv[2]
checks = json.load(open(f"{work}/checks.json"))
times = []
for _ in range(5):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    suite = f"{work}/first.yaml"
    with open(suite, "w") as f:
        f.write(f"execution: [{{scenario: s, concurrency: 1, iterations: 1}}]\n"
                f"scenarios: {{s: {{requests: ['http://127.0.0.1:{port}/']}}}}\n")
    t0 = time.monotonic()
    child = subprocess.Popen([perfgate, "run", "-q", "-a", f"{work}/first", suite],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conn, _ = listener.accept()
    conn.recv(4096)
    times.append((time.monotonic() - t0) * 1000)
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
    conn.close()
    child.wait(timeout=10)
    listener.close()
best, median = min(times), sorted(times)[len(times) // 2]
print(f"  median {median:.1f} ms, best {best:.1f} ms over {len(times)} runs")
checks.append((f"first request after {median:.1f} ms (goal < 100 ms)", median < 100))
print("== goals")
failed = 0
for text, ok in checks:
    print(f"  {'ok  ' if ok else 'MISS'} {text}")
    failed += not ok
sys.exit(1 if failed else 0)
PY
