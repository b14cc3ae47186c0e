/* SPDX-License-Identifier: MIT */
/*
 * Instants, durations and time zones as people write them. Inside, an
 * instant is int64 seconds since the Unix epoch (UTC); outside it is ISO
 * 8601. A date or time written without an offset is read in the program's
 * time zone, which is a fixed offset from UTC (DESIGN.md: Asia/Seoul is
 * +09:00 all year).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TIME_MIN INT64_MIN	/* "unset" for an open-ended start */
#define TIME_MAX INT64_MAX	/* "unset" for an open-ended end */
#define TIME_BUFSZ 40

/*
 * Parses "2026-01-16", "2026-01-16T09:30", "2026-01-16T09:30:00" (a space
 * may stand for the T), optionally followed by "Z", "+09:00" or "+0900".
 * Without an offset the time is read at tz_offset seconds east of UTC.
 * Whole seconds only, and only instants of time_in_range() in that zone.
 * Returns 0, or -EINVAL with *cause (static text) saying what is wrong.
 */
int time_parse(const char *s, int32_t tz_offset, int64_t *out,
	       const char **cause);

/*
 * Whether t is an instant the ledger holds: years 0001 to 9999 as shown at
 * tz_offset, so that whatever the daemon prints can be typed back (a zone
 * east of UTC shows 9999-12-31T23:00Z in the year 10000).
 */
bool time_in_range(int64_t t, int32_t tz_offset);
/*
 * A duration added to an instant (clock moves, an allocation's length):
 * 0 and t + d when the sum is in range at tz_offset, else -ERANGE.
 */
int time_add(int64_t t, int64_t d, int32_t tz_offset, int64_t *out);
/* The last instant in range at tz_offset (9999-12-31T23:59:59 there). */
int64_t time_last(int32_t tz_offset);

/*
 * Writes t as "2026-01-16T09:30:00+09:00" (or "...Z" for offset 0); TIME_MIN
 * and TIME_MAX as "-infinity" and "infinity". Any other int64 is written
 * exactly, without overflow; a year outside 0000-9999 (which time_parse()
 * refuses) carries its sign, "+10000-01-01T08:59:59+09:00".
 */
const char *time_format(int64_t t, int32_t tz_offset, char *buf, size_t len);

/*
 * Parses a duration: "90s", "15m", "2h", "3d", "1w", or combinations
 * such as "1d12h"; a bare number is seconds. Returns 0 or -EINVAL/-ERANGE.
 */
int duration_parse(const char *s, int64_t *out);

/*
 * Resolves a time zone: a fixed-offset IANA name (Asia/Seoul, Asia/Tokyo,
 * UTC, Etc/GMT-9, ...), or an explicit "+09:00"/"-05:30"/"Z". Zones with
 * daylight-saving rules are refused, since the ledger needs one offset.
 * Returns 0 or -EINVAL.
 */
int tz_parse(const char *name, int32_t *offset);

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant). */
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);
