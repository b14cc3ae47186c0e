#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A commit that fails (forced through the store's test hook, as a full disk
# would) answers 503 (CLI exit 69) to its batch, leaves nothing applied, and
# the daemon goes on from what is on disk: nothing is logged as done, and a
# clock move in that batch is undone.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

# commit 1 is the first start's config entry, 2 the grant: the third fails
GPULEDGERD_TEST_FAIL_COMMIT=3 start_daemon
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 10 --reason first
expect_exit 69 gl --json allocate lg --gpus 8 --pool skt-b200 --start 2025-09-01 --hours 1
expect_eq "$(json_get '["error"]["code"]')" storage_unavailable "error code"
expect_exit 0 gl --json quota lg
expect_eq "$(json_get '["quota"][0]["committed_gpu_seconds"]')" 0 "nothing committed"
expect_exit 0 gl --json allocations
expect_eq "$(json_eval 'len(d["allocations"])')" 0 "no allocation"
expect_exit 0 gl --json status
expect_eq "$(json_get '["journal"]["seq"]')" 2 "journal head"
expect_eq "$(json_get '["counters"]["failed_commits"]')" 1 "failed commits counted"
# the same request again now succeeds and chains onto what is on disk
expect_exit 0 gl --json allocate lg --gpus 8 --pool skt-b200 --start 2025-09-01 --hours 1
expect_eq "$(json_get '["allocation"]["id"]')" A-000001 "allocation id"
expect_exit 0 gl verify
# the log speaks only of what was committed: one "allocated", the second try's
python3 - "$LOG" <<'PY' || fail "the log says \"allocated\" for a booking whose commit failed"
import json, sys
events = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.startswith("{")]
allocated = [e for e in events if e.get("event") == "allocated"]
assert len(allocated) == 1, allocated
assert allocated[0]["allocation"] == "A-000001" and allocated[0]["seq"] == 3, allocated
PY
ok "\"allocated\" logged once, after its commit"
stop_daemon

# A clock move whose commit fails (the expiry it fired, its idempotency
# record) did not happen: the clock stays where it was, and the next move
# fires the expiry.
SOCK=$T/sock-clock
DB=$T/db-clock
GPULEDGERD_TEST_FAIL_COMMIT=3 start_daemon
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 10 --reason first
expect_exit 69 gl --json clock set 2026-01-20T00:00
expect_eq "$(json_get '["error"]["code"]')" storage_unavailable "clock move answered 503"
expect_exit 0 gl --json clock show
expect_eq "$(json_get '["clock"]')" 2025-08-04T09:00:00+09:00 "the clock did not move"
expect_exit 0 gl --json quota lg
expect_eq "$(json_get '["quota"][0]["expired_gpu_seconds"]')" 0 "nothing expired"
expect_exit 0 gl --json clock set 2026-01-20T00:00
expect_eq "$(json_get '["clock"]')" 2026-01-20T00:00:00+09:00 "moved on the second try"
expect_exit 0 gl --json quota lg
expect_eq "$(json_get '["quota"][0]["expired_gpu_seconds"]')" 36000 "expired at the phase end"
expect_exit 0 gl --json journal --consortium lg
expect_eq "$(json_eval '[(e["kind"], e["time"]) for e in d["entries"]]')" \
	'[["grant","2025-08-04T09:00:00+09:00"],["expire","2026-01-16T00:00:00+09:00"]]' "expiry at its instant"
expect_exit 0 gl verify
stop_daemon
pass
