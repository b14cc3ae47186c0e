/* SPDX-License-Identifier: MIT */
/*
 * The HTTP client that the command-line tools share (gpuledger and
 * gpuledger-slurm): one request of the protocol (daemon/proto.def) over
 * libcurl, on the daemon's Unix socket or a --url with a bearer token from
 * a --token-file, its answer parsed as JSON and its failure turned into the
 * exit code of the CLI contract (DESIGN.md). Moved here from tools/gpuledger.c
 * so that both programs reach the daemon exactly alike.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "daemon/error.h"
#include "daemon/proto.h"
#include "daemon/util.h"
#include "tools/client.h"

const char *client_prog = "gpuledger";

/* ---- messages ---------------------------------------------------------- */

void errmsg(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", client_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A copy of s fit for one table cell: control characters become spaces. */
char *cell_dup(const char *s)
{
	char *d = xstrdup(s);
	for (char *p = d; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return d;
}

json_t *jget(const json_t *o, const char *key)
{
	return json_is_object(o) ? json_object_get(o, key) : NULL;
}

/* The string at key, or NULL. */
const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(jget(o, key));
}

/* The string at key, or "-". */
const char *jsv(const json_t *o, const char *key)
{
	const char *s = jstr(o, key);
	return s ? s : "-";
}

bool jint(const json_t *o, const char *key, int64_t *out)
{
	json_t *v = jget(o, key);
	if (!json_is_integer(v))
		return false;
	*out = (int64_t)json_integer_value(v);
	return true;
}

/* Display text of a JSON value (malloc'd): "-" for null or missing. */
char *json_text(const json_t *v)
{
	if (json_is_string(v))
		return cell_dup(json_string_value(v));
	if (json_is_integer(v))
		return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
	if (json_is_true(v))
		return xstrdup("yes");
	if (json_is_false(v))
		return xstrdup("no");
	if (json_is_array(v)) {
		struct buf b = { 0 };
		size_t i;
		json_t *e;
		buf_puts(&b, "");
		json_array_foreach(v, i, e) {
			char *s = json_text(e);
			buf_printf(&b, "%s%s", i ? ", " : "", s);
			free(s);
		}
		if (b.len == 0)
			buf_puts(&b, "-");
		return buf_take(&b);
	}
	if (v && !json_is_null(v)) {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		char *d = cell_dup(s ? s : "?");
		free(s);
		return d;
	}
	return xstrdup("-");
}

char *jtext(const json_t *o, const char *key)
{
	return json_text(jget(o, key));
}

void print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
		free(s);
	}
}

/* ---- HTTP ---------------------------------------------------------------- */

/*
 * The exit code of an answer: the error table's, by the error body's code;
 * by the status only for an answer without one (a proxy's, say).
 */
static int exit_for_reply(long status, const json_t *j)
{
	if (status >= 200 && status < 300)
		return 0;
	const json_t *code = json_object_get(json_object_get(j, "error"), "code");
	enum error_code ec = json_is_string(code) ? error_lookup(json_string_value(code))
						  : ERR_NONE;
	if (ec != ERR_NONE)
		return error_exit(ec);
	switch (status) {
	case 400: case 413: case 422:
		return EXIT_DATAERR;
	case 401: case 403:
		return EXIT_NOPERM;
	case 404: case 405: case 409:
		return EXIT_REFUSED;
	case 503:
		return EXIT_UNAVAILABLE;
	default:
		return EXIT_SOFTWARE;
	}
}

const char *endpoint(const struct cli *cli)
{
	return cli->url_base ? cli->url_base : cli->socket;
}

/* A URL-encoded copy of s (malloc'd). */
static char *esc(struct cli *cli, const char *s)
{
	char *e = curl_easy_escape(cli->curl, s, 0);
	if (!e)
		abort();
	char *d = xstrdup(e);
	curl_free(e);
	return d;
}


void req_init(struct req *r, enum proto_req id)
{
	memset(r, 0, sizeof(*r));
	r->id = id;
}

