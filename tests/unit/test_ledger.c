/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the pure ledger: every rule of DESIGN.md (1-9) and every
 * error code the ledger produces, over a small program parsed from inline
 * YAML (Asia/Seoul, two phases, a leased B200 pool that ends on 2026-07-01,
 * an H200 pool, a whole-node B200 pool that starts then, three consortia).
 * Each operation goes through a wrapper that checks the two promises every
 * operation makes: a success appends entries that continue the hash chain
 * (seq consecutive, prev_hash linked, hash valid), and a refusal appends
 * nothing and leaves balances, allocations, consortium states and the
 * journal head exactly as they were. The tests then assert what a user
 * sees: error code, the gist of the message and the details.
 */
#include "daemon/audit.h"
#include "daemon/config.h"
#include "daemon/error.h"
#include "daemon/journal.h"
#include "daemon/ledger.h"
#include "daemon/model.h"
#include "daemon/timefmt.h"
#include "daemon/util.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define HOUR INT64_C(3600)
#define DAY INT64_C(86400)
#define KST (9 * 3600)

/* --- configurations ---------------------------------------------------- */

#define PROGRAM "program: {name: Test program, timezone: Asia/Seoul, designation_grace_days: 180}\n"
#define PHASES "phases:\n" \
	"  - {id: p1, name: 1st stage, start: 2025-08-04, end: 2026-01-16}\n" \
	"  - {id: p2, name: 2nd stage, start: 2026-01-16, end: 2026-08-01}\n"
#define PHASE3 "  - {id: p3, name: 3rd stage, start: 2026-09-01, end: 2027-01-01}\n"
#define POOL_SKT "  - {id: skt-b200, provider: SK Telecom, gpu: B200, gpus: 1024, available_until: 2026-07-01}\n"
#define POOL_NCLOUD "  - {id: ncloud-h200, provider: Naver Cloud, gpu: H200, gpus: 1024}\n"
#define POOL_NCLOUD_512 "  - {id: ncloud-h200, provider: Naver Cloud, gpu: H200, gpus: 512}\n"
#define POOL_NCLOUD_256 "  - {id: ncloud-h200, provider: Naver Cloud, gpu: H200, gpus: 256}\n"
#define POOL_KT "  - {id: kt-h200, provider: KT Cloud, gpu: H200, gpus: 512}\n"
#define POOL_NHN "  - {id: nhn-b200, provider: NHN Cloud, gpu: B200, gpus: 64, available_from: 2026-07-01, gpus_per_node: 8}\n"
#define C_LG "  - {id: lg, name: LG AI Research, lead: LG AI Research, members: [LG Uplus, LG CNS]}\n"
#define C_SKT "  - {id: skt, name: SK Telecom, lead: SK Telecom}\n"
#define C_MOTIF "  - {id: motif, name: Motif Technologies, lead: Motif Technologies, joined: 2026-02-20}\n"
#define C_UPSTAGE "  - {id: upstage, name: Upstage, lead: Upstage}\n"

static const char cfg_base[] = PROGRAM PHASES
	"pools:\n" POOL_SKT POOL_NCLOUD POOL_NHN
	"consortia:\n" C_LG C_SKT C_MOTIF;
/* More of everything: a third phase after a gap, a second H200 pool, a consortium. */
static const char cfg_more[] = PROGRAM PHASES PHASE3
	"pools:\n" POOL_SKT POOL_NCLOUD POOL_KT POOL_NHN
	"consortia:\n" C_LG C_SKT C_MOTIF C_UPSTAGE;
static const char cfg_no_nhn[] = PROGRAM PHASES
	"pools:\n" POOL_SKT POOL_NCLOUD
	"consortia:\n" C_LG C_SKT C_MOTIF;
static const char cfg_no_skt_consortium[] = PROGRAM PHASES
	"pools:\n" POOL_SKT POOL_NCLOUD POOL_NHN
	"consortia:\n" C_LG C_MOTIF;
static const char cfg_ncloud_256[] = PROGRAM PHASES
	"pools:\n" POOL_SKT POOL_NCLOUD_256 POOL_NHN
	"consortia:\n" C_LG C_SKT C_MOTIF;
static const char cfg_ncloud_512[] = PROGRAM PHASES
	"pools:\n" POOL_SKT POOL_NCLOUD_512 POOL_NHN
	"consortia:\n" C_LG C_SKT C_MOTIF;

static struct config *parse_config(const char *text)
{
	struct config *cfg = NULL;
	char *errors = NULL;
	int rc = config_parse("test.yaml", text, strlen(text), &cfg, &errors);
	if (rc != 0)
		fail_msg("config_parse: %s", errors ? errors : "?");
	free(errors);
	return cfg;
}

/* An instant as people write it, in the program's zone. */
static int64_t T(const char *s)
{
	int64_t t;
	const char *cause = NULL;
	if (time_parse(s, KST, &t, &cause) != 0)
		fail_msg("time_parse(%s): %s", s, cause ? cause : "?");
	return t;
}

/* --- fixture ----------------------------------------------------------- */

struct fx {
	struct config *cfg;
	struct config *extra;		/* a second config a test swaps in */
	struct ledger *l;
	struct jlist all;		/* every entry the ledger produced, in order */
	struct jlist last;		/* the entries of the last successful operation */
	struct ledger_error err;	/* the error of the last refused operation */
	char ids[64][24];		/* ids handed out by alloc_ok() */
	unsigned n_ids;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->cfg = parse_config(cfg_base);
	f->l = ledger_new(f->cfg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	ledger_free(f->l);
	config_free(f->cfg);
	config_free(f->extra);
	jlist_clear(&f->all);
	jlist_clear(&f->last);
	ledger_error_clear(&f->err);
	free(f);
	return 0;
}

/* Starts over on another configuration. */
static void reset_with(struct fx *f, const char *text)
{
	ledger_free(f->l);
	config_free(f->cfg);
	f->cfg = parse_config(text);
	f->l = ledger_new(f->cfg);
}

static struct ledger_ctx ctx_at(int64_t now)
{
	return (struct ledger_ctx){.now = now, .actor = "admin", .request_id = "req-1"};
}

/* Everything a user could observe of the ledger's state, as text. */
static char *snapshot(const struct ledger *l)
{
	struct buf b = {0};
	uint8_t h[HASH_LEN];
	char hex[HASH_HEX_LEN + 1];
	const struct config *cfg = ledger_config(l);

	ledger_head_hash(l, h);
	hash_hex(h, hex);
	buf_printf(&b, "head %" PRId64 " %s\n", ledger_head_seq(l), hex);
	const struct balance **bs;
	size_t n = ledger_balances(l, &bs);
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "bal %s/%s/%s %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
			   " used %" PRId64 "\n",
			   bs[i]->consortium, bs[i]->phase, bs[i]->gpu, bs[i]->granted,
			   bs[i]->committed, bs[i]->expired, bs[i]->max_gpus, bs[i]->used);
	const struct alloc *const *as;
	n = ledger_allocs(l, &as);
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "alloc %s %s %s %s %s %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
			   " %d %" PRId64 "\n", as[i]->id, as[i]->consortium, as[i]->pool,
			   as[i]->gpu, as[i]->phase, as[i]->gpus, as[i]->start, as[i]->end,
			   as[i]->cost, (int)as[i]->stored, as[i]->seq);
	for (size_t i = 0; i < cfg->n_consortia; i++) {
		const struct cstate *cs = ledger_cstate(l, cfg->consortia[i].id);
		if (cs == NULL)
			continue;
		buf_printf(&b, "cstate %s %d %" PRId64 " %" PRId64 "\n", cs->consortium,
			   (int)cs->status, cs->since, cs->designation_until);
		for (size_t j = 0; j < cs->n_spans; j++)
			buf_printf(&b, "  out %" PRId64 " %" PRId64 "\n", cs->spans[j].from,
				   cs->spans[j].until);
	}
	return buf_take(&b);
}

struct op {
	char *before;
	int64_t seq;
	uint8_t head[HASH_LEN];
	struct jlist out;
	int64_t now;
};

static void op_begin(struct fx *f, struct op *op, int64_t now)
{
	ledger_error_clear(&f->err);
	jlist_clear(&f->last);
	op->before = snapshot(f->l);
	op->seq = ledger_head_seq(f->l);
	ledger_head_hash(f->l, op->head);
	memset(&op->out, 0, sizeof(op->out));
	op->now = now;
}

/*
 * The promises of every operation: a success continues the chain; a
 * refusal is typed, explained and changes nothing.
 */
static int op_end(struct fx *f, struct op *op, int rc)
{
	if (rc == 0) {
		uint8_t prev[HASH_LEN], head[HASH_LEN];
		memcpy(prev, op->head, HASH_LEN);
		for (size_t i = 0; i < op->out.n; i++) {
			const struct jentry *e = &op->out.v[i];
			assert_int_equal(e->seq, op->seq + (int64_t)i + 1);
			assert_memory_equal(e->prev_hash, prev, HASH_LEN);
			assert_true(jentry_hash_ok(e));
			assert_int_equal(e->time, op->now);
			assert_string_equal(e->actor, "admin");
			assert_string_equal(e->request_id, "req-1");
			memcpy(prev, e->hash, HASH_LEN);
			jentry_copy(jlist_push(&f->all), e);
			jentry_copy(jlist_push(&f->last), e);
		}
		assert_int_equal(ledger_head_seq(f->l), op->seq + (int64_t)op->out.n);
		ledger_head_hash(f->l, head);
		assert_memory_equal(head, prev, HASH_LEN);
	} else {
		assert_int_equal(rc, -EINVAL);
		assert_int_equal(op->out.n, 0);
		assert_int_not_equal(f->err.code, ERR_NONE);
		assert_non_null(f->err.message);
		int status = error_status(f->err.code);
		assert_true(status == 404 || status == 409 || status == 422);
		char *after = snapshot(f->l);
		assert_string_equal(after, op->before);
		free(after);
	}
	free(op->before);
	jlist_clear(&op->out);
	return rc;
}

static int try_grant_budget(struct fx *f, int64_t now, const char *c, const char *phase,
			    const char *gpu, int64_t secs, int64_t max_gpus, bool oversubscribe)
{
	struct op op;
	struct ledger_ctx ctx = ctx_at(now);
	struct grant_req r = {.consortium = c, .phase = phase, .gpu = gpu,
			      .gpu_seconds = secs, .max_gpus = max_gpus, .reason = "test",
			      .oversubscribe = oversubscribe};
	op_begin(f, &op, now);
	return op_end(f, &op, ledger_grant(f->l, &ctx, &r, &op.out, &f->err));
}

/*
 * The tests of the other rules grant far more than the fixture's pools
 * procure, so that quota never stands in the way of the rule under test:
 * they oversubscribe on purpose. The conservation tests use
 * try_grant_budget() without it.
 */
static int try_grant(struct fx *f, int64_t now, const char *c, const char *phase,
		     const char *gpu, int64_t secs, int64_t max_gpus)
{
	return try_grant_budget(f, now, c, phase, gpu, secs, max_gpus, true);
}

static void grant_ok(struct fx *f, int64_t now, const char *c, const char *phase,
		     const char *gpu, int64_t secs, int64_t max_gpus)
{
	if (try_grant(f, now, c, phase, gpu, secs, max_gpus) != 0)
		fail_msg("grant refused: %s: %s", error_name(f->err.code), f->err.message);
}

static const char *last_id;

static int try_alloc_req(struct fx *f, int64_t now, const struct alloc_req *r)
{
	struct op op;
	struct ledger_ctx ctx = ctx_at(now);
	const char *id = NULL;
	op_begin(f, &op, now);
	int rc = ledger_allocate(f->l, &ctx, r, &op.out, &id, &f->err);
	if (rc == 0)
		assert_int_equal(op.out.n, 1);
	last_id = rc == 0 ? id : NULL;
	return op_end(f, &op, rc);
}

static int try_alloc(struct fx *f, int64_t now, const char *c, const char *pool,
		     const char *gpu, int64_t gpus, int64_t start, int64_t end, bool earliest)
{
	struct alloc_req r = {.consortium = c, .pool = pool, .gpu = gpu, .gpus = gpus,
			      .start = start, .end = end, .earliest = earliest, .note = "job"};
	return try_alloc_req(f, now, &r);
}

/* Books and returns the new id (kept in the fixture). */
static const char *alloc_ok(struct fx *f, int64_t now, const char *c, const char *pool,
			    int64_t gpus, int64_t start, int64_t end)
{
	if (try_alloc(f, now, c, pool, NULL, gpus, start, end, false) != 0)
		fail_msg("allocate refused: %s: %s", error_name(f->err.code), f->err.message);
	char *id = f->ids[f->n_ids++ % 64];
	snprintf(id, 24, "%s", last_id);
	return id;
}

static int try_cancel(struct fx *f, int64_t now, const char *id)
{
	struct op op;
	struct ledger_ctx ctx = ctx_at(now);
	op_begin(f, &op, now);
	return op_end(f, &op, ledger_cancel(f->l, &ctx, id, "no longer needed", &op.out, &f->err));
}

static int try_release(struct fx *f, int64_t now, const char *id, int64_t at)
{
	struct op op;
	struct ledger_ctx ctx = ctx_at(now);
	op_begin(f, &op, now);
	return op_end(f, &op, ledger_release(f->l, &ctx, id, at, "done early", &op.out, &f->err));
}

static int try_transfer(struct fx *f, int64_t now, const char *from, const char *to,
			const char *phase, const char *gpu, int64_t secs, bool oversubscribe)
{
	struct op op;
	struct ledger_ctx ctx = ctx_at(now);
	struct transfer_req r = {.from = from, .to = to, .phase = phase, .gpu = gpu,
				 .gpu_seconds = secs, .reason = "redistribution",
				 .oversubscribe = oversubscribe};
	op_begin(f, &op, now);
	return op_end(f, &op, ledger_transfer(f->l, &ctx, &r, &op.out, &f->err));
}

static int try_eliminate(struct fx *f, int64_t now, const char *c, int64_t effective)
{
	struct op op;
	struct ledger_ctx ctx = ctx_at(now);
	op_begin(f, &op, now);
	return op_end(f, &op, ledger_eliminate(f->l, &ctx, c, effective, "evaluation",
					       &op.out, &f->err));
}

static int try_reinstate(struct fx *f, int64_t now, const char *c, int64_t effective)
{
	struct op op;
	struct ledger_ctx ctx = ctx_at(now);
	op_begin(f, &op, now);
	return op_end(f, &op, ledger_reinstate(f->l, &ctx, c, effective, "repechage",
					       &op.out, &f->err));
}

static int tick(struct fx *f, int64_t now)
{
	struct op op;
	struct ledger_ctx ctx = ctx_at(now);
	op_begin(f, &op, now);
	int n = ledger_tick(f->l, &ctx, &op.out);
	assert_int_equal(n, (int)op.out.n);
	op_end(f, &op, 0);
	return n;
}

/* The refusal just seen: its code and a phrase of the message. */
static void expect_err(struct fx *f, enum error_code code, const char *gist)
{
	if (f->err.code != code)
		fail_msg("refused with %s, expected %s", error_name(f->err.code), error_name(code));
	if (gist && strstr(f->err.message, gist) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", f->err.message, gist);
}

static json_t *detail(struct fx *f, const char *key)
{
	assert_non_null(f->err.details);
	json_t *v = json_object_get(f->err.details, key);
	if (v == NULL)
		fail_msg("details lack '%s'", key);
	return v;
}

static int64_t detail_int(struct fx *f, const char *key)
{
	json_t *v = detail(f, key);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static const char *detail_str(struct fx *f, const char *key)
{
	json_t *v = detail(f, key);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

static const struct balance *bal(struct fx *f, const char *c, const char *p, const char *g)
{
	const struct balance *b = ledger_balance(f->l, c, p, g);
	assert_non_null(b);
	return b;
}

static int64_t avail(const struct balance *b)
{
	return b->granted - b->committed - b->expired;
}

static size_t n_allocs(const struct ledger *l)
{
	const struct alloc *const *as;
	return ledger_allocs(l, &as);
}

static const char *fmt(int64_t t)
{
	static char bufs[4][TIME_BUFSZ];
	static unsigned i;
	return time_format(t, KST, bufs[i++ % 4], TIME_BUFSZ);
}

/* Common instants. */
#define P1_NOW T("2025-12-01")
#define P2_NOW T("2026-02-01")
#define BIG (INT64_C(1) << 40)	/* a quota no test runs out of */

/* --- grant ------------------------------------------------------------- */

static int try_usage(struct fx *f, int64_t now, const char *c, const char *phase,
		     const char *gpu, const char *job, int64_t secs)
{
	struct op op;
	struct ledger_ctx ctx = ctx_at(now);
	struct usage_req r = {.source = "kr1", .job_id = job, .consortium = c, .phase = phase,
			      .gpu = gpu, .gpu_seconds = secs, .end = now - HOUR};
	op_begin(f, &op, now);
	return op_end(f, &op, ledger_usage(f->l, &ctx, &r, &op.out, &f->err));
}

/* Metered use: one usage entry, the key's used sum, nothing else moves. */
static void test_usage(void **state)
{
	struct fx *f = *state;
	const char *source, *job;
	int64_t amount;

	grant_ok(f, P2_NOW, "lg", "p2", "B200", 1000 * HOUR, -1);
	assert_int_equal(try_usage(f, P2_NOW, "lg", "p2", "B200", "4242", 8 * HOUR), 0);
	assert_int_equal(f->last.n, 1);
	const struct jentry *e = &f->last.v[0];
	assert_int_equal(e->kind, J_USAGE);
	assert_string_equal(e->consortium, "lg");
	assert_null(e->allocation);
	assert_int_equal(e->end, P2_NOW - HOUR);
	assert_int_equal(e->granted_delta, 0);
	assert_int_equal(e->committed_delta, 0);
	assert_int_equal(jentry_usage_fields(e, &source, &job, &amount), 0);
	assert_string_equal(source, "kr1");
	assert_string_equal(job, "4242");
	assert_int_equal(amount, 8 * HOUR);
	const struct balance *b = bal(f, "lg", "p2", "B200");
	assert_int_equal(b->used, 8 * HOUR);
	assert_int_equal(b->granted, 1000 * HOUR);
	assert_int_equal(avail(b), 1000 * HOUR);

	/* the canonical encoding carries the extra and reads back whole */
	char *canon = jentry_canonical(e);
	assert_non_null(strstr(canon, "\"extra\":{\"job_id\":\"4242\",\"source\":\"kr1\",\"used_gpu_seconds\":28800}"));
	json_t *o = json_loads(canon, 0, NULL);
	struct jentry back;
	const char *why;
	assert_int_equal(jentry_from_canonical_json(o, &back, &why), 0);
	char *again = jentry_canonical(&back);
	assert_string_equal(again, canon);
	free(again);
	jentry_clear(&back);
	json_decref(o);
	free(canon);

	/* a key without a grant still records what ran; zero is a measurement too */
	assert_int_equal(try_usage(f, P2_NOW, "skt", "p2", "H200", "1", 0), 0);
	assert_int_equal(bal(f, "skt", "p2", "H200")->used, 0);
	assert_int_equal(try_usage(f, P2_NOW, "lg", "p2", "B200", "4243", HOUR), 0);
	assert_int_equal(bal(f, "lg", "p2", "B200")->used, 9 * HOUR);

	/* refusals: typed, and nothing changes (op_end compares snapshots) */
	assert_int_equal(try_usage(f, P2_NOW, "kakao", "p2", "B200", "5", HOUR), -EINVAL);
	expect_err(f, ERR_NOT_FOUND, "kakao");
	assert_int_equal(try_usage(f, P2_NOW, "lg", "p9", "B200", "5", HOUR), -EINVAL);
	expect_err(f, ERR_UNKNOWN_PHASE, "p9");
	assert_int_equal(try_usage(f, P2_NOW, "lg", "p2", "A100", "5", HOUR), -EINVAL);
	expect_err(f, ERR_UNKNOWN_GPU, "A100");
	assert_int_equal(try_usage(f, P2_NOW, "lg", "p2", "B200", "5", -1), -EINVAL);
	expect_err(f, ERR_INVALID_AMOUNT, "0 or more");
	assert_int_equal(try_usage(f, P2_NOW, "lg", "p2", "B200", "5", INT64_MAX / 4), -EINVAL);
	expect_err(f, ERR_INVALID_AMOUNT, "overflow");

	/* not a usage entry, or one whose extra lacks a field */
	struct jentry x = {.kind = J_GRANT};
	assert_int_equal(jentry_usage_fields(&x, &source, &job, &amount), -EINVAL);
	x.kind = J_USAGE;
	x.extra = json_pack("{s:s, s:I}", "source", "kr1", "used_gpu_seconds", (json_int_t)1);
	assert_int_equal(jentry_usage_fields(&x, &source, &job, &amount), -EINVAL);
	json_object_set_new(x.extra, "job_id", json_string("1"));
	json_object_set_new(x.extra, "used_gpu_seconds", json_integer(-1));
	assert_int_equal(jentry_usage_fields(&x, &source, &job, &amount), -EINVAL);
	jentry_clear(&x);
}

static void test_grant_entry(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "lg", "p2", "B200", 1000 * HOUR, -1);
	assert_int_equal(f->last.n, 1);
	const struct jentry *e = &f->last.v[0];
	assert_int_equal(e->kind, J_GRANT);
	assert_int_equal(e->seq, 1);
	assert_string_equal(e->consortium, "lg");
	assert_string_equal(e->phase, "p2");
	assert_string_equal(e->gpu, "B200");
	assert_int_equal(e->granted_delta, 1000 * HOUR);
	assert_int_equal(e->committed_delta, 0);
	assert_string_equal(e->reason, "test");

	const struct balance *b = bal(f, "lg", "p2", "B200");
	assert_int_equal(b->granted, 1000 * HOUR);
	assert_int_equal(b->committed, 0);
	assert_int_equal(b->expired, 0);
	assert_int_equal(b->max_gpus, 0);

	/* a second grant adds up */
	grant_ok(f, now, "lg", "p2", "B200", 24 * HOUR, -1);
	assert_int_equal(bal(f, "lg", "p2", "B200")->granted, 1024 * HOUR);
	assert_int_equal(ledger_head_seq(f->l), 2);
}

static void test_grant_negative_is_adjust(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "lg", "p2", "H200", 100 * HOUR, -1);
	grant_ok(f, now, "lg", "p2", "H200", -40 * HOUR, -1);
	assert_int_equal(f->last.n, 1);
	assert_int_equal(f->last.v[0].kind, J_ADJUST);
	assert_int_equal(f->last.v[0].granted_delta, -40 * HOUR);
	assert_int_equal(bal(f, "lg", "p2", "H200")->granted, 60 * HOUR);
}

static void test_grant_adjust_below_committed(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "lg", "p2", "H200", 10 * HOUR, -1);
	alloc_ok(f, now, "lg", "ncloud-h200", 8, T("2026-03-01"), T("2026-03-01T01:00"));
	assert_int_equal(bal(f, "lg", "p2", "H200")->committed, 8 * HOUR);

	assert_int_equal(try_grant(f, now, "lg", "p2", "H200", -3 * HOUR, -1), -EINVAL);
	expect_err(f, ERR_BELOW_COMMITTED, "below what is already committed");
	assert_int_equal(detail_int(f, "granted_gpu_seconds"), 10 * HOUR);
	assert_int_equal(detail_int(f, "committed_gpu_seconds"), 8 * HOUR);
	assert_int_equal(detail_int(f, "requested_delta_gpu_seconds"), -3 * HOUR);

	/* down to exactly what is committed is fine */
	grant_ok(f, now, "lg", "p2", "H200", -2 * HOUR, -1);
	assert_int_equal(avail(bal(f, "lg", "p2", "H200")), 0);

	/* on a key with nothing granted, any negative amount is below */
	assert_int_equal(try_grant(f, now, "skt", "p2", "H200", -1, -1), -EINVAL);
	expect_err(f, ERR_BELOW_COMMITTED, NULL);
	assert_null(ledger_balance(f->l, "skt", "p2", "H200"));
}

