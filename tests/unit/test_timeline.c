/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the timeline: hand cases for the edges people get wrong
 * (half-open windows, adjacent bookings that merge, lease edges, node
 * rounding, int64 extremes, pruning), then randomized runs against a
 * brute-force reference that keeps the bookings as a plain list of
 * intervals and sums them instant by instant. The random runs use fixed
 * seeds and print the seed and step of a failure, so it can be replayed.
 */
#include "daemon/timeline.h"
#include "daemon/timefmt.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* Defined in timeline.c for the tests: NULL, or the broken invariant. */
const char *timeline__check(const struct timeline *t);

#define assert_sane(t) do {						\
	const char *err_ = timeline__check(t);				\
	if (err_ != NULL)						\
		fail_msg("timeline invariant: %s", err_);		\
} while (0)

static const struct capacity always10 = {10, TIME_MIN, TIME_MAX, 0};

/* Hand cases */

static void test_empty(void **state)
{
	(void)state;
	struct timeline *t = timeline_new();
	int64_t s;
	assert_int_equal(timeline_size(t), 0);
	assert_int_equal(timeline_at(t, 0), 0);
	assert_int_equal(timeline_at(t, TIME_MIN), 0);
	assert_int_equal(timeline_max(t, TIME_MIN, TIME_MAX), 0);
	assert_true(timeline_fits(t, &always10, 10, TIME_MIN, TIME_MAX));
	assert_false(timeline_fits(t, &always10, 11, 0, 1));
	assert_int_equal(timeline_earliest(t, &always10, 10, 5, 100, TIME_MAX, &s), 0);
	assert_int_equal(s, 5);
	assert_int_equal(timeline_earliest(t, &always10, 11, 5, 100, TIME_MAX, &s), -ENOSPC);
	timeline_prune(t, 100);
	assert_int_equal(timeline_size(t), 0);
	timeline_free(t);
	timeline_free(NULL);
}

static void test_adjacent_merge(void **state)
{
	(void)state;
	struct timeline *t = timeline_new();
	timeline_add(t, 10, 20, 3);
	timeline_add(t, 20, 30, 3);
	assert_sane(t);
	assert_int_equal(timeline_size(t), 2);	/* one step of 3 over [10,30) */
	assert_int_equal(timeline_at(t, 9), 0);
	assert_int_equal(timeline_at(t, 10), 3);
	assert_int_equal(timeline_at(t, 29), 3);
	assert_int_equal(timeline_at(t, 30), 0);
	/* Half-open: [0,10) and [30,40) touch the booking but don't overlap. */
	assert_int_equal(timeline_max(t, 0, 10), 0);
	assert_int_equal(timeline_max(t, 30, 40), 0);
	assert_int_equal(timeline_max(t, 29, 30), 3);
	assert_int_equal(timeline_max(t, 9, 11), 3);
	/* Filling the gap before merges too. */
	timeline_add(t, 0, 10, 3);
	assert_sane(t);
	assert_int_equal(timeline_size(t), 2);
	timeline_add(t, 0, 30, -3);
	assert_sane(t);
	assert_int_equal(timeline_size(t), 0);
	timeline_free(t);
}

static void test_half_open_fits(void **state)
{
	(void)state;
	struct timeline *t = timeline_new();
	struct capacity c = {2, TIME_MIN, TIME_MAX, 0};
	int64_t s;
	timeline_add(t, 10, 20, 2);
	assert_true(timeline_fits(t, &c, 1, 0, 10));
	assert_true(timeline_fits(t, &c, 1, 20, 30));
	assert_false(timeline_fits(t, &c, 1, 19, 20));
	assert_false(timeline_fits(t, &c, 1, 9, 11));
	assert_true(timeline_fits(t, &c, 0, 9, 11));
	assert_true(timeline_fits(t, &c, 1, 5, 5));	/* empty window */
	assert_int_equal(timeline_earliest(t, &c, 1, 5, 5, TIME_MAX, &s), 0);
	assert_int_equal(s, 5);
	assert_int_equal(timeline_earliest(t, &c, 1, 5, 6, TIME_MAX, &s), 0);
	assert_int_equal(s, 20);
	assert_int_equal(timeline_earliest(t, &c, 1, 5, 6, 26, &s), 0);
	assert_int_equal(s, 20);
	assert_int_equal(timeline_earliest(t, &c, 1, 5, 6, 25, &s), -ENOSPC);
	assert_int_equal(timeline_earliest(t, &c, 1, 12, 1, TIME_MAX, &s), 0);
	assert_int_equal(s, 20);
	assert_int_equal(timeline_earliest(t, &c, 3, 0, 1, TIME_MAX, &s), -ENOSPC);
	assert_int_equal(timeline_earliest(t, &c, 0, 0, 1, TIME_MAX, &s), -EINVAL);
	assert_int_equal(timeline_earliest(t, &c, 1, 0, 0, TIME_MAX, &s), -EINVAL);
	timeline_free(t);
}

