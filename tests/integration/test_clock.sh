#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The simulated clock: show, set, advance, never backwards, whole seconds of
# the years 0001-9999 only; a restart with --clock before the journal head's
# time refused (78); refused (77) on a daemon that runs on the real clock.
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

# Whole seconds, and the message says so rather than blaming the offset.
expect_exit 65 gl clock set 2026-01-18T00:00:00.5
expect_contains "fractional seconds are not supported"
expect_not_contains "offsets look like"

stop_daemon

# A restart never moves time back over what the journal recorded: an ended
# phase would take grants again and expire twice.
start_daemon
expect_exit 0 gl grant lg --phase p1 --gpu B200 --gpu-hours 10 --reason "stage 1"
expect_exit 0 gl clock set 2026-01-17T00:00
expect_exit 0 gl --json journal --consortium lg
expect_eq "$(json_eval '[e["kind"] for e in d["entries"]]')" '["grant","expire"]' "expired once"
stop_daemon
expect_exit 78 "$GPULEDGERD" --config "$EXAMPLE_CONFIG" --socket "$SOCK" --database "$DB" \
	--log "$LOG" --clock 2025-08-04T09:00
expect_contains "is before the journal head's time 2026-01-16T00:00:00+09:00"
CLOCK=2026-01-16T00:00 start_daemon   # the head's own time is fine
expect_exit 0 gl --json journal --consortium lg
expect_eq "$(json_eval '[e["kind"] for e in d["entries"]]')" '["grant","expire"]' "still expired once"
expect_exit 1 gl --json grant lg --phase p1 --gpu B200 --gpu-hours 1 --reason "late"
expect_eq "$(json_get '["error"]["code"]')" phase_closed "p1 stays closed"
stop_daemon

# Instants are years 0001-9999: the last day is reachable, the next one is
# refused, and whatever is shown can be typed back.
SOCK=$T/sock-far
DB=$T/db-far
start_daemon
expect_exit 0 gl --json clock set 9999-12-31
expect_eq "$(json_get '["clock"]')" "9999-12-31T00:00:00+09:00" "the last day"
expect_exit 65 gl --json clock advance 1d
expect_eq "$(json_get '["error"]["code"]')" bad_time "past 9999"
expect_contains "past the year 9999"
expect_exit 65 gl clock set 9999-12-31T23:59:59Z
expect_contains "outside the years 0001 to 9999"
expect_exit 0 gl --json clock advance 86399s
expect_eq "$(json_get '["clock"]')" "9999-12-31T23:59:59+09:00" "the last second"
expect_exit 0 gl clock set "$(json_get '["clock"]')"
expect_exit 0 gl --json clock show
expect_eq "$(json_get '["clock"]')" "9999-12-31T23:59:59+09:00" "read back"
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
