/* SPDX-License-Identifier: MIT */
/*
 * Loading, auditing and committing: the glue between the pure ledger and
 * the SQLite store, kept free of the event loop so that tests can restart
 * a ledger from a database as the daemon does.
 */
#include "daemon/state.h"
#include "daemon/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct load_ctx {
	struct ledger *l;
	char *cause;
};

static int load_view(void *arg, const char *consortium, int64_t entries, int64_t last_seq,
		     const uint8_t view_hash[HASH_LEN])
{
	struct load_ctx *c = arg;
	ledger_load_view(c->l, consortium, entries, last_seq, view_hash);
	return 0;
}

static int load_balance(void *arg, const struct balance *b)
{
	struct load_ctx *c = arg;
	return ledger_load_balance(c->l, b, &c->cause);
}

static int load_cstate(void *arg, const struct cstate *cs)
{
	struct load_ctx *c = arg;
	return ledger_load_cstate(c->l, cs, &c->cause);
}

static int load_alloc(void *arg, const struct alloc *a)
{
	struct load_ctx *c = arg;
	return ledger_load_alloc(c->l, a, &c->cause);
}

static int load_alloc_ref(void *arg, const struct alloc_ref *r)
{
	struct load_ctx *c = arg;
	return ledger_load_alloc_ref(c->l, r, &c->cause);
}

/* The configuration carries what the ledger holds (ledger_check_config()). */
static int config_fits(struct load_ctx *c, const struct config *cfg)
{
	struct ledger_error err = {0};

	if (ledger_check_config(c->l, cfg, &err) == 0)
		return 0;
	c->cause = err.message;
	err.message = NULL;
	ledger_error_clear(&err);
	return -EINVAL;
}

/* A change of the program's structure the journal made: it overrides the config. */
static int load_ledger_op(void *arg, const struct jentry *e)
{
	struct load_ctx *c = arg;
	if (e->kind == J_POOL_CUT)
		return ledger_load_pool_cut(c->l, e->pool, e->start, e->gpus, &c->cause);
	if (e->kind == J_PHASE)
		return ledger_load_phase_move(c->l, e->phase, e->end,
					      json_string_value(json_object_get(e->extra, "next")),
					      &c->cause);
	return 0;
}

int state_load(struct store *s, const struct config *cfg, int64_t now,
	       struct ledger **out, char **cause)
{
	struct load_ctx c = {.l = ledger_new(cfg)};
	/* by the (stored, end) index, unsorted: the ledger sorts them once, in place */
	struct alloc_filter live = {.live_only = true, .live_after = now, .unordered = true};
	int64_t seq, max_num;
	uint8_t head[HASH_LEN];
	int rc;

	rc = store_journal_head(s, &seq, head);
	if (rc == 0)
		rc = store_allocation_max_num(s, &max_num);
	if (rc != 0) {
		c.cause = xasprintf("cannot read the journal head: %s", store_errmsg(s));
		goto fail_load;
	}
	ledger_load_head(c.l, seq, head, max_num);
	rc = store_views_each(s, load_view, &c);
	if (rc == 0)
		rc = store_balances_each(s, load_balance, &c);
	if (rc == 0)
		rc = store_cstates_each(s, load_cstate, &c);
	if (rc == 0)
		rc = store_allocations_each(s, &live, load_alloc, &c);
	if (rc == 0)
		rc = store_allocation_refs_each(s, load_alloc_ref, &c);
	if (rc == 0)
		rc = store_ledger_ops_each(s, load_ledger_op, &c);
	if (rc == 0)
		rc = config_fits(&c, cfg);
	if (rc != 0) {
		if (c.cause == NULL)
			c.cause = xasprintf("cannot load the ledger: %s", store_errmsg(s));
		goto fail_load;
	}
	*out = c.l;
	return 0;

fail_load:
	ledger_free(c.l);
	*cause = c.cause;
	return rc < 0 ? rc : -EINVAL;
}

struct audit_ctx {
	struct audit *a;
};

