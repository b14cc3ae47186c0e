#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A read that arrives behind an open batch waits for that batch's commit
# instead of forcing an early one (DESIGN.md, Performance contract): writes
# and reads that reach the daemon in the same turn of its loop share one
# commit, and every reply still leaves after it (each write's change is on
# disk when its reply or a read's is seen). The daemon is stopped (SIGSTOP)
# while the requests are sent, so that they all wait in its socket.
. "$(dirname "$0")/lib.sh"

start_daemon
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 1000 --reason batch
expect_exit 0 gl --json status
before=$(json_get '["counters"]["commits"]')

cat > "$T/turn.py" <<'PY'
import json, os, signal, socket, sys
path, pid = sys.argv[1], int(sys.argv[2])
def post(i):
    body = json.dumps({"consortium": "lg", "pool": "skt-b200", "gpus": 1,
                       "start": "2025-09-%02dT00:00" % (i + 1), "duration_s": 3600})
    return ("POST /v1/allocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Idempotency-Key: batching-%d\r\nContent-Length: %d\r\n\r\n%s" % (i, len(body), body))
get = "GET /v1/quota?consortium=lg HTTP/1.1\r\nHost: x\r\n\r\n"
reqs = [post(0), get, post(1), get, post(2), get, post(3)]
conns = []
for r in reqs:
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(r.encode())
    conns.append(s)
os.kill(pid, signal.SIGCONT)
for s, r in zip(conns, reqs):
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < int(
            [l for l in data.partition(b"\r\n\r\n")[0].split(b"\r\n")
             if l.lower().startswith(b"content-length:")][0].split(b":")[1]):
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("connection closed early")
        data += chunk
    status = int(data.split(b" ", 2)[1])
    want = 201 if r.startswith("POST") else 200
    if status != want:
        sys.exit("status %d for %s" % (status, r.split("\r\n")[0]))
    if r.startswith("GET"):
        # what the bookings before it in the batch did, all of it committed by now
        row = json.loads(data.partition(b"\r\n\r\n")[2])["quota"][0]
        if row["committed_gpu_seconds"] % 3600 or row["committed_gpu_seconds"] > 4 * 3600:
            sys.exit("a read saw %d committed GPU-seconds" % row["committed_gpu_seconds"])
print("ok")
PY
kill -STOP "$DAEMON_PID"
expect_exit 0 timeout 20 python3 "$T/turn.py" "$SOCK" "$DAEMON_PID"
kill -CONT "$DAEMON_PID"
expect_exit 0 gl --json status
after=$(json_get '["counters"]["commits"]')
expect_eq "$((after - before))" 1 "commits for 4 writes and 3 reads in one turn"
expect_exit 0 sqlite3 "$DB" "SELECT count(*) FROM allocations"
expect_eq "$OUT" 4 "allocations on disk"
pass
