#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `tools/dev bench --quick` keeps working: the load benchmark runs at small
# sizes against the real daemon and prints every figure of the performance
# contract. No timing is asserted (the machine is shared); what is checked is
# that each figure is there and that every request was answered 2xx.
. "$(dirname "$0")/lib.sh"

: "${LOADBENCH:?LOADBENCH must name the loadbench binary}"
expect_exit 0 "$LOADBENCH" --quick --daemon "$GPULEDGERD" --dir "$T"
printf '%s\n' "$OUT" > "$T/bench.out"
for figure in fsync_rate generate_s \
	"closed_loop c=1 " "closed_loop c=4 " "closed_loop c=16 " "closed_loop c=64 " \
	"closed_loop c=256 " "sqlite ceiling" "ratio" quota_reads_alone reads_during_writes \
	reads_during_writes_ratio "open_loop rate=" p50 p99 max \
	"db_size http_load" "db_table http_load      idempotency" "db_size generated" \
	startup_first "startup live=" "startup history=" "rss live=" "B per live allocation" \
	"growth live=" "quota live=" "ratio to live=" "us/request" "cpu ratio" " rounds)" done; do
	expect_contains "$figure"
done
# every status counted, and all of them 201 (allocations) or 200 (reads)
if grep -E 'statuses' "$T/bench.out" | grep -vE 'statuses (20[01]:[0-9]+,?)+$' >&2; then
	fail "a request was answered other than 2xx"
fi
ok "every request answered 2xx"
pass
