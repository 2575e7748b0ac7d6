-- The server's own alarms (issue 18): `pump_silent`, raised by the
-- watchdog when a pump that should be polling has gone quiet, cleared when
-- it is heard from again. At most one open per pump and kind: with several
-- instances, the unique index makes each raise happen once. The same table
-- as the SQLite backend's 0018.
CREATE TABLE server_alarms (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id     BIGINT NOT NULL REFERENCES patients(id),
    device_id      BIGINT NOT NULL REFERENCES devices(id),
    kind           TEXT NOT NULL CHECK (kind IN ('pump_silent')),
    raised_at_ms   BIGINT NOT NULL,
    last_heard_ms  BIGINT NOT NULL,
    cleared_at_ms  BIGINT
);
CREATE UNIQUE INDEX server_alarms_open ON server_alarms(device_id, kind)
    WHERE cleared_at_ms IS NULL;
CREATE INDEX server_alarms_open_by_patient ON server_alarms(patient_id)
    WHERE cleared_at_ms IS NULL;
