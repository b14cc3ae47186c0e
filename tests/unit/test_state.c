/* SPDX-License-Identifier: MIT */
/*
 * The ledger and the store together, as the daemon uses them: thousands of
 * random operations checked against a small reference model (balances,
 * capacity by brute force, rules 5, 7 and 8: eliminations ahead or up to a
 * day back, reinstatements, the spans between them), each committed to a
 * real SQLite file, the
 * audit passing after every step, the same state after a restart, and a
 * failed commit (forced through the store's test hook) leaving nothing
 * half-applied once the ledger is reloaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "daemon/state.h"
#include "daemon/timefmt.h"
#include "daemon/util.h"

static const char fixture[] =
	"program: {name: Model, timezone: UTC}\n"
	"phases:\n"
	"  - {id: p1, name: one, start: 2026-01-01, end: 2026-01-31}\n"
	"pools:\n"
	"  - {id: pool-a, provider: A, gpu: B200, gpus: 64}\n"
	"consortia:\n"
	"  - {id: c1, name: One, lead: One}\n"
	"  - {id: c2, name: Two, lead: Two}\n";

#define T0 1767225600		/* 2026-01-01T00:00:00Z */
#define PHASE_END (T0 + 30 * 86400)
#define MAX_REF 512
#define MAX_SPANS 64

struct ref_alloc {
	char id[16];
	int ci;
	int64_t gpus, start, end;
	bool live;		/* booked, not cancelled */
};

struct ref_span {
	int64_t from, until;	/* until INT64_MAX while not reinstated */
};

struct ref {
	int64_t granted[2];
	int64_t committed[2];
	struct ref_alloc a[MAX_REF];
	int n;
	struct ref_span span[2][MAX_SPANS];	/* each consortium's eliminations */
	int n_span[2];
	int64_t since[2];	/* the last elimination's or reinstatement's instant */
};

struct env {
	char dir[64];
	char path[96];
	struct config *cfg;
	struct store *s;
	struct ledger *l;
	int64_t now;
	struct ref ref;
	unsigned seed;
	int steps, refused, failed_commits;
};

static const char *cname[2] = {"c1", "c2"};

static unsigned rnd(struct env *e, unsigned n)
{
	e->seed = e->seed * 1103515245u + 12345u;
	return (e->seed >> 8) % n;
}

/* The consortium's current elimination, not reinstated yet, or NULL. */
static struct ref_span *ref_open(struct ref *r, int c)
{
	int n = r->n_span[c];
	return n > 0 && r->span[c][n - 1].until == INT64_MAX ? &r->span[c][n - 1] : NULL;
}

/* Rule 5: [s, t) meets one of the consortium's eliminations. */
static bool ref_out(const struct ref *r, int c, int64_t s, int64_t t)
{
	for (int i = 0; i < r->n_span[c]; i++) {
		const struct ref_span *sp = &r->span[c][i];
		if ((s > sp->from ? s : sp->from) < (t < sp->until ? t : sp->until))
			return true;
	}
	return false;
}

static int64_t ref_booked_max(const struct ref *r, int64_t s, int64_t t)
{
	int64_t best = 0;
	/* the level can only rise at an allocation start, or at s itself */
	for (int i = -1; i < r->n; i++) {
		int64_t x = i < 0 ? s : r->a[i].start;
		if (x < s || x >= t)
			continue;
		int64_t lvl = 0;
		for (int j = 0; j < r->n; j++)
			if (r->a[j].live && r->a[j].start <= x && x < r->a[j].end)
				lvl += r->a[j].gpus;
		if (lvl > best)
			best = lvl;
	}
	return best;
}

/* Commits out (or fails on purpose) and mirrors the result. */
static bool commit(struct env *e, struct jlist *out, bool fail)
{
	if (fail)
		store_fail_commit(e->s, 1, -EIO);
	int rc = state_commit(e->s, out->v, out->n, NULL, NULL, 0);
	jlist_clear(out);
	if (rc == 0)
		return true;
	assert_true(fail);
	assert_int_equal(rc, -EIO);
	/* what the daemon does: rebuild from what the disk holds */
	char *cause = NULL;
	struct ledger *l2;
	assert_int_equal(state_load(e->s, e->cfg, e->now, &l2, &cause), 0);
	ledger_free(e->l);
	e->l = l2;
	e->failed_commits++;
	return false;
}

