-- SPDX-License-Identifier: MIT
-- The ledger's own changes of the program's structure, in journal order:
-- pool cuts (and phase moves) override the configuration from then on, so
-- the daemon reads them at every start-up. This index finds them without a
-- scan of the whole journal.
CREATE INDEX journal_ledger_ops ON journal (seq)
	WHERE kind IN ('pool_cut', 'phase');
