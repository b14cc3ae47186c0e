/* SPDX-License-Identifier: MIT */
/*
 * Tests of the HTTP server and of the log. Each server test runs a libuv
 * loop with a server on a temporary Unix socket in a second thread and
 * talks to it from the test thread with plain blocking sockets, so every
 * assertion runs where cmocka expects it and the byte stream is exactly
 * what a client would see. The handler, on the loop thread, echoes the
 * request as JSON or plays a part (deferred replies, streams, shutdown).
 * Every test ends by shutting the server down and asserting that the loop
 * closes with no handle left.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "daemon/grammar.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/util.h"

struct fixture {
	char dir[64];
	char sock[100];		/* fits sun_path */
	int tcp_port;		/* 0: no TCP listener */
	uv_loop_t loop;
	struct server *srv;
	uv_async_t stop;
	pthread_t thread;

	/* Loop thread only. */
	bool shut;
	bool reply_sent;

	/* Shared: under mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done_called;
	bool done_after_reply;
	int stream_closes;
	int follow_closes;
	int slow_closes;
	bool slow_done;
	int slow_rc;
	int slow_again_rc;
	int slow_writes;
	int big_handled;	/* requests for /big seen by the handler */
	bool admin;		/* what the is_admin callback answers */
	char fired[16];		/* order in which deferred replies fired */
};

/* The limits the next fixture starts with (the defaults unless a setup
 * function sets them), with fixture_admin() as the admin callback. */
static struct server_limits next_limits;
static bool next_limits_set;

/* Shared state */

static void fx_lock(struct fixture *fx)
{
	pthread_mutex_lock(&fx->mu);
}

static void fx_unlock(struct fixture *fx)
{
	pthread_cond_broadcast(&fx->cv);
	pthread_mutex_unlock(&fx->mu);
}

/* Waits up to 5 s for *v to reach want; returns the value seen. */
static int wait_int(struct fixture *fx, int *v, int want)
{
	struct timespec ts;
	int seen;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&fx->mu);
	while (*v < want &&
	       pthread_cond_timedwait(&fx->cv, &fx->mu, &ts) == 0)
		;
	seen = *v;
	pthread_mutex_unlock(&fx->mu);
	return seen;
}

static bool wait_bool(struct fixture *fx, bool *v)
{
	struct timespec ts;
	bool seen;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&fx->mu);
	while (!*v && pthread_cond_timedwait(&fx->cv, &fx->mu, &ts) == 0)
		;
	seen = *v;
	pthread_mutex_unlock(&fx->mu);
	return seen;
}

/* The handler (loop thread) */

static char *echo_json(struct fixture *fx, const struct http_request *h,
		       size_t *len)
{
	json_t *o = json_pack("{s:s,s:s,s:s?,s:s,s:s?,s:s?,s:b,s:b,s:I,s:s,"
			      "s:I,s:I}",
			      "method", h->method, "path", h->path,
			      "query", h->query, "body", h->body,
			      "key", h->idempotency_key,
			      "content_type", h->content_type,
			      "authorized", h->authorization != NULL,
			      "peer_unix", h->peer_unix,
			      "peer_uid", (json_int_t)h->peer_uid,
			      "peer_addr", h->peer_addr,
			      "requests",
			      (json_int_t)server_requests_total(fx->srv),
			      "connections",
			      (json_int_t)server_connections(fx->srv));
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	*len = strlen(s);
	return s;
}

static void reply_echo(struct fixture *fx, struct server_req *r)
{
	size_t len;
	char *body = echo_json(fx, server_req_http(r), &len);
	server_reply(r, 200, "application/json", body, len);
}

struct deferred {
	uv_timer_t timer;
	struct fixture *fx;
	struct server_req *r;
	char tag;
};

static void deferred_closed(uv_handle_t *h)
{
	free(h->data);
}

static void deferred_fire(uv_timer_t *t)
{
	struct deferred *d = t->data;
	struct fixture *fx = d->fx;

	fx_lock(fx);
	size_t n = strlen(fx->fired);
	if (n + 1 < sizeof(fx->fired))
		fx->fired[n] = d->tag;
	fx_unlock(fx);
	fx->reply_sent = true;
	reply_echo(fx, d->r);
	uv_close((uv_handle_t *)t, deferred_closed);
}

static void defer_reply(struct fixture *fx, struct server_req *r, int ms,
			char tag)
{
	struct deferred *d = xcalloc(1, sizeof(*d));

	d->fx = fx;
	d->r = r;
	d->tag = tag;
	uv_timer_init(&fx->loop, &d->timer);
	d->timer.data = d;
	uv_timer_start(&d->timer, deferred_fire, (uint64_t)ms, 0);
}

static void count_close(struct fixture *fx, int *counter)
{
	fx_lock(fx);
	(*counter)++;
	fx_unlock(fx);
}

static void stream_closed(void *arg)
{
	struct fixture *fx = arg;
	count_close(fx, &fx->stream_closes);
}

static void follow_closed(void *arg)
{
	struct fixture *fx = arg;
	count_close(fx, &fx->follow_closes);
}

static void slow_closed(void *arg)
{
	struct fixture *fx = arg;
	count_close(fx, &fx->slow_closes);
}

static void server_done(void *arg)
{
	struct fixture *fx = arg;

	/* Under the lock, so teardown never signals a closed handle. */
	fx_lock(fx);
	fx->done_called = true;
	fx->done_after_reply = fx->reply_sent;
	uv_close((uv_handle_t *)&fx->stop, NULL);
	fx_unlock(fx);
}

static void start_shutdown(struct fixture *fx)
{
	if (!fx->shut) {
		fx->shut = true;
		server_shutdown(fx->srv, server_done, fx);
	}
}

/* "ms=N&tag=X" */
static void parse_delay(const char *q, int *ms, char *tag)
{
	*ms = 0;
	*tag = '?';
	if (q != NULL)
		sscanf(q, "ms=%d&tag=%c", ms, tag);
}

