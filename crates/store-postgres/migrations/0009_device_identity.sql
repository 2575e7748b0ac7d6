-- Device identity beyond the MAC address, and the server's index key
-- (docs/threat-model.md, T8 and T9).
--
-- public_key: the Ed25519 public half of the device secret issued at
-- binding. It cannot log in by itself. NULL for a device bound before
-- device secrets: it logs in only to `infusion serve --paper-login` until
-- it is bound again.
-- login_nonce: the time and randomness (16 bytes) of the newest login
-- challenge this device answered; a login with an older or equal one is a
-- replay.
ALTER TABLE devices ADD COLUMN public_key BYTEA;
ALTER TABLE devices ADD COLUMN login_nonce BYTEA;

-- Secrets every server instance on this database shares: the index
-- signing key and the key that tags login challenges.
CREATE TABLE server_secrets (
    name          TEXT PRIMARY KEY,
    secret        BYTEA NOT NULL,
    created_at_ms BIGINT NOT NULL
);
