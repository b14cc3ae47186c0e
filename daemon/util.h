/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the daemon and the CLI: allocation that aborts on
 * out-of-memory (so callers never check for NULL, as in tmux's xmalloc.c),
 * a growable string buffer, and the exit codes of the CLI contract.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit codes (sysexits.h values, named for what they mean here). */
enum {
	EXIT_REFUSED = 1,	/* refused by a ledger rule, not found, verify failed */
	EXIT_USAGE = 64,
	EXIT_DATAERR = 65,
	EXIT_UNAVAILABLE = 69,
	EXIT_SOFTWARE = 70,
	EXIT_CANTCREAT = 73,
	EXIT_IOERR = 74,
	EXIT_NOPERM = 77,
	EXIT_CONFIG = 78,
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* All of these abort on out-of-memory; the result is freed with free(). */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap);

/* A growable, always NUL-terminated byte buffer. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};

void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Hands the data to the caller (who frees it) and resets the buffer. */
char *buf_take(struct buf *b);
void buf_free(struct buf *b);

/* Overflow-checked int64 arithmetic: return false on overflow. */
static inline bool i64_add(int64_t a, int64_t b, int64_t *r)
{
	return !__builtin_add_overflow(a, b, r);
}

static inline bool i64_sub(int64_t a, int64_t b, int64_t *r)
{
	return !__builtin_sub_overflow(a, b, r);
}

static inline bool i64_mul(int64_t a, int64_t b, int64_t *r)
{
	return !__builtin_mul_overflow(a, b, r);
}

/*
 * Parses an amount of GPU-hours written in decimal ("512", "-12.5",
 * "0.25") into exact GPU-seconds. No floating point: the digits are read as
 * integers, and a value that is not a whole number of seconds is refused.
 * Returns 0, or -EINVAL (not a number) or -ERANGE (too large, or not a
 * whole number of seconds).
 */
int gpu_hours_parse(const char *s, int64_t *seconds);

/*
 * Formats GPU-seconds as GPU-hours for people: "512", "12.5", "0.0003"
 * (at most 4 decimals, rounded toward zero, trailing zeros dropped). The
 * result lives in buf (at least 32 bytes).
 */
const char *gpu_hours_format(int64_t seconds, char *buf, size_t len);

/*
 * Percent-decodes len bytes of s (a URL path, or a query component when
 * plus_is_space). Returns a malloc'd string, or NULL when an escape is
 * malformed or would hide a NUL.
 */
char *pct_decode(const char *s, size_t len, bool plus_is_space);

/* Strict decimal int64 parse of the whole string; returns 0 or -EINVAL/-ERANGE. */
int i64_parse(const char *s, int64_t *out);

/*
 * n (at most 64) bytes from libsodium's CSPRNG (randombytes_buf()), drawn
 * 256 at a time into a pool of the calling thread: one getrandom(2) per 16
 * salts instead of one each. Bytes leave the pool as they are handed out
 * (wiped there), so no two callers get the same ones. Not for a process
 * that forks after drawing: the child would hand out the parent's pool.
 */
void random_bytes(void *out, size_t n);
