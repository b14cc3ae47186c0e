/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: bytes into one connection of the real server and API
 * (tests/fuzz/harness.c), as a client on the Unix socket would send them:
 * request lines, headers, bodies, pipelined requests, follow streams and
 * whatever is no request at all. Every answer must come out without a
 * sanitizer report, and the loop must close with no handle left.
 */
#include "tests/fuzz/harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	harness_feed(data, size);
	return 0;
}
