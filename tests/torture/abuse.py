#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Load and abuse (issue 15), beyond test_hardening.sh's one-of-each.

One daemon (daemon.max_connections raised to 2500, RLIMIT_NOFILE raised for
it) takes, at the same time: 2,000 simultaneous connections that each send
a request; 200 slowloris clients dribbling header bytes; 20 clients that
pipeline journal reads and never read an answer; 100 MB bodies; 1 MB header
lines; 10,000 headers; NUL bytes in the path, a header and a body; invalid
UTF-8 in a body; 100,000-deep JSON. Throughout, a probe client sends grants
and status reads, and each must be answered within --probe-limit seconds.
Afterwards: the daemon's peak memory (VmHWM) stays under --max-hwm-mb, every
abusive request that was answered got the documented 4xx, and after a
SIGKILL and restart every acknowledged grant is there exactly once and
verify passes. Prints the figures.
"""

import argparse
import http.client
import json
import os
import random
import re
import resource
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torture  # noqa: E402
from torture import CLOCK0, UnixHTTP, call  # noqa: E402


def vm(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024
    return 0


BACKLOG_FULL = [0]


def connect(path):
    """A client as the CLI is one: a full listen backlog (EAGAIN) is
    counted, then retried."""
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            s.close()
            BACKLOG_FULL[0] += 1
            time.sleep(0.01)


def status_of(data):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(m.group(1)) if m else None


def send_and_read(path, payload, chunk=1 << 16, read_limit=1 << 20):
    """Sends payload (bytes, or a (head, body_len) pair streamed as zeros)
    until the server answers or closes; returns (status, bytes sent)."""
    s = connect(path)
    sent = 0
    got = b""
    try:
        if isinstance(payload, tuple):
            head, n = payload
            s.sendall(head)
            zeros = b"\0" * chunk
            s.setblocking(False)
            while sent < n:
                try:
                    sent += s.send(zeros[:min(chunk, n - sent)])
                except BlockingIOError:
                    pass
                except OSError:
                    break
                try:
                    b = s.recv(65536)
                    if not b:
                        break
                    got += b
                    if b"\r\n\r\n" in got:
                        break
                except BlockingIOError:
                    pass
            s.setblocking(True)
            s.settimeout(10)
        else:
            try:
                s.sendall(payload)
                sent = len(payload)
            except OSError:
                pass
        while b"\r\n\r\n" not in got and len(got) < read_limit:
            try:
                b = s.recv(65536)
            except OSError:
                break
            if not b:
                break
            got += b
    finally:
        s.close()
    return status_of(got), sent


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--daemon", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--connections", type=int, default=2000)
    p.add_argument("--max-hwm-mb", type=int, default=256)
    p.add_argument("--probe-limit", type=float, default=30.0)
    args = p.parse_args()
    args.powerloss = False
    args.synchronous = None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.connections + 1000
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        except (ValueError, OSError):
            pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        print(f"SKIP: RLIMIT_NOFILE is {soft} (hard {hard}); {want} descriptors are needed")
        return 77
    base = tempfile.mkdtemp(prefix="gpuledger-abuse.")
    cfg = os.path.join(base, "config.yaml")
    text = open(args.config, encoding="utf-8").read()
    text = re.sub(r"(?m)^  max_connections: \d+", f"  max_connections: {args.connections + 500}", text)
    open(cfg, "w", encoding="utf-8").write(text)
    failures = []
    dm = torture.Daemon(args, base, cfg)
    try:
        dm.init()
        dm.start(CLOCK0)
        pid = dm.proc.pid
        hwm0 = vm(pid, "VmHWM")
        stop = threading.Event()
        probe = {"acked": [], "worst": 0.0, "answers": 0, "late": 0, "unanswered": 0}

        def prober():
            n = 0
            conn = UnixHTTP(dm.sock, timeout=args.probe_limit * 4)
            while not stop.is_set():
                n += 1
                rec = torture.Record("grant", f"probe-{n}", "POST", "/v1/grants", {
                    "consortium": "lg", "phase": "p1", "gpu": "B200", "gpu_seconds": 3600,
                    "reason": "probe"})
                for req in (("POST", rec), ("GET", None)):
                    t0 = time.monotonic()
                    try:
                        if req[1]:
                            rec.status, rec.reply = call(conn, "POST", rec.path, rec.body, rec.key)
                            rec.acked = 200 <= rec.status < 300
                            probe["acked"].append(rec)
                        else:
                            call(conn, "GET", "/v1/status")
                    except (OSError, http.client.HTTPException) as e:
                        conn = UnixHTTP(dm.sock, timeout=args.probe_limit * 4)
                        # a kept-alive connection the server closed: a
                        # client retries once on a new one (a GET; a POST
                        # with its key is safe to repeat too)
                        try:
                            if req[1]:
                                rec.status, rec.reply = call(conn, "POST", rec.path, rec.body,
                                                             rec.key)
                                rec.acked = 200 <= rec.status < 300
                            else:
                                call(conn, "GET", "/v1/status")
                        except (OSError, http.client.HTTPException) as e2:
                            probe["unanswered"] += 1
                            probe.setdefault("errors", []).append(f"{e!r}, then {e2!r}")
                            conn = UnixHTTP(dm.sock, timeout=args.probe_limit * 4)
                            continue
                        dt = time.monotonic() - t0
                        probe["answers"] += 1
                        probe["worst"] = max(probe["worst"], dt)
                        continue
                    dt = time.monotonic() - t0
                    if dt > args.probe_limit / 5 and os.environ.get("ABUSE_DEBUG"):
                        print(f"probe: {req[0]} took {dt:.2f}s, ended at {time.monotonic():.2f}", flush=True)
                    probe["answers"] += 1
                    probe["worst"] = max(probe["worst"], dt)
                    if dt > args.probe_limit:
                        probe["late"] += 1
                time.sleep(0.01)

        pt = threading.Thread(target=prober, daemon=True)
        pt.start()
        results = {}

        # 2,000 simultaneous connections, each with one request in flight
        t0 = time.monotonic()
        socks = []
        for i in range(args.connections):
            socks.append(connect(dm.sock))
        for s in socks:
            s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
        codes = {}
        for s in socks:
            data = b""
            while b"\r\n\r\n" not in data:
                b = s.recv(65536)
                if not b:
                    break
                data += b
            st = status_of(data)
            codes[st] = codes.get(st, 0) + 1
        hwm_conns = vm(pid, "VmHWM")
        for s in socks:
            s.close()
        results["connections"] = (codes, time.monotonic() - t0)
        if codes.get(200, 0) != args.connections:
            failures.append(f"{args.connections} connections: answers {codes}")
        # the daemon's listen backlog holds the burst (up to net.core.somaxconn)
        with open("/proc/sys/net/core/somaxconn") as f:
            somaxconn = int(f.read())
        refused_connects = BACKLOG_FULL[0]
        if somaxconn >= args.connections and refused_connects:
            failures.append(f"{refused_connects} connects found the listen backlog full "
                            f"(net.core.somaxconn is {somaxconn})")

        # slowloris and non-readers, held open while the rest goes on
        slow = [connect(dm.sock) for _ in range(200)]
        for s in slow:
            s.sendall(b"GET /v1/status HTTP/1.1\r\nX-Slow: ")
        deaf = []
        for _ in range(20):
            s = connect(dm.sock)
            s.setblocking(False)
            req = b"GET /v1/journal?limit=1000 HTTP/1.1\r\nHost: x\r\n\r\n" * 64
            for _ in range(200):
                try:
                    s.send(req)
                except (BlockingIOError, OSError):
                    break
            deaf.append(s)

        def dribble():
            while not stop.is_set():
                for s in slow:
                    try:
                        s.send(b"a")
                    except OSError:
                        pass
                time.sleep(0.5)
        dt = threading.Thread(target=dribble, daemon=True)
        dt.start()

        cases = [
            ("100 MB body", (b"POST /v1/grants HTTP/1.1\r\nHost: x\r\nIdempotency-Key: big\r\n"
                             b"Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n",
                             100 << 20), {413}),
            ("1 MB header", b"GET /v1/status HTTP/1.1\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n",
             {431}),
            ("10,000 headers", b"GET /v1/status HTTP/1.1\r\n" +
             b"".join(b"X-%d: y\r\n" % i for i in range(10000)) + b"\r\n", {431}),
            ("NUL in the path", b"GET /v1/sta\0tus HTTP/1.1\r\nHost: x\r\n\r\n", {400}),
            ("NUL in a header", b"GET /v1/status HTTP/1.1\r\nX-A: a\0b\r\n\r\n", {400}),
            ("NUL in a body", b"POST /v1/grants HTTP/1.1\r\nIdempotency-Key: nul\r\n"
             b"Content-Length: 12\r\n\r\n{\"a\":\"\0\"}   ", {400}),
            ("invalid UTF-8", b"POST /v1/grants HTTP/1.1\r\nIdempotency-Key: utf\r\n"
             b"Content-Length: 15\r\n\r\n{\"reason\":\"\xff\xfe\"}", {400}),
            ("deep JSON", b"POST /v1/grants HTTP/1.1\r\nIdempotency-Key: deep\r\n"
             b"Content-Length: 200000\r\n\r\n" + b"[" * 100000 + b"]" * 100000, {400}),
        ]
        for rounds in range(3):
            for name, payload, want in cases:
                tc = time.monotonic()
                st, sent = send_and_read(dm.sock, payload)
                if os.environ.get("ABUSE_DEBUG"):
                    print(f"case {name}: {time.monotonic() - tc:.2f}s, ended at {time.monotonic():.2f}", flush=True)
                results.setdefault(name, []).append(st)
                if st not in want:
                    failures.append(f"{name}: answered {st}, expected {sorted(want)}")
        # the abusers are still there; the probe still gets answers
        time.sleep(2)
        alive_slow = 0
        for s in slow:
            try:
                s.send(b"a")
                alive_slow += 1
            except OSError:
                pass
        hwm = vm(pid, "VmHWM")
        rss = vm(pid, "VmRSS")
        stop.set()
        pt.join(30)
        dt.join(5)
        for s in slow + deaf:
            s.close()
        if dm.proc.poll() is not None:
            failures.append(f"the daemon exited {dm.proc.returncode}")
        if probe["late"] or probe["unanswered"]:
            failures.append(f"probe: {probe['late']} answers over {args.probe_limit}s, "
                            f"{probe['unanswered']} unanswered {probe.get('errors', [])[:3]}")
        if hwm > args.max_hwm_mb:
            failures.append(f"VmHWM {hwm} MB over {args.max_hwm_mb} MB")
        # nothing acknowledged lost
        dm.kill()
        dm.start(CLOCK0)
        conn = UnixHTTP(dm.sock, timeout=30)
        counts = torture.primary_counts(torture.journal(conn))
        acked = [r for r in probe["acked"] if r.acked]
        lost = [r.key for r in acked if torture.count_of(counts, r) != 1]
        if lost:
            failures.append(f"{len(lost)} acknowledged grants lost: {lost[:5]}")
        ok, problems = torture.verify_ok(conn)
        if not ok:
            failures.append(f"verify: {problems}")
        conn.close()
        codes, secs = results["connections"]
        print(f"abuse: {args.connections} simultaneous connections answered {codes} in "
              f"{secs:.1f} s (VmHWM {hwm_conns} MB), {refused_connects} connects found the "
              f"backlog full")
        for name, _, _ in cases:
            print(f"abuse: {name}: {results[name]}")
        print(f"abuse: {alive_slow} of 200 slowloris connections still open at the end "
              f"(the header timeout closes them), 20 non-readers")
        print(f"abuse: probe: {probe['answers']} answers, worst {probe['worst'] * 1000:.0f} ms, "
              f"{len(acked)} grants acknowledged, {len(lost)} lost; VmHWM {hwm0} MB at start, "
              f"{hwm} MB peak, VmRSS {rss} MB at the end; verify {'ok' if ok else 'FAILED'}")
    finally:
        dm.stop()
        if failures:
            print(f"abuse: kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
