/* SPDX-License-Identifier: MIT */
/*
 * The journal folded up to an instant: balances by their deltas, and the
 * allocations of reserve entries, with the later end a release, a
 * revocation or a cancellation gave them, for what had run by then. A
 * balance row is found by a linear search (a program has tens of keys);
 * allocations come in number order, so they are appended and found by
 * binary search.
 */
#include "daemon/history.h"
#include "daemon/grammar.h"
#include "daemon/util.h"

#include <stdlib.h>
#include <string.h>

struct hist_alloc {
	int64_t num;
	size_t row;		/* index of its balance in rows */
	int64_t gpus;
	int64_t start;
	int64_t end;		/* start once cancelled: nothing ran */
};

struct history {
	int64_t at;
	struct history_row *rows;
	size_t n_rows;
	struct hist_alloc *allocs;
	size_t n_allocs;
	const struct history_row **sorted;
};

struct history *history_new(int64_t at)
{
	struct history *h = xcalloc(1, sizeof(*h));
	h->at = at;
	return h;
}

void history_free(struct history *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->n_rows; i++)
		balance_clear(&h->rows[i].b);
	free(h->rows);
	free(h->allocs);
	free(h->sorted);
	free(h);
}

static size_t row_get(struct history *h, const char *c, const char *p, const char *g)
{
	for (size_t i = 0; i < h->n_rows; i++) {
		const struct balance *b = &h->rows[i].b;
		if (strcmp(b->consortium, c) == 0 && strcmp(b->phase, p) == 0 &&
		    strcmp(b->gpu, g) == 0)
			return i;
	}
	h->rows = xreallocarray(h->rows, h->n_rows + 1, sizeof(*h->rows));
	struct history_row *r = &h->rows[h->n_rows];
	memset(r, 0, sizeof(*r));
	r->b.consortium = xstrdup(c);
	r->b.phase = xstrdup(p);
	r->b.gpu = xstrdup(g);
	return h->n_rows++;
}

static struct hist_alloc *alloc_find(struct history *h, const char *id)
{
	int64_t num;
	size_t lo = 0, hi = h->n_allocs;

	if (id == NULL || alloc_id_parse(id, &num) != 0)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (h->allocs[mid].num < num)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < h->n_allocs && h->allocs[lo].num == num ? &h->allocs[lo] : NULL;
}

static void alloc_track(struct history *h, const struct jentry *e, size_t row)
{
	int64_t num;
	struct hist_alloc *a;

	switch (e->kind) {
	case J_RESERVE:
		/* numbers grow with seq; a journal that says otherwise fails verify */
		if (alloc_id_parse(e->allocation, &num) != 0 ||
		    (h->n_allocs > 0 && h->allocs[h->n_allocs - 1].num >= num))
			return;
		h->allocs = xreallocarray(h->allocs, h->n_allocs + 1, sizeof(*h->allocs));
		h->allocs[h->n_allocs++] = (struct hist_alloc){
			.num = num, .row = row, .gpus = e->gpus, .start = e->start, .end = e->end};
		return;
	case J_CANCEL:
		if ((a = alloc_find(h, e->allocation)) != NULL)
			a->end = a->start;
		return;
	case J_RELEASE:
	case J_REVOKE:
		if ((a = alloc_find(h, e->allocation)) != NULL)
			a->end = e->end;
		return;
	default:
		return;
	}
}

void history_entry(struct history *h, const struct jentry *e)
{
	if (e->time > h->at || e->consortium == NULL || e->phase == NULL || e->gpu == NULL)
		return;	/* later, or no balance (eliminate, reinstate, config, the reserve) */
	size_t row = row_get(h, e->consortium, e->phase, e->gpu);
	struct balance *b = &h->rows[row].b;
	/* the ledger kept every row within INT64_MAX / 4: these sums do not wrap */
	b->granted += e->granted_delta;
	b->committed += e->committed_delta;
	b->expired += e->expired_delta;
	if (e->kind == J_CAP)
		b->max_gpus = e->max_gpus;
	if (e->allocation != NULL)
		alloc_track(h, e, row);
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

/* The ledger's display order: consortia and phases as the config lists them, then GPU model. */
static int row_cmp(const void *x, const void *y, void *arg)
{
	const struct config *cfg = arg;
	const struct balance *a = &(*(const struct history_row *const *)x)->b;
	const struct balance *b = &(*(const struct history_row *const *)y)->b;
	size_t ca = index_of_consortium(cfg, a->consortium);
	size_t cb = index_of_consortium(cfg, b->consortium);
	if (ca != cb)
		return ca < cb ? -1 : 1;
	size_t pa = index_of_phase(cfg, a->phase), pb = index_of_phase(cfg, b->phase);
	if (pa != pb)
		return pa < pb ? -1 : 1;
	return strcmp(a->gpu, b->gpu);
}

size_t history_rows(struct history *h, const struct config *cfg,
		    const struct history_row *const **out)
{
	for (size_t i = 0; i < h->n_rows; i++)
		h->rows[i].consumed = 0;
	for (size_t i = 0; i < h->n_allocs; i++) {
		const struct hist_alloc *a = &h->allocs[i];
		int64_t until = a->end < h->at ? a->end : h->at;
		if (until > a->start)
			h->rows[a->row].consumed += a->gpus * (until - a->start);
	}
	free(h->sorted);
	h->sorted = xreallocarray(NULL, h->n_rows + 1, sizeof(*h->sorted));
	for (size_t i = 0; i < h->n_rows; i++)
		h->sorted[i] = &h->rows[i];
	if (h->n_rows > 0)
		qsort_r(h->sorted, h->n_rows, sizeof(*h->sorted), row_cmp, (void *)cfg);
	*out = h->sorted;
	return h->n_rows;
}
