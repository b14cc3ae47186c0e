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
#include <stddef.h>
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
	json_decref(e->extra);
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
	dst->extra = src->extra ? json_deep_copy(src->extra) : NULL;
}

int jentry_usage_fields(const struct jentry *e, const char **source, const char **job_id,
			int64_t *gpu_seconds)
{
	const json_t *src = json_object_get(e->extra, "source");
	const json_t *job = json_object_get(e->extra, "job_id");
	const json_t *amount = json_object_get(e->extra, "used_gpu_seconds");

	if (e->kind != J_USAGE || !json_is_string(src) || !json_is_string(job) ||
	    !json_is_integer(amount) || json_integer_value(amount) < 0)
		return -EINVAL;
	*source = json_string_value(src);
	*job_id = json_string_value(job);
	*gpu_seconds = json_integer_value(amount);
	return 0;
}

json_t *jentry_usage_extra(const char *source, const char *job_id, int64_t gpu_seconds)
{
	return json_pack("{s:s, s:s, s:I}", "source", source, "job_id", job_id,
			 "used_gpu_seconds", (json_int_t)gpu_seconds);
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *jentry_canonical_json(const struct jentry *e)
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
	if (e->salted) {
		char hex[SALT_HEX_LEN + 1];
		sodium_bin2hex(hex, sizeof(hex), e->salt, SALT_LEN);
		json_object_set_new(o, "salt", json_string(hex));
	}
	if (e->extra)
		json_object_set(o, "extra", e->extra);
	return o;
}

char *jentry_canonical(const struct jentry *e)
{
	json_t *o = jentry_canonical_json(e);

	/* a string that is not valid UTF-8 makes json_string() return NULL,
	 * and json_object_set_new() then fails: the API refuses such input
	 * long before an entry is made */
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (s == NULL)
		abort();
	return s;
}

/* The strings and numbers of the canonical encoding, for the inverse. */
static const struct {
	const char *key;
	enum { CK_NUM, CK_STR, CK_KIND } type;
	size_t off;	/* of the int64_t or char * field */
} canon_keys[] = {
#define STR_KEY(f) {#f, CK_STR, offsetof(struct jentry, f)}
#define NUM_KEY(f) {#f, CK_NUM, offsetof(struct jentry, f)}
	NUM_KEY(seq), NUM_KEY(time), {"kind", CK_KIND, 0}, STR_KEY(actor), STR_KEY(request_id),
	STR_KEY(consortium), STR_KEY(phase), STR_KEY(gpu), STR_KEY(allocation),
	STR_KEY(pool), NUM_KEY(gpus), NUM_KEY(start), NUM_KEY(end),
	NUM_KEY(granted_delta), NUM_KEY(committed_delta), NUM_KEY(expired_delta),
	NUM_KEY(max_gpus), STR_KEY(reason),
#undef STR_KEY
#undef NUM_KEY
};

int jentry_from_canonical_json(const json_t *o, struct jentry *e, const char **why)
{
	const json_t *salt;
	size_t want = sizeof(canon_keys) / sizeof(canon_keys[0]);

	memset(e, 0, sizeof(*e));
	*why = "an entry must be a JSON object";
	if (!json_is_object(o))
		goto fail;
	for (size_t i = 0; i < want; i++) {
		const json_t *v = json_object_get(o, canon_keys[i].key);
		*why = "an entry lacks a key of the canonical encoding, or has one of the wrong type";
		if (canon_keys[i].type == CK_NUM) {
			if (!json_is_integer(v))
				goto fail;
			*(int64_t *)((char *)e + canon_keys[i].off) = json_integer_value(v);
		} else if (canon_keys[i].type == CK_STR) {
			if (!json_is_null(v) && !json_is_string(v))
				goto fail;
			*(char **)((char *)e + canon_keys[i].off) =
				json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
		} else if (!json_is_string(v) || jkind_parse(json_string_value(v), &e->kind) != 0) {
			*why = "an entry's kind is not a journal kind";
			goto fail;
		}
	}
	salt = json_object_get(o, "salt");
	if (salt) {
		*why = "an entry's salt is not 32 hex digits";
		if (!json_is_string(salt) ||
		    hex_decode(json_string_value(salt), json_string_length(salt), e->salt,
			       SALT_LEN) != 0)
			goto fail;
		e->salted = true;
		want++;
	}
	const json_t *extra = json_object_get(o, "extra");
	if (extra) {
		*why = "an entry's extra is not a JSON object";
		if (!json_is_object(extra))
			goto fail;
		e->extra = json_deep_copy(extra);
		want++;
	}
	*why = "an entry has a key that is not part of the canonical encoding";
	if (json_object_size(o) != want)
		goto fail;
	return 0;

fail:
	jentry_clear(e);
	return -EINVAL;
}

