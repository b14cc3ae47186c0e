/* SPDX-License-Identifier: MIT */
/*
 * ISO 8601 instants and durations, by hand-checked integer arithmetic so
 * that parsing neither depends on the process's TZ nor on libc's lenient
 * mktime() normalisation (which would turn 2026-02-30 into March 2nd).
 */
#include "daemon/timefmt.h"
#include "daemon/util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_days(int64_t y, unsigned m)
{
	static const unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && leap(y) ? 29 : days[m - 1];
}

/* Reads exactly n digits. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/* "Z", "+09:00", "+0900", "+09"; returns false on anything else. */
static bool parse_offset(const char **pp, int32_t *off)
{
	const char *p = *pp;
	int h, m = 0;

	if (*p == 'Z' || *p == 'z') {
		*off = 0;
		*pp = p + 1;
		return true;
	}
	if (*p != '+' && *p != '-')
		return false;
	int sign = *p++ == '-' ? -1 : 1;
	if (!digits(&p, 2, &h))
		return false;
	if (*p == ':') {
		/* "+09:" is not an offset: a colon promises minutes */
		p++;
		if (!digits(&p, 2, &m))
			return false;
	} else if (*p >= '0' && *p <= '9' && !digits(&p, 2, &m)) {
		return false;
	}
	if (h > 14 || m > 59)
		return false;
	*off = sign * (h * 3600 + m * 60);
	*pp = p;
	return true;
}

/* 0001-01-01T00:00:00 and 9999-12-31T23:59:59 as local seconds since the epoch. */
#define LOCAL_FIRST INT64_C(-62135596800)
#define LOCAL_LAST INT64_C(253402300799)

bool time_in_range(int64_t t, int32_t tz_offset)
{
	int64_t local;
	return i64_add(t, tz_offset, &local) && local >= LOCAL_FIRST && local <= LOCAL_LAST;
}

int64_t time_last(int32_t tz_offset)
{
	return LOCAL_LAST - tz_offset;
}

int time_add(int64_t t, int64_t d, int32_t tz_offset, int64_t *out)
{
	int64_t sum;
	if (!i64_add(t, d, &sum) || !time_in_range(sum, tz_offset))
		return -ERANGE;
	*out = sum;
	return 0;
}

int time_parse(const char *s, int32_t tz_offset, int64_t *out,
	       const char **cause)
{
	const char *p = s;
	int y, mo, d, h = 0, mi = 0, sec = 0;
	int32_t off = tz_offset;
	const char *dummy;

	if (cause == NULL)
		cause = &dummy;
	if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) ||
	    *p++ != '-' || !digits(&p, 2, &d)) {
		*cause = "expected an ISO 8601 date or time such as 2026-01-16 or 2026-01-16T09:00";
		return -EINVAL;
	}
	if (mo < 1 || mo > 12 || d < 1 || (unsigned)d > month_days(y, mo)) {
		*cause = "no such date";
		return -EINVAL;
	}
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi)) {
			*cause = "expected a time of day as HH:MM or HH:MM:SS";
			return -EINVAL;
		}
		if (*p == ':') {
			p++;
			if (!digits(&p, 2, &sec)) {
				*cause = "expected seconds as two digits";
				return -EINVAL;
			}
		}
		if (h > 23 || mi > 59 || sec > 59) {
			*cause = "no such time of day";
			return -EINVAL;
		}
		if (*p == '.' || *p == ',') {
			*cause = "fractional seconds are not supported: instants are whole seconds "
				 "(write HH:MM:SS)";
			return -EINVAL;
		}
	}
	if (*p != '\0') {
		if (!parse_offset(&p, &off) || *p != '\0') {
			*cause = "unexpected text after the time (offsets look like Z or +09:00)";
			return -EINVAL;
		}
	}
	int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
	if (!time_in_range(t, tz_offset)) {
		*cause = "outside the years 0001 to 9999 (in the program's time zone)";
		return -EINVAL;
	}
	*out = t;
	return 0;
}

