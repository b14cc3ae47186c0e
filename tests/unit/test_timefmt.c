/* SPDX-License-Identifier: MIT */
/*
 * Tests of instants, durations and time zones as people write them: ISO
 * 8601 dates and times read in the program's zone unless an offset says
 * otherwise, impossible dates refused rather than normalised, the round
 * trip through time_format(), and fixed-offset zones only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "daemon/timefmt.h"
#include "daemon/util.h"

#define SEOUL (9 * 3600)

static int64_t tp(const char *s, int32_t tz)
{
	int64_t t = 42;
	const char *cause = NULL;
	int rc = time_parse(s, tz, &t, &cause);
	if (rc != 0)
		print_error("time_parse(\"%s\"): %s\n", s, cause);
	assert_int_equal(rc, 0);
	return t;
}

/* Refused, with a cause that contains gist. */
static void tp_fail(const char *s, const char *gist)
{
	int64_t t = 42;
	const char *cause = NULL;
	int rc = time_parse(s, SEOUL, &t, &cause);
	if (rc != -EINVAL || cause == NULL || strstr(cause, gist) == NULL)
		print_error("time_parse(\"%s\") = %d (%s), wanted '%s'\n", s, rc,
			    cause ? cause : "no cause", gist);
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(cause, gist));
	assert_int_equal(t, 42);
}

static void test_time_parse(void **state)
{
	/* a date is midnight in the given zone */
	assert_int_equal(tp("2026-01-16", SEOUL), 1768489200);
	assert_int_equal(tp("2026-01-16", 0), 1768489200 + SEOUL);
	assert_int_equal(tp("2026-01-16T09:30", SEOUL), 1768523400);
	assert_int_equal(tp("2026-01-16t09:30", SEOUL), 1768523400);
	assert_int_equal(tp("2026-01-16 09:30", SEOUL), 1768523400);
	assert_int_equal(tp("2026-01-16T09:30:15", SEOUL), 1768523415);
	/* an offset overrides the zone */
	assert_int_equal(tp("2026-01-16T09:30:00Z", SEOUL), 1768555800);
	assert_int_equal(tp("2026-01-16T09:30:00z", SEOUL), 1768555800);
	assert_int_equal(tp("2026-01-16T09:30:00+00:00", SEOUL), 1768555800);
	assert_int_equal(tp("2026-01-16T09:30+09:00", 0), 1768523400);
	assert_int_equal(tp("2026-01-16T09:30+0900", 0), 1768523400);
	assert_int_equal(tp("2026-01-16T09:30+09", 0), 1768523400);
	assert_int_equal(tp("2026-01-16T09:30:00-05:30", SEOUL), 1768575600);
	assert_int_equal(tp("2026-01-16Z", SEOUL), 1768489200 + SEOUL);
	/* leap days, the epoch and far dates */
	assert_int_equal(tp("2024-02-29", SEOUL), 1709132400);
	assert_int_equal(tp("2000-02-29T12:00Z", SEOUL), 951825600);
	assert_int_equal(tp("1970-01-01T00:00:00Z", SEOUL), 0);
	assert_int_equal(tp("1969-12-31T23:59:59Z", SEOUL), -1);
	assert_int_equal(tp("1900-01-01T00:00:00Z", SEOUL), INT64_C(-2208988800));
	assert_int_equal(tp("9999-12-31T23:59:59Z", 0), INT64_C(253402300799));
	assert_int_equal(tp("9999-12-31T23:59:59", SEOUL), INT64_C(253402300799) - SEOUL);
	assert_int_equal(tp("0001-01-01T00:00:00Z", SEOUL), INT64_C(-62135596800));
	assert_int_equal(tp("2026-12-31T23:59:59", SEOUL) + 1, tp("2027-01-01", SEOUL));

	/* the cause may be omitted */
	int64_t t;
	assert_int_equal(time_parse("2026-02-30", SEOUL, &t, NULL), -EINVAL);
}

