#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Dry runs (--dry-run, "dry_run": true): every rule runs and the answer is
# the real request's, with "dry_run": true and the entries it would write;
# nothing changes: no entry, no idempotency record, no clock move. A dry
# run followed by the real request gives identical figures; a refusal is
# the same typed refusal.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

# What a change may touch: the journal head, the clock, quota, allocations.
snapshot() {
	expect_exit 0 gl --json status
	SNAP=$(json_eval '[d["journal"], d["clock"]]')
	expect_exit 0 gl --json quota
	SNAP+=$OUT
	expect_exit 0 gl --json allocations
	SNAP+=$OUT
}

# unchanged WHAT: the state is still the last snapshot's.
unchanged() {
	local before=$SNAP
	snapshot
	expect_eq "$SNAP" "$before" "$1 changed nothing"
}

# same_answer DRY REAL WHAT: the dry run's answer is the real one's, plus
# "dry_run": true; their entries differ only in what makes each unique
# (salt, hashes, request id).
same_answer() {
	python3 - "$1" "$2" <<'PY' || fail "$3: the dry run's answer is not the real one's"
import json, sys
dry, real = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert dry.pop("dry_run") is True, "no dry_run: true"
assert "dry_run" not in real, "a real answer says dry_run"
def strip(d):
    for e in d.get("entries", []):
        for k in ("salt", "hash", "prev_hash", "view_hash", "request_id"):
            e.pop(k, None)
    return d
dry, real = strip(dry), strip(real)
if "entries" not in real:
    dry.pop("entries")
assert dry == real, "\n%s\n%s" % (json.dumps(dry, sort_keys=True), json.dumps(real, sort_keys=True))
PY
	ok "$3: the dry run answered what the real request did"
}

start_daemon
expect_exit 0 gl --json status
base=$(json_get '["journal"]["seq"]')	# a config entry may come first
snapshot

# grant: the quota it would leave, and its entry
expect_exit 0 gl --json --dry-run grant lg --phase p1 --gpu B200 --gpu-hours 20000 --reason budget
dry=$OUT
expect_eq "$(json_get '["dry_run"]')" true "dry_run flag"
expect_eq "$(json_get '["quota"]["granted_gpu_seconds"]')" 72000000 "dry grant's quota"
expect_eq "$(json_eval '[e["kind"] for e in d["entries"]]')" '["grant"]' "dry grant's entries"
expect_eq "$(json_get '["entries"][0]["seq"]')" $((base + 1)) "the seq it would take"
unchanged "a dry grant"
expect_exit 0 gl --json grant lg --phase p1 --gpu B200 --gpu-hours 20000 --reason budget
same_answer "$dry" "$OUT" grant

# the human form says it was a dry run
expect_exit 0 gl --dry-run grant lg --phase p1 --gpu B200 --gpu-hours 1 --reason more
expect_contains "dry run: this is what would happen; nothing was changed"

# allocate: the cost and the placement an --earliest search would find
expect_exit 0 gl --json allocate lg --gpus 1024 --pool skt-b200 --start 2025-09-01T00:00 --hours 10
snapshot
expect_exit 0 gl --json --dry-run allocate lg --gpus 8 --gpu B200 --start 2025-09-01T00:00 --hours 2 --earliest
dry=$OUT
expect_eq "$(json_get '["allocation"]["start"]')" 2025-09-01T10:00:00+09:00 "dry placement"
expect_eq "$(json_get '["allocation"]["cost_gpu_seconds"]')" 57600 "dry cost"
expect_eq "$(json_get '["allocation"]["id"]')" A-000002 "dry id"
expect_eq "$(json_eval '[e["kind"] for e in d["entries"]]')" '["reserve"]' "dry allocate's entries"
unchanged "a dry allocate"
expect_exit 0 gl --json allocate lg --gpus 8 --gpu B200 --start 2025-09-01T00:00 --hours 2 --earliest
same_answer "$dry" "$OUT" allocate

# a refusal is the same typed refusal, and changes nothing either
snapshot
expect_exit 1 gl --json --dry-run allocate lg --gpus 8 --pool skt-b200 --start 2025-09-01T00:00 --hours 2
dry=$OUT
expect_eq "$(json_get '["error"]["code"]')" capacity_unavailable "dry refusal code"
expect_eq "$(json_get '["error"]["details"]["earliest_start"]')" 2025-09-01T10:00:00+09:00 "dry refusal hint"
unchanged "a refused dry run"
expect_exit 1 gl --json allocate lg --gpus 8 --pool skt-b200 --start 2025-09-01T00:00 --hours 2
expect_eq "$dry" "$OUT" "the same refusal"
expect_exit 1 gl --json --dry-run grant lg --phase p1 --gpu B200 --gpu-hours -30000 --reason cut
expect_eq "$(json_get '["error"]["code"]')" below_committed "dry adjustment refused"
expect_exit 1 gl --json --dry-run cancel A-999999
expect_eq "$(json_get '["error"]["code"]')" not_found "dry cancel of nothing"
unchanged "refused dry runs"

# cancel
expect_exit 0 gl --json --dry-run cancel A-000002 --reason "not needed"
dry=$OUT
expect_eq "$(json_get '["allocation"]["state"]')" cancelled "dry cancel's state"
expect_eq "$(json_eval '[(e["kind"], e["committed_delta_gpu_seconds"]) for e in d["entries"]]')" \
	'[["cancel",-57600]]' "dry cancel's refund"
