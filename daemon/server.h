/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/1.1 server on libuv: a Unix-socket listener (mode 0660) and an
 * optional TCP listener; requests parsed by http-parser (keep-alive,
 * pipelining answered in order, limits on request line, headers and body,
 * header and idle timeouts, a connection limit). Each complete request is
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
#define SERVER_MAX_CONNS 256
#define SERVER_HEADER_TIMEOUT_MS 10000
#define SERVER_IDLE_TIMEOUT_MS 60000
#define SERVER_STREAM_MAX_QUEUE (1 << 20)	/* bytes queued to a follower */

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

/* The handler is called once per complete request. */
struct server *server_new(uv_loop_t *loop, server_handler handler, void *arg);

/*
 * Listens on a Unix socket at path (a stale socket file is replaced; the
 * socket is made mode 0660). Returns 0 or a negative errno with *cause
 * malloc'd.
 */
int server_listen_unix(struct server *s, const char *path, char **cause);
/* Listens on "HOST:PORT". Same contract. */
int server_listen_tcp(struct server *s, const char *hostport, char **cause);

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
 * once when the stream ends for any reason; r is invalid after it.
 */
void server_stream_begin(struct server_req *r, int status,
			 const char *content_type,
			 void (*on_close)(void *arg), void *arg);
int server_stream_write(struct server_req *r, const char *data, size_t len);
void server_stream_end(struct server_req *r);
