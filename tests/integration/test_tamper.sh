#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Tampering with the journal through the sqlite3 shell (an amount changed,
# an entry deleted, two swapped) makes verify fail at the right seq, and the
# daemon refuses to start on such a database. So does tampering with any
# cached table, which the journal alone must account for: every column of
# an allocation row (pool, gpus, start, end, state, cost, ...), a row the
# journal never made or one it made and the table lost, a balance, a
# consortium's state, a consortium's view head.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

start_daemon
for h in 10 20 30 40; do
	expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours $h --reason "g$h"
done
expect_exit 0 gl allocate lg --gpus 1 --pool skt-b200 --start 2025-09-01 --hours 1 --note first
expect_exit 0 gl allocate lg --gpus 2 --pool skt-b200 --start 2025-09-02 --hours 1
expect_exit 0 gl cancel A-000002 --reason "not needed"
expect_exit 0 gl eliminate naver --effective 2025-08-05 --reason "evaluation"
expect_exit 0 gl verify
stop_daemon
cp "$DB" "$T/clean.db"

# tamper TITLE SQL WANT_SEQ
tamper() {
	cp "$T/clean.db" "$DB"
	rm -f "$DB-wal" "$DB-shm"
	start_daemon
	expect_exit 0 sqlite3 "$DB" "$2"
	expect_exit 1 gl --json verify
	expect_eq "$(json_get '["ok"]')" false "$1: verify ok"
	expect_eq "$(json_get '["first_bad_seq"]')" "$3" "$1: first bad seq"
	expect_exit 1 gl verify
	expect_contains "seq $3"
	stop_daemon
	expect_exit 1 "$GPULEDGERD" --config "$EXAMPLE_CONFIG" --socket "$SOCK" --database "$DB" \
		--log "$T/refused.log" --clock 2025-08-04T09:00
	expect_contains "refusing to start"
}

# tamper_cache TITLE SQL GIST...: a cached table edited; verify names every GIST
tamper_cache() {
	local title=$1 sql=$2 g
	shift 2
	cp "$T/clean.db" "$DB"
	rm -f "$DB-wal" "$DB-shm"
	start_daemon
	expect_exit 0 sqlite3 "$DB" "$sql"
	expect_exit 1 gl --json verify
	expect_eq "$(json_get '["ok"]')" false "$title: verify ok"
	expect_eq "$(json_get '["first_bad_seq"]')" null "$title: first bad seq (the journal is sound)"
	for g in "$@"; do
		expect_contains "$g"
	done
	stop_daemon
	expect_exit 1 "$GPULEDGERD" --config "$EXAMPLE_CONFIG" --socket "$SOCK" --database "$DB" \
		--log "$T/refused.log" --clock 2025-08-04T09:00
	expect_contains "refusing to start"
	expect_contains "$1"
}

tamper_cache "allocation columns" "UPDATE allocations SET gpus = 100, pool = 'nhn-b200',
	start = start + 60, \"end\" = \"end\" + 60, booked_end = booked_end - 60,
	stored = 'released', cost = 7, note = 'other', consortium = 'upstage', phase = 'p2',
	gpu = 'H200', created = created + 1, seq = 1, num = 9 WHERE id = 'A-000001'" \
	"allocation A-000001: cached gpus 100 but the journal gives 1" \
	"cached pool 'nhn-b200' but the journal gives 'skt-b200'" \
	"cached start" "cached end" "cached booked_end" \
	"cached state 'released' but the journal gives 'booked'" \
	"cached cost 7 but the journal gives 3600" "cached note 'other' but the journal gives 'first'" \
	"cached consortium 'upstage'" "cached phase 'p2'" "cached gpu 'H200'" \
	"cached created" "cached seq 1 but the journal gives 6" "cached num 9"
tamper_cache "cancelled allocation revived" \
	"UPDATE allocations SET stored = 'booked', cost = 7200 WHERE id = 'A-000002'" \
	"allocation A-000002: cached state 'booked' but the journal gives 'cancelled'"
tamper_cache "phantom allocation" "INSERT INTO allocations SELECT 'A-000009', 9, consortium,
	pool, gpu, phase, 500, start, \"end\", booked_end, stored, cost, note, created, seq
	FROM allocations WHERE id = 'A-000001'" \
	"allocation A-000009: cached but no journal entry reserved it"
tamper_cache "lost allocation" "DELETE FROM allocations WHERE id = 'A-000001'" \
	"allocation A-000001: the journal reserved it (seq 6) but the cache lacks it"
tamper_cache "balance" "UPDATE balances SET committed = committed - 3600" \
	"balance lg/p1/B200: cached granted/committed/expired/max_gpus"
tamper_cache "consortium state" "UPDATE consortium_state SET status = 'active', since = 0" \
	"consortium state naver: cached status 'active' but the journal gives 'eliminated'" \
	"consortium state naver: cached since 0"
tamper_cache "lost consortium state" "DELETE FROM consortium_state" \
	"consortium state naver: the journal has it but the cache lacks it"
tamper_cache "view head" "UPDATE view_heads SET entries = entries + 5 WHERE consortium = 'lg'" \
	"view lg: cached entries/last_seq"
tamper_cache "lost view head" "DELETE FROM view_heads WHERE consortium = 'naver'" \
	"view naver: the journal has it but the cached heads lack it"

# seq 1 is the first start's config entry: its extra is under the hash too
tamper "config entry" "UPDATE journal SET extra = replace(extra, 'skt-b200', 'skt-b201') WHERE seq = 1" 1
tamper "amount" "UPDATE journal SET granted_delta = granted_delta + 3600 WHERE seq = 2" 2
tamper "delete" "DELETE FROM journal WHERE seq = 3" 3
tamper "swap" "UPDATE journal SET seq = -1 WHERE seq = 2; UPDATE journal SET seq = 2 WHERE seq = 3;
	UPDATE journal SET seq = 3 WHERE seq = -1" 2
pass
