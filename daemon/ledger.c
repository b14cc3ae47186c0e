/* SPDX-License-Identifier: MIT */
/*
 * The ledger's state and rules. Every operation follows the same shape:
 * a short ladder of checks, one function per rule of DESIGN.md and named
 * for it (refusing with a typed error and touching nothing), then one
 * function that applies the request and seals the journal entries that
 * record it. Capacity and cap checks go to in-memory timelines that hold
 * only the present and the future; the past lives in the store.
 */
#include "daemon/ledger.h"
#include "daemon/grammar.h"
#include "daemon/timefmt.h"
#include "daemon/timeline.h"
#include "daemon/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A pool cut: from at on, the pool holds at most gpus (a lease ending early, nodes lost). */
struct pool_cut {
	int64_t at;
	int64_t gpus;
};

/* GPUs a pool's cuts take away over [start, end), booked in its timeline. */
struct lost {
	int64_t start, end, gpus;
};

/*
 * A pool's booked GPUs. Its cuts are booked into the same timeline as if
 * they were allocations of the GPUs they take away, so that every check
 * and search of rules 2 and 6 sees the smaller capacity without knowing of
 * cuts; the readers of what is booked subtract them again.
 */
struct pool_tl {
	char *pool;
	struct timeline *tl;
	struct pool_cut *cuts;		/* in order of at */
	size_t n_cuts;
	struct lost *lost;		/* what the cuts book, as booked */
	size_t n_lost;
};

struct cap_tl {
	char *consortium;
	char *gpu;
	struct timeline *tl;
};

/*
 * An instant at which allocation num starts or ends. Each live allocation
 * has one entry queued: its start, replaced by its end when the start
 * comes due. The queue is not updated when an allocation changes or
 * leaves: an entry whose allocation is gone or no longer starts or ends at
 * `at` is stale and skipped.
 */
struct due {
	int64_t at;
	int64_t num;
};

/*
 * What a key's live allocations still have to run, as signed GPU counts
 * at instants: -gpus at each start, +gpus at each end, merged per instant
 * in a treap. The GPU-seconds after now are then the sum over the instants
 * t > now of w * (t - now), two subtree sums away (O(log n) per read).
 * Times are kept relative to the key's first instant so that the products
 * stay far from overflow.
 */
struct usenode {
	int64_t t;
	int64_t w;		/* signed GPUs at t */
	int64_t sw, swt;	/* subtree sums of w and of w * (t - base) */
	uint64_t prio;
	struct usenode *left, *right;
};

struct use_tl {
	char *consortium;
	char *phase;
	char *gpu;
	int64_t base;
	struct usenode *root;
};

/* A vector of due instants; as a heap, the earliest first. */
struct dueq {
	struct due *v;
	size_t n, cap;
};

/*
 * Where live allocations are booked: consortium, pool, GPU model and
 * phase. A million bookings share a handful of places, so a record names
 * its place by number instead of holding four strings, and the place keeps
 * the numbers of its timelines and sums (indices into the ledger's arrays,
 * which only grow), so that booking one looks up no string.
 */
#define NO_INDEX UINT32_MAX

struct place {
	char *consortium, *pool, *gpu, *phase;
	uint32_t pool_tl, cap_tl, use_tl;	/* NO_INDEX until first needed */
};

/*
 * A live allocation as the ledger holds it: what struct alloc says, in 80
 * bytes. The id is its number written out (alloc_id_format()); gpus fits
 * 32 bits because a pool holds at most 1e8 (config.c) and rule 2 keeps a
 * booking within its pool. Records lie in one array by number; one that
 * leaves is marked gone and the array is compacted once a quarter is.
 */
struct live {
	int64_t num;
	int64_t start;
	int64_t end;
	int64_t booked_end;
	int64_t cost;
	int64_t created;
	int64_t seq;
	char *note;		/* owned, or NULL */
	uint32_t place;		/* index into ledger.places */
	int32_t gpus;
	uint8_t stored;		/* enum alloc_stored */
	bool gone;
};

/*
 * A phase move (gpuledger phase move): from its entry on, the journal's
 * end of the phase (and start of the touching next one) overrides the
 * configuration's dates.
 */
struct phase_move {
	char *phase;
	int64_t end;
	char *next;		/* the next phase, which started at the old end; or NULL */
};

/* ledger_clone() copies every field: one added here is added there. */
struct ledger {
	/*
	 * What every rule reads: &eff, the configuration as given (file) with
	 * its phases as the journal moved them (eff.phases is owned; every
	 * other pointer of eff is file's).
	 */
	const struct config *cfg;
	const struct config *file;
	struct config eff;
	struct phase_move *moves;
	size_t n_moves;
	int64_t seq;
	uint8_t head[HASH_LEN];
	struct jviews views;		/* each consortium's own chain */
	int64_t alloc_num;

	struct balance **bals;		/* display order kept by sort on demand */
	size_t n_bals;
	bool bals_sorted;
	struct cstate *cstates;
	size_t n_cstates;
	struct place *places;		/* never shrinks: records point into it */
	size_t n_places;
	uint32_t *place_slots;		/* hash of the places: index + 1, 0 = empty */
	size_t n_place_slots;		/* a power of two, or 0 */
	struct live *live;		/* by num; gone ones until compacted */
	size_t n_live, cap_live;	/* records, gone ones included */
	size_t n_gone;
	bool live_unsorted;		/* loaded out of order: sort before use */
	bool due_unheaped;		/* loaded: heapify before use */
	struct pool_tl *pools;
	size_t n_pools;
	struct cap_tl *caps;
	size_t n_caps;
	struct use_tl *uses;		/* per (consortium, phase, gpu) */
	size_t n_uses;

	/* what falls due, so that time passing visits only what is due */
	struct dueq due;		/* min-heap by instant */
	struct dueq ripe;		/* at or before a next_due's now, not yet ticked */

	/* the views the readers get (struct alloc, strings borrowed from places) */
	struct alloc view;		/* ledger_alloc()'s */
	struct alloc *all;		/* ledger_allocs()'s */
	const struct alloc **all_ptrs;
	struct alloc *fired;		/* ledger_due_at()'s */
	const struct alloc **fired_ptrs;
	size_t n_fired;

