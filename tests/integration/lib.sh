# SPDX-License-Identifier: MIT
# Shared by the integration tests (sourced, not run). Each test gets its own
# temporary directory $T holding the daemon's socket, database and log; it is
# removed on exit unless KEEP=1. The real daemon is started on it and driven
# with the real CLI. A test prints "ok - ..." as it goes and stops at the first
# failure; on failure the daemon's log is printed.
#
# Environment (set by tests/integration/meson.build): GPULEDGERD, GPULEDGER,
# SOURCE_ROOT. Optional: KEEP=1 (keep $T), CLOCK=T (the simulated clock the
# daemon starts at; CLOCK= starts it on the real clock).
# shellcheck shell=bash

set -euo pipefail

: "${GPULEDGERD:?GPULEDGERD must name the gpuledgerd binary}"
: "${GPULEDGER:?GPULEDGER must name the gpuledger binary}"
: "${SOURCE_ROOT:?SOURCE_ROOT must name the source tree}"

# The tests say which daemon they talk to; nothing from the caller leaks in.
unset GPULEDGER_SOCKET GPULEDGER_URL GPULEDGER_TOKEN_FILE
export LC_ALL=C.UTF-8 TZ=UTC

TEST_NAME=$(basename "$0" .sh)
# shellcheck disable=SC2034 # used by the tests
FIXTURES=$SOURCE_ROOT/tests/fixtures
EXAMPLE_CONFIG=$SOURCE_ROOT/config/example.yaml

