-- Initial schema, the same tables as the SQLite backend's 0001. A migration
-- that has landed is never edited: add a new file. Times are milliseconds
-- since the Unix epoch (BIGINT) as on the wire, so both backends store the
-- same integers.

CREATE TABLE institutions (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE accounts (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'physician', 'patient')),
    first_name     TEXT NOT NULL,
    last_name      TEXT NOT NULL,
    institution_id BIGINT REFERENCES institutions(id),
    created_at_ms  BIGINT NOT NULL
);

CREATE TABLE patients (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   BIGINT NOT NULL UNIQUE REFERENCES accounts(id),
    physician_id BIGINT NOT NULL REFERENCES accounts(id)
);
CREATE INDEX patients_by_physician ON patients(physician_id);

-- A registration of one pump to one patient. Re-binding retires the old row
-- (events keep pointing at it) and adds a new one.
CREATE TABLE devices (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id       BIGINT NOT NULL REFERENCES patients(id),
    mac              TEXT NOT NULL,
    registered_at_ms BIGINT NOT NULL,
    retired_at_ms    BIGINT,
    last_seen_ms     BIGINT
);
CREATE UNIQUE INDEX devices_active_by_patient ON devices(patient_id) WHERE retired_at_ms IS NULL;
CREATE UNIQUE INDEX devices_active_by_mac ON devices(mac) WHERE retired_at_ms IS NULL;

CREATE TABLE limits (
    patient_id    BIGINT PRIMARY KEY REFERENCES patients(id),
    min_rate_ul_h BIGINT NOT NULL,
    max_rate_ul_h BIGINT NOT NULL,
    max_volume_ul BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    updated_by    TEXT NOT NULL
);

CREATE TABLE prescriptions (
    patient_id    BIGINT NOT NULL REFERENCES patients(id),
    version       BIGINT NOT NULL,
    volume_ul     BIGINT NOT NULL,
    rate_ul_h     BIGINT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('run', 'hold')),
    created_at_ms BIGINT NOT NULL,
    created_by    TEXT NOT NULL,
    PRIMARY KEY (patient_id, version)
);

-- Only the SHA-256 of each token is kept.
CREATE TABLE tokens (
    hash          BYTEA PRIMARY KEY CHECK (octet_length(hash) = 32),
    device_id     BIGINT NOT NULL REFERENCES devices(id),
    patient_id    BIGINT NOT NULL REFERENCES patients(id),
    issued_at_ms  BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used_at_ms    BIGINT
);
CREATE INDEX tokens_by_expiry ON tokens(expires_at_ms);

CREATE TABLE events (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id      BIGINT NOT NULL REFERENCES devices(id),
    patient_id     BIGINT NOT NULL REFERENCES patients(id),
    seq            BIGINT NOT NULL,
    uptime_ms      BIGINT NOT NULL,
    kind           TEXT NOT NULL,
    delivered_ul   BIGINT,
    rate_ul_h      BIGINT,
    index_version  BIGINT,
    state          TEXT,
    alarm          TEXT,
    heart_rate_bpm INTEGER,
    spo2_pct       SMALLINT,
    tremor_score   SMALLINT,
    received_at_ms BIGINT NOT NULL,
    UNIQUE (device_id, seq)
);
CREATE INDEX events_by_patient ON events(patient_id, id);

CREATE TABLE audit (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms      BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    patient_id BIGINT,
    detail     TEXT NOT NULL
);
CREATE INDEX audit_by_patient ON audit(patient_id, id);
