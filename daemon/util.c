/* SPDX-License-Identifier: MIT */
/*
 * Allocation helpers that abort on out-of-memory, a string buffer, and the
 * exact decimal GPU-hour conversions that keep floating point out of the
 * ledger.
 */
#include "daemon/util.h"
#include "daemon/grammar.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

static void oom(void)
{
	fputs("gpuledger: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (p == NULL)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		oom();
	return p;
}

void *xrealloc(void *p, size_t size)
{
	p = realloc(p, size ? size : 1);
	if (p == NULL)
		oom();
	return p;
}

void *xreallocarray(void *p, size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total))
		oom();
	return xrealloc(p, total);
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (p == NULL)
		oom();
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (p == NULL)
		oom();
	return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	char *s;
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	return s;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

static void buf_reserve(struct buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra + 1)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
	b->data[b->len] = '\0';	/* a fresh buffer is "" too */
}

void buf_append(struct buf *b, const void *data, size_t len)
{
	buf_reserve(b, len);
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	buf_puts(b, s);
	free(s);
}

char *buf_take(struct buf *b)
{
	buf_reserve(b, 0);
	char *s = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return s;
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int i64_parse(const char *s, int64_t *out)
{
	const char *p = s;
	bool neg = false;
	int64_t v = 0;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		int d = *p - '0';
		if (!i64_mul(v, 10, &v) || !(neg ? i64_sub(v, d, &v) : i64_add(v, d, &v)))
			return -ERANGE;
	}
	if (*p != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

int gpu_hours_parse(const char *s, int64_t *seconds)
{
	const char *p = s;
	bool neg = false;
	int64_t whole = 0, frac = 0, scale = 1;
	int ndigits = 0;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	for (; *p >= '0' && *p <= '9'; p++, ndigits++)
		if (!i64_mul(whole, 10, &whole) || !i64_add(whole, *p - '0', &whole))
			return -ERANGE;
	if (*p == '.') {
		p++;
		for (; *p >= '0' && *p <= '9'; p++, ndigits++) {
			/* whole seconds need at most 4 decimals (1 s is
			 * 0.000277.. h); past 12, only zeros may follow */
			if (scale >= 1000000000000LL) {
				if (*p != '0')
					return -ERANGE;
				continue;
			}
			frac = frac * 10 + (*p - '0');
			scale *= 10;
		}
	}
	if (*p != '\0' || ndigits == 0)
		return -EINVAL;

	int64_t secs, fsecs;
	if (!i64_mul(whole, 3600, &secs))
		return -ERANGE;
	/* frac/scale hours must be a whole number of seconds */
	if ((frac * 3600) % scale != 0)
		return -ERANGE;
	fsecs = frac * 3600 / scale;
	if (!i64_add(secs, fsecs, &secs))
		return -ERANGE;
	*seconds = neg ? -secs : secs;
	return 0;
}

const char *gpu_hours_format(int64_t seconds, char *buf, size_t len)
{
	bool neg = seconds < 0;
	/* work in unsigned to survive INT64_MIN */
	uint64_t mag = neg ? (uint64_t)0 - (uint64_t)seconds : (uint64_t)seconds;
	uint64_t whole = mag / 3600, rem = mag % 3600;
	uint64_t frac = rem * 10000 / 3600;	/* 4 decimals, toward zero */

	if (frac == 0) {
		snprintf(buf, len, "%s%" PRIu64, neg && (whole || rem) ? "-" : "", whole);
		return buf;
	}
	char f[8];
	snprintf(f, sizeof(f), "%04" PRIu64, frac);
	for (int i = 3; i > 0 && f[i] == '0'; i--)
		f[i] = '\0';
	snprintf(buf, len, "%s%" PRIu64 ".%s", neg ? "-" : "", whole, f);
	return buf;
}

char *pct_decode(const char *s, size_t len, bool plus_is_space)
{
	char *out = xmalloc(len + 1);
	size_t j = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '+' && plus_is_space) {
			out[j++] = ' ';
			continue;
		}
		if (s[i] != '%') {
			out[j++] = s[i];
			continue;
		}
		uint8_t byte;
		if (i + 2 >= len || hex_decode(s + i + 1, 2, &byte, 1) != 0 ||
		    byte == 0) {
			free(out);
			return NULL;
		}
		out[j++] = (char)byte;
		i += 2;
	}
	out[j] = '\0';
	return out;
}

#define RANDOM_POOL 256	/* getrandom(2) guarantees a whole answer up to 256 bytes */

void random_bytes(void *out, size_t n)
{
	static _Thread_local struct {
		unsigned char b[RANDOM_POOL];
		size_t used;
	} pool = {.used = RANDOM_POOL};

	if (n > 64)
		abort();	/* a caller's bug: draw large amounts directly */
	if (pool.used + n > RANDOM_POOL) {
		randombytes_buf(pool.b, RANDOM_POOL);
		pool.used = 0;
	}
	memcpy(out, pool.b + pool.used, n);
	sodium_memzero(pool.b + pool.used, n);
	pool.used += n;
}
