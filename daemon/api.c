/* SPDX-License-Identifier: MIT */
/*
 * The HTTP API: one table of routes (method, path pattern, least role,
 * allowed query parameters, handler), strict JSON bodies (duplicate keys,
 * unknown and wrong-typed fields refused with the field's name),
 * idempotent POSTs, scoping of every read to what the caller may see, and
 * the typed error body of DESIGN.md. Changes go through the ledger and the
 * writer; a read's reply waits behind the open batch (reads of the store
 * first settle it), so that nothing it returns is not on disk.
 */
#include "daemon/api.h"
#include "daemon/auth.h"
#include "daemon/error.h"
#include "daemon/grammar.h"
#include "daemon/history.h"
#include "daemon/proto.h"
#include "daemon/log.h"
#include "daemon/timefmt.h"
#include "daemon/timeline.h"
#include "daemon/util.h"
#include "daemon/web.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#define MAX_QUERY 8
#define MAX_TEXT 2000		/* reason, note: bytes */
#define CALENDAR_MAX_SLOTS 2000
#define CALENDAR_MAX_STEP (366 * 86400)	/* seconds: a slot is at most a year */
#define JOURNAL_PAGE 100	/* entries of GET /v1/journal without limit */
#define MAX_JSON_DEPTH 32	/* no request needs more than 2 */

struct call {
	struct api *api;
	struct server_req *r;
	const struct http_request *http;
	struct principal who;
	char *request_id;
	uint64_t start_us;
	int64_t now;
	enum proto_req req;
	int route;		/* req once matched, -1 before (metrics) */
	char *params[PROTO_MAX_PARAMS];
	struct {
		char *key;
		char *value;
	} query[MAX_QUERY];
	size_t n_query;
	json_t *body;
	/* the body's fields, by the request's row of daemon/proto.def */
	struct {
		bool present;	/* given and not null */
		const char *s;	/* PT_STR; points into body */
		int64_t i;	/* PT_INT, PT_TIME (Unix seconds) */
		bool b;		/* PT_BOOL */
	} f[FIELD__COUNT];
	bool mutating;
	bool dry_run;		/* "dry_run": true: see dry_run() */
	uint8_t body_hash[HASH_LEN];
	int64_t idem_seq;	/* > 0: the answer is rebuilt from this entry (idem_rebuild()) */
};

typedef void (*handler_fn)(struct call *c);

/* --- replies ----------------------------------------------------------- */

/* A reply of c, ready for the writer: body (taken) and the log line's strings. */
static struct held_reply held_of(const struct call *c, int status, const char *content_type,
				 char *body)
{
	return (struct held_reply){
		.req = c->r,
		.status = status,
		.body = body,
		.content_type = content_type,
		.route = c->route,
		/* a GET is answered again if the batch it waits for fails */
		.reread = c->http->method && strcmp(c->http->method, "GET") == 0 &&
			  c->route != PROTO_BACKUP,
		.request_id = xstrdup(c->request_id),
		.actor = xstrdup(c->who.name),
		.method = xstrdup(c->http->method),
		.path = xstrdup(c->http->path),
		.start_us = c->start_us,
	};
}

/* Sends body (taken) with its content type (static; NULL for JSON). */
static void finish_as(struct call *c, int status, const char *content_type, char *body)
{
	struct held_reply h = held_of(c, status, content_type, body);
	writer_reply(c->api->writer, &h);
}

static void finish(struct call *c, int status, char *body)
{
	finish_as(c, status, NULL, body);
}

static json_t *entries_json(const struct call *c, const struct jlist *l);

/*
 * Takes o. A successful POST's answer is kept for idempotent retries. A
 * dry run's says so, with the entries it would have written; it answers
 * 200 whatever the real request would (nothing was created).
 *
 * Only a booking's answer is kept by reference (c->idem_seq, rebuilt by
 * idem_rebuild()): it is its reserve entry and nothing else. The others
 * show state that their own entries do not hold: a grant's quota row (the
 * balance after every earlier entry of its key, and the consumed part at
 * that instant), a cancel's or release's allocation as every earlier
 * modify left it (entries that no index finds by allocation), an
 * elimination's revoked and cut allocations; so they keep their text.
 */
static void reply(struct call *c, int status, json_t *o)
{
	if (c->dry_run && status < 300 && json_is_object(o)) {
		status = 200;
		json_object_set_new(o, "dry_run", json_true());
		if (json_object_get(o, "entries") == NULL)
			json_object_set_new(o, "entries",
					    entries_json(c, writer_trial_entries(c->api->writer)));
	}
	char *body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (c->mutating && status < 300 && c->http->idempotency_key)
		writer_add_idem_ref(c->api->writer, c->http->idempotency_key, c->body_hash, status,
				    body, c->idem_seq);
	finish(c, status, body);
}

/* Answers the typed error of code; takes details (NULL for {}). */
static void reply_error(struct call *c, enum error_code code, json_t *details,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void reply_error(struct call *c, enum error_code code, json_t *details,
			const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	int status = error_status(code);
	if (status != 404)
		log_event(LOG_DEBUG, "refused", "{s:s, s:s, s:s}", "request_id", c->request_id,
			  "code", error_name(code), "message", msg);
	json_t *o = error_json(code, msg, details);
	free(msg);
	if (!c->dry_run)	/* a dry run's refusal refused nothing */
		metrics_refusal(c->api->metrics, code);
	c->mutating = false;	/* refusals are not remembered */
	reply(c, status, o);
}

/* A required reason that is empty: refused, naming the field. */
static bool reason_empty(struct call *c, const char *reason)
{
	if (*reason != '\0')
		return false;
	reply_error(c, ERR_BAD_REQUEST, json_pack("{s:s}", "field", proto_field_name(FIELD_REASON)),
		    "field 'reason' must not be empty");
	return true;
}

static void reply_ledger_error(struct call *c, struct ledger_error *err)
{
	json_t *details = err->details;
	err->details = NULL;
	reply_error(c, err->code, details, "%s", err->message);
	ledger_error_clear(err);
}

static const char *tfmt(const struct call *c, int64_t t, char *buf)
{
	return time_format(t, c->api->cfg->tz_offset, buf, TIME_BUFSZ);
}

static json_t *time_json(const struct call *c, int64_t t)
{
	char buf[TIME_BUFSZ];
	if (t == TIME_MIN || t == TIME_MAX)
		return json_null();
	return json_string(tfmt(c, t, buf));
}

/*
 * Settles the open batch and the one in flight, so that a read from the
 * store sees only what is on disk, and all that was answered.
 */
static void settle(struct call *c)
{
	if (writer_busy(c->api->writer))
		writer_flush(c->api->writer);
	c->now = clock_now(c->api->clock);
}

/*
 * The connection for a read that does not settle (on a POST's path): the
 * read-only one, which sees exactly what is committed while the commit
 * thread has a transaction open on the store's. What the open batch and
 * the one in flight hold, the writer is asked for (writer_find_idem(),
 * writer_find_usage()) or the ledger knows.
 */
static struct store *reads(const struct call *c)
{
	return c->api->reader ? c->api->reader : c->api->store;
}

/*
 * A read of the in-memory ledger: it may see the open batch's changes, but
 * its reply is held behind that batch (writer_reply()) and leaves only once
 * the batch commits (503 if it fails), so nothing that is not on disk is
 * ever shown, and the read neither waits for an early commit nor splits the
 * writers' batch (DESIGN.md, Performance contract).
 */
static void behind_batch(struct call *c)
{
	c->now = clock_now(c->api->clock);
}

/* --- input ------------------------------------------------------------- */

static const char *query_value(const struct call *c, const char *key)
{
	for (size_t i = 0; i < c->n_query; i++)
		if (strcmp(c->query[i].key, key) == 0)
			return c->query[i].value;
	return NULL;
}

static const char *query_get(const struct call *c, enum proto_field f)
{
	return query_value(c, proto_field_name(f));
}

/*
 * The text rule (grammar.h text_check()) for a string the client sent, a
 * body field or a query parameter (what = "field" or "parameter"): replies
 * 400 with details.<what> and returns -1 if s breaks it.
 */
static int text_refused(struct call *c, const char *s, size_t len, const char *what,
			const char *name)
{
	size_t at;
	uint32_t cp;
	int rc = text_check(s, len, &at, &cp);

	if (rc == 0)
		return 0;
	if (rc == -EILSEQ)
		reply_error(c, ERR_BAD_REQUEST, json_pack("{s:s}", what, name),
			    "%s '%s' is not valid UTF-8 (at byte %zu)", what, name, at);
	else
		reply_error(c, ERR_BAD_REQUEST, json_pack("{s:s}", what, name),
			    "%s '%s' must not contain control characters (U+%04X at byte %zu)",
			    what, name, (unsigned)cp, at);
	return -1;
}

/* Parses the query string; replies 400 and returns -1 on anything wrong. */
static int parse_query(struct call *c)
{
	if (c->http->query == NULL || *c->http->query == '\0')
		return 0;
	char *copy = xstrdup(c->http->query);
	char *save = NULL;
	int rc = 0;
	for (char *tok = strtok_r(copy, "&", &save); tok; tok = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(tok, '=');
		char *val = eq ? eq + 1 : (char *)"";
		if (eq)
			*eq = '\0';
		char *key = pct_decode(tok, strlen(tok), true);
		char *value = pct_decode(val, strlen(val), true);
		if (key == NULL || value == NULL) {
			reply_error(c, ERR_BAD_REQUEST, NULL, "malformed query string");
			rc = -1;
		} else if (!utf8_valid(key, strlen(key))) {
			reply_error(c, ERR_BAD_REQUEST, NULL,
				    "malformed query string: a parameter name is not valid UTF-8");
			rc = -1;
		} else if (text_refused(c, value, strlen(value), "parameter", key)) {
			rc = -1;
		} else if (!proto_has_query(c->req, proto_field_lookup(key))) {
			reply_error(c, ERR_BAD_REQUEST, json_pack("{s:s}", "parameter", key),
				    "unknown query parameter '%s'", key);
			rc = -1;
		} else if (query_value(c, key) != NULL || c->n_query == MAX_QUERY) {
			reply_error(c, ERR_BAD_REQUEST, json_pack("{s:s}", "parameter", key),
				    "query parameter '%s' given twice", key);
			rc = -1;
		}
		if (rc != 0) {
			free(key);
			free(value);
			break;
		}
		c->query[c->n_query].key = key;
		c->query[c->n_query].value = value;
		c->n_query++;
	}
	free(copy);
	return rc;
}

/* What a field of type t must be, for the refusal. */
static const char *type_wanted(enum proto_type t)
{
	switch (t) {
	case PT_STR: return "a string of at most 2000 bytes";
	case PT_INT: return "an integer";
	case PT_BOOL: return "true or false";
	case PT_TIME: return "a time string such as 2026-01-16T09:00";
	}
	return "?";
}

/* Reads one field's value into c->f[f]; replies 400 and returns -1 if it is wrong. */
static int take_field(struct call *c, enum proto_field f, json_t *v)
{
	const char *name = proto_field_name(f), *cause;
	enum proto_type t = proto_field_type(f);
	bool ok = false;

	switch (t) {
	case PT_STR:
		ok = json_is_string(v) && json_string_length(v) <= MAX_TEXT;
		if (ok && text_refused(c, json_string_value(v), json_string_length(v),
				       "field", name))
			return -1;
		if (ok)
			c->f[f].s = json_string_value(v);
		break;
	case PT_INT:
		ok = json_is_integer(v);
		if (ok)
			c->f[f].i = json_integer_value(v);
		break;
	case PT_BOOL:
		ok = json_is_boolean(v);
		if (ok)
			c->f[f].b = json_is_true(v);
		break;
	case PT_TIME:
		if (!json_is_string(v))
			break;
		if (time_parse(json_string_value(v), c->api->cfg->tz_offset, &c->f[f].i,
			       &cause) != 0) {
			reply_error(c, ERR_BAD_TIME,
				    json_pack("{s:s, s:s}", "field", name, "value", json_string_value(v)),
				    "field '%s': %s", name, cause);
			return -1;
		}
		ok = true;
		break;
	}
	if (!ok) {
		reply_error(c, ERR_BAD_REQUEST, json_pack("{s:s}", "field", name),
			    "field '%s' must be %s", name, type_wanted(t));
		return -1;
	}
	c->f[f].present = true;
	return 0;
}

/*
 * Reads the body by the request's row of daemon/proto.def: an object with
 * no unknown field, every required one, each of its type. Replies 400 and
 * returns -1 on anything wrong.
 */
static int take_fields(struct call *c)
{
	const struct proto_body_field *bf = proto_request(c->req)->body;
	const char *key;
	json_t *v;

	if (!json_is_object(c->body)) {
		reply_error(c, ERR_BAD_REQUEST, NULL, "the body must be a JSON object");
		return -1;
	}
	json_object_foreach(c->body, key, v) {
		if (!proto_has_body(c->req, proto_field_lookup(key))) {
			reply_error(c, ERR_BAD_REQUEST, json_pack("{s:s}", "field", key),
				    "unknown field '%s'", key);
			return -1;
		}
	}
	for (; bf->field != FIELD_NONE; bf++) {
		const char *name = proto_field_name(bf->field);
		v = json_object_get(c->body, name);
		if (v != NULL && !json_is_null(v)) {
			if (take_field(c, bf->field, v))
				return -1;
		} else if (bf->required) {
			reply_error(c, ERR_BAD_REQUEST, json_pack("{s:s}", "field", name),
				    "missing field '%s'", name);
			return -1;
		}
	}
	return 0;
}

static int query_time(struct call *c, enum proto_field f, int64_t *out)
{
	const char *key = proto_field_name(f);
	const char *s = query_get(c, f), *cause;
	if (s == NULL)
		return 1;
	if (time_parse(s, c->api->cfg->tz_offset, out, &cause) != 0) {
		reply_error(c, ERR_BAD_TIME, json_pack("{s:s, s:s}", "parameter", key, "value", s),
			    "parameter '%s': %s", key, cause);
		return -1;
	}
	return 0;
}

static int query_int(struct call *c, enum proto_field f, int64_t *out)
{
	const char *key = proto_field_name(f);
	const char *s = query_get(c, f);
	if (s == NULL)
		return 1;
	int rc = i64_parse(s, out);
	if (rc != 0) {
		reply_error(c, ERR_BAD_REQUEST, json_pack("{s:s}", "parameter", key),
			    rc == -ERANGE ? "parameter '%s' is out of range" :
			    "parameter '%s' must be an integer", key);
		return -1;
	}
	return 0;
}

/*
 * The consortium a scoped read is about: a consortium caller sees only
 * itself, and naming another is answered exactly like a missing one.
 */
static int scope(struct call *c, const char *asked, const char **out)
{
	if (asked && config_consortium(c->api->cfg, asked) == NULL) {
		reply_error(c, ERR_NOT_FOUND, NULL, "no consortium '%s'", asked);
		return -1;
	}
	if (c->who.role == ROLE_CONSORTIUM) {
		if (asked && strcmp(asked, c->who.consortium) != 0) {
			reply_error(c, ERR_NOT_FOUND, NULL, "no consortium '%s'", asked);
			return -1;
		}
		*out = c->who.consortium;
		return 0;
	}
	*out = asked;
	return 0;
}

static struct ledger_ctx ctx_of(const struct call *c)
{
	return (struct ledger_ctx){.now = c->now, .actor = c->who.name,
				   .request_id = c->request_id};
}

/* --- JSON views -------------------------------------------------------- */

static json_t *consortium_json(const struct call *c, const struct cfg_consortium *k)
{
	const struct cstate *cs = ledger_cstate(c->api->ledger, k->id);
	json_t *members = json_array();
	for (size_t i = 0; i < k->members.n; i++)
		json_array_append_new(members, json_string(k->members.v[i]));
	/* rule 8: the status at now; an elimination still ahead shows as eliminated_from */
	int64_t since;
	bool elim = cstate_status_at(cs, c->now, &since) == CS_ELIMINATED;
	const struct cs_span *next = cstate_next_span(cs, c->now);
	/* its Unix groups (access.consortia), whose members an export names */
	json_t *groups = json_array();
	for (size_t i = 0; i < c->api->cfg->n_consortium_access; i++) {
		const struct cfg_consortium_access *ca = &c->api->cfg->consortium_access[i];
		if (strcmp(ca->consortium, k->id) != 0)
			continue;
		for (size_t g = 0; g < ca->groups.n; g++)
			json_array_append_new(groups, json_string(ca->groups.v[g]));
	}
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:o}",
			 "id", k->id, "name", k->name, "lead", k->lead, "members", members,
			 "joined", time_json(c, k->joined),
			 "status", elim ? "eliminated" : "active",
			 "since", time_json(c, since),
			 "eliminated_from", next ? time_json(c, next->from) : json_null(),
			 "designation_until", cs ? time_json(c, cs->designation_until) : json_null(),
			 "groups", groups);
}

