/* SPDX-License-Identifier: MIT */
/*
 * The error table (daemon/error.def) as data, and the error body.
 */
#include "daemon/error.h"
#include "daemon/grammar.h"

#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	int status;
	int exit;
	const char *why;
} errors[ERR__COUNT] = {
	[ERR_NONE] = {"ok", 200, 0, "no error"},
#define ERROR(id, nm, st, ex, wh) [ERR_##id] = {nm, st, ex, wh},
#include "daemon/error.def"
#undef ERROR
};

static unsigned index_of(enum error_code code)
{
	return (unsigned)code < ERR__COUNT ? (unsigned)code : ERR_NONE;
}

const char *error_name(enum error_code code)
{
	return errors[index_of(code)].name;
}

int error_status(enum error_code code)
{
	return errors[index_of(code)].status;
}

int error_exit(enum error_code code)
{
	return errors[index_of(code)].exit;
}

const char *error_why(enum error_code code)
{
	return errors[index_of(code)].why;
}

enum error_code error_lookup(const char *name)
{
	for (unsigned i = 1; i < ERR__COUNT; i++)
		if (strcmp(errors[i].name, name) == 0)
			return (enum error_code)i;
	return ERR_NONE;
}

/*
 * A message that quotes what a client sent may not be UTF-8 (a path, a
 * query value): each byte that is not becomes U+FFFD, so the body is still
 * JSON. Returns a malloc'd copy, or NULL when message is fine as it is.
 */
static char *scrub(const char *message)
{
	size_t len = strlen(message);
	if (utf8_valid(message, len))
		return NULL;
	char *out = malloc(3 * len + 1), *o = out;
	if (out == NULL)
		abort();
	for (size_t i = 0, n; i < len; i += n) {
		uint32_t cp;
		n = utf8_next(message + i, len - i, &cp);
		if (n == 0) {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			n = 1;
		} else {
			memcpy(o, message + i, n);
			o += n;
		}
	}
	*o = '\0';
	return out;
}

json_t *error_json(enum error_code code, const char *message, json_t *details)
{
	char *clean = scrub(message);
	json_t *o = json_pack("{s:{s:s, s:s, s:o}}", "error", "code", error_name(code),
			      "message", clean ? clean : message,
			      "details", details ? details : json_object());
	free(clean);
	return o;
}

char *error_body(enum error_code code, const char *message, json_t *details)
{
	json_t *o = error_json(code, message, details);
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		abort();	/* only out-of-memory makes json_dumps fail here */
	return s;
}