static void test_grant_with_cap(void **state)
{
	struct fx *f = *state;

	grant_ok(f, P2_NOW, "lg", "p2", "B200", 500 * HOUR, 16);
	assert_int_equal(f->last.n, 2);
	assert_int_equal(f->last.v[0].kind, J_GRANT);
	assert_int_equal(f->last.v[0].granted_delta, 500 * HOUR);
	assert_int_equal(f->last.v[1].kind, J_CAP);
	assert_int_equal(f->last.v[1].max_gpus, 16);
	assert_int_equal(f->last.v[1].granted_delta, 0);
	const struct balance *b = bal(f, "lg", "p2", "B200");
	assert_int_equal(b->granted, 500 * HOUR);
	assert_int_equal(b->max_gpus, 16);
}

static void test_grant_cap_only(void **state)
{
	struct fx *f = *state;

	grant_ok(f, P2_NOW, "lg", "p2", "B200", 500 * HOUR, -1);
	grant_ok(f, P2_NOW, "lg", "p2", "B200", 0, 8);
	assert_int_equal(f->last.n, 1);
	assert_int_equal(f->last.v[0].kind, J_CAP);
	assert_int_equal(f->last.v[0].max_gpus, 8);
	assert_int_equal(bal(f, "lg", "p2", "B200")->granted, 500 * HOUR);
	assert_int_equal(bal(f, "lg", "p2", "B200")->max_gpus, 8);

	/* 0 lifts the cap, and says so in the journal */
	grant_ok(f, P2_NOW, "lg", "p2", "B200", 0, 0);
	assert_int_equal(f->last.n, 1);
	assert_int_equal(f->last.v[0].kind, J_CAP);
	assert_int_equal(f->last.v[0].max_gpus, 0);
	assert_int_equal(bal(f, "lg", "p2", "B200")->max_gpus, 0);
}

static void test_grant_invalid_amount(void **state)
{
	struct fx *f = *state;

	assert_int_equal(try_grant(f, P2_NOW, "lg", "p2", "B200", 0, -1), -EINVAL);
	expect_err(f, ERR_INVALID_AMOUNT, "non-zero amount or a GPU cap");
	assert_int_equal(ledger_head_seq(f->l), 0);

	assert_int_equal(try_grant(f, P2_NOW, "lg", "p2", "B200", 0, INT64_C(2000000000)), -EINVAL);
	expect_err(f, ERR_INVALID_AMOUNT, "too large");
}

static void test_grant_unknown_phase_gpu_consortium(void **state)
{
	struct fx *f = *state;

	assert_int_equal(try_grant(f, P2_NOW, "lg", "p9", "B200", HOUR, -1), -EINVAL);
	expect_err(f, ERR_UNKNOWN_PHASE, "p9");
	assert_int_equal(try_grant(f, P2_NOW, "lg", NULL, "B200", HOUR, -1), -EINVAL);
	expect_err(f, ERR_UNKNOWN_PHASE, NULL);

	assert_int_equal(try_grant(f, P2_NOW, "lg", "p2", "A100", HOUR, -1), -EINVAL);
	expect_err(f, ERR_UNKNOWN_GPU, "A100");
	assert_int_equal(try_grant(f, P2_NOW, "lg", "p2", NULL, HOUR, -1), -EINVAL);
	expect_err(f, ERR_UNKNOWN_GPU, NULL);

	assert_int_equal(try_grant(f, P2_NOW, "kakao", "p2", "B200", HOUR, -1), -EINVAL);
	expect_err(f, ERR_NOT_FOUND, "kakao");
	assert_null(f->err.details);
	assert_int_equal(try_grant(f, P2_NOW, NULL, "p2", "B200", HOUR, -1), -EINVAL);
	expect_err(f, ERR_NOT_FOUND, NULL);
}

static void test_grant_phase_closed(void **state)
{
	struct fx *f = *state;

	/* the last second of p1 still takes a grant */
	grant_ok(f, T("2026-01-15T23:59:59"), "lg", "p1", "H200", HOUR, -1);

	assert_int_equal(try_grant(f, T("2026-01-16"), "lg", "p1", "H200", HOUR, -1), -EINVAL);
	expect_err(f, ERR_PHASE_CLOSED, "2026-01-16T00:00:00+09:00");
	assert_string_equal(detail_str(f, "phase_end"), "2026-01-16T00:00:00+09:00");
	/* a cap or an adjustment is closed too */
	assert_int_equal(try_grant(f, T("2026-03-01"), "lg", "p1", "H200", -HOUR, 4), -EINVAL);
	expect_err(f, ERR_PHASE_CLOSED, "p1");
}

static void test_grant_eliminated_not_active(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "lg", "p2", "H200", 100 * HOUR, -1);
	assert_int_equal(try_eliminate(f, now, "lg", T("2026-02-10")), 0);

	/* until the elimination takes effect, p2 quota can still be used */
	grant_ok(f, now, "lg", "p2", "H200", HOUR, -1);
	grant_ok(f, now, "lg", "p2", "H200", -HOUR, -1);
	/* from then on a grant could never be used */
	assert_int_equal(try_grant(f, T("2026-02-10"), "lg", "p2", "H200", HOUR, -1), -EINVAL);
	expect_err(f, ERR_NOT_ACTIVE, "eliminated");
	assert_string_equal(detail_str(f, "eliminated_at"), "2026-02-10T00:00:00+09:00");

	/* taking quota back is still possible */
	grant_ok(f, now, "lg", "p2", "H200", -10 * HOUR, -1);
	assert_int_equal(bal(f, "lg", "p2", "H200")->granted, 90 * HOUR);
}

static void test_grant_cap_below_booked(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	alloc_ok(f, now, "lg", "ncloud-h200", 12, T("2026-03-01"), T("2026-03-05"));
	alloc_ok(f, now, "lg", "ncloud-h200", 4, T("2026-03-03"), T("2026-03-06"));

	assert_int_equal(try_grant(f, now, "lg", "p2", "H200", 0, 15), -EINVAL);
	expect_err(f, ERR_CAP_EXCEEDED, "too low");
	assert_int_equal(detail_int(f, "max_gpus"), 15);
	assert_int_equal(detail_int(f, "booked_gpus"), 16);
	/* a grant with a bad cap is refused whole: no grant entry either */
	assert_int_equal(try_grant(f, now, "lg", "p2", "H200", HOUR, 8), -EINVAL);
	expect_err(f, ERR_CAP_EXCEEDED, NULL);

	grant_ok(f, now, "lg", "p2", "H200", 0, 16);
	assert_int_equal(bal(f, "lg", "p2", "H200")->max_gpus, 16);
}

static void test_grant_overflow(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	assert_int_equal(try_grant(f, now, "lg", "p2", "B200", INT64_MAX, -1), -EINVAL);
	expect_err(f, ERR_INVALID_AMOUNT, "overflow");

	grant_ok(f, now, "lg", "p2", "B200", INT64_MAX / 4, -1);
	assert_int_equal(try_grant(f, now, "lg", "p2", "B200", 1, -1), -EINVAL);
	expect_err(f, ERR_INVALID_AMOUNT, "overflow");
	assert_int_equal(try_grant(f, now, "lg", "p2", "B200", INT64_MAX, -1), -EINVAL);
	expect_err(f, ERR_INVALID_AMOUNT, "overflow");
	assert_int_equal(try_grant(f, now, "lg", "p2", "B200", INT64_MIN, -1), -EINVAL);
	assert_int_equal(bal(f, "lg", "p2", "B200")->granted, INT64_MAX / 4);
}

/* --- allocate ---------------------------------------------------------- */

static void test_allocate_books(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, s = T("2026-03-01T09:00"), e = s + 10 * HOUR;

	grant_ok(f, now, "lg", "p2", "B200", 1000 * HOUR, -1);
	const char *id = alloc_ok(f, now, "lg", "skt-b200", 8, s, e);
	assert_string_equal(id, "A-000001");

	const struct jentry *j = &f->last.v[0];
	assert_int_equal(j->kind, J_RESERVE);
	assert_string_equal(j->consortium, "lg");
	assert_string_equal(j->phase, "p2");
	assert_string_equal(j->gpu, "B200");
	assert_string_equal(j->pool, "skt-b200");
	assert_string_equal(j->allocation, "A-000001");
	assert_int_equal(j->gpus, 8);
	assert_int_equal(j->start, s);
	assert_int_equal(j->end, e);
	assert_int_equal(j->committed_delta, 8 * 10 * HOUR);
	assert_int_equal(j->granted_delta, 0);

	const struct balance *b = bal(f, "lg", "p2", "B200");
	assert_int_equal(b->committed, 80 * HOUR);
	assert_int_equal(avail(b), 920 * HOUR);

	const struct alloc *a = ledger_alloc(f->l, "A-000001");
	assert_non_null(a);
	assert_string_equal(a->pool, "skt-b200");
	assert_string_equal(a->phase, "p2");
	assert_int_equal(a->cost, 80 * HOUR);
	assert_int_equal(a->start, s);
	assert_int_equal(a->end, e);
	assert_int_equal(a->booked_end, e);
	assert_int_equal(a->seq, j->seq);
	assert_int_equal(a->created, now);
	assert_string_equal(a->note, "job");
	assert_int_equal(alloc_state_at(a, now), AS_RESERVED);
	assert_int_equal(alloc_state_at(a, s), AS_ACTIVE);
	assert_int_equal(alloc_state_at(a, e), AS_COMPLETED);

	/* ids go on from there, and a refusal in between uses none */
	assert_int_equal(try_alloc(f, now, "lg", "skt-b200", NULL, 8, s, s + 10000 * HOUR, false),
			 -EINVAL);
	assert_string_equal(alloc_ok(f, now, "lg", "skt-b200", 1, s, s + 1), "A-000002");
	assert_int_equal(f->last.v[0].committed_delta, 1);
	assert_string_equal(alloc_ok(f, now, "lg", "skt-b200", 2, s, s + 3), "A-000003");
	assert_int_equal(bal(f, "lg", "p2", "B200")->committed, 80 * HOUR + 1 + 6);
	assert_int_equal(n_allocs(f->l), 3);
	assert_null(ledger_alloc(f->l, "A-000004"));
}

static void test_allocate_crosses_phase(void **state)
{
	struct fx *f = *state;
	int64_t now = P1_NOW;

	grant_ok(f, now, "lg", "p1", "H200", BIG, -1);
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T("2026-01-15"),
				   T("2026-01-17"), false), -EINVAL);
	expect_err(f, ERR_CROSSES_PHASE, "2026-01-16T00:00:00+09:00");
	assert_string_equal(detail_str(f, "phase_end"), "2026-01-16T00:00:00+09:00");
	assert_string_equal(detail_str(f, "phase"), "p1");

	/* ending exactly at the phase end is inside it */
	alloc_ok(f, now, "lg", "ncloud-h200", 8, T("2026-01-15"), T("2026-01-16"));
}

static void test_allocate_phase_gap(void **state)
{
	struct fx *f = *state;
	reset_with(f, cfg_more);
	grant_ok(f, P2_NOW, "lg", "p3", "H200", BIG, -1);
	/* between p2 (ends 2026-08-01) and p3 (starts 2026-09-01) */
	assert_int_equal(try_alloc(f, P2_NOW, "lg", "ncloud-h200", NULL, 8, T("2026-08-10"),
				   T("2026-08-11"), false), -EINVAL);
	expect_err(f, ERR_CROSSES_PHASE, "no phase contains the start");
	/* starting in the gap and running into p3 is no better */
	assert_int_equal(try_alloc(f, P2_NOW, "lg", "ncloud-h200", NULL, 8, T("2026-08-31"),
				   T("2026-09-02"), false), -EINVAL);
	expect_err(f, ERR_CROSSES_PHASE, NULL);
	alloc_ok(f, P2_NOW, "lg", "ncloud-h200", 8, T("2026-09-01"), T("2026-09-02"));
}

static void test_allocate_invalid_window(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, s = T("2026-03-01");

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, s, s, false), -EINVAL);
	expect_err(f, ERR_INVALID_WINDOW, "must be after the start");
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, s, s - HOUR, false), -EINVAL);
	expect_err(f, ERR_INVALID_WINDOW, NULL);

	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, now - 1, now + HOUR, false),
			 -EINVAL);
	expect_err(f, ERR_INVALID_WINDOW, "in the past");
	assert_string_equal(detail_str(f, "now"), "2026-02-01T00:00:00+09:00");

	/* starting right now is allowed */
	alloc_ok(f, now, "lg", "ncloud-h200", 8, now, now + HOUR);
}

static void test_allocate_bad_request(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, s = T("2026-03-01");

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	assert_int_equal(try_alloc(f, now, "lg", "aws-h100", NULL, 8, s, s + HOUR, false), -EINVAL);
	expect_err(f, ERR_NOT_FOUND, "aws-h100");
	assert_int_equal(try_alloc(f, now, "lg", NULL, "H100", 8, s, s + HOUR, false), -EINVAL);
	expect_err(f, ERR_UNKNOWN_GPU, "H100");
	assert_int_equal(try_alloc(f, now, "kakao", "ncloud-h200", NULL, 8, s, s + HOUR, false),
			 -EINVAL);
	expect_err(f, ERR_NOT_FOUND, "kakao");
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 0, s, s + HOUR, false), -EINVAL);
	expect_err(f, ERR_INVALID_AMOUNT, NULL);
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, -8, s, s + HOUR, false), -EINVAL);
	expect_err(f, ERR_INVALID_AMOUNT, NULL);
}

static void test_allocate_quota_exceeded(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, s = T("2026-03-01");

	/* nothing granted: 0 available */
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 1, s, s + 1, false), -EINVAL);
	expect_err(f, ERR_QUOTA_EXCEEDED, NULL);
	assert_int_equal(detail_int(f, "available_gpu_seconds"), 0);
	assert_int_equal(detail_int(f, "needed_gpu_seconds"), 1);

	grant_ok(f, now, "lg", "p2", "H200", 10 * HOUR, -1);
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, s, s + 2 * HOUR, false),
			 -EINVAL);
	expect_err(f, ERR_QUOTA_EXCEEDED, "10 GPU-hours of H200 left in p2; this needs 16");
	assert_int_equal(detail_int(f, "available_gpu_seconds"), 10 * HOUR);
	assert_int_equal(detail_int(f, "needed_gpu_seconds"), 16 * HOUR);

	/* exactly the rest fits; one more GPU-second does not */
	alloc_ok(f, now, "lg", "ncloud-h200", 5, s, s + 2 * HOUR);
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 1, s, s + 1, false), -EINVAL);
	expect_err(f, ERR_QUOTA_EXCEEDED, NULL);
	assert_int_equal(detail_int(f, "available_gpu_seconds"), 0);
	/* quota of another phase or model does not help */
	grant_ok(f, now, "lg", "p2", "B200", BIG, -1);
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 1, s, s + 1, false), -EINVAL);
	expect_err(f, ERR_QUOTA_EXCEEDED, NULL);
}

/* Brute force for rule 2: tries every start from `from` on (the request's
 * own and every end of a booking), checking the level at each instant
 * where it can rise; returns TIME_MAX when nothing fits before limit. */
static int64_t brute_earliest(const struct ledger *l, const char *pool, int64_t gpus,
			      int64_t from, int64_t duration, int64_t limit)
{
	const struct cfg_pool *p = config_pool(ledger_config(l), pool);
	const struct alloc *const *as;
	size_t n = ledger_allocs(l, &as);
	int64_t cap = p->gpus_per_node > 1 ? p->gpus / p->gpus_per_node * p->gpus_per_node : p->gpus;
	int64_t best = TIME_MAX;

	for (size_t c = 0; c <= n + 1; c++) {
		int64_t s = c == 0 ? from : c == 1 ? p->available_from : as[c - 2]->end;
		if (c >= 2 && strcmp(as[c - 2]->pool, pool) != 0)
			continue;
		if (s < from || s < p->available_from || s + duration > limit ||
		    s + duration > p->available_until || s >= best)
			continue;
		bool fits = true;
		for (size_t k = 0; k <= n && fits; k++) {
			int64_t x = k == 0 ? s : as[k - 1]->start;
			if (x < s || x >= s + duration)
				continue;
			int64_t level = 0;
			for (size_t i = 0; i < n; i++)
				if (strcmp(as[i]->pool, pool) == 0 && as[i]->start <= x && x < as[i]->end)
					level += as[i]->gpus;
			fits = level + gpus <= cap;
		}
		if (fits)
			best = s;
	}
	return best;
}

static void test_allocate_capacity_earliest_start(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	grant_ok(f, now, "skt", "p2", "H200", BIG, -1);
	/* levels: 600 from 03-01, 1000 from 03-05, 400 from 03-10, 900 from
	 * 03-12, 400 from 03-15, 0 from 03-20 */
	alloc_ok(f, now, "lg", "ncloud-h200", 600, T("2026-03-01"), T("2026-03-10"));
	alloc_ok(f, now, "skt", "ncloud-h200", 400, T("2026-03-05"), T("2026-03-20"));
	alloc_ok(f, now, "lg", "ncloud-h200", 500, T("2026-03-12"), T("2026-03-15"));

	int64_t s = T("2026-03-03"), d = 5 * DAY;
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 300, s, s + d, false), -EINVAL);
	expect_err(f, ERR_CAPACITY_UNAVAILABLE, "2026-03-15T00:00:00+09:00");
	int64_t want = brute_earliest(f->l, "ncloud-h200", 300, s, d, T("2026-08-01"));
	assert_int_equal(want, T("2026-03-15"));
	assert_string_equal(detail_str(f, "earliest_start"), fmt(want));
	assert_string_equal(detail_str(f, "pool"), "ncloud-h200");

	/* the hint is right: the same request at that start is booked */
	alloc_ok(f, now, "lg", "ncloud-h200", 300, want, want + d);

	/* a few more shapes against the brute force */
	static const struct { int64_t gpus, days; const char *from; } reqs[] = {
		{ 100, 1, "2026-03-01" }, { 624, 2, "2026-03-02" }, { 425, 3, "2026-03-04" },
		{ 1024, 1, "2026-03-01" }, { 700, 4, "2026-03-11" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(reqs); i++) {
		int64_t from = T(reqs[i].from), dd = reqs[i].days * DAY;
		int64_t exp = brute_earliest(f->l, "ncloud-h200", reqs[i].gpus, from, dd,
					     T("2026-08-01"));
		int rc = try_alloc(f, now, "skt", "ncloud-h200", NULL, reqs[i].gpus, from,
				   from + dd, false);
		if (exp == from) {
			assert_int_equal(rc, 0);
			continue;
		}
		assert_int_equal(rc, -EINVAL);
		expect_err(f, ERR_CAPACITY_UNAVAILABLE, NULL);
		assert_string_equal(detail_str(f, "earliest_start"), fmt(exp));
	}
}

