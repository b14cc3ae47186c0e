#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The audit checkpoint (schema 0008): a start-up audits only the hash chain
# after the last audited entry, and only while that entry still has the hash
# it was audited with. An old row edited while the daemon is down is not seen
# by such a start-up, but verify audits everything, catches it and removes
# the checkpoint, so the next start-up audits everything and refuses. An
# entry after the checkpoint, or the checkpoint's own entry, edited: the
# start-up refuses at once.
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
stop_daemon
expect_exit 0 grep -c '"audit":"full"' "$LOG"
cp "$DB" "$T/clean.db"
head=$(sqlite3 "$T/clean.db" "SELECT max(seq) FROM journal")
refused_start() {
	expect_exit 1 timeout 30 "$GPULEDGERD" --config "$EXAMPLE_CONFIG" --socket "$SOCK" --database "$DB" \
		--log "$T/refused.log" --clock 2025-08-04T09:00
	expect_contains "refusing to start"
}
# The clean database, a verify (which moves the checkpoint to its head) and
# one entry after it.
from_clean() {
	cp "$T/clean.db" "$DB"
	rm -f "$DB-wal" "$DB-shm"
	start_daemon
	expect_exit 0 gl verify
	expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 1 --reason tail
	stop_daemon
}
cp "$T/clean.db" "$DB"
rm -f "$DB-wal" "$DB-shm"
start_daemon
expect_exit 0 gl verify
checkpoint=$(sqlite3 "$DB" "SELECT seq FROM audit_checkpoint")
expect_eq "$checkpoint" "$head" "checkpoint after verify"
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 1 --reason tail
stop_daemon
expect_exit 0 sqlite3 "$DB" "UPDATE journal SET granted_delta = granted_delta + 3600 WHERE seq = 2"
start_daemon
expect_exit 0 grep -c '"audit":"chain after the checkpoint"' "$LOG"
expect_exit 1 gl --json verify
expect_eq "$(json_get '["first_bad_seq"]')" 2 "old row edited before the checkpoint: first bad seq"
expect_eq "$(sqlite3 "$DB" "SELECT count(*) FROM audit_checkpoint")" 0 "a failed verify removes the checkpoint"
stop_daemon
refused_start

# an entry after the checkpoint: the start-up's audit of the tail sees it
from_clean
expect_exit 0 sqlite3 "$DB" "UPDATE journal SET reason = 'edited' WHERE seq = $((head + 1))"
refused_start
expect_contains "seq $((head + 1))"

# the cached view heads (schema 0013) edited while the daemon is down: the
# start-up's audit of the tail goes on from the heads saved with the
# checkpoint, so an entry count, a hash or a head of a consortium without
# entries after the checkpoint is caught without counting the history
for edit in "UPDATE view_heads SET entries = entries + 1 WHERE consortium = 'lg'" \
	"UPDATE view_heads SET view_hash = zeroblob(32) WHERE consortium = 'naver'" \
	"DELETE FROM view_heads WHERE consortium = 'naver'"; do
	from_clean
	expect_eq "$(sqlite3 "$DB" "SELECT entries FROM audit_checkpoint_views WHERE consortium = 'lg'")" \
		"$(sqlite3 "$DB" "SELECT count(*) FROM journal WHERE consortium = 'lg' AND seq <= $head")" \
		"lg's head saved with the checkpoint"
	expect_exit 0 sqlite3 "$DB" "$edit"
	refused_start
	expect_contains "view "
done
# and unedited, the same start-up goes on from those heads
from_clean
start_daemon
expect_exit 0 grep -c '"audit":"chain after the checkpoint"' "$LOG"
expect_exit 0 gl --json status
lg_entries=$(sqlite3 "$DB" "SELECT count(*) FROM journal WHERE consortium = 'lg'")
expect_eq "$(sqlite3 "$DB" "SELECT entries FROM view_heads WHERE consortium = 'lg'")" "$lg_entries" \
	"lg's cached head"
stop_daemon

# the checkpoint's own entry edited: nothing is trusted, everything is audited
cp "$T/clean.db" "$DB"
rm -f "$DB-wal" "$DB-shm"
start_daemon
expect_exit 0 gl verify
stop_daemon
expect_exit 0 sqlite3 "$DB" "UPDATE journal SET reason = 'edited' WHERE seq = $head"
refused_start
expect_contains "seq $head"
pass
