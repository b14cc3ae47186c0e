/* SPDX-License-Identifier: MIT */
/*
 * The ledger on disk. The journal table is the truth; store_append()
 * writes each entry and applies it, in the same transaction, to the cache
 * tables (balances, allocations, consortium_state) that let the daemon start
 * without replaying history. Statements are prepared once and kept in the
 * struct; a statement still in use by an iteration further up the stack is
 * never reused, a fresh one is prepared for the nested call instead. SQLite
 * result codes become negative errno here and nowhere else. Reading never
 * trusts the file: the sqlite3 shell can edit anything, and a tampered row
 * must end as an error or as values that verify rejects, never as a crash.
 */
#include "daemon/store.h"
#include "daemon/grammar.h"
#include "daemon/schema.h"
#include "daemon/timefmt.h"
#include "daemon/util.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <threads.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

static_assert(sizeof(((struct alloc *)0)->id) >= ALLOC_ID_BUFSZ,
	      "an allocation record holds any allocation id");

#define BUSY_TIMEOUT_MS 5000

/*
 * Every connection here is used by one thread at a time: the store's by
 * the loop, or by the commit thread while a batch is in flight (the
 * writer's mutex orders the two, writer_busy()), the read-only ones by the
 * thread that opened them, the checkpointer's by its thread. SQLite's
 * serialized mode would lock a mutex around every call (sqlite3_step(),
 * each sqlite3_column_*()), 8-12% of the daemon's CPU under load; the
 * library must still be thread-safe (store_open_flags() checks).
 */
#define OPEN_FLAGS SQLITE_OPEN_NOMUTEX

/* The columns up to schema 0005; 0004's step reads them before 0006 runs. */
#define JOURNAL_COLUMNS_V5						\
	"seq, time, kind, actor, request_id, consortium, phase, gpu,"	\
	" allocation, pool, gpus, start, \"end\", granted_delta,"	\
	" committed_delta, expired_delta, max_gpus, reason, prev_hash, hash,"	\
	" salt, view_hash"
#define JOURNAL_COLUMNS JOURNAL_COLUMNS_V5 ", extra"

#define USAGE_COLUMNS							\
	"source, job_id, consortium, phase, gpu, allocation, gpu_seconds,"	\
	" \"end\", seq"

#define ALLOC_COLUMNS							\
	"id, num, consortium, pool, gpu, phase, gpus, start, \"end\","	\
	" booked_end, stored, cost, note, created, seq"

/* The statements of fixed text, one slot each. */
#define STORE_STATEMENTS(X)						\
	X(BEGIN, "BEGIN IMMEDIATE")					\
	X(COMMIT, "COMMIT")						\
	X(ROLLBACK, "ROLLBACK")						\
	X(USER_VERSION, "PRAGMA user_version")				\
	X(JOURNAL_INSERT, "INSERT INTO journal (" JOURNAL_COLUMNS ")"	\
	  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"	\
	  " ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)")	\
	X(BALANCE_ADD, "INSERT INTO balances (consortium, phase, gpu,"	\
	  " granted, committed, expired, max_gpus, used)"		\
	  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9)"			\
	  " ON CONFLICT (consortium, phase, gpu) DO UPDATE SET"		\
	  " granted = granted + excluded.granted,"			\
	  " committed = committed + excluded.committed,"		\
	  " expired = expired + excluded.expired,"			\
	  " max_gpus = CASE WHEN ?8 THEN excluded.max_gpus ELSE max_gpus END," \
	  " used = used + excluded.used")				\
	/* all but a key's first entry: no insert that conflicts first */	\
	X(BALANCE_UPDATE, "UPDATE balances SET granted = granted + ?4,"	\
	  " committed = committed + ?5, expired = expired + ?6,"		\
	  " max_gpus = CASE WHEN ?8 THEN ?7 ELSE max_gpus END,"		\
	  " used = used + ?9 WHERE consortium = ?1 AND phase = ?2 AND gpu = ?3") \
	X(ALLOC_INSERT, "INSERT INTO allocations (" ALLOC_COLUMNS ")"	\
	  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"	\
	  " ?13, ?14, ?15)")						\
	/* by the number the id names, the rowid (schema 0012) */		\
	X(ALLOC_UPDATE, "UPDATE allocations SET stored = ?2,"		\
	  " \"end\" = CASE WHEN ?3 THEN ?4 ELSE \"end\" END,"		\
	  " cost = cost + ?5 WHERE num = ?6 AND id = ?1")		\
	/* modify: the new shape is the booking now */			\
	X(ALLOC_MODIFY, "UPDATE allocations SET pool = ?2, gpus = ?3,"	\
	  " start = ?4, \"end\" = ?5, booked_end = ?5, cost = cost + ?6"	\
	  " WHERE num = ?7 AND id = ?1 AND stored = 'booked'")		\
	/* by the partial index of schema 0009 */			\
	X(JOURNAL_LEDGER_OPS, "SELECT " JOURNAL_COLUMNS " FROM journal"	\
	  " WHERE kind IN ('pool_cut', 'phase') ORDER BY seq")		\
	X(CSTATE_SET, "INSERT INTO consortium_state (consortium, status,"	\
	  " since, designation_until, active_from)"			\
	  " VALUES (?1, ?2, ?3, ?4, ?5)"				\
	  " ON CONFLICT (consortium) DO UPDATE SET"			\
	  " status = excluded.status, since = excluded.since,"		\
	  " designation_until = excluded.designation_until,"		\
	  " active_from = CASE WHEN excluded.status = 'active'"		\
	  " THEN excluded.active_from ELSE consortium_state.active_from END") \
	/* every elimination span, by the partial index of schema 0005 */	\
	X(CSTATE_SPANS, "SELECT kind, start FROM journal"		\
	  " WHERE consortium = ?1 AND kind IN ('eliminate', 'reinstate')" \
	  " ORDER BY seq")						\
	X(IDEM_PUT, "INSERT INTO idempotency (key, body_hash, status,"	\
	  " response, time) VALUES (?1, ?2, ?3, ?4, ?5)")		\
	X(IDEM_PUT_REF, "INSERT INTO idempotency (key, body_hash, status,"	\
	  " time, seq) VALUES (?1, ?2, ?3, ?4, ?5)")			\
	X(IDEM_GET, "SELECT body_hash, status, response, seq FROM idempotency" \
	  " WHERE key = ?1")						\
	/* the last key of the window of ?2 + 1 keys after ?1 (schema 0011) */ \
	X(IDEM_WINDOW, "SELECT key FROM idempotency WHERE key > ?1"	\
	  " ORDER BY key LIMIT 1 OFFSET ?2")				\
	/* of the window (?1, ?2], the expired; _TAIL: all after ?1 */	\
	X(IDEM_PRUNE, "DELETE FROM idempotency WHERE key > ?1"		\
	  " AND key <= ?2 AND time < ?3")				\
	X(IDEM_PRUNE_TAIL, "DELETE FROM idempotency WHERE key > ?1"	\
	  " AND time < ?2")						\
	X(JOURNAL_ALL, "SELECT " JOURNAL_COLUMNS " FROM journal"	\
	  " WHERE seq > ?1 ORDER BY seq LIMIT ?2")			\
	X(JOURNAL_OF, "SELECT " JOURNAL_COLUMNS " FROM journal"		\
	  " WHERE seq > ?1 AND consortium = ?2 ORDER BY seq LIMIT ?3")	\
	X(JOURNAL_COUNT, "SELECT COUNT(*) FROM journal"			\
	  " WHERE seq > ?1 AND seq <= ?2")				\
	X(JOURNAL_COUNT_OF, "SELECT COUNT(*) FROM journal"		\
	  " WHERE consortium = ?1 AND seq > ?2 AND seq <= ?3")		\
	X(JOURNAL_NEWEST, "SELECT seq FROM journal"			\
	  " ORDER BY seq DESC LIMIT 1 OFFSET ?1")			\
	X(JOURNAL_NEWEST_OF, "SELECT seq FROM journal"			\
	  " WHERE consortium = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2")	\
	X(JOURNAL_HEAD, "SELECT seq, hash FROM journal"			\
	  " ORDER BY seq DESC LIMIT 1")					\
	/* by the partial index of schema 0006 */				\
	X(CONFIG_LAST, "SELECT extra FROM journal WHERE kind = 'config'"	\
	  " ORDER BY seq DESC LIMIT 1")					\
	/* schema 0013: one row per consortium, kept by store_append() */	\
	X(VIEW_HEADS, "SELECT consortium, entries, last_seq, view_hash"	\
	  " FROM view_heads ORDER BY consortium")			\
	X(VIEW_HEAD_ADD, "INSERT INTO view_heads (consortium, entries,"	\
	  " last_seq, view_hash) VALUES (?1, 1, ?2, ?3)"		\
	  " ON CONFLICT (consortium) DO UPDATE SET entries = entries + 1," \
	  " last_seq = excluded.last_seq, view_hash = excluded.view_hash") \
	X(VIEW_HEAD_UPDATE, "UPDATE view_heads SET entries = entries + 1,"	\
	  " last_seq = ?2, view_hash = ?3 WHERE consortium = ?1")	\
	X(CHECKPOINT_VIEWS, "SELECT consortium, entries, last_seq, view_hash" \
	  " FROM audit_checkpoint_views ORDER BY consortium")		\
	X(CHECKPOINT_VIEW_SET, "INSERT INTO audit_checkpoint_views"	\
	  " (consortium, entries, last_seq, view_hash) VALUES (?1, ?2, ?3, ?4)") \
	X(CHECKPOINT_VIEWS_CLEAR, "DELETE FROM audit_checkpoint_views")	\
	X(VIEW_AT, "SELECT view_hash FROM journal WHERE consortium = ?1"	\
	  " AND seq <= ?2 ORDER BY seq DESC LIMIT 1")			\
	X(ALLOC_MAX_NUM, "SELECT COALESCE(MAX(num), 0) FROM allocations") \
	X(BALANCES, "SELECT consortium, phase, gpu, granted, committed,"	\
	  " expired, max_gpus, used FROM balances"			\
	  " ORDER BY consortium, phase, gpu")				\
	X(CSTATES, "SELECT consortium, status, since, designation_until,"	\
	  " active_from FROM consortium_state ORDER BY consortium")	\
	/* the (consortium, pool, gpu) keys in order, one index seek each */	\
	X(REF_FIRST, "SELECT consortium, pool, gpu FROM allocations"	\
	  " ORDER BY consortium, pool, gpu LIMIT 1")			\
	X(REF_NEXT_GPU, "SELECT consortium, pool, gpu FROM allocations"	\
	  " WHERE consortium = ?1 AND pool = ?2 AND gpu > ?3"		\
	  " ORDER BY consortium, pool, gpu LIMIT 1")			\
	X(REF_NEXT_POOL, "SELECT consortium, pool, gpu FROM allocations"	\
	  " WHERE consortium = ?1 AND pool > ?2"				\
	  " ORDER BY consortium, pool, gpu LIMIT 1")			\
	X(REF_NEXT_CONSORTIUM, "SELECT consortium, pool, gpu FROM allocations" \
	  " WHERE consortium > ?1 ORDER BY consortium, pool, gpu LIMIT 1")	\
	X(REF_FIRST_START, "SELECT start FROM allocations WHERE consortium = ?1" \
	  " AND pool = ?2 AND gpu = ?3 AND stored <> 'cancelled'"	\
	  " AND \"end\" > start ORDER BY start LIMIT 1")			\
	X(USAGE_INSERT, "INSERT INTO usage (" USAGE_COLUMNS ")"		\
	  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")		\
	X(USAGE_GET, "SELECT " USAGE_COLUMNS " FROM usage"		\
	  " WHERE source = ?1 AND job_id = ?2")				\
	X(USAGE_ALL, "SELECT " USAGE_COLUMNS " FROM usage"		\
	  " ORDER BY seq")						\
	X(LEDGER_ID_GET, "SELECT id FROM ledger WHERE one = 1")		\
	X(LEDGER_ID_SET, "INSERT INTO ledger (one, id) VALUES (1, ?1)")	\
	X(READ_BEGIN, "BEGIN")						\
	X(CHECKPOINT_GET, "SELECT seq, hash FROM audit_checkpoint WHERE one = 1") \
	X(CHECKPOINT_SET, "INSERT OR REPLACE INTO audit_checkpoint (one, seq, hash)" \
	  " VALUES (1, ?1, ?2)")					\
	X(CHECKPOINT_CLEAR, "DELETE FROM audit_checkpoint")		\
	X(JOURNAL_HASH_AT, "SELECT hash, prev_hash FROM journal WHERE seq = ?1")

enum store_stmt {
#define X(e, sql) ST_##e,
	STORE_STATEMENTS(X)
#undef X
	ST__COUNT
};

static const char *const stmt_sql[] = {
#define X(e, sql) sql,
	STORE_STATEMENTS(X)
#undef X
};

/* allocations_each: one slot per combination of filters after the fixed ones. */
enum {
	AF_CONSORTIUM = 1,
	AF_POOL = 2,
	AF_ID = 4,
	AF_LIVE = 8,
	AF_BEFORE = 16,
	AF_UNORDERED = 32,
	AF__COUNT = 64,
};

/* A file as it was when the store opened it. */
struct file_id {
	char *path;
	dev_t dev;
	ino_t ino;
};

/* store_wal_background(): see there. */
#define WALCK_FRAMES 1000	/* SQLite's own autocheckpoint threshold */
#define WALCK_LIMIT 10000	/* frames: past this, the writer checkpoints the rest */

struct walck {
	sqlite3 *db;
	thrd_t thread;
	mtx_t mu;
	cnd_t cv;
	int frames;		/* the WAL's length after the last commit */
	int since;		/* its length when the last checkpoint began */
	bool quit;
	atomic_bool sync_failed;
	char errmsg[256];	/* written before sync_failed is set, then fixed */
	atomic_uint_fast64_t runs;	/* checkpoints run, for the tests */
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[ST__COUNT + AF__COUNT];
	int fail_nth;		/* store_fail_commit(): commits to go, 0 = off */
	int fail_err;
	char errmsg[512];
	struct walck *walck;	/* store_wal_background(), or NULL */
	char ledger_id[STORE_LEDGER_ID_LEN + 1];
	struct file_id file, wal;	/* paths NULL for ":memory:" */
	bool stale;		/* store_check_identity() failed once */
	bool sync_failed;	/* an fsync failed once: nothing more commits */
	char *prune_after;	/* store_idem_prune(): where its next window begins */
};

__attribute__((format(printf, 3, 4)))
static int fail(struct store *s, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
	va_end(ap);
	return err;
}

static int errno_from_sqlite(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_IOERR:
		return -EIO;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EILSEQ;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	default:
		return -EIO;
	}
}

