#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The daemon's log lines are gathered and written once per turn of its loop
# (daemon/log.c): after bursts of concurrent bookings, a log rotation
# (SIGUSR1) between them and a clean stop, every line is there, whole (one
# JSON object each), in the file it was written to: a "request" line and an
# "allocated" line for each booking, each request id once.
. "$(dirname "$0")/lib.sh"

start_daemon
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 2000 --reason burst

cat > "$T/burst.py" <<'PY'
import json, socket, sys
path, first, conns, each = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def post(i):
    body = json.dumps({"consortium": "lg", "pool": "skt-b200", "gpus": 1,
                       "start": "2025-09-%02dT%02d:00" % (1 + i // 24, i % 24),
                       "duration_s": 3600})
    return ("POST /v1/allocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Idempotency-Key: burst-%d\r\nContent-Length: %d\r\n\r\n%s"
            % (i, len(body), body)).encode()
def answer(s, buf):
    while True:
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if sep:
            n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
                    .split(b":")[1])
            if len(rest) >= n:
                return int(head.split(b" ", 2)[1]), rest[n:]
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("connection closed early")
        buf += chunk
socks = [socket.socket(socket.AF_UNIX) for _ in range(conns)]
for s in socks:
    s.connect(path)
bufs = [b""] * conns
for k in range(each):   # one request in flight on every connection at once
    for c, s in enumerate(socks):
        s.sendall(post(first + k * conns + c))
    for c, s in enumerate(socks):
        status, bufs[c] = answer(s, bufs[c])
        if status != 201:
            sys.exit("status %d" % status)
print("ok")
PY

cat > "$T/check.py" <<'PY'
import json, sys
path, first, n, must_end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
text = open(path, encoding="utf-8").read()
if not text.endswith("\n"):
    sys.exit("%s does not end with a whole line" % path)
requests, allocated = {}, {}
lines = text.splitlines()
for line in lines:
    o = json.loads(line)  # each line one whole object
    if list(o)[:3] != ["ts", "level", "event"]:
        sys.exit("a line does not start with ts, level, event: " + line)
    rid = o.get("request_id", "")
    if o["event"] == "request" and o.get("path") == "/v1/allocations":
        if o["status"] != 201 or o["method"] != "POST":
            sys.exit("unexpected request line: " + line)
        requests[rid] = requests.get(rid, 0) + 1
    elif o["event"] == "allocated":
        allocated[rid] = allocated.get(rid, 0) + 1
want = {"burst-%d" % i: 1 for i in range(first, first + n)}
if requests != want:
    sys.exit("%s: %d request lines for %d bookings" % (path, sum(requests.values()), n))
if allocated != want:
    sys.exit("%s: %d allocated lines for %d bookings" % (path, sum(allocated.values()), n))
if must_end and json.loads(lines[-1])["event"] != must_end:
    sys.exit("%s does not end with %s" % (path, must_end))
print("ok")
PY

expect_exit 0 timeout 60 python3 "$T/burst.py" "$SOCK" 0 16 25
ok "400 bookings over 16 connections"
mv "$LOG" "$LOG.1"
kill -USR1 "$DAEMON_PID"
for ((i = 0; i < 50; i++)); do
	[[ -s $LOG ]] && break
	sleep 0.1
	gl status >/dev/null
done
[[ -s $LOG ]] || fail "no new $LOG after SIGUSR1"
expect_exit 0 timeout 60 python3 "$T/burst.py" "$SOCK" 400 16 10
ok "160 more after the rotation"
stop_daemon
expect_exit 0 python3 "$T/check.py" "$LOG.1" 0 400 ""
ok "the rotated log holds a whole request line and allocated line per booking before SIGUSR1"
expect_exit 0 python3 "$T/check.py" "$LOG" 400 160 stopped
ok "the new log holds those after it, whole, up to the clean stop's last line"
pass
