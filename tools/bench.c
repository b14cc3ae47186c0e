/* SPDX-License-Identifier: MIT */
/*
 * Benchmark of the capacity check (DESIGN.md, Architecture): one pool with
 * 1e3, 1e5 and 1e6 allocations booked, nearly all of them in past years and
 * about a hundred around "now", and the cost per call of timeline_fits over
 * a day near now and of timeline_earliest from now, before and after the
 * past is pruned. The claim to check is that these costs follow the
 * allocations near the window, not the length of the history. `--quick`
 * stops at 1e5 (a sanity run for CI).
 */
#include "daemon/timeline.h"
#include "daemon/timefmt.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOUR 3600
#define DAY (24 * HOUR)
#define NOW INT64_C(1767225600)		/* 2026-01-01T00:00:00Z, fixed for repeatability */
#define HISTORY (3 * 365 * DAY)		/* the past the history is spread over */
#define NEAR 100			/* allocations tried around now */
#define FITS_CALLS 200000
#define EARLIEST_CALLS 50000

static uint64_t rng = 42;

/* splitmix64: the same bookings on every run and every machine. */
static uint64_t next_rand(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int64_t rnd(int64_t lo, int64_t hi)
{
	return lo + (int64_t)(next_rand() % (uint64_t)(hi - lo + 1));
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

struct figures {
	size_t points;
	double fits_us;
	double earliest_us;
	int64_t earliest_h;	/* the answer, in hours after now (-1: none) */
};

/* Keeps the compiler from dropping calls whose results go unused. */
static volatile int64_t sink;

static void measure(const struct timeline *t, const struct capacity *c,
		    struct figures *f)
{
	f->points = timeline_size(t);

	/* Windows shift by a minute per call so that not every call is alike. */
	double t0 = now_us();
	for (int i = 0; i < FITS_CALLS; i++) {
		int64_t s = NOW + (i % 64) * 60;
		sink += timeline_fits(t, c, 64, s, s + DAY);
	}
	f->fits_us = (now_us() - t0) / FITS_CALLS;

	int64_t answer = 0;
	int rc = 0;
	t0 = now_us();
	for (int i = 0; i < EARLIEST_CALLS; i++) {
		rc = timeline_earliest(t, c, 512, NOW + (i % 64) * 60, DAY, TIME_MAX,
				       &answer);
		sink += answer;
	}
	f->earliest_us = (now_us() - t0) / EARLIEST_CALLS;
	f->earliest_h = rc == 0 ? (answer - NOW) / HOUR : -1;
}

static void run(long n)
{
	struct capacity c = {1024, TIME_MIN, TIME_MAX, 8};
	struct timeline *t = timeline_new();
	struct figures full, pruned;

	/*
	 * The history: one-hour bookings of 1-16 GPUs, started at even steps
	 * over the past three years (so they overlap when n is large, and the
	 * last ones run across now).
	 */
	rng = 42;
	int64_t step = HISTORY / n;
	double t0 = now_us();
	for (long i = 0; i < n; i++) {
		int64_t start = NOW - HISTORY + i * step;
		timeline_add(t, start, start + HOUR, rnd(1, 16));
	}
	double add_us = (now_us() - t0) / (double)n;

	/*
	 * The present: bookings of 2-8 nodes around now, as many as fit, drawn
	 * from their own seed so that every size gets the same ones.
	 */
	rng = 7;
	int near = 0;
	for (int i = 0; i < NEAR; i++) {
		int64_t start = NOW - 6 * HOUR + rnd(0, 42 * HOUR);
		int64_t end = start + rnd(1, 12) * HOUR;
		int64_t units = rnd(2, 8) * 8;
		if (timeline_fits(t, &c, units, start, end)) {
			timeline_add(t, start, end, units);
			near++;
		}
	}

	measure(t, &c, &full);
	t0 = now_us();
	timeline_prune(t, NOW);
	double prune_ms = (now_us() - t0) / 1e3;
	measure(t, &c, &pruned);

	printf("%9ld %5d %9zu %7.3f %8.3f %11.3f %8.1f %7zu %8.3f %11.3f %5" PRId64 "\n",
	       n, near, full.points, add_us, full.fits_us, full.earliest_us,
	       prune_ms, pruned.points, pruned.fits_us, pruned.earliest_us,
	       pruned.earliest_h);
	if (full.earliest_h != pruned.earliest_h) {
		fprintf(stderr, "bench: pruning changed the answer (%" PRId64
			"h vs %" PRId64 "h)\n", full.earliest_h, pruned.earliest_h);
		exit(1);
	}
	timeline_free(t);
}

int main(int argc, char **argv)
{
	bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	if (argc > 2 || (argc == 2 && !quick)) {
		fprintf(stderr, "usage: bench [--quick]\n");
		return 64;
	}
	printf("one pool of 1024 GPUs (8 per node); fits: 64 GPUs over 1 day from now;\n"
	       "earliest: 512 GPUs for 1 day from now; times are per call\n\n");
	printf("%9s %5s %9s %7s %8s %11s %8s %7s %8s %11s %5s\n",
	       "", "", "", "", "", "", "prune", "after", "", "", "");
	printf("%9s %5s %9s %7s %8s %11s %8s %7s %8s %11s %5s\n",
	       "allocs", "near", "points", "add_us", "fits_us", "earliest_us",
	       "ms", "points", "fits_us", "earliest_us", "ans_h");
	run(1000);
	run(100000);
	if (!quick)
		run(1000000);
	return 0;
}
