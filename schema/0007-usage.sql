-- SPDX-License-Identifier: MIT
-- Metered use: GPU-seconds a cluster scheduler measured, reported by a
-- job (POST /v1/usage) and journaled as `usage` entries (source, job id
-- and amount in the entry's extra). `usage` is their cache, one row per
-- (source, job_id): its primary key is what makes a report idempotent, a
-- second row for the same job cannot be inserted. balances.used is the
-- per-key sum beside the clock-derived consumed figure. verify recomputes
-- both from the journal.
ALTER TABLE balances ADD COLUMN used INTEGER NOT NULL DEFAULT 0 CHECK (typeof(used) = 'integer');

CREATE TABLE usage (
	source TEXT NOT NULL,			-- the cluster that measured it
	job_id TEXT NOT NULL,			-- its job id there
	consortium TEXT NOT NULL,
	phase TEXT NOT NULL,
	gpu TEXT NOT NULL,
	allocation TEXT,			-- NULL: charged to the key only
	gpu_seconds INTEGER NOT NULL CHECK (typeof(gpu_seconds) = 'integer' AND gpu_seconds >= 0),
	"end" INTEGER NOT NULL,			-- when the job ended
	seq INTEGER NOT NULL UNIQUE REFERENCES journal (seq),	-- its usage entry
	PRIMARY KEY (source, job_id)
);