void req_free(struct req *r)
{
	buf_free(&r->query);
	json_decref(r->body);
}

/* Adds ?f=val (nothing when val is NULL). */
void req_query(struct cli *cli, struct req *r, enum proto_field f, const char *val)
{
	if (!proto_has_query(r->id, f))
		abort();	/* a command sends what the protocol does not take */
	if (!val)
		return;
	char *e = esc(cli, val);
	buf_printf(&r->query, "%c%s=%s", r->query.len ? '&' : '?', proto_field_name(f), e);
	free(e);
}

/* Sets body field f to v (taken); v NULL sets nothing. */
void req_set(struct req *r, enum proto_field f, json_t *v)
{
	if (!proto_has_body(r->id, f))
		abort();	/* a command sends what the protocol does not take */
	if (!r->body)
		r->body = json_object();
	if (v)
		json_object_set_new(r->body, proto_field_name(f), v);
}

void req_str(struct req *r, enum proto_field f, const char *s)
{
	req_set(r, f, s ? json_string(s) : NULL);
}

void req_int(struct req *r, enum proto_field f, int64_t n)
{
	req_set(r, f, json_integer(n));
}

/* The request's path with its parameters escaped, and the query. */
char *req_path(struct cli *cli, const struct req *r)
{
	const char *p = proto_request(r->id)->path;
	struct buf b = { 0 };
	size_t np = 0;

	for (; *p; p++) {
		if (*p != '*') {
			buf_append(&b, p, 1);
			continue;
		}
		if (np == PROTO_MAX_PARAMS || !r->params[np])
			abort();	/* a parameter of the path is missing */
		char *e = esc(cli, r->params[np++]);
		buf_puts(&b, e);
		free(e);
	}
	if (r->query.len)
		buf_puts(&b, r->query.data);
	return buf_take(&b);
}

size_t collect(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t len = size * n;
	if (b->len + len > MAX_REPLY)
		return 0;
	buf_append(b, p, len);
	return len;
}

/*
 * Prepares cli->curl for one request: method, URL, headers, body. Returns
 * the header list, which the caller frees with curl_slist_free_all() after
 * the transfer.
 */
struct curl_slist *http_setup(struct cli *cli, const char *method,
				     const char *path, const char *body)
{
	CURL *c = cli->curl;
	struct curl_slist *h = NULL;
	char *url;

	curl_easy_reset(c);
	cli->errbuf[0] = '\0';
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cli->errbuf);
	if (cli->url_base) {
		url = xasprintf("%s%s", cli->url_base, path);
	} else {
		url = xasprintf("http://localhost%s", path);
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, cli->socket);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	free(url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "gpuledger/" GPULEDGER_VERSION);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);

	h = curl_slist_append(h, "Accept: application/json");
	/* the daemon answers at once; no "100 Continue" round trip */
	h = curl_slist_append(h, "Expect:");
	if (cli->token) {
		char *a = xasprintf("Authorization: Bearer %s", cli->token);
		h = curl_slist_append(h, a);
		sodium_memzero(a, strlen(a));
		free(a);
	}
	if (strcmp(method, "POST") == 0) {
		char *k = xasprintf("Idempotency-Key: %s", cli->idem_key);
		h = curl_slist_append(h, "Content-Type: application/json");
		h = curl_slist_append(h, k);
		free(k);
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, body);
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	if (!h)
		abort();
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	return h;
}

