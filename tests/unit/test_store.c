/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the store (and of the model records it reads into): schema
 * migration and refusal of a newer schema, file modes, the cache tables that
 * each journal kind moves, iteration filters, idempotency records, rollback,
 * injected commit failures, and a database tampered with through a second
 * SQLite connection, as an intruder with the sqlite3 shell would.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "daemon/journal.h"
#include "daemon/model.h"
#include "daemon/schema.h"
#include "daemon/store.h"
#include "daemon/timefmt.h"
#include "daemon/util.h"

#define S(x) ((char *)(x))

/* A temporary directory with one database path in it. */
struct tmpdb {
	char dir[64];
	char path[96];
};

static void tmpdb_make(struct tmpdb *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/test_store.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/ledger.db", t->dir);
}

static void tmpdb_remove(struct tmpdb *t)
{
	static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
	char p[128];

	for (size_t i = 0; i < ARRAY_SIZE(suffix); i++) {
		snprintf(p, sizeof(p), "%s%s", t->path, suffix[i]);
		unlink(p);
	}
	assert_int_equal(rmdir(t->dir), 0);
}

static struct store *open_ok(const char *path)
{
	struct store *s = NULL;
	char *cause = NULL;
	int err = store_open(path, &s, &cause);
	if (err != 0)
		fail_msg("store_open(%s): %d %s", path, err, cause ? cause : "");
	assert_null(cause);
	return s;
}

/* Runs SQL on a second connection, as the sqlite3 shell would. */
static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *db;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

static int64_t raw_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Whether SQLite's plan for sql names index (EXPLAIN QUERY PLAN's detail column). */
static bool raw_plan_uses(const char *path, const char *sql, const char *index)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char q[512];
	bool uses = false;

	snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *detail = (const char *)sqlite3_column_text(st, 3);
		uses = uses || (detail && strstr(detail, index));
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return uses;
}

/* A journal entry with the fields every kind has. */
static struct jentry entry(int64_t seq, enum jkind kind, const char *consortium)
{
	struct jentry e;
	memset(&e, 0, sizeof(e));
	e.seq = seq;
	e.time = 1750000000 + seq;
	e.kind = kind;
	e.actor = S("root");
	e.request_id = S("req");
	e.consortium = S(consortium);
	memset(e.prev_hash, (int)seq - 1, HASH_LEN);
	memset(e.hash, (int)seq, HASH_LEN);
	return e;
}

static struct jentry grant(int64_t seq, const char *c, const char *phase,
			   const char *gpu, int64_t delta)
{
	struct jentry e = entry(seq, delta < 0 ? J_ADJUST : J_GRANT, c);
	e.phase = S(phase);
	e.gpu = S(gpu);
	e.granted_delta = delta;
	e.reason = S("budget");
	return e;
}

static struct jentry reserve(int64_t seq, const char *c, const char *id,
			     const char *pool, int64_t gpus, int64_t start,
			     int64_t end)
{
	struct jentry e = entry(seq, J_RESERVE, c);
	e.phase = S("p1");
	e.gpu = S("B200");
	e.allocation = S(id);
	e.pool = S(pool);
	e.gpus = gpus;
	e.start = start;
	e.end = end;
	e.committed_delta = gpus * (end - start);
	return e;
}

/* An entry that changes an allocation: the new end and the refund. */
static struct jentry change(int64_t seq, enum jkind kind, const struct jentry *r,
			    int64_t end, int64_t refund)
{
	struct jentry e = entry(seq, kind, r->consortium);
	e.phase = r->phase;
	e.gpu = r->gpu;
	e.allocation = r->allocation;
	e.pool = r->pool;
	e.gpus = r->gpus;
	e.start = r->start;
	e.end = end;
	e.committed_delta = refund;
	return e;
}

static void append_ok(struct store *s, const struct jentry *e, const char *note)
{
	assert_int_equal(store_begin(s), 0);
	int err = store_append(s, e, note);
	if (err != 0)
		fail_msg("store_append(seq %lld): %d %s", (long long)e->seq, err,
			 store_errmsg(s));
	assert_int_equal(store_commit(s), 0);
}

static int append_fails(struct store *s, const struct jentry *e)
{
	assert_int_equal(store_begin(s), 0);
	int err = store_append(s, e, NULL);
	store_rollback(s);
	return err;
}

/* Looking things up through the iterators. */
struct bal_find {
	const char *consortium, *phase, *gpu;
	struct balance found;
	int n, rows;
};

static int bal_cb(void *arg, const struct balance *b)
{
	struct bal_find *f = arg;
	f->rows++;
	if (strcmp(b->consortium, f->consortium) == 0 &&
	    strcmp(b->phase, f->phase) == 0 && strcmp(b->gpu, f->gpu) == 0) {
		f->found = *b;
		f->found.consortium = f->found.phase = f->found.gpu = NULL;
		f->n++;
	}
	return 0;
}

static struct balance bal(struct store *s, const char *c, const char *phase,
			  const char *gpu)
{
	struct bal_find f = {c, phase, gpu, {0}, 0, 0};
	assert_int_equal(store_balances_each(s, bal_cb, &f), 0);
	assert_int_equal(f.n, 1);
	return f.found;
}

static int count_balances(struct store *s)
{
	struct bal_find f = {"", "", "", {0}, 0, 0};
	assert_int_equal(store_balances_each(s, bal_cb, &f), 0);
	return f.rows;
}

struct alloc_list {
	struct alloc v[16];
	int n;
};

static int alloc_cb(void *arg, const struct alloc *a)
{
	struct alloc_list *l = arg;
	assert_true(l->n < (int)ARRAY_SIZE(l->v));
	alloc_copy(&l->v[l->n++], a);
	return 0;
}

static void alloc_list_clear(struct alloc_list *l)
{
	for (int i = 0; i < l->n; i++)
		alloc_clear(&l->v[i]);
	l->n = 0;
}

static void allocs(struct store *s, const struct alloc_filter *f,
		   struct alloc_list *l)
{
	alloc_list_clear(l);
	assert_int_equal(store_allocations_each(s, f, alloc_cb, l), 0);
}

/* One allocation by id, into *a (caller clears). */
static void one_alloc(struct store *s, const char *id, struct alloc *a)
{
	struct alloc_list l = {.n = 0};
	struct alloc_filter f = {.id = id};
	allocs(s, &f, &l);
	assert_int_equal(l.n, 1);
	*a = l.v[0];
}

struct cs_list {
	struct cstate v[4];
	char names[4][32];
	struct cs_span spans[4][4];
	int n;
};

static int cs_cb(void *arg, const struct cstate *c)
{
	struct cs_list *l = arg;
	assert_true(l->n < (int)ARRAY_SIZE(l->v));
	assert_true(c->n_spans <= ARRAY_SIZE(l->spans[0]));
	l->v[l->n] = *c;
	snprintf(l->names[l->n], sizeof(l->names[0]), "%s", c->consortium);
	l->v[l->n].consortium = l->names[l->n];
	if (c->n_spans)
		memcpy(l->spans[l->n], c->spans, c->n_spans * sizeof(*c->spans));
	l->v[l->n].spans = l->spans[l->n];
	l->n++;
	return 0;
}

struct seq_list {
	int64_t seq[32];
	int n;
	int stop_at;		/* return 99 after this many, 0 = never */
};

static int seq_cb(void *arg, const struct jentry *e)
{
	struct seq_list *l = arg;
	assert_true(l->n < (int)ARRAY_SIZE(l->seq));
	l->seq[l->n++] = e->seq;
	return l->stop_at && l->n == l->stop_at ? 99 : 0;
}

static int store_setup(void **state)
{
	*state = open_ok(":memory:");
	return 0;
}

static int store_teardown(void **state)
{
	store_close(*state);
	return 0;
}

/* Tests. */

static void test_fresh_memory(void **state)
{
	struct store *s = *state;
	uint8_t hash[HASH_LEN], zero[HASH_LEN] = {0};
	int64_t seq = -1, num = -1;

	assert_true(store_schema_latest() >= 1);
	assert_int_equal(store_schema_version(s), store_schema_latest());
	assert_int_equal(store_journal_head(s, &seq, hash), 0);
	assert_int_equal(seq, 0);
	assert_memory_equal(hash, zero, HASH_LEN);
	assert_int_equal(store_allocation_max_num(s, &num), 0);
	assert_int_equal(num, 0);
	assert_int_equal(count_balances(s), 0);
}

