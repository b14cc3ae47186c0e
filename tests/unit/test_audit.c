/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the audit on its own: hand-built journal chains (no ledger,
 * no store) fed entry by entry, then cached rows compared against them.
 * Each damage a database can suffer is made once and must show, with the
 * entry it starts at when the journal is at fault: an altered entry, a
 * missing or reordered one, a broken link, a cached balance or cost that
 * the journal does not give, and a balance the cache lacks. test_ledger.c
 * checks that what the ledger writes audits clean; test_state.c that the
 * database walk feeds the audit everything.
 */
#include "daemon/audit.h"
#include "daemon/journal.h"
#include "daemon/model.h"
#include "daemon/timefmt.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define HOUR INT64_C(3600)

/* An entry for c/p1/B200 at the end of the chain: hours granted or reserved, or a cap. */
static struct jentry *push(struct jlist *l, enum jkind kind, const char *c, int64_t hours)
{
	struct jentry *e = jlist_push(l);
	e->seq = (int64_t)l->n;
	e->time = 1000 + e->seq;
	e->kind = kind;
	e->consortium = strdup(c);
	if (kind != J_ELIMINATE) {
		e->phase = strdup("p1");
		e->gpu = strdup("B200");
	}
	if (kind == J_GRANT)
		e->granted_delta = hours * HOUR;
	else if (kind == J_RESERVE)
		e->committed_delta = hours * HOUR;
	else if (kind == J_CAP)
		e->max_gpus = hours;
	return e;
}

/*
 * Seals every entry in order, as the ledger does; the first two without a
 * salt, as a database written before salts existed holds them.
 */
static void seal_all(struct jlist *l)
{
	uint8_t prev[HASH_LEN] = {0};
	struct jviews views = {0};
	for (size_t i = 0; i < l->n; i++) {
		memcpy(l->v[i].prev_hash, prev, HASH_LEN);
		if (i >= 2)
			jentry_salt(&l->v[i]);
		jentry_seal(&l->v[i]);
		memcpy(prev, l->v[i].hash, HASH_LEN);
		jviews_seal(&views, &l->v[i]);
	}
	jviews_clear(&views);
}

/* c1 granted 100 h with a cap of 8, reserving 30 h; c2 granted 50 h, then eliminated. */
static void chain(struct jlist *l)
{
	push(l, J_GRANT, "c1", 100);
	push(l, J_CAP, "c1", 8);
	push(l, J_RESERVE, "c1", 30);
	push(l, J_GRANT, "c2", 50);
	push(l, J_ELIMINATE, "c2", 0);
	seal_all(l);
}

static struct audit *feed(const struct jlist *l)
{
	struct audit *a = audit_new();
	for (size_t i = 0; i < l->n; i++)
		audit_entry(a, &l->v[i]);
	return a;
}

static const struct balance c1 = {.consortium = "c1", .phase = "p1", .gpu = "B200",
				  .granted = 100 * HOUR, .committed = 30 * HOUR, .max_gpus = 8};
static const struct balance c2 = {.consortium = "c2", .phase = "p1", .gpu = "B200",
				  .granted = 50 * HOUR};

/* c2's state after its elimination at 0 (push() leaves start and end 0): no designation. */
static const struct cstate c2_out = {.consortium = "c2", .status = CS_ELIMINATED, .since = 0,
				     .designation_until = TIME_MIN, .active_from = TIME_MIN};

static void compare_cache(struct audit *a, const struct balance *b1, const struct balance *b2)
{
	if (b1)
		audit_balance(a, b1);
	if (b2)
		audit_balance(a, b2);
	audit_cstate(a, &c2_out);
	audit_finish(a);
}

/* The first problem's text contains gist. */
static void expect_problem(const struct audit *a, const char *gist)
{
	assert_false(audit_ok(a));
	json_t *p = audit_problems(a);
	const char *s = json_string_value(json_array_get(p, 0));
	assert_non_null(s);
	if (strstr(s, gist) == NULL)
		fail_msg("problem \"%s\" lacks \"%s\"", s, gist);
	json_decref(p);
}

