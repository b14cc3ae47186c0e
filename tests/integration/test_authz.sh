#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The authorization matrix (DESIGN.md, rule 11): every role against every
# endpoint, on its own consortium's rows and on another's.
#   admin       everything
#   operator    reads everything (verify, calendar too); any change is 403
#   agent       (a cluster bridge's token) reads what an operator reads and
#               may report metered use (meter); every other change is 403
#   consortium  (lg) status, program (itself only), quota, allocations, show,
#               journal of its own; another consortium's ids are 404
#               not_found, word for word like a missing one; verify,
#               calendar and every change are 403
#   nobody      401 on everything
# Over TCP with a bearer token per role (and none, and a wrong one), and, when
# the test runs as root, over the Unix socket as real Unix users mapped by
# access.admins.users, access.operators.groups and access.consortia.lg.groups,
# plus one user that is mapped nowhere. Refused changes leave the journal
# head and the clock as they were.
# shellcheck disable=SC2119,SC2317
. "$(dirname "$0")/lib.sh"

# --- helpers ------------------------------------------------------------------
# Starting python3 per check would be slow: the JSON checks are queued and
# evaluated by one python3 (flush_checks). The read-only part of the matrix
# runs one background job per caller (see the end); TAG keeps their files
# apart.
mkdir "$T/j"
TAG=main
NCHECK=0

# run CODE CMD...: expect_exit without its two cat processes (forks are
# what this test spends its time on): CMD must exit CODE; its stdout is in
# $OUT, its stderr in $ERR.
run() {
	local want=$1; shift
	STATUS=0
	"$@" >"$T/out-$TAG" 2>"$T/err-$TAG" </dev/null || STATUS=$?
	IFS= read -r -d '' OUT <"$T/out-$TAG" || true
	IFS= read -r -d '' ERR <"$T/err-$TAG" || true
	OUT=${OUT%$'\n'} ERR=${ERR%$'\n'}
	if [[ $STATUS -ne $want ]]; then
		printf 'command: %s\nexit status %d, expected %d\n--- stdout\n%s\n--- stderr\n%s\n---\n' \
			"$*" "$STATUS" "$want" "$OUT" "$ERR" >&2
		fail "'$*' exited $STATUS, expected $want"
	fi
	ok "$* -> exit $want"
}

# keep NAME: saves the last stdout (JSON) as o["NAME"] for later checks.
keep() {
	printf '%s\n' "$OUT" >"$T/j/$1.named"
}

# check LABEL PYEXPR EXPECTED: queues a check that PYEXPR, evaluated over d
# (the last stdout, as JSON) and o (the kept outputs), gives EXPECTED (a
# string as is, anything else as compact JSON).
check() {
	NCHECK=$((NCHECK + 1))
	printf '%s\n' "$OUT" >"$T/j/$TAG-$NCHECK.json"
	printf '%s\t%s\t%s\t%s\n' "$TAG-$NCHECK" "$1" "$2" "$3" >>"$T/j/checks-$TAG"
}

# check_code LABEL CODE: queues a check of the last output's error.code.
check_code() {
	check "$1" 'd["error"]["code"]' "$2"
}

flush_checks() {
	local st msg bad=
	[[ -s $T/j/checks-$TAG ]] || return 0
	python3 - "$T/j" "$TAG" >"$T/j/results-$TAG" <<'PY' || fail "the JSON checks could not be evaluated"
import json, sys
dir_, tag = sys.argv[1:3]
def load(p):
    with open(p, encoding="utf-8") as f:
        try:
            return json.load(f)
        except ValueError:
            return None
class Kept(dict):
    def __missing__(self, name):
        return load("%s/%s.named" % (dir_, name))
o = Kept()
with open("%s/checks-%s" % (dir_, tag), encoding="utf-8") as f:
    for line in f:
        n, label, expr, want = line.rstrip("\n").split("\t")
        d = load("%s/%s.json" % (dir_, n))
        try:
            v = eval(expr, {"d": d, "o": o})
            got = v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), ensure_ascii=False)
        except Exception as e:  # the output lacks what the check reads
            got = "<%s: %s> in %s" % (type(e).__name__, e, json.dumps(d)[:400])
        if got == want:
            print("ok\t%s = %s" % (label, want))
        else:
            print("FAIL\t%s: got %s, expected %s" % (label, got, want))
