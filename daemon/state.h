/* SPDX-License-Identifier: MIT */
/*
 * Bringing the ledger and the store together without an event loop:
 * building the in-memory ledger from the database (start-up, and reload
 * after a failed commit, SIGHUP), auditing the database (hash chain and
 * every cached table against the journal), and persisting a
 * batch of entries in one transaction.
 */
#pragma once

#include "daemon/audit.h"
#include "daemon/config.h"
#include "daemon/ledger.h"
#include "daemon/store.h"

/*
 * A ledger over cfg holding the store's head, balances, consortium states
 * and the allocations still live at now. The one check of a configuration
 * against a database, for the start-up and for SIGHUP alike: cfg must
 * carry everything the ledger refers to, over the whole history of the
 * allocations table, and pass ledger_check_config(). Returns 0, or a
 * negative errno with *cause malloc'd.
 */
int state_load(struct store *s, const struct config *cfg, int64_t now,
	       struct ledger **out, char **cause);

/*
 * Recomputes everything from the journal and compares. When l is given, its
 * head (what the daemon believes it wrote) must be the journal's head too.
 * Returns 0 with *out (caller frees with audit_free), or a negative errno
 * when the store could not be read (with *cause).
 */
int state_audit(struct store *s, const struct ledger *l, struct audit **out,
		char **cause);

/*
 * The start-up's audit: with an audit checkpoint whose entry still has the
 * hash it was audited with, only the hash chain after it (*from = its seq);
 * else everything, as state_audit() (*from = 0). Returns as state_audit().
 */
int state_audit_start(struct store *s, struct audit **out, int64_t *from, char **cause);
/*
 * After an audit of s: a sound one moves the checkpoint to the last entry
 * it audited, one that found a problem removes it (so that the next
 * start-up audits everything). 0 or a negative errno.
 */
int state_checkpoint(struct store *s, const struct audit *a);
/*
 * The full audit on a read-only connection of its own to the database at
 * path, in one read snapshot, so that it may run on another thread while
 * the daemon commits: verify. committed is the daemon's committed head
 * when it was asked; a journal that ends before it lost entries.
 */
int state_audit_snapshot(const char *path, int64_t committed, struct audit **out,
			 char **cause);

/* One idempotency record to write with a batch. */
struct idem_rec {
	char *key;
	uint8_t body_hash[HASH_LEN];
	int status;
	char *response;		/* kept in the batch for retries within it */
	int64_t time;
	int64_t seq;		/* > 0: the store keeps this entry's seq, not response */
};

/*
 * Writes entries (notes[i] is the note of a reserve entry, or NULL; notes
 * may be NULL) and idempotency records in one transaction. Returns 0, or a
 * negative errno after rolling back.
 */
int state_commit(struct store *s, const struct jentry *entries, size_t n,
		 char *const *notes, const struct idem_rec *idem, size_t n_idem);
