#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `gpuledger program` shows the configured program: phases, pools, consortia,
# in JSON and as a table that carries Korean names intact, its columns
# aligned by wcwidth (emoji, combining marks).
# shellcheck disable=SC2119 # start_daemon and stop_daemon take optional arguments
. "$(dirname "$0")/lib.sh"

start_daemon

expect_exit 0 gl --json program
[[ -n $(json_get '["program"]["name"]') ]] || fail "program.name is empty"
ok "program.name present"
expect_eq "$(json_eval '[p["id"] for p in d["phases"]]')" '["p1","p2","p3"]' "phase ids"
expect_eq "$(json_eval '[(p["start"], p["end"]) for p in d["phases"] if p["id"] == "p1"]')" \
	'[["2025-08-04T00:00:00+09:00","2026-01-16T00:00:00+09:00"]]' "p1 window"
expect_eq "$(json_eval '[(p["start"], p["end"]) for p in d["phases"] if p["id"] == "p2"]')" \
	'[["2026-01-16T00:00:00+09:00","2026-08-01T00:00:00+09:00"]]' "p2 window"
expect_eq "$(json_eval '[p["gpus"] for p in d["pools"] if p["id"] == "skt-b200"]')" '[1024]' "skt-b200 gpus"
expect_eq "$(json_eval '[p["gpu"] for p in d["pools"] if p["id"] == "skt-b200"]')" '["B200"]' "skt-b200 gpu model"
expect_eq "$(json_eval '[c["joined"] for c in d["consortia"] if c["id"] == "motif"]')" \
	'["2026-02-20T00:00:00+09:00"]' "motif joined"
expect_eq "$(json_eval 'sorted(c["id"] for c in d["consortia"])')" \
	'["lg","motif","naver","ncai","skt","upstage"]' "consortium ids"
json_eval '"\n".join(c["name"] for c in d["consortia"])' >"$T/names"

# The human table shows every consortium's name intact, whatever its script.
check_table() {
	expect_exit 0 gl program
	python3 -c 'import sys; open(sys.argv[1], encoding="utf-8", errors="strict").read()' "$T/out" ||
		fail "'gpuledger program' printed invalid UTF-8"
	ok "table is valid UTF-8"
	while IFS= read -r name; do
		expect_contains "$name"
	done <"$T/names"
	expect_contains skt-b200
}
check_table
stop_daemon

# A program whose names are Korean.
SOCK=$T/sock2
DB=$T/db2
start_daemon "$FIXTURES/itest-minimal.yaml"
expect_exit 0 gl --json program
json_eval '"\n".join(c["name"] for c in d["consortia"])' >"$T/names"
grep -q '모티프테크놀로지스' "$T/names" || fail "Korean consortium name not returned intact in JSON"
ok "Korean name intact in JSON"
check_table
expect_contains 'LG AI연구원'
# Without a UTF-8 locale the CLI must still print, not crash.
expect_exit 0 env LC_ALL=C "$GPULEDGER" --socket "$SOCK" program
stop_daemon

# Column widths are the C library's (wcwidth): emoji that take two columns
# (U+1F680, U+2705), marks that take none (U+0E31, U+1AB0, U+200B). Once
# the CLI's own table said one column for each, and their rows shifted.
# Every row of the consortia table must start LEAD at the same column, as
# glibc's wcwidth counts it, under a UTF-8 locale or C (C.UTF-8 then).
sed -e 's/name: LG AI연구원,/name: "Rocket \\U0001F680 Lab \\u2705",/' \
	-e 's/name: 모티프테크놀로지스,/name: "x\\u0e31y\\u1ab0z\\u200b 모티프",/' \
	"$FIXTURES/itest-minimal.yaml" >"$T/wide.yaml"
SOCK=$T/sock3
DB=$T/db3
start_daemon "$T/wide.yaml"
for locale in C.UTF-8 C; do
	expect_exit 0 env LC_ALL=$locale "$GPULEDGER" --socket "$SOCK" program
	python3 - "$T/out" <<'PY' || fail "under LC_ALL=$locale the consortia table's columns do not line up: $OUT"
import ctypes, locale, sys
locale.setlocale(locale.LC_CTYPE, "C.UTF-8")
libc = ctypes.CDLL("libc.so.6")
def width(s):
    return sum(max(libc.wcwidth(ctypes.c_wchar(ch)), 0) for ch in s)
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
head = next(i for i, l in enumerate(lines) if l.startswith("CONSORTIUM"))
col = width(lines[head][:lines[head].index("LEAD")])
rows = [l for l in lines[head + 1:head + 3]]
for r in rows:
    lead = r.index("LG AI Research" if r.startswith("lg") else "Motif")
    assert width(r[:lead]) == col, (r, width(r[:lead]), col)
assert "\U0001F680" in rows[0] and "\u0e31" in rows[1], rows
PY
	ok "LEAD starts at one column in every row (LC_ALL=$locale)"
done
stop_daemon
pass