PY
	while IFS=$'\t' read -r st msg; do
		if [[ $st == ok ]]; then
			ok "$msg"
		else
			printf 'FAIL %s: %s\n' "$TEST_NAME" "$msg" >&2
			bad=1
		fi
	done <"$T/j/results-$TAG"
	: >"$T/j/checks-$TAG"
	[[ -z $bad ]] || fail "JSON checks failed (see above)"
}

# --- identities ---------------------------------------------------------------
for role in admin operator lg agent; do
	if [[ $role == lg ]]; then
		expect_exit 0 "$GPULEDGER" token new "authz-$role" --role consortium --consortium lg
	else
		expect_exit 0 "$GPULEDGER" token new "authz-$role" --role "$role"
	fi
	printf '%s\n' "$OUT" | head -n 1 >"$T/tok-$role"
	chmod 600 "$T/tok-$role"
	declare "SHA_$role=$(head -n 1 "$T/tok-$role" | tr -d '\n' | sha256sum | cut -d' ' -f1)"
done
printf 'glt_wrong\n' >"$T/tok-bad"
chmod 600 "$T/tok-bad"

UNIX_USERS=
if [[ $(id -u) -eq 0 ]] && command -v useradd >/dev/null && command -v groupadd >/dev/null &&
	command -v setpriv >/dev/null; then
	UNIX_USERS=1
fi
# Unique per run; with no root they name nobody.
P=glt$$
U_ADMIN=${P}a U_OPER=${P}o U_LG=${P}c U_NONE=${P}n
G_SOCK=${P}s G_OPER=${P}og G_LG=${P}cg
CREATED_USERS=() CREATED_GROUPS=()

authz_cleanup() {
	local u g
	for u in "${CREATED_USERS[@]}"; do userdel "$u" >/dev/null 2>&1 || true; done
	for g in "${CREATED_GROUPS[@]}"; do groupdel "$g" >/dev/null 2>&1 || true; done
}
# lib.sh's _on_exit reads the exit status first: hand it on (set +e, or
# the (exit) would end the trap before _on_exit stops the daemon).
# shellcheck disable=SC2154 # rc_ is assigned in the trap
trap 'rc_=$?; set +e; authz_cleanup; (exit $rc_); _on_exit' EXIT

if [[ -n $UNIX_USERS ]]; then
	for g in "$G_SOCK" "$G_OPER" "$G_LG"; do
		groupadd "$g" || fail "groupadd $g"
		CREATED_GROUPS+=("$g")
	done
	# every test user may reach the socket (group $G_SOCK); the role comes
	# from the user name or the other groups
	useradd -M -N -g "$G_SOCK" -s /usr/sbin/nologin "$U_ADMIN" || fail "useradd $U_ADMIN"
	CREATED_USERS+=("$U_ADMIN")
	useradd -M -N -g "$G_SOCK" -G "$G_OPER" -s /usr/sbin/nologin "$U_OPER" || fail "useradd $U_OPER"
	CREATED_USERS+=("$U_OPER")
	useradd -M -N -g "$G_SOCK" -G "$G_LG" -s /usr/sbin/nologin "$U_LG" || fail "useradd $U_LG"
	CREATED_USERS+=("$U_LG")
	useradd -M -N -g "$G_SOCK" -s /usr/sbin/nologin "$U_NONE" || fail "useradd $U_NONE"
	CREATED_USERS+=("$U_NONE")
	ok "created Unix users ${CREATED_USERS[*]} and groups ${CREATED_GROUPS[*]}"
	chmod 0755 "$T"
fi

port=$(free_port)
# shellcheck disable=SC2154 # SHA_* are declared above
sed -e "s/@PORT@/$port/" -e "s/@SHA_ADMIN@/$SHA_admin/" \
	-e "s/@SHA_OPERATOR@/$SHA_operator/" -e "s/@SHA_LG@/$SHA_lg/" -e "s/@SHA_AGENT@/$SHA_agent/" \
	-e "s/@ADMIN_USER@/$U_ADMIN/" -e "s/@OPERATOR_GROUP@/$G_OPER/" -e "s/@LG_GROUP@/$G_LG/" \
	"$FIXTURES/itest-authz.yaml.in" >"$T/config.yaml"
