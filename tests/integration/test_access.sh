#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A consortium over TCP with a bearer token sees only its own rows, may not
# change the ledger, and is told nothing about others; no token is 401; the
# journal follow stream is scoped; SIGHUP with a broken config keeps the old
# one; every log line is JSON and the token never appears in it.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

expect_exit 0 "$GPULEDGER" token new lg-ci --role consortium --consortium lg
token=$(printf '%s\n' "$OUT" | head -n 1)
[[ $token == glt_* ]] || fail "token has no glt_ prefix: $token"
sha=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
expect_contains "$sha"
printf '%s\n' "$token" >"$T/token"
chmod 600 "$T/token"
port=$(free_port)
sed -e "s/@PORT@/$port/" -e "s/@SHA@/$sha/" "$FIXTURES/itest-tcp.yaml.in" >"$T/config.yaml"
start_daemon "$T/config.yaml"
remote() { "$GPULEDGER" --url "http://127.0.0.1:$port" --token-file "$T/token" "$@"; }

expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 100 --reason r
expect_exit 0 gl grant upstage --phase p1 --gpu B200 --gpu-hours 200 --reason r
expect_exit 0 gl allocate upstage --gpus 8 --pool skt-b200 --start 2025-09-01 --hours 1

expect_exit 0 remote --json quota
expect_eq "$(json_eval '[q["consortium"] for q in d["quota"]]')" '["lg"]' "own quota only"
expect_exit 1 remote --json quota upstage
expect_eq "$(json_get '["error"]["code"]')" not_found "other consortium"
expect_exit 1 remote --json quota nosuch
expect_eq "$(json_get '["error"]["code"]')" not_found "missing consortium, same answer"
expect_exit 1 remote --json show A-000001
expect_eq "$(json_get '["error"]["code"]')" not_found "other's allocation"
expect_exit 0 remote --json allocations
expect_eq "$(json_eval 'len(d["allocations"])')" 0 "no foreign allocations"
expect_exit 0 remote --json journal
expect_eq "$(json_eval 'sorted({e["consortium"] for e in d["entries"]})')" '["lg"]' "own journal"
expect_exit 0 remote --json program
expect_eq "$(json_eval '[c["id"] for c in d["consortia"]]')" '["lg"]' "program shows itself"
expect_exit 77 remote grant lg --phase p1 --gpu B200 --gpu-hours 1 --reason self-service
expect_exit 77 remote verify
expect_exit 77 "$GPULEDGER" --url "http://127.0.0.1:$port" status
printf 'glt_wrong\n' >"$T/bad-token"
expect_exit 77 "$GPULEDGER" --url "http://127.0.0.1:$port" --token-file "$T/bad-token" status

# follow: the consortium's stream carries its own entries only
remote --json journal --follow >"$T/follow.out" 2>"$T/follow.err" &
follower=$!
sleep 0.5
expect_exit 0 gl grant upstage --phase p1 --gpu B200 --gpu-hours 1 --reason hidden
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 2 --reason visible
for _ in $(seq 50); do grep -q visible "$T/follow.out" && break; sleep 0.1; done
kill "$follower" 2>/dev/null || true
wait "$follower" 2>/dev/null || true
grep -q visible "$T/follow.out" || fail "follower did not get the new lg entry"
grep -q hidden "$T/follow.out" && fail "follower saw another consortium's entry"
python3 -c '
import json, sys
for line in open(sys.argv[1]):
    assert json.loads(line)["consortium"] == "lg"
' "$T/follow.out" || fail "follow lines are not lg JSON entries"
ok "follow stream scoped to lg"

# SIGHUP with a broken config: logged with FILE:LINE:COL, old config kept
cp "$T/config.yaml" "$T/config.good"
printf 'program: [\n' >"$T/config.yaml"
kill -HUP "$DAEMON_PID"
sleep 0.5
expect_exit 0 gl status
expect_exit 0 remote --json quota
grep -q 'config_invalid' "$LOG" || fail "no config_invalid log line"
grep -q 'config.yaml:2:1' "$LOG" || grep -q 'config.yaml:1:' "$LOG" || fail "no FILE:LINE:COL in log"
ok "broken config on SIGHUP keeps serving"
cp "$T/config.good" "$T/config.yaml"
kill -HUP "$DAEMON_PID"
sleep 0.3
grep -q 'config_reloaded' "$LOG" || fail "no config_reloaded log line"
ok "valid config on SIGHUP applied"

# A key that needs a restart (the TCP listener) is kept, and said so: the
# old listener keeps serving, the new port is not opened.
port2=$(free_port)
sed -e "s/127.0.0.1:$port/localhost:$port2/" "$T/config.good" >"$T/config.yaml"
expect_exit 0 "$GPULEDGERD" --check-config "$T/config.yaml"
kill -HUP "$DAEMON_PID"
for _ in $(seq 50); do
	grep -q '"config_key_needs_restart"' "$LOG" && break
	sleep 0.1
done
python3 -c '
import json, sys
keys = [o["key"] for o in map(json.loads, open(sys.argv[1]))
        if o["event"] == "config_key_needs_restart"]
assert keys == ["daemon.listen"], keys
' "$LOG" || fail "no config_key_needs_restart naming daemon.listen"
expect_exit 0 remote --json quota
ok "SIGHUP changing daemon.listen keeps the old listener and logs config_key_needs_restart"

stop_daemon
python3 -c '
import json, sys
for n, line in enumerate(open(sys.argv[1]), 1):
    o = json.loads(line)
    assert {"ts", "level", "event"} <= o.keys(), n
' "$LOG" || fail "a log line is not JSON with ts/level/event"
ok "every log line is JSON"
grep -qF "$token" "$LOG" && fail "the token appears in the log"
ok "no token in the log"

# The listener the check accepted (localhost:PORT) is one the daemon opens.
start_daemon "$T/config.yaml"
expect_exit 0 "$GPULEDGER" --url "http://localhost:$port2" --token-file "$T/token" --json quota
expect_eq "$(json_eval '[q["consortium"] for q in d["quota"]]')" '["lg"]' "quota over localhost"
stop_daemon
pass
