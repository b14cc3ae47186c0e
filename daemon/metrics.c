/* SPDX-License-Identifier: MIT */
/*
 * Prometheus text format 0.0.4 for the daemon's counters and the ledger's
 * gauges. Label values are escaped (backslash, double quote, newline) as
 * the format requires; histogram bounds are written from integers.
 */
#include "daemon/metrics.h"

#include <inttypes.h>
#include <string.h>

/* Upper bounds in microseconds, and as the text of seconds. */
static const uint64_t duration_le[METRICS_DURATION_BUCKETS] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000,
};
static const uint64_t batch_le[METRICS_BATCH_BUCKETS] = {
	1, 2, 4, 8, 16, 32, 64, 128, 256, 512,
};

void metrics_init(struct metrics *m)
{
	memset(m, 0, sizeof(*m));
}

static void observe(struct histogram *h, const uint64_t *le, size_t n_le, uint64_t v)
{
	size_t i = 0;
	while (i < n_le && v > le[i])
		i++;
	h->count[i]++;
	h->sum += v;
	h->n++;
}

static size_t status_slot(struct metrics *m, int status)
{
	size_t i;
	for (i = 0; i < METRICS_STATUSES - 1; i++) {
		if (m->statuses[i] == status)
			return i;
		if (m->statuses[i] == 0) {
			m->statuses[i] = status;
			return i;
		}
	}
	/* more distinct statuses than slots: the last slot counts them as 0 */
	return METRICS_STATUSES - 1;
}

void metrics_request(struct metrics *m, int route, int status, uint64_t duration_us)
{
	if (m == NULL)
		return;
	size_t r = route >= 0 && route < PROTO__COUNT ? (size_t)route : PROTO__COUNT;
	m->requests[r][status_slot(m, status)]++;
	observe(&m->duration, duration_le, METRICS_DURATION_BUCKETS, duration_us);
}

void metrics_refusal(struct metrics *m, enum error_code code)
{
	if (m != NULL && (unsigned)code < ERR__COUNT)
		m->refusals[code]++;
}

void metrics_batch(struct metrics *m, size_t n)
{
	if (m != NULL)
		observe(&m->batch, batch_le, METRICS_BATCH_BUCKETS, n);
}

/* A label value, escaped. */
void metrics__label(struct buf *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			buf_puts(out, "\\\\");
		else if (*v == '"')
			buf_puts(out, "\\\"");
		else if (*v == '\n')
			buf_puts(out, "\\n");
		else
			buf_append(out, v, 1);
	}
}

#define label metrics__label

