-- The care team (issue 18): wards, their nurses, the patients on them, and
-- the caregivers a physician lets follow one patient until an end date.
--
-- accounts.role gains 'nurse' and 'caregiver'. SQLite cannot change a
-- CHECK in place, so the table is rebuilt the documented way (foreign keys
-- are off while migrations run, and checked before each one commits).
CREATE TABLE accounts_new (
    id                   INTEGER PRIMARY KEY,
    username             TEXT NOT NULL UNIQUE,
    password_hash        TEXT NOT NULL,
    role                 TEXT NOT NULL
                         CHECK (role IN ('admin', 'physician', 'patient', 'nurse', 'caregiver')),
    first_name           TEXT NOT NULL,
    last_name            TEXT NOT NULL,
    institution_id       INTEGER REFERENCES institutions(id),
    created_at_ms        INTEGER NOT NULL,
    disabled_at_ms       INTEGER,
    must_change_password INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO accounts_new (id, username, password_hash, role, first_name, last_name, institution_id,
                          created_at_ms, disabled_at_ms, must_change_password)
    SELECT id, username, password_hash, role, first_name, last_name, institution_id,
           created_at_ms, disabled_at_ms, must_change_password
    FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_new RENAME TO accounts;
CREATE UNIQUE INDEX accounts_username_folded ON accounts (lower(username));

-- Ward names are unique on the server whatever their case.
CREATE TABLE wards (
    id             INTEGER PRIMARY KEY,
    institution_id INTEGER NOT NULL REFERENCES institutions(id),
    name           TEXT NOT NULL,
    created_at_ms  INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX wards_name_folded ON wards (lower(name));

-- A nurse belongs to one ward.
CREATE TABLE nurses (
    account_id INTEGER PRIMARY KEY REFERENCES accounts(id),
    ward_id    INTEGER NOT NULL REFERENCES wards(id)
) STRICT;

ALTER TABLE patients ADD COLUMN ward_id INTEGER REFERENCES wards(id);
CREATE INDEX patients_by_ward ON patients(ward_id);

-- A caregiver's access to one patient: it ends at ends_at_ms by itself, or
-- earlier when revoked. Rows are kept (who could see the record, and when).
CREATE TABLE caregivers (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts(id),
    patient_id    INTEGER NOT NULL REFERENCES patients(id),
    granted_by    TEXT NOT NULL,
    granted_at_ms INTEGER NOT NULL,
    ends_at_ms    INTEGER NOT NULL,
    revoked_at_ms INTEGER
) STRICT;
CREATE INDEX caregivers_by_account ON caregivers(account_id);
CREATE INDEX caregivers_by_patient ON caregivers(patient_id);