static void test_allocate_capacity_nothing_fits(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "skt", "p2", "H200", BIG, -1);
	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	alloc_ok(f, now, "skt", "ncloud-h200", 1024, T("2026-02-02"), T("2026-07-30"));

	/* three days never fit before the phase ends on 08-01 */
	int64_t s = T("2026-03-01");
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 1, s, s + 3 * DAY, false),
			 -EINVAL);
	expect_err(f, ERR_CAPACITY_UNAVAILABLE, "no later start fits inside phase p2");
	assert_true(json_is_null(detail(f, "earliest_start")));

	/* two days just do, in the last two days of the phase */
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 1, s, s + 2 * DAY, false),
			 -EINVAL);
	expect_err(f, ERR_CAPACITY_UNAVAILABLE, NULL);
	assert_string_equal(detail_str(f, "earliest_start"), "2026-07-30T00:00:00+09:00");
}

static void test_allocate_lease_end(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "lg", "p2", "B200", BIG, -1);
	/* skt-b200 is leased until 2026-07-01 */
	assert_int_equal(try_alloc(f, now, "lg", "skt-b200", NULL, 8, T("2026-06-30"),
				   T("2026-07-02"), false), -EINVAL);
	expect_err(f, ERR_CAPACITY_UNAVAILABLE, NULL);
	assert_true(json_is_null(detail(f, "earliest_start")));
	assert_int_equal(try_alloc(f, now, "lg", "skt-b200", NULL, 8, T("2026-07-05"),
				   T("2026-07-06"), false), -EINVAL);
	expect_err(f, ERR_CAPACITY_UNAVAILABLE, NULL);

	/* by model, the hint points at the pool whose lease starts then */
	assert_int_equal(try_alloc(f, now, "lg", NULL, "B200", 8, T("2026-06-30"),
				   T("2026-07-02"), false), -EINVAL);
	expect_err(f, ERR_CAPACITY_UNAVAILABLE, "nhn-b200");
	assert_string_equal(detail_str(f, "earliest_start"), "2026-07-01T00:00:00+09:00");
	assert_string_equal(detail_str(f, "pool"), "nhn-b200");

	/* up to the last instant of the lease is fine */
	alloc_ok(f, now, "lg", "skt-b200", 1024, T("2026-06-29"), T("2026-07-01"));
	/* and nhn-b200 is not there before it starts */
	assert_int_equal(try_alloc(f, now, "lg", "nhn-b200", NULL, 8, T("2026-06-30"),
				   T("2026-07-01T01:00"), false), -EINVAL);
	expect_err(f, ERR_CAPACITY_UNAVAILABLE, NULL);
	assert_string_equal(detail_str(f, "earliest_start"), "2026-07-01T00:00:00+09:00");
}

static void test_allocate_cap_exceeded(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "lg", "p2", "H200", BIG, 16);
	alloc_ok(f, now, "lg", "ncloud-h200", 12, T("2026-03-01"), T("2026-03-05"));
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T("2026-03-04"),
				   T("2026-03-06"), false), -EINVAL);
	expect_err(f, ERR_CAP_EXCEEDED, "at most 16 H200 GPUs at once");
	assert_int_equal(detail_int(f, "max_gpus"), 16);
	assert_string_equal(detail_str(f, "earliest_start"), "2026-03-05T00:00:00+09:00");

	/* up to the cap is fine, and others are not held to lg's cap */
	alloc_ok(f, now, "lg", "ncloud-h200", 4, T("2026-03-04"), T("2026-03-06"));
	grant_ok(f, now, "skt", "p2", "H200", BIG, -1);
	alloc_ok(f, now, "skt", "ncloud-h200", 500, T("2026-03-04"), T("2026-03-06"));
}

static void test_allocate_not_active_before_joined(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "motif", "p2", "H200", BIG, -1);
	assert_int_equal(try_alloc(f, now, "motif", "ncloud-h200", NULL, 8, T("2026-02-19"),
				   T("2026-02-21"), false), -EINVAL);
	expect_err(f, ERR_NOT_ACTIVE, "not active before 2026-02-20T00:00:00+09:00");
	assert_string_equal(detail_str(f, "active_from"), "2026-02-20T00:00:00+09:00");
	alloc_ok(f, now, "motif", "ncloud-h200", 8, T("2026-02-20"), T("2026-02-21"));
}

static void test_allocate_not_whole_nodes(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, s = T("2026-07-02"), e = T("2026-07-03");

	grant_ok(f, now, "lg", "p2", "B200", BIG, -1);
	assert_int_equal(try_alloc(f, now, "lg", "nhn-b200", NULL, 12, s, e, false), -EINVAL);
	expect_err(f, ERR_NOT_WHOLE_NODES, "whole nodes of 8 GPUs");
	assert_int_equal(detail_int(f, "gpus_per_node"), 8);
	alloc_ok(f, now, "lg", "nhn-b200", 16, s, e);
	/* whole nodes up to the capacity, no more */
	alloc_ok(f, now, "lg", "nhn-b200", 48, s, e);
	assert_int_equal(try_alloc(f, now, "lg", "nhn-b200", NULL, 8, s, e, false), -EINVAL);
	expect_err(f, ERR_CAPACITY_UNAVAILABLE, NULL);
	assert_string_equal(detail_str(f, "earliest_start"), "2026-07-03T00:00:00+09:00");
}

/* --- allocate --earliest ----------------------------------------------- */

static void test_earliest_one_pool(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	grant_ok(f, now, "skt", "p2", "H200", BIG, -1);
	alloc_ok(f, now, "skt", "ncloud-h200", 1000, T("2026-03-01"), T("2026-03-10"));
	alloc_ok(f, now, "skt", "ncloud-h200", 1000, T("2026-03-11"), T("2026-03-20"));

	/* the one-day gap on 03-10 is too short for two days */
	int64_t s = T("2026-03-02"), d = 2 * DAY;
	int64_t want = brute_earliest(f->l, "ncloud-h200", 100, s, d, T("2026-08-01"));
	assert_int_equal(want, T("2026-03-20"));
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 100, s, s + d, true), 0);
	const struct alloc *a = ledger_alloc(f->l, last_id);
	assert_non_null(a);
	assert_int_equal(a->start, T("2026-03-20"));
	assert_int_equal(a->end, T("2026-03-22"));
	assert_int_equal(a->cost, 100 * d);
	assert_int_equal(f->last.v[0].start, T("2026-03-20"));
	assert_int_equal(f->last.v[0].end, T("2026-03-22"));

	/* one day fits in the gap */
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 25, s, s + DAY, true), 0);
	assert_int_equal(ledger_alloc(f->l, last_id)->start, T("2026-03-10"));

	/* a start that is free is kept */
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 24, T("2026-04-01"),
				   T("2026-04-02"), true), 0);
	assert_int_equal(ledger_alloc(f->l, last_id)->start, T("2026-04-01"));
}

static void test_earliest_past_start_moves_to_now(void **state)
{
	struct fx *f = *state;
	int64_t now = T("2026-02-01T10:00");

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T("2026-02-01"),
				   T("2026-02-01T05:00"), true), 0);
	const struct alloc *a = ledger_alloc(f->l, last_id);
	assert_int_equal(a->start, now);
	assert_int_equal(a->end, now + 5 * HOUR);
}

static void test_earliest_by_model(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "lg", "p2", "B200", BIG, -1);
	grant_ok(f, now, "skt", "p2", "B200", BIG, -1);
	alloc_ok(f, now, "skt", "skt-b200", 1024, T("2026-06-01"), T("2026-07-01"));

	/* skt-b200 is full until its lease ends; nhn-b200 starts then */
	struct alloc_req r = {.consortium = "lg", .gpu = "B200", .gpus = 64,
			      .start = T("2026-06-01"), .end = T("2026-06-11"), .earliest = true};
	assert_int_equal(try_alloc_req(f, now, &r), 0);
	const struct alloc *a = ledger_alloc(f->l, last_id);
	assert_string_equal(a->pool, "nhn-b200");
	assert_string_equal(a->gpu, "B200");
	assert_int_equal(a->start, T("2026-07-01"));
	assert_int_equal(a->end, T("2026-07-11"));
	assert_string_equal(f->last.v[0].pool, "nhn-b200");

	/* earlier in the year skt-b200 is free and wins */
	r.start = T("2026-05-01");
	r.end = T("2026-05-02");
	assert_int_equal(try_alloc_req(f, now, &r), 0);
	a = ledger_alloc(f->l, last_id);
	assert_string_equal(a->pool, "skt-b200");
	assert_int_equal(a->start, T("2026-05-01"));

	/* not a multiple of 8: only skt-b200 can take it, and it never can */
	r.gpus = 12;
	r.start = T("2026-06-01");
	r.end = T("2026-06-11");
	assert_int_equal(try_alloc_req(f, now, &r), -EINVAL);
	expect_err(f, ERR_CAPACITY_UNAVAILABLE, NULL);
	assert_true(json_is_null(detail(f, "earliest_start")));
}

static void test_by_model_without_earliest(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "lg", "p2", "B200", BIG, -1);
	struct alloc_req r = {.consortium = "lg", .gpu = "B200", .gpus = 8,
			      .start = T("2026-03-01"), .end = T("2026-03-02")};
	assert_int_equal(try_alloc_req(f, now, &r), 0);
	assert_string_equal(ledger_alloc(f->l, last_id)->pool, "skt-b200");
	r.start = T("2026-07-10");
	r.end = T("2026-07-11");
	assert_int_equal(try_alloc_req(f, now, &r), 0);
	assert_string_equal(ledger_alloc(f->l, last_id)->pool, "nhn-b200");
	/* by model, whole nodes only matter if no pool can take the count */
	r.gpus = 12;
	assert_int_equal(try_alloc_req(f, now, &r), -EINVAL);
	expect_err(f, ERR_CAPACITY_UNAVAILABLE, NULL);
}

static void test_earliest_tie_first_pool(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	reset_with(f, cfg_more);
	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	grant_ok(f, now, "skt", "p2", "H200", BIG, -1);

	/* both H200 pools free: the first in the config */
	struct alloc_req r = {.consortium = "lg", .gpu = "H200", .gpus = 100,
			      .start = T("2026-03-01"), .end = T("2026-03-02"), .earliest = true};
	assert_int_equal(try_alloc_req(f, now, &r), 0);
	assert_string_equal(ledger_alloc(f->l, last_id)->pool, "ncloud-h200");

	/* both full until 03-10: still the first */
	alloc_ok(f, now, "skt", "ncloud-h200", 924, T("2026-03-01"), T("2026-03-10"));
	alloc_ok(f, now, "skt", "ncloud-h200", 100, T("2026-03-02"), T("2026-03-10"));
	alloc_ok(f, now, "skt", "kt-h200", 512, T("2026-03-01"), T("2026-03-10"));
	assert_int_equal(try_alloc_req(f, now, &r), 0);
	assert_string_equal(ledger_alloc(f->l, last_id)->pool, "ncloud-h200");
	assert_int_equal(ledger_alloc(f->l, last_id)->start, T("2026-03-10"));

	/* ncloud-h200 full for longer: kt-h200 is earlier */
	alloc_ok(f, now, "skt", "ncloud-h200", 924, T("2026-03-10"), T("2026-03-20"));
	assert_int_equal(try_alloc_req(f, now, &r), 0);
	assert_string_equal(ledger_alloc(f->l, last_id)->pool, "kt-h200");
	assert_int_equal(ledger_alloc(f->l, last_id)->start, T("2026-03-10"));
}

static void test_cap_counts_across_pools(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	reset_with(f, cfg_more);
	grant_ok(f, now, "lg", "p2", "H200", BIG, 16);
	alloc_ok(f, now, "lg", "ncloud-h200", 10, T("2026-03-01"), T("2026-03-05"));
	assert_int_equal(try_alloc(f, now, "lg", "kt-h200", NULL, 8, T("2026-03-02"),
				   T("2026-03-03"), false), -EINVAL);
	expect_err(f, ERR_CAP_EXCEEDED, NULL);
	alloc_ok(f, now, "lg", "kt-h200", 6, T("2026-03-02"), T("2026-03-03"));
}

static void test_earliest_respects_cap(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "lg", "p2", "H200", BIG, 16);
	alloc_ok(f, now, "lg", "ncloud-h200", 16, T("2026-03-01"), T("2026-03-05"));
	alloc_ok(f, now, "lg", "ncloud-h200", 10, T("2026-03-06"), T("2026-03-08"));

	/* the pool is nearly empty; the cap is what moves the start */
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T("2026-03-02"),
				   T("2026-03-04"), true), 0);
	const struct alloc *a = ledger_alloc(f->l, last_id);
	assert_int_equal(a->start, T("2026-03-08"));
	assert_int_equal(a->end, T("2026-03-10"));

	/* by model too */
	struct alloc_req r = {.consortium = "lg", .gpu = "H200", .gpus = 6,
			      .start = T("2026-03-02"), .end = T("2026-03-03"), .earliest = true};
	assert_int_equal(try_alloc_req(f, now, &r), 0);
	assert_int_equal(ledger_alloc(f->l, last_id)->start, T("2026-03-05"));
}

static void test_earliest_respects_joined(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "motif", "p2", "H200", BIG, -1);
	assert_int_equal(try_alloc(f, now, "motif", "ncloud-h200", NULL, 8, T("2026-02-01"),
				   T("2026-02-02"), true), 0);
	const struct alloc *a = ledger_alloc(f->l, last_id);
	assert_int_equal(a->start, T("2026-02-20"));
	assert_int_equal(a->end, T("2026-02-21"));
}

static void test_earliest_nothing_fits(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "skt", "p2", "H200", BIG, -1);
	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	alloc_ok(f, now, "skt", "ncloud-h200", 1024, T("2026-02-02"), T("2026-07-30"));
	int64_t s = T("2026-03-01");
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 1, s, s + 3 * DAY, true),
			 -EINVAL);
	expect_err(f, ERR_CAPACITY_UNAVAILABLE, "phase p2");
	assert_true(json_is_null(detail(f, "earliest_start")));
	/* the message speaks of the duration, not of a date in 1970 */
	if (strstr(f->err.message, "1970") != NULL)
		fail_msg("duration printed as a date: %s", f->err.message);
	assert_non_null(strstr(f->err.message, "72 hours"));

	/* the eliminated cannot search past their elimination */
	assert_int_equal(try_eliminate(f, now, "lg", T("2026-03-01")), 0);
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 1, s, s + 3 * DAY, true),
			 -EINVAL);
	expect_err(f, ERR_NOT_ACTIVE, NULL);
}

/*
 * Rule 6: the search does not stop at the end of the phase that contains
 * the start. It goes on into the later phases and across the gaps between
 * them, and the allocation is charged to the phase it lands in, whose
 * quota must cover it. cfg_more has p3 after a gap (2026-08-01 to -09-01)
 * and two H200 pools, ncloud-h200 listed before kt-h200.
 */
static void test_earliest_into_later_phases(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, p3 = T("2026-09-01");

	reset_with(f, cfg_more);
	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);

	/* a start in the gap: the next phase, which has no quota yet */
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T("2026-08-10"),
				   T("2026-08-11"), true), -EINVAL);
	expect_err(f, ERR_QUOTA_EXCEEDED, "p3");
	grant_ok(f, now, "lg", "p3", "H200", 1000 * HOUR, -1);
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T("2026-08-10"),
				   T("2026-08-11"), true), 0);
	const struct alloc *a = ledger_alloc(f->l, last_id);
	assert_int_equal(a->start, p3);
	assert_int_equal(a->end, p3 + DAY);
	assert_string_equal(a->phase, "p3");
	assert_int_equal(bal(f, "lg", "p3", "H200")->committed, 8 * DAY);
	assert_int_equal(bal(f, "lg", "p2", "H200")->committed, 0);

	/* late in a phase, with no room left before its end: the next phase */
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T("2026-07-31T20:00"),
				   T("2026-08-01T04:00"), true), 0);
	a = ledger_alloc(f->l, last_id);
	assert_int_equal(a->start, p3);
	assert_string_equal(a->phase, "p3");
	assert_int_equal(bal(f, "lg", "p3", "H200")->committed, 8 * DAY + 64 * HOUR);

	/* a phase that is full: skt holds all of ncloud-h200 to the end of p2 */
	grant_ok(f, now, "skt", "p2", "H200", BIG, -1);
	alloc_ok(f, now, "skt", "ncloud-h200", 1024, T("2026-07-01"), T("2026-08-01"));
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 16, T("2026-07-10"),
				   T("2026-07-10T01:00"), true), 0);
	a = ledger_alloc(f->l, last_id);
	assert_int_equal(a->start, p3);
	assert_string_equal(a->phase, "p3");

	/* the next phase's quota must cover it: else the first phase's refusal */
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 100, T("2026-07-10"),
				   T("2026-07-11"), true), -EINVAL);
	expect_err(f, ERR_CAPACITY_UNAVAILABLE, "phase p2");
	assert_non_null(strstr(f->err.message, "no later phase takes it either"));

	/* --gpu: every pool of the model, in every phase searched; ties to the first listed */
	assert_int_equal(try_alloc(f, now, "lg", NULL, "H200", 16, T("2026-07-10"),
				   T("2026-07-10T01:00"), true), 0);
	a = ledger_alloc(f->l, last_id);
	assert_int_equal(a->start, T("2026-07-10"));
	assert_string_equal(a->pool, "kt-h200");
	assert_string_equal(a->phase, "p2");
	grant_ok(f, now, "skt", "p3", "H200", BIG, -1);
	alloc_ok(f, now, "skt", "kt-h200", 512, T("2026-07-01"), T("2026-07-10"));
	alloc_ok(f, now, "skt", "kt-h200", 512 - 16, T("2026-07-10"), T("2026-07-10T01:00"));
	alloc_ok(f, now, "skt", "kt-h200", 512, T("2026-07-10T01:00"), T("2026-08-01"));
	assert_int_equal(try_alloc(f, now, "lg", NULL, "H200", 16, T("2026-07-10"),
				   T("2026-07-10T01:00"), true), 0);
	a = ledger_alloc(f->l, last_id);
	assert_int_equal(a->start, p3);
	assert_string_equal(a->pool, "ncloud-h200");
	alloc_ok(f, now, "skt", "ncloud-h200", 1024 - 8 - 8 - 16 - 16, p3, p3 + HOUR);
	assert_int_equal(try_alloc(f, now, "lg", NULL, "H200", 16, T("2026-07-10"),
				   T("2026-07-10T01:00"), true), 0);
	a = ledger_alloc(f->l, last_id);
	assert_int_equal(a->start, p3);
	assert_string_equal(a->pool, "kt-h200");

	/* a start in a phase long over, asked at a later now, lands from now on */
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T("2025-09-01"),
				   T("2025-09-01T01:00"), true), 0);
	a = ledger_alloc(f->l, last_id);
	assert_int_equal(a->start, now);
	assert_string_equal(a->phase, "p2");

	/* after the last phase there is nothing to search */
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T("2027-02-01"),
				   T("2027-02-01T01:00"), true), -EINVAL);
	expect_err(f, ERR_CROSSES_PHASE, "no phase ends after 2027-02-01T00:00:00+09:00");
}

/* The search also goes on past an elimination, into the stretch a reinstatement opens. */
static void test_earliest_after_reinstatement(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	reset_with(f, cfg_more);
	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	assert_int_equal(try_eliminate(f, now, "lg", T("2026-03-01")), 0);
	assert_int_equal(try_reinstate(f, now, "lg", T("2026-10-01")), 0);
	grant_ok(f, now, "lg", "p3", "H200", BIG, -1);
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T("2026-02-28"),
				   T("2026-03-02"), true), 0);
	const struct alloc *a = ledger_alloc(f->l, last_id);
	assert_int_equal(a->start, T("2026-10-01"));
	assert_string_equal(a->phase, "p3");
}

/* --- cancel and release ------------------------------------------------ */

static void test_cancel_reserved(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, s = T("2026-03-01");

	grant_ok(f, now, "lg", "p2", "H200", 20000 * HOUR, -1);
	const char *id = alloc_ok(f, now, "lg", "ncloud-h200", 1024, s, s + 10 * HOUR);
	assert_int_equal(avail(bal(f, "lg", "p2", "H200")), 9760 * HOUR);

	assert_int_equal(try_cancel(f, now, id), 0);
	assert_int_equal(f->last.n, 1);
	const struct jentry *e = &f->last.v[0];
	assert_int_equal(e->kind, J_CANCEL);
	assert_string_equal(e->allocation, id);
	assert_string_equal(e->pool, "ncloud-h200");
	assert_int_equal(e->committed_delta, -10240 * HOUR);
	assert_string_equal(e->reason, "no longer needed");
	assert_int_equal(bal(f, "lg", "p2", "H200")->committed, 0);
	assert_int_equal(avail(bal(f, "lg", "p2", "H200")), 20000 * HOUR);
	assert_null(ledger_alloc(f->l, id));
	assert_int_equal(n_allocs(f->l), 0);

	/* the GPUs are free again; a cancelled id is gone */
	alloc_ok(f, now, "lg", "ncloud-h200", 1024, s, s + HOUR);
	assert_int_equal(try_cancel(f, now, id), -EINVAL);
	expect_err(f, ERR_NOT_FOUND, id);
}

