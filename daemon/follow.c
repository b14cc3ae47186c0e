/* SPDX-License-Identifier: MIT */
/*
 * Journal followers. A follower lives from follow_start() until the
 * server's on_close for its stream, which unlinks and frees it: a write
 * that finds the client gone or too slow makes the server close the
 * stream, so the set only ever holds streams that are still open.
 */
#include "daemon/follow.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

struct follower {
	struct follow *set;
	struct server_req *r;
	char *consortium;	/* NULL = everything */
	struct credential cred;	/* what opened it, to ask again after a reload */
	enum role role;		/* and what it mapped to then */
	char *who_consortium;
	char who_name[64];
	bool ended;		/* server_stream_end() called; on_close to come */
	struct follower *next;
};

/* For the backlog, which store_journal_each() feeds one entry at a time. */
struct backlog {
	struct follower *f;
	int32_t tz_offset;
};

void follow_init(struct follow *fl)
{
	fl->head = NULL;
}

static void follower_closed(void *arg)
{
	struct follower *f = arg;
	for (struct follower **pp = &f->set->head; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	free(f->consortium);
	free(f->who_consortium);
	sodium_memzero(f->cred.token_sha256, sizeof(f->cred.token_sha256));
	free(f);
}

/* 0, or the stream's negative errno (the stream is closed then). */
static int follower_write(struct follower *f, const struct jentry *e, int32_t tz_offset)
{
	if (f->consortium && (e->consortium == NULL || strcmp(e->consortium, f->consortium) != 0))
		return 0;
	json_t *o = f->role == ROLE_CONSORTIUM ? jentry_to_view_json(e, tz_offset)
					       : jentry_to_json(e, tz_offset);
	char *line = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	size_t len = strlen(line);
	line = xrealloc(line, len + 2);
	line[len] = '\n';
	line[len + 1] = '\0';
	int rc = server_stream_write(f->r, line, len + 1);
	free(line);
	return rc;
}

static int backlog_row(void *arg, const struct jentry *e)
{
	struct backlog *b = arg;
	return follower_write(b->f, e, b->tz_offset) < 0 ? 1 : 0;
}

void follow_start(struct follow *fl, struct server_req *r, const char *consortium,
		  const struct principal *who, struct store *store, int64_t since,
		  int32_t tz_offset)
{
	struct follower *f = xcalloc(1, sizeof(*f));
	f->set = fl;
	f->r = r;
	f->consortium = consortium ? xstrdup(consortium) : NULL;
	auth_credential(server_req_http(r), &f->cred);
	f->role = who->role;
	f->who_consortium = who->consortium ? xstrdup(who->consortium) : NULL;
	snprintf(f->who_name, sizeof(f->who_name), "%s", who->name);
	server_stream_begin(r, 200, "application/x-ndjson", follower_closed, f);
	f->next = fl->head;
	fl->head = f;
	struct backlog b = {.f = f, .tz_offset = tz_offset};
	/* a failed write has ended the stream (f may be gone); a failed read has not */
	if (store_journal_each(store, since, consortium, 0, backlog_row, &b) != 0 &&
	    fl->head == f)
		server_stream_end(f->r);
}

void follow_committed(struct follow *fl, const struct jentry *entries, size_t n,
		      int32_t tz_offset)
{
	for (struct follower *f = fl->head, *next; f; f = next) {
		next = f->next;	/* a write that fails closes f */
		for (size_t i = 0; i < n && !f->ended; i++)
			if (follower_write(f, &entries[i], tz_offset) < 0)
				break;
	}
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

size_t follow_revalidate(struct follow *fl, const struct config *cfg, uid_t daemon_uid)
{
	size_t ended = 0;

	/* on_close comes on a later loop turn, so the list stays intact here */
	for (struct follower *f = fl->head; f; f = f->next) {
		struct principal now;
		if (f->ended)
			continue;
		auth_resolve_credential(cfg, &f->cred, daemon_uid, &now);
		if (now.role == f->role && same_str(now.consortium, f->who_consortium))
			continue;
		log_event(LOG_INFO, "follow_revoked", "{s:s, s:s, s:s?}", "actor", f->who_name,
			  "role", role_name(now.role), "consortium", now.consortium);
		f->ended = true;
		server_stream_end(f->r);
		ended++;
	}
	return ended;
}

void follow_close_all(struct follow *fl)
{
	/* on_close comes on a later loop turn, so the list stays intact here */
	for (struct follower *f = fl->head; f; f = f->next)
		server_stream_end(f->r);
}