start_daemon "$T/config.yaml"
URL=http://127.0.0.1:$port
if [[ -n $UNIX_USERS ]]; then
	chgrp "$G_SOCK" "$SOCK"
fi

tcp_admin() { "$GPULEDGER" --json --url "$URL" --token-file "$T/tok-admin" "$@"; }
tcp_operator() { "$GPULEDGER" --json --url "$URL" --token-file "$T/tok-operator" "$@"; }
tcp_lg() { "$GPULEDGER" --json --url "$URL" --token-file "$T/tok-lg" "$@"; }
tcp_agent() { "$GPULEDGER" --json --url "$URL" --token-file "$T/tok-agent" "$@"; }
tcp_none() { "$GPULEDGER" --json --url "$URL" "$@"; }
tcp_bad() { "$GPULEDGER" --json --url "$URL" --token-file "$T/tok-bad" "$@"; }
as_user() {
	local u=$1; shift
	setpriv --reuid="$u" --regid="$G_SOCK" --init-groups "$GPULEDGER" --json --socket "$SOCK" "$@"
}
unix_admin() { as_user "$U_ADMIN" "$@"; }
unix_operator() { as_user "$U_OPER" "$@"; }
unix_lg() { as_user "$U_LG" "$@"; }
unix_none() { as_user "$U_NONE" "$@"; }