static void test_nested_and_removal(void **state)
{
	(void)state;
	struct timeline *t = timeline_new();
	timeline_add(t, 0, 100, 1);
	timeline_add(t, 10, 20, 2);
	timeline_add(t, 15, 50, 4);
	timeline_add(t, 50, 60, 4);
	assert_sane(t);
	assert_int_equal(timeline_at(t, 12), 3);
	assert_int_equal(timeline_at(t, 17), 7);
	assert_int_equal(timeline_at(t, 55), 5);
	assert_int_equal(timeline_max(t, 0, 100), 7);
	assert_int_equal(timeline_max(t, 20, 100), 5);
	/* A release: cut the end of [15,60) at 30. */
	timeline_add(t, 30, 60, -4);
	assert_sane(t);
	assert_int_equal(timeline_at(t, 29), 5);
	assert_int_equal(timeline_at(t, 30), 1);
	/* Remove the rest in another order. */
	timeline_add(t, 0, 100, -1);
	timeline_add(t, 15, 30, -4);
	assert_sane(t);
	assert_int_equal(timeline_size(t), 2);
	timeline_add(t, 10, 20, -2);
	assert_sane(t);
	assert_int_equal(timeline_size(t), 0);
	assert_int_equal(timeline_max(t, TIME_MIN, TIME_MAX), 0);
	/* Units 0 and empty windows change nothing. */
	timeline_add(t, 0, 10, 0);
	timeline_add(t, 10, 10, 5);
	timeline_add(t, 10, 0, 5);
	assert_int_equal(timeline_size(t), 0);
	timeline_free(t);
}

static void test_capacity_lease(void **state)
{
	(void)state;
	struct timeline *t = timeline_new();
	struct capacity c = {10, 100, 200, 0};
	int64_t s;
	assert_int_equal(capacity_at(&c, 99), 0);
	assert_int_equal(capacity_at(&c, 100), 10);
	assert_int_equal(capacity_at(&c, 199), 10);
	assert_int_equal(capacity_at(&c, 200), 0);
	assert_true(timeline_fits(t, &c, 10, 100, 200));
	assert_false(timeline_fits(t, &c, 1, 99, 101));
	assert_false(timeline_fits(t, &c, 1, 199, 201));
	assert_false(timeline_fits(t, &c, 1, 0, 50));
	assert_int_equal(timeline_earliest(t, &c, 5, 0, 50, TIME_MAX, &s), 0);
	assert_int_equal(s, 100);
	assert_int_equal(timeline_earliest(t, &c, 5, 150, 50, TIME_MAX, &s), 0);
	assert_int_equal(s, 150);
	assert_int_equal(timeline_earliest(t, &c, 5, 151, 50, TIME_MAX, &s), -ENOSPC);
	assert_int_equal(timeline_earliest(t, &c, 5, 0, 100, TIME_MAX, &s), 0);
	assert_int_equal(s, 100);
	assert_int_equal(timeline_earliest(t, &c, 5, 0, 101, TIME_MAX, &s), -ENOSPC);
	assert_int_equal(timeline_earliest(t, &c, 5, 0, 50, 150, &s), 0);
	assert_int_equal(s, 100);
	assert_int_equal(timeline_earliest(t, &c, 5, 0, 50, 149, &s), -ENOSPC);
	/* A booking at the lease start pushes the answer past it. */
	timeline_add(t, 90, 120, 6);
	assert_int_equal(timeline_earliest(t, &c, 5, 0, 50, TIME_MAX, &s), 0);
	assert_int_equal(s, 120);
	assert_int_equal(timeline_earliest(t, &c, 4, 0, 50, TIME_MAX, &s), 0);
	assert_int_equal(s, 100);
	/* An empty or inverted lease holds nothing. */
	struct capacity none = {10, 200, 100, 0};
	assert_int_equal(capacity_at(&none, 150), 0);
	assert_false(timeline_fits(t, &none, 1, 150, 151));
	assert_int_equal(timeline_earliest(t, &none, 1, 0, 1, TIME_MAX, &s), -ENOSPC);
	timeline_free(t);
}

