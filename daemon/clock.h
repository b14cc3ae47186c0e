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
	int64_t move_from;	/* where an uncommitted move began; INT64_MIN: none */
	int64_t sealed_from;	/* the same for the batch in flight (clock_move_seal()) */
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

/*
 * A move of the simulated clock stands only once the batch it joined (the
 * expiries it fired, its idempotency record) has committed. Before moving,
 * clock_move_begin() remembers where the clock stood (the first move of a
 * batch only); clock_move_commit() forgets it when the batch commits, or
 * when the move joined no batch; clock_move_undo() puts the clock back
 * there when the batch failed. All three do nothing on the real clock or
 * without a move pending.
 *
 * With a batch in flight while the next one is open: clock_move_seal()
 * (the open batch was taken to be committed) hands the pending move to
 * the batch in flight, clock_move_commit_sealed() forgets that one only
 * (it committed; a move of the open batch is still pending), and
 * clock_move_undo() puts the clock back to the earliest pending move (a
 * failed batch fails the open one behind it too).
 */
void clock_move_begin(struct clock *c);
void clock_move_commit(struct clock *c);
void clock_move_seal(struct clock *c);
void clock_move_commit_sealed(struct clock *c);
void clock_move_undo(struct clock *c);