static void test_cancel_active_bad_state(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, s = T("2026-03-01");

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	const char *id = alloc_ok(f, now, "lg", "ncloud-h200", 8, s, s + DAY);
	assert_int_equal(try_cancel(f, s + 1, id), -EINVAL);
	expect_err(f, ERR_BAD_STATE, "use release");
	assert_string_equal(detail_str(f, "state"), "active");
	assert_int_equal(try_cancel(f, s + HOUR, id), -EINVAL);
	expect_err(f, ERR_BAD_STATE, NULL);
	/* one second before the start it was still reserved */
	assert_int_equal(try_cancel(f, s - 1, id), 0);
}

/*
 * Rule 7: an allocation that starts exactly now has not run yet: it can be
 * cancelled (now <= start), and releasing it at its start is refused with
 * the hint to cancel, since a release needs T > start.
 */
static void test_cancel_at_exact_start(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, s = T("2026-03-01");

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	grant_ok(f, now, "skt", "p2", "H200", BIG, -1);
	const char *id = alloc_ok(f, now, "lg", "ncloud-h200", 8, s, s + DAY);
	assert_int_equal(try_release(f, s, id, TIME_MIN), -EINVAL);
	expect_err(f, ERR_INVALID_WINDOW, "cancel the reservation instead");
	assert_int_equal(try_cancel(f, s, id), 0);
	assert_int_equal(f->last.v[0].committed_delta, -8 * DAY);
	assert_int_equal(bal(f, "lg", "p2", "H200")->committed, 0);
	assert_null(ledger_alloc(f->l, id));
	/* the GPUs are free again from that very instant */
	alloc_ok(f, s, "skt", "ncloud-h200", 1024, s, s + DAY);
}

static void test_cancel_not_found(void **state)
{
	struct fx *f = *state;

	assert_int_equal(try_cancel(f, P2_NOW, "A-000001"), -EINVAL);
	expect_err(f, ERR_NOT_FOUND, "A-000001");
	assert_int_equal(try_cancel(f, P2_NOW, "bogus"), -EINVAL);
	expect_err(f, ERR_NOT_FOUND, "bogus");
	assert_int_equal(try_cancel(f, P2_NOW, NULL), -EINVAL);
	expect_err(f, ERR_NOT_FOUND, NULL);
	assert_int_equal(try_release(f, P2_NOW, "A-999999", TIME_MIN), -EINVAL);
	expect_err(f, ERR_NOT_FOUND, "A-999999");
}

static void test_release_at_now(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, s = T("2026-03-01"), e = s + 10 * HOUR;

	grant_ok(f, now, "lg", "p2", "H200", 1000 * HOUR, -1);
	const char *id = alloc_ok(f, now, "lg", "ncloud-h200", 8, s, e);
	int64_t at = s + 4 * HOUR;

	assert_int_equal(try_release(f, at, id, TIME_MIN), 0);
	assert_int_equal(f->last.n, 1);
	const struct jentry *j = &f->last.v[0];
	assert_int_equal(j->kind, J_RELEASE);
	assert_string_equal(j->allocation, id);
	assert_int_equal(j->start, s);
	assert_int_equal(j->end, at);
	assert_int_equal(j->committed_delta, -8 * 6 * HOUR);

	const struct alloc *a = ledger_alloc(f->l, id);
	assert_int_equal(a->end, at);
	assert_int_equal(a->booked_end, e);
	assert_int_equal(a->cost, 8 * 4 * HOUR);
	assert_int_equal(alloc_state_at(a, at), AS_RELEASED);
	assert_int_equal(bal(f, "lg", "p2", "H200")->committed, 32 * HOUR);
	assert_int_equal(avail(bal(f, "lg", "p2", "H200")), 968 * HOUR);

	/* the released GPUs are free from then on */
	grant_ok(f, at, "skt", "p2", "H200", BIG, -1);
	alloc_ok(f, at, "skt", "ncloud-h200", 1024, at, e);
}

static void test_release_in_future(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, s = T("2026-03-01"), e = s + 10 * DAY;

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	const char *id = alloc_ok(f, now, "lg", "ncloud-h200", 100, s, e);
	int64_t at = s + 3 * DAY;

	assert_int_equal(try_release(f, s + DAY, id, at), 0);
	assert_int_equal(f->last.v[0].committed_delta, -100 * 7 * DAY);
	assert_int_equal(f->last.v[0].end, at);
	assert_int_equal(ledger_alloc(f->l, id)->end, at);
	assert_int_equal(ledger_alloc(f->l, id)->cost, 100 * 3 * DAY);
	assert_int_equal(bal(f, "lg", "p2", "H200")->committed, 100 * 3 * DAY);
}

static void test_release_invalid_window(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, s = T("2026-03-01"), e = s + 10 * HOUR;

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	const char *id = alloc_ok(f, now, "lg", "ncloud-h200", 8, s, e);
	int64_t mid = s + 5 * HOUR;

	assert_int_equal(try_release(f, now, id, s), -EINVAL);
	expect_err(f, ERR_INVALID_WINDOW, "cancel the reservation instead");
	assert_int_equal(try_release(f, now, id, s - HOUR), -EINVAL);
	expect_err(f, ERR_INVALID_WINDOW, NULL);
	/* at now, before the start: that is a cancel */
	assert_int_equal(try_release(f, now, id, TIME_MIN), -EINVAL);
	expect_err(f, ERR_INVALID_WINDOW, NULL);
	assert_int_equal(try_release(f, mid, id, e), -EINVAL);
	expect_err(f, ERR_INVALID_WINDOW, "before the end");
	assert_int_equal(try_release(f, mid, id, e + HOUR), -EINVAL);
	expect_err(f, ERR_INVALID_WINDOW, NULL);
	assert_int_equal(try_release(f, mid, id, mid - 1), -EINVAL);
	expect_err(f, ERR_INVALID_WINDOW, "must be from now");
	assert_int_equal(try_release(f, mid, id, e - 1), 0);
	assert_int_equal(f->last.v[0].committed_delta, -8);
}

static void test_completed_cannot_change(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, s = T("2026-03-01"), e = s + HOUR;

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	const char *id = alloc_ok(f, now, "lg", "ncloud-h200", 8, s, e);

	assert_int_equal(try_release(f, e, id, TIME_MIN), -EINVAL);
	expect_err(f, ERR_BAD_STATE, "has completed");
	assert_int_equal(try_cancel(f, e + DAY, id), -EINVAL);
	expect_err(f, ERR_BAD_STATE, "has completed");

	/* once time has passed it, the ledger forgets it: not found */
	assert_int_equal(tick(f, e), 0);
	assert_null(ledger_alloc(f->l, id));
	assert_int_equal(try_release(f, e, id, TIME_MIN), -EINVAL);
	expect_err(f, ERR_NOT_FOUND, id);
	assert_int_equal(try_cancel(f, e, id), -EINVAL);
	expect_err(f, ERR_NOT_FOUND, id);
}

/* --- eliminate and reinstate ------------------------------------------- */

static void test_eliminate_revokes_and_cuts(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, T_ = T("2026-02-15");

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	grant_ok(f, now, "skt", "p2", "H200", BIG, -1);
	const char *z = alloc_ok(f, now, "lg", "ncloud-h200", 2, T("2026-02-02"), T("2026-02-03"));
	const char *x = alloc_ok(f, now, "lg", "ncloud-h200", 8, T("2026-02-10"), T("2026-02-20"));
	const char *y = alloc_ok(f, now, "lg", "ncloud-h200", 4, T("2026-03-01"), T("2026-03-02"));
	const char *w = alloc_ok(f, now, "lg", "ncloud-h200", 3, T_, T("2026-02-16"));
	const char *q = alloc_ok(f, now, "skt", "ncloud-h200", 16, T("2026-02-10"), T("2026-02-20"));
	int64_t committed = bal(f, "lg", "p2", "H200")->committed;
	int64_t granted = bal(f, "lg", "p2", "H200")->granted;
	assert_int_equal(committed, 2 * DAY + 80 * DAY + 4 * DAY + 3 * DAY);

	int64_t now2 = T("2026-02-12");
	assert_int_equal(try_eliminate(f, now2, "lg", T_), 0);
	assert_int_equal(f->last.n, 4);
	const struct jentry *e = &f->last.v[0];
	assert_int_equal(e->kind, J_ELIMINATE);
	assert_string_equal(e->consortium, "lg");
	assert_null(e->phase);
	assert_int_equal(e->start, T_);
	assert_int_equal(e->end, T_ + 180 * DAY);
	assert_string_equal(e->reason, "evaluation");

	/* the running one is cut at T with the rest refunded */
	e = &f->last.v[1];
	assert_int_equal(e->kind, J_REVOKE);
	assert_string_equal(e->allocation, x);
	assert_int_equal(e->end, T_);
	assert_int_equal(e->committed_delta, -8 * 5 * DAY);
	/* those starting at or after T go whole */
	e = &f->last.v[2];
	assert_int_equal(e->kind, J_REVOKE);
	assert_string_equal(e->allocation, y);
	assert_int_equal(e->committed_delta, -4 * DAY);
	e = &f->last.v[3];
	assert_int_equal(e->kind, J_REVOKE);
	assert_string_equal(e->allocation, w);
	assert_int_equal(e->committed_delta, -3 * DAY);

	const struct alloc *a = ledger_alloc(f->l, x);
	assert_non_null(a);
	assert_int_equal(a->end, T_);
	assert_int_equal(a->cost, 8 * 5 * DAY);
	/* rule 8: it stays active, ending at T, until T */
	assert_int_equal(alloc_state_at(a, now2), AS_ACTIVE);
	assert_int_equal(alloc_state_at(a, T_ - 1), AS_ACTIVE);
	assert_int_equal(alloc_state_at(a, T_), AS_REVOKED);
	assert_null(ledger_alloc(f->l, y));
	assert_null(ledger_alloc(f->l, w));
	assert_non_null(ledger_alloc(f->l, z));
	/* skt's booking is untouched */
	assert_int_equal(ledger_alloc(f->l, q)->end, T("2026-02-20"));
	assert_int_equal(bal(f, "lg", "p2", "H200")->committed, 2 * DAY + 40 * DAY);
	/* p2 started before T: its quota stays (and will expire at its end) */
	assert_int_equal(bal(f, "lg", "p2", "H200")->granted, granted);

	const struct cstate *cs = ledger_cstate(f->l, "lg");
	assert_non_null(cs);
	assert_int_equal(cs->status, CS_ELIMINATED);
	assert_int_equal(cs->since, T_);
	assert_int_equal(cs->designation_until, T("2026-08-14"));
	assert_string_equal(fmt(cs->designation_until), "2026-08-14T00:00:00+09:00");

	/* the GPUs after T are free for others */
	alloc_ok(f, now2, "skt", "ncloud-h200", 1008, T_, T("2026-02-20"));
}

static void test_eliminate_revokes_later_phase_quota(void **state)
{
	struct fx *f = *state;
	int64_t now = P1_NOW, T_ = T("2025-12-15");

	grant_ok(f, now, "lg", "p1", "H200", 100 * HOUR, -1);
	grant_ok(f, now, "lg", "p2", "H200", 200 * HOUR, -1);
	grant_ok(f, now, "lg", "p2", "B200", 50 * HOUR, 8);
	const char *id = alloc_ok(f, now, "lg", "ncloud-h200", 8, T("2026-02-01"),
				  T("2026-02-01T01:00"));

	assert_int_equal(try_eliminate(f, now, "lg", T_), 0);
	assert_int_equal(f->last.n, 4);
	assert_int_equal(f->last.v[0].kind, J_ELIMINATE);
	assert_int_equal(f->last.v[1].kind, J_REVOKE);
	assert_string_equal(f->last.v[1].allocation, id);
	assert_int_equal(f->last.v[1].committed_delta, -8 * HOUR);

	/* quota revokes: no allocation, negative granted_delta = available */
	int found = 0;
	for (size_t i = 2; i < f->last.n; i++) {
		const struct jentry *e = &f->last.v[i];
		assert_int_equal(e->kind, J_REVOKE);
		assert_null(e->allocation);
		assert_string_equal(e->phase, "p2");
		assert_int_equal(e->committed_delta, 0);
		assert_int_equal(e->granted_delta,
				 strcmp(e->gpu, "H200") == 0 ? -200 * HOUR : -50 * HOUR);
		found++;
	}
	assert_int_equal(found, 2);
	assert_int_equal(bal(f, "lg", "p2", "H200")->granted, 0);
	assert_int_equal(bal(f, "lg", "p2", "H200")->committed, 0);
	assert_int_equal(bal(f, "lg", "p2", "B200")->granted, 0);
	/* the phase that runs at T keeps its quota */
	assert_int_equal(bal(f, "lg", "p1", "H200")->granted, 100 * HOUR);
}

/*
 * Rule 8 revokes the quota of the phases that start after T. A phase that
 * starts at T is the one that runs at T: it keeps its quota, unusable by
 * the eliminated team, and that quota expires at the phase's end (rule 9).
 */
static void test_eliminate_at_phase_boundary(void **state)
{
	struct fx *f = *state;
	int64_t now = P1_NOW, T_ = T("2026-01-16");	/* the evaluation at p1's end */

	reset_with(f, cfg_more);
	grant_ok(f, now, "lg", "p1", "H200", 100 * HOUR, -1);
	grant_ok(f, now, "lg", "p2", "H200", 200 * HOUR, -1);
	grant_ok(f, now, "lg", "p3", "H200", 300 * HOUR, -1);
	assert_int_equal(try_eliminate(f, now, "lg", T_), 0);
	/* only p3 starts after T */
	assert_int_equal(f->last.n, 2);
	assert_int_equal(f->last.v[1].kind, J_REVOKE);
	assert_string_equal(f->last.v[1].phase, "p3");
	assert_int_equal(f->last.v[1].granted_delta, -300 * HOUR);
	assert_int_equal(avail(bal(f, "lg", "p3", "H200")), 0);
	assert_int_equal(avail(bal(f, "lg", "p2", "H200")), 200 * HOUR);
	assert_int_equal(avail(bal(f, "lg", "p1", "H200")), 100 * HOUR);
	/* out for all of p2: no booking, no new grant */
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T_, T_ + HOUR, false),
			 -EINVAL);
	expect_err(f, ERR_NOT_ACTIVE, "eliminated from 2026-01-16T00:00:00+09:00");
	assert_int_equal(try_grant(f, now, "lg", "p2", "H200", HOUR, -1), -EINVAL);
	expect_err(f, ERR_NOT_ACTIVE, NULL);
	/* and what p2 kept expires with it */
	tick(f, T("2026-08-01"));
	assert_int_equal(bal(f, "lg", "p2", "H200")->expired, 200 * HOUR);
}

/*
 * Rule 8: an elimination recorded late takes effect up to
 * program.retroactive_days in the past. Status and designation count from
 * T; refunds only from now, since what ran until now was used.
 */
static void test_eliminate_retroactive(void **state)
{
	struct fx *f = *state;
	int64_t now0 = P2_NOW, T_ = T("2026-02-02"), now = T("2026-02-04T12:00");

	reset_with(f, cfg_more);
	grant_ok(f, now0, "lg", "p2", "H200", BIG, -1);
	grant_ok(f, now0, "lg", "p3", "H200", 300 * HOUR, -1);
	const char *x = alloc_ok(f, now0, "lg", "ncloud-h200", 8, now0, T("2026-02-10"));
	const char *y = alloc_ok(f, now0, "lg", "ncloud-h200", 4, T("2026-02-03"), T("2026-02-05"));
	const char *z = alloc_ok(f, now0, "lg", "ncloud-h200", 2, T("2026-02-06"), T("2026-02-07"));
	const char *w = alloc_ok(f, now0, "lg", "ncloud-h200", 1, T("2026-02-01T06:00"),
				 T("2026-02-02T06:00"));

	assert_int_equal(try_eliminate(f, now, "lg", T_), 0);
	assert_int_equal(f->last.v[0].kind, J_ELIMINATE);
	assert_int_equal(f->last.v[0].start, T_);
	assert_int_equal(f->last.v[0].end, T_ + 180 * DAY);
	/* x and y ran until now: cut there; z had not started: revoked whole */
	assert_int_equal(f->last.n, 5);
	assert_string_equal(f->last.v[1].allocation, x);
	assert_int_equal(f->last.v[1].end, now);
	assert_int_equal(f->last.v[1].committed_delta, -8 * (T("2026-02-10") - now));
	assert_string_equal(f->last.v[2].allocation, y);
	assert_int_equal(f->last.v[2].end, now);
	assert_int_equal(f->last.v[2].committed_delta, -4 * (T("2026-02-05") - now));
	assert_string_equal(f->last.v[3].allocation, z);
	assert_int_equal(f->last.v[3].committed_delta, -2 * DAY);
	/* w ended after T but before now: what ran was used, nothing to refund */
	assert_int_equal(ledger_alloc(f->l, w)->cost, DAY);
	/* p3 starts after T: its quota goes */
	assert_string_equal(f->last.v[4].phase, "p3");
	assert_int_equal(f->last.v[4].granted_delta, -300 * HOUR);
	assert_int_equal(bal(f, "lg", "p2", "H200")->committed,
			 8 * (now - now0) + 4 * (now - T("2026-02-03")) + DAY);
	/* cut at now, x and y are over: they leave memory as a reload would drop them */
	assert_null(ledger_alloc(f->l, x));
	assert_null(ledger_alloc(f->l, y));

	/* eliminated since T, as a person sees it now */
	int64_t since;
	const struct cstate *cs = ledger_cstate(f->l, "lg");
	assert_int_equal(cstate_status_at(cs, now, &since), CS_ELIMINATED);
	assert_int_equal(since, T_);
	assert_int_equal(cs->designation_until, T_ + 180 * DAY);
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, now, now + HOUR, false),
			 -EINVAL);
	expect_err(f, ERR_NOT_ACTIVE, "eliminated from 2026-02-02T00:00:00+09:00");

	/* exactly retroactive_days back is still allowed; a shorter setting refuses it */
	assert_int_equal(try_eliminate(f, now, "skt", now - 7 * DAY), 0);
	static const char cfg_retro_1[] =
		"program: {name: Test program, timezone: Asia/Seoul, retroactive_days: 1}\n" PHASES
		"pools:\n" POOL_NCLOUD "consortia:\n" C_LG;
	reset_with(f, cfg_retro_1);
	assert_int_equal(try_eliminate(f, now, "lg", now - DAY - 1), -EINVAL);
	expect_err(f, ERR_INVALID_WINDOW, "more than 1 day in the past");
	assert_int_equal(try_eliminate(f, now, "lg", now - DAY), 0);

	/* a reinstatement recorded late: active again since then, bookings from now */
	assert_int_equal(try_reinstate(f, now, "lg", now - DAY - 1), -EINVAL);
	expect_err(f, ERR_INVALID_WINDOW, "more than 1 day in the past");
	assert_int_equal(try_reinstate(f, now, "lg", now - HOUR), 0);
	cs = ledger_cstate(f->l, "lg");
	assert_int_equal(cstate_status_at(cs, now, &since), CS_ACTIVE);
	assert_int_equal(since, now - HOUR);
	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	alloc_ok(f, now, "lg", "ncloud-h200", 8, now, now + HOUR);
}

static void test_eliminate_refusals(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	/* program.retroactive_days (7 by default) back, and no further */
	assert_int_equal(try_eliminate(f, now, "lg", now - 7 * DAY - 1), -EINVAL);
	expect_err(f, ERR_INVALID_WINDOW, "more than 7 days in the past");
	assert_int_equal(detail_int(f, "retroactive_days"), 7);
	assert_null(ledger_cstate(f->l, "lg"));
	assert_int_equal(try_eliminate(f, now, "kakao", now), -EINVAL);
	expect_err(f, ERR_NOT_FOUND, "kakao");

	assert_int_equal(try_eliminate(f, now, "lg", now), 0);
	assert_int_equal(try_eliminate(f, now, "lg", T("2026-03-01")), -EINVAL);
	expect_err(f, ERR_BAD_STATE, "already eliminated");
	assert_string_equal(detail_str(f, "eliminated_at"), "2026-02-01T00:00:00+09:00");
}

static void test_allocate_after_elimination(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, T_ = T("2026-03-01");

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	assert_int_equal(try_eliminate(f, now, "lg", T_), 0);

	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T("2026-02-28"),
				   T("2026-03-02"), false), -EINVAL);
	expect_err(f, ERR_NOT_ACTIVE, "eliminated from 2026-03-01T00:00:00+09:00");
	assert_string_equal(detail_str(f, "eliminated_at"), "2026-03-01T00:00:00+09:00");
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T("2026-04-01"),
				   T("2026-04-02"), false), -EINVAL);
	expect_err(f, ERR_NOT_ACTIVE, NULL);
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T("2026-04-01"),
				   T("2026-04-02"), true), -EINVAL);
	expect_err(f, ERR_NOT_ACTIVE, NULL);
	/* until T it is still active */
	alloc_ok(f, now, "lg", "ncloud-h200", 8, T("2026-02-28"), T_);
}

