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
