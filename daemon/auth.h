/* SPDX-License-Identifier: MIT */
/*
 * Who is asking: a role (and, for a consortium, which one) from the Unix
 * peer credentials on the socket, or from a bearer token on TCP. Tokens
 * are stored only as SHA-256 hashes and compared in constant time.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "daemon/config.h"
#include "daemon/server.h"

struct principal {
	enum role role;
	const char *consortium;	/* for ROLE_CONSORTIUM; points into the config */
	char name[64];		/* "user:alice", "uid:1001", "token:lg-ci" */
};

/*
 * What a caller presented, kept to ask again under another configuration
 * (a follow stream outlives a SIGHUP): the peer's uid and gid on the Unix
 * socket, or the SHA-256 of the bearer token (never the token itself).
 */
struct credential {
	bool peer_unix;
	uid_t uid;
	gid_t gid;
	bool has_token;
	uint8_t token_sha256[32];
};

/* The credential of req. */
void auth_credential(const struct http_request *req, struct credential *out);

/*
 * The principal a kept credential maps to under cfg now, asked afresh
 * (no cache: a user who left a group is seen to have left).
 */
void auth_resolve_credential(const struct config *cfg, const struct credential *cred,
			     uid_t daemon_uid, struct principal *out);

/*
 * Resolves the caller of req under cfg. Never fails: an unknown caller gets
 * ROLE_NONE. daemon_uid is the daemon's own uid (an admin, like uid 0).
 */
void auth_resolve(const struct config *cfg, const struct http_request *req,
		  uid_t daemon_uid, struct principal *out);

/* Whether a local caller (uid, gid) is an admin under cfg, as for a
 * request over the Unix socket (the server's per-uid budget asks). */
bool auth_is_admin(const struct config *cfg, uid_t uid, gid_t gid, uid_t daemon_uid);

/* Forgets cached answers (the configuration changed). */
void auth_forget(void);
