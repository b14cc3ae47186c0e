#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 14 items 1, 2, 4 and 9 through the real CLI and daemon, in exact
# GPU-seconds: the procured budget of every (phase, model) of the example,
# the conservation guard (oversubscribed unless --oversubscribe, recorded),
# transfers between consortia and from the reserve as one pair of entries,
# idempotent, every refusal typed and changing nothing, SK Telecom not
# eligible before H2 2026, and balances at a past instant (quota --at),
# scoped for a consortium.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

H=3600
P1=$((3960 * H))	# [2025-08-04, 2026-01-16): 165 days
start_daemon

# journal_head: the journal head's seq, for "changes nothing"
journal_head() { gl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["journal"]["seq"])'; }

expect_exit 0 gl --json budget
expect_eq "$(json_eval 'len(d["budget"])')" 9 "every (phase, model) of the config"
expect_eq "$(json_eval '[(r["phase"], r["gpu"]) for r in d["budget"][:3]]')" \
	'[["p1","B200"],["p1","H200"],["p1","H100"]]' "phase order, then models in pool order"
expect_eq "$(json_get '["budget"][0]')" \
	"{\"phase\":\"p1\",\"gpu\":\"B200\",\"procured_gpu_seconds\":$((1024 * P1)),\"granted_gpu_seconds\":0,\"committed_gpu_seconds\":0,\"reserve_gpu_seconds\":$((1024 * P1))}" \
	"p1 B200 before any grant"
# p2 B200: the SK Telecom lease until 2026-07-01 (166 days), then NHN and Kakao (31 days)
expect_exit 0 gl --json budget --phase p2
expect_eq "$(json_eval 'len(d["budget"])')" 3 "budget --phase p2"
expect_eq "$(json_get '["budget"][0]["procured_gpu_seconds"]')" $(((1024 * 3984 + 8160 * 744) * H)) \
	"p2 B200 procured, leases counted"
expect_exit 65 gl budget --phase p9
expect_contains unknown_phase

# the conservation guard
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 2000000 --reason "stage 1"
expect_exit 0 gl grant upstage --phase p1 --gpu B200 --gpu-hours 2000000 --reason "stage 1"
before=$(journal_head)
expect_exit 1 gl --json grant naver --phase p1 --gpu B200 --gpu-hours 100000 --reason "stage 1"
expect_eq "$(json_get '["error"]["code"]')" oversubscribed "past the procured budget"
expect_eq "$(json_get '["error"]["details"]["procured_gpu_seconds"]')" $((1024 * P1)) "details: procured"
expect_eq "$(json_get '["error"]["details"]["granted_gpu_seconds"]')" $((4000000 * H)) "details: granted"
expect_eq "$(journal_head)" "$before" "a refused grant writes nothing"
expect_exit 0 gl --json grant naver --phase p1 --gpu B200 --gpu-hours 100000 --oversubscribe --reason "on purpose"
expect_eq "$(json_get '["entries"][0]["extra"]')" '{"oversubscribe":true}' "the entry records --oversubscribe"
expect_exit 0 gl --json budget --phase p1
expect_eq "$(json_get '["budget"][0]["reserve_gpu_seconds"]')" $(((1024 * 3960 - 4100000) * H)) \
	"the reserve goes negative when oversubscribed"
expect_exit 0 gl grant naver --phase p1 --gpu B200 --gpu-hours -100000 --reason "back"

# a transfer: one pair of entries, the giver's available to the receiver
expect_exit 0 gl clock set 2025-09-01T00:00
expect_exit 0 gl --json --request-id tr-1 transfer lg upstage --phase p1 --gpu B200 --gpu-hours 1000 --reason "swap"
expect_eq "$(json_eval '[(e["kind"], e["consortium"], e["granted_delta_gpu_seconds"]) for e in d["entries"]]')" \
	"[[\"transfer_out\",\"lg\",-$((1000 * H))],[\"transfer_in\",\"upstage\",$((1000 * H))]]" "the pair"
expect_eq "$(json_eval 'd["entries"][0]["request_id"] == d["entries"][1]["request_id"] == "tr-1"')" true \
	"one request"
