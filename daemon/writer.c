/* SPDX-License-Identifier: MIT */
/*
 * The one writer. Changes are applied to the in-memory ledger by the
 * request that makes them and join the open batch; an idle handle hands
 * the batch to the commit thread once the loop has read everything it had
 * to read in this iteration, so concurrent writers share one transaction
 * and one fsync (group commit), and while that fsync runs the loop goes on
 * parsing and applying the next requests into the next batch. One batch is
 * in flight at a time, and they commit in order. No reply of a batch leaves
 * before COMMIT returns; a failed commit answers 503 to all of them and to
 * those of the batch opened behind it (checked against changes that never
 * reached the disk, it fails too), and the owner's failed hook rebuilds
 * the ledger from what the database really holds. A batch is taken out of
 * the writer before any hook runs, so a hook may open the next one.
 */
#include "daemon/writer.h"
#include "daemon/error.h"
#include "daemon/log.h"
#include "daemon/util.h"

#include <stdlib.h>
#include <string.h>

#define COMMIT_FAILED_MESSAGE "the change could not be committed to disk; nothing was applied"

/* A batch taken out of the writer for its commit. */
struct writer_batch {
	struct jlist entries;
	char **notes;
	struct idem_rec *idem;
	size_t n_idem;
};

static uint64_t now_us(void)
{
	return uv_hrtime() / 1000;
}

/* The reply goes first: the log line and the metrics need not delay it. */
static void send_reply(struct writer *w, struct held_reply *r)
{
	size_t len = r->body_len ? r->body_len : r->body ? strlen(r->body) : 0;
	w->hooks.reply(w->hooks.arg, r->req, r->status, r->content_type, r->body, len);
	uint64_t took = now_us() - r->start_us;
	log_request(r->status, r->request_id, r->actor, r->method, r->path, took);
	metrics_request(w->metrics, r->route, r->status, took);
	free(r->request_id);
	free(r->actor);
	free(r->method);
	free(r->path);
}

static void held_free(struct held_reply *held, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(held[i].body);
		free(held[i].request_id);
		free(held[i].actor);
		free(held[i].method);
		free(held[i].path);
	}
	free(held);
}

/*
 * The commit thread: commits each batch it is handed, on the store's
 * connection, and tells the loop. It touches nothing of the writer but
 * the batch in flight and what mu guards.
 */
static void commit_thread(void *arg)
{
	struct writer *w = arg;

	uv_mutex_lock(&w->mu);
	for (;;) {
		if (w->job) {
			struct writer_batch *b = w->inflight;
			uv_mutex_unlock(&w->mu);
			int rc = state_commit(w->store, b->entries.v, b->entries.n, b->notes,
					      b->idem, b->n_idem);
			uv_mutex_lock(&w->mu);
			w->job = false;
			w->done = true;
			w->rc = rc;
			uv_cond_signal(&w->done_cv);
			uv_async_send(&w->done_async);
			continue;
		}
		if (w->quit)
			break;
		uv_cond_wait(&w->job_cv, &w->mu);
	}
	uv_mutex_unlock(&w->mu);
}

static void batch_free(struct writer_batch *b)
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
static void batch_take(struct writer *w, struct writer_batch *b)
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

/* Hands the open batch, and the replies held behind it, to the commit thread. */
static void start_commit(struct writer *w)
{
	struct writer_batch *b = xcalloc(1, sizeof(*b));

	batch_take(w, b);
	w->inflight = b;
	w->inflight_held = w->held;
	w->n_inflight_held = w->n_held;
	w->held = NULL;
	w->n_held = 0;
	if (w->hooks.taken)
		w->hooks.taken(w->hooks.arg);
	uv_ref((uv_handle_t *)&w->done_async);	/* the loop lives until it is back */
	uv_mutex_lock(&w->mu);
	w->job = true;
	uv_cond_signal(&w->job_cv);
	uv_mutex_unlock(&w->mu);
}

