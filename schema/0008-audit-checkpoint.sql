-- SPDX-License-Identifier: MIT
-- The audit checkpoint: the seq and hash of the last entry whose hash
-- chain an audit found sound (the start-up's, or verify's). A start-up
-- that finds the row at that seq still carrying that hash audits only the
-- chain after it, so that it costs the entries written since, not the
-- history; without a checkpoint, or when that row changed, it audits
-- everything (chain and cached tables). verify always audits everything,
-- and one that fails removes the checkpoint, so the next start-up audits
-- everything again and refuses to start.
CREATE TABLE audit_checkpoint (
	one INTEGER PRIMARY KEY CHECK (one = 1),	-- a single row
	seq INTEGER NOT NULL,
	hash BLOB NOT NULL				-- 32 bytes of SHA-256
);
