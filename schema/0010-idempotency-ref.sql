-- SPDX-License-Identifier: MIT
-- An idempotency record may keep a reference to its answer instead of the
-- answer: seq names the journal entry the first answer was made of (a
-- booking's reserve entry), and the daemon rebuilds the same bytes from it
-- for a retry; response is then NULL. Answers that also show state beyond
-- their entries (a grant's quota row, say) keep their text.
ALTER TABLE idempotency ADD COLUMN seq INTEGER;	-- NULL: the answer is in response
-- The start-up reads, for every (consortium, pool, gpu) of the history, the
-- first start of its bookings: with the key and start in one index that is
-- a few seeks per key instead of a scan of every allocation ever booked.
-- It also serves what the index on consortium alone served.
DROP INDEX allocations_consortium;
CREATE INDEX allocations_consortium ON allocations (consortium, pool, gpu, start);
