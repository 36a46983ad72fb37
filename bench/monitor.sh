#!/usr/bin/env bash
# The cost of monitoring: perfgate's own CPU time with and without a `server` process-tree
# source, a Taurus `local` source and a Prometheus source, all at 1 s, while it drives a
# trickle of load (5 req/s) at demo-server with 4 workers for DURATION. Goal (issue 4): under
# 1% of a core. Compare within one run: the machine is shared.
#
# Usage: bench/monitor.sh [DURATION=30s]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-30s}"
cargo build -q --release
perfgate="$PWD/target/release/perfgate"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

suite() { # suite FILE MONITORING
  cat > "$1" <<YAML
settings: {ports: [PORT]}
services:
  - module: server
    label: demo
    command: ["$perfgate", demo-server, --port, "\${PORT}", --workers, "4"]
    ready: {http: "http://127.0.0.1:\${PORT}/v2/health/ready", timeout: 20s}
$2
execution: [{scenario: s, concurrency: 1, throughput: 5, hold-for: $duration}]
scenarios:
  s: {default-address: "http://127.0.0.1:\${PORT}", requests: [/v2/health/live]}
YAML
}
suite "$work/off.yaml" "    monitoring: {interval: 1s, metrics: []}
  - module: passfail"
suite "$work/on.yaml" "  - module: monitoring
    local: [{interval: 1s, metrics: [cpu, mem, disk-space, bytes-recv, bytes-sent, disk-read, disk-write, conn-all]}]
    prometheus: [{url: \"http://127.0.0.1:\${PORT}/metrics\", label: prom, interval: 1s, metrics: [demo_in_flight]}]"

python3 - "$perfgate" "$work" <<'PY'
import os, resource, subprocess, sys, time, json
perfgate, work = sys.argv[1], sys.argv[2]
cpu = {}
for name in ("off", "on"):
    t0 = time.monotonic()
    # perfgate alone: its children (the server and its guard) are not counted.
    p = subprocess.Popen([perfgate, "run", "-q", "--no-progress", "-a", f"{work}/{name}",
                          f"{work}/{name}.yaml"], stdout=subprocess.DEVNULL)
    # Own CPU of the perfgate process, read just before it exits.
    last = None
    while p.poll() is None:
        try:
            f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
            last = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        except (FileNotFoundError, IndexError):
            pass
        time.sleep(0.2)
    wall = time.monotonic() - t0
    res = json.load(open(f"{work}/{name}/results.json"))
    series = len(res["suites"][0]["monitoring"])
    cpu[name] = (last, wall)
    print(f"{name:4} monitoring: {series:3d} series, perfgate CPU {last:.2f}s over {wall:.1f}s")
extra = cpu["on"][0] - cpu["off"][0]
share = extra / cpu["on"][1] * 100
ok = share < 1.0
print(f"{'ok  ' if ok else 'MISS'} monitoring costs {share:.2f}% of a core (goal < 1%)")
sys.exit(0 if ok else 1)
PY
