#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Tampering with the journal through the sqlite3 shell (an amount changed,
# an entry deleted, two swapped) makes verify fail at the right seq, and the
# daemon refuses to start on such a database.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

start_daemon
for h in 10 20 30 40; do
	expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours $h --reason "g$h"
done
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

tamper "amount" "UPDATE journal SET granted_delta = granted_delta + 3600 WHERE seq = 2" 2
tamper "delete" "DELETE FROM journal WHERE seq = 3" 3
tamper "swap" "UPDATE journal SET seq = -1 WHERE seq = 2; UPDATE journal SET seq = 2 WHERE seq = 3;
	UPDATE journal SET seq = 3 WHERE seq = -1" 2
pass
