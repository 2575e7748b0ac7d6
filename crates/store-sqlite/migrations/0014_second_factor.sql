-- A second login factor for physicians and administrators (red team
-- round 2, finding 10): a TOTP authenticator per account, the newest time
-- step a code was accepted for (each code works once), and the SHA-256 of
-- each single-use recovery code.
CREATE TABLE second_factors (
    account_id    INTEGER PRIMARY KEY REFERENCES accounts(id),
    totp_secret   BLOB NOT NULL,
    last_step     INTEGER NOT NULL DEFAULT 0,
    enabled_at_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE recovery_codes (
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    hash       BLOB NOT NULL,
    used_at_ms INTEGER,
    PRIMARY KEY (account_id, hash)
) STRICT;
