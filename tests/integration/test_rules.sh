#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Rules 5-8 at their edges, through the real daemon and CLI on the simulated
# clock: a cancel at the exact start instant (rule 7); a future elimination
# shown as `active` with `eliminated_from` and its cut allocation `active`
# until it takes effect, and one recorded late, up to
# program.retroactive_days back (rule 8); a reinstatement decided before
# the elimination takes effect, which leaves the stretch before it whole
# (rules 5, 8); --earliest going on into the next phase (rule 6); and all
# of it the same after a restart.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

H=3600
start_daemon   # 2025-08-04T09:00, the example program

# --- rule 7: an allocation that starts exactly now can be cancelled ---------
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 1000 --reason "stage 1"
expect_exit 0 gl --json allocate lg --gpus 8 --pool skt-b200 --start 2025-08-05T00:00 --hours 2
expect_eq "$(json_get '["allocation"]["id"]')" A-000001 "id"
expect_exit 0 gl clock set 2025-08-05T00:00
expect_exit 65 gl --json release A-000001
expect_eq "$(json_get '["error"]["code"]')" invalid_window "release at the start"
expect_contains "cancel the reservation instead"
expect_exit 0 gl --json cancel A-000001 --reason "not needed"
expect_eq "$(json_get '["allocation"]["state"]')" cancelled "cancelled at its start"
expect_exit 0 gl --json quota lg --phase p1 --gpu B200
expect_eq "$(json_get '["quota"][0]["committed_gpu_seconds"]')" 0 "full refund"

# --- rule 8: a future elimination -------------------------------------------
expect_exit 0 gl grant naver --phase p1 --gpu H200 --gpu-hours 10000 --reason "stage 1"
expect_exit 0 gl --json allocate naver --gpus 8 --pool ncloud-h200 --start 2025-08-05T00:00 --end 2025-08-10T00:00
expect_eq "$(json_get '["allocation"]["id"]')" A-000002 "naver's run"
expect_exit 0 gl --json eliminate naver --effective 2025-08-07T00:00 --reason "evaluation"
expect_eq "$(json_get '["cut"]')" '["A-000002"]' "cut at T"
expect_eq "$(json_get '["consortium"]["status"]')" active "active until T"
expect_eq "$(json_get '["consortium"]["eliminated_from"]')" 2025-08-07T00:00:00+09:00 "eliminated_from"
expect_exit 0 gl --json show A-000002
expect_eq "$(json_get '["allocation"]["state"]')" active "the cut allocation runs until T"
expect_eq "$(json_get '["allocation"]["end"]')" 2025-08-07T00:00:00+09:00 "its end is T"
expect_exit 0 gl --json allocations --consortium naver --state active
expect_eq "$(json_eval '[a["id"] for a in d["allocations"]]')" '["A-000002"]' "listed as active"
expect_exit 0 gl program
expect_match '^naver .*active \(eliminated from 2025-08-07T00:00:00\+09:00\)'
# still active until T: it may book up to T
expect_exit 0 gl --json allocate naver --gpus 8 --pool ncloud-h200 --start 2025-08-06T00:00 --end 2025-08-07T00:00
expect_exit 1 gl --json allocate naver --gpus 8 --pool ncloud-h200 --start 2025-08-06T00:00 --end 2025-08-07T01:00
expect_eq "$(json_get '["error"]["code"]')" not_active "not past T"

# --- rules 5, 8: reinstated before the elimination takes effect -------------
expect_exit 0 gl grant upstage --phase p1 --gpu H200 --gpu-hours 1000 --reason "stage 1"
expect_exit 0 gl eliminate upstage --effective 2025-08-20T00:00 --reason "evaluation"
expect_contains "eliminated upstage effective 2025-08-20T00:00:00+09:00"
expect_exit 0 gl --json reinstate upstage --effective 2025-09-01T00:00 --reason "repechage"
expect_eq "$(json_get '["consortium"]["status"]')" active "reinstated ahead"
expect_exit 0 gl grant upstage --phase p1 --gpu H200 --gpu-hours 1000 --reason "after the repechage"
expect_exit 0 gl --json allocate upstage --gpus 8 --pool ncloud-h200 --start 2025-08-10T00:00 --hours 24
expect_eq "$(json_get '["allocation"]["state"]')" reserved "the stretch before the elimination stays whole"
expect_exit 1 gl --json allocate upstage --gpus 8 --pool ncloud-h200 --start 2025-08-25T00:00 --hours 24
expect_eq "$(json_get '["error"]["code"]')" not_active "out between T and T2"
expect_eq "$(json_get '["error"]["details"]["active_from"]')" 2025-09-01T00:00:00+09:00 "active again from T2"
expect_exit 0 gl --json allocate upstage --gpus 8 --pool ncloud-h200 --start 2025-08-25T00:00 --hours 24 --earliest
expect_eq "$(json_get '["allocation"]["start"]')" 2025-09-01T00:00:00+09:00 "--earliest skips the span"

