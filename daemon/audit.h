/* SPDX-License-Identifier: MIT */
/*
 * The audit: recomputes the cached tables from the journal (balances,
 * allocations, consortium states), checks its hash chain, then compares
 * what it found with the cached rows. It is fed entry by entry and row by
 * row, so that the journal never has to be in memory at once (what it
 * keeps is one record per balance, allocation and consortium state), and
 * it knows nothing of the store:
 * state_audit() walks the database and feeds it, a test can feed it a list.
 * It only collects problems; deciding what to do about them (refuse to
 * start, answer /v1/verify) is the caller's business.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "daemon/journal.h"
#include "daemon/model.h"

struct audit;

/* A fresh audit; the caller frees it with audit_free(). */
struct audit *audit_new(void);
void audit_free(struct audit *a);
/*
 * An audit of the hash chain only, of the entries after the checkpoint
 * (seq, hash): seq + 1 must follow hash, and each consortium's view goes
 * on from the head audit_seed_view() gives it. It recomputes no cached
 * table (those build on every entry before the checkpoint): feed it
 * entries only, and no audit_finish(). audit_entries() counts from seq.
 */
struct audit *audit_new_tail(int64_t seq, const uint8_t hash[HASH_LEN]);
void audit_seed_view(struct audit *a, const char *consortium, int64_t entries,
		     int64_t last_seq, const uint8_t head[HASH_LEN]);
/* The last entry fed: its seq and hash (0 and zeros, or the checkpoint's, before any). */
void audit_head(const struct audit *a, int64_t *seq, uint8_t hash[HASH_LEN]);

/* The next journal entry, in seq order. */
void audit_entry(struct audit *a, const struct jentry *e);
/*
 * Compare a cached row with what the journal says: a balance, an
 * allocation (every column: consortium, pool, gpu, phase, gpus, start,
 * end, booked end, state, cost, note, creation), a consortium state.
 */
void audit_balance(struct audit *a, const struct balance *b);
void audit_alloc(struct audit *a, const struct alloc *al);
void audit_cstate(struct audit *a, const struct cstate *cs);
/* A cached row of metered use (the store's usage table). */
void audit_usage(struct audit *a, const struct usage *u);
/*
 * A cached view head (the store's view_heads) against the consortium's
 * chain as the entries fed give it; after every entry was fed.
 * audit_finish_views() then reports the chains no cached head matched
 * (the caller that fed the heads calls it, full audit or tail alike).
 */
void audit_view(struct audit *a, const char *consortium, int64_t entries, int64_t last_seq,
		const uint8_t head[HASH_LEN]);
void audit_finish_views(struct audit *a);
/* Every consortium's view head as the entries fed so far leave it (valid while a lives). */
const struct jviews *audit_views(const struct audit *a);
/* A problem found outside the journal (the caller's own checks). */
void audit_note(struct audit *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* After all rows were compared: reports rows the journal has but the cache lacks. */
void audit_finish(struct audit *a);

/* Whether no problem was found. */
bool audit_ok(const struct audit *a);
/* Journal entries fed so far. */
int64_t audit_entries(const struct audit *a);
/* The first entry found wrong, or 0 when none is known. */
int64_t audit_first_bad_seq(const struct audit *a);
/* JSON array of problem strings, at most 100 (new reference: json_decref it). */
json_t *audit_problems(const struct audit *a);