static void test_clean(void **state)
{
	struct jlist l = {0};
	chain(&l);
	struct audit *a = feed(&l);
	compare_cache(a, &c1, &c2);
	assert_true(audit_ok(a));
	assert_int_equal(audit_entries(a), 5);
	assert_int_equal(audit_first_bad_seq(a), 0);
	json_t *p = audit_problems(a);
	assert_int_equal(json_array_size(p), 0);
	json_decref(p);
	audit_free(a);
	jlist_clear(&l);
}

static void test_empty(void **state)
{
	struct audit *a = audit_new();
	audit_finish(a);
	assert_true(audit_ok(a));
	assert_int_equal(audit_entries(a), 0);
	audit_free(a);
	audit_free(NULL);
}

static void test_altered(void **state)
{
	struct jlist l = {0};
	chain(&l);
	l.v[3].granted_delta += HOUR;	/* after sealing */
	struct audit *a = feed(&l);
	expect_problem(a, "altered");
	assert_int_equal(audit_first_bad_seq(a), 4);
	audit_free(a);
	jlist_clear(&l);
}

/* A view hash that is not its consortium's chain: once, at that entry. */
static void test_altered_view(void **state)
{
	struct jlist l = {0};
	chain(&l);
	l.v[1].view_hash[5] ^= 1;
	struct audit *a = feed(&l);
	expect_problem(a, "seq 2: view_hash does not match the chain of c1's entries");
	assert_int_equal(audit_first_bad_seq(a), 2);
	json_t *p = audit_problems(a);
	assert_int_equal(json_array_size(p), 1);
	json_decref(p);
	audit_free(a);

	/* a salt changed: the entry's hash shows it first */
	l.v[1].view_hash[5] ^= 1;
	l.v[2].salt[0] ^= 1;
	a = feed(&l);
	expect_problem(a, "seq 3: hash does not match");
	audit_free(a);
	jlist_clear(&l);
}

static void test_broken_link(void **state)
{
	struct jlist l = {0};
	chain(&l);
	l.v[2].prev_hash[0] ^= 1;
	jentry_seal(&l.v[2]);	/* a consistent entry, on the wrong predecessor */
	struct audit *a = feed(&l);
	expect_problem(a, "prev_hash");
	assert_int_equal(audit_first_bad_seq(a), 3);
	audit_free(a);
	jlist_clear(&l);
}

static void test_missing_and_reordered(void **state)
{
	struct jlist l = {0}, gap = {0};
	chain(&l);
	for (size_t i = 0; i < l.n; i++)
		if (i != 1)
			jentry_copy(jlist_push(&gap), &l.v[i]);
	struct audit *a = feed(&gap);
	expect_problem(a, "missing or out of order");
	assert_int_equal(audit_first_bad_seq(a), 2);
	audit_free(a);

	/* the same entry twice: the seq goes back */
	struct jentry again = {0};
	jentry_copy(&again, &l.v[2]);
	*jlist_push(&l) = again;	/* the list owns its strings now */
	a = feed(&l);
	expect_problem(a, "seq 3: expected seq 6");
	assert_int_equal(audit_first_bad_seq(a), 3);
	audit_free(a);
	jlist_clear(&gap);
	jlist_clear(&l);
}