/* Records SQLite's message for rc and returns the errno for it. */
static int sql_fail(struct store *s, int rc)
{
	const char *msg = sqlite3_errcode(s->db) == rc ? sqlite3_errmsg(s->db)
						      : sqlite3_errstr(rc);
	/* after a failed fsync the kernel may have dropped the pages it could
	 * not write and a second fsync succeeds over the hole (PostgreSQL's
	 * "fsyncgate", 2018): never retry one, nothing later is durable */
	if (rc == SQLITE_IOERR_FSYNC || rc == SQLITE_IOERR_DIR_FSYNC) {
		s->sync_failed = true;
		return fail(s, -ENOTRECOVERABLE, "fsync failed: %s", msg);
	}
	return fail(s, errno_from_sqlite(rc), "%s", msg);
}

/*
 * The prepared statement of a slot. The cached one unless an iteration
 * further up the stack is still stepping it; then a private one that
 * store__stmt_done() finalizes.
 */
static int store__stmt(struct store *s, unsigned slot, const char *sql,
		       sqlite3_stmt **out)
{
	sqlite3_stmt *st = s->stmt[slot];
	int rc;

	if (st != NULL && !sqlite3_stmt_busy(st)) {
		*out = st;
		return 0;
	}
	rc = sqlite3_prepare_v3(s->db, sql, -1,
				st == NULL ? SQLITE_PREPARE_PERSISTENT : 0,
				out, NULL);
	if (rc != SQLITE_OK)
		return sql_fail(s, rc);
	if (s->stmt[slot] == NULL)
		s->stmt[slot] = *out;
	return 0;
}

static void store__stmt_done(struct store *s, unsigned slot, sqlite3_stmt *st)
{
	if (st == s->stmt[slot]) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	} else {
		sqlite3_finalize(st);
	}
}

/* Binds parameters 1, 2, 3... in turn, keeping the first failure. */
struct binder {
	sqlite3_stmt *st;
	int n;
	int rc;
};

static void bind_keep(struct binder *b, int rc)
{
	if (b->rc == SQLITE_OK)
		b->rc = rc;
}

static void bind_text(struct binder *b, const char *v)
{
	b->n++;
	bind_keep(b, v ? sqlite3_bind_text(b->st, b->n, v, -1, SQLITE_STATIC)
		       : sqlite3_bind_null(b->st, b->n));
}

static void bind_i64(struct binder *b, int64_t v)
{
	b->n++;
	bind_keep(b, sqlite3_bind_int64(b->st, b->n, v));
}

static void bind_hash(struct binder *b, const uint8_t hash[HASH_LEN])
{
	b->n++;
	bind_keep(b, sqlite3_bind_blob(b->st, b->n, hash, HASH_LEN, SQLITE_STATIC));
}

/* What an idempotency record keeps of a request's hash (schema 0011). */
static void bind_idem_hash(struct binder *b, const uint8_t hash[HASH_LEN])
{
	b->n++;
	bind_keep(b, sqlite3_bind_blob(b->st, b->n, hash, STORE_IDEM_HASH_LEN, SQLITE_STATIC));
}

/* An entry's salt, or NULL for one written before salts existed. */
static void bind_salt(struct binder *b, const struct jentry *e)
{
	b->n++;
	bind_keep(b, e->salted ? sqlite3_bind_blob(b->st, b->n, e->salt, SALT_LEN, SQLITE_STATIC)
			       : sqlite3_bind_null(b->st, b->n));
}

/* Runs a statement that returns no rows. */
static int step_done(struct store *s, struct binder *b)
{
	int rc = b->rc;

	if (rc == SQLITE_OK)
		rc = sqlite3_step(b->st);
	return rc == SQLITE_DONE ? 0 : sql_fail(s, rc == SQLITE_ROW ? SQLITE_MISUSE : rc);
}

/* Runs a statement of fixed text that takes no parameters. */
static int run(struct store *s, enum store_stmt slot, int *changes)
{
	sqlite3_stmt *st;
	int err = store__stmt(s, slot, stmt_sql[slot], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	err = step_done(s, &b);
	if (err == 0 && changes != NULL)
		*changes = sqlite3_changes(s->db);
	store__stmt_done(s, slot, st);
	return err;
}

/* Column readers that accept whatever a tampered file holds. */
static char *col_text(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NULL;
	return (char *)sqlite3_column_text(st, i);
}

static int64_t col_i64(sqlite3_stmt *st, int i)
{
	return sqlite3_column_int64(st, i);
}

/* A blob of the wrong size or type reads as zeros, which verify rejects. */
static void col_hash(sqlite3_stmt *st, int i, uint8_t out[HASH_LEN])
{
	if (sqlite3_column_type(st, i) == SQLITE_BLOB) {
		const void *p = sqlite3_column_blob(st, i);
		if (p != NULL && sqlite3_column_bytes(st, i) == HASH_LEN) {
			memcpy(out, p, HASH_LEN);
			return;
		}
	}
	memset(out, 0, HASH_LEN);
}

/* A kept request hash, zeros after it; one of another size reads as zeros. */
static void col_idem_hash(sqlite3_stmt *st, int i, uint8_t out[HASH_LEN])
{
	memset(out, 0, HASH_LEN);
	if (sqlite3_column_type(st, i) == SQLITE_BLOB && sqlite3_column_bytes(st, i) ==
	    STORE_IDEM_HASH_LEN)
		memcpy(out, sqlite3_column_blob(st, i), STORE_IDEM_HASH_LEN);
}

/*
 * NULL is an entry from before salts; anything else that is not 16 bytes
 * reads as a salt of zeros, which its hash then rejects.
 */
static void col_salt(sqlite3_stmt *st, int i, struct jentry *e)
{
	e->salted = sqlite3_column_type(st, i) != SQLITE_NULL;
	memset(e->salt, 0, SALT_LEN);
	if (sqlite3_column_type(st, i) == SQLITE_BLOB && sqlite3_column_bytes(st, i) == SALT_LEN)
		memcpy(e->salt, sqlite3_column_blob(st, i), SALT_LEN);
}

static int exec(struct store *s, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);

	if (rc == SQLITE_OK)
		return 0;
	int err = fail(s, errno_from_sqlite(rc), "%s",
		       msg ? msg : sqlite3_errstr(rc));
	sqlite3_free(msg);
	return err;
}

int store_schema_latest(void)
{
	return (int)schema_count;
}

int store_schema_version(struct store *s)
{
	sqlite3_stmt *st;
	int err = store__stmt(s, ST_USER_VERSION, stmt_sql[ST_USER_VERSION], &st);
	if (err < 0)
		return err;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		err = sqlite3_column_int(st, 0);
	else
		err = sql_fail(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc);
	store__stmt_done(s, ST_USER_VERSION, st);
	return err;
}

const char *store_errmsg(struct store *s)
{
	return s->errmsg;
}

/*
 * Makes sure of the file before SQLite sees it: creates it 0600 where the
 * flags allow (SQLite gives its -wal and -shm files the database's mode),
 * refuses a missing one without STORE_CREATE and an existing one with
 * STORE_EXCL, and takes group and other access away from a file that has
 * it. *created says whether this call surely made the file (STORE_EXCL).
 */
