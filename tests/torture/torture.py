#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Crash torture for gpuledgerd (issue 15).

Each run starts the real daemon on a fresh database and a simulated clock,
lets 16-64 concurrent clients send grants, allocations, cancels, releases,
eliminations, reinstatements and clock moves over the Unix socket (each POST
with a unique Idempotency-Key), records every request with whether it was
acknowledged (a complete 2xx answer) and what it returned, and SIGKILLs the
daemon at a random moment. It then restarts the daemon on the same database
and checks:

  * every acknowledged change is in the journal, exactly once (its
    request_id is the Idempotency-Key), and a retry with the key returns the
    first answer byte for byte;
  * nothing is there twice: no key has two entries of its request's kind;
  * retrying every unacknowledged request with its key gives exactly-once
    effects: afterwards each key's kind appears at most once, once for a 2xx
    retry, and a second retry answers the same;
  * GET /v1/verify says ok, and every quota row equals the sum of the
    journal's deltas for its key.

--powerloss adds a power cut: the daemon runs with the fault VFS
(tests/fault/faultvfs.c, LD_PRELOAD) keeping an undo log of every write
since the file's last fsync, and after the SIGKILL this driver rolls each
file back to its last fsync, as a machine losing power would leave it.
--synchronous NORMAL (the control) makes the VFS turn the daemon's
synchronous=FULL into NORMAL; --expect-loss then asserts that
acknowledgements were lost, as they must be without the WAL fsync at commit.

Prints one line per run and a summary: runs / acknowledged / lost /
duplicated / verify failures / time to ready after restart. Exit 0 when
nothing was lost or duplicated and every verify passed (with --expect-loss:
when something acknowledged was lost and the database still audits clean).
Python 3 standard library only.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

CONSORTIA = ["lg", "skt", "upstage", "naver", "ncai"]
PHASES = ["p1", "p2"]
POOLS = [("skt-b200", "B200"), ("ncloud-h200", "H200"), ("kt-h100", "H100")]
GPUS = ["B200", "H200", "H100"]
# The example config's first phase starts here (Asia/Seoul).
CLOCK0 = 1754262000  # 2025-08-04T09:00:00+09:00
TZ = 9 * 3600
# The journal kind that a request of each route writes exactly once.
PRIMARY = {
    "grant": ("grant", "adjust"),
    "allocate": ("reserve",),
    "cancel": ("cancel",),
    "release": ("release",),
    "eliminate": ("eliminate",),
    "reinstate": ("reinstate",),
}


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S+09:00", time.gmtime(t + TZ))


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


def call(conn, method, path, body=None, key=None):
    """(status, body bytes); raises OSError/HTTPException when the daemon
    does not answer completely."""
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if key is not None:
        headers["Idempotency-Key"] = key
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    return r.status, r.read()


class Record:
    __slots__ = ("op", "key", "method", "path", "body", "acked", "status", "reply")

    def __init__(self, op, key, method, path, body):
        self.op, self.key, self.method, self.path, self.body = op, key, method, path, body
        self.acked = False
        self.status = None
        self.reply = None


class World:
    """What the clients share: the allocations they saw booked, the clock."""

    def __init__(self, rng):
        self.lock = threading.Lock()
        self.allocs = []
        self.clock = CLOCK0
        self.clock_max = CLOCK0  # the furthest target ever sent
        self.records = []
        self.stop = threading.Event()
        self.rng = rng


