/* SPDX-License-Identifier: MIT */
/*
 * The ledger: the in-memory state of the books and every rule that guards
 * them (DESIGN.md rules 1-9). Each operation checks the whole request
 * against the state first and either refuses with a typed error, changing
 * nothing, or applies it and returns the journal entries that record it
 * (sealed into the hash chain). Persisting those entries is the caller's
 * job. The ledger knows nothing of libuv, HTTP or SQL, so its tests need
 * neither a loop nor a file.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "daemon/config.h"
#include "daemon/error.h"
#include "daemon/journal.h"
#include "daemon/model.h"

/*
 * Why an operation was refused. The code is one of daemon/error.def's, so
 * the API's status and the CLI's exit code follow from it (error_status(),
 * error_exit()).
 */
struct ledger_error {
	enum error_code code;	/* ERR_NONE until an operation fails */
	char *message;		/* malloc'd */
	json_t *details;	/* object or NULL; owned */
};

void ledger_error_clear(struct ledger_error *err);

/* Who asks and when: stamped on every entry an operation makes. */
struct ledger_ctx {
	int64_t now;
	const char *actor;
	const char *request_id;
};

struct ledger;

/*
 * A fresh, empty ledger over cfg (borrowed: it must outlive the ledger,
 * or be replaced with ledger_set_config()).
 */
struct ledger *ledger_new(const struct config *cfg);
void ledger_free(struct ledger *l);
/*
 * A deep copy of l over the same configuration (a dry run works on one and
 * throws it away): it answers every operation exactly as l would. O(the
 * live state), not the history. Caller frees with ledger_free().
 */
struct ledger *ledger_clone(const struct ledger *l);
/*
 * The configuration the rules read: the one given, with the phases as the
 * journal's phase moves left them (pointers into the given one but for the
 * phases). ledger_file_config() is the one given, the file's dates.
 */
const struct config *ledger_config(const struct ledger *l);
const struct config *ledger_file_config(const struct ledger *l);

/*
 * Whether cfg can carry what the ledger holds: every consortium, phase and
 * GPU model of a balance, every consortium with a state; every live
 * allocation keeps its pool (of its GPU model), its phase around it, its
 * consortium joined by its start, and room in the pool's capacity. 0, or
 * -EINVAL with err. state_load() runs it on every ledger it builds, so the
 * start-up and SIGHUP refuse the same configurations.
 */
int ledger_check_config(struct ledger *l, const struct config *cfg,
			struct ledger_error *err);
/*
 * Swaps in a new configuration after ledger_check_config(); on a refusal
 * nothing changes. The daemon's SIGHUP instead builds a new ledger from the
 * store with state_load(), which also checks the history that is no longer
 * in memory.
 */
int ledger_set_config(struct ledger *l, const struct config *cfg,
		      struct ledger_error *err);

/*
 * Loading persisted state (start-up and reload after a failed commit):
 * the journal head, balances, consortium states, and live allocations
 * only. Returns 0, or -EINVAL with *cause (malloc'd) when the record does
 * not fit the configuration (an unknown pool, say).
 */
void ledger_load_head(struct ledger *l, int64_t seq, const uint8_t hash[HASH_LEN],
		      int64_t max_alloc_num);
/* A consortium's view chain: its entry count, last seq and view hash. */
void ledger_load_view(struct ledger *l, const char *consortium, int64_t entries,
		      int64_t last_seq, const uint8_t view_hash[HASH_LEN]);
int ledger_load_balance(struct ledger *l, const struct balance *b, char **cause);
int ledger_load_cstate(struct ledger *l, const struct cstate *c, char **cause);
int ledger_load_alloc(struct ledger *l, const struct alloc *a, char **cause);
/*
 * What the whole history of bookings asks of the configuration (also the
 * finished and cancelled ones, which are not loaded): the pool, with the
 * same GPU model, and the consortium, joined by its first booking.
 */
int ledger_load_alloc_ref(struct ledger *l, const struct alloc_ref *r, char **cause);

int64_t ledger_head_seq(const struct ledger *l);
void ledger_head_hash(const struct ledger *l, uint8_t hash[HASH_LEN]);
/* The head of a consortium's view chain, or NULL before its first entry. */
const struct jview *ledger_view(const struct ledger *l, const char *consortium);

