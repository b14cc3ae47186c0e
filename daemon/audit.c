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
#include "daemon/grammar.h"
#include "daemon/timefmt.h"
#include "daemon/util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* Enough to point at the damage; a wholly corrupt journal would list every entry. */
#define MAX_PROBLEMS 100

struct audit_bal {
	struct balance b;
	bool seen;		/* matched by a cached row */
};

struct audit_alloc {
	struct alloc al;	/* as the journal gives it */
	bool seen;
};

struct audit_cs {
	struct cstate cs;
	bool seen;
};

struct audit_usage {
	struct usage u;		/* as its usage entry gives it */
	bool seen;
};

struct audit {
	bool tail;		/* the chain after a checkpoint only (audit_new_tail) */
	int64_t entries;
	int64_t last_seq;
	uint8_t last_hash[HASH_LEN];
	struct jviews views;	/* each consortium's own chain, recomputed */
	bool *view_seen;	/* views.v[i] matched by a cached head (audit_view()) */
	int64_t first_bad;
	json_t *problems;
	struct audit_bal *bals;
	size_t n_bals;
	struct audit_alloc *allocs;	/* in allocation-number order */
	size_t n_allocs;
	struct audit_cs *cstates;
	size_t n_cstates;
	struct audit_usage *usages;	/* in seq order, as the entries come */
	size_t n_usages;
	json_t *config;		/* the structure of the last config entry, or NULL */
	struct jentry out;	/* a transfer_out waiting for its transfer_in (kind set), else zeroed */
};

struct audit *audit_new(void)
{
	struct audit *a = xcalloc(1, sizeof(*a));
	a->problems = json_array();
	return a;
}

struct audit *audit_new_tail(int64_t seq, const uint8_t hash[HASH_LEN])
{
	struct audit *a = audit_new();
	a->tail = true;
	a->entries = seq;
	a->last_seq = seq;
	memcpy(a->last_hash, hash, HASH_LEN);
	return a;
}

void audit_seed_view(struct audit *a, const char *consortium, int64_t entries,
		     int64_t last_seq, const uint8_t head[HASH_LEN])
{
	jviews_set(&a->views, consortium, entries, last_seq, head);
}

void audit_head(const struct audit *a, int64_t *seq, uint8_t hash[HASH_LEN])
{
	*seq = a->last_seq;
	memcpy(hash, a->last_hash, HASH_LEN);
}

void audit_free(struct audit *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->n_bals; i++)
		balance_clear(&a->bals[i].b);
	free(a->bals);
	for (size_t i = 0; i < a->n_allocs; i++)
		alloc_clear(&a->allocs[i].al);
	free(a->allocs);
	for (size_t i = 0; i < a->n_cstates; i++)
		cstate_clear(&a->cstates[i].cs);
	free(a->cstates);
	for (size_t i = 0; i < a->n_usages; i++)
		usage_clear(&a->usages[i].u);
	free(a->usages);
	json_decref(a->config);
	jentry_clear(&a->out);
	jviews_clear(&a->views);
	free(a->view_seen);
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
	return b->granted || b->committed || b->expired || b->max_gpus || b->used;
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

static char *dup(const char *s);

/* A usage entry: its row of the usage table, and its amount in the key's used sum. */
static void usage_apply(struct audit *a, const struct jentry *e, struct balance *b)
{
	const char *source, *job_id;
	int64_t amount;

	if (e->kind != J_USAGE)
		return;
	if (jentry_usage_fields(e, &source, &job_id, &amount) != 0) {
		problem(a, e->seq, "seq %" PRId64 ": usage without a source, a job id and a non-negative amount",
			e->seq);
		return;
	}
	if (!i64_add(b->used, amount, &b->used))
		problem(a, e->seq, "seq %" PRId64 ": amounts overflow", e->seq);
	a->usages = xreallocarray(a->usages, a->n_usages + 1, sizeof(*a->usages));
	struct audit_usage *au = &a->usages[a->n_usages++];
	memset(au, 0, sizeof(*au));
	au->u.source = dup(source);
	au->u.job_id = dup(job_id);
	au->u.consortium = dup(e->consortium);
	au->u.phase = dup(e->phase);
	au->u.gpu = dup(e->gpu);
	au->u.allocation = dup(e->allocation);
	au->u.gpu_seconds = amount;
	au->u.end = e->end;
	au->u.seq = e->seq;
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
	usage_apply(a, e, b);
}

