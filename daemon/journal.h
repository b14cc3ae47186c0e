/* SPDX-License-Identifier: MIT */
/*
 * Journal entries: the append-only record of every change of the ledger,
 * each chained to the one before by SHA-256 (libsodium) over a canonical
 * encoding, so that any edit, deletion or reordering of the history shows.
 * Balances, consortium states and allocations are caches of the journal.
 *
 * Canonical encoding (documented in README.md): the entry as a JSON object
 * with exactly the keys below, sorted, compact (no spaces), UTF-8 unescaped,
 * absent values as null, instants as integer Unix seconds, and the entry's
 * random salt as 32 lowercase hex digits (key "salt", absent from entries
 * written before schema version 3, whose encoding is unchanged); then
 *   hash = SHA-256(prev_hash_hex ":" canonical_json)
 * where prev_hash_hex is the 64 lowercase hex digits of the previous
 * entry's hash (64 zeros before the first entry). The salt makes a hash
 * say nothing about an entry its reader may not see.
 *
 * Each consortium's entries form a second chain of their own, its view:
 *   view_hash = SHA-256(prev_view_hash_hex ":" canonical_json)
 * over that consortium's entries only (64 zeros before its first one), so
 * a consortium can check its history without seeing anyone else's.
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
	X(REINSTATE, "reinstate")	\
	X(TRANSFER_OUT, "transfer_out")	\
	X(TRANSFER_IN, "transfer_in")	\
	X(CONFIG, "config")		\
	X(MODIFY, "modify")		\
	X(POOL_CUT, "pool_cut")		\
	X(PHASE, "phase")		\
	X(USAGE, "usage")

enum jkind {
#define X(e, s) J_##e,
	JOURNAL_KINDS(X)
#undef X
	J__COUNT
};

#define HASH_LEN 32
#define HASH_HEX_LEN 64
#define SALT_LEN 16		/* 128 random bits */
#define SALT_HEX_LEN 32

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
 *   transfer_out: consortium (NULL: the program reserve) phase gpu
 *                 granted_delta (< 0); extra {"oversubscribe": true} when
 *                 the pair was allowed past the procured budget
 *   transfer_in:  consortium phase gpu granted_delta (> 0), right after
 *                 its transfer_out, with the same request id
 *   config:       no consortium; extra {"sha256", "structure", "summary"}:
 *                 the file's SHA-256, the program's structure (phases,
 *                 pools, consortia) and what changed since the last one
 *   usage:        consortium phase gpu end (when the job ended), and
 *                 allocation pool when it ran in one; extra {"source",
 *                 "job_id", "used_gpu_seconds"}: metered use, which moves
 *                 no granted or committed amount
 *   modify:       consortium phase gpu allocation pool gpus start end (the
 *                 new shape) committed_delta (new cost - old cost); extra
 *                 {"old": {"pool", "gpus", "start", "end", "cost"}}
 *   pool_cut:     no consortium; pool gpu gpus (what the pool holds from
 *                 then on) start (from when); the revoke entries of what
 *                 it cut follow it
 *   phase:        no consortium; phase start end (the new end); extra
 *                 {"old_end", "next" (the phase whose start moved with it,
 *                 or absent), "cut"}; revoke entries of what it cut and
 *                 expire entries with a negative amount (what the phase's
 *                 end had expired, given back) follow it
 * A grant may also carry extra {"oversubscribe": true}.
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
	/*
	 * Kind-specific fields, a JSON object (owned), or NULL. In the
	 * canonical encoding under key "extra" only when present, so the
	 * hashes of entries without one are those they always had.
	 */
	json_t *extra;
	bool salted;		/* false only for entries older than schema 3 */
	uint8_t salt[SALT_LEN];
	uint8_t prev_hash[HASH_LEN];
	uint8_t hash[HASH_LEN];
	uint8_t view_hash[HASH_LEN];	/* its consortium's chain; zeros without one */
};

const char *jkind_name(enum jkind k);
int jkind_parse(const char *s, enum jkind *k);

void jentry_clear(struct jentry *e);
/* Deep copy; dst is overwritten. */
void jentry_copy(struct jentry *dst, const struct jentry *src);

/*
 * What a usage entry's extra holds: its source, job id and metered
 * GPU-seconds (pointers into e->extra, valid while it lives). 0, or
 * -EINVAL when e is no usage entry or its extra lacks one of them, has
 * one of the wrong type or a negative amount.
 */
int jentry_usage_fields(const struct jentry *e, const char **source, const char **job_id,
			int64_t *gpu_seconds);
/* The extra of a usage entry (new reference). */
json_t *jentry_usage_extra(const char *source, const char *job_id, int64_t gpu_seconds);

