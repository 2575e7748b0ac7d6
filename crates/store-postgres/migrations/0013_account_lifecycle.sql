-- The account lifecycle (red team round 2, finding 10): an account can be
-- disabled (its web sessions and device chains end at once, and it can
-- log in nowhere until it is enabled again), and an account whose first
-- password an administrator set must change it at its first web login.
ALTER TABLE accounts ADD COLUMN disabled_at_ms BIGINT,
                     ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT FALSE;
-- Ending every session of one account (a password change, a disabling).
CREATE INDEX web_sessions_by_account ON web_sessions(account_id);