static void handler(void *arg, struct server_req *r)
{
	struct fixture *fx = arg;
	const struct http_request *h = server_req_http(r);

	if (strcmp(h->path, "/delay") == 0) {
		int ms;
		char tag;
		parse_delay(h->query, &ms, &tag);
		defer_reply(fx, r, ms, tag);
	} else if (strcmp(h->path, "/stream") == 0) {
		server_stream_begin(r, 200, "application/x-ndjson",
				    stream_closed, fx);
		/* No cmocka asserts on the loop thread: the body shows it. */
		server_stream_write(r, "a\n", 2);
		server_stream_write(r, "", 0);	/* must not end the stream */
		server_stream_write(r, "b\n", 2);
		server_stream_write(r, "c\n", 2);
		server_stream_end(r);
	} else if (strcmp(h->path, "/follow") == 0) {
		server_stream_begin(r, 200, "application/x-ndjson",
				    follow_closed, fx);
		server_stream_write(r, "first\n", 6);
	} else if (strcmp(h->path, "/slow") == 0) {
		static char chunk[65536];
		int rc = 0, i;
		memset(chunk, 'x', sizeof(chunk));
		server_stream_begin(r, 200, "application/x-ndjson",
				    slow_closed, fx);
		for (i = 0; i < 200 && rc == 0; i++)
			rc = server_stream_write(r, chunk, sizeof(chunk));
		/* Until on_close runs, r stays valid and refuses writes. */
		int again = server_stream_write(r, chunk, 1);
		server_stream_end(r);
		fx_lock(fx);
		fx->slow_rc = rc;
		fx->slow_again_rc = again;
		fx->slow_writes = i;
		fx->slow_done = true;
		fx_unlock(fx);
	} else if (strcmp(h->path, "/big") == 0) {
		/* 16 KiB per request: a pipelining non-reader piles these up */
		char *body = xmalloc(16384);
		memset(body, 'b', 16384);
		fx_lock(fx);
		fx->big_handled++;
		fx_unlock(fx);
		server_reply(r, 200, "text/plain", body, 16384);
	} else if (strcmp(h->path, "/pattern") == 0) {
		/* 1 MiB that no socket takes at once, every byte telling its place */
		size_t n = 1 << 20;
		char *body = xmalloc(n);
		for (size_t i = 0; i < n; i++)
			body[i] = (char)(i % 251);
		server_reply(r, 200, "application/octet-stream", body, n);
	} else if (strcmp(h->path, "/empty") == 0) {
		server_reply(r, 204, NULL, NULL, 0);
	} else if (strcmp(h->path, "/shutdown") == 0) {
		start_shutdown(fx);
		defer_reply(fx, r, 50, 's');
	} else {
		reply_echo(fx, r);
	}
}

/* The loop thread */

static void stop_cb(uv_async_t *a)
{
	start_shutdown(a->data);
}

static void *loop_thread(void *arg)
{
	struct fixture *fx = arg;
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	return NULL;
}

static int try_listen_tcp(struct fixture *fx)
{
	char *cause = NULL;
	char hp[64];
	int rc = -1;

	/* No way to ask for the bound port, so try a few random ones. */
	for (int i = 0; i < 50 && rc < 0; i++) {
		fx->tcp_port = 20000 + (int)(((unsigned)getpid() * 7919u +
					      (unsigned)i * 104729u) % 30000u);
		snprintf(hp, sizeof(hp), "127.0.0.1:%d", fx->tcp_port);
		rc = server_listen_tcp(fx->srv, hp, &cause);
		free(cause);
		cause = NULL;
		/* A failed bind closed its handle: let that complete. */
		if (rc < 0)
			uv_run(&fx->loop, UV_RUN_NOWAIT);
	}
	return rc;
}

static bool fixture_admin(void *arg, uid_t uid, gid_t gid)
{
	struct fixture *fx = arg;
	bool admin;

	(void)gid;
	fx_lock(fx);
	admin = fx->admin && uid == getuid();
	fx_unlock(fx);
	return admin;
}

static int fixture_start(void **state, bool tcp)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	char *cause = NULL;

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/gl-srv-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->sock, sizeof(fx->sock), "%s/gl.sock", fx->dir);
	pthread_mutex_init(&fx->mu, NULL);
	pthread_cond_init(&fx->cv, NULL);
	assert_int_equal(uv_loop_init(&fx->loop), 0);
	fx->srv = server_new(&fx->loop, handler, fx);
	if (next_limits_set) {
		next_limits.is_admin = fixture_admin;
		next_limits.is_admin_arg = fx;
		server_set_limits(fx->srv, &next_limits);
		next_limits_set = false;
	}
	assert_int_equal(server_listen_unix(fx->srv, fx->sock, SERVER_SOCKET_MODE, NULL, &cause), 0);
	if (tcp)
		assert_int_equal(try_listen_tcp(fx), 0);
	assert_int_equal(uv_async_init(&fx->loop, &fx->stop, stop_cb), 0);
	fx->stop.data = fx;
	assert_int_equal(pthread_create(&fx->thread, NULL, loop_thread, fx), 0);
	*state = fx;
	return 0;
}

static int setup(void **state)
{
	return fixture_start(state, false);
}

static int setup_tcp(void **state)
{
	return fixture_start(state, true);
}

/* The default limits; the test's own uid is an admin. */
static int setup_admin(void **state)
{
	struct fixture *fx;

	server_limits_default(&next_limits);
	next_limits_set = true;
	fixture_start(state, false);
	fx = *state;
	fx->admin = true;	/* the loop thread reads it under the lock */
	return 0;
}

/* Budgets small enough to reach with a few connections. */
static int setup_budgets(void **state)
{
	server_limits_default(&next_limits);
	next_limits.unix_max = 6;
	next_limits.unix_max_per_uid = 3;
	next_limits.tcp_max = 3;
	next_limits.tcp_max_per_peer = 2;
	next_limits.max_streams = 1;
	next_limits.first_byte_ms = 300;
	next_limits_set = true;
	return fixture_start(state, true);
}

/* A small output limit and a short write timeout. */
static int setup_output(void **state)
{
	server_limits_default(&next_limits);
	next_limits.max_output = 65536;
	next_limits.write_ms = 500;
	next_limits_set = true;
	return fixture_start(state, false);
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	fx_lock(fx);
	if (!fx->done_called)
		uv_async_send(&fx->stop);
	fx_unlock(fx);
	pthread_join(fx->thread, NULL);
	assert_true(fx->done_called);
	assert_int_equal(uv_loop_close(&fx->loop), 0);
	/* Shutdown removed the socket file. */
	assert_int_equal(access(fx->sock, F_OK), -1);
	rmdir(fx->dir);
	pthread_mutex_destroy(&fx->mu);
	pthread_cond_destroy(&fx->cv);
	free(fx);
	return 0;
}

/* The client (test thread) */

struct client {
	int fd;
	char buf[1 << 16];
	size_t len;
};

struct resp {
	int status;
	char head[8192];	/* status line and headers */
	char *body;
	size_t body_len;
};

static void client_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static struct client *client_unix(struct fixture *fx)
{
	struct client *c = xcalloc(1, sizeof(*c));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx->sock);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	client_timeouts(c->fd);
	return c;
}

/* A TCP client from the loopback address from ("127.0.0.2"). */
static struct client *client_tcp_from(struct fixture *fx, const char *from)
{
	struct client *c = xcalloc(1, sizeof(*c));
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct sockaddr_in me = { .sin_family = AF_INET };

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	assert_int_equal(inet_pton(AF_INET, from, &me.sin_addr), 1);
	assert_int_equal(bind(c->fd, (struct sockaddr *)&me, sizeof(me)), 0);
	sa.sin_port = htons((uint16_t)fx->tcp_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	client_timeouts(c->fd);
	return c;
}

static struct client *client_tcp(struct fixture *fx)
{
	struct client *c = xcalloc(1, sizeof(*c));
	struct sockaddr_in sa = { .sin_family = AF_INET };

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	sa.sin_port = htons((uint16_t)fx->tcp_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	client_timeouts(c->fd);
	return c;
}

static void client_free(struct client *c)
{
	close(c->fd);
	free(c);
}

static void send_all(struct client *c, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n > 0);
		data += n;
		len -= (size_t)n;
	}
}

