/* SPDX-License-Identifier: MIT */
/*
 * Journal followers: the open GET /v1/journal?follow=1 streams. Each gets
 * the backlog from the store, then every entry as it commits, one JSON line
 * each, scoped to its consortium (a consortium caller sees its entries as
 * their view, without the global chain); a reader that does not keep up is
 * dropped by the server and leaves the set. Each keeps the credential that
 * opened it, so that a reload that revokes it ends the stream.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "daemon/auth.h"
#include "daemon/config.h"
#include "daemon/journal.h"
#include "daemon/store.h"

struct server_req;
struct follower;

struct follow {
	struct follower *head;	/* private */
};

void follow_init(struct follow *fl);

/*
 * Opens a 200 ndjson stream on r, writes the store's entries with seq >
 * since (consortium NULL = all, else only its own), then keeps r in the
 * set until the stream closes. who is the caller (copied), as auth resolved
 * r. Times are shown at tz_offset.
 */
void follow_start(struct follow *fl, struct server_req *r, const char *consortium,
		  const struct principal *who, struct store *store, int64_t since,
		  int32_t tz_offset);

/*
 * After a reload: ends every stream whose credential no longer maps, under
 * cfg, to the role and consortium it had when it opened (a token line
 * removed, a user gone from a group). Returns how many it ended.
 */
size_t follow_revalidate(struct follow *fl, const struct config *cfg, uid_t daemon_uid);

/* Fans out committed entries to every follower whose scope they are in. */
void follow_committed(struct follow *fl, const struct jentry *entries, size_t n,
		      int32_t tz_offset);

/* Ends every stream (shutdown); each leaves the set when the server closes it. */
void follow_close_all(struct follow *fl);
