/* SPDX-License-Identifier: MIT */
/*
 * The ledger's records: the names that the API, the CLI and the database
 * use for an allocation's stored and visible states, the derivation of
 * the visible state from the clock, and deep copies of the records, so
 * that the ledger's in-memory state never points into a store row.
 */
#include "daemon/model.h"
#include "daemon/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const stored_names[] = {
	[ALLOC_BOOKED] = "booked",
	[ALLOC_CANCELLED] = "cancelled",
	[ALLOC_RELEASED] = "released",
	[ALLOC_REVOKED] = "revoked",
};

static const char *const state_names[] = {
	[AS_RESERVED] = "reserved",
	[AS_ACTIVE] = "active",
	[AS_COMPLETED] = "completed",
	[AS_CANCELLED] = "cancelled",
	[AS_RELEASED] = "released",
	[AS_REVOKED] = "revoked",
};

static int name_find(const char *const *names, unsigned n, const char *s)
{
	if (s == NULL)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	}
	return -EINVAL;
}

const char *alloc_stored_name(enum alloc_stored s)
{
	return (unsigned)s < ARRAY_SIZE(stored_names) ? stored_names[s] : "?";
}

int alloc_stored_parse(const char *s, enum alloc_stored *out)
{
	int i = name_find(stored_names, ARRAY_SIZE(stored_names), s);
	if (i < 0)
		return i;
	*out = (enum alloc_stored)i;
	return 0;
}

const char *alloc_state_name(enum alloc_state s)
{
	return (unsigned)s < ARRAY_SIZE(state_names) ? state_names[s] : "?";
}

int alloc_state_parse(const char *s, enum alloc_state *out)
{
	int i = name_find(state_names, ARRAY_SIZE(state_names), s);
	if (i < 0)
		return i;
	*out = (enum alloc_state)i;
	return 0;
}

enum alloc_state alloc_state_at(const struct alloc *a, int64_t now)
{
	switch (a->stored) {
	case ALLOC_CANCELLED:
		return AS_CANCELLED;
	case ALLOC_RELEASED:
		return AS_RELEASED;
	case ALLOC_REVOKED:
		/* cut at an elimination still ahead: it runs until its new end */
		if (a->end > a->start && now < a->end)
			break;
		return AS_REVOKED;
	case ALLOC_BOOKED:
		break;
	}
	if (now < a->start)
		return AS_RESERVED;
	if (now < a->end)
		return AS_ACTIVE;
	return AS_COMPLETED;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

void alloc_clear(struct alloc *a)
{
	free(a->consortium);
	free(a->pool);
	free(a->gpu);
	free(a->phase);
	free(a->note);
	memset(a, 0, sizeof(*a));
}

void alloc_copy(struct alloc *dst, const struct alloc *src)
{
	*dst = *src;
	dst->consortium = dup_or_null(src->consortium);
	dst->pool = dup_or_null(src->pool);
	dst->gpu = dup_or_null(src->gpu);
	dst->phase = dup_or_null(src->phase);
	dst->note = dup_or_null(src->note);
}

void balance_clear(struct balance *b)
{
	free(b->consortium);
	free(b->phase);
	free(b->gpu);
	memset(b, 0, sizeof(*b));
}

void usage_clear(struct usage *u)
{
	free(u->source);
	free(u->job_id);
	free(u->consortium);
	free(u->phase);
	free(u->gpu);
	free(u->allocation);
	memset(u, 0, sizeof(*u));
}

void usage_copy(struct usage *dst, const struct usage *src)
{
	*dst = *src;
	dst->source = dup_or_null(src->source);
	dst->job_id = dup_or_null(src->job_id);
	dst->consortium = dup_or_null(src->consortium);
	dst->phase = dup_or_null(src->phase);
	dst->gpu = dup_or_null(src->gpu);
	dst->allocation = dup_or_null(src->allocation);
}

void cstate_clear(struct cstate *c)
{
	free(c->consortium);
	free(c->spans);
	memset(c, 0, sizeof(*c));
}

void cstate_copy(struct cstate *dst, const struct cstate *src)
{
	*dst = *src;
	dst->consortium = dup_or_null(src->consortium);
	dst->spans = NULL;
	if (src->n_spans > 0) {
		dst->spans = xreallocarray(NULL, src->n_spans, sizeof(*dst->spans));
		memcpy(dst->spans, src->spans, src->n_spans * sizeof(*dst->spans));
	}
}

enum cstatus cstate_status_at(const struct cstate *c, int64_t now, int64_t *since)
{
	int64_t began = INT64_MIN;

	for (size_t i = 0; c != NULL && i < c->n_spans; i++) {
		const struct cs_span *sp = &c->spans[i];
		if (sp->from > now)
			break;
		if (now < sp->until) {
			if (since)
				*since = sp->from;
			return CS_ELIMINATED;
		}
		began = sp->until;
	}
	if (since)
		*since = began;
	return CS_ACTIVE;
}

const struct cs_span *cstate_next_span(const struct cstate *c, int64_t now)
{
	for (size_t i = 0; c != NULL && i < c->n_spans; i++)
		if (c->spans[i].until > now && c->spans[i].from < c->spans[i].until)
			return &c->spans[i];
	return NULL;
}
