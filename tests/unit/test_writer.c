/* SPDX-License-Identifier: MIT */
/*
 * The writer on a real libuv loop and a :memory: store: replies held behind
 * a batch leave only after COMMIT (the committed hook has fired and the
 * journal holds the entry when the reply hook runs); a commit forced to
 * fail (the store's test hook) answers every reply of its batch 503
 * storage_unavailable and calls the failed hook; a committed hook may open
 * the next batch; and every handle is closed: uv_loop_close() == 0.
 * Commits run on the writer's thread: on a database file whose write lock
 * a second connection holds, a batch stays in flight while the next one
 * opens behind it, its idempotency records are still found, the replies
 * of both wait, and when the one in flight fails the open one fails with
 * it.
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
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "daemon/clock.h"
#include "daemon/state.h"
#include "daemon/util.h"
#include "daemon/writer.h"

static const char fixture[] =
	"program: {name: Writer, timezone: UTC}\n"
	"phases:\n"
	"  - {id: p1, name: one, start: 2026-01-01, end: 2026-01-31}\n"
	"pools:\n"
	"  - {id: pool-a, provider: A, gpu: B200, gpus: 64}\n"
	"consortia:\n"
	"  - {id: c1, name: One, lead: One}\n";

#define T0 1767225600		/* 2026-01-01T00:00:00Z */
#define MAX_REPLIES 8

struct reply_seen {
	int tag;		/* which request */
	int status;
	char *body;
	unsigned committed_before;	/* committed hook calls before this reply */
	int64_t head_seq;	/* the store's journal head when it was sent */
};

struct env {
	uv_loop_t loop;
	struct clock clock;
	struct config *cfg;
	struct store *store;
	struct ledger *ledger;
	struct writer w;
	char dir[64];		/* a database file's directory, or "" for :memory: */
	struct store *other;	/* a second connection to that file */

	unsigned n_committed;	/* committed hook calls */
	size_t committed_entries;
	int64_t committed_last_seq;
	unsigned n_failed;
	int failed_err;
	bool reopen_on_commit;	/* the committed hook opens the next batch, once */

	struct reply_seen replies[MAX_REPLIES];
	size_t n_replies;
	int tags[MAX_REPLIES];	/* stand-ins for server requests */
};

static int64_t head_seq(struct store *s)
{
	int64_t seq;
	uint8_t hash[HASH_LEN];
	assert_int_equal(store_journal_head(s, &seq, hash), 0);
	return seq;
}

/* A grant made on the ledger, its entries joining the writer's batch. */
static void grant(struct env *e, int64_t hours)
{
	struct grant_req req = {.consortium = "c1", .phase = "p1", .gpu = "B200",
				.gpu_seconds = hours * 3600, .max_gpus = -1, .reason = "test"};
	struct ledger_ctx ctx = {.now = clock_now(&e->clock), .actor = "test"};
	struct ledger_error err = {0};
	struct jlist out = {0};

	assert_int_equal(ledger_grant(e->ledger, &ctx, &req, &out, &err), 0);
	assert_true(out.n > 0);
	writer_add(&e->w, &out, NULL);
	assert_int_equal(out.n, 0);
}

static void on_committed(void *arg, const struct jentry *entries, size_t n)
{
	struct env *e = arg;
	e->n_committed++;
	e->committed_entries += n;
	e->committed_last_seq = entries[n - 1].seq;
	if (e->reopen_on_commit) {
		e->reopen_on_commit = false;
		grant(e, 1);	/* as the scheduler's expiries would */
	}
}

static void on_failed(void *arg, int err)
{
	struct env *e = arg;
	struct ledger *l;
	char *cause = NULL;

	e->n_failed++;
	e->failed_err = err;
	/* what the daemon does: rebuild from what the disk holds */
	assert_int_equal(state_load(e->store, e->cfg, clock_now(&e->clock), &l, &cause), 0);
	ledger_free(e->ledger);
	e->ledger = l;
}

static void on_reply(void *arg, struct server_req *req, int status, const char *content_type,
		     char *body, size_t len)
{
	struct env *e = arg;
	assert_true(e->n_replies < MAX_REPLIES);
	struct reply_seen *r = &e->replies[e->n_replies++];
	r->tag = *(int *)req;
	r->status = status;
	r->body = body;
	r->committed_before = e->n_committed;
	r->head_seq = head_seq(e->store);
}

