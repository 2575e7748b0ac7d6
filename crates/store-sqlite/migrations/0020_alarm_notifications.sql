-- Alarms that reach people (issue 18): each alarm's escalation along its
-- ward's policy, the notifications it causes (the durable outbox, written
-- in the same transaction as the alarm or step that causes it), who each
-- notification is for, and each channel's delivery of it.

-- Where notifications by email go; none without one.
ALTER TABLE accounts ADD COLUMN email TEXT;
-- The nurse looking after a patient now: the first one told of an alarm.
ALTER TABLE patients ADD COLUMN nurse_id INTEGER REFERENCES accounts(id);
-- A ward's escalation policy: how long an unacknowledged alarm waits
-- before every nurse of the ward is told, and then the physician.
ALTER TABLE wards ADD COLUMN to_ward_after_ms INTEGER NOT NULL DEFAULT 60000;
ALTER TABLE wards ADD COLUMN to_physician_after_ms INTEGER NOT NULL DEFAULT 120000;

-- One row per alarm that reaches people: a pump's alarm event or a server
-- alarm, never both; at most one per alarm, whichever instance writes it.
CREATE TABLE alarm_escalations (
    id                 INTEGER PRIMARY KEY,
    patient_id         INTEGER NOT NULL REFERENCES patients(id),
    event_id           INTEGER UNIQUE REFERENCES events(id),
    server_alarm_id    INTEGER UNIQUE REFERENCES server_alarms(id),
    alarm              TEXT NOT NULL,
    priority           TEXT NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
    raised_at_ms       INTEGER NOT NULL,
    -- The step told last: patient_nurse, ward_nurses or physician.
    step               TEXT NOT NULL,
    -- When the next step is due; NULL when there is none, or it ended.
    next_step_at_ms    INTEGER,
    silenced_until_ms  INTEGER,
    silenced_by        TEXT,
    acknowledged_at_ms INTEGER,
    acknowledged_by    TEXT,
    cleared_at_ms      INTEGER,
    CHECK ((event_id IS NULL) <> (server_alarm_id IS NULL))
) STRICT;
CREATE INDEX alarm_escalations_due ON alarm_escalations(next_step_at_ms)
    WHERE next_step_at_ms IS NOT NULL;
CREATE INDEX alarm_escalations_by_patient ON alarm_escalations(patient_id, raised_at_ms);

-- The outbox: one row per event of an escalation, its id the stable id
-- every delivery of it carries.
CREATE TABLE notifications (
    id            INTEGER PRIMARY KEY,
    escalation_id INTEGER NOT NULL REFERENCES alarm_escalations(id),
    event         TEXT NOT NULL CHECK (event IN ('raised', 'escalated', 'acknowledged', 'cleared')),
    step          TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    UNIQUE (escalation_id, event, step)
) STRICT;
CREATE INDEX notifications_by_time ON notifications(created_at_ms);

-- Who a notification is for (the step's people, and on a raise the
-- patient's caregivers).
CREATE TABLE notification_recipients (
    notification_id INTEGER NOT NULL REFERENCES notifications(id),
    account_id      INTEGER NOT NULL REFERENCES accounts(id),
    PRIMARY KEY (notification_id, account_id)
) STRICT, WITHOUT ROWID;

-- Each channel's delivery of a notification (a webhook URL, an email
-- address): attempted until one succeeds, with back-off.
CREATE TABLE notification_deliveries (
    notification_id    INTEGER NOT NULL REFERENCES notifications(id),
    channel            TEXT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL,
    delivered_at_ms    INTEGER,
    last_error         TEXT,
    PRIMARY KEY (notification_id, channel)
) STRICT, WITHOUT ROWID;
CREATE INDEX notification_deliveries_due ON notification_deliveries(channel, next_attempt_at_ms)
    WHERE delivered_at_ms IS NULL;

-- A board reads every patient's open alarms at once: the alarm events of
-- a patient, without walking the patient's other events.
CREATE INDEX events_alarms_by_patient ON events(patient_id, id) WHERE kind = 'alarm';
