#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The simulated clock: show, set, advance, never backwards; refused (77) on a
# daemon that runs on the real clock.
# shellcheck disable=SC2119 # start_daemon and stop_daemon take optional arguments
. "$(dirname "$0")/lib.sh"

start_daemon   # simulated, at 2025-08-04T09:00

expect_exit 0 gl clock show
expect_contains "2025-08-04T09:00:00+09:00"
expect_exit 0 gl --json clock show
expect_eq "$(json_get '["clock"]')" "2025-08-04T09:00:00+09:00" "clock"
expect_eq "$(json_get '["clock_mode"]')" simulated "clock_mode"

expect_exit 0 gl clock set 2026-01-16T00:00
expect_exit 0 gl --json clock show
expect_eq "$(json_get '["clock"]')" "2026-01-16T00:00:00+09:00" "clock after set"

expect_exit 0 gl --json clock advance 1d
expect_eq "$(json_get '["clock"]')" "2026-01-17T00:00:00+09:00" "clock after advance 1d"
expect_eq "$(json_get '["clock_mode"]')" simulated "clock_mode after advance"
expect_exit 0 gl --json status
expect_eq "$(json_get '["clock"]')" "2026-01-17T00:00:00+09:00" "status clock"

# Never backwards; a refused move changes nothing.
expect_exit 1 gl clock set 2026-01-16T00:00
expect_exit 0 gl --json clock show
expect_eq "$(json_get '["clock"]')" "2026-01-17T00:00:00+09:00" "clock after refused set"

stop_daemon

# On the real clock, moving it is not allowed.
SOCK=$T/sock-real
DB=$T/db-real
CLOCK='' start_daemon
expect_exit 0 gl --json status
expect_eq "$(json_get '["clock_mode"]')" real "clock_mode without --clock"
expect_exit 77 gl clock set 2026-01-16T00:00
expect_exit 77 gl clock advance 1d
stop_daemon

pass