/* A second elimination does not reopen the first eliminated span. */
static void test_eliminated_twice_keeps_first_span(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	assert_int_equal(try_eliminate(f, now, "lg", T("2026-02-15")), 0);
	assert_int_equal(try_reinstate(f, now, "lg", T("2026-03-01")), 0);
	grant_ok(f, now, "lg", "p2", "H200", 1000 * HOUR, -1);
	assert_int_equal(try_eliminate(f, now, "lg", T("2026-04-01")), 0);

	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T("2026-02-20"),
				   T("2026-02-21"), false), -EINVAL);
	expect_err(f, ERR_NOT_ACTIVE, "2026-03-01T00:00:00+09:00");
	alloc_ok(f, now, "lg", "ncloud-h200", 8, T("2026-03-02"), T("2026-03-03"));
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T("2026-03-31"),
				   T("2026-04-02"), false), -EINVAL);
	expect_err(f, ERR_NOT_ACTIVE, "2026-04-01T00:00:00+09:00");

	/* the same holds for a ledger loaded from what the store keeps */
	const struct cstate *cs = ledger_cstate(f->l, "lg");
	assert_int_equal(cs->active_from, T("2026-03-01"));
	struct ledger *l2 = ledger_new(f->cfg);
	char *cause = NULL;
	assert_int_equal(ledger_load_cstate(l2, cs, &cause), 0);
	const struct balance *b = bal(f, "lg", "p2", "H200");
	assert_int_equal(ledger_load_balance(l2, b, &cause), 0);
	struct ledger_ctx ctx = ctx_at(now);
	struct alloc_req r = {.consortium = "lg", .pool = "ncloud-h200", .gpus = 8,
			      .start = T("2026-02-20"), .end = T("2026-02-21")};
	struct jlist out = {0};
	struct ledger_error err = {0};
	const char *id;
	assert_int_equal(ledger_allocate(l2, &ctx, &r, &out, &id, &err), -EINVAL);
	assert_int_equal(err.code, ERR_NOT_ACTIVE);
	ledger_error_clear(&err);
	jlist_clear(&out);
	ledger_free(l2);
}

/*
 * Rule 8: reinstating before a future elimination takes effect (a
 * repechage decided early) never shortens the active stretch before it.
 */
static void test_reinstate_before_elimination_takes_effect(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, T_ = T("2026-03-01"), T2 = T("2026-04-01");

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	assert_int_equal(try_eliminate(f, now, "lg", T_), 0);
	assert_int_equal(try_reinstate(f, now, "lg", T2), 0);
	grant_ok(f, now, "lg", "p2", "H200", 1000 * HOUR, -1);

	/* still active before T: now up to T itself */
	alloc_ok(f, now, "lg", "ncloud-h200", 8, T("2026-02-10"), T("2026-02-11"));
	alloc_ok(f, now, "lg", "ncloud-h200", 8, T_ - DAY, T_);
	/* out between T and T2 */
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T_ - HOUR, T_ + HOUR,
				   false), -EINVAL);
	expect_err(f, ERR_NOT_ACTIVE, "eliminated from 2026-03-01T00:00:00+09:00");
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T("2026-03-10"),
				   T("2026-03-11"), false), -EINVAL);
	expect_err(f, ERR_NOT_ACTIVE, "not active before 2026-04-01T00:00:00+09:00");
	assert_string_equal(detail_str(f, "active_from"), "2026-04-01T00:00:00+09:00");
	/* and active again from T2 */
	alloc_ok(f, now, "lg", "ncloud-h200", 8, T2, T2 + DAY);
	/* --earliest skips the span: from inside it, and from a window that runs into it */
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T("2026-03-10"),
				   T("2026-03-11"), true), 0);
	assert_int_equal(ledger_alloc(f->l, last_id)->start, T2);
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T_ - HOUR,
				   T_ + 3 * HOUR, true), 0);
	assert_int_equal(ledger_alloc(f->l, last_id)->start, T2);
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 8, T_ - 4 * HOUR,
				   T_ - 3 * HOUR, true), 0);
	assert_int_equal(ledger_alloc(f->l, last_id)->start, T_ - 4 * HOUR);

	/* the status a person sees follows the clock */
	const struct cstate *cs = ledger_cstate(f->l, "lg");
	int64_t since = 0;
	assert_int_equal(cstate_status_at(cs, now, &since), CS_ACTIVE);
	assert_true(since == TIME_MIN);
	assert_int_equal(cstate_status_at(cs, T_, &since), CS_ELIMINATED);
	assert_int_equal(since, T_);
	assert_int_equal(cstate_status_at(cs, T2, &since), CS_ACTIVE);
	assert_int_equal(since, T2);
	assert_int_equal(cstate_next_span(cs, now)->from, T_);
	assert_null(cstate_next_span(cs, T2));

	/* a ledger loaded from what the store keeps (the spans with the row) agrees */
	struct ledger *l2 = ledger_new(f->cfg);
	char *cause = NULL;
	assert_int_equal(ledger_load_cstate(l2, cs, &cause), 0);
	assert_int_equal(ledger_load_balance(l2, bal(f, "lg", "p2", "H200"), &cause), 0);
	struct ledger_ctx ctx = ctx_at(now);
	struct alloc_req r = {.consortium = "lg", .pool = "ncloud-h200", .gpus = 8,
			      .start = T("2026-02-12"), .end = T("2026-02-13")};
	struct jlist out = {0};
	struct ledger_error err = {0};
	const char *id;
	assert_int_equal(ledger_allocate(l2, &ctx, &r, &out, &id, &err), 0);
	jlist_clear(&out);
	r.start = T("2026-03-12");
	r.end = T("2026-03-13");
	assert_int_equal(ledger_allocate(l2, &ctx, &r, &out, &id, &err), -EINVAL);
	assert_int_equal(err.code, ERR_NOT_ACTIVE);
	ledger_error_clear(&err);
	ledger_free(l2);
}

/* A loaded state whose eliminations do not line up is refused, not guessed at. */
static void test_load_cstate_spans_checked(void **state)
{
	struct fx *f = *state;
	char *cause = NULL;
	struct cs_span bad_order[] = {{T("2026-03-01"), T("2026-04-01")},
				      {T("2026-02-01"), TIME_MAX}};
	struct cs_span one_open[] = {{T("2026-03-01"), TIME_MAX}};
	struct cstate cs = {.consortium = "lg", .status = CS_ELIMINATED, .since = T("2026-02-01"),
			    .spans = bad_order, .n_spans = 2};

	assert_int_equal(ledger_load_cstate(f->l, &cs, &cause), -EINVAL);
	assert_non_null(strstr(cause, "out of order"));
	free(cause);
	cause = NULL;
	cs.status = CS_ACTIVE;
	cs.spans = one_open;
	cs.n_spans = 1;
	assert_int_equal(ledger_load_cstate(f->l, &cs, &cause), -EINVAL);
	assert_non_null(strstr(cause, "does not match"));
	free(cause);
	cause = NULL;
	assert_null(ledger_cstate(f->l, "lg"));
	cs.status = CS_ELIMINATED;
	assert_int_equal(ledger_load_cstate(f->l, &cs, &cause), 0);
	assert_int_equal(ledger_cstate(f->l, "lg")->n_spans, 1);
}

/* designation_grace_days: 0 means an eliminated team loses the title at once. */
static void test_eliminate_no_grace(void **state)
{
	struct fx *f = *state;
	static const char cfg_no_grace[] =
		"program: {name: Test program, timezone: Asia/Seoul}\n" PHASES
		"pools:\n" POOL_NCLOUD "consortia:\n" C_LG;

	reset_with(f, cfg_no_grace);
	assert_int_equal(try_eliminate(f, P2_NOW, "lg", T("2026-02-10")), 0);
	assert_int_equal(ledger_cstate(f->l, "lg")->designation_until, TIME_MIN);
	json_t *o = jentry_to_json(&f->last.v[0], KST);
	assert_true(json_is_null(json_object_get(o, "end")));
	json_decref(o);
}

/* --earliest says which bound left no room: the team's status or the phase. */
static void test_earliest_errors_name_the_bound(void **state)
{
	struct fx *f = *state;

	/* motif joins 2026-02-20, after p1 ends */
	grant_ok(f, P1_NOW, "motif", "p1", "H200", BIG, -1);
	assert_int_equal(try_alloc(f, P1_NOW, "motif", "ncloud-h200", NULL, 8, T("2025-12-10"),
				   T("2025-12-11"), true), -EINVAL);
	expect_err(f, ERR_NOT_ACTIVE, "2026-02-20T00:00:00+09:00");

	/* a window that cannot end before the phase does */
	grant_ok(f, P1_NOW, "lg", "p1", "H200", BIG, -1);
	assert_int_equal(try_alloc(f, P1_NOW, "lg", "ncloud-h200", NULL, 8, T("2026-01-10"),
				   T("2026-01-20"), true), -EINVAL);
	expect_err(f, ERR_CROSSES_PHASE, "2026-01-16T00:00:00+09:00");
	assert_string_equal(detail_str(f, "phase_end"), "2026-01-16T00:00:00+09:00");

	/* an elimination ahead leaves no room either */
	assert_int_equal(try_eliminate(f, P1_NOW, "lg", T("2025-12-05")), 0);
	assert_int_equal(try_alloc(f, P1_NOW, "lg", "ncloud-h200", NULL, 8, T("2025-12-04"),
				   T("2025-12-06"), true), -EINVAL);
	expect_err(f, ERR_NOT_ACTIVE, "2025-12-05T00:00:00+09:00");
}

static void test_reinstate(void **state)
{
	struct fx *f = *state;
	/* the evaluation on p1's last day: p2, which starts after it, loses its quota */
	int64_t now = P1_NOW, T_ = T("2026-01-15"), T2 = T("2026-02-10");

	grant_ok(f, now, "lg", "p2", "H200", 200 * HOUR, -1);
	assert_int_equal(try_reinstate(f, now, "lg", now), -EINVAL);
	expect_err(f, ERR_BAD_STATE, "not eliminated");
	assert_int_equal(try_reinstate(f, now, "kakao", now), -EINVAL);
	expect_err(f, ERR_NOT_FOUND, NULL);

	assert_int_equal(try_eliminate(f, now, "lg", T_), 0);
	int64_t now2 = T("2026-02-01");
	/* like an elimination, at most program.retroactive_days back, and not before it */
	assert_int_equal(try_reinstate(f, now2, "lg", now2 - 7 * DAY - 1), -EINVAL);
	expect_err(f, ERR_INVALID_WINDOW, "more than 7 days in the past");
	assert_int_equal(try_reinstate(f, T("2026-01-16"), "lg", T_ - 1), -EINVAL);
	expect_err(f, ERR_INVALID_WINDOW, "before the elimination");

	assert_int_equal(try_reinstate(f, now2, "lg", T2), 0);
	assert_int_equal(f->last.n, 1);
	assert_int_equal(f->last.v[0].kind, J_REINSTATE);
	assert_int_equal(f->last.v[0].start, T2);
	const struct cstate *cs = ledger_cstate(f->l, "lg");
	assert_int_equal(cs->status, CS_ACTIVE);
	assert_int_equal(cs->since, T2);
	assert_int_equal(cs->designation_until, TIME_MIN);

	/* the old quota was revoked: it needs a new grant */
	assert_int_equal(try_alloc(f, now2, "lg", "ncloud-h200", NULL, 8, T2, T2 + HOUR, false),
			 -EINVAL);
	expect_err(f, ERR_QUOTA_EXCEEDED, NULL);
	grant_ok(f, now2, "lg", "p2", "H200", 100 * HOUR, -1);
	alloc_ok(f, now2, "lg", "ncloud-h200", 8, T2, T2 + HOUR);
	/* and it is active only from T2 */
	assert_int_equal(try_alloc(f, now2, "lg", "ncloud-h200", NULL, 8, T2 - HOUR, T2 + HOUR,
				   false), -EINVAL);
	expect_err(f, ERR_NOT_ACTIVE, "not active before 2026-02-10T00:00:00+09:00");
	assert_int_equal(try_alloc(f, now2, "lg", "ncloud-h200", NULL, 8, now2, now2 + HOUR, true),
			 0);
	assert_int_equal(ledger_alloc(f->l, last_id)->start, T2);
	/* eliminated again later, the chain goes on */
	assert_int_equal(try_eliminate(f, now2, "lg", T2 - 1), -EINVAL);
	expect_err(f, ERR_INVALID_WINDOW, NULL);
	assert_int_equal(try_eliminate(f, now2, "lg", T("2026-03-01")), 0);
}

/* --- time -------------------------------------------------------------- */

static void test_tick_expires_at_phase_end(void **state)
{
	struct fx *f = *state;
	int64_t now = P1_NOW;

	grant_ok(f, now, "lg", "p1", "H200", 100 * HOUR, -1);
	grant_ok(f, now, "skt", "p1", "B200", 50 * HOUR, -1);
	grant_ok(f, now, "lg", "p2", "H200", 70 * HOUR, -1);
	alloc_ok(f, now, "lg", "ncloud-h200", 10, T("2025-12-10"), T("2025-12-10T02:00"));

	assert_int_equal(tick(f, T("2026-01-15T23:59:59")), 0);
	assert_int_equal(tick(f, T("2026-01-16")), 2);
	int64_t lg = 0, skt = 0;
	for (size_t i = 0; i < f->last.n; i++) {
		const struct jentry *e = &f->last.v[i];
		assert_int_equal(e->kind, J_EXPIRE);
		assert_string_equal(e->phase, "p1");
		assert_int_equal(e->granted_delta, 0);
		assert_int_equal(e->committed_delta, 0);
		if (strcmp(e->consortium, "lg") == 0)
			lg = e->expired_delta;
		else
			skt = e->expired_delta;
	}
	assert_int_equal(lg, 80 * HOUR);
	assert_int_equal(skt, 50 * HOUR);

	const struct balance *b = bal(f, "lg", "p1", "H200");
	assert_int_equal(b->granted, 100 * HOUR);
	assert_int_equal(b->committed, 20 * HOUR);
	assert_int_equal(b->expired, 80 * HOUR);
	assert_int_equal(avail(b), 0);
	assert_int_equal(bal(f, "skt", "p1", "B200")->expired, 50 * HOUR);
	assert_int_equal(bal(f, "lg", "p2", "H200")->expired, 0);

	/* idempotent */
	assert_int_equal(tick(f, T("2026-01-16")), 0);
	assert_int_equal(tick(f, T("2026-03-01")), 0);
	assert_int_equal(ledger_head_seq(f->l), 6);
	/* nothing left to adjust in p1 (phase is closed anyway) */
	assert_int_equal(try_grant(f, T("2026-03-01"), "lg", "p1", "H200", -HOUR, -1), -EINVAL);
	expect_err(f, ERR_PHASE_CLOSED, NULL);
}

static void test_tick_drops_completed(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	const char *a = alloc_ok(f, now, "lg", "ncloud-h200", 8, T("2026-03-01"), T("2026-03-02"));
	const char *b = alloc_ok(f, now, "lg", "ncloud-h200", 8, T("2026-03-01"), T("2026-03-05"));
	const struct balance **bs;
	ledger_balances(f->l, &bs);
	int64_t committed = bal(f, "lg", "p2", "H200")->committed;

	assert_int_equal(tick(f, T("2026-03-01T12:00")), 0);
	assert_int_equal(n_allocs(f->l), 2);
	assert_int_equal(tick(f, T("2026-03-02")), 0);
	assert_int_equal(n_allocs(f->l), 1);
	assert_null(ledger_alloc(f->l, a));
	assert_non_null(ledger_alloc(f->l, b));
	assert_int_equal(bal(f, "lg", "p2", "H200")->committed, committed);
	assert_int_equal(ledger_consumed(f->l, bal(f, "lg", "p2", "H200"), T("2026-03-02")),
			 8 * DAY + 8 * DAY);
	/* the next id is not reused */
	assert_string_equal(alloc_ok(f, T("2026-03-02"), "lg", "ncloud-h200", 1, T("2026-03-03"),
				     T("2026-03-04")), "A-000003");
	/* pruning the past does not lose the present */
	assert_int_equal(try_alloc(f, T("2026-03-02"), "lg", "ncloud-h200", NULL, 1024,
				   T("2026-03-04"), T("2026-03-06"), false), -EINVAL);
	expect_err(f, ERR_CAPACITY_UNAVAILABLE, NULL);
	assert_string_equal(detail_str(f, "earliest_start"), "2026-03-05T00:00:00+09:00");
}

static void test_next_due(void **state)
{
	struct fx *f = *state;
	int64_t now = P1_NOW, s = T("2025-12-10"), e = s + 2 * HOUR;

	assert_int_equal(ledger_next_due(f->l, now), T("2026-01-16"));
	grant_ok(f, now, "lg", "p1", "H200", BIG, -1);
	alloc_ok(f, now, "lg", "ncloud-h200", 10, s, e);
	assert_int_equal(ledger_next_due(f->l, now), s);
	assert_int_equal(ledger_next_due(f->l, s), e);
	assert_int_equal(ledger_next_due(f->l, e), T("2026-01-16"));
	assert_int_equal(ledger_next_due(f->l, T("2026-01-16")), T("2026-08-01"));
	assert_int_equal(ledger_next_due(f->l, T("2026-08-01")), TIME_MAX);
}

static void test_consumed(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, s = T("2026-03-01"), e = s + 10 * HOUR;

	grant_ok(f, now, "lg", "p2", "H200", 1000 * HOUR, -1);
	alloc_ok(f, now, "lg", "ncloud-h200", 8, s, e);
	const struct balance *b = bal(f, "lg", "p2", "H200");
	assert_int_equal(ledger_consumed(f->l, b, now), 0);
	assert_int_equal(ledger_consumed(f->l, b, s), 0);
	assert_int_equal(ledger_consumed(f->l, b, s + 5 * HOUR), 40 * HOUR);
	assert_int_equal(ledger_consumed(f->l, b, s + 5 * HOUR), b->committed / 2);
	assert_int_equal(ledger_consumed(f->l, b, e), 80 * HOUR);
	assert_int_equal(ledger_consumed(f->l, b, e + DAY), 80 * HOUR);
}

/*
 * References for the queue of due instants and the consumed sums: the
 * scans over every live allocation that the ledger used to make.
 */
static int64_t scan_next_due(const struct fx *f, int64_t now)
{
	const struct alloc *const *v;
	size_t n = ledger_allocs(f->l, &v);
	int64_t next = TIME_MAX;

	for (size_t i = 0; i < f->cfg->n_phases; i++)
		if (f->cfg->phases[i].end > now && f->cfg->phases[i].end < next)
			next = f->cfg->phases[i].end;
	for (size_t i = 0; i < n; i++) {
		if (v[i]->start > now && v[i]->start < next)
			next = v[i]->start;
		if (v[i]->end > now && v[i]->end < next)
			next = v[i]->end;
	}
	return next;
}

static int64_t scan_consumed(const struct fx *f, const struct balance *b, int64_t now)
{
	const struct alloc *const *v;
	size_t n = ledger_allocs(f->l, &v);
	int64_t future = 0;

	for (size_t i = 0; i < n; i++) {
		const struct alloc *a = v[i];
		if (a->end <= now || strcmp(a->consortium, b->consortium) != 0 ||
		    strcmp(a->phase, b->phase) != 0 || strcmp(a->gpu, b->gpu) != 0)
			continue;
		future += a->gpus * (a->end - (a->start > now ? a->start : now));
	}
	return b->committed - future;
}

static uint64_t rng_state;

static uint64_t rnd(uint64_t n)
{
	rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
	return (rng_state >> 33) % n;
}

/* The live allocations that start or end exactly at t, as the scheduler's log found them. */
static void check_due_at(struct fx *f, int64_t t)
{
	const struct alloc *const *v, *const *got;
	size_t n = ledger_allocs(f->l, &v), k = 0;
	size_t m = ledger_due_at(f->l, t, &got);

	for (size_t i = 0; i < n; i++) {
		if (v[i]->start != t && v[i]->end != t)
			continue;
		assert_true(k < m);
		assert_string_equal(got[k]->id, v[i]->id);
		k++;
	}
	assert_int_equal(k, m);
}

/* After a tick at now no live allocation has ended, and none that runs on left. */
static void check_tick(struct fx *f, int64_t now)
{
	const struct alloc *const *v;
	size_t n = ledger_allocs(f->l, &v), running = 0;

	for (size_t i = 0; i < n; i++)
		running += v[i]->end > now;
	tick(f, now);
	n = ledger_allocs(f->l, &v);
	assert_int_equal(n, running);
	for (size_t i = 0; i < n; i++)
		assert_true(v[i]->end > now);
}

static void check_reads(struct fx *f, int64_t now)
{
	const struct balance **bs;
	size_t n = ledger_balances(f->l, &bs);
	int64_t ahead = now + (int64_t)rnd(30) * HOUR;

	assert_int_equal(ledger_next_due(f->l, now), scan_next_due(f, now));
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(ledger_consumed(f->l, bs[i], now), scan_consumed(f, bs[i], now));
		assert_int_equal(ledger_consumed(f->l, bs[i], ahead), scan_consumed(f, bs[i], ahead));
	}
}

