#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo: replays the reported history of the Sovereign AI Foundation
# Model program (../shared/PROGRAM.md) through the real CLI against the real
# daemon on a simulated clock, with the ledger operations of issue 14: the
# evaluation that slipped three weeks (phase move), the two teams cut, the
# repechage that selected nobody and then Motif (a journaled config
# change), the unfilled slot's leftover transferred from the reserve, SK
# Telecom ineligible until H2, the lease pool cut on 2026-06-30, the budget
# and the balances at a date in phase 1. Leaves the daemon running. Called
# by `tools/dev demo` after the build.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
STATE=var/demo
SOCK=$STATE/gpuledger.sock
GL=(build/tools/gpuledger --socket "$SOCK")

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ gpuledger %s\n' "$*"; "${GL[@]}" "$@"; }
# refused CMD...: a command the ledger must refuse (exit 1); shows the error.
refused() {
	printf '$ gpuledger %s\n' "$*"
	if "${GL[@]}" "$@"; then
		echo "demo: expected a refusal" >&2
		exit 1
	fi
}

if [[ -S $SOCK ]] && "${GL[@]}" status >/dev/null 2>&1; then
	echo "demo: a demo daemon is already running on $SOCK; stop it first:" >&2
	echo "      kill \$(cat $STATE/gpuledgerd.pid)" >&2
	exit 1
fi
rm -rf "$STATE"
mkdir -p "$STATE"
# The program as it stood on 2025-08-04: the 1st evaluation planned for late
# December (phase 1 ends 2025-12-26), five teams and no Motif yet. The
# example config is the program as it ended up; this is its first version.
CFG=$STATE/config.yaml
python3 - config/example.yaml "$CFG" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8").read()
text = text.replace("end: 2026-01-16}", "end: 2025-12-26}", 1)
text = text.replace("start: 2026-01-16, end: 2026-08-01}", "start: 2025-12-26, end: 2026-08-01}", 1)
text = text.replace("    motif: {groups: [team-motif]}\n", "")
text = text[:text.index("  - id: motif")]
open(sys.argv[2], "w", encoding="utf-8").write(text)
PY
build/daemon/gpuledgerd --config "$CFG" --database "$STATE/gpuledger.db" \
	--init >>"$STATE/gpuledgerd.out"
build/daemon/gpuledgerd --config "$CFG" --socket "$SOCK" \
	--database "$STATE/gpuledger.db" --log "$STATE/gpuledgerd.log" \
	--clock 2025-08-04T09:00 </dev/null >>"$STATE/gpuledgerd.out" 2>&1 &
echo $! >"$STATE/gpuledgerd.pid"
for _ in $(seq 100); do
	"${GL[@]}" status >/dev/null 2>&1 && break
	sleep 0.1
done
"${GL[@]}" status >/dev/null
# hup: SIGHUP the demo daemon and wait until it has answered it
hup() {
	local n
	n=$(grep -c '"event":"config_reloaded"' "$STATE/gpuledgerd.log" || true)
	kill -HUP "$(cat "$STATE/gpuledgerd.pid")"
	for _ in $(seq 100); do
		[[ $(grep -c '"event":"config_reloaded"' "$STATE/gpuledgerd.log" || true) -gt $n ]] && return 0
		sleep 0.1
	done
	echo "demo: the daemon did not reload" >&2
	exit 1
}

step "2025-08-04: five consortia selected; the program as first configured"
run program
run journal --limit 1
run budget --phase p1

step "Phase 1 grants: 512 GPUs per team until the evaluation planned for 2025-12-26"
# 512 GPUs x 144 days = 1,769,472 GPU-hours; two B200 teams fill the lease
run grant lg      --phase p1 --gpu B200 --gpu-hours 1769472 --max-gpus 512 --reason "1st stage: 512 B200"
run grant upstage --phase p1 --gpu B200 --gpu-hours 1769472 --max-gpus 512 --reason "1st stage: 512 B200"
run grant naver   --phase p1 --gpu H200 --gpu-hours 1769472 --max-gpus 512 --reason "1st stage: 512 H200"
run grant ncai    --phase p1 --gpu H200 --gpu-hours 1769472 --max-gpus 512 --reason "1st stage: 512 H200"
# SK Telecom leases its B200s to the program: no GPU support until H2 2026
refused grant skt --phase p1 --gpu H100 --gpu-hours 1000 --reason "1st stage"
# the leased B200s are all granted: more would be GPU-hours that do not exist
refused grant naver --phase p1 --gpu B200 --gpu-hours 1000 --reason "more"

step "Kick-off 2025-09-09: phase-1 allocations"
run clock set 2025-09-09T09:00
run allocate lg      --gpus 512 --pool skt-b200    --start 2025-09-09T09:00 --end 2025-12-26 --note "LG EXAONE pre-training"
run allocate upstage --gpus 512 --pool skt-b200    --start 2025-09-09T09:00 --end 2025-12-26 --note "Solar pre-training"
run allocate naver   --gpus 512 --pool ncloud-h200 --start 2025-09-09T09:00 --end 2025-12-26
run allocate ncai    --gpus 512 --pool ncloud-h200 --start 2025-09-09T09:00 --end 2025-12-26
refused allocate ncai --gpus 8 --pool ncloud-h200 --start 2025-10-01 --hours 24
refused allocate lg --gpus 64 --pool skt-b200 --start 2025-12-20 --end 2026-01-05