static int setup_at(void **state, bool file)
{
	struct env *e = xcalloc(1, sizeof(*e));
	char *errors = NULL, *cause = NULL, *path = NULL;
	const struct writer_hooks hooks = {
		.committed = on_committed, .failed = on_failed, .reply = on_reply, .arg = e,
	};

	assert_int_equal(uv_loop_init(&e->loop), 0);
	clock_init_simulated(&e->clock, T0 + 3600);
	if (config_parse("fixture", fixture, strlen(fixture), &e->cfg, &errors) != 0)
		fail_msg("fixture: %s", errors);
	if (file) {
		snprintf(e->dir, sizeof(e->dir), "/tmp/test_writer.XXXXXX");
		assert_non_null(mkdtemp(e->dir));
		path = xasprintf("%s/ledger.db", e->dir);
		assert_int_equal(store_open(path, &e->store, &cause), 0);
		assert_int_equal(store_open(path, &e->other, &cause), 0);
	} else {
		assert_int_equal(store_open(":memory:", &e->store, &cause), 0);
	}
	free(path);
	assert_int_equal(state_load(e->store, e->cfg, clock_now(&e->clock), &e->ledger, &cause), 0);
	writer_init(&e->w, &e->loop, e->store, &e->clock, &hooks);
	for (int i = 0; i < MAX_REPLIES; i++)
		e->tags[i] = i;
	*state = e;
	return 0;
}

static int setup(void **state)
{
	return setup_at(state, false);
}

static int setup_file(void **state)
{
	return setup_at(state, true);
}

static int teardown(void **state)
{
	struct env *e = *state;

	writer_close(&e->w);
	assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	for (size_t i = 0; i < e->n_replies; i++)
		free(e->replies[i].body);
	ledger_free(e->ledger);
	store_close(e->store);
	store_close(e->other);
	if (e->dir[0]) {
		static const char *const files[] = {"ledger.db", "ledger.db-wal", "ledger.db-shm"};
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			char *p = xasprintf("%s/%s", e->dir, files[i]);
			unlink(p);
			free(p);
		}
		rmdir(e->dir);
	}
	config_free(e->cfg);
	free(e);
	return 0;
}

/* Turns the loop until nothing is open or in flight: the commit thread has answered. */
static void turn(struct env *e)
{
	do
		uv_run(&e->loop, UV_RUN_ONCE);
	while (writer_busy(&e->w));
}

/* A reply as the API hands it over: every string is the writer's to free. */
static void held(struct env *e, int tag, int status, const char *body)
{
	struct held_reply r = {
		.req = (struct server_req *)&e->tags[tag],
		.status = status,
		.body = xstrdup(body),
		.request_id = xasprintf("req-%d", tag),
		.actor = xstrdup("test"),
		.method = xstrdup("POST"),
		.path = xstrdup("/v1/grants"),
		.start_us = uv_hrtime() / 1000,
	};
	writer_reply(&e->w, &r);
}

static void test_no_reply_before_commit(void **state)
{
	struct env *e = *state;
	uint8_t hash[HASH_LEN] = {0};

	grant(e, 10);
	writer_add_idem(&e->w, "key-1", hash, 200, "{\"ok\":true}");
	assert_true(writer_open(&e->w));
	assert_non_null(writer_find_idem(&e->w, "key-1"));
	held(e, 0, 200, "{\"ok\":true}");
	held(e, 1, 200, "{\"read\":1}");
	held(e, 2, 200, "{\"read\":2}");

	/* the loop has not turned: nothing is on disk, nothing has left */
	assert_int_equal(e->n_replies, 0);
	assert_int_equal(e->n_committed, 0);
	assert_int_equal(head_seq(e->store), 0);

	/* the idle handle commits the batch, then sends what waited for it */
	turn(e);
	assert_false(writer_open(&e->w));
	assert_int_equal(e->n_committed, 1);
	assert_int_equal(e->committed_entries, 1);
	assert_int_equal(e->n_failed, 0);
	assert_int_equal(e->n_replies, 3);
	for (size_t i = 0; i < e->n_replies; i++) {
		assert_int_equal(e->replies[i].tag, (int)i);	/* in order */
		assert_int_equal(e->replies[i].status, 200);
		assert_int_equal(e->replies[i].committed_before, 1);
		assert_int_equal(e->replies[i].head_seq, 1);
	}
	assert_int_equal(e->w.commits, 1);
	assert_int_equal(e->w.committed_entries, 1);

	/* the idempotency record went with the batch */
	int status;
	char *response = NULL;
	assert_null(writer_find_idem(&e->w, "key-1"));
	assert_int_equal(store_idem_get(e->store, "key-1", hash, &status, &response), 0);
	assert_int_equal(status, 200);
	assert_string_equal(response, "{\"ok\":true}");
	free(response);

	/* with no batch open a reply goes at once */
	held(e, 3, 200, "{\"read\":3}");
	assert_int_equal(e->n_replies, 4);
	assert_int_equal(e->replies[3].committed_before, 1);
}