static void test_node_rounding(void **state)
{
	(void)state;
	struct timeline *t = timeline_new();
	struct capacity c8 = {30, TIME_MIN, TIME_MAX, 8};
	struct capacity c1 = {30, TIME_MIN, TIME_MAX, 1};
	struct capacity c0 = {30, TIME_MIN, TIME_MAX, 0};
	struct capacity small = {7, TIME_MIN, TIME_MAX, 8};
	int64_t s;
	assert_int_equal(capacity_at(&c8, 0), 24);
	assert_int_equal(capacity_at(&c1, 0), 30);
	assert_int_equal(capacity_at(&c0, 0), 30);
	assert_int_equal(capacity_at(&small, 0), 0);
	timeline_add(t, 0, 10, 16);
	assert_true(timeline_fits(t, &c8, 8, 0, 10));
	assert_false(timeline_fits(t, &c8, 9, 0, 10));
	assert_true(timeline_fits(t, &c0, 14, 0, 10));
	assert_int_equal(timeline_earliest(t, &c8, 16, 0, 5, TIME_MAX, &s), 0);
	assert_int_equal(s, 10);
	assert_int_equal(timeline_earliest(t, &c8, 25, 0, 5, TIME_MAX, &s), -ENOSPC);
	assert_int_equal(timeline_earliest(t, &small, 1, 0, 5, TIME_MAX, &s), -ENOSPC);
	timeline_free(t);
}

static void test_extremes(void **state)
{
	(void)state;
	struct timeline *t = timeline_new();
	int64_t s;
	timeline_add(t, TIME_MIN, TIME_MAX, 5);
	assert_sane(t);
	assert_int_equal(timeline_at(t, TIME_MIN), 5);
	assert_int_equal(timeline_at(t, TIME_MAX - 1), 5);
	assert_int_equal(timeline_at(t, TIME_MAX), 0);
	assert_int_equal(timeline_max(t, TIME_MIN, TIME_MAX), 5);
	assert_true(timeline_fits(t, &always10, 5, TIME_MIN, TIME_MAX));
	assert_false(timeline_fits(t, &always10, 6, TIME_MAX - 1, TIME_MAX));
	assert_int_equal(timeline_earliest(t, &always10, 5, TIME_MAX - 10, 10,
					   TIME_MAX, &s), 0);
	assert_int_equal(s, TIME_MAX - 10);
	assert_int_equal(timeline_earliest(t, &always10, 5, TIME_MAX - 10, 11,
					   TIME_MAX, &s), -ENOSPC);
	assert_int_equal(timeline_earliest(t, &always10, 5, 0, INT64_MAX,
					   TIME_MAX, &s), 0);
	assert_int_equal(s, 0);
	assert_int_equal(timeline_earliest(t, &always10, 5, 1, INT64_MAX,
					   TIME_MAX, &s), -ENOSPC);
	assert_int_equal(timeline_earliest(t, &always10, 5, TIME_MIN, INT64_MAX,
					   TIME_MAX, &s), 0);
	assert_int_equal(s, TIME_MIN);
	assert_int_equal(timeline_earliest(t, &always10, 5, 0, 10, TIME_MIN, &s),
			 -ENOSPC);
	/* Blocked until the end of time: the search stops at the limit. */
	timeline_add(t, 1000, TIME_MAX, 5);
	assert_int_equal(timeline_earliest(t, &always10, 1, 500, 501, TIME_MAX, &s),
			 -ENOSPC);
	assert_int_equal(timeline_earliest(t, &always10, 1, 500, 500, TIME_MAX, &s), 0);
	assert_int_equal(s, 500);
	timeline_add(t, 1000, TIME_MAX, -5);
	timeline_add(t, TIME_MIN, TIME_MAX, -5);
	assert_sane(t);
	assert_int_equal(timeline_size(t), 0);
	timeline_free(t);
}

