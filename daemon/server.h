/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/1.1 server on libuv: a Unix-socket listener (mode 0666 unless
 * told otherwise: roles come from the peer's credentials on every request)
 * and an optional TCP listener; requests parsed by http-parser (keep-alive,
 * pipelining answered in order, limits on request line, headers, body and
 * the output queued for a client that does not read, header, idle, write
 * and first-byte timeouts, a connection budget per listener, per TCP peer
 * and per non-admin uid, and one for streams). Each complete request is
 * handed to one handler; the handler answers now or later (after a commit)
 * with server_reply(), or opens a stream (journal follow). Only server.c
 * touches sockets.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#define SERVER_MAX_HEADER 16384		/* request line + headers, bytes */
#define SERVER_MAX_BODY (1 << 20)	/* bytes */
#define SERVER_MAX_CONNS 256	/* default budget of each listener */
#define SERVER_MAX_PER_PEER 16	/* TCP connections of one address */
#define SERVER_MAX_PER_UID 32	/* Unix connections of a non-admin uid */
#define SERVER_MAX_STREAMS 64
#define SERVER_FIRST_BYTE_TIMEOUT_MS 5000
#define SERVER_HEADER_TIMEOUT_MS 10000
#define SERVER_IDLE_TIMEOUT_MS 60000
#define SERVER_WRITE_TIMEOUT_MS 30000
#define SERVER_MAX_OUTPUT (1 << 20)	/* bytes queued to a client */
#define SERVER_STREAM_MAX_QUEUE (1 << 20)	/* bytes queued to a follower */
#define SERVER_SOCKET_MODE 0666

/*
 * Sent with every response, JSON included: the web page's policy (its own
 * script and style only, nothing inline, no frame, no form, requests to
 * this origin only), no type sniffing, no referrer, and no caching of
 * answers that carry a team's figures.
 */
#define SERVER_CSP "default-src 'none'; script-src 'self'; style-src 'self'; " \
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; " \
	"frame-ancestors 'none'"
#define SERVER_SECURITY_HEADERS \
	"Content-Security-Policy: " SERVER_CSP "\r\n" \
	"X-Content-Type-Options: nosniff\r\n" \
	"Referrer-Policy: no-referrer\r\n" \
	"Cache-Control: no-store\r\n"

struct http_request {
	const char *method;	/* "GET", "POST", ... */
	char *path;		/* decoded path, no query */
	char *query;		/* raw query string without '?', or NULL */
	char *idempotency_key;	/* Idempotency-Key header, or NULL */
	char *authorization;	/* Authorization header, or NULL */
	char *content_type;	/* Content-Type header, or NULL */
	char *body;		/* NUL-terminated, may be empty */
	size_t body_len;

	/* who is on the other end */
	bool peer_unix;		/* over the Unix socket: uid/gid are known */
	uid_t peer_uid;
	gid_t peer_gid;
	pid_t peer_pid;
	char peer_addr[64];	/* "unix" or "127.0.0.1:53122" */
};

struct server;
struct server_req;

typedef void (*server_handler)(void *arg, struct server_req *r);

/*
 * What the server allows each client. A budget is checked when a
 * connection is accepted; one over it is answered 503 too_many_connections
 * and closed. A connection whose queued output reaches max_output is no
 * longer read or parsed until half of it has left; if that takes longer
 * than write_ms it is closed.
 */
struct server_limits {
	unsigned unix_max;		/* connections on the Unix socket */
	unsigned unix_max_per_uid;	/* of one uid that is not an admin */
	unsigned tcp_max;		/* connections on the TCP listener */
	unsigned tcp_max_per_peer;	/* of one remote address */
	unsigned max_streams;		/* open streams, both listeners */
	uint64_t first_byte_ms;		/* TCP: from accept to the first byte */
	uint64_t header_ms;		/* from a request's first byte to its end */
	uint64_t idle_ms;		/* between requests */
	uint64_t write_ms;		/* output over max_output, not draining */
	size_t max_output;		/* bytes queued to one connection */
	/* Whether uid is an admin, whom unix_max_per_uid does not bound;
	 * NULL: no one is. Asked only when a uid reaches its budget. */
	bool (*is_admin)(void *arg, uid_t uid, gid_t gid);
	void *is_admin_arg;
};

/* The defaults above (SERVER_MAX_CONNS ...), with no admin callback. */
void server_limits_default(struct server_limits *l);

/* The handler is called once per complete request. Limits: the defaults. */
struct server *server_new(uv_loop_t *loop, server_handler handler, void *arg);

/* Replaces the limits; they apply to connections accepted from now on
 * (budgets, first-byte timeout) and to every connection's next timer. */
void server_set_limits(struct server *s, const struct server_limits *l);

/*
 * Listens on a Unix socket at path (a stale socket file is replaced). The
 * socket is made mode mode (SERVER_SOCKET_MODE: anyone may connect, the
 * role of each request comes from its peer's credentials) and, unless
 * group is NULL, given group group (a name or a number). Returns 0 or a
 * negative errno with *cause malloc'd.
 */
int server_listen_unix(struct server *s, const char *path, unsigned mode,
		       const char *group, char **cause);
/* Listens on "HOST:PORT". Same contract. */
int server_listen_tcp(struct server *s, const char *hostport, char **cause);

/*
 * Listens on a socket systemd passed (socket activation): a Unix one stands
 * for daemon.socket (and is not removed at shutdown: systemd owns it), a
 * TCP one for daemon.listen. Same contract as above.
 */
int server_listen_fd(struct server *s, int fd, char **cause);
/* Whether a Unix / TCP listener is open (passed in, or bound). */
bool server_listening_unix(const struct server *s);
bool server_listening_tcp(const struct server *s);

/*
 * Stops accepting, lets requests already handed out finish (their replies
 * are still sent), closes streams and idle connections, then calls done.
 * The server is freed after done returns.
 */
void server_shutdown(struct server *s, void (*done)(void *arg), void *arg);

/* Counters for /v1/status. */
uint64_t server_requests_total(const struct server *s);
unsigned server_connections(const struct server *s);

const struct http_request *server_req_http(const struct server_req *r);

/*
 * Answers r with a complete response; body is taken (freed by the server),
 * may be NULL for an empty body. Replies of a connection go out in request
 * order. After this call r is no longer valid. Safe after the client left.
 */
void server_reply(struct server_req *r, int status, const char *content_type,
		  char *body, size_t len);

/*
 * Streaming: answers with status and chunked transfer encoding and keeps
 * the request open. server_stream_write() queues a chunk; it returns
 * -ENOBUFS and closes the stream when the client does not keep up (more
 * than SERVER_STREAM_MAX_QUEUE bytes queued), -EPIPE when the client has
 * gone. server_stream_end() finishes it. on_close (may be NULL) is called
 * once when the stream ends for any reason; r is invalid after it. When
 * max_streams streams are open already, r is answered 503
 * too_many_connections instead and the stream is born ended: writes
 * return -EPIPE and on_close follows from the loop, as for any stream.
 */
void server_stream_begin(struct server_req *r, int status,
			 const char *content_type,
			 void (*on_close)(void *arg), void *arg);
int server_stream_write(struct server_req *r, const char *data, size_t len);
void server_stream_end(struct server_req *r);