static int prepare_file(const char *path, int flags, bool *created, char **cause)
{
	struct stat sb;
	int oflags = O_RDWR | O_CLOEXEC;
	int err = 0, fd;

	if (flags & STORE_CREATE)
		oflags |= O_CREAT | (flags & STORE_EXCL ? O_EXCL : 0);
	fd = open(path, oflags, 0600);
	if (fd < 0) {
		err = -errno;
		if (err == -ENOENT && !(flags & STORE_CREATE))
			*cause = xasprintf("database %s does not exist", path);
		else if (err == -EEXIST)
			*cause = xasprintf("database %s already exists", path);
		else
			*cause = xasprintf("cannot %s database %s: %s",
					   flags & STORE_CREATE ? "create" : "open",
					   path, strerror(errno));
		goto fail_open;
	}
	*created = (oflags & O_EXCL) != 0;
	if (fstat(fd, &sb) != 0 ||
	    ((sb.st_mode & 077) != 0 && fchmod(fd, 0600) != 0)) {
		err = -errno;
		*cause = xasprintf("cannot make database %s mode 0600: %s",
				   path, strerror(errno));
	}
	close(fd);
fail_open:
	return err;
}

static int configure(struct store *s, const char *path, bool memory,
		     char **cause)
{
	sqlite3_stmt *st = NULL;
	int err = 0, rc;

	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	if (!memory) {
		rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1,
					&st, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		if (rc != SQLITE_ROW) {
			err = sql_fail(s, rc);
			*cause = xasprintf("%s: %s", path, s->errmsg);
			goto fail_wal;
		}
		const char *mode = (const char *)sqlite3_column_text(st, 0);
		if (mode == NULL || strcmp(mode, "wal") != 0) {
			err = -EIO;
			*cause = xasprintf("%s: cannot use WAL journal mode (%s)",
					   path, mode ? mode : "none");
			goto fail_wal;
		}
	}
	err = exec(s, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON");
	if (err < 0)
		*cause = xasprintf("%s: %s", path, s->errmsg);
fail_wal:
	sqlite3_finalize(st);
	return err;
}

static int fill_view_hashes(struct store *s);
static int view_head_add(struct store *s, const struct jentry *e);

/* What a schema file needs done that SQL cannot do, in its transaction. */
static const struct {
	const char *file;
	int (*fn)(struct store *s);
} schema_steps[] = {
	{"0004-journal-salt.sql", fill_view_hashes},
};

static int schema_step(struct store *s, const char *file)
{
	for (size_t i = 0; i < ARRAY_SIZE(schema_steps); i++)
		if (strcmp(schema_steps[i].file, file) == 0)
			return schema_steps[i].fn(s);
	return 0;
}

/*
 * One step towards the latest schema, in one write transaction: applies
 * the file after the database's version, or finds nothing to do. The
 * version is read inside the transaction, so two processes opening a fresh
 * file at once do not both apply a file.
 */
static int migrate_step(struct store *s, const char *path, int *version,
			char **cause)
{
	int latest = store_schema_latest();
	const char *what = "schema version";
	char sql[64];
	int err, v;

	err = exec(s, "BEGIN IMMEDIATE");
	if (err < 0)
		goto fail_begin;
	v = store_schema_version(s);
	if (v < 0) {
		err = v;
		goto fail_txn;
	}
	if (v > latest) {
		err = fail(s, -EPROTO, "database schema version %d is newer than"
			   " this build supports (%d)", v, latest);
		*cause = xstrdup(s->errmsg);
		goto fail_newer;
	}
	if (v < latest) {
		what = schema_files[v].name;
		err = exec(s, schema_files[v].sql);
		if (err == 0)
			err = schema_step(s, what);
		if (err < 0)
			goto fail_txn;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		err = exec(s, sql);
		if (err < 0)
			goto fail_txn;
		v++;
	}
	err = exec(s, "COMMIT");
	if (err < 0)
		goto fail_txn;
	*version = v;
	return 0;

fail_txn:
	*cause = xasprintf("%s: %s: %s", path, what, s->errmsg);
fail_newer:
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return err;
fail_begin:
	*cause = xasprintf("%s: %s", path, s->errmsg);
	return err;
}

/* Brings the schema to the latest version, one file per transaction. */
static int migrate(struct store *s, const char *path, char **cause)
{
	int v = 0, err;

	do
		err = migrate_step(s, path, &v, cause);
	while (err == 0 && v < store_schema_latest());
	return err;
}

/* A file whose path and identity stat() gives. */
static int file_id_set(struct file_id *f, char *path, char **cause)
{
	struct stat sb;

	f->path = path;
	if (stat(path, &sb) != 0) {
		int err = -errno;
		*cause = xasprintf("cannot stat %s: %s", path, strerror(errno));
		return err;
	}
	f->dev = sb.st_dev;
	f->ino = sb.st_ino;
	return 0;
}

/* Whether the file at f's path is still the one that was there, and linked. */
static bool file_id_same(const struct file_id *f)
{
	struct stat sb;

	return stat(f->path, &sb) == 0 && sb.st_dev == f->dev &&
	       sb.st_ino == f->ino && sb.st_nlink > 0;
}

/*
 * Remembers which files SQLite opened: the database and its WAL, which
 * exists from the migration's first transaction on and which SQLite keeps
 * open (and never recreates) until the connection closes.
 */
static int identify(struct store *s, const char *path, char **cause)
{
	int err = file_id_set(&s->file, xstrdup(path), cause);

	if (err == 0)
		err = file_id_set(&s->wal, xasprintf("%s-wal", path), cause);
	return err;
}

/* Reads the ledger id, or writes a fresh random one into a database that has none. */
static int ledger_id(struct store *s, const char *path, char **cause)
{
	uint8_t rnd[STORE_LEDGER_ID_LEN / 2];
	sqlite3_stmt *st;
	const char *id;
	int err = store__stmt(s, ST_LEDGER_ID_GET, stmt_sql[ST_LEDGER_ID_GET], &st);

	if (err < 0)
		goto fail_read;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		id = col_text(st, 0);
		if (id != NULL && strlen(id) == STORE_LEDGER_ID_LEN)
			memcpy(s->ledger_id, id, STORE_LEDGER_ID_LEN + 1);
		else
			err = fail(s, -EILSEQ, "malformed ledger id");
	} else if (rc != SQLITE_DONE) {
		err = sql_fail(s, rc);
	}
	store__stmt_done(s, ST_LEDGER_ID_GET, st);
	if (err < 0 || rc == SQLITE_ROW)
		goto fail_read;

	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(s->ledger_id, sizeof(s->ledger_id), rnd, sizeof(rnd));
	err = store__stmt(s, ST_LEDGER_ID_SET, stmt_sql[ST_LEDGER_ID_SET], &st);
	if (err < 0)
		goto fail_read;
	struct binder b = {st, 0, SQLITE_OK};
	bind_text(&b, s->ledger_id);
	err = step_done(s, &b);
	store__stmt_done(s, ST_LEDGER_ID_SET, st);
fail_read:
	if (err < 0)
		*cause = xasprintf("%s: ledger id: %s", path, s->errmsg);
	return err;
}

static void close_db(struct store *s)
{
	bool wal_ours = s->stale && file_id_same(&s->wal);
	int persist = 1;

	for (size_t i = 0; i < ARRAY_SIZE(s->stmt); i++)
		sqlite3_finalize(s->stmt[i]);
	/* the last connection's close unlinks the -wal and -shm paths: not
	 * when what is there now may be another database's */
	if (s->stale && !wal_ours)
		sqlite3_file_control(s->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
	sqlite3_close_v2(s->db);
	/* SQLite leaves the WAL of a database that moved; beside whatever
	 * comes at that path next (a restored backup) it would be replayed */
	if (wal_ours && !file_id_same(&s->file) && file_id_same(&s->wal))
		unlink(s->wal.path);
	free(s->file.path);
	free(s->wal.path);
	free(s->prune_after);
}

/* Removes a file that store_open_flags() created and then could not finish. */
static void unlink_created(const char *path)
{
	static const char *const suffix[] = {"", "-wal", "-shm"};
	char *p;

	for (size_t i = 0; i < ARRAY_SIZE(suffix); i++) {
		p = xasprintf("%s%s", path, suffix[i]);
		unlink(p);
		free(p);
	}
}

int store_open_flags(const char *path, int flags, struct store **out, char **cause)
{
	struct store *s = xcalloc(1, sizeof(*s));
	bool memory = strcmp(path, ":memory:") == 0 || path[0] == '\0';
	bool created = false;
	mode_t mask = umask(077);
	int err, rc;

	*cause = NULL;
	if (!memory) {
		err = prepare_file(path, flags, &created, cause);
		if (err < 0)
			goto fail_create;
	}
	if (!sqlite3_threadsafe()) {	/* the daemon commits and checkpoints on threads */
		err = -ENOTSUP;
		*cause = xstrdup("this SQLite library was built without thread support");
		goto fail_open;
	}
	rc = sqlite3_open_v2(path, &s->db, OPEN_FLAGS | SQLITE_OPEN_READWRITE |
			     SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		err = errno_from_sqlite(rc);
		*cause = xasprintf("cannot open database %s: %s", path,
				   s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail_open;
	}
	/* an empty file would take the schema and pass for a new ledger */
	if (!memory && !(flags & STORE_CREATE)) {
		int v = store_schema_version(s);
		if (v <= 0) {
			err = v < 0 ? v : -ENODATA;
			*cause = v < 0 ? xasprintf("%s: %s", path, s->errmsg)
				       : xasprintf("database %s is empty (it holds no ledger)", path);
			goto fail_open;
		}
	}
	err = configure(s, path, memory, cause);
	if (err < 0)
		goto fail_open;
	err = migrate(s, path, cause);
	if (err < 0)
		goto fail_open;
	err = ledger_id(s, path, cause);
	if (err == 0 && !memory)
		err = identify(s, path, cause);
	if (err < 0)
		goto fail_open;
	umask(mask);
	*out = s;
	return 0;

fail_open:
	close_db(s);
	if (created)
		unlink_created(path);
fail_create:
	free(s);
	umask(mask);
	return err;
}

int store_open(const char *path, struct store **out, char **cause)
{
	return store_open_flags(path, STORE_CREATE, out, cause);
}

static void walck_stop(struct store *s);

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	walck_stop(s);
	close_db(s);
	free(s);
}

const char *store_ledger_id(const struct store *s)
{
	return s->ledger_id;
}

int store_check_identity(struct store *s)
{
	const struct file_id *moved = NULL;

	if (s->file.path == NULL)
		return 0;	/* :memory: */
	if (!file_id_same(&s->file))
		moved = &s->file;
	else if (!file_id_same(&s->wal))
		moved = &s->wal;
	else if (!s->stale)
		return 0;
	s->stale = true;
	if (moved == NULL)	/* put back since: what was written meanwhile is elsewhere */
		return fail(s, -ESTALE, "the database files were replaced while open;"
			    " nothing more is committed");
	return fail(s, -ESTALE, "%s was removed or replaced while open;"
		    " nothing more is committed", moved->path);
}

/*
 * After -ESTALE: what was committed since the last checkpoint is in the
 * WAL this connection has open, which a restart may not find (its path
 * was removed or replaced). A checkpoint copies it into the database file
 * that is open, and syncs that: when the database file is still at its
 * path, nothing that was acknowledged is lost; when it is gone, whoever
 * kept a link to it finds it whole. Outside a transaction only.
 */
static void rescue_wal(struct store *s)
{
	char why[sizeof(s->errmsg)];

	if (s->file.path == NULL)
		return;
	memcpy(why, s->errmsg, sizeof(why));
	int rc = sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_FULL, NULL, NULL);
	if (!file_id_same(&s->file))
		fail(s, -ESTALE, "%s", why);
	else if (rc == SQLITE_OK)
		fail(s, -ESTALE, "%.400s; what was committed before is safe in %.80s", why,
		     s->file.path);
	else
		fail(s, -ESTALE, "%.400s; copying what was committed into the database failed: %.80s",
		     why, sqlite3_errstr(rc));
}