static json_t *quota_json(const struct call *c, const struct balance *b)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:I}",
			 "consortium", b->consortium, "phase", b->phase, "gpu", b->gpu,
			 "granted_gpu_seconds", (json_int_t)b->granted,
			 "committed_gpu_seconds", (json_int_t)b->committed,
			 "available_gpu_seconds", (json_int_t)(b->granted - b->committed - b->expired),
			 "consumed_gpu_seconds", (json_int_t)ledger_consumed(c->api->ledger, b, c->now),
			 "expired_gpu_seconds", (json_int_t)b->expired,
			 "max_gpus", b->max_gpus > 0 ? json_integer(b->max_gpus) : json_null(),
			 "used_gpu_seconds", (json_int_t)b->used);
}

static json_t *alloc_json(const struct call *c, const struct alloc *a)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:s, s:s, s:I, s:o, s:o, s:o}",
			 "id", a->id, "consortium", a->consortium, "pool", a->pool, "gpu", a->gpu,
			 "gpus", (json_int_t)a->gpus,
			 "start", time_json(c, a->start), "end", time_json(c, a->end),
			 "phase", a->phase, "state", alloc_state_name(alloc_state_at(a, c->now)),
			 "cost_gpu_seconds", (json_int_t)a->cost,
			 "booked_end", time_json(c, a->booked_end),
			 "note", a->note ? json_string(a->note) : json_null(),
			 "created", time_json(c, a->created));
}

/*
 * An entry as the caller may see it: a consortium gets its view (salt and
 * view hash), never the global chain's hashes, which would let it test
 * guesses about the entries between its own.
 */
static json_t *entry_json(const struct call *c, const struct jentry *e)
{
	int32_t tz = c->api->cfg->tz_offset;
	return c->who.role == ROLE_CONSORTIUM ? jentry_to_view_json(e, tz) : jentry_to_json(e, tz);
}

static json_t *entries_json(const struct call *c, const struct jlist *l)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(arr, entry_json(c, &l->v[i]));
	return arr;
}

/* --- handlers ---------------------------------------------------------- */

/*
 * What a consortium is told of the daemon: its own part of the journal (how
 * many entries, the last seq, its view hash), none of the global head or
 * counters, which would say how much the others do.
 */
static json_t *status_of_consortium(const struct call *c)
{
	static const uint8_t zeros[HASH_LEN];
	const struct jview *v = ledger_view(c->api->ledger, c->who.consortium);
	char hex[HASH_HEX_LEN + 1];

	hash_hex(v ? v->head : zeros, hex);
	return json_pack("{s:s, s:I, s:o, s:s, s:{s:I, s:I, s:s}, s:{s:s, s:s}}",
			 "version", GPULEDGER_VERSION,
			 "uptime_s", (json_int_t)((uv_now(c->api->loop) - c->api->started_ms) / 1000),
			 "clock", time_json(c, c->now),
			 "clock_mode", clock_simulated(c->api->clock) ? "simulated" : "real",
			 "journal", "entries", (json_int_t)(v ? v->entries : 0),
			 "last_seq", (json_int_t)(v ? v->last_seq : 0), "view_hash", hex,
			 "you", "role", role_name(c->who.role), "consortium", c->who.consortium);
}

static void h_status(struct call *c)
{
	uint8_t hash[HASH_LEN];
	char hex[HASH_HEX_LEN + 1];

	behind_batch(c);
	if (c->who.role == ROLE_CONSORTIUM) {
		reply(c, 200, status_of_consortium(c));
		return;
	}
	ledger_head_hash(c->api->ledger, hash);
	hash_hex(hash, hex);
	json_t *o = json_pack("{s:s, s:I, s:o, s:s, s:{s:I, s:s}, s:{s:I, s:I, s:I, s:I, s:I},"
			      " s:{s:s, s:o}}",
			      "version", GPULEDGER_VERSION,
			      "uptime_s", (json_int_t)((uv_now(c->api->loop) - c->api->started_ms) / 1000),
			      "clock", time_json(c, c->now),
			      "clock_mode", clock_simulated(c->api->clock) ? "simulated" : "real",
			      "journal", "seq", (json_int_t)ledger_head_seq(c->api->ledger), "hash", hex,
			      "counters",
			      "requests", (json_int_t)server_requests_total(c->api->server),
			      "commits", (json_int_t)c->api->writer->commits,
			      "committed_entries", (json_int_t)c->api->writer->committed_entries,
			      "failed_commits", (json_int_t)c->api->writer->failed_commits,
			      "connections", (json_int_t)server_connections(c->api->server),
			      "you", "role", role_name(c->who.role),
			      "consortium", c->who.consortium ? json_string(c->who.consortium) : json_null());
	reply(c, 200, o);
}

/* The pool's cuts (gpuledger pool cut), which override its configured capacity. */
static json_t *pool_cuts_json(const struct call *c, const char *pool)
{
	size_t n = ledger_pool_cuts(c->api->ledger, pool, NULL, NULL, 0);
	int64_t *at = xreallocarray(NULL, n + 1, sizeof(*at));
	int64_t *gpus = xreallocarray(NULL, n + 1, sizeof(*gpus));
	json_t *arr = json_array();

	ledger_pool_cuts(c->api->ledger, pool, at, gpus, n);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:o, s:I}", "at", time_json(c, at[i]),
						     "gpus", (json_int_t)gpus[i]));
	free(at);
	free(gpus);
	return arr;
}

