/* SPDX-License-Identifier: MIT */
/*
 * The ledger's state and rules. Every operation follows the same shape:
 * check the whole request against the current state (refusing with a typed
 * error and touching nothing), then apply it and seal the journal entries
 * that record it. Capacity and cap checks go to in-memory timelines that
 * hold only the present and the future; the past lives in the store.
 */
#include "daemon/ledger.h"
#include "daemon/timefmt.h"
#include "daemon/timeline.h"
#include "daemon/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pool_tl {
	char *pool;
	struct timeline *tl;
};

struct cap_tl {
	char *consortium;
	char *gpu;
	struct timeline *tl;
};

struct ledger {
	const struct config *cfg;
	int64_t seq;
	uint8_t head[HASH_LEN];
	int64_t alloc_num;

	struct balance **bals;		/* display order kept by sort on demand */
	size_t n_bals;
	bool bals_sorted;
	struct cstate *cstates;
	size_t n_cstates;
	struct alloc **allocs;		/* live, sorted by num */
	size_t n_allocs;
	struct pool_tl *pools;
	size_t n_pools;
	struct cap_tl *caps;
	size_t n_caps;

	char last_id[24];
};

/* --- errors ------------------------------------------------------------ */

void ledger_error_clear(struct ledger_error *err)
{
	free(err->message);
	json_decref(err->details);
	memset(err, 0, sizeof(*err));
}

static int fail(struct ledger_error *err, enum error_code code, json_t *details,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(struct ledger_error *err, enum error_code code, json_t *details,
		const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err->code = code;
	err->message = xvasprintf(fmt, ap);
	err->details = details;
	va_end(ap);
	return -EINVAL;
}

/* A time for messages, in the program's zone; rotates among 4 buffers. */
static const char *tstr(const struct ledger *l, int64_t t)
{
	static char bufs[4][TIME_BUFSZ];
	static unsigned i;
	char *b = bufs[i++ % 4];
	return time_format(t, l->cfg->tz_offset, b, TIME_BUFSZ);
}

static const char *hours(int64_t secs)
{
	static char bufs[4][32];
	static unsigned i;
	return gpu_hours_format(secs, bufs[i++ % 4], 32);
}

/* --- lookups ----------------------------------------------------------- */

struct ledger *ledger_new(const struct config *cfg)
{
	struct ledger *l = xcalloc(1, sizeof(*l));
	l->cfg = cfg;
	return l;
}

void ledger_free(struct ledger *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n_bals; i++) {
		balance_clear(l->bals[i]);
		free(l->bals[i]);
	}
	free(l->bals);
	for (size_t i = 0; i < l->n_cstates; i++)
		cstate_clear(&l->cstates[i]);
	free(l->cstates);
	for (size_t i = 0; i < l->n_allocs; i++) {
		alloc_clear(l->allocs[i]);
		free(l->allocs[i]);
	}
	free(l->allocs);
	for (size_t i = 0; i < l->n_pools; i++) {
		free(l->pools[i].pool);
		timeline_free(l->pools[i].tl);
	}
	free(l->pools);
	for (size_t i = 0; i < l->n_caps; i++) {
		free(l->caps[i].consortium);
		free(l->caps[i].gpu);
		timeline_free(l->caps[i].tl);
	}
	free(l->caps);
	free(l);
}

const struct config *ledger_config(const struct ledger *l)
{
	return l->cfg;
}

int64_t ledger_head_seq(const struct ledger *l)
{
	return l->seq;
}

void ledger_head_hash(const struct ledger *l, uint8_t hash[HASH_LEN])
{
	memcpy(hash, l->head, HASH_LEN);
}

static struct balance *bal_find(const struct ledger *l, const char *c, const char *p,
				const char *g)
{
	for (size_t i = 0; i < l->n_bals; i++) {
		struct balance *b = l->bals[i];
		if (strcmp(b->consortium, c) == 0 && strcmp(b->phase, p) == 0 &&
		    strcmp(b->gpu, g) == 0)
			return b;
	}
	return NULL;
}

static struct balance *bal_get(struct ledger *l, const char *c, const char *p,
			       const char *g)
{
	struct balance *b = bal_find(l, c, p, g);
	if (b)
		return b;
	b = xcalloc(1, sizeof(*b));
	b->consortium = xstrdup(c);
	b->phase = xstrdup(p);
	b->gpu = xstrdup(g);
	l->bals = xreallocarray(l->bals, l->n_bals + 1, sizeof(*l->bals));
	l->bals[l->n_bals++] = b;
	l->bals_sorted = false;
	return b;
}

const struct balance *ledger_balance(const struct ledger *l, const char *consortium,
				     const char *phase, const char *gpu)
{
	return bal_find(l, consortium, phase, gpu);
}

static struct cstate *cs_find(const struct ledger *l, const char *c)
{
	for (size_t i = 0; i < l->n_cstates; i++)
		if (strcmp(l->cstates[i].consortium, c) == 0)
			return &l->cstates[i];
	return NULL;
}

static struct cstate *cs_get(struct ledger *l, const char *c)
{
	struct cstate *cs = cs_find(l, c);
	if (cs)
		return cs;
	l->cstates = xreallocarray(l->cstates, l->n_cstates + 1, sizeof(*l->cstates));
	cs = &l->cstates[l->n_cstates++];
	memset(cs, 0, sizeof(*cs));
	cs->consortium = xstrdup(c);
	cs->status = CS_ACTIVE;
	cs->since = TIME_MIN;
	cs->designation_until = TIME_MIN;
	cs->active_from = TIME_MIN;
	return cs;
}

const struct cstate *ledger_cstate(const struct ledger *l, const char *consortium)
{
	return cs_find(l, consortium);
}