/*
 * Past WALCK_LIMIT frames the writer's own connection checkpoints what the
 * background one has not, before its next transaction: nothing writes
 * meanwhile, so the WAL is then whole in the database and that BEGIN
 * starts it afresh (SQLite restarts it only then, and a checkpoint on
 * another thread never catches a writer that keeps committing). It costs
 * this batch a copy of the last frames and two fsyncs, once per
 * WALCK_LIMIT frames, and no wait: PASSIVE takes no lock a reader or the
 * background checkpoint holds, and is BUSY at once while the latter runs.
 */
static int wal_restart(struct store *s)
{
	struct walck *w = s->walck;
	int frames;

	if (w == NULL)
		return 0;
	mtx_lock(&w->mu);
	frames = w->frames;
	mtx_unlock(&w->mu);
	if (frames <= WALCK_LIMIT)
		return 0;
	int rc = sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (rc == SQLITE_IOERR_FSYNC || rc == SQLITE_IOERR_DIR_FSYNC)
		return sql_fail(s, rc);
	return 0;	/* BUSY and the like: the next batch tries again */
}

int store_begin(struct store *s)
{
	int err = wal_restart(s);

	return err ? err : run(s, ST_BEGIN, NULL);
}

void store_rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		run(s, ST_ROLLBACK, NULL);
}

int store_commit(struct store *s)
{
	int err;

	if (s->fail_nth > 0 && --s->fail_nth == 0) {
		err = s->fail_err;
		store_rollback(s);
		return fail(s, err, "commit failed by the test hook: %s",
			    strerror(-err));
	}
	if (s->walck && atomic_load(&s->walck->sync_failed)) {
		s->sync_failed = true;
		store_rollback(s);
		return fail(s, -ENOTRECOVERABLE, "an fsync of a WAL checkpoint failed: %s",
			    s->walck->errmsg);
	}
	if (s->sync_failed) {
		store_rollback(s);
		return fail(s, -ENOTRECOVERABLE, "an fsync failed: nothing more is committed");
	}
	/* what commits must land in the files a restart reads, before the
	 * COMMIT and after it (a removal can come between the two) */
	err = store_check_identity(s);
	if (err == 0) {
		err = run(s, ST_COMMIT, NULL);
		/* a failed COMMIT may leave the transaction open (BUSY does):
		 * close it, so that nothing of it can be committed by a later one */
		if (err < 0)
			store_rollback(s);
		else
			err = store_check_identity(s);
	} else {
		store_rollback(s);
	}
	if (err == -ESTALE)
		rescue_wal(s);
	return err;
}

void store_fail_commit(struct store *s, int nth, int err)
{
	s->fail_nth = nth > 0 ? nth : 0;
	s->fail_err = err < 0 ? err : -EIO;
}

/*
 * WAL checkpoints off the commit path. SQLite's own checkpoint runs inside
 * the COMMIT that takes the WAL past 1000 pages, and that commit (and every
 * reply behind it) pays for copying the WAL into the database and two more
 * fsyncs. Instead the committing connection only says how long the WAL is
 * (its WAL hook replaces the automatic checkpoint), and a thread with a
 * connection of its own checkpoints PASSIVE, which never waits for or
 * blocks a writer, each time the WAL has grown by WALCK_FRAMES since its
 * last one began (not after every commit past them: each checkpoint costs
 * two fsyncs that queue beside the writer's). A writer that keeps
 * committing always adds frames behind such a checkpoint, so the WAL would
 * never start afresh and each commit would grow the file (an fdatasync
 * that also writes the inode): past WALCK_LIMIT frames the writer's own
 * connection copies the rest before its next transaction (wal_restart()),
 * with no lock to wait for. The WAL's size stays bounded and its writes in
 * place. (A RESTART checkpoint from this thread did that before, and the
 * writer waited for it in SQLite's busy handler, which sleeps 1, 2, 5,
 * 10 ms and more: the tail of the latencies.) The checkpointing connection
 * is synchronous=FULL like the writer's: it syncs the WAL before it copies
 * and the database after, so crash safety is SQLite's own. A failed fsync
 * there is never retried: the next commit fails with -ENOTRECOVERABLE, as
 * for its own.
 */
/* Runs on the committing thread, inside COMMIT: a word to the checkpointer only. */
static int walck_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct walck *w = arg;

	(void)db;
	(void)name;
	mtx_lock(&w->mu);
	if (frames < w->since)
		w->since = 0;	/* the WAL started afresh */
	w->frames = frames;
	if (frames - w->since >= WALCK_FRAMES)
		cnd_signal(&w->cv);
	mtx_unlock(&w->mu);
	return SQLITE_OK;
}

static int walck_thread(void *arg)
{
	struct walck *w = arg;

	mtx_lock(&w->mu);
	for (;;) {
		while (!w->quit && w->frames - w->since < WALCK_FRAMES)
			cnd_wait(&w->cv, &w->mu);
		if (w->quit)
			break;
		w->since = w->frames;
		mtx_unlock(&w->mu);
		int rc = sqlite3_wal_checkpoint_v2(w->db, "main", SQLITE_CHECKPOINT_PASSIVE,
						   NULL, NULL);
		atomic_fetch_add(&w->runs, 1);
		mtx_lock(&w->mu);
		if (rc == SQLITE_IOERR_FSYNC || rc == SQLITE_IOERR_DIR_FSYNC) {
			snprintf(w->errmsg, sizeof(w->errmsg), "%s", sqlite3_errmsg(w->db));
			atomic_store(&w->sync_failed, true);
			break;	/* never again: what the kernel dropped is not rewritten */
		}
		/* BUSY (a RESTART that timed out, another checkpoint) and the
		 * like: the next commit's length brings the next try */
	}
	mtx_unlock(&w->mu);
	return 0;
}