void jentry_salt(struct jentry *e)
{
	random_bytes(e->salt, SALT_LEN);	/* libsodium's, drawn in chunks */
	e->salted = true;
}

/*
 * The canonical text of e, the bytes jentry_canonical() returns (without
 * the NUL), in buf when it fits (cap bytes), else in *heap (malloc'd, to
 * free; NULL when buf was used). Returns where the text is; *len its
 * length. json_dumpb() into the caller's buffer skips the growing buffer
 * and the final copy of json_dumps(), a third of the dump's time.
 */
static const char *canonical_into(const struct jentry *e, char *buf, size_t cap,
				  char **heap, size_t *len)
{
	const size_t flags = JSON_COMPACT | JSON_SORT_KEYS;
	json_t *o = jentry_canonical_json(e);
	size_t n = json_dumpb(o, buf, cap, flags);

	*heap = NULL;
	if (n == 0)
		abort();	/* only out-of-memory makes dumps fail here */
	if (n > cap) {		/* too long for buf: dump it again */
		*heap = xmalloc(n);
		if (json_dumpb(o, *heap, n, flags) != n)
			abort();
	}
	json_decref(o);
	*len = n;
	return *heap ? *heap : buf;
}

/* Room for a canonical text on the stack: an entry without a long reason fits. */
#define CANON_STACK 2048

/* SHA-256(hex(prev) ":" canon), the step of both chains. */
static void link_hash(const uint8_t prev_hash[HASH_LEN], const char *canon, size_t len,
		      uint8_t out[HASH_LEN])
{
	char prev[HASH_HEX_LEN + 1];
	crypto_hash_sha256_state st;

	hash_hex(prev_hash, prev);
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)prev, HASH_HEX_LEN);
	crypto_hash_sha256_update(&st, (const unsigned char *)":", 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)canon, len);
	crypto_hash_sha256_final(&st, out);
}

static void chain_hash(const struct jentry *e, const uint8_t prev_hash[HASH_LEN],
		       uint8_t out[HASH_LEN])
{
	char stack[CANON_STACK], *heap;
	size_t len;
	const char *canon = canonical_into(e, stack, sizeof(stack), &heap, &len);

	link_hash(prev_hash, canon, len, out);
	free(heap);
}

static void compute_hash(const struct jentry *e, uint8_t out[HASH_LEN])
{
	chain_hash(e, e->prev_hash, out);
}

void jentry_view_hash(const struct jentry *e, const uint8_t prev[HASH_LEN],
		      uint8_t out[HASH_LEN])
{
	chain_hash(e, prev, out);
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
			  e->kind == J_REINSTATE || e->kind == J_USAGE;

	hash_hex(e->prev_hash, prev);
	hash_hex(e->hash, hash);
	json_t *o = json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o,"
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
			 "gpus", (e->allocation && e->kind != J_USAGE) || e->kind == J_POOL_CUT ?
				 json_integer(e->gpus) : json_null(),
			 /* a usage entry has the job's end only */
			 "start", time_or_null(e->start, (has_window && e->kind != J_USAGE) ||
						      e->kind == J_POOL_CUT || e->kind == J_PHASE, tz),
			 "end", time_or_null(e->end, (has_window && e->kind != J_REINSTATE) ||
						    e->kind == J_PHASE, tz),
			 "granted_delta_gpu_seconds", (json_int_t)e->granted_delta,
			 "committed_delta_gpu_seconds", (json_int_t)e->committed_delta,
			 "expired_delta_gpu_seconds", (json_int_t)e->expired_delta,
			 "max_gpus", e->kind == J_CAP ? json_integer(e->max_gpus) : json_null(),
			 "reason", str_or_null(e->reason),
			 "prev_hash", prev,
			 "hash", hash);
	char salt[SALT_HEX_LEN + 1], view[HASH_HEX_LEN + 1];
	if (e->salted)
		sodium_bin2hex(salt, sizeof(salt), e->salt, SALT_LEN);
	hash_hex(e->view_hash, view);
	json_object_set_new(o, "salt", e->salted ? json_string(salt) : json_null());
	json_object_set_new(o, "view_hash", e->consortium ? json_string(view) : json_null());
	json_object_set_new(o, "extra", e->extra ? json_deep_copy(e->extra) : json_null());
	return o;
}

