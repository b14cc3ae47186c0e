-- SPDX-License-Identifier: MIT
-- Fewer B-trees per booking. An allocation is found by its number, which
-- becomes the rowid (INTEGER PRIMARY KEY): the table itself is the index
-- that `num UNIQUE` kept beside it, and its id ("A-000042", the number
-- written out) needs none of its own, since the store looks an id up by
-- the number it names. allocations_pool served no query that the index of
-- live allocations does not serve better (a pool's calendar asks for what
-- is live in a window). balances, looked up and updated by its key only,
-- keeps its rows in the key's B-tree (WITHOUT ROWID) instead of a rowid
-- table beside a unique index. Column order and constraints stay as they
-- were.
CREATE TABLE allocations_by_num (
	id TEXT NOT NULL,			-- "A-000042"
	num INTEGER PRIMARY KEY,		-- 42
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
INSERT INTO allocations_by_num (id, num, consortium, pool, gpu, phase, gpus, start, "end",
		booked_end, stored, cost, note, created, seq)
	SELECT id, num, consortium, pool, gpu, phase, gpus, start, "end", booked_end, stored,
		cost, note, created, seq FROM allocations ORDER BY num;
DROP TABLE allocations;
ALTER TABLE allocations_by_num RENAME TO allocations;
CREATE INDEX allocations_consortium ON allocations (consortium, pool, gpu, start);
CREATE INDEX allocations_live ON allocations (stored, "end");

CREATE TABLE balances_by_key (
	consortium TEXT NOT NULL,
	phase TEXT NOT NULL,
	gpu TEXT NOT NULL,
	granted INTEGER NOT NULL DEFAULT 0 CHECK (typeof(granted) = 'integer'),
	committed INTEGER NOT NULL DEFAULT 0 CHECK (typeof(committed) = 'integer'),
	expired INTEGER NOT NULL DEFAULT 0 CHECK (typeof(expired) = 'integer'),
	max_gpus INTEGER NOT NULL DEFAULT 0,
	used INTEGER NOT NULL DEFAULT 0 CHECK (typeof(used) = 'integer'),
	PRIMARY KEY (consortium, phase, gpu)
) WITHOUT ROWID;
INSERT INTO balances_by_key (consortium, phase, gpu, granted, committed, expired, max_gpus, used)
	SELECT consortium, phase, gpu, granted, committed, expired, max_gpus, used FROM balances;
DROP TABLE balances;
ALTER TABLE balances_by_key RENAME TO balances;
