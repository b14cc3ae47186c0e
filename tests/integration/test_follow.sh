#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `gpuledger journal --follow`: an admin follower (human table and --json
# lines) gets each entry as it commits, within 2 s, from another process's
# change; --since N replays the entries after N first. A follower that stops
# reading is dropped once its queue passes the limit (1 MiB), and the daemon
# keeps answering others quickly meanwhile and afterwards. Log rotation: after
# the log file is moved away, SIGUSR1 (not SIGHUP) makes the daemon write a new one. SIGTERM
# with a follower connected exits 0 within 5 s; the follower resumes from the
# last seq it printed once the daemon is back (--retry seconds), or gives up
# with 69 and a message.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

start_daemon

# now_ms: milliseconds since the epoch, without a process.
now_ms() {
	local t=${EPOCHREALTIME/./}
	printf '%s' "${t:0:-3}"
}

# wait_follows N: waits (10 s) until the daemon has logged N follow streams.
wait_follows() {
	local i
	for ((i = 0; i < 100; i++)); do
		[[ $(grep -c '"event":"follow"' "$LOG" || true) -ge $1 ]] && return 0
		sleep 0.1
	done
	fail "the daemon did not log follower $1 within 10 s"
}

# wait_for FILE TEXT SECONDS: true once FILE holds TEXT; prints the
# milliseconds it took.
wait_for() {
	local file=$1 text=$2 t0 i
	t0=$(now_ms)
	for ((i = 0; i < $3 * 20; i++)); do
		if grep -qF -- "$text" "$file" 2>/dev/null; then
			printf '%d' $(($(now_ms) - t0))
			return 0
		fi
		sleep 0.05
	done
	return 1
}

follows=0
# seq 1 is the first start's config entry
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 100 --reason first
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 100 --reason second

# --- followers, human and JSON ------------------------------------------------
gl journal --follow >"$T/human.out" 2>"$T/human.err" &
human=$!
gl --json journal --follow >"$T/json.out" 2>"$T/json.err" &
jsonf=$!
follows=$((follows + 2))
wait_follows $follows
ms=$(wait_for "$T/json.out" '"reason":"second"' 5) || fail "the JSON follower did not replay the journal"
ok "the JSON follower replays the journal first"

"$GPULEDGER" --socket "$SOCK" grant lg --phase p1 --gpu B200 --gpu-hours 1 --reason live-one >/dev/null ||
	fail "grant live-one"
ms=$(wait_for "$T/json.out" '"reason":"live-one"' 2) || fail "live-one did not reach the JSON follower within 2 s"
ok "a grant by another process reaches the JSON follower (${ms} ms)"
ms=$(wait_for "$T/human.out" 'live-one' 2) || fail "live-one did not reach the human follower within 2 s"
ok "and the human follower (${ms} ms)"
"$GPULEDGER" --socket "$SOCK" allocate lg --gpus 8 --pool skt-b200 --start 2025-09-01 --hours 1 >/dev/null ||
	fail "allocate"
ms=$(wait_for "$T/json.out" '"kind":"reserve"' 2) || fail "the reserve entry did not reach the JSON follower within 2 s"
ok "a reserve entry too (${ms} ms)"
_alive "$human" || fail "the human follower exited: $(cat "$T/human.err")"
_alive "$jsonf" || fail "the JSON follower exited: $(cat "$T/json.err")"
kill "$human" "$jsonf"
wait "$human" "$jsonf" 2>/dev/null || true

python3 - "$T/json.out" <<'PY' || fail "the JSON follow lines are not the journal, one entry per line, in order"
import json, sys
seqs = []
for line in open(sys.argv[1], encoding="utf-8"):
    e = json.loads(line)
    assert {"seq", "time", "kind", "consortium", "reason", "hash", "prev_hash"} <= e.keys(), e
    seqs.append(e["seq"])
assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) == 5, seqs
PY
ok "JSON follow: one entry per line, seq 1..5"
grep -Eq '^ *SEQ +TIME +KIND' "$T/human.out" || fail "no table header in the human follow output: $(head -3 "$T/human.out")"
grep -Eq '^ +4 +[0-9T:+-]+ +grant +lg +p1 +B200 .*live-one' "$T/human.out" ||
	fail "no table row for seq 4 in: $(cat "$T/human.out")"
ok "human follow: a table, one row per entry"

# --- --since N ------------------------------------------------------------------
gl --json journal --follow --since 3 >"$T/since.out" 2>"$T/since.err" &
since=$!
follows=$((follows + 1))
wait_follows $follows
wait_for "$T/since.out" '"seq":5' 5 >/dev/null || fail "--since 3 did not replay up to seq 5"
"$GPULEDGER" --socket "$SOCK" grant lg --phase p1 --gpu B200 --gpu-hours 1 --reason live-two >/dev/null ||
	fail "grant live-two"
