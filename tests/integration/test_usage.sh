#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Usage errors exit 64 with a hint; --help exits 0 and lists the commands.
# Arguments that are not UTF-8, and reasons or notes with control
# characters, exit 65 naming the argument, before anything is sent.
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

# An argument that is not UTF-8 cannot go into the request's JSON or URL,
# and a reason or note with a control character breaks the text rule: each
# exits 65 with a message that names it (once it aborted, exit 134, or the
# note was silently dropped), before anything is sent.
expect_exit 65 gl grant $'\xff' --phase p1 --gpu B200 --gpu-hours 1 --reason x
expect_contains "argument 1 of grant is not valid UTF-8 (at byte 0): '\xff'"
expect_exit 65 gl grant lg --phase p1 --gpu B200 --gpu-hours 1 --reason $'ok \xe9'
expect_contains "--reason is not valid UTF-8"
expect_exit 65 gl eliminate $'l\xc3g' --effective 2025-09-01 --reason x
expect_contains "argument 1 of eliminate is not valid UTF-8"
expect_exit 65 gl allocate lg --gpus 1 --pool skt-b200 --start 2025-09-01 --hours 1 --note $'caf\xe9'
expect_contains "--note is not valid UTF-8"
expect_exit 65 gl grant lg --phase p1 --gpu B200 --gpu-hours 1 --reason $'a\x1fb'
expect_contains "--reason must not contain control characters (U+001F at byte 1): 'a\u001fb'"
expect_exit 65 gl cancel A-000001 --reason $'two\nlines'
expect_contains "U+000A"
expect_exit 65 gl allocate lg --gpus 1 --pool skt-b200 --start 2025-09-01 --hours 1 --note $'\xc2\x85'
expect_contains "U+0085"
expect_exit 65 gl quota $'\xff'
expect_exit 65 gl journal --consortium $'\xff'
expect_exit 65 gl allocations --pool $'\xed\xa0\x80'
expect_exit 65 gl show $'A-\xff'
expect_exit 65 "$GPULEDGER" --url $'http://localhost:1/\xff' status
expect_contains "--url is not valid UTF-8"
# Text without controls goes: accents, Korean, an emoji, a no-break space.
expect_exit 0 gl --json grant lg --phase p1 --gpu B200 --gpu-hours 1 --reason $'caf\u00e9 \ud55c \U0001F680\u00a0ok'
expect_eq "$(json_get '["entries"][0]["reason"]')" $'caf\u00e9 \ud55c \U0001F680\u00a0ok' "the reason, intact"

# Nothing of the above but that grant reached the ledger (seq 1 is the
# first start's config entry).
expect_exit 0 gl --json status
expect_eq "$(json_get '["journal"]["seq"]')" 2 "journal.seq"

stop_daemon
pass
