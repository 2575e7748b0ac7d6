-- Replay detection (RFC 9700, section 4.14.2): a used token presented again
-- revokes its device's whole chain. `revoked_at_ms` records which tokens a
-- revocation found live; the device's `token_generation` is raised by each
-- revocation, and a token is good only while its `generation` is the
-- device's, so a token issued by a request that raced the revocation is
-- dead too.
ALTER TABLE tokens ADD COLUMN revoked_at_ms INTEGER;
ALTER TABLE tokens ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tokens_by_device ON tokens(device_id);