static void test_cached_rows(void **state)
{
	struct jlist l = {0};
	chain(&l);

	/* a cached amount the journal does not give */
	struct balance wrong = c1;
	wrong.committed -= 1;
	struct audit *a = feed(&l);
	compare_cache(a, &wrong, &c2);
	expect_problem(a, "balance c1/p1/B200: cached granted/committed/expired/max_gpus");
	assert_int_equal(audit_first_bad_seq(a), 0);
	audit_free(a);

	/* a cached row no entry made; an all-zero one is no claim */
	struct balance ghost = {.consortium = "c3", .phase = "p1", .gpu = "B200"};
	a = feed(&l);
	audit_balance(a, &ghost);
	compare_cache(a, &c1, &c2);
	assert_true(audit_ok(a));
	ghost.max_gpus = 4;
	audit_balance(a, &ghost);
	expect_problem(a, "c3/p1/B200: cached but no journal entry");
	audit_free(a);

	/* a balance the cache lacks */
	a = feed(&l);
	compare_cache(a, &c1, NULL);
	expect_problem(a, "c2/p1/B200: the journal has it but the cache lacks it");
	audit_free(a);

	jlist_clear(&l);
}

/* A booking for c1 in pool P of 4 GPUs over [start, end), its note in the reason. */
static struct jentry *book(struct jlist *l, const char *id, int64_t start, int64_t end,
			   const char *note)
{
	struct jentry *e = push(l, J_RESERVE, "c1", 0);
	e->allocation = strdup(id);
	e->pool = strdup("P");
	e->gpus = 4;
	e->start = start;
	e->end = end;
	e->committed_delta = 4 * (end - start);
	e->reason = note ? strdup(note) : NULL;
	return e;
}

/* An entry of kind about allocation r: its new end and refund. */
static void change(struct jlist *l, enum jkind kind, size_t r, int64_t end, int64_t refund)
{
	struct jentry *e = push(l, kind, "c1", 0);
	const struct jentry *b = &l->v[r];
	e->allocation = strdup(b->allocation);
	e->pool = strdup(b->pool);
	e->gpus = b->gpus;
	e->start = b->start;
	e->end = end;
	e->committed_delta = refund;
}

/*
 * A-000001 booked 1000..2000 then released at 1500; A-000002 booked and
 * cancelled; A-000003 booked; c2 eliminated, then reinstated at 700.
 */
static void booking_chain(struct jlist *l)
{
	push(l, J_GRANT, "c1", 100);
	book(l, "A-000001", 1000, 2000, "first run");
	book(l, "A-000002", 3000, 3100, NULL);
	change(l, J_RELEASE, 1, 1500, -2000);
	change(l, J_CANCEL, 2, 3100, -400);
	book(l, "A-000003", 5000, 5010, NULL);
	struct jentry *e = push(l, J_ELIMINATE, "c2", 0);
	e->start = 600;
	e->end = 900;
	e = push(l, J_REINSTATE, "c2", 0);
	free(e->phase);		/* push() gives every kind but eliminate a balance key */
	free(e->gpu);
	e->phase = e->gpu = NULL;
	e->start = 700;
	seal_all(l);
}

/* The rows store_append() makes of booking_chain(); strings are literals. */
static void booking_rows(struct alloc rows[3])
{
	const struct alloc base = {.consortium = "c1", .pool = "P", .gpu = "B200",
				   .phase = "p1", .gpus = 4, .stored = ALLOC_BOOKED};
	rows[0] = base;
	strcpy(rows[0].id, "A-000001");
	rows[0].num = 1;
	rows[0].start = 1000;
	rows[0].end = 1500;
	rows[0].booked_end = 2000;
	rows[0].stored = ALLOC_RELEASED;
	rows[0].cost = 2000;
	rows[0].note = "first run";
	rows[0].created = 1002;
	rows[0].seq = 2;
	rows[1] = base;
	strcpy(rows[1].id, "A-000002");
	rows[1].num = 2;
	rows[1].start = 3000;
	rows[1].end = 3100;
	rows[1].booked_end = 3100;
	rows[1].stored = ALLOC_CANCELLED;
	rows[1].cost = 0;
	rows[1].created = 1003;
	rows[1].seq = 3;
	rows[2] = base;
	strcpy(rows[2].id, "A-000003");
	rows[2].num = 3;
	rows[2].start = 5000;
	rows[2].end = 5010;
	rows[2].booked_end = 5010;
	rows[2].cost = 40;
	rows[2].created = 1006;
	rows[2].seq = 6;
}

