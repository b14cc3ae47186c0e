/* SPDX-License-Identifier: MIT */
/*
 * The HTTP client of the command-line tools (tools/client.c): a connection
 * to the daemon (struct cli), one request of the protocol put together by
 * field (struct req, named by daemon/proto.def), and the JSON helpers that
 * read its answers. Strings returned as char * are malloc'd; the caller
 * frees them.
 */
#ifndef GPULEDGER_TOOLS_CLIENT_H
#define GPULEDGER_TOOLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "daemon/proto.h"
#include "daemon/util.h"

#ifndef GPULEDGER_VERSION
#define GPULEDGER_VERSION "unknown"
#endif

#define DEFAULT_SOCKET "var/gpuledger.sock"
#define MAX_REPLY (64u << 20)		/* bytes of one JSON answer */
#define MAX_TOKEN_FILE 4096
#define REQUEST_TIMEOUT_S 300L		/* whole request, except --follow */

struct cli {
	const char *socket;
	const char *url;		/* base URL without trailing '/', or NULL */
	const char *token_file;
	const char *request_id;
	bool json;
	bool hold;			/* --json: the command prints the answer itself */
	bool dry_run;			/* --dry-run: every POST asks what would happen */
	char *token;			/* trimmed content of token_file */
	char *url_base;			/* owned copy of url, trimmed */
	const char *idem_key;		/* Idempotency-Key of this invocation */
	char uuid[37];
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
};

/*
 * One request of the protocol (daemon/proto.def) being put together: the
 * path's parameters, the query string and the body, each named by the
 * table, so no path or key is spelled here.
 */
struct req {
	enum proto_req id;
	const char *params[PROTO_MAX_PARAMS];
	struct buf query;
	json_t *body;		/* NULL until a field is set */
};

/* The name errmsg() puts before each message ("gpuledger" unless set). */
extern const char *client_prog;

/* "PROG: message" on stderr. */
void errmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A copy of s fit for one table cell: control characters become spaces. */
char *cell_dup(const char *s);

/* JSON readers: every shape is checked; a missing key gives NULL/false/"-". */
json_t *jget(const json_t *o, const char *key);
const char *jstr(const json_t *o, const char *key);	/* or NULL */
const char *jsv(const json_t *o, const char *key);	/* or "-" */
bool jint(const json_t *o, const char *key, int64_t *out);
char *json_text(const json_t *v);	/* display text; "-" for null */
char *jtext(const json_t *o, const char *key);
void print_json(const json_t *j);	/* compact, one line on stdout */

/* The socket path or the URL the client talks to, for messages. */
const char *endpoint(const struct cli *cli);

void req_init(struct req *r, enum proto_req id);
void req_free(struct req *r);
/* Adds ?f=val (nothing when val is NULL). */
void req_query(struct cli *cli, struct req *r, enum proto_field f, const char *val);
/* Sets body field f to v (taken); v NULL sets nothing. */
void req_set(struct req *r, enum proto_field f, json_t *v);
void req_str(struct req *r, enum proto_field f, const char *s);
void req_int(struct req *r, enum proto_field f, int64_t n);
/* The request's path with its parameters escaped, and the query. */
char *req_path(struct cli *cli, const struct req *r);

/* A CURLOPT_WRITEFUNCTION that appends to the struct buf at arg, up to MAX_REPLY. */
size_t collect(char *p, size_t size, size_t n, void *arg);
/*
 * Prepares cli->curl for one request: method, URL, headers, body. Returns
 * the header list, which the caller frees with curl_slist_free_all() after
 * the transfer.
 */
struct curl_slist *http_setup(struct cli *cli, const char *method,
			      const char *path, const char *body);
/* A transfer that failed below HTTP: prints why, returns the exit code. */
int transport_error(struct cli *cli, CURLcode cc, bool started);
/*
 * Handles a complete answer: on 2xx returns 0 with *out set to the parsed
 * body (printed as is when --json); otherwise prints the error and returns
 * the exit code of the contract.
 */
int handle_reply(struct cli *cli, long status, const struct buf *raw, json_t **out);
/*
 * One request and its answer; r is not consumed. Returns 0 with *out (the
 * caller json_decref()s it), or the exit code after printing why.
 */
int api_call(struct cli *cli, const struct req *r, json_t **out);
/* A request with no parameter, query or body. */
int api_get(struct cli *cli, enum proto_req id, json_t **out);

/* The environment variable name, or NULL when unset or empty. */
const char *env(const char *name);

/*
 * Readies cli (socket, url, token_file and request_id set) for requests:
 * reads the token file, makes the Idempotency-Key, starts libcurl. Returns
 * 0 or an exit code after saying why; client_close() undoes it either way.
 */
int client_open(struct cli *cli);
void client_close(struct cli *cli);

#endif
