#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# gpuledger phase move: the evaluation that slips. The phase's end and the
# touching next phase's start move; bookings that would cross the new
# boundary are refused (listed) unless --cut; quota that expired at the old
# end comes back when the end moves later and expires at the new one; the
# journal's dates override the config's, after a restart and a SIGHUP too,
# and `program` shows both. Every refusal is typed and changes nothing.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

H=3600
snapshot() {
	expect_exit 0 gl --json status
	SNAP=$(json_get '["journal"]')
	expect_exit 0 gl --json quota
	SNAP+=$OUT
	expect_exit 0 gl --json allocations
	SNAP+=$OUT
	expect_exit 0 gl --json program
	SNAP+=$(json_get '["phases"]')
}

# refused CODE ARGS...: phase move is refused with CODE and changes nothing.
refused() {
	local code=$1 before want=1
	shift
	case $code in bad_request | invalid_window) want=65 ;; esac
	snapshot
	before=$SNAP
	expect_exit "$want" gl --json phase move "$@"
	expect_eq "$(json_get '["error"]["code"]')" "$code" "phase move $* refused"
	snapshot
	expect_eq "$SNAP" "$before" "the refused phase move $* changed nothing"
}

# dates PHASE: its start, end, config_start, config_end, from program.
dates() {
	gl --json program >"$T/out" || fail "gpuledger program failed"
	json_eval "[[p['start'], p['end'], p['config_start'], p['config_end']] for p in d['phases'] if p['id'] == '$1'][0]"
}

start_daemon
expect_exit 0 gl grant lg --phase p1 --gpu H200 --gpu-hours 4000 --reason r
expect_exit 0 gl grant lg --phase p2 --gpu H200 --gpu-hours 2000 --reason r
expect_exit 0 gl allocate lg --gpus 8 --pool ncloud-h200 --start 2026-01-10T00:00 --end 2026-01-15T00:00
expect_exit 0 gl allocate lg --gpus 8 --pool ncloud-h200 --start 2026-01-20T00:00 --end 2026-01-21T00:00

refused not_found p9 --end 2026-02-06 --reason r
refused invalid_window p1 --end 2025-08-01 --reason "in the past"
refused invalid_window p1 --end 2026-01-16 --reason "where it is"
refused invalid_window p1 --end 2026-08-01 --reason "past p2"
refused bad_request p1 --end 2026-02-06 --reason ""
# earlier: A-000001 runs past the new end; later: A-000002 of p2 starts before it
refused crosses_phase p1 --end 2026-01-12 --reason earlier
expect_exit 1 gl --json phase move p1 --end 2026-01-12 --reason earlier
expect_eq "$(json_get '["error"]["details"]["allocations"]')" '["A-000001"]' "the crossing booking listed"
refused crosses_phase p1 --end 2026-02-06 --reason "the evaluation slips"
expect_exit 1 gl --json phase move p1 --end 2026-02-06 --reason "the evaluation slips"
expect_eq "$(json_get '["error"]["details"]["allocations"]')" '["A-000002"]' "the next phase's booking listed"
expect_exit 0 gl --json --dry-run phase move p1 --end 2026-01-12 --cut --reason earlier
expect_eq "$(json_eval '[(r["allocation"], r["end"]) for r in d["cut"]]')" \
	'[["A-000001","2026-01-12T00:00:00+09:00"]]' "a dry --cut says what it cuts"
expect_eq "$(dates p1)" '["2025-08-04T00:00:00+09:00","2026-01-16T00:00:00+09:00","2025-08-04T00:00:00+09:00","2026-01-16T00:00:00+09:00"]' "and does nothing"

# the slip: three weeks later, p2 starts with it
expect_exit 0 gl cancel A-000002
expect_exit 0 gl --json --request-id slip-1 phase move p1 --end 2026-02-06 --reason "the evaluation slips"
first=$OUT
expect_eq "$(json_get '["phase"]["end"]')" 2026-02-06T00:00:00+09:00 "new end"
expect_eq "$(json_get '["phase"]["config_end"]')" 2026-01-16T00:00:00+09:00 "config end"
expect_eq "$(json_get '["next"]["start"]')" 2026-02-06T00:00:00+09:00 "p2 starts then"
expect_eq "$(json_eval '[e["kind"] for e in d["entries"]]')" '["phase"]' "one phase entry"
expect_exit 0 gl --json --request-id slip-1 phase move p1 --end 2026-02-06 --reason "the evaluation slips"
expect_eq "$OUT" "$first" "the retry's answer"
expect_eq "$(dates p2)" '["2026-02-06T00:00:00+09:00","2026-08-01T00:00:00+09:00","2026-01-16T00:00:00+09:00","2026-08-01T00:00:00+09:00"]' "p2's dates"
expect_exit 0 gl program
expect_match "^p1 .*2026-02-06T00:00:00\+09:00 +2025-08-04T00:00:00\+09:00 +2026-01-16T00:00:00\+09:00"