static void test_earliest_jumps(void **state)
{
	(void)state;
	struct timeline *t = timeline_new();
	struct capacity c = {10, TIME_MIN, TIME_MAX, 0};
	int64_t s;
	/* Gaps of 4, 9, 10 between blockers: a 10-long request needs the last. */
	timeline_add(t, 0, 6, 8);
	timeline_add(t, 10, 12, 9);
	timeline_add(t, 21, 30, 10);
	timeline_add(t, 40, 45, 7);
	assert_int_equal(timeline_earliest(t, &c, 3, 0, 10, TIME_MAX, &s), 0);
	assert_int_equal(s, 30);
	assert_int_equal(timeline_earliest(t, &c, 3, 0, 9, TIME_MAX, &s), 0);
	assert_int_equal(s, 12);
	assert_int_equal(timeline_earliest(t, &c, 1, 0, 10, TIME_MAX, &s), 0);
	assert_int_equal(s, 0);
	assert_int_equal(timeline_earliest(t, &c, 2, 0, 10, TIME_MAX, &s), 0);
	assert_int_equal(s, 0);
	assert_int_equal(timeline_earliest(t, &c, 2, 1, 10, TIME_MAX, &s), 0);
	assert_int_equal(s, 30);	/* [1,11) meets the 9 at 10 */
	assert_int_equal(timeline_earliest(t, &c, 2, 1, 9, TIME_MAX, &s), 0);
	assert_int_equal(s, 1);
	assert_int_equal(timeline_earliest(t, &c, 2, 3, 9, TIME_MAX, &s), 0);
	assert_int_equal(s, 12);
	assert_int_equal(timeline_earliest(t, &c, 4, 0, 11, TIME_MAX, &s), 0);
	assert_int_equal(s, 45);
	timeline_free(t);
}

static void test_abort_on_underflow(void **state)
{
	(void)state;
	/* Removing what was never booked is a broken invariant: abort. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct timeline *t = timeline_new();
		timeline_add(t, 0, 10, 2);
		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(2);
		timeline_add(t, 5, 15, -2);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void test_prune(void **state)
{
	(void)state;
	struct timeline *t = timeline_new();
	for (int i = 0; i < 100; i++)
		timeline_add(t, i * 10, i * 10 + 5, 1 + i % 3);
	timeline_add(t, 990, 2000, 4);	/* running at the horizon */
	timeline_add(t, 1500, 1600, 2);	/* in the future */
	assert_int_equal(timeline_size(t), 200 + 1 + 2);
	int64_t before[50];
	for (int i = 0; i < 50; i++)
		before[i] = timeline_at(t, 995 + i * 30);
	timeline_prune(t, 995);
	assert_sane(t);
	assert_int_equal(timeline_size(t), 4);	/* 995(4) 1500(6) 1600(4) 2000(0) */
	for (int i = 0; i < 50; i++)
		assert_int_equal(timeline_at(t, 995 + i * 30), before[i]);
	/* A horizon that goes back changes nothing. */
	timeline_prune(t, 0);
	assert_int_equal(timeline_size(t), 4);
	/*
	 * Releasing a booking that began before the horizon only touches what
	 * is left of it, and never aborts.
	 */
	timeline_add(t, 990, 2000, -4);
	assert_sane(t);
	assert_int_equal(timeline_size(t), 2);
	assert_int_equal(timeline_at(t, 995), 0);
	timeline_add(t, 0, 990, -1);	/* wholly forgotten: no-op */
	timeline_add(t, 1500, 1600, -2);
	assert_int_equal(timeline_size(t), 0);
	/* Pruning where the level is 0 leaves nothing behind. */
	timeline_add(t, 1000, 1100, 1);
	timeline_add(t, 1200, 1300, 1);
	timeline_prune(t, 1150);
	assert_sane(t);
	assert_int_equal(timeline_size(t), 2);
	timeline_prune(t, 1250);
	assert_sane(t);
	assert_int_equal(timeline_size(t), 2);
	assert_int_equal(timeline_at(t, 1250), 1);
	timeline_prune(t, TIME_MAX);
	assert_int_equal(timeline_size(t), 0);
	timeline_free(t);
}