expect_eq "$(json_get '["from"]["granted_gpu_seconds"]')" $((1999000 * H)) "lg after"
expect_eq "$(json_get '["to"]["granted_gpu_seconds"]')" $((2001000 * H)) "upstage after"
after=$(journal_head)
expect_exit 0 gl --json --request-id tr-1 transfer lg upstage --phase p1 --gpu B200 --gpu-hours 1000 --reason "swap"
expect_eq "$(journal_head)" "$after" "the same key and body again: the first answer, nothing written"
expect_exit 1 gl --json --request-id tr-1 transfer lg upstage --phase p1 --gpu B200 --gpu-hours 999 --reason "swap"
expect_eq "$(json_get '["error"]["code"]')" idempotency_mismatch "the same key, another body"
expect_exit 0 gl transfer lg upstage --phase p1 --gpu B200 --gpu-hours 1 --reason "words"
expect_contains "transferred 1 GPU-hours of B200 from lg to upstage in p1"

# every refusal is typed and writes nothing
expect_exit 0 gl eliminate naver --effective 2026-01-15T18:00 --reason "1st evaluation"
expect_exit 0 gl grant lg --phase p2 --gpu B200 --gpu-hours 1000 --reason "stage 2"
before=$(journal_head)
refused() {	# EXIT CODE ARGS...: the transfer is refused with CODE and nothing changes
	local want=$1 code=$2
	shift 2
	expect_exit "$want" gl --json transfer "$@" --reason "refused"
	expect_eq "$(json_get '["error"]["code"]')" "$code" "transfer $* refused"
	expect_eq "$(journal_head)" "$before" "transfer $*: nothing written"
}
refused 1 quota_exceeded lg upstage --phase p1 --gpu B200 --gpu-hours 2000000
expect_eq "$(json_get '["error"]["details"]["available_gpu_seconds"]')" $((1998999 * H)) "available in details"
expect_eq "$(json_get '["error"]["details"]["needed_gpu_seconds"]')" $((2000000 * H)) "needed in details"
refused 1 not_found nobody upstage --phase p1 --gpu B200 --gpu-hours 1
refused 1 not_found lg nobody --phase p1 --gpu B200 --gpu-hours 1
refused 1 not_found lg reserve --phase p1 --gpu B200 --gpu-hours 1
refused 65 invalid_amount lg lg --phase p1 --gpu B200 --gpu-hours 1
refused 65 unknown_phase lg upstage --phase p9 --gpu B200 --gpu-hours 1
refused 65 unknown_gpu lg upstage --phase p1 --gpu A100 --gpu-hours 1
refused 1 not_active lg naver --phase p2 --gpu B200 --gpu-hours 1
refused 1 not_eligible lg skt --phase p2 --gpu B200 --gpu-hours 1
expect_eq "$(json_get '["error"]["details"]["eligible_from"]')" 2026-07-01T00:00:00+09:00 "skt: eligible from H2 2026"
refused 1 oversubscribed reserve upstage --phase p1 --gpu B200 --gpu-hours 100000
expect_exit 65 gl transfer lg upstage --phase p1 --gpu B200 --gpu-hours 0 --reason "nothing"
expect_exit 65 gl transfer lg upstage --phase p1 --gpu B200 --gpu-hours 0.0001 --reason "not whole seconds"
expect_exit 1 gl --json grant skt --phase p2 --gpu B200 --gpu-hours 1 --reason "leases GPUs"
expect_eq "$(json_get '["error"]["code"]')" not_eligible "a grant to skt before H2 2026"
expect_exit 0 gl grant skt --phase p3 --gpu B200 --gpu-hours 1 --reason "H2"
before=$(journal_head)

# from the reserve: what procured leaves ungranted, exactly
reserve=$(((1024 * 3960 - 4000000) * H))
expect_exit 0 gl --json transfer reserve upstage --phase p1 --gpu B200 --gpu-hours $((reserve / H)) --reason "the unfilled slot"
expect_eq "$(json_eval '[(e["kind"], e["consortium"]) for e in d["entries"]]')" \
	'[["transfer_out",null],["transfer_in","upstage"]]' "the reserve's side has no consortium"