static void test_fresh_file(void **state)
{
	static const char *const tables[] = {
		"journal", "balances", "allocations", "consortium_state",
		"idempotency",
	};
	struct tmpdb t;
	struct stat sb;
	char sql[128], p[128];

	tmpdb_make(&t);
	struct store *s = open_ok(t.path);
	assert_int_equal(store_schema_version(s), store_schema_latest());
	struct jentry e = grant(1, "lg", "p1", "B200", 3600);
	append_ok(s, &e, NULL);

	for (size_t i = 0; i < ARRAY_SIZE(tables); i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM sqlite_master"
			 " WHERE type = 'table' AND name = '%s'", tables[i]);
		assert_int_equal(raw_int(t.path, sql), 1);
	}
	assert_int_equal(raw_int(t.path, "PRAGMA user_version"),
			 store_schema_latest());
	assert_int_equal(raw_int(t.path, "SELECT count(*) FROM sqlite_master"
				 " WHERE type = 'index' AND name LIKE 'allocations_%'"), 2);
	/* a booking's tables keep no index beside their key (schema 0011, 0012) */
	assert_int_equal(raw_int(t.path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
				 " AND tbl_name IN ('allocations', 'balances', 'idempotency')"
				 " AND name LIKE 'sqlite_autoindex_%'"), 0);
	/* an allocation id is looked up by the number it names: a rowid seek */
	assert_true(raw_plan_uses(t.path, "SELECT * FROM allocations WHERE num = 2 AND id = 'A-000002'",
				  "INTEGER PRIMARY KEY"));
	assert_true(raw_plan_uses(t.path, "SELECT * FROM allocations WHERE stored IN ('booked',"
				  " 'released', 'revoked') AND \"end\" > start AND \"end\" > 5",
				  "allocations_live"));
	/* a consortium's eliminations are read through their partial index */
	assert_true(raw_plan_uses(t.path, "SELECT kind, start FROM journal WHERE consortium = 'lg'"
				  " AND kind IN ('eliminate', 'reinstate') ORDER BY seq",
				  "journal_status_changes"));

	/* the file and, while it is open, its WAL and shared memory */
	assert_int_equal(stat(t.path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(p, sizeof(p), "%s-wal", t.path);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(p, sizeof(p), "%s-shm", t.path);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	store_close(s);
	tmpdb_remove(&t);
}

static void test_wal_mode(void **state)
{
	struct tmpdb t;
	sqlite3 *db;
	sqlite3_stmt *st;

	tmpdb_make(&t);
	struct store *s = open_ok(t.path);
	store_close(s);
	assert_int_equal(sqlite3_open(t.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st,
					    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(db);
	tmpdb_remove(&t);
}

/*
 * A writer that keeps committing: the background thread checkpoints once
 * per 1000 new frames, not after every commit past the first 1000 (two
 * fsyncs each, beside the writer's), and the WAL still starts afresh, its
 * file bounded, though no commit ever waits for a checkpoint.
 */
static void test_wal_steady_writer(void **state)
{
	struct tmpdb t;
	char *cause = NULL, reason[3001], wal[600];
	struct stat st;
	int64_t seq;
	uint8_t hash[HASH_LEN];
	const int64_t n = 4000;	/* a page and more each: some 20000 frames */

	(void)state;
	tmpdb_make(&t);
	snprintf(wal, sizeof(wal), "%s-wal", t.path);
	struct store *s = open_ok(t.path);
	assert_int_equal(store_wal_background(s, &cause), 0);
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	for (int64_t i = 1; i <= n; i++) {
		struct jentry e = grant(i, "lg", "p1", "B200", 3600);
		e.reason = reason;
		append_ok(s, &e, NULL);
	}
	assert_int_equal(stat(wal, &st), 0);
	/* 20000 frames or so, in 4000 commits: some 20 checkpoints, and a
	 * few more for the ones that began while the WAL was restarting */
	assert_true(store_wal_checkpoints(s) > 0);
	assert_true(store_wal_checkpoints(s) <= 40);
	/* the WAL started afresh past 10000 frames: it never held them all */
	assert_true(st.st_size < 14000 * (4096 + 24));
	store_close(s);
	s = open_ok(t.path);
	assert_int_equal(store_journal_head(s, &seq, hash), 0);
	assert_int_equal(seq, n);
	assert_int_equal(bal(s, "lg", "p1", "B200").granted, n * 3600);
	store_close(s);
	tmpdb_remove(&t);
}

/*
 * WAL checkpoints off the commits: with store_wal_background() the store's
 * own thread checkpoints once the WAL passes 1000 frames, and what was
 * committed is all there after a reopen.
 */
static void test_wal_background(void **state)
{
	struct tmpdb t;
	char *cause = NULL, reason[3001];
	int64_t seq;
	uint8_t hash[HASH_LEN];

	tmpdb_make(&t);
	struct store *s = open_ok(t.path);
	assert_int_equal(store_wal_checkpoints(s), 0);
	assert_int_equal(store_wal_background(s, &cause), 0);
	assert_null(cause);
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	for (int64_t i = 1; i <= 600; i++) {	/* a page or more each: past 1000 frames */
		struct jentry e = grant(i, "lg", "p1", "B200", 3600);
		e.reason = reason;
		append_ok(s, &e, NULL);
	}
	for (int i = 0; i < 500 && store_wal_checkpoints(s) == 0; i++)
		usleep(10000);
	assert_true(store_wal_checkpoints(s) > 0);
	store_close(s);
	s = open_ok(t.path);
	assert_int_equal(store_journal_head(s, &seq, hash), 0);
	assert_int_equal(seq, 600);
	assert_int_equal(bal(s, "lg", "p1", "B200").granted, 600 * 3600);
	/* :memory: has no WAL: nothing to do */
	struct store *m = open_ok(":memory:");
	assert_int_equal(store_wal_background(m, &cause), 0);
	assert_int_equal(store_wal_checkpoints(m), 0);
	store_close(m);
	store_close(s);
	tmpdb_remove(&t);
}

/*
 * One thread at a time uses each connection, so none pays for SQLite's
 * serialized mode (a mutex around every sqlite3_step() and column read).
 */
static void test_connections_unserialized(void **state)
{
	struct tmpdb t;
	struct store *r = NULL;
	char *cause = NULL;

	tmpdb_make(&t);
	struct store *s = open_ok(t.path);
	assert_false(store_serialized(s));
	assert_int_equal(store_open_readonly(t.path, &r, &cause), 0);
	assert_false(store_serialized(r));
	store_close(r);
	store_close(s);
	tmpdb_remove(&t);
}

static void test_existing_file_made_private(void **state)
{
	struct tmpdb t;
	struct stat sb;

	tmpdb_make(&t);
	FILE *f = fopen(t.path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(chmod(t.path, 0644), 0);
	struct store *s = open_ok(t.path);
	assert_int_equal(stat(t.path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	store_close(s);
	tmpdb_remove(&t);
}

static void test_reopen_keeps_data(void **state)
{
	struct tmpdb t;
	struct seq_list l = {.n = 0};
	int64_t seq;
	uint8_t hash[HASH_LEN], want[HASH_LEN];

	tmpdb_make(&t);
	struct store *s = open_ok(t.path);
	struct jentry g = grant(1, "lg", "p1", "B200", 100000);
	struct jentry r = reserve(2, "lg", "A-000001", "skt", 2, 1000, 2000);
	append_ok(s, &g, NULL);
	append_ok(s, &r, "first run");
	store_close(s);

	s = open_ok(t.path);
	assert_int_equal(store_schema_version(s), store_schema_latest());
	assert_int_equal(store_journal_each(s, 0, NULL, 0, seq_cb, &l), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(store_journal_head(s, &seq, hash), 0);
	assert_int_equal(seq, 2);
	memset(want, 2, HASH_LEN);
	assert_memory_equal(hash, want, HASH_LEN);
	struct balance b = bal(s, "lg", "p1", "B200");
	assert_int_equal(b.granted, 100000);
	assert_int_equal(b.committed, 2000);
	struct alloc a;
	one_alloc(s, "A-000001", &a);
	assert_string_equal(a.note, "first run");
	alloc_clear(&a);
	store_close(s);
	tmpdb_remove(&t);
}

static void test_newer_schema_refused(void **state)
{
	struct tmpdb t;
	struct store *s = NULL;
	char *cause = NULL, sql[64], want[32];
	int newer = store_schema_latest() + 1;

	tmpdb_make(&t);
	store_close(open_ok(t.path));
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", newer);
	raw_exec(t.path, sql);

	assert_int_equal(store_open(t.path, &s, &cause), -EPROTO);
	assert_null(s);
	assert_non_null(cause);
	snprintf(want, sizeof(want), "version %d", newer);
	assert_non_null(strstr(cause, want));
	assert_non_null(strstr(cause, "newer"));
	free(cause);
	/* and it was left as it was */
	assert_int_equal(raw_int(t.path, "PRAGMA user_version"), newer);
	tmpdb_remove(&t);
}

static void test_not_a_database(void **state)
{
	struct tmpdb t;
	struct store *s = NULL;
	char *cause = NULL;
	char junk[4096];

	tmpdb_make(&t);
	memset(junk, 'x', sizeof(junk));
	FILE *f = fopen(t.path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
	fclose(f);
	assert_int_equal(store_open(t.path, &s, &cause), -EILSEQ);
	assert_null(s);
	assert_non_null(cause);
	assert_non_null(strstr(cause, t.path));
	free(cause);
	tmpdb_remove(&t);
}

static void test_unopenable_path(void **state)
{
	struct store *s = NULL;
	char *cause = NULL;

	assert_int_equal(store_open("/nonexistent-dir/x/ledger.db", &s, &cause),
			 -ENOENT);
	assert_null(s);
	assert_non_null(strstr(cause, "/nonexistent-dir/x/ledger.db"));
	free(cause);
}

/* A normal open never creates; STORE_CREATE | STORE_EXCL (--init) never overwrites. */
static void test_open_flags(void **state)
{
	struct tmpdb t;
	struct store *s = NULL;
	char *cause = NULL, id[STORE_LEDGER_ID_LEN + 1], empty[128];
	struct stat sb;

	tmpdb_make(&t);
	assert_int_equal(store_open_flags(t.path, 0, &s, &cause), -ENOENT);
	assert_null(s);
	assert_non_null(strstr(cause, "does not exist"));
	free(cause);
	assert_int_equal(stat(t.path, &sb), -1);	/* and nothing was created */

	assert_int_equal(store_open_flags(t.path, STORE_CREATE | STORE_EXCL, &s, &cause), 0);
	assert_int_equal(strlen(store_ledger_id(s)), STORE_LEDGER_ID_LEN);
	assert_int_equal(strspn(store_ledger_id(s), "0123456789abcdef"), STORE_LEDGER_ID_LEN);
	memcpy(id, store_ledger_id(s), sizeof(id));
	store_close(s);
	assert_int_equal(store_open_flags(t.path, STORE_CREATE | STORE_EXCL, &s, &cause), -EEXIST);
	assert_non_null(strstr(cause, "already exists"));
	free(cause);
	s = NULL;
	assert_int_equal(store_open_flags(t.path, 0, &s, &cause), 0);
	assert_string_equal(store_ledger_id(s), id);	/* the id is the file's */
	store_close(s);

	/* an empty file holds no ledger: refused, and left empty */
	snprintf(empty, sizeof(empty), "%s/empty.db", t.dir);
	FILE *f = fopen(empty, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(store_open_flags(empty, 0, &s, &cause), -ENODATA);
	assert_non_null(strstr(cause, "empty"));
	free(cause);
	assert_int_equal(stat(empty, &sb), 0);
	assert_int_equal(sb.st_size, 0);
	unlink(empty);

	/* each new database gets its own id */
	tmpdb_remove(&t);
	tmpdb_make(&t);
	s = open_ok(t.path);
	assert_string_not_equal(store_ledger_id(s), id);
	store_close(s);
	tmpdb_remove(&t);
}

/* The database file removed under an open store: no commit succeeds again. */
static void test_identity_file_removed(void **state)
{
	struct tmpdb t;
	char keep[128], wal[128];
	struct stat sb;

	tmpdb_make(&t);
	snprintf(keep, sizeof(keep), "%s/keep.db", t.dir);
	snprintf(wal, sizeof(wal), "%s-wal", t.path);
	struct store *s = open_ok(t.path);
	struct jentry g1 = grant(1, "lg", "p1", "B200", 100);
	struct jentry g2 = grant(2, "lg", "p1", "B200", 200);
	append_ok(s, &g1, NULL);
	assert_int_equal(store_check_identity(s), 0);

	assert_int_equal(link(t.path, keep), 0);	/* the inode, to look at afterwards */
	assert_int_equal(unlink(t.path), 0);
	assert_int_equal(store_check_identity(s), -ESTALE);
	assert_non_null(strstr(store_errmsg(s), t.path));
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_append(s, &g2, NULL), 0);
	assert_int_equal(store_commit(s), -ESTALE);
	assert_non_null(strstr(store_errmsg(s), "removed or replaced"));
	store_close(s);
	/* its WAL went with it, not left beside whatever comes at the path next */
	assert_int_equal(stat(wal, &sb), -1);
	/* the removed file holds what was committed, and not what was refused */
	assert_int_equal(raw_int(keep, "SELECT COUNT(*) FROM journal"), 1);
	static const char *const suffix[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < ARRAY_SIZE(suffix); i++) {
		char p[160];
		snprintf(p, sizeof(p), "%s%s", keep, suffix[i]);
		unlink(p);
	}
	tmpdb_remove(&t);
}

/* The WAL removed under an open store: what it held is copied into the database. */
static void test_identity_wal_removed(void **state)
{
	struct tmpdb t;
	char wal[128];

	tmpdb_make(&t);
	snprintf(wal, sizeof(wal), "%s-wal", t.path);
	struct store *s = open_ok(t.path);
	struct jentry g1 = grant(1, "lg", "p1", "B200", 100);
	struct jentry g2 = grant(2, "lg", "p1", "B200", 200);
	append_ok(s, &g1, NULL);	/* in the WAL only: no checkpoint yet */
	assert_int_equal(unlink(wal), 0);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_append(s, &g2, NULL), 0);
	assert_int_equal(store_commit(s), -ESTALE);
	assert_non_null(strstr(store_errmsg(s), wal));
	assert_non_null(strstr(store_errmsg(s), "safe in"));
	/* stale for good, even for a commit with nothing in it */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_commit(s), -ESTALE);
	store_close(s);

	s = NULL;
	char *cause = NULL;
	assert_int_equal(store_open_flags(t.path, 0, &s, &cause), 0);
	struct seq_list l = {.n = 0};
	assert_int_equal(store_journal_each(s, 0, NULL, 0, seq_cb, &l), 0);
	assert_int_equal(l.n, 1);	/* the acknowledged grant, not the refused one */
	assert_int_equal(store_check_identity(s), 0);
	store_close(s);
	tmpdb_remove(&t);
}

static void test_identity_memory(void **state)
{
	struct store *s = *state;
	assert_int_equal(store_check_identity(s), 0);
	assert_int_equal(strlen(store_ledger_id(s)), STORE_LEDGER_ID_LEN);
}

static void test_grant_adjust_cap_expire(void **state)
{
	struct store *s = *state;

	struct jentry e = grant(1, "lg", "p1", "B200", 360000);
	append_ok(s, &e, NULL);
	e = grant(2, "lg", "p1", "B200", 7200);
	append_ok(s, &e, NULL);
	e = grant(3, "lg", "p1", "B200", -3600);
	assert_int_equal(e.kind, J_ADJUST);
	append_ok(s, &e, NULL);
	struct balance b = bal(s, "lg", "p1", "B200");
	assert_int_equal(b.granted, 363600);
	assert_int_equal(b.committed, 0);
	assert_int_equal(b.expired, 0);
	assert_int_equal(b.max_gpus, 0);

	/* a cap on a key with no grant yet makes the row */
	e = entry(4, J_CAP, "lg");
	e.phase = S("p1");
	e.gpu = S("H200");
	e.max_gpus = 64;
	append_ok(s, &e, NULL);
	b = bal(s, "lg", "p1", "H200");
	assert_int_equal(b.max_gpus, 64);
	assert_int_equal(b.granted, 0);

	e.seq = 5;
	e.gpu = S("B200");
	e.max_gpus = 512;
	append_ok(s, &e, NULL);
	e.seq = 6;
	e.max_gpus = 0;		/* removes the cap */
	append_ok(s, &e, NULL);
	b = bal(s, "lg", "p1", "B200");
	assert_int_equal(b.max_gpus, 0);
	assert_int_equal(b.granted, 363600);

	e = entry(7, J_EXPIRE, "lg");
	e.phase = S("p1");
	e.gpu = S("B200");
	e.expired_delta = 63600;
	append_ok(s, &e, NULL);
	b = bal(s, "lg", "p1", "B200");
	assert_int_equal(b.expired, 63600);
	assert_int_equal(b.granted, 363600);

	/* a grant of the next phase is another row */
	e = grant(8, "lg", "p2", "B200", 10);
	append_ok(s, &e, NULL);
	assert_int_equal(bal(s, "lg", "p2", "B200").granted, 10);
	assert_int_equal(count_balances(s), 3);
}

static void test_reserve_release_cancel_revoke(void **state)
{
	struct store *s = *state;
	struct alloc a;
	int64_t num;

	struct jentry g = grant(1, "lg", "p1", "B200", 10000000);
	append_ok(s, &g, NULL);
	struct jentry r1 = reserve(2, "lg", "A-000001", "skt", 8, 1000, 2000);
	struct jentry r2 = reserve(3, "lg", "A-000002", "skt", 4, 5000, 6000);
	struct jentry r3 = reserve(4, "lg", "A-000003", "ncloud", 2, 1000, 3000);
	append_ok(s, &r1, "pretraining");
	append_ok(s, &r2, NULL);
	append_ok(s, &r3, NULL);
	assert_int_equal(bal(s, "lg", "p1", "B200").committed, 8000 + 4000 + 4000);
	assert_int_equal(store_allocation_max_num(s, &num), 0);
	assert_int_equal(num, 3);

	one_alloc(s, "A-000001", &a);
	assert_string_equal(a.id, "A-000001");
	assert_int_equal(a.num, 1);
	assert_string_equal(a.consortium, "lg");
	assert_string_equal(a.pool, "skt");
	assert_string_equal(a.gpu, "B200");
	assert_string_equal(a.phase, "p1");
	assert_int_equal(a.gpus, 8);
	assert_int_equal(a.start, 1000);
	assert_int_equal(a.end, 2000);
	assert_int_equal(a.booked_end, 2000);
	assert_int_equal(a.stored, ALLOC_BOOKED);
	assert_int_equal(a.cost, 8000);
	assert_string_equal(a.note, "pretraining");
	assert_int_equal(a.created, r1.time);
	assert_int_equal(a.seq, 2);
	alloc_clear(&a);
	one_alloc(s, "A-000002", &a);
	assert_null(a.note);
	alloc_clear(&a);

	/* release at 1500: end moves, half refunded */
	struct jentry e = change(5, J_RELEASE, &r1, 1500, -4000);
	append_ok(s, &e, NULL);
	one_alloc(s, "A-000001", &a);
	assert_int_equal(a.stored, ALLOC_RELEASED);
	assert_int_equal(a.end, 1500);
	assert_int_equal(a.booked_end, 2000);
	assert_int_equal(a.cost, 4000);
	alloc_clear(&a);

	/* cancel: full refund, the end stays */
	e = change(6, J_CANCEL, &r2, 6000, -4000);
	append_ok(s, &e, NULL);
	one_alloc(s, "A-000002", &a);
	assert_int_equal(a.stored, ALLOC_CANCELLED);
	assert_int_equal(a.end, 6000);
	assert_int_equal(a.cost, 0);
	alloc_clear(&a);

	/* revoke of a running allocation: cut at 2000 */
	e = change(7, J_REVOKE, &r3, 2000, -2000);
	append_ok(s, &e, NULL);
	one_alloc(s, "A-000003", &a);
	assert_int_equal(a.stored, ALLOC_REVOKED);
	assert_int_equal(a.end, 2000);
	assert_int_equal(a.cost, 2000);
	alloc_clear(&a);

	struct balance b = bal(s, "lg", "p1", "B200");
	assert_int_equal(b.committed, 4000 + 0 + 2000);
	assert_int_equal(b.granted, 10000000);

	/* revoke of quota: granted goes down */
	e = entry(8, J_REVOKE, "lg");
	e.phase = S("p1");
	e.gpu = S("B200");
	e.granted_delta = -1000000;
	append_ok(s, &e, NULL);
	b = bal(s, "lg", "p1", "B200");
	assert_int_equal(b.granted, 9000000);
	assert_int_equal(b.committed, 6000);
}

struct ref_list {
	size_t n;
	struct {
		char consortium[16], pool[16], gpu[16];
		int64_t first_start;
	} v[4];
};

static int ref_cb(void *arg, const struct alloc_ref *r)
{
	struct ref_list *l = arg;
	assert_true(l->n < ARRAY_SIZE(l->v));
	snprintf(l->v[l->n].consortium, sizeof(l->v[l->n].consortium), "%s", r->consortium);
	snprintf(l->v[l->n].pool, sizeof(l->v[l->n].pool), "%s", r->pool);
	snprintf(l->v[l->n].gpu, sizeof(l->v[l->n].gpu), "%s", r->gpu);
	l->v[l->n].first_start = r->first_start;
	l->n++;
	return 0;
}

/* What the whole history of bookings asks of the config: a cancelled one names its pool but no start. */
static void test_allocation_refs(void **state)
{
	struct store *s = *state;
	struct ref_list l = {0};

	struct jentry g = grant(1, "lg", "p1", "B200", 10000000);
	struct jentry r1 = reserve(2, "lg", "A-000001", "skt", 8, 1000, 2000);
	struct jentry r2 = reserve(3, "lg", "A-000002", "skt", 1, 500, 510);
	struct jentry r3 = reserve(4, "lg", "A-000003", "nhn", 1, 100, 110);
	struct jentry c = change(5, J_RELEASE, &r1, 1250, -6000);
	struct jentry x = change(6, J_CANCEL, &r3, 0, -10);
	struct jentry *all[] = {&g, &r1, &r2, &r3, &c, &x};
	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		append_ok(s, all[i], NULL);
	assert_int_equal(store_allocation_refs_each(s, ref_cb, &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].pool, "nhn");
	assert_true(l.v[0].first_start == TIME_MAX);	/* only a cancelled one */
	assert_string_equal(l.v[1].consortium, "lg");
	assert_string_equal(l.v[1].pool, "skt");
	assert_string_equal(l.v[1].gpu, "B200");
	assert_int_equal(l.v[1].first_start, 500);
}

static void test_eliminate_reinstate(void **state)
{
	struct store *s = *state;
	struct cs_list l = {.n = 0};

	struct jentry e = entry(1, J_ELIMINATE, "motif");
	e.start = 1768489200;
	e.end = 1768489200 + 180 * 86400;
	e.reason = S("evaluation");
	append_ok(s, &e, NULL);
	e = entry(2, J_ELIMINATE, "lg");
	e.start = 1000;
	e.end = 0;		/* no designation */
	append_ok(s, &e, NULL);
	assert_int_equal(store_cstates_each(s, cs_cb, &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].consortium, "lg");
	assert_int_equal(l.v[0].status, CS_ELIMINATED);
	assert_int_equal(l.v[0].since, 1000);
	assert_true(l.v[0].designation_until == TIME_MIN);
	assert_string_equal(l.v[1].consortium, "motif");
	assert_int_equal(l.v[1].status, CS_ELIMINATED);
	assert_int_equal(l.v[1].since, 1768489200);
	assert_int_equal(l.v[1].designation_until, 1768489200 + 180 * 86400);

	e = entry(3, J_REINSTATE, "motif");
	e.start = 1771556400;
	append_ok(s, &e, NULL);
	l.n = 0;
	assert_int_equal(store_cstates_each(s, cs_cb, &l), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[1].status, CS_ACTIVE);
	assert_int_equal(l.v[1].since, 1771556400);
	assert_true(l.v[1].designation_until == TIME_MIN);
	assert_int_equal(l.v[1].active_from, 1771556400);
	assert_true(l.v[0].active_from == TIME_MIN);

	/* a second elimination keeps where the active stretch began */
	e = entry(4, J_ELIMINATE, "motif");
	e.start = 1780000000;
	append_ok(s, &e, NULL);
	l.n = 0;
	assert_int_equal(store_cstates_each(s, cs_cb, &l), 0);
	assert_int_equal(l.v[1].status, CS_ELIMINATED);
	assert_int_equal(l.v[1].since, 1780000000);
	assert_int_equal(l.v[1].active_from, 1771556400);
	/* and every elimination span comes from the journal, in order */
	assert_int_equal(l.v[1].n_spans, 2);
	assert_int_equal(l.v[1].spans[0].from, 1768489200);
	assert_int_equal(l.v[1].spans[0].until, 1771556400);
	assert_int_equal(l.v[1].spans[1].from, 1780000000);
	assert_true(l.v[1].spans[1].until == TIME_MAX);
	assert_int_equal(l.v[0].n_spans, 1);
	assert_int_equal(l.v[0].spans[0].from, 1000);
	assert_true(l.v[0].spans[0].until == TIME_MAX);
	/* neither touches the balances */
	assert_int_equal(count_balances(s), 0);
}

/* Every field survives the round trip through the journal table. */
struct jcheck {
	const struct jentry *want;
	int n;
};

static int jcheck_cb(void *arg, const struct jentry *e)
{
	struct jcheck *c = arg;
	const struct jentry *w = c->want;

	c->n++;
	assert_int_equal(e->seq, w->seq);
	assert_int_equal(e->time, w->time);
	assert_int_equal(e->kind, w->kind);
	assert_string_equal(e->actor, w->actor);
	assert_string_equal(e->request_id, w->request_id);
	assert_string_equal(e->consortium, w->consortium);
	assert_string_equal(e->phase, w->phase);
	assert_string_equal(e->gpu, w->gpu);
	assert_string_equal(e->allocation, w->allocation);
	assert_string_equal(e->pool, w->pool);
	assert_null(e->reason);
	assert_int_equal(e->gpus, w->gpus);
	assert_int_equal(e->start, w->start);
	assert_int_equal(e->end, w->end);
	assert_int_equal(e->granted_delta, w->granted_delta);
	assert_int_equal(e->committed_delta, w->committed_delta);
	assert_int_equal(e->expired_delta, w->expired_delta);
	assert_int_equal(e->max_gpus, w->max_gpus);
	assert_memory_equal(e->prev_hash, w->prev_hash, HASH_LEN);
	assert_memory_equal(e->hash, w->hash, HASH_LEN);
	assert_int_equal(e->salted, w->salted);
	assert_memory_equal(e->salt, w->salt, SALT_LEN);
	assert_memory_equal(e->view_hash, w->view_hash, HASH_LEN);
	return 0;
}

static void test_journal_roundtrip(void **state)
{
	struct store *s = *state;
	struct jentry r = reserve(1, "lg", "A-000007", "skt", 3, -100, INT64_MAX / 4);

	r.committed_delta = INT64_MAX / 2;
	r.time = INT64_MIN + 1;
	for (int i = 0; i < HASH_LEN; i++) {
		r.hash[i] = (uint8_t)(0xa0 + i);
		r.prev_hash[i] = (uint8_t)i;
		r.view_hash[i] = (uint8_t)(0x40 + i);
	}
	r.salted = true;
	for (int i = 0; i < SALT_LEN; i++)
		r.salt[i] = (uint8_t)(0xf0 - i);
	append_ok(s, &r, NULL);
	struct jcheck c = {&r, 0};
	assert_int_equal(store_journal_each(s, 0, NULL, 0, jcheck_cb, &c), 0);
	assert_int_equal(c.n, 1);

	/* an entry as written before salts existed keeps having none */
	struct jentry n = reserve(2, "lg", "A-000008", "skt", 1, 0, 10);
	append_ok(s, &n, NULL);
	c.want = &n;
	assert_int_equal(store_journal_each(s, 1, NULL, 0, jcheck_cb, &c), 0);
	assert_int_equal(c.n, 2);
}

struct view_list {
	char consortium[4][16];
	int64_t entries[4], last_seq[4];
	uint8_t head[4][HASH_LEN];
	int n;
};

static int view_cb(void *arg, const char *consortium, int64_t entries, int64_t last_seq,
		   const uint8_t head[HASH_LEN])
{
	struct view_list *l = arg;
	assert_true(l->n < 4);
	snprintf(l->consortium[l->n], sizeof(l->consortium[0]), "%s", consortium);
	l->entries[l->n] = entries;
	l->last_seq[l->n] = last_seq;
	memcpy(l->head[l->n], head, HASH_LEN);
	l->n++;
	return 0;
}

/* The heads of the consortia's views, and a view's hash at a seq. */
static void test_views(void **state)
{
	struct store *s = *state;
	static const char *const who[] = {"lg", "motif", "lg", "upstage", "lg", "motif"};
	struct view_list l = {.n = 0};
	uint8_t h[HASH_LEN], zeros[HASH_LEN] = {0};

	for (int i = 0; i < 6; i++) {
		struct jentry e = grant(i + 1, who[i], "p1", "B200", 100);
		memset(e.view_hash, 0x10 + i, HASH_LEN);
		append_ok(s, &e, NULL);
	}
	assert_int_equal(store_views_each(s, view_cb, &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.consortium[0], "lg");
	assert_int_equal(l.entries[0], 3);
	assert_int_equal(l.last_seq[0], 5);
	memset(h, 0x14, HASH_LEN);
	assert_memory_equal(l.head[0], h, HASH_LEN);
	assert_string_equal(l.consortium[1], "motif");
	assert_int_equal(l.entries[1], 2);
	assert_int_equal(l.last_seq[1], 6);

	assert_int_equal(store_view_at(s, "lg", 4, h), 0);
	uint8_t want[HASH_LEN];
	memset(want, 0x12, HASH_LEN);	/* seq 3, lg's last at or before 4 */
	assert_memory_equal(h, want, HASH_LEN);
	assert_int_equal(store_view_at(s, "lg", 0, h), 0);
	assert_memory_equal(h, zeros, HASH_LEN);
	assert_int_equal(store_view_at(s, "upstage", 99, h), 0);
	memset(want, 0x13, HASH_LEN);
	assert_memory_equal(h, want, HASH_LEN);
	assert_int_equal(store_view_at(s, "nosuch", 99, h), 0);
	assert_memory_equal(h, zeros, HASH_LEN);
}

static void test_journal_each_filters(void **state)
{
	struct store *s = *state;
	struct seq_list l = {.n = 0};
	static const char *const who[] = {"lg", "motif", "lg", "upstage", "lg",
					  "motif"};

	for (int i = 0; i < 6; i++) {
		struct jentry e = grant(i + 1, who[i], "p1", "B200", 100);
		append_ok(s, &e, NULL);
	}
	assert_int_equal(store_journal_each(s, 0, NULL, 0, seq_cb, &l), 0);
	assert_int_equal(l.n, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(l.seq[i], i + 1);

	l.n = 0;
	assert_int_equal(store_journal_each(s, 2, NULL, -1, seq_cb, &l), 0);
	assert_int_equal(l.n, 4);
	assert_int_equal(l.seq[0], 3);

	l.n = 0;
	assert_int_equal(store_journal_each(s, 0, "lg", 0, seq_cb, &l), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.seq[0], 1);
	assert_int_equal(l.seq[1], 3);
	assert_int_equal(l.seq[2], 5);

	l.n = 0;
	assert_int_equal(store_journal_each(s, 1, "lg", 1, seq_cb, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.seq[0], 3);

	l.n = 0;
	assert_int_equal(store_journal_each(s, 0, NULL, 2, seq_cb, &l), 0);
	assert_int_equal(l.n, 2);

	l.n = 0;
	assert_int_equal(store_journal_each(s, 0, "nobody", 0, seq_cb, &l), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(store_journal_each(s, 6, NULL, 0, seq_cb, &l), 0);
	assert_int_equal(l.n, 0);

	/* the callback's non-zero value stops and is returned */
	l.n = 0;
	l.stop_at = 2;
	assert_int_equal(store_journal_each(s, 0, NULL, 0, seq_cb, &l), 99);
	assert_int_equal(l.n, 2);
	/* and the statement is usable again */
	l.n = 0;
	l.stop_at = 0;
	assert_int_equal(store_journal_each(s, 0, NULL, 0, seq_cb, &l), 0);
	assert_int_equal(l.n, 6);
}

/* An iteration inside an iteration of the same statement. */
struct nest {
	struct store *s;
	int outer, inner;
};

static int inner_cb(void *arg, const struct jentry *e)
{
	struct nest *n = arg;
	n->inner++;
	return 0;
}

static int outer_cb(void *arg, const struct jentry *e)
{
	struct nest *n = arg;
	int64_t seq = e->seq;
	n->outer++;
	assert_int_equal(store_journal_each(n->s, 0, NULL, 0, inner_cb, n), 0);
	/* the outer row is still intact */
	assert_int_equal(e->seq, seq);
	assert_string_equal(e->consortium, "lg");
	return 0;
}

static void test_nested_iteration(void **state)
{
	struct store *s = *state;
	struct nest n = {s, 0, 0};

	for (int i = 1; i <= 3; i++) {
		struct jentry e = grant(i, "lg", "p1", "B200", 1);
		append_ok(s, &e, NULL);
	}
	assert_int_equal(store_journal_each(s, 0, NULL, 0, outer_cb, &n), 0);
	assert_int_equal(n.outer, 3);
	assert_int_equal(n.inner, 9);
}

static void test_head(void **state)
{
	struct store *s = *state;
	uint8_t hash[HASH_LEN], want[HASH_LEN];
	int64_t seq;

	for (int i = 1; i <= 4; i++) {
		struct jentry e = grant(i, "lg", "p1", "B200", 1);
		append_ok(s, &e, NULL);
		assert_int_equal(store_journal_head(s, &seq, hash), 0);
		assert_int_equal(seq, i);
		memset(want, i, HASH_LEN);
		assert_memory_equal(hash, want, HASH_LEN);
	}
}

static void test_allocations_filters(void **state)
{
	struct store *s = *state;
	struct alloc_list l = {.n = 0};
	struct alloc_filter f;

	struct jentry g = grant(1, "lg", "p1", "B200", INT64_MAX / 2);
	struct jentry g2 = grant(2, "motif", "p1", "B200", INT64_MAX / 2);
	append_ok(s, &g, NULL);
	append_ok(s, &g2, NULL);
	/* numbers past six digits sort by number, not by text */
	struct jentry r[] = {
		reserve(3, "lg", "A-1000000", "skt", 1, 100, 200),
		reserve(4, "lg", "A-000002", "ncloud", 1, 100, 300),
		reserve(5, "motif", "A-000003", "skt", 1, 100, 400),
		reserve(6, "motif", "A-000001", "skt", 1, 100, 500),
	};
	for (size_t i = 0; i < ARRAY_SIZE(r); i++)
		append_ok(s, &r[i], NULL);
	struct jentry c = change(7, J_CANCEL, &r[2], 400, -300);
	append_ok(s, &c, NULL);

	allocs(s, NULL, &l);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.v[0].id, "A-000001");
	assert_string_equal(l.v[1].id, "A-000002");
	assert_string_equal(l.v[2].id, "A-000003");
	assert_string_equal(l.v[3].id, "A-1000000");
	assert_int_equal(l.v[3].num, 1000000);

	memset(&f, 0, sizeof(f));
	f.consortium = "lg";
	allocs(s, &f, &l);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].id, "A-000002");
	assert_string_equal(l.v[1].id, "A-1000000");

	f.pool = "skt";
	allocs(s, &f, &l);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].id, "A-1000000");

	memset(&f, 0, sizeof(f));
	f.pool = "skt";
	allocs(s, &f, &l);
	assert_int_equal(l.n, 3);

	memset(&f, 0, sizeof(f));
	f.id = "A-000003";
	allocs(s, &f, &l);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].stored, ALLOC_CANCELLED);
	f.id = "A-999999";
	allocs(s, &f, &l);
	assert_int_equal(l.n, 0);

	/* live: booked and ending after the instant */
	memset(&f, 0, sizeof(f));
	f.live_only = true;
	f.live_after = 0;
	allocs(s, &f, &l);
	assert_int_equal(l.n, 3);	/* not the cancelled A-000003 */
	f.live_after = 200;		/* A-1000000 ends at 200 */
	allocs(s, &f, &l);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].id, "A-000001");
	assert_string_equal(l.v[1].id, "A-000002");
	f.consortium = "motif";
	allocs(s, &f, &l);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].id, "A-000001");
	f.live_after = 500;
	allocs(s, &f, &l);
	assert_int_equal(l.n, 0);

	/* a window: live after one instant and starting before another */
	memset(&f, 0, sizeof(f));
	f.starts_before_set = true;
	f.starts_before = 100;		/* everything starts at 100 */
	allocs(s, &f, &l);
	assert_int_equal(l.n, 0);
	f.starts_before = 101;
	allocs(s, &f, &l);
	assert_int_equal(l.n, 4);
	f.live_only = true;
	f.live_after = 250;
	f.pool = "skt";
	allocs(s, &f, &l);
	assert_int_equal(l.n, 1);	/* A-000001; A-000003 was cancelled */
	assert_string_equal(l.v[0].id, "A-000001");

	int64_t num;
	assert_int_equal(store_allocation_max_num(s, &num), 0);
	assert_int_equal(num, 1000000);
	alloc_list_clear(&l);
}