def make_request(w, rng, prefix):
    """One random mutating request: (op, method, path, body)."""
    with w.lock:
        clock = w.clock
        allocs = list(w.allocs[-50:])
    r = rng.random()
    c = rng.choice(CONSORTIA)
    if r < 0.30:
        body = {"consortium": c, "phase": rng.choice(PHASES), "gpu": rng.choice(GPUS),
                "gpu_seconds": rng.choice([1, 1, 1, 1, -1]) * rng.randint(1, 200) * 3600 * 8,
                "reason": "torture grant"}
        if rng.random() < 0.1:
            body["max_gpus"] = rng.randint(8, 512)
        return "grant", "POST", "/v1/grants", body
    if r < 0.70:
        pool, _ = rng.choice(POOLS)
        start = clock + rng.randint(0, 40) * 3600
        body = {"consortium": c, "pool": pool, "gpus": rng.randint(1, 64),
                "start": iso(start), "duration_s": rng.randint(1, 24) * 3600}
        if rng.random() < 0.1:
            body["earliest"] = True
        return "allocate", "POST", "/v1/allocations", body
    if r < 0.82 and allocs:
        a, _, _ = rng.choice(allocs)
        return "cancel", "POST", f"/v1/allocations/{a}/cancel", {"reason": "torture cancel"}
    if r < 0.92 and allocs:
        a, start, end = rng.choice(allocs)
        body = {"reason": "torture release"}
        if rng.random() < 0.8:
            body["at"] = iso(max(clock, start + (end - start) // 2))
        return "release", "POST", f"/v1/allocations/{a}/release", body
    if r < 0.94:
        op = "eliminate" if rng.random() < 0.4 else "reinstate"
        body = {"effective": iso(clock + rng.randint(30, 200) * 3600), "reason": "torture " + op}
        return op, "POST", f"/v1/consortia/{c}/{op}", body
    with w.lock:
        w.clock_max += rng.randint(1, 6) * 3600
        target = w.clock_max
    return "clock", "POST", "/v1/clock", {"set": iso(target)}


def client(w, sock, seed, prefix):
    rng = random.Random(seed)
    conn = None
    while not w.stop.is_set():
        op, method, path, body = make_request(w, rng, prefix)
        rec = Record(op, f"{prefix}-{uuid.UUID(int=rng.getrandbits(128)).hex}", method, path, body)
        with w.lock:
            w.records.append(rec)
        try:
            if conn is None:
                conn = UnixHTTP(sock, timeout=5)
            rec.status, rec.reply = call(conn, method, path, body, rec.key)
        except (OSError, http.client.HTTPException):
            # no complete answer: not acknowledged. The daemon is gone or
            # going; this client is done.
            try:
                conn.close()
            except Exception:
                pass
            return
        rec.acked = 200 <= rec.status < 300
        if not rec.acked:
            continue
        d = json.loads(rec.reply)
        with w.lock:
            if op == "allocate":
                a = d["allocation"]
                w.allocs.append((a["id"], parse_iso(a["start"]), parse_iso(a["end"])))
            elif op == "clock":
                t = body["set"]
                w.clock = max(w.clock, parse_iso(t))


def parse_iso(s):
    # 2025-08-04T09:00:00+09:00, as the daemon writes them
    t = time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")
    sign = 1 if s[19] == "+" else -1
    off = sign * (int(s[20:22]) * 3600 + int(s[23:25]) * 60)
    return int(calendar_timegm(t)) - off


def calendar_timegm(t):
    import calendar
    return calendar.timegm(t)


class Daemon:
    def __init__(self, args, d, config):
        self.args, self.dir, self.config = args, d, config
        self.sock = os.path.join(d, "sock")
        self.db = os.path.join(d, "db")
        self.log = os.path.join(d, "daemon.log")
        self.proc = None

    def env(self):
        e = dict(os.environ)
        if self.args.powerloss:
            pre = [self.args.faultvfs]
            if self.args.asan_runtime:
                pre.insert(0, self.args.asan_runtime)
            e["LD_PRELOAD"] = ":".join(pre)
            e["FAULTVFS_UNDO"] = "1"
            if self.args.synchronous:
                e["FAULTVFS_SYNCHRONOUS"] = self.args.synchronous
        return e

    def init(self):
        subprocess.run([self.args.daemon, "--config", self.config, "--database", self.db,
                        "--init"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=self.env())

    def start(self, clock):
        """Starts the daemon; returns the seconds until it answers status."""
        t0 = time.monotonic()
        out = open(os.path.join(self.dir, "daemon.out"), "ab")
        self.proc = subprocess.Popen(
            [self.args.daemon, "--config", self.config, "--socket", self.sock,
             "--database", self.db, "--log", self.log, "--clock", iso(clock)],
            stdout=out, stderr=out, env=self.env())
        out.close()
        while time.monotonic() - t0 < 20:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gpuledgerd exited {self.proc.returncode} at start "
                                   f"(see {self.dir})")
            try:
                c = UnixHTTP(self.sock, timeout=2)
                st, _ = call(c, "GET", "/v1/status")
                c.close()
                if st == 200:
                    return time.monotonic() - t0
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.005)
        raise RuntimeError("gpuledgerd did not answer status within 20 s")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def undo_file(path):
    """Rolls PATH back to its last fsync from PATH-undo (the fault VFS's
    log): records 'S' size (the size at the last sync) and 'W' offset len
    bytes (what a write overwrote), applied newest first. Returns the
    number of write records undone."""
    log = path + "-undo"
    if not os.path.exists(log):
        return 0
    recs, size = [], None
    with open(log, "rb") as f:
        data = f.read()
    i = 0
    while i < len(data):
        tag = data[i:i + 1]
        if tag == b"S" and i + 9 <= len(data):
            (sz,) = struct.unpack_from("<Q", data, i + 1)
            if size is None:
                size = sz
            i += 9
        elif tag == b"W" and i + 13 <= len(data):
            off, n = struct.unpack_from("<QI", data, i + 1)
            if i + 13 + n > len(data):
                break  # torn record: its write never started
            recs.append((off, data[i + 13:i + 13 + n]))
            i += 13 + n
        else:
            break
    if os.path.exists(path):
        with open(path, "r+b") as f:
            for off, old in reversed(recs):
                f.seek(off)
                f.write(old)
            if size is not None:
                f.truncate(size)
    os.unlink(log)
    return len(recs)


def journal(conn):
    entries, since = [], 0
    while True:
        st, b = call(conn, "GET", f"/v1/journal?since={since}&limit=100000")
        if st != 200:
            raise RuntimeError(f"journal: {st} {b[:200]!r}")
        d = json.loads(b)
        entries += d["entries"]
        if not d["entries"] or d.get("later", 0) == 0:
            return entries
        since = d["entries"][-1]["seq"]


def primary_counts(entries):
    counts = {}
    for e in entries:
        rid = e.get("request_id")
        if rid is not None:
            counts.setdefault(rid, {}).setdefault(e["kind"], 0)
            counts[rid][e["kind"]] += 1
    return counts


def count_of(counts, rec):
    kinds = PRIMARY.get(rec.op)
    if kinds is None:
        return None
    return sum(counts.get(rec.key, {}).get(k, 0) for k in kinds)


def balances_match(conn, entries):
    st, b = call(conn, "GET", "/v1/quota")
    if st != 200:
        return [f"quota: {st}"]
    sums = {}
    for e in entries:
        if e.get("consortium") is None or e.get("phase") is None or e.get("gpu") is None:
            continue
        k = (e["consortium"], e["phase"], e["gpu"])
        s = sums.setdefault(k, [0, 0, 0])
        s[0] += e.get("granted_delta_gpu_seconds") or 0
        s[1] += e.get("committed_delta_gpu_seconds") or 0
        s[2] += e.get("expired_delta_gpu_seconds") or 0
    bad = []
    seen = set()
    for q in json.loads(b)["quota"]:
        k = (q["consortium"], q["phase"], q["gpu"])
        seen.add(k)
        s = sums.get(k, [0, 0, 0])
        got = [q["granted_gpu_seconds"], q["committed_gpu_seconds"], q["expired_gpu_seconds"]]
        if got != s:
            bad.append(f"quota {k}: {got} but the journal sums to {s}")
    for k, s in sums.items():
        if k not in seen and s != [0, 0, 0]:
            bad.append(f"quota {k}: no row but the journal sums to {s}")
    return bad


def verify_ok(conn):
    st, b = call(conn, "GET", "/v1/verify")
    if st != 200:
        return False, f"verify: {st}"
    d = json.loads(b)
    return d.get("ok") is True, d.get("problems")


def run_config(src, d):
    """src with idempotency records kept ten years, written into d.

    The clients move the simulated clock weeks ahead, and a retry's answer
    is promised only within daemon.idempotency_retention (30 days of the
    ledger's clock by default): a restart would prune the keys this run
    retries, and a retry past them is rightly a new request.
    """
    with open(src, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if "daemon:" not in lines:
        sys.exit(f"torture: {src} has no top-level 'daemon:' map")
    i = lines.index("daemon:")
    lines.insert(i + 1, "  idempotency_retention: 3650d")
    out = os.path.join(d, "program.yaml")
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return out


def one_run(args, n, rng, stats):
    d = tempfile.mkdtemp(prefix="gpuledger-torture.", dir=args.tmpdir)
    dm = Daemon(args, d, run_config(args.config, d))
    problems = []
    try:
        dm.init()
        dm.start(CLOCK0)
        w = World(rng)
        clients = rng.randint(args.min_clients, args.max_clients)
        prefix = f"r{n}-{rng.getrandbits(32):08x}"
        threads = [threading.Thread(target=client, args=(w, dm.sock, rng.getrandbits(64),
                                                         f"{prefix}c{i}"), daemon=True)
                   for i in range(clients)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(args.min_load, args.max_load))
        dm.kill()
        w.stop.set()
        for t in threads:
            t.join(10)
        undone = 0
        if args.powerloss:
            for suffix in ("", "-wal", "-journal"):
                undone += undo_file(dm.db + suffix)
        # the clock a restart may take: never before the journal head, and
        # the clients sent nothing beyond clock_max
        ready = dm.start(w.clock_max)
        conn = UnixHTTP(dm.sock, timeout=30)
        entries = journal(conn)
        counts = primary_counts(entries)
        recs = w.records
        acked = [r for r in recs if r.acked]
        lost, dup = set(), set()
        for r in recs:
            c = count_of(counts, r)
            if c is not None and c > 1:
                dup.add(r.key)
                problems.append(f"{r.key} {r.op}: {c} entries")
            if r.acked and c is not None and c != 1:
                lost.add(r.key)
                problems.append(f"{r.key} {r.op} acknowledged {r.status} but {c} entries")
        # every acknowledged allocation is there as booked
        for r in acked:
            if r.op != "allocate":
                continue
            a = json.loads(r.reply)["allocation"]
            st, b = call(conn, "GET", f"/v1/allocations/{a['id']}")
            if st != 200:
                lost.add(r.key)
                problems.append(f"{a['id']}: acknowledged, now {st}")
                continue
            g = json.loads(b)["allocation"]
            for k in ("consortium", "pool", "gpus", "start", "created"):
                if g[k] != a[k]:
                    lost.add(r.key)
                    problems.append(f"{a['id']}: {k} {a[k]} acknowledged, now {g[k]}")
                    break
        # retries: an acknowledged key answers as it did; an unacknowledged one
        # now takes effect at most once
        retried = {}
        for r in recs:
            try:
                st, b = call(conn, r.method, r.path, r.body, r.key)
            except (OSError, http.client.HTTPException) as e:
                problems.append(f"retry {r.key}: {e}")
                conn = UnixHTTP(dm.sock, timeout=30)
                continue
            if r.acked and (st, b) != (r.status, r.reply):
                lost.add(r.key)
                problems.append(f"retry of acknowledged {r.key} {r.op}: {st} {b[:120]!r}, "
                                f"first {r.status} {r.reply[:120]!r}")
            if not r.acked:
                retried[r.key] = (st, b)
        entries = journal(conn)
        counts = primary_counts(entries)
        for r in recs:
            if r.acked or r.key not in retried:
                continue
            st, b = retried[r.key]
            c = count_of(counts, r)
            if c is not None and (c > 1 or (200 <= st < 300 and c != 1)):
                dup.add(r.key)
                problems.append(f"retried {r.key} {r.op}: {st}, {c} entries")
            if 200 <= st < 300:
                st2, b2 = call(conn, r.method, r.path, r.body, r.key)
                if (st2, b2) != (st, b):
                    dup.add(r.key)
                    problems.append(f"second retry of {r.key}: {st2}, first retry {st}")
        ok, why = verify_ok(conn)
        bal = balances_match(conn, entries)
        problems += bal
        verify_fail = 0 if ok and not bal else 1
        if not ok:
            problems.append(f"verify: {why}")
        conn.close()
        dm.stop()
        stats["runs"] += 1
        stats["requests"] += len(recs)
        stats["acked"] += len(acked)
        lost, dup = len(lost), len(dup)
        stats["lost"] += lost
        stats["dup"] += dup
        stats["verify"] += verify_fail
        stats["ready"].append(ready)
        stats["undone"] += undone
        print(f"run {n}: clients {clients} requests {len(recs)} acknowledged {len(acked)} "
              f"lost {lost} duplicated {dup} verify {'ok' if not verify_fail else 'FAILED'} "
              f"ready {ready * 1000:.0f} ms" + (f" undone writes {undone}" if args.powerloss else ""),
              flush=True)
        for p in problems[:10]:
            print("   ", p, flush=True)
        return lost == 0 and dup == 0 and not verify_fail
    finally:
        dm.stop()
        keep = args.keep or (problems and not args.expect_loss)
        if keep:
            print(f"    kept {d}", flush=True)
        else:
            shutil.rmtree(d, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--daemon", required=True, help="the gpuledgerd binary")
    p.add_argument("--config", required=True, help="the program (config/example.yaml)")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--min-clients", type=int, default=16)
    p.add_argument("--max-clients", type=int, default=64)
    p.add_argument("--min-load", type=float, default=0.05, help="seconds of load before the kill")
    p.add_argument("--max-load", type=float, default=0.6)
    p.add_argument("--powerloss", action="store_true",
                   help="drop what was written since each file's last fsync (needs --faultvfs)")
    p.add_argument("--faultvfs", help="the fault VFS library (LD_PRELOAD)")
    p.add_argument("--asan-runtime", default=None,
                   help="the sanitizer runtime to preload first (an ASan daemon)")
    p.add_argument("--synchronous", choices=["FULL", "NORMAL"],
                   help="with --powerloss: the synchronous mode the VFS imposes")
    p.add_argument("--expect-loss", action="store_true",
                   help="the control: succeed only if acknowledgements were lost")
    p.add_argument("--tmpdir", default=None)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    if args.powerloss and not args.faultvfs:
        p.error("--powerloss needs --faultvfs")
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)
    print(f"torture: seed {seed}, {args.runs} runs"
          + (f", power loss, synchronous={args.synchronous or 'FULL'}" if args.powerloss else ""),
          flush=True)
    stats = {"runs": 0, "requests": 0, "acked": 0, "lost": 0, "dup": 0, "verify": 0,
             "ready": [], "undone": 0}
    t0 = time.monotonic()
    for n in range(1, args.runs + 1):
        one_run(args, n, rng, stats)
        if args.expect_loss and stats["lost"] > 0 and stats["verify"] == 0:
            break
    rd = sorted(stats["ready"]) or [0]
    print(f"torture: runs {stats['runs']} requests {stats['requests']} "
          f"acknowledged {stats['acked']} lost {stats['lost']} duplicated {stats['dup']} "
          f"verify failures {stats['verify']} ready after restart: median "
          f"{rd[len(rd) // 2] * 1000:.0f} ms, max {rd[-1] * 1000:.0f} ms"
          + (f", undone writes {stats['undone']}" if args.powerloss else "")
          + f" ({time.monotonic() - t0:.1f} s)", flush=True)
    if args.expect_loss:
        if stats["lost"] == 0:
            print("torture: FAIL: the control lost no acknowledgement", flush=True)
            return 1
        if stats["dup"] or stats["verify"]:
            print("torture: FAIL: the control's database is damaged", flush=True)
            return 1
        print("torture: the control lost acknowledgements, as it must", flush=True)
        return 0
    return 0 if stats["lost"] == stats["dup"] == stats["verify"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
