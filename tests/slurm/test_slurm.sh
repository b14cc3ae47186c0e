#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# gpuledger-slurm against a real Slurm (tests/slurm/slurm.sh starts munged,
# MariaDB, slurmdbd, slurmctld and a slurmd with 8 fake H200 GPUs) and the
# real daemon on a simulated clock that starts at the real now. A ledger
# with grants, a cap, allocations, a cancellation and an elimination is
# synced; what sacctmgr and scontrol then report is checked, a second sync
# changes nothing, Slurm itself refuses a job over the QOS budget at submit
# (QOSGrpGRESMinutes) and a reservation on busy nodes; jobs that ran are
# metered back by `usage` (with an agent token over TCP, as a controller
# host would) and show in `gpuledger quota` as used_gpu_seconds, once
# however often usage runs; a phase boundary resets the new phase's QOS
# usage and retires the old phase's QOS.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/slurm.sh"

: "${GPULEDGER_SLURM:?GPULEDGER_SLURM must name the gpuledger-slurm binary}"
slurm_skip_unless_installed

# ---- the command line, before anything runs ----
bridge() {
	"$GPULEDGER_SLURM" --socket "$SOCK" "$@"
}
expect_exit 0 "$GPULEDGER_SLURM" --help
expect_contains "sync --cluster NAME"
expect_exit 64 "$GPULEDGER_SLURM" sync
expect_contains "--cluster NAME is needed"
expect_exit 65 "$GPULEDGER_SLURM" sync --cluster 'Bad Name'
expect_exit 64 "$GPULEDGER_SLURM" frob --cluster gltest
expect_exit 64 "$GPULEDGER_SLURM" usage --cluster gltest --dry-run
expect_exit 64 "$GPULEDGER_SLURM" --watch 5 --cluster gltest --dry-run
expect_contains "--dry-run is for sync"
expect_exit 64 "$GPULEDGER_SLURM" --watch 0 --cluster gltest

slurm_start

# ---- the ledger: times around the real now, since Slurm runs on it ----
now=$(date -u +%s)
now=$((now - now % 60))
at() { date -u -d "@$((now + $1))" +%Y-%m-%dT%H:%M:%SZ; }
slurm_at() { date -u -d "@$((now + $1))" +%Y-%m-%dT%H:%M:%S; }
H=3600
D=86400
TOKEN=$(printf 'agent-%s' "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')")
printf '%s\n' "$TOKEN" >"$T/agent.token"
chmod 600 "$T/agent.token"
PORT=$(free_port)
cat >"$T/program.yaml" <<EOF
daemon:
  listen: 127.0.0.1:$PORT
access:
  admins: {users: [root]}
  tokens:
    - {name: slurm-bridge, role: agent, sha256: "$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)"}
program:
  name: Slurm bridge test
  timezone: UTC
phases:
  - {id: p1, name: "1st stage", start: $(at $((-D))), end: $(at $D)}
  - {id: p2, name: "2nd stage", start: $(at $D), end: $(at $((10 * D)))}
pools:
  - {id: gl-h200, provider: Test, gpu: H200, gpus: 8, gpus_per_node: 8,
     slurm: {cluster: $SLURM_CLUSTER, partition: $SLURM_PARTITION}}
  - {id: gl-b200, provider: Test, gpu: B200, gpus: 16, slurm: {cluster: $SLURM_CLUSTER, partition: b200}}
  - {id: elsewhere-h100, provider: Test, gpu: H100, gpus: 8}
consortia:
  - {id: lg, name: LG AI Research, lead: LG AI Research}
  - {id: upstage, name: Upstage, lead: Upstage}
  - {id: ncai, name: NC AI, lead: NC AI}
EOF
CLOCK=$(at 0) start_daemon "$T/program.yaml"

expect_exit 0 gl grant lg --phase p1 --gpu H200 --gpu-hours 10 --max-gpus 8 --reason "p1 H200"
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 2 --reason "p1 B200"
expect_exit 0 gl grant lg --phase p2 --gpu H200 --gpu-hours 20 --reason "p2 H200"
expect_exit 0 gl grant lg --phase p1 --gpu H100 --gpu-hours 5 --reason "not on this cluster"
expect_exit 0 gl grant upstage --phase p1 --gpu H200 --gpu-hours 3 --reason "p1 H200"
expect_exit 0 gl grant ncai --phase p1 --gpu H200 --gpu-hours 4 --reason "p1 H200"
expect_exit 0 gl --json allocate lg --gpus 8 --pool gl-h200 --start "$(at $((2 * H)))" --hours 1
A1=$(json_get '["allocation"]["id"]')
expect_exit 0 gl --json allocate ncai --gpus 8 --pool gl-h200 --start "$(at $((4 * H)))" --hours 0.5
A2=$(json_get '["allocation"]["id"]')
expect_exit 0 gl --json allocate upstage --gpus 8 --pool gl-h200 --start "$(at $((6 * H)))" --hours 0.25
A3=$(json_get '["allocation"]["id"]')

