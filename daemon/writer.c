/* SPDX-License-Identifier: MIT */
/*
 * The one writer. Changes are applied to the in-memory ledger by the
 * request that makes them and join the open batch; an idle handle commits
 * the batch once the loop has read everything it had to read in this
 * iteration, so concurrent writers share one transaction and one fsync
 * (group commit). No reply of a batch leaves before COMMIT returns; a
 * failed commit answers 503 to all of them, and the owner's failed hook
 * rebuilds the ledger from what the database really holds. The batch is
 * taken out of the writer before any hook runs, so a hook may open the
 * next one.
 */
#include "daemon/writer.h"
#include "daemon/error.h"
#include "daemon/log.h"
#include "daemon/util.h"

#include <stdlib.h>
#include <string.h>

#define COMMIT_FAILED_MESSAGE "the change could not be committed to disk; nothing was applied"

/* A batch taken out of the writer for its commit. */
struct batch {
	struct jlist entries;
	char **notes;
	struct idem_rec *idem;
	size_t n_idem;
};

static uint64_t now_us(void)
{
	return uv_hrtime() / 1000;
}

static void send_reply(struct writer *w, struct held_reply *r)
{
	log_event(r->status >= 500 ? LOG_ERROR : LOG_INFO, "request",
		  "{s:s?, s:s?, s:s?, s:s?, s:i, s:I}",
		  "request_id", r->request_id, "actor", r->actor,
		  "method", r->method, "path", r->path, "status", r->status,
		  "duration_us", (json_int_t)(now_us() - r->start_us));
	metrics_request(w->metrics, r->route, r->status, now_us() - r->start_us);
	size_t len = r->body_len ? r->body_len : r->body ? strlen(r->body) : 0;
	w->hooks.reply(w->hooks.arg, r->req, r->status, r->content_type, r->body, len);
	free(r->request_id);
	free(r->actor);
	free(r->method);
	free(r->path);
}

static void on_idle(uv_idle_t *h)
{
	writer_flush(h->data);
}

static void arm(struct writer *w)
{
	if (!w->idle_on) {
		uv_idle_start(&w->idle, on_idle);
		w->idle_on = true;
	}
}

void writer_init(struct writer *w, uv_loop_t *loop, struct store *store,
		 const struct clock *clock, const struct writer_hooks *hooks)
{
	if (hooks->reply == NULL)
		abort();	/* a reply that cannot be delivered would hang its client */
	memset(w, 0, sizeof(*w));
	w->store = store;
	w->clock = clock;
	w->hooks = *hooks;
	uv_idle_init(loop, &w->idle);
	w->idle.data = w;
}

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->entries.n; i++)
		free(b->notes[i]);
	free(b->notes);
	jlist_clear(&b->entries);
	for (size_t i = 0; i < b->n_idem; i++) {
		free(b->idem[i].key);
		free(b->idem[i].response);
	}
	free(b->idem);
}

/* Takes the open batch out of the writer, which is left empty. */
static void batch_take(struct writer *w, struct batch *b)
{
	b->entries = w->entries;
	b->notes = w->notes;
	b->idem = w->idem;
	b->n_idem = w->n_idem;
	memset(&w->entries, 0, sizeof(w->entries));
	w->notes = NULL;
	w->notes_cap = 0;
	w->idem = NULL;
	w->n_idem = 0;
}

void writer_close(struct writer *w)
{
	struct batch b;

	uv_close((uv_handle_t *)&w->idle, NULL);
	jlist_clear(&w->trial_entries);
	batch_take(w, &b);
	batch_free(&b);
	for (size_t i = 0; i < w->n_held; i++) {
		free(w->held[i].body);
		free(w->held[i].request_id);
		free(w->held[i].actor);
		free(w->held[i].method);
		free(w->held[i].path);
	}
	free(w->held);
	w->held = NULL;
	w->n_held = 0;
}

bool writer_open(const struct writer *w)
{
	return w->entries.n > 0 || w->n_idem > 0;
}

void writer_add(struct writer *w, struct jlist *out, const char *note)
{
	if (w->trial) {
		for (size_t i = 0; i < out->n; i++)
			*jlist_push(&w->trial_entries) = out->v[i];	/* moves the strings */
		free(out->v);
		memset(out, 0, sizeof(*out));
		return;
	}
	for (size_t i = 0; i < out->n; i++) {
		struct jentry *e = jlist_push(&w->entries);
		*e = out->v[i];		/* moves the strings */
		if (w->notes_cap < w->entries.cap) {
			w->notes = xreallocarray(w->notes, w->entries.cap, sizeof(*w->notes));
			w->notes_cap = w->entries.cap;
		}
		w->notes[w->entries.n - 1] =
			e->kind == J_RESERVE && note ? xstrdup(note) : NULL;
	}
	free(out->v);
	memset(out, 0, sizeof(*out));
	if (writer_open(w))
		arm(w);
}

