/* SPDX-License-Identifier: MIT */
/*
 * See harness.h. The client end is a plain non-blocking socket driven from
 * the loop's own thread between uv_run(UV_RUN_NOWAIT) turns, so one input
 * is one deterministic run (the clock is simulated and stands still).
 */
#include "tests/fuzz/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <uv.h>

#include "daemon/api.h"
#include "daemon/log.h"
#include "daemon/state.h"
#include "daemon/util.h"

#define CLOCK0 1754262000	/* 2025-08-04T09:00:00+09:00, the first phase's start */

struct h {
	uv_loop_t loop;
	struct config *cfg;
	struct store *store;
	struct ledger *ledger;
	struct clock clock;
	struct writer writer;
	struct sched sched;
	struct follow follow;
	struct metrics metrics;
	struct api api;
	struct server *server;
	bool done;
};

static struct config *config;
static char dir[64], sock[108];

static void share(struct h *h)
{
	h->api.cfg = h->cfg;
	h->api.ledger = h->ledger;
	h->sched.ledger = h->ledger;
}

static void on_committed(void *arg, const struct jentry *entries, size_t n)
{
	struct h *h = arg;
	clock_move_commit(&h->clock);
	api_committed(&h->api, entries, n);
	follow_committed(&h->follow, entries, n, h->cfg->tz_offset);
	sched_committed(&h->sched, entries, n);
}

static void on_failed(void *arg, int err)
{
	/* an in-memory database does not fail to commit */
	fprintf(stderr, "harness: commit failed: %s\n", strerror(-err));
	abort();
}

static void on_reply(void *arg, struct server_req *r, int status, const char *content_type,
		     char *body, size_t len)
{
	server_reply(r, status, content_type ? content_type : "application/json", body, len);
}

static void on_done(void *arg)
{
	struct h *h = arg;
	h->server = NULL;
	h->api.server = NULL;
	writer_flush(&h->writer);
	writer_close(&h->writer);
	sched_close(&h->sched);
	h->done = true;
}

static void init(void)
{
	char *errors = NULL;
	const char *src = getenv("GPULEDGER_FUZZ_CONFIG");
	char path[4096];

	if (src == NULL) {
		snprintf(path, sizeof(path), "%s/config/example.yaml", SOURCE_ROOT);
		src = path;
	}
	if (config_load(src, &config, &errors) != 0) {
		fprintf(stderr, "harness: %s: %s\n", src, errors);
		abort();
	}
	signal(SIGPIPE, SIG_IGN);	/* as gpuledgerd: a closed peer is an EPIPE */
	log_open("/dev/null", LOG_ERROR, &errors);
	snprintf(dir, sizeof(dir), "/tmp/gpuledger-fuzz.XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(sock, sizeof(sock), "%s/sock", dir);
}

static int client_connect(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		abort();
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS &&
	    errno != EAGAIN)
		abort();
	return fd;
}

size_t harness_feed(const uint8_t *data, size_t len)
{
	static struct h h;
	char *cause = NULL;
	size_t sent = 0, answered = 0;
	bool eof = false, shut = false;
	char buf[65536];
	int idle = 0;

	if (config == NULL)
		init();
	memset(&h, 0, sizeof(h));
	h.cfg = config;
	if (uv_loop_init(&h.loop) != 0)
		abort();
	clock_init_simulated(&h.clock, CLOCK0);
	if (store_open(":memory:", &h.store, &cause) != 0 ||
	    state_load(h.store, h.cfg, clock_now(&h.clock), &h.ledger, &cause) != 0) {
		fprintf(stderr, "harness: %s\n", cause);
		abort();
	}
	const struct writer_hooks hooks = {
		.committed = on_committed, .failed = on_failed, .reply = on_reply, .arg = &h,
	};
	writer_init(&h.writer, &h.loop, h.store, &h.clock, &hooks);
	metrics_init(&h.metrics);
	h.writer.metrics = &h.metrics;
	sched_init(&h.sched, &h.loop, &h.clock, &h.writer, h.ledger);
	follow_init(&h.follow);
	h.api = (struct api){
		.loop = &h.loop, .store = h.store, .writer = &h.writer, .sched = &h.sched,
		.clock = &h.clock, .follow = &h.follow, .metrics = &h.metrics,
		.uid = getuid(), .started_ms = uv_now(&h.loop),
	};
	share(&h);
	h.server = server_new(&h.loop, api_handle, &h.api);
	h.api.server = h.server;
	if (server_listen_unix(h.server, sock, 0600, NULL, &cause) != 0) {
		fprintf(stderr, "harness: %s\n", cause);
		abort();
	}
	int fd = client_connect();

	/* until the server closes, or nothing moves for a while (a follow
	 * stream that waits for entries) */
	while (!eof && idle < 200) {
		bool moved = false;
		uv_run(&h.loop, UV_RUN_NOWAIT);
		if (sent < len) {
			ssize_t w = send(fd, data + sent, len - sent, MSG_NOSIGNAL);
			if (w > 0) {
				sent += (size_t)w;
				moved = true;
			} else if (w < 0 && errno != EAGAIN) {
				sent = len;	/* the server closed: stop sending */
			}
		} else if (!shut) {
			shutdown(fd, SHUT_WR);
			shut = true;
			moved = true;
		}
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r > 0) {
			answered += (size_t)r;
			moved = true;
		} else if (r == 0 || (r < 0 && errno != EAGAIN)) {
			eof = true;
		}
		idle = moved ? 0 : idle + 1;
	}
	close(fd);

	sched_stop(&h.sched);
	follow_close_all(&h.follow);
	server_shutdown(h.server, on_done, &h);
	uv_run(&h.loop, UV_RUN_DEFAULT);
	if (!h.done || uv_loop_close(&h.loop) != 0) {
		fprintf(stderr, "harness: the loop did not close\n");
		abort();
	}
	ledger_free(h.ledger);
	store_close(h.store);
	return answered;
}
