/* SPDX-License-Identifier: MIT */
/*
 * Time passing. One uv_timer is armed at the next instant something falls
 * due (a phase end whose unused quota expires, an allocation that starts
 * or ends). On the real clock the timer fires then; on the simulated clock
 * time moves only when an admin sets or advances it, and everything that
 * fell due on the way is processed in time order, each at its own instant,
 * before the move is answered. The scheduler only calls down: the ledger
 * for what is due, the writer for the entries it makes.
 */
#include "daemon/sched.h"
#include "daemon/log.h"
#include "daemon/timefmt.h"
#include "daemon/util.h"

/* The real clock is re-read at least this often, in case it jumps. */
#define SCHED_MAX_SLEEP_MS (3600 * 1000)

/* Logs the allocations that start or end exactly at t (from the ledger's queue, not a scan). */
static void log_transitions(struct sched *s, int64_t t)
{
	const struct alloc *const *v;
	size_t n = ledger_due_at(s->ledger, t, &v);
	int32_t tz = ledger_config(s->ledger)->tz_offset;
	char buf[TIME_BUFSZ];

	for (size_t i = 0; i < n; i++) {
		const char *ev = v[i]->start == t ? "allocation_active" :
				 v[i]->end == t ? "allocation_completed" : NULL;
		if (ev)
			log_event(LOG_INFO, ev, "{s:s, s:s, s:s, s:I, s:s}",
				  "allocation", v[i]->id, "consortium", v[i]->consortium,
				  "pool", v[i]->pool, "gpus", (json_int_t)v[i]->gpus,
				  "at", time_format(t, tz, buf, sizeof(buf)));
	}
}

/* Everything due at instant t. */
static void fire(struct sched *s, int64_t t)
{
	struct ledger_ctx ctx = {.now = t, .actor = "gpuledgerd", .request_id = NULL};
	struct jlist out = {0};

	log_transitions(s, t);
	if (ledger_tick(s->ledger, &ctx, &out) > 0) {
		for (size_t i = 0; i < out.n; i++)
			log_event(LOG_INFO, "quota_expired", "{s:s, s:s, s:s, s:I}",
				  "consortium", out.v[i].consortium, "phase", out.v[i].phase,
				  "gpu", out.v[i].gpu,
				  "expired_gpu_seconds", (json_int_t)out.v[i].expired_delta);
	}
	writer_add(s->writer, &out, NULL);
}

static void on_timer(uv_timer_t *t)
{
	sched_run(t->data);
}

static void arm(struct sched *s)
{
	if (clock_simulated(s->clock) || s->stopped)
		return;
	int64_t now = clock_now(s->clock);
	int64_t due = ledger_next_due(s->ledger, now);
	uint64_t ms = SCHED_MAX_SLEEP_MS;
	if (due != TIME_MAX && (due - now) * 1000 < SCHED_MAX_SLEEP_MS)
		ms = (uint64_t)(due - now) * 1000;
	uv_timer_start(&s->timer, on_timer, ms, 0);
}

void sched_init(struct sched *s, uv_loop_t *loop, struct clock *clock,
		struct writer *writer, struct ledger *ledger)
{
	s->clock = clock;
	s->writer = writer;
	s->ledger = ledger;
	s->stopped = false;
	uv_timer_init(loop, &s->timer);
	s->timer.data = s;
}

void sched_run(struct sched *s)
{
	if (s->stopped)
		return;
	/* on the real clock the timer fires at the due instant itself; what
	 * fell due while the daemon was down is settled at once, now */
	fire(s, clock_now(s->clock));
	arm(s);
}

void sched_committed(struct sched *s, const struct jentry *entries, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* a phase move changes when the phase ends (and its quota expires) */
		if (entries[i].allocation != NULL || entries[i].kind == J_PHASE) {
			sched_run(s);
			return;
		}
	}
}

void sched_move_to(struct sched *s, int64_t target)
{
	int64_t t;
	while ((t = ledger_next_due(s->ledger, clock_now(s->clock))) <= target && t != TIME_MAX) {
		clock_set(s->clock, t);
		fire(s, t);
	}
	clock_set(s->clock, target);
	fire(s, target);
}

void sched_stop(struct sched *s)
{
	s->stopped = true;
	uv_timer_stop(&s->timer);
}

void sched_close(struct sched *s)
{
	uv_close((uv_handle_t *)&s->timer, NULL);
}
