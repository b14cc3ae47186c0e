#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `gpuledger status` on a fresh daemon with a simulated clock.
# shellcheck disable=SC2119 # start_daemon and stop_daemon take optional arguments
. "$(dirname "$0")/lib.sh"

start_daemon

expect_exit 0 gl status
expect_contains "2025-08-04T09:00:00+09:00"

expect_exit 0 gl --json status
version=$(json_get '["version"]')
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || fail "version '$version' is not x.y.z"
ok "version $version"
expect_eq "$(json_get '["clock_mode"]')" simulated "clock_mode"
expect_eq "$(json_get '["clock"]')" "2025-08-04T09:00:00+09:00" "clock"
expect_eq "$(json_get '["journal"]["seq"]')" 1 "journal.seq (the first start's config entry)"
expect_eq "$(json_eval 'type(d["journal"]["hash"]).__name__')" str "type of journal.hash"

# GPULEDGER_SOCKET names the socket when --socket is not given.
expect_exit 0 env GPULEDGER_SOCKET="$SOCK" "$GPULEDGER" --json status
expect_eq "$(json_get '["clock_mode"]')" simulated "clock_mode via GPULEDGER_SOCKET"

stop_daemon
pass
