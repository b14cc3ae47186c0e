/* SPDX-License-Identifier: MIT */
/*
 * The one writer. Changes are applied to the in-memory ledger by the
 * request that makes them and join the open batch; an idle handle commits
 * the batch once the loop has read everything it had to read in this
 * iteration, so concurrent writers share one transaction and one fsync
 * (group commit). No reply of a batch leaves before COMMIT returns; a
 * failed commit answers 503 to all of them and rebuilds the ledger from
 * what the database really holds.
 */
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/util.h"

#include <stdlib.h>
#include <string.h>

static uint64_t now_us(void)
{
	return uv_hrtime() / 1000;
}

static void send_reply(struct daemon *d, struct held_reply *r)
{
	log_event(r->status >= 500 ? LOG_ERROR : LOG_INFO, "request",
		  "{s:s?, s:s?, s:s?, s:s?, s:i, s:I}",
		  "request_id", r->request_id, "actor", r->actor,
		  "method", r->method, "path", r->path, "status", r->status,
		  "duration_us", (json_int_t)(now_us() - r->start_us));
	server_reply(r->req, r->status, "application/json", r->body,
		     r->body ? strlen(r->body) : 0);
	free(r->request_id);
	free(r->actor);
	free(r->method);
	free(r->path);
}

static void on_idle(uv_idle_t *h)
{
	struct daemon *d = h->data;
	writer_flush(d);
}

static void arm(struct daemon *d)
{
	struct writer *w = &d->writer;
	if (!w->idle_on) {
		uv_idle_start(&w->idle, on_idle);
		w->idle_on = true;
	}
}

void writer_init(struct daemon *d)
{
	struct writer *w = &d->writer;
	memset(w, 0, sizeof(*w));
	uv_idle_init(d->loop, &w->idle);
	w->idle.data = d;
}

void writer_close(struct daemon *d)
{
	struct writer *w = &d->writer;
	uv_close((uv_handle_t *)&w->idle, NULL);
	free(w->notes);
	w->notes = NULL;
	w->notes_cap = 0;
}

bool writer_open(const struct daemon *d)
{
	return d->writer.entries.n > 0 || d->writer.n_idem > 0;
}

void writer_add(struct daemon *d, struct jlist *out, const char *note)
{
	struct writer *w = &d->writer;
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
	if (writer_open(d))
		arm(d);
}

void writer_add_idem(struct daemon *d, const char *key, const uint8_t hash[HASH_LEN],
		     int status, const char *response)
{
	struct writer *w = &d->writer;
	w->idem = xreallocarray(w->idem, w->n_idem + 1, sizeof(*w->idem));
	struct idem_rec *r = &w->idem[w->n_idem++];
	r->key = xstrdup(key);
	memcpy(r->body_hash, hash, HASH_LEN);
	r->status = status;
	r->response = xstrdup(response);
	r->time = daemon_now(d);
	arm(d);
}

const struct idem_rec *writer_find_idem(const struct daemon *d, const char *key)
{
	for (size_t i = 0; i < d->writer.n_idem; i++)
		if (strcmp(d->writer.idem[i].key, key) == 0)
			return &d->writer.idem[i];
	return NULL;
}

void writer_reply(struct daemon *d, struct held_reply *r)
{
	struct writer *w = &d->writer;
	if (!writer_open(d)) {
		send_reply(d, r);
		return;
	}
	w->held = xreallocarray(w->held, w->n_held + 1, sizeof(*w->held));
	w->held[w->n_held++] = *r;
}

static void batch_clear(struct writer *w)
{
	for (size_t i = 0; i < w->entries.n; i++)
		free(w->notes[i]);
	jlist_clear(&w->entries);
	for (size_t i = 0; i < w->n_idem; i++) {
		free(w->idem[i].key);
		free(w->idem[i].response);
	}
	free(w->idem);
	w->idem = NULL;
	w->n_idem = 0;
}

int writer_flush(struct daemon *d)
{
	struct writer *w = &d->writer;
	struct held_reply *held = w->held;
	size_t n_held = w->n_held;
	int rc = 0;

	if (w->idle_on) {
		uv_idle_stop(&w->idle);
		w->idle_on = false;
	}
	w->held = NULL;
	w->n_held = 0;
	if (writer_open(d)) {
		rc = state_commit(d->store, w->entries.v, w->entries.n, w->notes,
				  w->idem, w->n_idem);
		if (rc == 0) {
			d->counters.commits++;
			d->counters.committed_entries += w->entries.n;
			api_committed(d, w->entries.v, w->entries.n);
		} else {
			d->counters.failed_commits++;
			log_event(LOG_ERROR, "commit_failed", "{s:s, s:i, s:i}",
				  "error", store_errmsg(d->store), "entries", (int)w->entries.n,
				  "replies", (int)n_held);
		}
		batch_clear(w);
	}
	for (size_t i = 0; i < n_held; i++) {
		struct held_reply *r = &held[i];
		if (rc != 0) {
			free(r->body);
			r->body = xstrdup("{\"error\":{\"code\":\"storage_unavailable\","
					  "\"message\":\"the change could not be committed to disk; nothing was applied\","
					  "\"details\":{}}}");
			r->status = 503;
		}
		send_reply(d, r);
	}
	free(held);
	/* the in-memory ledger holds changes the disk refused: rebuild it */
	if (rc != 0 && daemon_reload(d) != 0) {
		log_event(LOG_ERROR, "reload_failed", NULL);
		exit(EXIT_SOFTWARE);
	}
	return rc;
}