static void send_str(struct client *c, const char *s)
{
	send_all(c, s, strlen(s));
}

/* Reads more bytes; 0 at EOF (or reset, which a Unix socket reports when
 * the server closed with our unread bytes in its queue), -1 on timeout. */
static int read_more(struct client *c)
{
	ssize_t n;

	if (c->len == sizeof(c->buf))
		return -1;
	do
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ECONNRESET || errno == EPIPE ? 0 : -1;
	c->len += (size_t)n;
	return n > 0 ? 1 : 0;
}

static void consume(struct client *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

/* Waits until n bytes are buffered; false at EOF or timeout. */
static bool need(struct client *c, size_t n)
{
	while (c->len < n)
		if (read_more(c) <= 0)
			return false;
	return true;
}

static char *find_in(struct client *c, const char *needle)
{
	return memmem(c->buf, c->len, needle, strlen(needle));
}

static bool read_until(struct client *c, const char *needle)
{
	while (find_in(c, needle) == NULL)
		if (read_more(c) <= 0)
			return false;
	return true;
}

static const char *header(const struct resp *r, const char *name)
{
	static char val[256];
	char key[64];
	snprintf(key, sizeof(key), "\r\n%s:", name);
	const char *p = strcasestr(r->head, key);
	if (p == NULL)
		return NULL;
	p += strlen(key);
	while (*p == ' ')
		p++;
	size_t n = strcspn(p, "\r");
	snprintf(val, sizeof(val), "%.*s", (int)n, p);
	return val;
}

/* Reads one response, Content-Length or chunked. Returns 0 or -1. */
static int read_response(struct client *c, struct resp *r)
{
	struct buf body = { 0 };
	const char *v;
	char *end;

	memset(r, 0, sizeof(*r));
	if (!read_until(c, "\r\n\r\n"))
		return -1;
	end = find_in(c, "\r\n\r\n");
	size_t hlen = (size_t)(end - c->buf) + 2;
	assert_true(hlen < sizeof(r->head));
	memcpy(r->head, c->buf, hlen);
	consume(c, hlen + 2);
	if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1)
		return -1;
	if ((v = header(r, "Content-Length")) != NULL) {
		size_t n = strtoul(v, NULL, 10);
		if (!need(c, n))
			return -1;
		buf_append(&body, c->buf, n);
		consume(c, n);
	} else if ((v = header(r, "Transfer-Encoding")) != NULL &&
		   strcmp(v, "chunked") == 0) {
		for (;;) {
			if (!read_until(c, "\r\n"))
				return -1;
			size_t n = strtoul(c->buf, NULL, 16);
			consume(c, (size_t)(find_in(c, "\r\n") - c->buf) + 2);
			if (!need(c, n + 2))
				return -1;
			buf_append(&body, c->buf, n);
			consume(c, n + 2);
			if (n == 0)
				break;
		}
	}
	r->body_len = body.len;
	r->body = body.len > 0 ? buf_take(&body) : xstrdup("");
	return 0;
}

static bool at_eof(struct client *c)
{
	return c->len == 0 && read_more(c) == 0;
}

static json_t *body_json(const struct resp *r)
{
	json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
	assert_non_null(j);
	return j;
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static const char *error_code(const struct resp *r)
{
	static char code[64];
	json_t *j = body_json(r);
	snprintf(code, sizeof(code), "%s",
		 json_string_value(json_object_get(json_object_get(j, "error"),
						   "code")));
	json_decref(j);
	return code;
}

/* One request, one response, on a fresh connection. */
static void roundtrip(struct fixture *fx, const char *req, struct resp *r)
{
	struct client *c = client_unix(fx);
	send_str(c, req);
	assert_int_equal(read_response(c, r), 0);
	client_free(c);
}

/* Tests */

static void test_get(void **state)
{
	struct fixture *fx = *state;
	struct resp r;

	roundtrip(fx, "GET /v1/status?x=1&y=%41 HTTP/1.1\r\nHost: x\r\n"
		  "Authorization: Bearer secret\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(header(&r, "Content-Type"), "application/json");
	json_t *j = body_json(&r);
	assert_string_equal(jstr(j, "method"), "GET");
	assert_string_equal(jstr(j, "path"), "/v1/status");
	assert_string_equal(jstr(j, "query"), "x=1&y=%41");
	assert_string_equal(jstr(j, "body"), "");
	assert_true(json_is_null(json_object_get(j, "key")));
	assert_true(json_is_true(json_object_get(j, "authorized")));
	assert_true(json_is_true(json_object_get(j, "peer_unix")));
	assert_int_equal(json_integer_value(json_object_get(j, "peer_uid")),
			 getuid());
	assert_string_equal(jstr(j, "peer_addr"), "unix");
	assert_int_equal(json_integer_value(json_object_get(j, "requests")), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "connections")), 1);
	json_decref(j);
	free(r.body);
}

static void test_post_body(void **state)
{
	struct fixture *fx = *state;
	struct resp r;

	roundtrip(fx, "POST /v1/a%20b HTTP/1.1\r\nHost: x\r\n"
		  "idempotency-key: k-123\r\nContent-Type: application/json\r\n"
		  "Content-Length: 7\r\n\r\n{\"a\":1}", &r);
	assert_int_equal(r.status, 200);
	json_t *j = body_json(&r);
	assert_string_equal(jstr(j, "method"), "POST");
	assert_string_equal(jstr(j, "path"), "/v1/a b");
	assert_true(json_is_null(json_object_get(j, "query")));
	assert_string_equal(jstr(j, "body"), "{\"a\":1}");
	assert_string_equal(jstr(j, "key"), "k-123");
	assert_string_equal(jstr(j, "content_type"), "application/json");
	assert_false(json_is_true(json_object_get(j, "authorized")));
	json_decref(j);
	free(r.body);
}