/* Many overlapping allocations of one key, some cut and some cancelled: the sums stay exact. */
static void test_consumed_many_matches_scan(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, s = T("2026-03-01");
	const struct alloc *const *v;

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	rng_state = 7;
	for (int i = 0; i < 600; i++) {
		int64_t start = s + (int64_t)rnd(2000) * 60;
		try_alloc(f, now, "lg", "ncloud-h200", NULL, 1 + (int64_t)rnd(3), start,
			  start + (1 + (int64_t)rnd(3000)) * 60, false);
	}
	size_t n = ledger_allocs(f->l, &v);
	assert_true(n > 300);
	for (size_t i = 0; i < n; i += 3) {
		char id[24];
		snprintf(id, sizeof(id), "%s", v[i]->id);
		if (rnd(2))
			try_cancel(f, now, id);
		else
			try_release(f, s + 2000 * 60, id, s + 2000 * 60);
		n = ledger_allocs(f->l, &v);
	}
	const struct balance *b = bal(f, "lg", "p2", "H200");
	for (int64_t t = now; t < s + 6000 * 60; t += 97 * 60)
		assert_int_equal(ledger_consumed(f->l, b, t), scan_consumed(f, b, t));
}

/* One random change: book, cancel, release, or eliminate and reinstate. */
static void random_op(struct fx *f, int64_t now)
{
	static const char *const cs[] = {"lg", "skt", "motif"};
	const struct alloc *const *v;
	size_t n = ledger_allocs(f->l, &v);
	char id[24] = "A-000000";
	uint64_t what = rnd(10);

	if (n > 0)
		snprintf(id, sizeof(id), "%s", v[rnd(n)]->id);
	if (what < 5) {
		int64_t start = now + (int64_t)rnd(12) * HOUR;
		try_alloc(f, now, cs[rnd(3)], "ncloud-h200", NULL, 1 + (int64_t)rnd(300), start,
			  start + (1 + (int64_t)rnd(8)) * HOUR, false);
	} else if (what < 7) {
		try_cancel(f, now, id);
	} else if (what < 9) {
		try_release(f, now, id, now + (int64_t)rnd(4) * HOUR);
	} else if (try_eliminate(f, now, "skt", now) != 0) {
		try_reinstate(f, now, "skt", now);
	}
}

/*
 * Random histories in whole hours, so that starts, ends, cuts and the
 * phase end often meet at one instant: the queue of due instants and the
 * consumed sums answer what the scans answered, and visiting a later
 * instant first changes nothing.
 */
static void test_queue_and_sums_match_scans(void **state)
{
	struct fx *f = *state;
	int64_t now = T("2026-07-10");

	rng_state = 42;
	for (size_t i = 0; i < 3; i++)
		grant_ok(f, P2_NOW, i == 0 ? "lg" : i == 1 ? "skt" : "motif", "p2", "H200", BIG, -1);
	for (int step = 0; step < 600; step++) {
		if (step == 0 || rnd(4) != 0) {
			now += (1 + (int64_t)rnd(2)) * HOUR;
			check_due_at(f, now);
			check_tick(f, now);
		}
		for (uint64_t k = rnd(3); k > 0; k--) {
			random_op(f, now);
			check_reads(f, now);
		}
		check_reads(f, now);
	}
	assert_true(f->all.n > 300);
}

/* --- journal and audit ------------------------------------------------- */

static int try_modify(struct fx *f, int64_t now, const char *id, const char *pool,
		      int64_t gpus, int64_t start, int64_t end);
static int try_pool_cut(struct fx *f, int64_t now, const char *pool, int64_t at, int64_t gpus);
static int try_phase_move(struct fx *f, int64_t now, const char *phase, int64_t end, bool cut);

/* A bit of everything, so that every kind of entry is in the journal. */
static void scenario(struct fx *f)
{
	int64_t now = P1_NOW;
	grant_ok(f, now, "lg", "p1", "H200", 500 * HOUR, 64);
	grant_ok(f, now, "lg", "p2", "H200", 500 * HOUR, -1);
	grant_ok(f, now, "skt", "p1", "B200", 800 * HOUR, -1);
	grant_ok(f, now, "skt", "p1", "B200", -100 * HOUR, -1);
	const char *a = alloc_ok(f, now, "lg", "ncloud-h200", 8, T("2025-12-10"), T("2025-12-11"));
	const char *b = alloc_ok(f, now, "skt", "skt-b200", 16, T("2025-12-10"),
				T("2025-12-11T12:00"));
	const char *c = alloc_ok(f, now, "lg", "ncloud-h200", 4, T("2025-12-20"), T("2025-12-21"));
	const char *d = alloc_ok(f, now, "lg", "ncloud-h200", 2, T("2026-02-01"), T("2026-02-02"));
	assert_int_equal(try_cancel(f, now, c), 0);
	assert_int_equal(try_modify(f, now, d, NULL, 0, TIME_MIN, T("2026-02-03")), 0);
	assert_int_equal(try_release(f, T("2025-12-10T12:00"), a, TIME_MIN), 0);
	assert_int_equal(try_eliminate(f, T("2025-12-10T12:00"), "skt", T("2025-12-11")), 0);
	assert_int_equal(try_reinstate(f, T("2025-12-20"), "skt", T("2025-12-21")), 0);
	assert_int_equal(try_transfer(f, T("2025-12-20"), "lg", "skt", "p2", "H200", 10 * HOUR,
				      false), 0);
	assert_int_equal(try_usage(f, T("2025-12-20"), "lg", "p1", "H200", "9", HOUR), 0);
	struct ledger_ctx ctx = ctx_at(T("2025-12-20"));
	assert_true(ledger_config_entry(f->l, &ctx, "00112233445566778899aabbccddeeff"
					"00112233445566778899aabbccddeeff", NULL, &f->all));
	assert_int_equal(tick(f, T("2026-01-16")), 2);
	assert_int_equal(try_pool_cut(f, T("2026-01-16"), "nhn-b200", T("2026-07-01"), 32), 0);
	assert_int_equal(try_phase_move(f, T("2026-01-16"), "p2", T("2026-08-10"), false), 0);
	(void)b;
}

static void test_journal_chain(void **state)
{
	struct fx *f = *state;
	scenario(f);

	bool kinds[J__COUNT] = {0};
	uint8_t prev[HASH_LEN] = {0};
	assert_true(f->all.n >= 15);
	for (size_t i = 0; i < f->all.n; i++) {
		const struct jentry *e = &f->all.v[i];
		assert_int_equal(e->seq, (int64_t)i + 1);
		assert_memory_equal(e->prev_hash, prev, HASH_LEN);
		assert_true(jentry_hash_ok(e));
		memcpy(prev, e->hash, HASH_LEN);
		kinds[e->kind] = true;
	}
	for (int k = 0; k < J__COUNT; k++)
		if (!kinds[k])
			fail_msg("the scenario wrote no '%s' entry", jkind_name(k));
	uint8_t head[HASH_LEN];
	ledger_head_hash(f->l, head);
	assert_memory_equal(head, prev, HASH_LEN);
	assert_int_equal(ledger_head_seq(f->l), (int64_t)f->all.n);
}

static char *swap_str(char **p, const char *s)
{
	free(*p);
	*p = s ? strdup(s) : NULL;
	return *p;
}

static void test_journal_any_change_shows(void **state)
{
	struct fx *f = *state;
	scenario(f);

	/* the reserve entry of A-000002 has every allocation field set */
	const struct jentry *e = NULL;
	for (size_t i = 0; i < f->all.n && e == NULL; i++)
		if (f->all.v[i].kind == J_RESERVE && strcmp(f->all.v[i].allocation, "A-000002") == 0)
			e = &f->all.v[i];
	assert_non_null(e);
	assert_true(jentry_hash_ok(e));

	assert_true(e->salted);
	for (int field = 0; field < 21; field++) {
		struct jentry c = {0};
		jentry_copy(&c, e);
		assert_true(jentry_hash_ok(&c));
		switch (field) {
		case 0: c.seq++; break;
		case 1: c.time++; break;
		case 2: c.kind = J_CANCEL; break;
		case 3: swap_str(&c.actor, "mallory"); break;
		case 4: swap_str(&c.request_id, "req-2"); break;
		case 5: swap_str(&c.consortium, "lg"); break;
		case 6: swap_str(&c.phase, "p2"); break;
		case 7: swap_str(&c.gpu, "H200"); break;
		case 8: swap_str(&c.allocation, "A-000003"); break;
		case 9: swap_str(&c.pool, "nhn-b200"); break;
		case 10: c.gpus--; break;
		case 11: c.start++; break;
		case 12: c.end--; break;
		case 13: c.granted_delta = 1; break;
		case 14: c.committed_delta--; break;
		case 15: c.expired_delta = 1; break;
		case 16: c.max_gpus = 1; break;
		case 17: swap_str(&c.reason, NULL); break;
		case 18: c.prev_hash[7] ^= 1; break;
		case 19: c.salt[3] ^= 1; break;
		case 20: c.salted = false; break;
		}
		if (jentry_hash_ok(&c))
			fail_msg("changing field %d went unnoticed", field);
		jentry_clear(&c);
	}
}

/* The journal against what the ledger holds: its balances, consortium states, live allocations. */
static struct audit *audit_run(struct fx *f, const struct jlist *entries)
{
	struct audit *a = audit_new();
	for (size_t i = 0; i < entries->n; i++)
		audit_entry(a, &entries->v[i]);
	const struct balance **bs;
	size_t n = ledger_balances(f->l, &bs);
	for (size_t i = 0; i < n; i++)
		audit_balance(a, bs[i]);
	for (size_t i = 0; i < f->cfg->n_consortia; i++) {
		const struct cstate *cs = ledger_cstate(f->l, f->cfg->consortia[i].id);
		if (cs)
			audit_cstate(a, cs);
	}
	const struct alloc *const *live;
	n = ledger_allocs(f->l, &live);
	for (size_t i = 0; i < n; i++)
		audit_alloc(a, live[i]);
	audit_finish(a);
	return a;
}

static void test_audit_ok(void **state)
{
	struct fx *f = *state;
	scenario(f);

	struct audit *a = audit_run(f, &f->all);
	json_t *p = audit_problems(a);
	size_t lacking = 0, usage_rows = 0;
	/* only the rows the ledger keeps no longer (the store does): finished and cancelled bookings */
	for (size_t i = 0; i < json_array_size(p); i++) {
		const char *s = json_string_value(json_array_get(p, i));
		char id[16];
		if (sscanf(s, "allocation %15[A-Z0-9-]: the journal reserved it", id) == 1 &&
		    strstr(s, "but the cache lacks it") != NULL && ledger_alloc(f->l, id) == NULL) {
			lacking++;
			continue;
		}
		/* nor metered use, which only the store's usage table holds */
		if (strncmp(s, "usage kr1/9: the journal has it", 31) == 0 &&
		    strstr(s, "but the cache lacks it") != NULL) {
			usage_rows++;
			continue;
		}
		char *text = json_dumps(p, 0);
		fail_msg("audit: %s", text);
	}
	assert_int_equal(lacking, 3);	/* a and c of the scenario, and b: completed */
	assert_int_equal(usage_rows, 1);
	json_decref(p);
	assert_int_equal(audit_entries(a), (int64_t)f->all.n);
	assert_int_equal(audit_first_bad_seq(a), 0);
	audit_free(a);
}

static void test_audit_tampered(void **state)
{
	struct fx *f = *state;
	scenario(f);

	struct jentry *e = &f->all.v[2];	/* the lg/p2/H200 grant */
	assert_int_equal(e->kind, J_GRANT);
	e->granted_delta += HOUR;
	struct audit *a = audit_run(f, &f->all);
	assert_false(audit_ok(a));
	assert_int_equal(audit_first_bad_seq(a), e->seq);
	json_t *p = audit_problems(a);
	assert_true(json_array_size(p) >= 1);
	assert_non_null(strstr(json_string_value(json_array_get(p, 0)), "altered"));
	json_decref(p);
	audit_free(a);
}

static void test_audit_missing_entry(void **state)
{
	struct fx *f = *state;
	scenario(f);

	struct jlist gap = {0};
	for (size_t i = 0; i < f->all.n; i++)
		if (i != 5)
			jentry_copy(jlist_push(&gap), &f->all.v[i]);
	struct audit *a = audit_run(f, &gap);
	assert_false(audit_ok(a));
	assert_int_equal(audit_first_bad_seq(a), 6);
	json_t *p = audit_problems(a);
	assert_non_null(strstr(json_string_value(json_array_get(p, 0)), "missing"));
	json_decref(p);
	audit_free(a);
	jlist_clear(&gap);

	/* the last one missing shows as a cached balance the journal does not give */
	for (size_t i = 0; i + 1 < f->all.n; i++)
		jentry_copy(jlist_push(&gap), &f->all.v[i]);
	a = audit_run(f, &gap);
	assert_false(audit_ok(a));
	audit_free(a);
	jlist_clear(&gap);
}

static void test_audit_wrong_balance(void **state)
{
	struct fx *f = *state;
	scenario(f);

	struct audit *a = audit_new();
	for (size_t i = 0; i < f->all.n; i++)
		audit_entry(a, &f->all.v[i]);
	const struct balance **bs;
	size_t n = ledger_balances(f->l, &bs);
	for (size_t i = 0; i < n; i++) {
		struct balance b = *bs[i];
		if (strcmp(b.consortium, "lg") == 0 && strcmp(b.phase, "p1") == 0)
			b.committed += 1;
		audit_balance(a, &b);
	}
	audit_finish(a);
	assert_false(audit_ok(a));
	assert_int_equal(audit_first_bad_seq(a), 0);
	json_t *p = audit_problems(a);
	assert_non_null(strstr(json_string_value(json_array_get(p, 0)), "lg/p1/H200"));
	json_decref(p);
	audit_free(a);

	/* a cached row the journal never made */
	a = audit_run(f, &f->all);
	struct balance ghost = {.consortium = "motif", .phase = "p2", .gpu = "H200", .granted = 1};
	audit_balance(a, &ghost);
	assert_false(audit_ok(a));
	audit_free(a);
}

/* --- configuration swap ------------------------------------------------ */

static void test_set_config_more(void **state)
{
	struct fx *f = *state;
	struct config *more = f->extra = parse_config(cfg_more);
	int64_t now = P2_NOW;

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	alloc_ok(f, now, "lg", "ncloud-h200", 1000, T("2026-03-01"), T("2026-03-05"));
	char *before = snapshot(f->l);
	assert_int_equal(ledger_set_config(f->l, more, &f->err), 0);
	assert_ptr_equal(ledger_file_config(f->l), more);
	char *after = snapshot(f->l);
	assert_string_equal(after, before);
	free(before);
	free(after);

	/* the new pool, phase and consortium are usable; the old bookings still count */
	grant_ok(f, now, "upstage", "p3", "H200", BIG, -1);
	alloc_ok(f, now, "upstage", "kt-h200", 512, T("2026-09-01"), T("2026-09-02"));
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 100, T("2026-03-01"),
				   T("2026-03-02"), false), -EINVAL);
	expect_err(f, ERR_CAPACITY_UNAVAILABLE, NULL);
}

static void test_set_config_refused(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;
	static const struct { const char *text; const char *gist; } bad[] = {
		{ cfg_no_nhn, "nhn-b200" },
		{ cfg_no_skt_consortium, "'skt'" },
		{ cfg_ncloud_256, "ncloud-h200" },
	};

	grant_ok(f, now, "lg", "p2", "B200", BIG, -1);
	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	grant_ok(f, now, "skt", "p2", "H200", 10 * HOUR, -1);
	alloc_ok(f, now, "lg", "nhn-b200", 16, T("2026-07-02"), T("2026-07-03"));
	alloc_ok(f, now, "lg", "ncloud-h200", 300, T("2026-03-01"), T("2026-03-05"));
	alloc_ok(f, now, "lg", "ncloud-h200", 212, T("2026-03-04"), T("2026-03-06"));

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct config *cfg = parse_config(bad[i].text);
		char *before = snapshot(f->l);
		ledger_error_clear(&f->err);
		assert_int_equal(ledger_set_config(f->l, cfg, &f->err), -EINVAL);
		expect_err(f, ERR_CONFLICT, bad[i].gist);
		assert_ptr_equal(ledger_file_config(f->l), f->cfg);
		char *after = snapshot(f->l);
		assert_string_equal(after, before);
		free(before);
		free(after);
		config_free(cfg);
	}
	/* the old config is still in force */
	alloc_ok(f, now, "lg", "nhn-b200", 8, T("2026-07-02"), T("2026-07-03"));

	/* shrinking to exactly what is booked is fine */
	f->extra = parse_config(cfg_ncloud_512);
	ledger_error_clear(&f->err);
	assert_int_equal(ledger_set_config(f->l, f->extra, &f->err), 0);
	assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 1, T("2026-03-04"),
				   T("2026-03-05"), false), -EINVAL);
	expect_err(f, ERR_CAPACITY_UNAVAILABLE, NULL);
}

/* --- loading ----------------------------------------------------------- */

static void test_load_reproduces(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "lg", "p2", "H200", 10000 * HOUR, 16);
	grant_ok(f, now, "skt", "p2", "H200", BIG, -1);
	alloc_ok(f, now, "lg", "ncloud-h200", 16, T("2026-03-01"), T("2026-03-05"));
	alloc_ok(f, now, "skt", "ncloud-h200", 1000, T("2026-03-01"), T("2026-03-10"));
	alloc_ok(f, now, "skt", "ncloud-h200", 8, T("2026-03-20"), T("2026-03-21"));
	assert_int_equal(try_cancel(f, now, "A-000003"), 0);
	assert_int_equal(try_eliminate(f, now, "motif", T("2026-05-01")), 0);

	/* a fresh ledger from what the store would hold */
	struct ledger *l2 = ledger_new(f->cfg);
	uint8_t head[HASH_LEN];
	char *cause = NULL;
	ledger_head_hash(f->l, head);
	ledger_load_head(l2, ledger_head_seq(f->l), head, 3);
	for (size_t i = 0; i < f->cfg->n_consortia; i++) {
		const struct jview *v = ledger_view(f->l, f->cfg->consortia[i].id);
		if (v)
			ledger_load_view(l2, v->consortium, v->entries, v->last_seq, v->head);
	}
	const struct balance **bs;
	size_t n = ledger_balances(f->l, &bs);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ledger_load_balance(l2, bs[i], &cause), 0);
	const struct alloc *const *as;
	n = ledger_allocs(f->l, &as);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ledger_load_alloc(l2, as[i], &cause), 0);
	assert_int_equal(ledger_load_cstate(l2, ledger_cstate(f->l, "motif"), &cause), 0);
	char *s1 = snapshot(f->l), *s2 = snapshot(l2);
	assert_string_equal(s1, s2);
	free(s1);
	free(s2);

	/* the same checks refuse the same requests, with the same hints */
	struct ledger *l1 = f->l;
	for (int round = 0; round < 2; round++) {
		f->l = round == 0 ? l1 : l2;
		assert_int_equal(try_alloc(f, now, "skt", "ncloud-h200", NULL, 100,
					   T("2026-03-02"), T("2026-03-03"), false), -EINVAL);
		expect_err(f, ERR_CAPACITY_UNAVAILABLE, NULL);
		assert_string_equal(detail_str(f, "earliest_start"), "2026-03-10T00:00:00+09:00");
		assert_int_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 1,
					   T("2026-03-02"), T("2026-03-03"), false), -EINVAL);
		expect_err(f, ERR_CAP_EXCEEDED, NULL);
		assert_int_equal(try_alloc(f, now, "motif", "ncloud-h200", NULL, 1,
					   T("2026-04-30"), T("2026-05-02"), false), -EINVAL);
		expect_err(f, ERR_NOT_ACTIVE, NULL);
	}
	/*
	 * and the same success continues both chains alike: the two entries
	 * differ in their random salts only, and each continues lg's view
	 */
	struct jentry e1, e2;
	uint8_t view[HASH_LEN], want[HASH_LEN];
	memcpy(view, ledger_view(l1, "lg")->head, HASH_LEN);
	assert_int_equal(ledger_view(l2, "lg")->entries, ledger_view(l1, "lg")->entries);
	f->l = l1;
	assert_string_equal(alloc_ok(f, now, "lg", "ncloud-h200", 8, T("2026-03-06"),
				     T("2026-03-07")), "A-000004");
	jentry_copy(&e1, &f->last.v[0]);
	f->l = l2;
	assert_string_equal(alloc_ok(f, now, "lg", "ncloud-h200", 8, T("2026-03-06"),
				     T("2026-03-07")), "A-000004");
	jentry_copy(&e2, &f->last.v[0]);
	assert_memory_equal(e1.prev_hash, e2.prev_hash, HASH_LEN);
	assert_memory_not_equal(e1.salt, e2.salt, SALT_LEN);
	jentry_view_hash(&e2, view, want);
	assert_memory_equal(e2.view_hash, want, HASH_LEN);
	assert_memory_equal(ledger_view(l2, "lg")->head, want, HASH_LEN);
	memcpy(e2.salt, e1.salt, SALT_LEN);
	jentry_seal(&e2);
	assert_memory_equal(e1.hash, e2.hash, HASH_LEN);
	jentry_view_hash(&e2, view, want);
	assert_memory_equal(e1.view_hash, want, HASH_LEN);
	jentry_clear(&e1);
	jentry_clear(&e2);
	f->l = l1;
	ledger_free(l2);
}

