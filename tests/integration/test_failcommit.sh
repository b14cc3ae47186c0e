#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A commit that fails (forced through the store's test hook, as a full disk
# would) answers 503 (CLI exit 69) to its batch, leaves nothing applied, and
# the daemon goes on from what is on disk.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

GPULEDGERD_TEST_FAIL_COMMIT=2 start_daemon
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 10 --reason first
expect_exit 69 gl --json allocate lg --gpus 8 --pool skt-b200 --start 2025-09-01 --hours 1
expect_eq "$(json_get '["error"]["code"]')" storage_unavailable "error code"
expect_exit 0 gl --json quota lg
expect_eq "$(json_get '["quota"][0]["committed_gpu_seconds"]')" 0 "nothing committed"
expect_exit 0 gl --json allocations
expect_eq "$(json_eval 'len(d["allocations"])')" 0 "no allocation"
expect_exit 0 gl --json status
expect_eq "$(json_get '["journal"]["seq"]')" 1 "journal head"
expect_eq "$(json_get '["counters"]["failed_commits"]')" 1 "failed commits counted"
# the same request again now succeeds and chains onto what is on disk
expect_exit 0 gl --json allocate lg --gpus 8 --pool skt-b200 --start 2025-09-01 --hours 1
expect_eq "$(json_get '["allocation"]["id"]')" A-000001 "allocation id"
expect_exit 0 gl verify
stop_daemon
pass
