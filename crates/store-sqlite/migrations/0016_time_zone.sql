-- The ward tool (issue 17): each institution's time zone (an IANA name),
-- in which its staff and patients read times. The audit trail and exports
-- keep UTC.
ALTER TABLE institutions ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
