/* SPDX-License-Identifier: MIT */
/*
 * Journal entries: names of the kinds, the canonical encoding that the
 * hash chain covers, and the entry's public JSON form. The canonical form
 * is produced by jansson (sorted keys, compact) so that an auditor can
 * rebuild it with any JSON tool; the hash is libsodium's SHA-256.
 */
#include "daemon/journal.h"
#include "daemon/grammar.h"
#include "daemon/timefmt.h"
#include "daemon/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

static const char *const kind_names[] = {
#define X(e, s) s,
	JOURNAL_KINDS(X)
#undef X
};

const char *jkind_name(enum jkind k)
{
	return (unsigned)k < J__COUNT ? kind_names[k] : "?";
}

int jkind_parse(const char *s, enum jkind *k)
{
	for (unsigned i = 0; i < J__COUNT; i++) {
		if (strcmp(s, kind_names[i]) == 0) {
			*k = (enum jkind)i;
			return 0;
		}
	}
	return -EINVAL;
}

void jentry_clear(struct jentry *e)
{
	free(e->actor);
	free(e->request_id);
	free(e->consortium);
	free(e->phase);
	free(e->gpu);
	free(e->allocation);
	free(e->pool);
	free(e->reason);
	memset(e, 0, sizeof(*e));
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

void jentry_copy(struct jentry *dst, const struct jentry *src)
{
	*dst = *src;
	dst->actor = dup_or_null(src->actor);
	dst->request_id = dup_or_null(src->request_id);
	dst->consortium = dup_or_null(src->consortium);
	dst->phase = dup_or_null(src->phase);
	dst->gpu = dup_or_null(src->gpu);
	dst->allocation = dup_or_null(src->allocation);
	dst->pool = dup_or_null(src->pool);
	dst->reason = dup_or_null(src->reason);
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

char *jentry_canonical(const struct jentry *e)
{
	json_t *o = json_object();

	json_object_set_new(o, "seq", json_integer(e->seq));
	json_object_set_new(o, "time", json_integer(e->time));
	json_object_set_new(o, "kind", json_string(jkind_name(e->kind)));
	json_object_set_new(o, "actor", str_or_null(e->actor));
	json_object_set_new(o, "request_id", str_or_null(e->request_id));
	json_object_set_new(o, "consortium", str_or_null(e->consortium));
	json_object_set_new(o, "phase", str_or_null(e->phase));
	json_object_set_new(o, "gpu", str_or_null(e->gpu));
	json_object_set_new(o, "allocation", str_or_null(e->allocation));
	json_object_set_new(o, "pool", str_or_null(e->pool));
	json_object_set_new(o, "gpus", json_integer(e->gpus));
	json_object_set_new(o, "start", json_integer(e->start));
	json_object_set_new(o, "end", json_integer(e->end));
	json_object_set_new(o, "granted_delta", json_integer(e->granted_delta));
	json_object_set_new(o, "committed_delta", json_integer(e->committed_delta));
	json_object_set_new(o, "expired_delta", json_integer(e->expired_delta));
	json_object_set_new(o, "max_gpus", json_integer(e->max_gpus));
	json_object_set_new(o, "reason", str_or_null(e->reason));

	/* a string that is not valid UTF-8 makes json_string() return NULL,
	 * and json_object_set_new() then fails: the API refuses such input
	 * long before an entry is made */
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (s == NULL)
		abort();
	return s;
}

static void compute_hash(const struct jentry *e, uint8_t out[HASH_LEN])
{
	char prev[HASH_HEX_LEN + 1];
	char *canon = jentry_canonical(e);
	crypto_hash_sha256_state st;

	hash_hex(e->prev_hash, prev);
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)prev, HASH_HEX_LEN);
	crypto_hash_sha256_update(&st, (const unsigned char *)":", 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)canon, strlen(canon));
	crypto_hash_sha256_final(&st, out);
	free(canon);
}

void jentry_seal(struct jentry *e)
{
	compute_hash(e, e->hash);
}

bool jentry_hash_ok(const struct jentry *e)
{
	uint8_t h[HASH_LEN];
	compute_hash(e, h);
	return sodium_memcmp(h, e->hash, HASH_LEN) == 0;
}

void hash_hex(const uint8_t hash[HASH_LEN], char out[HASH_HEX_LEN + 1])
{
	sodium_bin2hex(out, HASH_HEX_LEN + 1, hash, HASH_LEN);
}

int hash_unhex(const char *hex, uint8_t hash[HASH_LEN])
{
	return hex_decode(hex, strlen(hex), hash, HASH_LEN);
}

static json_t *time_or_null(int64_t t, bool used, int32_t tz)
{
	char buf[TIME_BUFSZ];
	if (!used || t == TIME_MIN || t == TIME_MAX)
		return json_null();
	return json_string(time_format(t, tz, buf, sizeof(buf)));
}

json_t *jentry_to_json(const struct jentry *e, int32_t tz)
{
	char buf[TIME_BUFSZ], prev[HASH_HEX_LEN + 1], hash[HASH_HEX_LEN + 1];
	bool has_window = e->allocation != NULL || e->kind == J_ELIMINATE ||
			  e->kind == J_REINSTATE;

	hash_hex(e->prev_hash, prev);
	hash_hex(e->hash, hash);
	return json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o,"
			 " s:o, s:o, s:I, s:I, s:I, s:o, s:o, s:s, s:s}",
			 "seq", (json_int_t)e->seq,
			 "time", time_format(e->time, tz, buf, sizeof(buf)),
			 "kind", jkind_name(e->kind),
			 "actor", str_or_null(e->actor),
			 "request_id", str_or_null(e->request_id),
			 "consortium", str_or_null(e->consortium),
			 "phase", str_or_null(e->phase),
			 "gpu", str_or_null(e->gpu),
			 "allocation", str_or_null(e->allocation),
			 "pool", str_or_null(e->pool),
			 "gpus", e->allocation ? json_integer(e->gpus) : json_null(),
			 "start", time_or_null(e->start, has_window, tz),
			 "end", time_or_null(e->end, has_window && (e->kind != J_REINSTATE), tz),
			 "granted_delta_gpu_seconds", (json_int_t)e->granted_delta,
			 "committed_delta_gpu_seconds", (json_int_t)e->committed_delta,
			 "expired_delta_gpu_seconds", (json_int_t)e->expired_delta,
			 "max_gpus", e->kind == J_CAP ? json_integer(e->max_gpus) : json_null(),
			 "reason", str_or_null(e->reason),
			 "prev_hash", prev,
			 "hash", hash);
}

struct jentry *jlist_push(struct jlist *l)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	struct jentry *e = &l->v[l->n++];
	memset(e, 0, sizeof(*e));
	return e;
}

void jlist_clear(struct jlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		jentry_clear(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}
