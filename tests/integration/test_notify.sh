#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# systemd's notify protocol without systemd: a datagram socket named by
# $NOTIFY_SOCKET receives, in order, READY=1 (only once the daemon answers),
# RELOADING=1 then READY=1 around a SIGHUP, and STOPPING=1 on SIGTERM; with
# $WATCHDOG_USEC set for the daemon's pid, WATCHDOG=1 keeps coming at about
# half that interval, also on a simulated clock that stands still.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

NOTIFY=$T/notify.sock
python3 - "$NOTIFY" "$T/notify.out" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
with open(sys.argv[2], "w", encoding="utf-8") as out:
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            break
        out.write(repr(msg) + "\n")
        out.flush()
        if "STOPPING=1" in msg:
            break
PY
LISTENER=$!
for _ in $(seq 50); do [[ -S $NOTIFY ]] && break; sleep 0.1; done
[[ -S $NOTIFY ]] || fail "the test's notify socket did not appear"

# WATCHDOG_PID must be the daemon's own pid: exec keeps the shell's.
export NOTIFY_SOCKET=$NOTIFY
GPULEDGERD_REAL=$GPULEDGERD
GPULEDGERD=$T/gpuledgerd-wd
cat >"$GPULEDGERD" <<SH
#!/usr/bin/env bash
export WATCHDOG_PID=\$\$ WATCHDOG_USEC=400000
exec "$GPULEDGERD_REAL" "\$@"
SH
chmod +x "$GPULEDGERD"
start_daemon
unset NOTIFY_SOCKET
sleep 1
kill -HUP "$DAEMON_PID"
sleep 0.5
stop_daemon
wait "$LISTENER" || true

python3 - "$T/notify.out" <<'PY' || fail "notify messages out of order: $(cat "$T/notify.out")"
import ast, sys
msgs = [ast.literal_eval(line) for line in open(sys.argv[1], encoding="utf-8")]
states = []
for m in msgs:
    for kv in m.split("\n"):
        k = kv.split("=", 1)[0]
        if k in ("READY", "RELOADING", "STOPPING"):
            states.append(kv)
assert states == ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"], states
ready = next(m for m in msgs if "READY=1" in m)
assert "STATUS=serving" in ready, ready
stopping = next(m for m in msgs if "STOPPING=1" in m)
assert "STATUS=stopping (SIGTERM)" in stopping, stopping
dogs = sum(1 for m in msgs if m == "WATCHDOG=1")
# 1.5 s or more at one per 200 ms
assert dogs >= 4, dogs
PY
ok "READY=1, RELOADING=1, READY=1, STOPPING=1 in order, with STATUS= lines"
ok "WATCHDOG=1 at half of WATCHDOG_USEC on the simulated clock"

# Without $NOTIFY_SOCKET nothing is sent and nothing breaks.
GPULEDGERD=$GPULEDGERD_REAL
start_daemon
expect_exit 0 gl status
stop_daemon

# Socket activation: the socket systemd passes (here systemd-socket-activate,
# as gpuledgerd.socket would) is served instead of daemon.socket, and the
# daemon does not remove it when it stops.
if command -v systemd-socket-activate >/dev/null; then
	ACT=$T/activated.sock
	GPULEDGERD=$T/gpuledgerd-act
	cat >"$GPULEDGERD" <<SH
#!/usr/bin/env bash
exec systemd-socket-activate -l "$ACT" "$GPULEDGERD_REAL" "\$@"
SH
	chmod +x "$GPULEDGERD"
	SOCK_CONFIGURED=$SOCK
	SOCK=$ACT
	# systemd-socket-activate binds first, then starts the daemon on the first connection
	start_daemon --socket "$SOCK_CONFIGURED"
	expect_exit 0 gl --json status
	[[ -e $SOCK_CONFIGURED ]] && fail "the daemon bound daemon.socket although systemd passed one"
	grep -q '"socket":"systemd"' "$LOG" || fail "no listening line for the passed socket"
	stop_daemon
	[[ -S $ACT ]] || fail "the daemon removed systemd's socket"
	ok "socket activation: the passed socket is served, daemon.socket is not bound, nor removed"
	GPULEDGERD=$GPULEDGERD_REAL
	SOCK=$SOCK_CONFIGURED
fi
pass
