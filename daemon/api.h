/* SPDX-License-Identifier: MIT */
/*
 * The HTTP API's handler and what it works with. The API calls down only:
 * the ledger for rules, the writer for changes and held replies, the store
 * for history, the clock for now, the followers for journal streams, the
 * scheduler to move a simulated clock. It never re-arms the scheduler or
 * fans out commits itself: the writer's hooks, wired by main, do that.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "daemon/clock.h"
#include "daemon/config.h"
#include "daemon/follow.h"
#include "daemon/ledger.h"
#include "daemon/metrics.h"
#include "daemon/sched.h"
#include "daemon/server.h"
#include "daemon/store.h"
#include "daemon/writer.h"

/*
 * Everything borrowed. cfg and ledger are the current ones: whoever
 * replaces them (SIGHUP, a reload after a failed commit) sets them here.
 */
struct api {
	uv_loop_t *loop;
	struct config *cfg;
	struct ledger *ledger;
	struct store *store;
	/* read-only, for reads while a batch is in flight (NULL: store) */
	struct store *reader;
	struct server *server;
	struct writer *writer;
	struct sched *sched;
	struct clock *clock;
	struct follow *follow;
	struct metrics *metrics;
	uid_t uid;		/* the daemon's own user: always admin */
	uint64_t started_ms;	/* uv_now() at start, for the uptime */
};

/* The server's handler; arg is a struct api. */
void api_handle(void *arg, struct server_req *r);

/*
 * A batch committed (the writer's committed hook, through main): logs the
 * changes it made durable, so that no "allocated" or "eliminated" line
 * speaks of a change whose commit failed.
 */
void api_committed(struct api *api, const struct jentry *entries, size_t n);
