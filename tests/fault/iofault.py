#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""I/O faults swept over N (issue 15), as SQLite's ioerr.test does.

The real daemon runs with the fault VFS (tests/fault/faultvfs.c,
LD_PRELOAD, FAULTVFS_CTL). For every kind of mutating request (grant,
allocate, cancel, release, eliminate, reinstate, clock move) and every
fault (the Nth write failing with SQLITE_IOERR, SQLITE_FULL or SQLITE_BUSY,
the Nth fsync failing with SQLITE_IOERR_FSYNC, each transient or
persistent), N = 1, 2, ... until the request no longer reaches an Nth
operation:

  * a request whose batch met the fault is not acknowledged (no 2xx);
  * a failed fsync (SQLITE_IOERR_FSYNC, what the unix VFS makes of any
    fsync error) makes the daemon exit non-zero (it never retries an
    fsync: the kernel may have dropped the pages it could not write, as
    PostgreSQL learnt in 2018), with or without the fault persisting;
  * after a transient write fault the daemon answers the next change; while
    a write fault persists, changes are 503, reads are answered, and once it
    clears the changes go through again;
  * after each exit (and at the end of each sweep, after a SIGKILL) a
    restart audits clean (GET /v1/verify), every acknowledged change is in
    the journal exactly once, and retrying every unacknowledged request with
    its Idempotency-Key takes effect at most once.

