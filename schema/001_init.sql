-- 001: the record store, version 1.
--
-- Applied by store_open(STORE_WRITE) inside one transaction, after which
-- PRAGMA user_version = 1. Migrations are forward-only: never edit this file
-- once released, add 002_*.sql instead.
--
-- Cost model: a publish touches only the rows of the records it names, one
-- kind_counts row per kind and one message_counts row per message, each
-- through an index. Nothing here is ever computed by scanning a submission's
-- records, so 100,000 records in one submission cost a publish nothing extra.
--
-- Small, fixed-shape rows live in WITHOUT ROWID tables (one b-tree instead of
-- table + index). Tables whose rows carry big blobs (events' JSON) keep a
-- rowid, as the SQLite docs advise for rows over ~1/20 of a page.

-- key/value facts about the store itself; 'epoch' is written once, when the
-- database is created, from 16 random bytes (store.c)
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;

-- status NULL = no status yet (GW_ST_NONE); seq = seq of the last event
CREATE TABLE submissions (
	id           INTEGER PRIMARY KEY,
	key          TEXT    NOT NULL UNIQUE,
	status       INTEGER,
	notification TEXT,
	seq          INTEGER NOT NULL DEFAULT 0,
	created_ms   INTEGER NOT NULL,
	updated_ms   INTEGER NOT NULL
);
-- store_list_recent: newest first, walked backwards (the rowid is the
-- implicit last column, so ORDER BY updated_ms DESC, id DESC needs no sort)
CREATE INDEX submissions_updated ON submissions (updated_ms);

-- result: enum gw_result, 0 = unknown
CREATE TABLE records (
	id            INTEGER PRIMARY KEY,
	submission_id INTEGER NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
	kind          TEXT    NOT NULL,
	name          TEXT    NOT NULL,
	result        INTEGER NOT NULL DEFAULT 0,
	UNIQUE (submission_id, kind, name)
);

-- the current messages of one record, in publish order; col NULL = none
CREATE TABLE record_messages (
	record_id INTEGER NOT NULL REFERENCES records (id) ON DELETE CASCADE,
	pos       INTEGER NOT NULL,
	text      TEXT    NOT NULL,
	col       TEXT,
	PRIMARY KEY (record_id, pos)
) WITHOUT ROWID;

-- the summary counters of one kind, moved by summary_transition()
CREATE TABLE kind_counts (
	submission_id INTEGER NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
	kind          TEXT    NOT NULL,
	all_n         INTEGER NOT NULL DEFAULT 0,
	known         INTEGER NOT NULL DEFAULT 0,
	pass          INTEGER NOT NULL DEFAULT 0,
	warning       INTEGER NOT NULL DEFAULT 0,
	error         INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (submission_id, kind)
) WITHOUT ROWID;

-- how many current record messages have this (kind, text, column).
-- col is '' for "no column": NULLs are distinct in a primary key, so NULL
-- would give one row per occurrence; store.c maps '' back to NULL on read.
-- Rows whose count drops to 0 are deleted.
CREATE TABLE message_counts (
	submission_id INTEGER NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
	kind          TEXT    NOT NULL,
	text          TEXT    NOT NULL,
	col           TEXT    NOT NULL DEFAULT '',
	count         INTEGER NOT NULL,
	PRIMARY KEY (submission_id, kind, text, col)
) WITHOUT ROWID;
-- the top messages (count DESC, text, kind, col) are the first rows of this
-- index range: no sort, no scan of the submission's messages
CREATE INDEX message_counts_top
	ON message_counts (submission_id, count DESC, text, kind, col);

-- the last N encoded events of each submission, for replay after reconnect
CREATE TABLE events (
	id            INTEGER PRIMARY KEY,
	submission_id INTEGER NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
	seq           INTEGER NOT NULL,
	type          INTEGER NOT NULL,
	at_ms         INTEGER NOT NULL,
	json          TEXT    NOT NULL,
	UNIQUE (submission_id, seq)
);

-- ids of publishes already applied (idempotency), forgotten after a while
CREATE TABLE processed (
	id    TEXT    PRIMARY KEY,
	at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX processed_at ON processed (at_ms);
