/* SPDX-License-Identifier: MIT */
/*
 * Journal entries: the canonical encoding is exactly what README.md
 * documents (so an auditor can rebuild it), the chain hash covers every
 * field, and the API view carries DESIGN.md's keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "daemon/journal.h"
#include "daemon/util.h"

static void sample(struct jentry *e)
{
	memset(e, 0, sizeof(*e));
	e->seq = 7;
	e->time = 1767225600;	/* 2026-01-01T09:00:00+09:00 */
	e->kind = J_RESERVE;
	e->actor = xstrdup("user:root");
	e->request_id = xstrdup("k-1");
	e->consortium = xstrdup("lg");
	e->phase = xstrdup("p1");
	e->gpu = xstrdup("B200");
	e->allocation = xstrdup("A-000001");
	e->pool = xstrdup("skt-b200");
	e->gpus = 8;
	e->start = 1767225600;
	e->end = 1767229200;
	e->committed_delta = 28800;
	e->reason = xstrdup("LG 독자 AI \"run\"");
}

static void test_canonical_text(void **state)
{
	struct jentry e;
	sample(&e);
	char *s = jentry_canonical(&e);
	assert_string_equal(s,
		"{\"actor\":\"user:root\",\"allocation\":\"A-000001\",\"committed_delta\":28800,"
		"\"consortium\":\"lg\",\"end\":1767229200,\"expired_delta\":0,\"gpu\":\"B200\","
		"\"gpus\":8,\"granted_delta\":0,\"kind\":\"reserve\",\"max_gpus\":0,"
		"\"phase\":\"p1\",\"pool\":\"skt-b200\",\"reason\":\"LG 독자 AI \\\"run\\\"\","
		"\"request_id\":\"k-1\",\"seq\":7,\"start\":1767225600,\"time\":1767225600}");
	free(s);
	jentry_clear(&e);
}

static void test_hash_is_documented_sha256(void **state)
{
	struct jentry e;
	uint8_t want[HASH_LEN];
	char prev[HASH_HEX_LEN + 1];

	/* a short entry, whose text the seal builds on the stack, and one of a
	 * reason too long for that, salted, with both hashes sealed at once */
	for (int long_reason = 0; long_reason < 2; long_reason++) {
		struct jviews vs = {0};
		sample(&e);
		if (long_reason) {
			free(e.reason);
			e.reason = xmalloc(4001);
			memset(e.reason, 'x', 4000);
			e.reason[4000] = '\0';
			jentry_salt(&e);
		}
		memset(e.prev_hash, 0xab, HASH_LEN);
		jentry_seal(&e);
		hash_hex(e.prev_hash, prev);
		char *canon = jentry_canonical(&e);
		assert_true(strlen(canon) > (long_reason ? 4000 : 300));
		char *msg = xasprintf("%s:%s", prev, canon);
		crypto_hash_sha256(want, (const unsigned char *)msg, strlen(msg));
		assert_memory_equal(want, e.hash, HASH_LEN);
		assert_true(jentry_hash_ok(&e));
		memset(e.hash, 0, HASH_LEN);
		jentry_seal_views(&e, &vs);
		assert_memory_equal(want, e.hash, HASH_LEN);
		/* the first of its consortium's view: the same step from zeros */
		free(msg);
		msg = xasprintf("%064d:%s", 0, canon);
		crypto_hash_sha256(want, (const unsigned char *)msg, strlen(msg));
		assert_memory_equal(want, e.view_hash, HASH_LEN);
		free(msg);
		free(canon);
		jviews_clear(&vs);
		jentry_clear(&e);
	}
}

