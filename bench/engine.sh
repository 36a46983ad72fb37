#!/usr/bin/env bash
# The load engine's efficiency against wrk and oha, per request, on this machine.
#
# A one-worker nginx (`return 200`, private config, loopback, a free port) is driven at
# CONNECTIONS connections for DURATION by wrk, oha and perfgate, RUNS times each, in two
# layouts:
#   - pinned: nginx on CPU 0, the load generator on CPU 1 (taskset), one generator thread
#     where the tool has the choice (wrk -t1);
#   - unpinned: the scheduler decides; wrk -t2 (one per core).
# For each tool and layout: the median of the runs' requests/s, CPU-seconds per 100k requests
# (user + system of the generator and its children, from wait4) and peak RSS. Then, once per
# tool, unpinned: syscalls per request (`perf stat -e raw_syscalls:sys_enter`), and for perfgate
# heap allocations per request in the steady state (heaptrack over a 3 s and a 6 s run, the
# difference; heaptrack slows it, the count is what matters). The goals (issue 18): pinned, perfgate >= 0.95x wrk's requests/s and <= 1.2x
# its CPU per request; unpinned >= oha's requests/s; memory flat.
#
# Usage: bench/engine.sh [DURATION=10] [CONNECTIONS=64] [RUNS=3]   (seconds)
# PERFGATE_BIN=/path/to/perfgate measures that build instead of building this checkout.
# Needs nginx, wrk (Debian packages), oha (`cargo install oha --locked`), perf and heaptrack
# (Debian packages `linux-perf`, `heaptrack`) for the last two figures.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
connections="${2:-64}"
runs="${3:-3}"
export PATH="$HOME/.cargo/bin:$PATH"
for tool in nginx wrk; do
  if ! command -v "$tool" >/dev/null && [[ ! -x "/usr/sbin/$tool" ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$tool" >/dev/null
  fi
done
command -v oha >/dev/null || cargo install -q oha --locked
if [[ -n "${PERFGATE_BIN:-}" ]]; then
  perfgate="$PERFGATE_BIN"
else
  cargo build -q --release
  perfgate="$PWD/target/release/perfgate"
fi
work="$(mktemp -d)"
source bench/nginx.sh
trap 'stop_nginx; rm -rf "$work"' EXIT
nginx_setup "$work"
cat >"$work/suite.yaml" <<SUITE
execution: [{scenario: hit, concurrency: $connections, hold-for: ${duration}s}]
scenarios: {hit: {keepalive: true, requests: [{url: "$url", label: hit}]}}
SUITE
cat >"$work/short.yaml" <<SUITE
execution: [{scenario: hit, concurrency: $connections, hold-for: 3s}]
scenarios: {hit: {keepalive: true, requests: [{url: "$url", label: hit}]}}
SUITE

# One run: LAYOUT TOOL N -> $work/LAYOUT-TOOL-N.json {requests, rps, cpu_s, maxrss_kb}
run() {
  local layout="$1" tool="$2" n="$3" pin=() threads=2
  if [[ "$layout" == pinned ]]; then pin=(taskset -c 1); threads=1; fi
  local cmd
  case "$tool" in
    wrk) cmd=(wrk "-t$threads" "-c$connections" "-d${duration}s" "$url") ;;
    oha) cmd=(oha -z "${duration}s" -c "$connections" --no-tui --output-format json "$url") ;;
    perfgate) cmd=("$perfgate" run -q -a "$work/pg-$layout-$n" "$work/suite.yaml") ;;
  esac
  python3 - "$work" "$layout-$tool-$n" "$tool" "${pin[@]}" "${cmd[@]}" <<'PY'
import json, os, subprocess, sys, re, time
work, name, tool, argv = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
out = open(f"{work}/{name}.out", "w")
t0 = time.monotonic()
child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
_, status, ru = os.wait4(child.pid, 0)
wall = time.monotonic() - t0
text = open(f"{work}/{name}.out").read()
if tool == "wrk":
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
elif tool == "oha":
    o = json.loads(text)
    requests = sum(o["statusCodeDistribution"].values())
    rps = o["summary"]["requestsPerSec"]
else:
    res = json.load(open(f"{work}/pg-{name.split('-')[0]}-{name.split('-')[2]}/results.json"))
    overall = next(l for l in res["suites"][0]["labels"] if l["label"] == "")
    requests, rps = overall["hits"], overall["throughput"]
json.dump({"requests": requests, "rps": rps, "cpu_s": ru.ru_utime + ru.ru_stime,
           "maxrss_kb": ru.ru_maxrss, "wall_s": wall}, open(f"{work}/{name}.json", "w"))
PY
}

for layout in pinned unpinned; do
  if [[ "$layout" == pinned ]]; then start_nginx taskset -c 0; else start_nginx; fi
  echo "== $layout: nginx pid $nginx_pid on $url; ${duration}s at $connections connections, $runs runs"
  for n in $(seq "$runs"); do
    # Rotate the order so no tool always runs first on a cooler machine.
    tools=(wrk oha perfgate)
    for i in 0 1 2; do run "$layout" "${tools[$(((i + n) % 3))]}" "$n"; done
  done
  stop_nginx
