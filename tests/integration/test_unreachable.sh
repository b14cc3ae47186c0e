#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The CLI exits 69 and names the socket when no daemon listens on it.
# shellcheck disable=SC2119 # start_daemon and stop_daemon take optional arguments
. "$(dirname "$0")/lib.sh"

# No file at all.
expect_exit 69 "$GPULEDGER" --socket "$T/nobody.sock" status
expect_contains "$T/nobody.sock"

# The same through GPULEDGER_SOCKET, and with --json.
expect_exit 69 env GPULEDGER_SOCKET="$T/env.sock" "$GPULEDGER" --json status
expect_contains "$T/env.sock"

# A stale socket file: bound once, nobody listening any more.
python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()' "$T/stale.sock"
[[ -S $T/stale.sock ]] || fail "could not make a stale socket"
expect_exit 69 "$GPULEDGER" --socket "$T/stale.sock" program
expect_contains "$T/stale.sock"

pass