static void test_every_field_is_covered(void **state)
{
	struct jentry e;
	sample(&e);
	jentry_seal(&e);

	e.committed_delta++;
	assert_false(jentry_hash_ok(&e));
	e.committed_delta--;
	e.gpus = 9;
	assert_false(jentry_hash_ok(&e));
	e.gpus = 8;
	e.prev_hash[0] ^= 1;
	assert_false(jentry_hash_ok(&e));
	e.prev_hash[0] ^= 1;
	free(e.reason);
	e.reason = NULL;
	assert_false(jentry_hash_ok(&e));
	e.reason = xstrdup("LG 독자 AI \"run\"");
	e.seq = 8;
	assert_false(jentry_hash_ok(&e));
	e.seq = 7;
	assert_true(jentry_hash_ok(&e));
	jentry_clear(&e);
}

/* A salted entry: "salt" joins the sorted keys; the hash covers it. */
static void test_salted_canonical(void **state)
{
	struct jentry e;
	sample(&e);
	e.salted = true;
	for (int i = 0; i < SALT_LEN; i++)
		e.salt[i] = (uint8_t)(0x10 + i);
	char *s = jentry_canonical(&e);
	assert_non_null(strstr(s, "\"request_id\":\"k-1\",\"salt\":\"101112131415161718191a1b1c1d1e1f\","
			       "\"seq\":7,"));
	free(s);
	jentry_seal(&e);
	assert_true(jentry_hash_ok(&e));
	e.salt[15] ^= 1;
	assert_false(jentry_hash_ok(&e));
	e.salt[15] ^= 1;
	e.salted = false;	/* dropping the salt is a change too */
	assert_false(jentry_hash_ok(&e));
	jentry_clear(&e);

	/* two entries alike but for their fresh salts hash apart */
	struct jentry a, b;
	sample(&a);
	sample(&b);
	jentry_salt(&a);
	jentry_salt(&b);
	assert_memory_not_equal(a.salt, b.salt, SALT_LEN);
	jentry_seal(&a);
	jentry_seal(&b);
	assert_memory_not_equal(a.hash, b.hash, HASH_LEN);
	jentry_clear(&a);
	jentry_clear(&b);
}

/* The inverse of the canonical encoding gives back the same text, and refuses anything else. */
static void test_from_canonical(void **state)
{
	struct jentry e, back;
	const char *why;

	for (int salted = 0; salted < 2; salted++) {
		sample(&e);
		if (salted)
			jentry_salt(&e);
		json_t *o = jentry_canonical_json(&e);
		assert_int_equal(jentry_from_canonical_json(o, &back, &why), 0);
		char *s1 = jentry_canonical(&e), *s2 = jentry_canonical(&back);
		assert_string_equal(s1, s2);
		assert_int_equal(back.salted, salted);
		free(s1);
		free(s2);
		jentry_clear(&back);

		json_object_set_new(o, "view_hash", json_string("00"));
		assert_int_equal(jentry_from_canonical_json(o, &back, &why), -EINVAL);
		assert_non_null(strstr(why, "not part of the canonical encoding"));
		json_object_del(o, "view_hash");
		json_object_set_new(o, "gpus", json_string("8"));
		assert_int_equal(jentry_from_canonical_json(o, &back, &why), -EINVAL);
		json_object_del(o, "gpus");
		assert_int_equal(jentry_from_canonical_json(o, &back, &why), -EINVAL);
		json_object_set_new(o, "gpus", json_integer(8));
		json_object_set_new(o, "kind", json_string("steal"));
		assert_int_equal(jentry_from_canonical_json(o, &back, &why), -EINVAL);
		json_object_set_new(o, "kind", json_string("reserve"));
		json_object_set_new(o, "salt", json_string("xyz"));
		assert_int_equal(jentry_from_canonical_json(o, &back, &why), -EINVAL);
		assert_non_null(strstr(why, "salt"));
		json_decref(o);
		jentry_clear(&e);
	}
	assert_int_equal(jentry_from_canonical_json(json_null(), &back, &why), -EINVAL);
}

/*
 * extra: in the canonical encoding (sorted inside too) only when present,
 * so an entry without one keeps the text, and the hash, it always had;
 * covered by the hash, and given back by the inverse.
 */
