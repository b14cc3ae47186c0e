/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 on libuv streams, parsed by http-parser. Each connection keeps a
 * FIFO of requests: a request joins it when it is completely parsed, is
 * handed to the handler at once (even while earlier ones wait for a
 * commit), and its response leaves only when every earlier response has
 * left, which is what pipelining requires. Errors the server detects itself
 * (malformed input, limits) become a response queued behind the requests
 * already parsed, after which the connection closes. Input is parsed one
 * request at a time: before the next one, the connection's queue and its
 * unsent output are measured, and over a limit the bytes already read wait
 * (and nothing more is read) until the client has taken half of it; so a
 * client that pipelines and never reads costs a bounded amount of memory,
 * and a timer closes it. A request head is checked byte by byte before
 * http-parser sees it (CRLF line ends only, no obs-fold), since the parser
 * tolerates both and a proxy in front may read them differently. A
 * request the handler holds outlives its connection: if the client
 * leaves, the request is detached and its reply is dropped. Stream
 * on_close callbacks are always delivered from the loop (a zero timer),
 * never from inside a server_* call, so that a caller iterating its
 * followers may write to them safely. Handles live inside their owner,
 * which is freed in the last close callback; shutdown completes only once
 * every handle is closed and every request handed out has been answered.
 */
#include "daemon/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <http_parser.h>
#include <jansson.h>

#include "daemon/error.h"
#include "daemon/grammar.h"
#include "daemon/log.h"
#include "daemon/util.h"

/* Requests parsed but unanswered before we stop reading a connection. */
#define PIPELINE_MAX 64
/* Connections the kernel queues before an accept: a burst of clients
 * (cron, a cluster's jobs) must wait there, not get EAGAIN as with 128. The
 * kernel caps it at net.core.somaxconn. */
#define LISTEN_BACKLOG SOMAXCONN
#define READ_BUF_SIZE 16384
/* Method, spaces, version and CRLFs of the request line, roughly. */
#define REQUEST_LINE_OVERHEAD 16

enum req_state {
	REQ_PARSED,		/* queued, not yet handed to the handler */
	REQ_PENDING,		/* the handler holds it */
	REQ_STREAMING,		/* a stream is open */
	REQ_DONE,		/* the response is complete (maybe unsent) */
};

struct conn;

struct server_req {
	struct server *server;
	struct conn *conn;	/* NULL once detached from its connection */
	struct server_req *next;	/* in the connection's queue */
	struct server_req *defer_next;	/* in the server's on_close list */
	enum req_state state;
	bool in_queue;
	bool held;		/* the handler may still use it */
	bool close_after;	/* the connection closes after this response */
	bool http10;
	struct buf out;		/* bytes not yet handed to uv_write */
	void (*on_close)(void *arg);
	void *on_close_arg;
	struct http_request http;
};

enum timer_mode {
	TIMER_NONE,
	TIMER_FIRST_BYTE,	/* TCP: accepted, nothing received yet */
	TIMER_HEADER,		/* a request has begun */
	TIMER_IDLE,		/* nothing in flight */
	TIMER_WRITE,		/* reading paused: the output is over the limit */
	TIMER_DRAIN,		/* the final flush before close */
};

/* Where the check of a request head stands (head_scan()). */
enum scan_state {
	SCAN_START,		/* before the request line: empty lines allowed */
	SCAN_START_CR,		/* a CR there */
	SCAN_LINE,		/* within a line */
	SCAN_CR,		/* a CR ending a line */
	SCAN_LINE_START,	/* the start of a header line */
	SCAN_END_CR,		/* a CR at the start of a line: the head's end */
	SCAN_BODY,		/* the head has ended: nothing to check */
};

struct conn {
	struct server *server;
	struct conn *prev, *next;
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_pipe_t pipe;
		uv_tcp_t tcp;
	} h;
	uv_timer_t timer;
	uv_timer_t kick;	/* resumes parsing buffered input, from the loop */
	uv_shutdown_t shutdown_req;
	int open_handles;	/* freed when it drops to 0 */
	enum timer_mode timer_mode;

	bool is_unix;		/* accepted on the Unix socket */
	bool counted;		/* holds a place in its listener's budget */
	bool got_byte;		/* something has been received */
	bool reading;		/* uv_read_start() in effect */
	bool closing;		/* uv_close() called */
	bool shutting;		/* uv_shutdown() in flight */
	bool draining;		/* close once the queue is empty */
	bool no_more;		/* read no more requests */
	bool backpressure;	/* parsing paused: too much queued */
	bool stop_after;	/* the request just parsed closes the connection */
	enum scan_state scan;
	size_t in_off, in_len;	/* bytes of rbuf read but not yet parsed */

	/* The request being parsed. */
	http_parser parser;
	struct server_req *cur;
	bool in_message;
	bool message_begun;	/* since the last timer arm */
	size_t header_bytes;
	struct buf url, field, value;
	bool last_was_value;
	bool expect_continue;
	enum error_code err_code;	/* set when a callback refuses the request */
	char *err_message;

	struct server_req *head, *tail;
	unsigned nqueued;

	bool peer_unix;
	uid_t peer_uid;
	gid_t peer_gid;
	pid_t peer_pid;
	char peer_addr[64];
	char peer_host[INET6_ADDRSTRLEN];	/* TCP: the address, no port */

	char rbuf[READ_BUF_SIZE];
};

struct server {
	uv_loop_t *loop;
	server_handler handler;
	void *arg;

	uv_pipe_t unix_listener;
	bool unix_inited;	/* a handle, once initialised, is never reused */
	bool unix_open;
	char *unix_path;
	uv_tcp_t tcp_listener;
	bool tcp_inited;
	bool tcp_open;

	struct server_limits limits;
	struct conn *conns;
	unsigned nconns;
	unsigned n_unix, n_tcp;	/* counted against each listener's budget */
	unsigned nstreams;	/* open streams */
	unsigned open_handles;	/* listeners and connections not yet freed */
	unsigned live_reqs;	/* held by the handler */
	uint64_t requests_total;

	/* Delivers stream on_close callbacks outside server_* calls. */
	uv_timer_t defer_timer;
	struct server_req *defer_head, *defer_tail;

	bool shutting_down;
	bool finishing;
	void (*done)(void *arg);
	void *done_arg;
};

static const http_parser_settings parser_settings;

static void conn_flush(struct conn *c);
static void conn_close(struct conn *c);
static void conn_arm_timer(struct conn *c);
static void conn_maybe_resume(struct conn *c);
static void server_maybe_done(struct server *s);

/* Requests */