static void test_idempotency(void **state)
{
	struct store *s = *state;
	uint8_t h[HASH_LEN], got[HASH_LEN];
	int status = 0;
	char *resp = NULL;

	memset(h, 0x5a, HASH_LEN);
	assert_int_equal(store_idem_get(s, "k1", got, &status, &resp), -ENOENT);
	assert_null(resp);

	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_idem_put(s, "k1", h, 201, "{\"allocation\":{}}", 42), 0);
	assert_int_equal(store_commit(s), 0);

	assert_int_equal(store_idem_get(s, "k1", got, &status, &resp), 0);
	/* what a record keeps of the hash, zeros after it (schema 0011) */
	assert_memory_equal(got, h, STORE_IDEM_HASH_LEN);
	for (size_t i = STORE_IDEM_HASH_LEN; i < HASH_LEN; i++)
		assert_int_equal(got[i], 0);
	assert_int_equal(status, 201);
	assert_string_equal(resp, "{\"allocation\":{}}");
	free(resp);
	assert_int_equal(store_idem_get(s, "k2", got, &status, &resp), -ENOENT);

	/* a key is written once */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_idem_put(s, "k1", h, 200, "{}", 43), -EEXIST);
	store_rollback(s);

	/* a put rolled back leaves nothing */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_idem_put(s, "k3", h, 200, "{}", 44), 0);
	store_rollback(s);
	assert_int_equal(store_idem_get(s, "k3", got, &status, &resp), -ENOENT);
}