static void test_time_parse_refused(void **state)
{
	/* dates that do not exist are refused, not rolled over */
	tp_fail("2026-02-30", "no such date");
	tp_fail("2025-02-29", "no such date");
	tp_fail("2100-02-29", "no such date");
	tp_fail("2026-04-31", "no such date");
	tp_fail("2026-13-01", "no such date");
	tp_fail("2026-00-10", "no such date");
	tp_fail("2026-01-00", "no such date");
	tp_fail("2026-01-32", "no such date");
	tp_fail("2026-01-16T24:00", "no such time of day");
	tp_fail("2026-01-16T24:00:00", "no such time of day");
	tp_fail("2026-01-16T23:60", "no such time of day");
	tp_fail("2026-01-16T23:59:60", "no such time of day");
	/* malformed */
	tp_fail("", "expected an ISO 8601 date");
	tp_fail("2026", "expected an ISO 8601 date");
	tp_fail("2026-1-16", "expected an ISO 8601 date");
	tp_fail("26-01-16", "expected an ISO 8601 date");
	tp_fail("2026/01/16", "expected an ISO 8601 date");
	tp_fail("20260116", "expected an ISO 8601 date");
	tp_fail("now", "expected an ISO 8601 date");
	tp_fail("2026-01-16T", "expected a time of day");
	tp_fail("2026-01-16T9:30", "expected a time of day");
	tp_fail("2026-01-16T09", "expected a time of day");
	tp_fail("2026-01-16T0930", "expected a time of day");
	tp_fail("2026-01-16T09:30:", "expected seconds");
	tp_fail("2026-01-16T09:30:5", "expected seconds");
	/* trailing junk, and offsets that are not offsets */
	tp_fail("2026-01-16junk", "unexpected text");
	tp_fail("2026-01-16 ", "expected a time of day");
	/* whole seconds: a fraction is named as such, not as a bad offset */
	tp_fail("2026-01-16T09:30:00.5", "fractional seconds are not supported");
	tp_fail("2026-01-01T00:00:00.000Z", "fractional seconds are not supported");
	tp_fail("2026-01-01T00:00:00,5", "fractional seconds are not supported");
	tp_fail("2026-01-01T00:00.5", "fractional seconds are not supported");
	tp_fail("2026-01-16T09:30 KST", "unexpected text");
	tp_fail("2026-01-16T09:30:00Zx", "unexpected text");
	tp_fail("2026-01-16T09:30:00+09:00x", "unexpected text");
	tp_fail("2026-01-16T09:30+09:", "unexpected text");
	tp_fail("2026-01-16T09:30+09:0", "unexpected text");
	tp_fail("2026-01-16T09:30+9", "unexpected text");
	tp_fail("2026-01-16T09:30+15:00", "unexpected text");
	tp_fail("2026-01-16T09:30+09:60", "unexpected text");
	tp_fail("2026-01-16T09:30+", "unexpected text");
}

/*
 * Every int64 formats without overflow (found by fuzzing: UBSan saw the
 * day arithmetic overflow near INT64_MIN, and the offset pushed INT64_MAX
 * over the edge): exact dates, a signed year where time_parse() could not
 * read one back, and the ends of the range that it can.
 */