# the Slurm side as one text, to see that nothing changed
snapshot() {
	{
		sacctmgr -n -P show qos format=Name,Description,Flags,GrpTRES,GrpTRESMins
		sacctmgr -n -P show account format=Account,Description,Organization
		sacctmgr -n -P show assoc where cluster="$SLURM_CLUSTER" \
			format=Account,User,ParentName,QOS,DefaultQOS
		scontrol show -o reservation
	} 2>&1
}
qos() { sacctmgr -n -P show qos where name="$1" format=Name,Flags,GrpTRES,GrpTRESMins; }
# the account's own association (not its users')
assoc() { sacctmgr -n -P show assoc where cluster="$SLURM_CLUSTER" account="$1" \
	format=User,ParentName,QOS,DefaultQOS | sed -n 's/^|//p'; }
resv() { scontrol show -o reservation "$1" | tr ' ' '\n' |
	grep -E '^(StartTime|EndTime|NodeCnt|PartitionName|Accounts)=' | tr '\n' ' '; }
# a QOS list as sorted words
words() { tr ',' '\n' <<<"$1" | sort | tr '\n' ' '; }

# ---- a cluster the program does not know, and a dry run ----
expect_exit 78 bridge sync --cluster other
expect_contains "no pool of the program has slurm: {cluster: other}"
before=$(snapshot)
expect_exit 0 bridge sync --cluster "$SLURM_CLUSTER" --dry-run
expect_contains "would run: sacctmgr -i add qos lg-p1-h200 "
expect_contains "would run: scontrol create reservation ReservationName=$A1 "
expect_match "^dry run: [0-9]+ changes, none made$"
expect_eq "$(snapshot)" "$before" "Slurm after a dry run"

# ---- sync ----
expect_exit 0 bridge sync --cluster "$SLURM_CLUSTER"
expect_match "^[0-9]+ changes made, 0 refused by Slurm$"
expect_eq "$(qos lg-p1-h200)" "lg-p1-h200|DenyOnLimit,NoDecay|gres/gpu:h200=8|gres/gpu:h200=600" \
	"QOS lg-p1-h200 (10 GPU-hours, cap 8)"
expect_eq "$(qos lg-p1-b200)" "lg-p1-b200|DenyOnLimit,NoDecay||gres/gpu:b200=120" \
	"QOS lg-p1-b200 (a pool without gpus_per_node: the QOS only)"
expect_eq "$(qos lg-p2-h200)" "lg-p2-h200|DenyOnLimit,NoDecay||gres/gpu:h200=1200" "QOS lg-p2-h200"
expect_eq "$(qos upstage-p1-h200)" "upstage-p1-h200|DenyOnLimit,NoDecay||gres/gpu:h200=180" \
	"QOS upstage-p1-h200"
expect_eq "$(qos ncai-p1-h200)" "ncai-p1-h200|DenyOnLimit,NoDecay||gres/gpu:h200=240" "QOS ncai-p1-h200"
expect_eq "$(qos lg-p1-h100)" "" "no QOS for a model the cluster does not have"
expect_eq "$(qos gpuledger)" "gpuledger|DenyOnLimit|gres/gpu:b200=0,gres/gpu:h200=0|" \
	"QOS gpuledger: no GPU without a budget"
IFS='|' read -r parent q def <<<"$(assoc lg)"
expect_eq "$parent" gpuledger "account lg's parent"
expect_eq "$(words "$q")" "gpuledger lg-p1-b200 lg-p1-h200 lg-p2-h200 " "account lg's QOS"
expect_eq "$def" lg-p1-h200 "account lg's default QOS (the current phase's)"
expect_eq "$(assoc gpuledger)" "root|gpuledger|gpuledger" "account gpuledger"
expect_eq "$(resv "$A1")" "StartTime=$(slurm_at $((2 * H))) EndTime=$(slurm_at $((3 * H))) NodeCnt=1 PartitionName=gpu Accounts=lg " \
	"reservation $A1"