/* How many records a store_idem_get() finds among keys[]. */
static int idem_count(struct store *s, const char *const *keys, size_t n)
{
	uint8_t h[HASH_LEN];
	int status, found = 0;
	char *resp;

	for (size_t i = 0; i < n; i++) {
		resp = NULL;
		if (store_idem_get(s, keys[i], h, &status, &resp) == 0)
			found++;
		free(resp);
	}
	return found;
}

/*
 * Pruning walks the keys in windows of max (schema 0011 keeps no insertion
 * order): each call deletes the expired records of its window only, the
 * next call goes on after it, and after the last key it starts again.
 */
static void test_idem_prune(void **state)
{
	struct store *s = *state;
	static const char *const keys[] = {"k1", "k2", "k3", "k4", "k5"};
	uint8_t h[HASH_LEN];
	int64_t deleted;

	memset(h, 0x11, HASH_LEN);
	assert_int_equal(store_begin(s), 0);
	/* written in another order than the keys' */
	for (int i = 4; i >= 0; i--)
		assert_int_equal(store_idem_put(s, keys[i], h, 200, "{}", i + 1), 0);
	assert_int_equal(store_commit(s), 0);

	/* before 4: k1, k2, k3 have expired */
	assert_int_equal(store_idem_prune(s, 4, 2, &deleted), 0);	/* k1 k2 */
	assert_int_equal(deleted, 2);
	assert_int_equal(idem_count(s, keys, 2), 0);
	assert_int_equal(store_idem_prune(s, 4, 2, &deleted), 0);	/* k3 k4 */
	assert_int_equal(deleted, 1);
	assert_int_equal(idem_count(s, keys, 5), 2);
	assert_int_equal(store_idem_prune(s, 4, 2, &deleted), 0);	/* k5 */
	assert_int_equal(deleted, 0);

	/* a new old record before the others is found by the next round */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_idem_put(s, "k0", h, 200, "{}", 1), 0);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(store_idem_prune(s, 6, 1, &deleted), 0);	/* k0 */
	assert_int_equal(deleted, 1);
	assert_int_equal(store_idem_prune(s, 6, 10, &deleted), 0);	/* k4 k5 */
	assert_int_equal(deleted, 2);
	assert_int_equal(idem_count(s, keys, 5), 0);
	assert_int_equal(store_idem_prune(s, 6, 10, &deleted), 0);
	assert_int_equal(deleted, 0);
}