static void check(struct env *e)
{
	for (int c = 0; c < 2; c++) {
		const struct balance *b = ledger_balance(e->l, cname[c], "p1", "B200");
		int64_t g = b ? b->granted : 0, m = b ? b->committed : 0;
		if (g != e->ref.granted[c] || m != e->ref.committed[c])
			fail_msg("seed %u step %d: %s granted %" PRId64 "/%" PRId64 " committed %" PRId64
				 "/%" PRId64, e->seed, e->steps, cname[c], g, e->ref.granted[c], m,
				 e->ref.committed[c]);
	}
	for (int c = 0; c < 2; c++) {
		const struct ref_span *sp = NULL;
		for (int i = 0; i < e->ref.n_span[c]; i++)
			if (e->ref.span[c][i].from <= e->now && e->now < e->ref.span[c][i].until)
				sp = &e->ref.span[c][i];
		if (cstate_status_at(ledger_cstate(e->l, cname[c]), e->now, NULL) !=
		    (sp ? CS_ELIMINATED : CS_ACTIVE))
			fail_msg("seed %u step %d: %s's status differs from the reference",
				 e->seed, e->steps, cname[c]);
	}
	struct audit *a;
	char *cause = NULL;
	assert_int_equal(state_audit(e->s, e->l, &a, &cause), 0);
	if (!audit_ok(a)) {
		json_t *p = audit_problems(a);
		char *t = json_dumps(p, 0);
		fail_msg("seed %u step %d: audit: %s", e->seed, e->steps, t);
	}
	audit_free(a);
}

static void op_grant(struct env *e)
{
	int c = rnd(e, 2);
	int64_t amount = (int64_t)(rnd(e, 200) + 1) * 3600 * 8;
	if (rnd(e, 4) == 0)
		amount = -amount / 4;
	struct grant_req req = {.consortium = cname[c], .phase = "p1", .gpu = "B200",
				.gpu_seconds = amount, .max_gpus = -1, .reason = "r"};
	struct ledger_ctx ctx = {.now = e->now, .actor = "test"};
	struct ledger_error err = {0};
	struct jlist out = {0};
	bool want_ok = e->ref.granted[c] + amount >= e->ref.committed[c];
	/* rule 8: no new quota once an elimination has taken effect */
	const struct ref_span *open = ref_open(&e->ref, c);
	bool out_now = amount > 0 && open && e->now >= open->from;

	int rc = ledger_grant(e->l, &ctx, &req, &out, &err);
	if (out_now) {
		assert_int_not_equal(rc, 0);
		assert_int_equal(err.code, ERR_NOT_ACTIVE);
		assert_int_equal(out.n, 0);
		ledger_error_clear(&err);
		e->refused++;
		return;
	}
	if (!want_ok) {
		assert_int_not_equal(rc, 0);
		assert_int_equal(err.code, ERR_BELOW_COMMITTED);
		assert_int_equal(out.n, 0);
		ledger_error_clear(&err);
		e->refused++;
		return;
	}
	assert_int_equal(rc, 0);
	if (commit(e, &out, rnd(e, 20) == 0))
		e->ref.granted[c] += amount;
}

static void op_allocate(struct env *e)
{
	int c = rnd(e, 2);
	int64_t gpus = rnd(e, 40) + 1;
	int64_t start = e->now + (int64_t)rnd(e, 72) * 3600;
	int64_t end = start + (int64_t)(rnd(e, 24) + 1) * 3600;
	struct alloc_req req = {.consortium = cname[c], .pool = "pool-a", .gpus = gpus,
				.start = start, .end = end};
	struct ledger_ctx ctx = {.now = e->now, .actor = "test"};
	struct ledger_error err = {0};
	struct jlist out = {0};
	const char *id;
	int64_t cost = gpus * (end - start);

	int rc = ledger_allocate(e->l, &ctx, &req, &out, &id, &err);
	const char *want = NULL;
	if (end > PHASE_END)
		want = "crosses_phase";
	else if (ref_out(&e->ref, c, start, end))
		want = "not_active";
	else if (cost > e->ref.granted[c] - e->ref.committed[c])
		want = "quota_exceeded";
	else if (ref_booked_max(&e->ref, start, end) + gpus > 64)
		want = "capacity_unavailable";
	if (want) {
		if (rc == 0)
			fail_msg("seed %u step %d: allocation accepted, reference says %s",
				 e->seed, e->steps, want);
		assert_string_equal(error_name(err.code), want);
		assert_int_equal(out.n, 0);
		ledger_error_clear(&err);
		e->refused++;
		return;
	}
	if (rc != 0)
		fail_msg("seed %u step %d: refused (%s: %s), reference accepts", e->seed, e->steps,
			 error_name(err.code), err.message);
	char saved[16];
	snprintf(saved, sizeof(saved), "%s", id);
	if (!commit(e, &out, rnd(e, 20) == 0))
		return;
	assert_true(e->ref.n < MAX_REF);
	struct ref_alloc *a = &e->ref.a[e->ref.n++];
	snprintf(a->id, sizeof(a->id), "%s", saved);
	a->ci = c;
	a->gpus = gpus;
	a->start = start;
	a->end = end;
	a->live = true;
	e->ref.committed[c] += cost;
}