static void test_extra(void **state)
{
	struct jentry e, back;
	const char *why;

	sample(&e);
	char *plain = jentry_canonical(&e);
	assert_null(strstr(plain, "extra"));
	jentry_seal(&e);
	uint8_t before[HASH_LEN];
	memcpy(before, e.hash, HASH_LEN);
	e.extra = json_pack("{s:b, s:{s:i, s:i}}", "oversubscribe", 1, "old", "gpus", 8, "end", 1);
	char *s = jentry_canonical(&e);
	assert_non_null(strstr(s, "\"extra\":{\"old\":{\"end\":1,\"gpus\":8},\"oversubscribe\":true},"));
	assert_false(jentry_hash_ok(&e));
	jentry_seal(&e);
	assert_memory_not_equal(before, e.hash, HASH_LEN);
	json_object_set_new(e.extra, "oversubscribe", json_false());
	assert_false(jentry_hash_ok(&e));

	json_t *o = jentry_canonical_json(&e);
	assert_int_equal(jentry_from_canonical_json(o, &back, &why), 0);
	char *s2 = jentry_canonical(&back), *s3 = jentry_canonical(&e);
	assert_string_equal(s2, s3);
	struct jentry copy;
	jentry_copy(&copy, &e);
	assert_true(json_equal(copy.extra, e.extra) && copy.extra != e.extra);
	jentry_clear(&copy);
	jentry_clear(&back);
	json_object_set_new(o, "extra", json_string("x"));
	assert_int_equal(jentry_from_canonical_json(o, &back, &why), -EINVAL);
	assert_non_null(strstr(why, "extra"));
	json_t *shown = jentry_to_json(&e, 9 * 3600);
	assert_true(json_equal(json_object_get(shown, "extra"), e.extra));
	json_decref(shown);
	json_decref(o);
	free(plain);
	free(s);
	free(s2);
	free(s3);
	jentry_clear(&e);
}

/* A config summary says what was added, changed and removed, by id; its text is the entry's reason. */
static void test_config_summary(void **state)
{
	json_t *a = json_pack("{s:{s:s}, s:[{s:s, s:i}], s:[{s:s}], s:[{s:s}, {s:s}]}",
			      "program", "name", "P", "phases", "id", "p1", "end", 1,
			      "pools", "id", "x", "consortia", "id", "lg", "id", "naver");
	json_t *b = json_deep_copy(a);
	json_object_set_new(json_array_get(json_object_get(b, "phases"), 0), "end", json_integer(2));
	json_array_remove(json_object_get(b, "consortia"), 1);
	json_array_append_new(json_object_get(b, "consortia"), json_pack("{s:s}", "id", "motif"));

	json_t *sum = jconfig_summary(a, b);
	char *text = jconfig_summary_text(sum);
	assert_string_equal(text, "phases changed: p1; consortia added: motif; consortia removed: naver");
	assert_false(json_is_true(json_object_get(sum, "program")));
	free(text);
	json_decref(sum);
	sum = jconfig_summary(a, a);
	text = jconfig_summary_text(sum);
	assert_string_equal(text, "no change of the program's structure");
	free(text);
	json_decref(sum);
	sum = jconfig_summary(NULL, a);
	text = jconfig_summary_text(sum);
	assert_string_equal(text, "program changed; phases added: p1; pools added: x; consortia added: lg, naver");
	free(text);
	json_decref(sum);
	json_decref(a);
	json_decref(b);
}

