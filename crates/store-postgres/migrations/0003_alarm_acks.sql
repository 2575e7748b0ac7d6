-- Acknowledgements of device alarms. An alarm is open until a row here
-- names its event; the acknowledgement is also in the audit log.
CREATE TABLE alarm_acks (
    event_id      BIGINT PRIMARY KEY REFERENCES events(id),
    acked_at_ms   BIGINT NOT NULL,
    acked_by      TEXT NOT NULL
);
