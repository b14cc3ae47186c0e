/* SPDX-License-Identifier: MIT */
/*
 * The daemon's clock, in Unix seconds: the real one, or a simulated one
 * (--clock) that moves only when an admin sets or advances it, so that
 * tests and demos can live through a program's phases in seconds. Every
 * module that needs "now" asks the clock, never time() itself.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct clock {
	bool simulated;
	int64_t sim_now;	/* the simulated instant; unused on the real clock */
};

/* The real clock. */
void clock_init_real(struct clock *c);
/* A simulated clock that starts at t. */
void clock_init_simulated(struct clock *c, int64_t t);

/* Now, in Unix seconds. */
int64_t clock_now(const struct clock *c);
bool clock_simulated(const struct clock *c);
/*
 * Moves a simulated clock to t (the caller has checked that t is not
 * before now). Aborts on the real clock: nothing may set it.
 */
void clock_set(struct clock *c, int64_t t);
