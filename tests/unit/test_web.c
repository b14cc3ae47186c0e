/* SPDX-License-Identifier: MIT */
/*
 * The embedded web page against the protocol table and its own policy:
 * every route that needs no credentials (least role NONE) serves an
 * embedded file and every embedded file has such a route, each with a
 * UTF-8 content type; the page holds no inline script, inline style or
 * event-handler attribute (the Content-Security-Policy would block them
 * anyway: a test here fails at build time, a browser only at run time),
 * loads nothing from another origin; and every response carries the
 * policy's headers.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "daemon/proto.h"
#include "daemon/server.h"
#include "daemon/web.h"

static void test_routes_have_files(void **state)
{
	unsigned open_routes = 0;

	for (unsigned r = 0; r < PROTO__COUNT; r++) {
		const struct proto_request *q = proto_request((enum proto_req)r);
		if (q->role != PR_NONE)
			continue;
		open_routes++;
		assert_string_equal(q->method, "GET");
		if (web_file(q->path) == NULL)
			fail_msg("route GET %s needs no credentials but serves no file", q->path);
	}
	assert_int_equal(open_routes, web_file_count);
	for (unsigned i = 0; i < web_file_count; i++) {
		bool known = false;
		char *params[PROTO_MAX_PARAMS] = {0};
		int r = proto_match("GET", web_files[i].path, params, &known);
		if (r < 0 || proto_request((enum proto_req)r)->role != PR_NONE)
			fail_msg("%s is embedded but has no route of role NONE", web_files[i].path);
		assert_non_null(strstr(web_files[i].content_type, "; charset=utf-8"));
		assert_int_equal(strlen(web_files[i].data), web_files[i].len);
	}
	assert_null(web_file("/v1/status"));
	assert_null(web_file("/index.html"));
}

/* Whether s holds needle, ignoring ASCII case. */
static bool has(const char *s, const char *needle)
{
	size_t n = strlen(needle);
	for (; *s; s++)
		if (strncasecmp(s, needle, n) == 0)
			return true;
	return false;
}

static void test_page_has_nothing_inline(void **state)
{
	const struct web_file *f = web_file("/");
	assert_non_null(f);
	assert_true(has(f->data, "<meta charset=\"utf-8\">"));
	/* every <script> names its source; no <style> element, no style= */
	for (const char *p = f->data; (p = strcasestr(p, "<script")) != NULL; p++) {
		const char *end = strchr(p, '>');
		assert_non_null(end);
		char tag[256];
		snprintf(tag, sizeof(tag), "%.*s", (int)(end - p), p);
		if (strstr(tag, "src=\"/") == NULL)
			fail_msg("an inline or foreign script: %s>", tag);
	}
	assert_false(has(f->data, "<style"));
	assert_false(has(f->data, " style="));
	assert_false(has(f->data, "javascript:"));
	assert_false(has(f->data, "http://"));
	assert_false(has(f->data, "https://"));
	/* no on...= handler attribute */
	for (const char *p = f->data; *p; p++) {
		if (!isspace((unsigned char)p[0]) || strncasecmp(p + 1, "on", 2) != 0)
			continue;
		const char *q = p + 3;
		while (isalpha((unsigned char)*q))
			q++;
		if (q > p + 3 && *q == '=')
			fail_msg("an event-handler attribute: %.20s", p + 1);
	}
	/* the script and the style sheet fetch nothing from elsewhere */
	const struct web_file *js = web_file("/app.js"), *css = web_file("/style.css");
	assert_non_null(js);
	assert_non_null(css);
	assert_false(has(css->data, "@import"));
	assert_false(has(css->data, "url("));
	assert_false(has(js->data, "innerHTML"));
	assert_false(has(js->data, "eval("));
	assert_false(has(js->data, "https://"));
}

static void test_security_headers(void **state)
{
	const char *h = SERVER_SECURITY_HEADERS;
	assert_non_null(strstr(h, "Content-Security-Policy: default-src 'none'; script-src 'self'; "
				  "style-src 'self'; img-src 'self' data:; connect-src 'self'; "
				  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"));
	assert_non_null(strstr(h, "X-Content-Type-Options: nosniff\r\n"));
	assert_non_null(strstr(h, "Referrer-Policy: no-referrer\r\n"));
	assert_null(strstr(h, "unsafe"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes_have_files),
		cmocka_unit_test(test_page_has_nothing_inline),
		cmocka_unit_test(test_security_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
