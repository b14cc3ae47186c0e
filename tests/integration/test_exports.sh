#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `gpuledger report usage` (JSON, CSV, table: integer-exact figures and
# utilisation = used / consumed), `gpuledger export kueue` (valid against
# Kueue's own v1beta2 CRD schemas, tests/fixtures/kueue, made strict about
# unknown fields, and the CEL rules that matter: kueue_validate.py;
# nominalQuota = the GPUs running at --at; Hold for an eliminated consortium
# and one whose metered use spent its budget) and `gpuledger export
# ood-balances FILE` (Open OnDemand's balance file, written atomically).
# shellcheck disable=SC2119 # start_daemon and stop_daemon take optional arguments
. "$(dirname "$0")/lib.sh"

PY=
for p in /usr/bin/python3 python3; do
	if "$p" -c 'import jsonschema, yaml' 2>/dev/null; then PY=$p; break; fi
done
if [[ -z $PY ]]; then
	echo "SKIP: no python3 with jsonschema and yaml (apt-get install python3-jsonschema python3-yaml)"
	exit 77
fi
VALIDATE=("$PY" "$SOURCE_ROOT/tests/integration/kueue_validate.py" "$FIXTURES/kueue")

GROUP=$(id -gn)
ME=$(id -un)
sed -e "s/@GROUP@/$GROUP/" "$FIXTURES/itest-exports.yaml.in" >"$T/config.yaml"
CLOCK=2025-09-01T09:00 start_daemon "$T/config.yaml"

expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 1000 --reason setup
expect_exit 0 gl grant lg --phase p1 --gpu H200 --gpu-hours 500 --reason setup
expect_exit 0 gl grant upstage --phase p1 --gpu B200 --gpu-hours 100 --reason setup
expect_exit 0 gl grant naver --phase p1 --gpu H200 --gpu-hours 50 --reason setup
expect_exit 0 gl --json allocate lg --gpus 16 --pool skt-b200 --start 2025-09-02T00:00 --hours 10
A_LG=$(json_get '["allocation"]["id"]')
expect_exit 0 gl --json allocate lg --gpus 8 --pool ncloud-h200 --start 2025-09-02T00:00 --hours 10
expect_exit 0 gl --json allocate upstage --gpus 8 --pool skt-b200 --start 2025-09-02T00:00 --hours 5
A_UP=$(json_get '["allocation"]["id"]')
expect_exit 0 gl --json allocate lg --gpus 8 --pool skt-b200 --start 2025-09-05T00:00 --hours 1
A_CANCELLED=$(json_get '["allocation"]["id"]')
expect_exit 0 gl cancel "$A_CANCELLED" --reason "not needed"
expect_exit 0 gl eliminate naver --effective 2025-09-01T12:00 --reason "evaluation"

# --- export kueue: the allocations running at --at --------------------------
expect_exit 0 gl export kueue --at 2025-09-02T02:00
printf '%s\n' "$OUT" >"$T/kueue.yaml"
expect_exit 0 "${VALIDATE[@]}" "$T/kueue.yaml"
expect_contains "valid ResourceFlavor b200"
expect_contains "valid ClusterQueue upstage"
expect_contains "valid LocalQueue naver"
cat >"$T/figures.py" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
cq = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "ClusterQueue"}
def quota(name):
    return {f["name"]: f["resources"][0]["nominalQuota"]
            for f in cq[name]["resourceGroups"][0]["flavors"]}
