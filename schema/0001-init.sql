-- SPDX-License-Identifier: MIT
-- The first schema. The journal is the ledger; balances, allocations and
-- consortium_state are caches that the store keeps in step with each entry
-- in the same transaction, and that verify recomputes from the journal.
-- Amounts are int64 GPU-seconds, instants int64 Unix seconds; an absent
-- string is NULL. Nothing here forbids editing the journal (no triggers):
-- tampering must stay possible for verify to be tested, and is caught by
-- the hash chain, not by SQLite.

CREATE TABLE journal (
	seq INTEGER PRIMARY KEY,
	time INTEGER NOT NULL,
	kind TEXT NOT NULL,
	actor TEXT,
	request_id TEXT,
	consortium TEXT,
	phase TEXT,
	gpu TEXT,
	allocation TEXT,
	pool TEXT,
	gpus INTEGER NOT NULL DEFAULT 0,
	start INTEGER NOT NULL DEFAULT 0,
	"end" INTEGER NOT NULL DEFAULT 0,
	granted_delta INTEGER NOT NULL DEFAULT 0,
	committed_delta INTEGER NOT NULL DEFAULT 0,
	expired_delta INTEGER NOT NULL DEFAULT 0,
	max_gpus INTEGER NOT NULL DEFAULT 0,
	reason TEXT,
	prev_hash BLOB NOT NULL,	-- 32 bytes of SHA-256
	hash BLOB NOT NULL		-- 32 bytes of SHA-256
);
CREATE INDEX journal_consortium ON journal (consortium, seq);

-- An overflowing sum would silently turn into a REAL in SQLite: the type
-- checks turn it into a failed statement instead.
CREATE TABLE balances (
	consortium TEXT NOT NULL,
	phase TEXT NOT NULL,
	gpu TEXT NOT NULL,
	granted INTEGER NOT NULL DEFAULT 0 CHECK (typeof(granted) = 'integer'),
	committed INTEGER NOT NULL DEFAULT 0 CHECK (typeof(committed) = 'integer'),
	expired INTEGER NOT NULL DEFAULT 0 CHECK (typeof(expired) = 'integer'),
	max_gpus INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (consortium, phase, gpu)
);

CREATE TABLE allocations (
	id TEXT PRIMARY KEY,			-- "A-000042"
	num INTEGER NOT NULL UNIQUE,		-- 42
	consortium TEXT NOT NULL,
	pool TEXT NOT NULL,
	gpu TEXT NOT NULL,
	phase TEXT NOT NULL,
	gpus INTEGER NOT NULL,
	start INTEGER NOT NULL,
	"end" INTEGER NOT NULL,			-- moved by release or a cut
	booked_end INTEGER NOT NULL,		-- as first booked
	stored TEXT NOT NULL
		CHECK (stored IN ('booked', 'cancelled', 'released', 'revoked')),
	cost INTEGER NOT NULL CHECK (typeof(cost) = 'integer'),
	note TEXT,
	created INTEGER NOT NULL,		-- time of the reserve entry
	seq INTEGER NOT NULL REFERENCES journal (seq)	-- the reserve entry
);
CREATE INDEX allocations_consortium ON allocations (consortium);
CREATE INDEX allocations_pool ON allocations (pool);
CREATE INDEX allocations_live ON allocations (stored, "end");

-- Only consortia ever eliminated or reinstated have a row; the others are
-- active since they joined (config).
CREATE TABLE consortium_state (
	consortium TEXT PRIMARY KEY,
	status TEXT NOT NULL CHECK (status IN ('active', 'eliminated')),
	since INTEGER NOT NULL,
	designation_until INTEGER		-- NULL when none
);

-- The first answer to each Idempotency-Key, written in the transaction of
-- the change it answers.
CREATE TABLE idempotency (
	key TEXT PRIMARY KEY,
	body_hash BLOB NOT NULL,		-- SHA-256 of the request body
	status INTEGER NOT NULL,		-- HTTP status
	response TEXT,
	time INTEGER NOT NULL
);
