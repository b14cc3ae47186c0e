#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Reading the journal (DESIGN "Additions > Trust > Journal reading"): without
# --since the last --limit entries (default 100) ending at the head, and a
# note on stderr of how many earlier ones were left out; --since SEQ pages
# forward (with a note of what remains); --all prints everything, in pages
# of the API. The API's page carries "earlier" and "later". Every listing
# command takes the consortium as its first argument or as --consortium
# ("Filters"); both at once must agree (64).
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

start_daemon

# Seq 1 is the first start's config entry; then 124 grants through one
# keep-alive connection (a CLI run each would be slow), grant "gN" at seq N:
# seq 25, 50, 75, 100 and 125 to upstage, the others to lg.
python3 - "$SOCK" <<'PY' || fail "the grants failed"
import http.client, json, socket, sys

class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(sys.argv[1])

c = Conn("localhost", timeout=30)
for i in range(2, 126):
    body = json.dumps({"consortium": "upstage" if i % 25 == 0 else "lg", "phase": "p1",
                       "gpu": "B200", "gpu_seconds": 3600, "reason": "g%d" % i})
    c.request("POST", "/v1/grants", body=body,
              headers={"Idempotency-Key": "journal-%d" % i, "Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    assert r.status == 200, (i, r.status)
PY
ok "124 grants"

# seqs CMD...: the first and last seq of a --json journal's entries, their
# number, and earlier/later (run in $(...): its ok line is dropped).
seqs() {
	expect_exit 0 "$@" >/dev/null
	json_eval '"%s..%s n=%d earlier=%s later=%s" % (d["entries"][0]["seq"] if d["entries"] else "-", d["entries"][-1]["seq"] if d["entries"] else "-", len(d["entries"]), d.get("earlier"), d.get("later"))'
}

# --- the tail ---------------------------------------------------------------------
expect_exit 0 gl journal
rows=$(grep -cE '^ *[0-9]+ +[0-9T:+-]+ +grant ' <<<"$OUT" || true)
expect_eq "$rows" 100 "rows of 'journal' (the last 100)"
expect_match '^ *26 .* g26$'
expect_match '^ *125 .* g125$'
expect_not_contains ' g25'
[[ $ERR == *"25 earlier entries not shown"* ]] || fail "no note on stderr of the 25 left out: $ERR"
ok "stderr: 25 earlier entries not shown"
expect_eq "$(seqs gl --json journal)" "26..125 n=100 earlier=25 later=0" "--json journal"
expect_eq "$(seqs gl --json journal --limit 10)" "116..125 n=10 earlier=115 later=0" "--limit 10"
expect_eq "$(seqs gl --json journal --limit 1000)" "1..125 n=125 earlier=0 later=0" "--limit 1000"
expect_exit 0 gl journal --limit 1000
expect_not_contains "not shown"

# --- paging forward -------------------------------------------------------------------
expect_eq "$(seqs gl --json journal --since 20 --limit 10)" "21..30 n=10 earlier=20 later=95" "--since 20 --limit 10"
expect_exit 0 gl journal --since 20 --limit 10
[[ $ERR == *"95 later entries not shown (go on with --since 30)"* ]] || fail "no note of what remains: $ERR"
ok "stderr: 95 later entries, go on with --since 30"
expect_eq "$(seqs gl --json journal --since 30)" "31..125 n=95 earlier=30 later=0" "--since 30"
expect_eq "$(seqs gl --json journal --since 125)" "-..- n=0 earlier=125 later=0" "--since the head"
expect_exit 0 gl journal --since 125
expect_contains "no journal entries"

# --- everything -----------------------------------------------------------------------
expect_eq "$(seqs gl --json journal --all)" "1..125 n=125 earlier=0 later=0" "--all"
expect_exit 0 gl --json journal --all
expect_eq "$(json_eval '[e["seq"] for e in d["entries"]] == list(range(1, 126))')" true "--all: every seq once, in order"
expect_exit 0 gl journal --all
rows=$(grep -cE '^ *[0-9]+ +[0-9T:+-]+ +grant ' <<<"$OUT" || true)
expect_eq "$rows" 124 "grant rows of 'journal --all' (and the config entry)"
expect_match '^ *1 +[0-9T:+-]+ +config '
expect_not_contains "not shown"
expect_eq "$(seqs gl --json journal --all --since 100)" "101..125 n=25 earlier=100 later=0" "--all --since 100"
expect_exit 64 gl journal --all --limit 5
expect_exit 64 gl journal --retry 5
expect_exit 65 gl journal --limit 100001

# --- a consortium's pages count its own entries ---------------------------------------
expect_eq "$(seqs gl --json journal upstage --limit 2)" "100..125 n=2 earlier=3 later=0" "journal upstage --limit 2"
expect_eq "$(seqs gl --json journal --consortium upstage --limit 2)" "100..125 n=2 earlier=3 later=0" \
	"journal --consortium upstage --limit 2"
expect_eq "$(seqs gl --json journal upstage --consortium upstage --since 25 --limit 1)" \
	"50..50 n=1 earlier=1 later=3" "both ways at once, agreeing"
expect_exit 64 gl journal upstage --consortium lg
expect_contains "given twice"

# --- the filter of quota and allocations, both ways -------------------------------------
expect_exit 0 gl allocate upstage --gpus 1 --pool skt-b200 --start 2025-09-01 --hours 1
expect_exit 0 gl allocate lg --gpus 1 --pool skt-b200 --start 2025-09-01 --hours 1
for args in "upstage" "--consortium upstage" "upstage --consortium upstage"; do
	# shellcheck disable=SC2086 # word splitting wanted
	expect_exit 0 gl --json quota $args
	expect_eq "$(json_eval 'sorted({q["consortium"] for q in d["quota"]})')" '["upstage"]' "quota $args"
	# shellcheck disable=SC2086
	expect_exit 0 gl --json allocations $args
	expect_eq "$(json_eval '[a["consortium"] for a in d["allocations"]]')" '["upstage"]' "allocations $args"
done
expect_exit 64 gl quota upstage --consortium lg
expect_exit 64 gl allocations lg --consortium upstage
expect_exit 0 gl --json allocations
expect_eq "$(json_eval 'len(d["allocations"])')" 2 "allocations without a filter"

stop_daemon
pass
