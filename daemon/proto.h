/* SPDX-License-Identifier: MIT */
/*
 * The requests of the API and the fields they carry, from the one list in
 * daemon/proto.def, as enums and a read-only table. The daemon routes and
 * validates by it; the CLI builds its paths, query strings and bodies by
 * it. Shared by both binaries.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum proto_type { PT_STR, PT_INT, PT_BOOL, PT_TIME };

enum proto_field {
	FIELD_NONE = 0,
#define FIELD(id, name, type) FIELD_##id,
#include "daemon/proto.def"
#undef FIELD
	FIELD__COUNT
};

enum proto_req {
#define REQUEST(id, fn, method, path, role, query, body) PROTO_##id,
#include "daemon/proto.def"
#undef REQUEST
	PROTO__COUNT
};

/* Least role, by name; the daemon maps it to its enum role. PR_NONE:
 * anyone, without credentials. Ordered: each role may do what the ones
 * before it may (an agent reads what an operator reads, and reports
 * metered use). */
enum proto_role { PR_NONE, PR_CONSORTIUM, PR_OPERATOR, PR_AGENT, PR_ADMIN };

#define PROTO_MAX_FIELDS 12
#define PROTO_MAX_PARAMS 2

struct proto_body_field {
	enum proto_field field;
	bool required;
};

struct proto_request {
	const char *name;		/* "GRANT" */
	const char *method;		/* "GET", "POST" */
	const char *path;		/* "/v1/allocations/" "*" "/cancel" */
	enum proto_role role;
	/* both end at FIELD_NONE */
	enum proto_field query[PROTO_MAX_FIELDS];
	struct proto_body_field body[PROTO_MAX_FIELDS];
};

/* The request's row; static. */
const struct proto_request *proto_request(enum proto_req r);
/* A field's wire name and type. */
const char *proto_field_name(enum proto_field f);
enum proto_type proto_field_type(enum proto_field f);
/* The field of a wire name, or FIELD_NONE. */
enum proto_field proto_field_lookup(const char *name);
/* Whether request r takes f in its query string, or in its body. */
bool proto_has_query(enum proto_req r, enum proto_field f);
bool proto_has_body(enum proto_req r, enum proto_field f);
/* The role's name: "anyone", "consortium", "operator", "agent", "admin"; static. */
const char *proto_role_name(enum proto_role role);

/*
 * Matches method and path against the table. Returns the request, with
 * the "*" segments copied into params (malloc'd, the caller frees them);
 * or -1 with *path_known telling whether another method has that path.
 */
int proto_match(const char *method, const char *path, char *params[PROTO_MAX_PARAMS],
		bool *path_known);
