-- When the pump first fetched each prescription version (through the
-- index API): the "fetched by the pump" step of a version's delivery.
ALTER TABLE prescriptions ADD COLUMN fetched_at_ms BIGINT;
