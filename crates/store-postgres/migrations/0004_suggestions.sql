-- Prescription changes suggested by the decision algorithm. A suggestion
-- changes nothing until a physician approves it; at most one per patient
-- is pending at a time.
CREATE TABLE suggestions (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id       BIGINT NOT NULL REFERENCES patients(id),
    based_on_version BIGINT NOT NULL,
    volume_ul        BIGINT NOT NULL,
    rate_ul_h        BIGINT NOT NULL,
    reason           TEXT NOT NULL,
    created_at_ms    BIGINT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'superseded')),
    decided_at_ms    BIGINT,
    decided_by       TEXT,
    approved_version BIGINT
);
CREATE UNIQUE INDEX suggestions_one_pending ON suggestions(patient_id) WHERE status = 'pending';