const char *time_format(int64_t t, int32_t tz_offset, char *buf, size_t len)
{
	if (t == TIME_MIN || t == TIME_MAX) {
		snprintf(buf, len, "%s", t == TIME_MIN ? "-infinity" : "infinity");
		return buf;
	}
	/*
	 * Floor division first, the offset (under a day) after: no sum of two
	 * big numbers, so every int64 has its date, without overflow.
	 */
	int64_t days = t / 86400, secs = t % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	secs += tz_offset % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	} else if (secs >= 86400) {
		secs -= 86400;
		days++;
	}
	int64_t y;
	unsigned m, d;

	civil_from_days(days, &y, &m, &d);
	/* a year time_parse() cannot read is written with its sign (ISO 8601's
	 * expanded form), so it is never taken for one it can */
	int n = snprintf(buf, len, y >= 0 && y <= 9999 ? "%04lld-%02u-%02uT%02d:%02d:%02d"
						       : "%+05lld-%02u-%02uT%02d:%02d:%02d",
			 (long long)y, m, d,
			 (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
	if (n < 0 || (size_t)n >= len)
		return buf;
	if (tz_offset == 0) {
		snprintf(buf + n, len - n, "Z");
	} else {
		int32_t a = tz_offset < 0 ? -tz_offset : tz_offset;
		snprintf(buf + n, len - n, "%c%02d:%02d", tz_offset < 0 ? '-' : '+',
			 a / 3600, a / 60 % 60);
	}
	return buf;
}

int duration_parse(const char *s, int64_t *out)
{
	const char *p = s;
	int64_t total = 0;

	if (*p == '\0')
		return -EINVAL;
	while (*p) {
		const char *start = p;
		int64_t v = 0, unit;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++)
			if (!i64_mul(v, 10, &v) || !i64_add(v, *p - '0', &v))
				return -ERANGE;
		switch (*p) {
		case 's': unit = 1; p++; break;
		case 'm': unit = 60; p++; break;
		case 'h': unit = 3600; p++; break;
		case 'd': unit = 86400; p++; break;
		case 'w': unit = 7 * 86400; p++; break;
		case '\0':
			/* only a string of bare digits is seconds: a
			 * trailing number without a unit ("1h30",
			 * "0h30") is refused */
			if (start == s) {
				unit = 1;
				break;
			}
			return -EINVAL;
		default:
			return -EINVAL;
		}
		if (!i64_mul(v, unit, &v) || !i64_add(total, v, &total))
			return -ERANGE;
	}
	*out = total;
	return 0;
}

/* Fixed-offset zones that people name; DST zones are deliberately absent. */
static const struct {
	const char *name;
	int32_t offset;
} zones[] = {
	{"Asia/Seoul", 9 * 3600},
	{"Asia/Tokyo", 9 * 3600},
	{"Asia/Pyongyang", 9 * 3600},
	{"Asia/Shanghai", 8 * 3600},
	{"Asia/Taipei", 8 * 3600},
	{"Asia/Singapore", 8 * 3600},
	{"Asia/Hong_Kong", 8 * 3600},
	{"Asia/Kolkata", 5 * 3600 + 1800},
	{"Asia/Dubai", 4 * 3600},
	{"UTC", 0},
	{"Etc/UTC", 0},
	{"GMT", 0},
	{"Etc/GMT", 0},
};

int tz_parse(const char *name, int32_t *offset)
{
	for (size_t i = 0; i < ARRAY_SIZE(zones); i++) {
		if (strcmp(name, zones[i].name) == 0) {
			*offset = zones[i].offset;
			return 0;
		}
	}
	/* Etc/GMT-9 is UTC+9: the POSIX sign is inverted */
	if (strncmp(name, "Etc/GMT", 7) == 0 && (name[7] == '+' || name[7] == '-')) {
		int64_t h;
		if (i64_parse(name + 8, &h) == 0 && h >= 0 && h <= 14 && name[8] != '-' &&
		    name[8] != '+') {
			*offset = (int32_t)(name[7] == '-' ? h * 3600 : -h * 3600);
			return 0;
		}
		return -EINVAL;
	}
	const char *p = name;
	int32_t off;
	if (parse_offset(&p, &off) && *p == '\0') {
		*offset = off;
		return 0;
	}
	return -EINVAL;
}
