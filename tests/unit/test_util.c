/* SPDX-License-Identifier: MIT */
/*
 * Tests of the shared helpers: the exact GPU-hour conversions that keep
 * floating point out of the ledger (whole seconds only, overflow refused,
 * a round trip through the human form), the strict int64 parse, and the
 * string buffer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/util.h"

static int64_t hours(const char *s)
{
	int64_t v = 12345;
	int rc = gpu_hours_parse(s, &v);
	if (rc != 0)
		print_error("gpu_hours_parse(\"%s\") = %d\n", s, rc);
	assert_int_equal(rc, 0);
	return v;
}

static void hours_fail(const char *s, int want)
{
	int64_t v = 12345;
	int rc = gpu_hours_parse(s, &v);
	if (rc != want)
		print_error("gpu_hours_parse(\"%s\") = %d, wanted %d\n", s, rc, want);
	assert_int_equal(rc, want);
	assert_int_equal(v, 12345);	/* untouched */
}

static void test_gpu_hours_parse(void **state)
{
	assert_int_equal(hours("0"), 0);
	assert_int_equal(hours("-0"), 0);
	assert_int_equal(hours("1"), 3600);
	assert_int_equal(hours("+2"), 7200);
	assert_int_equal(hours("512"), 512 * 3600);
	assert_int_equal(hours("1.5"), 5400);
	assert_int_equal(hours("-12.5"), -45000);
	assert_int_equal(hours("0.25"), 900);
	assert_int_equal(hours("0.0025"), 9);	/* the smallest step */
	assert_int_equal(hours("-0.0025"), -9);
	assert_int_equal(hours("1."), 3600);
	assert_int_equal(hours(".5"), 1800);
	assert_int_equal(hours("007"), 7 * 3600);
	assert_int_equal(hours("1.000000000000"), 3600);
	/* trailing zeros past 12 decimals are still the same number */
	assert_int_equal(hours("1.5000000000000000000000"), 5400);
	assert_int_equal(hours("2562047788015215"), INT64_C(2562047788015215) * 3600);
	assert_int_equal(hours("2562047788015215.5"), INT64_C(9223372036854775800));
	assert_int_equal(hours("-2562047788015215.5"), -INT64_C(9223372036854775800));
}

static void test_gpu_hours_parse_refused(void **state)
{
	/* not whole seconds: 0.0001 h is 0.36 s */
	hours_fail("0.0001", -ERANGE);
	hours_fail("0.0003", -ERANGE);
	hours_fail("1.00001", -ERANGE);
	hours_fail("0.0000000000001", -ERANGE);
	hours_fail("1.0000000000000000001", -ERANGE);
	/* too large */
	hours_fail("2562047788015216", -ERANGE);
	hours_fail("2562047788015215.6", -ERANGE);
	hours_fail("99999999999999999999", -ERANGE);
	hours_fail("-99999999999999999999", -ERANGE);
	/* not a number */
	hours_fail("", -EINVAL);
	hours_fail("-", -EINVAL);
	hours_fail("+", -EINVAL);
	hours_fail(".", -EINVAL);
	hours_fail("-.", -EINVAL);
	hours_fail("1e3", -EINVAL);
	hours_fail(" 1", -EINVAL);
	hours_fail("1 ", -EINVAL);
	hours_fail("1.2.3", -EINVAL);
	hours_fail("1,5", -EINVAL);
	hours_fail("--1", -EINVAL);
	hours_fail("abc", -EINVAL);
	hours_fail("0x10", -EINVAL);
	hours_fail("1h", -EINVAL);
}

static const char *fmt(int64_t s)
{
	static char buf[32];
	return gpu_hours_format(s, buf, sizeof(buf));
}

static void test_gpu_hours_format(void **state)
{
	assert_string_equal(fmt(0), "0");
	assert_string_equal(fmt(3600), "1");
	assert_string_equal(fmt(512 * 3600), "512");
	assert_string_equal(fmt(5400), "1.5");
	assert_string_equal(fmt(-45000), "-12.5");
	assert_string_equal(fmt(900), "0.25");
	assert_string_equal(fmt(9), "0.0025");
	assert_string_equal(fmt(1), "0.0002");	/* 0.000277.., toward zero */
	assert_string_equal(fmt(3601), "1.0002");
	assert_string_equal(fmt(3600 + 1800 + 36), "1.51");
	assert_string_equal(fmt(-3600), "-1");
	assert_string_equal(fmt(-1), "-0.0002");
	assert_string_equal(fmt(INT64_MAX), "2562047788015215.5019");
	assert_string_equal(fmt(INT64_MIN), "-2562047788015215.5022");

	/* a short buffer is truncated, never overrun */
	char small[4];
	gpu_hours_format(5400, small, sizeof(small));
	assert_string_equal(small, "1.5");
	gpu_hours_format(123456, small, sizeof(small));
	assert_int_equal(strlen(small), 3);
}

static void test_gpu_hours_round_trip(void **state)
{
	/* every multiple of 9 s is at most 4 decimals of an hour: exact */
	for (int64_t s = -720000; s <= 720000; s += 9) {
		int64_t back = 0;
		assert_int_equal(gpu_hours_parse(fmt(s), &back), 0);
		assert_int_equal(back, s);
	}
	int64_t big = INT64_C(9223372036854775800), back;
	assert_int_equal(gpu_hours_parse(fmt(big), &back), 0);
	assert_int_equal(back, big);
}

