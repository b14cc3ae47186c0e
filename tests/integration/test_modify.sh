#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# gpuledger modify: a reservation changes shape (start, end, GPUs, pool),
# an active allocation only its end, each through rules 1-5 with its own
# old shape not counted against it; one modify entry with the cost delta,
# which verify recomputes, also after a restart. Every refusal is typed and
# changes nothing.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

# What a change may touch: the journal head, quota, allocations.
snapshot() {
	expect_exit 0 gl --json status
	SNAP=$(json_get '["journal"]')
	expect_exit 0 gl --json quota
	SNAP+=$OUT
	expect_exit 0 gl --json allocations
	SNAP+=$OUT
}

# refused CODE ARGS...: modify is refused with CODE and changes nothing.
refused() {
	local code=$1 before want=1
	shift
	# 400 and 422 are bad input (65); 404 and 409 a refusal (1)
	case $code in bad_request | invalid_window | invalid_amount | unknown_gpu) want=65 ;; esac
	snapshot
	before=$SNAP
	expect_exit "$want" gl --json modify "$@"
	expect_eq "$(json_get '["error"]["code"]')" "$code" "modify $* refused"
	snapshot
	expect_eq "$SNAP" "$before" "the refused modify $* changed nothing"
}

start_daemon
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 2000 --reason r
expect_exit 0 gl grant upstage --phase p1 --gpu B200 --gpu-hours 2000 --reason r
expect_exit 0 gl --json allocate lg --gpus 512 --pool skt-b200 --start 2025-09-01T00:00 --hours 1
expect_eq "$(json_get '["allocation"]["id"]')" A-000001 "A-000001"
expect_exit 0 gl --json allocate upstage --gpus 512 --pool skt-b200 --start 2025-09-01T00:00 --hours 1

# its own old window does not stand in its way: 512 + 512 + 512 would not fit
expect_exit 0 gl --json modify A-000001 --start 2025-09-01T00:30 --end 2025-09-01T01:30 --reason later
expect_eq "$(json_get '["allocation"]["start"]')" 2025-09-01T00:30:00+09:00 "new start"
expect_eq "$(json_get '["cost_delta_gpu_seconds"]')" 0 "same length, same cost"
expect_eq "$(json_eval '[(e["kind"], e["extra"]["old"]["start"]) for e in d["entries"]]')" \
	"[[\"modify\",$(date -d 2025-09-01T00:00+09:00 +%s)]]" "one modify entry with the old shape"

# longer: the delta is charged
expect_exit 0 gl --json modify A-000001 --end 2025-09-01T02:30 --reason longer
expect_eq "$(json_get '["cost_delta_gpu_seconds"]')" $((512 * 3600)) "cost delta"
expect_eq "$(json_get '["allocation"]["cost_gpu_seconds"]')" $((512 * 7200)) "new cost"
expect_exit 0 gl --json quota lg
expect_eq "$(json_get '["quota"][0]["committed_gpu_seconds"]')" $((512 * 7200)) "committed follows"

# the human form
expect_exit 0 gl modify A-000001 --gpus 256 --reason fewer
expect_contains "modified A-000001 (cost -512 GPU-hours)"

# a dry run answers what the real one then does
expect_exit 0 gl --json --dry-run modify A-000001 --gpus 512 --reason more
dry=$OUT
expect_exit 0 gl --json modify A-000001 --gpus 512 --reason more
python3 - "$dry" "$OUT" <<'PY' || fail "the dry modify differs from the real one"
import json, sys
dry, real = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert dry.pop("dry_run") is True
assert dry["allocation"] == real["allocation"], (dry, real)
assert dry["cost_delta_gpu_seconds"] == real["cost_delta_gpu_seconds"]
PY
ok "the dry modify gave the real figures"