/*
 * A phase with its dates as the ledger keeps them (start, end: a phase move
 * overrides the config) and as the config file gives them.
 */
static json_t *phase_json(const struct call *c, const struct cfg_phase *file)
{
	const struct cfg_phase *ph = config_phase(ledger_config(c->api->ledger), file->id);
	if (ph == NULL)
		ph = file;
	return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "id", file->id, "name", file->name,
			 "start", time_json(c, ph->start), "end", time_json(c, ph->end),
			 "config_start", time_json(c, file->start),
			 "config_end", time_json(c, file->end));
}

static void h_program(struct call *c)
{
	const struct config *cfg = c->api->cfg;
	json_t *phases = json_array(), *pools = json_array(), *cons = json_array();

	behind_batch(c);
	for (size_t i = 0; i < cfg->n_phases; i++)
		json_array_append_new(phases, phase_json(c, &cfg->phases[i]));
	for (size_t i = 0; i < cfg->n_pools; i++) {
		const struct cfg_pool *p = &cfg->pools[i];
		json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:o}",
			"id", p->id, "provider", p->provider, "gpu", p->gpu,
			"gpus", (json_int_t)p->gpus,
			"available_from", time_json(c, p->available_from),
			"available_until", time_json(c, p->available_until),
			"gpus_per_node", p->gpus_per_node ? json_integer(p->gpus_per_node) : json_null());
		json_object_set_new(o, "cuts", pool_cuts_json(c, p->id));
		/* only where the cluster bridge mirrors the pool */
		if (p->slurm.cluster)
			json_object_set_new(o, "slurm", json_pack("{s:s, s:s}",
				"cluster", p->slurm.cluster, "partition", p->slurm.partition));
		json_array_append_new(pools, o);
	}
	for (size_t i = 0; i < cfg->n_consortia; i++) {
		const struct cfg_consortium *k = &cfg->consortia[i];
		if (c->who.role == ROLE_CONSORTIUM && strcmp(k->id, c->who.consortium) != 0)
			continue;
		json_array_append_new(cons, consortium_json(c, k));
	}
	reply(c, 200, json_pack("{s:{s:s, s:s, s:I}, s:o, s:o, s:o}",
				"program", "name", cfg->program_name, "timezone", cfg->timezone,
				"designation_grace_days", (json_int_t)cfg->designation_grace_days,
				"phases", phases, "pools", pools, "consortia", cons));
}

static void h_clock_get(struct call *c)
{
	behind_batch(c);
	reply(c, 200, json_pack("{s:o, s:s}", "clock", time_json(c, c->now),
				"clock_mode", clock_simulated(c->api->clock) ? "simulated" : "real"));
}

static void h_clock_post(struct call *c)
{
	bool has_set = c->f[FIELD_SET].present, has_adv = c->f[FIELD_ADVANCE].present;
	const char *adv = c->f[FIELD_ADVANCE].s;
	int64_t target = c->f[FIELD_SET].i, dur;

	if (!clock_simulated(c->api->clock)) {
		reply_error(c, ERR_FORBIDDEN, NULL,
			    "the daemon runs on the real clock; only a simulated clock (--clock) can be moved");
		return;
	}
	if (has_set == has_adv) {
		reply_error(c, ERR_BAD_REQUEST, NULL, "give exactly one of 'set' and 'advance'");
		return;
	}
	if (!has_set) {
		if (duration_parse(adv, &dur) != 0) {
			reply_error(c, ERR_BAD_REQUEST, json_pack("{s:s}", "field", proto_field_name(FIELD_ADVANCE)),
				    "field 'advance': expected a duration such as 90s, 15m, 2h, 3d, 1w or 1d12h");
			return;
		}
		if (time_add(c->now, dur, c->api->cfg->tz_offset, &target) != 0) {
			reply_error(c, ERR_BAD_TIME, json_pack("{s:s, s:s}", "field",
							       proto_field_name(FIELD_ADVANCE), "value", adv),
				    "field 'advance': the clock would move past the year 9999");
			return;
		}
	}
	if (target < c->now) {
		char a[TIME_BUFSZ], b[TIME_BUFSZ];
		reply_error(c, ERR_CONFLICT, NULL, "the clock cannot move backwards (from %s to %s)",
			    tfmt(c, c->now, a), tfmt(c, target, b));
		return;
	}
	/* the move stands once its batch commits; a failed one puts the clock back */
	clock_move_begin(c->api->clock);
	sched_move_to(c->api->sched, target);
	c->now = target;
	reply(c, 200, json_pack("{s:o, s:s}", "clock", time_json(c, c->now),
				"clock_mode", "simulated"));
	if (!writer_open(c->api->writer))
		clock_move_commit(c->api->clock);	/* nothing to commit: answered already */
}

static void h_grant(struct call *c)
{
	bool has_cap = c->f[FIELD_MAX_GPUS].present;
	struct grant_req req = {
		.consortium = c->f[FIELD_CONSORTIUM].s,
		.phase = c->f[FIELD_PHASE].s,
		.gpu = c->f[FIELD_GPU].s,
		.gpu_seconds = c->f[FIELD_GPU_SECONDS].i,
		.max_gpus = has_cap ? c->f[FIELD_MAX_GPUS].i : -1,
		.reason = c->f[FIELD_REASON].s,
		.oversubscribe = c->f[FIELD_OVERSUBSCRIBE].present && c->f[FIELD_OVERSUBSCRIBE].b,
	};
	struct ledger_error err = {0};
	struct jlist out = {0};
	struct ledger_ctx ctx = ctx_of(c);

	if (has_cap && req.max_gpus < 0) {
		reply_error(c, ERR_INVALID_AMOUNT, NULL, "max_gpus must be 0 (no cap) or more");
		return;
	}
	if (reason_empty(c, req.reason))
		return;
	if (ledger_grant(c->api->ledger, &ctx, &req, &out, &err) != 0) {
		reply_ledger_error(c, &err);
		return;
	}
	json_t *o = json_pack("{s:o, s:o}", "quota",
			      quota_json(c, ledger_balance(c->api->ledger, req.consortium, req.phase,
							   req.gpu)),
			      "entries", entries_json(c, &out));
	writer_add(c->api->writer, &out, NULL);
	reply(c, 200, o);
}

/*
 * Both entries of a transfer and the receiver's row: the giver's row (or
 * the reserve, in GET /v1/budget) is another party's, and an admin asks.
 */
static void h_transfer(struct call *c)
{
	struct transfer_req req = {
		.from = c->f[FIELD_FROM_CONSORTIUM].s,
		.to = c->f[FIELD_TO_CONSORTIUM].s,
		.phase = c->f[FIELD_PHASE].s,
		.gpu = c->f[FIELD_GPU].s,
		.gpu_seconds = c->f[FIELD_GPU_SECONDS].i,
		.reason = c->f[FIELD_REASON].s,
		.oversubscribe = c->f[FIELD_OVERSUBSCRIBE].present && c->f[FIELD_OVERSUBSCRIBE].b,
	};
	struct ledger_error err = {0};
	struct jlist out = {0};
	struct ledger_ctx ctx = ctx_of(c);

	if (reason_empty(c, req.reason))
		return;
	if (ledger_transfer(c->api->ledger, &ctx, &req, &out, &err) != 0) {
		reply_ledger_error(c, &err);
		return;
	}
	const struct balance *from = strcmp(req.from, CONFIG_RESERVE) == 0 ? NULL :
		ledger_balance(c->api->ledger, req.from, req.phase, req.gpu);
	json_t *o = json_pack("{s:{s:s, s:s, s:s, s:s, s:I}, s:o, s:o, s:o}",
			      "transfer", "from_consortium", req.from, "to_consortium", req.to,
			      "phase", req.phase, "gpu", req.gpu,
			      "gpu_seconds", (json_int_t)req.gpu_seconds,
			      "from", from ? quota_json(c, from) : json_null(),
			      "to", quota_json(c, ledger_balance(c->api->ledger, req.to, req.phase,
								 req.gpu)),
			      "entries", entries_json(c, &out));
	writer_add(c->api->writer, &out, NULL);
	reply(c, 200, o);
}

static void h_budget(struct call *c)
{
	const char *phase = query_get(c, FIELD_PHASE);
	struct budget_row *v;
	json_t *rows = json_array();

	behind_batch(c);
	if (phase && config_phase(c->api->cfg, phase) == NULL) {
		json_decref(rows);
		reply_error(c, ERR_UNKNOWN_PHASE, NULL, "no phase '%s'", phase);
		return;
	}
	size_t n = ledger_budget(c->api->ledger, &v);
	for (size_t i = 0; i < n; i++) {
		if (phase && strcmp(v[i].phase, phase) != 0)
			continue;
		json_array_append_new(rows, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}",
			"phase", v[i].phase, "gpu", v[i].gpu,
			"procured_gpu_seconds", (json_int_t)v[i].procured,
			"granted_gpu_seconds", (json_int_t)v[i].granted,
			"committed_gpu_seconds", (json_int_t)v[i].committed,
			"reserve_gpu_seconds", (json_int_t)(v[i].procured - v[i].granted)));
	}
	free(v);
	reply(c, 200, json_pack("{s:o}", "budget", rows));
}

/* The time of the journal's first entry; TIME_MAX while it has none. */
static int first_entry_time(void *arg, const struct jentry *e)
{
	*(int64_t *)arg = e->time;
	return 0;
}

static int history_feed(void *arg, const struct jentry *e)
{
	history_entry(arg, e);
	return 0;
}

/*
 * GET /v1/quota?at=T: the rows as they stood at T, folded from the
 * journal (a consortium's own entries only, for a consortium), for T from
 * the first entry to now. The journal is read from disk: the open batch
 * is settled first.
 */
static void quota_at(struct call *c, const char *who, const char *phase, const char *gpu,
		     int64_t at)
{
	char t1[TIME_BUFSZ], t2[TIME_BUFSZ], t3[TIME_BUFSZ];
	int64_t first = TIME_MAX;
	int err;

	settle(c);
	err = store_journal_each(c->api->store, 0, NULL, 1, first_entry_time, &first);
	if (err == 0 && (at < first || at > c->now)) {
		json_t *d = json_pack("{s:o, s:o}", "first_entry", time_json(c, first),
				      "now", time_json(c, c->now));
		if (first == TIME_MAX)
			reply_error(c, ERR_INVALID_WINDOW, d, "the journal is empty: no balance stood at %s",
				    tfmt(c, at, t1));
		else
			reply_error(c, ERR_INVALID_WINDOW, d,
				    "balances are known from the first entry (%s) to now (%s), not at %s",
				    tfmt(c, first, t1), tfmt(c, c->now, t2), tfmt(c, at, t3));
		return;
	}
	struct history *h = history_new(at);
	if (err == 0)
		err = store_journal_each(c->api->store, 0, who, 0, history_feed, h);
	if (err != 0) {
		history_free(h);
		reply_error(c, ERR_STORAGE_UNAVAILABLE, NULL, "the journal could not be read");
		return;
	}
	const struct history_row *const *v;
	size_t n = history_rows(h, c->api->cfg, &v);
	json_t *rows = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct balance *b = &v[i]->b;
		if ((phase && strcmp(b->phase, phase) != 0) || (gpu && strcmp(b->gpu, gpu) != 0))
			continue;
		json_array_append_new(rows, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o}",
			"consortium", b->consortium, "phase", b->phase, "gpu", b->gpu,
			"granted_gpu_seconds", (json_int_t)b->granted,
			"committed_gpu_seconds", (json_int_t)b->committed,
			"available_gpu_seconds", (json_int_t)(b->granted - b->committed - b->expired),
			"consumed_gpu_seconds", (json_int_t)v[i]->consumed,
			"expired_gpu_seconds", (json_int_t)b->expired,
			"max_gpus", b->max_gpus > 0 ? json_integer(b->max_gpus) : json_null()));
	}
	history_free(h);
	reply(c, 200, json_pack("{s:o, s:o}", "at", time_json(c, at), "quota", rows));
}

