-- The ward tool (issue 17): what a physician shares with the patient, shown
-- on the patient's own page.
ALTER TABLE patients ADD COLUMN note TEXT;
ALTER TABLE patients ADD COLUMN note_set_at_ms INTEGER;
