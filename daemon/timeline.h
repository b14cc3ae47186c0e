/* SPDX-License-Identifier: MIT */
/*
 * A timeline: how many GPUs are booked at each instant, as a step function
 * kept in a balanced search tree of change points (time -> level from that
 * time on). One per pool (against the pool's capacity schedule) and one
 * per (consortium, GPU model) for the concurrency cap. Booking or removing
 * [start,end) costs O(log n + k), a check over a window O(log n + k), where
 * n is the number of change points and k those inside the window; points
 * before a horizon are pruned (history lives in SQLite, not here). Pure
 * memory; no loop, no SQL.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * What a pool (or a cap) can hold: units in [from, until), none outside.
 * node = 0 or 1 for single GPUs; with node > 1 the usable capacity is
 * rounded down to whole nodes (units / node * node).
 */
struct capacity {
	int64_t units;
	int64_t from;		/* TIME_MIN for "always" */
	int64_t until;		/* TIME_MAX for "forever" (exclusive) */
	int64_t node;
};

struct timeline;

struct timeline *timeline_new(void);
void timeline_free(struct timeline *t);
/* A deep copy with the same points and horizon (a dry run's scratch ledger); caller frees. */
struct timeline *timeline_clone(const struct timeline *src);

/*
 * Adds units (negative to remove) over [start, end), start < end. Removing
 * more than was added is a broken invariant and aborts.
 */
void timeline_add(struct timeline *t, int64_t start, int64_t end, int64_t units);

/* The level at instant x. */
int64_t timeline_at(const struct timeline *t, int64_t x);
/* The highest level over [start, end), start < end. */
int64_t timeline_max(const struct timeline *t, int64_t start, int64_t end);

/* The usable capacity at instant x. */
int64_t capacity_at(const struct capacity *c, int64_t x);

/*
 * Whether units more fit over [start,end): for every x in the window,
 * level(x) + units <= capacity_at(x).
 */
bool timeline_fits(const struct timeline *t, const struct capacity *c,
		   int64_t units, int64_t start, int64_t end);

/*
 * The earliest s >= from such that [s, s + duration) fits and
 * s + duration <= limit. Returns 0 and *out, or -ENOSPC when none.
 * Cost: O(log n + k) in the change points between from and the answer.
 */
int timeline_earliest(const struct timeline *t, const struct capacity *c,
		      int64_t units, int64_t from, int64_t duration,
		      int64_t limit, int64_t *out);

/*
 * Drops change points before horizon that no longer matter (the level at
 * horizon and after is unchanged). Everything booked before horizon is
 * forgotten; callers prune only the past.
 */
void timeline_prune(struct timeline *t, int64_t horizon);

/* Number of change points held (for tests and the benchmark). */
size_t timeline_size(const struct timeline *t);

/*
 * Iterates the steps that overlap [from, to): cb(arg, start, end, level)
 * with start/end clipped to the window. For calendars.
 */
void timeline_steps(const struct timeline *t, int64_t from, int64_t to,
		    void (*cb)(void *arg, int64_t start, int64_t end, int64_t level),
		    void *arg);