struct steps {
	int n;
	int64_t s[16], e[16], level[16];
};

static void collect(void *arg, int64_t start, int64_t end, int64_t level)
{
	struct steps *st = arg;
	assert_true(st->n < 16);
	st->s[st->n] = start;
	st->e[st->n] = end;
	st->level[st->n] = level;
	st->n++;
}

static void test_steps(void **state)
{
	(void)state;
	struct timeline *t = timeline_new();
	struct steps st = {0};
	timeline_steps(t, 0, 100, collect, &st);
	assert_int_equal(st.n, 1);
	assert_int_equal(st.s[0], 0);
	assert_int_equal(st.e[0], 100);
	assert_int_equal(st.level[0], 0);

	timeline_add(t, 10, 20, 2);
	timeline_add(t, 15, 30, 1);
	st.n = 0;
	timeline_steps(t, 12, 25, collect, &st);
	assert_int_equal(st.n, 3);
	assert_int_equal(st.s[0], 12);
	assert_int_equal(st.e[0], 15);
	assert_int_equal(st.level[0], 2);
	assert_int_equal(st.s[1], 15);
	assert_int_equal(st.e[1], 20);
	assert_int_equal(st.level[1], 3);
	assert_int_equal(st.s[2], 20);
	assert_int_equal(st.e[2], 25);
	assert_int_equal(st.level[2], 1);
	st.n = 0;
	timeline_steps(t, 20, 25, collect, &st);
	assert_int_equal(st.n, 1);
	assert_int_equal(st.level[0], 1);
	st.n = 0;
	timeline_steps(t, 0, 40, collect, &st);
	assert_int_equal(st.n, 5);
	assert_int_equal(st.s[4], 30);
	assert_int_equal(st.e[4], 40);
	assert_int_equal(st.level[4], 0);
	st.n = 0;
	timeline_steps(t, 40, 40, collect, &st);
	assert_int_equal(st.n, 0);
	st.n = 0;
	timeline_steps(t, TIME_MIN, TIME_MAX, collect, &st);
	assert_int_equal(st.n, 5);
	assert_int_equal(st.s[0], TIME_MIN);
	assert_int_equal(st.e[4], TIME_MAX);
	timeline_free(t);
}

/* Randomized, against a brute-force reference */

#define SPAN 48			/* bookings lie in [0, SPAN) */
#define XLO (-16)		/* the reference's level array covers [XLO, XHI) */
#define XHI (3 * SPAN + 64)
#define SMAX (SPAN + 20)	/* past it, nothing changes (see ref_earliest) */
#define MAXIV 64

struct interval {
	int64_t s, e, u;
};

struct ref {
	int n;
	struct interval iv[MAXIV];
	int64_t lv[XHI - XLO];	/* recomputed from iv after each change */
};

static uint64_t rng;

