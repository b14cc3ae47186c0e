#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The program's reported history on the simulated clock, asserting exact
# GPU-seconds: phase-1 bookings, capacity refusals with the earliest start,
# caps, phase crossings, a late joiner, two teams cut at the 1st evaluation,
# phase-end expiry, the lease pool ending mid-phase, cancel and release, the
# calendar, and the same books after a restart.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

H=3600
start_daemon

expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 1843200 --max-gpus 512 --reason "stage 1"
expect_exit 0 gl grant upstage --phase p1 --gpu B200 --gpu-hours 1843200 --reason "stage 1"
expect_exit 0 gl grant naver --phase p1 --gpu H200 --gpu-hours 1843200 --max-gpus 512 --reason "stage 1"

expect_exit 0 gl clock set 2025-09-09T09:00
expect_exit 0 gl --json allocate lg --gpus 512 --pool skt-b200 --start 2025-09-09T09:00 --end 2026-01-15T00:00
expect_eq "$(json_get '["allocation"]["id"]')" A-000001 "id"
expect_eq "$(json_get '["allocation"]["state"]')" active "state"
expect_eq "$(json_get '["allocation"]["phase"]')" p1 "phase"
expect_eq "$(json_get '["allocation"]["cost_gpu_seconds"]')" $((512 * 3063 * H)) "cost"
expect_exit 0 gl --json allocate naver --gpus 512 --pool ncloud-h200 --start 2025-09-09T09:00 --end 2026-01-16T00:00
expect_eq "$(json_get '["allocation"]["cost_gpu_seconds"]')" $((512 * 3087 * H)) "naver cost"

# rule 2: the pool is half booked; 600 more fit only once lg's run ends
expect_exit 1 gl --json allocate upstage --gpus 600 --pool skt-b200 --start 2025-10-01 --hours 24
expect_eq "$(json_get '["error"]["code"]')" capacity_unavailable "code"
expect_eq "$(json_get '["error"]["details"]["earliest_start"]')" 2026-01-15T00:00:00+09:00 "earliest_start"
expect_exit 0 gl --json allocate upstage --gpus 600 --pool skt-b200 --start 2025-10-01 --hours 24 --earliest
expect_eq "$(json_get '["allocation"]["start"]')" 2026-01-15T00:00:00+09:00 "earliest booked start"
expect_eq "$(json_get '["allocation"]["end"]')" 2026-01-16T00:00:00+09:00 "earliest booked end"
# rule 4: lg's cap
expect_exit 1 gl --json allocate lg --gpus 8 --pool skt-b200 --start 2025-10-01 --hours 1
expect_eq "$(json_get '["error"]["code"]')" cap_exceeded "cap code"
# rule 1
expect_exit 1 gl --json allocate lg --gpus 8 --pool skt-b200 --start 2026-01-10 --end 2026-01-20
expect_eq "$(json_get '["error"]["code"]')" crosses_phase "crosses code"
expect_contains "2026-01-16T00:00:00+09:00"
# rule 3
expect_exit 1 gl --json allocate naver --gpus 512 --pool ncloud-h200 --start 2026-01-16 --hours 1
expect_eq "$(json_get '["error"]["code"]')" quota_exceeded "no p2 quota yet"
expect_exit 1 gl --json allocate naver --gpus 1 --pool ncloud-h200 --start 2025-10-01 --hours 300000
expect_eq "$(json_get '["error"]["code"]')" crosses_phase "longer than the phase"
expect_exit 1 gl --json allocate upstage --gpus 400 --pool skt-b200 --start 2025-09-10 --hours 5000
expect_eq "$(json_get '["error"]["code"]')" crosses_phase "too long"
expect_exit 1 gl --json allocate upstage --gpus 800 --pool skt-b200 --start 2025-09-10 --hours 3000
expect_eq "$(json_get '["error"]["code"]')" quota_exceeded "quota code"
expect_eq "$(json_get '["error"]["details"]["needed_gpu_seconds"]')" $((800 * 3000 * H)) "needed"
expect_eq "$(json_get '["error"]["details"]["available_gpu_seconds"]')" $(((1843200 - 600 * 24) * H)) "available"
# rule 5: the late joiner
expect_exit 1 gl --json allocate motif --gpus 8 --pool skt-b200 --start 2025-10-01 --hours 1
expect_eq "$(json_get '["error"]["code"]')" not_active "not active before joining"
# bad input
expect_exit 65 gl allocate lg --gpus 8 --pool skt-b200 --start 2025-13-01 --hours 1
expect_exit 65 gl allocate lg --gpus 8 --pool skt-b200 --start 2025-10-02 --end 2025-10-01
expect_contains invalid_window
expect_exit 1 gl allocate lg --gpus 8 --pool nope --start 2025-10-02 --hours 1
expect_exit 0 gl --json status
expect_eq "$(json_get '["journal"]["seq"]')" 8 "refusals wrote nothing"