static void test_time_format_extremes(void **state)
{
	static const struct {
		int64_t t;
		int32_t tz;
		const char *want;
	} cases[] = {
		{ INT64_MAX - 1, 0, "+292277026596-12-04T15:30:06Z" },
		{ INT64_MAX - 1, 14 * 3600, "+292277026596-12-05T05:30:06+14:00" },
		{ INT64_MAX - 1, -14 * 3600, "+292277026596-12-04T01:30:06-14:00" },
		{ INT64_MIN + 1, 0, "-292277022657-01-27T08:29:53Z" },
		{ INT64_MIN + 1, -14 * 3600, "-292277022657-01-26T18:29:53-14:00" },
		{ INT64_MIN + 1, 14 * 3600, "-292277022657-01-27T22:29:53+14:00" },
		{ INT64_C(253402300799), 0, "9999-12-31T23:59:59Z" },
		{ INT64_C(253402300799), SEOUL, "+10000-01-01T08:59:59+09:00" },
		{ INT64_C(-62135596800), 0, "0001-01-01T00:00:00Z" },
		{ INT64_C(-62135596801), 0, "0000-12-31T23:59:59Z" },
		{ INT64_C(-62167219201), 0, "-0001-12-31T23:59:59Z" },
		{ -1, 0, "1969-12-31T23:59:59Z" },
		{ -1, SEOUL, "1970-01-01T08:59:59+09:00" },
	};
	char buf[TIME_BUFSZ];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		time_format(cases[i].t, cases[i].tz, buf, sizeof(buf));
		if (strcmp(buf, cases[i].want) != 0)
			fail_msg("time_format(%" PRId64 ", %d) = %s, want %s", cases[i].t,
				 (int)cases[i].tz, buf, cases[i].want);
	}
	/* what the range holds formats and parses back, at the edges too */
	static const int32_t zones[] = { 0, SEOUL, -14 * 3600, 14 * 3600 };
	for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
		int64_t tz = zones[z];
		const int64_t edges[] = { INT64_C(-62135596800) - tz, INT64_C(253402300799) - tz, 0 };
		for (size_t i = 0; i < 3; i++) {
			int64_t back = 0;
			time_format(edges[i], (int32_t)tz, buf, sizeof(buf));
			assert_int_equal(time_parse(buf, (int32_t)tz, &back, NULL), 0);
			assert_int_equal(back, edges[i]);
		}
	}
}

/*
 * Years 0001-9999 as shown in the zone the instant is read in: whatever the
 * daemon prints must parse back, so 9999-12-31T23:59:59Z, which Seoul shows
 * in the year 10000, is refused there.
 */
static void test_time_range(void **state)
{
	int64_t t = 42;
	const char *cause = NULL;

	tp_fail("9999-12-31T23:59:59Z", "outside the years 0001 to 9999");
	tp_fail("9999-12-31T15:00:00Z", "outside the years 0001 to 9999");
	tp_fail("0000-12-31", "outside the years 0001 to 9999");
	assert_int_equal(time_parse("0001-01-01T00:00:00Z", -3600, &t, &cause), -EINVAL);
	assert_int_equal(t, 42);
	/* the last and the first instant of the range, in Seoul */
	assert_int_equal(tp("9999-12-31T14:59:59Z", SEOUL), INT64_C(253402300799) - SEOUL);
	assert_int_equal(tp("0001-01-01", SEOUL), INT64_C(-62135596800) - SEOUL);

	assert_true(time_in_range(INT64_C(253402300799), 0));
	assert_false(time_in_range(INT64_C(253402300799), SEOUL));
	assert_false(time_in_range(INT64_C(253402300800), 0));
	assert_true(time_in_range(INT64_C(-62135596800), 0));
	assert_false(time_in_range(INT64_C(-62135596801), 0));
	assert_false(time_in_range(TIME_MAX, 0));
	assert_false(time_in_range(TIME_MIN, 0));
	assert_false(time_in_range(TIME_MAX, SEOUL));
	assert_false(time_in_range(TIME_MIN, -SEOUL));

	/* a duration added to an instant stays in range, or is refused */
	int64_t last = INT64_C(253402300799) - SEOUL, out = 7;
	assert_int_equal(time_add(last - 86400, 86400, SEOUL, &out), 0);
	assert_int_equal(out, last);
	out = 7;
	assert_int_equal(time_add(last, 1, SEOUL, &out), -ERANGE);
	assert_int_equal(time_add(last, INT64_MAX, SEOUL, &out), -ERANGE);
	assert_int_equal(time_add(0, INT64_MIN, 0, &out), -ERANGE);
	assert_int_equal(out, 7);

	/* everything in range prints as it parses back */
	char buf[TIME_BUFSZ];
	assert_int_equal(time_parse(time_format(last, SEOUL, buf, sizeof(buf)), SEOUL, &t, NULL), 0);
	assert_int_equal(t, last);
	assert_string_equal(buf, "9999-12-31T23:59:59+09:00");
}

static const char *tf(int64_t t, int32_t tz)
{
	static char buf[TIME_BUFSZ];
	return time_format(t, tz, buf, sizeof(buf));
}