static void h_quota(struct call *c)
{
	const char *who, *phase = query_get(c, FIELD_PHASE), *gpu = query_get(c, FIELD_GPU);
	const struct balance **v;
	int64_t at;
	int rc;
	json_t *rows;

	behind_batch(c);
	if (scope(c, query_get(c, FIELD_CONSORTIUM), &who))
		return;
	if ((rc = query_time(c, FIELD_AT, &at)) <= 0) {
		if (rc == 0)
			quota_at(c, who, phase, gpu, at);
		return;
	}
	rows = json_array();
	size_t n = ledger_balances(c->api->ledger, &v);
	for (size_t i = 0; i < n; i++) {
		if ((who && strcmp(v[i]->consortium, who) != 0) ||
		    (phase && strcmp(v[i]->phase, phase) != 0) ||
		    (gpu && strcmp(v[i]->gpu, gpu) != 0))
			continue;
		json_array_append_new(rows, quota_json(c, v[i]));
	}
	reply(c, 200, json_pack("{s:o}", "quota", rows));
}

/* journal ------------------------------------------------------------ */

struct journal_page {
	struct call *c;
	json_t *arr;
};

static int journal_row(void *arg, const struct jentry *e)
{
	struct journal_page *p = arg;
	json_array_append_new(p->arr, entry_json(p->c, e));
	return 0;
}

/*
 * A page of the journal and where it stands: the entries after since (the
 * last limit ones, ending at the head, when since is absent) and how many
 * entries the caller may see lie before and after the page.
 */
static int journal_page(struct call *c, const char *who, bool tail, int64_t since,
			int64_t limit, json_t **out)
{
	struct store *st = c->api->store;
	struct journal_page p = {.c = c, .arr = json_array()};
	int64_t earlier = 0, later = 0, last;
	int err = 0;

	if (tail)
		err = store_journal_newest(st, who, limit, &since);
	if (err == 0)
		err = store_journal_each(st, since, who, limit, journal_row, &p);
	if (err == 0 && json_array_size(p.arr) > 0)
		last = json_integer_value(json_object_get(
			json_array_get(p.arr, json_array_size(p.arr) - 1), "seq"));
	else
		last = since;
	if (err == 0)
		err = store_journal_count(st, who, 0, since, &earlier);
	if (err == 0)
		err = store_journal_count(st, who, last, INT64_MAX, &later);
	if (err != 0) {
		json_decref(p.arr);
		return err;
	}
	*out = json_pack("{s:o, s:I, s:I}", "entries", p.arr, "earlier", (json_int_t)earlier,
			 "later", (json_int_t)later);
	return 0;
}

static void h_journal(struct call *c)
{
	const char *who;
	int64_t since = 0, limit = JOURNAL_PAGE;
	const char *follow = query_get(c, FIELD_FOLLOW);
	int has_since = 1;	/* query_int(): 1 = not given */

	settle(c);
	if (scope(c, query_get(c, FIELD_CONSORTIUM), &who) ||
	    (has_since = query_int(c, FIELD_SINCE, &since)) < 0 ||
	    query_int(c, FIELD_LIMIT, &limit) < 0)
		return;
	if (since < 0 || limit <= 0 || limit > 100000) {
		reply_error(c, ERR_BAD_REQUEST, NULL,
			    "since must be >= 0 and limit between 1 and 100000");
		return;
	}
	if (follow && strcmp(follow, "1") != 0 && strcmp(follow, "0") != 0) {
		reply_error(c, ERR_BAD_REQUEST, json_pack("{s:s}", "parameter", "follow"),
			    "parameter 'follow' must be 0 or 1");
		return;
	}
	if (follow && strcmp(follow, "1") == 0) {
		log_event(LOG_INFO, "follow", "{s:s, s:s, s:s?}", "request_id", c->request_id,
			  "actor", c->who.name, "consortium", who);
		follow_start(c->api->follow, c->r, who, &c->who, c->api->store, since,
			     c->api->cfg->tz_offset);
		return;
	}
	json_t *o;
	if (journal_page(c, who, has_since == 1, since, limit, &o) != 0) {
		reply_error(c, ERR_STORAGE_UNAVAILABLE, NULL, "cannot read the journal: %s",
			    store_errmsg(c->api->store));
		return;
	}
	reply(c, 200, o);
}

/*
 * GET /v1/backup: a consistent copy of the database, made on the thread
 * pool through SQLite's online backup API (its own read connection sees
 * one committed state), so the loop keeps serving while it runs. The copy
 * is sent whole: it is read into memory.
 */
/* 64 random bits as 16 hex digits: request ids, temporary names. */
#define RANDOM_HEX_LEN 16
static void random_hex(char out[RANDOM_HEX_LEN + 1])
{
	uint8_t rnd[RANDOM_HEX_LEN / 2];
	random_bytes(rnd, sizeof(rnd));
	sodium_bin2hex(out, RANDOM_HEX_LEN + 1, rnd, sizeof(rnd));
}

struct backup_job {
	uv_work_t work;
	struct api *api;
	struct held_reply h;
	char *src, *tmp;
	int err;
	char *cause;
	struct buf data;
};

static int read_whole(const char *path, struct buf *out, char **cause)
{
	char chunk[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		*cause = xasprintf("cannot read the copy %s: %s", path, strerror(errno));
		return -errno;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;
			*cause = xasprintf("cannot read the copy %s: %s", path, strerror(errno));
			close(fd);
			return err;
		}
		buf_append(out, chunk, (size_t)n);
	}
	close(fd);
	return 0;
}

static void backup_work(uv_work_t *w)
{
	struct backup_job *j = w->data;
	j->err = store_backup_file(j->src, j->tmp, &j->cause);
	if (j->err == 0)
		j->err = read_whole(j->tmp, &j->data, &j->cause);
	unlink(j->tmp);
}

static void backup_done(uv_work_t *w, int status)
{
	struct backup_job *j = w->data;

	if (j->err == 0 && status == 0 && j->data.len > 0) {
		j->h.status = 200;
		j->h.body_len = j->data.len;
		j->h.body = buf_take(&j->data);
		log_event(LOG_INFO, "backup", "{s:s, s:I}", "request_id", j->h.request_id,
			  "bytes", (json_int_t)j->h.body_len);
	} else {
		log_event(LOG_ERROR, "backup_failed", "{s:s, s:s?}", "request_id", j->h.request_id,
			  "error", j->cause);
		metrics_refusal(j->api->metrics, ERR_STORAGE_UNAVAILABLE);
		j->h.status = error_status(ERR_STORAGE_UNAVAILABLE);
		j->h.content_type = NULL;
		j->h.body = error_body(ERR_STORAGE_UNAVAILABLE,
				       j->cause ? j->cause : "the backup failed", NULL);
	}
	writer_reply(j->api->writer, &j->h);
	buf_free(&j->data);
	free(j->cause);
	free(j->src);
	free(j->tmp);
	free(j);
}

static void h_backup(struct call *c)
{
	struct backup_job *j = xcalloc(1, sizeof(*j));
	char hex[RANDOM_HEX_LEN + 1];

	random_hex(hex);
	j->api = c->api;
	j->src = xstrdup(c->api->cfg->database);
	/* beside the database: the one place the daemon may write (StateDirectory) */
	j->tmp = xasprintf("%s.backup-%s", c->api->cfg->database, hex);
	j->h = held_of(c, 0, "application/vnd.sqlite3", NULL);
	j->work.data = j;
	int rc = uv_queue_work(c->api->loop, &j->work, backup_work, backup_done);
	if (rc != 0) {
		free(j->h.request_id);
		free(j->h.actor);
		free(j->h.method);
		free(j->h.path);
		free(j->src);
		free(j->tmp);
		free(j);
		reply_error(c, ERR_STORAGE_UNAVAILABLE, NULL, "cannot start the backup: %s",
			    uv_strerror(rc));
	}
}

/* GET /metrics: Prometheus text. Held behind an open batch like any read. */
static void h_metrics(struct call *c)
{
	struct buf out = {0};
	const struct metrics_state st = {
		.ledger = c->api->ledger,
		.cfg = c->api->cfg,
		.now = clock_now(c->api->clock),
		.commits = c->api->writer->commits,
		.commit_failures = c->api->writer->failed_commits,
	};
	metrics_render(c->api->metrics, &st, &out);
	finish_as(c, 200, "text/plain; version=0.0.4; charset=utf-8", buf_take(&out));
}

/* statement ---------------------------------------------------------- */

struct statement_page {
	json_t *arr;
	uint8_t head[HASH_LEN];
};

static int statement_row(void *arg, const struct jentry *e)
{
	struct statement_page *p = arg;
	char hex[HASH_HEX_LEN + 1];
	json_t *o = jentry_canonical_json(e);

	hash_hex(e->view_hash, hex);
	json_object_set_new(o, "view_hash", json_string(hex));
	json_array_append_new(p->arr, o);
	memcpy(p->head, e->view_hash, HASH_LEN);
	return 0;
}

/*
 * One consortium's entries after since with what proves them on their own:
 * each in its canonical encoding (salt included) with its view hash, and
 * the view hash they continue (view_base), so that `gpuledger statement
 * verify` can recompute the chain offline.
 */
static void h_statement(struct call *c)
{
	const char *who;
	int64_t since = 0;
	char base_hex[HASH_HEX_LEN + 1], head_hex[HASH_HEX_LEN + 1];
	struct statement_page p;

	settle(c);
	if (scope(c, query_get(c, FIELD_CONSORTIUM), &who) || query_int(c, FIELD_SINCE, &since) < 0)
		return;
	if (who == NULL) {
		reply_error(c, ERR_BAD_REQUEST, json_pack("{s:s}", "parameter", "consortium"),
			    "a statement is of one consortium: give 'consortium'");
		return;
	}
	if (since < 0) {
		reply_error(c, ERR_BAD_REQUEST, json_pack("{s:s}", "parameter", "since"),
			    "since must be >= 0");
		return;
	}
	p.arr = json_array();
	if (store_view_at(c->api->store, who, since, p.head) != 0) {
		json_decref(p.arr);
		reply_error(c, ERR_STORAGE_UNAVAILABLE, NULL, "cannot read the journal: %s",
			    store_errmsg(c->api->store));
		return;
	}
	hash_hex(p.head, base_hex);
	if (store_journal_each(c->api->store, since, who, 0, statement_row, &p) != 0) {
		json_decref(p.arr);
		reply_error(c, ERR_STORAGE_UNAVAILABLE, NULL, "cannot read the journal: %s",
			    store_errmsg(c->api->store));
		return;
	}
	hash_hex(p.head, head_hex);
	reply(c, 200, json_pack("{s:s, s:s, s:I, s:o, s:s, s:s, s:o}",
				"statement", JOURNAL_STATEMENT_FORMAT, "consortium", who,
				"since", (json_int_t)since, "time", time_json(c, c->now),
				"view_base", base_hex, "view_head", head_hex, "entries", p.arr));
}

