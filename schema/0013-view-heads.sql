-- SPDX-License-Identifier: MIT
-- Each consortium's view head (its entry count, last seq and view hash),
-- kept by the store in the transaction of every entry of that consortium,
-- so that a start-up reads one row per consortium instead of counting the
-- whole journal. A cache like balances: the full audit (verify, and a
-- start-up without a usable checkpoint) recomputes it from the journal.
-- audit_checkpoint_views holds the heads as they stood at the audit
-- checkpoint (schema 0008), written with it: the start-up's audit of the
-- chain after the checkpoint goes on from them, and at its end compares
-- view_heads with what it found, without counting the history again.
CREATE TABLE view_heads (
	consortium TEXT PRIMARY KEY,
	entries INTEGER NOT NULL,
	last_seq INTEGER NOT NULL,
	view_hash BLOB				-- 32 bytes of SHA-256
) WITHOUT ROWID;
INSERT INTO view_heads (consortium, entries, last_seq, view_hash)
	SELECT j.consortium, v.n, j.seq, j.view_hash FROM journal j
	JOIN (SELECT COUNT(*) AS n, MAX(seq) AS last FROM journal
	      WHERE consortium IS NOT NULL GROUP BY consortium) v ON j.seq = v.last;

CREATE TABLE audit_checkpoint_views (
	consortium TEXT PRIMARY KEY,
	entries INTEGER NOT NULL,
	last_seq INTEGER NOT NULL,
	view_hash BLOB				-- 32 bytes of SHA-256
) WITHOUT ROWID;
INSERT INTO audit_checkpoint_views (consortium, entries, last_seq, view_hash)
	SELECT j.consortium, v.n, j.seq, j.view_hash FROM journal j
	JOIN (SELECT COUNT(*) AS n, MAX(seq) AS last FROM journal
	      WHERE consortium IS NOT NULL AND seq <= (SELECT seq FROM audit_checkpoint)
	      GROUP BY consortium) v ON j.seq = v.last;
