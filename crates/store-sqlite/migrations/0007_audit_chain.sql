-- The audit log becomes append-only and hash-chained (see the store
-- crate's audit_chain module). Rows written before this migration are
-- sealed into the chain by the program right after it runs, in id order.
ALTER TABLE audit ADD COLUMN prev_hash BLOB;
ALTER TABLE audit ADD COLUMN hash BLOB;
CREATE TABLE audit_head (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    rows    INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    hash    BLOB NOT NULL
) STRICT;
INSERT INTO audit_head (id, rows, last_id, hash) VALUES (1, 0, 0, zeroblob(32));
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit WHEN OLD.hash IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN
    SELECT RAISE(ABORT, 'the audit head is kept');
END;
