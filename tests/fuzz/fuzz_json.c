/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the JSON body of every POST route. The first byte picks the
 * route (daemon/proto.def's table, "*" filled with an id that exists once
 * the body's own grants and allocations do: lg, A-000001); the rest is the
 * body, framed as a well-formed request with its Content-Length and an
 * Idempotency-Key, sent twice (the second time is an idempotent replay),
 * through the real server and API (tests/fuzz/harness.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/proto.h"
#include "daemon/util.h"
#include "tests/fuzz/harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* path with each "*" replaced by id, in buf */
static void fill(const char *path, const char *id, char *buf, size_t len)
{
	size_t o = 0;
	for (const char *p = path; *p && o + 16 < len; p++) {
		if (*p == '*') {
			o += (size_t)snprintf(buf + o, len - o, "%s", id);
		} else {
			buf[o++] = *p;
		}
	}
	buf[o] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *ids[] = {"lg", "A-000001", "skt-b200", "p1", "nope"};
	const struct proto_request *posts[PROTO__COUNT];
	size_t n_posts = 0;
	char path[256];

	if (size < 1)
		return 0;
	for (int i = 0; i < PROTO__COUNT; i++)
		if (strcmp(proto_request((enum proto_req)i)->method, "POST") == 0)
			posts[n_posts++] = proto_request((enum proto_req)i);
	const struct proto_request *rq = posts[data[0] % n_posts];
	const char *id = ids[(data[0] / n_posts) % (sizeof(ids) / sizeof(ids[0]))];
	fill(rq->path, strstr(rq->path, "allocations/*") ? "A-000001" :
		       strstr(rq->path, "consortia/*") ? "lg" : id, path, sizeof(path));
	const char *body = (const char *)data + 1;
	size_t blen = size - 1;
	char head[512];
	int hl = snprintf(head, sizeof(head),
			  "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
			  "Idempotency-Key: fuzz-1\r\nContent-Length: %zu\r\n\r\n", path, blen);
	size_t one = (size_t)hl + blen;
	uint8_t *msg = xmalloc(2 * one);
	memcpy(msg, head, (size_t)hl);
	memcpy(msg + hl, body, blen);
	memcpy(msg + one, msg, one);
	harness_feed(msg, 2 * one);
	free(msg);
	return 0;
}
