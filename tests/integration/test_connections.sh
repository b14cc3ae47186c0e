#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Who may hold the daemon's connections (issue 9, Availability): the Unix
# socket is mode 0666 by default (roles come from SO_PEERCRED) and follows
# daemon.socket_mode and daemon.socket_group; 300 idle anonymous TCP
# connections fill only the TCP listener's budget, so the admin on the Unix
# socket is still answered; one address holds at most
# daemon.tcp.max_per_peer connections (503 too_many_connections), a silent
# TCP peer is closed after daemon.tcp.first_byte_timeout, and the budgets
# change with SIGHUP; 16 clients that pipeline requests and never read the
# answers cost the daemon a bounded amount of memory while another client's
# status is answered.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

port=$(free_port)
# config DAEMON-LINES: the example with these lines at the top of daemon:
# (replacing the example's own lines of the same keys)
config() {
	python3 - "$EXAMPLE_CONFIG" "$T/config.yaml" "$1" <<'PY'
import re, sys
src, dst, extra = sys.argv[1:]
keys = set(re.findall(r"^  ([a-z_]+):", extra, re.M))
out, in_daemon = [], False
for line in open(src, encoding="utf-8").read().splitlines(True):
    if re.match(r"^[a-z]", line):
        in_daemon = line.startswith("daemon:")
        out.append(line + (extra if in_daemon else ""))
        continue
    m = re.match(r"^  ([a-z_]+):", line)
    if not (in_daemon and m and m.group(1) in keys):
        out.append(line)
open(dst, "w", encoding="utf-8").write("".join(out))
PY
}

# The TCP helper. tcp.py PORT N HOLD OUT: opens N connections to 127.0.0.1:PORT
# and sends nothing; writes to OUT, as JSON, how many were refused at once
# (and with which limit) and, for the others, after how many seconds the
# server closed them (null: still open after HOLD seconds).
cat >"$T/tcp.py" <<'PY'
import json, re, select, socket, sys, time
port, n, hold, out = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
t0 = time.monotonic()
socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]
data = {s: b"" for s in socks}
closed = {}
while len(closed) < n and time.monotonic() - t0 < hold:
    r, _, _ = select.select([s for s in socks if s not in closed], [], [], 0.05)
    for s in r:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            b = b""
        data[s] += b
        if not b:
            closed[s] = time.monotonic() - t0
refused, limits, silent_closed, still_open = 0, [], [], 0
for s in socks:
    m = re.search(rb'"limit":"([a-z_]+)"', data[s])
    if data[s].startswith(b"HTTP/1.1 503") and b"too_many_connections" in data[s]:
        refused += 1
        limits.append(m.group(1).decode() if m else None)
    elif s in closed and not data[s]:
        silent_closed.append(round(closed[s], 2))
    else:
        still_open += 1
json.dump({"refused": refused, "limits": sorted(set(limits), key=str),
           "closed_silent": silent_closed, "open": still_open}, open(out, "w"))
# keep them open until told (the file goes away) or 60 s pass
while time.monotonic() - t0 < 60 and len(sys.argv) > 5:
    try:
        open(sys.argv[5]).close()
    except FileNotFoundError:
        break
    time.sleep(0.05)
PY

# wait_file FILE: up to 30 s for FILE to appear.
wait_file() {
	local i
	for ((i = 0; i < 300; i++)); do
		[[ -s $1 ]] && return 0
		sleep 0.1
	done
	fail "no $1 after 30 s"
}

config "  listen: 127.0.0.1:$port
  tcp: {max_connections: 256, max_per_peer: 1000, first_byte_timeout: 60}
"
start_daemon "$T/config.yaml"

# --- the socket's mode --------------------------------------------------------
expect_eq "$(stat -c %a "$SOCK")" 666 "mode of the socket by default"

# --- 300 idle anonymous TCP connections ----------------------------------------
touch "$T/hold"
python3 "$T/tcp.py" "$port" 300 2 "$T/idle.json" "$T/hold" &
idle_pid=$!
wait_file "$T/idle.json"
expect_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["refused"], d["limits"], d["open"])' "$T/idle.json")" \
	"44 ['tcp_connections'] 256" "refused, their limit, and still open of 300 idle TCP connections"