/* view_hash = SHA-256(hex(previous view hash) ":" canonical), per consortium. */
/* The request path's one-pass seal gives the hashes the two passes give. */
static void test_seal_views_once(void **state)
{
	struct jviews two = {0}, one = {0};
	struct jentry a[3], b[3];

	for (int i = 0; i < 3; i++) {
		sample(&a[i]);
		sample(&b[i]);
		a[i].seq = b[i].seq = 7 + i;
		jentry_salt(&a[i]);
		memcpy(b[i].salt, a[i].salt, SALT_LEN);
		b[i].salted = a[i].salted;
		memset(a[i].prev_hash, 0x10 + i, HASH_LEN);
		memset(b[i].prev_hash, 0x10 + i, HASH_LEN);
		if (i == 1) {	/* an entry of no consortium is in no view */
			free(a[i].consortium);
			free(b[i].consortium);
			a[i].consortium = b[i].consortium = NULL;
		}
		jentry_seal(&a[i]);
		jviews_seal(&two, &a[i]);
		jentry_seal_views(&b[i], &one);
		assert_memory_equal(a[i].hash, b[i].hash, HASH_LEN);
		assert_memory_equal(a[i].view_hash, b[i].view_hash, HASH_LEN);
		assert_true(jentry_hash_ok(&b[i]));
	}
	const struct jview *v2 = jviews_find(&two, "lg"), *v1 = jviews_find(&one, "lg");
	assert_non_null(v1);
	assert_int_equal(v1->entries, 2);
	assert_int_equal(v1->entries, v2->entries);
	assert_int_equal(v1->last_seq, v2->last_seq);
	assert_memory_equal(v1->head, v2->head, HASH_LEN);
	for (int i = 0; i < 3; i++) {
		jentry_clear(&a[i]);
		jentry_clear(&b[i]);
	}
	jviews_clear(&two);
	jviews_clear(&one);
}

static void test_views(void **state)
{
	struct jviews vs = {0}, check = {0};
	struct jentry e[3];
	uint8_t zeros[HASH_LEN] = {0}, want[HASH_LEN];
	char prev[HASH_HEX_LEN + 1];

	for (int i = 0; i < 3; i++) {
		sample(&e[i]);
		e[i].seq = 7 + i;
		jentry_salt(&e[i]);
		if (i == 1) {
			free(e[i].consortium);
			e[i].consortium = xstrdup("upstage");
		}
		jentry_seal(&e[i]);
		jviews_seal(&vs, &e[i]);
	}
	/* lg's first entry chains on zeros, its second on its first, not on upstage's */
	hash_hex(zeros, prev);
	char *canon = jentry_canonical(&e[0]);
	char *msg = xasprintf("%s:%s", prev, canon);
	crypto_hash_sha256(want, (const unsigned char *)msg, strlen(msg));
	assert_memory_equal(want, e[0].view_hash, HASH_LEN);
	free(msg);
	free(canon);
	jentry_view_hash(&e[2], e[0].view_hash, want);
	assert_memory_equal(want, e[2].view_hash, HASH_LEN);
	jentry_view_hash(&e[1], zeros, want);
	assert_memory_equal(want, e[1].view_hash, HASH_LEN);

	const struct jview *lg = jviews_find(&vs, "lg");
	assert_non_null(lg);
	assert_int_equal(lg->entries, 2);
	assert_int_equal(lg->last_seq, 9);
	assert_memory_equal(lg->head, e[2].view_hash, HASH_LEN);
	assert_null(jviews_find(&vs, "motif"));

	/* the check recomputes; one altered view hash shows once */
	e[0].view_hash[0] ^= 1;
	assert_false(jviews_check(&check, &e[0]));
	assert_true(jviews_check(&check, &e[1]));
	assert_true(jviews_check(&check, &e[2]));
	for (int i = 0; i < 3; i++)
		jentry_clear(&e[i]);
	jviews_clear(&vs);
	jviews_clear(&check);
}

static void test_kind_names(void **state)
{
	enum jkind k;
	assert_int_equal(jkind_parse("expire", &k), 0);
	assert_int_equal(k, J_EXPIRE);
	assert_string_equal(jkind_name(J_REINSTATE), "reinstate");
	assert_int_not_equal(jkind_parse("bogus", &k), 0);
}