int store_wal_background(struct store *s, char **cause)
{
	struct walck *w;
	int rc;

	if (s->file.path == NULL || s->walck != NULL)
		return 0;	/* :memory: has no WAL */
	w = xcalloc(1, sizeof(*w));
	rc = sqlite3_open_v2(s->file.path, &w->db, OPEN_FLAGS | SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(w->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		*cause = xasprintf("%s: a connection for WAL checkpoints: %s", s->file.path,
				   w->db ? sqlite3_errmsg(w->db) : sqlite3_errstr(rc));
		sqlite3_close_v2(w->db);
		free(w);
		return errno_from_sqlite(rc);
	}
	sqlite3_extended_result_codes(w->db, 1);
	sqlite3_busy_timeout(w->db, BUSY_TIMEOUT_MS);
	if (mtx_init(&w->mu, mtx_plain) != thrd_success || cnd_init(&w->cv) != thrd_success)
		abort();	/* out of memory */
	if (thrd_create(&w->thread, walck_thread, w) != thrd_success) {
		*cause = xasprintf("%s: cannot start the WAL checkpoint thread", s->file.path);
		cnd_destroy(&w->cv);
		mtx_destroy(&w->mu);
		sqlite3_close_v2(w->db);
		free(w);
		return -EAGAIN;
	}
	s->walck = w;
	sqlite3_wal_hook(s->db, walck_hook, w);	/* and no automatic checkpoint */
	return 0;
}

uint64_t store_wal_checkpoints(const struct store *s)
{
	return s->walck ? atomic_load(&s->walck->runs) : 0;
}

static void walck_stop(struct store *s)
{
	struct walck *w = s->walck;

	if (w == NULL)
		return;
	sqlite3_wal_hook(s->db, NULL, NULL);
	mtx_lock(&w->mu);
	w->quit = true;
	cnd_signal(&w->cv);
	mtx_unlock(&w->mu);
	thrd_join(w->thread, NULL);
	cnd_destroy(&w->cv);
	mtx_destroy(&w->mu);
	sqlite3_close_v2(w->db);
	free(w);
	s->walck = NULL;
}

/*
 * used: the metered GPU-seconds of a usage entry, else 0. slot: the
 * UPDATE of the row, or the INSERT for a key that has none yet (its ON
 * CONFLICT adds as the UPDATE does); *changed: whether a row changed.
 */
static int balance_step(struct store *s, enum store_stmt slot, const struct jentry *e,
			int64_t used, bool *changed)
{
	sqlite3_stmt *st;
	int err = store__stmt(s, slot, stmt_sql[slot], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	bind_text(&b, e->consortium);
	bind_text(&b, e->phase);
	bind_text(&b, e->gpu);
	bind_i64(&b, e->granted_delta);
	bind_i64(&b, e->committed_delta);
	bind_i64(&b, e->expired_delta);
	bind_i64(&b, e->kind == J_CAP ? e->max_gpus : 0);
	bind_i64(&b, e->kind == J_CAP);
	bind_i64(&b, used);
	err = step_done(s, &b);
	*changed = err == 0 && sqlite3_changes(s->db) > 0;
	store__stmt_done(s, slot, st);
	return err;
}

/*
 * Moves a balance by e's deltas. The row is there for all but a key's
 * first entry: an UPDATE by the key, and the INSERT only when it found
 * none, costs less than an INSERT that conflicts and then updates.
 */
static int balance_add(struct store *s, const struct jentry *e, int64_t used)
{
	bool changed;
	int err = balance_step(s, ST_BALANCE_UPDATE, e, used, &changed);

	if (err == 0 && !changed)
		err = balance_step(s, ST_BALANCE_ADD, e, used, &changed);
	return err;
}

static int journal_insert(struct store *s, const struct jentry *e)
{
	sqlite3_stmt *st;
	int err = store__stmt(s, ST_JOURNAL_INSERT, stmt_sql[ST_JOURNAL_INSERT], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	bind_i64(&b, e->seq);
	bind_i64(&b, e->time);
	bind_text(&b, jkind_name(e->kind));
	bind_text(&b, e->actor);
	bind_text(&b, e->request_id);
	bind_text(&b, e->consortium);
	bind_text(&b, e->phase);
	bind_text(&b, e->gpu);
	bind_text(&b, e->allocation);
	bind_text(&b, e->pool);
	bind_i64(&b, e->gpus);
	bind_i64(&b, e->start);
	bind_i64(&b, e->end);
	bind_i64(&b, e->granted_delta);
	bind_i64(&b, e->committed_delta);
	bind_i64(&b, e->expired_delta);
	bind_i64(&b, e->max_gpus);
	bind_text(&b, e->reason);
	bind_hash(&b, e->prev_hash);
	bind_hash(&b, e->hash);
	bind_salt(&b, e);
	if (e->consortium)
		bind_hash(&b, e->view_hash);
	else
		bind_text(&b, NULL);
	char *extra = e->extra ? json_dumps(e->extra, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	bind_text(&b, extra);
	err = step_done(s, &b);
	free(extra);
	store__stmt_done(s, ST_JOURNAL_INSERT, st);
	return err;
}

static int alloc_insert(struct store *s, const struct jentry *e,
			const char *note)
{
	sqlite3_stmt *st;
	int64_t num;
	int err;

	if (alloc_id_parse(e->allocation, &num) < 0 || e->pool == NULL)
		return fail(s, -EINVAL, "journal entry %" PRId64 ": reserve"
			    " needs an allocation id A-NNNNNN and a pool", e->seq);
	err = store__stmt(s, ST_ALLOC_INSERT, stmt_sql[ST_ALLOC_INSERT], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	bind_text(&b, e->allocation);
	bind_i64(&b, num);
	bind_text(&b, e->consortium);
	bind_text(&b, e->pool);
	bind_text(&b, e->gpu);
	bind_text(&b, e->phase);
	bind_i64(&b, e->gpus);
	bind_i64(&b, e->start);
	bind_i64(&b, e->end);
	bind_i64(&b, e->end);
	bind_text(&b, alloc_stored_name(ALLOC_BOOKED));
	bind_i64(&b, e->committed_delta);
	bind_text(&b, note);
	bind_i64(&b, e->time);
	bind_i64(&b, e->seq);
	err = step_done(s, &b);
	store__stmt_done(s, ST_ALLOC_INSERT, st);
	return err;
}

/* The number an allocation id names, or 0 (no allocation has it) for one that names none. */
static int64_t alloc_num(const char *id)
{
	int64_t num;
	return id != NULL && alloc_id_parse(id, &num) == 0 ? num : 0;
}

/* cancel, release, revoke: the new stored state, the end, the refund. */
static int alloc_update(struct store *s, const struct jentry *e,
			enum alloc_stored to, bool move_end)
{
	sqlite3_stmt *st;
	int err = store__stmt(s, ST_ALLOC_UPDATE, stmt_sql[ST_ALLOC_UPDATE], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	bind_text(&b, e->allocation);
	bind_text(&b, alloc_stored_name(to));
	bind_i64(&b, move_end);
	bind_i64(&b, e->end);
	bind_i64(&b, e->committed_delta);
	bind_i64(&b, alloc_num(e->allocation));
	err = step_done(s, &b);
	if (err == 0 && sqlite3_changes(s->db) != 1)
		err = fail(s, -ENOENT, "journal entry %" PRId64 ": no allocation %s",
			   e->seq, e->allocation);
	store__stmt_done(s, ST_ALLOC_UPDATE, st);
	return err;
}

/* A usage entry's row, whose primary key refuses a second report of one job. */
static int usage_insert(struct store *s, const struct jentry *e, int64_t *used)
{
	const char *source, *job_id;
	sqlite3_stmt *st;

	if (jentry_usage_fields(e, &source, &job_id, used) != 0)
		return fail(s, -EINVAL, "journal entry %" PRId64 ": usage without a source,"
			    " a job id and a non-negative amount", e->seq);
	int err = store__stmt(s, ST_USAGE_INSERT, stmt_sql[ST_USAGE_INSERT], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	bind_text(&b, source);
	bind_text(&b, job_id);
	bind_text(&b, e->consortium);
	bind_text(&b, e->phase);
	bind_text(&b, e->gpu);
	bind_text(&b, e->allocation);
	bind_i64(&b, *used);
	bind_i64(&b, e->end);
	bind_i64(&b, e->seq);
	err = step_done(s, &b);
	store__stmt_done(s, ST_USAGE_INSERT, st);
	return err;
}

/* modify: the allocation's new pool, GPUs and window, and the cost delta. */
static int alloc_modify(struct store *s, const struct jentry *e)
{
	sqlite3_stmt *st;
	int err = store__stmt(s, ST_ALLOC_MODIFY, stmt_sql[ST_ALLOC_MODIFY], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	bind_text(&b, e->allocation);
	bind_text(&b, e->pool);
	bind_i64(&b, e->gpus);
	bind_i64(&b, e->start);
	bind_i64(&b, e->end);
	bind_i64(&b, e->committed_delta);
	bind_i64(&b, alloc_num(e->allocation));
	err = step_done(s, &b);
	if (err == 0 && sqlite3_changes(s->db) != 1)
		err = fail(s, -ENOENT, "journal entry %" PRId64 ": no booked allocation %s",
			   e->seq, e->allocation);
	store__stmt_done(s, ST_ALLOC_MODIFY, st);
	return err;
}

static int cstate_set(struct store *s, const struct jentry *e, enum cstatus to)
{
	sqlite3_stmt *st;
	int err = store__stmt(s, ST_CSTATE_SET, stmt_sql[ST_CSTATE_SET], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	bind_text(&b, e->consortium);
	bind_text(&b, to == CS_ELIMINATED ? "eliminated" : "active");
	bind_i64(&b, e->start);
	/* 0 (and TIME_MIN) in an eliminate entry's end: no designation */
	if (to == CS_ELIMINATED && e->end != 0 && e->end != TIME_MIN) {
		bind_i64(&b, e->end);
	} else {
		b.n++;
		bind_keep(&b, sqlite3_bind_null(st, b.n));
	}
	/* a reinstatement opens a new active stretch; an elimination keeps it */
	if (to == CS_ACTIVE) {
		bind_i64(&b, e->start);
	} else {
		b.n++;
		bind_keep(&b, sqlite3_bind_null(st, b.n));
	}
	err = step_done(s, &b);
	store__stmt_done(s, ST_CSTATE_SET, st);
	return err;
}

/* Which fields a kind needs before it can touch the caches. */
static int append_check(struct store *s, const struct jentry *e)
{
	if ((unsigned)e->kind >= J__COUNT)
		return fail(s, -EINVAL, "journal entry %" PRId64 ": unknown kind %d",
			    e->seq, (int)e->kind);
	/* a configuration belongs to no consortium, nor does the program reserve */
	if (e->kind == J_CONFIG)
		return 0;
	if (e->kind == J_POOL_CUT)
		return e->pool ? 0 : fail(s, -EINVAL, "journal entry %" PRId64 ": pool_cut"
					  " without a pool", e->seq);
	if (e->kind == J_PHASE)
		return e->phase ? 0 : fail(s, -EINVAL, "journal entry %" PRId64 ": phase"
					   " without a phase", e->seq);
	if (e->consortium == NULL && e->kind != J_TRANSFER_OUT)
		return fail(s, -EINVAL, "journal entry %" PRId64 ": %s without"
			    " a consortium", e->seq, jkind_name(e->kind));
	switch (e->kind) {
	case J_ELIMINATE:
	case J_REINSTATE:
		return 0;
	case J_RESERVE:
	case J_CANCEL:
	case J_RELEASE:
	case J_MODIFY:
		if (e->allocation == NULL)
			return fail(s, -EINVAL, "journal entry %" PRId64 ": %s"
				    " without an allocation", e->seq,
				    jkind_name(e->kind));
		break;
	default:
		break;
	}
	if (e->phase == NULL || e->gpu == NULL)
		return fail(s, -EINVAL, "journal entry %" PRId64 ": %s without"
			    " a phase and a GPU model", e->seq, jkind_name(e->kind));
	return 0;
}

int store_append(struct store *s, const struct jentry *e, const char *note)
{
	bool moves_balance = true;
	int64_t used = 0;
	int err = append_check(s, e);

	if (err == 0)
		err = journal_insert(s, e);
	if (err == 0 && e->consortium != NULL)
		err = view_head_add(s, e);
	if (err < 0)
		return err;

	switch (e->kind) {
	case J_RESERVE:
		err = alloc_insert(s, e, note);
		break;
	case J_CANCEL:
		err = alloc_update(s, e, ALLOC_CANCELLED, false);
		break;
	case J_RELEASE:
		err = alloc_update(s, e, ALLOC_RELEASED, true);
		break;
	case J_MODIFY:
		err = alloc_modify(s, e);
		break;
	case J_POOL_CUT:
	case J_PHASE:
		moves_balance = false;	/* read back by store_ledger_ops_each() */
		break;
	case J_REVOKE:
		if (e->allocation != NULL)
			err = alloc_update(s, e, ALLOC_REVOKED, true);
		break;
	case J_ELIMINATE:
	case J_REINSTATE:
		moves_balance = false;
		err = cstate_set(s, e, e->kind == J_ELIMINATE ? CS_ELIMINATED
							       : CS_ACTIVE);
		break;
	case J_CONFIG:
		moves_balance = false;
		break;
	case J_USAGE:
		err = usage_insert(s, e, &used);
		break;
	default:
		/* a transfer out of the program reserve moves no consortium's row */
		moves_balance = e->consortium != NULL;
		break;
	}
	/* every other kind moves the (consortium, phase, gpu) balance by its
	 * deltas; the deltas a kind does not use are 0 */
	if (err == 0 && moves_balance)
		err = balance_add(s, e, used);
	return err;
}

int store_idem_put(struct store *s, const char *key,
		   const uint8_t body_hash[HASH_LEN], int status,
		   const char *response, int64_t time)
{
	sqlite3_stmt *st;
	int err = store__stmt(s, ST_IDEM_PUT, stmt_sql[ST_IDEM_PUT], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	bind_text(&b, key);
	bind_idem_hash(&b, body_hash);
	bind_i64(&b, status);
	bind_text(&b, response);
	bind_i64(&b, time);
	err = step_done(s, &b);
	store__stmt_done(s, ST_IDEM_PUT, st);
	return err;
}

int store_idem_put_ref(struct store *s, const char *key,
		       const uint8_t body_hash[HASH_LEN], int status, int64_t seq,
		       int64_t time)
{
	sqlite3_stmt *st;
	int err = store__stmt(s, ST_IDEM_PUT_REF, stmt_sql[ST_IDEM_PUT_REF], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	bind_text(&b, key);
	bind_idem_hash(&b, body_hash);
	bind_i64(&b, status);
	bind_i64(&b, time);
	bind_i64(&b, seq);
	err = step_done(s, &b);
	store__stmt_done(s, ST_IDEM_PUT_REF, st);
	return err;
}

/*
 * The key that ends the window of max keys after s->prune_after: 0 and
 * *end malloc'd, or 0 and *end NULL when fewer are left (the window runs
 * to the end of the table).
 */
static int idem_window(struct store *s, int64_t max, char **end)
{
	sqlite3_stmt *st;
	int err = store__stmt(s, ST_IDEM_WINDOW, stmt_sql[ST_IDEM_WINDOW], &st);

	*end = NULL;
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	bind_text(&b, s->prune_after ? s->prune_after : "");
	bind_i64(&b, max - 1);
	int rc = b.rc == SQLITE_OK ? sqlite3_step(st) : b.rc;
	if (rc == SQLITE_ROW && col_text(st, 0) != NULL)
		*end = xstrdup(col_text(st, 0));
	else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		err = sql_fail(s, rc);
	store__stmt_done(s, ST_IDEM_WINDOW, st);
	return err;
}

/*
 * Without rowids (schema 0011) nothing orders the records by age: each
 * call takes the next window of max keys in key order, deletes its expired
 * records, and the window after the last one starts again at the first
 * key. A record outlives its retention by at most one round of windows.
 */
int store_idem_prune(struct store *s, int64_t before, int64_t max, int64_t *deleted)
{
	enum store_stmt slot;
	sqlite3_stmt *st;
	char *end = NULL;
	int err;

	*deleted = 0;
	if (max < 1)
		return 0;
	err = idem_window(s, max, &end);
	if (err < 0)
		return err;
	slot = end ? ST_IDEM_PRUNE : ST_IDEM_PRUNE_TAIL;
	err = store__stmt(s, slot, stmt_sql[slot], &st);
	if (err < 0)
		goto fail_stmt;
	struct binder b = {st, 0, SQLITE_OK};
	bind_text(&b, s->prune_after ? s->prune_after : "");
	if (end)
		bind_text(&b, end);
	bind_i64(&b, before);
	err = step_done(s, &b);
	*deleted = err == 0 ? sqlite3_changes(s->db) : 0;
	store__stmt_done(s, slot, st);
	if (err == 0) {
		free(s->prune_after);
		s->prune_after = end;	/* NULL: the next window is the first */
		end = NULL;
	}
fail_stmt:
	free(end);
	return err;
}

int store_idem_get(struct store *s, const char *key,
		   uint8_t body_hash[HASH_LEN], int *status, char **response)
{
	int64_t seq;
	return store_idem_lookup(s, key, body_hash, status, response, &seq);
}

int store_idem_lookup(struct store *s, const char *key, uint8_t body_hash[HASH_LEN],
		      int *status, char **response, int64_t *seq)
{
	sqlite3_stmt *st;
	int err = store__stmt(s, ST_IDEM_GET, stmt_sql[ST_IDEM_GET], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	bind_text(&b, key);
	int rc = b.rc == SQLITE_OK ? sqlite3_step(st) : b.rc;
	if (rc == SQLITE_ROW) {
		const char *r = col_text(st, 2);
		col_idem_hash(st, 0, body_hash);
		*status = sqlite3_column_int(st, 1);
		*response = r ? xstrdup(r) : NULL;
		*seq = col_i64(st, 3);
	} else if (rc == SQLITE_DONE) {
		err = -ENOENT;
	} else {
		err = sql_fail(s, rc);
	}
	store__stmt_done(s, ST_IDEM_GET, st);
	return err;
}

static int row_jentry(struct store *s, sqlite3_stmt *st, struct jentry *e)
{
	memset(e, 0, sizeof(*e));
	e->seq = col_i64(st, 0);
	e->time = col_i64(st, 1);
	const char *kind = col_text(st, 2);
	if (kind == NULL || jkind_parse(kind, &e->kind) < 0)
		return fail(s, -EILSEQ, "journal entry %" PRId64 ": unknown kind"
			    " \"%.64s\"", e->seq, kind ? kind : "(null)");
	e->actor = col_text(st, 3);
	e->request_id = col_text(st, 4);
	e->consortium = col_text(st, 5);
	e->phase = col_text(st, 6);
	e->gpu = col_text(st, 7);
	e->allocation = col_text(st, 8);
	e->pool = col_text(st, 9);
	e->gpus = col_i64(st, 10);
	e->start = col_i64(st, 11);
	e->end = col_i64(st, 12);
	e->granted_delta = col_i64(st, 13);
	e->committed_delta = col_i64(st, 14);
	e->expired_delta = col_i64(st, 15);
	e->max_gpus = col_i64(st, 16);
	e->reason = col_text(st, 17);
	col_hash(st, 18, e->prev_hash);
	col_hash(st, 19, e->hash);
	col_salt(st, 20, e);
	col_hash(st, 21, e->view_hash);
	/* schema 0006's extra, owned by e (the strings above are not) */
	if (sqlite3_column_count(st) > 22 && col_text(st, 22) != NULL) {
		e->extra = json_loads(col_text(st, 22), JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(e->extra)) {
			json_decref(e->extra);
			e->extra = NULL;
			return fail(s, -EILSEQ, "journal entry %" PRId64 ": extra is not"
				    " a JSON object", e->seq);
		}
	}
	return 0;
}

int store_journal_each(struct store *s, int64_t since, const char *consortium,
		       int64_t limit, store_entry_cb cb, void *arg)
{
	enum store_stmt slot = consortium ? ST_JOURNAL_OF : ST_JOURNAL_ALL;
	struct jentry e;
	sqlite3_stmt *st;
	int rc;
	int err = store__stmt(s, slot, stmt_sql[slot], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	bind_i64(&b, since);
	if (consortium)
		bind_text(&b, consortium);
	bind_i64(&b, limit > 0 ? limit : -1);
	rc = b.rc;
	while (b.rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		err = row_jentry(s, st, &e);
		if (err == 0)
			err = cb(arg, &e);
		json_decref(e.extra);
		if (err != 0)
			break;
	}
	if (err == 0 && rc != SQLITE_DONE)
		err = sql_fail(s, rc);
	store__stmt_done(s, slot, st);
	return err;
}

int store_ledger_ops_each(struct store *s, store_entry_cb cb, void *arg)
{
	struct jentry e;
	sqlite3_stmt *st;
	int rc, err = store__stmt(s, ST_JOURNAL_LEDGER_OPS, stmt_sql[ST_JOURNAL_LEDGER_OPS], &st);

	if (err < 0)
		return err;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		err = row_jentry(s, st, &e);
		if (err == 0)
			err = cb(arg, &e);
		json_decref(e.extra);
		if (err != 0)
			break;
	}
	if (err == 0 && rc != SQLITE_DONE)
		err = sql_fail(s, rc);
	store__stmt_done(s, ST_JOURNAL_LEDGER_OPS, st);
	return err;
}

/* One integer from a statement of slot, bound by the caller's binder. */
static int one_i64(struct store *s, enum store_stmt slot, sqlite3_stmt *st,
		   struct binder *b, int64_t none, int64_t *out)
{
	int rc = b->rc, err = 0;
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = col_i64(st, 0);
	else if (rc == SQLITE_DONE)
		*out = none;
	else
		err = sql_fail(s, rc);
	store__stmt_done(s, slot, st);
	return err;
}

int store_journal_count(struct store *s, const char *consortium, int64_t after,
			int64_t upto, int64_t *n)
{
	enum store_stmt slot = consortium ? ST_JOURNAL_COUNT_OF : ST_JOURNAL_COUNT;
	sqlite3_stmt *st;
	int err = store__stmt(s, slot, stmt_sql[slot], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	if (consortium)
		bind_text(&b, consortium);
	bind_i64(&b, after);
	bind_i64(&b, upto);
	return one_i64(s, slot, st, &b, 0, n);
}

int store_journal_newest(struct store *s, const char *consortium, int64_t skip,
			 int64_t *seq)
{
	enum store_stmt slot = consortium ? ST_JOURNAL_NEWEST_OF : ST_JOURNAL_NEWEST;
	sqlite3_stmt *st;
	int err = store__stmt(s, slot, stmt_sql[slot], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	if (consortium)
		bind_text(&b, consortium);
	bind_i64(&b, skip);
	return one_i64(s, slot, st, &b, 0, seq);
}

int store_journal_head(struct store *s, int64_t *seq, uint8_t hash[HASH_LEN])
{
	sqlite3_stmt *st;
	int err = store__stmt(s, ST_JOURNAL_HEAD, stmt_sql[ST_JOURNAL_HEAD], &st);
	if (err < 0)
		return err;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*seq = col_i64(st, 0);
		col_hash(st, 1, hash);
	} else if (rc == SQLITE_DONE) {
		*seq = 0;
		memset(hash, 0, HASH_LEN);
	} else {
		err = sql_fail(s, rc);
	}
	store__stmt_done(s, ST_JOURNAL_HEAD, st);
	return err;
}

int store_config_last(struct store *s, json_t **structure)
{
	sqlite3_stmt *st;
	int err = store__stmt(s, ST_CONFIG_LAST, stmt_sql[ST_CONFIG_LAST], &st);
	if (err < 0)
		return err;
	*structure = NULL;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *text = col_text(st, 0);
		json_t *extra = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
		json_t *cur = json_object_get(extra, "structure");
		if (json_is_object(cur))
			*structure = json_incref(cur);
		else
			err = fail(s, -EILSEQ, "the last config entry has no structure");
		json_decref(extra);
	} else if (rc != SQLITE_DONE) {
		err = sql_fail(s, rc);
	}
	store__stmt_done(s, ST_CONFIG_LAST, st);
	return err;
}

int store_open_readonly(const char *path, struct store **out, char **cause)
{
	struct store *s = xcalloc(1, sizeof(*s));
	int rc = sqlite3_open_v2(path, &s->db, OPEN_FLAGS | SQLITE_OPEN_READONLY, NULL);

	*cause = NULL;
	if (rc != SQLITE_OK) {
		int err = errno_from_sqlite(rc);
		*cause = xasprintf("cannot open database %s: %s", path,
				   s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		store_close(s);
		return err;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	*out = s;
	return 0;
}

bool store_serialized(const struct store *s)
{
	return sqlite3_db_mutex(s->db) != NULL;
}

int store_read_begin(struct store *s)
{
	return run(s, ST_READ_BEGIN, NULL);
}

void store_read_end(struct store *s)
{
	store_rollback(s);	/* nothing was written: ending the snapshot is all */
}

int store_checkpoint_get(struct store *s, int64_t *seq, uint8_t hash[HASH_LEN])
{
	sqlite3_stmt *st;
	int err = store__stmt(s, ST_CHECKPOINT_GET, stmt_sql[ST_CHECKPOINT_GET], &st);
	if (err < 0)
		return err;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*seq = col_i64(st, 0);
		col_hash(st, 1, hash);
	} else {
		err = rc == SQLITE_DONE ? -ENOENT : sql_fail(s, rc);
	}
	store__stmt_done(s, ST_CHECKPOINT_GET, st);
	return err;
}

static int checkpoint_view_set(struct store *s, const struct jview *v)
{
	sqlite3_stmt *st;
	int err = store__stmt(s, ST_CHECKPOINT_VIEW_SET, stmt_sql[ST_CHECKPOINT_VIEW_SET], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	bind_text(&b, v->consortium);
	bind_i64(&b, v->entries);
	bind_i64(&b, v->last_seq);
	bind_hash(&b, v->head);
	err = step_done(s, &b);
	store__stmt_done(s, ST_CHECKPOINT_VIEW_SET, st);
	return err;
}

/* Runs fn in a transaction of its own unless the caller has one open. */
static int in_transaction(struct store *s, int (*fn)(struct store *s, void *arg), void *arg)
{
	bool own = sqlite3_get_autocommit(s->db);
	int err = own ? exec(s, "BEGIN IMMEDIATE") : 0;

	if (err == 0)
		err = fn(s, arg);
	if (own && err == 0)
		err = exec(s, "COMMIT");
	if (own && err < 0 && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return err;
}

struct checkpoint_rows {
	int64_t seq;
	const uint8_t *hash;
	const struct jviews *views;
};

static int checkpoint_write(struct store *s, void *arg)
{
	const struct checkpoint_rows *c = arg;
	sqlite3_stmt *st;
	int err = run(s, ST_CHECKPOINT_VIEWS_CLEAR, NULL);

	if (err < 0 || c->views == NULL)
		return err < 0 ? err : run(s, ST_CHECKPOINT_CLEAR, NULL);
	err = store__stmt(s, ST_CHECKPOINT_SET, stmt_sql[ST_CHECKPOINT_SET], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	bind_i64(&b, c->seq);
	bind_hash(&b, c->hash);
	err = step_done(s, &b);
	store__stmt_done(s, ST_CHECKPOINT_SET, st);
	for (size_t i = 0; i < c->views->n && err == 0; i++)
		err = checkpoint_view_set(s, &c->views->v[i]);
	return err;
}

int store_checkpoint_set(struct store *s, int64_t seq, const uint8_t hash[HASH_LEN],
			 const struct jviews *views)
{
	static const struct jviews none;
	struct checkpoint_rows c = {seq, hash, views ? views : &none};
	return in_transaction(s, checkpoint_write, &c);
}

int store_checkpoint_clear(struct store *s)
{
	struct checkpoint_rows c = {0, NULL, NULL};
	return in_transaction(s, checkpoint_write, &c);
}

int store_journal_hash_at(struct store *s, int64_t seq, uint8_t hash[HASH_LEN],
			  uint8_t prev_hash[HASH_LEN])
{
	sqlite3_stmt *st;
	int err = store__stmt(s, ST_JOURNAL_HASH_AT, stmt_sql[ST_JOURNAL_HASH_AT], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	bind_i64(&b, seq);
	int rc = b.rc == SQLITE_OK ? sqlite3_step(st) : b.rc;
	if (rc == SQLITE_ROW) {
		col_hash(st, 0, hash);
		col_hash(st, 1, prev_hash);
	} else {
		err = rc == SQLITE_DONE ? -ENOENT : sql_fail(s, rc);
	}
	store__stmt_done(s, ST_JOURNAL_HASH_AT, st);
	return err;
}

/*
 * For 0004: the view hash of every entry written before it, each
 * consortium's chain from its first entry. Computed first and written
 * after, so that no row changes under the reading statement.
 */
static int fill_view_hashes(struct store *s)
{
	sqlite3_stmt *sel = NULL, *upd = NULL;
	struct jviews views = {0};
	struct {
		int64_t seq;
		uint8_t hash[HASH_LEN];
	} *rows = NULL;
	size_t n = 0, cap = 0;
	struct jentry e;
	int err = 0;
	int rc = sqlite3_prepare_v2(s->db, "SELECT " JOURNAL_COLUMNS_V5 " FROM journal"
				    " WHERE consortium IS NOT NULL ORDER BY seq", -1, &sel, NULL);

	while (rc == SQLITE_OK || rc == SQLITE_ROW) {
		if ((rc = sqlite3_step(sel)) != SQLITE_ROW)
			break;
		if ((err = row_jentry(s, sel, &e)) != 0)
			goto done;
		jviews_seal(&views, &e);
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			rows = xreallocarray(rows, cap, sizeof(*rows));
		}
		rows[n].seq = e.seq;
		memcpy(rows[n].hash, e.view_hash, HASH_LEN);
		n++;
	}
	if (rc != SQLITE_DONE) {
		err = sql_fail(s, rc);
		goto done;
	}
	rc = sqlite3_prepare_v2(s->db, "UPDATE journal SET view_hash = ?1 WHERE seq = ?2", -1,
				&upd, NULL);
	if (rc != SQLITE_OK)
		err = sql_fail(s, rc);
	for (size_t i = 0; i < n && err == 0; i++) {
		struct binder b = {upd, 0, SQLITE_OK};
		bind_hash(&b, rows[i].hash);
		bind_i64(&b, rows[i].seq);
		err = step_done(s, &b);
		sqlite3_reset(upd);
	}
done:
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	jviews_clear(&views);
	free(rows);
	return err;
}

/* The rows of view_heads or audit_checkpoint_views (schema 0013), by consortium. */
static int heads_each(struct store *s, enum store_stmt slot, store_view_cb cb, void *arg)
{
	sqlite3_stmt *st;
	uint8_t head[HASH_LEN];
	int rc;
	int err = store__stmt(s, slot, stmt_sql[slot], &st);
	if (err < 0)
		return err;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (col_text(st, 0) == NULL) {
			err = fail(s, -EILSEQ, "a view head without a consortium");
			break;
		}
		col_hash(st, 3, head);
		err = cb(arg, col_text(st, 0), col_i64(st, 1), col_i64(st, 2), head);
		if (err != 0)
			break;
	}
	if (err == 0 && rc != SQLITE_DONE)
		err = sql_fail(s, rc);
	store__stmt_done(s, slot, st);
	return err;
}

int store_views_each(struct store *s, store_view_cb cb, void *arg)
{
	return heads_each(s, ST_VIEW_HEADS, cb, arg);
}

int store_checkpoint_views_each(struct store *s, store_view_cb cb, void *arg)
{
	return heads_each(s, ST_CHECKPOINT_VIEWS, cb, arg);
}

/* A consortium's entry moves its view head (schema 0013). */
/* slot: the UPDATE of the consortium's row, or the INSERT of its first. */
static int view_head_step(struct store *s, enum store_stmt slot, const struct jentry *e,
			  bool *changed)
{
	sqlite3_stmt *st;
	int err = store__stmt(s, slot, stmt_sql[slot], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	bind_text(&b, e->consortium);
	bind_i64(&b, e->seq);
	bind_hash(&b, e->view_hash);
	err = step_done(s, &b);
	*changed = err == 0 && sqlite3_changes(s->db) > 0;
	store__stmt_done(s, slot, st);
	return err;
}

/* As balance_add(): the consortium's row is there for all but its first entry. */
static int view_head_add(struct store *s, const struct jentry *e)
{
	bool changed;
	int err = view_head_step(s, ST_VIEW_HEAD_UPDATE, e, &changed);

	if (err == 0 && !changed)
		err = view_head_step(s, ST_VIEW_HEAD_ADD, e, &changed);
	return err;
}

int store_view_at(struct store *s, const char *consortium, int64_t seq,
		  uint8_t view_hash[HASH_LEN])
{
	sqlite3_stmt *st;
	int err = store__stmt(s, ST_VIEW_AT, stmt_sql[ST_VIEW_AT], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	bind_text(&b, consortium);
	bind_i64(&b, seq);
	int rc = b.rc == SQLITE_OK ? sqlite3_step(st) : b.rc;
	memset(view_hash, 0, HASH_LEN);
	if (rc == SQLITE_ROW)
		col_hash(st, 0, view_hash);
	else if (rc != SQLITE_DONE)
		err = sql_fail(s, rc);
	store__stmt_done(s, ST_VIEW_AT, st);
	return err;
}

static int row_alloc(struct store *s, sqlite3_stmt *st, struct alloc *a)
{
	const char *id = col_text(st, 0);
	const char *stored = col_text(st, 10);

	memset(a, 0, sizeof(*a));
	if (id == NULL || strlen(id) >= sizeof(a->id))
		return fail(s, -EILSEQ, "allocation \"%.32s\": bad id",
			    id ? id : "(null)");
	strcpy(a->id, id);
	if (alloc_stored_parse(stored, &a->stored) < 0)
		return fail(s, -EILSEQ, "allocation %s: unknown state \"%.32s\"",
			    a->id, stored ? stored : "(null)");
	a->num = col_i64(st, 1);
	a->consortium = col_text(st, 2);
	a->pool = col_text(st, 3);
	a->gpu = col_text(st, 4);
	a->phase = col_text(st, 5);
	a->gpus = col_i64(st, 6);
	a->start = col_i64(st, 7);
	a->end = col_i64(st, 8);
	a->booked_end = col_i64(st, 9);
	a->cost = col_i64(st, 11);
	a->note = col_text(st, 12);
	a->created = col_i64(st, 13);
	a->seq = col_i64(st, 14);
	return 0;
}

int store_allocations_each(struct store *s, const struct alloc_filter *f,
			   store_alloc_cb cb, void *arg)
{
	static const struct alloc_filter none;
	struct buf sql = {0};
	struct alloc a;
	sqlite3_stmt *st;
	unsigned mask = 0;
	int rc;

	if (f == NULL)
		f = &none;
	mask |= f->consortium ? AF_CONSORTIUM : 0;
	mask |= f->pool ? AF_POOL : 0;
	mask |= f->id ? AF_ID : 0;
	mask |= f->live_only ? AF_LIVE : 0;
	mask |= f->starts_before_set ? AF_BEFORE : 0;
	mask |= f->unordered ? AF_UNORDERED : 0;
	buf_puts(&sql, "SELECT " ALLOC_COLUMNS " FROM allocations WHERE 1");
	if (mask & AF_CONSORTIUM)
		buf_puts(&sql, " AND consortium = ?");
	if (mask & AF_POOL)
		buf_puts(&sql, " AND pool = ?");
	if (mask & AF_ID)	/* a rowid seek (schema 0012) */
		buf_puts(&sql, " AND num = ? AND id = ?");
	if (mask & AF_LIVE)
		/* what is not cancelled, as ranges of the (stored, end) index */
		buf_puts(&sql, " AND stored IN ('booked', 'released', 'revoked')"
			 " AND \"end\" > start AND \"end\" > ?");
	if (mask & AF_BEFORE)
		buf_puts(&sql, " AND start < ?");
	if (!(mask & AF_UNORDERED))	/* a sort of every row the query finds */
		buf_puts(&sql, " ORDER BY num");

	unsigned slot = ST__COUNT + mask;
	int err = store__stmt(s, slot, sql.data, &st);
	buf_free(&sql);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	if (mask & AF_CONSORTIUM)
		bind_text(&b, f->consortium);
	if (mask & AF_POOL)
		bind_text(&b, f->pool);
	if (mask & AF_ID) {
		bind_i64(&b, alloc_num(f->id));
		bind_text(&b, f->id);
	}
	if (mask & AF_LIVE)
		bind_i64(&b, f->live_after);
	if (mask & AF_BEFORE)
		bind_i64(&b, f->starts_before);
	rc = b.rc;
	while (b.rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		err = row_alloc(s, st, &a);
		if (err == 0)
			err = cb(arg, &a);
		if (err != 0)
			break;
	}
	if (err == 0 && rc != SQLITE_DONE)
		err = sql_fail(s, rc);
	store__stmt_done(s, slot, st);
	return err;
}

int store_allocation_max_num(struct store *s, int64_t *num)
{
	sqlite3_stmt *st;
	int err = store__stmt(s, ST_ALLOC_MAX_NUM, stmt_sql[ST_ALLOC_MAX_NUM], &st);
	if (err < 0)
		return err;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*num = col_i64(st, 0);
	else
		err = sql_fail(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc);
	store__stmt_done(s, ST_ALLOC_MAX_NUM, st);
	return err;
}

/*
 * The key after (c, p, g) in (consortium, pool, gpu) order, or the first
 * one when c is NULL: 0 and out[] malloc'd, -ENOENT after the last.
 */
static int ref_next(struct store *s, char *const key[3], char *out[3])
{
	static const enum store_stmt step[] = {ST_REF_NEXT_GPU, ST_REF_NEXT_POOL,
					       ST_REF_NEXT_CONSORTIUM};
	int err = -ENOENT;

	for (int level = 0; level < (key[0] ? 3 : 1) && err == -ENOENT; level++) {
		enum store_stmt slot = key[0] ? step[level] : ST_REF_FIRST;
		sqlite3_stmt *st;
		err = store__stmt(s, slot, stmt_sql[slot], &st);
		if (err < 0)
			return err;
		struct binder b = {st, 0, SQLITE_OK};
		for (int i = 0; key[0] && i < 3 - level; i++)
			bind_text(&b, key[i]);
		int rc = b.rc == SQLITE_OK ? sqlite3_step(st) : b.rc;
		if (rc == SQLITE_ROW) {
			err = 0;
			for (int i = 0; i < 3; i++) {
				const char *t = col_text(st, i);
				out[i] = t ? xstrdup(t) : NULL;
			}
			if (!out[0] || !out[1] || !out[2])
				err = fail(s, -EILSEQ,
					   "an allocation without a consortium, pool or GPU model");
		} else {
			err = rc == SQLITE_DONE ? -ENOENT : sql_fail(s, rc);
		}
		store__stmt_done(s, slot, st);
	}
	return err;
}

/* The first start of a key's bookings that were not cancelled, or TIME_MAX. */
static int ref_first_start(struct store *s, char *const key[3], int64_t *start)
{
	sqlite3_stmt *st;
	int err = store__stmt(s, ST_REF_FIRST_START, stmt_sql[ST_REF_FIRST_START], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	for (int i = 0; i < 3; i++)
		bind_text(&b, key[i]);
	int rc = b.rc == SQLITE_OK ? sqlite3_step(st) : b.rc;
	*start = TIME_MAX;
	if (rc == SQLITE_ROW)
		*start = col_i64(st, 0);
	else if (rc != SQLITE_DONE)
		err = sql_fail(s, rc);
	store__stmt_done(s, ST_REF_FIRST_START, st);
	return err;
}

/*
 * A loose index scan (schema 0010's index on consortium, pool, gpu,
 * start): a few seeks per key, so that the start-up costs the number of
 * keys, not the allocations of the whole history.
 */
int store_allocation_refs_each(struct store *s, store_alloc_ref_cb cb, void *arg)
{
	char *key[3] = {NULL, NULL, NULL}, *next[3];
	struct alloc_ref r;
	int err;

	while ((err = ref_next(s, key, next)) == 0) {
		for (int i = 0; i < 3; i++) {
			free(key[i]);
			key[i] = next[i];
		}
		err = ref_first_start(s, key, &r.first_start);
		if (err != 0)
			break;
		r.consortium = key[0];
		r.pool = key[1];
		r.gpu = key[2];
		err = cb(arg, &r);
		if (err != 0)
			break;
	}
	for (int i = 0; i < 3; i++)
		free(key[i]);
	return err == -ENOENT ? 0 : err;
}

int store_balances_each(struct store *s, store_balance_cb cb, void *arg)
{
	struct balance bal;
	sqlite3_stmt *st;
	int rc;
	int err = store__stmt(s, ST_BALANCES, stmt_sql[ST_BALANCES], &st);
	if (err < 0)
		return err;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		bal.consortium = col_text(st, 0);
		bal.phase = col_text(st, 1);
		bal.gpu = col_text(st, 2);
		bal.granted = col_i64(st, 3);
		bal.committed = col_i64(st, 4);
		bal.expired = col_i64(st, 5);
		bal.max_gpus = col_i64(st, 6);
		bal.used = col_i64(st, 7);
		err = cb(arg, &bal);
		if (err != 0)
			break;
	}
	if (err == 0 && rc != SQLITE_DONE)
		err = sql_fail(s, rc);
	store__stmt_done(s, ST_BALANCES, st);
	return err;
}

static void row_usage(sqlite3_stmt *st, struct usage *u)
{
	/* the strings point into the row: the caller's callback copies them */
	u->source = col_text(st, 0);
	u->job_id = col_text(st, 1);
	u->consortium = col_text(st, 2);
	u->phase = col_text(st, 3);
	u->gpu = col_text(st, 4);
	u->allocation = col_text(st, 5);
	u->gpu_seconds = col_i64(st, 6);
	u->end = col_i64(st, 7);
	u->seq = col_i64(st, 8);
}

int store_usage_get(struct store *s, const char *source, const char *job_id,
		    struct usage *out)
{
	sqlite3_stmt *st;
	struct usage u;
	int err = store__stmt(s, ST_USAGE_GET, stmt_sql[ST_USAGE_GET], &st);
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	bind_text(&b, source);
	bind_text(&b, job_id);
	int rc = b.rc == SQLITE_OK ? sqlite3_step(st) : b.rc;
	if (rc == SQLITE_ROW) {
		row_usage(st, &u);
		usage_copy(out, &u);
	} else if (rc == SQLITE_DONE) {
		err = -ENOENT;
	} else {
		err = sql_fail(s, rc);
	}
	store__stmt_done(s, ST_USAGE_GET, st);
	return err;
}

int store_usage_each(struct store *s, store_usage_cb cb, void *arg)
{
	sqlite3_stmt *st;
	struct usage u;
	int rc;
	int err = store__stmt(s, ST_USAGE_ALL, stmt_sql[ST_USAGE_ALL], &st);
	if (err < 0)
		return err;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_usage(st, &u);
		err = cb(arg, &u);
		if (err != 0)
			break;
	}
	if (err == 0 && rc != SQLITE_DONE)
		err = sql_fail(s, rc);
	store__stmt_done(s, ST_USAGE_ALL, st);
	return err;
}

/*
 * The consortium's elimination spans, from its eliminate and reinstate
 * entries in seq order: each elimination opens one, the reinstatement
 * after it closes it. *out is malloc'd (caller frees).
 */
static int cstate_spans(struct store *s, const char *consortium, struct cs_span **out,
			size_t *n)
{
	sqlite3_stmt *st;
	int rc;
	int err = store__stmt(s, ST_CSTATE_SPANS, stmt_sql[ST_CSTATE_SPANS], &st);

	*out = NULL;
	*n = 0;
	if (err < 0)
		return err;
	struct binder b = {st, 0, SQLITE_OK};
	bind_text(&b, consortium);
	rc = b.rc;
	while (b.rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *kind = col_text(st, 0);
		int64_t at = col_i64(st, 1);
		bool open = *n > 0 && (*out)[*n - 1].until == TIME_MAX;
		if (kind != NULL && strcmp(kind, "eliminate") == 0 && !open) {
			*out = xreallocarray(*out, *n + 1, sizeof(**out));
			(*out)[(*n)++] = (struct cs_span){.from = at, .until = TIME_MAX};
		} else if (kind != NULL && strcmp(kind, "reinstate") == 0 && open) {
			(*out)[*n - 1].until = at;
		} else {
			err = fail(s, -EILSEQ, "consortium %.64s: a %.16s in the journal that"
				   " does not follow its status", consortium, kind ? kind : "(null)");
			break;
		}
	}
	if (err == 0 && rc != SQLITE_DONE)
		err = sql_fail(s, rc);
	store__stmt_done(s, ST_CSTATE_SPANS, st);
	if (err != 0) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return err;
}

int store_cstates_each(struct store *s, store_cstate_cb cb, void *arg)
{
	struct cstate c;
	sqlite3_stmt *st;
	int rc;
	int err = store__stmt(s, ST_CSTATES, stmt_sql[ST_CSTATES], &st);
	if (err < 0)
		return err;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *status = col_text(st, 1);
		memset(&c, 0, sizeof(c));
		c.consortium = col_text(st, 0);
		if (status != NULL && strcmp(status, "active") == 0) {
			c.status = CS_ACTIVE;
		} else if (status != NULL && strcmp(status, "eliminated") == 0) {
			c.status = CS_ELIMINATED;
		} else {
			err = fail(s, -EILSEQ, "consortium %.64s: unknown status"
				   " \"%.32s\"", c.consortium ? c.consortium : "(null)",
				   status ? status : "(null)");
			break;
		}
		c.since = col_i64(st, 2);
		c.designation_until = sqlite3_column_type(st, 3) == SQLITE_NULL ?
				      TIME_MIN : col_i64(st, 3);
		c.active_from = sqlite3_column_type(st, 4) == SQLITE_NULL ?
				TIME_MIN : col_i64(st, 4);
		err = cstate_spans(s, c.consortium, &c.spans, &c.n_spans);
		if (err == 0)
			err = cb(arg, &c);
		free(c.spans);
		if (err != 0)
			break;
	}
	if (err == 0 && rc != SQLITE_DONE)
		err = sql_fail(s, rc);
	store__stmt_done(s, ST_CSTATES, st);
	return err;
}

/* --- online backup ------------------------------------------------------- */

int store_backup_file(const char *src_path, const char *dest_path, char **cause)
{
	sqlite3 *src = NULL, *dest = NULL;
	sqlite3_backup *b;
	int rc, err = 0;

	*cause = NULL;
	/* its own connections: this runs off the loop thread */
	rc = sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		*cause = xasprintf("cannot open %s: %s", src_path,
				   src ? sqlite3_errmsg(src) : sqlite3_errstr(rc));
		err = errno_from_sqlite(rc);
		goto out;
	}
	sqlite3_busy_timeout(src, BUSY_TIMEOUT_MS);
	rc = sqlite3_open_v2(dest_path, &dest,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		*cause = xasprintf("cannot create %s: %s", dest_path,
				   dest ? sqlite3_errmsg(dest) : sqlite3_errstr(rc));
		err = errno_from_sqlite(rc);
		goto out;
	}
	b = sqlite3_backup_init(dest, "main", src, "main");
	if (b == NULL) {
		*cause = xasprintf("cannot back up %s: %s", src_path, sqlite3_errmsg(dest));
		err = -EIO;
		goto out;
	}
	/* one step: one read transaction, so the copy is one committed state */
	rc = sqlite3_backup_step(b, -1);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		*cause = xasprintf("backup of %s failed: %s", src_path, sqlite3_errstr(rc));
		err = errno_from_sqlite(rc);
		goto out;
	}
	/* a copy that stands alone: no -wal beside it */
	rc = sqlite3_exec(dest, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		*cause = xasprintf("cannot finish %s: %s", dest_path, sqlite3_errmsg(dest));
		err = errno_from_sqlite(rc);
	}
out:
	sqlite3_close_v2(dest);
	sqlite3_close_v2(src);
	return err;
}
