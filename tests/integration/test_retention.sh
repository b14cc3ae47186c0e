#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# daemon.idempotency_retention: an Idempotency-Key answers retries for that
# long; older records are pruned (at start-up and once a minute), and the key
# may then be used afresh. A record within the retention keeps refusing
# another body under its key. A retention that is not a duration is a config
# error with its position. A booking's record keeps a reference to its
# reserve entry, not its answer (schema 0010), and a retry, even after a
# restart and after the allocation was cancelled, gets the first answer's
# very bytes rebuilt from that entry.
. "$(dirname "$0")/lib.sh"

sed 's|^  log_level: info .*|&\n  idempotency_retention: 1d|' "$EXAMPLE_CONFIG" > "$T/config.yaml"
expect_exit 0 grep -c 'idempotency_retention: 1d' "$T/config.yaml"

CLOCK=2025-08-04T09:00 start_daemon "$T/config.yaml"
expect_exit 0 gl --request-id old-key grant lg --phase p1 --gpu B200 --gpu-hours 10 --reason first
expect_exit 0 gl clock set 2025-08-05T12:00
expect_exit 0 gl --request-id new-key grant lg --phase p1 --gpu B200 --gpu-hours 20 --reason second
expect_exit 1 gl --request-id old-key grant lg --phase p1 --gpu B200 --gpu-hours 11 --reason other
expect_contains "idempotency"
stop_daemon
# the two grants and the clock move
expect_eq "$(sqlite3 "$DB" "SELECT count(*) FROM idempotency")" 3 "records before the prune"

# a day and more later for old-key, less than a day for new-key (and the
# clock move, whose record bears the time it moved to)
CLOCK=2025-08-06T10:00 start_daemon "$T/config.yaml"
expect_exit 0 grep -c '"event":"idempotency_pruned","records":1' "$LOG"
expect_eq "$(sqlite3 "$DB" "SELECT count(*) FROM idempotency WHERE key = 'old-key'")" 0 "the old record pruned"
expect_eq "$(sqlite3 "$DB" "SELECT count(*) FROM idempotency WHERE key = 'new-key'")" 1 "the new record kept"
expect_exit 1 gl --request-id new-key grant lg --phase p1 --gpu B200 --gpu-hours 21 --reason other
expect_contains "idempotency"
expect_exit 0 gl --json --request-id old-key grant lg --phase p1 --gpu B200 --gpu-hours 11 --reason other
expect_eq "$(json_get '["quota"]["granted_gpu_seconds"]')" $(((10 + 20 + 11) * 3600)) "old key used afresh"
stop_daemon

CLOCK=2025-08-06T10:00 start_daemon "$T/config.yaml"
expect_exit 0 gl --json --request-id book-1 allocate lg --gpus 8 --pool skt-b200 --start 2025-09-01 \
	--hours 2 --note "by reference"
first=$OUT
expect_eq "$(sqlite3 "$DB" "SELECT response IS NULL, seq > 0 FROM idempotency WHERE key = 'book-1'")" \
	"1|1" "a booking's record: no text, a reference"
expect_exit 0 gl --json --request-id book-1 allocate lg --gpus 8 --pool skt-b200 --start 2025-09-01 \
	--hours 2 --note "by reference"
expect_eq "$OUT" "$first" "retry: the first answer"
id=$(json_get '["allocation"]["id"]')
expect_exit 0 gl cancel "$id" --reason "changed plans"
stop_daemon
CLOCK=2025-08-06T11:00 start_daemon "$T/config.yaml"
expect_exit 0 gl --json --request-id book-1 allocate lg --gpus 8 --pool skt-b200 --start 2025-09-01 \
	--hours 2 --note "by reference"
expect_eq "$OUT" "$first" "retry after a restart and a cancel: the first answer"
expect_exit 1 gl --request-id book-1 allocate lg --gpus 4 --pool skt-b200 --start 2025-09-01 --hours 2
expect_contains "idempotency"
stop_daemon

sed 's|^  log_level: info .*|&\n  idempotency_retention: forever|' "$EXAMPLE_CONFIG" > "$T/bad.yaml"
expect_exit 78 "$GPULEDGERD" --check-config "$T/bad.yaml"
expect_contains "idempotency_retention"
expect_contains "expected a duration"
pass