static void head(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* "0.00025" for 250 µs: seconds from an integer, without floating point. */
static void seconds(struct buf *out, uint64_t us)
{
	char frac[8];
	snprintf(frac, sizeof(frac), "%06" PRIu64, us % 1000000);
	size_t n = strlen(frac);
	while (n > 1 && frac[n - 1] == '0')
		frac[--n] = '\0';
	if (strcmp(frac, "0") == 0)
		buf_printf(out, "%" PRIu64, us / 1000000);
	else
		buf_printf(out, "%" PRIu64 ".%s", us / 1000000, frac);
}

static void histogram(struct buf *out, const char *name, const struct histogram *h,
		      const uint64_t *le, size_t n_le, bool in_seconds)
{
	uint64_t cum = 0;
	for (size_t i = 0; i <= n_le; i++) {
		cum += h->count[i];
		buf_printf(out, "%s_bucket{le=\"", name);
		if (i == n_le)
			buf_puts(out, "+Inf");
		else if (in_seconds)
			seconds(out, le[i]);
		else
			buf_printf(out, "%" PRIu64, le[i]);
		buf_printf(out, "\"} %" PRIu64 "\n", cum);
	}
	buf_printf(out, "%s_sum ", name);
	if (in_seconds)
		seconds(out, h->sum);
	else
		buf_printf(out, "%" PRIu64, h->sum);
	buf_printf(out, "\n%s_count %" PRIu64 "\n", name, h->n);
}

static void render_http(const struct metrics *m, struct buf *out)
{
	head(out, "gpuledger_http_requests_total", "counter",
	     "API replies sent, by route and HTTP status.");
	for (size_t r = 0; r <= PROTO__COUNT; r++) {
		for (size_t s = 0; s < METRICS_STATUSES; s++) {
			if (m->requests[r][s] == 0)
				continue;
			buf_puts(out, "gpuledger_http_requests_total{route=\"");
			label(out, r < PROTO__COUNT ? proto_request((enum proto_req)r)->path : "none");
			buf_printf(out, "\",code=\"%d\"} %" PRIu64 "\n", m->statuses[s],
				   m->requests[r][s]);
		}
	}
	head(out, "gpuledger_http_request_duration_seconds", "histogram",
	     "From the request's arrival to its reply, commit included.");
	histogram(out, "gpuledger_http_request_duration_seconds", &m->duration, duration_le,
		  METRICS_DURATION_BUCKETS, true);
	head(out, "gpuledger_refusals_total", "counter", "Requests refused, by error code.");
	for (unsigned e = 1; e < ERR__COUNT; e++)
		if (m->refusals[e])
			buf_printf(out, "gpuledger_refusals_total{code=\"%s\"} %" PRIu64 "\n",
				   error_name((enum error_code)e), m->refusals[e]);
}

static void render_store(const struct metrics *m, const struct metrics_state *st,
			 struct buf *out)
{
	head(out, "gpuledger_store_commits_total", "counter", "Batches committed to SQLite.");
	buf_printf(out, "gpuledger_store_commits_total %" PRIu64 "\n", st->commits);
	head(out, "gpuledger_store_commit_failures_total", "counter",
	     "Batches whose commit failed (answered 503).");
	buf_printf(out, "gpuledger_store_commit_failures_total %" PRIu64 "\n",
		   st->commit_failures);
	head(out, "gpuledger_store_batch_entries", "histogram",
	     "Journal entries per committed batch.");
	histogram(out, "gpuledger_store_batch_entries", &m->batch, batch_le,
		  METRICS_BATCH_BUCKETS, false);
	head(out, "gpuledger_journal_head_seq", "gauge", "Seq of the last journal entry.");
	buf_printf(out, "gpuledger_journal_head_seq %" PRId64 "\n", ledger_head_seq(st->ledger));
}

static void quota_row(struct buf *out, const char *name, const struct balance *b, int64_t v)
{
	buf_printf(out, "%s{consortium=\"", name);
	label(out, b->consortium);
	buf_puts(out, "\",phase=\"");
	label(out, b->phase);
	buf_puts(out, "\",gpu=\"");
	label(out, b->gpu);
	buf_printf(out, "\"} %" PRId64 "\n", v);
}

static void render_quota(const struct metrics_state *st, struct buf *out)
{
	static const struct {
		const char *name, *help;
	} q[] = {
		{"gpuledger_quota_granted_gpu_seconds", "GPU-seconds granted."},
		{"gpuledger_quota_committed_gpu_seconds", "GPU-seconds committed to allocations."},
		{"gpuledger_quota_available_gpu_seconds", "GPU-seconds still available."},
		{"gpuledger_quota_used_gpu_seconds",
		 "GPU-seconds the clusters metered (reported jobs)."},
	};
	const struct balance **v;
	size_t n = ledger_balances(st->ledger, &v);

	for (size_t k = 0; k < ARRAY_SIZE(q); k++) {
		head(out, q[k].name, "gauge", q[k].help);
		for (size_t i = 0; i < n; i++) {
			int64_t x = k == 0 ? v[i]->granted : k == 1 ? v[i]->committed :
				    k == 2 ? v[i]->granted - v[i]->committed - v[i]->expired :
				    v[i]->used;
			quota_row(out, q[k].name, v[i], x);
		}
	}
}

static void render_pools(const struct metrics_state *st, struct buf *out)
{
	for (int k = 0; k < 2; k++) {
		const char *name = k ? "gpuledger_pool_booked_gpus" : "gpuledger_pool_capacity_gpus";
		head(out, name, "gauge", k ? "GPUs booked now." : "GPUs the pool has now (leases count).");
		for (size_t i = 0; i < st->cfg->n_pools; i++) {
			const struct cfg_pool *p = &st->cfg->pools[i];
			int64_t x = k ? ledger_pool_booked(st->ledger, p->id, st->now) :
				    (st->now >= p->available_from && st->now < p->available_until ?
				     p->gpus : 0);
			buf_printf(out, "%s{pool=\"", name);
			label(out, p->id);
			buf_puts(out, "\",gpu=\"");
			label(out, p->gpu);
			buf_printf(out, "\"} %" PRId64 "\n", x);
		}
	}
}

void metrics_render(const struct metrics *m, const struct metrics_state *st, struct buf *out)
{
	head(out, "gpuledger_build_info", "gauge", "The daemon's version.");
	buf_puts(out, "gpuledger_build_info{version=\"");
	label(out, GPULEDGER_VERSION);
	buf_puts(out, "\"} 1\n");
	render_http(m, out);
	render_store(m, st, out);
	render_quota(st, out);
	render_pools(st, out);
}
