/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the CLI's GPU-hours decimal parser (no floating point:
 * "12.5" is 45000 GPU-seconds exactly). What parses is written back with
 * gpu_hours_format() and, when that is exact (at most 4 decimals), parses
 * to the same amount.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	int64_t secs, back;
	char buf[64];

	if (gpu_hours_parse(s, &secs) == 0) {
		gpu_hours_format(secs, buf, sizeof(buf));
		if (secs % 9 == 0 && (gpu_hours_parse(buf, &back) != 0 || back != secs)) {
			fprintf(stderr, "'%s' -> %lld -> '%s' does not parse back\n", s,
				(long long)secs, buf);
			abort();
		}
	}
	free(s);
	return 0;
}