/*
 * GET /v1/verify: the full audit, on the thread pool through a read-only
 * connection of its own (one read snapshot of the database), so that the
 * loop keeps serving while it reads the whole journal. Back on the loop,
 * a sound audit moves the audit checkpoint forward and a failed one
 * removes it, so that the next start-up audits everything.
 */
struct verify_job {
	uv_work_t work;
	struct api *api;
	struct held_reply h;
	char *path;
	int64_t committed;
	struct audit *a;
	int err;
	char *cause;
};

static void verify_work(uv_work_t *w)
{
	struct verify_job *j = w->data;
	j->err = state_audit_snapshot(j->path, j->committed, &j->a, &j->cause);
}

static void verify_done(uv_work_t *w, int status)
{
	struct verify_job *j = w->data;
	struct audit *a = j->a;

	if (j->err != 0 || status != 0) {
		metrics_refusal(j->api->metrics, ERR_STORAGE_UNAVAILABLE);
		j->h.status = error_status(ERR_STORAGE_UNAVAILABLE);
		j->h.body = error_body(ERR_STORAGE_UNAVAILABLE,
				       j->cause ? j->cause : "the audit could not run", NULL);
	} else {
		int64_t seq, bad = audit_first_bad_seq(a);
		uint8_t hash[HASH_LEN];
		char hex[HASH_HEX_LEN + 1];
		audit_head(a, &seq, hash);
		hash_hex(hash, hex);
		json_t *o = json_pack("{s:b, s:I, s:{s:I, s:s}, s:o, s:o}",
				      "ok", audit_ok(a), "entries", (json_int_t)audit_entries(a),
				      "head", "seq", (json_int_t)seq, "hash", hex,
				      "first_bad_seq", bad ? json_integer(bad) : json_null(),
				      "problems", audit_problems(a));
		log_event(audit_ok(a) ? LOG_INFO : LOG_ERROR, "verify", "{s:s, s:b, s:I}",
			  "request_id", j->h.request_id, "ok", audit_ok(a),
			  "entries", (json_int_t)audit_entries(a));
		/* the store's connection is the loop's only with no batch in flight */
		writer_flush(j->api->writer);
		if (state_checkpoint(j->api->store, a) != 0)
			log_event(LOG_WARN, "checkpoint_failed", "{s:s}", "error",
				  store_errmsg(j->api->store));
		j->h.status = 200;
		j->h.body = json_dumps(o, JSON_COMPACT);
		json_decref(o);
	}
	writer_reply(j->api->writer, &j->h);
	audit_free(a);
	free(j->cause);
	free(j->path);
	free(j);
}

static void h_verify(struct call *c)
{
	struct verify_job *j = xcalloc(1, sizeof(*j));

	settle(c);	/* what the daemon answered is on disk for the snapshot to see */
	j->api = c->api;
	j->path = xstrdup(c->api->cfg->database);
	j->committed = ledger_head_seq(c->api->ledger);
	j->h = held_of(c, 0, NULL, NULL);
	j->work.data = j;
	int rc = uv_queue_work(c->api->loop, &j->work, verify_work, verify_done);
	if (rc != 0) {
		free(j->h.request_id);
		free(j->h.actor);
		free(j->h.method);
		free(j->h.path);
		free(j->path);
		free(j);
		reply_error(c, ERR_STORAGE_UNAVAILABLE, NULL, "cannot start the audit: %s",
			    uv_strerror(rc));
	}
}

/* allocations ------------------------------------------------------------ */

static void h_allocate(struct call *c)
{
	struct alloc_req req = {
		.consortium = c->f[FIELD_CONSORTIUM].s,
		.pool = c->f[FIELD_POOL].s,
		.gpu = c->f[FIELD_GPU].s,
		.gpus = c->f[FIELD_GPUS].i,
		.start = c->f[FIELD_START].i,
		.end = c->f[FIELD_END].i,
		.earliest = c->f[FIELD_EARLIEST].b,
		.note = c->f[FIELD_NOTE].s,
	};
	int64_t duration = c->f[FIELD_DURATION_S].i;
	bool has_end = c->f[FIELD_END].present, has_dur = c->f[FIELD_DURATION_S].present;
	const char *id;
	struct ledger_error err = {0};
	struct jlist out = {0};
	struct ledger_ctx ctx = ctx_of(c);

	if ((req.pool == NULL) == (req.gpu == NULL)) {
		reply_error(c, ERR_BAD_REQUEST, NULL, "give exactly one of 'pool' and 'gpu'");
		return;
	}
	if (has_end == has_dur) {
		reply_error(c, ERR_BAD_REQUEST, NULL, "give exactly one of 'end' and 'duration_s'");
		return;
	}
	if (has_dur && duration <= 0) {
		reply_error(c, ERR_INVALID_WINDOW, NULL, "duration_s must be positive");
		return;
	}
	if (has_dur && time_add(req.start, duration, c->api->cfg->tz_offset, &req.end) != 0) {
		reply_error(c, ERR_INVALID_WINDOW, NULL, "the end would lie past the year 9999");
		return;
	}
	if (ledger_allocate(c->api->ledger, &ctx, &req, &out, &id, &err) != 0) {
		reply_ledger_error(c, &err);
		return;
	}
	json_t *o = json_pack("{s:o}", "allocation",
			      alloc_json(c, ledger_alloc(c->api->ledger, id)));
	/* the answer is its reserve entry's: retries rebuild it from there */
	if (out.n == 1 && out.v[0].kind == J_RESERVE)
		c->idem_seq = out.v[0].seq;
	writer_add(c->api->writer, &out, req.note);	/* logged once committed */
	reply(c, 201, o);
}

struct alloc_page {
	struct call *c;
	json_t *arr;
	bool state_filter;
	enum alloc_state state;
};

static int alloc_row(void *arg, const struct alloc *a)
{
	struct alloc_page *p = arg;
	if (!p->state_filter || alloc_state_at(a, p->c->now) == p->state)
		json_array_append_new(p->arr, alloc_json(p->c, a));
	return 0;
}

static void h_allocations(struct call *c)
{
	struct alloc_filter f = {.pool = query_get(c, FIELD_POOL)};
	struct alloc_page p = {.c = c};
	const char *state = query_get(c, FIELD_STATE);

	settle(c);
	if (scope(c, query_get(c, FIELD_CONSORTIUM), &f.consortium))
		return;
	if (state && alloc_state_parse(state, &p.state) != 0) {
		reply_error(c, ERR_BAD_REQUEST, json_pack("{s:s}", "parameter", "state"),
			    "unknown state '%s' (reserved, active, completed, cancelled, released, revoked)",
			    state);
		return;
	}
	p.state_filter = state != NULL;
	p.arr = json_array();
	if (store_allocations_each(c->api->store, &f, alloc_row, &p) != 0) {
		json_decref(p.arr);
		reply_error(c, ERR_STORAGE_UNAVAILABLE, NULL, "cannot read allocations: %s",
			    store_errmsg(c->api->store));
		return;
	}
	reply(c, 200, json_pack("{s:o}", "allocations", p.arr));
}

static int alloc_one(void *arg, const struct alloc *a)
{
	struct alloc_page *p = arg;
	p->arr = alloc_json(p->c, a);
	return 1;
}

static void h_allocation(struct call *c)
{
	struct alloc_filter f = {.id = c->params[0]};
	struct alloc_page p = {.c = c};

	settle(c);
	/* the scope is part of the query: another's allocation is simply absent */
	if (c->who.role == ROLE_CONSORTIUM)
		f.consortium = c->who.consortium;
	int rc = store_allocations_each(c->api->store, &f, alloc_one, &p);
	if (rc < 0) {
		reply_error(c, ERR_STORAGE_UNAVAILABLE, NULL, "cannot read allocations: %s",
			    store_errmsg(c->api->store));
		return;
	}
	if (p.arr == NULL) {
		reply_error(c, ERR_NOT_FOUND, NULL, "no allocation '%s'", c->params[0]);
		return;
	}
	reply(c, 200, json_pack("{s:o}", "allocation", p.arr));
}

/* The allocation as it stands after a cancel or release entry. */
static json_t *alloc_after(struct call *c, const struct alloc *before, const struct jentry *e,
			   enum alloc_stored stored)
{
	struct alloc a;
	alloc_copy(&a, before);
	a.end = e->end;
	a.cost += e->committed_delta;
	a.stored = stored;
	json_t *o = alloc_json(c, &a);
	alloc_clear(&a);
	return o;
}

/*
 * The refusal of a change to an allocation that is not live: bad_state
 * with its state when it has finished, not_found when there is none.
 */
static void refuse_not_live(struct call *c)
{
	struct alloc_filter af = {.id = c->params[0]};
	struct alloc_page p = {.c = c};

	settle(c);
	store_allocations_each(c->api->store, &af, alloc_one, &p);
	if (p.arr == NULL) {
		reply_error(c, ERR_NOT_FOUND, NULL, "no allocation '%s'", c->params[0]);
		return;
	}
	json_t *state = json_incref(json_object_get(p.arr, "state"));
	json_decref(p.arr);
	reply_error(c, ERR_BAD_STATE, json_pack("{s:o}", "state", state),
		    "allocation %s is %s", c->params[0], json_string_value(state));
}

static void alloc_change(struct call *c, bool release)
{
	const char *reason = c->f[FIELD_REASON].s;
	int64_t at = c->f[FIELD_AT].present ? c->f[FIELD_AT].i : TIME_MIN;
	struct ledger_error err = {0};
	struct jlist out = {0};
	struct ledger_ctx ctx = ctx_of(c);
	struct alloc before;
	int rc;

	const struct alloc *live = ledger_alloc(c->api->ledger, c->params[0]);
	if (live == NULL) {
		refuse_not_live(c);
		return;
	}
	alloc_copy(&before, live);
	rc = release ? ledger_release(c->api->ledger, &ctx, c->params[0], at, reason, &out, &err)
		     : ledger_cancel(c->api->ledger, &ctx, c->params[0], reason, &out, &err);
	if (rc != 0) {
		alloc_clear(&before);
		reply_ledger_error(c, &err);
		return;
	}
	json_t *o = json_pack("{s:o}", "allocation",
			      alloc_after(c, &before, &out.v[0],
					  release ? ALLOC_RELEASED : ALLOC_CANCELLED));
	alloc_clear(&before);
	writer_add(c->api->writer, &out, NULL);
	reply(c, 200, o);
}

static void h_cancel(struct call *c)
{
	alloc_change(c, false);
}

