#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Backup and restore: `gpuledger backup FILE` under a write load gives a copy
# that `gpuledgerd --verify-db` passes and that holds every change
# acknowledged before the backup began; the documented restore (stop,
# verify the copy, swap it in, start) brings the daemon up on it with
# `verify` ok. An existing FILE is not overwritten; a consortium may not
# back up; --verify-db fails a tampered or missing file.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

start_daemon
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 100000 --reason load

# A writer in the background: each acknowledged allocation's id, in order.
(
	for i in $(seq 1 60); do
		start=$(printf '2025-09-%02dT%02d:00' $((1 + i / 24)) $((i % 24)))
		if out=$("$GPULEDGER" --socket "$SOCK" --json allocate lg --gpus 8 --pool skt-b200 \
			--start "$start" --hours 1 2>/dev/null); then
			printf '%s\n' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["allocation"]["id"])'
		fi
	done >"$T/acked"
) &
writer=$!
for _ in $(seq 200); do
	[[ $(wc -l <"$T/acked" 2>/dev/null || echo 0) -ge 10 ]] && break
	sleep 0.05
done
cp "$T/acked" "$T/acked-before"
expect_exit 0 gl backup "$T/copy.db"
expect_contains "copy.db"
wait "$writer"
[[ $(wc -l <"$T/acked-before") -ge 10 ]] || fail "the load had not started: $(wc -l <"$T/acked-before") acknowledged"
[[ -f $T/copy.db && ! -e $T/copy.db.partial ]] || fail "no whole copy"
ok "backup taken while $(wc -l <"$T/acked") allocations were being made"

expect_exit 0 "$GPULEDGERD" --verify-db "$T/copy.db"
expect_contains ": ok ("
python3 - "$T/copy.db" "$T/acked-before" <<'PY' || fail "the copy lacks acknowledged allocations"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
have = {r[0] for r in db.execute("select distinct allocation from journal where allocation is not null")}
want = [l.strip() for l in open(sys.argv[2]) if l.strip()]
missing = [a for a in want if a not in have]
assert not missing, missing
PY
ok "every allocation acknowledged before the backup is in the copy"

expect_exit 65 gl backup "$T/copy.db"
expect_contains "exists"

# --verify-db fails a missing file and a tampered copy
expect_exit 1 "$GPULEDGERD" --verify-db "$T/nosuch.db"
cp "$T/copy.db" "$T/bad.db"
sqlite3 "$T/bad.db" "UPDATE journal SET committed_delta = committed_delta + 1 WHERE seq = 3"
expect_exit 1 "$GPULEDGERD" --verify-db "$T/bad.db"
expect_contains "FAILED"
ok "--verify-db refuses a missing and a tampered file"

# Restore: stop, verify the copy, swap it in, start.
stop_daemon
expect_exit 0 "$GPULEDGERD" --verify-db "$T/copy.db"
rm -f "$DB" "$DB-wal" "$DB-shm"
mv "$T/copy.db" "$DB"
start_daemon
expect_exit 0 gl --json verify
expect_eq "$(json_get '["ok"]')" true "verify after restore"
first=$(head -n 1 "$T/acked-before")
expect_exit 0 gl --json show "$first"
ok "restored: the daemon serves the copy and verify is ok"

# A consortium may not take a backup.
stop_daemon
tcp_consortium_config "$T/tcp.yaml"
DB=$T/db2
start_daemon "$T/tcp.yaml"
expect_exit 77 "$GPULEDGER" --url "http://127.0.0.1:$PORT" --token-file "$T/token" backup "$T/c2.db"
[[ ! -e $T/c2.db && ! -e $T/c2.db.partial ]] || fail "a refused backup left a file"
ok "a consortium gets 403 and no file"
stop_daemon
pass
