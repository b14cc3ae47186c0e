#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The program's reported history on the simulated clock, asserting exact
# GPU-seconds: phase-1 bookings, capacity refusals with the earliest start,
# caps, phase crossings, a late joiner, two teams cut at the 1st evaluation,
# phase-end expiry, the lease pool ending mid-phase, cancel and release, the
# calendar, and the same books after a restart. Then the whole history again
# with the ledger operations of issue 14, as tools/demo.sh tells it.
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
expect_eq "$(json_get '["journal"]["seq"]')" 9 "refusals wrote nothing (seq 1: the config entry)"

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

# --- the whole history with the ledger operations (issue 14) ---------------------
# As tools/demo.sh tells it: the program as first configured (the 1st
# evaluation planned for 2025-12-26, no Motif), the evaluation that slips
# three weeks (phase move), two teams cut, the repechage that selects nobody
# and then Motif (a config entry), the unfilled slot's leftover from the
# reserve, SK Telecom not eligible until H2, the lease pool cut on
# 2026-06-30, the budget and lg's balances at a date in phase 1.
SOCK=$T/sock-story
DB=$T/db-story
CFG=$T/story.yaml
python3 - "$EXAMPLE_CONFIG" "$CFG" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8").read()
text = text.replace("end: 2026-01-16}", "end: 2025-12-26}", 1)
text = text.replace("start: 2026-01-16, end: 2026-08-01}", "start: 2025-12-26, end: 2026-08-01}", 1)
text = text.replace("    motif: {groups: [team-motif]}\n", "")
open(sys.argv[2], "w", encoding="utf-8").write(text[:text.index("  - id: motif")])
PY
hup() {	# SIGHUP, and wait for the reload's log line
	local n
	n=$(grep -c '"event":"config_reloaded"' "$LOG" || true)
	kill -HUP "$DAEMON_PID"
	for _ in $(seq 100); do
		[[ $(grep -c '"event":"config_reloaded"' "$LOG" || true) -gt $n ]] && return 0
		sleep 0.1
	done
	fail "no config_reloaded after SIGHUP"
}
# budget_of PHASE GPU: the budget row as "procured granted committed reserve", in GPU-hours
budget_of() {
	expect_exit 0 gl --json budget --phase "$1" >/dev/null
	json_eval '" ".join(str(r[k] // 3600) for r in d["budget"] if r["gpu"] == "'"$2"'" for k in ("procured_gpu_seconds", "granted_gpu_seconds", "committed_gpu_seconds", "reserve_gpu_seconds"))'
}
start_daemon "$CFG"
expect_eq "$(budget_of p1 B200)" "3538944 0 0 3538944" "p1 B200: 1024 leased GPUs x 144 days"
for c in lg upstage; do
	expect_exit 0 gl grant $c --phase p1 --gpu B200 --gpu-hours 1769472 --max-gpus 512 --reason "1st stage: 512 B200"
done
for c in naver ncai; do
	expect_exit 0 gl grant $c --phase p1 --gpu H200 --gpu-hours 1769472 --max-gpus 512 --reason "1st stage: 512 H200"
done
expect_exit 1 gl --json grant skt --phase p1 --gpu H100 --gpu-hours 1000 --reason "1st stage"
expect_eq "$(json_get '["error"]["code"]')" not_eligible "SK Telecom leases GPUs: none for it until H2"
expect_exit 1 gl --json grant naver --phase p1 --gpu B200 --gpu-hours 1000 --reason "more"
expect_eq "$(json_eval '[d["error"]["code"], d["error"]["details"]["procured_gpu_seconds"], d["error"]["details"]["granted_gpu_seconds"]]')" \
	"[\"oversubscribed\",$((3538944 * H)),$((3538944 * H))]" "the leased B200s are all granted"

expect_exit 0 gl clock set 2025-09-09T09:00
for c in lg upstage; do
	expect_exit 0 gl --json allocate $c --gpus 512 --pool skt-b200 --start 2025-09-09T09:00 --end 2025-12-26
	expect_eq "$(json_get '["allocation"]["cost_gpu_seconds"]')" $((512 * 2583 * H)) "$c: 512 B200 to the planned evaluation"