ms=$(wait_for "$T/since.out" 'live-two' 2) || fail "live-two did not reach the --since follower within 2 s"
kill "$since"
wait "$since" 2>/dev/null || true
python3 - "$T/since.out" <<'PY' || fail "--since 3 did not replay exactly the entries after 3"
import json, sys
seqs = [json.loads(line)["seq"] for line in open(sys.argv[1], encoding="utf-8")]
assert seqs == [4, 5, 6], seqs
PY
ok "--since 3 replays 4 and 5, then follows (6 after ${ms} ms)"

# --- log rotation -------------------------------------------------------------------
mv "$LOG" "$LOG.1"
# SIGHUP reloads the configuration only: the daemon keeps the moved file
kill -HUP "$DAEMON_PID"
expect_exit 0 gl status
sleep 0.3
[[ -e $LOG ]] && fail "SIGHUP reopened the log; only SIGUSR1 should"
grep -q '"event":"config_reloaded"' "$LOG.1" || fail "the reload was not logged in the open (moved) file"
ok "SIGHUP leaves the log file alone"
kill -USR1 "$DAEMON_PID"
expect_exit 0 gl status
for ((i = 0; i < 50; i++)); do
	[[ -s $LOG ]] && break
	sleep 0.1
	gl status >/dev/null
done
[[ -s $LOG ]] || fail "no new $LOG after SIGUSR1"
python3 - "$LOG" <<'PY' || fail "the new log is not JSON lines"
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
assert lines
for line in lines:
    o = json.loads(line)
    assert {"ts", "level", "event"} <= o.keys(), line
PY
ok "SIGUSR1 reopened the log: a new $(basename "$LOG") with JSON lines"
grep -q '"event":"follow"' "$LOG.1" || fail "the old log lost its lines"
ok "the moved log keeps the lines before"
follows=0 # counted in the new log from here on

# --- a follower that stops reading ------------------------------------------------
# It asks for the stream and never reads; ~1900-byte reasons make a journal
# of more than 1 MiB in some hundreds of grants, sent over a few keep-alive
# connections at once (the daemon batches their commits). A probe meanwhile
# asks for /v1/status every 100 ms and keeps the slowest answer.
cat >"$T/stall.py" <<'PY'
import socket, sys, time
path, go, result = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(path)
s.sendall(b"GET /v1/journal?follow=1 HTTP/1.1\r\nHost: x\r\n\r\n")
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        open(go).close()
        break
    except OSError:
        time.sleep(0.05)
# now read what is there: a dropped stream ends (EOF) within a few seconds
s.settimeout(5)
n, state = 0, "open"
try:
    while True:
        b = s.recv(1 << 16)
        if not b:
            state = "closed"
            break
        n += len(b)
except socket.timeout:
    pass
except ConnectionResetError:
    state = "closed"
with open(result, "w") as f:
    f.write("%s %d\n" % (state, n))
PY
cat >"$T/flood.py" <<'PY'
import http.client, json, socket, sys, threading, time
path, log, max_grants = sys.argv[1], sys.argv[2], int(sys.argv[3])
reason = "r" * 1900

class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)

stop = threading.Event()
lock = threading.Lock()
state = {"next": 0, "done": 0, "errors": [], "slowest": 0.0, "probes": 0}

def dropped():
    with open(log, encoding="utf-8") as f:
        return '"stream_queue"' in f.read()

