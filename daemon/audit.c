/* SPDX-License-Identifier: MIT */
/*
 * The audit recomputes from the journal alone what the cached tables claim
 * (DESIGN.md: balances, consortium states and allocations are caches of
 * the journal), so that a tampered, truncated or reordered database shows
 * before the daemon serves from it. The hash chain is checked as entries
 * arrive; the cached rows are compared afterwards. Problems are collected
 * as text, capped so that a badly damaged database cannot make the answer
 * unbounded.
 */
#include "daemon/audit.h"
#include "daemon/util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Enough to point at the damage; a wholly corrupt journal would list every entry. */
#define MAX_PROBLEMS 100

struct audit_bal {
	struct balance b;
	bool seen;		/* matched by a cached row */
};

struct audit {
	int64_t entries;
	int64_t last_seq;
	uint8_t last_hash[HASH_LEN];
	struct jviews views;	/* each consortium's own chain, recomputed */
	int64_t first_bad;
	json_t *problems;
	struct audit_bal *bals;
	size_t n_bals;
};

struct audit *audit_new(void)
{
	struct audit *a = xcalloc(1, sizeof(*a));
	a->problems = json_array();
	return a;
}

void audit_free(struct audit *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->n_bals; i++)
		balance_clear(&a->bals[i].b);
	free(a->bals);
	jviews_clear(&a->views);
	json_decref(a->problems);
	free(a);
}

static void problem(struct audit *a, int64_t seq, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* seq > 0 names the journal entry at fault; 0 is a problem of the cache. */
static void problem(struct audit *a, int64_t seq, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (seq > 0 && a->first_bad == 0)
		a->first_bad = seq;
	if (json_array_size(a->problems) < MAX_PROBLEMS)
		json_array_append_new(a->problems, json_string(msg));
	free(msg);
}

static bool balance_nonzero(const struct balance *b)
{
	return b->granted || b->committed || b->expired || b->max_gpus;
}

static struct audit_bal *bal_find(struct audit *a, const char *c, const char *p,
				  const char *g)
{
	for (size_t i = 0; i < a->n_bals; i++) {
		struct balance *b = &a->bals[i].b;
		if (strcmp(b->consortium, c) == 0 && strcmp(b->phase, p) == 0 &&
		    strcmp(b->gpu, g) == 0)
			return &a->bals[i];
	}
	return NULL;
}

static struct audit_bal *bal_get(struct audit *a, const char *c, const char *p,
				 const char *g)
{
	struct audit_bal *ab = bal_find(a, c, p, g);
	if (ab)
		return ab;
	a->bals = xreallocarray(a->bals, a->n_bals + 1, sizeof(*a->bals));
	ab = &a->bals[a->n_bals++];
	memset(ab, 0, sizeof(*ab));
	ab->b.consortium = xstrdup(c);
	ab->b.phase = xstrdup(p);
	ab->b.gpu = xstrdup(g);
	return ab;
}

/*
 * The chain: consecutive seqs, each prev_hash the hash before, each hash
 * its contents, each view hash its consortium's chain. One problem per
 * entry, the most telling first: a gap also breaks the link, and reporting
 * both would hide which came first.
 */
static void check_chain(struct audit *a, const struct jentry *e)
{
	bool hash_ok, view_ok;

	jentry_check(e, &a->views, &hash_ok, &view_ok);

	if (e->seq != a->last_seq + 1)
		problem(a, e->seq > a->last_seq ? a->last_seq + 1 : e->seq,
			"seq %" PRId64 ": expected seq %" PRId64 " (an entry is missing or out of order)",
			e->seq, a->last_seq + 1);
	else if (memcmp(e->prev_hash, a->last_hash, HASH_LEN) != 0)
		problem(a, e->seq, "seq %" PRId64 ": prev_hash does not match the hash of the entry before",
			e->seq);
	else if (!hash_ok)
		problem(a, e->seq, "seq %" PRId64 ": hash does not match the entry's contents (the entry was altered)",
			e->seq);
	else if (!view_ok)
		problem(a, e->seq, "seq %" PRId64 ": view_hash does not match the chain of %s's entries",
			e->seq, e->consortium);
	a->last_seq = e->seq;
	memcpy(a->last_hash, e->hash, HASH_LEN);
}

/* The entry's amounts, added to its balance as the ledger did. */
static void apply_amounts(struct audit *a, const struct jentry *e)
{
	if (e->consortium == NULL || e->phase == NULL || e->gpu == NULL)
		return;		/* eliminate, reinstate: no balance */
	struct balance *b = &bal_get(a, e->consortium, e->phase, e->gpu)->b;
	if (!i64_add(b->granted, e->granted_delta, &b->granted) ||
	    !i64_add(b->committed, e->committed_delta, &b->committed) ||
	    !i64_add(b->expired, e->expired_delta, &b->expired))
		problem(a, e->seq, "seq %" PRId64 ": amounts overflow", e->seq);
	if (e->kind == J_CAP)
		b->max_gpus = e->max_gpus;
}

void audit_entry(struct audit *a, const struct jentry *e)
{
	a->entries++;
	check_chain(a, e);
	apply_amounts(a, e);
}

void audit_note(struct audit *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	problem(a, 0, "%s", msg);
	free(msg);
}

void audit_balance(struct audit *a, const struct balance *cached)
{
	struct audit_bal *ab = bal_find(a, cached->consortium, cached->phase, cached->gpu);
	if (ab == NULL) {
		/* an all-zero row claims nothing the journal could contradict */
		if (balance_nonzero(cached))
			problem(a, 0, "balance %s/%s/%s: cached but no journal entry made it",
				cached->consortium, cached->phase, cached->gpu);
		return;
	}
	ab->seen = true;
	const struct balance *b = &ab->b;
	if (b->granted != cached->granted || b->committed != cached->committed ||
	    b->expired != cached->expired || b->max_gpus != cached->max_gpus)
		problem(a, 0, "balance %s/%s/%s: cached granted/committed/expired/max_gpus "
			"%" PRId64 "/%" PRId64 "/%" PRId64 "/%" PRId64 " but the journal gives "
			"%" PRId64 "/%" PRId64 "/%" PRId64 "/%" PRId64,
			cached->consortium, cached->phase, cached->gpu,
			cached->granted, cached->committed, cached->expired, cached->max_gpus,
			b->granted, b->committed, b->expired, b->max_gpus);
}

void audit_alloc_cost(struct audit *a, const struct alloc *al, int64_t journal_sum)
{
	if (al->cost != journal_sum)
		problem(a, 0, "allocation %s: cached cost %" PRId64 " but the journal gives %" PRId64,
			al->id, al->cost, journal_sum);
}

void audit_finish(struct audit *a)
{
	for (size_t i = 0; i < a->n_bals; i++) {
		const struct audit_bal *ab = &a->bals[i];
		if (!ab->seen && balance_nonzero(&ab->b))
			problem(a, 0, "balance %s/%s/%s: the journal has it but the cache lacks it",
				ab->b.consortium, ab->b.phase, ab->b.gpu);
	}
}

bool audit_ok(const struct audit *a)
{
	return json_array_size(a->problems) == 0;
}

int64_t audit_entries(const struct audit *a)
{
	return a->entries;
}

int64_t audit_first_bad_seq(const struct audit *a)
{
	return a->first_bad;
}

json_t *audit_problems(const struct audit *a)
{
	return json_incref(a->problems);
}