json_t *jentry_to_view_json(const struct jentry *e, int32_t tz)
{
	json_t *o = jentry_to_json(e, tz);
	json_object_del(o, "prev_hash");
	json_object_del(o, "hash");
	return o;
}

/* --- views ------------------------------------------------------------- */

static struct jview *view_find(const struct jviews *vs, const char *consortium)
{
	for (size_t i = 0; i < vs->n; i++)
		if (strcmp(vs->v[i].consortium, consortium) == 0)
			return &vs->v[i];
	return NULL;
}

static struct jview *view_get(struct jviews *vs, const char *consortium)
{
	struct jview *v = view_find(vs, consortium);
	if (v)
		return v;
	vs->v = xreallocarray(vs->v, vs->n + 1, sizeof(*vs->v));
	v = &vs->v[vs->n++];
	memset(v, 0, sizeof(*v));
	v->consortium = xstrdup(consortium);
	return v;
}

const struct jview *jviews_find(const struct jviews *vs, const char *consortium)
{
	return view_find(vs, consortium);
}

void jviews_set(struct jviews *vs, const char *consortium, int64_t entries,
		int64_t last_seq, const uint8_t head[HASH_LEN])
{
	struct jview *v = view_get(vs, consortium);
	v->entries = entries;
	v->last_seq = last_seq;
	memcpy(v->head, head, HASH_LEN);
}

/* Advances the view of e's consortium by hash h. */
static void view_advance(struct jviews *vs, const struct jentry *e, const uint8_t h[HASH_LEN])
{
	struct jview *v = view_get(vs, e->consortium);
	v->entries++;
	v->last_seq = e->seq;
	memcpy(v->head, h, HASH_LEN);
}

void jviews_seal(struct jviews *vs, struct jentry *e)
{
	static const uint8_t zeros[HASH_LEN];
	if (e->consortium == NULL)
		return;
	const struct jview *v = view_find(vs, e->consortium);
	jentry_view_hash(e, v ? v->head : zeros, e->view_hash);
	view_advance(vs, e, e->view_hash);
}

void jentry_seal_views(struct jentry *e, struct jviews *vs)
{
	static const uint8_t zeros[HASH_LEN];
	char stack[CANON_STACK], *heap;
	size_t len;
	const char *canon = canonical_into(e, stack, sizeof(stack), &heap, &len);

	link_hash(e->prev_hash, canon, len, e->hash);
	if (e->consortium != NULL) {
		const struct jview *v = view_find(vs, e->consortium);
		link_hash(v ? v->head : zeros, canon, len, e->view_hash);
		view_advance(vs, e, e->view_hash);
	}
	free(heap);
}

/* The view check of e whose canonical text is canon (len bytes). */
static bool view_check(struct jviews *vs, const struct jentry *e, const char *canon, size_t len)
{
	static const uint8_t zeros[HASH_LEN];
	uint8_t want[HASH_LEN];
	if (e->consortium == NULL)
		return true;
	const struct jview *v = view_find(vs, e->consortium);
	link_hash(v ? v->head : zeros, canon, len, want);
	view_advance(vs, e, want);
	return sodium_memcmp(want, e->view_hash, HASH_LEN) == 0;
}

