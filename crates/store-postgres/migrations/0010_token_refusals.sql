-- How often a stored token was refused (red team round 2, finding 5): the
-- first refusal of a token is audited, later ones only counted here, so
-- that a client repeating a refused token cannot grow the append-only
-- audit log without bound. A replay that revokes a chain is audited
-- always.
ALTER TABLE tokens ADD COLUMN refused_count INTEGER NOT NULL DEFAULT 0;