static void test_load_refuses_unknown(void **state)
{
	struct fx *f = *state;
	char *cause = NULL;
	struct alloc a = {.id = "A-000001", .num = 1, .consortium = "lg", .pool = "aws-h100",
			  .gpu = "H100", .phase = "p2", .gpus = 8, .start = T("2026-03-01"),
			  .end = T("2026-03-02")};
	assert_int_equal(ledger_load_alloc(f->l, &a, &cause), -EINVAL);
	assert_non_null(strstr(cause, "aws-h100"));
	free(cause);
	cause = NULL;
	a.pool = "ncloud-h200";
	a.end = a.start;
	assert_int_equal(ledger_load_alloc(f->l, &a, &cause), -EINVAL);
	assert_non_null(strstr(cause, "malformed"));
	free(cause);
	cause = NULL;
	struct cstate cs = {.consortium = "kakao", .status = CS_ELIMINATED};
	assert_int_equal(ledger_load_cstate(f->l, &cs, &cause), -EINVAL);
	assert_non_null(strstr(cause, "kakao"));
	free(cause);
	assert_int_equal(n_allocs(f->l), 0);

	/* balances must fit the configuration too */
	static const struct { const char *c, *p, *g; } bad[] = {
		{ "kakao", "p2", "H200" }, { "lg", "p9", "H200" }, { "lg", "p2", "A100" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct balance b = {.consortium = (char *)bad[i].c, .phase = (char *)bad[i].p,
				    .gpu = (char *)bad[i].g, .granted = HOUR};
		cause = NULL;
		assert_int_equal(ledger_load_balance(f->l, &b, &cause), -EINVAL);
		assert_non_null(cause);
		free(cause);
	}
	const struct balance **bs;
	assert_int_equal(ledger_balances(f->l, &bs), 0);
	struct balance ok = {.consortium = "lg", .phase = "p2", .gpu = "H200", .granted = HOUR};
	cause = NULL;
	assert_int_equal(ledger_load_balance(f->l, &ok, &cause), 0);
	assert_null(cause);
	assert_int_equal(bal(f, "lg", "p2", "H200")->granted, HOUR);
}

/*
 * The store hands live allocations over in the order of its index, not by
 * number: a ledger loaded in any order holds, finds, queues and numbers
 * them as the ledger that made them.
 */
static void test_load_any_order(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, s = T("2026-03-01");
	static const char *const cs[] = {"lg", "skt"};
	char *cause = NULL;

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	grant_ok(f, now, "skt", "p2", "H200", BIG, -1);
	for (int i = 0; i < 40; i++)
		alloc_ok(f, now, cs[i % 2], "ncloud-h200", 1 + i % 5, s + (i * 7 % 13) * HOUR,
			 s + (i * 7 % 13 + 1 + i % 3) * HOUR);
	assert_int_equal(try_cancel(f, now, "A-000005"), 0);

	struct ledger *l2 = ledger_new(f->cfg);
	uint8_t head[HASH_LEN];
	ledger_head_hash(f->l, head);
	ledger_load_head(l2, ledger_head_seq(f->l), head, 0);
	const struct balance **bs;
	size_t n = ledger_balances(f->l, &bs);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ledger_load_balance(l2, bs[i], &cause), 0);
	const struct alloc *const *as;
	n = ledger_allocs(f->l, &as);
	assert_int_equal(n, 39);
	for (size_t k = 0; k < n; k++)	/* a permutation: 17 is prime to 39 */
		assert_int_equal(ledger_load_alloc(l2, as[k * 17 % n], &cause), 0);
	char *s1 = snapshot(f->l), *s2 = snapshot(l2);
	assert_string_equal(s1, s2);
	free(s1);
	free(s2);
	assert_null(ledger_alloc(l2, "A-000005"));
	assert_int_equal(ledger_alloc(l2, "A-000031")->start, ledger_alloc(f->l, "A-000031")->start);
	for (int64_t t = now; t < s + 20 * HOUR; t += HOUR) {
		assert_int_equal(ledger_next_due(l2, t), ledger_next_due(f->l, t));
		const struct alloc *const *d1, *const *d2;
		size_t m1 = ledger_due_at(f->l, t, &d1), m2 = ledger_due_at(l2, t, &d2);
		assert_int_equal(m1, m2);
		for (size_t i = 0; i < m1; i++)
			assert_string_equal(d1[i]->id, d2[i]->id);
	}
	/* the next number follows the highest loaded one */
	struct alloc_req r = {.consortium = "lg", .pool = "ncloud-h200", .gpus = 1, .start = s,
			      .end = s + HOUR};
	struct ledger_ctx ctx = ctx_at(now);
	struct jlist out = {0};
	struct ledger_error err = {0};
	const char *id;
	assert_int_equal(ledger_allocate(l2, &ctx, &r, &out, &id, &err), 0);
	assert_string_equal(id, "A-000041");
	jlist_clear(&out);
	ledger_free(l2);
}

/*
 * A reader's view: the id written out from the number, the names the
 * ledger's own (one copy per place, however many bookings share it), so
 * that they outlive the configuration they came from and a clone's outlive
 * the ledger it was made from.
 */
static void test_views_outlive_config(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, s = T("2026-03-01");
	struct ledger_error err = {0};

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	const char *a = alloc_ok(f, now, "lg", "ncloud-h200", 2, s, s + HOUR);
	alloc_ok(f, now, "lg", "ncloud-h200", 3, s + HOUR, s + 2 * HOUR);
	const struct alloc *const *as;
	assert_int_equal(ledger_allocs(f->l, &as), 2);
	assert_string_equal(as[0]->id, "A-000001");
	assert_string_equal(as[1]->id, "A-000002");
	assert_ptr_equal(as[0]->consortium, as[1]->consortium);	/* interned */
	assert_ptr_equal(as[0]->pool, as[1]->pool);
	assert_ptr_equal(as[0]->phase, as[1]->phase);
	assert_ptr_not_equal(as[0]->pool, config_pool(f->cfg, "ncloud-h200")->id);
	assert_string_equal(as[0]->note, "job");

	/* SIGHUP's swap: the old configuration goes, the names stay */
	struct config *old = f->cfg;
	f->cfg = parse_config(cfg_more);
	assert_int_equal(ledger_set_config(f->l, f->cfg, &err), 0);
	config_free(old);
	const struct alloc *v = ledger_alloc(f->l, a);
	assert_string_equal(v->pool, "ncloud-h200");
	assert_string_equal(v->consortium, "lg");
	assert_string_equal(v->gpu, "H200");
	assert_string_equal(v->phase, "p2");
	assert_int_equal(v->gpus, 2);

	/* a modify to another pool moves it to another place */
	struct modify_req m = {.id = a, .pool = "kt-h200", .gpus = 0, .start = TIME_MIN,
			       .end = TIME_MIN, .reason = "move"};
	struct ledger_ctx ctx = ctx_at(now);
	struct jlist out = {0};
	assert_int_equal(ledger_modify(f->l, &ctx, &m, &out, &err), 0);
	assert_string_equal(ledger_alloc(f->l, a)->pool, "kt-h200");
	assert_int_equal(ledger_pool_booked(f->l, "kt-h200", s), 2);
	assert_int_equal(ledger_pool_booked(f->l, "ncloud-h200", s), 0);
	jlist_clear(&out);

	/* the clone's names are its own */
	struct ledger *c = ledger_clone(f->l);
	char *before = snapshot(f->l);
	ledger_free(f->l);
	f->l = c;
	char *after = snapshot(c);
	assert_string_equal(before, after);
	free(before);
	free(after);
	assert_string_equal(ledger_alloc(c, "A-000002")->pool, "ncloud-h200");
	ledger_error_clear(&err);
}

/*
 * Allocations that leave are dropped from memory in bulk (a quarter at a
 * time); what stays is found, in order, and what left is not.
 */
static void test_leaving_compacts(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW, s = T("2026-03-01");
	char ids[60][24];

	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	for (int i = 0; i < 60; i++)
		snprintf(ids[i], sizeof(ids[i]), "%s",
			 alloc_ok(f, now, "lg", "ncloud-h200", 1, s + i * HOUR, s + (i + 1) * HOUR));
	for (int i = 0; i < 60; i++)
		if (i % 4 != 3)
			assert_int_equal(try_cancel(f, now, ids[i]), 0);
	const struct alloc *const *as;
	assert_int_equal(ledger_allocs(f->l, &as), 15);
	for (int i = 0; i < 15; i++)
		assert_string_equal(as[i]->id, ids[4 * i + 3]);
	for (int i = 0; i < 60; i++)
		assert_true((ledger_alloc(f->l, ids[i]) != NULL) == (i % 4 == 3));
	/* the queue skips what left: the next instant is the first one kept */
	assert_int_equal(ledger_next_due(f->l, now), s + 3 * HOUR);
	/* time passing forgets the finished ones the same way */
	tick(f, s + 30 * HOUR);
	assert_int_equal(ledger_allocs(f->l, &as), 8);
	assert_string_equal(as[0]->id, ids[31]);
	assert_int_equal(ledger_next_due(f->l, s + 30 * HOUR), s + 31 * HOUR);
	assert_string_equal(alloc_ok(f, s + 30 * HOUR, "lg", "ncloud-h200", 1, s + 70 * HOUR,
				     s + 71 * HOUR), "A-000061");
}

/* --- reads ------------------------------------------------------------- */

static void test_reads(void **state)
{
	struct fx *f = *state;
	int64_t now = P2_NOW;

	grant_ok(f, now, "motif", "p2", "H200", BIG, -1);
	grant_ok(f, now, "lg", "p2", "H200", BIG, -1);
	grant_ok(f, now, "lg", "p2", "B200", BIG, -1);
	grant_ok(f, P1_NOW, "lg", "p1", "H200", BIG, -1);
	/* display order: consortium config order, phase order, gpu */
	const struct balance **bs;
	size_t n = ledger_balances(f->l, &bs);
	assert_int_equal(n, 4);
	assert_string_equal(bs[0]->consortium, "lg");
	assert_string_equal(bs[0]->phase, "p1");
	assert_string_equal(bs[1]->phase, "p2");
	assert_string_equal(bs[1]->gpu, "B200");
	assert_string_equal(bs[2]->gpu, "H200");
	assert_string_equal(bs[3]->consortium, "motif");

	assert_null(ledger_cstate(f->l, "lg"));
	assert_null(ledger_balance(f->l, "skt", "p2", "H200"));
}

/* --- error codes ------------------------------------------------------ */

/*
 * The HTTP status of every code the ledger refuses with, as the API has
 * always answered them: a missing object 404, invalid input 422, a rule
 * 409. The statuses now come from daemon/error.def; this pins them.
 */
static void test_error_statuses(void **state)
{
	static const struct {
		enum error_code code;
		int status;
	} want[] = {
		{ERR_NOT_FOUND, 404},
		{ERR_UNKNOWN_PHASE, 422}, {ERR_UNKNOWN_GPU, 422},
		{ERR_INVALID_AMOUNT, 422}, {ERR_INVALID_WINDOW, 422},
		{ERR_QUOTA_EXCEEDED, 409}, {ERR_CAPACITY_UNAVAILABLE, 409},
		{ERR_CAP_EXCEEDED, 409}, {ERR_CROSSES_PHASE, 409}, {ERR_NOT_ACTIVE, 409},
		{ERR_NOT_WHOLE_NODES, 409}, {ERR_BAD_STATE, 409}, {ERR_BELOW_COMMITTED, 409},
		{ERR_PHASE_CLOSED, 409}, {ERR_CONFLICT, 409},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (error_status(want[i].code) != want[i].status)
			fail_msg("%s answers %d, not %d", error_name(want[i].code),
				 error_status(want[i].code), want[i].status);
}

/* --- modify ----------------------------------------------------------- */

static int try_modify(struct fx *f, int64_t now, const char *id, const char *pool,
		      int64_t gpus, int64_t start, int64_t end)
{
	struct op op;
	struct ledger_ctx ctx = ctx_at(now);
	struct modify_req r = {.id = id, .pool = pool, .gpus = gpus, .start = start,
			       .end = end, .reason = "reshape"};
	op_begin(f, &op, now);
	int rc = ledger_modify(f->l, &ctx, &r, &op.out, &f->err);
	if (rc == 0)
		assert_int_equal(op.out.n, 1);
	return op_end(f, &op, rc);
}

/* The old shape does not count against the new one; the entry carries the delta. */
static void test_modify_own_shape_not_counted(void **state)
{
	struct fx *f = *state;
	int64_t now = T("2025-09-01T00:00"), s = now + DAY;

	grant_ok(f, now, "lg", "p1", "B200", 10000 * HOUR, 0);
	const char *a = alloc_ok(f, now, "lg", "skt-b200", 1000, s, s + 2 * HOUR);
	/* 1000 + 1000 would not fit the pool's 1024; alone it does */
	assert_int_equal(try_modify(f, now, a, NULL, 0, s + HOUR, s + 4 * HOUR), 0);
	const struct jentry *e = &f->last.v[0];
	assert_int_equal(e->kind, J_MODIFY);
	assert_int_equal(e->committed_delta, 1000 * HOUR);
	assert_int_equal(e->start, s + HOUR);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(e->extra, "old"),
							    "start")), s);
	assert_int_equal(bal(f, "lg", "p1", "B200")->committed, 3000 * HOUR);
	assert_int_equal(ledger_pool_booked(f->l, "skt-b200", s), 0);
	assert_int_equal(ledger_pool_booked(f->l, "skt-b200", s + HOUR), 1000);
	/* the pool is still full where it now lies */
	assert_int_not_equal(try_alloc(f, now, "lg", "skt-b200", NULL, 100, s + 3 * HOUR,
				       s + 5 * HOUR, false), 0);
	expect_err(f, ERR_CAPACITY_UNAVAILABLE, NULL);
	/* and free where it left */
	alloc_ok(f, now, "lg", "skt-b200", 1024, s, s + HOUR);
	/* its time falls due at the new instants */
	assert_int_equal(ledger_next_due(f->l, s), s + HOUR);
}

/* Refusals change nothing (op_end checks it); an active allocation moves only its end. */
static void test_modify_refusals(void **state)
{
	struct fx *f = *state;
	int64_t now = T("2025-09-01T00:00"), s = now + DAY;

	grant_ok(f, now, "lg", "p1", "B200", 100 * HOUR, 0);
	const char *a = alloc_ok(f, now, "lg", "skt-b200", 10, s, s + 2 * HOUR);
	assert_int_not_equal(try_modify(f, now, a, NULL, 0, TIME_MIN, s + 11 * HOUR), 0);
	expect_err(f, ERR_QUOTA_EXCEEDED, NULL);
	assert_int_equal(detail_int(f, "available_gpu_seconds"), 100 * HOUR);
	assert_int_equal(detail_int(f, "needed_gpu_seconds"), 110 * HOUR);
	assert_int_not_equal(try_modify(f, now, a, NULL, 0, TIME_MIN, T("2026-02-01T00:00")), 0);
	expect_err(f, ERR_CROSSES_PHASE, NULL);
	assert_int_not_equal(try_modify(f, now, a, "ncloud-h200", 0, TIME_MIN, TIME_MIN), 0);
	expect_err(f, ERR_UNKNOWN_GPU, NULL);
	assert_int_not_equal(try_modify(f, now, a, NULL, 10, s, s + 2 * HOUR), 0);
	expect_err(f, ERR_INVALID_WINDOW, "present");
	assert_int_not_equal(try_modify(f, now, "A-999999", NULL, 0, TIME_MIN, s + HOUR), 0);
	expect_err(f, ERR_NOT_FOUND, NULL);
	/* running: the end only, not into the past */
	assert_int_not_equal(try_modify(f, s + HOUR, a, NULL, 5, TIME_MIN, TIME_MIN), 0);
	expect_err(f, ERR_BAD_STATE, "only its end");
	assert_int_not_equal(try_modify(f, s + HOUR, a, NULL, 0, TIME_MIN, s + HOUR), 0);
	expect_err(f, ERR_INVALID_WINDOW, NULL);
	assert_int_equal(try_modify(f, s + HOUR, a, NULL, 0, TIME_MIN, s + 3 * HOUR), 0);
	assert_int_equal(f->last.v[0].committed_delta, 10 * HOUR);
}

/* --- pool cut, phase move ---------------------------------------------- */

static int try_pool_cut(struct fx *f, int64_t now, const char *pool, int64_t at, int64_t gpus)
{
	struct op op;
	struct ledger_ctx ctx = ctx_at(now);
	struct pool_cut_req r = {.pool = pool, .at = at, .gpus = gpus, .reason = "lease"};
	op_begin(f, &op, now);
	return op_end(f, &op, ledger_pool_cut(f->l, &ctx, &r, &op.out, &f->err));
}

static int try_phase_move(struct fx *f, int64_t now, const char *phase, int64_t end, bool cut)
{
	struct op op;
	struct ledger_ctx ctx = ctx_at(now);
	struct phase_move_req r = {.phase = phase, .end = end, .cut = cut, .reason = "slips"};
	op_begin(f, &op, now);
	return op_end(f, &op, ledger_phase_move(f->l, &ctx, &r, &op.out, &f->err));
}

/* Newest first, what no longer fits goes; the rest of the pool keeps the smaller capacity. */
static void test_pool_cut(void **state)
{
	struct fx *f = *state;
	int64_t now = T("2025-09-01T00:00"), s = now + DAY;

	grant_ok(f, now, "lg", "p1", "H200", 100000 * HOUR, 0);
	const char *a = alloc_ok(f, now, "lg", "ncloud-h200", 512, s, s + 10 * HOUR);
	const char *b = alloc_ok(f, now, "lg", "ncloud-h200", 256, s, s + 10 * HOUR);
	const char *c = alloc_ok(f, now, "lg", "ncloud-h200", 256, s + 6 * HOUR, s + 12 * HOUR);
	assert_int_not_equal(try_pool_cut(f, now, "ncloud-h200", s + 4 * HOUR, 1024), 0);
	expect_err(f, ERR_INVALID_AMOUNT, "takes nothing");
	assert_int_not_equal(try_pool_cut(f, now, "ncloud-h200", now - 1, 0), 0);
	expect_err(f, ERR_INVALID_WINDOW, NULL);
	assert_int_not_equal(try_pool_cut(f, now, "nhn-b200", T("2026-07-02"), 7), 0);
	expect_err(f, ERR_NOT_WHOLE_NODES, NULL);
	assert_int_equal(try_pool_cut(f, now, "ncloud-h200", s + 4 * HOUR, 512), 0);
	assert_int_equal(f->last.n, 3);
	assert_int_equal(f->last.v[0].kind, J_POOL_CUT);
	assert_string_equal(f->last.v[1].allocation, c);	/* newest first: revoked whole */
	assert_int_equal(f->last.v[1].committed_delta, -256 * 6 * HOUR);
	assert_string_equal(f->last.v[2].allocation, b);	/* cut at the cut */
	assert_int_equal(f->last.v[2].end, s + 4 * HOUR);
	assert_non_null(ledger_alloc(f->l, a));
	assert_int_equal(ledger_alloc(f->l, a)->end, s + 10 * HOUR);
	assert_int_equal(ledger_pool_capacity(f->l, "ncloud-h200", s + 4 * HOUR), 512);
	assert_int_equal(ledger_pool_capacity(f->l, "ncloud-h200", s), 1024);
	assert_int_equal(ledger_pool_booked(f->l, "ncloud-h200", s + 5 * HOUR), 512);
	assert_int_not_equal(try_alloc(f, now, "lg", "ncloud-h200", NULL, 1, s + 5 * HOUR,
				       s + 6 * HOUR, false), 0);
	expect_err(f, ERR_CAPACITY_UNAVAILABLE, NULL);
	assert_string_equal(detail_str(f, "earliest_start"), fmt(s + 10 * HOUR));
	/* a clone carries the cut */
	struct ledger *cl = ledger_clone(f->l);
	assert_int_equal(ledger_pool_capacity(cl, "ncloud-h200", s + 4 * HOUR), 512);
	ledger_free(cl);
}

/* The end moves; bookings across it are refused unless cut; expired quota comes back. */
static void test_phase_move(void **state)
{
	struct fx *f = *state;
	int64_t now = T("2026-01-10T00:00");

	grant_ok(f, now, "lg", "p1", "H200", 1000 * HOUR, 0);
	const char *a = alloc_ok(f, now, "lg", "ncloud-h200", 8, T("2026-01-12"), T("2026-01-15"));
	assert_int_not_equal(try_phase_move(f, now, "p1", T("2026-01-13"), false), 0);
	expect_err(f, ERR_CROSSES_PHASE, a);
	assert_int_not_equal(try_phase_move(f, now, "p1", T("2026-08-01"), false), 0);
	expect_err(f, ERR_INVALID_WINDOW, NULL);
	assert_int_equal(try_phase_move(f, now, "p1", T("2026-02-06"), false), 0);
	assert_int_equal(config_phase(ledger_config(f->l), "p1")->end, T("2026-02-06"));
	assert_int_equal(config_phase(ledger_config(f->l), "p2")->start, T("2026-02-06"));
	assert_int_equal(config_phase(ledger_file_config(f->l), "p1")->end, T("2026-01-16"));
	assert_int_equal(ledger_next_due(f->l, T("2026-01-15")), T("2026-02-06"));
	assert_int_equal(tick(f, T("2026-01-16")), 0);	/* the old end is nothing now */
	assert_int_equal(tick(f, T("2026-02-06")), 1);
	int64_t expired = bal(f, "lg", "p1", "H200")->expired;
	assert_int_equal(expired, 1000 * HOUR - 8 * 72 * HOUR);
	assert_int_equal(try_phase_move(f, T("2026-02-07"), "p1", T("2026-02-20"), false), 0);
	assert_int_equal(f->last.v[1].kind, J_EXPIRE);
	assert_int_equal(f->last.v[1].expired_delta, -expired);
	assert_int_equal(bal(f, "lg", "p1", "H200")->expired, 0);
	/* --cut: cut at an earlier end */
	const char *b = alloc_ok(f, T("2026-02-07"), "lg", "ncloud-h200", 4, T("2026-02-10"),
				 T("2026-02-14"));
	assert_int_equal(try_phase_move(f, T("2026-02-07"), "p1", T("2026-02-12"), true), 0);
	assert_int_equal(ledger_alloc(f->l, b)->end, T("2026-02-12"));
}