static void test_time_format(void **state)
{
	assert_string_equal(tf(1768489200, SEOUL), "2026-01-16T00:00:00+09:00");
	assert_string_equal(tf(1768489200, 0), "2026-01-15T15:00:00Z");
	assert_string_equal(tf(1768575600, -(5 * 3600 + 1800)), "2026-01-16T09:30:00-05:30");
	assert_string_equal(tf(0, 0), "1970-01-01T00:00:00Z");
	assert_string_equal(tf(-1, 0), "1969-12-31T23:59:59Z");
	assert_string_equal(tf(-1, SEOUL), "1970-01-01T08:59:59+09:00");
	assert_string_equal(tf(INT64_C(-2208988800), 0), "1900-01-01T00:00:00Z");
	assert_string_equal(tf(INT64_C(951825600), 0), "2000-02-29T12:00:00Z");
	assert_string_equal(tf(TIME_MIN, SEOUL), "-infinity");
	assert_string_equal(tf(TIME_MAX, SEOUL), "infinity");
	/* next to the sentinels, no overflow, and not taken for them */
	assert_string_equal(tf(TIME_MAX - 1, SEOUL), "+292277026596-12-05T00:30:06+09:00");
	assert_string_equal(tf(TIME_MIN + 1, -SEOUL), "-292277022657-01-26T23:29:53-09:00");

	/* a short buffer is truncated, never overrun */
	char small[11];
	time_format(1768489200, SEOUL, small, sizeof(small));
	assert_string_equal(small, "2026-01-16");
}

static void test_time_round_trip(void **state)
{
	static const int32_t zones[] = {0, SEOUL, -(5 * 3600 + 1800), 14 * 3600, -12 * 3600};
	int64_t back;

	/* every day from 1899 to 2101 at an odd second, in several zones */
	for (size_t z = 0; z < ARRAY_SIZE(zones); z++) {
		for (int64_t t = INT64_C(-2240524800); t < INT64_C(4133980800); t += 86400 + 7) {
			const char *s = tf(t, zones[z]);
			assert_int_equal(time_parse(s, 0, &back, NULL), 0);
			assert_int_equal(back, t);
			/* and read in another zone, the offset still wins */
			assert_int_equal(time_parse(s, SEOUL, &back, NULL), 0);
			assert_int_equal(back, t);
		}
	}
}

static void test_days_from_civil(void **state)
{
	assert_int_equal(days_from_civil(1970, 1, 1), 0);
	assert_int_equal(days_from_civil(1969, 12, 31), -1);
	assert_int_equal(days_from_civil(2000, 3, 1), 11017);
	assert_int_equal(days_from_civil(2000, 2, 29) + 1, days_from_civil(2000, 3, 1));
	assert_int_equal(days_from_civil(2100, 2, 28) + 1, days_from_civil(2100, 3, 1));
	assert_int_equal(days_from_civil(2026, 1, 16), 1768521600 / 86400);
}

static int64_t dur(const char *s)
{
	int64_t v = -1;
	int rc = duration_parse(s, &v);
	if (rc != 0)
		print_error("duration_parse(\"%s\") = %d\n", s, rc);
	assert_int_equal(rc, 0);
	return v;
}

static void test_duration_parse(void **state)
{
	int64_t v = 7;

	assert_int_equal(dur("90s"), 90);
	assert_int_equal(dur("15m"), 900);
	assert_int_equal(dur("2h"), 7200);
	assert_int_equal(dur("3d"), 3 * 86400);
	assert_int_equal(dur("1w"), 7 * 86400);
	assert_int_equal(dur("1d12h"), 129600);
	assert_int_equal(dur("1h30m15s"), 5415);
	assert_int_equal(dur("90"), 90);
	assert_int_equal(dur("0"), 0);
	assert_int_equal(dur("0s"), 0);
	assert_int_equal(dur("1500000w"), INT64_C(1500000) * 7 * 86400);

	assert_int_equal(duration_parse("", &v), -EINVAL);
	assert_int_equal(duration_parse("h", &v), -EINVAL);
	assert_int_equal(duration_parse("1h30", &v), -EINVAL);
	assert_int_equal(duration_parse("0h30", &v), -EINVAL);
	assert_int_equal(duration_parse("-5m", &v), -EINVAL);
	assert_int_equal(duration_parse("+5m", &v), -EINVAL);
	assert_int_equal(duration_parse("5x", &v), -EINVAL);
	assert_int_equal(duration_parse("5 m", &v), -EINVAL);
	assert_int_equal(duration_parse(" 5m", &v), -EINVAL);
	assert_int_equal(duration_parse("1.5h", &v), -EINVAL);
	assert_int_equal(duration_parse("1H", &v), -EINVAL);
	assert_int_equal(duration_parse("PT1H", &v), -EINVAL);
	assert_int_equal(duration_parse("99999999999999999999", &v), -ERANGE);
	assert_int_equal(duration_parse("9999999999999999w", &v), -ERANGE);
	assert_int_equal(duration_parse("9223372036854775807s1s", &v), -ERANGE);
	assert_int_equal(v, 7);	/* untouched */
}

