#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Journal confidentiality (issue 9, DESIGN "Journal confidentiality"). A
# consortium over TCP with a token is shown its own entries with their salt
# and view hash, never a hash or prev_hash of the global chain, and its
# status holds no global head or counter: the old leak (hashing guesses of
# another team's daemon-written expire entry, wedged between two of its own,
# against the published hashes) has nothing to aim at, and even with the
# hashes in hand the entry's random salt defeats the guessing. `gpuledger
# statement` exports the consortium's entries with their proofs, and
# `statement verify` checks one offline: ok as exported, failed after one
# byte is changed or an entry dropped.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

expect_exit 0 "$GPULEDGER" token new lg-ci --role consortium --consortium lg
token=$(printf '%s\n' "$OUT" | head -n 1)
sha=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
printf '%s\n' "$token" >"$T/token"
chmod 600 "$T/token"
port=$(free_port)
# the fixture's program, with a second phase for entries after the first one's expiry
sed -e "s/@PORT@/$port/" -e "s/@SHA@/$sha/" \
	-e '/id: p1,/a\  - {id: p2, name: "2nd stage", start: 2026-01-16, end: 2026-08-01}' \
	"$FIXTURES/itest-tcp.yaml.in" >"$T/config.yaml"
start_daemon "$T/config.yaml"
remote() { "$GPULEDGER" --url "http://127.0.0.1:$port" --token-file "$T/token" "$@"; }

# 1 is the program's config entry (the first start); lg: 2 grant, 4 expire,
# 6 grant; upstage: 3 grant, 5 expire (the hidden one); lg's two p2 grants 6
# and 7 are alike but for their seq and request id
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 100 --reason budget
expect_exit 0 gl grant upstage --phase p1 --gpu B200 --gpu-hours 137 --reason budget
expect_exit 0 gl clock set 2026-01-16T00:00
expect_exit 0 gl grant lg --phase p2 --gpu B200 --gpu-hours 10 --reason same
expect_exit 0 gl grant lg --phase p2 --gpu B200 --gpu-hours 10 --reason same
expect_exit 0 gl --json journal --since 0
expect_eq "$(json_eval '[(e["seq"], e["kind"], e["consortium"]) for e in d["entries"]]')" \
	'[[1,"config",null],[2,"grant","lg"],[3,"grant","upstage"],[4,"expire","lg"],[5,"expire","upstage"],[6,"grant","lg"],[7,"grant","lg"]]' \
	"the history"
expect_eq "$(json_eval 'all(len(e["hash"]) == 64 and len(e["salt"]) == 32 for e in d["entries"])')" \
	true "admins keep the global chain, and see the salts"

# --- what the consortium is shown ---------------------------------------------
expect_exit 0 remote --json journal --since 0
cp "$T/out" "$T/lg-journal.json"
expect_eq "$(json_eval '[e["seq"] for e in d["entries"]]')" '[2,4,6,7]' "lg's own entries only"
expect_eq "$(json_eval 'sorted({k for e in d["entries"] for k in e} & {"hash", "prev_hash"})')" '[]' \
	"no hash or prev_hash of the global chain in lg's journal"
expect_eq "$(json_eval 'all(len(e["salt"]) == 32 and len(e["view_hash"]) == 64 for e in d["entries"])')" \
	true "each of lg's entries carries its salt and view hash"
expect_eq "$(json_eval 'd["entries"][2]["salt"] != d["entries"][3]["salt"]')" true \
	"two alike entries have different salts"

# The old attack: entry 5 (upstage's expiry) lies between lg's 4 and 6, so
# hash(4) and prev_hash(6) = hash(5) were all it took. Neither is there.
python3 - "$T/lg-journal.json" <<'PY' || fail "lg's view still holds what the guessing needs"
import json, sys
e = {x["seq"]: x for x in json.load(open(sys.argv[1]))["entries"]}
assert "hash" not in e[4] and "prev_hash" not in e[6], (e[4], e[6])
PY
ok "the hashes around another consortium's entry are not shown"

expect_exit 0 remote --json status
expect_eq "$(json_eval 'd["journal"]')" \
	"$(json_eval '{"entries": 4, "last_seq": 7, "view_hash": d["journal"]["view_hash"]}')" \
	"status: lg's own entry count and last seq only"
expect_eq "$(json_eval '"counters" in d or "hash" in d["journal"] or "seq" in d["journal"]')" false \
	"status: no global head or counters"
expect_eq "$(json_get '["journal"]["view_hash"]')" \
	"$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["entries"][-1]["view_hash"])' "$T/lg-journal.json")" \
	"status: the view hash of lg's last entry"
expect_exit 0 remote status
expect_contains "4 entries, last seq 7"

# Even with both hashes in hand (an admin's view), guessing upstage's expired
# amount fails without the entry's salt, and finds it with the salt: the
# salt is what stops the search.
expect_exit 0 sqlite3 -json "$DB" "SELECT seq, time, kind, actor, request_id, consortium, phase, gpu,
	allocation, pool, gpus, start, \"end\", granted_delta, committed_delta, expired_delta,
	max_gpus, reason, lower(hex(salt)) AS salt, hex(prev_hash) AS prev, hex(hash) AS hash
	FROM journal WHERE seq = 5"
