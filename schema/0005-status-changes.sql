-- SPDX-License-Identifier: MIT
-- Every elimination and reinstatement of a consortium, in order, is what
-- rule 5 needs: a reinstatement ends one eliminated span and leaves the
-- active stretch before it whole, however far ahead the elimination lies
-- (consortium_state keeps only the last of them). The journal holds them
-- all; this index lets the daemon read them at start-up without a scan of
-- the whole journal.
CREATE INDEX journal_status_changes ON journal (consortium, seq)
	WHERE kind IN ('eliminate', 'reinstate');