static void test_rollback(void **state)
{
	struct store *s = *state;
	struct seq_list l = {.n = 0};
	struct alloc_list al = {.n = 0};
	struct cs_list cl = {.n = 0};
	int64_t seq;
	uint8_t hash[HASH_LEN];

	assert_int_equal(store_begin(s), 0);
	struct jentry g = grant(1, "lg", "p1", "B200", 100000);
	struct jentry r = reserve(2, "lg", "A-000001", "skt", 1, 0, 100);
	struct jentry e = entry(3, J_ELIMINATE, "lg");
	assert_int_equal(store_append(s, &g, NULL), 0);
	assert_int_equal(store_append(s, &r, NULL), 0);
	assert_int_equal(store_append(s, &e, NULL), 0);
	store_rollback(s);

	assert_int_equal(store_journal_each(s, 0, NULL, 0, seq_cb, &l), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(count_balances(s), 0);
	allocs(s, NULL, &al);
	assert_int_equal(al.n, 0);
	assert_int_equal(store_cstates_each(s, cs_cb, &cl), 0);
	assert_int_equal(cl.n, 0);
	assert_int_equal(store_journal_head(s, &seq, hash), 0);
	assert_int_equal(seq, 0);
	/* a rollback outside a transaction is harmless */
	store_rollback(s);
	append_ok(s, &g, NULL);
}

static void test_fail_commit(void **state)
{
	struct store *s = *state;
	struct seq_list l = {.n = 0};

	store_fail_commit(s, 2, -ENOSPC);
	struct jentry g1 = grant(1, "lg", "p1", "B200", 100);
	append_ok(s, &g1, NULL);

	/* the second commit fails, and nothing of it remains */
	struct jentry g2 = grant(2, "lg", "p1", "B200", 1000);
	struct jentry r = reserve(3, "lg", "A-000001", "skt", 1, 0, 10);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_append(s, &g2, NULL), 0);
	assert_int_equal(store_append(s, &r, NULL), 0);
	assert_int_equal(store_idem_put(s, "key", g2.hash, 200, "{}", 1), 0);
	assert_int_equal(store_commit(s), -ENOSPC);
	assert_true(strlen(store_errmsg(s)) > 0);

	assert_int_equal(store_journal_each(s, 0, NULL, 0, seq_cb, &l), 0);
	assert_int_equal(l.n, 1);
	struct balance b = bal(s, "lg", "p1", "B200");
	assert_int_equal(b.granted, 100);
	assert_int_equal(b.committed, 0);
	struct alloc_list al = {.n = 0};
	allocs(s, NULL, &al);
	assert_int_equal(al.n, 0);
	uint8_t h[HASH_LEN];
	int status;
	char *resp = NULL;
	assert_int_equal(store_idem_get(s, "key", h, &status, &resp), -ENOENT);

	/* the hook fired once; the retry commits */
	append_ok(s, &g2, NULL);
	assert_int_equal(bal(s, "lg", "p1", "B200").granted, 1100);

	/* other errors, and disarming */
	store_fail_commit(s, 1, -EIO);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_commit(s), -EIO);
	store_fail_commit(s, 1, -EBUSY);
	store_fail_commit(s, 0, 0);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_commit(s), 0);
}