static char *dup(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* Where allocation number num is in a->allocs, or would go. */
static size_t alloc_pos(const struct audit *a, int64_t num, bool *found)
{
	size_t lo = 0, hi = a->n_allocs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a->allocs[mid].al.num < num)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < a->n_allocs && a->allocs[lo].al.num == num;
	return lo;
}

static struct audit_alloc *alloc_find(const struct audit *a, const char *id)
{
	int64_t num;
	bool found;
	if (alloc_id_parse(id, &num) != 0)
		return NULL;
	size_t i = alloc_pos(a, num, &found);
	return found ? &a->allocs[i] : NULL;
}

/* A reserve entry makes the row as store_append() inserts it. */
static void alloc_reserve(struct audit *a, const struct jentry *e)
{
	int64_t num;
	bool found;

	if (alloc_id_parse(e->allocation, &num) != 0) {
		problem(a, e->seq, "seq %" PRId64 ": reserve of a malformed allocation id", e->seq);
		return;
	}
	size_t i = alloc_pos(a, num, &found);
	if (found) {
		problem(a, e->seq, "seq %" PRId64 ": allocation %s reserved a second time",
			e->seq, e->allocation);
		return;
	}
	/* reserves come in number order: this is an append but for damage */
	a->allocs = xreallocarray(a->allocs, a->n_allocs + 1, sizeof(*a->allocs));
	memmove(&a->allocs[i + 1], &a->allocs[i], (a->n_allocs - i) * sizeof(*a->allocs));
	a->n_allocs++;
	struct audit_alloc *aa = &a->allocs[i];
	memset(aa, 0, sizeof(*aa));
	struct alloc *al = &aa->al;
	alloc_id_format(num, al->id, sizeof(al->id));
	al->num = num;
	al->consortium = dup(e->consortium);
	al->pool = dup(e->pool);
	al->gpu = dup(e->gpu);
	al->phase = dup(e->phase);
	al->gpus = e->gpus;
	al->start = e->start;
	al->end = e->end;
	al->booked_end = e->end;
	al->stored = ALLOC_BOOKED;
	al->cost = e->committed_delta;
	al->note = dup(e->reason);
	al->created = e->time;
	al->seq = e->seq;
}

/* A modify entry re-books the row in its new shape, as store_append() does. */
static void alloc_modify(struct audit *a, struct audit_alloc *aa, const struct jentry *e)
{
	struct alloc *al = &aa->al;
	int64_t cost;

	if (al->stored != ALLOC_BOOKED)
		problem(a, e->seq, "seq %" PRId64 ": modify of allocation %s, which is %s",
			e->seq, e->allocation, alloc_stored_name(al->stored));
	free(al->pool);
	al->pool = dup(e->pool);
	al->gpus = e->gpus;
	al->start = e->start;
	al->end = e->end;
	al->booked_end = e->end;
	if (!i64_add(al->cost, e->committed_delta, &al->cost))
		problem(a, e->seq, "seq %" PRId64 ": amounts overflow", e->seq);
	else if (!i64_mul(e->gpus, e->end - e->start, &cost) || cost != al->cost)
		problem(a, e->seq, "seq %" PRId64 ": modify of allocation %s leaves a cost that is not its GPUs times its window",
			e->seq, e->allocation);
}

/* Cancel, release and revoke change the row as store_append() updates it. */
static void alloc_apply(struct audit *a, const struct jentry *e)
{
	enum alloc_stored to;
	bool move_end = true;

	if (e->allocation == NULL)
		return;		/* a grant, an expiry, a revocation of quota */
	switch (e->kind) {
	case J_RESERVE:
		alloc_reserve(a, e);
		return;
	case J_CANCEL:
		to = ALLOC_CANCELLED;
		move_end = false;
		break;
	case J_RELEASE:
		to = ALLOC_RELEASED;
		break;
	case J_REVOKE:
		to = ALLOC_REVOKED;
		break;
	case J_MODIFY:
		to = ALLOC_BOOKED;
		break;
	default:
		return;
	}
	struct audit_alloc *aa = alloc_find(a, e->allocation);
	if (aa == NULL) {
		problem(a, e->seq, "seq %" PRId64 ": %s of allocation %s, which no entry before reserved",
			e->seq, jkind_name(e->kind), e->allocation);
		return;
	}
	if (e->kind == J_MODIFY) {
		alloc_modify(a, aa, e);
		return;
	}
	aa->al.stored = to;
	if (move_end)
		aa->al.end = e->end;
	if (!i64_add(aa->al.cost, e->committed_delta, &aa->al.cost))
		problem(a, e->seq, "seq %" PRId64 ": amounts overflow", e->seq);
}