void writer_add_idem(struct writer *w, const char *key, const uint8_t hash[HASH_LEN],
		     int status, const char *response)
{
	writer_add_idem_ref(w, key, hash, status, response, 0);
}

void writer_add_idem_ref(struct writer *w, const char *key, const uint8_t hash[HASH_LEN],
			 int status, const char *response, int64_t seq)
{
	if (w->trial)
		return;		/* a dry run is not remembered */
	w->idem = xreallocarray(w->idem, w->n_idem + 1, sizeof(*w->idem));
	struct idem_rec *r = &w->idem[w->n_idem++];
	r->key = xstrdup(key);
	memcpy(r->body_hash, hash, HASH_LEN);
	r->status = status;
	r->response = xstrdup(response);
	r->time = clock_now(w->clock);
	r->seq = seq;
	arm(w);
}

void writer_trial_begin(struct writer *w)
{
	w->trial = true;
}

const struct jlist *writer_trial_entries(const struct writer *w)
{
	return &w->trial_entries;
}

void writer_trial_end(struct writer *w)
{
	jlist_clear(&w->trial_entries);
	w->trial = false;
}

const struct idem_rec *writer_find_idem(const struct writer *w, const char *key)
{
	for (size_t i = 0; i < w->n_idem; i++)
		if (strcmp(w->idem[i].key, key) == 0)
			return &w->idem[i];
	return NULL;
}

const struct jentry *writer_find_usage(const struct writer *w, const char *source,
				       const char *job_id)
{
	const char *src, *job;
	int64_t amount;

	for (size_t i = 0; i < w->entries.n; i++) {
		const struct jentry *e = &w->entries.v[i];
		if (jentry_usage_fields(e, &src, &job, &amount) == 0 &&
		    strcmp(src, source) == 0 && strcmp(job, job_id) == 0)
			return e;
	}
	return NULL;
}

void writer_reply(struct writer *w, struct held_reply *r)
{
	if (!writer_open(w)) {
		send_reply(w, r);
		return;
	}
	w->held = xreallocarray(w->held, w->n_held + 1, sizeof(*w->held));
	w->held[w->n_held++] = *r;
}

/* Commits b; the committed hook hears of it. Returns 0 or a negative errno. */
static int commit(struct writer *w, struct batch *b, size_t n_held)
{
	int rc = state_commit(w->store, b->entries.v, b->entries.n, b->notes, b->idem, b->n_idem);
	if (rc == 0) {
		w->commits++;
		w->committed_entries += b->entries.n;
		metrics_batch(w->metrics, b->entries.n);
		if (w->hooks.committed)
			w->hooks.committed(w->hooks.arg, b->entries.v, b->entries.n);
	} else {
		w->failed_commits++;
		log_event(LOG_ERROR, "commit_failed", "{s:s, s:i, s:i}",
			  "error", store_errmsg(w->store), "entries", (int)b->entries.n,
			  "replies", (int)n_held);
	}
	return rc;
}

int writer_flush(struct writer *w)
{
	struct held_reply *held = w->held;
	size_t n_held = w->n_held;
	int rc = 0;

	if (w->idle_on) {
		uv_idle_stop(&w->idle);
		w->idle_on = false;
	}
	w->held = NULL;
	w->n_held = 0;
	if (writer_open(w)) {
		struct batch b;
		batch_take(w, &b);
		rc = commit(w, &b, n_held);
		batch_free(&b);
	}
	for (size_t i = 0; i < n_held; i++) {
		struct held_reply *r = &held[i];
		if (rc != 0 && r->reread && w->hooks.reread)
			continue;	/* once the ledger is rebuilt, below */
		if (rc != 0) {
			free(r->body);
			r->body = error_body(ERR_STORAGE_UNAVAILABLE, COMMIT_FAILED_MESSAGE, NULL);
			r->status = error_status(ERR_STORAGE_UNAVAILABLE);
			r->content_type = NULL;
			r->body_len = 0;
		}
		send_reply(w, r);
	}
	if (rc != 0 && w->hooks.failed)
		w->hooks.failed(w->hooks.arg, rc);
	/* a read answered from what the failed batch held would show what did
	 * not commit, and a 503 would fail a read on a full disk: answer it
	 * again from the rebuilt ledger */
	for (size_t i = 0; rc != 0 && w->hooks.reread && i < n_held; i++) {
		struct held_reply *r = &held[i];
		if (!r->reread)
			continue;
		free(r->body);
		free(r->request_id);
		free(r->actor);
		free(r->method);
		free(r->path);
		if (w->hooks.reread(w->hooks.arg, r->req))
			continue;
		*r = (struct held_reply){.req = r->req, .route = r->route, .start_us = r->start_us,
					 .status = error_status(ERR_STORAGE_UNAVAILABLE),
					 .body = error_body(ERR_STORAGE_UNAVAILABLE,
							    COMMIT_FAILED_MESSAGE, NULL)};
		send_reply(w, r);
	}
	free(held);
	return rc;
}