/* Operations. On success they append sealed entries to out. */
struct grant_req {
	const char *consortium;
	const char *phase;
	const char *gpu;
	int64_t gpu_seconds;	/* > 0 grant, < 0 adjust, 0 cap only */
	int64_t max_gpus;	/* -1 = leave as is; 0 = no cap */
	const char *reason;
	bool oversubscribe;	/* allowed past the procured budget (recorded) */
};
int ledger_grant(struct ledger *l, const struct ledger_ctx *ctx,
		 const struct grant_req *req, struct jlist *out,
		 struct ledger_error *err);

/*
 * Moves available quota of (phase, gpu) from one consortium, or from the
 * program reserve (from = CONFIG_RESERVE), to another: a transfer_out and
 * a transfer_in entry, or a typed refusal and nothing.
 */
struct transfer_req {
	const char *from;
	const char *to;
	const char *phase;
	const char *gpu;
	int64_t gpu_seconds;	/* > 0 */
	const char *reason;
	bool oversubscribe;	/* from the reserve past the procured budget */
};
int ledger_transfer(struct ledger *l, const struct ledger_ctx *ctx,
		    const struct transfer_req *req, struct jlist *out,
		    struct ledger_error *err);

/*
 * The program's budget of one (phase, GPU model): procured = the GPUs of
 * the model's pools times the seconds each is available inside the phase
 * (leases that start or end count); granted and committed summed over the
 * consortia. The reserve is procured - granted (negative when
 * oversubscribed).
 */
struct budget_row {
	const char *phase;	/* borrowed from the configuration */
	const char *gpu;
	int64_t procured;
	int64_t granted;
	int64_t committed;
};
/*
 * Every (phase, model) of the configuration, in phase order and then the
 * order models first appear among the pools. *out is malloc'd (caller
 * frees); returns its length.
 */
size_t ledger_budget(const struct ledger *l, struct budget_row **out);

/*
 * A config entry when the configuration's program structure
 * (config_structure()) differs from last, the structure of the journal's
 * last config entry (NULL: none yet, as at a database's first start):
 * sha256 is the file's (64 hex digits), actor who applied it (NULL:
 * unknown). Returns true when it appended one.
 */
bool ledger_config_entry(struct ledger *l, const struct ledger_ctx *ctx, const char *sha256,
			 const json_t *last, struct jlist *out);

struct alloc_req {
	const char *consortium;
	const char *pool;	/* or NULL with gpu set */
	const char *gpu;
	int64_t gpus;
	int64_t start;
	int64_t end;
	bool earliest;
	const char *note;
};
/* On success *id_out is the new allocation's id (static in the ledger until the next call). */
int ledger_allocate(struct ledger *l, const struct ledger_ctx *ctx,
		    const struct alloc_req *req, struct jlist *out,
		    const char **id_out, struct ledger_error *err);
int ledger_cancel(struct ledger *l, const struct ledger_ctx *ctx, const char *id,
		  const char *reason, struct jlist *out, struct ledger_error *err);
/* at = TIME_MIN means now. */
int ledger_release(struct ledger *l, const struct ledger_ctx *ctx, const char *id,
		   int64_t at, const char *reason, struct jlist *out,
		   struct ledger_error *err);
/*
 * A change of an allocation's shape: all of a reservation, only the end of
 * an active one, re-checked by rules 1-5 with its own old shape not
 * counted; one modify entry with the cost delta. Unchanged: pool NULL,
 * gpus 0, start and end TIME_MIN.
 */
struct modify_req {
	const char *id;
	const char *pool;
	int64_t gpus;
	int64_t start;
	int64_t end;
	const char *reason;
};
int ledger_modify(struct ledger *l, const struct ledger_ctx *ctx,
		  const struct modify_req *req, struct jlist *out, struct ledger_error *err);
/*
 * A pool cut: from at (not before now) the pool holds at most gpus (whole
 * nodes; fewer than it holds then). One pool_cut entry, then the revoke
 * entries of the allocations that no longer fit, newest first: cut at at,
 * or revoked whole when they start there or later, with refunds.
 */
struct pool_cut_req {
	const char *pool;
	int64_t at;
	int64_t gpus;
	const char *reason;
};
int ledger_pool_cut(struct ledger *l, const struct ledger_ctx *ctx,
		    const struct pool_cut_req *req, struct jlist *out, struct ledger_error *err);
/* A pool_cut entry of the journal, at start-up and reload. 0, or -EINVAL with *cause. */
int ledger_load_pool_cut(struct ledger *l, const char *pool, int64_t at, int64_t gpus,
			 char **cause);
