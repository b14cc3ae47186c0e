/* SPDX-License-Identifier: MIT */
/*
 * The ledger's records as plain structs, shared by the pure ledger and by
 * the store that persists them. Amounts are exact int64 GPU-seconds.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What is stored; reserved/active/completed are derived from the clock. */
enum alloc_stored {
	ALLOC_BOOKED,
	ALLOC_CANCELLED,
	ALLOC_RELEASED,
	ALLOC_REVOKED,
};

enum alloc_state {
	AS_RESERVED,
	AS_ACTIVE,
	AS_COMPLETED,
	AS_CANCELLED,
	AS_RELEASED,
	AS_REVOKED,
};

struct alloc {
	char id[24];		/* "A-000042" */
	int64_t num;		/* 42 */
	char *consortium;
	char *pool;
	char *gpu;
	char *phase;
	int64_t gpus;
	int64_t start;
	int64_t end;		/* current end (moved by release/cut) */
	int64_t booked_end;	/* end as first booked */
	enum alloc_stored stored;
	int64_t cost;		/* gpus * (end - start), 0 once cancelled/revoked */
	char *note;
	int64_t created;	/* journal time of the reserve entry */
	int64_t seq;		/* seq of the reserve entry */
};

struct balance {
	char *consortium;
	char *phase;
	char *gpu;
	int64_t granted;
	int64_t committed;
	int64_t expired;
	int64_t max_gpus;	/* 0 = no cap */
	int64_t used;		/* metered GPU-seconds (usage entries) */
};

/*
 * One job's metered use, as a usage entry records it and the store's usage
 * table keeps it: unique by (source, job_id).
 */
struct usage {
	char *source;
	char *job_id;
	char *consortium;
	char *phase;
	char *gpu;
	char *allocation;	/* NULL: charged to the key only */
	int64_t gpu_seconds;	/* >= 0 */
	int64_t end;		/* when the job ended */
	int64_t seq;		/* its usage entry */
};

/*
 * What a consortium's bookings in one pool, over the whole history, ask of
 * the configuration: the pool, of that GPU model, and the consortium, joined
 * no later than its first booking that was not cancelled.
 */
struct alloc_ref {
	const char *consortium;
	const char *pool;
	const char *gpu;
	int64_t first_start;	/* TIME_MAX when every booking was cancelled */
};

enum cstatus {
	CS_ACTIVE,
	CS_ELIMINATED,
};

/*
 * One elimination: out from its effective instant until the reinstatement
 * that ended it, [from, until), until = INT64_MAX (TIME_MAX) while none has.
 */
struct cs_span {
	int64_t from;
	int64_t until;
};

struct cstate {
	char *consortium;
	enum cstatus status;
	int64_t since;		/* effective instant of the last eliminate/reinstate */
	int64_t designation_until;	/* TIME_MIN when none */
	int64_t active_from;	/* the last reinstatement; TIME_MIN: since joined */
	/*
	 * Every elimination, in order (from the journal): the consortium is
	 * active from joined on except inside these, so a reinstatement never
	 * shortens an active stretch before the elimination it ends. Owned.
	 */
	struct cs_span *spans;
	size_t n_spans;
};

const char *alloc_stored_name(enum alloc_stored s);
int alloc_stored_parse(const char *s, enum alloc_stored *out);
const char *alloc_state_name(enum alloc_state s);
int alloc_state_parse(const char *s, enum alloc_state *out);
/*
 * The state a person sees at instant now. An allocation cut by an
 * elimination that takes effect later is reserved or active until then.
 */
enum alloc_state alloc_state_at(const struct alloc *a, int64_t now);

void alloc_clear(struct alloc *a);
void alloc_copy(struct alloc *dst, const struct alloc *src);
void balance_clear(struct balance *b);
void usage_clear(struct usage *u);
void usage_copy(struct usage *dst, const struct usage *src);
void cstate_clear(struct cstate *c);
void cstate_copy(struct cstate *dst, const struct cstate *src);
/*
 * What a person sees at instant now: eliminated inside a span, else active.
 * *since (may be NULL) is when that began: the span's start, or the end of
 * the last span before now (TIME_MIN: active since it joined).
 */
enum cstatus cstate_status_at(const struct cstate *c, int64_t now, int64_t *since);
/* The span that is running at now or lies ahead of it, or NULL. */
const struct cs_span *cstate_next_span(const struct cstate *c, int64_t now);