static void test_i64_parse(void **state)
{
	int64_t v;

	assert_int_equal(i64_parse("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(i64_parse("-0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(i64_parse("+5", &v), 0);
	assert_int_equal(v, 5);
	assert_int_equal(i64_parse("007", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(i64_parse("-42", &v), 0);
	assert_int_equal(v, -42);
	assert_int_equal(i64_parse("9223372036854775807", &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(i64_parse("-9223372036854775808", &v), 0);
	assert_true(v == INT64_MIN);

	v = 99;
	assert_int_equal(i64_parse("9223372036854775808", &v), -ERANGE);
	assert_int_equal(i64_parse("-9223372036854775809", &v), -ERANGE);
	assert_int_equal(i64_parse("100000000000000000000", &v), -ERANGE);
	assert_int_equal(i64_parse("", &v), -EINVAL);
	assert_int_equal(i64_parse("-", &v), -EINVAL);
	assert_int_equal(i64_parse("+", &v), -EINVAL);
	assert_int_equal(i64_parse("1a", &v), -EINVAL);
	assert_int_equal(i64_parse(" 1", &v), -EINVAL);
	assert_int_equal(i64_parse("1 ", &v), -EINVAL);
	assert_int_equal(i64_parse("0x10", &v), -EINVAL);
	assert_int_equal(i64_parse("1.0", &v), -EINVAL);
	assert_int_equal(i64_parse("1e3", &v), -EINVAL);
	assert_int_equal(i64_parse("--1", &v), -EINVAL);
	assert_int_equal(v, 99);	/* untouched */
}

static void test_overflow_helpers(void **state)
{
	int64_t r;

	assert_true(i64_add(INT64_MAX - 1, 1, &r));
	assert_true(r == INT64_MAX);
	assert_false(i64_add(INT64_MAX, 1, &r));
	assert_false(i64_sub(INT64_MIN, 1, &r));
	assert_true(i64_mul(3037000499, 3037000499, &r));
	assert_false(i64_mul(INT64_C(3037000500), INT64_C(3037000500), &r));
	assert_false(i64_mul(-1, INT64_MIN, &r));
}

static void test_buf(void **state)
{
	struct buf b = {0};

	buf_puts(&b, "");
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	for (int i = 0; i < 1000; i++)
		buf_printf(&b, "%d,", i % 10);
	assert_int_equal(b.len, 2000);
	assert_int_equal(strlen(b.data), 2000);
	buf_append(&b, "x\0y", 3);	/* binary safe */
	assert_int_equal(b.len, 2003);
	char *s = buf_take(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_memory_equal(s + 2000, "x\0y", 4);
	free(s);

	/* take on an empty buffer gives an empty string, not NULL */
	s = buf_take(&b);
	assert_string_equal(s, "");
	free(s);
	buf_free(&b);
	buf_free(&b);

	s = xasprintf("%s-%03d", "A", 42);
	assert_string_equal(s, "A-042");
	free(s);
	s = xstrndup("abcdef", 3);
	assert_string_equal(s, "abc");
	free(s);
	int *v = xreallocarray(NULL, 10, sizeof(int));
	v[9] = 1;
	free(v);
	free(xmalloc(0));
	free(xcalloc(0, 0));
}

static void test_pct_decode(void **state)
{
	char *s = pct_decode("/v1/pools/skt%2Db200", 20, false);
	assert_string_equal(s, "/v1/pools/skt-b200");
	free(s);
	s = pct_decode("a+b%20c", 7, true);
	assert_string_equal(s, "a b c");
	free(s);
	s = pct_decode("a+b", 3, false);
	assert_string_equal(s, "a+b");
	free(s);
	assert_null(pct_decode("bad%2", 5, false));
	assert_null(pct_decode("bad%zz", 6, false));
	assert_null(pct_decode("nul%00", 6, true));
	s = pct_decode("%ED%95%9C", 9, true);	/* UTF-8 comes through as bytes */
	assert_string_equal(s, "\xed\x95\x9c");
	free(s);
	s = pct_decode("%e2%82%aC", 9, true);	/* either case: hex_decode() */
	assert_string_equal(s, "\xe2\x82\xac");
	free(s);
	assert_null(pct_decode("%+1", 3, false));
	assert_null(pct_decode("% 1x", 4, false));
	assert_null(pct_decode("%", 1, false));
}

static int cmp16(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/*
 * random_bytes(): the pool hands every byte out once, so 4096 salts of 16
 * bytes (256 refills, with 8-byte draws between them that leave the pool
 * misaligned) are all different, and none is the all-zero block that a
 * wiped pool would leave.
 */
static void test_random_bytes(void **state)
{
	enum { N = 4096 };
	static unsigned char salts[N][16];
	static const unsigned char zero[16];

	for (int i = 0; i < N; i++) {
		random_bytes(salts[i], 16);
		if (i % 7 == 0) {
			unsigned char id[8];
			random_bytes(id, sizeof(id));
		}
		assert_memory_not_equal(salts[i], zero, 16);
	}
	qsort(salts, N, 16, cmp16);
	for (int i = 1; i < N; i++)
		assert_memory_not_equal(salts[i - 1], salts[i], 16);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gpu_hours_parse),
		cmocka_unit_test(test_gpu_hours_parse_refused),
		cmocka_unit_test(test_gpu_hours_format),
		cmocka_unit_test(test_gpu_hours_round_trip),
		cmocka_unit_test(test_i64_parse),
		cmocka_unit_test(test_overflow_helpers),
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_pct_decode),
		cmocka_unit_test(test_random_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
