#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Disk full under load (issue 15).

The database lies on a small tmpfs of its own (mount -t tmpfs -o size=...;
exit 77, saying why, where it cannot be mounted). Eight clients send
grants and allocations while a filler file takes every free block of the
filesystem. Then:

  * refused changes are 503 storage_unavailable, and nothing of them is
    applied (after a restart their keys have no entry);
  * reads keep being answered 200 while the disk is full;
  * once the filler is removed, changes are acknowledged again;
  * PRAGMA integrity_check says ok, GET /v1/verify says ok, and after a
    SIGKILL and restart every acknowledged change is there exactly once and
    every unacknowledged one, retried with its key, takes effect at most
    once (the torture's checks).
"""

import argparse
import http.client
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torture"))
import torture  # noqa: E402
from torture import CLOCK0, UnixHTTP, call, iso  # noqa: E402


class Rec(torture.Record):
    __slots__ = ("phase",)


def fill(path):
    """Writes path until the filesystem is full; returns the bytes written."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 16, 4096, 512, 1):
            buf = b"\0" * chunk
            while True:
                try:
                    n += f.write(buf)
                except OSError:
                    break
    return n


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--daemon", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--size", default="16m", help="the tmpfs size")
    p.add_argument("--clients", type=int, default=8)
    args = p.parse_args()
    args.powerloss = False
    args.synchronous = None
    base = tempfile.mkdtemp(prefix="gpuledger-diskfull.")
    mnt = os.path.join(base, "mnt")
    os.mkdir(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.size},mode=0700", "tmpfs", mnt],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(f"SKIP: cannot mount a tmpfs for the database ({r.stderr.strip() or r.returncode};"
              " this test needs root or CAP_SYS_ADMIN)")
        shutil.rmtree(base, ignore_errors=True)
        return 77
    failures = []
    dm = None
    try:
        dm = torture.Daemon(args, base, args.config)
        dm.db = os.path.join(mnt, "db")
        dm.init()
        dm.start(CLOCK0)
        w = torture.World(random.Random(15))
        phase = {"name": "before"}
        seen = {}  # phase -> list of (kind, status)
        lock = threading.Lock()

        def client(i):
            rng = random.Random(i)
            conn = UnixHTTP(dm.sock, timeout=10)
            n = 0
            while not w.stop.is_set():
                n += 1
                if rng.random() < 0.25:
                    try:
                        st, _ = call(conn, "GET", rng.choice(["/v1/quota", "/v1/status",
                                                              "/v1/allocations"]))
                    except (OSError, http.client.HTTPException):
                        st = None
                        conn = UnixHTTP(dm.sock, timeout=10)
                    with lock:
                        seen.setdefault(phase["name"], []).append(("read", st))
                    continue
                if rng.random() < 0.5:
                    rec = Rec("grant", f"df{i}-{n}", "POST", "/v1/grants", {
                        "consortium": rng.choice(torture.CONSORTIA), "phase": "p1",
                        "gpu": rng.choice(torture.GPUS), "gpu_seconds": 3600 * rng.randint(1, 99),
                        "reason": "x" * rng.randint(1, 2000)})
                else:
                    rec = Rec("allocate", f"df{i}-{n}", "POST", "/v1/allocations", {
                        "consortium": rng.choice(torture.CONSORTIA),
                        "pool": rng.choice(torture.POOLS)[0], "gpus": 1,
                        "start": iso(CLOCK0 + 3600 * rng.randint(1, 2000)), "duration_s": 3600,
                        "note": "n" * rng.randint(1, 2000)})
                try:
                    rec.status, rec.reply = call(conn, rec.method, rec.path, rec.body, rec.key)
                    rec.acked = 200 <= rec.status < 300
                except (OSError, http.client.HTTPException):
                    conn = UnixHTTP(dm.sock, timeout=10)
                with lock:
                    w.records.append(rec)
                    seen.setdefault(phase["name"], []).append(("write", rec.status))
                    rec.phase = phase["name"]

        threads = [threading.Thread(target=client, args=(i,), daemon=True)
                   for i in range(args.clients)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        filler = os.path.join(mnt, "filler")
        with lock:
            phase["name"] = "full"
        filled = fill(filler)

        def count(name, want):
            with lock:
                return sum(1 for k, st in seen.get(name, []) if k == "write" and want(st))
        # full until the refusals show (a WAL reuses its space: the first
        # commits after the fill may still fit), 20 s at most
        t_full = time.monotonic()
        while count("full", lambda st: st == 503) < 10 and time.monotonic() - t_full < 20:
            time.sleep(0.1)
        time.sleep(0.5)
        if dm.proc.poll() is not None:
            failures.append(f"the daemon exited {dm.proc.returncode} on a full disk")
        with lock:
            phase["name"] = "freed"
        os.unlink(filler)
        t_freed = time.monotonic()
        while (count("freed", lambda st: st is not None and 200 <= st < 300) < 10
               and time.monotonic() - t_freed < 20):
            time.sleep(0.1)
        w.stop.set()
        for t in threads:
            t.join(15)

        def tally(name, kind):
            return [st for k, st in seen.get(name, []) if k == kind]
        full_w, full_r = tally("full", "write"), tally("full", "read")
        freed_w = tally("freed", "write")
        refused = [r for r in w.records if getattr(r, "phase", None) == "full" and r.status == 503]
        print(f"diskfull: filler {filled} bytes; while full: {len(full_w)} changes "
              f"({sum(1 for s in full_w if s and 200 <= s < 300)} acknowledged, "
              f"{sum(1 for s in full_w if s == 503)} refused 503), {len(full_r)} reads "
              f"({sum(1 for s in full_r if s == 200)} answered 200); after freeing: "
              f"{sum(1 for s in freed_w if s and 200 <= s < 300)} of {len(freed_w)} changes "
              f"acknowledged", flush=True)
        if not refused:
            failures.append("no change was refused 503 while the disk was full")
        bad = [s for s in full_w if s is not None and not (200 <= s < 300 or s in (503, 409, 422))]
        if bad:
            failures.append(f"changes on a full disk answered {sorted(set(bad))}, not 503")
        for r in refused:
            d = json.loads(r.reply)
            if d["error"]["code"] != "storage_unavailable":
                failures.append(f"{r.key}: 503 {d['error']['code']}")
                break
        if not full_r or any(s != 200 for s in full_r):
            failures.append(f"reads on a full disk: {sorted(set(map(str, full_r)))}")
        if sum(1 for s in freed_w if s and 200 <= s < 300) < 10:
            failures.append("changes were not acknowledged again after the space was freed")
        # integrity of the file the daemon still has open
        db = sqlite3.connect(f"file:{dm.db}?mode=ro", uri=True)
        ic = db.execute("PRAGMA integrity_check").fetchall()
        db.close()
        if ic != [("ok",)]:
            failures.append(f"integrity_check: {ic}")
        conn = UnixHTTP(dm.sock, timeout=30)
        ok, problems = torture.verify_ok(conn)
        if not ok:
            failures.append(f"verify: {problems}")
        # a restart: nothing refused is there, everything acknowledged is, once
        dm.kill()
        dm.start(CLOCK0)
        conn = UnixHTTP(dm.sock, timeout=30)
        counts = torture.primary_counts(torture.journal(conn))
        for r in w.records:
            c = torture.count_of(counts, r)
            if r.acked and c != 1:
                failures.append(f"acknowledged {r.op} {r.key}: {c} entries")
            if r.status == 503 and c != 0:
                failures.append(f"refused {r.op} {r.key} (503) was applied: {c} entries")
        for r in w.records:
            if not r.acked:
                call(conn, r.method, r.path, r.body, r.key)
        counts = torture.primary_counts(torture.journal(conn))
        for r in w.records:
            c = torture.count_of(counts, r)
            if c is not None and c > 1:
                failures.append(f"{r.op} {r.key}: {c} entries after the retries")
        ok, problems = torture.verify_ok(conn)
        if not ok:
            failures.append(f"verify after the restart: {problems}")
        failures += torture.balances_match(conn, torture.journal(conn))
        conn.close()
        print(f"diskfull: {len(w.records)} changes, {sum(r.acked for r in w.records)} "
              f"acknowledged, {len(refused)} refused while full; integrity_check ok, "
              f"verify {'ok' if ok else 'FAILED'}", flush=True)
    finally:
        if dm:
            dm.stop()
        subprocess.run(["umount", "-l", mnt])
        if failures:
            print(f"diskfull: kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    for f in failures[:20]:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