static struct timeline *pool_tl(struct ledger *l, const char *pool)
{
	for (size_t i = 0; i < l->n_pools; i++)
		if (strcmp(l->pools[i].pool, pool) == 0)
			return l->pools[i].tl;
	l->pools = xreallocarray(l->pools, l->n_pools + 1, sizeof(*l->pools));
	l->pools[l->n_pools].pool = xstrdup(pool);
	l->pools[l->n_pools].tl = timeline_new();
	return l->pools[l->n_pools++].tl;
}

static struct timeline *cap_tl(struct ledger *l, const char *c, const char *gpu)
{
	for (size_t i = 0; i < l->n_caps; i++)
		if (strcmp(l->caps[i].consortium, c) == 0 && strcmp(l->caps[i].gpu, gpu) == 0)
			return l->caps[i].tl;
	l->caps = xreallocarray(l->caps, l->n_caps + 1, sizeof(*l->caps));
	l->caps[l->n_caps].consortium = xstrdup(c);
	l->caps[l->n_caps].gpu = xstrdup(gpu);
	l->caps[l->n_caps].tl = timeline_new();
	return l->caps[l->n_caps++].tl;
}

/* Index of the live allocation with this number, or where it would go. */
static size_t alloc_pos(const struct ledger *l, int64_t num, bool *found)
{
	size_t lo = 0, hi = l->n_allocs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l->allocs[mid]->num < num)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < l->n_allocs && l->allocs[lo]->num == num;
	return lo;
}

static int64_t alloc_id_num(const char *id)
{
	int64_t num;
	if (id == NULL || strncmp(id, "A-", 2) != 0 || strlen(id) > 14 ||
	    i64_parse(id + 2, &num) != 0 || num <= 0 || id[2] == '-' || id[2] == '+')
		return -1;
	return num;
}

static struct alloc *alloc_find(const struct ledger *l, const char *id)
{
	int64_t num = alloc_id_num(id);
	bool found;
	if (num < 0)
		return NULL;
	size_t i = alloc_pos(l, num, &found);
	return found && strcmp(l->allocs[i]->id, id) == 0 ? l->allocs[i] : NULL;
}

const struct alloc *ledger_alloc(const struct ledger *l, const char *id)
{
	return alloc_find(l, id);
}

size_t ledger_allocs(const struct ledger *l, const struct alloc *const **out)
{
	*out = (const struct alloc *const *)l->allocs;
	return l->n_allocs;
}

static void alloc_insert(struct ledger *l, struct alloc *a)
{
	bool found;
	size_t i = alloc_pos(l, a->num, &found);
	if (found)
		abort();	/* ids are unique by construction */
	l->allocs = xreallocarray(l->allocs, l->n_allocs + 1, sizeof(*l->allocs));
	memmove(&l->allocs[i + 1], &l->allocs[i], (l->n_allocs - i) * sizeof(*l->allocs));
	l->allocs[i] = a;
	l->n_allocs++;
}

static void alloc_remove(struct ledger *l, struct alloc *a)
{
	bool found;
	size_t i = alloc_pos(l, a->num, &found);
	if (!found)
		abort();
	memmove(&l->allocs[i], &l->allocs[i + 1], (l->n_allocs - i - 1) * sizeof(*l->allocs));
	l->n_allocs--;
	alloc_clear(a);
	free(a);
}

static struct capacity pool_capacity(const struct cfg_pool *p)
{
	return (struct capacity){
		.units = p->gpus,
		.from = p->available_from,
		.until = p->available_until,
		.node = p->gpus_per_node,
	};
}

static struct capacity cap_capacity(int64_t max_gpus)
{
	return (struct capacity){.units = max_gpus, .from = TIME_MIN, .until = TIME_MAX};
}

/* Books or unbooks [start,end) of an allocation in both its timelines. */
static void book(struct ledger *l, const struct alloc *a, int64_t start, int64_t end,
		 int64_t sign)
{
	if (start >= end)
		return;
	timeline_add(pool_tl(l, a->pool), start, end, sign * a->gpus);
	timeline_add(cap_tl(l, a->consortium, a->gpu), start, end, sign * a->gpus);
}

/* --- loading ----------------------------------------------------------- */

void ledger_load_head(struct ledger *l, int64_t seq, const uint8_t hash[HASH_LEN],
		      int64_t max_alloc_num)
{
	l->seq = seq;
	memcpy(l->head, hash, HASH_LEN);
	l->alloc_num = max_alloc_num;
}

int ledger_load_balance(struct ledger *l, const struct balance *b, char **cause)
{
	if (config_consortium(l->cfg, b->consortium) == NULL ||
	    config_phase(l->cfg, b->phase) == NULL || !config_has_gpu(l->cfg, b->gpu)) {
		*cause = xasprintf("the ledger has a balance of %s/%s/%s, which the configuration lacks",
				   b->consortium, b->phase, b->gpu);
		return -EINVAL;
	}
	struct balance *dst = bal_get(l, b->consortium, b->phase, b->gpu);
	dst->granted = b->granted;
	dst->committed = b->committed;
	dst->expired = b->expired;
	dst->max_gpus = b->max_gpus;
	return 0;
}

int ledger_load_cstate(struct ledger *l, const struct cstate *c, char **cause)
{
	if (config_consortium(l->cfg, c->consortium) == NULL) {
		*cause = xasprintf("the ledger refers to consortium '%s', which the configuration lacks",
				   c->consortium);
		return -EINVAL;
	}
	struct cstate *dst = cs_get(l, c->consortium);
	dst->status = c->status;
	dst->since = c->since;
	dst->designation_until = c->designation_until;
	dst->active_from = c->active_from;
	return 0;
}

