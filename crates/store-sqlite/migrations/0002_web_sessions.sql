-- Web application sessions. Only the SHA-256 of the session id (the cookie
-- value) is kept, so a copy of the database holds no usable session.
CREATE TABLE web_sessions (
    hash          BLOB PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts(id),
    created_at_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    ended_at_ms   INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX web_sessions_by_expiry ON web_sessions(expires_at_ms);