def worker():
    c = Conn("localhost", timeout=30)
    while not stop.is_set():
        with lock:
            i = state["next"]
            if i >= max_grants:
                return
            state["next"] += 1
        body = json.dumps({"consortium": "upstage", "phase": "p1", "gpu": "B200",
                           "gpu_seconds": 3600, "reason": "%d %s" % (i, reason)})
        c.request("POST", "/v1/grants", body=body,
                  headers={"Idempotency-Key": "flood-%d" % i, "Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        with lock:
            if r.status != 200:
                state["errors"].append(r.status)
            state["done"] += 1

def probe():
    while not stop.is_set():
        t0 = time.monotonic()
        c = Conn("localhost", timeout=30)
        c.request("GET", "/v1/status")
        r = c.getresponse()
        r.read()
        c.close()
        with lock:
            state["slowest"] = max(state["slowest"], time.monotonic() - t0)
            state["probes"] += 1
            if r.status != 200:
                state["errors"].append(("status", r.status))
        time.sleep(0.1)

workers = [threading.Thread(target=worker) for _ in range(4)]
p = threading.Thread(target=probe)
for t in workers + [p]:
    t.start()
while any(t.is_alive() for t in workers):
    time.sleep(0.2)
    if dropped():
        stop.set()
stop.set()
for t in workers + [p]:
    t.join()
print("%d %.3f %d %s" % (state["done"], state["slowest"], state["probes"],
                         ",".join(map(str, state["errors"])) or "-"))
PY

expect_exit 0 gl grant upstage --phase p1 --gpu B200 --gpu-hours 1 --reason before-flood
python3 "$T/stall.py" "$SOCK" "$T/go" "$T/stall.result" &
stall=$!
follows=$((follows + 1))
wait_follows $follows
t0=$SECONDS
python3 "$T/flood.py" "$SOCK" "$LOG" 1500 >"$T/flood.out" || fail "the flood of grants failed"
read -r granted slowest probes errors <"$T/flood.out"
[[ $errors == - ]] || fail "grants or status probes failed during the flood: $errors"
ok "$granted grants of ~2 KB in $((SECONDS - t0)) s, $probes status probes meanwhile"
[[ ${slowest%%.*} -lt 2 ]] || fail "status took ${slowest}s during the flood (expected < 2 s)"
ok "status answered within ${slowest}s throughout"
: >"$T/go"
wait "$stall" || fail "the stalled follower's script failed"
read -r stall_state stall_bytes <"$T/stall.result"
dropped_logged=
grep -q '"stream_queue"' "$LOG" && dropped_logged=1
if [[ $stall_state != closed && -z $dropped_logged ]]; then
	fail "the follower that stopped reading was not dropped (socket $stall_state after $stall_bytes bytes, no stream_queue event in the log; $granted grants)"
fi
ok "the follower that stopped reading was dropped (socket $stall_state after $stall_bytes bytes${dropped_logged:+, logged as stream_queue})"
t0=$(now_ms)
expect_exit 0 gl --json status
ms=$(($(now_ms) - t0))
[[ $ms -lt 2000 ]] || fail "status took $ms ms after the flood"
ok "status after the flood in $ms ms"
expect_exit 0 gl --json verify
expect_eq "$(json_get '["ok"]')" true "verify after the flood"

# --- SIGTERM with followers connected; a restart ----------------------------------
# One follower may retry for 1 s only: it gives up with 69 and a message.
# The other (default --retry 30) resumes after the restart from the last
# seq it printed: nothing lost, nothing twice.
gl journal --follow --since 999999 --retry 1 >"$T/last.out" 2>"$T/last.err" &
last=$!
gl --json journal --follow >"$T/resume.out" 2>"$T/resume.err" &
resume=$!
follows=$((follows + 2))
wait_follows $follows
expect_exit 0 gl --json status
head=$(json_get '["journal"]["seq"]')
wait_for "$T/resume.out" "\"seq\":$head," 10 >/dev/null || fail "the resuming follower did not print up to seq $head"
t0=$(now_ms)
kill -TERM "$DAEMON_PID"
_wait_dead "$DAEMON_PID" 5 || fail "gpuledgerd still runs 5 s after SIGTERM with a follower connected"
rc=0
wait "$DAEMON_PID" || rc=$?
DAEMON_PID=
[[ $rc -eq 0 ]] || fail "gpuledgerd exited $rc after SIGTERM (expected 0)"
ok "SIGTERM with followers: exit 0 after $(($(now_ms) - t0)) ms"
_wait_dead "$last" 5 || fail "the follower with --retry 1 still runs 5 s after the daemon ended"
rc=0
wait "$last" || rc=$?
[[ $rc -eq 69 ]] || fail "the follower with --retry 1 exited $rc (expected 69): $(cat "$T/last.err")"
grep -q "could not resume it within 1 s" "$T/last.err" ||
	fail "the follower with --retry 1 did not say why it ended: $(cat "$T/last.err")"
ok "the follower with --retry 1 gave up: exit 69, $(cat "$T/last.err")"
_alive "$resume" || fail "the resuming follower ended with the daemon: $(cat "$T/resume.err")"
start_daemon
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 1 --reason after-restart
ms=$(wait_for "$T/resume.out" 'after-restart' 10) || fail "the follower did not resume: $(cat "$T/resume.err")"
ok "the follower resumed after the restart (the new entry after ${ms} ms)"
kill "$resume"
wait "$resume" 2>/dev/null || true
python3 - "$T/resume.out" <<'PY' || fail "the resumed stream lost or repeated entries"
import json, sys
seqs = [json.loads(line)["seq"] for line in open(sys.argv[1], encoding="utf-8")]
assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs[-20:]
PY
ok "the resumed stream: every seq once, in order"
stop_daemon
pass