static struct audit_cs *cs_find(const struct audit *a, const char *c)
{
	for (size_t i = 0; i < a->n_cstates; i++)
		if (strcmp(a->cstates[i].cs.consortium, c) == 0)
			return &a->cstates[i];
	return NULL;
}

/* Eliminate and reinstate set the consortium's state as store_append() does. */
static void cstate_apply(struct audit *a, const struct jentry *e)
{
	if ((e->kind != J_ELIMINATE && e->kind != J_REINSTATE) || e->consortium == NULL)
		return;
	struct audit_cs *ac = cs_find(a, e->consortium);
	if (ac == NULL) {
		a->cstates = xreallocarray(a->cstates, a->n_cstates + 1, sizeof(*a->cstates));
		ac = &a->cstates[a->n_cstates++];
		memset(ac, 0, sizeof(*ac));
		ac->cs.consortium = xstrdup(e->consortium);
		ac->cs.active_from = TIME_MIN;
	}
	struct cstate *cs = &ac->cs;
	cs->since = e->start;
	if (e->kind == J_ELIMINATE) {
		cs->status = CS_ELIMINATED;
		/* 0 (and TIME_MIN) in an eliminate entry's end: no designation */
		cs->designation_until = e->end != 0 ? e->end : TIME_MIN;
	} else {
		cs->status = CS_ACTIVE;
		cs->designation_until = TIME_MIN;
		cs->active_from = e->start;
	}
}

/*
 * A config entry: the file's SHA-256, its structure, and the summary and
 * reason that the structure of the config entry before it and its own give.
 */
static void config_apply(struct audit *a, const struct jentry *e)
{
	const json_t *sha = json_object_get(e->extra, "sha256");
	const json_t *cur = json_object_get(e->extra, "structure");
	uint8_t bin[HASH_LEN];

	if (e->kind != J_CONFIG)
		return;
	if (!json_is_string(sha) || json_string_length(sha) != HASH_HEX_LEN ||
	    hash_unhex(json_string_value(sha), bin) != 0 || !json_is_object(cur)) {
		problem(a, e->seq, "seq %" PRId64 ": config entry without a SHA-256 and a structure",
			e->seq);
		return;
	}
	json_t *want = jconfig_summary(a->config, cur);
	char *text = jconfig_summary_text(want);
	if (!json_equal(want, json_object_get(e->extra, "summary")) || e->reason == NULL ||
	    strcmp(text, e->reason) != 0)
		problem(a, e->seq, "seq %" PRId64 ": config summary is not what the structures before and now give",
			e->seq);
	json_decref(want);
	free(text);
	json_decref(a->config);
	a->config = json_deep_copy(cur);
}

/*
 * A transfer is a pair: each transfer_out is followed at once by the
 * transfer_in of the same request, phase and model that gets its amount.
 */
static void transfer_apply(struct audit *a, const struct jentry *e)
{
	bool pending = a->out.kind == J_TRANSFER_OUT;

	if (pending && (e->kind != J_TRANSFER_IN || e->granted_delta != -a->out.granted_delta ||
			!e->phase || !a->out.phase || strcmp(e->phase, a->out.phase) != 0 ||
			!e->gpu || !a->out.gpu || strcmp(e->gpu, a->out.gpu) != 0 ||
			!e->request_id || !a->out.request_id ||
			strcmp(e->request_id, a->out.request_id) != 0))
		problem(a, a->out.seq, "seq %" PRId64 ": transfer_out without its transfer_in right after it",
			a->out.seq);
	else if (!pending && e->kind == J_TRANSFER_IN)
		problem(a, e->seq, "seq %" PRId64 ": transfer_in without a transfer_out before it",
			e->seq);
	jentry_clear(&a->out);
	if (e->kind == J_TRANSFER_OUT) {
		if (e->granted_delta >= 0)
			problem(a, e->seq, "seq %" PRId64 ": transfer_out of a non-negative amount", e->seq);
		jentry_copy(&a->out, e);
		json_decref(a->out.extra);
		a->out.extra = NULL;
	}
}

void audit_entry(struct audit *a, const struct jentry *e)
{
	a->entries++;
	check_chain(a, e);
	if (a->tail)
		return;		/* what the entries did builds on rows before the checkpoint */
	apply_amounts(a, e);
	alloc_apply(a, e);
	cstate_apply(a, e);
	config_apply(a, e);
	transfer_apply(a, e);
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
	if (b->used != cached->used)
		problem(a, 0, "balance %s/%s/%s: cached used %" PRId64 " but the journal gives %" PRId64,
			cached->consortium, cached->phase, cached->gpu, cached->used, b->used);
}