/* --- clone (dry runs) -------------------------------------------------- */

/*
 * A clone answers every operation as the original would, and what is done
 * to it never shows in the original: the two promises a dry run keeps.
 */
static void test_clone_answers_alike(void **state)
{
	struct fx *f = *state;
	int64_t now = T("2025-09-01T00:00");

	grant_ok(f, now, "lg", "p1", "B200", 4000 * HOUR, 0);
	grant_ok(f, now, "skt", "p1", "B200", 4000 * HOUR, 64);
	alloc_ok(f, now, "lg", "skt-b200", 1000, now + HOUR, now + 3 * HOUR);
	const char *b = alloc_ok(f, now, "skt", "skt-b200", 24, now + 2 * HOUR, now + 4 * HOUR);
	assert_int_equal(try_eliminate(f, now, "skt", now + 3 * HOUR), 0);
	tick(f, now + 90 * 60);	/* prunes the timelines' past */

	char *orig = snapshot(f->l);
	struct ledger *c = ledger_clone(f->l);
	char *copy = snapshot(c);
	assert_string_equal(copy, orig);
	free(copy);
	assert_int_equal(ledger_next_due(c, now), ledger_next_due(f->l, now));
	const struct balance *bo = ledger_balance(f->l, "lg", "p1", "B200");
	const struct balance *bc = ledger_balance(c, "lg", "p1", "B200");
	assert_int_equal(ledger_consumed(c, bc, now + 2 * HOUR),
			 ledger_consumed(f->l, bo, now + 2 * HOUR));

	/* the same search on both lands on the same instant, pool and id */
	struct alloc_req r = {.consortium = "lg", .gpu = "B200", .gpus = 64,
			      .start = now + 2 * HOUR, .end = now + 3 * HOUR, .earliest = true};
	struct ledger_ctx ctx = ctx_at(now + 2 * HOUR);
	struct jlist oc = {0}, oo = {0};
	struct ledger_error ec = {0}, eo = {0};
	const char *idc, *ido;
	assert_int_equal(ledger_allocate(c, &ctx, &r, &oc, &idc, &ec), 0);
	char *after_clone_op = snapshot(f->l);
	assert_string_equal(after_clone_op, orig);	/* the original saw nothing */
	free(after_clone_op);
	assert_int_equal(ledger_allocate(f->l, &ctx, &r, &oo, &ido, &eo), 0);
	assert_string_equal(idc, ido);
	assert_int_equal(oc.v[0].start, oo.v[0].start);
	assert_string_equal(oc.v[0].pool, oo.v[0].pool);
	assert_int_equal(oc.v[0].seq, oo.v[0].seq);
	assert_int_equal(oc.v[0].committed_delta, oo.v[0].committed_delta);
	/* a cancel on the clone leaves the original's booking */
	assert_int_equal(ledger_cancel(c, &ctx, b, "x", &oc, &ec), 0);
	assert_null(ledger_alloc(c, b));
	assert_non_null(ledger_alloc(f->l, b));
	jlist_clear(&oc);
	jlist_clear(&oo);
	ledger_free(c);
	free(orig);
}

/* --- transfers, the procured budget, eligibility, config entries ------- */

#define P1_SECS (T("2026-01-16") - T("2025-08-04"))
/* B200 in p2: the SK Telecom lease until 2026-07-01, the NHN nodes from then */
#define P2_B200 (1024 * (T("2026-07-01") - T("2026-01-16")) + 64 * (T("2026-08-01") - T("2026-07-01")))

static const struct budget_row *budget_of(struct budget_row *v, size_t n, const char *phase,
					  const char *gpu)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].phase, phase) == 0 && strcmp(v[i].gpu, gpu) == 0)
			return &v[i];
	return NULL;
}

/* Every (phase, model) of the config, leases counted, with what was granted and committed. */
static void test_budget_rows(void **state)
{
	struct fx *f = *state;
	struct budget_row *v;

	grant_ok(f, P1_NOW, "lg", "p1", "H200", 500 * HOUR, -1);
	grant_ok(f, P1_NOW, "skt", "p1", "H200", 300 * HOUR, -1);
	alloc_ok(f, P1_NOW, "lg", "ncloud-h200", 8, T("2025-12-10"), T("2025-12-11"));
	size_t n = ledger_budget(f->l, &v);
	assert_int_equal(n, 4);	/* p1, p2 x B200, H200 (pool order) */
	assert_string_equal(v[0].phase, "p1");
	assert_string_equal(v[0].gpu, "B200");
	assert_string_equal(v[1].gpu, "H200");
	assert_string_equal(v[2].phase, "p2");
	assert_int_equal(v[0].procured, 1024 * P1_SECS);
	assert_int_equal(v[0].granted, 0);
	const struct budget_row *h = budget_of(v, n, "p1", "H200");
	assert_int_equal(h->procured, 1024 * P1_SECS);
	assert_int_equal(h->granted, 800 * HOUR);
	assert_int_equal(h->committed, 8 * 24 * HOUR);
	assert_int_equal(budget_of(v, n, "p2", "B200")->procured, P2_B200);
	free(v);
}

/* Conservation: granted stays within procured unless the grant says it oversubscribes. */
static void test_grant_oversubscribed(void **state)
{
	struct fx *f = *state;
	int64_t have = 1024 * P1_SECS;

	assert_int_equal(try_grant_budget(f, P1_NOW, "lg", "p1", "B200", have - HOUR, -1, false), 0);
	assert_int_equal(try_grant_budget(f, P1_NOW, "skt", "p1", "B200", HOUR + 1, -1, false),
			 -EINVAL);
	assert_int_equal(f->err.code, ERR_OVERSUBSCRIBED);
	assert_int_equal(json_integer_value(json_object_get(f->err.details, "procured_gpu_seconds")),
			 have);
	assert_int_equal(json_integer_value(json_object_get(f->err.details, "granted_gpu_seconds")),
			 have - HOUR);
	/* exactly what is left fits; an adjustment down and a cap are no grant */
	assert_int_equal(try_grant_budget(f, P1_NOW, "skt", "p1", "B200", HOUR, -1, false), 0);
	assert_null(f->last.v[0].extra);
	assert_int_equal(try_grant_budget(f, P1_NOW, "skt", "p1", "B200", -HOUR, 8, false), 0);
	/* past it with oversubscribe: allowed, and recorded in the entry */
	assert_int_equal(try_grant_budget(f, P1_NOW, "skt", "p1", "B200", 2 * HOUR, -1, true), 0);
	assert_true(json_is_true(json_object_get(f->last.v[0].extra, "oversubscribe")));
	struct budget_row *v;
	size_t n = ledger_budget(f->l, &v);
	const struct budget_row *b = budget_of(v, n, "p1", "B200");
	assert_int_equal(b->granted - b->procured, HOUR);
	free(v);
}

/* SK Telecom leases GPUs to the program: no quota that takes effect before H2 2026. */
static void test_not_eligible(void **state)
{
	struct fx *f = *state;
	static const char cfg[] = PROGRAM PHASES PHASE3
		"pools:\n" POOL_SKT POOL_NCLOUD POOL_NHN
		"consortia:\n" C_LG
		"  - {id: skt, name: SK Telecom, lead: SK Telecom, eligible_from: 2026-07-01}\n";
	ledger_free(f->l);
	config_free(f->cfg);
	f->cfg = parse_config(cfg);
	f->l = ledger_new(f->cfg);

	assert_int_equal(try_grant(f, P1_NOW, "skt", "p2", "H200", 10 * HOUR, -1), -EINVAL);
	assert_int_equal(f->err.code, ERR_NOT_ELIGIBLE);
	assert_string_equal(json_string_value(json_object_get(f->err.details, "eligible_from")),
			    "2026-07-01T00:00:00+09:00");
	assert_int_equal(try_grant(f, T("2026-06-30T23:59:59"), "skt", "p2", "H200", HOUR, -1),
			 -EINVAL);
	/* a transfer to it is refused alike */
	grant_ok(f, P1_NOW, "lg", "p2", "H200", 10 * HOUR, -1);
	assert_int_equal(try_transfer(f, P2_NOW, "lg", "skt", "p2", "H200", HOUR, false), -EINVAL);
	assert_int_equal(f->err.code, ERR_NOT_ELIGIBLE);
	/* quota of a phase that starts after it, or granted from it on, is fine */
	grant_ok(f, P1_NOW, "skt", "p3", "H200", 10 * HOUR, -1);
	grant_ok(f, T("2026-07-01"), "skt", "p2", "H200", HOUR, -1);
	assert_int_equal(try_transfer(f, T("2026-07-02"), "lg", "skt", "p2", "H200", HOUR, false), 0);
}

/* A transfer moves available quota in one pair of entries, or refuses and changes nothing. */
static void test_transfer(void **state)
{
	struct fx *f = *state;

	grant_ok(f, P1_NOW, "lg", "p2", "H200", 100 * HOUR, -1);
	alloc_ok(f, P1_NOW, "lg", "ncloud-h200", 1, T("2026-02-01"), T("2026-02-03"));	/* 48 h */
	assert_int_equal(try_transfer(f, P1_NOW, "lg", "skt", "p2", "H200", 52 * HOUR, false), 0);
	assert_int_equal(f->last.n, 2);
	assert_int_equal(f->last.v[0].kind, J_TRANSFER_OUT);
	assert_string_equal(f->last.v[0].consortium, "lg");
	assert_int_equal(f->last.v[0].granted_delta, -52 * HOUR);
	assert_int_equal(f->last.v[1].kind, J_TRANSFER_IN);
	assert_string_equal(f->last.v[1].consortium, "skt");
	assert_int_equal(f->last.v[1].granted_delta, 52 * HOUR);
	assert_int_equal(ledger_balance(f->l, "lg", "p2", "H200")->granted, 48 * HOUR);
	assert_int_equal(ledger_balance(f->l, "skt", "p2", "H200")->granted, 52 * HOUR);

	/* every refusal is typed and changes nothing (op_end checks) */
	assert_int_equal(try_transfer(f, P1_NOW, "lg", "skt", "p2", "H200", 1, false), -EINVAL);
	assert_int_equal(f->err.code, ERR_QUOTA_EXCEEDED);
	assert_int_equal(json_integer_value(json_object_get(f->err.details, "available_gpu_seconds")), 0);
	assert_int_equal(try_transfer(f, P1_NOW, "nobody", "skt", "p2", "H200", 1, false), -EINVAL);
	assert_int_equal(f->err.code, ERR_NOT_FOUND);
	assert_int_equal(try_transfer(f, P1_NOW, "skt", "nobody", "p2", "H200", 1, false), -EINVAL);
	assert_int_equal(f->err.code, ERR_NOT_FOUND);
	assert_int_equal(try_transfer(f, P1_NOW, "skt", "lg", "p9", "H200", 1, false), -EINVAL);
	assert_int_equal(f->err.code, ERR_UNKNOWN_PHASE);
	assert_int_equal(try_transfer(f, P1_NOW, "skt", "lg", "p2", "A100", 1, false), -EINVAL);
	assert_int_equal(f->err.code, ERR_UNKNOWN_GPU);
	assert_int_equal(try_transfer(f, P1_NOW, "skt", "lg", "p2", "H200", 0, false), -EINVAL);
	assert_int_equal(f->err.code, ERR_INVALID_AMOUNT);
	assert_int_equal(try_transfer(f, P1_NOW, "skt", "skt", "p2", "H200", HOUR, false), -EINVAL);
	assert_int_equal(f->err.code, ERR_INVALID_AMOUNT);
	assert_int_equal(try_transfer(f, P1_NOW, "skt", "reserve", "p2", "H200", HOUR, false), -EINVAL);
	assert_int_equal(f->err.code, ERR_NOT_FOUND);
	/* into a closed phase */
	grant_ok(f, P1_NOW, "lg", "p1", "H200", 10 * HOUR, -1);
	assert_int_equal(try_transfer(f, T("2026-01-16"), "lg", "skt", "p1", "H200", HOUR, false),
			 -EINVAL);
	assert_int_equal(f->err.code, ERR_PHASE_CLOSED);
	/* to an eliminated consortium */
	assert_int_equal(try_eliminate(f, P1_NOW, "skt", T("2026-01-16")), 0);
	assert_int_equal(try_transfer(f, P1_NOW, "lg", "skt", "p1", "H200", HOUR, false), 0);
	assert_int_equal(try_transfer(f, P1_NOW, "lg", "skt", "p2", "H200", HOUR, false), -EINVAL);
	assert_int_equal(f->err.code, ERR_NOT_ACTIVE);
}

/* The reserve gives what procured leaves ungranted; past it only with oversubscribe. */
static void test_transfer_from_reserve(void **state)
{
	struct fx *f = *state;
	int64_t have = 1024 * P1_SECS;

	grant_ok(f, P1_NOW, "lg", "p1", "H200", 0, 8);	/* a cap alone grants nothing */
	assert_int_equal(try_grant_budget(f, P1_NOW, "lg", "p1", "H200", have - 10 * HOUR, -1,
					  false), 0);
	assert_int_equal(try_transfer(f, P1_NOW, "reserve", "skt", "p1", "H200", 10 * HOUR + 1,
				      false), -EINVAL);
	assert_int_equal(f->err.code, ERR_OVERSUBSCRIBED);
	assert_int_equal(json_integer_value(json_object_get(f->err.details, "reserve_gpu_seconds")),
			 10 * HOUR);
	assert_int_equal(try_transfer(f, P1_NOW, "reserve", "skt", "p1", "H200", 10 * HOUR, false),
			 0);
	assert_null(f->last.v[0].consortium);	/* the reserve's side belongs to no view */
	assert_int_equal(f->last.v[0].granted_delta, -10 * HOUR);
	assert_int_equal(ledger_balance(f->l, "skt", "p1", "H200")->granted, 10 * HOUR);
	assert_int_equal(try_transfer(f, P1_NOW, "reserve", "skt", "p1", "H200", HOUR, true), 0);
	assert_true(json_is_true(json_object_get(f->last.v[0].extra, "oversubscribe")));
	struct budget_row *v;
	size_t n = ledger_budget(f->l, &v);
	assert_int_equal(budget_of(v, n, "p1", "H200")->granted, have + HOUR);
	free(v);
}

/* A config entry: the first in full, then only when the structure changes; the audit recomputes it. */
static void test_config_entry(void **state)
{
	struct fx *f = *state;
	struct ledger_ctx ctx = ctx_at(P1_NOW);
	const char *sha = "ab00000000000000000000000000000000000000000000000000000000000000";
	struct jlist out = {0};

	assert_true(ledger_config_entry(f->l, &ctx, sha, NULL, &out));
	assert_int_equal(out.n, 1);
	const struct jentry *e = &out.v[0];
	assert_int_equal(e->kind, J_CONFIG);
	assert_null(e->consortium);
	assert_string_equal(e->reason, "program changed; phases added: p1, p2; pools added: skt-b200, ncloud-h200, "
			    "nhn-b200; consortia added: lg, skt, motif");
	assert_string_equal(json_string_value(json_object_get(e->extra, "sha256")), sha);
	json_t *first = json_deep_copy(json_object_get(e->extra, "structure"));
	assert_false(ledger_config_entry(f->l, &ctx, sha, first, &out));
	assert_int_equal(out.n, 1);

	/* the repechage: Motif's join date, and Upstage added */
	f->extra = parse_config(PROGRAM PHASES "pools:\n" POOL_SKT POOL_NCLOUD POOL_NHN
				"consortia:\n" C_LG C_SKT
				"  - {id: motif, name: Motif Technologies, lead: Motif Technologies, joined: 2026-02-21}\n"
				C_UPSTAGE);
	assert_int_equal(ledger_set_config(f->l, f->extra, &f->err), 0);
	assert_true(ledger_config_entry(f->l, &ctx, sha, first, &out));
	assert_int_equal(out.n, 2);
	assert_string_equal(out.v[1].reason, "consortia added: upstage; consortia changed: motif");

	struct audit *a = audit_new();
	for (size_t i = 0; i < out.n; i++)
		audit_entry(a, &out.v[i]);
	audit_finish(a);
	assert_true(audit_ok(a));
	audit_free(a);
	/* a summary that does not follow from the structures shows */
	json_object_set_new(json_object_get(json_object_get(out.v[1].extra, "summary"), "pools"),
			    "added", json_pack("[s]", "x"));
	a = audit_new();
	for (size_t i = 0; i < out.n; i++)
		audit_entry(a, &out.v[i]);
	assert_false(audit_ok(a));
	audit_free(a);
	json_decref(first);
	jlist_clear(&out);
}

/* verify sees a transfer_out without its transfer_in. */
static void test_audit_transfer_pair(void **state)
{
	struct fx *f = *state;

	grant_ok(f, P1_NOW, "lg", "p2", "H200", 100 * HOUR, -1);
	assert_int_equal(try_transfer(f, P1_NOW, "lg", "skt", "p2", "H200", HOUR, false), 0);
	struct audit *a = audit_new();
	for (size_t i = 0; i + 1 < f->all.n; i++)	/* without the transfer_in */
		audit_entry(a, &f->all.v[i]);
	audit_finish(a);
	assert_false(audit_ok(a));
	audit_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T_(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T_(test_grant_entry),
		T_(test_usage),
		T_(test_budget_rows),
		T_(test_grant_oversubscribed),
		T_(test_not_eligible),
		T_(test_transfer),
		T_(test_transfer_from_reserve),
		T_(test_config_entry),
		T_(test_audit_transfer_pair),
		T_(test_clone_answers_alike),
		T_(test_modify_own_shape_not_counted),
		T_(test_modify_refusals),
		T_(test_pool_cut),
		T_(test_phase_move),
		T_(test_grant_negative_is_adjust),
		T_(test_grant_adjust_below_committed),
		T_(test_grant_with_cap),
		T_(test_grant_cap_only),
		T_(test_grant_invalid_amount),
		T_(test_grant_unknown_phase_gpu_consortium),
		T_(test_grant_phase_closed),
		T_(test_grant_eliminated_not_active),
		T_(test_grant_cap_below_booked),
		T_(test_grant_overflow),
		T_(test_allocate_books),
		T_(test_allocate_crosses_phase),
		T_(test_allocate_phase_gap),
		T_(test_allocate_invalid_window),
		T_(test_allocate_bad_request),
		T_(test_allocate_quota_exceeded),
		T_(test_allocate_capacity_earliest_start),
		T_(test_allocate_capacity_nothing_fits),
		T_(test_allocate_lease_end),
		T_(test_by_model_without_earliest),
		T_(test_allocate_cap_exceeded),
		T_(test_cap_counts_across_pools),
		T_(test_allocate_not_active_before_joined),
		T_(test_allocate_not_whole_nodes),
		T_(test_earliest_one_pool),
		T_(test_earliest_past_start_moves_to_now),
		T_(test_earliest_by_model),
		T_(test_earliest_tie_first_pool),
		T_(test_earliest_respects_cap),
		T_(test_earliest_respects_joined),
		T_(test_earliest_nothing_fits),
		T_(test_earliest_into_later_phases),
		T_(test_earliest_after_reinstatement),
		T_(test_cancel_reserved),
		T_(test_cancel_active_bad_state),
		T_(test_cancel_at_exact_start),
		T_(test_cancel_not_found),
		T_(test_release_at_now),
		T_(test_release_in_future),
		T_(test_release_invalid_window),
		T_(test_completed_cannot_change),
		T_(test_eliminate_revokes_and_cuts),
		T_(test_eliminate_revokes_later_phase_quota),
		T_(test_eliminate_at_phase_boundary),
		T_(test_eliminate_retroactive),
		T_(test_eliminate_refusals),
		T_(test_allocate_after_elimination),
		T_(test_reinstate),
		T_(test_eliminated_twice_keeps_first_span),
		T_(test_reinstate_before_elimination_takes_effect),
		T_(test_load_cstate_spans_checked),
		T_(test_eliminate_no_grace),
		T_(test_earliest_errors_name_the_bound),
		T_(test_tick_expires_at_phase_end),
		T_(test_tick_drops_completed),
		T_(test_next_due),
		T_(test_consumed),
		T_(test_queue_and_sums_match_scans),
		T_(test_consumed_many_matches_scan),
		T_(test_journal_chain),
		T_(test_journal_any_change_shows),
		T_(test_audit_ok),
		T_(test_audit_tampered),
		T_(test_audit_missing_entry),
		T_(test_audit_wrong_balance),
		T_(test_set_config_more),
		T_(test_set_config_refused),
		T_(test_load_reproduces),
		T_(test_load_refuses_unknown),
		T_(test_load_any_order),
		T_(test_views_outlive_config),
		T_(test_leaving_compacts),
		T_(test_reads),
		cmocka_unit_test(test_error_statuses),
#undef T_
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
