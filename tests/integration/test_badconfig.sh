#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Config errors are reported as FILE:LINE:COL: message and exit 78, both by
# --check-config and at daemon start; good configs pass --check-config.
# Each tests/fixtures/itest-bad-*.yaml holds one error; its line carries a
# "# ERROR" comment (where two lines do, either may be reported).
# shellcheck disable=SC2119 # start_daemon and stop_daemon take optional arguments
. "$(dirname "$0")/lib.sh"

expect_exit 0 "$GPULEDGERD" --check-config "$EXAMPLE_CONFIG"
expect_exit 0 "$GPULEDGERD" --check-config "$FIXTURES/itest-minimal.yaml"

for f in "$FIXTURES"/itest-bad-*.yaml; do
	name=$(basename "$f")
	# timeout: a loader that expands aliases would run away here.
	expect_exit 78 timeout 10 "$GPULEDGERD" --check-config "$f"
	lines=$({ grep -n '# ERROR' "$f" || true; } | cut -d: -f1 | paste -sd'|' -)
	[[ -n $lines ]] || lines='[0-9]+'
	expect_match "(^|/)${name//./\\.}:($lines):[0-9]+: [^ ]"
done

# A missing file is a configuration error too, and names the file.
expect_exit 78 "$GPULEDGERD" --check-config "$T/no-such.yaml"
expect_contains "$T/no-such.yaml"

# The daemon refuses to start on a bad config, with the same report, and
# creates no socket.
bad=$FIXTURES/itest-bad-unknown-key.yaml
expect_exit 78 timeout 10 "$GPULEDGERD" --config "$bad" \
	--socket "$SOCK" --database "$DB" --log "$LOG" --clock 2025-08-04T09:00
line=$(grep -n '# ERROR' "$bad" | cut -d: -f1)
expect_match "(^|/)itest-bad-unknown-key\\.yaml:$line:[0-9]+: [^ ]"
[[ ! -e $SOCK ]] || fail "a daemon with a bad config created its socket"
ok "no socket left behind"

pass
