#!/usr/bin/env python3
"""A server under test for perfgate's tests, able to misbehave on demand.

fakeserver.py --port P [--workers N] [--worker-name NAME] [--leak-mb-per-s R]
              [--never-ready] [--crash-after N] [--hang-after N] [--ignore-term]
              [--zombie-workers N] [--echo-headers] [--ready-hang-after N]
              [--daemon --pid-file FILE] [--tag TAG]

The frontend answers every GET with 200 "ok" (unless --never-ready: it never listens). It
starts N worker processes (`fakeserver.py worker --name NAME ...`, so `workers-match` and MMS's
`model_service_worker` can find them); with --leak-mb-per-s the first worker grows its memory
at that rate. --crash-after exits the frontend (status 3) on the (N+1)th request, leaving its
workers behind. --hang-after stops answering from the (N+1)th request on, with the port still
open (connections are accepted by the kernel, requests never answered), as a deadlocked server
does. Both count requests, not seconds, so they happen during the load however slow the
machine is. --ignore-term makes every process ignore SIGTERM. --daemon double-forks, leaves the
session, writes the frontend's pid to FILE and returns at once, as MMS's `--start` does.
--echo-headers logs every request's path and headers. --ready-hang-after N never answers
GET /ready from the (N+1)th request on, while every other path still answers. --tag is only there to mark the command line so tests can find every process.
"""

import argparse
import http.server
import os
import signal
import subprocess
import sys
import threading
import time

# Requests answered so far, and whether the server has started hanging.
state = {"requests": 0, "hanging": False, "crash_after": 0, "hang_after": 0, "echo_headers": False, "ready_hang_after": 0}
lock = threading.Lock()


def worker(args):
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    leak = []
    while True:
        if args.leak_mb_per_s > 0:
            block = bytearray(int(args.leak_mb_per_s * 1024 * 1024 / 10))
            for i in range(0, len(block), 4096):
                block[i] = 1
            leak.append(block)
        time.sleep(0.1)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        with lock:
            state["requests"] += 1
            n = state["requests"]
        if state["echo_headers"]:
            # As a server logging its requests would: headers, credentials and all.
            print(f"fakeserver: GET {self.path} {dict(self.headers)}", flush=True)
        if self.path == "/ready" and state["ready_hang_after"] and n > state["ready_hang_after"]:
            # A queue in front of the probe: it never gets an answer, the load does.
            while True:
                time.sleep(1)
        if state["crash_after"] and n > state["crash_after"]:
            print("fakeserver: crashing now", flush=True)
            os._exit(3)
        if state["hang_after"] and n > state["hang_after"]:
            with lock:
                first = not state["hanging"]
                state["hanging"] = True
            if first:
                print("fakeserver: hanging now", flush=True)
            while True:
                time.sleep(1)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def frontend(args):
    if args.ignore_term:
        # Ignored, but said in the log, so a test knows when the stop has begun.
        signal.signal(signal.SIGTERM, lambda *_: print("fakeserver: ignoring SIGTERM", flush=True))
    else:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.pid_file:
        with open(args.pid_file + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(args.pid_file + ".tmp", args.pid_file)
    workers = []
    for i in range(args.workers):
        argv = [sys.executable, os.path.abspath(__file__), "worker", "--name", args.worker_name,
                "--tag", args.tag]
        if i == 0 and args.leak_mb_per_s > 0:
            argv += ["--leak-mb-per-s", str(args.leak_mb_per_s)]
        if args.ignore_term:
            argv.append("--ignore-term")
        workers.append(subprocess.Popen(argv))
    # --zombie-workers: the last N workers die and are never reaped (as after a scale-down
    # whose parent has not waited yet).
    for w in workers[len(workers) - args.zombie_workers :]:
        w.kill()
    print(f"fakeserver: {args.workers} workers started", flush=True)
    state["crash_after"] = args.crash_after
    state["hang_after"] = args.hang_after
    state["echo_headers"] = args.echo_headers
    state["ready_hang_after"] = args.ready_hang_after
    if args.never_ready:
        print("fakeserver: loading, never ready", flush=True)
        while True:
            time.sleep(1)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.timeout = 0.1
    print(f"fakeserver: listening on {args.port}", flush=True)
    try:
        while True:
            if state["hanging"]:
                # Accept nothing more: new connections wait in the kernel's backlog.
                while True:
                    time.sleep(1)
            server.handle_request()
    finally:
        for w in workers:
            w.terminate()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", nargs="?", default="frontend")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--worker-name", default="fake_worker")
    p.add_argument("--name", default="fake_worker")
    p.add_argument("--leak-mb-per-s", type=float, default=0)
    p.add_argument("--never-ready", action="store_true")
    p.add_argument("--crash-after", type=int, default=0)
    p.add_argument("--hang-after", type=int, default=0)
    p.add_argument("--zombie-workers", type=int, default=0)
    p.add_argument("--echo-headers", action="store_true")
    p.add_argument("--ready-hang-after", type=int, default=0)
    p.add_argument("--ignore-term", action="store_true")
    p.add_argument("--daemon", action="store_true")
    p.add_argument("--pid-file")
    p.add_argument("--tag", default="")
    args = p.parse_args()
    if args.role == "worker":
        return worker(args)
    if args.daemon:
        if os.fork() > 0:
            return
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
    frontend(args)


if __name__ == "__main__":
    main()
