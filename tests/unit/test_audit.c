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

static void compare_cache(struct audit *a, const struct balance *b1, const struct balance *b2)
{
	if (b1)
		audit_balance(a, b1);
	if (b2)
		audit_balance(a, b2);
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
	struct alloc al = {.id = "A-000001", .cost = 30 * HOUR};
	audit_alloc_cost(a, &al, 30 * HOUR);
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

	/* an allocation's cost */
	struct alloc al = {.id = "A-000001", .cost = 30 * HOUR};
	a = feed(&l);
	audit_alloc_cost(a, &al, 29 * HOUR);
	expect_problem(a, "allocation A-000001: cached cost");
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
		cmocka_unit_test(test_note_and_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