# --- the ledger the callers look at ---------------------------------------------
run 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 10000 --reason setup
run 0 gl grant upstage --phase p1 --gpu B200 --gpu-hours 10000 --reason setup
run 0 gl --json allocate lg --gpus 8 --pool skt-b200 --start 2025-09-01 --hours 10
[[ $OUT =~ \"id\":\"(A-[0-9]+)\" ]] || fail "no allocation id in $OUT"
A_LG=${BASH_REMATCH[1]}
run 0 gl --json allocate upstage --gpus 8 --pool skt-b200 --start 2025-09-01 --hours 10
[[ $OUT =~ \"id\":\"(A-[0-9]+)\" ]] || fail "no allocation id in $OUT"
A_UP=${BASH_REMATCH[1]}
A_MISSING=A-999999
ADMIN_RUN=0
AGENT_METERS=0

# reads WHO KIND: the read endpoints, as runner WHO with role KIND
# (admin|operator|consortium|none).
reads() {
	local who=$1 kind=$2 r=$1 all='["lg","upstage"]'
	local denied=forbidden
	if [[ $kind == none ]]; then
		# refused before any route is looked at: a sample of the reads
		# (changes() does the writes)
		for args in status program "quota upstage" "show $A_UP" "journal --consortium lg" \
			verify "calendar skt-b200"; do
			# shellcheck disable=SC2086 # word splitting wanted
			run 77 "$r" $args
			check_code "$who $args" unauthenticated
		done
		return
	fi

	run 0 "$r" status
	check "$who status: role" 'd["you"]["role"]' "$kind"
	if [[ $kind == consortium ]]; then
		check "$who status: consortium" 'd["you"]["consortium"]' lg
	else
		check "$who status: consortium" 'd["you"]["consortium"]' null
	fi

	run 0 "$r" program
	if [[ $kind == consortium ]]; then
		check "$who program: consortia" '[c["id"] for c in d["consortia"]]' '["lg"]'
	else
		check "$who program: consortia" '[c["id"] for c in d["consortia"]]' "$all"
	fi

	run 0 "$r" quota
	if [[ $kind == consortium ]]; then
		check "$who quota: consortia" 'sorted({q["consortium"] for q in d["quota"]})' '["lg"]'
	else
		check "$who quota: consortia" 'sorted({q["consortium"] for q in d["quota"]})' "$all"
	fi
	run 0 "$r" quota lg
	check "$who quota lg" '[q["consortium"] for q in d["quota"]]' '["lg"]'

	if [[ $kind == consortium ]]; then
		run 1 "$r" quota nosuch
		check_code "$who quota nosuch" not_found
		keep "$who-quota-missing"
		run 1 "$r" quota upstage
		check_code "$who quota upstage (other)" not_found
		check "$who quota upstage: like a missing one" \
			'd["error"]["message"].replace("upstage","nosuch") == o["'"$who"'-quota-missing"]["error"]["message"] and d["error"]["details"] == o["'"$who"'-quota-missing"]["error"]["details"]' true
	else
		run 0 "$r" quota upstage
		check "$who quota upstage" '[q["consortium"] for q in d["quota"]]' '["upstage"]'
	fi

	run 0 "$r" allocations
	if [[ $kind == consortium ]]; then
		check "$who allocations: consortia" 'sorted({a["consortium"] for a in d["allocations"]})' '["lg"]'
		check "$who allocations: no $A_UP" "'$A_UP' in [a['id'] for a in d['allocations']]" false
	else
		check "$who allocations: consortia" 'sorted({a["consortium"] for a in d["allocations"]})' "$all"
	fi
	if [[ $kind == consortium ]]; then
		run 1 "$r" allocations --consortium nosuch
		check_code "$who allocations --consortium nosuch" not_found
		keep "$who-allocs-missing"
		run 1 "$r" allocations --consortium upstage
		check_code "$who allocations --consortium upstage (other)" not_found
		check "$who allocations --consortium upstage: like a missing one" \
			'd["error"]["message"].replace("upstage","nosuch") == o["'"$who"'-allocs-missing"]["error"]["message"]' true
	else
		run 0 "$r" allocations --consortium upstage
		check "$who allocations --consortium upstage" 'sorted({a["consortium"] for a in d["allocations"]})' '["upstage"]'
	fi

	run 0 "$r" show "$A_LG"
	check "$who show $A_LG" 'd["allocation"]["consortium"]' lg
	run 1 "$r" show "$A_MISSING"
	check_code "$who show $A_MISSING" not_found
	keep "$who-show-missing"
	if [[ $kind == consortium ]]; then
		run 1 "$r" show "$A_UP"
		check_code "$who show $A_UP (other)" not_found
		check "$who show $A_UP: like a missing one" \
			'd["error"]["message"].replace("'"$A_UP"'","'"$A_MISSING"'") == o["'"$who"'-show-missing"]["error"]["message"] and d["error"]["details"] == o["'"$who"'-show-missing"]["error"]["details"]' true
	else
		run 0 "$r" show "$A_UP"
		check "$who show $A_UP" 'd["allocation"]["consortium"]' upstage
	fi

	run 0 "$r" journal
	if [[ $kind == consortium ]]; then
		check "$who journal: consortia" 'sorted({e["consortium"] for e in d["entries"]})' '["lg"]'
		# a page's counts are of its own entries: nothing hints at others'
		keep "$who-journal"
		run 0 "$r" journal --limit 1
		check "$who journal --limit 1: earlier/later count its own entries" \
			'[d["earlier"], d["later"], len(d["entries"])] == [len(o["'"$who"'-journal"]["entries"]) - 1, 0, 1]' true
	else
		# and the program's own entry: the first start's configuration
		check "$who journal: consortia" 'sorted({e["consortium"] for e in d["entries"] if e["consortium"]})' "$all"
		check "$who journal: the config entry" '[e["kind"] for e in d["entries"] if e["consortium"] is None]' '["config"]'
	fi
	if [[ $kind == consortium ]]; then
		run 1 "$r" journal --consortium nosuch
		check_code "$who journal --consortium nosuch" not_found
		keep "$who-journal-missing"
		run 1 "$r" journal --consortium upstage
		check_code "$who journal --consortium upstage (other)" not_found
		check "$who journal --consortium upstage: like a missing one" \
			'd["error"]["message"].replace("upstage","nosuch") == o["'"$who"'-journal-missing"]["error"]["message"]' true
	else
		run 0 "$r" journal --consortium upstage
		check "$who journal --consortium upstage" 'sorted({e["consortium"] for e in d["entries"]})' '["upstage"]'
	fi

	if [[ $kind == consortium ]]; then
		run 77 "$r" verify
		check_code "$who verify" "$denied"
		run 77 "$r" calendar skt-b200
		check_code "$who calendar" "$denied"
	else
		run 0 "$r" verify
		check "$who verify" 'd["ok"]' true
		run 0 "$r" calendar skt-b200
		check "$who calendar" 'd["pool"]' skt-b200
	fi
}

# changes WHO KIND: every change, as runner WHO with role KIND.
changes() {
	local who=$1 kind=$2 r=$1 id
	if [[ $kind == admin ]]; then
		ADMIN_RUN=$((ADMIN_RUN + 1))
		local k=$ADMIN_RUN day elim back
		# a reinstated consortium is active from the reinstatement on: run 2
		# books after run 1's reinstatement, and eliminates after that
		day=(- 2025-10-01 2025-12-10) elim=(- 2025-12-01 2025-12-20) back=(- 2025-12-02 2025-12-21)
		run 0 "$r" grant lg --phase p1 --gpu B200 --gpu-hours 1 --reason "$who own"
		check "$who grant lg" 'd["quota"]["consortium"]' lg
		run 0 "$r" grant upstage --phase p1 --gpu B200 --gpu-hours 1 --reason "$who other"
		check "$who grant upstage" 'd["quota"]["consortium"]' upstage
		for c in lg upstage; do
			run 0 "$r" allocate "$c" --gpus 1 --pool skt-b200 --start "${day[k]}T00:00" --hours 2
			check "$who allocate $c" 'd["allocation"]["state"]' reserved
			[[ $OUT =~ \"id\":\"(A-[0-9]+)\" ]] || fail "no allocation id in $OUT"
			id=${BASH_REMATCH[1]}
			if [[ $c == lg ]]; then
				run 0 "$r" cancel "$id" --reason "$who"
				check "$who cancel $id" 'd["allocation"]["state"]' cancelled
			else
				run 0 "$r" release "$id" --at "${day[k]}T01:00" --reason "$who"
				check "$who release $id" 'd["allocation"]["end"]' "${day[k]}T01:00:00+09:00"
			fi
		done
		run 0 "$r" eliminate upstage --effective "${elim[k]}" --reason "$who"
		# rule 8: active until the elimination takes effect; eliminated_from
		# names the first one ahead (the first round's, 2025-12-01)
		check "$who eliminate upstage" 'd["consortium"]["status"]' active
		check "$who eliminate upstage ahead" 'd["consortium"]["eliminated_from"]' "${elim[1]}T00:00:00+09:00"
		run 0 "$r" reinstate upstage --effective "${back[k]}" --reason "$who"
		check "$who reinstate upstage" 'd["consortium"]["status"]' active
		run 0 "$r" meter "$A_UP" --source kr1 --job "$who" --gpu-seconds 60
		check "$who meter $A_UP" 'd["usage"]["consortium"]' upstage
		run 0 "$r" clock set "2025-08-0$((4 + k))T09:00"
		check "$who clock set" 'd["clock"]' "2025-08-0$((4 + k))T09:00:00+09:00"
		return
	fi
	if [[ $kind == agent && $AGENT_METERS == 1 ]]; then
		# metered use is the agent's one change (before the matrix: it writes)
		run 0 "$r" meter "$A_LG" --source kr1 --job "$who" --gpu-seconds 60
		check "$who meter $A_LG" 'd["usage"]["consortium"]' lg
		run 0 "$r" meter upstage --phase p1 --gpu B200 --source kr1 --job "$who-key" --gpu-seconds 60
		check "$who meter upstage by key" 'd["duplicate"]' false
		run 0 "$r" meter "$A_LG" --source kr1 --job "$who" --gpu-seconds 60
		check "$who meter again" 'd["duplicate"]' true
		return
	fi

	local denied=forbidden
	[[ $kind == none ]] && denied=unauthenticated
	local -a cmds=(
		"grant lg --phase p1 --gpu B200 --gpu-hours 1 --reason own"
		"grant upstage --phase p1 --gpu B200 --gpu-hours 1 --reason other"
		"allocate lg --gpus 1 --pool skt-b200 --start 2025-11-01 --hours 1"
		"allocate upstage --gpus 1 --pool skt-b200 --start 2025-11-01 --hours 1"
		"cancel $A_LG --reason own"
		"cancel $A_UP --reason other"
		"cancel $A_MISSING --reason missing"
		"release $A_LG --at 2025-09-01T01:00 --reason own"
		"release $A_UP --at 2025-09-01T01:00 --reason other"
		"eliminate lg --effective 2026-01-10 --reason own"
		"eliminate upstage --effective 2026-01-10 --reason other"
		"reinstate lg --effective 2026-01-11 --reason own"
		"reinstate upstage --effective 2026-01-11 --reason other"
		"clock set 2025-12-01T00:00"
		"meter $A_LG --source kr1 --job own --gpu-seconds 1"
		"meter $A_UP --source kr1 --job other --gpu-seconds 1"
		"meter upstage --phase p1 --gpu B200 --source kr1 --job other-key --gpu-seconds 1"
	)
	if [[ $kind == agent ]]; then
		# its one allowed change ran before the matrix (agent_changes)
		cmds=("${cmds[@]:0:14}")
	fi
	if [[ $kind == none ]]; then
		# one of each kind of change is enough to see the 401
		cmds=("${cmds[0]}" "${cmds[3]}" "${cmds[5]}" "${cmds[7]}" "${cmds[9]}" "${cmds[11]}" "${cmds[13]}"
			"${cmds[14]}")
	fi
	for args in "${cmds[@]}"; do
		# shellcheck disable=SC2086 # word splitting wanted
		run 77 "$r" $args
		check_code "$who $args" "$denied"
	done
}

# The changes an admin makes come first, one caller after the other. Then
# nothing changes the ledger any more: every caller's reads and refused
# changes run at once, one background job each (a subshell: lib.sh's traps
# do not run in it, and fail only ends the job); their output is replayed
# in order afterwards.
admin_changes() {
	TAG=$1
	changes "$1" admin
	flush_checks
	ok "changes by $1 (admin) done"
}

JOBS=()
start_job() {
	local who=$1 kind=$2
	(
		# shellcheck disable=SC2034 # CHECKS counts lib.sh's ok lines
		TAG=$who CHECKS=0
		reads "$who" "$kind"
		[[ $kind == admin ]] || changes "$who" "$kind"
		if [[ $who == tcp_none ]]; then
			# a token the daemon does not know is no better than none
			run 77 tcp_bad status
			check_code "wrong token status" unauthenticated
			run 77 tcp_bad grant lg --phase p1 --gpu B200 --gpu-hours 1 --reason x
			check_code "wrong token grant" unauthenticated
		fi
		flush_checks
	) >"$T/job-$who" 2>&1 &
	JOBS+=("$!:$who:$kind")
}

finish_jobs() {
	local job pid who kind rc line bad=
	for job in "${JOBS[@]}"; do
		IFS=: read -r pid who kind <<<"$job"
		rc=0
		wait "$pid" || rc=$?
		while IFS= read -r line; do
			if [[ $line =~ ^ok\ [0-9]+\ -\ (.*)$ ]]; then
				ok "${BASH_REMATCH[1]}"
			else
				printf '%s\n' "$line" >&2
			fi
		done <"$T/job-$who"
		if [[ $rc -ne 0 ]]; then
			printf 'FAIL %s: the matrix for %s (%s) failed\n' "$TEST_NAME" "$who" "$kind" >&2
			bad=1
		else
			ok "matrix done for $who ($kind)"
		fi
	done
	JOBS=()
	[[ -z $bad ]] || fail "the matrix failed (see above)"
}

admin_changes tcp_admin
[[ -z $UNIX_USERS ]] || admin_changes unix_admin
TAG=tcp_agent
AGENT_METERS=1 changes tcp_agent agent
flush_checks
ok "metered use by tcp_agent (agent) done"
AGENT_METERS=0
TAG=main

run 0 gl --json status
keep before
start_job tcp_admin admin
start_job tcp_operator operator
start_job tcp_lg consortium
start_job tcp_agent agent
start_job tcp_none none
if [[ -n $UNIX_USERS ]]; then
	start_job unix_admin admin
	start_job unix_operator operator
	start_job unix_lg consortium
	start_job unix_none none
fi
finish_jobs
run 0 gl --json status
check "journal head unchanged by every refused change" 'd["journal"] == o["before"]["journal"]' true
check "clock unchanged" 'd["clock"] == o["before"]["clock"]' true

if [[ -n $UNIX_USERS ]]; then
	run 0 gl --json journal
	check "actors of the journal" \
		'sorted({e["actor"] for e in d["entries"]})' \
		"[\"gpuledgerd start-up (uid 0)\",\"token:authz-admin\",\"token:authz-agent\",\"user:$U_ADMIN\",\"user:root\"]"
else
	ok "skipped unix users (not root)"
fi

run 0 gl --json verify
check "verify after the matrix" 'd["ok"]' true
flush_checks
stop_daemon
pass
