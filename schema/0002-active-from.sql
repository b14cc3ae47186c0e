-- SPDX-License-Identifier: MIT
-- Where a consortium's current (or last) active stretch began: its latest
-- reinstatement. With only `since` (overwritten by each eliminate and
-- reinstate), a second elimination forgot the first one, and bookings inside
-- the first eliminated span were accepted again. NULL means "since it joined".
ALTER TABLE consortium_state ADD COLUMN active_from INTEGER;
UPDATE consortium_state SET active_from = since WHERE status = 'active';