static struct server_req *req_new(struct conn *c)
{
	struct server_req *r = xcalloc(1, sizeof(*r));
	r->server = c->server;
	r->conn = c;
	r->http.peer_unix = c->peer_unix;
	r->http.peer_uid = c->peer_uid;
	r->http.peer_gid = c->peer_gid;
	r->http.peer_pid = c->peer_pid;
	memcpy(r->http.peer_addr, c->peer_addr, sizeof(r->http.peer_addr));
	return r;
}

static void req_free(struct server_req *r)
{
	free(r->http.path);
	free(r->http.query);
	free(r->http.idempotency_key);
	free(r->http.authorization);
	free(r->http.content_type);
	free(r->http.body);
	buf_free(&r->out);
	free(r);
}

/* Frees r once neither a queue nor the handler refers to it. */
static void req_release(struct server_req *r)
{
	if (!r->in_queue && !r->held)
		req_free(r);
}

static void conn_enqueue(struct conn *c, struct server_req *r)
{
	r->in_queue = true;
	if (c->tail != NULL)
		c->tail->next = r;
	else
		c->head = r;
	c->tail = r;
	c->nqueued++;
}

static void defer_timer_cb(uv_timer_t *t)
{
	struct server *s = t->data;
	struct server_req *r = s->defer_head;

	/* Callbacks may end more streams: they go to a fresh list. */
	s->defer_head = s->defer_tail = NULL;
	while (r != NULL) {
		struct server_req *next = r->defer_next;
		r->held = false;
		s->live_reqs--;
		if (r->on_close != NULL)
			r->on_close(r->on_close_arg);
		req_release(r);
		r = next;
	}
	server_maybe_done(s);
}

/* The stream is over for whatever reason; on_close follows from the loop. */
static void stream_finish(struct server_req *r)
{
	struct server *s = r->server;

	if (r->state == REQ_STREAMING)
		s->nstreams--;
	r->state = REQ_DONE;
	r->defer_next = NULL;
	if (s->defer_tail != NULL)
		s->defer_tail->defer_next = r;
	else
		s->defer_head = r;
	s->defer_tail = r;
	uv_timer_start(&s->defer_timer, defer_timer_cb, 0, 0);
}

/* Responses */

static void response_head(struct buf *b, const struct server_req *r,
			  int status, const char *content_type, bool close)
{
	buf_printf(b, "HTTP/1.1 %d %s\r\n", status,
		   http_status_str((enum http_status)status));
	if (content_type != NULL)
		buf_printf(b, "Content-Type: %s\r\n", content_type);
	buf_puts(b, SERVER_SECURITY_HEADERS);
	if (close)
		buf_puts(b, "Connection: close\r\n");
	else if (r->http10)
		buf_puts(b, "Connection: keep-alive\r\n");
}

/* Puts a complete error response, from the error table, into r->out. */
static void response_error(struct server_req *r, enum error_code code,
			   const char *message, json_t *details, bool close)
{
	char *body = error_body(code, message, details);
	size_t len = strlen(body);

	response_head(&r->out, r, error_status(code), "application/json", close);
	buf_printf(&r->out, "Content-Length: %zu\r\n\r\n", len);
	buf_append(&r->out, body, len);
	free(body);
}

/*
 * Whether this response is the connection's last: asked for by the client,
 * or the connection is draining and nothing follows it in the queue.
 */
static bool reply_closes(const struct server_req *r)
{
	const struct conn *c = r->conn;

	return r->close_after ||
	       ((c->draining || c->server->shutting_down) && r->next == NULL);
}

/* Writes */

struct write_req {
	uv_write_t req;
	char *data;
};

static void write_cb(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct conn *c = req->handle->data;

	free(w->data);
	free(w);
	if (status < 0 && status != UV_ECANCELED) {
		log_event(LOG_DEBUG, "http_conn_error", "{s:s,s:s,s:s}",
			  "peer", c->peer_addr, "op", "write",
			  "error", uv_strerror(status));
		conn_close(c);
		return;
	}
	/* The client took some output: it may have room for more. */
	if (status == 0 && !c->closing && c->backpressure) {
		conn_maybe_resume(c);
		conn_arm_timer(c);
	}
}

/*
 * Takes data. What the socket takes now is written at once, when nothing
 * is queued before it: a reply that fits costs one write(2) and no write
 * request, whose completion would also make libuv re-arm the poll of the
 * socket (an epoll_ctl per reply). The rest is queued for libuv to write.
 */
static int conn_write(struct conn *c, char *data, size_t len)
{
	size_t done = 0;
	int rc;

	if (uv_stream_get_write_queue_size(&c->h.stream) == 0) {
		uv_buf_t now = uv_buf_init(data, (unsigned)len);
		rc = uv_try_write(&c->h.stream, &now, 1);
		if (rc >= 0)
			done = (size_t)rc;
		else if (rc != UV_EAGAIN) {
			free(data);
			return rc;
		}
	}
	if (done == len) {
		free(data);
		return 0;
	}
	struct write_req *w = xmalloc(sizeof(*w));
	uv_buf_t b = uv_buf_init(data + done, (unsigned)(len - done));

	w->data = data;
	rc = uv_write(&w->req, &c->h.stream, &b, 1, write_cb);
	if (rc < 0) {
		free(data);
		free(w);
	}
	return rc;
}

/* Connections */

static void conn_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct server *s = c->server;

	if (--c->open_handles > 0)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->nconns--;
	if (c->counted) {
		if (c->is_unix)
			s->n_unix--;
		else
			s->n_tcp--;
	}
	s->open_handles--;
	buf_free(&c->url);
	buf_free(&c->field);
	buf_free(&c->value);
	free(c->err_message);
	free(c);
	server_maybe_done(s);
}

static void conn_drop_partial(struct conn *c)
{
	if (c->cur != NULL) {
		req_free(c->cur);
		c->cur = NULL;
	}
	c->in_message = false;
}

/*
 * Closes now: queued responses are dropped, requests the handler holds are
 * detached (their replies go nowhere), open streams end.
 */
static void conn_close(struct conn *c)
{
	struct server_req *r = c->head;

	if (c->closing)
		return;
	c->closing = true;
	c->head = c->tail = NULL;
	c->nqueued = 0;
	while (r != NULL) {
		struct server_req *next = r->next;
		r->next = NULL;
		r->in_queue = false;
		r->conn = NULL;
		if (r->state == REQ_STREAMING)
			stream_finish(r);
		req_release(r);
		r = next;
	}
	conn_drop_partial(c);
	uv_read_stop(&c->h.stream);
	c->reading = false;
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
	uv_close((uv_handle_t *)&c->kick, conn_handle_closed);
	uv_close(&c->h.handle, conn_handle_closed);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
	conn_close(req->data);
}