python3 - "$T/out" <<'PY' || fail "the brute force did not behave as expected"
import hashlib, json, sys
r = json.load(open(sys.argv[1]))[0]
prev, want, salt = r.pop("prev").lower(), r.pop("hash").lower(), r.pop("salt")
def found(with_salt):
    for hours in range(0, 1000):
        g = dict(r, expired_delta=hours * 3600)
        if with_salt:
            g["salt"] = salt
        c = json.dumps(g, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if hashlib.sha256((prev + ":" + c).encode()).hexdigest() == want:
            return hours
    return None
assert found(False) is None, "found without the salt"
assert found(True) == 137, "not found with the salt"
PY
ok "without the salt a guess of the hidden entry cannot be checked against its hash"

# The stream shows the same view.
remote --json journal --follow >"$T/follow.out" 2>"$T/follow.err" &
follower=$!
for _ in $(seq 50); do [[ $(wc -l <"$T/follow.out") -ge 4 ]] && break; sleep 0.1; done
expect_exit 0 gl grant upstage --phase p2 --gpu B200 --gpu-hours 1 --reason hidden
expect_exit 0 gl grant lg --phase p2 --gpu B200 --gpu-hours 2 --reason visible
for _ in $(seq 50); do grep -q visible "$T/follow.out" && break; sleep 0.1; done
kill "$follower" 2>/dev/null || true
wait "$follower" 2>/dev/null || true
python3 - "$T/follow.out" <<'PY' || fail "lg's follow stream is not its view"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert [e["seq"] for e in lines] == [2, 4, 6, 7, 9], [e["seq"] for e in lines]
for e in lines:
    assert e["consortium"] == "lg" and "hash" not in e and "prev_hash" not in e, e
    assert len(e["salt"]) == 32 and len(e["view_hash"]) == 64, e
PY
ok "lg's follow stream: its own entries, salts and view hashes, no global hashes"

# --- statements -----------------------------------------------------------------
expect_exit 0 remote statement
printf '%s\n' "$OUT" >"$T/statement.json"
expect_eq "$(json_eval '[e["seq"] for e in d["entries"]]')" '[2,4,6,7,9]' "the statement's entries"
expect_eq "$(json_eval 'd["view_base"]')" "$(printf '0%.0s' {1..64})" "a full statement starts at zeros"
expect_exit 0 "$GPULEDGER" statement verify "$T/statement.json"
expect_contains "ok: 5 entries of lg"
expect_exit 0 "$GPULEDGER" --json statement verify "$T/statement.json"
expect_eq "$(json_get '["ok"]')" true "verify --json ok"

# the view hashes are the journal's, and an admin's statement of lg is the same chain
expect_exit 0 remote --json journal --since 0
expect_eq "$(json_eval '[e["view_hash"] for e in d["entries"]]')" \
	"$(python3 -c 'import json,sys; print(json.dumps([e["view_hash"] for e in json.load(open(sys.argv[1]))["entries"]], separators=(",", ":")))' "$T/statement.json")" \
	"statement and journal agree on the view hashes"
expect_exit 0 gl statement --consortium lg
expect_eq "$(json_get '["view_head"]')" \
	"$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["view_head"])' "$T/statement.json")" \
	"an admin's statement of lg"
expect_exit 65 gl statement
expect_exit 1 remote --json statement --consortium upstage
expect_eq "$(json_get '["error"]["code"]')" not_found "another consortium's statement"

# --since: the entries after it, continuing the view hash of lg's entry 4
expect_exit 0 remote statement --since 5
printf '%s\n' "$OUT" >"$T/since.json"
expect_eq "$(json_eval '[e["seq"] for e in d["entries"]]')" '[6,7,9]' "statement --since 5"
expect_eq "$(json_eval 'd["view_base"]')" \
	"$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["entries"][1]["view_hash"])' "$T/statement.json")" \
	"view_base is lg's entry 4's view hash"
expect_exit 0 "$GPULEDGER" statement verify "$T/since.json"
expect_contains "ok: 3 entries of lg, seq 6 to 9"

# no daemon is needed to verify
stop_daemon
expect_exit 0 env GPULEDGER_SOCKET="$T/nowhere.sock" "$GPULEDGER" statement verify "$T/statement.json"

# one byte changed, anywhere that matters, and the check fails
# tampered NAME PYTHON-EXPR-ON-TEXT WANT
tampered() {
	python3 - "$T/statement.json" "$T/bad.json" "$2" <<'PY'
import sys
s = open(sys.argv[1]).read()
t = eval(sys.argv[3], {"s": s})
assert t != s and len(t) == len(s), "the tampering changed nothing"
open(sys.argv[2], "w").write(t)
PY
	expect_exit 1 "$GPULEDGER" statement verify "$T/bad.json"
	expect_contains "$3"
	ok "statement verify fails: $1"
}
tampered "an amount" 's.replace("\"granted_delta\":360000,", "\"granted_delta\":360001,", 1)' \
	"FAILED at seq 2"
tampered "a salt" '(lambda i: s[:i] + ("0" if s[i] != "0" else "1") + s[i + 1:])(s.index("\"salt\":\"") + 8)' \
	"FAILED at seq 2"
tampered "a reason" 's.replace("\"reason\":\"same\"", "\"reason\":\"sane\"", 1)' "FAILED at seq 6"
tampered "the head" '(lambda i: s[:i] + ("0" if s[i] != "0" else "1") + s[i + 1:])(s.index("\"view_head\":\"") + 13)' \
	"view_head is not the last entry"
tampered "not JSON" 's.replace("{", "[", 1)' "FAILED"

# an entry dropped from the middle breaks the chain at the next one
python3 - "$T/statement.json" "$T/bad.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
del d["entries"][1]
json.dump(d, open(sys.argv[2], "w"))
PY
expect_exit 1 "$GPULEDGER" statement verify "$T/bad.json"
expect_contains "FAILED at seq 6"
expect_exit 65 "$GPULEDGER" statement verify "$T/missing.json"
expect_exit 64 "$GPULEDGER" statement verify
pass