static const struct cstate c2_back = {.consortium = "c2", .status = CS_ACTIVE, .since = 700,
				      .designation_until = TIME_MIN, .active_from = 700};
static const struct balance c1_booked = {.consortium = "c1", .phase = "p1", .gpu = "B200",
					 .granted = 100 * HOUR, .committed = 2040};

/* Feeds booking_chain()'s cache: its balance, the rows but row `skip` (-1: none), c2's state. */
static struct audit *compare_rows(const struct jlist *l, const struct alloc rows[3], int skip)
{
	struct audit *a = feed(l);
	audit_balance(a, &c1_booked);
	for (int i = 0; i < 3; i++)
		if (i != skip)
			audit_alloc(a, &rows[i]);
	audit_cstate(a, &c2_back);
	return a;
}

static void test_allocation_rows(void **state)
{
	struct jlist l = {0};
	struct alloc rows[3];
	booking_chain(&l);
	booking_rows(rows);

	struct audit *a = compare_rows(&l, rows, -1);
	audit_finish(a);
	if (!audit_ok(a)) {
		json_t *p = audit_problems(a);
		char *text = json_dumps(p, 0);
		fail_msg("clean rows: %s", text);
	}
	audit_free(a);

	/* every column, changed alone, is named */
	static const struct {
		const char *gist;
	} cols[] = {
		{"allocation A-000001: cached num 7 but the journal gives 1"},
		{"allocation A-000001: cached consortium 'c2' but the journal gives 'c1'"},
		{"allocation A-000001: cached pool 'Q' but the journal gives 'P'"},
		{"allocation A-000001: cached gpu 'H200' but the journal gives 'B200'"},
		{"allocation A-000001: cached phase 'p2' but the journal gives 'p1'"},
		{"allocation A-000001: cached gpus 100 but the journal gives 4"},
		{"allocation A-000001: cached start 999 but the journal gives 1000"},
		{"allocation A-000001: cached end 2000 but the journal gives 1500"},
		{"allocation A-000001: cached booked_end 1500 but the journal gives 2000"},
		{"allocation A-000001: cached state 'booked' but the journal gives 'released'"},
		{"allocation A-000001: cached cost 4000 but the journal gives 2000"},
		{"allocation A-000001: cached note none but the journal gives 'first run'"},
		{"allocation A-000001: cached created 1 but the journal gives 1002"},
		{"allocation A-000001: cached seq 3 but the journal gives 2"},
	};
	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
		booking_rows(rows);
		struct alloc *r = &rows[0];
		switch (i) {
		case 0: r->num = 7; break;
		case 1: r->consortium = "c2"; break;
		case 2: r->pool = "Q"; break;
		case 3: r->gpu = "H200"; break;
		case 4: r->phase = "p2"; break;
		case 5: r->gpus = 100; break;
		case 6: r->start = 999; break;
		case 7: r->end = 2000; break;
		case 8: r->booked_end = 1500; break;
		case 9: r->stored = ALLOC_BOOKED; break;
		case 10: r->cost = 4000; break;
		case 11: r->note = NULL; break;
		case 12: r->created = 1; break;
		case 13: r->seq = 3; break;
		}
		a = compare_rows(&l, rows, -1);
		audit_finish(a);
		expect_problem(a, cols[i].gist);
		assert_int_equal(audit_first_bad_seq(a), 0);
		json_t *p = audit_problems(a);
		assert_int_equal(json_array_size(p), 1);	/* that column only */
		json_decref(p);
		audit_free(a);
	}

	/* a cancelled booking revived in the table */
	booking_rows(rows);
	rows[1].stored = ALLOC_BOOKED;
	rows[1].cost = 400;
	a = compare_rows(&l, rows, -1);
	expect_problem(a, "allocation A-000002: cached state 'booked' but the journal gives 'cancelled'");
	audit_free(a);

	/* a row the journal never made; one it made that the table lost */
	booking_rows(rows);
	a = compare_rows(&l, rows, -1);
	struct alloc ghost = rows[2];
	strcpy(ghost.id, "A-000009");
	ghost.num = 9;
	audit_alloc(a, &ghost);
	expect_problem(a, "allocation A-000009: cached but no journal entry reserved it");
	audit_free(a);
	a = compare_rows(&l, rows, 2);
	audit_finish(a);
	expect_problem(a, "allocation A-000003: the journal reserved it (seq 6) but the cache lacks it");
	audit_free(a);
	jlist_clear(&l);
}