/* Closes after the queued writes have left (or the drain timer fires). */
static void conn_shutdown(struct conn *c)
{
	int rc;

	if (c->closing || c->shutting)
		return;
	c->shutting = true;
	uv_read_stop(&c->h.stream);
	c->reading = false;
	c->shutdown_req.data = c;
	rc = uv_shutdown(&c->shutdown_req, &c->h.stream, shutdown_cb);
	if (rc < 0)
		conn_close(c);
	else
		conn_arm_timer(c);
}

static void conn_stop_reading(struct conn *c)
{
	c->no_more = true;
	uv_read_stop(&c->h.stream);
	c->reading = false;
	conn_drop_partial(c);
}

/*
 * Queues an error made by the server itself; the connection then closes.
 * A stream ahead of it would hold the answer back for ever: it is ended.
 */
static void conn_fail_details(struct conn *c, enum error_code code,
			      const char *message, json_t *details)
{
	struct server_req *r = req_new(c);

	for (struct server_req *q = c->head; q != NULL; q = q->next) {
		if (q->state == REQ_STREAMING) {
			buf_puts(&q->out, "0\r\n\r\n");
			stream_finish(q);
		}
	}
	r->state = REQ_DONE;
	r->close_after = true;
	response_error(r, code, message, details, true);
	conn_stop_reading(c);
	conn_enqueue(c, r);
}

static void conn_fail(struct conn *c, enum error_code code, const char *message)
{
	conn_fail_details(c, code, message, NULL);
}

/* Bytes of responses queued to c: in libuv's write queue or not yet in it. */
static size_t conn_output(const struct conn *c)
{
	size_t n = uv_stream_get_write_queue_size(&c->h.stream);

	for (const struct server_req *r = c->head; r != NULL; r = r->next)
		n += r->out.len;
	return n;
}

/* Whether the next request must wait: too many unanswered, or unread. */
static bool conn_over_limit(const struct conn *c)
{
	return c->nqueued >= PIPELINE_MAX ||
	       conn_output(c) >= c->server->limits.max_output;
}

/* Whether a paused connection may go on: half of each limit is free. */
static bool conn_below_half(const struct conn *c)
{
	return c->nqueued < PIPELINE_MAX / 2 &&
	       conn_output(c) <= c->server->limits.max_output / 2;
}

static void timer_cb(uv_timer_t *t)
{
	struct conn *c = t->data;
	const struct server_limits *l = &c->server->limits;

	switch (c->timer_mode) {
	case TIMER_HEADER:
		log_event(LOG_WARN, "http_limit", "{s:s,s:s,s:I}",
			  "limit", "header_timeout", "peer", c->peer_addr,
			  "ms", (json_int_t)l->header_ms);
		break;
	case TIMER_FIRST_BYTE:
		log_event(LOG_INFO, "http_limit", "{s:s,s:s,s:I}",
			  "limit", "first_byte_timeout", "peer", c->peer_addr,
			  "ms", (json_int_t)l->first_byte_ms);
		break;
	case TIMER_WRITE:
		log_event(LOG_WARN, "http_limit", "{s:s,s:s,s:I,s:I}",
			  "limit", "write_timeout", "peer", c->peer_addr,
			  "ms", (json_int_t)l->write_ms,
			  "queued", (json_int_t)conn_output(c));
		break;
	default:
		log_event(LOG_DEBUG, "http_timeout", "{s:s,s:s}",
			  "peer", c->peer_addr,
			  "kind", c->timer_mode == TIMER_IDLE ? "idle" : "drain");
		break;
	}
	conn_close(c);
}

static void conn_arm_timer(struct conn *c)
{
	const struct server_limits *l = &c->server->limits;
	enum timer_mode want = TIMER_NONE;
	uint64_t ms = 0;

	if (c->closing)
		return;
	if (c->shutting) {
		want = TIMER_DRAIN;
		ms = l->header_ms;
	} else if (c->backpressure &&
		   conn_output(c) > l->max_output / 2) {
		/* the client does not take its answers */
		want = TIMER_WRITE;
		ms = l->write_ms;
	} else if (!c->is_unix && !c->got_byte && !c->no_more) {
		want = TIMER_FIRST_BYTE;
		ms = l->first_byte_ms;
	} else if (c->in_message && !c->no_more) {
		want = TIMER_HEADER;
		ms = l->header_ms;
	} else if (c->head == NULL && !c->draining && !c->no_more) {
		want = TIMER_IDLE;
		ms = l->idle_ms;
	}
	/* A new request restarts the header clock from its first byte. */
	if (want == c->timer_mode && !(want == TIMER_HEADER && c->message_begun))
		return;
	c->message_begun = false;
	c->timer_mode = want;
	if (want == TIMER_NONE)
		uv_timer_stop(&c->timer);
	else
		uv_timer_start(&c->timer, timer_cb, ms, 0);
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *b);

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct conn *c = h->data;

	*b = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

/* Sends every response at the head of the queue that is ready, in order. */
static void conn_flush(struct conn *c)
{
	struct server_req *r;
	int rc;

	if (c->closing || c->shutting)
		return;
	while ((r = c->head) != NULL) {
		if (r->out.len > 0) {
			size_t len = r->out.len;
			rc = conn_write(c, buf_take(&r->out), len);
			if (rc < 0) {
				log_event(LOG_DEBUG, "http_conn_error",
					  "{s:s,s:s,s:s}", "peer", c->peer_addr,
					  "op", "write", "error", uv_strerror(rc));
				conn_close(c);
				return;
			}
		}
		if (r->state != REQ_DONE)
			break;
		c->head = r->next;
		if (c->head == NULL)
			c->tail = NULL;
		c->nqueued--;
		r->next = NULL;
		r->in_queue = false;
		r->conn = NULL;
		if (r->close_after)
			c->draining = true;
		req_release(r);
	}
	if (c->head == NULL && c->draining) {
		conn_shutdown(c);
		return;
	}
	conn_maybe_resume(c);
	conn_arm_timer(c);
}

/* Hands every parsed request to the handler, oldest first. */
static void conn_dispatch(struct conn *c)
{
	struct server *s = c->server;

	while (!c->closing && !s->shutting_down) {
		struct server_req *r = c->head;
		while (r != NULL && r->state != REQ_PARSED)
			r = r->next;
		if (r == NULL)
			break;
		r->state = REQ_PENDING;
		r->held = true;
		s->live_reqs++;
		s->requests_total++;
		s->handler(s->arg, r);
	}
}

static void conn_eof(struct conn *c)
{
	struct server_req *r;

	conn_stop_reading(c);
	/* A streaming client leaves by closing: that is how we learn it. */
	for (r = c->head; r != NULL; r = r->next)
		if (r->state == REQ_STREAMING)
			break;
	if (c->head == NULL || r != NULL) {
		conn_close(c);
		return;
	}
	/* A half-closed client still gets the answers it asked for. */
	c->draining = true;
	conn_arm_timer(c);
}

