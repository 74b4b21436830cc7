-- 002: counts reported by legacy publishers.
--
-- A legacy backend sends its own validation counts with each status
-- ("validation_message": {"animals": 3, "animal_unkn": 1, ...}). They are
-- kept per submission and kind, shown in every state and event, and give way
-- to the gateway's own summary of a kind as soon as the store holds records
-- of that kind (store.c, state_fill). A status frame with
-- "validation_message": "" clears them, and so does a reset.
CREATE TABLE reported_counts (
	submission_id INTEGER NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
	kind          TEXT    NOT NULL,
	all_n         INTEGER NOT NULL,
	unknown       INTEGER NOT NULL,
	issues        INTEGER NOT NULL,
	PRIMARY KEY (submission_id, kind)
) WITHOUT ROWID;
