-- SPDX-License-Identifier: MIT
-- The ledger's identity: one random id per database, written by
-- `gpuledgerd --init` when it creates the file (and, for a database made
-- before --init existed, by the first start that migrates it). A copy of
-- the file keeps the id; a new, empty ledger gets another one, so a
-- database that was replaced, restored or re-created can be told apart
-- from the one that was there.
CREATE TABLE ledger (
	one INTEGER PRIMARY KEY CHECK (one = 1),	-- a single row
	id TEXT NOT NULL CHECK (length(id) = 32)	-- 128 random bits, hex
);