/* splitmix64: small, and the same everywhere. */
static uint64_t next_rand(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static int64_t rnd(int64_t lo, int64_t hi)
{
	return lo + (int64_t)(next_rand() % (uint64_t)(hi - lo + 1));
}

static void ref_recompute(struct ref *r)
{
	for (int64_t x = XLO; x < XHI; x++) {
		int64_t sum = 0;
		for (int i = 0; i < r->n; i++)
			if (r->iv[i].s <= x && x < r->iv[i].e)
				sum += r->iv[i].u;
		r->lv[x - XLO] = sum;
	}
}

static int64_t ref_at(const struct ref *r, int64_t x)
{
	return x >= XLO && x < XHI ? r->lv[x - XLO] : 0;
}

static int64_t ref_cap(const struct capacity *c, int64_t x)
{
	if (x < c->from || x >= c->until)
		return 0;
	return c->node > 1 ? c->units - c->units % c->node : c->units;
}

static bool ref_fits(const struct ref *r, const struct capacity *c,
		     int64_t units, int64_t s, int64_t e)
{
	for (int64_t x = s; x < e; x++)
		if (ref_at(r, x) + units > ref_cap(c, x))
			return false;
	return true;
}

/*
 * Tries every s from `from` on. Bookings and lease edges all lie below
 * SMAX - 8 and from is at most SMAX - 12, so if no s up to SMAX fits, the
 * windows after it all look the same and none does.
 */
static int ref_earliest(const struct ref *r, const struct capacity *c,
			int64_t units, int64_t from, int64_t dur, int64_t limit,
			int64_t *out)
{
	for (int64_t s = from; s <= SMAX; s++) {
		if (s > limit - dur)
			return -ENOSPC;
		if (ref_fits(r, c, units, s, s + dur)) {
			*out = s;
			return 0;
		}
	}
	return -ENOSPC;
}

static void random_capacity(struct capacity *c)
{
	c->units = rnd(0, 12);
	c->from = rnd(0, 3) == 0 ? TIME_MIN : rnd(-8, SPAN / 2);
	c->until = rnd(0, 3) == 0 ? TIME_MAX : rnd(SPAN / 2, SPAN + 8);
	c->node = rnd(0, 4);
}

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		print_message("seed %u op %d: ", seed, op);		\
		fail_msg(__VA_ARGS__);					\
	}								\
} while (0)

struct step_check {
	const struct ref *r;
	int64_t expect_start;
	int64_t last_level;
	bool bad;
};

static void check_step(void *arg, int64_t start, int64_t end, int64_t level)
{
	struct step_check *sc = arg;
	if (start != sc->expect_start || start >= end || level == sc->last_level)
		sc->bad = true;
	for (int64_t x = start; x < end; x++)
		if (ref_at(sc->r, x) != level)
			sc->bad = true;
	sc->expect_start = end;
	sc->last_level = level;
}