expect_eq "$(resv "$A2")" "StartTime=$(slurm_at $((4 * H))) EndTime=$(slurm_at $((4 * H + 1800))) NodeCnt=1 PartitionName=gpu Accounts=ncai " \
	"reservation $A2"
[[ -n $(resv "$A3") ]] || fail "no reservation $A3"
ok "reservation $A3 exists"

before=$(snapshot)
expect_exit 0 bridge sync --cluster "$SLURM_CLUSTER"
expect_eq "$OUT" "no changes: Slurm already matches the ledger" "a second sync"
expect_eq "$(snapshot)" "$before" "Slurm after the second sync"

# ---- Slurm enforces it: the site adds its users under the accounts ----
expect_exit 0 sacctmgr -i add user root account=lg,upstage,ncai cluster="$SLURM_CLUSTER"
cd "$T"
# 8 GPUs for 90 minutes is 720 GPU-minutes, over lg's 600
expect_exit 1 srun -A lg --qos=lg-p1-h200 --gres=gpu:h200:8 -t 90 true
expect_contains "QOSGrpGRESMinutes"
# the QOS of no budget takes no GPU job
expect_exit 1 srun -A lg --qos=gpuledger --gres=gpu:h200:1 -t 1 true
expect_exit 0 srun -A lg --qos=lg-p1-h200 --gres=gpu:h200:1 -t 1 bash -c 'echo $SLURM_JOB_ID; sleep 2'
J1=$OUT
# without --qos: the account's default, the current phase's
expect_exit 0 srun -A lg --gres=gpu:h200:2 -t 1 bash -c 'echo $SLURM_JOB_ID; sleep 1'
J2=$OUT
expect_exit 0 srun -A lg -t 1 bash -c 'echo "$SLURM_JOB_QOS $SLURM_JOB_ID"; sleep 1'
read -r q J3 <<<"$OUT"
expect_eq "$q" lg-p1-h200 "a job's QOS by default"

# ---- usage, with the agent token over TCP, as a controller host would ----
done_jobs() {
	[[ $(sacct -n -P -X -j "$J1,$J2,$J3" -o State | grep -c COMPLETED) -eq 3 ]]
}
for ((i = 0; i < 100; i++)); do done_jobs && break; sleep 0.1; done
done_jobs || fail "sacct does not show jobs $J1, $J2 and $J3 as COMPLETED"
e1=$(sacct -n -P -X -j "$J1" -o ElapsedRaw)
e2=$(sacct -n -P -X -j "$J2" -o ElapsedRaw)
want=$((e1 + 2 * e2))
remote() {
	"$GPULEDGER_SLURM" --url "http://127.0.0.1:$PORT" --token-file "$T/agent.token" "$@"
}
expect_exit 0 remote usage --cluster "$SLURM_CLUSTER" --since "$(at $((-H)))"
expect_match "^usage: 2 jobs recorded \\($want GPU-seconds\\), 0 already recorded, .* 0 refused$"
expect_exit 0 gl --json quota lg --phase p1 --gpu H200
expect_eq "$(json_get '["quota"][0]["used_gpu_seconds"]')" "$want" \
	"lg's used GPU-seconds (1 GPU x ${e1}s + 2 GPUs x ${e2}s)"
expect_exit 0 gl quota lg --phase p1 --gpu H200
expect_contains "USED"
expect_exit 0 remote usage --cluster "$SLURM_CLUSTER" --since "$(at $((-H)))"
expect_match "^usage: 0 jobs recorded \(0 GPU-seconds\), 2 already recorded"
expect_exit 0 gl --json quota lg --phase p1 --gpu H200
expect_eq "$(json_get '["quota"][0]["used_gpu_seconds"]')" "$want" "used after a rerun of usage"
# the CPU-only job used no GPU: nothing was written for it
expect_exit 0 gl --json journal --all
expect_eq "$(json_eval 'sum(1 for e in d["entries"] if e["kind"] == "usage")')" 2 "usage entries"