int ledger_load_alloc(struct ledger *l, const struct alloc *a, char **cause)
{
	const struct cfg_pool *p = config_pool(l->cfg, a->pool);
	if (p == NULL) {
		*cause = xasprintf("allocation %s is in pool '%s', which the configuration lacks",
				   a->id, a->pool);
		return -EINVAL;
	}
	if (a->num <= 0 || a->start >= a->end || a->gpus <= 0) {
		*cause = xasprintf("allocation %s is malformed in the database", a->id);
		return -EINVAL;
	}
	struct alloc *dst = xcalloc(1, sizeof(*dst));
	alloc_copy(dst, a);
	alloc_insert(l, dst);
	book(l, dst, dst->start, dst->end, 1);
	if (a->num > l->alloc_num)
		l->alloc_num = a->num;
	return 0;
}

/* --- entries ----------------------------------------------------------- */

static struct jentry *entry_new(const struct ledger_ctx *ctx, struct jlist *out,
				enum jkind kind, const char *consortium,
				const char *phase, const char *gpu, const char *reason)
{
	struct jentry *e = jlist_push(out);
	e->kind = kind;
	e->time = ctx->now;
	e->actor = ctx->actor ? xstrdup(ctx->actor) : NULL;
	e->request_id = ctx->request_id ? xstrdup(ctx->request_id) : NULL;
	e->consortium = consortium ? xstrdup(consortium) : NULL;
	e->phase = phase ? xstrdup(phase) : NULL;
	e->gpu = gpu ? xstrdup(gpu) : NULL;
	e->reason = reason ? xstrdup(reason) : NULL;
	return e;
}

static void entry_alloc(struct jentry *e, const struct alloc *a)
{
	e->allocation = xstrdup(a->id);
	e->pool = xstrdup(a->pool);
	e->gpus = a->gpus;
	e->start = a->start;
	e->end = a->end;
}

/* Links e into the chain: the last step of every entry's construction. */
static void seal(struct ledger *l, struct jentry *e)
{
	e->seq = ++l->seq;
	memcpy(e->prev_hash, l->head, HASH_LEN);
	jentry_seal(e);
	memcpy(l->head, e->hash, HASH_LEN);
}

/* --- rules ------------------------------------------------------------- */

static int64_t available(const struct balance *b)
{
	return b ? b->granted - b->committed - b->expired : 0;
}

static int find_consortium(const struct ledger *l, const char *id,
			   const struct cfg_consortium **out, struct ledger_error *err)
{
	*out = id ? config_consortium(l->cfg, id) : NULL;
	if (*out == NULL)
		return fail(err, ERR_NOT_FOUND, NULL,
			    "no consortium '%s'", id ? id : "");
	return 0;
}

/* The window over which the consortium may hold allocations. */
static void active_window(const struct ledger *l, const struct cfg_consortium *c,
			  int64_t *from, int64_t *until)
{
	const struct cstate *cs = cs_find(l, c->id);
	*from = c->joined;
	*until = TIME_MAX;
	if (cs == NULL)
		return;
	if (cs->active_from != TIME_MIN && cs->active_from > *from)
		*from = cs->active_from;
	if (cs->status == CS_ELIMINATED)
		*until = cs->since;
}

int ledger_grant(struct ledger *l, const struct ledger_ctx *ctx,
		 const struct grant_req *req, struct jlist *out,
		 struct ledger_error *err)
{
	const struct cfg_consortium *c;
	const struct cfg_phase *ph;
	int64_t granted;

	if (find_consortium(l, req->consortium, &c, err))
		return -EINVAL;
	ph = req->phase ? config_phase(l->cfg, req->phase) : NULL;
	if (ph == NULL)
		return fail(err, ERR_UNKNOWN_PHASE, NULL, "no phase '%s'",
			    req->phase ? req->phase : "");
	if (req->gpu == NULL || !config_has_gpu(l->cfg, req->gpu))
		return fail(err, ERR_UNKNOWN_GPU, NULL,
			    "no pool has GPU model '%s'", req->gpu ? req->gpu : "");
	if (req->gpu_seconds == 0 && req->max_gpus < 0)
		return fail(err, ERR_INVALID_AMOUNT, NULL,
			    "a grant needs a non-zero amount or a GPU cap");
	if (req->max_gpus > 0 && req->max_gpus > 1000000000)
		return fail(err, ERR_INVALID_AMOUNT, NULL, "max_gpus is too large");
	if (ctx->now >= ph->end)
		return fail(err, ERR_PHASE_CLOSED,
			    json_pack("{s:s}", "phase_end", tstr(l, ph->end)),
			    "phase %s ended at %s; its quota can no longer change",
			    ph->id, tstr(l, ph->end));

	/* a grant must be usable: some time of the phase from now on, before
	 * an elimination takes effect */
	const struct cstate *cs = cs_find(l, c->id);
	int64_t usable_from = ph->start > ctx->now ? ph->start : ctx->now;
	if (cs && cs->status == CS_ELIMINATED && req->gpu_seconds > 0 &&
	    usable_from >= cs->since)
		return fail(err, ERR_NOT_ACTIVE,
			    json_pack("{s:s}", "eliminated_at", tstr(l, cs->since)),
			    "%s is eliminated from %s; reinstate it before granting quota of %s",
			    c->id, tstr(l, cs->since), ph->id);