static void h_release(struct call *c)
{
	alloc_change(c, true);
}

/* POST /v1/allocations/{id}/modify: a new shape, through rules 1-5. */
static void h_modify(struct call *c)
{
	struct modify_req req = {
		.id = c->params[0],
		.pool = c->f[FIELD_POOL].s,
		.gpus = c->f[FIELD_GPUS].present ? c->f[FIELD_GPUS].i : 0,
		.start = c->f[FIELD_START].present ? c->f[FIELD_START].i : TIME_MIN,
		.end = c->f[FIELD_END].present ? c->f[FIELD_END].i : TIME_MIN,
		.reason = c->f[FIELD_REASON].s,
	};
	struct ledger_error err = {0};
	struct jlist out = {0};
	struct ledger_ctx ctx = ctx_of(c);

	if (!req.pool && !c->f[FIELD_GPUS].present && !c->f[FIELD_START].present &&
	    !c->f[FIELD_END].present) {
		reply_error(c, ERR_BAD_REQUEST, NULL,
			    "give at least one of 'start', 'end', 'gpus' and 'pool'");
		return;
	}
	if (c->f[FIELD_GPUS].present && req.gpus < 1) {
		reply_error(c, ERR_INVALID_AMOUNT, NULL, "gpus must be at least 1");
		return;
	}
	if (reason_empty(c, req.reason))
		return;
	if (ledger_alloc(c->api->ledger, req.id) == NULL) {
		refuse_not_live(c);
		return;
	}
	if (ledger_modify(c->api->ledger, &ctx, &req, &out, &err) != 0) {
		reply_ledger_error(c, &err);
		return;
	}
	json_t *o = json_pack("{s:o, s:I, s:o}", "allocation",
			      alloc_json(c, ledger_alloc(c->api->ledger, req.id)),
			      "cost_delta_gpu_seconds", (json_int_t)out.v[0].committed_delta,
			      "entries", entries_json(c, &out));
	writer_add(c->api->writer, &out, NULL);
	reply(c, 200, o);
}

/*
 * POST /v1/pools/{id}/cut: the capacity from at drops to gpus; the answer
 * lists what was cut and what revoked, with the refunds.
 */
static void h_pool_cut(struct call *c)
{
	struct pool_cut_req req = {
		.pool = c->params[0],
		.at = c->f[FIELD_AT].i,
		.gpus = c->f[FIELD_GPUS].present ? c->f[FIELD_GPUS].i : 0,
		.reason = c->f[FIELD_REASON].s,
	};
	struct ledger_error err = {0};
	struct jlist out = {0};
	struct ledger_ctx ctx = ctx_of(c);

	if (reason_empty(c, req.reason))
		return;
	if (ledger_pool_cut(c->api->ledger, &ctx, &req, &out, &err) != 0) {
		reply_ledger_error(c, &err);
		return;
	}
	json_t *cut = json_array(), *revoked = json_array();
	int64_t refund = 0;
	for (size_t i = 0; i < out.n; i++) {
		const struct jentry *e = &out.v[i];
		if (e->kind != J_REVOKE)
			continue;
		bool whole = e->end <= e->start;
		json_t *row = json_pack("{s:s, s:s, s:s, s:I}", "allocation", e->allocation,
					"consortium", e->consortium, "phase", e->phase,
					"refund_gpu_seconds", (json_int_t)-e->committed_delta);
		if (!whole)
			json_object_set_new(row, "end", time_json(c, e->end));
		json_array_append_new(whole ? revoked : cut, row);
		refund -= e->committed_delta;
	}
	json_t *o = json_pack("{s:s, s:o, s:I, s:I, s:o, s:o, s:I, s:o}", "pool", req.pool,
			      "at", time_json(c, req.at), "gpus", (json_int_t)req.gpus,
			      "capacity", (json_int_t)ledger_pool_capacity(c->api->ledger, req.pool,
									   req.at),
			      "cut", cut, "revoked", revoked,
			      "refund_gpu_seconds", (json_int_t)refund,
			      "entries", entries_json(c, &out));
	writer_add(c->api->writer, &out, NULL);
	reply(c, 200, o);
}

/* POST /v1/phases/{id}/move: the evaluation that slips. */
static void h_phase_move(struct call *c)
{
	struct phase_move_req req = {
		.phase = c->params[0],
		.end = c->f[FIELD_END].i,
		.cut = c->f[FIELD_CUT].b,
		.reason = c->f[FIELD_REASON].s,
	};
	struct ledger_error err = {0};
	struct jlist out = {0};
	struct ledger_ctx ctx = ctx_of(c);
	const struct cfg_phase *file = config_phase(c->api->cfg, req.phase);

	if (reason_empty(c, req.reason))
		return;
	if (ledger_phase_move(c->api->ledger, &ctx, &req, &out, &err) != 0) {
		reply_ledger_error(c, &err);
		return;
	}
	json_t *cut = json_array(), *revoked = json_array();
	int64_t refund = 0, restored = 0;
	for (size_t i = 0; i < out.n; i++) {
		const struct jentry *e = &out.v[i];
		if (e->kind == J_EXPIRE)
			restored -= e->expired_delta;
		if (e->kind != J_REVOKE)
			continue;
		bool whole = e->end <= e->start;
		json_t *row = json_pack("{s:s, s:s, s:s, s:I}", "allocation", e->allocation,
					"consortium", e->consortium, "phase", e->phase,
					"refund_gpu_seconds", (json_int_t)-e->committed_delta);
		if (!whole)
			json_object_set_new(row, "end", time_json(c, e->end));
		json_array_append_new(whole ? revoked : cut, row);
		refund -= e->committed_delta;
	}
	const char *next = json_string_value(json_object_get(out.v[0].extra, "next"));
	const struct cfg_phase *next_file = next ? config_phase(c->api->cfg, next) : NULL;
	json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:I, s:I, s:o}", "phase", phase_json(c, file),
			      "next", next_file ? phase_json(c, next_file) : json_null(),
			      "cut", cut, "revoked", revoked,
			      "refund_gpu_seconds", (json_int_t)refund,
			      "restored_gpu_seconds", (json_int_t)restored,
			      "entries", entries_json(c, &out));
	writer_add(c->api->writer, &out, NULL);
	reply(c, 200, o);
}

static void consortium_change(struct call *c, bool eliminate)
{
	const char *reason = c->f[FIELD_REASON].s;
	int64_t effective = c->f[FIELD_EFFECTIVE].i;
	struct ledger_error err = {0};
	struct jlist out = {0};
	struct ledger_ctx ctx = ctx_of(c);
	int rc;

	if (reason_empty(c, reason))
		return;
	rc = eliminate ? ledger_eliminate(c->api->ledger, &ctx, c->params[0], effective, reason,
					  &out, &err)
		       : ledger_reinstate(c->api->ledger, &ctx, c->params[0], effective, reason,
					  &out, &err);
	if (rc != 0) {
		reply_ledger_error(c, &err);
		return;
	}
	json_t *revoked = json_array(), *cut = json_array();
	int64_t quota = 0;
	for (size_t i = 0; i < out.n; i++) {
		const struct jentry *e = &out.v[i];
		if (e->kind != J_REVOKE)
			continue;
		if (e->allocation)
			json_array_append_new(e->end > e->start ? cut : revoked,
					      json_string(e->allocation));
		else
			quota -= e->granted_delta;
	}
	json_t *o = json_pack("{s:o, s:o, s:o, s:I, s:o}",
			      "consortium", consortium_json(c, config_consortium(c->api->cfg, c->params[0])),
			      "revoked", revoked, "cut", cut,
			      "revoked_quota_gpu_seconds", (json_int_t)quota,
			      "entries", entries_json(c, &out));
	writer_add(c->api->writer, &out, NULL);	/* logged once committed */
	reply(c, 200, o);
}

static void h_eliminate(struct call *c)
{
	consortium_change(c, true);
}

static void h_reinstate(struct call *c)
{
	consortium_change(c, false);
}

static int book_into(void *arg, const struct alloc *a)
{
	timeline_add(arg, a->start, a->end, a->gpus);
	return 0;
}

/*
 * The window of a calendar or availability request: from (default the
 * current hour), to (default a week on) and step (default an hour up to
 * two days, else a day), checked. Returns 0, or -1 once answered.
 */
static int calendar_window(struct call *c, int64_t *from, int64_t *to, int64_t *step)
{
	int rc;

	*step = 0;
	if ((rc = query_time(c, FIELD_FROM, from)) < 0)
		return -1;
	if (rc > 0)
		*from = c->now - (c->now + c->api->cfg->tz_offset) % 3600;
	if ((rc = query_time(c, FIELD_TO, to)) < 0)
		return -1;
	if (rc > 0 && !i64_add(*from, 7 * 86400, to))
		*to = *from;	/* refused below */
	if ((rc = query_int(c, FIELD_STEP, step)) < 0)
		return -1;
	/* every number here comes from the client: no arithmetic may wrap */
	int64_t span, n_slots;
	if (*to <= *from || !i64_sub(*to, *from, &span)) {
		reply_error(c, ERR_INVALID_WINDOW, NULL, "'to' must be after 'from'");
		return -1;
	}
	if (rc > 0)
		*step = span <= 2 * 86400 ? 3600 : 86400;
	if (*step < 1 || *step > CALENDAR_MAX_STEP) {
		reply_error(c, ERR_BAD_REQUEST, json_pack("{s:s}", "parameter", "step"),
			    "parameter 'step' must be between 1 and %d seconds", CALENDAR_MAX_STEP);
		return -1;
	}
	n_slots = span / *step + (span % *step != 0);
	if (n_slots > CALENDAR_MAX_SLOTS) {
		reply_error(c, ERR_INVALID_WINDOW, NULL,
			    "the window needs at most %d slots; use a larger step or a shorter window",
			    CALENDAR_MAX_SLOTS);
		return -1;
	}
	return 0;
}

/*
 * The pool's slots over [from,to): per slot the least capacity and the most
 * GPUs booked at any instant, by everyone. With free_only (what a
 * consortium may see) a slot says only how many GPUs are free (bookable, in
 * whole nodes where the pool books nodes), never who booked the others.
 * Returns the "slots" array, or NULL once answered (storage failed).
 */
static json_t *calendar_slots(struct call *c, const struct cfg_pool *p, int64_t from, int64_t to,
			      int64_t step, bool free_only)
{
	struct capacity cap = {.units = p->gpus, .from = p->available_from,
			       .until = p->available_until, .node = p->gpus_per_node};
	/* past and future alike: the bookings of the window, from the store */
	struct timeline *tl = timeline_new();
	struct alloc_filter af = {.pool = p->id, .live_only = true, .live_after = from,
				  .starts_before_set = true, .starts_before = to};
	if (store_allocations_each(c->api->store, &af, book_into, tl) != 0) {
		timeline_free(tl);
		reply_error(c, ERR_STORAGE_UNAVAILABLE, NULL, "cannot read allocations: %s",
			    store_errmsg(c->api->store));
		return NULL;
	}
	json_t *slots = json_array();
	for (int64_t s = from, e; s < to; s = e) {
		e = to - s > step ? s + step : to;	/* never past to: no overflow */
		int64_t booked = timeline_max(tl, s, e);
		int64_t capa = capacity_at(&cap, s);
		int64_t ce = capacity_at(&cap, e - 1);
		if (ce < capa)
			capa = ce;
		if ((p->available_from > s && p->available_from < e) ||
		    (p->available_until > s && p->available_until < e))
			capa = 0;
		json_t *slot = json_pack("{s:o, s:o, s:I}", "start", time_json(c, s),
					 "end", time_json(c, e), "capacity", (json_int_t)capa);
		if (free_only) {
			int64_t free_gpus = capa > booked ? capa - booked : 0;
			if (p->gpus_per_node > 0)
				free_gpus -= free_gpus % p->gpus_per_node;
			json_object_set_new(slot, "free", json_integer(free_gpus));
		} else {
			json_object_set_new(slot, "booked", json_integer(booked));
		}
		json_array_append_new(slots, slot);
	}
	timeline_free(tl);
	return slots;
}

