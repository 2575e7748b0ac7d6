-- The audit log becomes append-only and hash-chained (see the store
-- crate's audit_chain module). Rows written before this migration are
-- sealed into the chain by the program right after it runs, in id order.
ALTER TABLE audit ADD COLUMN prev_hash BYTEA;
ALTER TABLE audit ADD COLUMN hash BYTEA;
CREATE TABLE audit_head (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    rows    BIGINT NOT NULL,
    last_id BIGINT NOT NULL,
    hash    BYTEA NOT NULL
);
INSERT INTO audit_head (id, rows, last_id, hash) VALUES (1, 0, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.hash IS NULL THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_head_kept BEFORE DELETE OR TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
