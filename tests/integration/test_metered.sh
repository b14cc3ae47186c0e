#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Metered use (POST /v1/usage, `gpuledger meter`): a job's measured
# GPU-seconds land in its key's used_gpu_seconds and in a `usage` journal
# entry; a second report of the same (source, job_id) answers "duplicate"
# and writes nothing, also across a restart of the daemon, and one with
# other figures is a conflict; every refusal is typed and changes nothing.
# The agent role (a cluster bridge's token) may report use and read what an
# operator reads, nothing else; a consortium sees only its own used figures.
# verify recomputes the used figures and the usage table from the journal.
# shellcheck disable=SC2119 # start_daemon and stop_daemon take optional arguments
. "$(dirname "$0")/lib.sh"

for who in agent operator lg; do
	if [[ $who == lg ]]; then
		expect_exit 0 "$GPULEDGER" token new lg-ci --role consortium --consortium lg
	else
		expect_exit 0 "$GPULEDGER" token new "t-$who" --role "$who"
		expect_contains "role: $who,"
	fi
	printf '%s\n' "$OUT" | head -n 1 >"$T/tok-$who"
	chmod 600 "$T/tok-$who"
	declare "SHA_$who=$(head -n 1 "$T/tok-$who" | tr -d '\n' | sha256sum | cut -d' ' -f1)"
done
PORT=$(free_port)
# shellcheck disable=SC2154 # SHA_* are declared above
sed -e "s/@PORT@/$PORT/" -e "s/@SHA_AGENT@/$SHA_agent/" -e "s/@SHA_OPERATOR@/$SHA_operator/" \
	-e "s/@SHA_LG@/$SHA_lg/" "$FIXTURES/itest-metered.yaml.in" >"$T/config.yaml"
expect_exit 0 "$GPULEDGERD" --check-config "$T/config.yaml"
CLOCK=2025-09-01T09:00 start_daemon "$T/config.yaml"
URL=http://127.0.0.1:$PORT
agent() { "$GPULEDGER" --url "$URL" --token-file "$T/tok-agent" "$@"; }
oper() { "$GPULEDGER" --url "$URL" --token-file "$T/tok-operator" "$@"; }
lg() { "$GPULEDGER" --url "$URL" --token-file "$T/tok-lg" "$@"; }

# post TOKEN BODY: POST /v1/usage with a fresh key; $OUT is the answer
# body, $CODE its HTTP status.
post() {
	local tok=$1 body=$2
	CODE=$(curl -s -o "$T/out" -w '%{http_code}' -H "Authorization: Bearer $(cat "$T/tok-$tok")" \
		-H "Idempotency-Key: k-$RANDOM-$RANDOM" -H 'Content-Type: application/json' \
		--data-binary "$body" "$URL/v1/usage")
	OUT=$(cat "$T/out")
}
expect_refused() {
	local code=$1 http=$2 what=$3
	[[ $CODE == "$http" ]] || fail "$what: HTTP $CODE, expected $http: $OUT"
	expect_eq "$(json_get '["error"]["code"]')" "$code" "$what"
}

# --- the pool's cluster --------------------------------------------------------
expect_exit 0 gl --json program
expect_eq "$(json_eval '[p.get("slurm") for p in d["pools"]]')" \
	'[{"cluster":"kr1","partition":"b200"},null]' "pools' slurm"
expect_exit 0 gl program
expect_match '^skt-b200 .* kr1/b200$'

# --- a ledger to meter ---------------------------------------------------------
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 1000 --reason setup
expect_exit 0 gl grant upstage --phase p1 --gpu B200 --gpu-hours 1000 --reason setup
expect_exit 0 gl --json allocate lg --gpus 8 --pool skt-b200 --start 2025-09-02 --hours 10
A=$(json_get '["allocation"]["id"]')
expect_exit 0 gl --json allocate lg --gpus 8 --pool skt-b200 --start 2025-09-10 --hours 10
A_CANCEL=$(json_get '["allocation"]["id"]')
expect_exit 0 gl cancel "$A_CANCEL" --reason "never ran"

