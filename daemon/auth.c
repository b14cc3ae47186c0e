/* SPDX-License-Identifier: MIT */
/*
 * Mapping callers to roles. On the Unix socket the kernel vouches for the
 * peer (SO_PEERCRED, captured by the server): uid 0 and the daemon's own
 * uid are admins, then the user and its groups are matched against the
 * access: section, the most powerful role winning. On TCP only a bearer
 * token counts; its SHA-256 is compared with every configured hash in
 * constant time (libsodium), so timing tells nothing about which is close.
 */
#include "daemon/auth.h"
#include "daemon/util.h"

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

static bool listed(const struct cfg_strlist *l, const char *name)
{
	for (size_t i = 0; name && i < l->n; i++)
		if (strcmp(l->v[i], name) == 0)
			return true;
	return false;
}

/* The caller's group names; *n entries, caller frees the array (not the names'
 * storage, which lives in names). */
static size_t groups_of(const char *user, gid_t gid, char names[][64], size_t max)
{
	gid_t gids[64];
	int ng = 64;
	size_t n = 0;

	if (user == NULL || getgrouplist(user, gid, gids, &ng) < 0) {
		gids[0] = gid;
		ng = 1;
	}
	for (int i = 0; i < ng && n < max; i++) {
		struct group gr, *res = NULL;
		char buf[4096];
		if (getgrgid_r(gids[i], &gr, buf, sizeof(buf), &res) == 0 && res)
			snprintf(names[n++], 64, "%s", gr.gr_name);
	}
	return n;
}

static bool principal_match(const struct cfg_principals *p, const char *user,
			    char groups[][64], size_t ng)
{
	if (listed(&p->users, user))
		return true;
	for (size_t i = 0; i < ng; i++)
		if (listed(&p->groups, groups[i]))
			return true;
	return false;
}

/*
 * Looking a user and its groups up reads /etc/passwd and /etc/group (or
 * asks NSS): too slow for every request on a keep-alive connection. Answers
 * are kept for a short while per (config, uid, gid), so a change of group
 * membership takes effect within AUTH_CACHE_TTL seconds.
 */
#define AUTH_CACHE_SLOTS 64
#define AUTH_CACHE_TTL 30

static struct {
	const struct config *cfg;
	uid_t uid;
	gid_t gid;
	time_t at;
	struct principal who;
} cache[AUTH_CACHE_SLOTS];

static void resolve_unix_uncached(const struct config *cfg, uid_t uid, gid_t gid,
				  uid_t daemon_uid, struct principal *out);

void auth_forget(void)
{
	memset(cache, 0, sizeof(cache));
}

static void resolve_unix(const struct config *cfg, const struct http_request *req,
			 uid_t daemon_uid, struct principal *out)
{
	unsigned slot = (unsigned)req->peer_uid % AUTH_CACHE_SLOTS;
	time_t now = time(NULL);

	if (cache[slot].cfg == cfg && cache[slot].uid == req->peer_uid &&
	    cache[slot].gid == req->peer_gid && now - cache[slot].at < AUTH_CACHE_TTL &&
	    now >= cache[slot].at) {
		*out = cache[slot].who;
		return;
	}
	resolve_unix_uncached(cfg, req->peer_uid, req->peer_gid, daemon_uid, out);
	cache[slot].cfg = cfg;
	cache[slot].uid = req->peer_uid;
	cache[slot].gid = req->peer_gid;
	cache[slot].at = now;
	cache[slot].who = *out;
}

static void resolve_unix_uncached(const struct config *cfg, uid_t uid, gid_t gid,
				  uid_t daemon_uid, struct principal *out)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	char groups[64][64];
	const char *user = NULL;

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		user = pw.pw_name;
	if (user)
		snprintf(out->name, sizeof(out->name), "user:%s", user);
	else
		snprintf(out->name, sizeof(out->name), "uid:%u", (unsigned)uid);

	if (uid == 0 || uid == daemon_uid) {
		out->role = ROLE_ADMIN;
		return;
	}
	size_t ng = groups_of(user, gid, groups, 64);
	if (principal_match(&cfg->admins, user, groups, ng)) {
		out->role = ROLE_ADMIN;
		return;
	}
	if (principal_match(&cfg->operators, user, groups, ng)) {
		out->role = ROLE_OPERATOR;
		return;
	}
	for (size_t i = 0; i < cfg->n_consortium_access; i++) {
		const struct cfg_consortium_access *ca = &cfg->consortium_access[i];
		for (size_t g = 0; g < ng; g++) {
			if (listed(&ca->groups, groups[g])) {
				out->role = ROLE_CONSORTIUM;
				out->consortium = ca->consortium;
				return;
			}
		}
	}
}

/* The SHA-256 of the bearer token in authz: false when there is none. */
static bool token_hash(const char *authz, uint8_t h[32])
{
	static const char prefix[] = "Bearer ";

	if (authz == NULL || strncasecmp(authz, prefix, sizeof(prefix) - 1) != 0)
		return false;
	const char *tok = authz + sizeof(prefix) - 1;
	while (*tok == ' ')
		tok++;
	if (*tok == '\0')
		return false;
	crypto_hash_sha256(h, (const unsigned char *)tok, strlen(tok));
	return true;
}

static void resolve_token(const struct config *cfg, const uint8_t h[32], struct principal *out)
{
	const struct cfg_token *match = NULL;

	/* compare against every token, so the time does not depend on which matched */
	for (size_t i = 0; i < cfg->n_tokens; i++)
		if (sodium_memcmp(h, cfg->tokens[i].sha256, 32) == 0)
			match = &cfg->tokens[i];
	if (match == NULL)
		return;
	out->role = match->role;
	out->consortium = match->consortium;
	snprintf(out->name, sizeof(out->name), "token:%s", match->name);
}

static void anonymous(struct principal *out)
{
	memset(out, 0, sizeof(*out));
	out->role = ROLE_NONE;
	snprintf(out->name, sizeof(out->name), "anonymous");
}

void auth_credential(const struct http_request *req, struct credential *out)
{
	memset(out, 0, sizeof(*out));
	out->peer_unix = req->peer_unix;
	out->uid = req->peer_uid;
	out->gid = req->peer_gid;
	if (!req->peer_unix)
		out->has_token = token_hash(req->authorization, out->token_sha256);
}

void auth_resolve_credential(const struct config *cfg, const struct credential *cred,
			     uid_t daemon_uid, struct principal *out)
{
	anonymous(out);
	if (cred->peer_unix)
		resolve_unix_uncached(cfg, cred->uid, cred->gid, daemon_uid, out);
	else if (cred->has_token)
		resolve_token(cfg, cred->token_sha256, out);
}

void auth_resolve(const struct config *cfg, const struct http_request *req,
		  uid_t daemon_uid, struct principal *out)
{
	uint8_t h[32];

	anonymous(out);
	if (req->peer_unix) {
		resolve_unix(cfg, req, daemon_uid, out);
	} else if (token_hash(req->authorization, h)) {
		resolve_token(cfg, h, out);
		sodium_memzero(h, sizeof(h));
	}
}

bool auth_is_admin(const struct config *cfg, uid_t uid, gid_t gid, uid_t daemon_uid)
{
	struct http_request req = {.peer_unix = true, .peer_uid = uid, .peer_gid = gid};
	struct principal who;

	auth_resolve(cfg, &req, daemon_uid, &who);
	return who.role == ROLE_ADMIN;
}