bool jviews_check(struct jviews *vs, const struct jentry *e)
{
	char stack[CANON_STACK], *heap;
	size_t len;
	const char *canon = canonical_into(e, stack, sizeof(stack), &heap, &len);
	bool ok = view_check(vs, e, canon, len);
	free(heap);
	return ok;
}

void jentry_check(const struct jentry *e, struct jviews *vs, bool *hash_ok, bool *view_ok)
{
	uint8_t h[HASH_LEN];
	char stack[CANON_STACK], *heap;
	size_t len;
	const char *canon = canonical_into(e, stack, sizeof(stack), &heap, &len);

	link_hash(e->prev_hash, canon, len, h);
	*hash_ok = sodium_memcmp(h, e->hash, HASH_LEN) == 0;
	*view_ok = view_check(vs, e, canon, len);
	free(heap);
}

void jviews_clear(struct jviews *vs)
{
	for (size_t i = 0; i < vs->n; i++)
		free(vs->v[i].consortium);
	free(vs->v);
	memset(vs, 0, sizeof(*vs));
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

/* --- config entries ---------------------------------------------------- */

/* The items of list (objects with an "id") that other lacks by id, or holds otherwise. */
static void section_diff(const json_t *prev, const json_t *cur, json_t *added, json_t *changed,
			 json_t *removed)
{
	size_t i, j;
	json_t *a, *b;

	json_array_foreach(cur, i, a) {
		const json_t *old = NULL;
		json_array_foreach(prev, j, b)
			if (json_equal(json_object_get(a, "id"), json_object_get(b, "id")))
				old = b;
		if (old == NULL)
			json_array_append(added, json_object_get(a, "id"));
		else if (!json_equal(old, a))
			json_array_append(changed, json_object_get(a, "id"));
	}
	json_array_foreach(prev, j, b) {
		bool kept = false;
		json_array_foreach(cur, i, a)
			kept = kept || json_equal(json_object_get(a, "id"), json_object_get(b, "id"));
		if (!kept)
			json_array_append(removed, json_object_get(b, "id"));
	}
}

static const char *const config_sections[] = {"phases", "pools", "consortia"};

json_t *jconfig_summary(const json_t *prev, const json_t *cur)
{
	json_t *o = json_object();

	for (size_t k = 0; k < sizeof(config_sections) / sizeof(config_sections[0]); k++) {
		const char *sec = config_sections[k];
		json_t *added = json_array(), *changed = json_array(), *removed = json_array();
		section_diff(prev ? json_object_get(prev, sec) : NULL, json_object_get(cur, sec),
			     added, changed, removed);
		json_object_set_new(o, sec, json_pack("{s:o, s:o, s:o}", "added", added,
						      "changed", changed, "removed", removed));
	}
	json_object_set_new(o, "program", json_boolean(
		!json_equal(prev ? json_object_get(prev, "program") : NULL,
			    json_object_get(cur, "program"))));
	return o;
}

char *jconfig_summary_text(const json_t *summary)
{
	static const char *const how[] = {"added", "changed", "removed"};
	char *text = xstrdup("");

	if (json_is_true(json_object_get(summary, "program"))) {
		free(text);
		text = xstrdup("program changed");
	}
	for (size_t k = 0; k < sizeof(config_sections) / sizeof(config_sections[0]); k++) {
		const json_t *sec = json_object_get(summary, config_sections[k]);
		for (size_t h = 0; h < 3; h++) {
			const json_t *ids = json_object_get(sec, how[h]);
			size_t i;
			json_t *id;
			if (json_array_size(ids) == 0)
				continue;
			char *part = xasprintf("%s %s:", config_sections[k], how[h]);
			json_array_foreach(ids, i, id) {
				char *next = xasprintf("%s%s %s", part, i ? "," : "",
						       json_is_string(id) ? json_string_value(id) : "?");
				free(part);
				part = next;
			}
			char *next = xasprintf("%s%s%s", text, *text ? "; " : "", part);
			free(part);
			free(text);
			text = next;
		}
	}
	if (*text == '\0') {
		free(text);
		text = xstrdup("no change of the program's structure");
	}
	return text;
}
