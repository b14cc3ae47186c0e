/* SPDX-License-Identifier: MIT */
/*
 * Talking to systemd (Type=notify): READY=1 once the audit and load are
 * done and the listeners are open, STATUS= lines, RELOADING=1 / READY=1
 * around a SIGHUP, STOPPING=1, and WATCHDOG=1 from a timer at half the
 * interval systemd asked for. The watchdog runs on the loop's real time,
 * also when the ledger runs on a simulated clock. Without $NOTIFY_SOCKET
 * every call does nothing. Also the sockets systemd passes (socket
 * activation, $LISTEN_FDS).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

struct sdnotify {
	uv_timer_t watchdog;
	bool watchdog_on;
};

/* Starts the watchdog timer when systemd asked for one ($WATCHDOG_USEC). */
void sdnotify_init(struct sdnotify *n, uv_loop_t *loop);
/* Closes the timer handle (shutdown). */
void sdnotify_close(struct sdnotify *n);

/* READY=1 with a STATUS= line. */
void sdnotify_ready(const char *status);
/* RELOADING=1 (a SIGHUP is being applied); sdnotify_ready() ends it. */
void sdnotify_reloading(void);
/* STOPPING=1 with a STATUS= line. */
void sdnotify_stopping(const char *status);
/* A STATUS= line alone. */
void sdnotify_status(const char *status);

/* The first descriptor systemd passes (SD_LISTEN_FDS_START). */
#define SDNOTIFY_LISTEN_FDS_START 3
/*
 * How many sockets systemd passed for this process (socket activation),
 * from SDNOTIFY_LISTEN_FDS_START on; 0 when none. Unsets $LISTEN_FDS so
 * that no child inherits them.
 */
int sdnotify_listen_fds(void);
