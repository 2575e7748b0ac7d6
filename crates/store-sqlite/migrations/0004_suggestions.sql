-- Prescription changes suggested by the decision algorithm. A suggestion
-- changes nothing until a physician approves it; at most one per patient
-- is pending at a time.
CREATE TABLE suggestions (
    id               INTEGER PRIMARY KEY,
    patient_id       INTEGER NOT NULL REFERENCES patients(id),
    based_on_version INTEGER NOT NULL,
    volume_ul        INTEGER NOT NULL,
    rate_ul_h        INTEGER NOT NULL,
    reason           TEXT NOT NULL,
    created_at_ms    INTEGER NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'superseded')),
    decided_at_ms    INTEGER,
    decided_by       TEXT,
    approved_version INTEGER
) STRICT;
CREATE UNIQUE INDEX suggestions_one_pending ON suggestions(patient_id) WHERE status = 'pending';