	const struct balance *b = bal_find(l, c->id, ph->id, req->gpu);
	int64_t cur = b ? b->granted : 0;
	int64_t floor = b ? b->committed + b->expired : 0;
	if (!i64_add(cur, req->gpu_seconds, &granted) || granted > INT64_MAX / 4)
		return fail(err, ERR_INVALID_AMOUNT, NULL,
			    "the grant would overflow the ledger");
	if (granted < floor)
		return fail(err, ERR_BELOW_COMMITTED,
			    json_pack("{s:I, s:I, s:I}",
				      "granted_gpu_seconds", (json_int_t)cur,
				      "committed_gpu_seconds", (json_int_t)(b ? b->committed : 0),
				      "requested_delta_gpu_seconds", (json_int_t)req->gpu_seconds),
			    "an adjustment of %s GPU-hours would leave %s/%s/%s below what is already committed (%s of %s GPU-hours granted are committed or expired)",
			    hours(req->gpu_seconds), c->id, ph->id, req->gpu,
			    hours(floor), hours(cur));

	if (req->max_gpus > 0) {
		/* the cap must hold for what is already booked in this phase */
		struct timeline *tl = cap_tl(l, c->id, req->gpu);
		int64_t from = ph->start > ctx->now ? ph->start : ctx->now;
		int64_t peak = timeline_max(tl, from, ph->end);
		if (peak > req->max_gpus)
			return fail(err, ERR_CAP_EXCEEDED,
				    json_pack("{s:I, s:I}", "max_gpus", (json_int_t)req->max_gpus,
					      "booked_gpus", (json_int_t)peak),
				    "%s already has %" PRId64 " %s GPUs booked at once in %s; a cap of %" PRId64 " is too low",
				    c->id, peak, req->gpu, ph->id, req->max_gpus);
	}

	struct balance *bal = bal_get(l, c->id, ph->id, req->gpu);
	if (req->gpu_seconds != 0) {
		struct jentry *e = entry_new(ctx, out, req->gpu_seconds > 0 ? J_GRANT : J_ADJUST,
					     c->id, ph->id, req->gpu, req->reason);
		e->granted_delta = req->gpu_seconds;
		seal(l, e);
		bal->granted = granted;
	}
	if (req->max_gpus >= 0) {
		struct jentry *e = entry_new(ctx, out, J_CAP, c->id, ph->id, req->gpu, req->reason);
		e->max_gpus = req->max_gpus;
		seal(l, e);
		bal->max_gpus = req->max_gpus;
	}
	return 0;
}

/* What an allocation request is checked against. */
struct fit {
	const struct cfg_consortium *c;
	const struct cfg_phase *ph;
	const struct balance *bal;
	int64_t gpus;
	int64_t duration;
	int64_t lo;		/* earliest allowed start */
	int64_t hi;		/* latest allowed end */
};

/* Whether pool p may take this request: the named pool, or any pool of the
 * model, in whole nodes. */
static bool candidate(const struct cfg_pool *p, const struct cfg_pool *only,
		      const char *gpu, int64_t gpus)
{
	if (only ? p != only : strcmp(p->gpu, gpu) != 0)
		return false;
	return p->gpus_per_node <= 1 || gpus % p->gpus_per_node == 0;
}

/* Earliest start >= from in pool p at which pool and cap both fit. */
static int earliest_in_pool(struct ledger *l, const struct fit *f,
			    const struct cfg_pool *p, int64_t from, int64_t *out)
{
	struct capacity pc = pool_capacity(p);
	struct timeline *ptl = pool_tl(l, p->id);
	int64_t t = from;

	for (;;) {
		int64_t t1, t2;
		if (timeline_earliest(ptl, &pc, f->gpus, t, f->duration, f->hi, &t1))
			return -ENOSPC;
		if (f->bal == NULL || f->bal->max_gpus <= 0) {
			*out = t1;
			return 0;
		}
		struct capacity cc = cap_capacity(f->bal->max_gpus);
		if (timeline_earliest(cap_tl(l, f->c->id, p->gpu), &cc, f->gpus, t1,
				      f->duration, f->hi, &t2))
			return -ENOSPC;
		if (t2 == t1) {
			*out = t1;
			return 0;
		}
		t = t2;
	}
}

/* Over every candidate pool (ties: the first in the config). */
static int earliest_any(struct ledger *l, const struct fit *f, const struct cfg_pool *only,
			const char *gpu, int64_t from, const struct cfg_pool **pool_out,
			int64_t *out)
{
	int rc = -ENOSPC;
	for (size_t i = 0; i < l->cfg->n_pools; i++) {
		const struct cfg_pool *p = &l->cfg->pools[i];
		int64_t t;
		if (!candidate(p, only, gpu, f->gpus))
			continue;
		if (earliest_in_pool(l, f, p, from, &t) == 0 && (rc != 0 || t < *out)) {
			*out = t;
			*pool_out = p;
			rc = 0;
		}
	}
	return rc;
}

