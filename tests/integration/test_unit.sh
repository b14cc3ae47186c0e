#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The shipped systemd units: `systemd-analyze verify` finds nothing wrong
# with them (pointed at the binaries just built, since the installed paths
# do not exist here), and `systemd-analyze security --offline=yes` rates the
# service's exposure at 2.0 or lower.
. "$(dirname "$0")/lib.sh"

command -v systemd-analyze >/dev/null ||
	{ echo "SKIP: systemd-analyze is not installed (apt-get install systemd)"; exit 77; }

U=$T/units
mkdir -p "$U"
for f in gpuledgerd.service gpuledgerd.socket; do
	sed -e "s#/usr/sbin/gpuledgerd#$GPULEDGERD#g" "$SOURCE_ROOT/config/$f" >"$U/$f"
done
expect_exit 0 systemd-analyze verify --man=no "$U/gpuledgerd.socket" "$U/gpuledgerd.service"
[[ -z $ERR ]] || fail "systemd-analyze verify complained: $ERR"
ok "systemd-analyze verify: no complaint"

expect_exit 0 systemd-analyze security --offline=yes "$SOURCE_ROOT/config/gpuledgerd.service"
level=$(printf '%s\n' "$OUT" | sed -n 's/.*Overall exposure level for gpuledgerd.service: \([0-9.]*\).*/\1/p')
[[ -n $level ]] || fail "no exposure level in: $OUT"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 2.0 else 1)" "$level" ||
	fail "exposure level $level is above 2.0"
ok "systemd-analyze security: exposure $level (at most 2.0)"

# The hardening that would break the daemon is absent: PrivateUsers= makes
# SO_PEERCRED report the wrong uids.
grep -q '^PrivateUsers=' "$SOURCE_ROOT/config/gpuledgerd.service" && fail "PrivateUsers= is set"
grep -q '^Type=notify' "$SOURCE_ROOT/config/gpuledgerd.service" || fail "not Type=notify"
grep -q '^SocketMode=0666' "$SOURCE_ROOT/config/gpuledgerd.socket" || fail "socket not 0666"
sock=$(sed -n 's/^ListenStream=//p' "$SOURCE_ROOT/config/gpuledgerd.socket")
grep -q "^  socket: $sock" "$(dirname "$GPULEDGERD")/../config/config.yaml" ||
	fail "the installed config's daemon.socket is not the socket unit's $sock"
ok "Type=notify, no PrivateUsers=, socket 0666 at the installed config's daemon.socket"
pass