static void test_append_refused(void **state)
{
	struct store *s = *state;
	struct seq_list l = {.n = 0};

	struct jentry g = grant(1, "lg", "p1", "B200", 100);
	append_ok(s, &g, NULL);

	/* the same seq twice */
	assert_int_equal(append_fails(s, &g), -EEXIST);
	/* reserve without an allocation id, or with a malformed one */
	struct jentry r = reserve(2, "lg", "A-000001", "skt", 1, 0, 10);
	r.allocation = NULL;
	assert_int_equal(append_fails(s, &r), -EINVAL);
	assert_true(strlen(store_errmsg(s)) > 0);
	r.allocation = S("B-1");
	assert_int_equal(append_fails(s, &r), -EINVAL);
	r.allocation = S("A-000000000000000000000000000001");
	assert_int_equal(append_fails(s, &r), -EINVAL);
	/* the same allocation id twice */
	r.allocation = S("A-000001");
	append_ok(s, &r, NULL);
	r.seq = 3;
	assert_int_equal(append_fails(s, &r), -EEXIST);
	/* a change of an allocation that does not exist */
	struct jentry c = change(3, J_CANCEL, &r, 10, -10);
	c.allocation = S("A-000009");
	assert_int_equal(append_fails(s, &c), -ENOENT);
	assert_non_null(strstr(store_errmsg(s), "A-000009"));
	/* a grant without its key */
	g = grant(3, "lg", NULL, "B200", 1);
	assert_int_equal(append_fails(s, &g), -EINVAL);
	g = grant(3, NULL, "p1", "B200", 1);
	assert_int_equal(append_fails(s, &g), -EINVAL);
	g = grant(3, "lg", "p1", "B200", 1);
	g.kind = (enum jkind)J__COUNT;
	assert_int_equal(append_fails(s, &g), -EINVAL);

	/* none of those left a trace */
	assert_int_equal(store_journal_each(s, 0, NULL, 0, seq_cb, &l), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(bal(s, "lg", "p1", "B200").committed, 10);
}

static void test_overflow_refused(void **state)
{
	struct store *s = *state;

	struct jentry g = grant(1, "lg", "p1", "B200", INT64_MAX);
	append_ok(s, &g, NULL);
	g = grant(2, "lg", "p1", "B200", 1);
	/* SQLite would make the sum a REAL; the schema refuses it */
	assert_true(append_fails(s, &g) < 0);
	assert_int_equal(bal(s, "lg", "p1", "B200").granted, INT64_MAX);
}

static int count_cb(void *arg, const struct jentry *e)
{
	(*(int *)arg)++;
	return 0;
}

struct hash_seen {
	uint8_t hash[3][HASH_LEN];
	uint8_t prev[3][HASH_LEN];
	int n;
};

static int hash_cb(void *arg, const struct jentry *e)
{
	struct hash_seen *h = arg;
	memcpy(h->hash[h->n], e->hash, HASH_LEN);
	memcpy(h->prev[h->n], e->prev_hash, HASH_LEN);
	h->n++;
	return 0;
}

static void test_tampered(void **state)
{
	struct tmpdb t;
	struct hash_seen h = {.n = 0};
	uint8_t zero[HASH_LEN] = {0}, hash[HASH_LEN];
	int64_t seq;
	int n = 0;

	tmpdb_make(&t);
	struct store *s = open_ok(t.path);
	struct jentry g1 = grant(1, "lg", "p1", "B200", 100);
	struct jentry g2 = grant(2, "lg", "p1", "B200", 200);
	struct jentry r = reserve(3, "lg", "A-000001", "skt", 1, 0, 10);
	append_ok(s, &g1, NULL);
	append_ok(s, &g2, NULL);
	append_ok(s, &r, NULL);

	/* hashes of the wrong length, type or absent read as zeros */
	raw_exec(t.path, "UPDATE journal SET hash = x'0102' WHERE seq = 1;"
		 " UPDATE journal SET prev_hash = x'' WHERE seq = 2;"
		 " UPDATE journal SET hash = 'text' WHERE seq = 3;");
	assert_int_equal(store_journal_each(s, 0, NULL, 0, hash_cb, &h), 0);
	assert_int_equal(h.n, 3);
	assert_memory_equal(h.hash[0], zero, HASH_LEN);
	assert_memory_equal(h.prev[1], zero, HASH_LEN);
	assert_memory_equal(h.hash[2], zero, HASH_LEN);
	assert_memory_not_equal(h.hash[1], zero, HASH_LEN);
	assert_int_equal(store_journal_head(s, &seq, hash), 0);
	assert_int_equal(seq, 3);
	assert_memory_equal(hash, zero, HASH_LEN);

	/* NULLs where strings were, strings where numbers were */
	raw_exec(t.path, "UPDATE journal SET actor = NULL, gpus = 'many'"
		 " WHERE seq = 2");
	assert_int_equal(store_journal_each(s, 0, NULL, 0, count_cb, &n), 0);
	assert_int_equal(n, 3);

	/* an unknown kind is an error that names the entry */
	raw_exec(t.path, "UPDATE journal SET kind = 'bogus' WHERE seq = 2");
	n = 0;
	assert_int_equal(store_journal_each(s, 0, NULL, 0, count_cb, &n), -EILSEQ);
	assert_int_equal(n, 1);
	assert_non_null(strstr(store_errmsg(s), "bogus"));
	assert_non_null(strstr(store_errmsg(s), "2"));
	/* and the store is still usable */
	n = 0;
	assert_int_equal(store_journal_each(s, 2, NULL, 0, count_cb, &n), 0);
	assert_int_equal(n, 1);

	/* an allocation id too long for the record */
	raw_exec(t.path, "UPDATE allocations SET id = 'A-00000000000000000000000000001'");
	struct alloc_list al = {.n = 0};
	assert_int_equal(store_allocations_each(s, NULL, alloc_cb, &al), -EILSEQ);
	assert_int_equal(al.n, 0);

	/* a number that is not one */
	raw_exec(t.path, "UPDATE balances SET max_gpus = 'lots'");
	struct bal_find f = {"", "", "", {0}, 0, 0};
	assert_int_equal(store_balances_each(s, bal_cb, &f), 0);
	assert_int_equal(f.rows, 1);

	store_close(s);
	tmpdb_remove(&t);
}

static void test_model_names(void **state)
{
	enum alloc_stored st;
	enum alloc_state as;
	static const char *const stored[] = {"booked", "cancelled", "released",
					     "revoked"};
	static const char *const states[] = {"reserved", "active", "completed",
					     "cancelled", "released", "revoked"};

	for (int i = 0; i < 4; i++) {
		assert_string_equal(alloc_stored_name((enum alloc_stored)i), stored[i]);
		assert_int_equal(alloc_stored_parse(stored[i], &st), 0);
		assert_int_equal(st, i);
	}
	for (int i = 0; i < 6; i++) {
		assert_string_equal(alloc_state_name((enum alloc_state)i), states[i]);
		assert_int_equal(alloc_state_parse(states[i], &as), 0);
		assert_int_equal(as, i);
	}
	assert_int_equal(alloc_stored_parse("active", &st), -EINVAL);
	assert_int_equal(alloc_stored_parse("", &st), -EINVAL);
	assert_int_equal(alloc_stored_parse(NULL, &st), -EINVAL);
	assert_int_equal(alloc_state_parse("booked", &as), -EINVAL);
	assert_int_equal(alloc_state_parse("Active", &as), -EINVAL);
	assert_string_equal(alloc_stored_name((enum alloc_stored)9), "?");
	assert_string_equal(alloc_state_name((enum alloc_state)-1), "?");
}

static void test_model_state_at(void **state)
{
	struct alloc a;
	memset(&a, 0, sizeof(a));
	a.start = 100;
	a.end = 200;
	a.stored = ALLOC_BOOKED;
	assert_int_equal(alloc_state_at(&a, 0), AS_RESERVED);
	assert_int_equal(alloc_state_at(&a, 99), AS_RESERVED);
	assert_int_equal(alloc_state_at(&a, 100), AS_ACTIVE);
	assert_int_equal(alloc_state_at(&a, 199), AS_ACTIVE);
	assert_int_equal(alloc_state_at(&a, 200), AS_COMPLETED);
	assert_int_equal(alloc_state_at(&a, TIME_MAX), AS_COMPLETED);
	a.stored = ALLOC_CANCELLED;
	assert_int_equal(alloc_state_at(&a, 150), AS_CANCELLED);
	a.stored = ALLOC_RELEASED;
	assert_int_equal(alloc_state_at(&a, 50), AS_RELEASED);
	a.stored = ALLOC_REVOKED;
	assert_int_equal(alloc_state_at(&a, 250), AS_REVOKED);
}

static void test_model_copy_clear(void **state)
{
	struct alloc a, b;
	memset(&a, 0, sizeof(a));
	snprintf(a.id, sizeof(a.id), "A-000042");
	a.num = 42;
	a.consortium = S("lg");
	a.pool = S("skt");
	a.gpu = S("B200");
	a.phase = S("p1");
	a.note = NULL;
	a.cost = 7;
	alloc_copy(&b, &a);
	assert_string_equal(b.id, "A-000042");
	assert_ptr_not_equal(b.consortium, a.consortium);
	assert_string_equal(b.consortium, "lg");
	assert_string_equal(b.pool, "skt");
	assert_null(b.note);
	assert_int_equal(b.cost, 7);
	alloc_clear(&b);
	assert_null(b.consortium);
	assert_int_equal(b.num, 0);

	struct balance bl = {xstrdup("lg"), xstrdup("p1"), xstrdup("B200"),
			     1, 2, 3, 4, 5};
	balance_clear(&bl);
	assert_null(bl.consortium);
	assert_int_equal(bl.granted, 0);
	struct cs_span sp[] = {{10, 20}, {30, TIME_MAX}};
	struct cstate c = {.consortium = xstrdup("lg"), .status = CS_ELIMINATED, .since = 1,
			   .designation_until = 2, .active_from = 3, .spans = sp, .n_spans = 2};
	struct cstate d;
	cstate_copy(&d, &c);
	assert_ptr_not_equal(d.consortium, c.consortium);
	assert_ptr_not_equal(d.spans, c.spans);
	assert_int_equal(d.n_spans, 2);
	assert_int_equal(d.spans[1].from, 30);
	c.spans = NULL;		/* sp is not malloc'd */
	cstate_clear(&c);
	assert_null(c.consortium);
	assert_int_equal(c.since, 0);
	cstate_clear(&d);
	assert_null(d.spans);
	assert_int_equal(d.n_spans, 0);
}

#define MEM_TEST(f) cmocka_unit_test_setup_teardown(f, store_setup, store_teardown)

/* A database as a build of schema version v made it: the first v files. */
static void make_version(const char *path, unsigned v)
{
	char sql[64];
	assert_true(v <= schema_count);
	for (unsigned i = 0; i < v; i++)
		raw_exec(path, schema_files[i].sql);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %u", v);
	raw_exec(path, sql);
}

/* A version-1 database is migrated: active rows start their stretch at since. */
static void test_migrates_version_1(void **state)
{
	struct tmpdb t;
	struct cs_list l = {.n = 0};

	tmpdb_make(&t);
	make_version(t.path, 1);
	raw_exec(t.path, "INSERT INTO consortium_state (consortium, status, since)"
		 " VALUES ('lg', 'active', 500), ('naver', 'eliminated', 700);");
	struct store *s = open_ok(t.path);
	assert_int_equal(store_schema_version(s), store_schema_latest());
	assert_int_equal(store_cstates_each(s, cs_cb, &l), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].active_from, 500);
	assert_true(l.v[1].active_from == TIME_MIN);
	store_close(s);
	tmpdb_remove(&t);
}

