/* SPDX-License-Identifier: MIT */
/*
 * The one writer: one open batch of journal entries and idempotency
 * records, and at most one batch in flight. Requests apply their change to
 * the in-memory ledger and join the open batch; once the loop has read what
 * it had to read in this iteration (group commit), and no batch is in
 * flight, the open batch goes to the writer's commit thread, which commits
 * it in one transaction on the store's connection while the loop parses and
 * applies the next requests into a new open batch. Only once COMMIT has
 * returned are the replies held behind a batch sent. The writer knows
 * nothing of who asked or who listens: it tells its owner through hooks
 * that a batch committed or failed, and hands each reply to a hook to
 * deliver. While a batch is in flight the loop thread must not use the
 * store's connection (the commit thread has a transaction open on it);
 * writer_flush() waits for it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "daemon/clock.h"
#include "daemon/journal.h"
#include "daemon/metrics.h"
#include "daemon/state.h"
#include "daemon/store.h"

struct server_req;

/* A reply held until the batch it depends on is committed. */
struct held_reply {
	struct server_req *req;	/* opaque to the writer; handed to the reply hook */
	int status;
	char *body;
	const char *content_type;	/* static; NULL is application/json */
	size_t body_len;	/* 0: strlen(body); a binary body gives its length */
	int route;		/* enum proto_req, or -1: for the metrics */
	/* a read: when the batch it waits for fails, it is handed back to be
	 * answered again from the rebuilt ledger (hooks.reread), not 503 */
	bool reread;
	/* for the request log line */
	char *request_id;
	char *actor;
	char *method;
	char *path;
	uint64_t start_us;
};

struct writer_hooks {
	/*
	 * A batch committed: its entries, in seq order, valid during the call.
	 * Called before the batch's replies are sent. May add to a new batch.
	 */
	void (*committed)(void *arg, const struct jentry *entries, size_t n);
	/*
	 * A batch failed to commit with err (a negative errno); its replies have
	 * been answered 503, and so have those of the batch that was open behind
	 * it (its changes were checked against a ledger that held the failed
	 * ones), whose entries are dropped. The in-memory ledger holds changes
	 * the disk refused: this is where the owner rebuilds it.
	 */
	void (*failed)(void *arg, int err);
	/*
	 * The open batch was taken to be committed: whatever the loop changes
	 * from now on belongs to the next batch (a clock move's undo point, say).
	 * Optional.
	 */
	void (*taken)(void *arg);
	/*
	 * Delivers a reply; takes body (may be NULL). content_type is static,
	 * NULL for application/json (a failed batch's 503 is always JSON).
	 * Required.
	 */
	void (*reply)(void *arg, struct server_req *req, int status, const char *content_type,
		      char *body, size_t len);
	/*
	 * A read held behind a batch that failed (held_reply.reread), after the
	 * failed hook: answer it anew. false: it cannot (the ledger was not
	 * rebuilt), and the writer answers it 503. Optional (NULL: 503).
	 */
	bool (*reread)(void *arg, struct server_req *req);
	void *arg;
};

/* A batch taken out of the writer for its commit (writer.c). */
struct writer_batch;

struct writer {
	/* private */
	struct store *store;
	const struct clock *clock;
	struct writer_hooks hooks;
	struct jlist entries;
	char **notes;		/* parallel to entries */
	size_t notes_cap;
	struct idem_rec *idem;
	size_t n_idem;
	struct held_reply *held;
	size_t n_held;
	uv_idle_t idle;
	bool idle_on;

	/*
	 * The batch in flight (NULL: none) and the replies held behind it. The
	 * commit thread sees only what mu guards: job (a batch for it to
	 * commit), done and rc (it has, with that result), quit.
	 */
	struct writer_batch *inflight;
	struct held_reply *inflight_held;
	size_t n_inflight_held;
	uv_thread_t thread;
	uv_mutex_t mu;
	uv_cond_t job_cv, done_cv;
	uv_async_t done_async;
	bool job, done, quit;
	int rc;
	/* a dry run: entries kept aside, never batched (writer_trial_begin) */
	bool trial;
	struct jlist trial_entries;

	/* where replies and commits are counted; NULL for none. Set by the owner. */
	struct metrics *metrics;

	/* counters, for /v1/status */
	uint64_t commits;
	uint64_t committed_entries;
	uint64_t failed_commits;
};

/* The hooks are copied. store and clock are borrowed. Starts the commit thread. */
void writer_init(struct writer *w, uv_loop_t *loop, struct store *store,
		 const struct clock *clock, const struct writer_hooks *hooks);
/*
 * Stops the commit thread, closes the handles and frees what the writer
 * holds; flush first. The struct must stay in place until the loop has run
 * the closes.
 */
void writer_close(struct writer *w);

/* Whether a batch is open (a change not yet committed, nor handed to the commit thread). */
bool writer_open(const struct writer *w);
/* Whether a batch is open or in flight: something answered would wait for a commit. */
bool writer_busy(const struct writer *w);
/* Moves the entries of out into the batch (out is left empty); note goes with any reserve entry. */
void writer_add(struct writer *w, struct jlist *out, const char *note);
/* Records a POST's answer with the batch, for idempotent retries (strings copied). */
void writer_add_idem(struct writer *w, const char *key, const uint8_t hash[HASH_LEN],
		     int status, const char *response);
/*
 * The same for an answer the API can rebuild from the journal entry at seq
 * (> 0): the store keeps the seq, not the text (which a retry within the
 * batch still gets from here).
 */
void writer_add_idem_ref(struct writer *w, const char *key, const uint8_t hash[HASH_LEN],
			 int status, const char *response, int64_t seq);
/* A pending idempotency record of the open batch or the one in flight, or NULL. */
const struct idem_rec *writer_find_idem(const struct writer *w, const char *key);
/*
 * A dry run: until writer_trial_end(), writer_add() keeps the entries it
 * is given aside instead of batching them (they are never committed, and
 * open no batch) and writer_add_idem() records nothing, so whatever a
 * handler does through the writer changes nothing on disk.
 */
void writer_trial_begin(struct writer *w);
/* The entries the dry run would have written so far, in order. */
const struct jlist *writer_trial_entries(const struct writer *w);
/* Ends the dry run and frees the entries kept aside. */
void writer_trial_end(struct writer *w);
/* The usage entry of the open or in-flight batch for (source, job_id), or NULL. */
const struct jentry *writer_find_usage(const struct writer *w, const char *source,
				       const char *job_id);
/*
 * Sends now, or holds until the open batch (else the one in flight)
 * commits. Takes body and the strings of r.
 */
void writer_reply(struct writer *w, struct held_reply *r);
/*
 * Waits for the batch in flight, then commits the open batch, blocking the
 * loop, and sends the replies held behind them (503 storage_unavailable on
 * failure, after which the failed hook runs). A batch that a committed
 * hook opens meanwhile stays open. Afterwards the store's connection is
 * the loop's until the loop turns again. Returns 0 or the first failed
 * commit's negative errno.
 */
int writer_flush(struct writer *w);
