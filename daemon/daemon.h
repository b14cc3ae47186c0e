/* SPDX-License-Identifier: MIT */
/*
 * main.c's composition of the daemon: one event loop, one configuration,
 * one store, one ledger, and the loop modules that main wires together.
 * Only main.c includes this; every module gets pointers to what it needs
 * (struct api, the writer's hooks) instead, so none of them depends on the
 * whole.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "daemon/api.h"
#include "daemon/clock.h"
#include "daemon/config.h"
#include "daemon/follow.h"
#include "daemon/ledger.h"
#include "daemon/metrics.h"
#include "daemon/sched.h"
#include "daemon/sdnotify.h"
#include "daemon/server.h"
#include "daemon/store.h"
#include "daemon/writer.h"

struct daemon {
	uv_loop_t *loop;
	char *config_path;
	/* --socket, --database, --log: they win over the file, also on SIGHUP */
	const char *opt_socket, *opt_database, *opt_log;
	struct config *cfg;
	struct store *store;
	struct store *reader;	/* read-only: the loop's reads while a batch is in flight */
	struct ledger *ledger;
	struct server *server;

	struct clock clock;
	struct writer writer;	/* hooks: committed -> followers, sched; failed -> reload */
	struct sched sched;
	struct follow follow;
	struct api api;		/* what the request handlers see */

	struct metrics metrics;	/* GET /metrics */
	struct sdnotify notify;	/* systemd: READY=1, WATCHDOG=1, ... */

	uv_signal_t sig_term, sig_int, sig_hup, sig_usr1;
	uv_timer_t prune;	/* idempotency records past daemon.idempotency_retention */
	uv_prepare_t log_flush;	/* the loop's log lines, one write per iteration */
	bool stopping;
	int exit_status;	/* non-zero: why a clean stop still ends the daemon non-zero */
	uint64_t reloads;
};
