-- SPDX-License-Identifier: MIT
-- Idempotency records in one B-tree: keyed by the Idempotency-Key itself
-- (WITHOUT ROWID), instead of a rowid table beside a unique index that held
-- every key a second time. A record keeps what a retry needs: the first
-- 16 bytes of the request's SHA-256 (128 bits: a different body under the
-- same key is refused but for a chance of 2^-128), the status, the answer
-- or a reference to the journal entry it is rebuilt from (schema 0010),
-- and its time for the retention. Without rowids the table
-- has no insertion order: the pruning walks it in key order, a bounded
-- window per call, and deletes the expired records of each window.
CREATE TABLE idempotency_by_key (
	key TEXT PRIMARY KEY,
	body_hash BLOB NOT NULL,		-- SHA-256 of the request, its first 16 bytes
	status INTEGER NOT NULL,		-- HTTP status
	response TEXT,				-- NULL: rebuilt from the entry at seq
	time INTEGER NOT NULL,
	seq INTEGER				-- NULL: the answer is in response
) WITHOUT ROWID;
INSERT INTO idempotency_by_key (key, body_hash, status, response, time, seq)
	SELECT key, substr(body_hash, 1, 16), status, response, time, seq FROM idempotency;
DROP TABLE idempotency;
ALTER TABLE idempotency_by_key RENAME TO idempotency;
