/* SPDX-License-Identifier: MIT */
/*
 * doc/gpuledger.yaml.5 against the key table of daemon/config.c: every key
 * of the table has its entry, with its type, default, "required" and
 * "restart" as the table says, and the page documents no key the table
 * lacks. A key added to the table without its documentation fails here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/util.h"

/* Internal to config.c, for the tests. */
typedef void config_key_fn(const char *path, const char *type,
			   const char *def, bool required, bool restart,
			   void *arg);
void config__keys(config_key_fn *fn, void *arg);

#define PAGE SOURCE_ROOT "/doc/gpuledger.yaml.5"
#define MAX_ENTRIES 256

struct entry {
	char *path;
	char *attrs;	/* the "(...)" line, with man escapes removed */
	bool seen;
};

static struct entry entries[MAX_ENTRIES];
static size_t n_entries;

/* "default \fB\-infinity\fR" -> "default -infinity" */
static char *unescape(const char *s)
{
	struct buf b = {0};
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] == 'f' && s[2]) {
			s += 2;
		} else if (s[0] == '\\' && s[1] == '-') {
			buf_puts(&b, "-");
			s++;
		} else {
			buf_append(&b, s, 1);
		}
	}
	buf_puts(&b, "");
	return buf_take(&b);
}

static int read_page(void **state)
{
	FILE *f = fopen(PAGE, "r");
	char prev[512] = "", line[512], path[512] = "";

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(prev, ".TP") == 0 && strncmp(line, ".B ", 3) == 0) {
			snprintf(path, sizeof(path), "%s", line + 3);
		} else if (path[0] && line[0] == '(') {
			assert_true(n_entries < MAX_ENTRIES);
			entries[n_entries].path = xstrdup(path);
			entries[n_entries].attrs = unescape(line);
			n_entries++;
			path[0] = '\0';
		} else {
			path[0] = '\0';
		}
		snprintf(prev, sizeof(prev), "%s", line);
	}
	fclose(f);
	assert_true(n_entries > 10);
	return 0;
}

static int free_page(void **state)
{
	for (size_t i = 0; i < n_entries; i++) {
		free(entries[i].path);
		free(entries[i].attrs);
	}
	n_entries = 0;
	return 0;
}

static void check_key(const char *path, const char *type, const char *def, bool required,
		      bool restart, void *arg)
{
	int *problems = arg;
	struct entry *e = NULL;

	for (size_t i = 0; i < n_entries && !e; i++)
		if (strcmp(entries[i].path, path) == 0)
			e = &entries[i];
	if (e == NULL) {
		print_error("doc/gpuledger.yaml.5 lacks the key %s\n", path);
		(*problems)++;
		return;
	}
	e->seen = true;
	char want[512];
	snprintf(want, sizeof(want), "(%s%s%s%s%s%s)", type, required ? ", required" : "",
		 def ? ", default " : "", def ? def : "", restart ? ", restart" : "", "");
	if (strcmp(e->attrs, want) != 0) {
		print_error("doc/gpuledger.yaml.5: %s says %s, the table %s\n", path, e->attrs, want);
		(*problems)++;
	}
}

static void test_page_matches_table(void **state)
{
	int problems = 0;
	config__keys(check_key, &problems);
	for (size_t i = 0; i < n_entries; i++) {
		if (!entries[i].seen) {
			print_error("doc/gpuledger.yaml.5 documents %s, which the table lacks\n",
				    entries[i].path);
			problems++;
		}
	}
	assert_int_equal(problems, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_page_matches_table),
	};
	return cmocka_run_group_tests(tests, read_page, free_page);
}
