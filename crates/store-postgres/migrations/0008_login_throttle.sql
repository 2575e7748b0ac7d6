-- Login throttling (the store crate's throttle module): attempts counted
-- per username and per client address, shared by every instance.
CREATE TABLE login_throttle (
    key             TEXT PRIMARY KEY,
    attempts        BIGINT NOT NULL,
    last_attempt_ms BIGINT NOT NULL,
    locked_until_ms BIGINT NOT NULL
);
