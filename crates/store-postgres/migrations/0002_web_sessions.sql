-- Web application sessions. Only the SHA-256 of the session id (the cookie
-- value) is kept, so a copy of the database holds no usable session.
CREATE TABLE web_sessions (
    hash          BYTEA PRIMARY KEY CHECK (octet_length(hash) = 32),
    account_id    BIGINT NOT NULL REFERENCES accounts(id),
    created_at_ms BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    ended_at_ms   BIGINT
);
CREATE INDEX web_sessions_by_expiry ON web_sessions(expires_at_ms);
