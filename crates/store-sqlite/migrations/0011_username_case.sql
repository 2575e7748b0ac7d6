-- Usernames are unique regardless of letter case (red team round 2,
-- finding 8): `pa.one`, `Pa.One` and `PA.ONE` were three patients whose
-- rows a clinician could not tell apart. Usernames are ASCII, so lower()
-- folds them alike on both backends. A database that already holds two
-- such usernames fails this migration, naming the index; rename one of
-- them (`admin` has no rename yet: in SQL) and migrate again.
CREATE UNIQUE INDEX accounts_username_folded ON accounts (lower(username));