/* Reads while on, and nothing read is waiting to be parsed. */
static void conn_read(struct conn *c, bool on)
{
	on = on && c->in_len == 0 && !c->no_more && !c->shutting;
	if (on == c->reading || c->closing)
		return;
	if (!on) {
		uv_read_stop(&c->h.stream);
		c->reading = false;
	} else if (uv_read_start(&c->h.stream, alloc_cb, read_cb) == 0) {
		c->reading = true;
	} else {
		conn_close(c);
	}
}

/*
 * Checks the request head in data (up to its end, or all of data) as it
 * arrives, carrying the state across reads. Returns NULL, or what is wrong.
 */
static const char *head_scan(struct conn *c, const char *data, size_t len)
{
	for (size_t i = 0; i < len && c->scan != SCAN_BODY; i++) {
		char ch = data[i];
		bool cr = ch == '\r', lf = ch == '\n';

		switch (c->scan) {
		case SCAN_START:	/* empty lines before a request are ignored */
			c->scan = cr ? SCAN_START_CR : lf ? SCAN_BODY : SCAN_LINE;
			if (lf)
				return "a line ends with a bare LF; lines end with CRLF";
			break;
		case SCAN_START_CR:
		case SCAN_CR:
		case SCAN_END_CR:
			if (!lf)
				return "a CR not followed by LF";
			c->scan = c->scan == SCAN_START_CR ? SCAN_START :
				  c->scan == SCAN_CR ? SCAN_LINE_START : SCAN_BODY;
			break;
		case SCAN_LINE_START:
			if (ch == ' ' || ch == '\t')
				return "a header line continued on the next (obs-fold)";
			/* fall through */
		case SCAN_LINE:
			if (lf)
				return "a line ends with a bare LF; lines end with CRLF";
			if (cr)
				c->scan = c->scan == SCAN_LINE_START ? SCAN_END_CR : SCAN_CR;
			else
				c->scan = SCAN_LINE;
			break;
		case SCAN_BODY:
			break;
		}
	}
	return NULL;
}

/* Runs the parser over the buffered input, up to the end of one request. */
static void conn_parse_one(struct conn *c)
{
	const char *data = c->rbuf + c->in_off, *why;
	size_t n;
	enum http_errno e;

	if ((why = head_scan(c, data, c->in_len)) != NULL) {
		log_event(LOG_DEBUG, "http_bad_request", "{s:s,s:s}",
			  "peer", c->peer_addr, "error", why);
		conn_fail(c, ERR_BAD_REQUEST, why);
		return;
	}
	n = http_parser_execute(&c->parser, &parser_settings, data, c->in_len);
	c->in_off += n;
	c->in_len -= n;
	e = HTTP_PARSER_ERRNO(&c->parser);
	if (e == HPE_PAUSED) {
		/* A request is complete (on_message_complete() pauses). */
		http_parser_pause(&c->parser, 0);
		/* Connection: close was asked for; what follows is ignored. */
		if (c->stop_after)
			conn_stop_reading(c);
	} else if (c->err_code != ERR_NONE) {
		conn_fail(c, c->err_code, c->err_message);
	} else if (e == HPE_HEADER_OVERFLOW) {
		log_event(LOG_WARN, "http_limit", "{s:s,s:s}",
			  "limit", "header_bytes", "peer", c->peer_addr);
		conn_fail(c, ERR_HEADERS_TOO_LARGE, "request headers are too large");
	} else if (e != HPE_OK || c->in_len != 0) {
		char *msg = xasprintf("malformed request: %s",
				      http_errno_description(e));
		log_event(LOG_DEBUG, "http_bad_request", "{s:s,s:s}",
			  "peer", c->peer_addr, "error", http_errno_name(e));
		conn_fail(c, ERR_BAD_REQUEST, msg);
		free(msg);
	}
}

/*
 * Parses the buffered input a request at a time, handing each to the
 * handler as it completes, until the input is used up (then it reads
 * more), the connection is over a limit (then it waits for
 * conn_maybe_resume()), or it reads no more.
 */
static void conn_parse(struct conn *c)
{
	while (!c->closing && !c->shutting && !c->no_more) {
		if (conn_over_limit(c)) {
			c->backpressure = true;
			break;
		}
		if (c->in_len == 0)
			break;
		conn_parse_one(c);
		conn_dispatch(c);
	}
	if (c->closing)
		return;
	conn_read(c, !c->backpressure);
	conn_flush(c);
}

static void kick_cb(uv_timer_t *t)
{
	conn_parse(t->data);
}

/*
 * Lets a paused connection go on once half of each limit is free. Never
 * parses from here (callers may be inside the handler): buffered input
 * waits for the loop's next turn.
 */
static void conn_maybe_resume(struct conn *c)
{
	if (!c->backpressure || c->closing || c->shutting || c->no_more ||
	    c->draining || !conn_below_half(c))
		return;
	c->backpressure = false;
	if (c->in_len > 0)
		uv_timer_start(&c->kick, kick_cb, 0, 0);
	else
		conn_read(c, true);
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = st->data;

	if (nread == 0 || c->closing)
		return;
	if (nread < 0) {
		if (nread == UV_EOF) {
			conn_eof(c);
		} else {
			log_event(LOG_DEBUG, "http_conn_error", "{s:s,s:s,s:s}",
				  "peer", c->peer_addr, "op", "read",
				  "error", uv_strerror((int)nread));
			conn_close(c);
		}
		return;
	}
	if (c->no_more)
		return;
	c->got_byte = true;
	c->in_off = (size_t)(b->base - c->rbuf);
	c->in_len = (size_t)nread;
	/* Reading stops there while bytes of rbuf wait: alloc_cb() hands
	 * rbuf out again only once they are parsed. */
	conn_parse(c);
}

/* Parser callbacks */

