/* SPDX-License-Identifier: MIT */
/*
 * systemd's notify protocol through libsystemd's sd_notify(), and the
 * watchdog keep-alive.
 */
#include "daemon/sdnotify.h"
#include "daemon/log.h"

#include <systemd/sd-daemon.h>

static void send_state(const char *state)
{
	int rc = sd_notify(0, state);
	if (rc < 0)
		log_event(LOG_WARN, "sd_notify_failed", "{s:s, s:i}", "state", state, "errno", -rc);
}

static void send_statef(const char *what, const char *status)
{
	int rc = sd_notifyf(0, "%s%sSTATUS=%s", what, *what ? "\n" : "", status);
	if (rc < 0)
		log_event(LOG_WARN, "sd_notify_failed", "{s:s, s:i}", "state", what, "errno", -rc);
}

static void on_watchdog(uv_timer_t *t)
{
	send_state("WATCHDOG=1");
}

void sdnotify_init(struct sdnotify *n, uv_loop_t *loop)
{
	uint64_t usec = 0;

	uv_timer_init(loop, &n->watchdog);
	n->watchdog_on = false;
	/* > 0 only when $WATCHDOG_USEC is set for this very process */
	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return;
	uint64_t ms = usec / 2000;
	if (ms == 0)
		ms = 1;
	uv_timer_start(&n->watchdog, on_watchdog, ms, ms);
	/* the loop must not wait on the watchdog to decide it has work left */
	uv_unref((uv_handle_t *)&n->watchdog);
	n->watchdog_on = true;
	log_event(LOG_INFO, "watchdog", "{s:I}", "interval_ms", (json_int_t)ms);
}

void sdnotify_close(struct sdnotify *n)
{
	uv_timer_stop(&n->watchdog);
	uv_close((uv_handle_t *)&n->watchdog, NULL);
}

void sdnotify_ready(const char *status)
{
	send_statef("READY=1", status);
}

void sdnotify_reloading(void)
{
	send_state("RELOADING=1");
}

void sdnotify_stopping(const char *status)
{
	send_statef("STOPPING=1", status);
}

void sdnotify_status(const char *status)
{
	send_statef("", status);
}

int sdnotify_listen_fds(void)
{
	int n = sd_listen_fds(1);
	if (n < 0) {
		log_event(LOG_WARN, "listen_fds_failed", "{s:i}", "errno", -n);
		return 0;
	}
	return n;
}
