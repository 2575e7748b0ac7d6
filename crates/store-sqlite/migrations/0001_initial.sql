-- Initial schema. A migration that has landed is never edited: add a new file.

CREATE TABLE institutions (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE accounts (
    id             INTEGER PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'physician', 'patient')),
    first_name     TEXT NOT NULL,
    last_name      TEXT NOT NULL,
    institution_id INTEGER REFERENCES institutions(id),
    created_at_ms  INTEGER NOT NULL
) STRICT;

CREATE TABLE patients (
    id           INTEGER PRIMARY KEY,
    account_id   INTEGER NOT NULL UNIQUE REFERENCES accounts(id),
    physician_id INTEGER NOT NULL REFERENCES accounts(id)
) STRICT;
CREATE INDEX patients_by_physician ON patients(physician_id);

-- A registration of one pump to one patient. Re-binding retires the old row
-- (events keep pointing at it) and adds a new one.
CREATE TABLE devices (
    id               INTEGER PRIMARY KEY,
    patient_id       INTEGER NOT NULL REFERENCES patients(id),
    mac              TEXT NOT NULL,
    registered_at_ms INTEGER NOT NULL,
    retired_at_ms    INTEGER,
    last_seen_ms     INTEGER
) STRICT;
CREATE UNIQUE INDEX devices_active_by_patient ON devices(patient_id) WHERE retired_at_ms IS NULL;
CREATE UNIQUE INDEX devices_active_by_mac ON devices(mac) WHERE retired_at_ms IS NULL;

CREATE TABLE limits (
    patient_id    INTEGER PRIMARY KEY REFERENCES patients(id),
    min_rate_ul_h INTEGER NOT NULL,
    max_rate_ul_h INTEGER NOT NULL,
    max_volume_ul INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    updated_by    TEXT NOT NULL
) STRICT;

CREATE TABLE prescriptions (
    patient_id    INTEGER NOT NULL REFERENCES patients(id),
    version       INTEGER NOT NULL,
    volume_ul     INTEGER NOT NULL,
    rate_ul_h     INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('run', 'hold')),
    created_at_ms INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    PRIMARY KEY (patient_id, version)
) STRICT, WITHOUT ROWID;

-- Only the SHA-256 of each token is kept.
CREATE TABLE tokens (
    hash          BLOB PRIMARY KEY,
    device_id     INTEGER NOT NULL REFERENCES devices(id),
    patient_id    INTEGER NOT NULL REFERENCES patients(id),
    issued_at_ms  INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    used_at_ms    INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX tokens_by_expiry ON tokens(expires_at_ms);

CREATE TABLE events (
    id             INTEGER PRIMARY KEY,
    device_id      INTEGER NOT NULL REFERENCES devices(id),
    patient_id     INTEGER NOT NULL REFERENCES patients(id),
    seq            INTEGER NOT NULL,
    uptime_ms      INTEGER NOT NULL,
    kind           TEXT NOT NULL,
    delivered_ul   INTEGER,
    rate_ul_h      INTEGER,
    index_version  INTEGER,
    state          TEXT,
    alarm          TEXT,
    heart_rate_bpm INTEGER,
    spo2_pct       INTEGER,
    tremor_score   INTEGER,
    received_at_ms INTEGER NOT NULL,
    UNIQUE (device_id, seq)
) STRICT;
CREATE INDEX events_by_patient ON events(patient_id, id);

CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    at_ms      INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    patient_id INTEGER,
    detail     TEXT NOT NULL
) STRICT;
CREATE INDEX audit_by_patient ON audit(patient_id, id);
