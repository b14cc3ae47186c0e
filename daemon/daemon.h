/* SPDX-License-Identifier: MIT */
/*
 * The daemon's shared state: one event loop, one configuration, one store,
 * one ledger, one writer. The loop-bound modules (writer, sched, api)
 * take a struct daemon; the pure ones never see it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "daemon/config.h"
#include "daemon/ledger.h"
#include "daemon/server.h"
#include "daemon/state.h"
#include "daemon/store.h"

/* A reply held until the batch it depends on is committed. */
struct held_reply {
	struct server_req *req;
	int status;
	char *body;
	/* for the request log line */
	char *request_id;
	char *actor;
	char *method;
	char *path;
	uint64_t start_us;
};

/*
 * The writer: one open batch of journal entries and idempotency records.
 * Requests apply their change to the in-memory ledger and join the batch;
 * the batch commits in one transaction at the end of the loop iteration
 * (group commit), and only then are its replies sent.
 */
struct writer {
	struct jlist entries;
	char **notes;		/* parallel to entries */
	size_t notes_cap;
	struct idem_rec *idem;
	size_t n_idem;
	struct held_reply *held;
	size_t n_held;
	uv_idle_t idle;
	bool idle_on;
};

struct follower;

struct daemon {
	uv_loop_t *loop;
	char *config_path;
	struct config *cfg;
	struct store *store;
	struct ledger *ledger;
	struct server *server;
	struct writer writer;
	uid_t uid;

	bool simulated;
	int64_t sim_now;
	uv_timer_t due_timer;
	uint64_t started_ms;

	uv_signal_t sig_term, sig_int, sig_hup;
	bool stopping;
	int exit_code;

	struct follower *followers;

	struct {
		uint64_t commits;
		uint64_t committed_entries;
		uint64_t failed_commits;
		uint64_t reloads;
	} counters;
};

/* The daemon's clock: simulated or real, in Unix seconds. */
int64_t daemon_now(const struct daemon *d);

/* writer.c */
void writer_init(struct daemon *d);
void writer_close(struct daemon *d);
/* Whether a batch is open (a change not yet committed). */
bool writer_open(const struct daemon *d);
/* Moves the entries of out into the batch; note goes with any reserve entry. */
void writer_add(struct daemon *d, struct jlist *out, const char *note);
void writer_add_idem(struct daemon *d, const char *key, const uint8_t hash[HASH_LEN],
		     int status, const char *response);
/* A pending idempotency record of the open batch, or NULL. */
const struct idem_rec *writer_find_idem(const struct daemon *d, const char *key);
/* Sends now, or holds until the open batch commits. Takes body and the strings. */
void writer_reply(struct daemon *d, struct held_reply *r);
/*
 * Commits the open batch now. On failure the batch's replies get 503, and
 * the ledger is reloaded from the store (the daemon exits if that fails).
 * Returns 0 or the commit's negative errno.
 */
int writer_flush(struct daemon *d);

/* sched.c */
void sched_init(struct daemon *d);
/* Processes everything due up to now (in time order) and re-arms the timer. */
void sched_run(struct daemon *d);
/* Simulated clock: moves to t, firing what falls due on the way, in order. */
void sched_move_to(struct daemon *d, int64_t t);
void sched_close(struct daemon *d);

/* api.c */
void api_handle(void *arg, struct server_req *r);
/* Called by the writer after a commit with the committed entries. */
void api_committed(struct daemon *d, const struct jentry *entries, size_t n);
/* Ends every follow stream (shutdown). */
void api_close_followers(struct daemon *d);

/* main.c: rebuilds the ledger from the store after a failed commit. */
int daemon_reload(struct daemon *d);