/* GET /v1/pools/{id}/calendar, or with free_only its availability. */
static void calendar_reply(struct call *c, bool free_only)
{
	const struct cfg_pool *p = config_pool(c->api->cfg, c->params[0]);
	int64_t from, to, step;

	settle(c);
	if (p == NULL) {
		reply_error(c, ERR_NOT_FOUND, NULL, "no pool '%s'", c->params[0]);
		return;
	}
	if (calendar_window(c, &from, &to, &step) != 0)
		return;
	json_t *slots = calendar_slots(c, p, from, to, step, free_only);
	if (slots == NULL)
		return;
	reply(c, 200, json_pack("{s:s, s:s, s:o, s:o, s:I, s:o}", "pool", p->id, "gpu", p->gpu,
				"from", time_json(c, from), "to", time_json(c, to),
				"step_s", (json_int_t)step, "slots", slots));
}

static void h_calendar(struct call *c)
{
	calendar_reply(c, false);
}

static void h_availability(struct call *c)
{
	calendar_reply(c, true);
}

/* GET / and the page's files: the same bytes for everyone (they hold no data). */
static void h_web(struct call *c)
{
	const struct web_file *f = web_file(c->http->path);
	if (f == NULL) {	/* proto.def has a route web.c lacks: a build error */
		reply_error(c, ERR_UNKNOWN_PATH, NULL, "no such path: %s", c->http->path);
		return;
	}
	char *body = xmalloc(f->len + 1);
	memcpy(body, f->data, f->len);
	body[f->len] = '\0';
	struct held_reply h = held_of(c, 200, f->content_type, body);
	h.body_len = f->len;
	writer_reply(c->api->writer, &h);
}

/* metered use --------------------------------------------------------- */

static json_t *usage_json(const struct call *c, const struct usage *u)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:o, s:I}",
			 "source", u->source, "job_id", u->job_id, "consortium", u->consortium,
			 "phase", u->phase, "gpu", u->gpu,
			 "allocation", u->allocation ? json_string(u->allocation) : json_null(),
			 "gpu_seconds", (json_int_t)u->gpu_seconds, "end", time_json(c, u->end),
			 "seq", (json_int_t)u->seq);
}

/* A usage entry as a row of metered use; the strings are e's. */
static void usage_of_entry(const struct jentry *e, struct usage *u)
{
	const char *source = NULL, *job_id = NULL;
	int64_t amount = 0;

	jentry_usage_fields(e, &source, &job_id, &amount);
	*u = (struct usage){
		.source = (char *)source, .job_id = (char *)job_id,
		.consortium = e->consortium, .phase = e->phase, .gpu = e->gpu,
		.allocation = e->allocation, .gpu_seconds = amount, .end = e->end,
		.seq = e->seq,
	};
}

static int alloc_copy_one(void *arg, const struct alloc *a)
{
	alloc_copy(arg, a);
	return 1;
}

/*
 * The allocation a report names, live or finished (metered use comes after
 * the job, often after its allocation ended): 0 and *out filled (alloc_clear
 * it), or -1 after the reply.
 */
static int usage_allocation(struct call *c, const char *id, struct alloc *out)
{
	const struct alloc *live = ledger_alloc(c->api->ledger, id);
	struct alloc_filter f = {.id = id};
	int64_t num;

	memset(out, 0, sizeof(*out));
	if (alloc_id_parse(id, &num) != 0) {
		reply_error(c, ERR_BAD_REQUEST, json_pack("{s:s}", "field", "allocation"),
			    "field 'allocation': not an allocation id such as A-000042: '%s'", id);
		return -1;
	}
	if (live) {
		alloc_copy(out, live);
	} else {
		int rc = store_allocations_each(reads(c), &f, alloc_copy_one, out);
		if (rc < 0) {
			reply_error(c, ERR_STORAGE_UNAVAILABLE, NULL, "cannot read allocations: %s",
				    store_errmsg(reads(c)));
			return -1;
		}
		if (rc == 0) {
			reply_error(c, ERR_NOT_FOUND, json_pack("{s:s}", "allocation", id),
				    "no allocation '%s'", id);
			return -1;
		}
	}
	if (out->stored == ALLOC_CANCELLED) {
		reply_error(c, ERR_BAD_STATE, json_pack("{s:s, s:s}", "allocation", id, "state",
							"cancelled"),
			    "allocation %s was cancelled before it started: no job ran in it", id);
		alloc_clear(out);
		return -1;
	}
	return 0;
}

/*
 * The key a report is charged to: its allocation's, or the one it names.
 * With an allocation, a consortium, phase or GPU model it also names must
 * be the allocation's (the reporter's idea of the job is wrong otherwise).
 */
static int usage_key(struct call *c, struct usage_req *req, struct alloc *al)
{
	static const enum proto_field keys[] = {FIELD_CONSORTIUM, FIELD_PHASE, FIELD_GPU};
	const char *id = c->f[FIELD_ALLOCATION].s;

	req->consortium = c->f[FIELD_CONSORTIUM].s;
	req->phase = c->f[FIELD_PHASE].s;
	req->gpu = c->f[FIELD_GPU].s;
	if (id == NULL) {
		for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
			if (c->f[keys[i]].present)
				continue;
			reply_error(c, ERR_BAD_REQUEST,
				    json_pack("{s:s}", "field", proto_field_name(keys[i])),
				    "give 'allocation', or all of 'consortium', 'phase' and 'gpu' (missing '%s')",
				    proto_field_name(keys[i]));
			return -1;
		}
		return 0;
	}
	if (usage_allocation(c, id, al))
		return -1;
	const char *its[] = {al->consortium, al->phase, al->gpu};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const char *given = c->f[keys[i]].s;
		if (given == NULL || strcmp(given, its[i]) == 0)
			continue;
		reply_error(c, ERR_CONFLICT,
			    json_pack("{s:s, s:s, s:s, s:s}", "field", proto_field_name(keys[i]),
				      "allocation", id, "given", given, "allocation_value", its[i]),
			    "allocation %s is %s's, of %s %s; the report says %s '%s'", id,
			    al->consortium, al->phase, al->gpu, proto_field_name(keys[i]), given);
		alloc_clear(al);
		return -1;
	}
	req->consortium = al->consortium;
	req->phase = al->phase;
	req->gpu = al->gpu;
	req->allocation = al->id;
	req->pool = al->pool;
	return 0;
}

/* Which fields of an earlier report of the job a new one contradicts. */
static json_t *usage_differs(const struct call *c, const struct usage *was,
			     const struct usage_req *now, bool end_given)
{
	json_t *fields = json_array();
	const struct {
		const char *name, *was, *now;
	} strs[] = {
		{"consortium", was->consortium, now->consortium},
		{"phase", was->phase, now->phase},
		{"gpu", was->gpu, now->gpu},
		{"allocation", was->allocation, now->allocation},
	};

	(void)c;
	if (was->gpu_seconds != now->gpu_seconds)
		json_array_append_new(fields, json_string("gpu_seconds"));
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++) {
		bool same = strs[i].was == strs[i].now ||
			    (strs[i].was && strs[i].now && strcmp(strs[i].was, strs[i].now) == 0);
		if (!same)
			json_array_append_new(fields, json_string(strs[i].name));
	}
	if (end_given && was->end != now->end)
		json_array_append_new(fields, json_string("end"));
	return fields;
}

/*
 * A report of a job already recorded (in the open batch or the store):
 * 1 after the reply, the same usage object with "duplicate": true when it
 * agrees, a conflict naming the fields when not; 0 when the job is new;
 * -1 after an error reply.
 */
static int usage_seen(struct call *c, const struct usage_req *req)
{
	const struct jentry *pending = writer_find_usage(c->api->writer, req->source, req->job_id);
	struct usage was = {0}, view;
	bool owned = false;

	if (pending) {
		usage_of_entry(pending, &view);
	} else {
		int rc = store_usage_get(reads(c), req->source, req->job_id, &was);
		if (rc == -ENOENT)
			return 0;
		if (rc != 0) {
			reply_error(c, ERR_STORAGE_UNAVAILABLE, NULL, "cannot read metered use: %s",
				    store_errmsg(reads(c)));
			return -1;
		}
		view = was;
		owned = true;
	}
	json_t *fields = usage_differs(c, &view, req, c->f[FIELD_END].present);
	/* a repeat writes nothing, so there is nothing for the Idempotency-Key to keep */
	c->mutating = false;
	if (json_array_size(fields) == 0) {
		json_decref(fields);
		reply(c, 200, json_pack("{s:o, s:b}", "usage", usage_json(c, &view), "duplicate", 1));
	} else {
		reply_error(c, ERR_CONFLICT,
			    json_pack("{s:s, s:s, s:o, s:o}", "source", req->source,
				      "job_id", req->job_id, "fields", fields,
				      "recorded", usage_json(c, &view)),
			    "job %s of %s was already reported (seq %" PRId64 ") with other figures",
			    req->job_id, req->source, view.seq);
	}
	if (owned)
		usage_clear(&was);
	return 1;
}

/*
 * POST /v1/usage: GPU-seconds a cluster measured for one job. Idempotent
 * by (source, job_id) whatever the Idempotency-Key: a cluster's bridge
 * that reads the same accounting window twice changes nothing.
 */