done

echo "== syscalls and allocations per request (unpinned, one run each)"
start_nginx
count_syscalls() { # TOOL CMD...
  local tool="$1"
  shift
  perf stat -x, -e raw_syscalls:sys_enter -o "$work/sys-$tool.txt" -- "$@" >"$work/sys-$tool.out" 2>&1 || true
}
if command -v perf >/dev/null; then
  count_syscalls wrk wrk -t2 "-c$connections" -d5s "$url"
  count_syscalls oha oha -z 5s -c "$connections" --no-tui --output-format json "$url"
  count_syscalls perfgate "$perfgate" run -q -a "$work/pg-sys" "$work/short.yaml"
fi
if command -v heaptrack >/dev/null; then
  # Two runs, 3 s and 6 s: the difference is the steady state's (start-up and the reports
  # are in both).
  for d in 3 6; do
    sed "s/hold-for: 3s/hold-for: ${d}s/" "$work/short.yaml" >"$work/heap$d.yaml"
    (cd "$work" && heaptrack -o "$work/heap$d" "$perfgate" run -q -a "$work/pg-heap$d" "$work/heap$d.yaml" >/dev/null 2>&1) || true
    recording="$(ls "$work"/heap$d.* | head -1)"
    heaptrack_print "$recording" 2>/dev/null | grep -E "^calls to allocation functions" >"$work/allocations$d.txt" || true
  done
fi
stop_nginx

python3 - "$work" "$runs" <<'PY'
import json, re, statistics, sys, os
work, runs = sys.argv[1], int(sys.argv[2])
med = {}
for layout in ("pinned", "unpinned"):
    print(f"\n{layout}: {'tool':9} {'req/s':>9} {'CPU-s/100k':>11} {'peak RSS':>9}   (median of {runs})")
    for tool in ("wrk", "oha", "perfgate"):
        rs = [json.load(open(f"{work}/{layout}-{tool}-{n}.json")) for n in range(1, runs + 1)]
        rps = statistics.median(r["rps"] for r in rs)
        cpu = statistics.median(r["cpu_s"] / r["requests"] * 1e5 for r in rs)
        rss = statistics.median(r["maxrss_kb"] / 1024 for r in rs)
        med[(layout, tool)] = (rps, cpu, rss)
        print(f"{'':10}{tool:9} {rps:9.0f} {cpu:11.3f} {rss:7.1f}MB")
def per_request(tool, requests_from):
    path = f"{work}/sys-{tool}.txt"
    if not os.path.exists(path):
        return None
    m = re.search(r"^([\d.]+),,raw_syscalls:sys_enter", open(path).read(), re.M)
    return float(m.group(1)) / requests_from if m else None
def requests_of(tool):
    text = open(f"{work}/sys-{tool}.out").read() if os.path.exists(f"{work}/sys-{tool}.out") else ""
    if tool == "wrk":
        m = re.search(r"(\d+) requests in", text)
        return int(m.group(1)) if m else None
    if tool == "oha":
        try:
            return sum(json.loads(text)["statusCodeDistribution"].values())
        except Exception:
            return None
    try:
        res = json.load(open(f"{work}/pg-sys/results.json"))
        return next(l for l in res["suites"][0]["labels"] if l["label"] == "")["hits"]
    except Exception:
        return None
print("\nper request (unpinned):")
for tool in ("wrk", "oha", "perfgate"):
    n = requests_of(tool)
    s = per_request(tool, n) if n else None
    print(f"  {tool:9} syscalls/request {s:.2f}" if s else f"  {tool:9} syscalls/request -")
def heap(d):
    try:
        calls = re.search(r"calls to allocation functions: (\d+)", open(f"{work}/allocations{d}.txt").read())
        res = json.load(open(f"{work}/pg-heap{d}/results.json"))
        hits = next(l for l in res["suites"][0]["labels"] if l["label"] == "")["hits"]
        return int(calls.group(1)), hits
    except Exception:
        return None
short, long = heap(3), heap(6)
if short and long and long[1] > short[1]:
    calls, hits = long[0] - short[0], long[1] - short[1]
    print(f"  perfgate  heap allocations/request in the steady state {calls / hits:.4f} "
          f"({calls} over {hits} requests: a 6 s run less a 3 s one, under heaptrack)")
(wr, wc, _), (pr, pc, _) = med[("pinned", "wrk")], med[("pinned", "perfgate")]
(orr, _, _), (pur, _, _) = med[("unpinned", "oha")], med[("unpinned", "perfgate")]
print(f"\npinned:   perfgate req/s {pr / wr:.2f}x wrk's (goal >= 0.95x), CPU/request {pc / wc:.2f}x wrk's (goal <= 1.2x)")
print(f"unpinned: perfgate req/s {pur / orr:.2f}x oha's (goal >= 1.0x)")
PY