assert [d["kind"] for d in docs] == ["ResourceFlavor"] * 2 + ["ClusterQueue", "LocalQueue"] * 3, docs
assert quota("lg") == {"b200": 16, "h200": 8}, quota("lg")
assert quota("upstage") == {"b200": 8, "h200": 0}, quota("upstage")
assert quota("naver") == {"b200": 0, "h200": 0}, quota("naver")
assert cq["lg"]["stopPolicy"] == "None" and cq["upstage"]["stopPolicy"] == "None"
assert cq["naver"]["stopPolicy"] == "Hold", "eliminated at --at"
rf = [d for d in docs if d["kind"] == "ResourceFlavor"]
assert rf[0]["spec"]["nodeLabels"] == {"gpuledger/gpu-model": "B200"}, rf[0]
lq = [d for d in docs if d["kind"] == "LocalQueue"]
assert lq[0]["metadata"]["namespace"] == "lg" and lq[0]["spec"] == {"clusterQueue": "lg"}
print("figures ok")
PY
expect_exit 0 "$PY" "$T/figures.py" "$T/kueue.yaml"
expect_contains "figures ok"
# before the elimination takes effect and before the allocations start
expect_exit 0 gl --json export kueue --at 2025-09-01T10:00
printf '%s\n' "$OUT" >"$T/kueue-early.json"
expect_eq "$(json_eval '[(i["metadata"]["name"], i["spec"]["stopPolicy"], [f["resources"][0]["nominalQuota"] for f in i["spec"]["resourceGroups"][0]["flavors"]]) for i in d["items"] if i["kind"] == "ClusterQueue"]')" \
	'[["lg","None",[0,0]],["upstage","None",[0,0]],["naver","None",[0,0]]]' "nothing runs yet, nobody out yet"
expect_eq "$(json_eval '[d["apiVersion"], d["kind"]]')" '["v1","List"]' "--json is a List"
expect_exit 0 "${VALIDATE[@]}" "$T/kueue-early.json"
# at the daemon's clock by default
expect_exit 0 gl --json export kueue
expect_eq "$(json_eval '[i["spec"]["stopPolicy"] for i in d["items"] if i["kind"] == "ClusterQueue"]')" \
	'["None","None","None"]' "the clock's instant by default"
expect_exit 65 gl export kueue --at yesterday
expect_exit 64 gl export kueue FILE
expect_exit 64 gl export nosuch

# the validator is strict: an unknown field, a missing resource, a bad name
"$PY" - "$T/kueue-early.json" "$T/bad1.json" "$T/bad2.json" "$T/bad3.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
def cq(x):
    return [i for i in x["items"] if i["kind"] == "ClusterQueue"][0]
a = json.loads(json.dumps(d)); cq(a)["spec"]["stopPolcy"] = "Hold"
b = json.loads(json.dumps(d)); cq(b)["spec"]["resourceGroups"][0]["coveredResources"].append("cpu")
c = json.loads(json.dumps(d)); c["items"][0]["metadata"]["name"] = "B200"
for path, x in zip(sys.argv[2:], (a, b, c)):
    json.dump(x, open(path, "w"))
PY
expect_exit 1 "${VALIDATE[@]}" "$T/bad1.json"
expect_contains "stopPolcy"
expect_exit 1 "${VALIDATE[@]}" "$T/bad2.json"
expect_contains "covered resources"
expect_exit 1 "${VALIDATE[@]}" "$T/bad3.json"

# --- metered use spends upstage's budget: Hold --------------------------------
expect_exit 0 gl clock set 2025-09-02T06:00
expect_exit 0 gl meter "$A_UP" --source kr1 --job 7 --gpu-hours 40
expect_exit 0 gl meter "$A_LG" --source kr1 --job 8 --gpu-hours 72
expect_exit 0 gl --json export kueue --at 2025-09-02T05:00
expect_eq "$(json_eval '[i["spec"]["stopPolicy"] for i in d["items"] if i["kind"] == "ClusterQueue"]')" \
	'["None","None","Hold"]' "40 of 100 GPU-hours used: not spent"
expect_exit 0 gl meter upstage --phase p1 --gpu B200 --source kr1 --job 9 --gpu-hours 60
expect_exit 0 gl --json export kueue --at 2025-09-02T05:00
expect_eq "$(json_eval '[(i["metadata"]["name"], i["spec"]["stopPolicy"]) for i in d["items"] if i["kind"] == "ClusterQueue"]')" \
	'[["lg","None"],["upstage","Hold"],["naver","Hold"]]' "100 of 100 used: Hold"