static int parse_error(struct conn *c, enum error_code code,
		       const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records why a callback refused the request; read_cb answers it. */
static int parse_error(struct conn *c, enum error_code code,
		       const char *fmt, ...)
{
	va_list ap;

	if (c->err_code == ERR_NONE) {
		c->err_code = code;
		va_start(ap, fmt);
		c->err_message = xvasprintf(fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int header_bytes(struct conn *c, size_t n)
{
	c->header_bytes += n;
	if (c->header_bytes <= SERVER_MAX_HEADER)
		return 0;
	log_event(LOG_WARN, "http_limit", "{s:s,s:s,s:i}", "limit",
		  "header_bytes", "peer", c->peer_addr, "max", SERVER_MAX_HEADER);
	return parse_error(c, ERR_HEADERS_TOO_LARGE,
			   "request line and headers exceed %d bytes",
			   SERVER_MAX_HEADER);
}

static int on_message_begin(http_parser *p)
{
	struct conn *c = p->data;

	conn_drop_partial(c);
	c->cur = req_new(c);
	c->in_message = true;
	c->message_begun = true;
	c->header_bytes = 0;
	c->url.len = c->field.len = c->value.len = 0;
	c->last_was_value = false;
	c->expect_continue = false;
	return header_bytes(c, REQUEST_LINE_OVERHEAD);
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	if (header_bytes(c, len) < 0)
		return -1;
	buf_append(&c->url, at, len);
	return 0;
}

/* Stores a finished header line if it is one we keep. */
static int finish_header(struct conn *c)
{
	static const struct {
		const char *name;
		size_t offset;
	} kept[] = {
		{ "Idempotency-Key", offsetof(struct http_request, idempotency_key) },
		{ "Authorization", offsetof(struct http_request, authorization) },
		{ "Content-Type", offsetof(struct http_request, content_type) },
	};
	const char *name = c->field.data != NULL ? c->field.data : "";
	const char *value = c->value.data != NULL ? c->value.data : "";
	int rc = 0;

	if (strcasecmp(name, "Expect") == 0) {
		c->expect_continue = strcasecmp(value, "100-continue") == 0;
		goto reset;
	}
	for (size_t i = 0; i < ARRAY_SIZE(kept); i++) {
		if (strcasecmp(name, kept[i].name) != 0)
			continue;
		char **slot = (char **)((char *)&c->cur->http + kept[i].offset);
		/* Two values would leave us guessing which one counts. */
		if (*slot != NULL) {
			rc = parse_error(c, ERR_BAD_REQUEST,
					 "duplicate %s header", kept[i].name);
			goto reset;
		}
		*slot = xstrndup(value, c->value.len);
		break;
	}
reset:
	c->field.len = c->value.len = 0;
	if (c->field.data != NULL)
		c->field.data[0] = '\0';
	if (c->value.data != NULL)
		c->value.data[0] = '\0';
	return rc;
}

/* RFC 9110's tchar: what a header name is made of. */
static bool is_tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') ||
	       (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	/* ": " and CRLF are not passed to us but count against the limit. */
	if (header_bytes(c, len + (c->last_was_value ? 0 : 4)) < 0)
		return -1;
	/* http-parser lets a space through ("Content-Length : 5"), which a
	 * proxy in front may read otherwise: refuse the request instead. */
	for (size_t i = 0; i < len; i++)
		if (!is_tchar(at[i]))
			return parse_error(c, ERR_BAD_REQUEST,
					   "a header name holds a character other than letters, digits and !#$%%&'*+-.^_`|~");
	if (c->last_was_value) {
		if (finish_header(c) < 0)
			return -1;
		c->last_was_value = false;
	}
	buf_append(&c->field, at, len);
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	if (header_bytes(c, len) < 0)
		return -1;
	c->last_was_value = true;
	buf_append(&c->value, at, len);
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct conn *c = p->data;
	struct http_request *h = &c->cur->http;
	struct http_parser_url u;

	if (c->last_was_value && finish_header(c) < 0)
		return -1;
	c->last_was_value = false;
	h->method = http_method_str((enum http_method)p->method);
	c->cur->http10 = p->http_major == 1 && p->http_minor == 0;

	http_parser_url_init(&u);
	if (c->url.len == 0 ||
	    http_parser_parse_url(c->url.data, c->url.len, 0, &u) != 0)
		return parse_error(c, ERR_BAD_REQUEST, "bad request target");
	if (u.field_set & (1 << UF_PATH)) {
		h->path = pct_decode(c->url.data + u.field_data[UF_PATH].off,
				      u.field_data[UF_PATH].len, false);
		if (h->path == NULL)
			return parse_error(c, ERR_BAD_REQUEST,
					   "bad percent-encoding in path");
	} else {
		h->path = xstrdup("/");
	}
	if (u.field_set & (1 << UF_QUERY))
		h->query = xstrndup(c->url.data + u.field_data[UF_QUERY].off,
				    u.field_data[UF_QUERY].len);

	if (p->flags & F_CHUNKED)
		return parse_error(c, ERR_LENGTH_REQUIRED,
				   "a request body needs Content-Length");
	if ((p->flags & F_CONTENTLENGTH) && p->content_length > SERVER_MAX_BODY) {
		log_event(LOG_WARN, "http_limit", "{s:s,s:s,s:I}", "limit",
			  "body_bytes", "peer", c->peer_addr,
			  "content_length", (json_int_t)p->content_length);
		return parse_error(c, ERR_TOO_LARGE,
				   "request body exceeds %d bytes",
				   SERVER_MAX_BODY);
	}
	/*
	 * curl waits a second for "100 Continue" before a larger body; send it
	 * unless an earlier response is still owed, which must go first.
	 */
	if (c->expect_continue && c->head == NULL && p->content_length > 0 &&
	    (p->flags & F_CONTENTLENGTH)) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		if (conn_write(c, xstrdup(cont), sizeof(cont) - 1) < 0)
			return parse_error(c, ERR_BAD_REQUEST,
					   "connection failed");
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	struct server_req *r = c->cur;

	/* Content-Length was checked; this only guards the invariant. */
	if (r->out.len + len > SERVER_MAX_BODY)
		return parse_error(c, ERR_TOO_LARGE, "request body too large");
	buf_append(&r->out, at, len);	/* out doubles as the body buffer */
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct conn *c = p->data;
	struct server_req *r = c->cur;

	r->http.body_len = r->out.len;
	/* buf_take() of an empty buf is not NUL-terminated: spell "" out. */
	r->http.body = r->out.len > 0 ? buf_take(&r->out) : xstrdup("");
	r->close_after = !http_should_keep_alive(p) || p->upgrade;
	r->state = REQ_PARSED;
	c->cur = NULL;
	c->in_message = false;
	conn_enqueue(c, r);
	/* One request at a time (conn_parse()); nothing after one that closes
	 * the connection is read. */
	c->stop_after = r->close_after;
	c->scan = SCAN_START;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* Listening */

static void peer_identify(struct conn *c, bool is_unix)
{
	if (is_unix) {
		struct ucred uc;
		socklen_t len = sizeof(uc);
		uv_os_fd_t fd;
		snprintf(c->peer_addr, sizeof(c->peer_addr), "unix");
		c->peer_uid = (uid_t)-1;
		c->peer_gid = (gid_t)-1;
		if (uv_fileno(&c->h.handle, &fd) == 0 &&
		    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0) {
			c->peer_unix = true;
			c->peer_uid = uc.uid;
			c->peer_gid = uc.gid;
			c->peer_pid = uc.pid;
		}
	} else {
		struct sockaddr_storage ss;
		int len = sizeof(ss);
		char ip[INET6_ADDRSTRLEN] = "?";
		unsigned port = 0;
		snprintf(c->peer_addr, sizeof(c->peer_addr), "unknown");
		if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss,
				       &len) != 0)
			return;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
			snprintf(c->peer_host, sizeof(c->peer_host), "%s", ip);
			port = ntohs(a->sin_port);
			snprintf(c->peer_addr, sizeof(c->peer_addr), "%s:%u",
				 ip, port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
			snprintf(c->peer_host, sizeof(c->peer_host), "%s", ip);
			port = ntohs(a->sin6_port);
			snprintf(c->peer_addr, sizeof(c->peer_addr), "[%s]:%u",
				 ip, port);
		}
	}
}

/*
 * Which budget a new connection would overdraw (NULL: none), with its
 * size in *max and the refusal's message in *message. The per-uid budget
 * asks whether the uid is an admin only once the uid has used it up.
 */
static const char *conn_budget(const struct conn *c, unsigned *max,
			       const char **message)
{
	const struct server *s = c->server;
	const struct server_limits *l = &s->limits;
	unsigned same = 0;

	*message = "too many connections";
	if (c->is_unix) {
		*max = l->unix_max;
		if (s->n_unix >= l->unix_max)
			return "connections";
		for (const struct conn *o = s->conns; o != NULL; o = o->next)
			if (o->counted && o->is_unix && o->peer_uid == c->peer_uid)
				same++;
		*max = l->unix_max_per_uid;
		*message = "too many connections of this user";
		if (same >= l->unix_max_per_uid &&
		    !(c->peer_unix && l->is_admin != NULL &&
		      l->is_admin(l->is_admin_arg, c->peer_uid, c->peer_gid)))
			return "connections_per_uid";
	} else {
		*max = l->tcp_max;
		if (s->n_tcp >= l->tcp_max)
			return "tcp_connections";
		for (const struct conn *o = s->conns; o != NULL; o = o->next)
			if (o->counted && !o->is_unix &&
			    strcmp(o->peer_host, c->peer_host) == 0)
				same++;
		*max = l->tcp_max_per_peer;
		*message = "too many connections from this address";
		if (same >= l->tcp_max_per_peer)
			return "tcp_connections_per_peer";
	}
	return NULL;
}

static void on_connection(uv_stream_t *ls, int status)
{
	struct server *s = ls->data;
	bool is_unix = ls->type == UV_NAMED_PIPE;
	struct conn *c;
	int rc;

	if (status < 0) {
		log_event(LOG_DEBUG, "http_conn_error", "{s:s,s:s}",
			  "op", "listen", "error", uv_strerror(status));
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->server = s;
	if (is_unix)
		uv_pipe_init(s->loop, &c->h.pipe, 0);
	else
		uv_tcp_init(s->loop, &c->h.tcp);
	uv_timer_init(s->loop, &c->timer);
	uv_timer_init(s->loop, &c->kick);
	c->h.handle.data = c;
	c->timer.data = c;
	c->kick.data = c;
	c->open_handles = 3;
	c->is_unix = is_unix;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	s->open_handles++;
	snprintf(c->peer_addr, sizeof(c->peer_addr), "unknown");

	rc = uv_accept(ls, &c->h.stream);
	if (rc < 0) {
		log_event(LOG_DEBUG, "http_conn_error", "{s:s,s:s}",
			  "op", "accept", "error", uv_strerror(rc));
		conn_close(c);
		return;
	}
	peer_identify(c, is_unix);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	const char *limit, *message;
	unsigned max;
	if ((limit = conn_budget(c, &max, &message)) != NULL) {
		log_event(LOG_WARN, "http_limit", "{s:s,s:s,s:i}", "limit",
			  limit, "peer", c->peer_addr, "max", (int)max);
		conn_fail_details(c, ERR_TOO_MANY_CONNECTIONS, message,
				  json_pack("{s:s,s:i}", "limit", limit,
					    "max", (int)max));
		conn_flush(c);
		return;
	}
	c->counted = true;
	if (is_unix)
		s->n_unix++;
	else
		s->n_tcp++;
	conn_read(c, true);
	conn_arm_timer(c);
}

static void listener_closed(uv_handle_t *h)
{
	struct server *s = h->data;

	/* After a failed listen the caller may try again (another port). */
	if (h == (uv_handle_t *)&s->unix_listener)
		s->unix_inited = false;
	else
		s->tcp_inited = false;
	s->open_handles--;
	server_maybe_done(s);
}

/*
 * A socket file left by a crashed daemon is removed; one a live daemon
 * answers on is not, or two daemons would share one ledger.
 */
static int unix_clear_stale(const char *path, char **cause)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, rc = 0;

	if (lstat(path, &st) < 0) {
		if (errno != ENOENT) {
			rc = -errno;
			*cause = xasprintf("cannot stat %s: %s", path,
					   strerror(errno));
		}
		goto out;
	}
	if (!S_ISSOCK(st.st_mode)) {
		rc = -EEXIST;
		*cause = xasprintf("%s exists and is not a socket", path);
		goto out;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		*cause = xasprintf("socket: %s", strerror(errno));
		goto out;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		rc = -EADDRINUSE;
		*cause = xasprintf("another daemon is listening on %s", path);
	} else if (errno != ECONNREFUSED) {
		/* EAGAIN: a live daemon with a full backlog; keep off it. */
		rc = -errno;
		*cause = xasprintf("cannot probe %s: %s", path, strerror(errno));
	} else if (unlink(path) < 0 && errno != ENOENT) {
		rc = -errno;
		*cause = xasprintf("cannot remove stale %s: %s", path,
				   strerror(errno));
	}
	close(fd);
out:
	return rc;
}

/* A group name or number, as the config gives it. */
static int group_lookup(const char *group, gid_t *gid, char **cause)
{
	struct group gr, *res = NULL;
	char buf[4096];
	int64_t n;
	int rc;

	rc = getgrnam_r(group, &gr, buf, sizeof(buf), &res);
	if (rc == 0 && res != NULL) {
		*gid = res->gr_gid;
		return 0;
	}
	if (i64_parse(group, &n) == 0 && n >= 0 && n < (int64_t)UINT32_MAX) {
		*gid = (gid_t)n;
		return 0;
	}
	*cause = xasprintf("no group '%s'%s%s", group, rc ? ": " : "",
			   rc ? strerror(rc) : "");
	return rc ? -rc : -ENOENT;
}

int server_listen_unix(struct server *s, const char *path, unsigned mode,
		       const char *group, char **cause)
{
	struct sockaddr_un sa;
	gid_t gid = (gid_t)-1;
	int rc;

	if (s->unix_inited || s->shutting_down) {
		rc = -EALREADY;
		*cause = xasprintf("already listening on a Unix socket");
		goto out;
	}
	if (strlen(path) >= sizeof(sa.sun_path)) {
		rc = -ENAMETOOLONG;
		*cause = xasprintf("socket path too long: %s", path);
		goto out;
	}
	if (group != NULL && (rc = group_lookup(group, &gid, cause)) < 0)
		goto out;
	rc = unix_clear_stale(path, cause);
	if (rc < 0)
		goto out;
	rc = uv_pipe_init(s->loop, &s->unix_listener, 0);
	if (rc < 0) {
		*cause = xasprintf("cannot listen on %s: %s", path,
				   uv_strerror(rc));
		goto out;
	}
	s->unix_listener.data = s;
	s->unix_inited = true;
	s->open_handles++;
	rc = uv_pipe_bind(&s->unix_listener, path);
	if (rc < 0) {
		*cause = xasprintf("cannot bind %s: %s", path, uv_strerror(rc));
		goto fail_bind;
	}
	/* Before listen(), so no one connects through the umask's mode. */
	if (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) {
		rc = -errno;
		*cause = xasprintf("cannot give %s to group %s: %s", path, group,
				   strerror(errno));
		goto fail_listen;
	}
	if (chmod(path, mode & 07777) < 0) {
		rc = -errno;
		*cause = xasprintf("cannot chmod %s: %s", path, strerror(errno));
		goto fail_listen;
	}
	rc = uv_listen((uv_stream_t *)&s->unix_listener, LISTEN_BACKLOG, on_connection);
	if (rc < 0) {
		*cause = xasprintf("cannot listen on %s: %s", path,
				   uv_strerror(rc));
		goto fail_listen;
	}
	s->unix_open = true;
	s->unix_path = xstrdup(path);
	char octal[8];
	snprintf(octal, sizeof(octal), "%04o", mode & 07777);
	log_event(LOG_INFO, "listening", "{s:s,s:s,s:s?}", "socket", path,
		  "mode", octal, "group", group);
	goto out;

fail_listen:
	unlink(path);
fail_bind:
	uv_close((uv_handle_t *)&s->unix_listener, listener_closed);
out:
	return rc;
}

int server_listen_tcp(struct server *s, const char *hostport, char **cause)
{
	struct sockaddr_storage ss;
	struct hostport hp;
	const char *why;
	int rc;

	if (s->tcp_inited || s->shutting_down) {
		rc = -EALREADY;
		*cause = xasprintf("already listening on TCP");
		goto out;
	}
	/* the config's parse, so what --check-config passed is what binds */
	rc = hostport_parse(hostport, &hp);
	if (rc < 0) {
		*cause = xasprintf("bad listen address %s: want IPV4:PORT, "
				   "[IPV6]:PORT or NAME:PORT", hostport);
		goto out;
	}
	rc = hostport_sockaddr(&hp, &ss, &why);
	if (rc < 0) {
		*cause = xasprintf("bad listen address %s: %s", hostport, why);
		goto out;
	}
	rc = uv_tcp_init(s->loop, &s->tcp_listener);
	if (rc < 0) {
		*cause = xasprintf("cannot listen on %s: %s", hostport,
				   uv_strerror(rc));
		goto out;
	}
	s->tcp_listener.data = s;
	s->tcp_inited = true;
	s->open_handles++;
	rc = uv_tcp_bind(&s->tcp_listener, (struct sockaddr *)&ss,
			 ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&s->tcp_listener, LISTEN_BACKLOG,
			       on_connection);
	if (rc < 0) {
		*cause = xasprintf("cannot listen on %s: %s", hostport,
				   uv_strerror(rc));
		goto fail_listen;
	}
	s->tcp_open = true;
	log_event(LOG_INFO, "listening", "{s:s}", "tcp", hostport);
	goto out;

fail_listen:
	uv_close((uv_handle_t *)&s->tcp_listener, listener_closed);
out:
	return rc;
}

/* Lifetime */

void server_limits_default(struct server_limits *l)
{
	*l = (struct server_limits){
		.unix_max = SERVER_MAX_CONNS,
		.unix_max_per_uid = SERVER_MAX_PER_UID,
		.tcp_max = SERVER_MAX_CONNS,
		.tcp_max_per_peer = SERVER_MAX_PER_PEER,
		.max_streams = SERVER_MAX_STREAMS,
		.first_byte_ms = SERVER_FIRST_BYTE_TIMEOUT_MS,
		.header_ms = SERVER_HEADER_TIMEOUT_MS,
		.idle_ms = SERVER_IDLE_TIMEOUT_MS,
		.write_ms = SERVER_WRITE_TIMEOUT_MS,
		.max_output = SERVER_MAX_OUTPUT,
	};
}

void server_set_limits(struct server *s, const struct server_limits *l)
{
	s->limits = *l;
}

struct server *server_new(uv_loop_t *loop, server_handler handler, void *arg)
{
	struct server *s = xcalloc(1, sizeof(*s));

	s->loop = loop;
	s->handler = handler;
	s->arg = arg;
	server_limits_default(&s->limits);
	uv_timer_init(loop, &s->defer_timer);
	s->defer_timer.data = s;
	return s;
}

static void server_freed(uv_handle_t *h)
{
	struct server *s = h->data;

	if (s->done != NULL)
		s->done(s->done_arg);
	free(s->unix_path);
	free(s);
}

static void server_maybe_done(struct server *s)
{
	if (!s->shutting_down || s->finishing)
		return;
	if (s->open_handles > 0 || s->live_reqs > 0 || s->defer_head != NULL)
		return;
	s->finishing = true;
	/* The last handle's close callback makes done always asynchronous. */
	uv_close((uv_handle_t *)&s->defer_timer, server_freed);
}

void server_shutdown(struct server *s, void (*done)(void *arg), void *arg)
{
	struct conn *c, *next;

	if (s->shutting_down)
		abort();	/* shut down twice: a caller's bug */
	s->shutting_down = true;
	s->done = done;
	s->done_arg = arg;
	if (s->unix_open) {
		uv_close((uv_handle_t *)&s->unix_listener, listener_closed);
		if (s->unix_path)	/* NULL: systemd's socket, not ours to remove */
			unlink(s->unix_path);
		s->unix_open = false;
	}
	if (s->tcp_open) {
		uv_close((uv_handle_t *)&s->tcp_listener, listener_closed);
		s->tcp_open = false;
	}
	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		if (c->closing)
			continue;
		conn_stop_reading(c);
		c->draining = true;
		/* Requests not yet handed out are dropped, streams ended. */
		struct server_req **pp = &c->head;
		c->tail = NULL;
		while (*pp != NULL) {
			struct server_req *r = *pp;
			if (r->state == REQ_PARSED) {
				*pp = r->next;
				c->nqueued--;
				req_free(r);
				continue;
			}
			if (r->state == REQ_STREAMING) {
				buf_puts(&r->out, "0\r\n\r\n");
				r->close_after = true;
				stream_finish(r);
			}
			c->tail = r;
			pp = &r->next;
		}
		conn_flush(c);
	}
	server_maybe_done(s);
}

uint64_t server_requests_total(const struct server *s)
{
	return s->requests_total;
}

unsigned server_connections(const struct server *s)
{
	return s->nconns;
}

const struct http_request *server_req_http(const struct server_req *r)
{
	return &r->http;
}

/* Replies and streams */

void server_reply(struct server_req *r, int status, const char *content_type,
		  char *body, size_t len)
{
	struct server *s = r->server;
	struct conn *c = r->conn;

	if (r->state != REQ_PENDING)
		abort();	/* answered twice, or a stream: a caller's bug */
	r->state = REQ_DONE;
	r->held = false;
	s->live_reqs--;
	if (c == NULL) {
		req_free(r);	/* the client left: nothing to send */
	} else {
		r->close_after = reply_closes(r);
		response_head(&r->out, r, status, content_type, r->close_after);
		/* 1xx, 204 and 304 carry neither a length nor a body. */
		if (status < 200 || status == 204 || status == 304)
			len = 0;
		else
			buf_printf(&r->out, "Content-Length: %zu\r\n", len);
		buf_puts(&r->out, "\r\n");
		/* A HEAD answer tells the length but never sends the body. */
		if (body != NULL && strcmp(r->http.method, "HEAD") != 0)
			buf_append(&r->out, body, len);
		conn_flush(c);	/* may free r */
	}
	free(body);
	server_maybe_done(s);
}

void server_stream_begin(struct server_req *r, int status,
			 const char *content_type,
			 void (*on_close)(void *arg), void *arg)
{
	struct server *s = r->server;

	if (r->state != REQ_PENDING)
		abort();
	r->on_close = on_close;
	r->on_close_arg = arg;
	if (s->nstreams >= s->limits.max_streams && r->conn != NULL) {
		log_event(LOG_WARN, "http_limit", "{s:s,s:s,s:i}", "limit",
			  "streams", "peer", r->conn->peer_addr,
			  "max", (int)s->limits.max_streams);
		r->state = REQ_DONE;
		r->close_after = reply_closes(r);
		response_error(r, ERR_TOO_MANY_CONNECTIONS,
			       "too many open streams",
			       json_pack("{s:s,s:i}", "limit", "streams", "max",
					 (int)s->limits.max_streams),
			       r->close_after);
		stream_finish(r);	/* on_close from the loop */
		conn_flush(r->conn);
		return;
	}
	r->state = REQ_STREAMING;
	s->nstreams++;
	if (r->conn == NULL) {
		stream_finish(r);	/* the client left already */
		return;
	}
	response_head(&r->out, r, status, content_type, r->close_after);
	buf_puts(&r->out, "Transfer-Encoding: chunked\r\n\r\n");
	conn_flush(r->conn);
}

int server_stream_write(struct server_req *r, const char *data, size_t len)
{
	struct conn *c = r->conn;
	size_t queued;
	int rc = 0;

	if (r->state != REQ_STREAMING || c == NULL) {
		rc = -EPIPE;
		goto out;
	}
	if (len == 0)		/* an empty chunk would end the stream */
		goto out;
	queued = uv_stream_get_write_queue_size(&c->h.stream) + r->out.len;
	if (queued + len > SERVER_STREAM_MAX_QUEUE) {
		log_event(LOG_WARN, "http_limit", "{s:s,s:s,s:I}", "limit",
			  "stream_queue", "peer", c->peer_addr,
			  "queued", (json_int_t)queued);
		conn_close(c);	/* also finishes this stream */
		rc = -ENOBUFS;
		goto out;
	}
	buf_printf(&r->out, "%zx\r\n", len);
	buf_append(&r->out, data, len);
	buf_puts(&r->out, "\r\n");
	conn_flush(c);
out:
	return rc;
}

void server_stream_end(struct server_req *r)
{
	if (r->state != REQ_STREAMING)
		return;		/* already dropped; on_close is on its way */
	if (r->conn == NULL) {
		stream_finish(r);
		return;
	}
	buf_puts(&r->out, "0\r\n\r\n");
	stream_finish(r);
	conn_flush(r->conn);
}

/* Socket activation */

/*
 * A listener handle initialised and opened on a passed descriptor (open_rc
 * is uv_pipe_open()'s or uv_tcp_open()'s result): counted, listening, or
 * closed again on failure.
 */
static int adopt(struct server *s, uv_stream_t *h, bool *inited, int open_rc)
{
	int rc = open_rc;

	h->data = s;
	*inited = true;
	s->open_handles++;
	if (rc == 0)
		rc = uv_listen(h, LISTEN_BACKLOG, on_connection);
	if (rc < 0)
		uv_close((uv_handle_t *)h, listener_closed);
	return rc;
}

int server_listen_fd(struct server *s, int fd, char **cause)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int rc;

	if (s->shutting_down) {
		*cause = xasprintf("shutting down");
		return -EALREADY;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		rc = -errno;
		*cause = xasprintf("passed descriptor %d is not a socket: %s", fd, strerror(errno));
		return rc;
	}
	if (ss.ss_family == AF_UNIX) {
		if (s->unix_inited) {
			*cause = xasprintf("passed descriptor %d: a second Unix socket", fd);
			return -EALREADY;
		}
		rc = uv_pipe_init(s->loop, &s->unix_listener, 0);
		if (rc == 0)
			rc = adopt(s, (uv_stream_t *)&s->unix_listener, &s->unix_inited,
				   uv_pipe_open(&s->unix_listener, fd));
		if (rc == 0) {
			s->unix_open = true;
			s->unix_path = NULL;
			log_event(LOG_INFO, "listening", "{s:s, s:i}", "socket", "systemd", "fd", fd);
		}
	} else if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
		if (s->tcp_inited) {
			*cause = xasprintf("passed descriptor %d: a second TCP socket", fd);
			return -EALREADY;
		}
		rc = uv_tcp_init(s->loop, &s->tcp_listener);
		if (rc == 0)
			rc = adopt(s, (uv_stream_t *)&s->tcp_listener, &s->tcp_inited,
				   uv_tcp_open(&s->tcp_listener, fd));
		if (rc == 0) {
			s->tcp_open = true;
			log_event(LOG_INFO, "listening", "{s:s, s:i}", "tcp", "systemd", "fd", fd);
		}
	} else {
		*cause = xasprintf("passed descriptor %d: not a Unix or TCP socket", fd);
		return -EAFNOSUPPORT;
	}
	if (rc < 0)
		*cause = xasprintf("cannot listen on passed descriptor %d: %s", fd, uv_strerror(rc));
	return rc;
}

bool server_listening_unix(const struct server *s)
{
	return s->unix_open;
}

bool server_listening_tcp(const struct server *s)
{
	return s->tcp_open;
}
