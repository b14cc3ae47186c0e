#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Idempotency keys: a retry returns the first answer and changes nothing,
# also after a restart; the same key with another body is refused.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

start_daemon
expect_exit 0 gl --json --request-id key-1 grant lg --phase p1 --gpu B200 --gpu-hours 10 --reason once
first=$OUT
expect_exit 0 gl --json --request-id key-1 grant lg --phase p1 --gpu B200 --gpu-hours 10 --reason once
expect_eq "$OUT" "$first" "retry answer"
expect_exit 0 gl --json quota lg
expect_eq "$(json_get '["quota"][0]["granted_gpu_seconds"]')" 36000 "granted once"

expect_exit 1 gl --json --request-id key-1 grant lg --phase p1 --gpu B200 --gpu-hours 11 --reason once
expect_eq "$(json_get '["error"]["code"]')" idempotency_mismatch "mismatch code"

expect_exit 0 gl --json --request-id key-2 allocate lg --gpus 8 --pool skt-b200 --start 2025-09-01 --hours 1
alloc=$OUT
stop_daemon
start_daemon
expect_exit 0 gl --json --request-id key-2 allocate lg --gpus 8 --pool skt-b200 --start 2025-09-01 --hours 1
expect_eq "$OUT" "$alloc" "retry after restart"
expect_exit 0 gl --json allocations
expect_eq "$(json_eval 'len(d["allocations"])')" 1 "one allocation"
expect_exit 0 gl --json --request-id key-1 grant lg --phase p1 --gpu B200 --gpu-hours 10 --reason once
expect_eq "$OUT" "$first" "grant retry after restart"
expect_exit 0 gl --json status
# the config entry of the first start, the grant, the allocation (the
# restart's config is the same: no second config entry)
expect_eq "$(json_get '["journal"]["seq"]')" 3 "journal unchanged by retries"
stop_daemon
pass