static void test_failed_batch_all_503(void **state)
{
	struct env *e = *state;

	store_fail_commit(e->store, 1, -ENOSPC);
	grant(e, 10);
	grant(e, 5);
	held(e, 0, 200, "{\"grant\":1}");
	held(e, 1, 201, "{\"grant\":2}");
	held(e, 2, 200, "{\"read\":1}");
	assert_int_equal(e->n_replies, 0);

	assert_int_equal(writer_flush(&e->w), -ENOSPC);
	assert_false(writer_open(&e->w));
	assert_int_equal(e->n_committed, 0);
	assert_int_equal(e->n_failed, 1);
	assert_int_equal(e->failed_err, -ENOSPC);
	assert_int_equal(e->w.failed_commits, 1);
	assert_int_equal(e->w.commits, 0);
	assert_int_equal(head_seq(e->store), 0);
	assert_int_equal(e->n_replies, 3);
	for (size_t i = 0; i < e->n_replies; i++) {
		json_error_t jerr;
		json_t *o = json_loads(e->replies[i].body, 0, &jerr);
		assert_non_null(o);
		assert_int_equal(e->replies[i].status, 503);
		assert_string_equal(json_string_value(json_object_get(
			json_object_get(o, "error"), "code")), "storage_unavailable");
		assert_true(json_is_object(json_object_get(json_object_get(o, "error"), "details")));
		json_decref(o);
	}

	/* the reloaded ledger chains onto what is on disk */
	grant(e, 1);
	turn(e);
	assert_int_equal(e->n_committed, 1);
	assert_int_equal(e->committed_last_seq, 1);
	assert_int_equal(head_seq(e->store), 1);
}

static void test_hook_opens_next_batch(void **state)
{
	struct env *e = *state;

	e->reopen_on_commit = true;
	grant(e, 10);
	held(e, 0, 200, "{\"grant\":1}");
	assert_int_equal(writer_flush(&e->w), 0);
	/* the first batch's reply has gone; the hook's entry waits for its own */
	assert_int_equal(e->n_replies, 1);
	assert_int_equal(e->replies[0].head_seq, 1);
	assert_true(writer_open(&e->w));
	held(e, 1, 200, "{\"read\":1}");
	assert_int_equal(e->n_replies, 1);

	turn(e);
	assert_false(writer_open(&e->w));
	assert_int_equal(e->n_committed, 2);
	assert_int_equal(e->n_replies, 2);
	assert_int_equal(e->replies[1].committed_before, 2);
	assert_int_equal(e->replies[1].head_seq, 2);
}

/*
 * The second connection holds the write lock: the commit thread waits in
 * BEGIN, so the first batch stays in flight while the test opens the next.
 */
static void in_flight_behind_lock(struct env *e)
{
	uint8_t hash[HASH_LEN] = {0};

	assert_int_equal(store_begin(e->other), 0);
	grant(e, 10);
	writer_add_idem(&e->w, "key-1", hash, 200, "{\"grant\":1}");
	held(e, 0, 200, "{\"grant\":1}");
	uv_run(&e->loop, UV_RUN_NOWAIT);	/* the idle handle hands it over */
	assert_true(writer_busy(&e->w));
	assert_false(writer_open(&e->w));
	/* a read now sees the batch in flight in the ledger: it waits for it */
	held(e, 1, 200, "{\"read\":1}");
	/* the next change opens the next batch, behind it */
	grant(e, 5);
	writer_add_idem(&e->w, "key-2", hash, 200, "{\"grant\":2}");
	held(e, 2, 200, "{\"grant\":2}");
	assert_true(writer_open(&e->w));
	/* a retry of key-1 arriving now must find it, in flight as it is */
	assert_non_null(writer_find_idem(&e->w, "key-1"));
	assert_non_null(writer_find_idem(&e->w, "key-2"));
	uv_run(&e->loop, UV_RUN_NOWAIT);
	assert_int_equal(e->n_replies, 0);
	assert_int_equal(e->n_committed, 0);
}

