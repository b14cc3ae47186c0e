#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A reload that revokes a credential ends the follow streams it opened
# (DESIGN "Reload"): three token holders follow lg's journal over TCP; a
# SIGHUP that keeps every token keeps every stream; one that removes a token
# line, or maps a token to another consortium, ends that token's stream at
# once (it receives nothing written after), while the others go on. The
# streams are read with curl, as a team's script would: what is tested is
# the daemon ending the stream, not what a client does next (the CLI's
# --follow reconnects, and is then answered as the new config says).
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

# new_token NAME: a consortium token for lg in $T/NAME, its sha256 in $SHA
new_token() {
	expect_exit 0 "$GPULEDGER" token new "$1" --role consortium --consortium lg
	printf '%s\n' "$OUT" | head -n 1 >"$T/$1"
	chmod 600 "$T/$1"
	SHA=$(head -n 1 "$T/$1" | tr -d '\n' | sha256sum | cut -d' ' -f1)
}
new_token gone
sha_gone=$SHA
new_token moved
sha_moved=$SHA
new_token kept
sha_kept=$SHA
port=$(free_port)

# config TOKEN-LINES...: the TCP fixture with these access.tokens lines
config() {
	sed -e "s/@PORT@/$port/" -e '/@SHA@/d' "$FIXTURES/itest-tcp.yaml.in" >"$T/config.new"
	local line
	for line in "$@"; do
		sed -i "/^  tokens:/a\\    $line" "$T/config.new"
	done
	mv "$T/config.new" "$T/config.yaml"
}
line_gone="- {name: gone, role: consortium, consortium: lg, sha256: \"$sha_gone\"}"
line_moved="- {name: moved, role: consortium, consortium: lg, sha256: \"$sha_moved\"}"
line_kept="- {name: kept, role: consortium, consortium: lg, sha256: \"$sha_kept\"}"
config "$line_gone" "$line_moved" "$line_kept"
start_daemon "$T/config.yaml"

# follow NAME: a token holder's follow stream into $T/NAME.out
declare -A pid
follow() {
	curl -sSN -H "Authorization: Bearer $(head -n 1 "$T/$1")" \
		"http://127.0.0.1:$port/v1/journal?follow=1" >"$T/$1.out" 2>"$T/$1.err" &
	pid[$1]=$!
}

# wait_line NAME TEXT: NAME's stream shows TEXT within 5 s
wait_line() {
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q -- "$2" "$T/$1.out" && return 0
		sleep 0.1
	done
	fail "$1's stream did not show '$2' within 5 s: $(cat "$T/$1.out" "$T/$1.err")"
}

# reload: SIGHUP, and wait until the daemon has applied it
reloads=0
reload() {
	local i
	reloads=$((reloads + 1))
	kill -HUP "$DAEMON_PID"
	for ((i = 0; i < 50; i++)); do
		[[ $(grep -c '"event":"config_reloaded"' "$LOG" || true) -ge $reloads ]] && return 0
		sleep 0.1
	done
	fail "the daemon did not apply reload $reloads within 5 s"
}

expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 1 --reason before
for n in gone moved kept; do follow $n; done
for n in gone moved kept; do wait_line $n before; done
ok "three token holders follow lg's journal"

# a reload that keeps every token keeps every stream
reload
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 1 --reason same-config
for n in gone moved kept; do wait_line $n same-config; done
for n in gone moved kept; do _alive "${pid[$n]}" || fail "$n's follower ended on a reload that kept its token"; done
ok "a reload that changes no credential keeps every stream"

# 'gone' loses its line, 'moved' now maps to another consortium, 'kept' stays
config "${line_moved/consortium: lg/consortium: upstage}" "$line_kept"
reload
for n in gone moved; do
	_wait_dead "${pid[$n]}" 5 || fail "$n's follower still runs 5 s after the reload revoked it"
	rc=0
	wait "${pid[$n]}" || rc=$?
	[[ $rc -eq 0 ]] || fail "$n's stream did not end cleanly (curl exit $rc): $(cat "$T/$n.err")"
done
ok "the revoked and the remapped token's streams ended"
_alive "${pid[kept]}" || fail "the kept token's follower ended: $(cat "$T/kept.err")"
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 1 --reason after-revocation
wait_line kept after-revocation
for n in gone moved; do
	grep -q after-revocation "$T/$n.out" && fail "$n's stream got an entry written after its revocation"
done
ok "the kept stream goes on; the ended ones got nothing after the reload"
[[ $(grep -c '"event":"follow_revoked"' "$LOG") -eq 2 ]] || fail "expected two follow_revoked log lines"
ok "each ended stream is logged as follow_revoked"

# and the revoked token is refused from now on
expect_exit 77 "$GPULEDGER" --url "http://127.0.0.1:$port" --token-file "$T/gone" status
kill "${pid[kept]}" 2>/dev/null || true
wait "${pid[kept]}" 2>/dev/null || true
stop_daemon
pass
