/* SPDX-License-Identifier: MIT */
/*
 * Time passing: what falls due (a phase end whose unused quota expires, an
 * allocation that starts or ends) is processed at its instant, and its
 * entries join the writer's batch. The scheduler owns one uv_timer; its
 * owner re-arms it from the writer's committed hook (sched_committed), so
 * request handlers never have to know it exists.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "daemon/clock.h"
#include "daemon/journal.h"
#include "daemon/ledger.h"
#include "daemon/writer.h"

struct sched {
	/* private */
	uv_timer_t timer;
	struct clock *clock;
	struct writer *writer;
	bool stopped;
	/* the current ledger: the owner sets it again after replacing it */
	struct ledger *ledger;
};

/* clock, writer and ledger are borrowed. */
void sched_init(struct sched *s, uv_loop_t *loop, struct clock *clock,
		struct writer *writer, struct ledger *ledger);

/*
 * Processes everything due up to now and re-arms the timer at the next
 * due instant (the real clock is re-read at least hourly). Nothing to arm
 * on a simulated clock, which moves only through sched_move_to().
 */
void sched_run(struct sched *s);

/*
 * A batch committed: when it touched an allocation (a reservation, a
 * cancel, a release, a revocation), what falls due may have changed, so
 * this is sched_run(). The scheduler's own expiries change nothing due.
 */
void sched_committed(struct sched *s, const struct jentry *entries, size_t n);

/*
 * Simulated clock: moves it to t (not before now), processing what falls
 * due on the way in time order, each at its own instant.
 */
void sched_move_to(struct sched *s, int64_t t);

/* Stops the timer for good (shutdown): nothing fires or re-arms after. */
void sched_stop(struct sched *s);
/* Closes the timer; the struct must stay in place until the loop has run the close. */
void sched_close(struct sched *s);
