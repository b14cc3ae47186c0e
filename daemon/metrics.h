/* SPDX-License-Identifier: MIT */
/*
 * The daemon's Prometheus metrics (text exposition format 0.0.4, written
 * by hand: Debian ships no C client). Counters and histograms are plain
 * integers, updated on the loop thread by the modules that see the event
 * (the writer for replies and commits, the API for refusals); gauges are
 * read from the ledger when /metrics is scraped. Histograms count integer
 * microseconds and entries, so no floating point is involved anywhere.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "daemon/error.h"
#include "daemon/ledger.h"
#include "daemon/proto.h"
#include "daemon/util.h"

#define METRICS_DURATION_BUCKETS 12
#define METRICS_BATCH_BUCKETS 10
#define METRICS_STATUSES 16

struct histogram {
	uint64_t count[METRICS_DURATION_BUCKETS + 1];	/* per bucket; the last is +Inf */
	uint64_t sum;					/* microseconds or entries */
	uint64_t n;
};

struct metrics {
	/* http_requests_total, by [route][status slot]; route PROTO__COUNT: none matched */
	uint64_t requests[PROTO__COUNT + 1][METRICS_STATUSES];
	int statuses[METRICS_STATUSES];	/* the status of each slot, 0 when free */
	struct histogram duration;		/* microseconds */
	uint64_t refusals[ERR__COUNT];
	struct histogram batch;			/* entries per commit */
};

void metrics_init(struct metrics *m);
/* A reply sent for route (an enum proto_req, or -1 for none) after duration_us. */
void metrics_request(struct metrics *m, int route, int status, uint64_t duration_us);
/* A request refused with code. */
void metrics_refusal(struct metrics *m, enum error_code code);
/* A batch of n entries committed. */
void metrics_batch(struct metrics *m, size_t n);

/* What the scrape reads besides the counters above. */
struct metrics_state {
	const struct ledger *ledger;
	const struct config *cfg;
	int64_t now;
	uint64_t commits;
	uint64_t commit_failures;
};

/* Appends v to out as a label value: \\, \" and \n escaped (for the tests). */
void metrics__label(struct buf *out, const char *v);

/* Appends the exposition text to out. */
void metrics_render(const struct metrics *m, const struct metrics_state *st, struct buf *out);