static void h_usage(struct call *c)
{
	struct usage_req req = {
		.source = c->f[FIELD_SOURCE].s,
		.job_id = c->f[FIELD_JOB_ID].s,
		.gpu_seconds = c->f[FIELD_GPU_SECONDS].i,
		.end = c->f[FIELD_END].present ? c->f[FIELD_END].i : c->now,
	};
	struct alloc al = {0};
	struct ledger_error err = {0};
	struct jlist out = {0};
	struct ledger_ctx ctx = ctx_of(c);

	if (!slurm_cluster_valid(req.source)) {
		reply_error(c, ERR_BAD_REQUEST, json_pack("{s:s}", "field", "source"),
			    "field 'source': a cluster name is up to %d lowercase letters, digits, '-' and '_', starting with a letter or digit",
			    SLURM_CLUSTER_MAX);
		return;
	}
	if (!job_id_valid(req.job_id)) {
		reply_error(c, ERR_BAD_REQUEST, json_pack("{s:s}", "field", "job_id"),
			    "field 'job_id': up to %d letters, digits, '.', '_', '+' and '-', starting with a letter or digit",
			    JOB_ID_MAX);
		return;
	}
	if (req.gpu_seconds < 0) {
		reply_error(c, ERR_INVALID_AMOUNT,
			    json_pack("{s:s, s:I}", "field", "gpu_seconds", "gpu_seconds",
				      (json_int_t)req.gpu_seconds),
			    "gpu_seconds must be 0 or more (got %" PRId64 ")", req.gpu_seconds);
		return;
	}
	if (usage_key(c, &req, &al))
		return;
	if (usage_seen(c, &req) != 0)
		goto out;
	if (ledger_usage(c->api->ledger, &ctx, &req, &out, &err) != 0) {
		reply_ledger_error(c, &err);
		goto out;
	}
	struct usage u;
	usage_of_entry(&out.v[0], &u);
	json_t *o = json_pack("{s:o, s:b}", "usage", usage_json(c, &u), "duplicate", 0);
	writer_add(c->api->writer, &out, NULL);
	reply(c, 201, o);
out:
	alloc_clear(&al);
}

/* --- dispatch ---------------------------------------------------------- */

/* The dispatch: each request of daemon/proto.def to h_<handler>, with its least role. */
static const struct {
	handler_fn fn;
	enum role least;
} routes[PROTO__COUNT] = {
#define REQUEST(id, fn, method, path, role, query, body) [PROTO_##id] = {h_##fn, ROLE_##role},
#include "daemon/proto.def"
#undef REQUEST
};

static void call_free(struct call *c)
{
	free(c->request_id);
	for (size_t i = 0; i < PROTO_MAX_PARAMS; i++)
		free(c->params[i]);
	for (size_t i = 0; i < c->n_query; i++) {
		free(c->query[i].key);
		free(c->query[i].value);
	}
	json_decref(c->body);
}

/* Nesting depth of a JSON value: a scalar is 0. Stops counting past limit. */
static int json_depth(const json_t *v, int limit)
{
	int deepest = 0;
	const char *key;
	json_t *child;
	size_t i;

	if (limit < 0)
		return 1;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, child) {
			int d = json_depth(child, limit - 1);
			if (d > deepest)
				deepest = d;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child) {
			int d = json_depth(child, limit - 1);
			if (d > deepest)
				deepest = d;
		}
	} else {
		return 0;
	}
	return deepest + 1;
}

static bool good_key(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > 128)
		return false;
	for (const char *p = k; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			return false;
	return true;
}

/*
 * A booking's answer, rebuilt from its reserve entry as h_allocate() made
 * it: the allocation as it stood when booked (state at the entry's time),
 * the same keys in the same order, so a retry gets the same bytes.
 */
static int idem_entry(void *arg, const struct jentry *e)
{
	jentry_copy(arg, e);
	return 1;
}

static char *idem_rebuild(struct call *c, int64_t seq)
{
	struct jentry e = {0};
	struct alloc a = {0};
	char *body = NULL;

	if (store_journal_each(reads(c), seq - 1, NULL, 1, idem_entry, &e) == 1 &&
	    e.seq == seq && e.kind == J_RESERVE && e.allocation &&
	    alloc_id_parse(e.allocation, &a.num) == 0) {
		snprintf(a.id, sizeof(a.id), "%s", e.allocation);
		a.consortium = e.consortium;
		a.pool = e.pool;
		a.gpu = e.gpu;
		a.phase = e.phase;
		a.gpus = e.gpus;
		a.start = e.start;
		a.end = a.booked_end = e.end;
		a.stored = ALLOC_BOOKED;
		a.cost = e.committed_delta;
		a.note = e.reason;
		a.created = e.time;
		a.seq = e.seq;
		struct call at = *c;
		at.now = e.time;	/* the answer's own instant */
		json_t *o = json_pack("{s:o}", "allocation", alloc_json(&at, &a));
		body = json_dumps(o, JSON_COMPACT);
		json_decref(o);
	}
	jentry_clear(&e);
	return body;
}

/* The idempotency check: 1 when answered from the record. */
static int idempotent_replay(struct call *c)
{
	const char *key = c->http->idempotency_key;
	crypto_hash_sha256_state st;
	uint8_t stored_hash[HASH_LEN];
	int status;
	char *response = NULL;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)c->http->method, strlen(c->http->method));
	crypto_hash_sha256_update(&st, (const unsigned char *)" ", 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)c->http->path, strlen(c->http->path));
	crypto_hash_sha256_update(&st, (const unsigned char *)"\n", 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)c->http->body, c->http->body_len);
	crypto_hash_sha256_final(&st, c->body_hash);

	const struct idem_rec *pending = writer_find_idem(c->api->writer, key);
	if (pending) {
		memcpy(stored_hash, pending->body_hash, HASH_LEN);
		status = pending->status;
		response = xstrdup(pending->response);
	} else {
		int64_t seq = 0;
		int rc = store_idem_lookup(reads(c), key, stored_hash, &status, &response, &seq);
		if (rc == -ENOENT)
			return 0;
		if (rc == 0 && response == NULL && seq > 0 &&
		    (response = idem_rebuild(c, seq)) == NULL) {
			reply_error(c, ERR_STORAGE_UNAVAILABLE, NULL,
				    "cannot rebuild the first answer to key '%s' from journal entry %" PRId64,
				    key, seq);
			return 1;
		}
		if (rc != 0) {
			reply_error(c, ERR_STORAGE_UNAVAILABLE, NULL,
				    "cannot read idempotency records: %s", store_errmsg(reads(c)));
			return 1;
		}
	}
	/* as much of the hash as a record keeps, pending or committed */
	if (sodium_memcmp(stored_hash, c->body_hash, STORE_IDEM_HASH_LEN) != 0) {
		free(response);
		reply_error(c, ERR_IDEMPOTENCY_MISMATCH, json_pack("{s:s}", "idempotency_key", key),
			    "idempotency key '%s' was already used for a different request", key);
		return 1;
	}
	log_event(LOG_INFO, "idempotent_replay", "{s:s}", "request_id", key);
	c->mutating = false;
	finish(c, status, response);
	return 1;
}

/*
 * A dry run ("dry_run": true on any POST): the handler runs unchanged, and
 * every rule with it, against a throwaway copy of the ledger while the
 * writer keeps its entries aside, so the answer is exactly what the real
 * request would answer now, and nothing reaches the live ledger, the disk,
 * the idempotency records or the clock. The open batch commits first: its
 * hooks (the scheduler's) must run on the live ledger, never on the copy.
 */
static void dry_run(struct call *c)
{
	struct api *api = c->api;

	settle(c);
	struct ledger *live = api->ledger, *copy = ledger_clone(live);
	int64_t clock = clock_now(api->clock);

	api->ledger = copy;
	api->sched->ledger = copy;
	writer_trial_begin(api->writer);
	routes[c->req].fn(c);
	writer_trial_end(api->writer);
	api->ledger = live;
	api->sched->ledger = live;
	if (clock_simulated(api->clock) && clock_now(api->clock) != clock)
		clock_set(api->clock, clock);	/* a clock set tried, not made */
	ledger_free(copy);
}

void api_committed(struct api *api, const struct jentry *entries, size_t n)
{
	(void)api;
	for (size_t i = 0; i < n; i++) {
		const struct jentry *e = &entries[i];
		const char *ev = e->kind == J_RESERVE ? "allocated" :
				 e->kind == J_ELIMINATE ? "eliminated" :
				 e->kind == J_REINSTATE ? "reinstated" : NULL;
		if (ev)	/* one object for the line, not the fields' and the line's */
			log_entry_event(ev, e->request_id, e->consortium, e->allocation, e->seq);
	}
}

void api_handle(void *arg, struct server_req *r)
{
	struct api *api = arg;
	struct call c = {.api = api, .r = r, .http = server_req_http(r), .start_us = uv_hrtime() / 1000,
			 .route = -1};
	bool path_known = false;

	c.now = clock_now(api->clock);
	auth_resolve(api->cfg, c.http, api->uid, &c.who);
	if (c.http->idempotency_key)
		c.request_id = xstrdup(c.http->idempotency_key);
	else {
		char hex[RANDOM_HEX_LEN + 1];
		random_hex(hex);
		c.request_id = xstrdup(hex);
	}

	bool path_utf8 = utf8_valid(c.http->path, strlen(c.http->path));
	int req = path_utf8 ? proto_match(c.http->method, c.http->path, c.params, &path_known) : -1;
	/* only a route whose least role is NONE (the page's files) skips this */
	if (c.who.role == ROLE_NONE && (req < 0 || routes[req].least != ROLE_NONE)) {
		reply_error(&c, ERR_UNAUTHENTICATED, NULL,
			    c.http->peer_unix ? "this Unix user is not mapped to any role in access:"
					      : "a valid bearer token is required");
		goto out;
	}
	if (!path_utf8) {
		reply_error(&c, ERR_BAD_REQUEST, NULL, "the path is not valid UTF-8");
		goto out;
	}
	if (req < 0) {
		if (path_known)
			reply_error(&c, ERR_METHOD_NOT_ALLOWED, NULL, "%s is not allowed on %s",
				    c.http->method, c.http->path);
		else
			reply_error(&c, ERR_UNKNOWN_PATH, NULL, "no such path: %s", c.http->path);
		goto out;
	}
	c.req = (enum proto_req)req;
	c.route = req;
	const struct proto_request *rt = proto_request(c.req);
	if (c.who.role < routes[c.req].least) {
		reply_error(&c, ERR_FORBIDDEN, NULL, "%s may not %s %s", role_name(c.who.role),
			    rt->method, c.http->path);
		goto out;
	}
	if (parse_query(&c))
		goto out;
	if (strcmp(rt->method, "POST") == 0) {
		json_error_t jerr;
		if (c.http->idempotency_key == NULL || !good_key(c.http->idempotency_key)) {
			reply_error(&c, ERR_BAD_REQUEST, NULL,
				    "a POST needs an Idempotency-Key header of 1-128 printable characters");
			goto out;
		}
		if (c.http->body_len > 0)
			c.body = json_loadb(c.http->body, c.http->body_len,
					    JSON_REJECT_DUPLICATES, &jerr);
		else
			c.body = json_object();
		/* a dry run is not an idempotent request: no record is read or kept */
		c.dry_run = json_is_true(json_object_get(c.body, proto_field_name(FIELD_DRY_RUN)));
		if (!c.dry_run && idempotent_replay(&c))
			goto out;
		c.mutating = true;
		if (c.http->body_len > 0) {
			if (c.body == NULL) {
				reply_error(&c, ERR_BAD_REQUEST,
					    json_pack("{s:i, s:i}", "line", jerr.line, "column", jerr.column),
					    "malformed JSON body: %s", jerr.text);
				goto out;
			}
			if (json_depth(c.body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
				reply_error(&c, ERR_BAD_REQUEST, NULL,
					    "the JSON body nests deeper than %d levels", MAX_JSON_DEPTH);
				goto out;
			}
		}
		if (take_fields(&c))
			goto out;
	}
	if (c.dry_run)
		dry_run(&c);
	else
		routes[c.req].fn(&c);
out:
	call_free(&c);
}
