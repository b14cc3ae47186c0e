#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SIGHUP accepts exactly the configurations the daemon would start with on
# the same database: the reload runs the start-up's own checks. Refused
# (logged config_refused, the old config kept, and refused at a restart
# too): a pool that only finished allocations refer to, the last pool of a
# GPU model a balance refers to, a consortium's `joined` moved past its
# bookings. A restart with the old config still works.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

CFG=$T/config.yaml
cp "$EXAMPLE_CONFIG" "$CFG"
cp "$EXAMPLE_CONFIG" "$T/good.yaml"
# the example with one line edited by a Python expression over its lines
variant() {
	python3 - "$EXAMPLE_CONFIG" "$2" >"$T/$1.yaml" <<'PY'
import sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines(keepends=True)
exec(sys.argv[2])
sys.stdout.write("".join(lines))
PY
}
variant no-ncloud 'lines = [l for l in lines if "id: ncloud-h200," not in l]'
variant no-h100 'lines = [l for l in lines if "id: kt-h100," not in l]'
variant lg-late 'i = lines.index("  - id: lg\n"); lines.insert(i + 1, "    joined: 2025-08-06\n")'
variant renamed 'lines = [l.replace("name: Sovereign AI Foundation Model", "name: Renamed") for l in lines]'

# hup FILE EVENT: installs FILE as the config, sends SIGHUP, waits for EVENT in the log
hup() {
	local n i
	cp "$T/$1.yaml" "$CFG"
	n=$(grep -c "\"event\":\"$2\"" "$LOG" || true)
	kill -HUP "$DAEMON_PID"
	for ((i = 0; i < 50; i++)); do
		[[ $(grep -c "\"event\":\"$2\"" "$LOG" || true) -gt $n ]] && break
		sleep 0.1
	done
	[[ $(grep -c "\"event\":\"$2\"" "$LOG" || true) -gt $n ]] ||
		fail "SIGHUP with $1.yaml: no $2 in the log"
	ok "SIGHUP with $1.yaml: $2"
}

start_daemon "$CFG"
expect_exit 0 gl grant lg --phase p1 --gpu H200 --gpu-hours 100 --reason budget
expect_exit 0 gl grant upstage --phase p1 --gpu H100 --gpu-hours 100 --reason budget
expect_exit 0 gl allocate lg --gpus 8 --pool ncloud-h200 --start 2025-08-05 --hours 2
expect_exit 0 gl clock set 2025-08-06T12:00
expect_exit 0 gl --json show A-000001
expect_eq "$(json_get '["allocation"]["state"]')" completed "A-000001 state"

for bad in no-ncloud no-h100 lg-late; do
	hup "$bad" config_refused
	expect_exit 0 gl --json program
	expect_eq "$(json_eval '",".join(p["id"] for p in d["pools"])')" \
		"skt-b200,ncloud-h200,kt-h100,nhn-b200,kakao-b200,ncloud-gov-h200" "pools after $bad"
done
grep '"event":"config_refused"' "$LOG" >"$T/refused"
grep -q "ncloud-h200" "$T/refused" || fail "the refusal does not name the pool"
grep -q "H100" "$T/refused" || fail "the refusal does not name the GPU model"
grep -q "before it joined" "$T/refused" || fail "the refusal does not name the joining"
ok "each refusal says why"
expect_exit 0 gl --json program
expect_eq "$(json_eval 'd["consortia"][0]["joined"]')" 2025-08-04T00:00:00+09:00 "lg joined"
expect_exit 0 gl allocate lg --gpus 1 --pool ncloud-h200 --start 2025-08-07 --hours 1

hup renamed config_reloaded
expect_exit 0 gl --json program
expect_eq "$(json_get '["program"]["name"]')" Renamed "program name after an accepted reload"
stop_daemon

# the start refuses what the reload refused, and starts with the old config
for bad in no-ncloud no-h100 lg-late; do
	expect_exit 1 "$GPULEDGERD" --config "$T/$bad.yaml" --socket "$SOCK" --database "$DB" \
		--log "$T/refused.log" --clock 2025-08-06T12:00
done
cp "$T/good.yaml" "$CFG"
CLOCK=2025-08-06T12:00 start_daemon "$CFG"
expect_exit 0 gl verify
expect_exit 0 gl --json allocations --consortium lg
expect_eq "$(json_eval 'len(d["allocations"])')" 2 "allocations after the restart"
stop_daemon
pass