static void test_pipelined_batches(void **state)
{
	struct env *e = *state;

	in_flight_behind_lock(e);
	store_rollback(e->other);	/* the lock goes: both commit, in order */
	turn(e);
	assert_int_equal(e->n_failed, 0);
	assert_int_equal(e->n_committed, 2);
	assert_int_equal(e->w.commits, 2);
	assert_int_equal(e->n_replies, 3);
	for (size_t i = 0; i < e->n_replies; i++) {
		assert_int_equal(e->replies[i].tag, (int)i);
		assert_int_equal(e->replies[i].status, 200);
	}
	/* the first batch's replies left after its commit, before the second's */
	assert_int_equal(e->replies[0].committed_before, 1);
	assert_int_equal(e->replies[0].head_seq, 1);
	assert_int_equal(e->replies[1].committed_before, 1);
	assert_int_equal(e->replies[2].committed_before, 2);
	assert_int_equal(e->replies[2].head_seq, 2);
	assert_null(writer_find_idem(&e->w, "key-1"));
	assert_null(writer_find_idem(&e->w, "key-2"));
	int status;
	char *response = NULL;
	uint8_t hash[HASH_LEN];
	assert_int_equal(store_idem_get(e->store, "key-1", hash, &status, &response), 0);
	free(response);
	assert_int_equal(store_idem_get(e->store, "key-2", hash, &status, &response), 0);
	free(response);
}

static void test_failed_in_flight_fails_open(void **state)
{
	struct env *e = *state;

	store_fail_commit(e->store, 1, -ENOSPC);
	in_flight_behind_lock(e);
	store_rollback(e->other);
	turn(e);
	/* the open batch was checked against the failed one: it failed with it,
	 * untried, and the ledger was rebuilt once */
	assert_int_equal(e->n_failed, 1);
	assert_int_equal(e->failed_err, -ENOSPC);
	assert_int_equal(e->n_committed, 0);
	assert_int_equal(e->w.failed_commits, 1);
	assert_false(writer_busy(&e->w));
	assert_null(writer_find_idem(&e->w, "key-2"));
	assert_int_equal(head_seq(e->store), 0);
	assert_int_equal(e->n_replies, 3);
	for (size_t i = 0; i < e->n_replies; i++) {
		assert_int_equal(e->replies[i].tag, (int)i);
		assert_int_equal(e->replies[i].status, 503);
	}
	/* the rebuilt ledger chains onto what the disk holds */
	grant(e, 1);
	turn(e);
	assert_int_equal(e->n_committed, 1);
	assert_int_equal(e->committed_last_seq, 1);
	assert_int_equal(head_seq(e->store), 1);
}

/*
 * A clock move belongs to its batch: once the batch that held a move is in
 * flight, a later move is the open batch's; an undo after the one in
 * flight committed goes back to where the open batch's move began, and
 * after it failed (failing the open one too) to where its own began.
 */
static void test_clock_moves_by_batch(void **state)
{
	struct clock c;

	(void)state;
	clock_init_simulated(&c, T0);
	clock_move_begin(&c);
	clock_set(&c, T0 + 10);
	clock_move_seal(&c);	/* that batch went to be committed */
	clock_move_begin(&c);
	clock_set(&c, T0 + 20);
	clock_move_commit_sealed(&c);	/* it committed; the open one fails */
	clock_move_undo(&c);
	assert_int_equal(clock_now(&c), T0 + 10);

	clock_move_begin(&c);
	clock_set(&c, T0 + 30);
	clock_move_seal(&c);
	clock_move_begin(&c);
	clock_set(&c, T0 + 40);
	clock_move_undo(&c);	/* the one in flight failed: both moves go */
	assert_int_equal(clock_now(&c), T0 + 10);

	clock_move_begin(&c);
	clock_set(&c, T0 + 50);
	clock_move_seal(&c);
	clock_move_commit_sealed(&c);
	clock_move_undo(&c);	/* nothing pending: the committed move stands */
	assert_int_equal(clock_now(&c), T0 + 50);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_reply_before_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_batch_all_503, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hook_opens_next_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_batches, setup_file, teardown),
		cmocka_unit_test_setup_teardown(test_failed_in_flight_fails_open, setup_file, teardown),
		cmocka_unit_test(test_clock_moves_by_batch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