static void test_hex_round_trip(void **state)
{
	uint8_t h[HASH_LEN], back[HASH_LEN];
	char hex[HASH_HEX_LEN + 1];
	for (int i = 0; i < HASH_LEN; i++)
		h[i] = (uint8_t)(i * 7);
	hash_hex(h, hex);
	assert_int_equal(hash_unhex(hex, back), 0);
	assert_memory_equal(h, back, HASH_LEN);
	assert_int_not_equal(hash_unhex("abc", back), 0);
	/* one decoder (hex_decode, libsodium) for hashes and token sha256s */
	for (char *p = hex; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	memset(back, 0, sizeof(back));
	assert_int_equal(hash_unhex(hex, back), 0);
	assert_memory_equal(h, back, HASH_LEN);
	char longer[HASH_HEX_LEN + 3];
	snprintf(longer, sizeof(longer), "%s00", hex);
	assert_int_not_equal(hash_unhex(longer, back), 0);
	hex[5] = 'z';
	assert_int_not_equal(hash_unhex(hex, back), 0);
}

static void test_api_view(void **state)
{
	struct jentry e;
	sample(&e);
	jentry_seal(&e);
	json_t *o = jentry_to_json(&e, 9 * 3600);
	assert_int_equal(json_integer_value(json_object_get(o, "seq")), 7);
	assert_string_equal(json_string_value(json_object_get(o, "kind")), "reserve");
	assert_string_equal(json_string_value(json_object_get(o, "time")), "2026-01-01T09:00:00+09:00");
	assert_string_equal(json_string_value(json_object_get(o, "end")), "2026-01-01T10:00:00+09:00");
	assert_int_equal(json_integer_value(json_object_get(o, "committed_delta_gpu_seconds")), 28800);
	assert_int_equal(json_integer_value(json_object_get(o, "granted_delta_gpu_seconds")), 0);
	assert_true(json_is_null(json_object_get(o, "max_gpus")));
	assert_int_equal(strlen(json_string_value(json_object_get(o, "hash"))), 64);
	assert_true(json_is_null(json_object_get(o, "salt")));
	assert_int_equal(strlen(json_string_value(json_object_get(o, "view_hash"))), 64);
	json_decref(o);

	/* a consortium's view: its salt and view hash, none of the global chain */
	jentry_salt(&e);
	o = jentry_to_view_json(&e, 9 * 3600);
	assert_null(json_object_get(o, "hash"));
	assert_null(json_object_get(o, "prev_hash"));
	assert_int_equal(strlen(json_string_value(json_object_get(o, "salt"))), 32);
	assert_int_equal(strlen(json_string_value(json_object_get(o, "view_hash"))), 64);
	assert_int_equal(json_integer_value(json_object_get(o, "seq")), 7);
	json_decref(o);
	jentry_clear(&e);
}

static void test_jlist(void **state)
{
	struct jlist l = {0};
	for (int i = 0; i < 10; i++) {
		struct jentry *e = jlist_push(&l);
		e->reason = xasprintf("r%d", i);
	}
	assert_int_equal(l.n, 10);
	assert_string_equal(l.v[9].reason, "r9");
	jlist_clear(&l);
	assert_int_equal(l.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canonical_text),
		cmocka_unit_test(test_hash_is_documented_sha256),
		cmocka_unit_test(test_every_field_is_covered),
		cmocka_unit_test(test_salted_canonical),
		cmocka_unit_test(test_from_canonical),
		cmocka_unit_test(test_extra),
		cmocka_unit_test(test_config_summary),
		cmocka_unit_test(test_views),
		cmocka_unit_test(test_seal_views_once),
		cmocka_unit_test(test_kind_names),
		cmocka_unit_test(test_hex_round_trip),
		cmocka_unit_test(test_api_view),
		cmocka_unit_test(test_jlist),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
