#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo: replays the reported history of the Sovereign AI Foundation
# Model program (../shared/PROGRAM.md) through the real CLI against the real
# daemon on a simulated clock, prints the quota table and a calendar, and
# leaves the daemon running. Called by `tools/dev demo` after the build.
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
build/daemon/gpuledgerd --config config/example.yaml --database "$STATE/gpuledger.db" \
	--init >>"$STATE/gpuledgerd.out"
build/daemon/gpuledgerd --config config/example.yaml --socket "$SOCK" \
	--database "$STATE/gpuledger.db" --log "$STATE/gpuledgerd.log" \
	--clock 2025-08-04T09:00 </dev/null >>"$STATE/gpuledgerd.out" 2>&1 &
echo $! >"$STATE/gpuledgerd.pid"
for _ in $(seq 100); do
	"${GL[@]}" status >/dev/null 2>&1 && break
	sleep 0.1
done
"${GL[@]}" status >/dev/null

step "2025-08-04: five consortia selected; the program as configured"
run program

step "Phase 1 grants (SK Telecom leases its B200s to the program, so it gets none)"
# about 500 GPUs per team for the phase: 512 GPUs x 150 days = 1,843,200 GPU-hours
run grant lg      --phase p1 --gpu B200 --gpu-hours 1843200 --max-gpus 512 --reason "1st stage: 512 B200"
run grant upstage --phase p1 --gpu B200 --gpu-hours 1843200 --max-gpus 512 --reason "1st stage: 512 B200"
run grant naver   --phase p1 --gpu H200 --gpu-hours 1843200 --max-gpus 512 --reason "1st stage: 512 H200"
run grant ncai    --phase p1 --gpu H200 --gpu-hours 1843200 --max-gpus 512 --reason "1st stage: 512 H200"

step "Kick-off 2025-09-09: phase-1 allocations"
run clock set 2025-09-09T09:00
run allocate lg      --gpus 512 --pool skt-b200    --start 2025-09-09T09:00 --end 2026-01-15T00:00 --note "LG EXAONE pre-training"
run allocate upstage --gpus 512 --pool skt-b200    --start 2025-09-09T09:00 --end 2026-01-15T00:00 --note "Solar pre-training"
run allocate naver   --gpus 512 --pool ncloud-h200 --start 2025-09-09T09:00 --end 2026-01-16T00:00
run allocate ncai    --gpus 512 --pool ncloud-h200 --start 2025-09-09T09:00 --end 2026-01-16T00:00
refused allocate ncai --gpus 8 --pool ncloud-h200 --start 2025-10-01 --hours 24
refused allocate lg --gpus 64 --pool skt-b200 --start 2026-01-10 --end 2026-01-20

step "1st evaluation slips to 2026-01-15: two teams cut where one was planned"
run clock set 2026-01-15T18:00
run eliminate naver --effective 2026-01-15T18:00 --reason "1st evaluation: originality test"
run eliminate ncai  --effective 2026-01-15T18:00 --reason "1st evaluation: lowest score"

step "2026-01-16: phase 1 ends, its unused quota expires"
run clock advance 6h
run quota --phase p1

step "Phase 2 grants (SK Telecom still unsupported); repechage call opens"
run grant lg      --phase p2 --gpu B200 --gpu-hours 2211840 --max-gpus 512 --reason "2nd stage: 512 B200"
run grant upstage --phase p2 --gpu B200 --gpu-hours 2211840 --max-gpus 512 --reason "2nd stage: 512 B200"
run grant lg      --phase p2 --gpu H200 --gpu-hours 1105920 --reason "2nd stage: 256 H200"
run allocate lg --gpus 512 --pool skt-b200 --start 2026-01-20 --end 2026-07-01 --note "EXAONE 2nd stage"
run allocate upstage --gpus 256 --pool skt-b200 --start 2026-01-20 --end 2026-07-01

step "Late joiner: Motif Technologies selected 2026-02-20"
refused allocate motif --gpus 256 --pool skt-b200 --start 2026-02-01 --hours 24
run clock set 2026-02-20T10:00
run grant motif --phase p2 --gpu B200 --gpu-hours 958464 --max-gpus 768 --reason "repechage: same development time"
run allocate motif --gpus 256 --pool skt-b200 --start 2026-02-20T12:00 --end 2026-07-01

step "The SK Telecom lease ends 2026-06-30: a booking across it is refused"
refused allocate motif --gpus 64 --pool skt-b200 --start 2026-06-25 --end 2026-07-05
run allocate motif --gpus 512 --gpu B200 --start 2026-06-20 --hours 240 --earliest --note "moves to the government B200s"

step "Calendars: the SK Telecom lease ends 2026-07-01, the government B200s start"
run calendar skt-b200 --from 2026-06-26 --to 2026-07-04
run calendar nhn-b200 --from 2026-06-29 --to 2026-07-13

step "2026-08-01: phase 2 ends"
run clock set 2026-08-01T00:00
run quota
run allocations --consortium motif

step "Integrity"
run verify
run journal --consortium ncai

echo
echo "The demo daemon is still running (pid $(cat "$STATE/gpuledgerd.pid"), simulated clock)."
echo "Query it:   build/tools/gpuledger --socket $SOCK quota"
echo "Stop it:    kill \$(cat $STATE/gpuledgerd.pid)"
