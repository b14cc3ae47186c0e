/* SPDX-License-Identifier: MIT */
/*
 * Journal followers: the open GET /v1/journal?follow=1 streams. Each gets
 * the backlog from the store, then every entry as it commits, one JSON line
 * each, scoped to its consortium; a reader that does not keep up is
 * dropped by the server and leaves the set.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

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
 * set until the stream closes. Times are shown at tz_offset.
 */
void follow_start(struct follow *fl, struct server_req *r, const char *consortium,
		  struct store *store, int64_t since, int32_t tz_offset);

/* Fans out committed entries to every follower whose scope they are in. */
void follow_committed(struct follow *fl, const struct jentry *entries, size_t n,
		      int32_t tz_offset);

/* Ends every stream (shutdown); each leaves the set when the server closes it. */
void follow_close_all(struct follow *fl);