/* A transfer that failed below HTTP: prints why, returns the exit code. */
int transport_error(struct cli *cli, CURLcode cc, bool started)
{
	const char *why = cli->errbuf[0] ? cli->errbuf : curl_easy_strerror(cc);
	long os_errno = 0;

	/* curl's text names "localhost port 80" for a Unix socket; errno is clearer */
	curl_easy_getinfo(cli->curl, CURLINFO_OS_ERRNO, &os_errno);
	if (!cli->url_base && os_errno && cc == CURLE_COULDNT_CONNECT)
		why = strerror((int)os_errno);

	switch (cc) {
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		errmsg("--url %s: %s", endpoint(cli), why);
		return EXIT_USAGE;
	case CURLE_WRITE_ERROR:
		errmsg("the daemon's answer is too large");
		return EXIT_SOFTWARE;
	default:
		if (started)
			errmsg("lost the connection to the daemon at %s: %s",
			       endpoint(cli), why);
		else
			errmsg("cannot reach the daemon at %s: %s",
			       endpoint(cli), why);
		/* a socket we may not open is a matter of permissions */
		if (!cli->url_base && cc == CURLE_COULDNT_CONNECT &&
		    (os_errno == EACCES || os_errno == EPERM))
			return EXIT_NOPERM;
		return EXIT_UNAVAILABLE;
	}
}

/* Prints an API error ({"error":{...}}) for people. */
static void print_api_error(const json_t *j)
{
	const json_t *e = jget(j, "error");
	const json_t *d = jget(e, "details");
	const char *code = jsv(e, "code");
	char *msg = jtext(e, "message");

	errmsg("%s: %s", code, msg);
	free(msg);
	if (strcmp(code, "capacity_unavailable") == 0 && jstr(d, "earliest_start"))
		fprintf(stderr, "earliest possible start: %s\n",
			jstr(d, "earliest_start"));
	if (strcmp(code, "quota_exceeded") == 0) {
		int64_t avail, need;
		char a[48], n[48];
		if (jint(d, "available_gpu_seconds", &avail) &&
		    jint(d, "needed_gpu_seconds", &need))
			fprintf(stderr, "available: %s GPU-hours, needed: %s GPU-hours\n",
				gpu_hours_format(avail, a, sizeof(a)),
				gpu_hours_format(need, n, sizeof(n)));
	}
}

/*
 * Handles a complete answer: on 2xx returns 0 with *out set to the parsed
 * body (printed as is when --json); otherwise prints the error and returns
 * the exit code of the contract.
 */
int handle_reply(struct cli *cli, long status, const struct buf *raw,
			json_t **out)
{
	json_error_t je;
	json_t *j = json_loadb(raw->data ? raw->data : "", raw->len, 0, &je);
	int rc = exit_for_reply(status, j);

	if (rc == 0) {
		if (!j) {
			errmsg("the daemon's answer (HTTP %ld) is not JSON: %s",
			       status, je.text);
			return EXIT_SOFTWARE;
		}
		if (cli->json && !cli->hold)
			print_json(j);
		*out = j;
		return 0;
	}
	if (!json_is_object(jget(j, "error"))) {
		char *first = xstrndup(raw->data ? raw->data : "", 200);
		first[strcspn(first, "\r\n")] = '\0';
		char *clean = cell_dup(first);
		errmsg("HTTP %ld from the daemon at %s%s%s", status, endpoint(cli),
		       *clean ? ": " : "", clean);
		free(clean);
		free(first);
	} else if (cli->json) {
		print_json(j);
	} else {
		print_api_error(j);
	}
	json_decref(j);
	return rc;
}

/*
 * One request and its answer; r is not consumed.
 * Returns 0 with *out (the caller json_decref()s it), or the exit code after
 * printing why.
 */
