/* SPDX-License-Identifier: MIT */
/*
 * The clock: time(NULL), or a simulated instant held in the struct. Kept
 * apart from the scheduler so that the writer, the API and main can read
 * the time without depending on what fires when it moves.
 */
#include "daemon/clock.h"

#include <stdlib.h>
#include <time.h>

#define NO_MOVE INT64_MIN

void clock_init_real(struct clock *c)
{
	c->simulated = false;
	c->sim_now = 0;
	c->move_from = NO_MOVE;
	c->sealed_from = NO_MOVE;
}

void clock_init_simulated(struct clock *c, int64_t t)
{
	c->simulated = true;
	c->sim_now = t;
	c->move_from = NO_MOVE;
	c->sealed_from = NO_MOVE;
}

int64_t clock_now(const struct clock *c)
{
	return c->simulated ? c->sim_now : (int64_t)time(NULL);
}

bool clock_simulated(const struct clock *c)
{
	return c->simulated;
}

void clock_set(struct clock *c, int64_t t)
{
	if (!c->simulated)
		abort();	/* only a simulated clock moves on request */
	c->sim_now = t;
}

void clock_move_begin(struct clock *c)
{
	if (c->simulated && c->move_from == NO_MOVE)
		c->move_from = c->sim_now;
}

void clock_move_commit(struct clock *c)
{
	c->move_from = NO_MOVE;
	c->sealed_from = NO_MOVE;
}

void clock_move_seal(struct clock *c)
{
	if (c->sealed_from == NO_MOVE)
		c->sealed_from = c->move_from;
	c->move_from = NO_MOVE;
}

void clock_move_commit_sealed(struct clock *c)
{
	c->sealed_from = NO_MOVE;
}

void clock_move_undo(struct clock *c)
{
	int64_t from = c->sealed_from != NO_MOVE ? c->sealed_from : c->move_from;

	if (c->simulated && from != NO_MOVE)
		c->sim_now = from;
	c->move_from = NO_MOVE;
	c->sealed_from = NO_MOVE;
}
