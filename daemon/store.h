/* SPDX-License-Identifier: MIT */
/*
 * The store: the ledger on disk, in SQLite. The journal is the truth; the
 * balances, allocations and consortium-state tables are caches that
 * store_append() keeps in step with each entry inside the same
 * transaction. Schema files schema/NNNN-*.sql are embedded at build time and
 * applied in order under PRAGMA user_version. WAL, synchronous=FULL,
 * foreign keys, a busy timeout; the file is created 0600. Only store.c
 * includes <sqlite3.h>; SQLite result codes become negative errno here:
 * SQLITE_BUSY/LOCKED -> -EBUSY, SQLITE_FULL -> -ENOSPC, SQLITE_IOERR -> -EIO,
 * SQLITE_CORRUPT/NOTADB -> -EILSEQ, a constraint -> -EEXIST, else -EIO.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/journal.h"
#include "daemon/model.h"

struct store;

/* What store_open_flags() may do about the file at path, as open(2)'s O_CREAT and O_EXCL. */
enum {
	STORE_CREATE = 1,	/* create the file (mode 0600) when it is missing */
	STORE_EXCL = 2,		/* with STORE_CREATE: refuse, -EEXIST, a file that exists */
};

/*
 * Opens and migrates the database at path (":memory:" for tests) and
 * gives it a ledger id if it has none. Without STORE_CREATE a missing
 * file is refused with -ENOENT and a file that holds no schema (an empty
 * file) with -ENODATA: a normal start never makes a new, empty ledger in
 * place of the one it was told to serve. A database of a newer schema
 * version than this build knows is refused with -EPROTO. When STORE_EXCL
 * created the file and a later step fails, the file is removed again. On
 * failure *cause gets a malloc'd message (caller frees).
 */
int store_open_flags(const char *path, int flags, struct store **out, char **cause);
/* store_open_flags(path, STORE_CREATE, ...). */
int store_open(const char *path, struct store **out, char **cause);
void store_close(struct store *s);

/* The ledger id: 32 hex digits, fixed for the life of the database (static in s). */
#define STORE_LEDGER_ID_LEN 32
const char *store_ledger_id(const struct store *s);

/*
 * Whether the database file and its WAL are still the files at their
 * paths (same device and inode as when they were opened, still linked),
 * so that what commits is what a restart will read. 0, or -ESTALE with
 * store_errmsg() saying which file was removed or replaced; from then on
 * the store stays stale. store_commit() checks this before and after each
 * COMMIT and fails with -ESTALE, after copying the committed part of a
 * removed WAL into the database file when that file is still in place.
 * 0 for ":memory:".
 */
int store_check_identity(struct store *s);

/*
 * Moves WAL checkpoints off s's commits: no automatic checkpoint in a
 * COMMIT any more; a thread of the store's own, on a connection of its own,
 * checkpoints (PASSIVE) once a commit has left 1000 frames or more in the
 * WAL, and waits for the writer (RESTART) past 10000, so the WAL stays
 * bounded. A failed fsync of a checkpoint fails every later store_commit()
 * with -ENOTRECOVERABLE. store_close() stops the thread. 0 (also for
 * ":memory:", which has no WAL), or a negative errno with *cause malloc'd.
 */
int store_wal_background(struct store *s, char **cause);
/* How many checkpoints the thread has run (0 without one). */
uint64_t store_wal_checkpoints(const struct store *s);

/*
 * A read-only connection to the database at path, which must exist and be
 * migrated already: for an audit on another thread while the daemon
 * writes (WAL readers see one committed state). Nothing is created or
 * migrated; store_check_identity() is not for it.
 */
int store_open_readonly(const char *path, struct store **out, char **cause);

/*
 * Whether SQLite locks a mutex around each call on s's connection: false,
 * one thread uses it at a time (see OPEN_FLAGS in store.c). For the tests.
 */
bool store_serialized(const struct store *s);
/* One read snapshot over several reads (BEGIN ... ROLLBACK). */
int store_read_begin(struct store *s);
void store_read_end(struct store *s);

