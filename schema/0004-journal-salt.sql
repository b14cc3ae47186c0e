-- SPDX-License-Identifier: MIT
-- Journal confidentiality. Each new entry carries 16 random bytes, `salt`,
-- inside its canonical encoding, so that a hash says nothing about an entry
-- its reader may not see; entries written before this version have none and
-- keep their encoding (and hash). `view_hash` chains each consortium's own
-- entries (SHA-256 of the previous view hash in hex, ":" and the canonical
-- encoding), the proof a consortium gets instead of the global chain; the
-- store fills it in for the older entries right after this file (SQL has
-- no SHA-256). Both are NULL for entries without a consortium.
ALTER TABLE journal ADD COLUMN salt BLOB;		-- 16 bytes, or NULL before version 3
ALTER TABLE journal ADD COLUMN view_hash BLOB;		-- 32 bytes of SHA-256
