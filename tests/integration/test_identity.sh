#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Database identity. `gpuledgerd --init` creates the database with a random
# ledger id and refuses (73) a file that exists; a normal start refuses a
# missing or empty database (78) instead of making a new, empty ledger in
# its place. While the daemon runs, the database file and its WAL must stay
# the files at their paths: removing the database makes the next write
# answer 503 and the daemon exit 70, with every acknowledged change in the
# file it wrote; removing the WAL under load and then kill -9 loses no
# acknowledged change.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

CFG=$EXAMPLE_CONFIG
run_daemon() {
	"$GPULEDGERD" --config "$CFG" --socket "$SOCK" --database "$DB" --log "$LOG" \
		--clock 2025-08-04T09:00 "$@"
}

# --- --init ------------------------------------------------------------------------
expect_exit 78 run_daemon
expect_contains "does not exist"
expect_contains "--init"
[[ -e $DB ]] && fail "a start without a database created $DB"
ok "no database file was created"

expect_exit 0 "$GPULEDGERD" --config "$CFG" --database "$DB" --init
expect_match "created, ledger id [0-9a-f]{32}"
id=$(sqlite3 "$DB" 'SELECT id FROM ledger')
[[ $id =~ ^[0-9a-f]{32}$ ]] || fail "ledger id '$id'"
expect_contains "$id"
expect_eq "$(stat -c %a "$DB")" 600 "database mode"
expect_exit 73 "$GPULEDGERD" --config "$CFG" --database "$DB" --init
expect_contains "already exists"
expect_eq "$(sqlite3 "$DB" 'SELECT id FROM ledger')" "$id" "ledger id after a refused --init"
expect_exit 73 "$GPULEDGERD" --config "$CFG" --database "$T/no-dir/db" --init
expect_exit 0 "$GPULEDGERD" --config "$CFG" --database "$T/other.db" --init
[[ $(sqlite3 "$T/other.db" 'SELECT id FROM ledger') != "$id" ]] || fail "two ledgers, one id"
ok "each --init makes its own ledger id"

: >"$T/empty.db"
expect_exit 78 "$GPULEDGERD" --config "$CFG" --socket "$SOCK" --database "$T/empty.db" \
	--log "$LOG" --clock 2025-08-04T09:00
expect_contains "empty"
expect_eq "$(stat -c %s "$T/empty.db")" 0 "the empty file is left empty"

start_daemon
grep -q "\"ledger_id\":\"$id\"" "$LOG" || fail "the start is not logged with the ledger id"
ok "the start logs the ledger id"
stop_daemon

# wait_exit STATUS: the daemon exits by itself within 10 s with STATUS.
wait_exit() {
	local rc=0
	_wait_dead "$DAEMON_PID" 10 || fail "the daemon still runs"
	wait "$DAEMON_PID" || rc=$?
	DAEMON_PID=
	expect_eq "$rc" "$1" "daemon exit status"
}

# --- the database file removed while running ------------------------------------------
start_daemon
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 10000 --reason budget
expect_exit 0 gl --json allocate lg --gpus 1 --pool skt-b200 --start 2025-09-01 --hours 1
first=$(json_get '["allocation"]["id"]')
ln "$DB" "$T/orphan.db"	# the inode the daemon writes, kept to look at
rm "$DB"
expect_exit 69 gl --json allocate lg --gpus 2 --pool skt-b200 --start 2025-09-02 --hours 1
expect_contains storage_unavailable
wait_exit 70
grep -q '"event":"database_replaced"' "$LOG" || fail "database_replaced not logged"
ok "database_replaced logged"
expect_exit 0 sqlite3 "$T/orphan.db" 'SELECT id || ":" || gpus FROM allocations ORDER BY id'
expect_eq "$OUT" "$first:1" "what the removed file holds: the acknowledged allocation only"
expect_exit 78 run_daemon
expect_contains "does not exist"
# a new ledger where the old one was: nothing of the old one comes back
init_db
start_daemon
expect_exit 0 gl --json allocations
expect_eq "$(json_eval 'len(d["allocations"])')" 0 "allocations of the new ledger"
expect_exit 0 gl verify
stop_daemon

# --- the WAL removed under load, then kill -9 ------------------------------------------------
rm -f "$DB" "$DB-wal" "$DB-shm"
start_daemon
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 1000000 --reason budget
# writer W books 1 GPU-hour after 1 GPU-hour, each in its own window, and
# notes every one the daemon acknowledged
writer() {
	local w=$1 i start
	for ((i = 0; i < 2000; i++)); do
		printf -v start '%(%Y-%m-%dT%H:%M:%SZ)T' $((1756684800 + i * 3600))
		gl allocate lg --gpus 1 --pool skt-b200 --start "$start" \
			--hours 1 --note "w$w-$i" >/dev/null 2>&1 || return 0
		printf 'w%s-%s\n' "$w" "$i" >>"$T/acked.$w"
	done
}
pids=()
for w in 1 2 3 4; do
	writer "$w" &
	pids+=($!)
done
# under load: some allocations acknowledged, more coming
for ((i = 0; i < 100; i++)); do
	[[ $(cat "$T"/acked.* 2>/dev/null | wc -l) -ge 30 ]] && break
	sleep 0.1
done
rm "$DB-wal"
sleep 0.5
if _alive "$DAEMON_PID"; then
	kill -KILL "$DAEMON_PID"
fi
rc=0
wait "$DAEMON_PID" || rc=$?
DAEMON_PID=
for p in "${pids[@]}"; do wait "$p"; done
[[ $rc -eq 70 || $rc -eq 137 ]] || fail "daemon exit status $rc"
ok "the daemon ended with status $rc"
acked=$(cat "$T"/acked.* | wc -l)
[[ $acked -ge 30 ]] || fail "only $acked allocations were acknowledged under load"
start_daemon
expect_exit 0 gl verify
expect_exit 0 gl --json allocations --consortium lg
json_eval '"\n".join(sorted(a.get("note") or "" for a in d["allocations"]))' >"$T/stored"
sort "$T"/acked.* >"$T/acked"
missing=$(comm -23 "$T/acked" "$T/stored" | wc -l)
expect_eq "$missing" 0 "acknowledged allocations missing after the restart (of $acked)"
stop_daemon
pass