/*
 * The audit checkpoint (schema 0008): the seq and hash of the last entry
 * whose chain an audit found sound, and every consortium's view head as it
 * stood there (schema 0013). get: 0, or -ENOENT when there is none. set
 * (which replaces the heads with views) and clear (which removes them
 * too) run in a transaction of their own (or the caller's).
 */
int store_checkpoint_get(struct store *s, int64_t *seq, uint8_t hash[HASH_LEN]);
int store_checkpoint_set(struct store *s, int64_t seq, const uint8_t hash[HASH_LEN],
			 const struct jviews *views);
int store_checkpoint_clear(struct store *s);
/* The hash and prev_hash stored with the entry at seq: 0, or -ENOENT when there is none. */
int store_journal_hash_at(struct store *s, int64_t seq, uint8_t hash[HASH_LEN],
			  uint8_t prev_hash[HASH_LEN]);

/* PRAGMA user_version, and the highest version this build embeds. */
int store_schema_version(struct store *s);
int store_schema_latest(void);

/* The last failure's message from SQLite (static until the next call). */
const char *store_errmsg(struct store *s);

/*
 * store_commit(): 0, or a negative errno. -ENOTRECOVERABLE: an fsync failed
 * (in this commit or an earlier one); the store commits nothing more, since
 * the kernel may have dropped what it could not write, and only a restart,
 * reading what is really on disk, may go on.
 */
int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/*
 * Inserts the entry and applies it to the cache tables (balances,
 * allocations, consortium state). Must run inside store_begin/commit. For a
 * reserve entry, note is the allocation's note (may be NULL).
 */
int store_append(struct store *s, const struct jentry *e, const char *note);

/*
 * Idempotency records, written in the same transaction as the change. Of
 * the request's SHA-256 a record keeps the first STORE_IDEM_HASH_LEN bytes
 * (schema 0011): 128 bits still tell a different body under the same key
 * but for a chance of 2^-128, at half the bytes of every record. Compare
 * that many.
 */
#define STORE_IDEM_HASH_LEN 16
int store_idem_put(struct store *s, const char *key,
		   const uint8_t body_hash[HASH_LEN], int status,
		   const char *response, int64_t time);
/*
 * Removes the idempotency records written before `before` among the next
 * max records in key order, after those the previous call looked at (a
 * seek and one DELETE, each its own transaction: the work per call stays
 * bounded however many there are); after the last key the next call starts
 * again at the first. *deleted says how many went.
 */
int store_idem_prune(struct store *s, int64_t before, int64_t max, int64_t *deleted);
/*
 * A record whose answer is rebuilt from the journal entry at seq (schema
 * 0010) instead of being kept: its response is NULL.
 */
int store_idem_put_ref(struct store *s, const char *key,
		       const uint8_t body_hash[HASH_LEN], int status, int64_t seq,
		       int64_t time);
/*
 * 0 and the record, or -ENOENT: *response (malloc'd, caller frees; NULL
 * for a record by reference) and *seq (0 unless by reference). body_hash
 * gets the STORE_IDEM_HASH_LEN bytes kept, zeros after them.
 */
int store_idem_lookup(struct store *s, const char *key, uint8_t body_hash[HASH_LEN],
		      int *status, char **response, int64_t *seq);
/* 0 and the record (*response malloc'd, caller frees), or -ENOENT. */
int store_idem_get(struct store *s, const char *key,
		   uint8_t body_hash[HASH_LEN], int *status, char **response);

/*
 * Iteration: the callback gets a record that is valid only during the
 * call; returning non-zero stops the iteration and that value is returned.
 */
typedef int (*store_entry_cb)(void *arg, const struct jentry *e);
typedef int (*store_alloc_cb)(void *arg, const struct alloc *a);
typedef int (*store_balance_cb)(void *arg, const struct balance *b);
typedef int (*store_cstate_cb)(void *arg, const struct cstate *c);

/* Entries with seq > since, in seq order; consortium NULL = all; limit <= 0 = no limit. */
int store_journal_each(struct store *s, int64_t since, const char *consortium,
		       int64_t limit, store_entry_cb cb, void *arg);
/*
 * The journal's changes of the program's structure (pool_cut and phase
 * entries), in seq order, from the partial index of schema 0009.
 */
