#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage errors exit 64 with a hint; --help exits 0 and lists the commands.
# shellcheck disable=SC2119 # start_daemon and stop_daemon take optional arguments
. "$(dirname "$0")/lib.sh"

start_daemon

expect_exit 64 gl frobnicate
expect_contains frobnicate
expect_contains help
expect_exit 64 gl --no-such-option status
expect_exit 64 gl
expect_exit 64 gl grant
expect_exit 64 gl grant lg

expect_exit 0 "$GPULEDGER" --help
for c in status program grant clock; do
	expect_contains "$c"
done

expect_exit 0 "$GPULEDGERD" --help
for o in --config --check-config --socket --database --log --clock; do
	expect_contains "$o"
done
expect_exit 64 "$GPULEDGERD" --no-such-option

# A consortium id the config accepts (team_a) is one token new accepts:
# the CLI and the config loader share one slug grammar.
expect_exit 0 "$GPULEDGER" token new team-a-ci --role consortium --consortium team_a
expect_contains "consortium: team_a"
expect_exit 65 "$GPULEDGER" token new ci --role consortium --consortium Team_A
expect_exit 65 "$GPULEDGER" token new _ci --role admin

# Nothing of the above reached the ledger.
expect_exit 0 gl --json status
expect_eq "$(json_get '["journal"]["seq"]')" 0 "journal.seq"

stop_daemon
pass