done
for c in naver ncai; do
	expect_exit 0 gl allocate $c --gpus 512 --pool ncloud-h200 --start 2025-09-09T09:00 --end 2025-12-26
done
expect_exit 1 gl --json allocate lg --gpus 64 --pool skt-b200 --start 2025-12-20 --end 2026-01-05
expect_eq "$(json_get '["error"]["code"]')" crosses_phase "phase 1 ends 2025-12-26 as planned"

# the evaluation slips three weeks
expect_exit 0 gl clock set 2025-12-01T09:00
expect_exit 0 gl phase move p1 --end 2026-01-16 --reason "1st evaluation moved to 2026-01-15"
expect_exit 0 gl --json program
expect_eq "$(json_eval '[(p["id"], p["start"], p["end"]) for p in d["phases"][:2]]')" \
	'[["p1","2025-08-04T00:00:00+09:00","2026-01-16T00:00:00+09:00"],["p2","2026-01-16T00:00:00+09:00","2026-08-01T00:00:00+09:00"]]' \
	"the moved phases"
expect_eq "$(budget_of p1 B200)" "4055040 3538944 2644992 516096" "p1 B200 three weeks longer"
for c in lg upstage; do
	expect_exit 0 gl grant $c --phase p1 --gpu B200 --gpu-hours 258048 --reason "three more weeks"
done
for c in naver ncai; do
	expect_exit 0 gl grant $c --phase p1 --gpu H200 --gpu-hours 258048 --reason "three more weeks"
done
for a in A-000001 A-000002 A-000003 A-000004; do
	expect_exit 0 gl --json modify $a --end 2026-01-15 --reason "evaluation moved"
	expect_eq "$(json_get '["allocation"]["cost_gpu_seconds"]')" $((512 * 3063 * H)) "$a to 2026-01-15"
done

# two teams cut where one was planned; phase 1 ends
expect_exit 0 gl clock set 2026-01-15T18:00
expect_exit 0 gl eliminate naver --effective 2026-01-15T18:00 --reason "1st evaluation: originality test"
expect_exit 0 gl eliminate ncai --effective 2026-01-15T18:00 --reason "1st evaluation: lowest score"
expect_exit 0 gl clock set 2026-01-16T00:00
expect_exit 0 gl --json quota --phase p1
expect_eq "$(json_eval '[(q["consortium"], q["granted_gpu_seconds"], q["committed_gpu_seconds"], q["expired_gpu_seconds"], q["available_gpu_seconds"]) for q in d["quota"]]')" \
	"[[\"lg\",$((2027520 * H)),$((1568256 * H)),$((459264 * H)),0],[\"upstage\",$((2027520 * H)),$((1568256 * H)),$((459264 * H)),0],[\"naver\",$((2027520 * H)),$((1568256 * H)),$((459264 * H)),0],[\"ncai\",$((2027520 * H)),$((1568256 * H)),$((459264 * H)),0]]" \
	"phase 1 at its end: the rest expired"

# phase 2: SK Telecom still unsupported
for c in lg upstage; do
	expect_exit 0 gl grant $c --phase p2 --gpu B200 --gpu-hours 2039808 --max-gpus 512 --reason "2nd stage"
done
expect_exit 1 gl --json grant skt --phase p2 --gpu B200 --gpu-hours 1000 --reason "2nd stage"
expect_eq "$(json_get '["error"]["details"]["eligible_from"]')" 2026-07-01T00:00:00+09:00 "skt eligible from H2"
expect_exit 0 gl allocate lg --gpus 512 --pool skt-b200 --start 2026-01-20 --end 2026-07-01
expect_exit 0 gl allocate upstage --gpus 256 --pool skt-b200 --start 2026-01-20 --end 2026-07-01