static void test_keepalive(void **state)
{
	struct fixture *fx = *state;
	struct client *c = client_unix(fx);
	struct resp r;

	send_str(c, "GET /one HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_null(header(&r, "Connection"));
	free(r.body);
	send_str(c, "GET /two HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	json_t *j = body_json(&r);
	assert_string_equal(jstr(j, "path"), "/two");
	json_decref(j);
	free(r.body);
	/* HEAD: the length, no body; 204: neither. Framing stays intact. */
	send_str(c, "HEAD /head HTTP/1.1\r\n\r\nGET /empty HTTP/1.1\r\n\r\n");
	assert_true(read_until(c, "HTTP/1.1 204"));
	/* the head is the status line and the headers every response has */
	static const char no_content[] = "HTTP/1.1 204 No Content\r\n" SERVER_SECURITY_HEADERS "\r\n";
	assert_true(read_until(c, no_content));
	assert_non_null(find_in(c, "Content-Length: "));
	char *second = find_in(c, no_content);
	assert_memory_equal(second - 4, "\r\n\r\n", 4);
	consume(c, (size_t)(second - c->buf) + strlen(no_content));
	/* Connection: close is honoured: answered, then closed. */
	send_str(c, "GET /three HTTP/1.1\r\nConnection: close\r\n\r\n"
		 "GET /ignored HTTP/1.1\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(header(&r, "Connection"), "close");
	free(r.body);
	assert_true(at_eof(c));
	client_free(c);
}

static void test_http10(void **state)
{
	struct fixture *fx = *state;
	struct client *c = client_unix(fx);
	struct resp r;

	send_str(c, "GET /old HTTP/1.0\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(header(&r, "Connection"), "close");
	free(r.body);
	assert_true(at_eof(c));
	client_free(c);

	c = client_unix(fx);
	send_str(c, "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_string_equal(header(&r, "Connection"), "keep-alive");
	free(r.body);
	send_str(c, "GET /again HTTP/1.0\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	free(r.body);
	assert_true(at_eof(c));
	client_free(c);
}

static void test_pipelined_in_order(void **state)
{
	struct fixture *fx = *state;
	struct client *c = client_unix(fx);
	struct resp r;
	const char *want[] = { "ms=80&tag=1", "ms=40&tag=2", "ms=0&tag=3" };

	/* Answered last-first by the handler, delivered first-first. */
	send_str(c, "GET /delay?ms=80&tag=1 HTTP/1.1\r\n\r\n"
		 "GET /delay?ms=40&tag=2 HTTP/1.1\r\n\r\n"
		 "GET /delay?ms=0&tag=3 HTTP/1.1\r\n\r\n");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(read_response(c, &r), 0);
		assert_int_equal(r.status, 200);
		json_t *j = body_json(&r);
		assert_string_equal(jstr(j, "query"), want[i]);
		json_decref(j);
		free(r.body);
	}
	fx_lock(fx);
	assert_string_equal(fx->fired, "321");
	fx_unlock(fx);
	client_free(c);
}

static void test_body_too_large(void **state)
{
	struct fixture *fx = *state;
	struct client *c = client_unix(fx);
	struct resp r;
	char req[256];

	snprintf(req, sizeof(req), "POST /big HTTP/1.1\r\nContent-Length: %d"
		 "\r\n\r\n", SERVER_MAX_BODY + 1);
	send_str(c, req);
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 413);
	assert_string_equal(header(&r, "Connection"), "close");
	assert_string_equal(error_code(&r), "too_large");
	free(r.body);
	assert_true(at_eof(c));
	client_free(c);

	/* The daemon keeps serving. */
	roundtrip(fx, "GET /after HTTP/1.1\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	free(r.body);
}

static void test_headers_too_large(void **state)
{
	struct fixture *fx = *state;
	struct client *c = client_unix(fx);
	struct resp r;
	struct buf req = { 0 };

	buf_puts(&req, "GET /x HTTP/1.1\r\nX-Big: ");
	for (int i = 0; i < SERVER_MAX_HEADER + 10; i++)
		buf_puts(&req, "a");
	buf_puts(&req, "\r\n\r\n");
	send_all(c, req.data, req.len);
	buf_free(&req);
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 431);
	assert_string_equal(error_code(&r), "headers_too_large");
	free(r.body);
	assert_true(at_eof(c));
	client_free(c);
}

static void test_garbage(void **state)
{
	struct fixture *fx = *state;
	struct client *c = client_unix(fx);
	struct resp r;

	send_str(c, "HELLO\x01 there\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 400);
	assert_string_equal(error_code(&r), "bad_request");
	free(r.body);
	assert_true(at_eof(c));
	client_free(c);

	/* A good request before the garbage is still answered, first. */
	c = client_unix(fx);
	send_str(c, "GET /fine HTTP/1.1\r\n\r\nGET /%zz HTTP/1.1\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	free(r.body);
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 400);
	free(r.body);
	assert_true(at_eof(c));
	client_free(c);
}

static void test_chunked_refused(void **state)
{
	struct fixture *fx = *state;
	struct resp r;

	roundtrip(fx, "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "1\r\na\r\n0\r\n\r\n", &r);
	assert_int_equal(r.status, 411);
	assert_string_equal(error_code(&r), "length_required");
	free(r.body);
}

static void test_duplicate_key_refused(void **state)
{
	struct fixture *fx = *state;
	struct resp r;

	roundtrip(fx, "POST /x HTTP/1.1\r\nIdempotency-Key: a\r\n"
		  "Idempotency-Key: b\r\nContent-Length: 0\r\n\r\n", &r);
	assert_int_equal(r.status, 400);
	free(r.body);
}

static void test_socket_mode(void **state)
{
	struct fixture *fx = *state;
	struct stat st;

	assert_int_equal(stat(fx->sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0666);
}

static void test_stream(void **state)
{
	struct fixture *fx = *state;
	struct client *c = client_unix(fx);
	struct resp r;

	send_str(c, "GET /stream HTTP/1.1\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(header(&r, "Transfer-Encoding"), "chunked");
	assert_string_equal(header(&r, "Content-Type"), "application/x-ndjson");
	assert_int_equal(r.body_len, 6);
	assert_memory_equal(r.body, "a\nb\nc\n", 6);
	free(r.body);
	assert_int_equal(wait_int(fx, &fx->stream_closes, 1), 1);
	/* The connection is still usable after the stream ended. */
	send_str(c, "GET /next HTTP/1.1\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	free(r.body);
	client_free(c);
	usleep(20000);
	fx_lock(fx);
	assert_int_equal(fx->stream_closes, 1);
	fx_unlock(fx);
}

static void test_stream_client_leaves(void **state)
{
	struct fixture *fx = *state;
	struct client *c = client_unix(fx);

	send_str(c, "GET /follow HTTP/1.1\r\n\r\n");
	assert_true(read_until(c, "first\n"));
	client_free(c);
	assert_int_equal(wait_int(fx, &fx->follow_closes, 1), 1);
	usleep(20000);
	fx_lock(fx);
	assert_int_equal(fx->follow_closes, 1);
	fx_unlock(fx);
}

static void test_stream_slow_consumer(void **state)
{
	struct fixture *fx = *state;
	struct client *c = client_unix(fx);
	struct resp r;

	/* Never read: the server must give up, not buffer without end. */
	send_str(c, "GET /slow HTTP/1.1\r\n\r\n");
	assert_true(wait_bool(fx, &fx->slow_done));
	fx_lock(fx);
	assert_int_equal(fx->slow_rc, -ENOBUFS);
	assert_int_equal(fx->slow_again_rc, -EPIPE);
	assert_true(fx->slow_writes < 200);
	fx_unlock(fx);
	assert_int_equal(wait_int(fx, &fx->slow_closes, 1), 1);
	/* The loop was not blocked and serves others. */
	roundtrip(fx, "GET /other HTTP/1.1\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	free(r.body);
	client_free(c);
	fx_lock(fx);
	assert_int_equal(fx->slow_closes, 1);
	fx_unlock(fx);
}

static void test_shutdown_pending(void **state)
{
	struct fixture *fx = *state;
	struct client *c = client_unix(fx);
	struct resp r;

	/* The handler starts shutdown, then answers 50 ms later. */
	send_str(c, "GET /shutdown HTTP/1.1\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(header(&r, "Connection"), "close");
	free(r.body);
	assert_true(at_eof(c));
	client_free(c);
	assert_true(wait_bool(fx, &fx->done_called));
	fx_lock(fx);
	assert_true(fx->done_after_reply);
	fx_unlock(fx);
}

static void test_shutdown_ends_streams(void **state)
{
	struct fixture *fx = *state;
	struct client *c = client_unix(fx);
	struct resp r;

	send_str(c, "GET /follow HTTP/1.1\r\n\r\n");
	assert_true(read_until(c, "first\n"));
	fx_lock(fx);
	uv_async_send(&fx->stop);
	fx_unlock(fx);
	/* The stream is finished properly: the terminating chunk arrives. */
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.body_len, 6);
	free(r.body);
	assert_true(at_eof(c));
	client_free(c);
	assert_int_equal(wait_int(fx, &fx->follow_closes, 1), 1);
	assert_true(wait_bool(fx, &fx->done_called));
}

static void test_too_many_connections(void **state)
{
	struct fixture *fx = *state;
	struct client *cs[SERVER_MAX_CONNS];
	struct resp r;

	for (int i = 0; i < SERVER_MAX_CONNS; i++)
		cs[i] = client_unix(fx);
	/* A round trip on the last one: all of them have been accepted. */
	send_str(cs[SERVER_MAX_CONNS - 1], "GET /x HTTP/1.1\r\n\r\n");
	assert_int_equal(read_response(cs[SERVER_MAX_CONNS - 1], &r), 0);
	json_t *j = body_json(&r);
	assert_int_equal(json_integer_value(json_object_get(j, "connections")),
			 SERVER_MAX_CONNS);
	json_decref(j);
	free(r.body);

	struct client *extra = client_unix(fx);
	assert_int_equal(read_response(extra, &r), 0);
	assert_int_equal(r.status, 503);
	assert_string_equal(error_code(&r), "too_many_connections");
	free(r.body);
	assert_true(at_eof(extra));
	client_free(extra);
	for (int i = 0; i < SERVER_MAX_CONNS; i++)
		client_free(cs[i]);
}

static void test_tcp(void **state)
{
	struct fixture *fx = *state;
	struct client *c = client_tcp(fx);
	struct resp r;
	char prefix[32];

	send_str(c, "GET /tcp HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	json_t *j = body_json(&r);
	assert_false(json_is_true(json_object_get(j, "peer_unix")));
	snprintf(prefix, sizeof(prefix), "127.0.0.1:");
	assert_memory_equal(jstr(j, "peer_addr"), prefix, strlen(prefix));
	json_decref(j);
	free(r.body);
	client_free(c);
}

/* Listening, on a loop run by the test thread itself. */

static void count_done(void *arg)
{
	(*(int *)arg)++;
}

static void noop_handler(void *arg, struct server_req *r)
{
	server_reply(r, 204, NULL, NULL, 0);
}

/* Refused at accept: 503 too_many_connections naming the budget, closed. */
static void expect_refused(struct client *c, const char *limit)
{
	struct resp r;

	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 503);
	json_t *j = body_json(&r);
	json_t *e = json_object_get(j, "error");
	assert_string_equal(jstr(e, "code"), "too_many_connections");
	assert_string_equal(jstr(json_object_get(e, "details"), "limit"), limit);
	json_decref(j);
	free(r.body);
	assert_true(at_eof(c));
}

/* The connection answers a request. */
static void expect_served(struct client *c)
{
	struct resp r;

	send_str(c, "GET /x HTTP/1.1\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	free(r.body);
}

static void test_unix_budgets(void **state)
{
	struct fixture *fx = *state;
	struct client *cs[6];

	/* not an admin: 3 connections, the 4th is refused */
	for (int i = 0; i < 3; i++) {
		cs[i] = client_unix(fx);
		expect_served(cs[i]);
	}
	struct client *extra = client_unix(fx);
	expect_refused(extra, "connections_per_uid");
	client_free(extra);
	/* an admin is bound only by the socket's budget */
	fx_lock(fx);
	fx->admin = true;
	fx_unlock(fx);
	for (int i = 3; i < 6; i++) {
		cs[i] = client_unix(fx);
		expect_served(cs[i]);
	}
	extra = client_unix(fx);
	expect_refused(extra, "connections");
	client_free(extra);
	/* a place freed is a place for the next */
	client_free(cs[0]);
	usleep(50000);
	cs[0] = client_unix(fx);
	expect_served(cs[0]);
	for (int i = 0; i < 6; i++)
		client_free(cs[i]);
}

static void test_tcp_budgets(void **state)
{
	struct fixture *fx = *state;
	struct client *a1 = client_tcp(fx), *a2 = client_tcp(fx);

	expect_served(a1);
	expect_served(a2);
	/* a third from the same address */
	struct client *a3 = client_tcp(fx);
	expect_refused(a3, "tcp_connections_per_peer");
	client_free(a3);
	/* another address gets the listener's last place, then none */
	struct client *b1 = client_tcp_from(fx, "127.0.0.2");
	expect_served(b1);
	struct client *b2 = client_tcp_from(fx, "127.0.0.3");
	expect_refused(b2, "tcp_connections");
	client_free(b2);
	/* TCP's budget is not the Unix socket's */
	fx_lock(fx);
	fx->admin = true;
	fx_unlock(fx);
	struct client *u = client_unix(fx);
	expect_served(u);
	client_free(u);
	client_free(a1);
	client_free(a2);
	client_free(b1);
}

static void test_first_byte_timeout(void **state)
{
	struct fixture *fx = *state;
	struct client *silent = client_tcp(fx), *talks = client_tcp(fx);
	struct timespec t0, t1;

	expect_served(talks);	/* in time: served, and kept */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_true(at_eof(silent));	/* closed by the server */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) +
		   (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(s < 2.0);
	expect_served(talks);
	client_free(silent);
	client_free(talks);
	/* the Unix socket has no such timer */
	fx_lock(fx);
	fx->admin = true;
	fx_unlock(fx);
	struct client *u = client_unix(fx);
	usleep(500000);
	expect_served(u);
	client_free(u);
}

static void test_stream_budget(void **state)
{
	struct fixture *fx = *state;
	struct client *a = client_unix(fx), *b = client_unix(fx);
	struct resp r;

	send_str(a, "GET /follow HTTP/1.1\r\n\r\n");
	assert_true(read_until(a, "first\n"));
	/* a second stream is refused, and its on_close still comes */
	send_str(b, "GET /follow HTTP/1.1\r\n\r\n");
	assert_int_equal(read_response(b, &r), 0);
	assert_int_equal(r.status, 503);
	assert_string_equal(error_code(&r), "too_many_connections");
	free(r.body);
	assert_int_equal(wait_int(fx, &fx->follow_closes, 1), 1);
	expect_served(b);	/* the connection itself goes on */
	client_free(a);
	assert_int_equal(wait_int(fx, &fx->follow_closes, 2), 2);
	/* the place is free again */
	send_str(b, "GET /follow HTTP/1.1\r\n\r\n");
	assert_true(read_until(b, "first\n"));
	client_free(b);
	assert_int_equal(wait_int(fx, &fx->follow_closes, 3), 3);
}

/* The echo's count of open connections, from a fresh one. */
static int connections_now(struct fixture *fx)
{
	struct resp r;

	roundtrip(fx, "GET /count HTTP/1.1\r\n\r\n", &r);
	json_t *j = body_json(&r);
	int n = (int)json_integer_value(json_object_get(j, "connections"));
	json_decref(j);
	free(r.body);
	return n;
}

static void test_output_limit(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct buf req = { 0 };
	int rcvbuf = 4096, handled = 0;

	/* 2000 pipelined requests of 16 KiB answers each, none read */
	c = xcalloc(1, sizeof(*c));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx->sock);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	client_timeouts(c->fd);
	for (int i = 0; i < 2000; i++)
		buf_puts(&req, "GET /big HTTP/1.1\r\n\r\n");
	send_all(c, req.data, req.len);
	buf_free(&req);
	usleep(200000);
	/* the server stopped parsing once 64 KiB waited on top of what the
	 * kernel holds, and serves others meanwhile */
	assert_int_equal(connections_now(fx), 2);
	fx_lock(fx);
	handled = fx->big_handled;
	fx_unlock(fx);
	assert_true(handled > 0);
	assert_true(handled < 200);
	/* the write timeout (500 ms) closes the non-reader */
	for (int i = 0; i < 40 && connections_now(fx) > 1; i++)
		usleep(100000);
	assert_int_equal(connections_now(fx), 1);
	fx_lock(fx);
	assert_int_equal(fx->big_handled, handled);
	fx_unlock(fx);
	client_free(c);
}

static void test_output_resumes(void **state)
{
	struct fixture *fx = *state;
	struct client *c = client_unix(fx);
	struct buf req = { 0 };
	struct resp r;

	/* a client that reads late gets every answer, in order */
	for (int i = 0; i < 100; i++)
		buf_puts(&req, "GET /big HTTP/1.1\r\n\r\n");
	buf_puts(&req, "GET /last HTTP/1.1\r\n\r\n");
	send_all(c, req.data, req.len);
	buf_free(&req);
	usleep(100000);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(read_response(c, &r), 0);
		assert_int_equal(r.status, 200);
		assert_int_equal(r.body_len, 16384);
		free(r.body);
	}
	assert_int_equal(read_response(c, &r), 0);
	json_t *j = body_json(&r);
	assert_string_equal(jstr(j, "path"), "/last");
	json_decref(j);
	free(r.body);
	client_free(c);
}

/*
 * A reply written partly at once and partly queued (the socket takes a
 * part of 1 MiB) arrives whole and in order, byte for byte, and so does
 * the one behind it.
 */
static void test_partial_write(void **state)
{
	struct fixture *fx = *state;
	struct client *c = client_unix(fx);
	struct resp r;

	send_str(c, "GET /pattern HTTP/1.1\r\n\r\nGET /last HTTP/1.1\r\n\r\n");
	usleep(100000);	/* the server has written what the socket took, and queued the rest */
	/* read through the client's 64 KiB buffer, checking as it comes */
	assert_true(read_until(c, "\r\n\r\n"));
	char *end = find_in(c, "\r\n\r\n");
	assert_non_null(strstr(c->buf, "HTTP/1.1 200 "));
	assert_non_null(memmem(c->buf, (size_t)(end - c->buf) + 2, "Content-Length: 1048576\r\n", 25));
	consume(c, (size_t)(end - c->buf) + 4);
	for (size_t at = 0, n = 1 << 20; at < n;) {
		size_t part = n - at < 32768 ? n - at : 32768;
		assert_true(need(c, part));
		for (size_t i = 0; i < part; i++)
			if (c->buf[i] != (char)((at + i) % 251))
				fail_msg("byte %zu of the reply is wrong", at + i);
		consume(c, part);
		at += part;
	}
	assert_int_equal(read_response(c, &r), 0);
	json_t *j = body_json(&r);
	assert_string_equal(jstr(j, "path"), "/last");
	json_decref(j);
	free(r.body);
	client_free(c);
}

/* A request the server must refuse with 400 and then close. */
static void expect_bad_request(struct fixture *fx, const char *req,
			       int answered_first)
{
	struct client *c = client_unix(fx);
	struct resp r;

	send_str(c, req);
	for (int i = 0; i < answered_first; i++) {
		assert_int_equal(read_response(c, &r), 0);
		assert_int_equal(r.status, 200);
		free(r.body);
	}
	assert_int_equal(read_response(c, &r), 0);
	if (r.status != 400)
		print_error("request %s: status %d\n", req, r.status);
	assert_int_equal(r.status, 400);
	assert_string_equal(error_code(&r), "bad_request");
	free(r.body);
	assert_true(at_eof(c));
	client_free(c);
}

static void test_smuggling_shapes(void **state)
{
	struct fixture *fx = *state;
	struct resp r;

	/* http-parser reads these; a proxy in front may read them otherwise */
	expect_bad_request(fx, "POST /x HTTP/1.1\r\nContent-Length : 5\r\n\r\n"
			   "hello", 0);
	expect_bad_request(fx, "GET /x HTTP/1.1\r\nX\tY: 1\r\n\r\n", 0);
	expect_bad_request(fx, "GET /x HTTP/1.1\nHost: x\n\n", 0);
	expect_bad_request(fx, "GET /x HTTP/1.1\r\nHost: x\n\r\n", 0);
	expect_bad_request(fx, "GET /x HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n", 0);
	expect_bad_request(fx, "GET /x HTTP/1.1\r\nX-A: 1\r\n\tfolded\r\n\r\n", 0);
	expect_bad_request(fx, "GET /x HTTP/1.1\r\n Host: x\r\n\r\n", 0);
	expect_bad_request(fx, "GET /x HTTP/1.1\r\nX-A: 1\rX-B: 2\r\n\r\n", 0);
	/* behind a good request, which is answered first */
	expect_bad_request(fx, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\n\n", 1);
	expect_bad_request(fx, "POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\n"
			   "{}GET /b HTTP/1.1\r\nX: 1\r\n y\r\n\r\n", 1);

	/* what is fine stays fine: an empty line before a request, an empty
	 * value, a body with bare LFs, a head split across reads */
	roundtrip(fx, "\r\nGET /ok HTTP/1.1\r\nX-Empty:\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	free(r.body);
	roundtrip(fx, "POST /ok HTTP/1.1\r\nContent-Length: 4\r\n\r\na\nb\n", &r);
	assert_int_equal(r.status, 200);
	free(r.body);
	struct client *c = client_unix(fx);
	send_str(c, "GET /split HTTP/1.1\r");
	usleep(20000);
	send_str(c, "\nHost: x\r\n\r");
	usleep(20000);
	send_str(c, "\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	free(r.body);
	client_free(c);
}

static void test_stream_then_garbage(void **state)
{
	struct fixture *fx = *state;
	struct client *c = client_unix(fx);
	struct resp r;

	/* the stream ends so that the 400 can be said, then the close */
	send_str(c, "GET /follow HTTP/1.1\r\n\r\n\x01garbage\r\n\r\n");
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 6);
	free(r.body);
	assert_int_equal(read_response(c, &r), 0);
	assert_int_equal(r.status, 400);
	assert_string_equal(error_code(&r), "bad_request");
	free(r.body);
	assert_true(at_eof(c));
	client_free(c);
	assert_int_equal(wait_int(fx, &fx->follow_closes, 1), 1);

	/* the same when the garbage comes later */
	c = client_unix(fx);
	send_str(c, "GET /follow HTTP/1.1\r\n\r\n");
	assert_true(read_until(c, "first\n"));
	send_str(c, "\x01garbage\r\n\r\n");
	assert_true(read_until(c, "HTTP/1.1 400"));
	client_free(c);
	assert_int_equal(wait_int(fx, &fx->follow_closes, 2), 2);
}

static void test_socket_access(void **state)
{
	char dir[] = "/tmp/gl-srv-XXXXXX", path[64], group[32];
	uv_loop_t loop;
	struct stat st;
	char *cause = NULL;
	int done = 0;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s", dir);
	snprintf(group, sizeof(group), "%u", (unsigned)getgid());
	assert_int_equal(uv_loop_init(&loop), 0);
	struct server *a = server_new(&loop, noop_handler, NULL);
	/* narrowed: the mode asked for, and the group (by number here) */
	assert_int_equal(server_listen_unix(a, path, 0600, group, &cause), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_gid, getgid());
	server_shutdown(a, count_done, &done);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(done, 1);

	/* a group that does not exist is an error, before anything binds */
	struct server *b = server_new(&loop, noop_handler, NULL);
	assert_int_equal(server_listen_unix(b, path, 0660, "no-such-group-gl",
					    &cause), -ENOENT);
	assert_non_null(strstr(cause, "no-such-group-gl"));
	free(cause);
	assert_int_equal(access(path, F_OK), -1);
	server_shutdown(b, count_done, &done);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(done, 2);
	assert_int_equal(uv_loop_close(&loop), 0);
	rmdir(dir);
}

static void test_listen_rules(void **state)
{
	char dir[] = "/tmp/gl-srv-XXXXXX";
	char path[100], file[100];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uv_loop_t loop;
	char *cause = NULL;
	int done = 0, fd;
	struct stat st;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	snprintf(file, sizeof(file), "%s/plain", dir);
	assert_int_equal(uv_loop_init(&loop), 0);

	/* A socket file nobody listens on (a crashed daemon's) is replaced. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	struct server *a = server_new(&loop, noop_handler, NULL);
	assert_int_equal(server_listen_unix(a, path, SERVER_SOCKET_MODE, NULL, &cause), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0666);

	/* A live one is left alone. */
	struct server *b = server_new(&loop, noop_handler, NULL);
	assert_int_equal(server_listen_unix(b, path, SERVER_SOCKET_MODE, NULL, &cause), -EADDRINUSE);
	assert_non_null(strstr(cause, "another daemon is listening on"));
	free(cause);
	cause = NULL;
	assert_int_equal(stat(path, &st), 0);

	/* Not a socket: not ours to remove. */
	fd = open(file, O_CREAT | O_WRONLY, 0600);
	close(fd);
	assert_int_equal(server_listen_unix(b, file, SERVER_SOCKET_MODE, NULL, &cause), -EEXIST);
	free(cause);
	cause = NULL;
	assert_int_equal(access(file, F_OK), 0);
	unlink(file);

	/* TCP addresses (the grammar is hostport_parse(), as the config's). */
	const char *bad[] = { "nonsense", "1.2.3.4", "1.2.3.4:99999",
			      "1.2.3.4:", "::1:80", "[::1]80", "localhost",
			      "1.2.3.4:8x", "1.2.3:80", "*:80", "[nope]:80",
			      "a_b:80", "127.0.0.1:0" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(server_listen_tcp(b, bad[i], &cause), -EINVAL);
		assert_non_null(cause);
		free(cause);
		cause = NULL;
	}

	server_shutdown(a, count_done, &done);
	server_shutdown(b, count_done, &done);
	assert_int_equal(done, 0);	/* done is always asynchronous */
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(done, 2);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(uv_loop_close(&loop), 0);
	rmdir(dir);
}

/*
 * Listens on host (as the config writes it) at some free port; returns the
 * port, or a negative errno (the last bind's).
 */
static int listen_somewhere(uv_loop_t *loop, struct server *s, const char *host)
{
	int rc = -1;

	for (int i = 0; i < 50 && rc < 0; i++) {
		int port = 20000 + (int)(((unsigned)getpid() * 7919u +
					  (unsigned)i * 104729u + 17u) % 30000u);
		char *hp = xasprintf("%s:%d", host, port);
		char *cause = NULL;
		rc = server_listen_tcp(s, hp, &cause);
		free(hp);
		free(cause);
		if (rc == 0)
			return port;
		uv_run(loop, UV_RUN_NOWAIT);	/* the failed handle closes */
		if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT || rc == -EINVAL)
			break;			/* no use trying other ports */
	}
	return rc;
}

/* Whether a blocking connect to addr:port succeeds (the kernel accepts
 * into the backlog, so the loop need not run). */
static bool connects(int family, const char *addr, int port)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		assert_int_equal(inet_pton(AF_INET, addr, &in->sin_addr), 1);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in = (struct sockaddr_in6 *)&ss;
		in->sin6_family = AF_INET6;
		in->sin6_port = htons((uint16_t)port);
		assert_int_equal(inet_pton(AF_INET6, addr, &in->sin6_addr), 1);
		len = sizeof(*in);
	}
	bool ok = connect(fd, (struct sockaddr *)&ss, len) == 0;
	close(fd);
	return ok;
}

/*
 * listen: localhost:PORT passed --check-config and then the daemon refused
 * to start. Now the config's rule (hostport_loopback) and the bind are one
 * parse: localhost is loopback, and it binds 127.0.0.1.
 */
static void test_listen_names(void **state)
{
	uv_loop_t loop;
	struct hostport hp;
	int done = 0;

	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(hostport_parse("localhost:8470", &hp), 0);
	assert_true(hostport_loopback(&hp));	/* what the config checks */

	struct server *a = server_new(&loop, noop_handler, NULL);
	int port = listen_somewhere(&loop, a, "localhost");
	assert_true(port > 0);
	assert_true(connects(AF_INET, "127.0.0.1", port));

	/* IPv6 loopback, where the machine has it */
	struct server *b = server_new(&loop, noop_handler, NULL);
	int port6 = listen_somewhere(&loop, b, "[::1]");
	if (port6 > 0)
		assert_true(connects(AF_INET6, "::1", port6));
	else
		assert_true(port6 == -EADDRNOTAVAIL || port6 == -EAFNOSUPPORT);

	/* a name that does not resolve is refused with a cause, no handle left */
	struct server *c = server_new(&loop, noop_handler, NULL);
	char *cause = NULL;
	assert_int_equal(server_listen_tcp(c, "no-such-host.invalid:8470", &cause),
			 -ENOENT);
	assert_non_null(strstr(cause, "no-such-host.invalid"));
	free(cause);

	server_shutdown(a, count_done, &done);
	server_shutdown(b, count_done, &done);
	server_shutdown(c, count_done, &done);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(done, 3);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* The log */

static json_t *read_log_lines(const char *path, size_t *n)
{
	FILE *f = fopen(path, "r");
	json_t *lines = json_array();
	char line[4096];

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		json_error_t err;
		json_t *j = json_loads(line, JSON_REJECT_DUPLICATES, &err);
		if (j == NULL)
			fail_msg("not JSON: %s (%s)", line, err.text);
		json_array_append_new(lines, j);
	}
	fclose(f);
	*n = json_array_size(lines);
	return lines;
}

static void test_log(void **state)
{
	char dir[] = "/tmp/gl-log-XXXXXX";
	char path[128], moved[128];
	char *cause = NULL;
	enum log_level lv;
	size_t n;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/d.log", dir);
	snprintf(moved, sizeof(moved), "%s/d.log.1", dir);

	assert_int_equal(log_level_parse("warn", &lv), 0);
	assert_int_equal(lv, LOG_WARN);
	assert_int_equal(log_level_parse("loud", &lv), -EINVAL);
	assert_string_equal(log_level_name(LOG_DEBUG), "debug");
	assert_int_equal(log_open("/nonexistent/dir/x.log", LOG_INFO, &cause),
			 -ENOENT);
	assert_non_null(cause);
	free(cause);

	assert_int_equal(log_open(path, LOG_INFO, &cause), 0);
	log_event(LOG_INFO, "started", "{s:s,s:i}", "socket", "/x", "n", 3);
	log_event(LOG_DEBUG, "hidden", NULL);
	log_event(LOG_ERROR, "broke", "{s:s}", "event", "no override");
	log_json(LOG_WARN, "obj", json_pack("{s:s}", "consortium", "lg"));
	log_set_level(LOG_ERROR);
	log_event(LOG_WARN, "hidden_too", NULL);
	assert_false(log_enabled(LOG_WARN));
	log_set_level(LOG_INFO);

	json_t *lines = read_log_lines(path, &n);
	assert_int_equal(n, 3);
	json_t *l0 = json_array_get(lines, 0);
	const char *ts = jstr(l0, "ts");
	assert_non_null(ts);
	/* 2026-01-16T00:00:00.123Z */
	assert_int_equal(strlen(ts), 24);
	assert_int_equal(ts[10], 'T');
	assert_int_equal(ts[19], '.');
	assert_int_equal(ts[23], 'Z');
	assert_string_equal(jstr(l0, "level"), "info");
	assert_string_equal(jstr(l0, "event"), "started");
	assert_string_equal(jstr(l0, "socket"), "/x");
	assert_int_equal(json_integer_value(json_object_get(l0, "n")), 3);
	/* The fixed keys come first and are not overridden. */
	const char *first = json_object_iter_key(json_object_iter(l0));
	assert_string_equal(first, "ts");
	assert_string_equal(jstr(json_array_get(lines, 1), "event"), "broke");
	assert_string_equal(jstr(json_array_get(lines, 1), "level"), "error");
	assert_string_equal(jstr(json_array_get(lines, 2), "consortium"), "lg");
	json_decref(lines);

	/* logrotate moves the file; reopen starts a new one. */
	assert_int_equal(rename(path, moved), 0);
	log_event(LOG_INFO, "before_reopen", NULL);
	assert_int_equal(log_reopen(), 0);
	log_event(LOG_INFO, "after_reopen", NULL);
	lines = read_log_lines(moved, &n);
	assert_int_equal(n, 4);
	assert_string_equal(jstr(json_array_get(lines, 3), "event"),
			    "before_reopen");
	json_decref(lines);
	lines = read_log_lines(path, &n);
	assert_int_equal(n, 1);
	assert_string_equal(jstr(json_array_get(lines, 0), "event"),
			    "after_reopen");
	json_decref(lines);

	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0007, 0);	/* 0640, less the umask */

	assert_int_equal(log_open("-", LOG_WARN, &cause), 0);
	assert_int_equal(log_reopen(), 0);	/* stderr: nothing to do */
	unlink(path);
	unlink(moved);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http10, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_in_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_body_too_large, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_headers_too_large, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chunked_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_key_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_client_leaves, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_stream_slow_consumer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_pending, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_ends_streams,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_connections,
						setup_admin, teardown),
		cmocka_unit_test_setup_teardown(test_tcp, setup_tcp, teardown),
		cmocka_unit_test_setup_teardown(test_unix_budgets, setup_budgets,
						teardown),
		cmocka_unit_test_setup_teardown(test_tcp_budgets, setup_budgets,
						teardown),
		cmocka_unit_test_setup_teardown(test_first_byte_timeout,
						setup_budgets, teardown),
		cmocka_unit_test_setup_teardown(test_stream_budget, setup_budgets,
						teardown),
		cmocka_unit_test_setup_teardown(test_output_limit, setup_output,
						teardown),
		cmocka_unit_test_setup_teardown(test_partial_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_resumes, setup_output,
						teardown),
		cmocka_unit_test_setup_teardown(test_smuggling_shapes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_stream_then_garbage, setup,
						teardown),
		cmocka_unit_test(test_socket_access),
		cmocka_unit_test(test_listen_rules),
		cmocka_unit_test(test_listen_names),
		cmocka_unit_test(test_log),
	};
	char *cause = NULL;

	/* As the daemon must: a write to a departed client is an error, not
	 * a signal. */
	signal(SIGPIPE, SIG_IGN);
	/* Limit hits log at warn; keep the test output readable. */
	log_open("-", LOG_ERROR, &cause);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
