-- A second login factor for physicians and administrators (red team
-- round 2, finding 10): a TOTP authenticator per account, the newest time
-- step a code was accepted for (each code works once), and the SHA-256 of
-- each single-use recovery code.
CREATE TABLE second_factors (
    account_id    BIGINT PRIMARY KEY REFERENCES accounts(id),
    totp_secret   BYTEA NOT NULL,
    last_step     BIGINT NOT NULL DEFAULT 0,
    enabled_at_ms BIGINT NOT NULL
);
CREATE TABLE recovery_codes (
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    hash       BYTEA NOT NULL,
    used_at_ms BIGINT,
    PRIMARY KEY (account_id, hash)
);