# --- the first report, and its repeats -----------------------------------------
expect_exit 0 agent --json meter "$A" --source kr1 --job 4242 --gpu-seconds 28800 --end 2025-09-02T05:00
expect_eq "$(json_eval 'd["duplicate"]')" false "first report: not a duplicate"
expect_eq "$(json_eval '[d["usage"][k] for k in ("source","job_id","consortium","phase","gpu","allocation","gpu_seconds","end")]')" \
	"[\"kr1\",\"4242\",\"lg\",\"p1\",\"B200\",\"$A\",28800,\"2025-09-02T05:00:00+09:00\"]" "the usage object"
FIRST=$(json_eval 'd["usage"]')
SEQ=$(json_get '["usage"]["seq"]')
expect_exit 0 gl --json quota lg --phase p1
expect_eq "$(json_get '["quota"][0]["used_gpu_seconds"]')" 28800 "used after the report"
expect_eq "$(json_get '["quota"][0]["available_gpu_seconds"]')" $((1000 * 3600 - 8 * 10 * 3600)) \
	"available: metered use moves no quota"
expect_exit 0 gl --json status
HEAD=$(json_get '["journal"]["seq"]')
expect_eq "$HEAD" "$SEQ" "the usage entry is the head"

expect_exit 0 agent --json meter "$A" --source kr1 --job 4242 --gpu-seconds 28800 --end 2025-09-02T05:00
expect_eq "$(json_eval 'd["duplicate"]')" true "the same report again: duplicate"
expect_eq "$(json_eval 'd["usage"]')" "$FIRST" "the duplicate answers the recorded usage"
# without end, as a report that does not know it: still the same job
expect_exit 0 agent meter "$A" --source kr1 --job 4242 --gpu-hours 8
expect_contains "already recorded (seq $SEQ): nothing changed"
expect_exit 0 gl --json status
expect_eq "$(json_get '["journal"]["seq"]')" "$HEAD" "duplicates wrote nothing"

expect_exit 1 agent --json meter "$A" --source kr1 --job 4242 --gpu-seconds 28801
expect_eq "$(json_get '["error"]["code"]')" conflict "another amount: conflict"
expect_eq "$(json_get '["error"]["details"]["fields"]')" '["gpu_seconds"]' "the conflict names the field"
expect_eq "$(json_get '["error"]["details"]["recorded"]["gpu_seconds"]')" 28800 "and what was recorded"
expect_exit 1 agent --json meter upstage --phase p1 --gpu B200 --source kr1 --job 4242 --gpu-seconds 28800 \
	--end 2025-09-02T05:00
expect_eq "$(json_get '["error"]["details"]["fields"]')" '["consortium","allocation"]' "another key: conflict"
expect_exit 1 agent --json meter "$A" --source kr1 --job 4242 --gpu-seconds 28800 --end 2025-09-02T06:00
expect_eq "$(json_get '["error"]["details"]["fields"]')" '["end"]' "another end: conflict"
# the same job id on another cluster is another job
expect_exit 0 agent --json meter "$A" --source kr2 --job 4242 --gpu-seconds 100
expect_eq "$(json_eval 'd["duplicate"]')" false "same job id, other source: new"

# by key, without an allocation; and two reports of one job in one request burst
expect_exit 0 gl --json meter upstage --phase p1 --gpu B200 --source kr1 --job 5000 --gpu-hours 1.5
expect_eq "$(json_eval '[d["usage"]["allocation"], d["usage"]["gpu_seconds"]]')" '[null,5400]' "by key"
expect_exit 0 gl meter upstage --phase p1 --gpu B200 --source kr1 --job 5000 --gpu-hours 1.5
expect_contains "already recorded"

