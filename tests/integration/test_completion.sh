#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `gpuledger completion bash` prints a bash completion script made from the
# CLI's command table: it parses, completes a command name after a global
# option with its value, and a command's own option; the installed file is
# the same script.
. "$(dirname "$0")/lib.sh"

expect_exit 0 "$GPULEDGER" completion bash
printf '%s\n' "$OUT" >"$T/completion.bash"
bash -n "$T/completion.bash" || fail "the completion script does not parse"
got=$(bash -c '. "$1"; COMP_WORDS=(gpuledger --socket x gra); COMP_CWORD=3; _gpuledger
	printf "%s\n" "${COMPREPLY[*]}"
	COMP_WORDS=(gpuledger grant lg --max); COMP_CWORD=3; _gpuledger
	printf "%s\n" "${COMPREPLY[*]}"
	COMP_WORDS=(gpuledger ""); COMP_CWORD=1; _gpuledger
	printf "%s\n" "${#COMPREPLY[@]}"' _ "$T/completion.bash")
ncmd=$("$GPULEDGER" help | grep -c '^  [a-z]')
nglobal=8
expect_eq "$got" $'grant\n--max-gpus\n'$((ncmd + nglobal)) "completion of a command, an option, and the whole list"
expect_exit 64 "$GPULEDGER" completion zsh
built=$(dirname "$GPULEDGER")/../config/gpuledger
if [[ -f $built ]]; then
	cmp -s "$built" "$T/completion.bash" || fail "the built completion file differs"
	ok "the installed completion file is the same script"
fi
pass