/* Answers a held reply 503: its batch, or the one it was checked against, failed. */
static void fail_reply(struct held_reply *r)
{
	free(r->body);
	r->body = error_body(ERR_STORAGE_UNAVAILABLE, COMMIT_FAILED_MESSAGE, NULL);
	r->status = error_status(ERR_STORAGE_UNAVAILABLE);
	r->content_type = NULL;
	r->body_len = 0;
}

/*
 * The batch in flight came back from the commit thread with rc: the
 * committed hook and its replies, or on failure 503 for them and for the
 * open batch behind it, the failed hook, and the reads answered again.
 */
static void finish_commit(struct writer *w, int rc)
{
	struct writer_batch *b = w->inflight;
	struct held_reply *held = w->inflight_held;
	size_t n_held = w->n_inflight_held;

	w->inflight = NULL;
	w->inflight_held = NULL;
	w->n_inflight_held = 0;
	uv_unref((uv_handle_t *)&w->done_async);
	if (rc == 0) {
		w->commits++;
		w->committed_entries += b->entries.n;
		metrics_batch(w->metrics, b->entries.n);
		if (w->hooks.committed)
			w->hooks.committed(w->hooks.arg, b->entries.v, b->entries.n);
	} else {
		struct writer_batch later;
		size_t later_entries = w->entries.n;
		w->failed_commits++;
		/* the open batch was checked against what just failed: it fails too */
		batch_take(w, &later);
		batch_free(&later);
		held = xreallocarray(held, n_held + w->n_held + 1, sizeof(*held));
		if (w->n_held)	/* memcpy from NULL is undefined even for 0 bytes */
			memcpy(held + n_held, w->held, w->n_held * sizeof(*held));
		n_held += w->n_held;
		free(w->held);
		w->held = NULL;
		w->n_held = 0;
		log_event(LOG_ERROR, "commit_failed", "{s:s, s:i, s:i, s:i}",
			  "error", store_errmsg(w->store), "entries", (int)b->entries.n,
			  "later_entries", (int)later_entries, "replies", (int)n_held);
	}
	for (size_t i = 0; i < n_held; i++) {
		struct held_reply *r = &held[i];
		if (rc != 0 && r->reread && w->hooks.reread)
			continue;	/* once the ledger is rebuilt, below */
		if (rc != 0)
			fail_reply(r);
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
	batch_free(b);
	free(b);
}

/* The result of the batch in flight, once the commit thread has one: 1 and *rc, or 0. */
static int take_result(struct writer *w, bool wait, int *rc)
{
	int got = 0;

	uv_mutex_lock(&w->mu);
	while (wait && !w->done)
		uv_cond_wait(&w->done_cv, &w->mu);
	if (w->done) {
		w->done = false;
		*rc = w->rc;
		got = 1;
	}
	uv_mutex_unlock(&w->mu);
	return got;
}

static void on_idle(uv_idle_t *h)
{
	struct writer *w = h->data;

	uv_idle_stop(&w->idle);
	w->idle_on = false;
	if (w->inflight == NULL && writer_open(w))
		start_commit(w);	/* else the batch in flight starts it when done */
}

static void arm(struct writer *w)
{
	if (!w->idle_on && w->inflight == NULL) {
		uv_idle_start(&w->idle, on_idle);
		w->idle_on = true;
	}
}

static void on_done(uv_async_t *h)
{
	struct writer *w = h->data;
	int rc;

	if (w->inflight == NULL || !take_result(w, false, &rc))
		return;		/* writer_flush() took it already */
	finish_commit(w, rc);
	/* what the loop applied while the fsync ran: the next batch, at once */
	if (w->inflight == NULL && writer_open(w))
		start_commit(w);
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
	if (uv_mutex_init(&w->mu) != 0 || uv_cond_init(&w->job_cv) != 0 ||
	    uv_cond_init(&w->done_cv) != 0 ||
	    uv_async_init(loop, &w->done_async, on_done) != 0 ||
	    uv_thread_create(&w->thread, commit_thread, w) != 0)
		abort();	/* no writer, no daemon: out of threads at start-up */
	w->done_async.data = w;
	uv_unref((uv_handle_t *)&w->done_async);	/* referenced while a batch is in flight */
}

void writer_close(struct writer *w)
{
	struct writer_batch b;

	uv_mutex_lock(&w->mu);
	w->quit = true;
	uv_cond_signal(&w->job_cv);
	uv_mutex_unlock(&w->mu);
	uv_thread_join(&w->thread);	/* after the batch it has, if any */
	if (w->inflight) {		/* not flushed: nobody waits for it any more */
		batch_free(w->inflight);
		free(w->inflight);
		held_free(w->inflight_held, w->n_inflight_held);
		w->inflight = NULL;
	}
	uv_cond_destroy(&w->job_cv);
	uv_cond_destroy(&w->done_cv);
	uv_mutex_destroy(&w->mu);
	uv_close((uv_handle_t *)&w->idle, NULL);
	uv_close((uv_handle_t *)&w->done_async, NULL);
	jlist_clear(&w->trial_entries);
	batch_take(w, &b);
	batch_free(&b);
	held_free(w->held, w->n_held);
	w->held = NULL;
	w->n_held = 0;
}

bool writer_open(const struct writer *w)
{
	return w->entries.n > 0 || w->n_idem > 0;
}

bool writer_busy(const struct writer *w)
{
	return writer_open(w) || w->inflight != NULL;
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

static const struct idem_rec *find_idem(const struct idem_rec *v, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].key, key) == 0)
			return &v[i];
	return NULL;
}

