/* SPDX-License-Identifier: MIT */
/*
 * Journal entries: the append-only record of every change of the ledger,
 * each chained to the one before by SHA-256 (libsodium) over a canonical
 * encoding, so that any edit, deletion or reordering of the history shows.
 * Balances, consortium states and allocations are caches of the journal.
 *
 * Canonical encoding (documented in README.md): the entry as a JSON object
 * with exactly the keys below, sorted, compact (no spaces), UTF-8 unescaped,
 * absent values as null, instants as integer Unix seconds; then
 *   hash = SHA-256(prev_hash_hex ":" canonical_json)
 * where prev_hash_hex is the 64 lowercase hex digits of the previous
 * entry's hash (64 zeros before the first entry).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define JOURNAL_KINDS(X)		\
	X(GRANT, "grant")		\
	X(ADJUST, "adjust")		\
	X(CAP, "cap")			\
	X(RESERVE, "reserve")		\
	X(CANCEL, "cancel")		\
	X(RELEASE, "release")		\
	X(REVOKE, "revoke")		\
	X(EXPIRE, "expire")		\
	X(ELIMINATE, "eliminate")	\
	X(REINSTATE, "reinstate")

enum jkind {
#define X(e, s) J_##e,
	JOURNAL_KINDS(X)
#undef X
	J__COUNT
};

#define HASH_LEN 32
#define HASH_HEX_LEN 64

/*
 * One entry. Strings are owned by the entry (jentry_clear frees them);
 * NULL means absent. Which fields a kind uses:
 *   grant/adjust: consortium phase gpu granted_delta (+/-)
 *   cap:          consortium phase gpu max_gpus (0 = no cap)
 *   reserve:      consortium phase gpu allocation pool gpus start end
 *                 committed_delta (= cost)
 *   cancel/release/revoke: consortium phase gpu allocation pool gpus
 *                 start end (the new end) committed_delta (refund, <= 0);
 *                 revoke of quota (no allocation): granted_delta (<= 0)
 *   expire:       consortium phase gpu expired_delta (> 0)
 *   eliminate:    consortium start (effective) end (designation_until)
 *   reinstate:    consortium start (effective)
 */
struct jentry {
	int64_t seq;		/* 1, 2, ... */
	int64_t time;		/* when it was written (daemon clock) */
	enum jkind kind;
	char *actor;
	char *request_id;
	char *consortium;
	char *phase;
	char *gpu;
	char *allocation;
	char *pool;
	int64_t gpus;
	int64_t start;
	int64_t end;
	int64_t granted_delta;
	int64_t committed_delta;
	int64_t expired_delta;
	int64_t max_gpus;
	char *reason;
	uint8_t prev_hash[HASH_LEN];
	uint8_t hash[HASH_LEN];
};

const char *jkind_name(enum jkind k);
int jkind_parse(const char *s, enum jkind *k);

void jentry_clear(struct jentry *e);
/* Deep copy; dst is overwritten. */
void jentry_copy(struct jentry *dst, const struct jentry *src);

/* The canonical JSON text (caller frees). */
char *jentry_canonical(const struct jentry *e);
/* Computes e->hash from e->prev_hash and the other fields. */
void jentry_seal(struct jentry *e);
/* Whether e->hash matches its contents. */
bool jentry_hash_ok(const struct jentry *e);

/* 64 lowercase hex digits of hash. */
void hash_hex(const uint8_t hash[HASH_LEN], char out[HASH_HEX_LEN + 1]);
/* The inverse, either case, by hex_decode(): 0, or -EINVAL. */
int hash_unhex(const char *hex, uint8_t hash[HASH_LEN]);

/*
 * The entry as the API shows it (DESIGN.md keys), times in ISO 8601 at
 * tz_offset. New reference.
 */
json_t *jentry_to_json(const struct jentry *e, int32_t tz_offset);

/* A growable list of entries. */
struct jlist {
	struct jentry *v;
	size_t n, cap;
};

/* Appends a zeroed entry and returns it. */
struct jentry *jlist_push(struct jlist *l);
void jlist_clear(struct jlist *l);
