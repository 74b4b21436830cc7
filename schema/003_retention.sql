-- 003: retention (README "Store and retention"; store.c store_retention_step).
--
-- Numbered 003 so that it follows 002 wherever 002 is applied; like every
-- migration it runs once, inside the migration transaction.
--
-- A submission is deleted in two phases, so that deleting one with 100,000
-- records never holds the write lock for long:
--   1. detach (one small UPDATE): its key becomes '#<id>', which is never a
--      valid key, so readers no longer find it and a new publish to the key
--      starts a new submission at once; updated_ms becomes -1, which every
--      query over real times (updated_ms >= 0) leaves out.
--   2. purge: its rows go in bounded steps (records with their messages,
--      message counts, events), then the row itself, whose ON DELETE CASCADE
--      takes whatever small rows are left (kind counts and any table added
--      later that references submissions).

-- 1 when the submission is final: status Completed, or status Error set by
-- its last event (any later event "revives" an Error). Kept by store_apply.
ALTER TABLE submissions ADD COLUMN final INTEGER NOT NULL DEFAULT 0;
-- existing rows: Completed (6) is final; Error (3) when the last event, still
-- stored (the newest is never pruned), is a status event (type 0)
UPDATE submissions SET final = 1
 WHERE status = 6
    OR (status = 3 AND EXISTS (SELECT 1 FROM events e
                                WHERE e.submission_id = submissions.id
                                  AND e.seq = submissions.seq AND e.type = 0));
-- the final ones by last-event time, for --retention-final; the general rule
-- uses submissions_updated (001)
CREATE INDEX submissions_final ON submissions (updated_ms) WHERE final = 1;

-- Store-wide numbers kept in step with the tables by the writer (inside the
-- same transaction as the change), so /metrics never counts rows:
--   submissions, records, events: rows (detached submissions not counted)
--   seq_floor: a new submission's seq starts here (its first event is
--     seq_floor + 1). Deleting a submission whose last seq was S raises it to
--     at least S + 1, so a key published to again after its deletion never
--     repeats a seq of its old history, and skips S + 1: a client holding any
--     position of the old history cannot resume onto the new one (README).
CREATE TABLE counters (
	name  TEXT    PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES
	('submissions', (SELECT count(*) FROM submissions)),
	('records',     (SELECT count(*) FROM records)),
	('events',      (SELECT count(*) FROM events)),
	('seq_floor',   0);