expect_exit 0 gl --json status
expect_eq "$(json_get '["you"]["role"]')" admin "the admin's role over the Unix socket meanwhile"
rm -f "$T/hold"
wait "$idle_pid" || fail "the TCP helper failed"
ok "the admin is answered while the TCP listener's budget is spent"

# --- per-peer budget and first-byte timeout, changed by SIGHUP ----------------
config "  listen: 127.0.0.1:$port
  tcp: {max_per_peer: 4, first_byte_timeout: 1}
"
kill -HUP "$DAEMON_PID"
for ((i = 0; i < 50; i++)); do
	[[ $(grep -c '"config_reloaded"' "$LOG") -ge 1 ]] && break
	sleep 0.1
done
grep -q '"config_reloaded"' "$LOG" || fail "the reload was not logged"
python3 "$T/tcp.py" "$port" 5 4 "$T/peer.json"
expect_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["refused"], d["limits"], d["open"], len(d["closed_silent"]))' "$T/peer.json")" \
	"1 ['tcp_connections_per_peer'] 0 4" "refused, their limit, still open and closed silent of 5 from one address"
python3 - "$T/peer.json" <<'PY' || fail "the silent peers were not closed between 1 and 3 s: $(cat "$T/peer.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert all(0.8 <= t <= 3 for t in d["closed_silent"]), d
PY
ok "silent TCP peers are closed after the first-byte timeout (1 s): $(cat "$T/peer.json")"
grep -q '"first_byte_timeout"' "$LOG" || fail "no first_byte_timeout in the log"
ok "the log tells of the first-byte timeout"
# a peer that talks in time is answered (401: no token)
expect_exit 77 "$GPULEDGER" --url "http://127.0.0.1:$port" status

# --- clients that pipeline and never read ----------------------------------------
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$DAEMON_PID/status"; }
expect_exit 0 gl --json status
requests_before=$(json_get '["counters"]["requests"]')
rss_before=$(rss)
cat >"$T/pipeline.py" <<'PY'
import socket, sys, time
path, n, per, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
req = b"GET /v1/program HTTP/1.1\r\nHost: x\r\n\r\n" * per
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(path)
    s.settimeout(10)
    s.sendall(req)          # the kernel holds what the daemon does not read
    socks.append(s)
open(out, "w").write("sent\n")
time.sleep(30)              # never read; the test kills us
PY
python3 "$T/pipeline.py" "$SOCK" 16 3000 "$T/pipeline.sent" &
pipe_pid=$!
wait_file "$T/pipeline.sent"
sleep 2
expect_exit 0 timeout 10 "$GPULEDGER" --socket "$SOCK" --json status
requests_during=$(json_get '["counters"]["requests"]')
rss_during=$(rss)
kill "$pipe_pid"
wait "$pipe_pid" 2>/dev/null || true
handled=$((requests_during - requests_before - 1))
grown=$(((rss_during - rss_before) / 1024))
ok "16 non-readers sent 48000 requests; the daemon took up $handled of them, VmRSS grew by $grown MiB"
[[ $handled -lt 16000 ]] || fail "the daemon parsed $handled of the non-readers' requests (want < 16000)"
# AddressSanitizer keeps freed memory in quarantine: its RSS says nothing
# (grep reads all of ldd's output: with -q it may exit first, and pipefail
# would take ldd's SIGPIPE for "no")
if ldd "$GPULEDGERD" 2>/dev/null | grep libasan >/dev/null; then
	ok "VmRSS not checked under AddressSanitizer"
else
	[[ $grown -lt 48 ]] || fail "the daemon's VmRSS grew by $grown MiB (want < 48)"
fi
ok "a client that never reads is paused: its queued answers are bounded"
expect_exit 0 gl status
stop_daemon

# --- the socket's mode and group, narrowed --------------------------------------
group=$(id -gn)
config "  socket_mode: 0600
  socket_group: $group
"
start_daemon "$T/config.yaml"
expect_eq "$(stat -c '%a %G' "$SOCK")" "600 $group" "mode and group of the socket with socket_mode: 0600"
stop_daemon
pass