static int audit_one_entry(void *arg, const struct jentry *e)
{
	struct audit_ctx *c = arg;
	audit_entry(c->a, e);
	return 0;
}

static int audit_one_balance(void *arg, const struct balance *b)
{
	struct audit_ctx *c = arg;
	audit_balance(c->a, b);
	return 0;
}

static int audit_one_alloc(void *arg, const struct alloc *al)
{
	struct audit_ctx *c = arg;
	audit_alloc(c->a, al);
	return 0;
}

static int audit_one_cstate(void *arg, const struct cstate *cs)
{
	struct audit_ctx *c = arg;
	audit_cstate(c->a, cs);
	return 0;
}

static int audit_one_usage(void *arg, const struct usage *u)
{
	struct audit_ctx *c = arg;
	audit_usage(c->a, u);
	return 0;
}

static int audit_one_view(void *arg, const char *consortium, int64_t entries, int64_t last_seq,
			  const uint8_t view_hash[HASH_LEN])
{
	struct audit_ctx *c = arg;
	audit_view(c->a, consortium, entries, last_seq, view_hash);
	return 0;
}

/* A row too damaged to read is one of the audit's findings, not a failure to read. */
static int damaged(struct audit *a, struct store *s, int rc)
{
	if (rc != -EILSEQ)
		return rc;
	audit_note(a, "%s", store_errmsg(s));
	return 0;
}

int state_audit(struct store *s, const struct ledger *l, struct audit **out,
		char **cause)
{
	struct audit_ctx c = {.a = audit_new()};
	struct alloc_filter all = {0};
	int rc;

	rc = damaged(c.a, s, store_journal_each(s, 0, NULL, 0, audit_one_entry, &c));
	if (rc == 0)
		rc = damaged(c.a, s, store_balances_each(s, audit_one_balance, &c));
	if (rc == 0)
		rc = damaged(c.a, s, store_allocations_each(s, &all, audit_one_alloc, &c));
	if (rc == 0)
		rc = damaged(c.a, s, store_cstates_each(s, audit_one_cstate, &c));
	if (rc == 0)
		rc = damaged(c.a, s, store_usage_each(s, audit_one_usage, &c));
	if (rc == 0)
		rc = damaged(c.a, s, store_views_each(s, audit_one_view, &c));
	if (rc != 0) {
		*cause = xasprintf("cannot read the database: %s", store_errmsg(s));
		audit_free(c.a);
		return rc < 0 ? rc : -EIO;
	}
	audit_finish(c.a);
	audit_finish_views(c.a);
	if (l != NULL && audit_entries(c.a) != ledger_head_seq(l))
		audit_note(c.a, "the journal holds %" PRId64 " entries but the daemon committed %" PRId64
			   " (entries were deleted from the end)",
			   audit_entries(c.a), ledger_head_seq(l));
	*out = c.a;
	return 0;
}

int state_commit(struct store *s, const struct jentry *entries, size_t n,
		 char *const *notes, const struct idem_rec *idem, size_t n_idem)
{
	int rc = store_begin(s);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = store_append(s, &entries[i], notes ? notes[i] : NULL);
	for (size_t i = 0; i < n_idem && rc == 0; i++)
		rc = idem[i].seq > 0 ?
			store_idem_put_ref(s, idem[i].key, idem[i].body_hash, idem[i].status,
					   idem[i].seq, idem[i].time) :
			store_idem_put(s, idem[i].key, idem[i].body_hash, idem[i].status,
				       idem[i].response, idem[i].time);
	if (rc != 0) {
		store_rollback(s);
		return rc;
	}
	return store_commit(s);
}

struct seed_ctx {
	struct store *s;
	struct audit *a;
	int64_t seq;
};

/*
 * A consortium's view head just before the checkpoint's own entry (seq + 1,
 * which the tail audit checks again), from the heads saved with the
 * checkpoint (schema 0013): one step back for the consortium of that
 * entry, its previous view hash read from the journal audited before.
 */