static void run_seed(unsigned seed, int ops)
{
	struct ref *r = calloc(1, sizeof(*r));
	struct timeline *t = timeline_new();
	int64_t horizon = XLO;	/* below it nothing is compared */
	bool pruned = false;
	int op;

	rng = seed;
	for (op = 0; op < ops; op++) {
		/* Change the bookings. */
		int64_t what = rnd(0, 9);
		if ((what < 5 || r->n == 0) && r->n < MAXIV) {
			struct interval iv;
			iv.s = rnd(0, SPAN - 1);
			iv.e = rnd(iv.s + 1, iv.s + 1 + rnd(0, 1) * rnd(0, SPAN / 2));
			if (iv.e > SPAN)
				iv.e = SPAN;
			iv.u = rnd(1, 4);
			r->iv[r->n++] = iv;
			timeline_add(t, iv.s, iv.e, iv.u);
		} else if (what < 8) {
			int i = (int)rnd(0, r->n - 1);
			timeline_add(t, r->iv[i].s, r->iv[i].e, -r->iv[i].u);
			r->iv[i] = r->iv[--r->n];
		} else if (r->n + 2 <= MAXIV) {
			/* Remove part of a booking: it splits into up to three. */
			int i = (int)rnd(0, r->n - 1);
			struct interval old = r->iv[i];
			int64_t cs = rnd(old.s, old.e - 1);
			int64_t ce = rnd(cs + 1, old.e);
			int64_t v = rnd(1, old.u);
			timeline_add(t, cs, ce, -v);
			struct interval piece[3] = {
				{cs, ce, old.u - v}, {old.s, cs, old.u}, {ce, old.e, old.u},
			};
			r->iv[i] = r->iv[--r->n];
			for (int k = 0; k < 3; k++)	/* keep them all non-empty */
				if (piece[k].s < piece[k].e && piece[k].u > 0)
					r->iv[r->n++] = piece[k];
		}
		ref_recompute(r);

		/* In the second half, time moves on and the past is pruned. */
		if (op >= ops / 2 && rnd(0, 15) == 0 && horizon < SPAN - 8) {
			horizon = pruned ? horizon + rnd(0, 2) : rnd(0, SPAN / 2);
			pruned = true;
			timeline_prune(t, horizon);
		}

		const char *err = timeline__check(t);
		CHECK(err == NULL, "invariant: %s", err);

		/* The size is exactly the number of changes at or after horizon. */
		size_t changes = 0;
		for (int64_t x = horizon + 1; x < XHI; x++)
			if (ref_at(r, x) != ref_at(r, x - 1))
				changes++;
		if (ref_at(r, horizon) != 0 && pruned)
			changes++;
		CHECK(timeline_size(t) == changes, "size %zu, expected %zu",
		      timeline_size(t), changes);

		for (int64_t x = horizon; x < SPAN + 4; x++)
			CHECK(timeline_at(t, x) == ref_at(r, x), "at(%" PRId64 ")", x);

		for (int q = 0; q < 3; q++) {
			int64_t s = rnd(horizon, SPAN + 8);
			int64_t e = s + rnd(1, SPAN / 2);
			int64_t max = 0;
			for (int64_t x = s; x < e; x++)
				if (ref_at(r, x) > max)
					max = ref_at(r, x);
			CHECK(timeline_max(t, s, e) == max, "max(%" PRId64 ",%" PRId64 ")",
			      s, e);

			struct capacity c;
			random_capacity(&c);
			int64_t units = rnd(1, 6);
			CHECK(timeline_fits(t, &c, units, s, e) ==
			      ref_fits(r, &c, units, s, e),
			      "fits(%" PRId64 ",%" PRId64 ") units %" PRId64, s, e, units);

			int64_t from = rnd(horizon, SPAN + 8);
			int64_t dur = rnd(1, SPAN / 2);
			int64_t limit = rnd(0, 2) == 0 ? TIME_MAX : from + rnd(0, SPAN + 20);
			int64_t got = -1, want = -1;
			int rc = timeline_earliest(t, &c, units, from, dur, limit, &got);
			int rrc = ref_earliest(r, &c, units, from, dur, limit, &want);
			CHECK(rc == rrc && (rc != 0 || got == want),
			      "earliest(from %" PRId64 " dur %" PRId64 " limit %" PRId64
			      " units %" PRId64 " cap %" PRId64 "/%" PRId64 " [%" PRId64
			      ",%" PRId64 ")): %d %" PRId64 ", expected %d %" PRId64,
			      from, dur, limit, units, c.units, c.node, c.from, c.until,
			      rc, got, rrc, want);
		}

		struct step_check sc = {r, horizon, -1, false};
		int64_t to = rnd(horizon + 1, SPAN + 8);
		timeline_steps(t, horizon, to, check_step, &sc);
		CHECK(!sc.bad && sc.expect_start == to, "steps [%" PRId64 ",%" PRId64 ")",
		      horizon, to);
	}

	/* Taking everything back leaves nothing. */
	op = -1;
	for (int i = 0; i < r->n; i++)
		timeline_add(t, r->iv[i].s, r->iv[i].e, -r->iv[i].u);
	CHECK(timeline_size(t) == 0, "size %zu after removing all", timeline_size(t));
	timeline_free(t);
	free(r);
}

static void test_random(void **state)
{
	(void)state;
	for (unsigned seed = 1; seed <= 20; seed++)
		run_seed(seed, 1500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_adjacent_merge),
		cmocka_unit_test(test_half_open_fits),
		cmocka_unit_test(test_nested_and_removal),
		cmocka_unit_test(test_capacity_lease),
		cmocka_unit_test(test_node_rounding),
		cmocka_unit_test(test_extremes),
		cmocka_unit_test(test_earliest_jumps),
		cmocka_unit_test(test_abort_on_underflow),
		cmocka_unit_test(test_prune),
		cmocka_unit_test(test_steps),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
