#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The web page's routes and GET /v1/pools/{id}/availability, without a
# browser (tests/browser/test_web.sh has one): GET /, /app.js and
# /style.css answer anyone, with or without a token, on TCP and on the
# Unix socket, as UTF-8 with the Content-Security-Policy, nosniff and
# no-referrer headers, while every API route still wants credentials; a
# consortium reads a pool's free GPUs per slot and nothing of who booked
# them (no booking, consortium, allocation or figure of another team).
. "$(dirname "$0")/lib.sh"

CSP="default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

token() {	# token NAME ROLE [CONSORTIUM] -> $T/tok-NAME, prints the hash
	local args=(token new "$1" --role "$2")
	[[ $# -gt 2 ]] && args+=(--consortium "$3")
	"$GPULEDGER" "${args[@]}" 2>/dev/null | head -n 1 >"$T/tok-$1"
	tr -d '\n' <"$T/tok-$1" | sha256sum | cut -d' ' -f1
}
PORT=$(free_port)
sed -e "s/@PORT@/$PORT/" -e "s/@SHA_LG@/$(token lg consortium lg)/" \
    -e "s/@SHA_UPSTAGE@/$(token upstage consortium upstage)/" \
    -e "s/@SHA_ADMIN@/$(token admin admin)/" \
    "$FIXTURES/itest-web.yaml.in" >"$T/web.yaml"
CLOCK=2025-09-01T09:00 start_daemon "$T/web.yaml"
URL=http://127.0.0.1:$PORT

# get WHERE PATH [TOKEN]: curl over TCP (WHERE=tcp) or the Unix socket;
# status in $CODE, headers in $T/h, body in $T/b
get() {
	local -a args=(-s -o "$T/b" -D "$T/h" -w '%{http_code}')
	[[ $# -gt 2 ]] && args+=(-H "Authorization: Bearer $3")
	if [[ $1 == unix ]]; then
		CODE=$(curl "${args[@]}" --unix-socket "$SOCK" "http://localhost$2")
	else
		CODE=$(curl "${args[@]}" "$URL$2")
	fi
}
header() {	# header NAME: its value in the last response (CR dropped)
	grep -i "^$1:" "$T/h" | head -n 1 | cut -d' ' -f2- | tr -d '\r'
}

for where in tcp unix; do
	for f in /:text/html /app.js:text/javascript /style.css:text/css; do
		path=${f%%:*} type=${f#*:}
		get "$where" "$path"
		expect_eq "$CODE" 200 "$where GET $path without credentials"
		expect_eq "$(header Content-Type)" "$type; charset=utf-8" "$where $path Content-Type"
		expect_eq "$(header Content-Security-Policy)" "$CSP" "$where $path Content-Security-Policy"
		expect_eq "$(header X-Content-Type-Options)" nosniff "$where $path X-Content-Type-Options"
		expect_eq "$(header Referrer-Policy)" no-referrer "$where $path Referrer-Policy"
	done
done
cmp -s "$T/b" "$SOURCE_ROOT/web/style.css" || fail "GET /style.css is not web/style.css"
ok "GET /style.css serves web/style.css byte for byte"
get tcp / "$(cat "$T/tok-lg")"
expect_eq "$CODE" 200 "GET / with a token too"
get tcp / not-a-token
expect_eq "$CODE" 200 "GET / with a wrong token (the page holds no data)"
grep -q '<script src="/app.js" defer></script>' "$T/b" || fail "the page does not load /app.js"
ok "the page loads its script from /app.js"

# every API route still wants credentials, the page's routes aside
for path in /v1/status /v1/program /v1/quota /v1/allocations /v1/journal \
	    /v1/pools/skt-b200/availability /v1/pools/skt-b200/calendar /metrics /index.html /x; do
	get tcp "$path"
	expect_eq "$CODE" 401 "GET $path without a token"
	expect_eq "$(header X-Content-Type-Options)" nosniff "a JSON error carries nosniff too"
	get tcp "$path" not-a-token
	expect_eq "$CODE" 401 "GET $path with a wrong token"
done
CODE=$(curl -s -o "$T/b" -w '%{http_code}' -X POST -H 'Idempotency-Key: k1' "$URL/")
expect_eq "$CODE" 401 "POST / without a token is not a page"
CODE=$(curl -s -o "$T/b" -w '%{http_code}' -X POST -H 'Idempotency-Key: k1' \
	-H "Authorization: Bearer $(cat "$T/tok-lg")" "$URL/")
expect_eq "$CODE" 405 "POST / is not allowed"

# --- availability ------------------------------------------------------------------
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 1000 --reason r
expect_exit 0 gl grant upstage --phase p1 --gpu B200 --gpu-hours 7777 --reason "업스테이지"
expect_exit 0 gl grant upstage --phase p1 --gpu H100 --gpu-hours 500 --reason h
expect_exit 0 gl allocate upstage --gpus 96 --pool skt-b200 --start 2025-09-02T00:00 --hours 24 --note "secret"
expect_exit 0 gl --json allocations upstage
UP_ALLOC=$(json_get '["allocations"][0]["id"]')
expect_exit 0 gl allocate lg --gpus 8 --pool skt-b200 --start 2025-09-02T12:00 --hours 2
expect_exit 0 gl allocate upstage --gpus 40 --pool nhn-b200 --start 2025-10-02T00:00 --hours 1

as_lg() { "$GPULEDGER" --url "$URL" --token-file "$T/tok-lg" "$@"; }
expect_exit 0 as_lg --json pool availability skt-b200 --from 2025-09-01 --to 2025-09-04 --step 1d
expect_eq "$(json_eval '[s["free"] for s in d["slots"]]')" "[1024,920,1024]" "free GPUs per day (96 + 8 booked on the 2nd)"
expect_eq "$(json_eval 'sorted(d)')" '["from","gpu","pool","slots","step_s","to"]' "the answer's keys"
expect_eq "$(json_eval 'sorted({k for s in d["slots"] for k in s})')" '["capacity","end","free","start"]' \
	"a slot holds capacity and free only: no booking, nobody's"
expect_not_contains upstage
expect_not_contains "$UP_ALLOC"
expect_not_contains '"booked"'
expect_exit 0 as_lg --json pool availability skt-b200 --from 2025-09-02T00:00 --to 2025-09-02T06:00 --step 3h
expect_eq "$(json_eval '[s["free"] for s in d["slots"]]')" "[928,928]" "free by 3-hour slots"
expect_exit 0 as_lg --json pool availability nhn-b200 --from 2025-09-30 --to 2025-10-03 --step 1d
expect_eq "$(json_eval '[[s["capacity"], s["free"]] for s in d["slots"]]')" "[[0,0],[2048,2048],[2048,2008]]" \
	"outside the lease nothing is free; then capacity minus what is booked"
expect_exit 0 as_lg pool availability skt-b200 --from 2025-09-01 --to 2025-09-03 --step 1d
expect_match '^2025-09-02T00:00:00\+09:00 +2025-09-03T00:00:00\+09:00 +920 +1024$'
# the same answer whoever asks: an admin's is the consortium's word for word
expect_exit 0 gl --json pool availability skt-b200 --from 2025-09-01 --to 2025-09-04 --step 1d
ADMIN_VIEW=$OUT
expect_exit 0 as_lg --json pool availability skt-b200 --from 2025-09-01 --to 2025-09-04 --step 1d
expect_eq "$OUT" "$ADMIN_VIEW" "an admin and a consortium read the same availability"
# and the consortium still may not read the calendar, which says more
expect_exit 77 as_lg calendar skt-b200
expect_exit 1 as_lg pool availability no-such-pool
expect_contains not_found
expect_exit 65 as_lg pool availability skt-b200 --step soon
expect_exit 64 as_lg pool availability
expect_exit 64 as_lg pool nothing skt-b200
expect_exit 65 as_lg pool availability skt-b200 --from 2025-09-03 --to 2025-09-02
expect_contains invalid_window
pass