int store_ledger_ops_each(struct store *s, store_entry_cb cb, void *arg);
/* How many entries (of consortium; NULL = all) have after < seq <= upto. */
int store_journal_count(struct store *s, const char *consortium, int64_t after,
			int64_t upto, int64_t *n);
/*
 * The seq of the entry (of consortium; NULL = all) with skip newer ones
 * after it (skip 0: the newest), or 0 when there are not that many: where a
 * page of the last skip entries begins (after it). Costs skip index steps,
 * not the journal's length.
 */
int store_journal_newest(struct store *s, const char *consortium, int64_t skip,
			 int64_t *seq);
/* The last entry's seq and hash (0 and zeros when empty). */
int store_journal_head(struct store *s, int64_t *seq, uint8_t hash[HASH_LEN]);
/*
 * The program structure of the journal's last config entry (a new
 * reference), or NULL in *structure when there is none. 0, or a negative
 * errno (-EILSEQ: the entry is damaged).
 */
int store_config_last(struct store *s, json_t **structure);
/*
 * The head of every consortium's view chain that has an entry, by
 * consortium: its entry count, last seq and view hash, from the table that
 * store_append() keeps (schema 0013; a cache the audit checks), one row
 * per consortium. -EILSEQ for a row without a consortium.
 */
typedef int (*store_view_cb)(void *arg, const char *consortium, int64_t entries,
			     int64_t last_seq, const uint8_t view_hash[HASH_LEN]);
int store_views_each(struct store *s, store_view_cb cb, void *arg);
/* The heads as they stood at the audit checkpoint, as store_views_each(). */
int store_checkpoint_views_each(struct store *s, store_view_cb cb, void *arg);
/*
 * The view hash of the consortium's last entry with seq <= seq, where its
 * entries after seq continue the chain (zeros when there is none).
 */
int store_view_at(struct store *s, const char *consortium, int64_t seq,
		  uint8_t view_hash[HASH_LEN]);

struct alloc_filter {
	const char *consortium;	/* NULL = any */
	const char *pool;	/* NULL = any */
	const char *id;		/* NULL = any */
	bool live_only;		/* not cancelled, not empty, and end > live_after */
	int64_t live_after;
	bool starts_before_set;	/* start < starts_before */
	int64_t starts_before;
	bool unordered;		/* in the order of the index the query uses, not by id */
};
/* In id order, unless f->unordered. */
int store_allocations_each(struct store *s, const struct alloc_filter *f,
			   store_alloc_cb cb, void *arg);
/*
 * What the allocations table refers to, over its whole history: one
 * alloc_ref per (consortium, pool, gpu), in that order.
 */
typedef int (*store_alloc_ref_cb)(void *arg, const struct alloc_ref *r);
int store_allocation_refs_each(struct store *s, store_alloc_ref_cb cb, void *arg);
/* The highest allocation number used (0 when none). */
int store_allocation_max_num(struct store *s, int64_t *num);

int store_balances_each(struct store *s, store_balance_cb cb, void *arg);

/*
 * Metered use: the row of one job (0, *out filled, usage_clear() it), or
 * -ENOENT; and every row, in seq order (the record is valid during the
 * call only).
 */
int store_usage_get(struct store *s, const char *source, const char *job_id,
		    struct usage *out);
typedef int (*store_usage_cb)(void *arg, const struct usage *u);
int store_usage_each(struct store *s, store_usage_cb cb, void *arg);
/* Each consortium's state row, with its elimination spans read from the journal. */
int store_cstates_each(struct store *s, store_cstate_cb cb, void *arg);

/*
 * A consistent copy of the database at src_path, written to dest_path
 * (which must not exist), through SQLite's online backup API on
 * connections of its own: it may run on another thread while the daemon
 * commits (WAL readers see one committed state). The copy is in rollback
 * journal mode, a single file. Returns 0, or a negative errno with *cause
 * malloc'd.
 */
int store_backup_file(const char *src_path, const char *dest_path, char **cause);

/*
 * Test hook: the nth store_commit() from now (1 = the next one) fails with
 * err (a negative errno) and rolls back, as a full disk or an I/O error
 * would. 0 disarms.
 */
void store_fail_commit(struct store *s, int nth, int err);
