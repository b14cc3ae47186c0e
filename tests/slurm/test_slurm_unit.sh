#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The cluster bridge's systemd units: `systemd-analyze verify` finds nothing
# wrong with the service and its timer (pointed at the binary just built),
# the service runs one sync and one usage round, and the timer starts it.
. "$(dirname "$0")/../integration/lib.sh"
: "${GPULEDGER_SLURM:?GPULEDGER_SLURM must name the gpuledger-slurm binary}"

command -v systemd-analyze >/dev/null ||
	{ echo "SKIP: systemd-analyze is not installed (apt-get install systemd)"; exit 77; }

U=$T/units
mkdir -p "$U"
for f in gpuledger-slurm.service gpuledger-slurm.timer; do
	sed -e "s#/usr/bin/gpuledger-slurm#$GPULEDGER_SLURM#g" "$SOURCE_ROOT/config/$f" >"$U/$f"
done
expect_exit 0 systemd-analyze verify --man=no "$U/gpuledger-slurm.timer" "$U/gpuledger-slurm.service"
[[ -z $ERR ]] || fail "systemd-analyze verify complained: $ERR"
ok "systemd-analyze verify: no complaint"

svc=$SOURCE_ROOT/config/gpuledger-slurm.service
grep -qx 'Type=oneshot' "$svc" || fail "the service is not Type=oneshot"
grep -qx 'ExecStart=/usr/bin/gpuledger-slurm sync' "$svc" || fail "the service does not sync"
grep -qx 'ExecStart=/usr/bin/gpuledger-slurm usage' "$svc" || fail "the service does not meter usage"
grep -qx 'EnvironmentFile=-/etc/default/gpuledger-slurm' "$svc" || fail "no EnvironmentFile"
grep -qx 'WantedBy=timers.target' "$SOURCE_ROOT/config/gpuledger-slurm.timer" ||
	fail "the timer is not wanted by timers.target"
ok "a oneshot sync + usage round, configured from /etc/default/gpuledger-slurm, on a timer"

# what the service runs without its environment file says what is missing
expect_exit 64 env -u GPULEDGER_SLURM_CLUSTER "$GPULEDGER_SLURM" sync
expect_contains "GPULEDGER_SLURM_CLUSTER"
pass
