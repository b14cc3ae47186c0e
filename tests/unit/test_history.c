/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the fold of the journal up to an instant (quota --at):
 * hand-built entries, no ledger, no store. Each asserts exact GPU-seconds
 * at instants before, at and after the entries that moved them.
 */
#include "daemon/history.h"
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

static struct cfg_consortium consortia[] = {{.id = "lg"}, {.id = "upstage"}};
static struct cfg_phase phases[] = {{.id = "p1"}, {.id = "p2"}};
static struct config cfg = {.consortia = consortia, .n_consortia = 2,
			    .phases = phases, .n_phases = 2};

static struct jentry entry(int64_t time, enum jkind kind, const char *c, const char *ph)
{
	return (struct jentry){.time = time, .kind = kind, .consortium = (char *)c,
			       .phase = (char *)ph, .gpu = (char *)"B200"};
}

static const struct history_row *row_of(struct history *h, const char *c, const char *ph)
{
	const struct history_row *const *v;
	size_t n = history_rows(h, &cfg, &v);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i]->b.consortium, c) == 0 && strcmp(v[i]->b.phase, ph) == 0)
			return v[i];
	return NULL;
}

/* A grant, a booking that runs, its release, a transfer: each counts from the instant it was written. */
static void test_balances_at_instants(void **state)
{
	(void)state;
	struct jentry es[5];
	es[0] = entry(100, J_GRANT, "lg", "p1");
	es[0].granted_delta = 1000 * HOUR;
	es[1] = entry(200, J_RESERVE, "lg", "p1");
	es[1].allocation = (char *)"A-000001";
	es[1].gpus = 8;
	es[1].start = 300;
	es[1].end = 300 + 10 * HOUR;
	es[1].committed_delta = 80 * HOUR;
	es[2] = entry(400, J_RELEASE, "lg", "p1");
	es[2].allocation = (char *)"A-000001";
	es[2].gpus = 8;
	es[2].start = 300;
	es[2].end = 300 + 5 * HOUR;
	es[2].committed_delta = -40 * HOUR;
	es[3] = entry(500, J_TRANSFER_OUT, "lg", "p1");
	es[3].granted_delta = -100 * HOUR;
	es[4] = entry(500, J_TRANSFER_IN, "upstage", "p1");
	es[4].granted_delta = 100 * HOUR;

	int64_t instants[] = {99, 100, 350, 400, 500, 300 + 6 * HOUR};
	for (size_t k = 0; k < sizeof(instants) / sizeof(instants[0]); k++) {
		int64_t at = instants[k];
		struct history *h = history_new(at);
		for (size_t i = 0; i < 5; i++)
			history_entry(h, &es[i]);
		const struct history_row *lg = row_of(h, "lg", "p1");
		const struct history_row *up = row_of(h, "upstage", "p1");
		if (at < 100) {
			assert_null(lg);
			assert_null(up);
			history_free(h);
			continue;
		}
		assert_non_null(lg);
		assert_int_equal(lg->b.granted, at >= 500 ? 900 * HOUR : 1000 * HOUR);
		assert_int_equal(lg->b.committed, at >= 400 ? 40 * HOUR : at >= 200 ? 80 * HOUR : 0);
		/* consumed: 8 GPUs from 300 until the instant, at most until the end then known */
		int64_t end = at >= 400 ? 300 + 5 * HOUR : 300 + 10 * HOUR;
		int64_t until = at < end ? at : end;
		assert_int_equal(lg->consumed, at >= 200 && until > 300 ? 8 * (until - 300) : 0);
		if (at >= 500) {
			assert_non_null(up);
			assert_int_equal(up->b.granted, 100 * HOUR);
		} else {
			assert_null(up);
		}
		history_free(h);
	}
}

/* Rows come in the configuration's order, whatever order the journal made them in. */
static void test_display_order(void **state)
{
	(void)state;
	struct jentry a = entry(1, J_GRANT, "upstage", "p2"), b = entry(2, J_GRANT, "lg", "p2"),
		      c = entry(3, J_GRANT, "lg", "p1");
	a.granted_delta = b.granted_delta = c.granted_delta = HOUR;
	struct history *h = history_new(10);
	history_entry(h, &a);
	history_entry(h, &b);
	history_entry(h, &c);
	const struct history_row *const *v;
	assert_int_equal(history_rows(h, &cfg, &v), 3);
	assert_string_equal(v[0]->b.consortium, "lg");
	assert_string_equal(v[0]->b.phase, "p1");
	assert_string_equal(v[1]->b.consortium, "lg");
	assert_string_equal(v[1]->b.phase, "p2");
	assert_string_equal(v[2]->b.consortium, "upstage");
	history_free(h);
}

/* A cancellation refunds all and nothing ran; a transfer out of the reserve moves no row. */
static void test_cancel_and_reserve(void **state)
{
	(void)state;
	struct jentry r = entry(10, J_RESERVE, "lg", "p1"), x = entry(20, J_CANCEL, "lg", "p1"),
		      out = entry(30, J_TRANSFER_OUT, NULL, "p1");
	r.allocation = x.allocation = (char *)"A-000007";
	r.gpus = x.gpus = 4;
	r.start = x.start = 5;	/* started before it was cancelled */
	r.end = x.end = 5 + HOUR;
	r.committed_delta = 4 * HOUR;
	x.committed_delta = -4 * HOUR;
	out.granted_delta = -HOUR;
	struct history *h = history_new(1000);
	history_entry(h, &r);
	history_entry(h, &x);
	history_entry(h, &out);
	const struct history_row *const *v;
	assert_int_equal(history_rows(h, &cfg, &v), 1);
	assert_int_equal(v[0]->b.committed, 0);
	assert_int_equal(v[0]->consumed, 0);
	history_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_balances_at_instants),
		cmocka_unit_test(test_display_order),
		cmocka_unit_test(test_cancel_and_reserve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
