/* SPDX-License-Identifier: MIT */
/*
 * The log: one JSON object per line; "<N>" syslog priorities only when
 * stderr is the stream $JOURNAL_STREAM names; the file reopened after
 * logrotate moved it.
 */
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

#include <pthread.h>

#include "daemon/log.h"
#include "daemon/util.h"

struct fixture {
	char dir[64];
	char path[128];
	int saved_stderr;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/gpuledger-log.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/stderr", f->dir);
	f->saved_stderr = dup(STDERR_FILENO);
	assert_true(f->saved_stderr >= 0);
	FILE *fp = fopen(f->path, "w");
	assert_non_null(fp);
	assert_int_equal(dup2(fileno(fp), STDERR_FILENO), STDERR_FILENO);
	fclose(fp);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	log_close();
	dup2(f->saved_stderr, STDERR_FILENO);
	close(f->saved_stderr);
	unsetenv("JOURNAL_STREAM");
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	struct buf b = {0};
	char chunk[512];
	size_t n;

	assert_non_null(fp);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_append(&b, chunk, n);
	fclose(fp);
	buf_puts(&b, "");
	return buf_take(&b);
}

static void set_journal_stream(int fd, long ino_delta)
{
	struct stat st;
	char env[64];
	assert_int_equal(fstat(fd, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + (unsigned long long)ino_delta);
	setenv("JOURNAL_STREAM", env, 1);
}

static void test_journal_prefix(void **state)
{
	struct fixture *f = *state;
	char *cause = NULL;

	set_journal_stream(STDERR_FILENO, 0);
	assert_int_equal(log_open("-", LOG_DEBUG, &cause), 0);
	log_event(LOG_ERROR, "disk_full", "{s:s}", "path", "x");
	log_event(LOG_WARN, "slow", NULL);
	log_event(LOG_INFO, "started", NULL);
	log_event(LOG_DEBUG, "detail", NULL);
	char *s = slurp(f->path);
	char *l1 = s, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1,
	     *l4 = strchr(l3, '\n') + 1;
	assert_memory_equal(l1, "<3>{\"ts\":", 9);
	assert_memory_equal(l2, "<4>{", 4);
	assert_memory_equal(l3, "<6>{", 4);
	assert_memory_equal(l4, "<7>{", 4);
	assert_non_null(strstr(l1, "\"event\":\"disk_full\""));
	free(s);
}

/* Not the journal: no JOURNAL_STREAM, or one naming another file. */
static void test_no_prefix(void **state)
{
	struct fixture *f = *state;
	char *cause = NULL;

	assert_int_equal(log_open("-", LOG_INFO, &cause), 0);
	log_event(LOG_ERROR, "plain", NULL);
	set_journal_stream(STDERR_FILENO, 1);
	assert_int_equal(log_open("-", LOG_INFO, &cause), 0);
	log_event(LOG_ERROR, "other_inode", NULL);
	setenv("JOURNAL_STREAM", "garbage", 1);
	assert_int_equal(log_open("-", LOG_INFO, &cause), 0);
	log_event(LOG_ERROR, "garbage", NULL);
	char *s = slurp(f->path);
	for (char *l = s; *l; l = strchr(l, '\n') + 1)
		assert_memory_equal(l, "{\"ts\":", 6);
	assert_non_null(strstr(s, "other_inode"));
	free(s);
}

/* A log file gets no prefix even under the journal, and is reopened after a move. */
static void test_file_reopen(void **state)
{
	struct fixture *f = *state;
	char path[160], moved[170], *cause = NULL;

	snprintf(path, sizeof(path), "%s/daemon.log", f->dir);
	snprintf(moved, sizeof(moved), "%s.1", path);
	set_journal_stream(STDERR_FILENO, 0);
	assert_int_equal(log_open(path, LOG_INFO, &cause), 0);
	log_event(LOG_INFO, "before", NULL);
	assert_int_equal(rename(path, moved), 0);
	log_event(LOG_INFO, "still_old", NULL);
	assert_int_equal(log_reopen(), 0);
	log_event(LOG_INFO, "after", NULL);
	char *old = slurp(moved), *cur = slurp(path);
	assert_memory_equal(old, "{\"ts\":", 6);
	assert_non_null(strstr(old, "still_old"));
	assert_null(strstr(old, "\"after\""));
	assert_non_null(strstr(cur, "\"after\""));
	free(old);
	free(cur);
}

/* Lines in s (NUL-terminated), each checked to be one whole JSON object. */
static size_t whole_lines(const char *s, const char *event_prefix, size_t *n_event)
{
	size_t n = 0;
	*n_event = 0;
	for (const char *l = s; *l; n++) {
		const char *nl = strchr(l, '\n');
		assert_non_null(nl);	/* every line ends */
		json_error_t err;
		json_t *o = json_loadb(l, (size_t)(nl - l), 0, &err);
		assert_non_null(o);
		const char *ev = json_string_value(json_object_get(o, "event"));
		assert_non_null(ev);
		if (strncmp(ev, event_prefix, strlen(event_prefix)) == 0)
			(*n_event)++;
		json_decref(o);
		l = nl + 1;
	}
	return n;
}

/*
 * Gathered lines: nothing reaches the file until the flush, then every
 * line, whole and in order, in one write; an error line goes out at once
 * with what came before it; a reopen writes what was kept to the old file;
 * more than the buffer holds is written as it fills, never split; another
 * thread's lines go out at once; the end of gathering flushes.
 */
static void *other_thread(void *arg)
{
	(void)arg;
	log_event(LOG_INFO, "from_other_thread", NULL);
	return NULL;
}

static void test_gather(void **state)
{
	struct fixture *f = *state;
	char path[160], moved[170], *cause = NULL, *s;
	size_t n;

	snprintf(path, sizeof(path), "%s/daemon.log", f->dir);
	snprintf(moved, sizeof(moved), "%s.1", path);
	assert_int_equal(log_open(path, LOG_INFO, &cause), 0);
	log_gather(true);
	for (int i = 0; i < 100; i++)
		log_event(LOG_INFO, "burst", "{s:i}", "i", i);
	s = slurp(path);
	assert_string_equal(s, "");	/* kept for the flush */
	free(s);

	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	s = slurp(path);
	assert_non_null(strstr(s, "from_other_thread"));	/* not kept: written at once */
	free(s);

	log_flush();
	s = slurp(path);
	assert_int_equal(whole_lines(s, "burst", &n), 101);
	assert_int_equal(n, 100);
	for (int i = 1; i < 100; i++) {	/* in order */
		char a[32], b[32];
		snprintf(a, sizeof(a), "\"i\":%d}", i - 1);
		snprintf(b, sizeof(b), "\"i\":%d}", i);
		assert_true(strstr(s, a) < strstr(s, b));
	}
	free(s);

	log_event(LOG_INFO, "before_error", NULL);
	log_event(LOG_ERROR, "disk_gone", NULL);	/* at once, after what was kept */
	s = slurp(path);
	assert_non_null(strstr(s, "before_error"));
	assert_true(strstr(s, "before_error") < strstr(s, "disk_gone"));
	free(s);

	log_event(LOG_INFO, "kept_before_rotate", NULL);
	assert_int_equal(rename(path, moved), 0);
	assert_int_equal(log_reopen(), 0);
	log_event(LOG_INFO, "after_rotate", NULL);
	s = slurp(moved);
	assert_non_null(strstr(s, "kept_before_rotate"));
	assert_null(strstr(s, "after_rotate"));
	free(s);

	/* some 200 KB of lines, past the buffer: whole lines in each write */
	char reason[1500];
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	for (int i = 0; i < 150; i++)
		log_event(LOG_INFO, "big", "{s:i, s:s}", "i", i, "reason", reason);
	s = slurp(path);
	size_t lines = whole_lines(s, "big", &n);
	assert_true(n > 0 && n < 150);	/* written as the buffer filled, the rest kept */
	free(s);
	log_gather(false);	/* the end of gathering writes the rest */
	s = slurp(path);
	lines = whole_lines(s, "big", &n);
	assert_int_equal(n, 150);
	assert_int_equal(lines, 151);	/* after_rotate + 150 */
	free(s);
	log_event(LOG_INFO, "direct", NULL);	/* no longer kept */
	s = slurp(path);
	assert_non_null(strstr(s, "\"direct\""));
	free(s);
}

/*
 * log_entry_event() writes the line log_event() would, key for key and
 * byte for byte after the timestamp, nulls included; and the timestamp
 * keeps its form ("YYYY-MM-DDTHH:MM:SS.mmmZ") across lines of one second.
 */
static void test_entry_event(void **state)
{
	struct fixture *f = *state;
	char path[160], *cause = NULL;

	snprintf(path, sizeof(path), "%s/daemon.log", f->dir);
	assert_int_equal(log_open(path, LOG_INFO, &cause), 0);
	log_event(LOG_INFO, "allocated", "{s:s?, s:s?, s:s?, s:I}", "request_id", "k-1",
		  "consortium", "lg", "allocation", "A-000001", "seq", (json_int_t)42);
	log_entry_event("allocated", "k-1", "lg", "A-000001", 42);
	log_event(LOG_INFO, "eliminated", "{s:s?, s:s?, s:s?, s:I}", "request_id", NULL,
		  "consortium", "lg", "allocation", NULL, "seq", (json_int_t)43);
	log_entry_event("eliminated", NULL, "lg", NULL, 43);
	char *s = slurp(path), *l[4];
	l[0] = s;
	for (int i = 1; i < 4; i++)
		l[i] = strchr(l[i - 1], '\n') + 1;
	for (int i = 0; i < 4; i++) {
		/* {"ts":"2026-12-02T05:20:31.123Z", */
		assert_memory_equal(l[i], "{\"ts\":\"", 7);
		assert_true(l[i][17] == 'T' && l[i][26] == '.' && l[i][30] == 'Z');
	}
	size_t skip = strlen("{\"ts\":\"2026-12-02T05:20:31.123Z\"");
	size_t n0 = (size_t)(l[1] - l[0]), n2 = (size_t)(l[3] - l[2]);
	assert_int_equal((size_t)(l[2] - l[1]), n0);
	assert_memory_equal(l[0] + skip, l[1] + skip, n0 - skip);
	assert_memory_equal(l[2] + skip, l[3] + skip, n2 - skip);
	assert_non_null(strstr(l[2], "\"request_id\":null,\"consortium\":\"lg\",\"allocation\":null,\"seq\":43}"));
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_journal_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gather, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entry_event, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