unchanged "a dry cancel"
expect_exit 0 gl --json cancel A-000002 --reason "not needed"
same_answer "$dry" "$OUT" cancel

# the clock: a set tried is not made
snapshot
expect_exit 0 gl --json --dry-run clock set 2025-09-01T05:00
dry=$OUT
expect_eq "$(json_get '["clock"]')" 2025-09-01T05:00:00+09:00 "dry clock"
unchanged "a dry clock set"
expect_exit 0 gl --json clock show
expect_eq "$(json_get '["clock"]')" 2025-08-04T09:00:00+09:00 "the clock stood still"
expect_exit 0 gl --json clock set 2025-09-01T05:00
same_answer "$dry" "$OUT" "clock set"

# release of the running allocation
snapshot
expect_exit 0 gl --json --dry-run release A-000001 --at 2025-09-01T06:00 --reason done
dry=$OUT
expect_eq "$(json_get '["allocation"]["cost_gpu_seconds"]')" $((1024 * 6 * 3600)) "dry release's cost"
unchanged "a dry release"
expect_exit 0 gl --json release A-000001 --at 2025-09-01T06:00 --reason done
same_answer "$dry" "$OUT" release

# eliminate and reinstate, with what they would revoke
expect_exit 0 gl --json allocate lg --gpus 8 --pool skt-b200 --start 2025-10-01T00:00 --hours 4
snapshot
expect_exit 0 gl --json --dry-run eliminate lg --effective 2025-09-15 --reason "evaluation"
dry=$OUT
expect_eq "$(json_get '["revoked"]')" '["A-000003"]' "dry elimination's revocations"
unchanged "a dry elimination"
expect_exit 0 gl --json eliminate lg --effective 2025-09-15 --reason "evaluation"
same_answer "$dry" "$OUT" eliminate
snapshot
expect_exit 0 gl --json --dry-run reinstate lg --effective 2025-09-20 --reason repechage
dry=$OUT
unchanged "a dry reinstatement"
expect_exit 0 gl --json reinstate lg --effective 2025-09-20 --reason repechage
same_answer "$dry" "$OUT" reinstate

# idempotency: a dry run neither keeps a record nor answers from one
expect_exit 0 gl --json --dry-run --request-id dr-1 grant lg --phase p2 --gpu H200 --gpu-hours 5 --reason r
expect_exit 0 gl --json --request-id dr-1 grant lg --phase p2 --gpu H200 --gpu-hours 5 --reason r
real=$OUT
expect_exit 0 gl --json --dry-run --request-id dr-1 grant lg --phase p2 --gpu H200 --gpu-hours 5 --reason r
expect_eq "$(json_get '["dry_run"]')" true "a dry run under a used key is still a dry run"
expect_eq "$(json_get '["quota"]["granted_gpu_seconds"]')" 36000 "and counts from the state"
expect_exit 0 gl --json --request-id dr-1 grant lg --phase p2 --gpu H200 --gpu-hours 5 --reason r
expect_eq "$OUT" "$real" "the real key replays the real answer"

# a transfer (a route that came after the mechanism) is tried the same way
snapshot
expect_exit 0 gl --json --dry-run transfer reserve upstage --phase p2 --gpu H200 --gpu-hours 7 --reason leftover
dry=$OUT
expect_eq "$(json_eval '[e["kind"] for e in d["entries"]]')" '["transfer_out","transfer_in"]' "dry transfer's entries"
unchanged "a dry transfer"
expect_exit 0 gl --json transfer reserve upstage --phase p2 --gpu H200 --gpu-hours 7 --reason leftover
same_answer "$dry" "$OUT" transfer

# metered use: a dry run records no job, so the real report is no duplicate
snapshot
expect_exit 0 gl --json --dry-run meter lg --phase p1 --gpu B200 --source c1 --job j-1 --gpu-seconds 3600
dry=$OUT
expect_eq "$(json_get '["usage"]["gpu_seconds"]')" 3600 "dry usage"
unchanged "a dry usage report"
expect_exit 0 gl --json meter lg --phase p1 --gpu B200 --source c1 --job j-1 --gpu-seconds 3600
expect_eq "$(json_get '["duplicate"]')" false "the real report is the first"
same_answer "$dry" "$OUT" usage

# a read cannot be tried; a dry_run that is not a boolean is malformed
expect_exit 64 gl --dry-run quota
expect_contains "--dry-run"
if command -v curl >/dev/null; then
	status=$(curl -sS --max-time 10 --unix-socket "$SOCK" -o "$T/body" -w '%{http_code}' \
		-H 'Idempotency-Key: dr-bad' -H 'Content-Type: application/json' \
		-d '{"consortium":"lg","phase":"p2","gpu":"H200","gpu_seconds":1,"reason":"r","dry_run":"yes"}' \
		http://localhost/v1/grants)
	expect_eq "$status" 400 "a dry_run of the wrong type"
	expect_eq "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"]["details"]["field"])' "$T/body")" \
		dry_run "the field named"
fi

expect_exit 0 gl --json status
expect_eq "$(json_get '["journal"]["seq"]')" $((base + 13)) "only the real changes were journaled"
expect_exit 0 gl --json verify
expect_eq "$(json_get '["ok"]')" true "verify"
stop_daemon
pass
