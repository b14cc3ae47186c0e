/* SPDX-License-Identifier: MIT */
/*
 * The protocol and error tables, and doc/api.md against them: the route
 * list and the error table of the document must be exactly the tables'
 * (both ways), so the documentation cannot list a code nothing returns or
 * miss a route.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/error.h"
#include "daemon/proto.h"
#include "daemon/util.h"

#define DOC SOURCE_ROOT "/doc/api.md"
#define MAX_LINES 4000

static char *lines[MAX_LINES];
static size_t n_lines;

static int read_doc(void **state)
{
	FILE *f = fopen(DOC, "r");
	char buf[4096];

	assert_non_null(f);
	while (fgets(buf, sizeof(buf), f) && n_lines < MAX_LINES) {
		buf[strcspn(buf, "\n")] = '\0';
		lines[n_lines++] = xstrdup(buf);
	}
	fclose(f);
	return 0;
}

static int free_doc(void **state)
{
	for (size_t i = 0; i < n_lines; i++)
		free(lines[i]);
	n_lines = 0;
	return 0;
}

/* Splits "| a | b | c |" into at most n trimmed cells; returns the count. */
static size_t cells(const char *line, char out[][160], size_t n)
{
	size_t k = 0;
	if (line[0] != '|')
		return 0;
	for (const char *p = line + 1; *p && k < n;) {
		const char *bar = strchr(p, '|');
		if (!bar)
			break;
		while (p < bar && *p == ' ')
			p++;
		const char *e = bar;
		while (e > p && e[-1] == ' ')
			e--;
		size_t len = (size_t)(e - p) < 159 ? (size_t)(e - p) : 159;
		memcpy(out[k], p, len);
		out[k][len] = '\0';
		/* `code` -> code */
		if (len >= 2 && out[k][0] == '`' && out[k][len - 1] == '`') {
			memmove(out[k], out[k] + 1, len - 2);
			out[k][len - 2] = '\0';
		}
		k++;
		p = bar + 1;
	}
	return k;
}

/* The document's path spelling: "/v1/allocations/{id}" for ".../" "*". */
static void doc_path(const char *pattern, char *out, size_t size)
{
	struct buf b = {0};
	for (const char *p = pattern; *p; p++) {
		if (*p == '*')
			buf_puts(&b, "{id}");
		else
			buf_append(&b, p, 1);
	}
	snprintf(out, size, "%s", b.data);
	buf_free(&b);
}

static void test_routes_match_doc(void **state)
{
	bool seen[PROTO__COUNT] = {0};
	char c[4][160];
	size_t rows = 0;

	for (size_t i = 0; i < n_lines; i++) {
		if (cells(lines[i], c, 4) != 3 || (strcmp(c[0], "GET") && strcmp(c[0], "POST")))
			continue;
		rows++;
		size_t r;
		for (r = 0; r < PROTO__COUNT; r++) {
			const struct proto_request *q = proto_request((enum proto_req)r);
			char path[160];
			doc_path(q->path, path, sizeof(path));
			if (strcmp(q->method, c[0]) == 0 && strcmp(path, c[1]) == 0)
				break;
		}
		if (r == PROTO__COUNT)
			fail_msg("doc/api.md lists %s %s, which daemon/proto.def does not have",
				 c[0], c[1]);
		assert_false(seen[r]);
		seen[r] = true;
		assert_string_equal(c[2], proto_role_name(proto_request((enum proto_req)r)->role));
	}
	for (size_t r = 0; r < PROTO__COUNT; r++)
		if (!seen[r])
			fail_msg("daemon/proto.def has %s %s, which doc/api.md's route list lacks",
				 proto_request((enum proto_req)r)->method,
				 proto_request((enum proto_req)r)->path);
	assert_int_equal(rows, PROTO__COUNT);
}

/* Every route is also described under a "### METHOD path" heading. */
static void test_routes_described(void **state)
{
	for (size_t r = 0; r < PROTO__COUNT; r++) {
		const struct proto_request *q = proto_request((enum proto_req)r);
		char path[160], want[200];
		bool found = false;

		doc_path(q->path, path, sizeof(path));
		snprintf(want, sizeof(want), "%s %s", q->method, path);
		for (size_t i = 0; i < n_lines && !found; i++) {
			const char *h = lines[i];
			if (strncmp(h, "### ", 4) != 0)
				continue;
			const char *at = strstr(h, want);
			/* the path must end there: "/v1/allocations" is not ".../{id}" */
			found = at && (at[strlen(want)] == '\0' || strchr(" ,?(", at[strlen(want)]));
		}
		if (!found)
			fail_msg("doc/api.md has no '### %s' section", want);
	}
}