int api_call(struct cli *cli, const struct req *r, json_t **out)
{
	const char *method = proto_request(r->id)->method;
	bool post = strcmp(method, "POST") == 0;
	char *path, *text = NULL;
	struct buf raw = { 0 };
	long status = 0;
	int rc;

	*out = NULL;
	if (cli->dry_run && !post) {
		errmsg("--dry-run: only a command that changes the ledger can be tried");
		return EXIT_USAGE;
	}
	if (cli->dry_run) {
		/* the one place a dry run is asked for: every change goes through here */
		json_t *body = r->body ? json_deep_copy(r->body) : json_object();
		json_object_set_new(body, proto_field_name(FIELD_DRY_RUN), json_true());
		text = json_dumps(body, JSON_COMPACT);
		json_decref(body);
	} else if (r->body) {
		text = json_dumps(r->body, JSON_COMPACT);
	}
	path = req_path(cli, r);
	struct curl_slist *h = http_setup(cli, method, path, text ? text : "{}");
	curl_easy_setopt(cli->curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(cli->curl, CURLOPT_WRITEDATA, &raw);
	/* a daemon that accepts but never answers must not hang a script */
	curl_easy_setopt(cli->curl, CURLOPT_TIMEOUT, REQUEST_TIMEOUT_S);
	CURLcode cc = curl_easy_perform(cli->curl);
	if (cc != CURLE_OK) {
		rc = transport_error(cli, cc, false);
		goto out;
	}
	curl_easy_getinfo(cli->curl, CURLINFO_RESPONSE_CODE, &status);
	rc = handle_reply(cli, status, &raw, out);
	if (rc == 0 && cli->dry_run && !cli->json)
		fputs("dry run: this is what would happen; nothing was changed\n", stderr);
out:
	curl_slist_free_all(h);
	buf_free(&raw);
	free(text);
	free(path);
	return rc;
}

/* A request with no parameter, query or body. */
int api_get(struct cli *cli, enum proto_req id, json_t **out)
{
	struct req r;
	req_init(&r, id);
	int rc = api_call(cli, &r, out);
	req_free(&r);
	return rc;
}

/* ---- setup ---------------------------------------------------------------- */

/* Reads and trims the token file into cli->token. Returns 0 or an exit code. */
static int read_token(struct cli *cli)
{
	char buf[MAX_TOKEN_FILE + 1];
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd = open(cli->token_file, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		errmsg("--token-file %s: %s", cli->token_file, strerror(errno));
		return EXIT_DATAERR;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)))
		errmsg("warning: the token file %s is readable by others than its "
		       "owner (chmod 600 it)", cli->token_file);
	while (len < sizeof(buf) - 1 &&
	       (n = read(fd, buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			errmsg("--token-file %s: %s", cli->token_file, strerror(errno));
			close(fd);
			return EXIT_DATAERR;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';

	char *s = buf, *e = buf + len;
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
			 e[-1] == '\n'))
		e--;
	*e = '\0';
	int rc = 0;
	if (len >= sizeof(buf) - 1) {
		errmsg("--token-file %s: too large for a token", cli->token_file);
		rc = EXIT_DATAERR;
	} else if (s == e) {
		errmsg("--token-file %s: empty", cli->token_file);
		rc = EXIT_DATAERR;
	} else {
		for (char *p = s; p < e; p++)
			if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
				errmsg("--token-file %s: a token is one word of "
				       "printable ASCII", cli->token_file);
				rc = EXIT_DATAERR;
				break;
			}
	}
	if (rc == 0)
		cli->token = xstrdup(s);
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

/* A random (version 4) UUID, for the Idempotency-Key of this invocation. */
static void uuid4(char out[37])
{
	unsigned char b[16];
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	randombytes_buf(b, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
}

const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

/* ---- connection ------------------------------------------------------------ */

int client_open(struct cli *cli)
{
	int rc;

	if (cli->token_file && (rc = read_token(cli)) != 0)
		return rc;
	if (cli->url) {
		size_t n = strlen(cli->url);
		while (n && cli->url[n - 1] == '/')
			n--;
		cli->url_base = xstrndup(cli->url, n);
	}
	uuid4(cli->uuid);
	cli->idem_key = cli->request_id ? cli->request_id : cli->uuid;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 ||
	    !(cli->curl = curl_easy_init())) {
		errmsg("cannot initialise libcurl");
		return EXIT_SOFTWARE;
	}
	return 0;
}

void client_close(struct cli *cli)
{
	if (cli->curl) {
		curl_easy_cleanup(cli->curl);
		curl_global_cleanup();
		cli->curl = NULL;
	}
	if (cli->token) {
		sodium_memzero(cli->token, strlen(cli->token));
		free(cli->token);
		cli->token = NULL;
	}
	free(cli->url_base);
	cli->url_base = NULL;
}
