/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the time, duration and time-zone parsers. The first byte
 * picks the parser and, for times, the zone. A time that parses is written
 * back with time_format() and must parse to the same instant; a duration
 * must come out non-negative.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/timefmt.h"
#include "daemon/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int32_t zones[] = {0, 9 * 3600, -5 * 3600, 14 * 3600, -12 * 3600, 5 * 3600 + 1800};
	if (size < 1)
		return 0;
	char *s = xmalloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	int32_t tz = zones[(data[0] >> 2) % (sizeof(zones) / sizeof(zones[0]))];
	int64_t t, t2, d;
	const char *why = NULL;
	char buf[TIME_BUFSZ];

	switch (data[0] & 3) {
	case 0:
	case 1:
		if (time_parse(s, tz, &t, &why) == 0) {
			time_format(t, tz, buf, sizeof(buf));
			if (time_parse(buf, tz, &t2, &why) != 0 || t2 != t) {
				fprintf(stderr, "'%s' -> %lld -> '%s' does not parse back\n", s,
					(long long)t, buf);
				abort();
			}
		} else if (why == NULL) {
			abort();
		}
		break;
	case 2:
		if (duration_parse(s, &d) == 0 && d < 0) {
			fprintf(stderr, "duration '%s' -> %lld\n", s, (long long)d);
			abort();
		}
		break;
	default: {
		int32_t off;
		(void)tz_parse(s, &off);
		break;
	}
	}
	free(s);
	return 0;
}
