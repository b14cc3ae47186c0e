#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Grants, exact quota, journal, verify through the real CLI; the hash chain
# re-checked by an independent implementation of README's encoding; an
# acknowledged grant survives SIGKILL.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

start_daemon

expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 1.5 --reason "pilot"
expect_contains "granted 1.5 GPU-hours"
expect_exit 0 gl --json quota lg
expect_eq "$(json_get '["quota"][0]["granted_gpu_seconds"]')" 5400 "granted seconds"
expect_eq "$(json_get '["quota"][0]["available_gpu_seconds"]')" 5400 "available seconds"
expect_eq "$(json_get '["quota"][0]["max_gpus"]')" null "no cap"

expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 1000 --max-gpus 64 --reason "stage 1"
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours -0.5 --reason "correction"
expect_exit 0 gl --json quota lg --phase p1 --gpu B200
expect_eq "$(json_get '["quota"][0]["granted_gpu_seconds"]')" $((5400 + 3600000 - 1800)) "granted after adjust"
expect_eq "$(json_get '["quota"][0]["max_gpus"]')" 64 "cap"

# commit some of it, then an adjustment below what is committed is refused
expect_exit 0 gl allocate lg --gpus 8 --pool skt-b200 --start 2025-09-01 --hours 100
expect_exit 1 gl --json grant lg --phase p1 --gpu B200 --gpu-hours -1000 --reason "too much"
expect_eq "$(json_get '["error"]["code"]')" below_committed "error code"
expect_exit 1 gl grant lg --phase p1 --gpu B200 --gpu-hours -1000 --reason "too much"
expect_contains "below_committed"

# bad input changes nothing
expect_exit 0 gl --json status
seq_before=$(json_get '["journal"]["seq"]')
expect_exit 65 gl grant lg --phase p1 --gpu B200 --gpu-hours 1.00001 --reason x
expect_exit 65 gl grant lg --phase nope --gpu B200 --gpu-hours 1 --reason x
expect_contains "unknown_phase"
expect_exit 1 gl grant nobody --phase p1 --gpu B200 --gpu-hours 1 --reason x
expect_contains "not_found"
expect_exit 65 gl grant lg --phase p1 --gpu A100 --gpu-hours 1 --reason x
expect_exit 64 gl grant lg --phase p1 --gpu B200 --gpu-hours 1
expect_exit 0 gl --json status
expect_eq "$(json_get '["journal"]["seq"]')" "$seq_before" "journal head after refusals"

# the journal, as tables and JSON
expect_exit 0 gl journal
expect_match '^ *1 .*config .*program changed; phases added: p1, p2, p3'
expect_match '^ *2 .*grant +lg +p1 +B200'
expect_match 'adjust'
expect_exit 0 gl --json journal --since 3
expect_eq "$(json_eval 'len(d["entries"])')" 3 "entries after seq 3"
expect_eq "$(json_get '["entries"][0]["seq"]')" 4 "first entry after since"
expect_eq "$(json_get '["entries"][1]["kind"]')" adjust "adjust entry"
expect_eq "$(json_get '["entries"][1]["granted_delta_gpu_seconds"]')" -1800 "adjust delta"

expect_exit 0 gl verify
expect_contains "ok: 6 entries"
expect_exit 0 gl --json verify
expect_eq "$(json_get '["ok"]')" true "verify ok"
expect_eq "$(json_get '["entries"]')" 6 "verify entries"

# An auditor re-checks both chains from the database alone, with README's
# recipe: the global one and each consortium's view.
expect_exit 0 sqlite3 -json "$DB" "SELECT seq, time, kind, actor, request_id, consortium, phase, gpu,
	allocation, pool, gpus, start, \"end\", granted_delta, committed_delta, expired_delta,
	max_gpus, reason, lower(hex(salt)) AS salt, hex(prev_hash) AS prev, hex(hash) AS hash,
	hex(view_hash) AS view, extra FROM journal ORDER BY seq"
python3 - "$T/out" <<'PY' || fail "independent hash check failed"
import hashlib, json, sys
rows = json.load(open(sys.argv[1]))
prev, views, salted = "0" * 64, {}, 0
for r in rows:
    assert r.pop("prev").lower() == prev, r["seq"]
    want, view = r.pop("hash").lower(), r.pop("view").lower()
    if not r["salt"]:
        del r["salt"]
    if r["extra"] is None:
        del r["extra"]
    else:
        r["extra"] = json.loads(r["extra"])
    salted += "salt" in r
    canon = json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    got = hashlib.sha256((prev + ":" + canon).encode()).hexdigest()
    assert got == want, (r["seq"], canon)
    prev = want
    if r["consortium"] is not None:
        v = hashlib.sha256((views.get(r["consortium"], "0" * 64) + ":" + canon).encode()).hexdigest()
        assert v == view, ("view", r["seq"])
        views[r["consortium"]] = v
assert salted == len(rows), "an entry without a salt"
print(len(rows), "entries re-checked")
PY
ok "hash chain and views re-checked independently"

# acknowledged means on disk: SIGKILL right after the answer loses nothing
expect_exit 0 gl grant lg --phase p2 --gpu B200 --gpu-hours 42 --reason "durable"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=
start_daemon
expect_exit 0 gl --json quota lg --phase p2
expect_eq "$(json_get '["quota"][0]["granted_gpu_seconds"]')" 151200 "grant after SIGKILL"
expect_exit 0 gl verify
stop_daemon
pass