expect_eq "$(json_get '["from"]')" null "no quota row for the reserve"
expect_exit 0 gl --json budget --phase p1
expect_eq "$(json_get '["budget"][0]["reserve_gpu_seconds"]')" 0 "the reserve is spent"
expect_exit 0 gl --json transfer reserve upstage --phase p1 --gpu B200 --gpu-hours 1 --oversubscribe --reason "more"
expect_eq "$(json_get '["entries"][0]["extra"]')" '{"oversubscribe":true}' "recorded on the reserve's side"

# into a closed phase
expect_exit 0 gl clock set 2026-01-16T00:00
before=$(journal_head)
refused 1 phase_closed lg upstage --phase p1 --gpu B200 --gpu-hours 1

# balances at a past instant, from the journal; a booking that ran meanwhile
expect_exit 0 gl --json quota lg --phase p1 --gpu B200 --at 2025-08-20
expect_eq "$(json_get '["at"]')" 2025-08-20T00:00:00+09:00 "at"
expect_eq "$(json_get '["quota"][0]["granted_gpu_seconds"]')" $((2000000 * H)) "lg at 2025-08-20"
expect_exit 0 gl --json quota lg --phase p1 --gpu B200 --at 2025-09-01T00:00
expect_eq "$(json_get '["quota"][0]["granted_gpu_seconds"]')" $((1998999 * H)) "lg right after the transfers"
expect_exit 0 gl --json quota --phase p1 --gpu B200 --at 2025-09-01
expect_eq "$(json_eval '[(q["consortium"], q["granted_gpu_seconds"]) for q in d["quota"]]')" \
	"[[\"lg\",$((1998999 * H))],[\"upstage\",$((2001001 * H + reserve + H))],[\"naver\",0]]" \
	"every row at 2025-09-01"
expect_exit 65 gl --json quota upstage --at 2025-08-04T08:59:59
expect_eq "$(json_get '["error"]["code"]')" invalid_window "a second before the first entry"
expect_exit 65 gl --json quota --at 2025-08-01
expect_eq "$(json_get '["error"]["code"]')" invalid_window "before the first entry"
expect_exit 65 gl --json quota --at 2026-02-01
expect_eq "$(json_get '["error"]["details"]["now"]')" 2026-01-16T00:00:00+09:00 "after now"
expect_exit 65 gl quota --at yesterday
expect_exit 0 gl quota lg --at 2025-09-01
expect_contains "as at 2025-09-01T00:00:00+09:00"
expect_exit 0 gl --json verify
expect_eq "$(json_get '["ok"]')" true "verify recomputes the transfers"
stop_daemon

# a consortium: its own rows at a past instant, and no route of the admins'
rm -f "$DB" "$DB-wal" "$DB-shm"
tcp_consortium_config "$T/tcp.yaml"
start_daemon "$T/tcp.yaml"
remote() { "$GPULEDGER" --url "http://127.0.0.1:$PORT" --token-file "$T/token" "$@"; }
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 100 --reason "stage 1"
expect_exit 0 gl grant upstage --phase p1 --gpu B200 --gpu-hours 50 --reason "stage 1"
expect_exit 0 gl clock set 2025-09-01
expect_exit 0 gl transfer lg upstage --phase p1 --gpu B200 --gpu-hours 10 --reason "swap"
expect_exit 0 remote --json quota --at 2025-08-20
expect_eq "$(json_eval '[(q["consortium"], q["granted_gpu_seconds"]) for q in d["quota"]]')" \
	"[[\"lg\",$((100 * H))]]" "lg sees its own row only"
expect_exit 0 remote --json quota --at 2025-09-01
expect_eq "$(json_get '["quota"][0]["granted_gpu_seconds"]')" $((90 * H)) "lg after its transfer out"
expect_exit 1 remote --json quota upstage --at 2025-09-01
expect_eq "$(json_get '["error"]["code"]')" not_found "another consortium's rows"
expect_exit 77 remote --json budget
expect_exit 77 remote --json transfer lg upstage --phase p1 --gpu B200 --gpu-hours 1 --reason "mine"
stop_daemon
pass
