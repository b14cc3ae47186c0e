/* SPDX-License-Identifier: MIT */
/*
 * Time passing. One uv_timer is armed at the next instant something falls
 * due (a phase end whose unused quota expires, an allocation that starts
 * or ends). On the real clock the timer fires then; on the simulated clock
 * time moves only when an admin sets or advances it, and everything that
 * fell due on the way is processed in time order, each at its own instant,
 * before the move is answered.
 */
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/timefmt.h"
#include "daemon/util.h"

#include <time.h>

/* The real clock is re-read at least this often, in case it jumps. */
#define SCHED_MAX_SLEEP_MS (3600 * 1000)

int64_t daemon_now(const struct daemon *d)
{
	return d->simulated ? d->sim_now : (int64_t)time(NULL);
}

/* Logs the allocations that start or end exactly at t. */
static void log_transitions(struct daemon *d, int64_t t)
{
	const struct alloc *const *v;
	size_t n = ledger_allocs(d->ledger, &v);
	char buf[TIME_BUFSZ];

	for (size_t i = 0; i < n; i++) {
		const char *ev = v[i]->start == t ? "allocation_active" :
				 v[i]->end == t ? "allocation_completed" : NULL;
		if (ev)
			log_event(LOG_INFO, ev, "{s:s, s:s, s:s, s:I, s:s}",
				  "allocation", v[i]->id, "consortium", v[i]->consortium,
				  "pool", v[i]->pool, "gpus", (json_int_t)v[i]->gpus,
				  "at", time_format(t, d->cfg->tz_offset, buf, sizeof(buf)));
	}
}

/* Everything due at instant t. */
static void fire(struct daemon *d, int64_t t)
{
	struct ledger_ctx ctx = {.now = t, .actor = "gpuledgerd", .request_id = NULL};
	struct jlist out = {0};

	log_transitions(d, t);
	if (ledger_tick(d->ledger, &ctx, &out) > 0) {
		for (size_t i = 0; i < out.n; i++)
			log_event(LOG_INFO, "quota_expired", "{s:s, s:s, s:s, s:I}",
				  "consortium", out.v[i].consortium, "phase", out.v[i].phase,
				  "gpu", out.v[i].gpu,
				  "expired_gpu_seconds", (json_int_t)out.v[i].expired_delta);
	}
	writer_add(d, &out, NULL);
}

static void arm(struct daemon *d);

static void on_timer(uv_timer_t *t)
{
	sched_run(t->data);
}

static void arm(struct daemon *d)
{
	if (d->simulated || d->stopping)
		return;
	int64_t now = daemon_now(d);
	int64_t due = ledger_next_due(d->ledger, now);
	uint64_t ms = SCHED_MAX_SLEEP_MS;
	if (due != TIME_MAX && (due - now) * 1000 < SCHED_MAX_SLEEP_MS)
		ms = (uint64_t)(due - now) * 1000;
	uv_timer_start(&d->due_timer, on_timer, ms, 0);
}

void sched_init(struct daemon *d)
{
	uv_timer_init(d->loop, &d->due_timer);
	d->due_timer.data = d;
}

void sched_run(struct daemon *d)
{
	/* on the real clock the timer fires at the due instant itself; what
	 * fell due while the daemon was down is settled at once, now */
	fire(d, daemon_now(d));
	arm(d);
}

void sched_move_to(struct daemon *d, int64_t target)
{
	int64_t t;
	while ((t = ledger_next_due(d->ledger, d->sim_now)) <= target && t != TIME_MAX) {
		d->sim_now = t;
		fire(d, t);
	}
	d->sim_now = target;
	fire(d, target);
}

void sched_close(struct daemon *d)
{
	uv_close((uv_handle_t *)&d->due_timer, NULL);
}