# the repechage selects nobody: the same structure, no config entry; then Motif, journaled
seq_of() { gl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["journal"]["seq"])'; }
expect_exit 0 gl clock set 2026-02-12T18:00
before=$(seq_of)
printf '# 2026-02-12: the repechage call closed; nobody selected\n' >>"$CFG"
hup
expect_eq "$(seq_of)" "$before" "a repechage that selects nobody changes no structure"
expect_exit 0 gl clock set 2026-02-20T10:00
python3 - "$EXAMPLE_CONFIG" "$CFG" <<'PY'
import sys
example = open(sys.argv[1], encoding="utf-8").read()
text = open(sys.argv[2], encoding="utf-8").read()
text = text.replace("    ncai: {groups: [team-ncai]}\n",
                    "    ncai: {groups: [team-ncai]}\n    motif: {groups: [team-motif]}\n")
open(sys.argv[2], "w", encoding="utf-8").write(text + example[example.index("  - id: motif"):])
PY
hup
expect_exit 0 gl --json journal --limit 1
expect_eq "$(json_eval '[d["entries"][0]["kind"], d["entries"][0]["reason"], d["entries"][0]["seq"]]')" \
	"[\"config\",\"consortia added: motif\",$((before + 1))]" "Motif's admission in the journal"

# the unfilled slot's leftover, from the reserve, to the late joiner
expect_eq "$(budget_of p2 B200)" "10150656 4079616 2985984 6071040" "p2 B200 before the transfer"
expect_exit 0 gl --json transfer reserve motif --phase p2 --gpu B200 --gpu-hours 2414592 --reason "the unfilled slot"
expect_eq "$(json_get '["to"]["granted_gpu_seconds"]')" $((768 * 3144 * H)) "768 B200 from 2026-02-20 to the lease's end"
expect_exit 0 gl --json allocate motif --gpus 256 --pool skt-b200 --start 2026-02-20T12:00 --end 2026-07-01
expect_eq "$(json_get '["allocation"]["cost_gpu_seconds"]')" $((256 * 3132 * H)) "motif's booking"
expect_exit 1 gl --json grant lg --phase p2 --gpu H200 --gpu-hours 100000000 --reason "a typo"
expect_eq "$(json_get '["error"]["code"]')" oversubscribed "100,000,000 GPU-hours no pool provides"

# the lease ends 2026-06-30, a day early
expect_exit 0 gl clock set 2026-06-01T09:00
expect_exit 0 gl --json pool cut skt-b200 --at 2026-06-30 --reason "lease ends 2026-06-30"
expect_eq "$(budget_of p2 B200)" "10126080 6494208 3763200 3631872" "p2 B200 after the cut"
expect_exit 0 gl --json allocate motif --gpus 512 --gpu B200 --start 2026-06-20 --hours 240 --earliest
expect_eq "$(json_eval '[d["allocation"]["pool"], d["allocation"]["start"], d["allocation"]["cost_gpu_seconds"]]')" \
	"[\"nhn-b200\",\"2026-07-01T00:00:00+09:00\",$((512 * 240 * H))]" "onto the government B200s"
expect_exit 0 gl --json quota motif --phase p2
expect_eq "$(json_get '["quota"][0]["committed_gpu_seconds"]')" $(((256 * 3132 - 256 * 24 + 512 * 240) * H)) \
	"motif: its booking cut at the lease's end, the next one on the new pool"

# H2 2026: SK Telecom eligible
expect_exit 0 gl clock set 2026-07-01T09:00
expect_exit 0 gl grant skt --phase p2 --gpu B200 --gpu-hours 95232 --reason "H2: 128 B200 for a month"
expect_exit 0 gl clock set 2026-08-01T00:00
expect_eq "$(budget_of p2 B200)" "10126080 6589440 3886080 3536640" "p2 B200 at its end"

# what lg had on 2025-12-01, recomputed from the journal
expect_exit 0 gl --json quota lg --at 2025-12-01T00:00
expect_eq "$(json_eval '[(q["phase"], q["granted_gpu_seconds"], q["committed_gpu_seconds"], q["consumed_gpu_seconds"]) for q in d["quota"]]')" \
	"[[\"p1\",$((1769472 * H)),$((1322496 * H)),$((512 * 1983 * H))]]" "lg on 2025-12-01"
expect_exit 0 gl --json verify
expect_eq "$(json_get '["ok"]')" true "verify of the whole history"
stop_daemon
pass
