-- SPDX-License-Identifier: MIT
-- The ledger operations of the second wave (transfers, config changes and
-- the others) record fields that no earlier kind needed: a transfer allowed
-- past the procured budget, a configuration's SHA-256, structure and
-- summary. They live in one JSON object per entry, `extra`, that the
-- canonical encoding includes under the key "extra" only when it is
-- present, so every older entry keeps its hash. NULL: none.
ALTER TABLE journal ADD COLUMN extra TEXT;
-- The last config entry is what each start and SIGHUP compares the
-- configuration with; this index finds it without a scan of the journal.
CREATE INDEX journal_config ON journal (seq) WHERE kind = 'config';
