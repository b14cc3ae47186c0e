#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Config changes in the journal (issue 14 item 8): the first start of a
# database writes a config entry (the file's SHA-256, who applied it, the
# program's structure and what changed); a start or SIGHUP with the same
# structure writes none, even when other keys changed; one whose structure
# differs writes one that names what was added or changed, as when Motif
# was admitted in the repechage. verify recomputes every summary.
# shellcheck disable=SC2119
. "$(dirname "$0")/lib.sh"

CFG=$T/config.yaml
# the example without Motif: the five teams selected on 2025-08-04
python3 - "$EXAMPLE_CONFIG" >"$CFG" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8").read()
i = text.index("  - id: motif")
text = text[:i].replace("    motif: {groups: [team-motif]}\n", "")
sys.stdout.write(text)
PY
grep -q "motif" "$CFG" && fail "the fixture still has motif"

# config_entries: seq, actor, reason and sha256 of every config entry, as JSON (in $(...))
config_entries() {
	expect_exit 0 gl --json journal --all >/dev/null
	json_eval '[[e["seq"], e["actor"], e["reason"], e["extra"]["sha256"]] for e in d["entries"] if e["kind"] == "config"]'
}
# hup EVENT: SIGHUP, then wait for EVENT in the log
hup() {
	local n
	n=$(grep -c "\"event\":\"$1\"" "$LOG" || true)
	kill -HUP "$DAEMON_PID"
	for _ in $(seq 100); do
		[[ $(grep -c "\"event\":\"$1\"" "$LOG" || true) -gt $n ]] && return 0
		sleep 0.1
	done
	fail "no $1 after SIGHUP"
}

start_daemon "$CFG"
sha1=$(sha256sum "$CFG" | cut -d' ' -f1)
expect_eq "$(config_entries)" \
	"[[1,\"gpuledgerd start-up (uid $(id -u))\",\"program changed; phases added: p1, p2, p3; pools added: skt-b200, ncloud-h200, kt-h100, nhn-b200, kakao-b200, ncloud-gov-h200; consortia added: lg, skt, upstage, naver, ncai\",\"$sha1\"]]" \
	"the first start's config entry"
expect_exit 0 gl --json journal --all
expect_eq "$(json_eval '[p["id"] for p in d["entries"][0]["extra"]["structure"]["phases"]]')" '["p1","p2","p3"]' \
	"the structure it records"
expect_eq "$(json_eval 'd["entries"][0]["consortium"]')" null "it belongs to no consortium"
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 10 --reason "stage 1"

# the repechage selects nobody: a SIGHUP with the same structure, a comment added, writes nothing
printf '# the repechage call 2026-01-23 to 2026-02-12 selected nobody\n' >>"$CFG"
hup config_reloaded
expect_eq "$(config_entries | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 1 \
	"an unchanged structure writes no entry"

# Motif selected on 2026-02-20: the consortium added (and its group), and a SIGHUP
python3 - "$EXAMPLE_CONFIG" "$CFG" <<'PY'
import sys
example = open(sys.argv[1], encoding="utf-8").read()
text = open(sys.argv[2], encoding="utf-8").read()
text = text.replace("    ncai: {groups: [team-ncai]}\n",
                    "    ncai: {groups: [team-ncai]}\n    motif: {groups: [team-motif]}\n")
open(sys.argv[2], "w", encoding="utf-8").write(text + example[example.index("  - id: motif"):])
PY
sha2=$(sha256sum "$CFG" | cut -d' ' -f1)
hup config_journaled
expect_eq "$(config_entries | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[1][1:], ensure_ascii=False))')" \
	"[\"SIGHUP (sender unknown)\", \"consortia added: motif\", \"$sha2\"]" "Motif's admission in the journal"
expect_exit 0 gl --json journal --all
expect_eq "$(json_eval '[e["extra"]["summary"]["consortia"] for e in d["entries"] if e["kind"] == "config"][-1]')" \
	'{"added":["motif"],"changed":[],"removed":[]}' "the summary"
expect_exit 0 gl --json verify
expect_eq "$(json_get '["ok"]')" true "verify recomputes the summaries"
stop_daemon

# a restart with the same structure writes none; a changed phase end, one
start_daemon "$CFG"
expect_eq "$(config_entries | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 2 \
	"a restart with the same structure"
stop_daemon
sed -i 's/end: 2027-01-01}/end: 2027-01-08}/' "$CFG"
start_daemon "$CFG"
expect_eq "$(config_entries | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1][2])')" \
	"phases changed: p3" "a restart with p3's end moved"
# an entry altered in the database shows in verify
expect_exit 0 sqlite3 "$DB" "UPDATE journal SET reason = 'consortia added: nobody' WHERE kind = 'config' AND seq > 1"
expect_exit 1 gl --json verify
expect_eq "$(json_get '["ok"]')" false "an altered config entry"
stop_daemon
pass
