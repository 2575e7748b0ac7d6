-- The care team (issue 18): wards, their nurses, the patients on them, and
-- the caregivers a physician lets follow one patient until an end date.
-- The same tables as the SQLite backend's 0019.
ALTER TABLE accounts DROP CONSTRAINT accounts_role_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_role_check
    CHECK (role IN ('admin', 'physician', 'patient', 'nurse', 'caregiver'));

-- Ward names are unique on the server whatever their case.
CREATE TABLE wards (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    institution_id BIGINT NOT NULL REFERENCES institutions(id),
    name           TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL
);
CREATE UNIQUE INDEX wards_name_folded ON wards (lower(name));

-- A nurse belongs to one ward.
CREATE TABLE nurses (
    account_id BIGINT PRIMARY KEY REFERENCES accounts(id),
    ward_id    BIGINT NOT NULL REFERENCES wards(id)
);

ALTER TABLE patients ADD COLUMN ward_id BIGINT REFERENCES wards(id);
CREATE INDEX patients_by_ward ON patients(ward_id);

-- A caregiver's access to one patient: it ends at ends_at_ms by itself, or
-- earlier when revoked. Rows are kept (who could see the record, and when).
CREATE TABLE caregivers (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    BIGINT NOT NULL REFERENCES accounts(id),
    patient_id    BIGINT NOT NULL REFERENCES patients(id),
    granted_by    TEXT NOT NULL,
    granted_at_ms BIGINT NOT NULL,
    ends_at_ms    BIGINT NOT NULL,
    revoked_at_ms BIGINT
);
CREATE INDEX caregivers_by_account ON caregivers(account_id);
CREATE INDEX caregivers_by_patient ON caregivers(patient_id);