int ledger_allocate(struct ledger *l, const struct ledger_ctx *ctx,
		    const struct alloc_req *req, struct jlist *out,
		    const char **id_out, struct ledger_error *err)
{
	const struct cfg_pool *only = NULL, *pool = NULL;
	const char *gpu;
	struct fit f = {0};
	int64_t cost, start = req->start, end = req->end;

	if (find_consortium(l, req->consortium, &f.c, err))
		return -EINVAL;
	if (req->pool) {
		only = config_pool(l->cfg, req->pool);
		if (only == NULL)
			return fail(err, ERR_NOT_FOUND, NULL, "no pool '%s'", req->pool);
		gpu = only->gpu;
	} else {
		gpu = req->gpu;
		if (gpu == NULL || !config_has_gpu(l->cfg, gpu))
			return fail(err, ERR_UNKNOWN_GPU, NULL,
				    "no pool has GPU model '%s'", gpu ? gpu : "");
	}
	if (req->gpus <= 0)
		return fail(err, ERR_INVALID_AMOUNT, NULL, "gpus must be at least 1");
	if (end <= start)
		return fail(err, ERR_INVALID_WINDOW, NULL,
			    "the end (%s) must be after the start (%s)", tstr(l, end), tstr(l, start));
	if (!req->earliest && start < ctx->now)
		return fail(err, ERR_INVALID_WINDOW,
			    json_pack("{s:s}", "now", tstr(l, ctx->now)),
			    "the start %s is in the past (now is %s)", tstr(l, start), tstr(l, ctx->now));
	f.gpus = req->gpus;
	f.duration = end - start;

	/* rule 1: one phase */
	f.ph = config_phase_at(l->cfg, start);
	if (f.ph == NULL)
		return fail(err, ERR_CROSSES_PHASE, NULL,
			    "no phase contains the start %s", tstr(l, start));
	if (end > f.ph->end && !req->earliest)
		return fail(err, ERR_CROSSES_PHASE,
			    json_pack("{s:s, s:s}", "phase", f.ph->id, "phase_end", tstr(l, f.ph->end)),
			    "the allocation crosses the end of phase %s at %s",
			    f.ph->id, tstr(l, f.ph->end));
	if (f.duration > f.ph->end - f.ph->start)
		return fail(err, ERR_CROSSES_PHASE,
			    json_pack("{s:s, s:s}", "phase", f.ph->id, "phase_end", tstr(l, f.ph->end)),
			    "the allocation is longer than phase %s, which ends at %s",
			    f.ph->id, tstr(l, f.ph->end));

	/* whole nodes: a named pool must take the count; a model needs one pool that does */
	bool any_pool = false;
	for (size_t i = 0; i < l->cfg->n_pools; i++)
		any_pool |= candidate(&l->cfg->pools[i], only, gpu, f.gpus);
	if (!any_pool) {
		const struct cfg_pool *p = only;
		for (size_t i = 0; p == NULL && i < l->cfg->n_pools; i++)
			if (strcmp(l->cfg->pools[i].gpu, gpu) == 0)
				p = &l->cfg->pools[i];
		return fail(err, ERR_NOT_WHOLE_NODES,
			    json_pack("{s:I}", "gpus_per_node", (json_int_t)p->gpus_per_node),
			    "pool %s allocates whole nodes of %" PRId64 " GPUs; %" PRId64 " is not a multiple",
			    p->id, p->gpus_per_node, req->gpus);
	}

	/* rule 5: active over the window */
	int64_t act_from, act_until;
	active_window(l, f.c, &act_from, &act_until);
	f.lo = start;
	if (req->earliest) {
		if (f.lo < ctx->now)
			f.lo = ctx->now;
		if (f.lo < act_from)
			f.lo = act_from;
	}
	f.hi = f.ph->end < act_until ? f.ph->end : act_until;
	if (!req->earliest && (start < act_from || end > act_until)) {
		const struct cstate *cs = cs_find(l, f.c->id);
		if (cs && cs->status == CS_ELIMINATED && end > act_until)
			return fail(err, ERR_NOT_ACTIVE,
				    json_pack("{s:s}", "eliminated_at", tstr(l, act_until)),
				    "%s is eliminated from %s", f.c->id, tstr(l, act_until));
		return fail(err, ERR_NOT_ACTIVE,
			    json_pack("{s:s}", "active_from", tstr(l, act_from)),
			    "%s is not active before %s", f.c->id, tstr(l, act_from));
	}
	if (req->earliest && f.lo + f.duration > f.hi) {
		/* say which bound leaves no room: the team's status, or the phase */
		if (act_until < f.ph->end)
			return fail(err, ERR_NOT_ACTIVE,
				    json_pack("{s:s}", "eliminated_at", tstr(l, act_until)),
				    "%s is eliminated from %s; no window of this length fits before it",
				    f.c->id, tstr(l, act_until));
		if (f.lo == act_from && act_from > start)
			return fail(err, ERR_NOT_ACTIVE,
				    json_pack("{s:s}", "active_from", tstr(l, act_from)),
				    "%s is active only from %s; no window of this length fits in phase %s after that",
				    f.c->id, tstr(l, act_from), f.ph->id);
		return fail(err, ERR_CROSSES_PHASE,
			    json_pack("{s:s, s:s}", "phase", f.ph->id, "phase_end", tstr(l, f.ph->end)),
			    "no start from %s leaves room before the end of phase %s at %s",
			    tstr(l, f.lo), f.ph->id, tstr(l, f.ph->end));
	}

	/* rule 3: quota */
	if (!i64_mul(f.gpus, f.duration, &cost))
		return fail(err, ERR_INVALID_AMOUNT, NULL, "the cost overflows");
	f.bal = bal_find(l, f.c->id, f.ph->id, gpu);
	if (cost > available(f.bal))
		return fail(err, ERR_QUOTA_EXCEEDED,
			    json_pack("{s:I, s:I}",
				      "available_gpu_seconds", (json_int_t)available(f.bal),
				      "needed_gpu_seconds", (json_int_t)cost),
			    "%s has %s GPU-hours of %s left in %s; this needs %s",
			    f.c->id, hours(available(f.bal)), gpu, f.ph->id, hours(cost));

	/* rules 2, 4 and 6 */
	if (req->earliest) {
		if (earliest_any(l, &f, only, gpu, f.lo, &pool, &start) != 0)
			return fail(err, ERR_CAPACITY_UNAVAILABLE,
				    json_pack("{s:n}", "earliest_start"),
				    "no start from %s fits %" PRId64 " %s GPUs for %s hours in phase %s",
				    tstr(l, f.lo), f.gpus, gpu, hours(f.duration), f.ph->id);
		end = start + f.duration;
	} else {
		bool cap_fail = false, pool_fail = false;
		for (size_t i = 0; i < l->cfg->n_pools && pool == NULL; i++) {
			const struct cfg_pool *p = &l->cfg->pools[i];
			if (!candidate(p, only, gpu, f.gpus))
				continue;
			struct capacity pc = pool_capacity(p);
			if (!timeline_fits(pool_tl(l, p->id), &pc, f.gpus, start, end)) {
				pool_fail = true;
				continue;
			}
			if (f.bal && f.bal->max_gpus > 0) {
				struct capacity cc = cap_capacity(f.bal->max_gpus);
				if (!timeline_fits(cap_tl(l, f.c->id, gpu), &cc, f.gpus, start, end)) {
					cap_fail = true;
					continue;
				}
			}
			pool = p;
		}
		if (pool == NULL) {
			const struct cfg_pool *ep;
			int64_t es;
			json_t *d;
			bool any = earliest_any(l, &f, only, gpu, start, &ep, &es) == 0;
			if (cap_fail && !pool_fail) {
				d = json_pack("{s:I}", "max_gpus", (json_int_t)f.bal->max_gpus);
				json_object_set_new(d, "earliest_start",
						    any ? json_string(tstr(l, es)) : json_null());
				return fail(err, ERR_CAP_EXCEEDED, d,
					    "%s may use at most %" PRId64 " %s GPUs at once",
					    f.c->id, f.bal->max_gpus, gpu);
			}
			d = json_object();
			json_object_set_new(d, "earliest_start",
					    any ? json_string(tstr(l, es)) : json_null());
			if (any)
				json_object_set_new(d, "pool", json_string(ep->id));
			if (any)
				return fail(err, ERR_CAPACITY_UNAVAILABLE, d,
					    "%" PRId64 " %s GPUs are not free over the window; the earliest start that fits is %s (pool %s)",
					    f.gpus, gpu, tstr(l, es), ep->id);
			return fail(err, ERR_CAPACITY_UNAVAILABLE, d,
				    "%" PRId64 " %s GPUs are not free over the window, and no later start fits inside phase %s",
				    f.gpus, gpu, f.ph->id);
		}
	}

	/* apply */
	struct alloc *a = xcalloc(1, sizeof(*a));
	a->num = ++l->alloc_num;
	snprintf(a->id, sizeof(a->id), "A-%06" PRId64, a->num);
	a->consortium = xstrdup(f.c->id);
	a->pool = xstrdup(pool->id);
	a->gpu = xstrdup(pool->gpu);
	a->phase = xstrdup(f.ph->id);
	a->gpus = f.gpus;
	a->start = start;
	a->end = end;
	a->booked_end = end;
	a->stored = ALLOC_BOOKED;
	a->cost = cost;
	a->note = req->note ? xstrdup(req->note) : NULL;
	a->created = ctx->now;
	alloc_insert(l, a);
	book(l, a, a->start, a->end, 1);

	struct balance *bal = bal_get(l, f.c->id, f.ph->id, a->gpu);
	bal->committed += cost;

	struct jentry *e = entry_new(ctx, out, J_RESERVE, a->consortium, a->phase, a->gpu, req->note);
	entry_alloc(e, a);
	e->committed_delta = cost;
	seal(l, e);
	a->seq = e->seq;
	memcpy(l->last_id, a->id, sizeof(l->last_id));
	*id_out = l->last_id;
	return 0;
}