# ---- an elimination and a cancellation ----
expect_exit 0 gl eliminate ncai --effective "$(at 0)" --reason "evaluation"
expect_exit 0 gl cancel "$A3" --reason "not needed"
expect_exit 0 bridge sync --cluster "$SLURM_CLUSTER"
expect_contains "run: scontrol delete ReservationName=$A2"
expect_contains "run: scontrol delete ReservationName=$A3"
expect_eq "$(resv "$A2")$(resv "$A3")" "" "the revoked and the cancelled allocation's reservations"
expect_eq "$(qos ncai-p1-h200)" "ncai-p1-h200|DenyOnLimit,NoDecay||gres/gpu:h200=0" \
	"an eliminated consortium's QOS: what it used (nothing)"
expect_exit 1 srun -A ncai --qos=ncai-p1-h200 --gres=gpu:h200:1 -t 1 true
expect_contains "QOSGrpGRESMinutes"
expect_exit 0 bridge sync --cluster "$SLURM_CLUSTER"
expect_eq "$OUT" "no changes: Slurm already matches the ledger" "a sync after the elimination's"

# ---- Slurm's own refusal, said per object ----
expect_exit 0 scontrol create reservation ReservationName=maint StartTime="$(slurm_at $((8 * H)))" \
	Duration=60 Nodes="$SLURM_NODE" Users=root Flags=maint,ignore_jobs
expect_exit 0 gl --json allocate lg --gpus 8 --pool gl-h200 --start "$(at $((8 * H)))" --hours 0.25
A4=$(json_get '["allocation"]["id"]')
expect_exit 1 bridge sync --cluster "$SLURM_CLUSTER"
expect_contains "reservation $A4: Slurm refused: Error creating the reservation: Requested nodes are busy"
expect_contains "0 changes made, 1 refused by Slurm"
expect_exit 0 gl cancel "$A4" --reason "the nodes are in maintenance"
expect_exit 0 scontrol delete ReservationName=maint

# ---- a phase boundary: the new phase's QOS starts from zero ----
expect_exit 0 srun -A lg --qos=lg-p2-h200 --gres=gpu:h200:1 -t 1 sleep 1
raw() { scontrol show assoc_mgr flags=qos qos="$1" | sed -n 's/^ *UsageRaw=\([0-9]*\).*/\1/p'; }
[[ $(raw lg-p2-h200) -gt 0 ]] || fail "lg-p2-h200 has no usage to reset: $(raw lg-p2-h200)"
ok "lg-p2-h200 has usage before its phase ($(raw lg-p2-h200))"
expect_exit 0 gl clock set "$(at $((D + H)))"
expect_exit 0 bridge sync --cluster "$SLURM_CLUSTER"
expect_contains "run: sacctmgr -i modify qos where name=lg-p2-h200 set RawUsage=0"
expect_contains "run: scontrol delete ReservationName=$A1"
expect_eq "$(raw lg-p2-h200)" 0 "lg-p2-h200's usage after its phase started"
IFS='|' read -r parent q def <<<"$(assoc lg)"
expect_eq "$(words "$q")" "gpuledger lg-p2-h200 " "account lg's QOS in p2"
expect_eq "$def" lg-p2-h200 "account lg's default QOS in p2"
expect_exit 1 srun -A lg --qos=lg-p1-h200 --gres=gpu:h200:1 -t 1 true
expect_exit 0 bridge sync --cluster "$SLURM_CLUSTER"
expect_eq "$OUT" "no changes: Slurm already matches the ledger" "a second sync in p2 (no second reset)"

# ---- --watch: rounds of sync and usage until SIGTERM ----
# started as the harness starts Slurm's daemons: stopped with them on a failure
_slurm_daemon watch "$GPULEDGER_SLURM" --socket "$SOCK" --watch 1 --cluster "$SLURM_CLUSTER"
wpid=${_SLURM_PIDS[-1]}
for ((i = 0; i < 300; i++)); do
	[[ $(grep -c '^usage: ' "$S/watch.out") -ge 2 ]] && break
	sleep 0.1
done
kill -TERM "$wpid"
rc=0
wait "$wpid" || rc=$?
expect_eq "$rc" 0 "gpuledger-slurm --watch's exit status on SIGTERM"
[[ $(grep -c '^no changes: Slurm already matches the ledger$' "$S/watch.out") -ge 2 ]] ||
	fail "--watch did not sync twice: $(cat "$S/watch.out")"
grep -q '^usage: 0 jobs recorded (0 GPU-seconds), 3 already recorded' "$S/watch.out" ||
	fail "--watch's usage rounds: $(cat "$S/watch.out")"
ok "--watch ran rounds of sync and usage, each changing nothing"
pass