step "2025-12-01: the 1st evaluation slips three weeks, to 2026-01-15 (GPU setup was slow)"
run clock set 2025-12-01T09:00
run phase move p1 --end 2026-01-16 --reason "1st evaluation moved to 2026-01-15"
run program
run budget --phase p1
# the three extra weeks: 512 GPUs x 21 days = 258,048 GPU-hours each, and the bookings extended
run grant lg      --phase p1 --gpu B200 --gpu-hours 258048 --reason "1st stage: three more weeks"
run grant upstage --phase p1 --gpu B200 --gpu-hours 258048 --reason "1st stage: three more weeks"
run grant naver   --phase p1 --gpu H200 --gpu-hours 258048 --reason "1st stage: three more weeks"
run grant ncai    --phase p1 --gpu H200 --gpu-hours 258048 --reason "1st stage: three more weeks"
run modify A-000001 --end 2026-01-15 --reason "evaluation moved"
run modify A-000002 --end 2026-01-15 --reason "evaluation moved"
run modify A-000003 --end 2026-01-15 --reason "evaluation moved"
run modify A-000004 --end 2026-01-15 --reason "evaluation moved"

step "2026-01-15: two teams cut where one was planned"
run clock set 2026-01-15T18:00
run eliminate naver --effective 2026-01-15T18:00 --reason "1st evaluation: originality test"
run eliminate ncai  --effective 2026-01-15T18:00 --reason "1st evaluation: lowest score"

step "2026-01-16: phase 1 ends, its unused quota expires"
run clock set 2026-01-16T00:00
run quota --phase p1

step "Phase 2 grants (SK Telecom still unsupported)"
run grant lg      --phase p2 --gpu B200 --gpu-hours 2039808 --max-gpus 512 --reason "2nd stage: 512 B200 until the lease ends"
run grant upstage --phase p2 --gpu B200 --gpu-hours 2039808 --max-gpus 512 --reason "2nd stage: 512 B200 until the lease ends"
run grant lg      --phase p2 --gpu H200 --gpu-hours 1105920 --reason "2nd stage: 256 H200"
refused grant skt --phase p2 --gpu B200 --gpu-hours 1000 --reason "2nd stage"
run allocate lg      --gpus 512 --pool skt-b200 --start 2026-01-20 --end 2026-07-01 --note "EXAONE 2nd stage"
run allocate upstage --gpus 256 --pool skt-b200 --start 2026-01-20 --end 2026-07-01

step "Repechage call 2026-01-23 to 2026-02-12: the ministry selects nobody"
run clock set 2026-02-12T18:00
printf '# 2026-02-12: the repechage call closed; nobody selected\n' >>"$CFG"
hup
# the structure did not change: the journal records no config entry
run journal --limit 3

step "2026-02-20: Motif Technologies selected after all (a config change, journaled)"
run clock set 2026-02-20T10:00
python3 - config/example.yaml "$CFG" <<'PY'
import sys
example = open(sys.argv[1], encoding="utf-8").read()
text = open(sys.argv[2], encoding="utf-8").read()
text = text.replace("    ncai: {groups: [team-ncai]}\n",
                    "    ncai: {groups: [team-ncai]}\n    motif: {groups: [team-motif]}\n")
open(sys.argv[2], "w", encoding="utf-8").write(text + example[example.index("  - id: motif"):])
PY
hup
run journal --limit 1
run budget --phase p2
# the unfilled slot's leftover goes to the late joiner: 768 B200 from 2026-02-20 to the lease's end
run transfer reserve motif --phase p2 --gpu B200 --gpu-hours 2414592 --reason "the unfilled slot: 768 B200 for Motif"
run grant motif --phase p2 --gpu B200 --gpu-hours 0 --max-gpus 768 --reason "repechage: 768 B200"
run allocate motif --gpus 256 --pool skt-b200 --start 2026-02-20T12:00 --end 2026-07-01
# the issue's alarm: GPU-hours granted that no pool provides are refused
refused grant lg --phase p2 --gpu H200 --gpu-hours 100000000 --reason "a typo"

step "The SK Telecom lease ends 2026-06-30, a day early: the pool is cut"
run clock set 2026-06-01T09:00
run pool cut skt-b200 --at 2026-06-30 --reason "lease ends 2026-06-30"
run allocations --pool skt-b200
run allocate motif --gpus 512 --gpu B200 --start 2026-06-20 --hours 240 --earliest --note "moves to the government B200s"

step "Calendars: the SK Telecom lease ends, the government B200s start 2026-07-01"
run calendar skt-b200 --from 2026-06-26 --to 2026-07-04
run calendar nhn-b200 --from 2026-06-29 --to 2026-07-13

step "H2 2026: SK Telecom eligible from 2026-07-01"
run clock set 2026-07-01T09:00
run grant skt --phase p2 --gpu B200 --gpu-hours 95232 --reason "H2: 128 B200 for a month"

step "2026-08-01: phase 2 ends"
run clock set 2026-08-01T00:00
run quota
run budget

step "What lg had on 2025-12-01, in phase 1 (recomputed from the journal)"
run quota lg --at 2025-12-01T00:00

step "Integrity"
run verify
run journal --consortium ncai

echo
echo "The demo daemon is still running (pid $(cat "$STATE/gpuledgerd.pid"), simulated clock)."
echo "Query it:   build/tools/gpuledger --socket $SOCK quota"
echo "Stop it:    kill \$(cat $STATE/gpuledgerd.pid)"