/* One column of a cached row that the journal contradicts. */
static void differ_i64(struct audit *a, const char *row, const char *col, int64_t cached,
		       int64_t journal)
{
	if (cached != journal)
		problem(a, 0, "%s: cached %s %" PRId64 " but the journal gives %" PRId64, row, col,
			cached, journal);
}

static void differ_str(struct audit *a, const char *row, const char *col, const char *cached,
		       const char *journal)
{
	if (cached == journal || (cached && journal && strcmp(cached, journal) == 0))
		return;
	problem(a, 0, "%s: cached %s %s%.64s%s but the journal gives %s%.64s%s", row, col,
		cached ? "'" : "", cached ? cached : "none", cached ? "'" : "",
		journal ? "'" : "", journal ? journal : "none", journal ? "'" : "");
}

void audit_alloc(struct audit *a, const struct alloc *cached)
{
	struct audit_alloc *aa = alloc_find(a, cached->id);
	char row[48];

	snprintf(row, sizeof(row), "allocation %.24s", cached->id);
	if (aa == NULL) {
		problem(a, 0, "%s: cached but no journal entry reserved it", row);
		return;
	}
	aa->seen = true;
	const struct alloc *j = &aa->al;
	differ_i64(a, row, "num", cached->num, j->num);
	differ_str(a, row, "consortium", cached->consortium, j->consortium);
	differ_str(a, row, "pool", cached->pool, j->pool);
	differ_str(a, row, "gpu", cached->gpu, j->gpu);
	differ_str(a, row, "phase", cached->phase, j->phase);
	differ_i64(a, row, "gpus", cached->gpus, j->gpus);
	differ_i64(a, row, "start", cached->start, j->start);
	differ_i64(a, row, "end", cached->end, j->end);
	differ_i64(a, row, "booked_end", cached->booked_end, j->booked_end);
	differ_str(a, row, "state", alloc_stored_name(cached->stored), alloc_stored_name(j->stored));
	differ_i64(a, row, "cost", cached->cost, j->cost);
	differ_str(a, row, "note", cached->note, j->note);
	differ_i64(a, row, "created", cached->created, j->created);
	differ_i64(a, row, "seq", cached->seq, j->seq);
}

/* The usage entry of seq, by binary search: the entries came in seq order. */
static struct audit_usage *usage_find(const struct audit *a, int64_t seq)
{
	size_t lo = 0, hi = a->n_usages;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a->usages[mid].u.seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < a->n_usages && a->usages[lo].u.seq == seq ? &a->usages[lo] : NULL;
}

void audit_usage(struct audit *a, const struct usage *cached)
{
	struct audit_usage *au = usage_find(a, cached->seq);
	char row[160];

	snprintf(row, sizeof(row), "usage %.64s/%.64s", cached->source ? cached->source : "(null)",
		 cached->job_id ? cached->job_id : "(null)");
	if (au == NULL) {
		problem(a, 0, "%s: cached but no usage entry made it (seq %" PRId64 ")", row,
			cached->seq);
		return;
	}
	au->seen = true;
	const struct usage *j = &au->u;
	differ_str(a, row, "source", cached->source, j->source);
	differ_str(a, row, "job_id", cached->job_id, j->job_id);
	differ_str(a, row, "consortium", cached->consortium, j->consortium);
	differ_str(a, row, "phase", cached->phase, j->phase);
	differ_str(a, row, "gpu", cached->gpu, j->gpu);
	differ_str(a, row, "allocation", cached->allocation, j->allocation);
	differ_i64(a, row, "gpu_seconds", cached->gpu_seconds, j->gpu_seconds);
	differ_i64(a, row, "end", cached->end, j->end);
}

static int usage_key_cmp(const void *x, const void *y)
{
	const struct usage *p = *(const struct usage *const *)x, *q = *(const struct usage *const *)y;
	int c = strcmp(p->source, q->source);
	if (c == 0)
		c = strcmp(p->job_id, q->job_id);
	return c != 0 ? c : (p->seq > q->seq) - (p->seq < q->seq);
}