/* An entry into a version-2 journal, which has no salt and no view hash. */
static void raw_insert_v2(const char *path, const struct jentry *e)
{
	sqlite3 *db;
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO journal (seq, time, kind, actor,"
		" request_id, consortium, phase, gpu, granted_delta, reason, prev_hash, hash)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)", -1, &st, NULL),
		SQLITE_OK);
	sqlite3_bind_int64(st, 1, e->seq);
	sqlite3_bind_int64(st, 2, e->time);
	sqlite3_bind_text(st, 3, jkind_name(e->kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, e->actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, e->request_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, e->consortium, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, e->phase, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, e->gpu, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, e->granted_delta);
	sqlite3_bind_text(st, 10, e->reason, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 11, e->prev_hash, HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 12, e->hash, HASH_LEN, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* Checks both chains from scratch, and how many entries have a salt. */
struct chains {
	uint8_t prev[HASH_LEN];
	struct jviews views;
	int n, salted;
};

static int chains_cb(void *arg, const struct jentry *e)
{
	struct chains *c = arg;
	assert_memory_equal(e->prev_hash, c->prev, HASH_LEN);
	assert_true(jentry_hash_ok(e));
	assert_true(jviews_check(&c->views, e));
	memcpy(c->prev, e->hash, HASH_LEN);
	c->n++;
	c->salted += e->salted;
	return 0;
}

static int load_views_cb(void *arg, const char *consortium, int64_t entries, int64_t last_seq,
			 const uint8_t head[HASH_LEN])
{
	jviews_set(arg, consortium, entries, last_seq, head);
	return 0;
}

/*
 * A version-2 database: its entries keep their encoding and their hashes
 * (no salt), get their view hashes, and a new entry continues both chains
 * with a salt.
 */
static void test_migrates_version_2(void **state)
{
	struct tmpdb t;
	struct jentry e[3] = {
		grant(1, "lg", "p1", "B200", 100),
		grant(2, "motif", "p1", "B200", 200),
		grant(3, "lg", "p1", "B200", 300),
	};
	uint8_t prev[HASH_LEN] = {0};

	tmpdb_make(&t);
	make_version(t.path, 2);
	for (int i = 0; i < 3; i++) {
		memcpy(e[i].prev_hash, prev, HASH_LEN);
		jentry_seal(&e[i]);
		memcpy(prev, e[i].hash, HASH_LEN);
		raw_insert_v2(t.path, &e[i]);
	}
	struct store *s = open_ok(t.path);
	assert_int_equal(store_schema_version(s), store_schema_latest());
	struct chains c = {.n = 0};
	assert_int_equal(store_journal_each(s, 0, NULL, 0, chains_cb, &c), 0);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.salted, 0);
	int64_t seq;
	uint8_t head[HASH_LEN];
	assert_int_equal(store_journal_head(s, &seq, head), 0);
	assert_memory_equal(head, e[2].hash, HASH_LEN);	/* the old hashes stand */

	struct jviews loaded = {0};
	assert_int_equal(store_views_each(s, load_views_cb, &loaded), 0);
	assert_int_equal(loaded.n, 2);
	assert_int_equal(jviews_find(&loaded, "lg")->entries, 2);
	assert_int_equal(jviews_find(&loaded, "lg")->last_seq, 3);
	assert_memory_equal(jviews_find(&loaded, "lg")->head,
			    jviews_find(&c.views, "lg")->head, HASH_LEN);

	struct jentry n = grant(4, "lg", "p1", "B200", 400);
	memcpy(n.prev_hash, prev, HASH_LEN);
	jentry_salt(&n);
	jentry_seal(&n);
	jviews_seal(&loaded, &n);
	append_ok(s, &n, NULL);
	store_close(s);

	s = open_ok(t.path);
	jviews_clear(&c.views);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_journal_each(s, 0, NULL, 0, chains_cb, &c), 0);
	assert_int_equal(c.n, 4);
	assert_int_equal(c.salted, 1);
	store_close(s);
	jviews_clear(&c.views);
	jviews_clear(&loaded);
	tmpdb_remove(&t);
}

/*
 * A version-10 database: its idempotency records (a rowid table then) move
 * into the table keyed by key (schema 0011), answers and references alike,
 * and still refuse a second put of their key.
 */