static void test_tz_parse(void **state)
{
	int32_t off = 1;

	assert_int_equal(tz_parse("Asia/Seoul", &off), 0);
	assert_int_equal(off, SEOUL);
	assert_int_equal(tz_parse("Asia/Tokyo", &off), 0);
	assert_int_equal(off, SEOUL);
	assert_int_equal(tz_parse("Asia/Kolkata", &off), 0);
	assert_int_equal(off, 5 * 3600 + 1800);
	assert_int_equal(tz_parse("UTC", &off), 0);
	assert_int_equal(off, 0);
	assert_int_equal(tz_parse("Etc/UTC", &off), 0);
	assert_int_equal(off, 0);
	/* POSIX signs: Etc/GMT-9 is nine hours east */
	assert_int_equal(tz_parse("Etc/GMT-9", &off), 0);
	assert_int_equal(off, SEOUL);
	assert_int_equal(tz_parse("Etc/GMT+5", &off), 0);
	assert_int_equal(off, -5 * 3600);
	assert_int_equal(tz_parse("Etc/GMT-14", &off), 0);
	assert_int_equal(off, 14 * 3600);
	/* explicit offsets */
	assert_int_equal(tz_parse("+09:00", &off), 0);
	assert_int_equal(off, SEOUL);
	assert_int_equal(tz_parse("+0530", &off), 0);
	assert_int_equal(off, 5 * 3600 + 1800);
	assert_int_equal(tz_parse("-05:30", &off), 0);
	assert_int_equal(off, -(5 * 3600 + 1800));
	assert_int_equal(tz_parse("Z", &off), 0);
	assert_int_equal(off, 0);

	off = 1;
	/* zones with daylight saving have no single offset */
	assert_int_equal(tz_parse("America/New_York", &off), -EINVAL);
	assert_int_equal(tz_parse("Europe/London", &off), -EINVAL);
	assert_int_equal(tz_parse("Australia/Sydney", &off), -EINVAL);
	/* malformed */
	assert_int_equal(tz_parse("", &off), -EINVAL);
	assert_int_equal(tz_parse("asia/seoul", &off), -EINVAL);
	assert_int_equal(tz_parse("KST", &off), -EINVAL);
	assert_int_equal(tz_parse("Etc/GMT-15", &off), -EINVAL);
	assert_int_equal(tz_parse("Etc/GMT--9", &off), -EINVAL);
	assert_int_equal(tz_parse("Etc/GMT-", &off), -EINVAL);
	assert_int_equal(tz_parse("Etc/GMT-9x", &off), -EINVAL);
	assert_int_equal(tz_parse("+09:", &off), -EINVAL);
	assert_int_equal(tz_parse("+9", &off), -EINVAL);
	assert_int_equal(tz_parse("+15:00", &off), -EINVAL);
	assert_int_equal(tz_parse("+09:00 ", &off), -EINVAL);
	assert_int_equal(off, 1);	/* untouched */
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_parse),
		cmocka_unit_test(test_time_parse_refused),
		cmocka_unit_test(test_time_range),
		cmocka_unit_test(test_time_format),
		cmocka_unit_test(test_time_format_extremes),
		cmocka_unit_test(test_time_round_trip),
		cmocka_unit_test(test_days_from_civil),
		cmocka_unit_test(test_duration_parse),
		cmocka_unit_test(test_tz_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
