/* SPDX-License-Identifier: MIT */
/*
 * The API's error codes, from the one table in daemon/error.def: each
 * code's wire name, HTTP status and the CLI's exit code, and the one
 * builder of the error body {"error":{"code","message","details"}} that
 * the ledger's refusals, the API, the server and the writer all answer
 * with. Shared by the daemon and the CLI.
 */
#pragma once

#include <jansson.h>

#include "daemon/util.h"

enum error_code {
	ERR_NONE = 0,
#define ERROR(id, name, status, exit, why) ERR_##id,
#include "daemon/error.def"
#undef ERROR
	ERR__COUNT
};

/* The wire name ("quota_exceeded"); static. */
const char *error_name(enum error_code code);
/* The HTTP status it is answered with. */
int error_status(enum error_code code);
/* The CLI's exit code for it. */
int error_exit(enum error_code code);
/* One line on when it is returned; static. */
const char *error_why(enum error_code code);
/* The code of a wire name, or ERR_NONE for a name not in the table. */
enum error_code error_lookup(const char *name);

/*
 * The error body. Takes details (an object, or NULL for {}); the caller
 * json_decref()s the result. message need not be UTF-8 (it may quote what
 * a client sent): a byte that is not becomes U+FFFD, so there always is a
 * body.
 */
json_t *error_json(enum error_code code, const char *message, json_t *details);
/* The same, as compact JSON text; the caller frees it. */
char *error_body(enum error_code code, const char *message, json_t *details);
