/* SPDX-License-Identifier: MIT */
/*
 * Balances as they stood at a past instant (GET /v1/quota?at=T), folded
 * from the journal alone: every entry written at or before T moves its
 * balance by its deltas, exactly as the ledger did then, and the
 * allocations those entries made say what had been consumed by T. The
 * caches of the store hold only the present, so nothing else can answer.
 * Pure: no store, no loop; the caller feeds the entries in seq order.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "daemon/config.h"
#include "daemon/journal.h"
#include "daemon/model.h"

struct history;

/* A fold of the journal up to and including instant at. Free with history_free(). */
struct history *history_new(int64_t at);
void history_free(struct history *h);

/* Folds e in when it was written at or before the instant; later entries are ignored. */
void history_entry(struct history *h, const struct jentry *e);

struct history_row {
	struct balance b;	/* owned by the history */
	int64_t consumed;	/* GPU-seconds of committed time that had passed at the instant */
};

/*
 * The balances at the instant in display order (consortium, phase and GPU
 * model in the order cfg lists them), valid until the history is freed.
 */
size_t history_rows(struct history *h, const struct config *cfg,
		    const struct history_row *const **out);