static void test_migrates_version_10(void **state)
{
	struct tmpdb t;
	uint8_t h[HASH_LEN];
	int status;
	char *resp = NULL;
	int64_t seq;

	(void)state;
	tmpdb_make(&t);
	make_version(t.path, 10);
	raw_exec(t.path, "INSERT INTO idempotency (key, body_hash, status, response, time, seq)"
		 " VALUES ('grant-1', zeroblob(32), 200, '{\"quota\":{}}', 10, NULL),"
		 " ('book-1', x'" "0101010101010101010101010101010101010101010101010101010101010101"
		 "', 201, NULL, 11, 7)");
	struct store *s = open_ok(t.path);
	assert_int_equal(store_schema_version(s), store_schema_latest());
	assert_int_equal(store_idem_lookup(s, "grant-1", h, &status, &resp, &seq), 0);
	assert_int_equal(status, 200);
	assert_string_equal(resp, "{\"quota\":{}}");
	assert_int_equal(seq, 0);
	free(resp);
	assert_int_equal(store_idem_lookup(s, "book-1", h, &status, &resp, &seq), 0);
	assert_int_equal(status, 201);
	assert_null(resp);
	assert_int_equal(seq, 7);
	assert_int_equal(h[0], 1);
	assert_int_equal(h[STORE_IDEM_HASH_LEN - 1], 1);
	assert_int_equal(h[STORE_IDEM_HASH_LEN], 0);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_idem_put(s, "book-1", h, 201, "{}", 12), -EEXIST);
	store_rollback(s);
	store_close(s);
	/* the first 16 bytes of each hash are kept; one B-tree, no index beside it */
	assert_int_equal(raw_int(t.path, "SELECT sum(length(body_hash)) FROM idempotency"),
			 2 * STORE_IDEM_HASH_LEN);
	assert_int_equal(raw_int(t.path, "SELECT count(*) FROM sqlite_schema"
				 " WHERE tbl_name = 'idempotency' AND type = 'index'"), 0);
	tmpdb_remove(&t);
}

/*
 * A version-11 database: its allocations move into the table keyed by
 * number and its balances into the table keyed by key (schema 0012), every
 * column kept; an id is then found by a rowid seek, and a cancel finds the
 * allocation it names.
 */
static void test_migrates_version_11(void **state)
{
	struct tmpdb t;
	struct alloc_list l = {.n = 0};
	int64_t num;

	(void)state;
	tmpdb_make(&t);
	make_version(t.path, 11);
	raw_exec(t.path,
		 "INSERT INTO journal (seq, time, kind, prev_hash, hash) VALUES"
		 " (1, 5, 'grant', zeroblob(32), zeroblob(32)), (2, 6, 'reserve', zeroblob(32), zeroblob(32)),"
		 " (3, 7, 'reserve', zeroblob(32), zeroblob(32));"
		 "INSERT INTO allocations (id, num, consortium, pool, gpu, phase, gpus, start, \"end\","
		 " booked_end, stored, cost, note, created, seq) VALUES"
		 " ('A-000010', 10, 'lg', 'skt', 'B200', 'p1', 2, 100, 160, 200, 'released', 120,"
		 " 'kept', 7, 3),"
		 " ('A-000002', 2, 'lg', 'skt', 'B200', 'p1', 1, 300, 400, 400, 'booked', 100, NULL, 6, 2);"
		 "INSERT INTO balances (consortium, phase, gpu, granted, committed, expired, max_gpus, used)"
		 " VALUES ('lg', 'p1', 'B200', 1000, 220, 3, 4, 5);");
	struct store *s = open_ok(t.path);
	assert_int_equal(store_schema_version(s), store_schema_latest());
	allocs(s, NULL, &l);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].id, "A-000002");	/* in number order */
	struct alloc_filter f = {.id = "A-000010"};
	allocs(s, &f, &l);
	assert_int_equal(l.n, 1);
	const struct alloc *a = &l.v[0];
	assert_int_equal(a->num, 10);
	assert_string_equal(a->consortium, "lg");
	assert_string_equal(a->pool, "skt");
	assert_int_equal(a->gpus, 2);
	assert_int_equal(a->start, 100);
	assert_int_equal(a->end, 160);
	assert_int_equal(a->booked_end, 200);
	assert_int_equal(a->stored, ALLOC_RELEASED);
	assert_int_equal(a->cost, 120);
	assert_string_equal(a->note, "kept");
	assert_int_equal(a->created, 7);
	assert_int_equal(a->seq, 3);
	f.id = "A-10";	/* not an id: no number, no row */
	allocs(s, &f, &l);
	assert_int_equal(l.n, 0);
	assert_int_equal(store_allocation_max_num(s, &num), 0);
	assert_int_equal(num, 10);
	struct balance b = bal(s, "lg", "p1", "B200");
	assert_int_equal(b.granted, 1000);
	assert_int_equal(b.committed, 220);
	assert_int_equal(b.expired, 3);
	assert_int_equal(b.max_gpus, 4);
	assert_int_equal(b.used, 5);

	struct jentry r = reserve(2, "lg", "A-000002", "skt", 1, 300, 400);
	struct jentry c = change(4, J_CANCEL, &r, 400, -100);
	append_ok(s, &c, NULL);
	f.id = "A-000002";
	allocs(s, &f, &l);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].stored, ALLOC_CANCELLED);
	assert_int_equal(bal(s, "lg", "p1", "B200").committed, 120);
	alloc_list_clear(&l);
	store_close(s);
	tmpdb_remove(&t);
}

/*
 * A version-12 database: the view heads and the heads at the audit
 * checkpoint (schema 0013) are computed from its journal; from then on
 * each entry moves its consortium's head, and a checkpoint keeps the heads
 * it is given.
 */
static int heads_cb(void *arg, const char *consortium, int64_t entries, int64_t last_seq,
		    const uint8_t head[HASH_LEN])
{
	jviews_set(arg, consortium, entries, last_seq, head);
	return 0;
}

static void test_migrates_version_12(void **state)
{
	struct tmpdb t;
	struct jviews heads = {0}, at_cp = {0};

	(void)state;
	tmpdb_make(&t);
	make_version(t.path, 12);
	raw_exec(t.path,
		 "INSERT INTO journal (seq, time, kind, consortium, prev_hash, hash, view_hash) VALUES"
		 " (1, 5, 'grant', 'lg', zeroblob(32), zeroblob(32), x'" "01" "'),"
		 " (2, 6, 'grant', 'motif', zeroblob(32), zeroblob(32), x'" "02" "'),"
		 " (3, 7, 'config', NULL, zeroblob(32), zeroblob(32), NULL),"
		 " (4, 8, 'grant', 'lg', zeroblob(32), zeroblob(32), x'" "04" "'),"
		 " (5, 9, 'grant', 'lg', zeroblob(32), zeroblob(32), x'" "05" "');"
		 "INSERT INTO audit_checkpoint (one, seq, hash) VALUES (1, 4, zeroblob(32));");
	struct store *s = open_ok(t.path);
	assert_int_equal(store_views_each(s, heads_cb, &heads), 0);
	assert_int_equal(heads.n, 2);
	assert_int_equal(jviews_find(&heads, "lg")->entries, 3);
	assert_int_equal(jviews_find(&heads, "lg")->last_seq, 5);
	assert_int_equal(jviews_find(&heads, "motif")->entries, 1);
	assert_int_equal(store_checkpoint_views_each(s, heads_cb, &at_cp), 0);
	assert_int_equal(at_cp.n, 2);
	assert_int_equal(jviews_find(&at_cp, "lg")->entries, 2);	/* seq 1 and 4 */
	assert_int_equal(jviews_find(&at_cp, "lg")->last_seq, 4);

	/* an entry moves its head; a checkpoint replaces the saved heads */
	struct jentry e = grant(6, "motif", "p1", "B200", 100);
	memset(e.view_hash, 0x66, HASH_LEN);
	append_ok(s, &e, NULL);
	jviews_clear(&heads);
	assert_int_equal(store_views_each(s, heads_cb, &heads), 0);
	assert_int_equal(jviews_find(&heads, "motif")->entries, 2);
	assert_int_equal(jviews_find(&heads, "motif")->last_seq, 6);
	assert_int_equal(jviews_find(&heads, "motif")->head[0], 0x66);
	assert_int_equal(store_checkpoint_set(s, 6, e.hash, &heads), 0);
	jviews_clear(&at_cp);
	assert_int_equal(store_checkpoint_views_each(s, heads_cb, &at_cp), 0);
	assert_int_equal(at_cp.n, 2);
	assert_int_equal(jviews_find(&at_cp, "motif")->entries, 2);
	assert_int_equal(store_checkpoint_clear(s), 0);
	jviews_clear(&at_cp);
	assert_int_equal(store_checkpoint_views_each(s, heads_cb, &at_cp), 0);
	assert_int_equal(at_cp.n, 0);
	store_close(s);
	jviews_clear(&heads);
	tmpdb_remove(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		MEM_TEST(test_fresh_memory),
		cmocka_unit_test(test_fresh_file),
		cmocka_unit_test(test_wal_mode),
		cmocka_unit_test(test_wal_background),
		cmocka_unit_test(test_wal_steady_writer),
		cmocka_unit_test(test_connections_unserialized),
		cmocka_unit_test(test_existing_file_made_private),
		cmocka_unit_test(test_reopen_keeps_data),
		cmocka_unit_test(test_newer_schema_refused),
		cmocka_unit_test(test_migrates_version_1),
		cmocka_unit_test(test_migrates_version_2),
		cmocka_unit_test(test_migrates_version_10),
		cmocka_unit_test(test_migrates_version_11),
		cmocka_unit_test(test_migrates_version_12),
		cmocka_unit_test(test_not_a_database),
		cmocka_unit_test(test_unopenable_path),
		cmocka_unit_test(test_open_flags),
		cmocka_unit_test(test_identity_file_removed),
		cmocka_unit_test(test_identity_wal_removed),
		MEM_TEST(test_identity_memory),
		MEM_TEST(test_grant_adjust_cap_expire),
		MEM_TEST(test_reserve_release_cancel_revoke),
		MEM_TEST(test_allocation_refs),
		MEM_TEST(test_eliminate_reinstate),
		MEM_TEST(test_journal_roundtrip),
		MEM_TEST(test_journal_each_filters),
		MEM_TEST(test_views),
		MEM_TEST(test_nested_iteration),
		MEM_TEST(test_head),
		MEM_TEST(test_allocations_filters),
		MEM_TEST(test_idempotency),
		MEM_TEST(test_idem_prune),
		MEM_TEST(test_rollback),
		MEM_TEST(test_fail_commit),
		MEM_TEST(test_append_refused),
		MEM_TEST(test_overflow_refused),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_model_names),
		cmocka_unit_test(test_model_state_at),
		cmocka_unit_test(test_model_copy_clear),
	};
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
