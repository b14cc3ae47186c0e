#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# GET /metrics: Prometheus text that `promtool check metrics` accepts, with
# the names of DESIGN.md and exact figures after a known history (grants,
# an allocation, a refusal); a consortium token gets 403. (Label escaping is
# tested in tests/unit/test_metrics.c.)
. "$(dirname "$0")/lib.sh"

command -v promtool >/dev/null ||
	{ echo "SKIP: promtool is not installed (apt-get install prometheus)"; exit 77; }

# metrics FILE: GET /metrics over the Unix socket into FILE; prints the status.
metrics() {
	python3 - "$SOCK" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
head, _, body = data.partition(b"\r\n\r\n")
open(sys.argv[2], "wb").write(body)
lines = head.decode().split("\r\n")
ctype = [l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("content-type:")]
print(lines[0].split()[1], ctype[0] if ctype else "")
PY
}

start_daemon "$FIXTURES/itest-minimal.yaml"
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 100 --max-gpus 16 --reason r
expect_exit 0 gl allocate lg --gpus 8 --pool skt-b200 --start 2025-08-04T10:00 --hours 2
expect_exit 1 gl allocate lg --gpus 8 --pool skt-b200 --start 2025-09-01 --hours 1000
expect_exit 0 gl clock set 2025-08-04T11:00

read -r status ctype < <(metrics "$T/metrics.txt")
expect_eq "$status" 200 "GET /metrics status"
[[ $ctype == text/plain*version=0.0.4* ]] || fail "content type: $ctype"
expect_exit 0 promtool check metrics <"$T/metrics.txt"
ok "promtool check metrics accepts the exposition"

python3 - "$T/metrics.txt" <<'PY' || fail "metrics content wrong: $(cat "$T/metrics.txt")"
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
def value(series):
    m = re.search(r"^" + re.escape(series) + r" (\S+)$", text, re.M)
    assert m, series
    return m.group(1)
for name in ["gpuledger_build_info", "gpuledger_http_requests_total",
             "gpuledger_http_request_duration_seconds", "gpuledger_refusals_total",
             "gpuledger_store_commits_total", "gpuledger_store_commit_failures_total",
             "gpuledger_store_batch_entries", "gpuledger_journal_head_seq",
             "gpuledger_quota_granted_gpu_seconds", "gpuledger_quota_committed_gpu_seconds",
             "gpuledger_quota_available_gpu_seconds", "gpuledger_pool_capacity_gpus",
             "gpuledger_pool_booked_gpus"]:
    assert f"# TYPE {name} " in text, name
key = '{consortium="lg",phase="p1",gpu="B200"}'
assert value("gpuledger_quota_granted_gpu_seconds" + key) == "360000"
assert value("gpuledger_quota_committed_gpu_seconds" + key) == str(8 * 7200)
assert value("gpuledger_quota_available_gpu_seconds" + key) == str(360000 - 8 * 7200)
assert value('gpuledger_pool_capacity_gpus{pool="skt-b200",gpu="B200"}') == "1024"
assert value('gpuledger_pool_booked_gpus{pool="skt-b200",gpu="B200"}') == "8"
assert value('gpuledger_refusals_total{code="quota_exceeded"}') == "1"
assert value('gpuledger_http_requests_total{route="/v1/grants",code="200"}') == "1"
assert value('gpuledger_http_requests_total{route="/v1/allocations",code="201"}') == "1"
assert value('gpuledger_http_requests_total{route="/v1/allocations",code="409"}') == "1"
assert int(value("gpuledger_journal_head_seq")) >= 3
assert int(value("gpuledger_store_commits_total")) >= 3
assert value('gpuledger_store_commit_failures_total') == "0"
assert value('gpuledger_http_request_duration_seconds_bucket{le="+Inf"}') == \
    value("gpuledger_http_request_duration_seconds_count")
PY
ok "exact quota, pool, refusal and request figures"

grep -q '^gpuledger_build_info{version="' "$T/metrics.txt" || fail "no build_info"

# A consortium may not read the metrics (operator and admin only).
stop_daemon
tcp_consortium_config "$T/tcp.yaml"
DB=$T/db2
start_daemon "$T/tcp.yaml"
python3 - "$PORT" "$TOKEN" <<'PY' || fail "a consortium token read /metrics"
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
c.request("GET", "/metrics", headers={"Authorization": "Bearer " + sys.argv[2]})
r = c.getresponse()
body = r.read().decode()
assert r.status == 403, (r.status, body)
assert '"forbidden"' in body, body
PY
ok "a consortium token gets 403 forbidden"
stop_daemon
pass