static int live_alloc(const struct ledger *l, const char *id, struct alloc **out,
		      int64_t now, struct ledger_error *err)
{
	*out = alloc_find(l, id);
	if (*out == NULL || (*out)->end <= now)
		return fail(err, *out ? ERR_BAD_STATE : ERR_NOT_FOUND,
			    NULL, *out ? "allocation %s has completed" : "no live allocation '%s'",
			    id ? id : "");
	return 0;
}

int ledger_cancel(struct ledger *l, const struct ledger_ctx *ctx, const char *id,
		  const char *reason, struct jlist *out, struct ledger_error *err)
{
	struct alloc *a;
	if (live_alloc(l, id, &a, ctx->now, err))
		return -EINVAL;
	if (a->start <= ctx->now)
		return fail(err, ERR_BAD_STATE,
			    json_pack("{s:s}", "state", "active"),
			    "allocation %s is active since %s; only a reserved allocation can be cancelled (use release)",
			    a->id, tstr(l, a->start));

	struct balance *bal = bal_get(l, a->consortium, a->phase, a->gpu);
	struct jentry *e = entry_new(ctx, out, J_CANCEL, a->consortium, a->phase, a->gpu, reason);
	entry_alloc(e, a);
	e->committed_delta = -a->cost;
	seal(l, e);
	bal->committed -= a->cost;
	book(l, a, a->start, a->end, -1);
	alloc_remove(l, a);
	return 0;
}

int ledger_release(struct ledger *l, const struct ledger_ctx *ctx, const char *id,
		   int64_t at, const char *reason, struct jlist *out,
		   struct ledger_error *err)
{
	struct alloc *a;
	if (live_alloc(l, id, &a, ctx->now, err))
		return -EINVAL;
	if (at == TIME_MIN)
		at = ctx->now;
	if (at < ctx->now || at >= a->end)
		return fail(err, ERR_INVALID_WINDOW, NULL,
			    "release time %s must be from now (%s) and before the end %s",
			    tstr(l, at), tstr(l, ctx->now), tstr(l, a->end));
	if (at <= a->start)
		return fail(err, ERR_INVALID_WINDOW, NULL,
			    "release time %s is not after the start %s; cancel the reservation instead",
			    tstr(l, at), tstr(l, a->start));