static struct ref_alloc *pick_live(struct env *e, bool reserved)
{
	for (int tries = 0; tries < 20 && e->ref.n > 0; tries++) {
		struct ref_alloc *a = &e->ref.a[rnd(e, e->ref.n)];
		/* rule 7: cancel while now <= start; release needs a start before now */
		if (a->live && a->end > e->now && (reserved ? a->start >= e->now : a->start < e->now))
			return a;
	}
	return NULL;
}

static void op_cancel(struct env *e)
{
	struct ref_alloc *a = pick_live(e, true);
	if (a == NULL)
		return;
	struct ledger_ctx ctx = {.now = e->now, .actor = "test"};
	struct ledger_error err = {0};
	struct jlist out = {0};
	if (ledger_cancel(e->l, &ctx, a->id, "r", &out, &err) != 0)
		fail_msg("seed %u step %d: cancel %s: %s", e->seed, e->steps, a->id, err.message);
	if (commit(e, &out, rnd(e, 20) == 0)) {
		a->live = false;
		e->ref.committed[a->ci] -= a->gpus * (a->end - a->start);
	}
}

static void op_release(struct env *e)
{
	struct ref_alloc *a = pick_live(e, false);
	if (a == NULL)
		return;
	int64_t at = e->now + (int64_t)rnd(e, (unsigned)(a->end - e->now));
	struct ledger_ctx ctx = {.now = e->now, .actor = "test"};
	struct ledger_error err = {0};
	struct jlist out = {0};
	if (ledger_release(e->l, &ctx, a->id, at, "r", &out, &err) != 0)
		fail_msg("seed %u step %d: release %s: %s", e->seed, e->steps, a->id, err.message);
	if (commit(e, &out, rnd(e, 20) == 0)) {
		e->ref.committed[a->ci] -= a->gpus * (a->end - at);
		a->end = at;
	}
}

/*
 * Rule 8: an elimination from a day back to three days ahead. What runs at
 * max(T, now) is cut there, what starts later is revoked whole (refunds
 * from now only); the phase started before T, so its quota stays.
 */
static void op_eliminate(struct env *e)
{
	int c = rnd(e, 2);
	int64_t t = e->now + ((int64_t)rnd(e, 96) - 24) * 3600;
	struct ledger_ctx ctx = {.now = e->now, .actor = "test"};
	struct ledger_error err = {0};
	struct jlist out = {0};
	enum error_code want = ERR_NONE;

	if (t < T0)
		t = T0;
	if (ref_open(&e->ref, c))
		want = ERR_BAD_STATE;
	else if (e->ref.since[c] != INT64_MIN && t < e->ref.since[c])
		want = ERR_INVALID_WINDOW;
	int rc = ledger_eliminate(e->l, &ctx, cname[c], t, "r", &out, &err);
	if (want != ERR_NONE) {
		if (rc == 0)
			fail_msg("seed %u step %d: elimination accepted, reference says %s",
				 e->seed, e->steps, error_name(want));
		assert_int_equal(err.code, want);
		assert_int_equal(out.n, 0);
		ledger_error_clear(&err);
		e->refused++;
		return;
	}
	if (rc != 0)
		fail_msg("seed %u step %d: eliminate %s: %s", e->seed, e->steps, cname[c], err.message);
	if (!commit(e, &out, rnd(e, 20) == 0))
		return;
	int64_t cut = t > e->now ? t : e->now;
	for (int i = 0; i < e->ref.n; i++) {
		struct ref_alloc *a = &e->ref.a[i];
		if (!a->live || a->ci != c || a->end <= cut)
			continue;
		if (a->start >= cut) {
			a->live = false;
			e->ref.committed[c] -= a->gpus * (a->end - a->start);
		} else {
			e->ref.committed[c] -= a->gpus * (a->end - cut);
			a->end = cut;
		}
	}
	assert_true(e->ref.n_span[c] < MAX_SPANS);
	e->ref.span[c][e->ref.n_span[c]++] = (struct ref_span){t, INT64_MAX};
	e->ref.since[c] = t;
}

