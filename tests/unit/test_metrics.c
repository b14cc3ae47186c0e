/* SPDX-License-Identifier: MIT */
/*
 * Metrics: label escaping, histogram buckets counted cumulatively with
 * integer bounds written as seconds, and counters by route and status.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/metrics.h"

static void test_label_escaping(void **state)
{
	struct buf b = {0};
	metrics__label(&b, "B\"200\\x\ny");
	assert_string_equal(b.data, "B\\\"200\\\\x\\ny");
	buf_free(&b);
}

static void test_counters_and_histograms(void **state)
{
	struct config cfg = {0};
	struct ledger *l = ledger_new(&cfg);
	struct metrics m;
	struct buf b = {0};

	metrics_init(&m);
	metrics_request(&m, PROTO_GRANT, 200, 90);
	metrics_request(&m, PROTO_GRANT, 200, 300);
	metrics_request(&m, PROTO_ALLOCATE, 409, 2000000);
	metrics_request(&m, -1, 404, 10);
	metrics_refusal(&m, ERR_QUOTA_EXCEEDED);
	metrics_batch(&m, 3);
	const struct metrics_state st = {.ledger = l, .cfg = &cfg, .commits = 7};
	metrics_render(&m, &st, &b);
	const char *t = b.data;
	assert_non_null(strstr(t, "gpuledger_http_requests_total{route=\"/v1/grants\",code=\"200\"} 2\n"));
	assert_non_null(strstr(t, "gpuledger_http_requests_total{route=\"/v1/allocations\",code=\"409\"} 1\n"));
	assert_non_null(strstr(t, "gpuledger_http_requests_total{route=\"none\",code=\"404\"} 1\n"));
	/* 90 and 10 us are under 100 us; 300 under 500; 2 s only under +Inf */
	assert_non_null(strstr(t, "gpuledger_http_request_duration_seconds_bucket{le=\"0.0001\"} 2\n"));
	assert_non_null(strstr(t, "gpuledger_http_request_duration_seconds_bucket{le=\"0.0005\"} 3\n"));
	assert_non_null(strstr(t, "gpuledger_http_request_duration_seconds_bucket{le=\"1\"} 3\n"));
	assert_non_null(strstr(t, "gpuledger_http_request_duration_seconds_bucket{le=\"+Inf\"} 4\n"));
	assert_non_null(strstr(t, "gpuledger_http_request_duration_seconds_sum 2.0004\n"));
	assert_non_null(strstr(t, "gpuledger_http_request_duration_seconds_count 4\n"));
	assert_non_null(strstr(t, "gpuledger_refusals_total{code=\"quota_exceeded\"} 1\n"));
	assert_non_null(strstr(t, "gpuledger_store_batch_entries_bucket{le=\"2\"} 0\n"));
	assert_non_null(strstr(t, "gpuledger_store_batch_entries_bucket{le=\"4\"} 1\n"));
	assert_non_null(strstr(t, "gpuledger_store_commits_total 7\n"));
	buf_free(&b);
	ledger_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_counters_and_histograms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