# --- rule 8: the elimination takes effect ------------------------------------
expect_exit 0 gl clock set 2025-08-07T00:00
expect_exit 0 gl --json show A-000002
expect_eq "$(json_get '["allocation"]["state"]')" revoked "revoked from T"
expect_eq "$(json_get '["allocation"]["cost_gpu_seconds"]')" $((8 * 48 * H)) "cost up to T"
expect_exit 0 gl --json program
expect_eq "$(json_eval '[c["status"] for c in d["consortia"] if c["id"] == "naver"][0]')" eliminated "eliminated from T"
expect_eq "$(json_eval '[c["since"] for c in d["consortia"] if c["id"] == "naver"][0]')" 2025-08-07T00:00:00+09:00 "since T"

# --- rule 8: an elimination recorded late (program.retroactive_days: 7) -----
expect_exit 0 gl grant ncai --phase p1 --gpu H200 --gpu-hours 1000 --reason "stage 1"
expect_exit 0 gl --json allocate ncai --gpus 8 --pool ncloud-h200 --start 2025-08-07T00:00 --hours 48
ncai_id=$(json_get '["allocation"]["id"]')
expect_exit 0 gl clock advance 1d
expect_exit 65 gl --json eliminate ncai --effective 2025-07-31T23:59 --reason "too late"
expect_eq "$(json_get '["error"]["code"]')" invalid_window "beyond retroactive_days"
expect_contains "more than 7 days in the past"
expect_exit 0 gl --json eliminate ncai --effective 2025-08-07T12:00 --reason "recorded late"
expect_eq "$(json_get '["consortium"]["status"]')" eliminated "eliminated since T in the past"
expect_eq "$(json_get '["consortium"]["since"]')" 2025-08-07T12:00:00+09:00 "status counts from T"
expect_eq "$(json_get '["consortium"]["designation_until"]')" 2026-02-03T12:00:00+09:00 "designation counts from T"
expect_exit 0 gl --json show "$ncai_id"
expect_eq "$(json_get '["allocation"]["end"]')" 2025-08-08T00:00:00+09:00 "cut at now, not at T"
expect_eq "$(json_get '["allocation"]["cost_gpu_seconds"]')" $((8 * 24 * H)) "what ran was used"

# --- rule 6: --earliest goes on into the next phase --------------------------
expect_exit 1 gl --json allocate lg --gpus 8 --pool ncloud-h200 --start 2026-01-15T00:00 --hours 48 --earliest
expect_eq "$(json_get '["error"]["code"]')" crosses_phase "no room left in p1, no quota in p2"
expect_contains "no later phase takes it either"
expect_exit 0 gl grant lg --phase p2 --gpu H200 --gpu-hours 1000 --reason "stage 2"
expect_exit 0 gl --json allocate lg --gpus 8 --gpu H200 --start 2026-01-15T00:00 --hours 48 --earliest
expect_eq "$(json_get '["allocation"]["start"]')" 2026-01-16T00:00:00+09:00 "lands at p2's start"
expect_eq "$(json_get '["allocation"]["phase"]')" p2 "charged to p2"
expect_eq "$(json_get '["allocation"]["pool"]')" ncloud-h200 "the first H200 pool"
expect_exit 0 gl --json quota lg --phase p2 --gpu H200
expect_eq "$(json_get '["quota"][0]["committed_gpu_seconds"]')" $((8 * 48 * H)) "p2's quota pays"

# the same books after a restart
expect_exit 0 gl verify
expect_exit 0 gl --json program
before=$OUT
stop_daemon
CLOCK=2025-08-08T00:00 start_daemon
expect_exit 0 gl --json program
expect_eq "$OUT" "$before" "program after restart"
expect_exit 1 gl --json allocate upstage --gpus 8 --pool ncloud-h200 --start 2025-08-25T00:00 --hours 24
expect_eq "$(json_get '["error"]["code"]')" not_active "the span survives the restart"
expect_exit 0 gl --json allocate upstage --gpus 8 --pool ncloud-h200 --start 2025-08-11T00:00 --hours 24
expect_exit 0 gl verify
stop_daemon
pass