/* Rule 8: a reinstatement from now, or from the elimination if that is ahead. */
static void op_reinstate(struct env *e)
{
	int c = rnd(e, 2);
	struct ref_span *open = ref_open(&e->ref, c);
	int64_t t = (open && open->from > e->now ? open->from : e->now) +
		    (int64_t)rnd(e, 48) * 3600;
	struct ledger_ctx ctx = {.now = e->now, .actor = "test"};
	struct ledger_error err = {0};
	struct jlist out = {0};

	int rc = ledger_reinstate(e->l, &ctx, cname[c], t, "r", &out, &err);
	if (open == NULL) {
		assert_int_not_equal(rc, 0);
		assert_int_equal(err.code, ERR_BAD_STATE);
		ledger_error_clear(&err);
		e->refused++;
		return;
	}
	if (rc != 0)
		fail_msg("seed %u step %d: reinstate %s: %s", e->seed, e->steps, cname[c], err.message);
	if (!commit(e, &out, rnd(e, 20) == 0))
		return;
	open->until = t;
	e->ref.since[c] = t;
}

static void op_advance(struct env *e)
{
	struct ledger_ctx ctx = {.actor = "test"};
	struct jlist out = {0};
	e->now += (int64_t)rnd(e, 12) * 3600 + 1;
	ctx.now = e->now;
	ledger_tick(e->l, &ctx, &out);
	assert_int_equal(out.n, 0);	/* the phase does not end in this model */
	jlist_clear(&out);
}

static void env_open(struct env *e)
{
	char *cause = NULL;
	assert_int_equal(store_open(e->path, &e->s, &cause), 0);
	assert_int_equal(state_load(e->s, e->cfg, e->now, &e->l, &cause), 0);
}

static void env_close(struct env *e)
{
	ledger_free(e->l);
	store_close(e->s);
	e->l = NULL;
	e->s = NULL;
}

/*
 * One random history. On disk, the restart closes and reopens the
 * database; in memory (fast enough for thousands of runs) it rebuilds the
 * ledger from the store, which is the same load the daemon does.
 */
static void run_sequence(unsigned seed, int steps, int after, bool on_disk)
{
	struct env e = {.seed = seed, .now = T0, .ref.since = {INT64_MIN, INT64_MIN}};
	char *errors = NULL;

	if (on_disk) {
		snprintf(e.dir, sizeof(e.dir), "/tmp/gl-state-XXXXXX");
		assert_non_null(mkdtemp(e.dir));
		snprintf(e.path, sizeof(e.path), "%s/db", e.dir);
	} else {
		snprintf(e.path, sizeof(e.path), ":memory:");
	}
	assert_int_equal(config_parse("fixture.yaml", fixture, strlen(fixture), &e.cfg, &errors), 0);
	env_open(&e);

	for (e.steps = 0; e.steps < steps; e.steps++) {
		switch (rnd(&e, 20)) {
		case 0: case 1: case 2: case 3: case 4: op_grant(&e); break;
		case 5: case 6: case 7: case 8: case 9: case 10: case 11: op_allocate(&e); break;
		case 12: case 13: op_cancel(&e); break;
		case 14: case 15: op_release(&e); break;
		case 16: case 17: op_advance(&e); break;
		case 18: op_eliminate(&e); break;
		case 19: op_reinstate(&e); break;
		}
		check(&e);
	}

	/* a restart sees the same books */
	uint8_t h1[HASH_LEN], h2[HASH_LEN];
	int64_t seq = ledger_head_seq(e.l);
	const struct alloc *const *v;
	size_t live_before = ledger_allocs(e.l, &v);
	ledger_head_hash(e.l, h1);
	if (on_disk) {
		env_close(&e);
		env_open(&e);
	} else {
		char *cause = NULL;
		ledger_free(e.l);
		assert_int_equal(state_load(e.s, e.cfg, e.now, &e.l, &cause), 0);
	}
	assert_int_equal(ledger_head_seq(e.l), seq);
	ledger_head_hash(e.l, h2);
	assert_memory_equal(h1, h2, HASH_LEN);
	assert_int_equal(ledger_allocs(e.l, &v), live_before);
	check(&e);
	/* and keeps accepting work on top of it */
	for (int i = 0; i < after; i++, e.steps++) {
		op_grant(&e);
		op_allocate(&e);
		check(&e);
	}

	env_close(&e);
	config_free(e.cfg);
	if (!on_disk)
		return;
	unlink(e.path);
	char side[128];
	snprintf(side, sizeof(side), "%s-wal", e.path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", e.path);
	unlink(side);
	rmdir(e.dir);
}

/*
 * GPULEDGER_TEST_SCALE_DOWN=N runs every Nth seed only: the same histories'
 * code paths in fewer rounds, for the valgrind suite (memcheck is some 40
 * times slower than native, and the native run takes 18 CPU-seconds).
 */
static unsigned seed_step = 1;

static int scale_down(void)
{
	const char *v = getenv("GPULEDGER_TEST_SCALE_DOWN");
	char *end;

	if (v == NULL || *v == '\0')
		return 0;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > 1000) {
		fprintf(stderr, "GPULEDGER_TEST_SCALE_DOWN=%s: not a number from 1 to 1000\n", v);
		return -1;
	}
	seed_step = (unsigned)n;
	return 0;
}