/* The canonical JSON text (caller frees). */
char *jentry_canonical(const struct jentry *e);
/* The canonical encoding as a JSON object (new reference). */
json_t *jentry_canonical_json(const struct jentry *e);
/*
 * The inverse, strictly: every canonical key with its type, "salt"
 * optional, nothing else. 0 and e filled (jentry_clear() it), or -EINVAL
 * with *why (static) naming what is wrong.
 */
int jentry_from_canonical_json(const json_t *o, struct jentry *e, const char **why);
/* Gives e a fresh random salt (libsodium's randombytes). */
void jentry_salt(struct jentry *e);
/* Computes e->hash from e->prev_hash and the other fields. */
void jentry_seal(struct jentry *e);
/* Whether e->hash matches its contents. */
bool jentry_hash_ok(const struct jentry *e);
/* The view hash of e after prev, its consortium's view hash before it. */
void jentry_view_hash(const struct jentry *e, const uint8_t prev[HASH_LEN],
		      uint8_t out[HASH_LEN]);

/* 64 lowercase hex digits of hash. */
void hash_hex(const uint8_t hash[HASH_LEN], char out[HASH_HEX_LEN + 1]);
/* The inverse, either case, by hex_decode(): 0, or -EINVAL. */
int hash_unhex(const char *hex, uint8_t hash[HASH_LEN]);

/*
 * The entry as the API shows it to admins and operators (DESIGN.md keys,
 * the global chain's prev_hash and hash, the salt and the view hash), times
 * in ISO 8601 at tz_offset. New reference.
 */
json_t *jentry_to_json(const struct jentry *e, int32_t tz_offset);
/*
 * The entry as its own consortium sees it: the same without prev_hash and
 * hash, which belong to the global chain and would let a reader guess the
 * entries between its own. New reference.
 */
json_t *jentry_to_view_json(const struct jentry *e, int32_t tz_offset);

/*
 * A statement (GET /v1/statement, `gpuledger statement`): one consortium's
 * entries in their canonical encoding, each with its view_hash, and the
 * view hash they continue. Its "statement" key names this format.
 */
#define JOURNAL_STATEMENT_FORMAT "gpuledger-statement-1"

/*
 * The heads of every consortium's view chain: how many entries it has, its
 * last seq and view hash. Used by whoever seals entries (the ledger),
 * checks them (the audit) or fills them in (the store's migration).
 */
struct jview {
	char *consortium;
	int64_t entries;
	int64_t last_seq;
	uint8_t head[HASH_LEN];
};

struct jviews {
	struct jview *v;
	size_t n;
};

/* The consortium's head, or NULL when it has no entry yet. */
const struct jview *jviews_find(const struct jviews *vs, const char *consortium);
/* Sets a consortium's head (loading persisted state). */
void jviews_set(struct jviews *vs, const char *consortium, int64_t entries,
		int64_t last_seq, const uint8_t head[HASH_LEN]);
/*
 * Links e into its consortium's view: sets e->view_hash (from e's other
 * fields, so seal e first) and advances the head. An entry without a
 * consortium belongs to no view and is left alone.
 */
void jviews_seal(struct jviews *vs, struct jentry *e);
/*
 * jentry_seal(e) then jviews_seal(vs, e), building the canonical encoding
 * once for both hashes: what a new entry costs on the request path.
 */
void jentry_seal_views(struct jentry *e, struct jviews *vs);
/*
 * Whether e->view_hash is the one its consortium's view expects; the head
 * advances by the expected hash either way, so that one altered view hash
 * is reported once. True for an entry without a consortium.
 */
bool jviews_check(struct jviews *vs, const struct jentry *e);
/*
 * Both checks of e at the cost of one encoding (the audit's): whether its
 * hash matches its contents (jentry_hash_ok()), and jviews_check().
 */
void jentry_check(const struct jentry *e, struct jviews *vs, bool *hash_ok, bool *view_ok);
void jviews_clear(struct jviews *vs);

/*
 * A config entry's summary: what changed from the program structure prev
 * (NULL: none journaled before) to cur, as {"phases", "pools",
 * "consortia": {"added", "changed", "removed": [ids]}, "program": bool}.
 * The structure is config_structure()'s. New reference. The ledger writes
 * it and the audit recomputes it from the structures of consecutive
 * config entries.
 */
json_t *jconfig_summary(const json_t *prev, const json_t *cur);
/* The summary in words, the entry's reason ("consortia added: motif"). Caller frees. */
char *jconfig_summary_text(const json_t *summary);

/* A growable list of entries. */
struct jlist {
	struct jentry *v;
	size_t n, cap;
};

/* Appends a zeroed entry and returns it. */
struct jentry *jlist_push(struct jlist *l);
void jlist_clear(struct jlist *l);