printf '%s\n' "$OUT" >"$T/kueue-hold.json"
expect_exit 0 "${VALIDATE[@]}" "$T/kueue-hold.json"

# --- report usage ----------------------------------------------------------------
# at 06:00: lg B200 16 GPUs x 6 h = 96 consumed, 72 used: 75%; upstage 8 x 5 = 40 consumed
expect_exit 0 gl --json report usage
expect_eq "$(json_eval '[(r["consortium"], r["gpu"], r["consumed_gpu_seconds"], r["used_gpu_seconds"], r["utilisation_bp"]) for r in d["rows"]]')" \
	'[["lg","B200",345600,259200,7500],["lg","H200",172800,0,0],["upstage","B200",144000,360000,25000],["naver","H200",0,0,null]]' \
	"rows: consumed, used, utilisation in basis points"
expect_eq "$(json_eval '[(r["gpu"], r["granted_gpu_seconds"], r["utilisation_bp"]) for r in d["totals"]]')" \
	'[["B200",3960000,12647],["H200",1980000,0]]' "totals per model"
expect_eq "$(json_get '["utilisation"]')" used/consumed "says what utilisation is"
expect_exit 0 gl report usage
expect_match '^lg +B200 +1000 +160 +96 +72 +0 +75\.00%$'
expect_match '^naver +H200 +50 +0 +0 +0 +0 +-$'
expect_match '^total +B200 +1100 +'
expect_exit 0 gl report usage --csv
expect_eq "$(printf '%s\n' "$OUT" | head -n 1 | tr -d '\r')" \
	"consortium,gpu,granted_gpu_hours,committed_gpu_hours,consumed_gpu_hours,used_gpu_hours,expired_gpu_hours,utilisation" "CSV header"
expect_eq "$(printf '%s\n' "$OUT" | sed -n 2p | tr -d '\r')" "lg,B200,1000,160,96,72,0,75.00%" "CSV row"
expect_exit 0 gl report usage --phase p2
expect_contains "no quota"
expect_exit 64 gl report usage --csv --json
expect_exit 64 gl report nosuch

# --- export ood-balances ------------------------------------------------------------
expect_exit 0 gl export ood-balances "$T/balances.json"
expect_contains "to $T/balances.json"
cat >"$T/balances.py" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
me = sys.argv[2]
assert sorted(d) == ["balances", "config", "timestamp", "version"], d
assert d["version"] == 1 and isinstance(d["timestamp"], int)
assert d["config"] == {"unit": "GPU-hour", "project_type": "consortium"}, d["config"]
mine = [b for b in d["balances"] if b["user"] == me]
# lg: 1000 + 500 granted, 160 + 80 committed -> 1260 available GPU-hours
assert mine == [{"user": me, "project": "lg", "value": 1260}], mine
assert all(isinstance(b["value"], int) for b in d["balances"])
assert {b["project"] for b in d["balances"]} <= {"lg"}, "upstage's group does not exist here"
print("balances ok")
PY
expect_exit 0 "$PY" "$T/balances.py" "$T/balances.json" "$ME"
expect_contains "balances ok"
expect_eq "$(find "$T" -maxdepth 1 -name 'balances.json.tmp-*' | wc -l)" 0 "no temporary file left"
expect_exit 0 gl allocate lg --gpus 8 --pool skt-b200 --start 2025-10-01 --hours 10
expect_exit 0 gl export ood-balances "$T/balances.json"
expect_exit 0 "$PY" -c "import json,sys; d=json.load(open('$T/balances.json')); assert [b['value'] for b in d['balances'] if b['user']=='$ME'] == [1180], d"
expect_exit 73 gl export ood-balances "$T/no/such/dir/balances.json"
expect_exit 64 gl export ood-balances
stop_daemon
pass