/* The journal contradicting itself about an allocation points at the entry. */
static void test_allocation_entries(void **state)
{
	struct jlist l = {0};
	push(&l, J_GRANT, "c1", 100);
	book(&l, "A-000001", 1000, 2000, NULL);
	book(&l, "A-000001", 1000, 2000, NULL);
	seal_all(&l);
	struct audit *a = feed(&l);
	expect_problem(a, "seq 3: allocation A-000001 reserved a second time");
	assert_int_equal(audit_first_bad_seq(a), 3);
	audit_free(a);
	jlist_clear(&l);

	push(&l, J_GRANT, "c1", 100);
	book(&l, "A-000001", 1000, 2000, NULL);
	change(&l, J_CANCEL, 1, 2000, -4000);
	free(l.v[2].allocation);
	l.v[2].allocation = strdup("A-000002");
	seal_all(&l);
	a = feed(&l);
	expect_problem(a, "seq 3: cancel of allocation A-000002, which no entry before reserved");
	assert_int_equal(audit_first_bad_seq(a), 3);
	audit_free(a);
	jlist_clear(&l);
}

static void test_consortium_states(void **state)
{
	struct jlist l = {0};
	struct alloc rows[3];
	booking_chain(&l);
	booking_rows(rows);

	struct cstate wrong = c2_back;
	wrong.status = CS_ELIMINATED;
	struct audit *a = feed(&l);
	audit_cstate(a, &wrong);
	expect_problem(a, "consortium state c2: cached status 'eliminated' but the journal gives 'active'");
	audit_free(a);

	wrong = c2_back;
	wrong.active_from = TIME_MIN;
	a = feed(&l);
	audit_cstate(a, &wrong);
	expect_problem(a, "consortium state c2: cached active_from");
	audit_free(a);

	struct cstate ghost = c2_back;
	ghost.consortium = "c1";
	a = feed(&l);
	audit_cstate(a, &ghost);
	expect_problem(a, "consortium state c1: cached but no eliminate or reinstate entry made it");
	audit_free(a);

	a = feed(&l);
	audit_balance(a, &c1_booked);
	for (int i = 0; i < 3; i++)
		audit_alloc(a, &rows[i]);
	audit_finish(a);
	expect_problem(a, "consortium state c2: the journal has it but the cache lacks it");
	audit_free(a);
	jlist_clear(&l);
}

static void test_note_and_cap(void **state)
{
	struct audit *a = audit_new();
	for (int i = 0; i < 150; i++)
		audit_note(a, "problem %d", i);
	json_t *p = audit_problems(a);
	assert_int_equal(json_array_size(p), 100);	/* bounded, first ones kept */
	assert_string_equal(json_string_value(json_array_get(p, 0)), "problem 0");
	json_decref(p);
	assert_int_equal(audit_first_bad_seq(a), 0);
	audit_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_altered),
		cmocka_unit_test(test_altered_view),
		cmocka_unit_test(test_broken_link),
		cmocka_unit_test(test_missing_and_reordered),
		cmocka_unit_test(test_cached_rows),
		cmocka_unit_test(test_allocation_rows),
		cmocka_unit_test(test_allocation_entries),
		cmocka_unit_test(test_consortium_states),
		cmocka_unit_test(test_note_and_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