# A Unix socket path has ~108 bytes; a long $TMPDIR would not fit.
_tmp=${TMPDIR:-/tmp}
[[ ${#_tmp} -le 60 ]] || _tmp=/tmp
T=$(mktemp -d "$_tmp/gpuledger-$TEST_NAME.XXXXXX")
unset _tmp

# Where start_daemon puts the daemon's state; a test may change them before
# starting a second daemon.
SOCK=$T/sock
DB=$T/db
LOG=$T/daemon.log

DAEMON_PID=
CHECKS=0
OUT=      # stdout of the last expect_exit
ERR=      # stderr of the last expect_exit
STATUS=   # exit status of the last expect_exit

fail() {
	printf 'FAIL %s: %s\n' "$TEST_NAME" "$*" >&2
	_FAILED=1
	exit 1
}

ok() {
	CHECKS=$((CHECKS + 1))
	printf 'ok %d - %s\n' "$CHECKS" "$*"
}

pass() {
	printf 'PASS %s (%d checks)\n' "$TEST_NAME" "$CHECKS"
	exit 0
}

# _alive PID: true while PID runs (a zombie that has not been reaped is dead).
_alive() {
	local state
	state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ -n $state && $state != Z* ]]
}

# _wait_dead PID SECONDS: true once PID has exited, false on timeout.
_wait_dead() {
	local pid=$1 i
	for ((i = 0; i < $2 * 10; i++)); do
		_alive "$pid" || return 0
		sleep 0.1
	done
	! _alive "$pid"
}

_dump_logs() {
	local f
	for f in "$LOG" "$T/daemon.out"; do
		[[ -s $f ]] || continue
		printf -- '----- %s (last 200 lines)\n' "$f" >&2
		tail -n 200 "$f" >&2
		printf -- '----- end of %s\n' "$f" >&2
	done
}

_on_exit() {
	local rc=$?
	if [[ -n $DAEMON_PID ]] && _alive "$DAEMON_PID"; then
		kill -TERM "$DAEMON_PID" 2>/dev/null || true
		_wait_dead "$DAEMON_PID" 5 || kill -KILL "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
	fi
	if [[ $rc -ne 0 ]]; then
		_dump_logs
	fi
	if [[ ${KEEP:-0} == 1 ]]; then
		printf 'kept %s\n' "$T" >&2
	else
		rm -rf -- "$T"
	fi
	exit "$rc"
}
trap _on_exit EXIT

# A command of the test script that fails outside the helpers stops it under
# set -e; say which one.
_on_err() {
	local rc=$? line=$1 cmd=$2
	[[ -n ${_FAILED:-} ]] && return
	printf 'FAIL %s: line %s: %s exited %d\n' "$TEST_NAME" "$line" "$cmd" "$rc" >&2
	_FAILED=1
}
trap '_on_err "$LINENO" "$BASH_COMMAND"' ERR

# gl ARGS...: the CLI, talking to this test's daemon.
gl() {
	"$GPULEDGER" --socket "$SOCK" "$@"
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on now (the kernel
# picks it), so tests running in parallel do not collide as random ones did.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# tcp_consortium_config OUT: a consortium token for lg in $T/token (TOKEN,
# SHA), a free-ish PORT, and the TCP fixture filled in with both, in OUT.
tcp_consortium_config() {
	expect_exit 0 "$GPULEDGER" token new lg-ci --role consortium --consortium lg
	TOKEN=$(printf '%s\n' "$OUT" | head -n 1)
	printf '%s\n' "$TOKEN" >"$T/token"
	chmod 600 "$T/token"
	SHA=$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)
	PORT=$(free_port)
	sed -e "s/@PORT@/$PORT/" -e "s/@SHA@/$SHA/" "$FIXTURES/itest-tcp.yaml.in" >"$1"
}

# init_db [CONFIG]: creates $DB with `gpuledgerd --init` (a normal start never
# creates a database).
init_db() {
	local config=${1:-$EXAMPLE_CONFIG}
	"$GPULEDGERD" --config "$config" --database "$DB" --init >>"$T/daemon.out" 2>&1 ||
		fail "gpuledgerd --init of $DB failed"
}

# start_daemon [CONFIG] [EXTRA_ARGS...]: starts gpuledgerd in the background
# on $SOCK/$DB/$LOG and waits (up to 10 s) until `gpuledger status` answers.
# Where $DB does not exist yet it is created first with --init, as an
# operator would; a test of a missing database runs $GPULEDGERD itself.
start_daemon() {
	local config=$EXAMPLE_CONFIG i
	if [[ $# -gt 0 && $1 != -* ]]; then config=$1; shift; fi
	local -a args=(--config "$config" --socket "$SOCK" --database "$DB" --log "$LOG")
	local clock=${CLOCK-2025-08-04T09:00}
	[[ -n $clock ]] && args+=(--clock "$clock")
	[[ -z $DAEMON_PID ]] || fail "start_daemon: a daemon is already running (pid $DAEMON_PID)"
	[[ -e $DB ]] || init_db "$config"

	"$GPULEDGERD" "${args[@]}" "$@" >>"$T/daemon.out" 2>&1 &
	DAEMON_PID=$!
	for ((i = 0; i < 100; i++)); do
		if "$GPULEDGER" --socket "$SOCK" status >/dev/null 2>&1; then
			ok "daemon started (pid $DAEMON_PID, $(basename "$config"))"
			return 0
		fi
		if ! _alive "$DAEMON_PID"; then
			local rc=0
			wait "$DAEMON_PID" || rc=$?
			DAEMON_PID=
			fail "gpuledgerd exited with status $rc at startup: $GPULEDGERD ${args[*]} $*"
		fi
		sleep 0.1
	done
	fail "gpuledgerd did not answer 'status' on $SOCK within 10 s"
}

# stop_daemon [SIGNAL]: sends SIGTERM (or SIGNAL), waits up to 10 s, asserts
# the daemon exited with status 0.
stop_daemon() {
	local sig=${1:-TERM} pid=$DAEMON_PID rc=0
	[[ -n $pid ]] || fail "stop_daemon: no daemon running"
	kill -"$sig" "$pid" || fail "stop_daemon: kill -$sig $pid failed"
	if ! _wait_dead "$pid" 10; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		DAEMON_PID=
		fail "gpuledgerd did not exit within 10 s of SIG$sig"
	fi
	wait "$pid" || rc=$?
	DAEMON_PID=
	[[ $rc -eq 0 ]] || fail "gpuledgerd exited with status $rc after SIG$sig (expected 0)"
	ok "daemon exited 0 on SIG$sig"
}

# expect_exit CODE CMD...: runs CMD, keeps its stdout in $OUT and its stderr
# in $ERR, and fails unless it exits with CODE.
expect_exit() {
	local want=$1; shift
	STATUS=0
	"$@" >"$T/out" 2>"$T/err" </dev/null || STATUS=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
	if [[ $STATUS -ne $want ]]; then
		{
			printf 'command: %s\n' "$*"
			printf 'exit status %d, expected %d\n' "$STATUS" "$want"
			printf -- '--- stdout\n%s\n--- stderr\n%s\n---\n' "$OUT" "$ERR"
		} >&2
		fail "'$*' exited $STATUS, expected $want"
	fi
	ok "$* -> exit $want"
}

# expect_contains STRING: the last output (stdout or stderr) contains STRING.
expect_contains() {
	if [[ $OUT != *"$1"* && $ERR != *"$1"* ]]; then
		printf -- '--- stdout\n%s\n--- stderr\n%s\n---\n' "$OUT" "$ERR" >&2
		fail "output does not contain '$1'"
	fi
	ok "output contains '$1'"
}

# expect_not_contains STRING: neither stdout nor stderr contains STRING.
expect_not_contains() {
	if [[ $OUT == *"$1"* || $ERR == *"$1"* ]]; then
		printf -- '--- stdout\n%s\n--- stderr\n%s\n---\n' "$OUT" "$ERR" >&2
		fail "output contains '$1'"
	fi
	ok "output does not contain '$1'"
}

# expect_match REGEX: some line of the last output (stdout or stderr) matches
# the extended regular expression REGEX.
expect_match() {
	# a here-string, not a pipe: grep -q quits at the first match, and under
	# pipefail the writer's SIGPIPE would read as "no match"
	if ! grep -Eq -- "$1" <<<"$OUT"$'\n'"$ERR"; then
		printf -- '--- stdout\n%s\n--- stderr\n%s\n---\n' "$OUT" "$ERR" >&2
		fail "no output line matches /$1/"
	fi
	ok "output matches /$1/"
}

# json_eval PYEXPR: evaluates a Python expression over `d`, the last stdout
# parsed as JSON; prints a string as is, anything else as compact JSON.
json_eval() {
	python3 - "$T/out" "$1" <<'PY' || fail "json_eval '$1' failed on: $OUT"
import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    d = json.load(f)
v = eval(sys.argv[2], {"d": d})
print(v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), ensure_ascii=False))
PY
}

# json_get PATH: a value of the last JSON output, e.g. json_get '["journal"]["seq"]'.
json_get() {
	json_eval "d$1"
}

# expect_eq ACTUAL EXPECTED WHAT
expect_eq() {
	[[ $1 == "$2" ]] || fail "$3: got '$1', expected '$2'"
	ok "$3 = $2"
}