static int seed_view(void *arg, const char *consortium, int64_t entries, int64_t last_seq,
		     const uint8_t view_hash[HASH_LEN])
{
	struct seed_ctx *c = arg;
	uint8_t head[HASH_LEN];
	int rc;

	if (last_seq <= c->seq) {
		audit_seed_view(c->a, consortium, entries, last_seq, view_hash);
		return 0;
	}
	if (last_seq > c->seq + 1) {
		audit_note(c->a, "the audit checkpoint's view of %s ends after the checkpoint",
			   consortium);
		return 0;
	}
	rc = store_view_at(c->s, consortium, c->seq, head);
	if (rc == 0 && entries > 1)
		audit_seed_view(c->a, consortium, entries - 1, c->seq, head);
	return rc;
}

/*
 * The chain after the checkpoint (seq, hash), each view going on from its
 * head at the checkpoint; then the cached view heads must be where the
 * chains end. What it reads costs the consortia and the entries after the
 * checkpoint, not the history.
 */
static int audit_tail(struct store *s, int64_t seq, const uint8_t hash[HASH_LEN],
		      struct audit **out, char **cause)
{
	struct audit_ctx c = {.a = audit_new_tail(seq, hash)};
	struct seed_ctx sc = {.s = s, .a = c.a, .seq = seq};
	int rc = damaged(c.a, s, store_checkpoint_views_each(s, seed_view, &sc));

	if (rc == 0)
		rc = damaged(c.a, s, store_journal_each(s, seq, NULL, 0, audit_one_entry, &c));
	if (rc == 0)
		rc = damaged(c.a, s, store_views_each(s, audit_one_view, &c));
	if (rc == 0)
		audit_finish_views(c.a);
	if (rc != 0) {
		*cause = xasprintf("cannot read the database: %s", store_errmsg(s));
		audit_free(c.a);
		return rc < 0 ? rc : -EIO;
	}
	*out = c.a;
	return 0;
}

int state_audit_start(struct store *s, struct audit **out, int64_t *from, char **cause)
{
	int64_t seq;
	uint8_t cp[HASH_LEN], at[HASH_LEN], prev[HASH_LEN];
	int rc = store_checkpoint_get(s, &seq, cp);

	/*
	 * The checkpoint's own entry is audited again (its hash recomputed from
	 * its contents), so that an edit of it cannot hide behind the hash
	 * column it left alone; what comes before it was audited already.
	 */
	*from = 0;
	if (rc == 0 && seq > 0 && store_journal_hash_at(s, seq, at, prev) == 0 &&
	    memcmp(at, cp, HASH_LEN) == 0) {
		*from = seq;
		return audit_tail(s, seq - 1, prev, out, cause);
	}
	if (rc != 0 && rc != -ENOENT) {
		*cause = xasprintf("cannot read the audit checkpoint: %s", store_errmsg(s));
		return rc;
	}
	return state_audit(s, NULL, out, cause);
}

int state_checkpoint(struct store *s, const struct audit *a)
{
	int64_t seq;
	uint8_t hash[HASH_LEN];

	if (!audit_ok(a))
		return store_checkpoint_clear(s);
	audit_head(a, &seq, hash);
	return seq > 0 ? store_checkpoint_set(s, seq, hash, audit_views(a)) : 0;
}

int state_audit_snapshot(const char *path, int64_t committed, struct audit **out,
			 char **cause)
{
	struct store *s;
	int rc = store_open_readonly(path, &s, cause);

	if (rc != 0)
		return rc;
	rc = store_read_begin(s);
	if (rc != 0)
		*cause = xasprintf("cannot read the database: %s", store_errmsg(s));
	else
		rc = state_audit(s, NULL, out, cause);
	store_read_end(s);
	store_close(s);
	if (rc == 0 && audit_entries(*out) < committed)
		audit_note(*out, "the journal holds %" PRId64 " entries but the daemon committed %" PRId64
			   " (entries were deleted from the end)", audit_entries(*out), committed);
	return rc;
}