Start-up reads are swept the same way (the Nth read of the database during
start-up and audit failing): the daemon exits non-zero or starts, never
serves a ledger it could not read, and a clean restart audits.
"""

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torture"))
import torture  # noqa: E402
from torture import CLOCK0, UnixHTTP, call, iso  # noqa: E402

FAULTS = [("write", "ioerr"), ("write", "full"), ("write", "busy"),
          ("sync", "ioerr")]
KINDS = ["grant", "allocate", "cancel", "release", "eliminate", "reinstate", "clock"]


class Rec(torture.Record):
    pass


class Harness:
    def __init__(self, args, d):
        self.args, self.dir = args, d
        self.ctl = os.path.join(d, "ctl")
        self.fired = self.ctl + ".fired"
        self.dm = torture.Daemon(args, d, args.config)
        self.records = []
        self.clock = CLOCK0
        self.n = 0
        self.checks = 0
        self.failures = []

    def env(self):
        e = dict(os.environ)
        pre = [self.args.faultvfs]
        if self.args.asan_runtime:
            pre.insert(0, self.args.asan_runtime)
        e["LD_PRELOAD"] = ":".join(pre)
        e["FAULTVFS_CTL"] = self.ctl
        return e

    def arm(self, line):
        # a new inode each time: the VFS notices the change at once
        tmp = self.ctl + ".new"
        with open(tmp, "w") as f:
            f.write(line + "\n")
        os.replace(tmp, self.ctl)
        if os.path.exists(self.fired):
            os.unlink(self.fired)

    def fired_count(self):
        if not os.path.exists(self.fired):
            return 0
        with open(self.fired) as f:
            return len(f.readlines())

    def fail(self, what):
        self.failures.append(what)
        print("FAIL", what, flush=True)

    def ok(self, what):
        self.checks += 1
        if self.args.verbose:
            print("ok", self.checks, "-", what, flush=True)

    def start(self, expect_fail=False):
        self.dm.env = self.env
        if not os.path.exists(self.dm.db):
            self.arm("off")
            self.dm.init()
        try:
            self.dm.start(self.clock)
        except RuntimeError as e:
            if expect_fail:
                return False
            raise
        self.conn = UnixHTTP(self.dm.sock, timeout=10)
        return True

    def post(self, op, path, body, keep=True):
        self.n += 1
        r = Rec(op, f"k{self.n}-{os.getpid()}", "POST", path, body)
        try:
            r.status, r.reply = call(self.conn, "POST", path, body, r.key)
            r.acked = 200 <= r.status < 300
        except (OSError, http.client.HTTPException):
            self.conn = UnixHTTP(self.dm.sock, timeout=10)
        if keep:
            self.records.append(r)
        return r

    def get(self, path):
        return call(self.conn, "GET", path)

    def alive(self):
        return self.dm.proc.poll() is None

    def wait_exit(self, secs=10):
        try:
            return self.dm.proc.wait(secs)
        except Exception:
            return None

    def prepare(self, kind, i):
        """(op, path, body) of one request of kind, after what it needs."""
        c = "lg"
        if kind == "grant":
            return "grant", "/v1/grants", {"consortium": c, "phase": "p1", "gpu": "B200",
                                           "gpu_seconds": 3600 * 8, "reason": "fault"}
        if kind == "allocate":
            return "allocate", "/v1/allocations", {
                "consortium": c, "pool": "skt-b200", "gpus": 1,
                "start": iso(self.clock + 86400), "duration_s": 3600}
        if kind in ("cancel", "release"):
            r = self.post("allocate", "/v1/allocations", {
                "consortium": c, "pool": "skt-b200", "gpus": 1,
                "start": iso(self.clock + 3600), "duration_s": 36000})
            if not r.acked:
                raise RuntimeError(f"prepare {kind}: {r.status} {r.reply}")
            a = json.loads(r.reply)["allocation"]["id"]
            if kind == "cancel":
                return "cancel", f"/v1/allocations/{a}/cancel", {"reason": "fault"}
            return "release", f"/v1/allocations/{a}/release", {
                "at": iso(self.clock + 7200), "reason": "fault"}
        if kind == "eliminate":
            # active again after the last round (refused when it is already)
            self.post("reinstate", "/v1/consortia/upstage/reinstate", {
                "effective": iso(self.clock + 86400 * 2 * i), "reason": "fault"})
            return "eliminate", "/v1/consortia/upstage/eliminate", {
                "effective": iso(self.clock + 86400 * (2 * i + 1)), "reason": "fault"}
        if kind == "reinstate":
            self.post("reinstate", "/v1/consortia/skt/reinstate", {
                "effective": iso(self.clock + 86400 * 2 * i), "reason": "fault"})
            r = self.post("eliminate", "/v1/consortia/skt/eliminate", {
                "effective": iso(self.clock + 86400 * (2 * i + 1)), "reason": "fault"})
            if not r.acked:
                raise RuntimeError(f"prepare reinstate: {r.status} {r.reply}")
            return "reinstate", "/v1/consortia/skt/reinstate", {
                "effective": iso(self.clock + 86400 * (2 * i + 2)), "reason": "fault"}
        if kind == "clock":
            return "clock", "/v1/clock", {"set": iso(self.clock + 600 * (i + 1))}
        raise ValueError(kind)

    def audit(self, why):
        """Restart (SIGKILL first when alive); the checks of the torture."""
        if self.dm.proc and self.dm.proc.poll() is None:
            self.dm.kill()
        self.arm("off")
        self.start()
        entries = torture.journal(self.conn)
        counts = torture.primary_counts(entries)
        for r in self.records:
            c = torture.count_of(counts, r)
            if c is None:
                continue
            if r.acked and c != 1:
                self.fail(f"{why}: acknowledged {r.op} {r.key} has {c} entries")
            if c > 1:
                self.fail(f"{why}: {r.op} {r.key} has {c} entries")
        retried = []
        for r in self.records:
            if r.acked:
                continue
            st, b = call(self.conn, r.method, r.path, r.body, r.key)
            retried.append((r, st))
        counts = torture.primary_counts(torture.journal(self.conn))
        for r, st in retried:
            c = torture.count_of(counts, r)
            if c is not None and (c > 1 or (200 <= st < 300 and c != 1)):
                self.fail(f"{why}: retried {r.op} {r.key}: {st}, {c} entries")
            r.acked = 200 <= st < 300
        ok, problems = torture.verify_ok(self.conn)
        if not ok:
            self.fail(f"{why}: verify: {problems}")
        bad = torture.balances_match(self.conn, torture.journal(self.conn))
        for b in bad:
            self.fail(f"{why}: {b}")
        self.ok(f"{why}: restart audits clean, {len(self.records)} requests exactly once")
        st, b = self.get("/v1/clock")
        self.clock = torture.parse_iso(json.loads(b)["clock"])

    def sweep(self, kind, op, err, mode):
        """N = 1, 2, ... for one (kind, fault); returns how many N fired."""
        fired_total = 0
        for n in range(1, self.args.max_n + 1):
            if not self.alive():
                self.audit(f"{kind} {op} {err} {mode} N={n}")
            opname, path, body = self.prepare(kind, n)
            self.arm(f"{op} {n} {err} {mode}")
            r = self.post(opname, path, body)
            fired = self.fired_count()
            what = f"{kind}: {op} #{n} {err} {mode}"
            if not fired:
                self.arm("off")
                if not r.acked:
                    self.fail(f"{what}: not reached, yet answered {r.status} {r.reply!r}")
                if kind == "clock" and r.acked:
                    self.clock = torture.parse_iso(body["set"])
                return fired_total
            fired_total += 1
            if r.acked:
                self.fail(f"{what}: acknowledged {r.status} though its batch failed")
            else:
                self.ok(f"{what}: answered {r.status}, not acknowledged")
            if op == "sync":
                # never retry an fsync: the daemon must go
                rc = self.wait_exit(10)
                if rc is None:
                    self.fail(f"{what}: still running after a failed fsync")
                    self.dm.kill()
                elif rc == 0:
                    self.fail(f"{what}: exited 0 after a failed fsync")
                else:
                    self.ok(f"{what}: exited {rc}")
                self.arm("off")
                self.audit(what)
                continue
            if mode == "persistent" and self.alive():
                # still failing: changes refused, reads answered
                r2 = self.post("grant", "/v1/grants", {"consortium": "naver", "phase": "p1",
                                                       "gpu": "H200", "gpu_seconds": 3600,
                                                       "reason": "during"})
                if r2.acked:
                    self.fail(f"{what}: a change during a persistent fault was acknowledged")
                elif r2.status != 503 and self.alive():
                    self.fail(f"{what}: a change during a persistent fault got {r2.status}")
                if self.alive():
                    try:
                        st, _ = self.get("/v1/quota")
                    except (OSError, http.client.HTTPException):
                        st = None
                    if st != 200 and self.alive():
                        self.fail(f"{what}: a read during a persistent fault got {st}")
            self.arm("off")
            if not self.alive():
                rc = self.wait_exit(5)
                if rc == 0:
                    self.fail(f"{what}: exited 0")
                else:
                    self.ok(f"{what}: exited {rc} (could not recover)")
                self.audit(what)
                continue
            # recovered: the next change goes through
            r3 = self.post("grant", "/v1/grants", {"consortium": "naver", "phase": "p1",
                                                   "gpu": "H200", "gpu_seconds": 3600,
                                                   "reason": "after"})
            if not r3.acked:
                self.fail(f"{what}: no recovery, the next change got {r3.status} {r3.reply!r}")
            else:
                self.ok(f"{what}: recovered")
        return fired_total


def startup_reads(args, base):
    """The Nth read at start-up fails: exit non-zero or start and audit."""
    d = tempfile.mkdtemp(prefix="reads.", dir=base)
    h = Harness(args, d)
    h.start()
    for i in range(40):
        h.post("grant", "/v1/grants", {"consortium": "lg", "phase": "p1", "gpu": "B200",
                                       "gpu_seconds": 3600, "reason": f"r{i}"})
        h.post("allocate", "/v1/allocations", {"consortium": "lg", "pool": "skt-b200",
                                               "gpus": 1, "start": iso(CLOCK0 + 86400 * (i + 1)),
                                               "duration_s": 3600})
    h.dm.kill()
    fired_n = 0
    for err in ("ioerr", "busy"):
        n = 1
        while n <= args.max_reads:
            h.arm(f"read {n} {err} transient")
            started = h.start(expect_fail=True)
            fired = h.fired_count()
            if started:
                if fired:
                    # it survived a failed read: then what it serves must be whole
                    ok, problems = torture.verify_ok(h.conn)
                    if not ok:
                        h.fail(f"start-up read #{n} {err}: started, verify: {problems}")
                h.dm.kill()
                if not fired:
                    break
            else:
                rc = h.dm.proc.returncode
                if rc == 0:
                    h.fail(f"start-up read #{n} {err}: exited 0")
            fired_n += 1
            h.arm("off")
            h.start()
            ok, problems = torture.verify_ok(h.conn)
            if not ok:
                h.fail(f"start-up read #{n} {err}: the restart's verify: {problems}")
            h.dm.kill()
            h.ok(f"start-up read #{n} {err}: {'started' if started else 'exited'}, restart audits")
            n += 1 if n < 20 else 7
    print(f"iofault: start-up reads: {fired_n} faults", flush=True)
    return h


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--daemon", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--faultvfs", required=True)
    p.add_argument("--asan-runtime", default=None,
                   help="the sanitizer runtime to preload first (an ASan daemon)")
    p.add_argument("--max-n", type=int, default=40)
    p.add_argument("--max-reads", type=int, default=400)
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    args.powerloss = False
    args.synchronous = None
    base = tempfile.mkdtemp(prefix="gpuledger-iofault.")
    t0 = time.monotonic()
    total_fired = 0
    failures = []
    checks = 0
    try:
        for kind in args.kinds.split(","):
            for op, err in FAULTS:
                for mode in ("transient", "persistent"):
                    d = tempfile.mkdtemp(prefix=f"{kind}-{op}-{err}-{mode}.", dir=base)
                    h = Harness(args, d)
                    h.start()
                    # what the requests need: quota for lg and naver
                    for c, gpu in (("lg", "B200"), ("naver", "H200"), ("skt", "B200")):
                        h.post("grant", "/v1/grants", {"consortium": c, "phase": "p1", "gpu": gpu,
                                                       "gpu_seconds": 3600 * 100000,
                                                       "reason": "setup"})
                    fired = h.sweep(kind, op, err, mode)
                    h.audit(f"{kind} {op} {err} {mode}: end")
                    h.dm.stop()
                    print(f"iofault: {kind:9} {op:5} {err:5} {mode:10} N=1..{fired} "
                          f"failed {len(h.failures)}", flush=True)
                    total_fired += fired
                    failures += h.failures
                    checks += h.checks
                    if not fired:
                        failures.append(f"{kind} {op} {err} {mode}: the fault never fired")
                    if not h.failures:
                        shutil.rmtree(d, ignore_errors=True)
        h = startup_reads(args, base)
        failures += h.failures
        checks += h.checks
        h.dm.stop()
    finally:
        pass
    print(f"iofault: {total_fired} faults injected into requests, {checks} checks, "
          f"{len(failures)} failures ({time.monotonic() - t0:.1f} s)", flush=True)
    if failures:
        print(f"iofault: kept {base}", flush=True)
        return 1
    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