static void test_random_sequences(void **state)
{
	/* a few long histories, and thousands of short ones */
	for (unsigned seed = 1; seed <= 40; seed += seed_step)
		run_sequence(seed, 80, 20, true);
	for (unsigned seed = 1001; seed <= 3000; seed += seed_step)
		run_sequence(seed, 20, 4, false);
}

/* A failed commit: the daemon reloads, and the books are as before the batch. */
static void test_failed_commit_leaves_nothing(void **state)
{
	struct env e = {.seed = 99, .now = T0};
	char *errors = NULL;
	snprintf(e.dir, sizeof(e.dir), "/tmp/gl-state-XXXXXX");
	assert_non_null(mkdtemp(e.dir));
	snprintf(e.path, sizeof(e.path), "%s/db", e.dir);
	assert_int_equal(config_parse("fixture.yaml", fixture, strlen(fixture), &e.cfg, &errors), 0);
	env_open(&e);

	struct grant_req g = {.consortium = "c1", .phase = "p1", .gpu = "B200",
			      .gpu_seconds = 3600 * 100, .max_gpus = -1, .reason = "first"};
	struct ledger_ctx ctx = {.now = T0, .actor = "test"};
	struct ledger_error err = {0};
	struct jlist out = {0};
	assert_int_equal(ledger_grant(e.l, &ctx, &g, &out, &err), 0);
	assert_true(commit(&e, &out, false));

	/* a batch of two changes whose commit fails */
	g.gpu_seconds = 3600 * 5;
	assert_int_equal(ledger_grant(e.l, &ctx, &g, &out, &err), 0);
	struct alloc_req a = {.consortium = "c1", .pool = "pool-a", .gpus = 8,
			      .start = T0 + 3600, .end = T0 + 7200};
	const char *id;
	assert_int_equal(ledger_allocate(e.l, &ctx, &a, &out, &id, &err), 0);
	assert_int_equal(out.n, 2);
	assert_false(commit(&e, &out, true));

	const struct balance *b = ledger_balance(e.l, "c1", "p1", "B200");
	assert_int_equal(b->granted, 3600 * 100);
	assert_int_equal(b->committed, 0);
	assert_int_equal(ledger_head_seq(e.l), 1);
	assert_null(ledger_alloc(e.l, "A-000001"));
	struct audit *au;
	char *cause = NULL;
	assert_int_equal(state_audit(e.s, e.l, &au, &cause), 0);
	assert_true(audit_ok(au));
	assert_int_equal(audit_entries(au), 1);
	audit_free(au);

	/* the next change chains onto what is on disk */
	assert_int_equal(ledger_allocate(e.l, &ctx, &a, &out, &id, &err), 0);
	assert_string_equal(id, "A-000001");
	assert_int_equal(out.v[0].seq, 2);
	assert_true(commit(&e, &out, false));
	e.ref.granted[0] = 3600 * 100;
	e.ref.committed[0] = 8 * 3600;
	check(&e);

	env_close(&e);
	config_free(e.cfg);
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", e.dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_sequences),
		cmocka_unit_test(test_failed_commit_leaves_nothing),
	};
	if (sodium_init() < 0 || scale_down() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