static void test_errors_match_doc(void **state)
{
	bool seen[ERR__COUNT] = {0};
	char c[4][160];

	for (size_t i = 0; i < n_lines; i++) {
		if (cells(lines[i], c, 4) != 3 || atoi(c[0]) < 400)
			continue;
		enum error_code e = error_lookup(c[1]);
		if (e == ERR_NONE)
			fail_msg("doc/api.md lists error '%s', which daemon/error.def does not have",
				 c[1]);
		assert_false(seen[e]);
		seen[e] = true;
		assert_int_equal(atoi(c[0]), error_status(e));
	}
	for (unsigned e = 1; e < ERR__COUNT; e++)
		if (!seen[e])
			fail_msg("daemon/error.def has '%s', which doc/api.md's error table lacks",
				 error_name((enum error_code)e));
}

static void test_error_table(void **state)
{
	assert_string_equal(error_name(ERR_QUOTA_EXCEEDED), "quota_exceeded");
	assert_int_equal(error_status(ERR_QUOTA_EXCEEDED), 409);
	assert_int_equal(error_exit(ERR_QUOTA_EXCEEDED), EXIT_REFUSED);
	assert_int_equal(error_exit(ERR_BAD_REQUEST), EXIT_DATAERR);
	assert_int_equal(error_exit(ERR_FORBIDDEN), EXIT_NOPERM);
	assert_int_equal(error_exit(ERR_STORAGE_UNAVAILABLE), EXIT_UNAVAILABLE);
	assert_int_equal(error_lookup("no_such_code"), ERR_NONE);
	/* one status per code, and names unique */
	for (unsigned a = 1; a < ERR__COUNT; a++)
		for (unsigned b = a + 1; b < ERR__COUNT; b++)
			assert_string_not_equal(error_name((enum error_code)a),
						error_name((enum error_code)b));

	char *body = error_body(ERR_NOT_FOUND, "no allocation \"A-1\"", NULL);
	assert_string_equal(body, "{\"error\":{\"code\":\"not_found\","
				  "\"message\":\"no allocation \\\"A-1\\\"\",\"details\":{}}}");
	free(body);
}

static void test_match(void **state)
{
	char *p[PROTO_MAX_PARAMS] = {0};
	bool known;

	assert_int_equal(proto_match("GET", "/v1/allocations/A-000001", p, &known),
			 PROTO_ALLOCATION);
	assert_string_equal(p[0], "A-000001");
	free(p[0]);
	p[0] = NULL;
	assert_int_equal(proto_match("POST", "/v1/allocations/A-7/cancel", p, &known),
			 PROTO_CANCEL);
	assert_string_equal(p[0], "A-7");
	free(p[0]);
	p[0] = NULL;
	assert_int_equal(proto_match("POST", "/v1/allocations", p, &known), PROTO_ALLOCATE);
	assert_int_equal(proto_match("DELETE", "/v1/status", p, &known), -1);
	assert_true(known);
	assert_int_equal(proto_match("GET", "/v1/nosuch", p, &known), -1);
	assert_false(known);
	assert_int_equal(proto_match("GET", "/v1/allocations//cancel", p, &known), -1);
	assert_int_equal(proto_match("GET", "/v1/allocations/x/y/z", p, &known), -1);
	assert_null(p[0]);
}

static void test_fields(void **state)
{
	assert_true(proto_has_body(PROTO_GRANT, FIELD_REASON));
	assert_false(proto_has_body(PROTO_GRANT, FIELD_POOL));
	assert_true(proto_has_query(PROTO_QUOTA, FIELD_PHASE));
	assert_false(proto_has_query(PROTO_STATUS, FIELD_PHASE));
	assert_int_equal(proto_field_lookup("gpu_seconds"), FIELD_GPU_SECONDS);
	assert_int_equal(proto_field_type(FIELD_START), PT_TIME);
	assert_int_equal(proto_field_lookup("nope"), FIELD_NONE);
	/* a request's field list has no field twice */
	for (size_t r = 0; r < PROTO__COUNT; r++) {
		const struct proto_body_field *b = proto_request((enum proto_req)r)->body;
		for (size_t i = 0; b[i].field; i++)
			for (size_t j = i + 1; b[j].field; j++)
				assert_int_not_equal(b[i].field, b[j].field);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_table),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_routes_match_doc),
		cmocka_unit_test(test_routes_described),
		cmocka_unit_test(test_errors_match_doc),
	};
	return cmocka_run_group_tests(tests, read_doc, free_doc);
}
