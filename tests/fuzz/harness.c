/* SPDX-License-Identifier: MIT */
/*
 * See harness.h. The client end is a plain non-blocking socket driven from
 * the loop's own thread between uv_run(UV_RUN_NOWAIT) turns, so one input
 * is one deterministic run (the clock is simulated and stands still).
 *
 * Every input starts from the same empty ledger, and cheaply: the store is
 * opened (and migrated) once per process, and before each input every
 * table is put back to the rows it had then (a DELETE and the saved rows'
 * INSERTs, in one transaction). The connection, its parsed schema and the
 * store's prepared statements stay, so an input pays for neither migrations
 * nor SQL parsing; rows are the store's whole state (no page count or rowid
 * history leaves it: an empty table numbers its rows from 1 again). The
 * harness reaches the store's connection through an SQLite auto extension,
 * the hook SQLite calls inside sqlite3_open_v2() for every new connection.
 * A fresh store per input cost 0.03-0.3 s, mostly the migrations.
 */
#include "tests/fuzz/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <sqlite3.h>
#include <uv.h>

#include "daemon/api.h"
#include "daemon/log.h"
#include "daemon/state.h"
#include "daemon/util.h"

#define CLOCK0 1754262000	/* 2025-08-04T09:00:00+09:00, the first phase's start */

struct h {
	uv_loop_t loop;
	struct config *cfg;
	struct store *store;
	struct ledger *ledger;
	struct clock clock;
	struct writer writer;
	struct sched sched;
	struct follow follow;
	struct metrics metrics;
	struct api api;
	struct server *server;
	bool done;
};

static struct config *config;
static char dir[64], sock[108];

/* one table of the store as migrate() left it, and how to put it back */
struct table {
	sqlite3_stmt *del, *ins;
	int ncol;
	size_t nrows;
	sqlite3_value **rows;	/* nrows * ncol */
};

static struct {
	struct store *store;	/* opened once, for every input */
	sqlite3 *db;		/* its connection, seen by on_open() */
	bool capture;
	sqlite3_stmt *begin, *commit;
	struct table *tables;
	size_t n_tables;
} tmpl;

static void share(struct h *h)
{
	h->api.cfg = h->cfg;
	h->api.ledger = h->ledger;
	h->sched.ledger = h->ledger;
}

static void on_committed(void *arg, const struct jentry *entries, size_t n)
{
	struct h *h = arg;
	clock_move_commit(&h->clock);
	api_committed(&h->api, entries, n);
	follow_committed(&h->follow, entries, n, h->cfg->tz_offset);
	sched_committed(&h->sched, entries, n);
}

static void on_failed(void *arg, int err)
{
	/* an in-memory database does not fail to commit */
	fprintf(stderr, "harness: commit failed: %s\n", strerror(-err));
	abort();
}

static void on_reply(void *arg, struct server_req *r, int status, const char *content_type,
		     char *body, size_t len)
{
	server_reply(r, status, content_type ? content_type : "application/json", body, len);
}

static void on_done(void *arg)
{
	struct h *h = arg;
	h->server = NULL;
	h->api.server = NULL;
	writer_flush(&h->writer);
	writer_close(&h->writer);
	sched_close(&h->sched);
	h->done = true;
}

/* SQLite's auto extension: runs inside sqlite3_open_v2() for every connection */
static int on_open(sqlite3 *db, char **errmsg, const struct sqlite3_api_routines *api)
{
	(void)errmsg;
	(void)api;
	if (tmpl.capture)
		tmpl.db = db;	/* the store's; any later one is the daemon's own */
	tmpl.capture = false;
	return SQLITE_OK;
}

__attribute__((noreturn))
static void sql_abort(const char *what)
{
	fprintf(stderr, "harness: %s: %s\n", what, sqlite3_errmsg(tmpl.db));
	abort();
}

static sqlite3_stmt *prepare(char *sql)
{
	sqlite3_stmt *st;

	if (sql == NULL || sqlite3_prepare_v2(tmpl.db, sql, -1, &st, NULL) != SQLITE_OK)
		sql_abort(sql ? sql : "out of memory");
	sqlite3_free(sql);
	return st;
}