/*
 * The batch in flight counts too: its records reach the store only when it
 * commits, and a retry that arrives meanwhile must not run a second time.
 */
const struct idem_rec *writer_find_idem(const struct writer *w, const char *key)
{
	const struct idem_rec *r = find_idem(w->idem, w->n_idem, key);

	if (r == NULL && w->inflight)
		r = find_idem(w->inflight->idem, w->inflight->n_idem, key);
	return r;
}

static const struct jentry *find_usage(const struct jlist *l, const char *source,
				       const char *job_id)
{
	const char *src, *job;
	int64_t amount;

	for (size_t i = 0; i < l->n; i++) {
		const struct jentry *e = &l->v[i];
		if (jentry_usage_fields(e, &src, &job, &amount) == 0 &&
		    strcmp(src, source) == 0 && strcmp(job, job_id) == 0)
			return e;
	}
	return NULL;
}

const struct jentry *writer_find_usage(const struct writer *w, const char *source,
				       const char *job_id)
{
	const struct jentry *e = find_usage(&w->entries, source, job_id);

	if (e == NULL && w->inflight)
		e = find_usage(&w->inflight->entries, source, job_id);
	return e;
}

void writer_reply(struct writer *w, struct held_reply *r)
{
	struct held_reply **held = &w->held;
	size_t *n = &w->n_held;

	if (!writer_busy(w)) {
		send_reply(w, r);
		return;
	}
	if (!writer_open(w)) {	/* what it read holds the batch in flight */
		held = &w->inflight_held;
		n = &w->n_inflight_held;
	}
	*held = xreallocarray(*held, *n + 1, sizeof(**held));
	(*held)[(*n)++] = *r;
}

int writer_flush(struct writer *w)
{
	int rc, first = 0;

	if (w->idle_on) {
		uv_idle_stop(&w->idle);
		w->idle_on = false;
	}
	/* the batch in flight, then the open one; a batch that a committed
	 * hook opens after that (the scheduler's expiries) stays open */
	for (int i = 0; i < 2; i++) {
		if (w->inflight == NULL) {
			if (!writer_open(w))
				continue;
			start_commit(w);
			i = 1;	/* this one is the open batch */
		}
		take_result(w, true, &rc);
		finish_commit(w, rc);
		if (first == 0)
			first = rc;
	}
	if (writer_open(w))
		arm(w);
	return first;
}
