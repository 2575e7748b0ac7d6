-- The ward tool (issue 17): each institution's drug library (name,
-- concentration, default dose limits; rows are never edited, only
-- withdrawn, so an order's dose reads the same for as long as it is kept),
-- the drug an order names, and the identifiers that tell look-alike
-- patients apart. The same tables as the SQLite backend's 0015.
CREATE TABLE drugs (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    institution_id      BIGINT NOT NULL REFERENCES institutions(id),
    name                TEXT NOT NULL,
    concentration_ug_ml BIGINT NOT NULL CHECK (concentration_ug_ml > 0),
    dose_unit           TEXT NOT NULL DEFAULT 'mg/h' CHECK (dose_unit IN ('mg/h')),
    hard_min_ug_h       BIGINT NOT NULL,
    hard_max_ug_h       BIGINT NOT NULL,
    hard_max_ug         BIGINT NOT NULL,
    soft_min_ug_h       BIGINT NOT NULL,
    soft_max_ug_h       BIGINT NOT NULL,
    soft_max_ug         BIGINT NOT NULL,
    created_at_ms       BIGINT NOT NULL,
    created_by          TEXT NOT NULL,
    withdrawn_at_ms     BIGINT
);
CREATE UNIQUE INDEX drugs_in_use_by_name ON drugs(institution_id, lower(name))
    WHERE withdrawn_at_ms IS NULL;
ALTER TABLE prescriptions ADD COLUMN drug_id BIGINT REFERENCES drugs(id);
ALTER TABLE patients ADD COLUMN record_number TEXT,
                     ADD COLUMN birth_date TEXT;