# a change of pool, of the same model, in the same phase; idempotent like any change
expect_exit 0 gl grant lg --phase p2 --gpu B200 --gpu-hours 100 --reason r
expect_exit 0 gl --json allocate lg --gpus 8 --pool skt-b200 --start 2026-06-01T00:00 --hours 1
expect_eq "$(json_get '["allocation"]["id"]')" A-000003 "A-000003"
expect_exit 0 gl --json --request-id mod-1 modify A-000003 --pool nhn-b200 --start 2026-07-10T00:00 --end 2026-07-10T02:00 --reason "the new pool"
first=$OUT
expect_eq "$(json_get '["allocation"]["pool"]')" nhn-b200 "the new pool"
expect_eq "$(json_get '["cost_delta_gpu_seconds"]')" $((8 * 3600)) "twice as long"
expect_exit 0 gl --json status
seq=$(json_get '["journal"]["seq"]')
expect_exit 0 gl --json --request-id mod-1 modify A-000003 --pool nhn-b200 --start 2026-07-10T00:00 --end 2026-07-10T02:00 --reason "the new pool"
expect_eq "$OUT" "$first" "the retry's answer"
expect_exit 0 gl --json status
expect_eq "$(json_get '["journal"]["seq"]')" "$seq" "the retry wrote nothing"

# every refusal is typed and changes nothing
refused not_found A-999999 --end 2025-09-01T03:00 --reason r
refused capacity_unavailable A-000002 --gpus 1024 --reason r
refused quota_exceeded A-000002 --end 2025-09-02T00:00 --reason r
refused crosses_phase A-000002 --end 2026-02-01T00:00 --reason r
refused crosses_phase A-000001 --start 2026-07-01T02:00 --end 2026-07-01T03:00 --reason "into p2"
refused unknown_gpu A-000002 --pool ncloud-h200 --reason r
refused not_whole_nodes A-000002 --pool nhn-b200 --gpus 7 --reason r
refused capacity_unavailable A-000002 --pool nhn-b200 --gpus 8 --reason "not leased yet"
refused invalid_window A-000002 --end 2025-08-31T00:00 --reason r
refused invalid_window A-000002 --start 2025-08-01T00:00 --reason r
refused invalid_window A-000002 --end 2025-09-01T01:00 --reason "the same"
refused not_found A-000002 --pool nope --reason r
refused bad_request A-000002 --end 2025-09-01T03:00 --reason ""
expect_exit 0 gl grant upstage --phase p1 --gpu B200 --gpu-hours 0 --max-gpus 600 --reason cap
refused cap_exceeded A-000002 --gpus 601 --start 2025-09-01T03:00 --end 2025-09-01T04:00 --reason r
expect_exit 64 gl modify A-000002 --reason r
expect_exit 64 gl modify A-000002 --end 2025-09-01T03:00

# a finished allocation, a cancelled one
expect_exit 0 gl --json allocate lg --gpus 8 --pool skt-b200 --start 2025-10-01T00:00 --hours 1
expect_exit 0 gl cancel A-000004
refused bad_state A-000004 --end 2025-10-01T02:00 --reason r

# an active allocation: only its end moves, and not into the past
expect_exit 0 gl clock set 2025-09-01T00:30
refused bad_state A-000002 --gpus 8 --reason r
refused bad_state A-000002 --start 2025-09-01T00:40 --reason r
refused invalid_window A-000002 --end 2025-09-01T00:20 --reason r
expect_exit 0 gl --json modify A-000002 --end 2025-09-01T00:45 --reason shorter
expect_eq "$(json_get '["cost_delta_gpu_seconds"]')" $((-512 * 900)) "an active allocation's end moved in"
expect_eq "$(json_get '["allocation"]["state"]')" active "still active"
expect_exit 0 gl clock set 2025-09-01T01:00
expect_exit 0 gl --json show A-000002
expect_eq "$(json_get '["allocation"]["state"]')" completed "completed at its new end"

# verify recomputes the modify entries, also after a restart
expect_exit 0 gl --json verify
expect_eq "$(json_get '["ok"]')" true "verify"
expect_exit 0 gl --json show A-000003
a3=$OUT
stop_daemon
CLOCK=2025-09-01T01:00 start_daemon
expect_exit 0 gl --json show A-000003
expect_eq "$OUT" "$a3" "the modified allocation after a restart"
expect_eq "$(json_get '["allocation"]["pool"]')" nhn-b200 "its new pool"
expect_exit 0 gl --json verify
expect_eq "$(json_get '["ok"]')" true "verify after restart"
expect_exit 0 gl --json journal --all
expect_eq "$(json_eval 'sum(1 for e in d["entries"] if e["kind"] == "modify")')" 6 "six modify entries"
stop_daemon
pass