# the extension is p1's: a booking there is charged to p1, one across the new end is not
expect_exit 0 gl --json allocate lg --gpus 8 --pool ncloud-h200 --start 2026-02-01T00:00 --end 2026-02-02T00:00
expect_eq "$(json_get '["allocation"]["phase"]')" p1 "charged to p1"
expect_exit 1 gl --json allocate lg --gpus 8 --pool ncloud-h200 --start 2026-02-05T00:00 --end 2026-02-07T00:00
expect_eq "$(json_get '["error"]["details"]["phase_end"]')" 2026-02-06T00:00:00+09:00 "rule 1 at the new end"

# p1's quota expires at the new end, not the old one
expect_exit 0 gl clock set 2026-01-20T00:00
expect_exit 0 gl --json quota lg --phase p1
expect_eq "$(json_get '["quota"][0]["expired_gpu_seconds"]')" 0 "nothing expired at the old end"
expect_exit 0 gl clock set 2026-02-07T00:00
expect_exit 0 gl --json quota lg --phase p1
expired=$(json_get '["quota"][0]["expired_gpu_seconds"]')
expect_eq "$expired" $((4000 * H - 8 * 120 * H - 8 * 24 * H)) "expired at the new end"

# it slips again after it ended: the expired quota comes back, and p2 is not yet running
expect_exit 0 gl --json phase move p1 --end 2026-02-20 --reason "again"
expect_eq "$(json_get '["restored_gpu_seconds"]')" "$expired" "restored"
expect_eq "$(json_eval '[(e["kind"], e["expired_delta_gpu_seconds"]) for e in d["entries"]]')" \
	"[[\"phase\",0],[\"expire\",-$expired]]" "a phase entry and the expiry given back"
expect_exit 0 gl --json quota lg --phase p1
expect_eq "$(json_get '["quota"][0]["expired_gpu_seconds"]')" 0 "nothing expired now"
expect_eq "$(json_get '["quota"][0]["available_gpu_seconds"]')" "$expired" "available again"

# --cut: an earlier end cuts what runs past it and revokes what starts after
expect_exit 0 gl allocate lg --gpus 8 --pool ncloud-h200 --start 2026-02-10T00:00 --end 2026-02-15T00:00
expect_exit 0 gl allocate lg --gpus 8 --pool ncloud-h200 --start 2026-02-13T00:00 --end 2026-02-14T00:00
expect_exit 0 gl --json phase move p1 --end 2026-02-12 --cut --reason "decided early"
expect_eq "$(json_eval '[(r["allocation"], r["end"], r["refund_gpu_seconds"]) for r in d["cut"]]')" \
	"[[\"A-000004\",\"2026-02-12T00:00:00+09:00\",$((8 * 72 * H))]]" "cut at the boundary"
expect_eq "$(json_eval '[(r["allocation"], r["refund_gpu_seconds"]) for r in d["revoked"]]')" \
	"[[\"A-000005\",$((8 * 24 * H))]]" "revoked after it"
expect_exit 0 gl --json verify
expect_eq "$(json_get '["ok"]')" true "verify"

# the journal's dates stand after a restart and a SIGHUP
stop_daemon
CLOCK=2026-02-07T00:00 start_daemon
expect_eq "$(dates p1)" '["2025-08-04T00:00:00+09:00","2026-02-12T00:00:00+09:00","2025-08-04T00:00:00+09:00","2026-01-16T00:00:00+09:00"]' "p1 after a restart"
expect_eq "$(dates p2)" '["2026-02-12T00:00:00+09:00","2026-08-01T00:00:00+09:00","2026-01-16T00:00:00+09:00","2026-08-01T00:00:00+09:00"]' "p2 after a restart"
kill -HUP "$DAEMON_PID"
sleep 0.5
expect_eq "$(dates p1)" '["2025-08-04T00:00:00+09:00","2026-02-12T00:00:00+09:00","2025-08-04T00:00:00+09:00","2026-01-16T00:00:00+09:00"]' "p1 after a SIGHUP"
expect_exit 0 gl --json verify
expect_eq "$(json_get '["ok"]')" true "verify after restart"
expect_exit 0 gl clock set 2026-02-12T00:00
expect_exit 0 gl --json quota lg --phase p1
expect_eq "$(json_eval 'd["quota"][0]["expired_gpu_seconds"] > 0')" true "p1 expires at its last end"
expect_exit 0 gl --json journal --all
expect_eq "$(json_eval 'sum(1 for e in d["entries"] if e["kind"] == "phase")')" 3 "three phase entries"
stop_daemon
pass