	int64_t refund = a->gpus * (a->end - at);
	struct balance *bal = bal_get(l, a->consortium, a->phase, a->gpu);
	book(l, a, at, a->end, -1);
	a->end = at;
	a->cost -= refund;
	a->stored = ALLOC_RELEASED;
	bal->committed -= refund;

	struct jentry *e = entry_new(ctx, out, J_RELEASE, a->consortium, a->phase, a->gpu, reason);
	entry_alloc(e, a);
	e->committed_delta = -refund;
	seal(l, e);
	return 0;
}

int ledger_eliminate(struct ledger *l, const struct ledger_ctx *ctx,
		     const char *consortium, int64_t effective, const char *reason,
		     struct jlist *out, struct ledger_error *err)
{
	const struct cfg_consortium *c;
	int64_t grace, until;

	if (find_consortium(l, consortium, &c, err))
		return -EINVAL;
	if (effective < ctx->now)
		return fail(err, ERR_INVALID_WINDOW, NULL,
			    "the effective time %s is in the past (now is %s)",
			    tstr(l, effective), tstr(l, ctx->now));
	const struct cstate *cs = cs_find(l, c->id);
	if (cs && cs->status == CS_ELIMINATED)
		return fail(err, ERR_BAD_STATE,
			    json_pack("{s:s}", "eliminated_at", tstr(l, cs->since)),
			    "%s is already eliminated since %s", c->id, tstr(l, cs->since));
	if (cs && cs->since != TIME_MIN && effective < cs->since)
		return fail(err, ERR_INVALID_WINDOW, NULL,
			    "%s is reinstated only from %s", c->id, tstr(l, cs->since));
	/* designation_grace_days: 0 means the title ends with the team */
	if (l->cfg->designation_grace_days == 0)
		until = TIME_MIN;
	else if (!i64_mul(l->cfg->designation_grace_days, 86400, &grace) ||
		 !i64_add(effective, grace, &until))
		until = TIME_MAX;

	struct jentry *e = entry_new(ctx, out, J_ELIMINATE, c->id, NULL, NULL, reason);
	e->start = effective;
	e->end = until;
	seal(l, e);
	struct cstate *st = cs_get(l, c->id);
	st->status = CS_ELIMINATED;
	st->since = effective;
	st->designation_until = until;

	/* allocations: revoke what starts at or after T, cut what runs at T */
	for (size_t i = 0; i < l->n_allocs;) {
		struct alloc *a = l->allocs[i];
		if (strcmp(a->consortium, c->id) != 0 || a->end <= effective) {
			i++;
			continue;
		}
		int64_t cut = a->start >= effective ? a->start : effective;
		int64_t refund = a->gpus * (a->end - cut);
		struct balance *bal = bal_get(l, a->consortium, a->phase, a->gpu);
		book(l, a, cut, a->end, -1);
		a->end = cut;
		a->cost -= refund;
		a->stored = ALLOC_REVOKED;
		bal->committed -= refund;
		e = entry_new(ctx, out, J_REVOKE, a->consortium, a->phase, a->gpu, reason);
		entry_alloc(e, a);
		e->committed_delta = -refund;
		seal(l, e);
		if (a->start >= effective)
			alloc_remove(l, a);
		else
			i++;
	}

	/* quota of phases that start at or after T (the team is out for all of them) */
	for (size_t i = 0; i < l->n_bals; i++) {
		struct balance *b = l->bals[i];
		const struct cfg_phase *ph = config_phase(l->cfg, b->phase);
		int64_t avail = available(b);
		if (strcmp(b->consortium, c->id) != 0 || ph == NULL || ph->start < effective ||
		    avail <= 0)
			continue;
		e = entry_new(ctx, out, J_REVOKE, b->consortium, b->phase, b->gpu, reason);
		e->granted_delta = -avail;
		seal(l, e);
		b->granted -= avail;
	}
	return 0;
}

int ledger_reinstate(struct ledger *l, const struct ledger_ctx *ctx,
		     const char *consortium, int64_t effective, const char *reason,
		     struct jlist *out, struct ledger_error *err)
{
	const struct cfg_consortium *c;

	if (find_consortium(l, consortium, &c, err))
		return -EINVAL;
	const struct cstate *cs = cs_find(l, c->id);
	if (cs == NULL || cs->status != CS_ELIMINATED)
		return fail(err, ERR_BAD_STATE, NULL, "%s is not eliminated", c->id);
	if (effective < ctx->now || effective < cs->since)
		return fail(err, ERR_INVALID_WINDOW, NULL,
			    "the effective time %s must be from now (%s) and not before the elimination (%s)",
			    tstr(l, effective), tstr(l, ctx->now), tstr(l, cs->since));

	struct jentry *e = entry_new(ctx, out, J_REINSTATE, c->id, NULL, NULL, reason);
	e->start = effective;
	seal(l, e);
	struct cstate *st = cs_get(l, c->id);
	st->status = CS_ACTIVE;
	st->since = effective;
	st->designation_until = TIME_MIN;
	st->active_from = effective;
	return 0;
}

/* --- time -------------------------------------------------------------- */

int ledger_tick(struct ledger *l, const struct ledger_ctx *ctx, struct jlist *out)
{
	int n = 0;

	for (size_t i = 0; i < l->n_bals; i++) {
		struct balance *b = l->bals[i];
		const struct cfg_phase *ph = config_phase(l->cfg, b->phase);
		int64_t avail = available(b);
		if (ph == NULL || ph->end > ctx->now || avail <= 0)
			continue;
		struct jentry *e = entry_new(ctx, out, J_EXPIRE, b->consortium, b->phase, b->gpu,
					     "phase ended");
		e->expired_delta = avail;
		seal(l, e);
		b->expired += avail;
		n++;
	}

	/* completed allocations leave memory; the store keeps them */
	for (size_t i = 0; i < l->n_allocs;) {
		if (l->allocs[i]->end <= ctx->now)
			alloc_remove(l, l->allocs[i]);
		else
			i++;
	}
	for (size_t i = 0; i < l->n_pools; i++)
		timeline_prune(l->pools[i].tl, ctx->now);
	for (size_t i = 0; i < l->n_caps; i++)
		timeline_prune(l->caps[i].tl, ctx->now);
	return n;
}

