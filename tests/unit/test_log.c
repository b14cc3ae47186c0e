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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_journal_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_reopen, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