# --- refusals: typed, and nothing changes ---------------------------------------
expect_exit 0 gl --json status
HEAD=$(json_get '["journal"]["seq"]')
expect_exit 1 agent --json meter A-999999 --source kr1 --job 1 --gpu-seconds 1
expect_eq "$(json_get '["error"]["code"]')" not_found "unknown allocation"
expect_exit 1 agent --json meter nosuch --phase p1 --gpu B200 --source kr1 --job 1 --gpu-seconds 1
expect_eq "$(json_get '["error"]["code"]')" not_found "unknown consortium"
expect_exit 65 agent --json meter lg --phase p9 --gpu B200 --source kr1 --job 1 --gpu-seconds 1
expect_eq "$(json_get '["error"]["code"]')" unknown_phase "unknown phase"
expect_exit 65 agent --json meter lg --phase p1 --gpu A100 --source kr1 --job 1 --gpu-seconds 1
expect_eq "$(json_get '["error"]["code"]')" unknown_gpu "unknown GPU model"
expect_exit 1 agent --json meter "$A_CANCEL" --source kr1 --job 1 --gpu-seconds 1
expect_eq "$(json_get '["error"]["code"]')" bad_state "a cancelled allocation"
expect_exit 65 agent meter lg --phase p1 --gpu B200 --source kr1 --job 1 --gpu-seconds -5
expect_exit 64 agent meter lg --source kr1 --job 1 --gpu-seconds 5
expect_exit 64 agent meter lg --phase p1 --gpu B200 --source kr1 --job 1
post agent '{"source":"kr1","job_id":"1","gpu_seconds":-1,"consortium":"lg","phase":"p1","gpu":"B200"}'
expect_refused invalid_amount 422 "a negative amount"
post agent '{"source":"KR1","job_id":"1","gpu_seconds":1,"consortium":"lg","phase":"p1","gpu":"B200"}'
expect_refused bad_request 400 "an upper-case cluster name"
expect_eq "$(json_get '["error"]["details"]["field"]')" source "names the source"
post agent '{"source":"kr1","job_id":"1 2","gpu_seconds":1,"consortium":"lg","phase":"p1","gpu":"B200"}'
expect_refused bad_request 400 "a job id with a space"
expect_eq "$(json_get '["error"]["details"]["field"]')" job_id "names the job id"
post agent '{"source":"kr1","job_id":"1","gpu_seconds":1,"consortium":"lg","phase":"p1"}'
expect_refused bad_request 400 "a key without its GPU model"
expect_eq "$(json_get '["error"]["details"]["field"]')" gpu "names what is missing"
post agent '{"source":"kr1","job_id":"1","gpu_seconds":1,"allocation":"A-42"}'
expect_refused bad_request 400 "a malformed allocation id"
post agent '{"source":"kr1","job_id":"1","gpu_seconds":1,"allocation":"'"$A"'","consortium":"upstage"}'
expect_refused conflict 409 "another consortium than the allocation's"
expect_eq "$(json_eval '[d["error"]["details"][k] for k in ("field","given","allocation_value")]')" \
	'["consortium","upstage","lg"]' "the conflict says whose the allocation is"
post agent '{"source":"kr1","job_id":"1","gpu_seconds":1,"allocation":"'"$A"'","phase":"p2"}'
expect_refused conflict 409 "another phase than the allocation's"
post agent '{"source":"kr1","job_id":"1","gpu_seconds":9223372036854775807,"consortium":"lg","phase":"p1","gpu":"B200"}'
expect_refused invalid_amount 422 "an amount past the ledger's range"
post agent '{"source":"kr1","job_id":"1","gpu_seconds":1,"consortium":"lg","phase":"p1","gpu":"B200","pool":"x"}'
expect_refused bad_request 400 "an unknown field"
post lg '{"source":"kr1","job_id":"1","gpu_seconds":1,"consortium":"lg","phase":"p1","gpu":"B200"}'
expect_refused forbidden 403 "a consortium may not report use"
post operator '{"source":"kr1","job_id":"1","gpu_seconds":1,"consortium":"lg","phase":"p1","gpu":"B200"}'
expect_refused forbidden 403 "an operator may not report use"
expect_exit 0 gl --json status
expect_eq "$(json_get '["journal"]["seq"]')" "$HEAD" "no refusal wrote anything"