static void step_done(sqlite3_stmt *st)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		sql_abort(sqlite3_sql(st));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Saves one table's rows and prepares what puts them back. */
static void table_save(struct table *t, const char *name)
{
	sqlite3_stmt *sel = prepare(sqlite3_mprintf("SELECT * FROM main.\"%w\"", name));
	char *sql = sqlite3_mprintf("INSERT INTO main.\"%w\" VALUES (", name);
	int rc;

	t->ncol = sqlite3_column_count(sel);
	for (int i = 0; i < t->ncol; i++)
		sql = sqlite3_mprintf("%z%s?", sql, i ? ", " : "");
	t->ins = prepare(sqlite3_mprintf("%z)", sql));
	t->del = prepare(sqlite3_mprintf("DELETE FROM main.\"%w\"", name));
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		t->rows = xrealloc(t->rows, (t->nrows + 1) * (size_t)t->ncol * sizeof(*t->rows));
		for (int i = 0; i < t->ncol; i++)
			t->rows[t->nrows * (size_t)t->ncol + (size_t)i] =
				sqlite3_value_dup(sqlite3_column_value(sel, i));
		t->nrows++;
	}
	if (rc != SQLITE_DONE)
		sql_abort(name);
	sqlite3_finalize(sel);
}

/* Whether table names[i] has a foreign key into another table not placed yet. */
static bool refers_ahead(char **names, size_t i, const bool *placed, size_t count)
{
	sqlite3_stmt *st = prepare(sqlite3_mprintf(
		"SELECT \"table\" FROM pragma_foreign_key_list(%Q)", names[i]));
	bool ahead = false;

	while (!ahead && sqlite3_step(st) == SQLITE_ROW) {
		const char *parent = (const char *)sqlite3_column_text(st, 0);
		for (size_t j = 0; j < count; j++)
			if (j != i && !placed[j] && sqlite3_stricmp(parent, names[j]) == 0)
				ahead = true;
	}
	sqlite3_finalize(st);
	return ahead;
}

/*
 * Opens the store every input uses and saves what each of its tables holds,
 * parents before the tables whose foreign keys refer to them (the rows go
 * back in that order and are deleted in the reverse one).
 */
