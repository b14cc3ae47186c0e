/* SPDX-License-Identifier: MIT */
/*
 * The protocol table (daemon/proto.def) as data, and path matching.
 */
#include "daemon/proto.h"
#include "daemon/util.h"

#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	enum proto_type type;
} fields[FIELD__COUNT] = {
	[FIELD_NONE] = {"", PT_STR},
#define FIELD(id, nm, ty) [FIELD_##id] = {nm, PT_##ty},
#include "daemon/proto.def"
#undef FIELD
};

#define Q(f) FIELD_##f,
#define REQ(f) {FIELD_##f, true},
#define OPT(f) {FIELD_##f, false},
/* every POST may be a dry run: the one place its field joins the bodies */
#define DRY_RUN_POST {FIELD_DRY_RUN, false},
#define DRY_RUN_GET
static const struct proto_request requests[PROTO__COUNT] = {
#define REQUEST(id, fn, m, p, role, query, body) \
	[PROTO_##id] = {#id, #m, p, PR_##role, {query FIELD_NONE}, {body DRY_RUN_##m {FIELD_NONE, false}}},
#include "daemon/proto.def"
#undef REQUEST
};
#undef Q
#undef REQ
#undef OPT
#undef DRY_RUN_POST
#undef DRY_RUN_GET

const struct proto_request *proto_request(enum proto_req r)
{
	if ((unsigned)r >= PROTO__COUNT)
		abort();
	return &requests[r];
}

const char *proto_field_name(enum proto_field f)
{
	return (unsigned)f < FIELD__COUNT ? fields[f].name : "";
}

enum proto_type proto_field_type(enum proto_field f)
{
	return (unsigned)f < FIELD__COUNT ? fields[f].type : PT_STR;
}

enum proto_field proto_field_lookup(const char *name)
{
	for (unsigned i = 1; i < FIELD__COUNT; i++)
		if (strcmp(fields[i].name, name) == 0)
			return (enum proto_field)i;
	return FIELD_NONE;
}

bool proto_has_query(enum proto_req r, enum proto_field f)
{
	const enum proto_field *q = proto_request(r)->query;
	for (; *q != FIELD_NONE; q++)
		if (*q == f)
			return true;
	return false;
}

bool proto_has_body(enum proto_req r, enum proto_field f)
{
	const struct proto_body_field *b = proto_request(r)->body;
	for (; b->field != FIELD_NONE; b++)
		if (b->field == f)
			return true;
	return false;
}

const char *proto_role_name(enum proto_role role)
{
	switch (role) {
	case PR_NONE: return "anyone";
	case PR_CONSORTIUM: return "consortium";
	case PR_OPERATOR: return "operator";
	case PR_AGENT: return "agent";
	case PR_ADMIN: return "admin";
	}
	return "?";
}

/* Matches one pattern; on success params holds the "*" segments. */
static bool match(const char *pattern, const char *path, char **params)
{
	size_t np = 0;
	while (*pattern && *path) {
		if (*pattern == '*') {
			size_t len = strcspn(path, "/");
			if (len == 0 || np == PROTO_MAX_PARAMS)
				goto fail;
			params[np++] = xstrndup(path, len);
			path += len;
			pattern++;
		} else if (*pattern++ != *path++) {
			goto fail;
		}
	}
	if (*pattern == '\0' && *path == '\0')
		return true;
fail:
	while (np > 0) {
		free(params[--np]);
		params[np] = NULL;
	}
	return false;
}

int proto_match(const char *method, const char *path, char *params[PROTO_MAX_PARAMS],
		bool *path_known)
{
	*path_known = false;
	for (unsigned i = 0; i < PROTO__COUNT; i++) {
		char *tmp[PROTO_MAX_PARAMS] = {0};
		if (!match(requests[i].path, path, tmp))
			continue;
		if (strcmp(requests[i].method, method) == 0) {
			memcpy(params, tmp, sizeof(tmp));
			return (int)i;
		}
		*path_known = true;
		for (size_t k = 0; k < PROTO_MAX_PARAMS; k++)
			free(tmp[k]);
	}
	return -1;
}