/*
 * A phase move: the phase's end, and the start of the next phase when it
 * began at that end, move to end (after the start, not before now). The
 * allocations that would cross it are refused (crosses_phase, details
 * .allocations) unless cut: then those of the phase running past it end
 * there, the others crossing it are revoked whole, with refunds. Quota
 * that expired at the old end is restored when the end moves later
 * (an expire entry with a negative amount) and expires at the new one. One
 * phase entry first; from then on the journal's dates override the file's.
 */
struct phase_move_req {
	const char *phase;
	int64_t end;
	bool cut;
	const char *reason;
};
int ledger_phase_move(struct ledger *l, const struct ledger_ctx *ctx,
		      const struct phase_move_req *req, struct jlist *out,
		      struct ledger_error *err);
/* A phase entry of the journal, at start-up and reload. 0, or -EINVAL with *cause. */
int ledger_load_phase_move(struct ledger *l, const char *phase, int64_t end, const char *next,
			   char **cause);
int ledger_eliminate(struct ledger *l, const struct ledger_ctx *ctx,
		     const char *consortium, int64_t effective, const char *reason,
		     struct jlist *out, struct ledger_error *err);
int ledger_reinstate(struct ledger *l, const struct ledger_ctx *ctx,
		     const char *consortium, int64_t effective, const char *reason,
		     struct jlist *out, struct ledger_error *err);

/*
 * Metered use: GPU-seconds a cluster measured for one job, charged to a
 * (consortium, phase, gpu) key, and to an allocation of it when the job
 * ran in one (the caller has found the allocation, live or in the
 * store, and gives its key). Moves only the key's used figure; whether
 * (source, job_id) was reported before is the caller's to ask (the store
 * holds that history). One usage entry.
 */
struct usage_req {
	const char *source;
	const char *job_id;
	const char *consortium;
	const char *phase;
	const char *gpu;
	const char *allocation;	/* or NULL */
	const char *pool;	/* the allocation's pool, or NULL */
	int64_t gpu_seconds;	/* >= 0 */
	int64_t end;		/* when the job ended */
};
int ledger_usage(struct ledger *l, const struct ledger_ctx *ctx,
		 const struct usage_req *req, struct jlist *out,
		 struct ledger_error *err);

/*
 * Time passing: writes the expire entries of phases that ended at or
 * before ctx->now and forgets allocations that completed before it (they
 * stay in the store). Returns the number of entries appended.
 */
int ledger_tick(struct ledger *l, const struct ledger_ctx *ctx, struct jlist *out);
/*
 * The next instant after now at which something is due (a phase end, an
 * allocation start or end), or TIME_MAX.
 */
int64_t ledger_next_due(const struct ledger *l, int64_t now);
/*
 * The live allocations that start or end exactly at t, in id order, not
 * yet passed by a ledger_tick() at t or later (valid until the next
 * operation). O(k log n) for the k instants due.
 */
size_t ledger_due_at(struct ledger *l, int64_t t, const struct alloc *const **out);

/* Reads. */
const struct balance *ledger_balance(const struct ledger *l, const char *consortium,
				     const char *phase, const char *gpu);
/* consumed GPU-seconds of a key at now (committed minus the future part). */
int64_t ledger_consumed(const struct ledger *l, const struct balance *b, int64_t now);
/* Balances in display order (consortium config order, phase order, gpu). */
size_t ledger_balances(const struct ledger *l, const struct balance ***out);
const struct cstate *ledger_cstate(const struct ledger *l, const char *consortium);
/* A live allocation by id, or NULL (history is in the store). */
const struct alloc *ledger_alloc(const struct ledger *l, const char *id);
/* Live allocations, in id order. */
size_t ledger_allocs(const struct ledger *l, const struct alloc *const **out);
/* GPUs of pool booked at instant t (its timeline's level; O(log n)). */
int64_t ledger_pool_booked(const struct ledger *l, const char *pool, int64_t t);
/* GPUs of pool usable at instant t: the configuration's, less its cuts. */
int64_t ledger_pool_capacity(const struct ledger *l, const char *pool, int64_t t);
/* The pool's cuts in order (up to max into at and gpus); returns how many it has. */
size_t ledger_pool_cuts(const struct ledger *l, const char *pool, int64_t *at, int64_t *gpus,
			size_t max);