static void template_build(void)
{
	char *cause = NULL, **names = NULL;
	size_t count = 0;
	bool *placed;
	sqlite3_stmt *st;

	/* no bulk page cache per pager: each sort's temporary b-tree would
	 * take 20 pages of fresh memory (page faults, under ASan's quarantine)
	 * to use one or two; before sqlite3_initialize(), which comes next */
	if (sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0) != SQLITE_OK ||
	    sqlite3_auto_extension((void (*)(void))on_open) != SQLITE_OK)
		abort();
	tmpl.capture = true;
	if (store_open(":memory:", &tmpl.store, &cause) != 0 || tmpl.db == NULL) {
		fprintf(stderr, "harness: store: %s\n", cause ? cause : "no connection seen");
		abort();
	}
	st = prepare(sqlite3_mprintf("SELECT name FROM main.sqlite_schema WHERE type = 'table'"));
	while (sqlite3_step(st) == SQLITE_ROW) {
		names = xrealloc(names, (count + 1) * sizeof(*names));
		names[count++] = xstrdup((const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	placed = xcalloc(count + 1, sizeof(*placed));
	tmpl.tables = xcalloc(count + 1, sizeof(*tmpl.tables));
	while (tmpl.n_tables < count) {
		size_t before = tmpl.n_tables;
		for (size_t i = 0; i < count; i++) {
			if (placed[i] || refers_ahead(names, i, placed, count))
				continue;
			table_save(&tmpl.tables[tmpl.n_tables++], names[i]);
			placed[i] = true;
		}
		if (tmpl.n_tables == before) {
			fprintf(stderr, "harness: the tables' foreign keys form a cycle\n");
			abort();
		}
	}
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
	free(placed);
	tmpl.begin = prepare(sqlite3_mprintf("BEGIN IMMEDIATE"));
	tmpl.commit = prepare(sqlite3_mprintf("COMMIT"));
}

/* Puts every table back to its rows after migrate(): the store of a fresh start. */
static struct store *template_reset(void)
{
	/* the last input's requests all ended: nothing may hold a transaction */
	if (!sqlite3_get_autocommit(tmpl.db)) {
		fprintf(stderr, "harness: a transaction was left open\n");
		abort();
	}
	step_done(tmpl.begin);
	for (size_t i = tmpl.n_tables; i-- > 0;)
		step_done(tmpl.tables[i].del);
	for (size_t i = 0; i < tmpl.n_tables; i++) {
		struct table *t = &tmpl.tables[i];
		for (size_t r = 0; r < t->nrows; r++) {
			for (int c = 0; c < t->ncol; c++)
				sqlite3_bind_value(t->ins, c + 1, t->rows[r * (size_t)t->ncol + (size_t)c]);
			step_done(t->ins);
		}
	}
	step_done(tmpl.commit);
	return tmpl.store;
}

/* At exit: what template_build() made, and the socket's directory. */
static void harness_exit(void)
{
	for (size_t i = 0; i < tmpl.n_tables; i++) {
		struct table *t = &tmpl.tables[i];
		for (size_t v = 0; v < t->nrows * (size_t)t->ncol; v++)
			sqlite3_value_free(t->rows[v]);
		free(t->rows);
		sqlite3_finalize(t->del);
		sqlite3_finalize(t->ins);
	}
	free(tmpl.tables);
	sqlite3_finalize(tmpl.begin);
	sqlite3_finalize(tmpl.commit);
	store_close(tmpl.store);
	rmdir(dir);	/* each input's server unlinked its socket */
}

static void init(void)
{
	char *errors = NULL;
	const char *src = getenv("GPULEDGER_FUZZ_CONFIG");
	char path[4096];

	if (src == NULL) {
		snprintf(path, sizeof(path), "%s/config/example.yaml", SOURCE_ROOT);
		src = path;
	}
	if (config_load(src, &config, &errors) != 0) {
		fprintf(stderr, "harness: %s: %s\n", src, errors);
		abort();
	}
	signal(SIGPIPE, SIG_IGN);	/* as gpuledgerd: a closed peer is an EPIPE */
	log_open("/dev/null", LOG_ERROR, &errors);
	/* the socket's directory on a tmpfs where there is one: every input
	 * binds and unlinks its socket, cheaper there than on a disk */
	snprintf(dir, sizeof(dir), "%s/gpuledger-fuzz.XXXXXX",
		 access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp");
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(harness_exit);
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	template_build();
}

static int client_connect(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		abort();
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS &&
	    errno != EAGAIN)
		abort();
	return fd;
}

size_t harness_feed(const uint8_t *data, size_t len)
{
	static struct h h;
	char *cause = NULL;
	size_t sent = 0, answered = 0;
	bool eof = false, shut = false;
	char buf[65536];
	int idle = 0;

	if (config == NULL)
		init();
	memset(&h, 0, sizeof(h));
	h.cfg = config;
	if (uv_loop_init(&h.loop) != 0)
		abort();
	clock_init_simulated(&h.clock, CLOCK0);
	h.store = template_reset();
	if (state_load(h.store, h.cfg, clock_now(&h.clock), &h.ledger, &cause) != 0) {
		fprintf(stderr, "harness: %s\n", cause);
		abort();
	}
	const struct writer_hooks hooks = {
		.committed = on_committed, .failed = on_failed, .reply = on_reply, .arg = &h,
	};
	writer_init(&h.writer, &h.loop, h.store, &h.clock, &hooks);
	metrics_init(&h.metrics);
	h.writer.metrics = &h.metrics;
	sched_init(&h.sched, &h.loop, &h.clock, &h.writer, h.ledger);
	follow_init(&h.follow);
	h.api = (struct api){
		.loop = &h.loop, .store = h.store, .writer = &h.writer, .sched = &h.sched,
		.clock = &h.clock, .follow = &h.follow, .metrics = &h.metrics,
		.uid = getuid(), .started_ms = uv_now(&h.loop),
	};
	share(&h);
	h.server = server_new(&h.loop, api_handle, &h.api);
	h.api.server = h.server;
	if (server_listen_unix(h.server, sock, 0600, NULL, &cause) != 0) {
		fprintf(stderr, "harness: %s\n", cause);
		abort();
	}
	int fd = client_connect();

	/* until the server closes, or nothing moves for a while (a follow
	 * stream that waits for entries) */
	bool wait = false;
	while (!eof && idle < 200) {
		bool moved = false;
		/* blocks only for the writer: its flush timer or commit thread */
		uv_run(&h.loop, wait ? UV_RUN_ONCE : UV_RUN_NOWAIT);
		if (sent < len) {
			ssize_t w = send(fd, data + sent, len - sent, MSG_NOSIGNAL);
			if (w > 0) {
				sent += (size_t)w;
				moved = true;
			} else if (w < 0 && errno != EAGAIN) {
				sent = len;	/* the server closed: stop sending */
			}
		} else if (!shut) {
			shutdown(fd, SHUT_WR);
			shut = true;
			moved = true;
		}
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r > 0) {
			answered += (size_t)r;
			moved = true;
		} else if (r == 0 || (r < 0 && errno != EAGAIN)) {
			eof = true;
		}
		/* a batch on the writer's commit thread is still to come back:
		 * wait for it in the loop rather than spin (on a loaded machine
		 * the spin took the CPU the commit thread needed) */
		wait = !moved && writer_busy(&h.writer);
		idle = moved || wait ? 0 : idle + 1;
	}
	close(fd);

	sched_stop(&h.sched);
	follow_close_all(&h.follow);
	server_shutdown(h.server, on_done, &h);
	uv_run(&h.loop, UV_RUN_DEFAULT);
	if (!h.done || uv_loop_close(&h.loop) != 0) {
		fprintf(stderr, "harness: the loop did not close\n");
		abort();
	}
	ledger_free(h.ledger);
	return answered;
}