# --- the agent role: an operator's reads, and metered use only -----------------
expect_exit 0 agent --json status
expect_eq "$(json_get '["you"]["role"]')" agent "the agent's role"
expect_exit 0 agent --json quota upstage
expect_exit 0 agent --json verify
expect_eq "$(json_get '["ok"]')" true "the agent may verify, as an operator"
expect_exit 0 agent --json calendar skt-b200
expect_exit 77 agent --json grant lg --phase p1 --gpu B200 --gpu-hours 1 --reason x
expect_eq "$(json_get '["error"]["code"]')" forbidden "the agent may not grant"
expect_exit 77 agent --json cancel "$A" --reason x
expect_exit 77 agent --json backup "$T/copy.db"

# --- scoping: a consortium sees its own used figures only -----------------------
expect_exit 0 lg --json quota
expect_eq "$(json_eval '[(q["consortium"], q["used_gpu_seconds"]) for q in d["quota"]]')" \
	'[["lg",28900]]' "lg sees its used figure, not upstage's"
expect_exit 0 lg --json journal
expect_eq "$(json_eval 'sorted({e["consortium"] for e in d["entries"]})')" '["lg"]' "lg's journal"
expect_eq "$(json_eval '[e["extra"] for e in d["entries"] if e["kind"] == "usage"]')" \
	'[{"job_id":"4242","source":"kr1","used_gpu_seconds":28800},{"job_id":"4242","source":"kr2","used_gpu_seconds":100}]' \
	"its usage entries carry source, job and amount"
expect_exit 0 lg quota
expect_match '^lg +p1 +B200 +1000 +80 +[0-9.]+ +8.0277 '

# --- the metric -------------------------------------------------------------------
expect_exit 0 curl -sf -H "Authorization: Bearer $(cat "$T/tok-operator")" "$URL/metrics"
expect_contains 'gpuledger_quota_used_gpu_seconds{consortium="upstage",phase="p1",gpu="B200"} 5400'

# --- across a restart: the store remembers every job ------------------------------
stop_daemon
CLOCK=2025-09-03T09:00 start_daemon "$T/config.yaml"
expect_exit 0 gl --json status
HEAD=$(json_get '["journal"]["seq"]')
expect_exit 0 agent --json meter "$A" --source kr1 --job 4242 --gpu-seconds 28800 --end 2025-09-02T05:00
expect_eq "$(json_eval 'd["duplicate"]')" true "after a restart: still a duplicate"
expect_eq "$(json_eval 'd["usage"]')" "$FIRST" "the recorded usage, as first answered"
expect_exit 1 agent --json meter "$A" --source kr1 --job 4242 --gpu-seconds 1
expect_eq "$(json_get '["error"]["code"]')" conflict "after a restart: another amount is a conflict"
expect_exit 0 gl --json status
expect_eq "$(json_get '["journal"]["seq"]')" "$HEAD" "nothing written after the restart"
expect_exit 0 gl --json quota lg --phase p1
expect_eq "$(json_get '["quota"][0]["used_gpu_seconds"]')" 28900 "used survives the restart"
# an allocation that has ended (forgotten by the in-memory ledger) still takes reports
expect_exit 0 agent --json meter "$A" --source kr1 --job 4243 --gpu-seconds 60
expect_eq "$(json_get '["usage"]["allocation"]')" "$A" "a finished allocation"
expect_exit 0 gl --json verify
expect_eq "$(json_get '["ok"]')" true "verify recomputes the used figures"

# --- verify: the usage table and the used sums are caches of the journal ----------
stop_daemon
sqlite3 "$DB" "UPDATE usage SET gpu_seconds = 1 WHERE job_id = '5000'"
sqlite3 "$DB" "UPDATE balances SET used = used + 7 WHERE consortium = 'lg'"
expect_exit 1 "$GPULEDGERD" --verify-db "$DB"
expect_contains "usage kr1/5000: cached gpu_seconds 1 but the journal gives 5400"
expect_contains "balance lg/p1/B200: cached used"
sqlite3 "$DB" "UPDATE usage SET gpu_seconds = 5400 WHERE job_id = '5000'"
sqlite3 "$DB" "UPDATE balances SET used = used - 7 WHERE consortium = 'lg'"
sqlite3 "$DB" "DELETE FROM usage WHERE job_id = '4243'"
expect_exit 1 "$GPULEDGERD" --verify-db "$DB"
expect_contains "usage kr1/4243: the journal has it"
pass