int64_t ledger_next_due(const struct ledger *l, int64_t now)
{
	int64_t next = TIME_MAX;

	for (size_t i = 0; i < l->cfg->n_phases; i++)
		if (l->cfg->phases[i].end > now && l->cfg->phases[i].end < next)
			next = l->cfg->phases[i].end;
	for (size_t i = 0; i < l->n_allocs; i++) {
		const struct alloc *a = l->allocs[i];
		if (a->start > now && a->start < next)
			next = a->start;
		if (a->end > now && a->end < next)
			next = a->end;
	}
	return next;
}

/* --- reads ------------------------------------------------------------- */

int64_t ledger_consumed(const struct ledger *l, const struct balance *b, int64_t now)
{
	int64_t future = 0;
	for (size_t i = 0; i < l->n_allocs; i++) {
		const struct alloc *a = l->allocs[i];
		if (a->end <= now || strcmp(a->consortium, b->consortium) != 0 ||
		    strcmp(a->phase, b->phase) != 0 || strcmp(a->gpu, b->gpu) != 0)
			continue;
		future += a->gpus * (a->end - (a->start > now ? a->start : now));
	}
	return b->committed - future;
}

static const struct config *sort_cfg;

static size_t index_of_consortium(const char *id)
{
	for (size_t i = 0; i < sort_cfg->n_consortia; i++)
		if (strcmp(sort_cfg->consortia[i].id, id) == 0)
			return i;
	return SIZE_MAX;
}

static size_t index_of_phase(const char *id)
{
	for (size_t i = 0; i < sort_cfg->n_phases; i++)
		if (strcmp(sort_cfg->phases[i].id, id) == 0)
			return i;
	return SIZE_MAX;
}

static int bal_cmp(const void *x, const void *y)
{
	const struct balance *a = *(const struct balance *const *)x;
	const struct balance *b = *(const struct balance *const *)y;
	size_t ca = index_of_consortium(a->consortium), cb = index_of_consortium(b->consortium);
	if (ca != cb)
		return ca < cb ? -1 : 1;
	size_t pa = index_of_phase(a->phase), pb = index_of_phase(b->phase);
	if (pa != pb)
		return pa < pb ? -1 : 1;
	return strcmp(a->gpu, b->gpu);
}

size_t ledger_balances(const struct ledger *l, const struct balance ***out)
{
	struct ledger *m = (struct ledger *)l;	/* sorting is a cache */
	if (!m->bals_sorted && m->n_bals > 0) {	/* qsort(NULL, 0) is undefined */
		sort_cfg = l->cfg;
		qsort(m->bals, m->n_bals, sizeof(*m->bals), bal_cmp);
		m->bals_sorted = true;
	}
	*out = (const struct balance **)m->bals;
	return l->n_bals;
}

/* --- configuration swap ------------------------------------------------ */

int ledger_set_config(struct ledger *l, const struct config *cfg,
		      struct ledger_error *err)
{
	for (size_t i = 0; i < l->n_bals; i++) {
		const struct balance *b = l->bals[i];
		if (config_consortium(cfg, b->consortium) == NULL)
			return fail(err, ERR_CONFLICT, NULL,
				    "consortium '%s' has ledger rows and cannot be removed", b->consortium);
		if (config_phase(cfg, b->phase) == NULL)
			return fail(err, ERR_CONFLICT, NULL,
				    "phase '%s' has ledger rows and cannot be removed", b->phase);
	}
	for (size_t i = 0; i < l->n_cstates; i++)
		if (config_consortium(cfg, l->cstates[i].consortium) == NULL)
			return fail(err, ERR_CONFLICT, NULL,
				    "consortium '%s' has ledger rows and cannot be removed",
				    l->cstates[i].consortium);
	for (size_t i = 0; i < l->n_allocs; i++) {
		const struct alloc *a = l->allocs[i];
		const struct cfg_pool *p = config_pool(cfg, a->pool);
		const struct cfg_phase *ph = config_phase(cfg, a->phase);
		if (p == NULL || strcmp(p->gpu, a->gpu) != 0)
			return fail(err, ERR_CONFLICT, NULL,
				    "pool '%s' holds live allocation %s and cannot be removed or change its GPU model",
				    a->pool, a->id);
		if (ph == NULL || a->start < ph->start || a->end > ph->end)
			return fail(err, ERR_CONFLICT, NULL,
				    "live allocation %s would no longer lie inside phase '%s'",
				    a->id, a->phase);
	}
	for (size_t i = 0; i < cfg->n_pools; i++) {
		const struct cfg_pool *p = &cfg->pools[i];
		struct capacity pc = pool_capacity(p);
		struct timeline *tl = pool_tl(l, p->id);
		/* every step of the booked level must fit the new capacity */
		for (size_t j = 0; j < l->n_allocs; j++) {
			const struct alloc *a = l->allocs[j];
			if (strcmp(a->pool, p->id) == 0 &&
			    !timeline_fits(tl, &pc, 0, a->start, a->end))
				return fail(err, ERR_CONFLICT, NULL,
					    "the new capacity of pool '%s' would overbook live allocation %s",
					    p->id, a->id);
		}
	}
	l->cfg = cfg;
	l->bals_sorted = false;
	return 0;
}
