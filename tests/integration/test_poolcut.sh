#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# gpuledger pool cut: from T the pool holds N GPUs; the allocations that no
# longer fit, newest first, are cut at T or revoked whole (with refunds) in
# one journaled operation; the smaller capacity holds for every later
# booking, after a restart too, and verify recomputes. Every refusal is
# typed and changes nothing.
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
	SNAP+=$(json_eval '[p["cuts"] for p in d["pools"]]')
}

# refused CODE ARGS...: pool cut is refused with CODE and changes nothing.
refused() {
	local code=$1 before want=1
	shift
	case $code in bad_request | invalid_window | invalid_amount) want=65 ;; esac
	snapshot
	before=$SNAP
	expect_exit "$want" gl --json pool cut "$@"
	expect_eq "$(json_get '["error"]["code"]')" "$code" "pool cut $* refused"
	snapshot
	expect_eq "$SNAP" "$before" "the refused pool cut $* changed nothing"
}

start_daemon
expect_exit 0 gl grant lg --phase p1 --gpu H100 --gpu-hours 100000 --reason r
expect_exit 0 gl grant upstage --phase p1 --gpu H100 --gpu-hours 100000 --reason r
expect_exit 0 gl allocate lg --gpus 512 --pool kt-h100 --start 2025-09-01T00:00 --end 2025-09-03T00:00
expect_exit 0 gl allocate upstage --gpus 256 --pool kt-h100 --start 2025-09-01T00:00 --end 2025-09-03T00:00
expect_exit 0 gl allocate lg --gpus 256 --pool kt-h100 --start 2025-09-02T12:00 --end 2025-09-04T00:00
expect_exit 0 gl allocate upstage --gpus 128 --pool kt-h100 --start 2025-09-05T00:00 --end 2025-09-06T00:00

refused not_found nope --at 2025-09-02 --gpus 512 --reason r
refused invalid_window kt-h100 --at 2025-08-01 --gpus 512 --reason r
refused invalid_amount kt-h100 --at 2025-09-02 --gpus 1024 --reason "takes nothing"
refused not_whole_nodes nhn-b200 --at 2026-08-01 --gpus 7 --reason r
refused bad_request kt-h100 --at 2025-09-02 --gpus 512 --reason ""
expect_exit 64 gl pool cut kt-h100 --gpus 512 --reason r

# a dry run says what the cut does, and does nothing
snapshot
before=$SNAP
expect_exit 0 gl --json --dry-run pool cut kt-h100 --at 2025-09-02T00:00 --gpus 512 --reason "nodes lost"
dry=$OUT
snapshot
expect_eq "$SNAP" "$before" "a dry cut changed nothing"

# newest first: A-000004 fits, A-000003 starts after T (revoked), A-000002
# runs over T (cut at T), and then A-000001 fits
expect_exit 0 gl --json --request-id cut-1 pool cut kt-h100 --at 2025-09-02T00:00 --gpus 512 --reason "nodes lost"
first=$OUT
expect_eq "$(json_get '["capacity"]')" 512 "capacity from T"
expect_eq "$(json_eval '[r["allocation"] for r in d["revoked"]]')" '["A-000003"]' "revoked"
expect_eq "$(json_eval '[(r["allocation"], r["end"]) for r in d["cut"]]')" \
	'[["A-000002","2025-09-02T00:00:00+09:00"]]' "cut at T"
expect_eq "$(json_eval '[r["refund_gpu_seconds"] for r in d["revoked"] + d["cut"]]')" \
	"[$((256 * 36 * H)),$((256 * 24 * H))]" "refunds"
expect_eq "$(json_get '["refund_gpu_seconds"]')" $((256 * 60 * H)) "total refund"
expect_eq "$(json_eval '[e["kind"] for e in d["entries"]]')" '["pool_cut","revoke","revoke"]' "one operation"
expect_eq "$(json_eval '[d["entries"][0][k] for k in ("pool","gpus","start")]')" \
	'["kt-h100",512,"2025-09-02T00:00:00+09:00"]' "the pool_cut entry"
python3 - "$dry" "$first" <<'PY' || fail "the dry cut differs from the real one"
import json, sys
dry, real = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert dry.pop("dry_run") is True
for k in ("cut", "revoked", "refund_gpu_seconds", "capacity", "at", "gpus"):
    assert dry[k] == real[k], k
assert [e["kind"] for e in dry["entries"]] == [e["kind"] for e in real["entries"]]
PY
ok "the dry cut gave the real figures"
expect_exit 0 gl --json --request-id cut-1 pool cut kt-h100 --at 2025-09-02T00:00 --gpus 512 --reason "nodes lost"
expect_eq "$OUT" "$first" "the retry's answer"

expect_exit 0 gl --json quota upstage
expect_eq "$(json_get '["quota"][0]["committed_gpu_seconds"]')" $((256 * 24 * H + 128 * 24 * H)) "upstage refunded"
expect_exit 0 gl --json show A-000003
expect_eq "$(json_get '["allocation"]["state"]')" revoked "A-000003 revoked"
expect_exit 0 gl --json show A-000001
expect_eq "$(json_get '["allocation"]["end"]')" 2025-09-03T00:00:00+09:00 "A-000001 untouched"
expect_exit 0 gl --json program
expect_eq "$(json_eval '[p["cuts"] for p in d["pools"] if p["id"] == "kt-h100"][0]')" \
	'[{"at":"2025-09-02T00:00:00+09:00","gpus":512}]' "program shows the cut"

# the smaller capacity holds for what comes after
expect_exit 1 gl --json allocate lg --gpus 1 --pool kt-h100 --start 2025-09-02T06:00 --hours 1
expect_eq "$(json_get '["error"]["code"]')" capacity_unavailable "full at 512"
expect_eq "$(json_get '["error"]["details"]["earliest_start"]')" 2025-09-03T00:00:00+09:00 "free again after A-000001"
expect_exit 1 gl --json allocate lg --gpus 600 --pool kt-h100 --start 2025-09-10T00:00 --hours 1
expect_eq "$(json_get '["error"]["details"]["earliest_start"]')" null "600 never fit again"
expect_exit 0 gl allocate lg --gpus 600 --pool kt-h100 --start 2025-08-20T00:00 --hours 1

# a second cut, to none, from later: only what runs then goes
expect_exit 0 gl --json pool cut kt-h100 --at 2025-09-04T00:00 --reason "lease ends"
expect_eq "$(json_eval '[r["allocation"] for r in d["revoked"]]')" '["A-000004"]' "second cut"
expect_exit 0 gl --json verify
expect_eq "$(json_get '["ok"]')" true "verify"
stop_daemon
start_daemon
expect_exit 1 gl --json allocate lg --gpus 600 --pool kt-h100 --start 2025-09-10T00:00 --hours 1
expect_eq "$(json_get '["error"]["code"]')" capacity_unavailable "the cut holds after a restart"
expect_exit 1 gl --json allocate lg --gpus 1 --pool kt-h100 --start 2025-09-05T00:00 --hours 1
expect_eq "$(json_get '["error"]["code"]')" capacity_unavailable "and the second one"
expect_exit 0 gl allocate lg --gpus 512 --pool kt-h100 --start 2025-09-03T00:00 --hours 1
expect_exit 0 gl --json program
expect_eq "$(json_eval 'len([p["cuts"] for p in d["pools"] if p["id"] == "kt-h100"][0])')" 2 "both cuts after a restart"
expect_exit 0 gl --json verify
expect_eq "$(json_get '["ok"]')" true "verify after restart"
stop_daemon
pass