	char last_id[ALLOC_ID_BUFSZ];
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

/*
 * Times and amounts for messages go into buffers of the caller's: a
 * refusal often names two or three at once, and the ledger keeps no
 * static state that two ledgers (or a test and the daemon) could share.
 */
#define HOURS_BUFSZ 32

/* t in the program's zone, written into buf. */
static const char *tstr(const struct ledger *l, int64_t t, char buf[TIME_BUFSZ])
{
	return time_format(t, l->cfg->tz_offset, buf, TIME_BUFSZ);
}

/* GPU-seconds as GPU-hours, written into buf. */
static const char *hours(int64_t secs, char buf[HOURS_BUFSZ])
{
	return gpu_hours_format(secs, buf, HOURS_BUFSZ);
}

/* --- what the live allocations still have to run ---------------------- */

static void use_free(struct usenode *n)
{
	if (n == NULL)
		return;
	use_free(n->left);
	use_free(n->right);
	free(n);
}

static int64_t sum_w(const struct usenode *n)
{
	return n ? n->sw : 0;
}

static int64_t sum_wt(const struct usenode *n)
{
	return n ? n->swt : 0;
}

static struct usenode *use_pull(struct usenode *n, int64_t base)
{
	n->sw = n->w + sum_w(n->left) + sum_w(n->right);
	n->swt = n->w * (n->t - base) + sum_wt(n->left) + sum_wt(n->right);
	return n;
}

/* Splits n into the instants before t (or at or before it, with at) and the rest. */
static void use_split(struct usenode *n, int64_t t, bool at, int64_t base,
		      struct usenode **lo, struct usenode **hi)
{
	if (n == NULL) {
		*lo = *hi = NULL;
	} else if (n->t < t || (at && n->t == t)) {
		use_split(n->right, t, at, base, &n->right, hi);
		*lo = use_pull(n, base);
	} else {
		use_split(n->left, t, at, base, lo, &n->left);
		*hi = use_pull(n, base);
	}
}

/* Joins two treaps, every instant of a before every one of b. */
static struct usenode *use_merge(struct usenode *a, struct usenode *b, int64_t base)
{
	if (a == NULL || b == NULL)
		return a ? a : b;
	if (a->prio > b->prio) {
		a->right = use_merge(a->right, b, base);
		return use_pull(a, base);
	}
	b->left = use_merge(a, b->left, base);
	return use_pull(b, base);
}

/* A priority fixed by the instant (splitmix64): deterministic, and balanced in expectation. */
static uint64_t use_prio(int64_t t)
{
	uint64_t z = (uint64_t)t + 0x9e3779b97f4a7c15u;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* Adds w GPUs at instant t; an instant whose GPUs cancel out leaves. */
static void use_add(struct use_tl *u, int64_t t, int64_t w)
{
	struct usenode *lo, *mid, *hi;

	use_split(u->root, t, false, u->base, &lo, &hi);
	use_split(hi, t, true, u->base, &mid, &hi);
	if (mid == NULL) {
		mid = xcalloc(1, sizeof(*mid));
		mid->t = t;
		mid->prio = use_prio(t);
	}
	mid->w += w;
	if (mid->w == 0) {
		free(mid);
		mid = NULL;
	} else {
		use_pull(mid, u->base);
	}
	u->root = use_merge(use_merge(lo, mid, u->base), hi, u->base);
}

/* GPU-seconds the key's live allocations run after now. */
static int64_t use_after(const struct use_tl *u, int64_t now)
{
	int64_t w = 0, wt = 0;

	for (const struct usenode *n = u->root; n != NULL;) {
		if (n->t > now) {
			w += n->w + sum_w(n->right);
			wt += n->w * (n->t - u->base) + sum_wt(n->right);
			n = n->left;
		} else {
			n = n->right;
		}
	}
	return wt - (now - u->base) * w;
}

static struct use_tl *use_find(const struct ledger *l, const char *c, const char *ph,
			       const char *gpu)
{
	for (size_t i = 0; i < l->n_uses; i++)
		if (strcmp(l->uses[i].consortium, c) == 0 && strcmp(l->uses[i].phase, ph) == 0 &&
		    strcmp(l->uses[i].gpu, gpu) == 0)
			return &l->uses[i];
	return NULL;
}

/* --- places ----------------------------------------------------------- */

static uint32_t place_hash(const char *c, const char *pool, const char *gpu, const char *ph)
{
	const char *parts[] = {c, pool, gpu, ph};
	uint32_t h = 2166136261u;	/* FNV-1a, the four strings with their NULs */

	for (int i = 0; i < 4; i++)
		for (const char *s = parts[i];; s++) {
			h = (h ^ (uint8_t)*s) * 16777619u;
			if (*s == '\0')
				break;
		}
	return h;
}

static bool place_is(const struct place *p, const char *c, const char *pool, const char *gpu,
		     const char *ph)
{
	return strcmp(p->pool, pool) == 0 && strcmp(p->consortium, c) == 0 &&
	       strcmp(p->phase, ph) == 0 && strcmp(p->gpu, gpu) == 0;
}

/* Files place i in the hash; the table grows to stay at most half full. */
static void place_slot(struct ledger *l, uint32_t i)
{
	const struct place *p = &l->places[i];
	size_t mask = l->n_place_slots - 1;
	size_t s = place_hash(p->consortium, p->pool, p->gpu, p->phase) & mask;

	while (l->place_slots[s] != 0)
		s = (s + 1) & mask;
	l->place_slots[s] = i + 1;
}

static void place_rehash(struct ledger *l)
{
	free(l->place_slots);
	l->n_place_slots = l->n_place_slots ? 2 * l->n_place_slots : 16;
	l->place_slots = xcalloc(l->n_place_slots, sizeof(*l->place_slots));
	for (size_t i = 0; i < l->n_places; i++)
		place_slot(l, (uint32_t)i);
}

/* The number of the place (c, pool, gpu, ph), made on first use. */
static uint32_t place_get(struct ledger *l, const char *c, const char *pool, const char *gpu,
			  const char *ph)
{
	size_t mask = l->n_place_slots - 1;

	if (l->n_place_slots > 0)
		for (size_t s = place_hash(c, pool, gpu, ph) & mask; l->place_slots[s] != 0;
		     s = (s + 1) & mask) {
			uint32_t i = l->place_slots[s] - 1;
			if (place_is(&l->places[i], c, pool, gpu, ph))
				return i;
		}
	if (l->n_places >= NO_INDEX - 1)
		abort();	/* each place is a configured consortium x pool x phase */
	l->places = xreallocarray(l->places, l->n_places + 1, sizeof(*l->places));
	l->places[l->n_places] = (struct place){
		.consortium = xstrdup(c), .pool = xstrdup(pool), .gpu = xstrdup(gpu),
		.phase = xstrdup(ph), .pool_tl = NO_INDEX, .cap_tl = NO_INDEX, .use_tl = NO_INDEX};
	uint32_t i = (uint32_t)l->n_places++;
	if (2 * l->n_places > l->n_place_slots)
		place_rehash(l);
	else
		place_slot(l, i);
	return i;
}

static const struct place *place_of(const struct ledger *l, const struct live *a)
{
	return &l->places[a->place];
}

/* Counts (sign 1) or uncounts (-1) [start,end) of a live allocation in its key's sums. */
static void use_book(struct ledger *l, const struct live *a, int64_t start, int64_t end,
		     int64_t sign)
{
	if (start >= end)
		return;
	struct place *pl = &l->places[a->place];
	if (pl->use_tl == NO_INDEX) {
		struct use_tl *u = use_find(l, pl->consortium, pl->phase, pl->gpu);
		if (u == NULL) {
			l->uses = xreallocarray(l->uses, l->n_uses + 1, sizeof(*l->uses));
			u = &l->uses[l->n_uses++];
			*u = (struct use_tl){.consortium = xstrdup(pl->consortium),
					     .phase = xstrdup(pl->phase), .gpu = xstrdup(pl->gpu),
					     .base = start};
		}
		pl->use_tl = (uint32_t)(u - l->uses);
	}
	struct use_tl *u = &l->uses[pl->use_tl];
	use_add(u, start, -sign * a->gpus);
	use_add(u, end, sign * a->gpus);
}

/* --- lookups ----------------------------------------------------------- */

/*
 * The configuration cfg with the phase moves applied, into eff (its
 * phases array malloc'd). 0, or -EINVAL with *why (static) when a move
 * names a phase cfg lacks or would make the phases overlap.
 */
static int effective_config(const struct config *cfg, const struct phase_move *moves,
			    size_t n_moves, struct config *eff, const char **why)
{
	*eff = *cfg;
	eff->phases = xreallocarray(NULL, cfg->n_phases + 1, sizeof(*eff->phases));
	if (cfg->n_phases)	/* a config without phases has phases == NULL */
		memcpy(eff->phases, cfg->phases, cfg->n_phases * sizeof(*eff->phases));
	for (size_t m = 0; m < n_moves; m++) {
		size_t i = 0;
		while (i < eff->n_phases && strcmp(eff->phases[i].id, moves[m].phase) != 0)
			i++;
		*why = "the journal moved a phase the configuration lacks";
		if (i == eff->n_phases)
			goto fail;
		eff->phases[i].end = moves[m].end;
		if (moves[m].next) {
			*why = "the journal moved the start of a phase that no longer follows it";
			if (i + 1 == eff->n_phases || strcmp(eff->phases[i + 1].id, moves[m].next) != 0)
				goto fail;
			eff->phases[i + 1].start = moves[m].end;
		}
	}
	for (size_t i = 0; i < eff->n_phases; i++) {
		*why = "the journal's phase dates make the configuration's phases overlap";
		if (eff->phases[i].end <= eff->phases[i].start ||
		    (i > 0 && eff->phases[i].start < eff->phases[i - 1].end))
			goto fail;
	}
	return 0;
fail:
	free(eff->phases);
	eff->phases = NULL;
	return -EINVAL;
}

/* Makes file, with the moves, the configuration the rules read. */
static int ledger_use_config(struct ledger *l, const struct config *file, const char **why)
{
	struct config eff;

	if (effective_config(file, l->moves, l->n_moves, &eff, why) != 0)
		return -EINVAL;
	free(l->eff.phases);
	l->eff = eff;
	l->file = file;
	l->cfg = &l->eff;
	l->bals_sorted = false;
	return 0;
}

struct ledger *ledger_new(const struct config *cfg)
{
	struct ledger *l = xcalloc(1, sizeof(*l));
	const char *why;
	if (ledger_use_config(l, cfg, &why) != 0)
		abort();	/* no moves yet: nothing can fail */
	return l;
}

const struct config *ledger_file_config(const struct ledger *l)
{
	return l->file;
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
	for (size_t i = 0; i < l->n_live; i++)
		free(l->live[i].note);
	free(l->live);
	for (size_t i = 0; i < l->n_places; i++) {
		free(l->places[i].consortium);
		free(l->places[i].pool);
		free(l->places[i].gpu);
		free(l->places[i].phase);
	}
	free(l->places);
	free(l->place_slots);
	for (size_t i = 0; i < l->n_pools; i++) {
		free(l->pools[i].pool);
		timeline_free(l->pools[i].tl);
		free(l->pools[i].cuts);
		free(l->pools[i].lost);
	}
	free(l->pools);
	for (size_t i = 0; i < l->n_caps; i++) {
		free(l->caps[i].consortium);
		free(l->caps[i].gpu);
		timeline_free(l->caps[i].tl);
	}
	free(l->caps);
	for (size_t i = 0; i < l->n_uses; i++) {
		free(l->uses[i].consortium);
		free(l->uses[i].phase);
		free(l->uses[i].gpu);
		use_free(l->uses[i].root);
	}
	free(l->uses);
	free(l->due.v);
	free(l->ripe.v);
	free(l->all);
	free(l->all_ptrs);
	free(l->fired);
	free(l->fired_ptrs);
	jviews_clear(&l->views);
	for (size_t i = 0; i < l->n_moves; i++) {
		free(l->moves[i].phase);
		free(l->moves[i].next);
	}
	free(l->moves);
	free(l->eff.phases);
	free(l);
}

static struct usenode *use_clone(const struct usenode *n)
{
	if (n == NULL)
		return NULL;
	struct usenode *c = xmalloc(sizeof(*c));
	*c = *n;
	c->left = use_clone(n->left);
	c->right = use_clone(n->right);
	return c;
}

static struct dueq dueq_clone(const struct dueq *q)
{
	struct dueq c = {.n = q->n, .cap = q->n};
	if (q->n > 0) {
		c.v = xreallocarray(NULL, q->n, sizeof(*c.v));
		memcpy(c.v, q->v, q->n * sizeof(*c.v));
	}
	return c;
}

static void live_settle(const struct ledger *cl);

/*
 * Every field of struct ledger, deep: a field added there is added here,
 * or a dry run would answer from a ledger that lacks it.
 */
struct ledger *ledger_clone(const struct ledger *l)
{
	struct ledger *c = xcalloc(1, sizeof(*c));
	const char *why;

	c->moves = xreallocarray(NULL, l->n_moves + 1, sizeof(*c->moves));
	for (size_t i = 0; i < l->n_moves; i++)
		c->moves[i] = (struct phase_move){.phase = xstrdup(l->moves[i].phase),
						  .end = l->moves[i].end,
						  .next = l->moves[i].next ? xstrdup(l->moves[i].next) : NULL};
	c->n_moves = l->n_moves;
	if (ledger_use_config(c, l->file, &why) != 0)
		abort();	/* the same moves over the same file held in l */
	c->seq = l->seq;
	memcpy(c->head, l->head, HASH_LEN);
	for (size_t i = 0; i < l->views.n; i++) {
		const struct jview *v = &l->views.v[i];
		jviews_set(&c->views, v->consortium, v->entries, v->last_seq, v->head);
	}
	c->alloc_num = l->alloc_num;
	c->bals = xreallocarray(NULL, l->n_bals + 1, sizeof(*c->bals));
	for (size_t i = 0; i < l->n_bals; i++) {
		struct balance *b = xmalloc(sizeof(*b));
		*b = *l->bals[i];
		b->consortium = xstrdup(b->consortium);
		b->phase = xstrdup(b->phase);
		b->gpu = xstrdup(b->gpu);
		c->bals[i] = b;
	}
	c->n_bals = l->n_bals;
	c->bals_sorted = l->bals_sorted;
	c->cstates = xreallocarray(NULL, l->n_cstates + 1, sizeof(*c->cstates));
	for (size_t i = 0; i < l->n_cstates; i++)
		cstate_copy(&c->cstates[i], &l->cstates[i]);
	c->n_cstates = l->n_cstates;
	c->places = xreallocarray(NULL, l->n_places + 1, sizeof(*c->places));
	for (size_t i = 0; i < l->n_places; i++) {
		c->places[i] = l->places[i];
		c->places[i].consortium = xstrdup(l->places[i].consortium);
		c->places[i].pool = xstrdup(l->places[i].pool);
		c->places[i].gpu = xstrdup(l->places[i].gpu);
		c->places[i].phase = xstrdup(l->places[i].phase);
	}
	c->n_places = l->n_places;
	c->place_slots = xreallocarray(NULL, l->n_place_slots + 1, sizeof(*c->place_slots));
	if (l->n_place_slots)
		memcpy(c->place_slots, l->place_slots, l->n_place_slots * sizeof(*c->place_slots));
	c->n_place_slots = l->n_place_slots;
	live_settle(l);
	c->live = xreallocarray(NULL, l->n_live + 1, sizeof(*c->live));
	for (size_t i = 0; i < l->n_live; i++) {
		c->live[i] = l->live[i];
		c->live[i].note = l->live[i].note ? xstrdup(l->live[i].note) : NULL;
	}
	c->n_live = c->cap_live = l->n_live;
	c->n_gone = l->n_gone;
	c->pools = xreallocarray(NULL, l->n_pools + 1, sizeof(*c->pools));
	for (size_t i = 0; i < l->n_pools; i++) {
		const struct pool_tl *src = &l->pools[i];
		c->pools[i] = (struct pool_tl){.pool = xstrdup(src->pool),
					       .tl = timeline_clone(src->tl),
					       .n_cuts = src->n_cuts, .n_lost = src->n_lost};
		c->pools[i].cuts = xreallocarray(NULL, src->n_cuts + 1, sizeof(*src->cuts));
		if (src->n_cuts)	/* memcpy from NULL is undefined even for 0 bytes */
			memcpy(c->pools[i].cuts, src->cuts, src->n_cuts * sizeof(*src->cuts));
		c->pools[i].lost = xreallocarray(NULL, src->n_lost + 1, sizeof(*src->lost));
		if (src->n_lost)
			memcpy(c->pools[i].lost, src->lost, src->n_lost * sizeof(*src->lost));
	}
	c->n_pools = l->n_pools;
	c->caps = xreallocarray(NULL, l->n_caps + 1, sizeof(*c->caps));
	for (size_t i = 0; i < l->n_caps; i++)
		c->caps[i] = (struct cap_tl){.consortium = xstrdup(l->caps[i].consortium),
					     .gpu = xstrdup(l->caps[i].gpu),
					     .tl = timeline_clone(l->caps[i].tl)};
	c->n_caps = l->n_caps;
	c->uses = xreallocarray(NULL, l->n_uses + 1, sizeof(*c->uses));
	for (size_t i = 0; i < l->n_uses; i++) {
		c->uses[i] = l->uses[i];
		c->uses[i].consortium = xstrdup(l->uses[i].consortium);
		c->uses[i].phase = xstrdup(l->uses[i].phase);
		c->uses[i].gpu = xstrdup(l->uses[i].gpu);
		c->uses[i].root = use_clone(l->uses[i].root);
	}
	c->n_uses = l->n_uses;
	c->due = dueq_clone(&l->due);
	c->ripe = dueq_clone(&l->ripe);
	/* the views are the readers' scratch answers: nothing to carry */
	memcpy(c->last_id, l->last_id, sizeof(c->last_id));
	return c;
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

const struct jview *ledger_view(const struct ledger *l, const char *consortium)
{
	return jviews_find(&l->views, consortium);
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

/* Appends an elimination span [from, until) to the consortium's history. */
static void span_push(struct cstate *cs, int64_t from, int64_t until)
{
	cs->spans = xreallocarray(cs->spans, cs->n_spans + 1, sizeof(*cs->spans));
	cs->spans[cs->n_spans++] = (struct cs_span){.from = from, .until = until};
}

const struct cstate *ledger_cstate(const struct ledger *l, const char *consortium)
{
	return cs_find(l, consortium);
}

static struct pool_tl *pool_find(const struct ledger *l, const char *pool)
{
	for (size_t i = 0; i < l->n_pools; i++)
		if (strcmp(l->pools[i].pool, pool) == 0)
			return &l->pools[i];
	return NULL;
}

static struct pool_tl *pool_get(struct ledger *l, const char *pool)
{
	struct pool_tl *pt = pool_find(l, pool);
	if (pt)
		return pt;
	l->pools = xreallocarray(l->pools, l->n_pools + 1, sizeof(*l->pools));
	pt = &l->pools[l->n_pools++];
	*pt = (struct pool_tl){.pool = xstrdup(pool), .tl = timeline_new()};
	return pt;
}

static struct timeline *pool_tl(struct ledger *l, const char *pool)
{
	return pool_get(l, pool)->tl;
}

/* GPUs the pool's cuts take away at t. */
static int64_t lost_at(const struct pool_tl *pt, int64_t t)
{
	for (size_t i = 0; pt && i < pt->n_lost; i++)
		if (pt->lost[i].start <= t && t < pt->lost[i].end)
			return pt->lost[i].gpus;
	return 0;
}

/* The index of (c, gpu)'s cap timeline, or n_caps when it has none yet. */
static size_t cap_index(const struct ledger *l, const char *c, const char *gpu)
{
	size_t i = 0;
	while (i < l->n_caps &&
	       (strcmp(l->caps[i].consortium, c) != 0 || strcmp(l->caps[i].gpu, gpu) != 0))
		i++;
	return i;
}

static struct timeline *cap_tl(struct ledger *l, const char *c, const char *gpu)
{
	size_t i = cap_index(l, c, gpu);
	if (i < l->n_caps)
		return l->caps[i].tl;
	l->caps = xreallocarray(l->caps, l->n_caps + 1, sizeof(*l->caps));
	l->caps[l->n_caps].consortium = xstrdup(c);
	l->caps[l->n_caps].gpu = xstrdup(gpu);
	l->caps[l->n_caps].tl = timeline_new();
	return l->caps[l->n_caps++].tl;
}

/* --- live allocations ------------------------------------------------ */

static void due_heapify(struct dueq *q);

static int live_num_cmp(const void *x, const void *y)
{
	int64_t a = ((const struct live *)x)->num, b = ((const struct live *)y)->num;
	return (a > b) - (a < b);
}

/*
 * What loading leaves for the first use: the records sorted by number
 * (the store hands them over in the order of its index) and the queue
 * made a heap, each once, instead of an insertion per row. The ledger is
 * const to its readers; this only reorders.
 */
static void live_settle(const struct ledger *cl)
{
	struct ledger *l = (struct ledger *)cl;

	if (l->live_unsorted) {
		qsort(l->live, l->n_live, sizeof(*l->live), live_num_cmp);
		for (size_t i = 1; i < l->n_live; i++)
			if (l->live[i].num == l->live[i - 1].num)
				abort();	/* ids are unique by construction */
		l->live_unsorted = false;
	}
	if (l->due_unheaped) {
		due_heapify(&l->due);
		l->due_unheaped = false;
	}
}

/*
 * The records, gone ones included (callers skip them), in number order.
 * Valid until a record is added or the gone ones are compacted away.
 */
static struct live *live_all(const struct ledger *l, size_t *n)
{
	live_settle(l);
	*n = l->n_live;
	return l->live;
}

/* The live allocation numbered num, or NULL. */
static struct live *live_num(const struct ledger *l, int64_t num)
{
	size_t lo = 0, hi;
	struct live *v = live_all(l, &hi);

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].num < num)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < l->n_live && v[lo].num == num && !v[lo].gone ? &v[lo] : NULL;
}

static struct live *alloc_find(const struct ledger *l, const char *id)
{
	int64_t num;
	if (id == NULL || alloc_id_parse(id, &num) != 0)
		return NULL;
	return live_num(l, num);
}

/* a's id, written into buf. */
static const char *aid(const struct live *a, char buf[ALLOC_ID_BUFSZ])
{
	return alloc_id_format(a->num, buf, ALLOC_ID_BUFSZ);
}

/* The record as the readers see it, into v: its strings are the place's. */
static const struct alloc *view_fill(const struct ledger *l, const struct live *a,
				     struct alloc *v)
{
	const struct place *pl = place_of(l, a);

	*v = (struct alloc){.num = a->num, .consortium = pl->consortium, .pool = pl->pool,
			    .gpu = pl->gpu, .phase = pl->phase, .gpus = a->gpus, .start = a->start,
			    .end = a->end, .booked_end = a->booked_end,
			    .stored = (enum alloc_stored)a->stored, .cost = a->cost,
			    .note = a->note, .created = a->created, .seq = a->seq};
	aid(a, v->id);
	return v;
}

const struct alloc *ledger_alloc(const struct ledger *l, const char *id)
{
	const struct live *a = alloc_find(l, id);
	return a ? view_fill(l, a, (struct alloc *)&l->view) : NULL;	/* the view is scratch */
}

size_t ledger_allocs(const struct ledger *cl, const struct alloc *const **out)
{
	struct ledger *l = (struct ledger *)cl;	/* the views are scratch */
	size_t n, k = 0;
	const struct live *v = live_all(l, &n);

	free(l->all);
	free(l->all_ptrs);
	l->all = xreallocarray(NULL, n - l->n_gone + 1, sizeof(*l->all));
	l->all_ptrs = xreallocarray(NULL, n - l->n_gone + 1, sizeof(*l->all_ptrs));
	for (size_t i = 0; i < n; i++)
		if (!v[i].gone) {
			l->all_ptrs[k] = view_fill(l, &v[i], &l->all[k]);
			k++;
		}
	*out = (const struct alloc *const *)l->all_ptrs;
	return k;
}

int64_t ledger_pool_booked(const struct ledger *l, const char *pool, int64_t t)
{
	const struct pool_tl *pt = pool_find(l, pool);
	return pt ? timeline_at(pt->tl, t) - lost_at(pt, t) : 0;
}

/* The usable GPUs of a pool at instant t: the configuration's, less its cuts. */
static int64_t pool_capacity_at(const struct ledger *l, const struct cfg_pool *p, int64_t t)
{
	struct capacity c = {.units = p->gpus, .from = p->available_from,
			     .until = p->available_until, .node = p->gpus_per_node};
	int64_t cap = capacity_at(&c, t) - lost_at(pool_find(l, p->id), t);
	return cap > 0 ? cap : 0;
}

int64_t ledger_pool_capacity(const struct ledger *l, const char *pool, int64_t t)
{
	const struct cfg_pool *p = config_pool(l->cfg, pool);
	return p ? pool_capacity_at(l, p, t) : 0;
}

size_t ledger_pool_cuts(const struct ledger *l, const char *pool, int64_t *at, int64_t *gpus,
			size_t max)
{
	const struct pool_tl *pt = pool_find(l, pool);
	size_t n = 0;
	for (; pt && n < pt->n_cuts && n < max; n++) {
		at[n] = pt->cuts[n].at;
		gpus[n] = pt->cuts[n].gpus;
	}
	return pt ? pt->n_cuts : 0;
}

static void live_grow(struct ledger *l)
{
	if (l->n_live == l->cap_live) {
		l->cap_live = l->cap_live ? 2 * l->cap_live : 64;
		l->live = xreallocarray(l->live, l->cap_live, sizeof(*l->live));
	}
}

/* Files a new allocation (the highest number yet) and counts it in its key's sums. */
static struct live *live_insert(struct ledger *l, const struct live *rec)
{
	live_settle(l);
	if (l->n_live > 0 && l->live[l->n_live - 1].num >= rec->num)
		abort();	/* ids are unique and grow by construction */
	live_grow(l);
	struct live *a = &l->live[l->n_live++];
	*a = *rec;
	use_book(l, a, a->start, a->end, 1);
	return a;
}

/* The allocation leaves memory (the store keeps it); its record is marked gone. */
static void alloc_remove(struct ledger *l, struct live *a)
{
	if (a->gone)
		abort();
	use_book(l, a, a->start, a->end, -1);
	free(a->note);
	a->note = NULL;
	a->gone = true;
	l->n_gone++;
}

/*
 * Drops the gone records once they are a quarter of all (amortized O(1) a
 * removal, and the array stays in number order). Called only where no
 * record pointer is held: at the end of the operations that remove.
 */
static void live_compact(struct ledger *l)
{
	size_t k = 0;

	if (l->n_gone == 0 || 4 * l->n_gone < l->n_live)
		return;
	for (size_t i = 0; i < l->n_live; i++)
		if (!l->live[i].gone)
			l->live[k++] = l->live[i];
	l->n_live = k;
	l->n_gone = 0;
	if (l->cap_live > 64 && 4 * k < l->cap_live) {
		l->cap_live = 2 * k > 64 ? 2 * k : 64;
		l->live = xreallocarray(l->live, l->cap_live, sizeof(*l->live));
	}
}

/* --- the queue of due instants ---------------------------------------- */

static void dueq_append(struct dueq *q, struct due d)
{
	if (q->n == q->cap) {
		q->cap = q->cap ? 2 * q->cap : 16;
		q->v = xreallocarray(q->v, q->cap, sizeof(*q->v));
	}
	q->v[q->n++] = d;
}

static void due_swap(struct dueq *q, size_t i, size_t j)
{
	struct due t = q->v[i];
	q->v[i] = q->v[j];
	q->v[j] = t;
}

static void heap_push(struct dueq *q, struct due d)
{
	dueq_append(q, d);
	for (size_t i = q->n - 1; i > 0 && q->v[(i - 1) / 2].at > q->v[i].at; i = (i - 1) / 2)
		due_swap(q, i, (i - 1) / 2);
}

static void sift_down(struct dueq *q, size_t i)
{
	for (;;) {
		size_t m = i, c = 2 * i + 1;
		if (c < q->n && q->v[c].at < q->v[m].at)
			m = c;
		if (c + 1 < q->n && q->v[c + 1].at < q->v[m].at)
			m = c + 1;
		if (m == i)
			break;
		due_swap(q, i, m);
		i = m;
	}
}

static struct due heap_pop(struct dueq *q)
{
	struct due top = q->v[0];
	q->v[0] = q->v[--q->n];
	sift_down(q, 0);
	return top;
}

/* O(n): what loading appended becomes a heap at once. */
static void due_heapify(struct dueq *q)
{
	for (size_t i = q->n / 2; i-- > 0;)
		sift_down(q, i);
}

/* The live allocation d is about, or NULL when d is stale. */
static struct live *due_alloc(const struct ledger *l, struct due d)
{
	struct live *a = live_num(l, d.num);
	return a != NULL && (a->start == d.at || a->end == d.at) ? a : NULL;
}

/* Queues an instant of a; called wherever an allocation gets a new start or end. */
static void due_push(struct ledger *l, const struct live *a, int64_t at)
{
	struct due d = {.at = at, .num = a->num};
	live_settle(l);
	heap_push(&l->due, d);
}

/*
 * Moves what is due at or before now from the heap to the ripe list,
 * dropping stale entries on the way. The ledger is const to the readers
 * that ask for the next instant; the queue behind it only reorders.
 */
static void due_ripen(const struct ledger *l, int64_t now)
{
	struct dueq *due = (struct dueq *)&l->due, *ripe = (struct dueq *)&l->ripe;

	live_settle(l);
	while (due->n > 0 && (due->v[0].at <= now || due_alloc(l, due->v[0]) == NULL)) {
		struct due d = heap_pop(due);
		const struct live *a = due_alloc(l, d);
		if (a == NULL)
			continue;
		/* its start came due: its end is next (and may be due too) */
		if (a->start == d.at)
			heap_push(due, (struct due){.at = a->end, .num = d.num});
		dueq_append(ripe, d);
	}
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
static void book(struct ledger *l, const struct live *a, int64_t start, int64_t end,
		 int64_t sign)
{
	struct place *pl = &l->places[a->place];

	if (start >= end)
		return;
	if (pl->pool_tl == NO_INDEX)
		pl->pool_tl = (uint32_t)(pool_get(l, pl->pool) - l->pools);
	if (pl->cap_tl == NO_INDEX) {
		cap_tl(l, pl->consortium, pl->gpu);
		pl->cap_tl = (uint32_t)cap_index(l, pl->consortium, pl->gpu);
	}
	timeline_add(l->pools[pl->pool_tl].tl, start, end, sign * a->gpus);
	timeline_add(l->caps[pl->cap_tl].tl, start, end, sign * a->gpus);
}

/* --- loading ----------------------------------------------------------- */

void ledger_load_head(struct ledger *l, int64_t seq, const uint8_t hash[HASH_LEN],
		      int64_t max_alloc_num)
{
	l->seq = seq;
	memcpy(l->head, hash, HASH_LEN);
	l->alloc_num = max_alloc_num;
}

void ledger_load_view(struct ledger *l, const char *consortium, int64_t entries,
		      int64_t last_seq, const uint8_t view_hash[HASH_LEN])
{
	jviews_set(&l->views, consortium, entries, last_seq, view_hash);
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
	dst->used = b->used;
	return 0;
}

int ledger_load_cstate(struct ledger *l, const struct cstate *c, char **cause)
{
	if (config_consortium(l->cfg, c->consortium) == NULL) {
		*cause = xasprintf("the ledger refers to consortium '%s', which the configuration lacks",
				   c->consortium);
		return -EINVAL;
	}
	/* the spans come from the journal's eliminations: in order, and the last open iff eliminated */
	bool open = c->n_spans > 0 && c->spans[c->n_spans - 1].until == TIME_MAX;
	for (size_t i = 0; i < c->n_spans; i++) {
		const struct cs_span *sp = &c->spans[i];
		if (sp->until < sp->from || (i > 0 && sp->from < c->spans[i - 1].until) ||
		    (sp->until == TIME_MAX && i + 1 < c->n_spans)) {
			*cause = xasprintf("the eliminations of consortium '%s' in the journal are out of order",
					   c->consortium);
			return -EINVAL;
		}
	}
	if (open != (c->status == CS_ELIMINATED)) {
		*cause = xasprintf("the state of consortium '%s' does not match its eliminations in the journal",
				   c->consortium);
		return -EINVAL;
	}
	struct cstate *dst = cs_get(l, c->consortium);
	dst->status = c->status;
	dst->since = c->since;
	dst->designation_until = c->designation_until;
	dst->active_from = c->active_from;
	free(dst->spans);
	dst->spans = NULL;
	dst->n_spans = 0;
	for (size_t i = 0; i < c->n_spans; i++)
		if (c->spans[i].from < c->spans[i].until)	/* a span closed at once hides nothing */
			span_push(dst, c->spans[i].from, c->spans[i].until);
	return 0;
}

/*
 * Rows come in the order of the store's index, not by number: appended
 * here, sorted and made a heap by live_settle() at the first use.
 */
int ledger_load_alloc(struct ledger *l, const struct alloc *a, char **cause)
{
	if (a->pool == NULL || config_pool(l->cfg, a->pool) == NULL) {
		*cause = xasprintf("allocation %s is in pool '%s', which the configuration lacks",
				   a->id, a->pool ? a->pool : "");
		return -EINVAL;
	}
	if (a->num <= 0 || a->start >= a->end || a->gpus <= 0 || a->gpus > INT32_MAX ||
	    !a->consortium || !a->gpu || !a->phase || (unsigned)a->stored > ALLOC_REVOKED) {
		*cause = xasprintf("allocation %s is malformed in the database", a->id);
		return -EINVAL;
	}
	live_grow(l);
	if (l->n_live > 0 && l->live[l->n_live - 1].num >= a->num)
		l->live_unsorted = true;
	struct live *dst = &l->live[l->n_live++];
	*dst = (struct live){.num = a->num, .start = a->start, .end = a->end,
			     .booked_end = a->booked_end, .cost = a->cost, .created = a->created,
			     .seq = a->seq, .note = a->note ? xstrdup(a->note) : NULL,
			     .place = place_get(l, a->consortium, a->pool, a->gpu, a->phase),
			     .gpus = (int32_t)a->gpus, .stored = (uint8_t)a->stored};
	use_book(l, dst, dst->start, dst->end, 1);
	book(l, dst, dst->start, dst->end, 1);
	dueq_append(&l->due, (struct due){.at = dst->start, .num = dst->num});
	l->due_unheaped = true;
	if (a->num > l->alloc_num)
		l->alloc_num = a->num;
	return 0;
}

int ledger_load_alloc_ref(struct ledger *l, const struct alloc_ref *r, char **cause)
{
	const struct cfg_pool *p = config_pool(l->cfg, r->pool);
	const struct cfg_consortium *c = config_consortium(l->cfg, r->consortium);
	char t1[TIME_BUFSZ], t2[TIME_BUFSZ];

	if (p == NULL)
		*cause = xasprintf("the ledger has allocations in pool '%s', which the configuration lacks",
				   r->pool);
	else if (strcmp(p->gpu, r->gpu) != 0)
		*cause = xasprintf("the ledger has %s allocations in pool '%s', which the configuration makes %s",
				   r->gpu, r->pool, p->gpu);
	else if (c == NULL)
		*cause = xasprintf("the ledger has allocations of consortium '%s', which the configuration lacks",
				   r->consortium);
	else if (r->first_start < c->joined)
		*cause = xasprintf("consortium '%s' has a booking from %s, before it joined (%s)",
				   c->id, tstr(l, r->first_start, t1), tstr(l, c->joined, t2));
	else
		return 0;
	return -EINVAL;
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

static void entry_alloc(const struct ledger *l, struct jentry *e, const struct live *a)
{
	char id[ALLOC_ID_BUFSZ];
	e->allocation = xstrdup(aid(a, id));
	e->pool = xstrdup(place_of(l, a)->pool);
	e->gpus = a->gpus;
	e->start = a->start;
	e->end = a->end;
}

/*
 * Links e into the chain, and into its consortium's view, under a fresh
 * salt: the last step of every entry's construction.
 */
static void seal(struct ledger *l, struct jentry *e)
{
	e->seq = ++l->seq;
	memcpy(e->prev_hash, l->head, HASH_LEN);
	jentry_salt(e);
	jentry_seal_views(e, &l->views);	/* one canonical text for both hashes */
	memcpy(l->head, e->hash, HASH_LEN);
}

/* --- rules ------------------------------------------------------------- */

static int64_t available(const struct balance *b)
{
	return b ? b->granted - b->committed - b->expired : 0;
}

static int64_t later(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static int64_t earlier(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int find_consortium(const struct ledger *l, const char *id,
			   const struct cfg_consortium **out, struct ledger_error *err)
{
	*out = id ? config_consortium(l->cfg, id) : NULL;
	if (*out == NULL)
		return fail(err, ERR_NOT_FOUND, NULL, "no consortium '%s'", id ? id : "");
	return 0;
}

/*
 * Rule 5: the consortium's active stretches, in time order: from joined
 * on, except inside the spans its eliminations opened and its
 * reinstatements closed. The i-th is [*from, *until) (possibly empty);
 * false past the last. A reinstatement closes a span without touching
 * the stretch before it, however far ahead the elimination lies.
 */
static bool active_stretch(const struct ledger *l, const struct cfg_consortium *c, size_t i,
			   int64_t *from, int64_t *until)
{
	const struct cstate *cs = cs_find(l, c->id);
	size_t n = cs ? cs->n_spans : 0;

	if (i > n)
		return false;
	*from = later(c->joined, i == 0 ? TIME_MIN : cs->spans[i - 1].until);
	*until = i < n ? cs->spans[i].from : TIME_MAX;
	return true;
}

/* The first elimination span that [start, end) runs into, or NULL. */
static const struct cs_span *span_over(const struct ledger *l, const struct cfg_consortium *c,
				       int64_t start, int64_t end)
{
	const struct cstate *cs = cs_find(l, c->id);

	for (size_t i = 0; cs && i < cs->n_spans; i++)
		if (later(start, cs->spans[i].from) < earlier(end, cs->spans[i].until))
			return &cs->spans[i];
	return NULL;
}

/* --- grant ------------------------------------------------------------- */

/* A grant request as the checks see it, filled in as they pass. */
struct grant {
	const struct grant_req *req;
	const struct cfg_consortium *c;
	const struct cfg_phase *ph;
	const struct balance *bal;	/* the row it changes, or NULL: a new one */
	int64_t granted;		/* the row's granted amount after it */
};

/* What a grant names exists, and it changes something. */
static int grant_target(const struct ledger *l, struct grant *g, struct ledger_error *err)
{
	const struct grant_req *req = g->req;

	if (find_consortium(l, req->consortium, &g->c, err))
		return -EINVAL;
	g->ph = req->phase ? config_phase(l->cfg, req->phase) : NULL;
	if (g->ph == NULL)
		return fail(err, ERR_UNKNOWN_PHASE, NULL, "no phase '%s'",
			    req->phase ? req->phase : "");
	if (req->gpu == NULL || !config_has_gpu(l->cfg, req->gpu))
		return fail(err, ERR_UNKNOWN_GPU, NULL, "no pool has GPU model '%s'",
			    req->gpu ? req->gpu : "");
	if (req->gpu_seconds == 0 && req->max_gpus < 0)
		return fail(err, ERR_INVALID_AMOUNT, NULL,
			    "a grant needs a non-zero amount or a GPU cap");
	if (req->max_gpus > 0 && req->max_gpus > 1000000000)
		return fail(err, ERR_INVALID_AMOUNT, NULL, "max_gpus is too large");
	return 0;
}

/* Rule 9: at its end a phase's quota expired, so it can no longer change. */
static int grant_phase_open(const struct ledger *l, const struct ledger_ctx *ctx,
			    const struct grant *g, struct ledger_error *err)
{
	char t1[TIME_BUFSZ], t2[TIME_BUFSZ];

	if (ctx->now < g->ph->end)
		return 0;
	return fail(err, ERR_PHASE_CLOSED,
		    json_pack("{s:s}", "phase_end", tstr(l, g->ph->end, t1)),
		    "phase %s ended at %s; its quota can no longer change",
		    g->ph->id, tstr(l, g->ph->end, t2));
}

/*
 * Rule 8: quota must be usable, for some time of the phase from now on
 * before an elimination takes effect; otherwise it would only wait to be
 * revoked. Adjustments down and caps stay allowed.
 */
static int grant_usable(const struct ledger *l, const struct ledger_ctx *ctx,
			const struct grant *g, struct ledger_error *err)
{
	const struct cstate *cs = cs_find(l, g->c->id);
	char t1[TIME_BUFSZ], t2[TIME_BUFSZ];

	if (cs == NULL || cs->status != CS_ELIMINATED || g->req->gpu_seconds <= 0 ||
	    later(g->ph->start, ctx->now) < cs->since)
		return 0;
	return fail(err, ERR_NOT_ACTIVE,
		    json_pack("{s:s}", "eliminated_at", tstr(l, cs->since, t1)),
		    "%s is eliminated from %s; reinstate it before granting quota of %s",
		    g->c->id, tstr(l, cs->since, t2), g->ph->id);
}

/*
 * Eligibility: quota takes effect at the later of now and the phase's
 * start, and none may for a consortium before its eligible_from (a team
 * that leases its GPUs to the program gets none until then).
 */
static int rule_eligible(const struct ledger *l, const struct ledger_ctx *ctx,
			 const struct cfg_consortium *c, const struct cfg_phase *ph,
			 struct ledger_error *err)
{
	char t1[TIME_BUFSZ], t2[TIME_BUFSZ], t3[TIME_BUFSZ];
	int64_t effective = later(ph->start, ctx->now);

	if (effective >= c->eligible_from)
		return 0;
	return fail(err, ERR_NOT_ELIGIBLE,
		    json_pack("{s:s, s:s}", "eligible_from", tstr(l, c->eligible_from, t1),
			      "effective", tstr(l, effective, t2)),
		    "%s is not eligible for quota before %s; quota of %s would take effect at %s",
		    c->id, tstr(l, c->eligible_from, t3), ph->id, tstr(l, effective, t2));
}

static int grant_eligible(const struct ledger *l, const struct ledger_ctx *ctx,
			  const struct grant *g, struct ledger_error *err)
{
	if (g->req->gpu_seconds <= 0)
		return 0;	/* adjustments down and caps stay allowed */
	return rule_eligible(l, ctx, g->c, g->ph, err);
}

/* --- the procured budget ------------------------------------------------ */

/* GPU-seconds pool p is available inside [from, until); saturates, never wraps. */
static int64_t pool_seconds(const struct cfg_pool *p, int64_t from, int64_t until)
{
	int64_t a = from > p->available_from ? from : p->available_from;
	int64_t b = until < p->available_until ? until : p->available_until;
	int64_t r;

	if (a >= b)
		return 0;
	return i64_mul(p->gpus, b - a, &r) ? r : INT64_MAX / 4;
}

/* GPU-seconds a pool's cuts take away inside [from, until), within its lease. */
static int64_t cut_seconds(const struct ledger *l, const struct cfg_pool *p, int64_t from,
			   int64_t until)
{
	const struct pool_tl *pt = pool_find(l, p->id);
	int64_t sum = 0, r;

	for (size_t i = 0; pt && i < pt->n_lost; i++) {
		int64_t a = later(later(from, p->available_from), pt->lost[i].start);
		int64_t b = earlier(earlier(until, p->available_until), pt->lost[i].end);
		if (a < b && i64_mul(pt->lost[i].gpus, b - a, &r))
			sum += r;	/* within the pool's own GPU-seconds: no overflow */
	}
	return sum;
}

/* Procured GPU-seconds of model gpu inside phase ph (its dates as moved, less pool cuts). */
static int64_t procured(const struct ledger *l, const struct cfg_phase *ph, const char *gpu)
{
	int64_t sum = 0;

	for (size_t i = 0; i < l->cfg->n_pools; i++) {
		const struct cfg_pool *p = &l->cfg->pools[i];
		if (strcmp(p->gpu, gpu) == 0 &&
		    !i64_add(sum, pool_seconds(p, ph->start, ph->end) -
				  cut_seconds(l, p, ph->start, ph->end), &sum))
			sum = INT64_MAX / 4;
	}
	return sum;
}

/* Granted and committed GPU-seconds of (phase, gpu), over every consortium. */
static void budget_sums(const struct ledger *l, const char *phase, const char *gpu,
			int64_t *granted, int64_t *committed)
{
	*granted = *committed = 0;
	for (size_t i = 0; i < l->n_bals; i++) {
		const struct balance *b = l->bals[i];
		if (strcmp(b->phase, phase) == 0 && strcmp(b->gpu, gpu) == 0) {
			*granted += b->granted;	/* each row <= INT64_MAX / 4 */
			*committed += b->committed;
		}
	}
}

/*
 * Conservation: what the program grants of (phase, gpu) stays within what
 * it procured, unless the request says it means to oversubscribe.
 */
static int rule_budget(const struct ledger *l, const struct cfg_phase *ph, const char *gpu,
		       int64_t more, bool oversubscribe, struct ledger_error *err)
{
	char h1[HOURS_BUFSZ], h2[HOURS_BUFSZ], h3[HOURS_BUFSZ];
	int64_t granted, committed, after, have = procured(l, ph, gpu);

	budget_sums(l, ph->id, gpu, &granted, &committed);
	if (more <= 0 || oversubscribe || !i64_add(granted, more, &after) || after <= have)
		return 0;
	return fail(err, ERR_OVERSUBSCRIBED,
		    json_pack("{s:I, s:I, s:I, s:I}",
			      "procured_gpu_seconds", (json_int_t)have,
			      "granted_gpu_seconds", (json_int_t)granted,
			      "requested_gpu_seconds", (json_int_t)more,
			      "reserve_gpu_seconds", (json_int_t)(have - granted)),
		    "%s of %s GPU-hours would make %s GPU-hours granted in %s, more than the %s procured (oversubscribe to allow it)",
		    hours(more, h1), gpu, hours(granted + more, h2), ph->id, hours(have, h3));
}

size_t ledger_budget(const struct ledger *l, struct budget_row **out)
{
	const struct config *cfg = l->cfg;
	size_t n = 0;

	*out = xreallocarray(NULL, cfg->n_phases * cfg->n_pools + 1, sizeof(**out));
	for (size_t i = 0; i < cfg->n_phases; i++) {
		for (size_t j = 0; j < cfg->n_pools; j++) {
			const char *gpu = cfg->pools[j].gpu;
			bool seen = false;
			for (size_t k = 0; k < j && !seen; k++)
				seen = strcmp(cfg->pools[k].gpu, gpu) == 0;
			if (seen)
				continue;
			struct budget_row *r = &(*out)[n++];
			r->phase = cfg->phases[i].id;
			r->gpu = gpu;
			r->procured = procured(l, &cfg->phases[i], gpu);
			budget_sums(l, r->phase, gpu, &r->granted, &r->committed);
		}
	}
	return n;
}

static int grant_within_budget(const struct ledger *l, const struct grant *g,
			       struct ledger_error *err)
{
	return rule_budget(l, g->ph, g->req->gpu, g->req->gpu_seconds, g->req->oversubscribe, err);
}

/* The new granted amount: no overflow, and no less than is committed or expired. */
static int grant_amount(const struct ledger *l, struct grant *g, struct ledger_error *err)
{
	const struct grant_req *req = g->req;
	char h1[HOURS_BUFSZ], h2[HOURS_BUFSZ], h3[HOURS_BUFSZ];

	g->bal = bal_find(l, g->c->id, g->ph->id, req->gpu);
	int64_t cur = g->bal ? g->bal->granted : 0;
	int64_t committed = g->bal ? g->bal->committed : 0;
	int64_t floor = g->bal ? g->bal->committed + g->bal->expired : 0;
	if (!i64_add(cur, req->gpu_seconds, &g->granted) || g->granted > INT64_MAX / 4)
		return fail(err, ERR_INVALID_AMOUNT, NULL, "the grant would overflow the ledger");
	if (g->granted >= floor)
		return 0;
	return fail(err, ERR_BELOW_COMMITTED,
		    json_pack("{s:I, s:I, s:I}",
			      "granted_gpu_seconds", (json_int_t)cur,
			      "committed_gpu_seconds", (json_int_t)committed,
			      "requested_delta_gpu_seconds", (json_int_t)req->gpu_seconds),
		    "an adjustment of %s GPU-hours would leave %s/%s/%s below what is already committed (%s of %s GPU-hours granted are committed or expired)",
		    hours(req->gpu_seconds, h1), g->c->id, g->ph->id, req->gpu,
		    hours(floor, h2), hours(cur, h3));
}

/* Rule 4 for a new cap: it must hold for what is already booked in the phase. */
static int grant_cap_holds(struct ledger *l, const struct ledger_ctx *ctx,
			   const struct grant *g, struct ledger_error *err)
{
	const struct grant_req *req = g->req;

	if (req->max_gpus <= 0)
		return 0;
	int64_t peak = timeline_max(cap_tl(l, g->c->id, req->gpu),
				    later(g->ph->start, ctx->now), g->ph->end);
	if (peak <= req->max_gpus)
		return 0;
	return fail(err, ERR_CAP_EXCEEDED,
		    json_pack("{s:I, s:I}", "max_gpus", (json_int_t)req->max_gpus,
			      "booked_gpus", (json_int_t)peak),
		    "%s already has %" PRId64 " %s GPUs booked at once in %s; a cap of %" PRId64 " is too low",
		    g->c->id, peak, req->gpu, g->ph->id, req->max_gpus);
}

/* A grant or adjustment entry for the amount, a cap entry for the cap. */
static void grant_apply(struct ledger *l, const struct ledger_ctx *ctx,
			const struct grant *g, struct jlist *out)
{
	const struct grant_req *req = g->req;
	struct balance *bal = bal_get(l, g->c->id, g->ph->id, req->gpu);

	if (req->gpu_seconds != 0) {
		struct jentry *e = entry_new(ctx, out, req->gpu_seconds > 0 ? J_GRANT : J_ADJUST,
					     g->c->id, g->ph->id, req->gpu, req->reason);
		e->granted_delta = req->gpu_seconds;
		if (req->oversubscribe && req->gpu_seconds > 0)
			e->extra = json_pack("{s:b}", "oversubscribe", 1);
		seal(l, e);
		bal->granted = g->granted;
	}
	if (req->max_gpus >= 0) {
		struct jentry *e = entry_new(ctx, out, J_CAP, g->c->id, g->ph->id, req->gpu,
					     req->reason);
		e->max_gpus = req->max_gpus;
		seal(l, e);
		bal->max_gpus = req->max_gpus;
	}
}

int ledger_grant(struct ledger *l, const struct ledger_ctx *ctx,
		 const struct grant_req *req, struct jlist *out,
		 struct ledger_error *err)
{
	struct grant g = {.req = req};

	if (grant_target(l, &g, err) || grant_phase_open(l, ctx, &g, err) ||
	    grant_usable(l, ctx, &g, err) || grant_eligible(l, ctx, &g, err) ||
	    grant_amount(l, &g, err) || grant_within_budget(l, &g, err) ||
	    grant_cap_holds(l, ctx, &g, err))
		return -EINVAL;
	grant_apply(l, ctx, &g, out);
	return 0;
}

/* --- config ------------------------------------------------------------ */

bool ledger_config_entry(struct ledger *l, const struct ledger_ctx *ctx, const char *sha256,
			 const json_t *last, struct jlist *out)
{
	/* the file's structure: a phase moved in the journal is not a config change */
	json_t *cur = config_structure(ledger_file_config(l));

	if (last != NULL && json_equal(last, cur)) {
		json_decref(cur);
		return false;
	}
	json_t *summary = jconfig_summary(last, cur);
	char *text = jconfig_summary_text(summary);
	struct jentry *e = entry_new(ctx, out, J_CONFIG, NULL, NULL, NULL, text);
	e->extra = json_pack("{s:s, s:o, s:o}", "sha256", sha256, "structure", cur,
			     "summary", summary);
	seal(l, e);
	free(text);
	return true;
}

/* --- transfer ---------------------------------------------------------- */

/* A transfer as the checks see it, filled in as they pass. */
struct transfer {
	const struct transfer_req *req;
	const struct cfg_consortium *from;	/* NULL: the program reserve */
	const struct cfg_consortium *to;
	const struct cfg_phase *ph;
	const struct balance *src;		/* from's row (NULL: none, or the reserve) */
};

/* What a transfer names exists: two consortia (or the reserve and one), a phase, a model, an amount. */
static int transfer_target(const struct ledger *l, struct transfer *t, struct ledger_error *err)
{
	const struct transfer_req *req = t->req;

	if (req->from == NULL || strcmp(req->from, CONFIG_RESERVE) != 0) {
		if (find_consortium(l, req->from, &t->from, err))
			return -EINVAL;
	}
	if (find_consortium(l, req->to, &t->to, err))
		return -EINVAL;
	if (t->from == t->to)
		return fail(err, ERR_INVALID_AMOUNT, json_pack("{s:s}", "field", "to_consortium"),
			    "a transfer from %s to itself moves nothing", t->to->id);
	t->ph = req->phase ? config_phase(l->cfg, req->phase) : NULL;
	if (t->ph == NULL)
		return fail(err, ERR_UNKNOWN_PHASE, NULL, "no phase '%s'",
			    req->phase ? req->phase : "");
	if (req->gpu == NULL || !config_has_gpu(l->cfg, req->gpu))
		return fail(err, ERR_UNKNOWN_GPU, NULL, "no pool has GPU model '%s'",
			    req->gpu ? req->gpu : "");
	if (req->gpu_seconds <= 0 || req->gpu_seconds > INT64_MAX / 4)
		return fail(err, ERR_INVALID_AMOUNT, NULL,
			    "a transfer moves a positive amount of GPU-hours");
	return 0;
}

/* Rule 9: quota moves into a phase only while it runs or lies ahead. */
static int transfer_phase_open(const struct ledger *l, const struct ledger_ctx *ctx,
			       const struct transfer *t, struct ledger_error *err)
{
	char t1[TIME_BUFSZ], t2[TIME_BUFSZ];

	if (ctx->now < t->ph->end)
		return 0;
	return fail(err, ERR_PHASE_CLOSED,
		    json_pack("{s:s}", "phase_end", tstr(l, t->ph->end, t1)),
		    "phase %s ended at %s; its quota can no longer change",
		    t->ph->id, tstr(l, t->ph->end, t2));
}

/* Rule 8: the receiver must be able to use it, as for a grant. */
static int transfer_usable(const struct ledger *l, const struct ledger_ctx *ctx,
			   const struct transfer *t, struct ledger_error *err)
{
	struct grant_req gr = {.gpu_seconds = t->req->gpu_seconds};
	struct grant g = {.req = &gr, .c = t->to, .ph = t->ph};

	if (grant_usable(l, ctx, &g, err) || rule_eligible(l, ctx, t->to, t->ph, err))
		return -EINVAL;
	return 0;
}

/*
 * Rule 3 for the giver: no more than its available quota. From the
 * reserve: no more than the procured budget leaves, unless oversubscribe.
 */
static int transfer_covered(const struct ledger *l, struct transfer *t, struct ledger_error *err)
{
	const struct transfer_req *req = t->req;
	char h1[HOURS_BUFSZ], h2[HOURS_BUFSZ];
	int64_t to_granted;
	const struct balance *dst = bal_find(l, t->to->id, t->ph->id, req->gpu);

	if (!i64_add(dst ? dst->granted : 0, req->gpu_seconds, &to_granted) ||
	    to_granted > INT64_MAX / 4)
		return fail(err, ERR_INVALID_AMOUNT, NULL, "the transfer would overflow the ledger");
	if (t->from == NULL)
		return rule_budget(l, t->ph, req->gpu, req->gpu_seconds, req->oversubscribe, err);
	t->src = bal_find(l, t->from->id, t->ph->id, req->gpu);
	if (req->gpu_seconds <= available(t->src))
		return 0;
	return fail(err, ERR_QUOTA_EXCEEDED,
		    json_pack("{s:I, s:I}",
			      "available_gpu_seconds", (json_int_t)available(t->src),
			      "needed_gpu_seconds", (json_int_t)req->gpu_seconds),
		    "%s has %s GPU-hours of %s left in %s; the transfer needs %s",
		    t->from->id, hours(available(t->src), h1), req->gpu, t->ph->id,
		    hours(req->gpu_seconds, h2));
}

/* The pair of entries, out first, and both balances. */
static void transfer_apply(struct ledger *l, const struct ledger_ctx *ctx,
			   const struct transfer *t, struct jlist *out)
{
	const struct transfer_req *req = t->req;
	const char *from = t->from ? t->from->id : NULL;

	struct jentry *e = entry_new(ctx, out, J_TRANSFER_OUT, from, t->ph->id, req->gpu,
				     req->reason);
	e->granted_delta = -req->gpu_seconds;
	if (from == NULL && req->oversubscribe)
		e->extra = json_pack("{s:b}", "oversubscribe", 1);
	seal(l, e);
	if (from)
		bal_get(l, from, t->ph->id, req->gpu)->granted -= req->gpu_seconds;

	e = entry_new(ctx, out, J_TRANSFER_IN, t->to->id, t->ph->id, req->gpu, req->reason);
	e->granted_delta = req->gpu_seconds;
	seal(l, e);
	bal_get(l, t->to->id, t->ph->id, req->gpu)->granted += req->gpu_seconds;
}

int ledger_transfer(struct ledger *l, const struct ledger_ctx *ctx,
		    const struct transfer_req *req, struct jlist *out,
		    struct ledger_error *err)
{
	struct transfer t = {.req = req};

	if (transfer_target(l, &t, err) || transfer_phase_open(l, ctx, &t, err) ||
	    transfer_usable(l, ctx, &t, err) || transfer_covered(l, &t, err))
		return -EINVAL;
	transfer_apply(l, ctx, &t, out);
	return 0;
}

/* --- allocate ---------------------------------------------------------- */

/* An allocation request as the rules see it, filled in as they pass. */
struct fit {
	const struct alloc_req *req;
	const struct cfg_consortium *c;
	const struct cfg_pool *only;	/* the pool asked for, or NULL: any pool of gpu */
	const char *gpu;
	int64_t gpus;
	int64_t start, end;		/* as asked; rule 6 moves them */
	int64_t duration;
	const struct cfg_phase *ph;	/* the phase it is charged to (rules 1, 6) */
	int64_t lo;			/* earliest allowed start */
	int64_t hi;			/* latest allowed end: phase end or elimination */
	const struct balance *bal;	/* the quota it is charged to (rule 3) */
	int64_t cost;
	const struct cfg_pool *pool;	/* where it lands (rules 2, 4, 6) */
};

/* What the request names exists: the consortium, the pool or GPU model, a count. */
static int alloc_target(const struct ledger *l, struct fit *f, struct ledger_error *err)
{
	const struct alloc_req *req = f->req;

	if (find_consortium(l, req->consortium, &f->c, err))
		return -EINVAL;
	if (req->pool) {
		f->only = config_pool(l->cfg, req->pool);
		if (f->only == NULL)
			return fail(err, ERR_NOT_FOUND, NULL, "no pool '%s'", req->pool);
		f->gpu = f->only->gpu;
	} else {
		f->gpu = req->gpu;
		if (f->gpu == NULL || !config_has_gpu(l->cfg, f->gpu))
			return fail(err, ERR_UNKNOWN_GPU, NULL, "no pool has GPU model '%s'",
				    f->gpu ? f->gpu : "");
	}
	if (req->gpus <= 0)
		return fail(err, ERR_INVALID_AMOUNT, NULL, "gpus must be at least 1");
	f->gpus = req->gpus;
	return 0;
}

/* A window that ends after it starts; not in the past, unless the daemon picks the start. */
static int alloc_window(const struct ledger *l, const struct ledger_ctx *ctx, struct fit *f,
			struct ledger_error *err)
{
	char t1[TIME_BUFSZ], t2[TIME_BUFSZ], t3[TIME_BUFSZ];

	f->start = f->req->start;
	f->end = f->req->end;
	if (f->end <= f->start)
		return fail(err, ERR_INVALID_WINDOW, NULL, "the end (%s) must be after the start (%s)",
			    tstr(l, f->end, t1), tstr(l, f->start, t2));
	if (!f->req->earliest && f->start < ctx->now)
		return fail(err, ERR_INVALID_WINDOW,
			    json_pack("{s:s}", "now", tstr(l, ctx->now, t1)),
			    "the start %s is in the past (now is %s)",
			    tstr(l, f->start, t2), tstr(l, ctx->now, t3));
	f->duration = f->end - f->start;
	return 0;
}

/* Whether pool p may take the request: the named pool, or any pool of the
 * model, in whole nodes. */
static bool candidate(const struct cfg_pool *p, const struct fit *f)
{
	if (f->only ? p != f->only : strcmp(p->gpu, f->gpu) != 0)
		return false;
	return p->gpus_per_node <= 1 || f->gpus % p->gpus_per_node == 0;
}

/* Whole nodes: a named pool must take the count; a model needs one pool that does. */
static int whole_nodes(const struct ledger *l, const struct fit *f, struct ledger_error *err)
{
	const struct cfg_pool *p = f->only;

	for (size_t i = 0; i < l->cfg->n_pools; i++)
		if (candidate(&l->cfg->pools[i], f))
			return 0;
	/* name the pool that refused: the one asked for, or the model's first */
	for (size_t i = 0; p == NULL && i < l->cfg->n_pools; i++)
		if (strcmp(l->cfg->pools[i].gpu, f->gpu) == 0)
			p = &l->cfg->pools[i];
	return fail(err, ERR_NOT_WHOLE_NODES,
		    json_pack("{s:I}", "gpus_per_node", (json_int_t)p->gpus_per_node),
		    "pool %s allocates whole nodes of %" PRId64 " GPUs; %" PRId64 " is not a multiple",
		    p->id, p->gpus_per_node, f->gpus);
}

/* Which phase, and where it ends: the details of every crosses_phase. */
static json_t *phase_end_details(const struct ledger *l, const struct cfg_phase *ph)
{
	char t[TIME_BUFSZ];
	return json_pack("{s:s, s:s}", "phase", ph->id, "phase_end", tstr(l, ph->end, t));
}

/* Rule 1: inside one phase, the phase of the start. */
static int rule_one_phase(const struct ledger *l, struct fit *f, struct ledger_error *err)
{
	char t[TIME_BUFSZ];

	f->ph = config_phase_at(l->cfg, f->start);
	if (f->ph == NULL)
		return fail(err, ERR_CROSSES_PHASE, NULL, "no phase contains the start %s",
			    tstr(l, f->start, t));
	if (f->end > f->ph->end)
		return fail(err, ERR_CROSSES_PHASE, phase_end_details(l, f->ph),
			    "the allocation crosses the end of phase %s at %s",
			    f->ph->id, tstr(l, f->ph->end, t));
	return 0;
}

/* Rule 1 for a phase the search of rule 6 tries: the daemon moves the start, so only the length must fit. */
static int phase_long_enough(const struct ledger *l, const struct fit *f,
			     struct ledger_error *err)
{
	char t[TIME_BUFSZ];

	if (f->duration <= f->ph->end - f->ph->start)
		return 0;
	return fail(err, ERR_CROSSES_PHASE, phase_end_details(l, f->ph),
		    "the allocation is longer than phase %s, which ends at %s",
		    f->ph->id, tstr(l, f->ph->end, t));
}

/*
 * Rules 2 and 4 for one pool, as a list of limits: the pool's capacity,
 * and the consortium's cap for the model when it has one. The check of a
 * given window and the search for the earliest one both read this list,
 * so the two cannot disagree about what fits.
 */
enum limit { LIMIT_POOL, LIMIT_CAP, LIMIT_NONE };

struct limits {
	struct timeline *tl[LIMIT_NONE];
	struct capacity cap[LIMIT_NONE];
	size_t n;
};

static void limits_of(struct ledger *l, const struct fit *f, const struct cfg_pool *p,
		      struct limits *lim)
{
	lim->tl[LIMIT_POOL] = pool_tl(l, p->id);
	lim->cap[LIMIT_POOL] = pool_capacity(p);
	lim->n = 1;
	if (f->bal && f->bal->max_gpus > 0) {
		lim->tl[LIMIT_CAP] = cap_tl(l, f->c->id, p->gpu);
		lim->cap[LIMIT_CAP] = cap_capacity(f->bal->max_gpus);
		lim->n = 2;
	}
}

/* The first limit that gpus more over [start, end) would break, or LIMIT_NONE. */
static enum limit limit_broken(const struct limits *lim, int64_t gpus, int64_t start,
			       int64_t end)
{
	for (size_t k = 0; k < lim->n; k++)
		if (!timeline_fits(lim->tl[k], &lim->cap[k], gpus, start, end))
			return (enum limit)k;
	return LIMIT_NONE;
}

/*
 * The earliest start >= from at which every limit holds and the window
 * ends by hi. Each limit in turn moves the candidate to its own earliest
 * fit from there (never back), until all of them accept one start.
 */
static int limits_earliest(const struct limits *lim, const struct fit *f, int64_t from,
			   int64_t *out)
{
	int64_t t = from;
	size_t agree = 0;	/* limits in a row that accepted t */

	for (size_t k = 0; agree < lim->n; k = (k + 1) % lim->n) {
		int64_t s;
		if (timeline_earliest(lim->tl[k], &lim->cap[k], f->gpus, t, f->duration, f->hi, &s))
			return -ENOSPC;
		agree = s == t ? agree + 1 : 1;
		t = s;
	}
	*out = t;
	return 0;
}

/* Over every candidate pool; ties go to the pool listed first in the config. */
static int earliest_any(struct ledger *l, const struct fit *f, int64_t from,
			const struct cfg_pool **pool_out, int64_t *out)
{
	int rc = -ENOSPC;

	for (size_t i = 0; i < l->cfg->n_pools; i++) {
		const struct cfg_pool *p = &l->cfg->pools[i];
		struct limits lim;
		int64_t t;
		if (!candidate(p, f))
			continue;
		limits_of(l, f, p, &lim);
		if (limits_earliest(&lim, f, from, &t) == 0 && (rc != 0 || t < *out)) {
			*out = t;
			*pool_out = p;
			rc = 0;
		}
	}
	return rc;
}

/*
 * The hint a capacity or cap refusal carries: the earliest start from the
 * one asked for at which the same request would fit (same duration, same
 * phase), as a time string, or null; *pool is where, or NULL.
 */
static json_t *earliest_start(struct ledger *l, const struct fit *f,
			      const struct cfg_pool **pool)
{
	char t[TIME_BUFSZ];
	int64_t at;

	*pool = NULL;
	if (earliest_any(l, f, f->start, pool, &at) != 0)
		return json_null();
	return json_string(tstr(l, at, t));
}

static int refuse_capacity(struct ledger *l, const struct fit *f, struct ledger_error *err)
{
	const struct cfg_pool *p;
	json_t *at = earliest_start(l, f, &p);
	json_t *d = json_pack("{s:o}", "earliest_start", at);

	if (p == NULL)
		return fail(err, ERR_CAPACITY_UNAVAILABLE, d,
			    "%" PRId64 " %s GPUs are not free over the window, and no later start fits inside phase %s",
			    f->gpus, f->gpu, f->ph->id);
	json_object_set_new(d, "pool", json_string(p->id));
	return fail(err, ERR_CAPACITY_UNAVAILABLE, d,
		    "%" PRId64 " %s GPUs are not free over the window; the earliest start that fits is %s (pool %s)",
		    f->gpus, f->gpu, json_string_value(at), p->id);
}

static int refuse_cap(struct ledger *l, const struct fit *f, struct ledger_error *err)
{
	const struct cfg_pool *p;
	json_t *d = json_pack("{s:I}", "max_gpus", (json_int_t)f->bal->max_gpus);

	json_object_set_new(d, "earliest_start", earliest_start(l, f, &p));
	return fail(err, ERR_CAP_EXCEEDED, d, "%s may use at most %" PRId64 " %s GPUs at once",
		    f->c->id, f->bal->max_gpus, f->gpu);
}

/*
 * Rules 2 and 4 at the window asked for: the first candidate pool where
 * both hold. The refusal names the cap only when it alone stood in the
 * way, every pool having room; otherwise capacity is what is missing.
 */
static int rule_capacity_and_cap(struct ledger *l, struct fit *f, struct ledger_error *err)
{
	bool pool_full = false, cap_full = false;

	for (size_t i = 0; i < l->cfg->n_pools; i++) {
		const struct cfg_pool *p = &l->cfg->pools[i];
		struct limits lim;
		if (!candidate(p, f))
			continue;
		limits_of(l, f, p, &lim);
		switch (limit_broken(&lim, f->gpus, f->start, f->end)) {
		case LIMIT_NONE:
			f->pool = p;
			return 0;
		case LIMIT_POOL:
			pool_full = true;
			break;
		case LIMIT_CAP:
			cap_full = true;
			break;
		}
	}
	return cap_full && !pool_full ? refuse_cap(l, f, err) : refuse_capacity(l, f, err);
}

/* Rule 3: the quota of (consortium, phase, gpu) covers the cost. */
static int rule_quota(const struct ledger *l, struct fit *f, struct ledger_error *err)
{
	char h1[HOURS_BUFSZ], h2[HOURS_BUFSZ];

	if (!i64_mul(f->gpus, f->duration, &f->cost))
		return fail(err, ERR_INVALID_AMOUNT, NULL, "the cost overflows");
	f->bal = bal_find(l, f->c->id, f->ph->id, f->gpu);
	if (f->cost <= available(f->bal))
		return 0;
	return fail(err, ERR_QUOTA_EXCEEDED,
		    json_pack("{s:I, s:I}",
			      "available_gpu_seconds", (json_int_t)available(f->bal),
			      "needed_gpu_seconds", (json_int_t)f->cost),
		    "%s has %s GPU-hours of %s left in %s; this needs %s",
		    f->c->id, hours(available(f->bal), h1), f->gpu, f->ph->id, hours(f->cost, h2));
}

/*
 * Rule 5 for the window as asked: the consortium is active over all of it
 * (not before joined, inside no elimination). Also bounds the hint of a
 * capacity refusal (rule 2: same phase, and before the next elimination).
 */
static int rule_active(const struct ledger *l, struct fit *f, struct ledger_error *err)
{
	const struct cs_span *sp;
	char t1[TIME_BUFSZ], t2[TIME_BUFSZ], t3[TIME_BUFSZ];

	if (f->start < f->c->joined)
		return fail(err, ERR_NOT_ACTIVE,
			    json_pack("{s:s}", "active_from", tstr(l, f->c->joined, t1)),
			    "%s is not active before %s", f->c->id, tstr(l, f->c->joined, t2));
	sp = span_over(l, f->c, f->start, f->end);
	if (sp == NULL) {
		const struct cs_span *next = span_over(l, f->c, f->end, TIME_MAX);
		f->lo = f->start;
		f->hi = earlier(f->ph->end, next ? next->from : TIME_MAX);
		return 0;
	}
	if (f->start >= sp->from && sp->until != TIME_MAX)
		return fail(err, ERR_NOT_ACTIVE,
			    json_pack("{s:s}", "active_from", tstr(l, sp->until, t1)),
			    "%s is not active before %s (eliminated from %s)", f->c->id,
			    tstr(l, sp->until, t2), tstr(l, sp->from, t3));
	return fail(err, ERR_NOT_ACTIVE,
		    json_pack("{s:s}", "eliminated_at", tstr(l, sp->from, t1)),
		    "%s is eliminated from %s", f->c->id, tstr(l, sp->from, t2));
}

/* A request as asked: rules 1, 5, 3, then 2 and 4 at its window. */
static int alloc_as_asked(struct ledger *l, struct fit *f, struct ledger_error *err)
{
	return rule_one_phase(l, f, err) || whole_nodes(l, f, err) || rule_active(l, f, err) ||
	       rule_quota(l, f, err) || rule_capacity_and_cap(l, f, err) ? -EINVAL : 0;
}

/*
 * Rule 5 for the search in phase f->ph: no active stretch leaves room for
 * the duration from lo to the phase's end. The refusal names the bound
 * that leaves none: the consortium's status, or the phase.
 */
static int no_room_in_phase(const struct ledger *l, const struct fit *f, int64_t lo,
			    struct ledger_error *err)
{
	const struct cstate *cs = cs_find(l, f->c->id);
	char t1[TIME_BUFSZ], t2[TIME_BUFSZ], t3[TIME_BUFSZ];
	int64_t from = TIME_MAX, until = TIME_MAX;
	bool found = false;

	/* the first stretch still running at lo, or starting after it */
	for (size_t i = 0; !found && active_stretch(l, f->c, i, &from, &until); i++)
		found = until > lo && from < until;
	if (!found) {
		/* out for good: only an open elimination ends the last stretch */
		if (cs == NULL || cs->n_spans == 0)
			abort();
		from = cs->spans[cs->n_spans - 1].from;
		return fail(err, ERR_NOT_ACTIVE, json_pack("{s:s}", "eliminated_at", tstr(l, from, t1)),
			    "%s is eliminated from %s", f->c->id, tstr(l, from, t2));
	}
	if (from < f->ph->end && until < f->ph->end)
		return fail(err, ERR_NOT_ACTIVE,
			    json_pack("{s:s}", "eliminated_at", tstr(l, until, t1)),
			    "%s is eliminated from %s; no window of this length fits before it",
			    f->c->id, tstr(l, until, t2));
	if (from > lo)
		return fail(err, ERR_NOT_ACTIVE,
			    json_pack("{s:s}", "active_from", tstr(l, from, t1)),
			    "%s is active only from %s; no window of this length fits in phase %s after that",
			    f->c->id, tstr(l, from, t2), f->ph->id);
	return fail(err, ERR_CROSSES_PHASE, phase_end_details(l, f->ph),
		    "no start from %s leaves room before the end of phase %s at %s",
		    tstr(l, lo, t1), f->ph->id, tstr(l, f->ph->end, t3));
}

/*
 * Rule 6 in phase f->ph, from lo0 on: rules 1, 5 and 3 as for a request
 * as asked (the phase's own quota pays), then the earliest start in the
 * first active stretch of the phase where rules 2 and 4 hold.
 */
static int earliest_in_phase(struct ledger *l, struct fit *f, int64_t lo0,
			     struct ledger_error *err)
{
	int64_t from, until, lo = later(lo0, f->ph->start);
	bool room = false;
	char t[TIME_BUFSZ], h[HOURS_BUFSZ];

	if (phase_long_enough(l, f, err))
		return -EINVAL;
	for (size_t i = 0; !room && active_stretch(l, f->c, i, &from, &until); i++) {
		int64_t a = later(lo, from), b = earlier(f->ph->end, until);
		room = a < b && b - a >= f->duration;
	}
	if (!room)
		return no_room_in_phase(l, f, lo, err);
	if (rule_quota(l, f, err))
		return -EINVAL;
	for (size_t i = 0; active_stretch(l, f->c, i, &from, &until); i++) {
		f->lo = later(lo, from);
		f->hi = earlier(f->ph->end, until);
		if (f->lo >= f->hi || f->hi - f->lo < f->duration)
			continue;
		if (earliest_any(l, f, f->lo, &f->pool, &f->start) == 0) {
			f->end = f->start + f->duration;
			return 0;
		}
	}
	return fail(err, ERR_CAPACITY_UNAVAILABLE, json_pack("{s:n}", "earliest_start"),
		    "no start from %s fits %" PRId64 " %s GPUs for %s hours in phase %s",
		    tstr(l, lo, t), f->gpus, f->gpu, hours(f->duration, h), f->ph->id);
}

/*
 * Rule 6: the daemon picks the earliest start from the one asked for (and
 * from now) at which rules 1-5 hold. The search goes on from the phase of
 * that start into the later phases, across the gaps between them; the
 * allocation is charged to the phase it lands in. When no phase takes it,
 * the refusal is the first phase's.
 */
static int rule_earliest(struct ledger *l, const struct ledger_ctx *ctx, struct fit *f,
			 struct ledger_error *err)
{
	const struct config *cfg = l->cfg;
	int64_t lo0 = later(f->start, ctx->now);
	size_t first = 0;
	char t[TIME_BUFSZ];

	if (whole_nodes(l, f, err))
		return -EINVAL;
	while (first < cfg->n_phases && cfg->phases[first].end <= lo0)
		first++;
	if (first == cfg->n_phases)
		return fail(err, ERR_CROSSES_PHASE, NULL, "no phase ends after %s",
			    tstr(l, lo0, t));
	for (size_t i = first; i < cfg->n_phases; i++) {
		struct ledger_error later_err = {0};
		f->ph = &cfg->phases[i];
		if (earliest_in_phase(l, f, lo0, i == first ? err : &later_err) == 0) {
			ledger_error_clear(err);
			return 0;
		}
		ledger_error_clear(&later_err);
	}
	if (cfg->n_phases - first > 1) {
		char *msg = xasprintf("%s; no later phase takes it either", err->message);
		free(err->message);
		err->message = msg;
	}
	return -EINVAL;
}

/* Books the allocation where the rules placed it and charges its phase's quota. */
static void alloc_apply(struct ledger *l, const struct ledger_ctx *ctx, const struct fit *f,
			struct jlist *out, const char **id_out)
{
	if (f->gpus > INT32_MAX)
		abort();	/* rule 2 kept it within a pool, of at most 1e8 GPUs */
	struct live rec = {.num = ++l->alloc_num, .start = f->start, .end = f->end,
			   .booked_end = f->end, .cost = f->cost, .created = ctx->now,
			   .note = f->req->note ? xstrdup(f->req->note) : NULL,
			   .place = place_get(l, f->c->id, f->pool->id, f->pool->gpu, f->ph->id),
			   .gpus = (int32_t)f->gpus, .stored = ALLOC_BOOKED};
	struct live *a = live_insert(l, &rec);
	book(l, a, a->start, a->end, 1);
	due_push(l, a, a->start);
	bal_get(l, f->c->id, f->ph->id, f->pool->gpu)->committed += f->cost;

	struct jentry *e = entry_new(ctx, out, J_RESERVE, f->c->id, f->ph->id, f->pool->gpu,
				     f->req->note);
	entry_alloc(l, e, a);
	e->committed_delta = f->cost;
	seal(l, e);
	a->seq = e->seq;
	*id_out = aid(a, l->last_id);
}

int ledger_allocate(struct ledger *l, const struct ledger_ctx *ctx,
		    const struct alloc_req *req, struct jlist *out,
		    const char **id_out, struct ledger_error *err)
{
	struct fit f = {.req = req};

	/*
	 * The request itself first, then the rules cheapest first: the window
	 * rules (1, 5) read only the config and the consortium's state, the
	 * quota (3) one balance, and capacity and cap (2, 4) walk the
	 * timelines. When several rules fail, the first in this order is the
	 * one the refusal names. With --earliest the search of rule 6 runs the
	 * same ladder in each phase it tries.
	 */
	if (alloc_target(l, &f, err) || alloc_window(l, ctx, &f, err) ||
	    (req->earliest ? rule_earliest(l, ctx, &f, err) : alloc_as_asked(l, &f, err)))
		return -EINVAL;
	alloc_apply(l, ctx, &f, out, id_out);
	return 0;
}

/* --- cancel, release --------------------------------------------------- */

static int live_alloc(const struct ledger *l, const char *id, struct live **out,
		      int64_t now, struct ledger_error *err)
{
	*out = alloc_find(l, id);
	if (*out == NULL)
		return fail(err, ERR_NOT_FOUND, NULL, "no live allocation '%s'", id ? id : "");
	if ((*out)->end <= now)
		return fail(err, ERR_BAD_STATE, NULL, "allocation %s has completed", id);
	return 0;
}

/*
 * Ends a running allocation early at `at` (release, or an elimination
 * that cuts it): the rest of the window is unbooked and refunded, and an
 * entry of kind records the new end and the refund.
 */
static void cut_at(struct ledger *l, const struct ledger_ctx *ctx, struct live *a, int64_t at,
		   enum alloc_stored stored, enum jkind kind, const char *reason,
		   struct jlist *out)
{
	int64_t refund = a->gpus * (a->end - at);
	const struct place *pl = place_of(l, a);
	struct balance *bal = bal_get(l, pl->consortium, pl->phase, pl->gpu);

	book(l, a, at, a->end, -1);
	use_book(l, a, at, a->end, -1);
	a->end = at;
	due_push(l, a, at);
	a->cost -= refund;
	a->stored = (uint8_t)stored;
	bal->committed -= refund;

	struct jentry *e = entry_new(ctx, out, kind, pl->consortium, pl->phase, pl->gpu, reason);
	entry_alloc(l, e, a);
	e->committed_delta = -refund;
	seal(l, e);
}

/*
 * Rule 7: a reservation that has not started (now <= start: at its very
 * start instant nothing has run yet) is cancelled with a full refund.
 */
int ledger_cancel(struct ledger *l, const struct ledger_ctx *ctx, const char *id,
		  const char *reason, struct jlist *out, struct ledger_error *err)
{
	struct live *a;
	char t[TIME_BUFSZ], buf[ALLOC_ID_BUFSZ];

	if (live_alloc(l, id, &a, ctx->now, err))
		return -EINVAL;
	if (a->start < ctx->now)
		return fail(err, ERR_BAD_STATE, json_pack("{s:s}", "state", "active"),
			    "allocation %s is active since %s; only a reserved allocation can be cancelled (use release)",
			    aid(a, buf), tstr(l, a->start, t));

	const struct place *pl = place_of(l, a);
	struct balance *bal = bal_get(l, pl->consortium, pl->phase, pl->gpu);
	struct jentry *e = entry_new(ctx, out, J_CANCEL, pl->consortium, pl->phase, pl->gpu,
				     reason);
	entry_alloc(l, e, a);
	e->committed_delta = -a->cost;
	seal(l, e);
	bal->committed -= a->cost;
	book(l, a, a->start, a->end, -1);
	alloc_remove(l, a);
	live_compact(l);
	return 0;
}

/* Rule 7: release at T, with now <= T < end and T after the start. */
static int release_time_ok(const struct ledger *l, const struct ledger_ctx *ctx,
			   const struct live *a, int64_t at, struct ledger_error *err)
{
	char t1[TIME_BUFSZ], t2[TIME_BUFSZ], t3[TIME_BUFSZ];

	if (at < ctx->now || at >= a->end)
		return fail(err, ERR_INVALID_WINDOW, NULL,
			    "release time %s must be from now (%s) and before the end %s",
			    tstr(l, at, t1), tstr(l, ctx->now, t2), tstr(l, a->end, t3));
	if (at <= a->start)
		return fail(err, ERR_INVALID_WINDOW, NULL,
			    "release time %s is not after the start %s; cancel the reservation instead",
			    tstr(l, at, t1), tstr(l, a->start, t2));
	return 0;
}

int ledger_release(struct ledger *l, const struct ledger_ctx *ctx, const char *id,
		   int64_t at, const char *reason, struct jlist *out,
		   struct ledger_error *err)
{
	struct live *a;

	if (live_alloc(l, id, &a, ctx->now, err))
		return -EINVAL;
	if (at == TIME_MIN)
		at = ctx->now;
	if (release_time_ok(l, ctx, a, at, err))
		return -EINVAL;
	cut_at(l, ctx, a, at, ALLOC_RELEASED, J_RELEASE, reason, out);
	return 0;
}

/* --- modify ----------------------------------------------------------- */

/* A modification as the checks see it: the allocation and its new shape. */
struct change {
	const struct modify_req *req;
	struct live *a;
	const struct cfg_pool *pool;	/* the new pool */
	int64_t gpus, start, end;	/* the new shape */
	struct alloc_req as_req;	/* the new shape as a booking, for rules 1-5 */
};

/*
 * What may change: all of a reservation (now <= start); of an active
 * allocation only the end, to a later instant than now. The pool keeps
 * the GPU model, so that the change is one key's.
 */
static int modify_target(const struct ledger *l, const struct ledger_ctx *ctx,
			 struct change *ch, struct ledger_error *err)
{
	const struct modify_req *req = ch->req;
	struct live *a;
	char t1[TIME_BUFSZ], t2[TIME_BUFSZ], id[ALLOC_ID_BUFSZ];

	if (live_alloc(l, req->id, &ch->a, ctx->now, err))
		return -EINVAL;
	a = ch->a;
	aid(a, id);
	const struct place *pl = place_of(l, a);
	ch->pool = config_pool(l->cfg, req->pool ? req->pool : pl->pool);
	if (ch->pool == NULL)
		return fail(err, ERR_NOT_FOUND, NULL, "no pool '%s'", req->pool);
	if (strcmp(ch->pool->gpu, pl->gpu) != 0)
		return fail(err, ERR_UNKNOWN_GPU, json_pack("{s:s}", "gpu", pl->gpu),
			    "pool %s has %s GPUs; %s is of %s (cancel it and book anew to change the model)",
			    ch->pool->id, ch->pool->gpu, id, pl->gpu);
	ch->gpus = req->gpus > 0 ? req->gpus : a->gpus;
	ch->start = req->start != TIME_MIN ? req->start : a->start;
	ch->end = req->end != TIME_MIN ? req->end : a->end;
	bool active = a->start < ctx->now;
	bool same_place = strcmp(ch->pool->id, pl->pool) == 0 && ch->start == a->start &&
			  ch->gpus == a->gpus;
	if (active && !same_place)
		return fail(err, ERR_BAD_STATE, json_pack("{s:s}", "state", "active"),
			    "allocation %s is active since %s; only its end can change",
			    id, tstr(l, a->start, t1));
	if (ch->end <= ch->start)
		return fail(err, ERR_INVALID_WINDOW, NULL, "the end (%s) must be after the start (%s)",
			    tstr(l, ch->end, t1), tstr(l, ch->start, t2));
	if (!active && ch->start < ctx->now)
		return fail(err, ERR_INVALID_WINDOW, json_pack("{s:s}", "now", tstr(l, ctx->now, t1)),
			    "the start %s is in the past (now is %s)", tstr(l, ch->start, t2),
			    tstr(l, ctx->now, t1));
	if (active && ch->end <= ctx->now)
		return fail(err, ERR_INVALID_WINDOW, json_pack("{s:s}", "now", tstr(l, ctx->now, t1)),
			    "the new end %s is not after now (%s); release the allocation instead",
			    tstr(l, ch->end, t2), tstr(l, ctx->now, t1));
	if (same_place && ch->end == a->end)
		return fail(err, ERR_INVALID_WINDOW, NULL, "the new shape of %s is its present one",
			    id);
	return 0;
}

/*
 * Rules 1-5 for the new shape, as for a booking of it, with the
 * allocation's own shape taken out of its timelines and its quota for the
 * time of the check (and put back, exactly, either way): it does not
 * stand in its own way. The phase is the allocation's: a change that
 * would move it into another is crosses_phase.
 */
static int modify_rules(struct ledger *l, struct change *ch, struct ledger_error *err)
{
	struct live *a = ch->a;
	const struct place *pl = place_of(l, a);
	struct balance *bal = bal_get(l, pl->consortium, pl->phase, pl->gpu);
	const struct cfg_phase *ph = config_phase(l->cfg, pl->phase);
	char t1[TIME_BUFSZ], t2[TIME_BUFSZ], id[ALLOC_ID_BUFSZ];
	int rc;

	ch->as_req = (struct alloc_req){.consortium = pl->consortium, .pool = ch->pool->id,
					.gpus = ch->gpus, .start = ch->start, .end = ch->end};
	struct fit f = {.req = &ch->as_req, .only = ch->pool, .gpu = pl->gpu, .gpus = ch->gpus,
			.start = ch->start, .end = ch->end, .duration = ch->end - ch->start};
	if (find_consortium(l, pl->consortium, &f.c, err))
		return -EINVAL;
	if (ph != NULL && (ch->start < ph->start || ch->end > ph->end))
		return fail(err, ERR_CROSSES_PHASE, phase_end_details(l, ph),
			    "%s is booked in phase %s (%s to %s); its new window must stay inside it",
			    aid(a, id), ph->id, tstr(l, ph->start, t1), tstr(l, ph->end, t2));
	book(l, a, a->start, a->end, -1);
	bal->committed -= a->cost;
	rc = alloc_as_asked(l, &f, err);
	bal->committed += a->cost;
	book(l, a, a->start, a->end, 1);
	return rc;
}

/* Re-books the allocation in its new shape; one modify entry with the cost delta. */
static void modify_apply(struct ledger *l, const struct ledger_ctx *ctx,
			 const struct change *ch, struct jlist *out)
{
	struct live *a = ch->a;
	const struct place *pl = place_of(l, a);
	struct balance *bal = bal_get(l, pl->consortium, pl->phase, pl->gpu);
	int64_t cost = ch->gpus * (ch->end - ch->start);	/* rule 3 checked it */
	/* instants as in the canonical encoding: Unix seconds */
	json_t *old = json_pack("{s:s, s:I, s:I, s:I, s:I}", "pool", pl->pool,
				"gpus", (json_int_t)a->gpus, "start", (json_int_t)a->start,
				"end", (json_int_t)a->end, "cost", (json_int_t)a->cost);

	book(l, a, a->start, a->end, -1);
	use_book(l, a, a->start, a->end, -1);
	if (ch->gpus > INT32_MAX)
		abort();	/* rule 2 kept it within a pool, of at most 1e8 GPUs */
	a->place = place_get(l, pl->consortium, ch->pool->id, pl->gpu, pl->phase);
	pl = place_of(l, a);	/* the places may have moved */
	a->gpus = (int32_t)ch->gpus;
	a->start = ch->start;
	a->end = ch->end;
	a->booked_end = ch->end;
	int64_t delta = cost - a->cost;
	a->cost = cost;
	book(l, a, a->start, a->end, 1);
	use_book(l, a, a->start, a->end, 1);
	due_push(l, a, a->start);
	due_push(l, a, a->end);
	bal->committed += delta;

	struct jentry *e = entry_new(ctx, out, J_MODIFY, pl->consortium, pl->phase, pl->gpu,
				     ch->req->reason);
	entry_alloc(l, e, a);
	e->committed_delta = delta;
	e->extra = json_pack("{s:o}", "old", old);
	seal(l, e);
}

int ledger_modify(struct ledger *l, const struct ledger_ctx *ctx,
		  const struct modify_req *req, struct jlist *out, struct ledger_error *err)
{
	struct change ch = {.req = req};

	if (modify_target(l, ctx, &ch, err) || modify_rules(l, &ch, err))
		return -EINVAL;
	modify_apply(l, ctx, &ch, out);
	return 0;
}

/* --- pool cut --------------------------------------------------------- */

/*
 * Books what the pool's cuts take away afresh: from each cut on, the
 * configured capacity less the smallest cut so far (cuts only take away;
 * a later, larger one gives nothing back).
 */
static void pool_rephantom(struct pool_tl *pt, const struct cfg_pool *p)
{
	int64_t units = p->gpus_per_node > 1 ? p->gpus / p->gpus_per_node * p->gpus_per_node
					     : p->gpus;
	int64_t least = INT64_MAX;

	for (size_t i = 0; i < pt->n_lost; i++)
		timeline_add(pt->tl, pt->lost[i].start, pt->lost[i].end, -pt->lost[i].gpus);
	pt->n_lost = 0;
	for (size_t i = 0; i < pt->n_cuts; i++) {
		const struct pool_cut *c = &pt->cuts[i];
		int64_t end = i + 1 < pt->n_cuts ? pt->cuts[i + 1].at : TIME_MAX;
		least = c->gpus < least ? c->gpus : least;
		if (end <= c->at || units - least <= 0)
			continue;
		pt->lost = xreallocarray(pt->lost, pt->n_lost + 1, sizeof(*pt->lost));
		pt->lost[pt->n_lost++] = (struct lost){.start = c->at, .end = end,
						       .gpus = units - least};
		timeline_add(pt->tl, c->at, end, units - least);
	}
}

/* Adds a cut in order of its instant (after any at the same one) and books it. */
static void pool_add_cut(struct ledger *l, const struct cfg_pool *p, int64_t at, int64_t gpus)
{
	struct pool_tl *pt = pool_get(l, p->id);
	size_t i = pt->n_cuts;

	pt->cuts = xreallocarray(pt->cuts, pt->n_cuts + 1, sizeof(*pt->cuts));
	while (i > 0 && pt->cuts[i - 1].at > at) {
		pt->cuts[i] = pt->cuts[i - 1];
		i--;
	}
	pt->cuts[i] = (struct pool_cut){.at = at, .gpus = gpus};
	pt->n_cuts++;
	pool_rephantom(pt, p);
}

int ledger_load_pool_cut(struct ledger *l, const char *pool, int64_t at, int64_t gpus,
			 char **cause)
{
	const struct cfg_pool *p = pool ? config_pool(l->cfg, pool) : NULL;

	if (p == NULL || gpus < 0) {
		*cause = xasprintf("the journal cuts pool '%s', which the configuration lacks",
				   pool ? pool : "");
		return -EINVAL;
	}
	pool_add_cut(l, p, at, gpus);
	return 0;
}

/* What a cut names exists, takes effect from now on, in whole nodes, and takes GPUs away. */
static int cut_ok(const struct ledger *l, const struct ledger_ctx *ctx,
		  const struct pool_cut_req *req, const struct cfg_pool **out,
		  struct ledger_error *err)
{
	const struct cfg_pool *p = req->pool ? config_pool(l->cfg, req->pool) : NULL;
	char t1[TIME_BUFSZ], t2[TIME_BUFSZ];

	*out = p;
	if (p == NULL)
		return fail(err, ERR_NOT_FOUND, NULL, "no pool '%s'", req->pool ? req->pool : "");
	if (req->at < ctx->now)
		return fail(err, ERR_INVALID_WINDOW, json_pack("{s:s}", "now", tstr(l, ctx->now, t1)),
			    "a cut takes effect from now on; %s is in the past (now is %s)",
			    tstr(l, req->at, t2), tstr(l, ctx->now, t1));
	if (req->gpus < 0)
		return fail(err, ERR_INVALID_AMOUNT, NULL, "gpus must be 0 or more");
	if (p->gpus_per_node > 1 && req->gpus % p->gpus_per_node != 0)
		return fail(err, ERR_NOT_WHOLE_NODES,
			    json_pack("{s:I}", "gpus_per_node", (json_int_t)p->gpus_per_node),
			    "pool %s has whole nodes of %" PRId64 " GPUs; %" PRId64 " is not a multiple",
			    p->id, p->gpus_per_node, req->gpus);
	/* capacity never grows after a cut, nor after the lease's end */
	int64_t cap = pool_capacity_at(l, p, req->at);
	if (req->gpus >= cap)
		return fail(err, ERR_INVALID_AMOUNT,
			    json_pack("{s:I}", "capacity", (json_int_t)cap),
			    "pool %s holds %" PRId64 " GPUs from %s; a cut to %" PRId64 " takes nothing away",
			    p->id, cap, tstr(l, req->at, t1), req->gpus);
	return 0;
}

/*
 * The allocations that no longer fit, newest first: each that is over
 * the new capacity somewhere in its time from the cut on is cut at it, or
 * revoked whole when it starts there or later (refunds as rule 8's). Any
 * instant still overbooked is inside an allocation not yet visited, so
 * one pass leaves the pool within its capacity.
 */
static void cut_allocs(struct ledger *l, const struct ledger_ctx *ctx, const struct cfg_pool *p,
		       int64_t at, const char *reason, struct jlist *out)
{
	struct timeline *tl = pool_tl(l, p->id);
	struct capacity cap = pool_capacity(p);
	size_t n;
	struct live *v = live_all(l, &n);

	for (size_t i = n; i-- > 0;) {
		struct live *a = &v[i];
		if (a->gone || strcmp(place_of(l, a)->pool, p->id) != 0 || a->end <= at ||
		    timeline_fits(tl, &cap, 0, later(at, a->start), a->end))
			continue;
		bool whole = a->start >= at;
		cut_at(l, ctx, a, whole ? a->start : at, ALLOC_REVOKED, J_REVOKE, reason, out);
		if (whole || at <= ctx->now)
			alloc_remove(l, a);
	}
}

int ledger_pool_cut(struct ledger *l, const struct ledger_ctx *ctx,
		    const struct pool_cut_req *req, struct jlist *out, struct ledger_error *err)
{
	const struct cfg_pool *p;

	if (cut_ok(l, ctx, req, &p, err))
		return -EINVAL;
	struct jentry *e = entry_new(ctx, out, J_POOL_CUT, NULL, NULL, p->gpu, req->reason);
	e->pool = xstrdup(p->id);
	e->gpus = req->gpus;
	e->start = req->at;
	seal(l, e);
	pool_add_cut(l, p, req->at, req->gpus);
	cut_allocs(l, ctx, p, req->at, req->reason, out);
	live_compact(l);
	return 0;
}

/* --- phase move ------------------------------------------------------- */

/* Records a move and makes the rules read it. */
static int phase_move_add(struct ledger *l, const char *phase, int64_t end, const char *next,
			  const char **why)
{
	l->moves = xreallocarray(l->moves, l->n_moves + 1, sizeof(*l->moves));
	l->moves[l->n_moves++] = (struct phase_move){.phase = xstrdup(phase), .end = end,
						     .next = next ? xstrdup(next) : NULL};
	if (ledger_use_config(l, l->file, why) == 0)
		return 0;
	l->n_moves--;
	free(l->moves[l->n_moves].phase);
	free(l->moves[l->n_moves].next);
	return -EINVAL;
}

int ledger_load_phase_move(struct ledger *l, const char *phase, int64_t end, const char *next,
			   char **cause)
{
	const char *why;

	if (phase == NULL || phase_move_add(l, phase, end, next, &why) != 0) {
		*cause = xasprintf("the journal's move of phase '%s': %s", phase ? phase : "",
				   phase ? why : "no phase");
		return -EINVAL;
	}
	return 0;
}

/* A phase move as the checks see it. */
struct move {
	const struct phase_move_req *req;
	const struct cfg_phase *ph;
	const struct cfg_phase *next;	/* the phase that starts at the old end, or NULL */
	int64_t old_end;
};

/* The new end: after the start, from now on, short of the next phase's end and of any gap's. */
static int move_window(const struct ledger *l, const struct ledger_ctx *ctx, struct move *m,
		       struct ledger_error *err)
{
	const struct phase_move_req *req = m->req;
	char t1[TIME_BUFSZ], t2[TIME_BUFSZ];

	m->ph = req->phase ? config_phase(l->cfg, req->phase) : NULL;
	if (m->ph == NULL)
		return fail(err, ERR_NOT_FOUND, NULL, "no phase '%s'", req->phase ? req->phase : "");
	m->old_end = m->ph->end;
	size_t i = (size_t)(m->ph - l->cfg->phases);
	const struct cfg_phase *after = i + 1 < l->cfg->n_phases ? m->ph + 1 : NULL;
	m->next = after && after->start == m->ph->end ? after : NULL;
	if (req->end == m->ph->end)
		return fail(err, ERR_INVALID_WINDOW, NULL, "phase %s already ends at %s",
			    m->ph->id, tstr(l, req->end, t1));
	if (req->end <= m->ph->start)
		return fail(err, ERR_INVALID_WINDOW, NULL, "phase %s starts at %s; it cannot end at %s",
			    m->ph->id, tstr(l, m->ph->start, t1), tstr(l, req->end, t2));
	if (req->end < ctx->now)
		return fail(err, ERR_INVALID_WINDOW, json_pack("{s:s}", "now", tstr(l, ctx->now, t1)),
			    "a phase boundary moves from now on; %s is in the past (now is %s)",
			    tstr(l, req->end, t2), tstr(l, ctx->now, t1));
	if (m->next && req->end >= m->next->end)
		return fail(err, ERR_INVALID_WINDOW, NULL,
			    "phase %s, which starts at the end of %s, ends at %s; the boundary must stay before it",
			    m->next->id, m->ph->id, tstr(l, m->next->end, t1));
	if (after && !m->next && req->end > after->start)
		return fail(err, ERR_INVALID_WINDOW, NULL, "phase %s starts at %s; %s cannot end after it",
			    after->id, tstr(l, after->start, t1), m->ph->id);
	return 0;
}

/*
 * Whether a would cross the new boundary: of the phase, one running past
 * it or starting at or after it (an earlier end); of the next phase, one
 * starting before it (a later end).
 */
static bool move_crosses(const struct ledger *l, const struct move *m, const struct live *a)
{
	int64_t t = m->req->end;
	const char *phase = place_of(l, a)->phase;
	if (a->gone)
		return false;
	if (strcmp(phase, m->ph->id) == 0)
		return a->end > t;
	return m->next && strcmp(phase, m->next->id) == 0 && a->start < t;
}

/* Rule 1 for what is booked: refused, naming the bookings, unless cut. */
static int move_bookings(const struct ledger *l, const struct move *m, int64_t now,
			 struct ledger_error *err)
{
	char t[TIME_BUFSZ];
	json_t *ids = json_array();
	struct buf list = {0};
	bool started = false;	/* of the next phase, before its new start: no cut undoes that */
	size_t n;
	const struct live *v = live_all(l, &n);
	char id[ALLOC_ID_BUFSZ];

	for (size_t i = 0; i < n; i++)
		if (move_crosses(l, m, &v[i])) {
			const struct live *a = &v[i];
			json_array_append_new(ids, json_string(aid(a, id)));
			buf_printf(&list, "%s%s", list.len ? ", " : "", id);
			started |= strcmp(place_of(l, a)->phase, m->ph->id) != 0 && a->start < now;
		}
	if (json_array_size(ids) == 0 || (m->req->cut && !started)) {
		json_decref(ids);
		buf_free(&list);
		return 0;
	}
	json_t *d = json_pack("{s:s, s:s, s:o}", "phase", m->ph->id,
			      "phase_end", tstr(l, m->req->end, t), "allocations", ids);
	int rc = fail(err, ERR_CROSSES_PHASE, d,
		      "%zu allocation%s would cross the new end of phase %s at %s: %s (%s)",
		      json_array_size(ids), json_array_size(ids) == 1 ? "" : "s", m->ph->id, t,
		      list.data, started ? "one of the next phase has started already"
					 : "--cut cuts them there");
	buf_free(&list);
	return rc;
}

/*
 * With --cut: those of the phase that run past the boundary end there, the
 * rest (starting at or after it, or in the next phase before it) are
 * revoked whole, with refunds.
 */
static void move_cut(struct ledger *l, const struct ledger_ctx *ctx, const struct move *m,
		     struct jlist *out)
{
	int64_t t = m->req->end;
	size_t n;
	struct live *v = live_all(l, &n);

	for (size_t i = n; i-- > 0;) {
		struct live *a = &v[i];
		if (!move_crosses(l, m, a))
			continue;
		bool whole = strcmp(place_of(l, a)->phase, m->ph->id) != 0 || a->start >= t;
		cut_at(l, ctx, a, whole ? a->start : t, ALLOC_REVOKED, J_REVOKE, m->req->reason, out);
		if (whole || t <= ctx->now)
			alloc_remove(l, a);
	}
}

/* Rule 9 undone: a phase that ended and goes on again gets its expired quota back. */
static void move_unexpire(struct ledger *l, const struct ledger_ctx *ctx, const struct move *m,
			  struct jlist *out)
{
	if (m->old_end > ctx->now || m->req->end <= m->old_end)
		return;
	for (size_t i = 0; i < l->n_bals; i++) {
		struct balance *b = l->bals[i];
		if (strcmp(b->phase, m->ph->id) != 0 || b->expired <= 0)
			continue;
		struct jentry *e = entry_new(ctx, out, J_EXPIRE, b->consortium, b->phase, b->gpu,
					     "phase moved");
		e->expired_delta = -b->expired;
		seal(l, e);
		b->expired = 0;
	}
}

int ledger_phase_move(struct ledger *l, const struct ledger_ctx *ctx,
		      const struct phase_move_req *req, struct jlist *out,
		      struct ledger_error *err)
{
	struct move m = {.req = req};
	const char *why;

	if (move_window(l, ctx, &m, err) || move_bookings(l, &m, ctx->now, err))
		return -EINVAL;
	/* the config's pointers change with the move: keep the ids */
	char *phase = xstrdup(m.ph->id), *next = m.next ? xstrdup(m.next->id) : NULL;
	struct jentry *e = entry_new(ctx, out, J_PHASE, NULL, phase, NULL, req->reason);
	e->start = m.ph->start;
	e->end = req->end;
	e->extra = json_pack("{s:I, s:s?, s:b}", "old_end", (json_int_t)m.old_end,
			     "next", next, "cut", req->cut);
	seal(l, e);
	move_cut(l, ctx, &m, out);
	live_compact(l);
	if (phase_move_add(l, phase, req->end, next, &why) != 0)
		abort();	/* move_window() kept the phases apart */
	m.ph = config_phase(l->cfg, phase);
	move_unexpire(l, ctx, &m, out);
	free(phase);
	free(next);
	return 0;
}

/* --- eliminate, reinstate ---------------------------------------------- */

/*
 * Rule 8: a decision recorded late may take effect up to
 * program.retroactive_days in the past, and no further.
 */
static int effective_recent(const struct ledger *l, const struct ledger_ctx *ctx,
			    int64_t effective, struct ledger_error *err)
{
	char t1[TIME_BUFSZ], t2[TIME_BUFSZ];
	int64_t back = l->cfg->retroactive_days * 86400;	/* <= 3650 days: no overflow */

	if (effective >= ctx->now || ctx->now - effective <= back)
		return 0;
	return fail(err, ERR_INVALID_WINDOW,
		    json_pack("{s:I}", "retroactive_days", (json_int_t)l->cfg->retroactive_days),
		    "the effective time %s is more than %" PRId64 " day%s in the past (now is %s)",
		    tstr(l, effective, t1), l->cfg->retroactive_days,
		    l->cfg->retroactive_days == 1 ? "" : "s", tstr(l, ctx->now, t2));
}

/* Rule 8: an effective time not too far back, for a consortium not already out. */
static int eliminate_ok(const struct ledger *l, const struct ledger_ctx *ctx,
			const struct cfg_consortium *c, int64_t effective,
			struct ledger_error *err)
{
	const struct cstate *cs = cs_find(l, c->id);
	char t1[TIME_BUFSZ], t2[TIME_BUFSZ];

	if (effective_recent(l, ctx, effective, err))
		return -EINVAL;
	if (cs && cs->status == CS_ELIMINATED)
		return fail(err, ERR_BAD_STATE,
			    json_pack("{s:s}", "eliminated_at", tstr(l, cs->since, t1)),
			    "%s is already eliminated since %s", c->id, tstr(l, cs->since, t2));
	/* nor before the reinstatement that began the current active stretch */
	if (cs && cs->since != TIME_MIN && effective < cs->since)
		return fail(err, ERR_INVALID_WINDOW, NULL, "%s is reinstated only from %s",
			    c->id, tstr(l, cs->since, t1));
	return 0;
}

/*
 * designation_until = T + designation_grace_days; 0 days: the title ends
 * with the team. Past the year 9999 it is the last instant the ledger holds.
 */
static int64_t designation_until(const struct ledger *l, int64_t effective)
{
	int64_t grace, until;

	if (l->cfg->designation_grace_days == 0)
		return TIME_MIN;
	if (!i64_mul(l->cfg->designation_grace_days, 86400, &grace) ||
	    time_add(effective, grace, l->cfg->tz_offset, &until) != 0)
		return time_last(l->cfg->tz_offset);
	return until;
}

/*
 * Rule 8: allocations starting at or after T are revoked whole and leave
 * memory; those running at T are cut at T and stay until they end. An
 * elimination in the past refunds only from now: what ran was used.
 */
static void revoke_allocs(struct ledger *l, const struct ledger_ctx *ctx, const char *c,
			  int64_t effective, const char *reason, struct jlist *out)
{
	int64_t cut = later(effective, ctx->now);
	size_t n;
	struct live *v = live_all(l, &n);

	for (size_t i = 0; i < n; i++) {
		struct live *a = &v[i];
		if (a->gone || strcmp(place_of(l, a)->consortium, c) != 0 || a->end <= cut)
			continue;
		bool whole = a->start >= cut;
		cut_at(l, ctx, a, whole ? a->start : cut, ALLOC_REVOKED, J_REVOKE, reason,
		       out);
		/* revoked whole, or cut at now (a past T): it is over, as a reload would see */
		if (whole || cut <= ctx->now)
			alloc_remove(l, a);
	}
	live_compact(l);
}

/*
 * Rule 8: the available quota of phases that start after T; the team is
 * out for all of them. The phase that runs at T, one that starts at T
 * included, keeps its quota, which expires at its end (rule 9).
 */
static void revoke_quota(struct ledger *l, const struct ledger_ctx *ctx, const char *c,
			 int64_t effective, const char *reason, struct jlist *out)
{
	for (size_t i = 0; i < l->n_bals; i++) {
		struct balance *b = l->bals[i];
		const struct cfg_phase *ph = config_phase(l->cfg, b->phase);
		int64_t avail = available(b);
		if (strcmp(b->consortium, c) != 0 || ph == NULL || ph->start <= effective ||
		    avail <= 0)
			continue;
		struct jentry *e = entry_new(ctx, out, J_REVOKE, b->consortium, b->phase, b->gpu,
					     reason);
		e->granted_delta = -avail;
		seal(l, e);
		b->granted -= avail;
	}
}

int ledger_eliminate(struct ledger *l, const struct ledger_ctx *ctx,
		     const char *consortium, int64_t effective, const char *reason,
		     struct jlist *out, struct ledger_error *err)
{
	const struct cfg_consortium *c;

	if (find_consortium(l, consortium, &c, err) ||
	    eliminate_ok(l, ctx, c, effective, err))
		return -EINVAL;

	int64_t until = designation_until(l, effective);
	struct jentry *e = entry_new(ctx, out, J_ELIMINATE, c->id, NULL, NULL, reason);
	e->start = effective;
	e->end = until;
	seal(l, e);
	struct cstate *st = cs_get(l, c->id);
	st->status = CS_ELIMINATED;
	st->since = effective;
	st->designation_until = until;
	span_push(st, effective, TIME_MAX);

	revoke_allocs(l, ctx, c->id, effective, reason, out);
	revoke_quota(l, ctx, c->id, effective, reason, out);
	return 0;
}

/*
 * Rule 8: reinstate from T2, not before the elimination and, like an
 * elimination, at most program.retroactive_days back.
 */
int ledger_reinstate(struct ledger *l, const struct ledger_ctx *ctx,
		     const char *consortium, int64_t effective, const char *reason,
		     struct jlist *out, struct ledger_error *err)
{
	const struct cfg_consortium *c;
	char t1[TIME_BUFSZ], t2[TIME_BUFSZ];

	if (find_consortium(l, consortium, &c, err))
		return -EINVAL;
	const struct cstate *cs = cs_find(l, c->id);
	if (cs == NULL || cs->status != CS_ELIMINATED)
		return fail(err, ERR_BAD_STATE, NULL, "%s is not eliminated", c->id);
	if (effective_recent(l, ctx, effective, err))
		return -EINVAL;
	if (effective < cs->since)
		return fail(err, ERR_INVALID_WINDOW, NULL,
			    "the effective time %s is before the elimination (%s)",
			    tstr(l, effective, t1), tstr(l, cs->since, t2));

	struct jentry *e = entry_new(ctx, out, J_REINSTATE, c->id, NULL, NULL, reason);
	e->start = effective;
	seal(l, e);
	struct cstate *st = cs_get(l, c->id);
	st->status = CS_ACTIVE;
	st->since = effective;
	st->designation_until = TIME_MIN;
	st->active_from = effective;
	/* the elimination's span ends here; the stretch before it stays whole */
	if (st->n_spans == 0)
		abort();	/* an eliminated consortium has its span */
	st->spans[st->n_spans - 1].until = effective;
	if (effective == st->spans[st->n_spans - 1].from)
		st->n_spans--;	/* reinstated as it took effect: never out */
	return 0;
}

/* --- metered use ------------------------------------------------------- */

/* What the report names exists: the consortium, the phase, the GPU model. */
static int usage_target(const struct ledger *l, const struct usage_req *req,
			struct ledger_error *err)
{
	const struct cfg_consortium *c;

	if (find_consortium(l, req->consortium, &c, err))
		return -EINVAL;
	if (req->phase == NULL || config_phase(l->cfg, req->phase) == NULL)
		return fail(err, ERR_UNKNOWN_PHASE, NULL, "no phase '%s'",
			    req->phase ? req->phase : "");
	if (req->gpu == NULL || !config_has_gpu(l->cfg, req->gpu))
		return fail(err, ERR_UNKNOWN_GPU, NULL, "no pool has GPU model '%s'",
			    req->gpu ? req->gpu : "");
	return 0;
}

/* A measured amount: not negative, and the key's sum stays exact. */
static int usage_amount(const struct ledger *l, const struct usage_req *req,
			struct ledger_error *err)
{
	const struct balance *b = bal_find(l, req->consortium, req->phase, req->gpu);
	int64_t sum;

	if (req->gpu_seconds < 0)
		return fail(err, ERR_INVALID_AMOUNT,
			    json_pack("{s:I}", "gpu_seconds", (json_int_t)req->gpu_seconds),
			    "gpu_seconds must be 0 or more (got %" PRId64 ")", req->gpu_seconds);
	if (!i64_add(b ? b->used : 0, req->gpu_seconds, &sum) || sum > INT64_MAX / 4)
		return fail(err, ERR_INVALID_AMOUNT, NULL,
			    "the metered use would overflow the ledger");
	return 0;
}

static void usage_apply(struct ledger *l, const struct ledger_ctx *ctx,
			const struct usage_req *req, struct jlist *out)
{
	struct balance *b = bal_get(l, req->consortium, req->phase, req->gpu);
	struct jentry *e = entry_new(ctx, out, J_USAGE, req->consortium, req->phase, req->gpu,
				     NULL);

	if (req->allocation) {
		e->allocation = xstrdup(req->allocation);
		e->pool = req->pool ? xstrdup(req->pool) : NULL;
	}
	e->end = req->end;
	e->extra = jentry_usage_extra(req->source, req->job_id, req->gpu_seconds);
	seal(l, e);
	b->used += req->gpu_seconds;
}

int ledger_usage(struct ledger *l, const struct ledger_ctx *ctx,
		 const struct usage_req *req, struct jlist *out,
		 struct ledger_error *err)
{
	if (usage_target(l, req, err) || usage_amount(l, req, err))
		return -EINVAL;
	usage_apply(l, ctx, req, out);
	return 0;
}

/* --- time -------------------------------------------------------------- */

/* Rule 9: at a phase's end its still-available quota expires. */
static int expire_ended_phases(struct ledger *l, const struct ledger_ctx *ctx,
			       struct jlist *out)
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
	return n;
}

/*
 * Completed allocations leave memory, and the past leaves the timelines;
 * the store keeps both. Every live allocation has its end queued, so
 * visiting what is due at or before now finds every one that ended.
 */
static void forget_past(struct ledger *l, int64_t now)
{
	size_t keep = 0;

	due_ripen(l, now);
	for (size_t i = 0; i < l->ripe.n; i++) {
		struct due d = l->ripe.v[i];
		if (d.at > now) {
			l->ripe.v[keep++] = d;	/* ripened by a next_due further ahead */
			continue;
		}
		struct live *a = due_alloc(l, d);
		if (a != NULL && a->end <= now)
			alloc_remove(l, a);
	}
	l->ripe.n = keep;
	live_compact(l);
	for (size_t i = 0; i < l->n_pools; i++)
		timeline_prune(l->pools[i].tl, now);
	for (size_t i = 0; i < l->n_caps; i++)
		timeline_prune(l->caps[i].tl, now);
}

int ledger_tick(struct ledger *l, const struct ledger_ctx *ctx, struct jlist *out)
{
	int n = expire_ended_phases(l, ctx, out);
	forget_past(l, ctx->now);
	return n;
}

/* The phases are the configuration's few; the allocations come from the queue. */
int64_t ledger_next_due(const struct ledger *l, int64_t now)
{
	int64_t next = TIME_MAX;

	for (size_t i = 0; i < l->cfg->n_phases; i++)
		if (l->cfg->phases[i].end > now && l->cfg->phases[i].end < next)
			next = l->cfg->phases[i].end;
	due_ripen(l, now);
	if (l->due.n > 0 && l->due.v[0].at < next)
		next = l->due.v[0].at;
	/* a reader may have asked further ahead without a tick between */
	for (size_t i = 0; i < l->ripe.n; i++) {
		struct due d = l->ripe.v[i];
		if (d.at > now && d.at < next && due_alloc(l, d) != NULL)
			next = d.at;
	}
	return next;
}

static int num_cmp(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return (a > b) - (a < b);
}

size_t ledger_due_at(struct ledger *l, int64_t t, const struct alloc *const **out)
{
	size_t n = 0;
	int64_t *nums;

	due_ripen(l, t);
	nums = xreallocarray(NULL, l->ripe.n + 1, sizeof(*nums));
	for (size_t i = 0; i < l->ripe.n; i++)
		if (l->ripe.v[i].at == t && due_alloc(l, l->ripe.v[i]) != NULL)
			nums[n++] = l->ripe.v[i].num;
	qsort(nums, n, sizeof(*nums), num_cmp);
	l->fired = xreallocarray(l->fired, n + 1, sizeof(*l->fired));
	l->fired_ptrs = xreallocarray(l->fired_ptrs, n + 1, sizeof(*l->fired_ptrs));
	l->n_fired = 0;
	for (size_t i = 0; i < n; i++) {	/* an instant queued twice is one transition */
		if (i > 0 && nums[i] == nums[i - 1])
			continue;
		l->fired_ptrs[l->n_fired] = view_fill(l, live_num(l, nums[i]),
						      &l->fired[l->n_fired]);
		l->n_fired++;
	}
	free(nums);
	*out = (const struct alloc *const *)l->fired_ptrs;
	return l->n_fired;
}

/* --- reads ------------------------------------------------------------- */

int64_t ledger_consumed(const struct ledger *l, const struct balance *b, int64_t now)
{
	const struct use_tl *u = use_find(l, b->consortium, b->phase, b->gpu);
	return b->committed - (u ? use_after(u, now) : 0);
}

static size_t index_of_consortium(const struct config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->n_consortia; i++)
		if (strcmp(cfg->consortia[i].id, id) == 0)
			return i;
	return SIZE_MAX;
}

static size_t index_of_phase(const struct config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->n_phases; i++)
		if (strcmp(cfg->phases[i].id, id) == 0)
			return i;
	return SIZE_MAX;
}

/* Display order: consortia and phases as the config lists them, then GPU model. */
static int bal_cmp(const void *x, const void *y, void *arg)
{
	const struct config *cfg = arg;
	const struct balance *a = *(const struct balance *const *)x;
	const struct balance *b = *(const struct balance *const *)y;
	size_t ca = index_of_consortium(cfg, a->consortium);
	size_t cb = index_of_consortium(cfg, b->consortium);
	if (ca != cb)
		return ca < cb ? -1 : 1;
	size_t pa = index_of_phase(cfg, a->phase), pb = index_of_phase(cfg, b->phase);
	if (pa != pb)
		return pa < pb ? -1 : 1;
	return strcmp(a->gpu, b->gpu);
}

size_t ledger_balances(const struct ledger *l, const struct balance ***out)
{
	struct ledger *m = (struct ledger *)l;	/* sorting is a cache */
	if (!m->bals_sorted && m->n_bals > 0) {	/* qsort(NULL, 0) is undefined */
		qsort_r(m->bals, m->n_bals, sizeof(*m->bals), bal_cmp, (void *)l->cfg);
		m->bals_sorted = true;
	}
	*out = (const struct balance **)m->bals;
	return l->n_bals;
}

/* --- configuration swap ------------------------------------------------ */

/* Every consortium and phase the ledger has rows of is still configured. */
static int config_keeps_rows(const struct ledger *l, const struct config *cfg,
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
		if (!config_has_gpu(cfg, b->gpu))
			return fail(err, ERR_CONFLICT, NULL,
				    "GPU model %s has ledger rows and cannot lose its last pool", b->gpu);
	}
	for (size_t i = 0; i < l->n_cstates; i++)
		if (config_consortium(cfg, l->cstates[i].consortium) == NULL)
			return fail(err, ERR_CONFLICT, NULL,
				    "consortium '%s' has ledger rows and cannot be removed",
				    l->cstates[i].consortium);
	return 0;
}

/* A place as cfg sees it: looked up once for all the allocations booked there. */
struct place_cfg {
	bool pool_ok;		/* the pool is there, with the place's GPU model */
	const struct cfg_phase *ph;
	const struct cfg_consortium *c;
};

/* Every live allocation keeps its pool, its GPU model, rule 1 and its consortium's joining. */
static int config_keeps_allocs(const struct ledger *l, const struct config *cfg,
			       struct ledger_error *err)
{
	struct place_cfg *pc = xreallocarray(NULL, l->n_places + 1, sizeof(*pc));
	char id[ALLOC_ID_BUFSZ];
	size_t n;
	const struct live *v = live_all(l, &n);
	int rc = 0;

	for (size_t i = 0; i < l->n_places; i++) {
		const struct place *pl = &l->places[i];
		const struct cfg_pool *p = config_pool(cfg, pl->pool);
		pc[i] = (struct place_cfg){.pool_ok = p != NULL && strcmp(p->gpu, pl->gpu) == 0,
					   .ph = config_phase(cfg, pl->phase),
					   .c = config_consortium(cfg, pl->consortium)};
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct live *a = &v[i];
		const struct place *pl = place_of(l, a);
		const struct place_cfg *k = &pc[a->place];
		if (a->gone)
			continue;
		if (!k->pool_ok)
			rc = fail(err, ERR_CONFLICT, NULL,
				  "pool '%s' holds live allocation %s and cannot be removed or change its GPU model",
				  pl->pool, aid(a, id));
		else if (k->ph == NULL || a->start < k->ph->start || a->end > k->ph->end)
			rc = fail(err, ERR_CONFLICT, NULL,
				  "live allocation %s would no longer lie inside phase '%s'",
				  aid(a, id), pl->phase);
		else if (k->c == NULL || a->start < k->c->joined)
			rc = fail(err, ERR_CONFLICT, NULL,
				  "live allocation %s would start before consortium '%s' joined",
				  aid(a, id), pl->consortium);
	}
	free(pc);
	return rc;
}

/* A pool's timeline checked against a capacity, step by step. */
struct hold {
	const struct timeline *tl;
	const struct pool_tl *pt;
	const struct capacity *cap;
	bool ok;
};

/*
 * One step of the timeline, cut where the pool's cuts begin or end: where
 * allocations are booked (the level above what the cuts book), it fits.
 */
static void hold_step(void *arg, int64_t start, int64_t end, int64_t level)
{
	struct hold *h = arg;

	for (int64_t s = start; s < end && h->ok;) {
		int64_t e = end;
		for (size_t i = 0; i < h->pt->n_lost; i++) {
			const struct lost *lo = &h->pt->lost[i];
			if (lo->start > s && lo->start < e)
				e = lo->start;
			if (lo->end > s && lo->end < e)
				e = lo->end;
		}
		if (level - lost_at(h->pt, s) > 0 && !timeline_fits(h->tl, h->cap, 0, s, e))
			h->ok = false;
		s = e;
	}
}

/*
 * Rule 2 under the new capacities: every step of what is booked still
 * fits. The steps where allocations are booked are exactly the union of
 * their windows (after the horizon; before it nothing is booked), so one
 * walk over the timeline's points checks them all; only a refusal looks
 * for the first allocation to name.
 */
static int config_capacity_holds(struct ledger *l, const struct config *cfg,
				 struct ledger_error *err)
{
	char id[ALLOC_ID_BUFSZ];

	for (size_t i = 0; i < cfg->n_pools; i++) {
		const struct cfg_pool *p = &cfg->pools[i];
		struct capacity pc = pool_capacity(p);
		struct timeline *tl = pool_tl(l, p->id);
		struct hold h = {.tl = tl, .pt = pool_find(l, p->id), .cap = &pc, .ok = true};
		timeline_steps(tl, TIME_MIN, TIME_MAX, hold_step, &h);
		if (h.ok)
			continue;
		size_t n;
		const struct live *v = live_all(l, &n);
		for (size_t j = 0; j < n; j++) {
			const struct live *a = &v[j];
			if (!a->gone && strcmp(place_of(l, a)->pool, p->id) == 0 &&
			    !timeline_fits(tl, &pc, 0, a->start, a->end))
				return fail(err, ERR_CONFLICT, NULL,
					    "the new capacity of pool '%s' would overbook live allocation %s",
					    p->id, aid(a, id));
		}
		abort();	/* a step of booked GPUs over capacity lies in some window */
	}
	return 0;
}

/* The checks read cfg as the rules will: with the journal's phase moves. */
int ledger_check_config(struct ledger *l, const struct config *cfg,
			struct ledger_error *err)
{
	struct config eff;
	const char *why;
	int rc = -EINVAL;

	if (effective_config(cfg, l->moves, l->n_moves, &eff, &why) != 0)
		return fail(err, ERR_CONFLICT, NULL, "%s", why);
	if (config_keeps_rows(l, &eff, err) == 0 && config_keeps_allocs(l, &eff, err) == 0 &&
	    config_capacity_holds(l, &eff, err) == 0)
		rc = 0;
	free(eff.phases);
	return rc;
}

int ledger_set_config(struct ledger *l, const struct config *cfg,
		      struct ledger_error *err)
{
	const char *why;

	if (ledger_check_config(l, cfg, err) != 0)
		return -EINVAL;
	if (ledger_use_config(l, cfg, &why) != 0)
		abort();	/* ledger_check_config() applied the same moves */
	return 0;
}