# the 1st evaluation: naver is cut at 18:00, its last 6 hours refunded
expect_exit 0 gl clock set 2026-01-15T18:00
expect_exit 0 gl --json eliminate naver --effective 2026-01-15T18:00 --reason "originality"
expect_eq "$(json_get '["cut"]')" '["A-000002"]' "cut"
expect_eq "$(json_get '["consortium"]["designation_until"]')" 2026-07-14T18:00:00+09:00 "designation"
expect_exit 0 gl --json show A-000002
expect_eq "$(json_get '["allocation"]["state"]')" revoked "cut state"
expect_eq "$(json_get '["allocation"]["cost_gpu_seconds"]')" $((512 * 3081 * H)) "cut cost"
expect_exit 1 gl --json grant naver --phase p2 --gpu H200 --gpu-hours 10 --reason x
expect_eq "$(json_get '["error"]["code"]')" not_active "no grants after elimination"

# rule 9: phase 1 ends, its unused quota expires
expect_exit 0 gl clock advance 6h
expect_exit 0 gl --json quota lg --phase p1
expect_eq "$(json_get '["quota"][0]["expired_gpu_seconds"]')" $(((1843200 - 512 * 3063) * H)) "lg expired"
expect_eq "$(json_get '["quota"][0]["available_gpu_seconds"]')" 0 "lg available"
expect_eq "$(json_get '["quota"][0]["consumed_gpu_seconds"]')" $((512 * 3063 * H)) "lg consumed"
expect_exit 0 gl --json quota naver
expect_eq "$(json_get '["quota"][0]["expired_gpu_seconds"]')" $(((1843200 - 512 * 3081) * H)) "naver expired"
expect_exit 0 gl --json journal --consortium lg
expect_eq "$(json_eval '[e["kind"] for e in d["entries"]]')" '["grant","cap","reserve","expire"]' "lg journal"

# phase 2: the lease pool ends 2026-07-01
expect_exit 0 gl grant lg --phase p2 --gpu B200 --gpu-hours 100000 --reason "stage 2"
expect_exit 1 gl --json allocate lg --gpus 64 --pool skt-b200 --start 2026-06-25 --end 2026-07-05
expect_eq "$(json_get '["error"]["code"]')" capacity_unavailable "lease end"
expect_eq "$(json_get '["error"]["details"]["earliest_start"]')" null "nothing fits later"
expect_exit 1 gl --json allocate lg --gpus 12 --pool nhn-b200 --start 2026-07-02 --hours 1
expect_eq "$(json_get '["error"]["code"]')" not_whole_nodes "whole nodes"

# rule 7: cancel and release
expect_exit 0 gl --json allocate lg --gpus 64 --pool skt-b200 --start 2026-03-01 --end 2026-03-11
expect_exit 0 gl --json cancel A-000004 --reason "plan changed"
expect_eq "$(json_get '["allocation"]["state"]')" cancelled "cancelled"
expect_exit 0 gl --json allocate lg --gpus 64 --pool skt-b200 --start 2026-02-01 --end 2026-02-11
expect_exit 0 gl clock set 2026-02-05T00:00
expect_exit 1 gl --json cancel A-000005
expect_eq "$(json_get '["error"]["code"]')" bad_state "cancel active"
expect_exit 0 gl --json release A-000005
expect_eq "$(json_get '["allocation"]["state"]')" released "released"
expect_eq "$(json_get '["allocation"]["cost_gpu_seconds"]')" $((64 * 96 * H)) "released cost"
expect_exit 0 gl --json quota lg --phase p2
expect_eq "$(json_get '["quota"][0]["committed_gpu_seconds"]')" $((64 * 96 * H)) "p2 committed"
expect_exit 0 gl --json allocations --consortium lg --state cancelled
expect_eq "$(json_eval '[a["id"] for a in d["allocations"]]')" '["A-000004"]' "state filter"

# calendar
expect_exit 0 gl --json allocate lg --gpus 128 --pool skt-b200 --start 2026-02-10 --end 2026-02-12
expect_exit 0 gl --json calendar skt-b200 --from 2026-02-09 --to 2026-02-13
expect_eq "$(json_eval '[s["booked"] for s in d["slots"]]')" '[0,128,128,0]' "calendar booked"
expect_eq "$(json_eval '[s["capacity"] for s in d["slots"]]')" '[1024,1024,1024,1024]' "calendar capacity"
expect_exit 0 gl calendar skt-b200 --from 2026-02-09 --to 2026-02-13
expect_contains "128/1024"
# the past too: lg's phase-1 run, long completed
expect_exit 0 gl --json calendar skt-b200 --from 2026-01-13 --to 2026-01-17
expect_eq "$(json_eval '[s["booked"] for s in d["slots"]]')" '[512,512,600,0]' "past calendar"

expect_exit 0 gl verify
expect_exit 0 gl --json quota
before=$OUT
stop_daemon
CLOCK=2026-02-05T00:00 start_daemon
expect_exit 0 gl --json quota
expect_eq "$OUT" "$before" "quota after restart"
expect_exit 0 gl verify
stop_daemon
pass