/* One job reported twice in the journal: the store's key would have refused it. */
static void usage_twice(struct audit *a)
{
	const struct usage **v = xcalloc(a->n_usages ? a->n_usages : 1, sizeof(*v));

	for (size_t i = 0; i < a->n_usages; i++)
		v[i] = &a->usages[i].u;
	qsort(v, a->n_usages, sizeof(*v), usage_key_cmp);
	for (size_t i = 1; i < a->n_usages; i++)
		if (strcmp(v[i]->source, v[i - 1]->source) == 0 &&
		    strcmp(v[i]->job_id, v[i - 1]->job_id) == 0)
			problem(a, v[i]->seq, "seq %" PRId64 ": usage of job %.64s/%.64s, already reported at seq %" PRId64,
				v[i]->seq, v[i]->source, v[i]->job_id, v[i - 1]->seq);
	free(v);
}

static const char *cstatus_name(enum cstatus s)
{
	return s == CS_ELIMINATED ? "eliminated" : "active";
}

void audit_cstate(struct audit *a, const struct cstate *cached)
{
	struct audit_cs *ac = cached->consortium ? cs_find(a, cached->consortium) : NULL;
	char row[96];

	snprintf(row, sizeof(row), "consortium state %.64s",
		 cached->consortium ? cached->consortium : "(null)");
	if (ac == NULL) {
		problem(a, 0, "%s: cached but no eliminate or reinstate entry made it", row);
		return;
	}
	ac->seen = true;
	const struct cstate *j = &ac->cs;
	differ_str(a, row, "status", cstatus_name(cached->status), cstatus_name(j->status));
	differ_i64(a, row, "since", cached->since, j->since);
	differ_i64(a, row, "designation_until", cached->designation_until, j->designation_until);
	differ_i64(a, row, "active_from", cached->active_from, j->active_from);
}

const struct jviews *audit_views(const struct audit *a)
{
	return &a->views;
}

void audit_view(struct audit *a, const char *consortium, int64_t entries, int64_t last_seq,
		const uint8_t head[HASH_LEN])
{
	const struct jview *v = jviews_find(&a->views, consortium);

	if (a->view_seen == NULL)	/* every entry was fed: the views stay as they are */
		a->view_seen = xcalloc(a->views.n + 1, sizeof(*a->view_seen));
	if (v == NULL) {
		problem(a, 0, "view %s: cached head but the journal has no entry of it", consortium);
		return;
	}
	a->view_seen[v - a->views.v] = true;
	if (v->entries != entries || v->last_seq != last_seq)
		problem(a, 0, "view %s: cached entries/last_seq %" PRId64 "/%" PRId64
			" but the journal gives %" PRId64 "/%" PRId64,
			consortium, entries, last_seq, v->entries, v->last_seq);
	if (sodium_memcmp(v->head, head, HASH_LEN) != 0)
		problem(a, 0, "view %s: cached view hash is not the one its chain ends with", consortium);
}

void audit_finish_views(struct audit *a)
{
	for (size_t i = 0; i < a->views.n; i++)
		if (a->view_seen == NULL || !a->view_seen[i])
			problem(a, 0, "view %s: the journal has it but the cached heads lack it",
				a->views.v[i].consortium);
}

void audit_finish(struct audit *a)
{
	if (a->out.kind == J_TRANSFER_OUT)
		problem(a, a->out.seq, "seq %" PRId64 ": transfer_out without its transfer_in right after it",
			a->out.seq);
	for (size_t i = 0; i < a->n_bals; i++) {
		const struct audit_bal *ab = &a->bals[i];
		if (!ab->seen && balance_nonzero(&ab->b))
			problem(a, 0, "balance %s/%s/%s: the journal has it but the cache lacks it",
				ab->b.consortium, ab->b.phase, ab->b.gpu);
	}
	for (size_t i = 0; i < a->n_allocs; i++)
		if (!a->allocs[i].seen)
			problem(a, 0, "allocation %s: the journal reserved it (seq %" PRId64
				") but the cache lacks it", a->allocs[i].al.id, a->allocs[i].al.seq);
	for (size_t i = 0; i < a->n_cstates; i++)
		if (!a->cstates[i].seen)
			problem(a, 0, "consortium state %s: the journal has it but the cache lacks it",
				a->cstates[i].cs.consortium);
	for (size_t i = 0; i < a->n_usages; i++)
		if (!a->usages[i].seen)
			problem(a, 0, "usage %.64s/%.64s: the journal has it (seq %" PRId64
				") but the cache lacks it", a->usages[i].u.source,
				a->usages[i].u.job_id, a->usages[i].u.seq);
	usage_twice(a);
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
