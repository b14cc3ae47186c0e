#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The web view in a real browser (Debian's chromium, driven by playwright-core
# from tests/browser/package-lock.json; no browser download). The daemon runs
# on a simulated clock with a TCP listener and a token per caller; the ledger
# holds two consortia with grants and allocations. test_web.mjs signs in as
# lg and checks that the page's figures are `gpuledger --json quota` and
# `allocations` for lg (GPU-hours as the CLI prints them), that nothing of
# upstage (names, ids, figures) is in the page or in any response it
# received, that a wrong token shows the sign-in error, that an admin sees
# every pool's calendar, and that over the Unix socket (a tunnel) the page
# works as the caller's Unix user without a token. Screenshots at 1280x800
# and 390x844 go to $ARTIFACTS (printed).
# shellcheck disable=SC2317
CLOCK=2025-09-01T09:00
. "$SOURCE_ROOT/tests/integration/lib.sh"

BROWSER_DIR=$SOURCE_ROOT/tests/browser
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
ARTIFACTS=${ARTIFACTS:-$T/artifacts}
mkdir -p "$ARTIFACTS"

[[ -x $CHROMIUM ]] || { echo "SKIP: no $CHROMIUM (apt-get install chromium: tools/dev setup)"; exit 77; }
command -v node >/dev/null || { echo "SKIP: no node (apt-get install nodejs npm: tools/dev setup)"; exit 77; }
if [[ ! -d $BROWSER_DIR/node_modules/playwright-core ]]; then
	# the pinned playwright-core, from the lock file; it downloads no browser
	(cd "$BROWSER_DIR" && npm ci --no-audit --no-fund --ignore-scripts) >"$T/npm.log" 2>&1 ||
		{ cat "$T/npm.log"; echo "SKIP: npm ci in tests/browser failed (no registry?)"; exit 77; }
fi

# --- the daemon: tokens, config, ledger ------------------------------------------
token() {	# token NAME ROLE [CONSORTIUM] -> $T/tok-NAME, prints the hash
	local args=(token new "$1" --role "$2")
	[[ $# -gt 2 ]] && args+=(--consortium "$3")
	"$GPULEDGER" "${args[@]}" 2>/dev/null | head -n 1 >"$T/tok-$1"
	chmod 600 "$T/tok-$1"
	tr -d '\n' <"$T/tok-$1" | sha256sum | cut -d' ' -f1
}
PORT=$(free_port)
sed -e "s/@PORT@/$PORT/" -e "s/@SHA_LG@/$(token lg consortium lg)/" \
    -e "s/@SHA_UPSTAGE@/$(token upstage consortium upstage)/" \
    -e "s/@SHA_ADMIN@/$(token admin admin)/" \
    "$FIXTURES/itest-web.yaml.in" >"$T/web.yaml"
start_daemon "$T/web.yaml"
URL=http://127.0.0.1:$PORT

expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 100000 --max-gpus 512 --reason "초기 배정 (initial)"
expect_exit 0 gl grant lg --phase p1 --gpu H100 --gpu-hours 2500.5 --reason "H100 보조"
expect_exit 0 gl grant upstage --phase p1 --gpu B200 --gpu-hours 7777 --max-gpus 333 --reason "업스테이지 배정"
expect_exit 0 gl allocate lg --gpus 128 --pool skt-b200 --start 2025-09-01T09:00 --hours 20 --note "warm-up run"
expect_exit 0 gl allocate upstage --gpus 96 --pool skt-b200 --start 2025-09-01T10:00 --hours 30 --note "upstage secret run"
expect_exit 0 gl allocate lg --gpus 256 --pool skt-b200 --start 2025-09-02T00:00 --hours 48
expect_exit 0 gl allocate lg --gpus 64 --pool kt-h100 --start 2025-09-05T00:00 --hours 10.5
expect_exit 0 gl allocate lg --gpus 32 --pool kt-h100 --start 2025-09-06T00:00 --hours 5
expect_exit 0 gl --json allocations lg --state reserved
CANCEL=$(json_eval '[a["id"] for a in d["allocations"] if a["gpus"] == 32][0]')
expect_exit 0 gl cancel "$CANCEL" --reason "plan changed"
expect_exit 0 gl clock advance 1d

# --- what the page must show, from the CLI --------------------------------------
as_lg() { "$GPULEDGER" --url "$URL" --token-file "$T/tok-lg" "$@"; }
expect_exit 0 as_lg --json quota;        printf '%s\n' "$OUT" >"$T/lg-quota.json"
expect_exit 0 as_lg quota;               printf '%s\n' "$OUT" >"$T/lg-quota.txt"
expect_exit 0 as_lg --json allocations;  printf '%s\n' "$OUT" >"$T/lg-allocations.json"
for p in skt-b200 kt-h100 nhn-b200; do
	expect_exit 0 as_lg --json pool availability "$p" --from 2025-09-02 --to 2025-09-16 --step 1d
	printf '%s\n' "$OUT" >"$T/avail-$p.json"
	expect_exit 0 gl --json calendar "$p" --from 2025-08-04 --to 2026-01-16
	printf '%s\n' "$OUT" >"$T/cal-$p.json"
done
# upstage, which lg must not learn anything of
expect_exit 0 gl --json quota upstage;       printf '%s\n' "$OUT" >"$T/up-quota.json"
expect_exit 0 gl --json allocations upstage; printf '%s\n' "$OUT" >"$T/up-allocations.json"

python3 - "$T" "$URL" "$SOCK" "$ARTIFACTS" "$CHROMIUM" >"$T/web.json" <<'PY'
import json, sys
t, url, sock, art, chromium = sys.argv[1:6]
def load(name):
    with open("%s/%s" % (t, name), encoding="utf-8") as f:
        return json.load(f)
def tok(name):
    with open("%s/tok-%s" % (t, name), encoding="utf-8") as f:
        return f.read().strip()
# the CLI's table, by column: quota rows of lg in GPU-hours as printed
lines = open("%s/lg-quota.txt" % t, encoding="utf-8").read().splitlines()
head = lines[1].split()
quota_text = [dict(zip(head, l.split())) for l in lines[2:] if l.strip()]
up_q, up_a = load("up-quota.json")["quota"], load("up-allocations.json")["allocations"]
strings = ["upstage", "Upstage", "업스테이지", "노타", "Nota", "Lablup", "upstage secret run",
           "업스테이지 배정"] + [a["id"] for a in up_a]
numbers = sorted({v for q in up_q for k, v in q.items() if k.endswith("_gpu_seconds") and v} |
                 {a["cost_gpu_seconds"] for a in up_a} | {333})
pools = ["skt-b200", "kt-h100", "nhn-b200"]
json.dump({
    "url": url, "sock": sock, "artifacts": art, "chromium": chromium,
    "tokens": {n: tok(n) for n in ("lg", "admin")},
    "quota": load("lg-quota.json")["quota"], "quota_text": quota_text,
    "allocations": load("lg-allocations.json")["allocations"],
    "availability": {p: load("avail-%s.json" % p) for p in pools},
    "calendars": {p: load("cal-%s.json" % p) for p in pools},
    "forbidden": {"strings": strings, "numbers": numbers,
                  "figures": ["7,777", "2,880"]},
}, sys.stdout, ensure_ascii=False)
PY
ok "expected figures written to $T/web.json"

echo "screenshots: $ARTIFACTS"
if ! (cd "$BROWSER_DIR" && timeout 120 node test_web.mjs "$T/web.json"); then
	fail "the browser test failed (screenshots so far in $ARTIFACTS)"
fi
ok "the browser checks passed; screenshots in $ARTIFACTS"
pass
