/*
 * The SQLite record store (schema/001_init.sql explains the tables).
 *
 * How: one sqlite3 handle per struct store, used by one thread only (hence
 * SQLITE_OPEN_NOMUTEX). The writer thread owns the only STORE_WRITE handle:
 * store_open creates the file, switches it to WAL, migrates the schema
 * forward (PRAGMA user_version) and makes the epoch once. Other threads open
 * STORE_READ handles, which WAL lets read committed data beside the writer;
 * the daemon must open the writer first, since a reader refuses a database
 * whose schema is missing or not at this binary's version.
 *
 * Every statement is prepared once per handle (writer-only statements only on
 * the writer), parameterised, and reset right after use.
 *
 * The summary is never computed by scanning records. store_apply moves
 * per-kind counters with summary_transition() record by record (the counters
 * of the at most GW_MAX_KINDS kinds are loaded once per publish and written
 * back once), and keeps message_counts in step with record_messages, so a
 * publish costs O(records and messages in the publish) index operations no
 * matter how big the submission is. Reading a state is a handful of index
 * lookups: the submission row, its kind_counts rows and the first
 * GW_TOP_MSGS rows of the message_counts_top index.
 *
 * Each store_apply runs in its own SAVEPOINT inside the writer's batch
 * transaction (store_begin/store_commit), so a failed publish leaves nothing
 * behind and the batch goes on.
 *
 * Row counts for /metrics are never counted: every statement that adds or
 * removes submissions, records or events notes the change in s->delta, and
 * cnt_flush writes it to the counters table (003) in the same savepoint or
 * transaction, so a rollback undoes both. Retention (store_retention_step)
 * detaches an expired submission in one UPDATE, which also raises the seq
 * floor new submissions start from, and purges its rows in later steps of
 * bounded size, each an index range at the front of what is left.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "summary.h"

#define STORE_BUSY_MS 5000
#define STORE_WAL_LIMIT (64 * 1024 * 1024) /* WAL file size kept after a checkpoint */
#define STORE_EPOCH_BYTES 16
#define STORE_PURGE_ROWS 1000  /* rows one retention step deletes by default */

enum {
	Q_SAVEPOINT, Q_RELEASE, Q_ROLLBACK_TO,
	Q_JOB_SAVEPOINT, Q_JOB_RELEASE, Q_JOB_ROLLBACK_TO,
	Q_USER_VERSION,
	Q_SUB_ID, Q_SUB_STATE, Q_SUB_RECENT, Q_KIND_LOAD, Q_MC_TOP,
	Q_EV_OLDEST, Q_EV_SINCE, Q_REP_LOAD,
	Q_CNT_ALL, Q_PAGE_COUNT, Q_FREE_PAGES,
	/* writer only from here on */
	Q_WRITER_FIRST,
	Q_BEGIN = Q_WRITER_FIRST, Q_COMMIT, Q_ROLLBACK,
	Q_SUB_INSERT, Q_SUB_UPDATE,
	Q_PROC_INSERT, Q_PROC_PRUNE, Q_PROC_OLD,
	Q_KIND_PUT, Q_KIND_DEL,
	Q_REC_ADD, Q_REC_FIND, Q_REC_INSERT, Q_REC_SET_RESULT,
	Q_MSG_LIST, Q_MSG_DEL, Q_MSG_INSERT,
	Q_MC_INC, Q_MC_DEL_LAST, Q_MC_DEC,
	Q_RESET_MSGS, Q_RESET_RECS, Q_RESET_KINDS, Q_RESET_MC,
	Q_EV_INSERT, Q_EV_PRUNE,
	Q_REP_CLEAR, Q_REP_PUT,
	Q_CNT_ADD, Q_CNT_FLOOR,
	Q_RET_EXPIRED, Q_RET_EXPIRED_FINAL, Q_RET_DETACH, Q_RET_DETACHED,
	Q_PURGE_RECS, Q_PURGE_MC_EDGE, Q_PURGE_MC_UPTO, Q_PURGE_EVENTS, Q_PURGE_SUB,
	Q_PROBE,
	Q_COUNT
};

/* name (for logs) and SQL of each statement, indexed by the enum above */
static const struct {
	const char *name;
	const char *sql;
} queries[Q_COUNT] = {
	[Q_SAVEPOINT] = { "savepoint", "SAVEPOINT gw" },
	[Q_RELEASE] = { "release", "RELEASE gw" },
	[Q_ROLLBACK_TO] = { "rollback_to", "ROLLBACK TO gw" },
	[Q_JOB_SAVEPOINT] = { "job_savepoint", "SAVEPOINT job" },
	[Q_JOB_RELEASE] = { "job_release", "RELEASE job" },
	[Q_JOB_ROLLBACK_TO] = { "job_rollback_to", "ROLLBACK TO job" },
	[Q_BEGIN] = { "begin", "BEGIN IMMEDIATE" },
	[Q_COMMIT] = { "commit", "COMMIT" },
	[Q_ROLLBACK] = { "rollback", "ROLLBACK" },
	[Q_USER_VERSION] = { "user_version", "PRAGMA user_version" },
	[Q_SUB_ID] = { "sub_id",
		"SELECT id, seq FROM submissions WHERE key = ?1" },
	[Q_SUB_STATE] = { "sub_state",
		"SELECT id, status, notification, seq, updated_ms"
		" FROM submissions WHERE key = ?1" },
	[Q_SUB_RECENT] = { "sub_recent",
		"SELECT key, status, notification, updated_ms, seq"
		" FROM submissions WHERE updated_ms >= 0"  /* not detached (003) */
		" ORDER BY updated_ms DESC, id DESC LIMIT ?1" },
	[Q_KIND_LOAD] = { "kind_load",
		"SELECT kind, all_n, known, pass, warning, error FROM kind_counts"
		" WHERE submission_id = ?1 ORDER BY kind" },
	[Q_MC_TOP] = { "mc_top",
		"SELECT kind, text, NULLIF(col, ''), count FROM message_counts"
		" WHERE submission_id = ?1"
		" ORDER BY count DESC, text, kind, col LIMIT ?2" },
	[Q_EV_OLDEST] = { "ev_oldest",
		"SELECT min(seq) FROM events WHERE submission_id = ?1" },
	[Q_EV_SINCE] = { "ev_since",
		"SELECT seq, json, type FROM events WHERE submission_id = ?1"
		" AND seq > ?2 ORDER BY seq LIMIT ?3" },
	[Q_REP_LOAD] = { "rep_load",
		"SELECT kind, all_n, unknown, issues FROM reported_counts"
		" WHERE submission_id = ?1 ORDER BY kind" },
	[Q_CNT_ALL] = { "cnt_all", "SELECT name, value FROM counters" },
	[Q_PAGE_COUNT] = { "page_count", "PRAGMA page_count" },
	[Q_FREE_PAGES] = { "free_pages", "PRAGMA freelist_count" },

	/* a new submission's seq starts at the floor (003: never reuse a seq) */
	[Q_SUB_INSERT] = { "sub_insert",
		"INSERT INTO submissions (key, seq, created_ms, updated_ms)"
		" VALUES (?1, coalesce((SELECT value FROM counters"
		" WHERE name = 'seq_floor'), 0), ?2, ?2)" },
	/* final: ?7 when this publish sets the status, else stays 1 only for
	 * Completed (?8): any other event after an Error revives it */
	[Q_SUB_UPDATE] = { "sub_update",
		"UPDATE submissions SET"
		" status = CASE WHEN ?1 THEN ?2 ELSE status END,"
		" notification = CASE WHEN ?3 THEN ?4 ELSE notification END,"
		" final = CASE WHEN ?1 THEN ?7 ELSE (status IS ?8) END,"
		" seq = seq + 1, updated_ms = ?5 WHERE id = ?6" },
	[Q_PROC_INSERT] = { "proc_insert",
		"INSERT INTO processed (id, at_ms) VALUES (?1, ?2)"
		" ON CONFLICT (id) DO NOTHING" },
	[Q_PROC_PRUNE] = { "proc_prune",
		"DELETE FROM processed WHERE id IN (SELECT id FROM processed"
		" WHERE at_ms < ?1 ORDER BY at_ms LIMIT ?2)" },
	[Q_PROC_OLD] = { "proc_old",
		"SELECT 1 FROM processed WHERE at_ms < ?1 LIMIT 1" },
	[Q_KIND_PUT] = { "kind_put",
		"INSERT INTO kind_counts"
		" (submission_id, kind, all_n, known, pass, warning, error)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
		" ON CONFLICT (submission_id, kind) DO UPDATE SET"
		" all_n = excluded.all_n, known = excluded.known,"
		" pass = excluded.pass, warning = excluded.warning,"
		" error = excluded.error" },
	[Q_KIND_DEL] = { "kind_del",
		"DELETE FROM kind_counts WHERE submission_id = ?1 AND kind = ?2" },
	[Q_REC_ADD] = { "rec_add",
		"INSERT INTO records (submission_id, kind, name, result)"
		" VALUES (?1, ?2, ?3, 0)"
		" ON CONFLICT (submission_id, kind, name) DO NOTHING" },
	[Q_REC_FIND] = { "rec_find",
		"SELECT id, result FROM records"
		" WHERE submission_id = ?1 AND kind = ?2 AND name = ?3" },
	[Q_REC_INSERT] = { "rec_insert",
		"INSERT INTO records (submission_id, kind, name, result)"
		" VALUES (?1, ?2, ?3, ?4)" },
	[Q_REC_SET_RESULT] = { "rec_set_result",
		"UPDATE records SET result = ?2 WHERE id = ?1" },
	[Q_MSG_LIST] = { "msg_list",
		"SELECT text, col FROM record_messages WHERE record_id = ?1" },
	[Q_MSG_DEL] = { "msg_del",
		"DELETE FROM record_messages WHERE record_id = ?1" },
	[Q_MSG_INSERT] = { "msg_insert",
		"INSERT INTO record_messages (record_id, pos, text, col)"
		" VALUES (?1, ?2, ?3, ?4)" },
	[Q_MC_INC] = { "mc_inc",
		"INSERT INTO message_counts (submission_id, kind, text, col, count)"
		" VALUES (?1, ?2, ?3, coalesce(?4, ''), 1)"
		" ON CONFLICT (submission_id, kind, text, col)"
		" DO UPDATE SET count = count + 1" },
	/* decrement = delete the row if this was its last use, else count - 1:
	 * both are one primary-key lookup, and no row ever sits at 0 */
	[Q_MC_DEL_LAST] = { "mc_del_last",
		"DELETE FROM message_counts WHERE submission_id = ?1 AND kind = ?2"
		" AND text = ?3 AND col = coalesce(?4, '') AND count <= 1" },
	[Q_MC_DEC] = { "mc_dec",
		"UPDATE message_counts SET count = count - 1"
		" WHERE submission_id = ?1 AND kind = ?2"
		" AND text = ?3 AND col = coalesce(?4, '')" },
	[Q_RESET_MSGS] = { "reset_msgs",
		"DELETE FROM record_messages WHERE record_id IN"
		" (SELECT id FROM records WHERE submission_id = ?1)" },
	[Q_RESET_RECS] = { "reset_recs",
		"DELETE FROM records WHERE submission_id = ?1" },
	[Q_RESET_KINDS] = { "reset_kinds",
		"DELETE FROM kind_counts WHERE submission_id = ?1" },
	[Q_RESET_MC] = { "reset_mc",
		"DELETE FROM message_counts WHERE submission_id = ?1" },
	[Q_EV_INSERT] = { "ev_insert",
		"INSERT INTO events (submission_id, seq, type, at_ms, json)"
		" VALUES (?1, ?2, ?3, ?4, ?5)" },
	[Q_EV_PRUNE] = { "ev_prune",
		"DELETE FROM events WHERE submission_id = ?1 AND seq <= ?2" },
	[Q_REP_CLEAR] = { "rep_clear",
		"DELETE FROM reported_counts WHERE submission_id = ?1" },
	[Q_REP_PUT] = { "rep_put",
		"INSERT INTO reported_counts (submission_id, kind, all_n, unknown, issues)"
		" VALUES (?1, ?2, ?3, ?4, ?5)" },

	/* retention (003) */
	[Q_CNT_ADD] = { "cnt_add",
		"UPDATE counters SET value = value + ?2 WHERE name = ?1" },
	[Q_CNT_FLOOR] = { "cnt_floor",
		"UPDATE counters SET value = max(value, ?1 + 1) WHERE name = 'seq_floor'" },
	[Q_RET_EXPIRED] = { "ret_expired",
		"SELECT id, seq FROM submissions WHERE updated_ms >= 0"
		" AND updated_ms < ?1 ORDER BY updated_ms LIMIT ?2" },
	[Q_RET_EXPIRED_FINAL] = { "ret_expired_final",
		"SELECT id, seq FROM submissions WHERE final = 1 AND updated_ms >= 0"
		" AND updated_ms < ?1 ORDER BY updated_ms LIMIT ?2" },
	[Q_RET_DETACH] = { "ret_detach",
		"UPDATE submissions SET key = '#' || id, updated_ms = -1, final = 0"
		" WHERE id = ?1" },
	[Q_RET_DETACHED] = { "ret_detached",
		"SELECT id FROM submissions WHERE updated_ms < 0 LIMIT 1" },
	/* each deletes at most ?2 rows (records: plus their messages, by the
	 * ON DELETE CASCADE); the first rows of the index range go, so the next
	 * call starts where this one stopped, without walking deleted ground */
	[Q_PURGE_RECS] = { "purge_recs",
		"DELETE FROM records WHERE id IN (SELECT id FROM records"
		" WHERE submission_id = ?1 LIMIT ?2)" },
	/* message_counts has no rowid: the ?2-th key (0-based) of the range,
	 * then everything up to it, both walks of the primary key */
	[Q_PURGE_MC_EDGE] = { "purge_mc_edge",
		"SELECT kind, text, col FROM message_counts WHERE submission_id = ?1"
		" ORDER BY kind, text, col LIMIT 1 OFFSET ?2" },
	[Q_PURGE_MC_UPTO] = { "purge_mc_upto",
		"DELETE FROM message_counts WHERE submission_id = ?1"
		" AND (kind, text, col) <= (?2, ?3, ?4)" },
	[Q_PURGE_EVENTS] = { "purge_events",
		"DELETE FROM events WHERE id IN (SELECT id FROM events"
		" WHERE submission_id = ?1 LIMIT ?2)" },
	[Q_PURGE_SUB] = { "purge_sub",
		"DELETE FROM submissions WHERE id = ?1" },
	[Q_PROBE] = { "probe",
		"INSERT INTO meta (key, value) VALUES ('probe', ?1)"
		" ON CONFLICT (key) DO UPDATE SET value = excluded.value" },
};

/* rows of the counters table (003) that follow row counts */
enum { CNT_SUBMISSIONS, CNT_RECORDS, CNT_EVENTS, CNT_N };
static const char *const cnt_names[CNT_N] = { "submissions", "records", "events" };

struct store {
	sqlite3 *db;                 /* owned; closed by store_close */
	int mode;                    /* STORE_READ or STORE_WRITE */
	sqlite3_stmt *q[Q_COUNT];    /* owned; NULL for writer-only on a reader */
	int bind_rc;                 /* first failed bind since the last step */
	int64_t delta[CNT_N];        /* writer: row count changes not yet in counters */
	int incremental;             /* PRAGMA auto_vacuum is INCREMENTAL */
	int64_t page_size;
	char epoch[2 * STORE_EPOCH_BYTES + 1];
	char err[256];               /* reason of the last failure */
	int err_rc;                  /* its extended SQLite result code (0: not SQLite's) */
};

/* The counters of one submission's kinds while a publish is applied: loaded
 * once, moved in memory, written back once (only the changed ones). */
struct kind_cache {
	size_t n;
	struct gw_kind_sum k[GW_MAX_KINDS];
	unsigned char dirty[GW_MAX_KINDS];
};

/* ---- statement helpers (the handle's thread) ---- */

/* records and logs the handle's last SQLite error; returns GW_EINTERNAL */
static int db_fail(struct store *s, const char *func, const char *what)
{
	int sys = sqlite3_system_errno(s->db);

	s->err_rc = sqlite3_extended_errcode(s->db);
	/* for I/O errors the OS's reason says what to do ("No space left on
	 * device", "Read-only file system") */
	switch (s->err_rc & 0xff) {
	case SQLITE_IOERR: case SQLITE_FULL: case SQLITE_CANTOPEN: case SQLITE_READONLY:
		if (sys) {
			snprintf(s->err, sizeof(s->err), "%s: %s (%s)", what,
				 sqlite3_errmsg(s->db), strerror(sys));
			break;
		}
		/* fall through */
	default:
		snprintf(s->err, sizeof(s->err), "%s: %s", what, sqlite3_errmsg(s->db));
	}
	gw_log(GW_LOG_ERROR, "%s: %s", func, s->err);
	return GW_EINTERNAL;
}

/* a reason that is not an SQLite error; returns rc */
static int fail_msg(struct store *s, int rc, const char *func, const char *msg)
{
	snprintf(s->err, sizeof(s->err), "%s", msg);
	s->err_rc = 0;
	gw_log(rc == GW_EINVAL ? GW_LOG_WARN : GW_LOG_ERROR, "%s: %s", func, msg);
	return rc;
}

/* The binders remember the first failure so callers can bind a whole row
 * and check once, in q_step. SQLITE_STATIC: every bound string outlives the
 * step that reads it (it is reset right after). */
static void b_int(struct store *s, int q, int i, int64_t v)
{
	int rc = sqlite3_bind_int64(s->q[q], i, v);

	if (rc != SQLITE_OK && s->bind_rc == SQLITE_OK)
		s->bind_rc = rc;
}

static void b_text(struct store *s, int q, int i, const char *v)
{
	int rc = v ? sqlite3_bind_text(s->q[q], i, v, -1, SQLITE_STATIC)
		   : sqlite3_bind_null(s->q[q], i);

	if (rc != SQLITE_OK && s->bind_rc == SQLITE_OK)
		s->bind_rc = rc;
}

/* Checks that q is usable on this handle (writer-only statements are not
 * prepared on readers) and resets the bind status. Call before binding. */
static int q_use(struct store *s, int q, const char *func)
{
	s->bind_rc = SQLITE_OK;
	if (s->q[q])
		return 0;
	snprintf(s->err, sizeof(s->err), "%s needs the write handle",
		 queries[q].name);
	gw_log(GW_LOG_ERROR, "%s: %s", func, s->err);
	return GW_EINTERNAL;
}

/* Steps q once. Returns SQLITE_ROW or SQLITE_DONE; on failure logs, resets q
 * and returns GW_EINTERNAL. The caller resets q after SQLITE_ROW/DONE. */
static int q_step(struct store *s, int q, const char *func)
{
	int rc;

	if (s->bind_rc != SQLITE_OK) {
		snprintf(s->err, sizeof(s->err), "%s: bind: %s", queries[q].name,
			 sqlite3_errstr(s->bind_rc));
		s->err_rc = s->bind_rc;
		gw_log(GW_LOG_ERROR, "%s: %s", func, s->err);
		s->bind_rc = SQLITE_OK;
		sqlite3_reset(s->q[q]);
		return GW_EINTERNAL;
	}
	rc = sqlite3_step(s->q[q]);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return rc;
	db_fail(s, func, queries[q].name);
	sqlite3_reset(s->q[q]);
	return GW_EINTERNAL;
}

/* runs a statement that returns no rows; 0 or GW_EINTERNAL */
static int q_exec(struct store *s, int q, const char *func)
{
	int rc = q_step(s, q, func);

	if (rc < 0)
		return rc;
	sqlite3_reset(s->q[q]);
	return 0;
}

/* Writer: adds the row count changes noted in s->delta to the counters
 * table, inside the caller's transaction or savepoint (so a rollback undoes
 * both), and clears them. 0 or GW_EINTERNAL. */
static int cnt_flush(struct store *s, const char *func)
{
	for (int i = 0; i < CNT_N; i++) {
		if (!s->delta[i])
			continue;
		if (q_use(s, Q_CNT_ADD, func) < 0)
			return GW_EINTERNAL;
		b_text(s, Q_CNT_ADD, 1, cnt_names[i]);
		b_int(s, Q_CNT_ADD, 2, s->delta[i]);
		if (q_exec(s, Q_CNT_ADD, func) < 0)
			return GW_EINTERNAL;
		s->delta[i] = 0;
	}
	return 0;
}

/* column text copied into a fixed buffer (truncated, always terminated) */
static void col_copy(sqlite3_stmt *st, int col, char *out, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(out, cap, "%s", t ? (const char *)t : "");
}

/* column text strdup'd; NULL stays NULL. Returns -1 only on out of memory. */
static int col_dup(sqlite3_stmt *st, int col, char **out)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	*out = NULL;
	if (!t)
		return sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM ? -1 : 0;
	*out = strdup((const char *)t);
	return *out ? 0 : -1;
}

/* ---- opening ---- */

/* 16 random bytes as 32 lowercase hex digits */
static int make_epoch(char out[2 * STORE_EPOCH_BYTES + 1])
{
	unsigned char b[STORE_EPOCH_BYTES];
	size_t got = 0;

	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got < sizeof(b)) { /* no getrandom (old kernel): the device */
		int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			return -1;
		got = 0;
		while (got < sizeof(b)) {
			ssize_t n = read(fd, b + got, sizeof(b) - got);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		close(fd);
		if (got < sizeof(b))
			return -1;
	}
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	return 0;
}

/* one integer from a one-row statement (PRAGMA user_version); <0 on error */
static int sql_int(sqlite3 *db, const char *sql, int *out)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : -1;
}

/* A database without tables gets auto_vacuum = INCREMENTAL, so that what
 * retention deletes can be given back in small steps (store_vacuum_step).
 * SQLite lets this be chosen only before the first table exists (and before
 * WAL is set); a store created by an older statusgate keeps NONE: its freed
 * pages are reused, the file does not shrink (README: Store and retention). */
static void set_auto_vacuum(sqlite3 *db)
{
	int tables = -1;

	if (sql_int(db, "SELECT count(*) FROM sqlite_master", &tables) == 0 && tables == 0)
		sqlite3_exec(db, "PRAGMA auto_vacuum = INCREMENTAL", NULL, NULL, NULL);
}

/* Sets WAL (not for in-memory databases, which cannot have it). Done once
 * per database really, but cheap and idempotent on every writer open. */
static int set_wal(sqlite3 *db, char *err, size_t errlen)
{
	const char *file = sqlite3_db_filename(db, "main");
	sqlite3_stmt *st = NULL;
	const unsigned char *mode = NULL;
	int rc;

	if (!file || !*file)
		return 0;
	rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		mode = sqlite3_column_text(st, 0);
	if (!mode || strcmp((const char *)mode, "wal")) {
		snprintf(err, errlen, "cannot switch to WAL mode (%s): %s",
			 mode ? (const char *)mode : "no answer", sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

/*
 * Writer only: applies schema/NNN_*.sql from user_version on, all in one
 * IMMEDIATE transaction (a crash mid-way leaves the old version intact), and
 * creates the epoch when the database is new.
 */
static int migrate(sqlite3 *db, int version, char *err, size_t errlen)
{
	char *msg = NULL, sql[64];

	if (version < 0 || (unsigned)version > gw_schema_count) {
		snprintf(err, errlen, "database schema version %d is newer than "
			 "this statusgate (knows %u); refusing to touch it",
			 version, gw_schema_count);
		return -1;
	}
	if ((unsigned)version == gw_schema_count)
		return 0;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK)
		goto fail;
	for (unsigned i = (unsigned)version; i < gw_schema_count; i++) {
		if (sqlite3_exec(db, gw_schema_sql[i], NULL, NULL, &msg) != SQLITE_OK)
			goto fail;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %u", i + 1);
		if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
			goto fail;
		gw_log(GW_LOG_INFO, "%s: schema migrated to version %u", __func__, i + 1);
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)
		goto fail;
	return 0;

fail:
	snprintf(err, errlen, "schema migration from version %d failed: %s",
		 version, msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Notes the auto_vacuum mode and page size (store_vacuum_step, store_stats);
 * the writer says once when freed space cannot be given back. */
static void load_vacuum_mode(struct store *s, const char *path)
{
	int av = 0, ps = 4096;

	sql_int(s->db, "PRAGMA auto_vacuum", &av);
	sql_int(s->db, "PRAGMA page_size", &ps);
	s->incremental = av == 2;
	s->page_size = ps;
	if (s->mode == STORE_WRITE && !s->incremental && strcmp(path, ":memory:"))
		gw_log(GW_LOG_INFO, "%s: %s was created without incremental auto-vacuum: "
		       "space that retention frees is reused, but the file does not "
		       "shrink (README: Store and retention)", __func__, path);
}

/* Reads the epoch; the writer makes it when missing (a new database). */
static int load_epoch(struct store *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *v;
	char fresh[sizeof(s->epoch)];
	int rc;

	for (int attempt = 0; attempt < 2; attempt++) {
		rc = sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'epoch'",
					-1, &st, NULL);
		if (rc != SQLITE_OK)
			goto fail;
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW && (v = sqlite3_column_text(st, 0)) && *v) {
			snprintf(s->epoch, sizeof(s->epoch), "%s", (const char *)v);
			sqlite3_finalize(st);
			return 0;
		}
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			goto fail;
		sqlite3_finalize(st);
		st = NULL;
		if (s->mode != STORE_WRITE || attempt > 0)
			break;
		if (make_epoch(fresh) < 0) {
			snprintf(err, errlen, "no random bytes for the epoch: %s",
				 strerror(errno));
			return -1;
		}
		rc = sqlite3_prepare_v2(s->db, "INSERT INTO meta (key, value)"
					" VALUES ('epoch', ?1) ON CONFLICT (key) DO NOTHING",
					-1, &st, NULL);
		if (rc != SQLITE_OK)
			goto fail;
		sqlite3_bind_text(st, 1, fresh, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto fail;
		sqlite3_finalize(st);
		st = NULL;
	}
	snprintf(err, errlen, "the database has no epoch");
	return -1;

fail:
	snprintf(err, errlen, "epoch: %s", sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	return -1;
}

int store_open(const char *path, int mode, struct store **out,
	       char *err, size_t errlen)
{
	struct store *s;
	int flags, version = 0;
	char *msg = NULL;

	*out = NULL;
	if (errlen)
		err[0] = '\0';
	if (!path || (mode != STORE_READ && mode != STORE_WRITE)) {
		snprintf(err, errlen, "bad arguments");
		return GW_EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return GW_EINTERNAL;
	}
	s->mode = mode;
	/* NOMUTEX: a handle is only ever used by the thread that opened it */
	flags = SQLITE_OPEN_NOMUTEX | (mode == STORE_WRITE
		? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY);
	if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
			 s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
	/* synchronous=FULL: in WAL mode SQLite then fsyncs the WAL at every
	 * commit, so a commit that returned is on disk and an answer given
	 * after it (HTTP 2xx, AMQP ack) survives a power loss. NORMAL syncs
	 * only at checkpoints: a crash of the machine could lose the last
	 * commits, and a restart would hand their (epoch, seq) to other events.
	 * Group commit spreads the one fsync over a whole batch
	 * (docs/BENCHMARKS.md has the cost). */
	if (sqlite3_exec(s->db, "PRAGMA foreign_keys = ON;"
			 "PRAGMA synchronous = FULL", NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(s->db));
		goto fail;
	}
	if (mode == STORE_WRITE) {
		set_auto_vacuum(s->db);
		if (set_wal(s->db, err, errlen) < 0)
			goto fail;
		char pragma[64];

		snprintf(pragma, sizeof(pragma), "PRAGMA journal_size_limit = %d",
			 STORE_WAL_LIMIT);
		sqlite3_exec(s->db, pragma, NULL, NULL, NULL); /* a hint only */
	}
	if (sql_int(s->db, "PRAGMA user_version", &version) < 0) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(s->db));
		goto fail;
	}
	if (mode == STORE_WRITE) {
		if (migrate(s->db, version, err, errlen) < 0)
			goto fail;
	} else if (version < 0 || (unsigned)version != gw_schema_count) {
		/* the writer migrates; a reader never writes, so it cannot help */
		snprintf(err, errlen, "%s: schema version %d, this statusgate needs "
			 "%u (open the writer first)", path, version, gw_schema_count);
		goto fail;
	}
	if (load_epoch(s, err, errlen) < 0)
		goto fail;
	load_vacuum_mode(s, path);

	for (int i = 0; i < Q_COUNT; i++) {
		if (i >= Q_WRITER_FIRST && mode != STORE_WRITE)
			break;
		if (sqlite3_prepare_v3(s->db, queries[i].sql, -1,
				       SQLITE_PREPARE_PERSISTENT, &s->q[i],
				       NULL) != SQLITE_OK) {
			snprintf(err, errlen, "prepare %s: %s", queries[i].name,
				 sqlite3_errmsg(s->db));
			goto fail;
		}
	}
	s->err[0] = '\0';
	*out = s;
	return 0;

fail:
	gw_log(GW_LOG_ERROR, "%s: %s", __func__, err);
	sqlite3_free(msg);
	store_close(s);
	return GW_EINTERNAL;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(s->q[i]);
	/* a writer's close checkpoints the WAL; a busy reader elsewhere only
	 * means the WAL file stays, which is harmless */
	if (s->db && sqlite3_close(s->db) != SQLITE_OK)
		gw_log(GW_LOG_ERROR, "%s: %s", __func__, sqlite3_errmsg(s->db));
	free(s);
}

const char *store_epoch(const struct store *s)
{
	return s->epoch;
}

int store_schema_version(struct store *s)
{
	int rc, v;

	if (q_use(s, Q_USER_VERSION, __func__) < 0 ||
	    (rc = q_step(s, Q_USER_VERSION, __func__)) < 0)
		return GW_EINTERNAL;
	v = rc == SQLITE_ROW ? sqlite3_column_int(s->q[Q_USER_VERSION], 0) : 0;
	sqlite3_reset(s->q[Q_USER_VERSION]);
	return v;
}

/* ---- transactions (writer thread) ---- */

int store_begin(struct store *s)
{
	/* IMMEDIATE takes the write lock now, so the batch cannot fail later
	 * with SQLITE_BUSY on its first write */
	if (q_use(s, Q_BEGIN, __func__) < 0)
		return GW_EINTERNAL;
	return q_exec(s, Q_BEGIN, __func__);
}

int store_commit(struct store *s)
{
	if (q_use(s, Q_COMMIT, __func__) < 0)
		return GW_EINTERNAL;
	return q_exec(s, Q_COMMIT, __func__);
}

int store_rollback(struct store *s)
{
	/* SQLite may already have rolled back by itself (SQLITE_FULL, IOERR) */
	if (sqlite3_get_autocommit(s->db))
		return 0;
	if (q_use(s, Q_ROLLBACK, __func__) < 0)
		return GW_EINTERNAL;
	return q_exec(s, Q_ROLLBACK, __func__);
}

int store_job_begin(struct store *s)
{
	/* outside a transaction a SAVEPOINT would open one of its own */
	if (sqlite3_get_autocommit(s->db))
		return fail_msg(s, GW_EINTERNAL, __func__, "the transaction was rolled back");
	return q_exec(s, Q_JOB_SAVEPOINT, __func__);
}

int store_job_end(struct store *s, int keep)
{
	if (sqlite3_get_autocommit(s->db)) {   /* SQLite rolled it all back */
		if (!s->err[0])
			return fail_msg(s, GW_EINTERNAL, __func__, "the transaction was rolled back");
		s->err_rc = 0;   /* keep the reason that came first */
		return GW_EINTERNAL;
	}
	if (!keep && q_exec(s, Q_JOB_ROLLBACK_TO, __func__) < 0)
		return GW_EINTERNAL;
	return q_exec(s, Q_JOB_RELEASE, __func__);
}

int store_failure_is_local(const struct store *s)
{
	/* Only errors that say "this row, this value" are the publish's own.
	 * Anything else (disk full or read-only, I/O, memory, locks, a broken
	 * schema: SQLITE_ERROR too) is taken to hit every publish alike: then
	 * the batch fails and is retried later, and nothing is dead-lettered
	 * for a fault of the store. */
	switch (s->err_rc & 0xff) {
	case SQLITE_CONSTRAINT:      /* incl. a trigger's RAISE(ABORT, ...) */
	case SQLITE_TOOBIG:
	case SQLITE_MISMATCH:
	case SQLITE_RANGE:
		return !sqlite3_get_autocommit(s->db);
	default:
		return 0;
	}
}

int store_probe(struct store *s, int64_t now_ms)
{
	char v[24];

	if (store_begin(s) < 0)
		return GW_EINTERNAL;
	snprintf(v, sizeof(v), "%lld", (long long)now_ms);
	if (q_use(s, Q_PROBE, __func__) < 0)
		goto fail;
	b_text(s, Q_PROBE, 1, v);
	if (q_exec(s, Q_PROBE, __func__) < 0 || store_commit(s) < 0)
		goto fail;
	return 0;
fail:
	store_rollback(s);
	return GW_EINTERNAL;
}

const char *store_last_error(const struct store *s)
{
	return s->err;
}

/* ---- reading a state (any handle) ---- */

/* kinds of submission sub_id into k[0..*n), sorted by kind; 0 or <0 */
static int kinds_load(struct store *s, int64_t sub_id, struct gw_kind_sum *k,
		      size_t *n, const char *func)
{
	sqlite3_stmt *st = s->q[Q_KIND_LOAD];
	int rc;

	*n = 0;
	if (q_use(s, Q_KIND_LOAD, func) < 0)
		return GW_EINTERNAL;
	b_int(s, Q_KIND_LOAD, 1, sub_id);
	while ((rc = q_step(s, Q_KIND_LOAD, func)) == SQLITE_ROW) {
		if (*n == GW_MAX_KINDS) { /* only if the limit was ever lowered */
			sqlite3_reset(st);
			return fail_msg(s, GW_EINTERNAL, func,
					"more kinds stored than GW_MAX_KINDS");
		}
		memset(&k[*n], 0, sizeof(k[*n]));
		col_copy(st, 0, k[*n].kind, sizeof(k[*n].kind));
		k[*n].all = sqlite3_column_int64(st, 1);
		k[*n].known = sqlite3_column_int64(st, 2);
		k[*n].pass = sqlite3_column_int64(st, 3);
		k[*n].warning = sqlite3_column_int64(st, 4);
		k[*n].error = sqlite3_column_int64(st, 5);
		(*n)++;
	}
	if (rc < 0)
		return rc;
	sqlite3_reset(st);
	return 0;
}

/*
 * Adds the counts a legacy publisher reported to st->kinds: a reported kind
 * takes the place of a kind the store has no records of, and gives way to
 * one it has (the computed summary wins). The kinds stay sorted by name.
 */
static int reported_merge(struct store *s, int64_t sub_id, struct gw_state *st,
			  const char *func)
{
	sqlite3_stmt *q = s->q[Q_REP_LOAD];
	int rc;

	if (q_use(s, Q_REP_LOAD, func) < 0)
		return GW_EINTERNAL;
	b_int(s, Q_REP_LOAD, 1, sub_id);
	while ((rc = q_step(s, Q_REP_LOAD, func)) == SQLITE_ROW) {
		struct gw_kind_sum r;
		size_t i;

		memset(&r, 0, sizeof(r));
		col_copy(q, 0, r.kind, sizeof(r.kind));
		r.reported = 1;
		r.all = sqlite3_column_int64(q, 1);
		r.rep_unknown = sqlite3_column_int64(q, 2);
		r.rep_issues = sqlite3_column_int64(q, 3);
		r.known = r.all > r.rep_unknown ? r.all - r.rep_unknown : 0;
		for (i = 0; i < st->nkinds && strcmp(st->kinds[i].kind, r.kind) < 0; i++)
			;
		if (i < st->nkinds && !strcmp(st->kinds[i].kind, r.kind)) {
			if (st->kinds[i].all == 0)
				st->kinds[i] = r;
			continue;
		}
		if (st->nkinds == GW_MAX_KINDS)
			continue;   /* the store's own kinds come first */
		memmove(&st->kinds[i + 1], &st->kinds[i], (st->nkinds - i) * sizeof(r));
		st->kinds[i] = r;
		st->nkinds++;
	}
	if (rc < 0)
		return rc;
	sqlite3_reset(q);
	return 0;
}

/* Fills *st (overwritten, not freed first) with the state of key. On failure
 * *st holds nothing allocated. Runs inside the caller's transaction or
 * savepoint, so the parts agree with each other. */
static int state_fill(struct store *s, const char *key, struct gw_state *st,
		      const char *func)
{
	sqlite3_stmt *q = s->q[Q_SUB_STATE], *top = s->q[Q_MC_TOP];
	int64_t sub_id;
	int rc;

	memset(st, 0, sizeof(*st));
	snprintf(st->key, sizeof(st->key), "%s", key);
	st->status = GW_ST_NONE;

	if (q_use(s, Q_SUB_STATE, func) < 0)
		return GW_EINTERNAL;
	b_text(s, Q_SUB_STATE, 1, key);
	if ((rc = q_step(s, Q_SUB_STATE, func)) < 0)
		return rc;
	if (rc == SQLITE_DONE) {
		sqlite3_reset(q);
		return 0;
	}
	st->exists = 1;
	sub_id = sqlite3_column_int64(q, 0);
	st->status = sqlite3_column_type(q, 1) == SQLITE_NULL
		? GW_ST_NONE : sqlite3_column_int(q, 1);
	if (col_dup(q, 2, &st->notification) < 0) {
		sqlite3_reset(q);
		rc = fail_msg(s, GW_EINTERNAL, func, "out of memory");
		goto fail;
	}
	st->seq = (uint64_t)sqlite3_column_int64(q, 3);
	proto_iso8601(sqlite3_column_int64(q, 4), st->updated_at);
	sqlite3_reset(q);

	if ((rc = kinds_load(s, sub_id, st->kinds, &st->nkinds, func)) < 0)
		goto fail;
	if ((rc = reported_merge(s, sub_id, st, func)) < 0)
		goto fail;

	if ((rc = q_use(s, Q_MC_TOP, func)) < 0)
		goto fail;
	b_int(s, Q_MC_TOP, 1, sub_id);
	b_int(s, Q_MC_TOP, 2, GW_TOP_MSGS);
	while ((rc = q_step(s, Q_MC_TOP, func)) == SQLITE_ROW && st->ntop < GW_TOP_MSGS) {
		struct gw_top_msg *m = &st->top[st->ntop];

		col_copy(top, 0, m->kind, sizeof(m->kind));
		m->count = sqlite3_column_int64(top, 3);
		if (col_dup(top, 1, &m->text) < 0 || col_dup(top, 2, &m->column) < 0) {
			free(m->text);
			m->text = NULL;
			sqlite3_reset(top);
			rc = fail_msg(s, GW_EINTERNAL, func, "out of memory");
			goto fail;
		}
		if (!m->text) { /* NOT NULL column; be safe anyway */
			free(m->column);
			m->column = NULL;
			continue;
		}
		st->ntop++;
	}
	if (rc < 0)
		goto fail;
	sqlite3_reset(top);
	return 0;

fail:
	proto_state_clear(st);
	memset(st, 0, sizeof(*st));
	st->status = GW_ST_NONE;
	return rc < 0 ? rc : GW_EINTERNAL;
}

/* ends the read savepoint; on failure rolls it back and returns rc or
 * GW_EINTERNAL */
static int read_end(struct store *s, int rc, const char *func)
{
	if (rc >= 0 && q_exec(s, Q_RELEASE, func) == 0)
		return rc;
	if (!sqlite3_get_autocommit(s->db)) {
		q_exec(s, Q_ROLLBACK_TO, func);
		q_exec(s, Q_RELEASE, func);
	}
	return rc < 0 ? rc : GW_EINTERNAL;
}

int store_get_state(struct store *s, const char *key, struct gw_state *st)
{
	int rc;

	/* a savepoint outside a transaction is a read transaction: the row,
	 * counters and messages all come from one snapshot */
	if (q_exec(s, Q_SAVEPOINT, __func__) < 0) {
		memset(st, 0, sizeof(*st));
		st->status = GW_ST_NONE;
		return GW_EINTERNAL;
	}
	rc = state_fill(s, key, st, __func__);
	rc = read_end(s, rc, __func__);
	if (rc < 0 && st->exists) {
		proto_state_clear(st);
		memset(st, 0, sizeof(*st));
		st->status = GW_ST_NONE;
	}
	return rc < 0 ? rc : 0;
}

/* ---- applying a publish (writer thread, inside store_begin/commit) ---- */

/* 0 if p is something store_apply can work with; else GW_EINVAL */
static int pub_check(struct store *s, const struct gw_pub *p)
{
	if (!p || !p->key[0] || p->type < 0 || p->type >= GW_PUB_COUNT)
		return fail_msg(s, GW_EINVAL, __func__, "no submission key or bad type");
	if (p->type == GW_PUB_STATUS && (p->status < GW_ST_NONE || p->status >= GW_ST_COUNT))
		return fail_msg(s, GW_EINVAL, __func__, "bad status");
	if (p->type != GW_PUB_RECORDS && p->type != GW_PUB_VALIDATION)
		return 0;
	if (p->nrec && !p->recs)
		return fail_msg(s, GW_EINVAL, __func__, "records missing");
	for (size_t i = 0; i < p->nrec; i++) {
		const struct gw_rec *r = &p->recs[i];

		if (!r->kind || !*r->kind || strlen(r->kind) > GW_KIND_MAX || !r->name)
			return fail_msg(s, GW_EINVAL, __func__, "record without a valid kind or name");
		if (r->result < 0 || r->result >= GW_RES_COUNT)
			return fail_msg(s, GW_EINVAL, __func__, "bad record result");
		if (r->nmsg && !r->msgs)
			return fail_msg(s, GW_EINVAL, __func__, "messages missing");
		for (size_t j = 0; j < r->nmsg; j++)
			if (!r->msgs[j].text)
				return fail_msg(s, GW_EINVAL, __func__, "message without text");
	}
	return 0;
}

/* Index of kind in the cache, adding it (all zero, dirty) when absent.
 * GW_EINVAL when that would exceed GW_MAX_KINDS. */
static int kind_slot(struct store *s, struct kind_cache *kc, const char *key,
		     const char *kind)
{
	char msg[160];

	for (size_t i = 0; i < kc->n; i++)
		if (!strcmp(kc->k[i].kind, kind))
			return (int)i;
	if (kc->n == GW_MAX_KINDS) {
		snprintf(msg, sizeof(msg), "submission %s would have more than %d "
			 "record kinds (adding \"%s\")", key, GW_MAX_KINDS, kind);
		return fail_msg(s, GW_EINVAL, "store_apply", msg);
	}
	memset(&kc->k[kc->n], 0, sizeof(kc->k[kc->n]));
	snprintf(kc->k[kc->n].kind, sizeof(kc->k[kc->n].kind), "%s", kind);
	kc->dirty[kc->n] = 1;
	return (int)kc->n++;
}

/* writes the changed counters back; a kind left with no records goes */
static int kinds_store(struct store *s, int64_t sub_id, struct kind_cache *kc)
{
	for (size_t i = 0; i < kc->n; i++) {
		const struct gw_kind_sum *k = &kc->k[i];
		int q = k->all > 0 ? Q_KIND_PUT : Q_KIND_DEL;

		if (!kc->dirty[i])
			continue;
		if (q_use(s, q, __func__) < 0)
			return GW_EINTERNAL;
		b_int(s, q, 1, sub_id);
		b_text(s, q, 2, k->kind);
		if (q == Q_KIND_PUT) {
			b_int(s, q, 3, k->all);
			b_int(s, q, 4, k->known);
			b_int(s, q, 5, k->pass);
			b_int(s, q, 6, k->warning);
			b_int(s, q, 7, k->error);
		}
		if (q_exec(s, q, __func__) < 0)
			return GW_EINTERNAL;
		kc->dirty[i] = 0;
	}
	return 0;
}

/* message_counts of (kind, text, col) up or down by one */
static int mc_move(struct store *s, int64_t sub_id, const char *kind,
		   const char *text, const char *col, int up)
{
	int q = up ? Q_MC_INC : Q_MC_DEL_LAST;

	if (q_use(s, q, __func__) < 0)
		return GW_EINTERNAL;
	b_int(s, q, 1, sub_id);
	b_text(s, q, 2, kind);
	b_text(s, q, 3, text);
	b_text(s, q, 4, col);
	if (q_exec(s, q, __func__) < 0)
		return GW_EINTERNAL;
	if (up || sqlite3_changes(s->db) > 0)
		return 0;
	/* more than one use left: count - 1 */
	if (q_use(s, Q_MC_DEC, __func__) < 0)
		return GW_EINTERNAL;
	b_int(s, Q_MC_DEC, 1, sub_id);
	b_text(s, Q_MC_DEC, 2, kind);
	b_text(s, Q_MC_DEC, 3, text);
	b_text(s, Q_MC_DEC, 4, col);
	if (q_exec(s, Q_MC_DEC, __func__) < 0)
		return GW_EINTERNAL;
	if (sqlite3_changes(s->db) != 1) /* record_messages and counts disagree */
		gw_log(GW_LOG_WARN, "%s: no message count for kind %s", __func__, kind);
	return 0;
}

/* "records": adds the unknown ones with result UNKNOWN; known ones stay */
static int apply_records(struct store *s, int64_t sub_id, const struct gw_pub *p,
			 struct kind_cache *kc)
{
	for (size_t i = 0; i < p->nrec; i++) {
		const struct gw_rec *r = &p->recs[i];
		int slot = kind_slot(s, kc, p->key, r->kind);

		if (slot < 0)
			return slot;
		if (q_use(s, Q_REC_ADD, __func__) < 0)
			return GW_EINTERNAL;
		b_int(s, Q_REC_ADD, 1, sub_id);
		b_text(s, Q_REC_ADD, 2, r->kind);
		b_text(s, Q_REC_ADD, 3, r->name);
		if (q_exec(s, Q_REC_ADD, __func__) < 0)
			return GW_EINTERNAL;
		if (sqlite3_changes(s->db) > 0) {
			summary_transition(&kc->k[slot], -1, GW_RES_UNKNOWN);
			kc->dirty[slot] = 1;
			s->delta[CNT_RECORDS]++;
		}
	}
	return 0;
}

/* One "validation" result: upsert the record, set its result, replace its
 * messages; counters and message counts follow. */
static int apply_result(struct store *s, int64_t sub_id, const struct gw_pub *p,
			const struct gw_rec *r, struct kind_cache *kc)
{
	sqlite3_stmt *list = s->q[Q_MSG_LIST];
	int64_t rec_id = 0;
	int old = -1, rc, slot;

	if ((slot = kind_slot(s, kc, p->key, r->kind)) < 0)
		return slot;
	if (q_use(s, Q_REC_FIND, __func__) < 0)
		return GW_EINTERNAL;
	b_int(s, Q_REC_FIND, 1, sub_id);
	b_text(s, Q_REC_FIND, 2, r->kind);
	b_text(s, Q_REC_FIND, 3, r->name);
	if ((rc = q_step(s, Q_REC_FIND, __func__)) < 0)
		return rc;
	if (rc == SQLITE_ROW) {
		rec_id = sqlite3_column_int64(s->q[Q_REC_FIND], 0);
		old = sqlite3_column_int(s->q[Q_REC_FIND], 1);
	}
	sqlite3_reset(s->q[Q_REC_FIND]);

	if (old < 0) {
		if (q_use(s, Q_REC_INSERT, __func__) < 0)
			return GW_EINTERNAL;
		b_int(s, Q_REC_INSERT, 1, sub_id);
		b_text(s, Q_REC_INSERT, 2, r->kind);
		b_text(s, Q_REC_INSERT, 3, r->name);
		b_int(s, Q_REC_INSERT, 4, r->result);
		if (q_exec(s, Q_REC_INSERT, __func__) < 0)
			return GW_EINTERNAL;
		rec_id = sqlite3_last_insert_rowid(s->db);
		s->delta[CNT_RECORDS]++;
	} else {
		if (old != r->result) {
			if (q_use(s, Q_REC_SET_RESULT, __func__) < 0)
				return GW_EINTERNAL;
			b_int(s, Q_REC_SET_RESULT, 1, rec_id);
			b_int(s, Q_REC_SET_RESULT, 2, r->result);
			if (q_exec(s, Q_REC_SET_RESULT, __func__) < 0)
				return GW_EINTERNAL;
		}
		/* take the old messages out of the counts, then drop them */
		if (q_use(s, Q_MSG_LIST, __func__) < 0)
			return GW_EINTERNAL;
		b_int(s, Q_MSG_LIST, 1, rec_id);
		while ((rc = q_step(s, Q_MSG_LIST, __func__)) == SQLITE_ROW) {
			const char *text = (const char *)sqlite3_column_text(list, 0);
			const char *col = (const char *)sqlite3_column_text(list, 1);

			if (text && mc_move(s, sub_id, r->kind, text, col, 0) < 0) {
				sqlite3_reset(list);
				return GW_EINTERNAL;
			}
		}
		if (rc < 0)
			return rc;
		sqlite3_reset(list);
		if (q_use(s, Q_MSG_DEL, __func__) < 0)
			return GW_EINTERNAL;
		b_int(s, Q_MSG_DEL, 1, rec_id);
		if (q_exec(s, Q_MSG_DEL, __func__) < 0)
			return GW_EINTERNAL;
	}

	for (size_t j = 0; j < r->nmsg; j++) {
		const struct gw_msgtext *m = &r->msgs[j];

		if (q_use(s, Q_MSG_INSERT, __func__) < 0)
			return GW_EINTERNAL;
		b_int(s, Q_MSG_INSERT, 1, rec_id);
		b_int(s, Q_MSG_INSERT, 2, (int64_t)j);
		b_text(s, Q_MSG_INSERT, 3, m->text);
		b_text(s, Q_MSG_INSERT, 4, m->column);
		if (q_exec(s, Q_MSG_INSERT, __func__) < 0 ||
		    mc_move(s, sub_id, r->kind, m->text, m->column, 1) < 0)
			return GW_EINTERNAL;
	}

	summary_transition(&kc->k[slot], old, r->result);
	kc->dirty[slot] = 1;
	return 0;
}

/* "reset": the submission's records and everything counted from them */
static int apply_reset(struct store *s, int64_t sub_id)
{
	static const int qs[] = { Q_RESET_MSGS, Q_RESET_RECS, Q_RESET_KINDS, Q_RESET_MC,
				  Q_REP_CLEAR };

	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		if (q_use(s, qs[i], __func__) < 0)
			return GW_EINTERNAL;
		b_int(s, qs[i], 1, sub_id);
		if (q_exec(s, qs[i], __func__) < 0)
			return GW_EINTERNAL;
		if (qs[i] == Q_RESET_RECS)
			s->delta[CNT_RECORDS] -= sqlite3_changes(s->db);
	}
	return 0;
}

/* a legacy frame's validation_message: the reported counts become p's */
static int apply_counts(struct store *s, int64_t sub_id, const struct gw_pub *p)
{
	if (q_use(s, Q_REP_CLEAR, __func__) < 0)
		return GW_EINTERNAL;
	b_int(s, Q_REP_CLEAR, 1, sub_id);
	if (q_exec(s, Q_REP_CLEAR, __func__) < 0)
		return GW_EINTERNAL;
	for (size_t i = 0; i < p->ncounts && i < sizeof(p->counts) / sizeof(p->counts[0]); i++) {
		const struct gw_counts *c = &p->counts[i];

		if (q_use(s, Q_REP_PUT, __func__) < 0)
			return GW_EINTERNAL;
		b_int(s, Q_REP_PUT, 1, sub_id);
		b_text(s, Q_REP_PUT, 2, c->kind);
		b_int(s, Q_REP_PUT, 3, c->all);
		b_int(s, Q_REP_PUT, 4, c->unknown);
		b_int(s, Q_REP_PUT, 5, c->issues);
		if (q_exec(s, Q_REP_PUT, __func__) < 0)
			return GW_EINTERNAL;
	}
	return 0;
}

/* the body of store_apply, inside its savepoint: 0, 1 (duplicate) or <0 */
static int apply_pub(struct store *s, const struct gw_pub *p, int64_t now_ms)
{
	struct kind_cache kc;
	int64_t sub_id;
	int rc, set_status = 0, set_note = 0;

	/* idempotency first: a duplicate must change nothing at all */
	if (p->id && *p->id) {
		if (q_use(s, Q_PROC_INSERT, __func__) < 0)
			return GW_EINTERNAL;
		b_text(s, Q_PROC_INSERT, 1, p->id);
		b_int(s, Q_PROC_INSERT, 2, now_ms);
		if (q_exec(s, Q_PROC_INSERT, __func__) < 0)
			return GW_EINTERNAL;
		if (sqlite3_changes(s->db) == 0)
			return 1;
	}

	/* get or create the submission */
	if (q_use(s, Q_SUB_ID, __func__) < 0)
		return GW_EINTERNAL;
	b_text(s, Q_SUB_ID, 1, p->key);
	if ((rc = q_step(s, Q_SUB_ID, __func__)) < 0)
		return rc;
	if (rc == SQLITE_ROW) {
		sub_id = sqlite3_column_int64(s->q[Q_SUB_ID], 0);
		sqlite3_reset(s->q[Q_SUB_ID]);
	} else {
		sqlite3_reset(s->q[Q_SUB_ID]);
		if (q_use(s, Q_SUB_INSERT, __func__) < 0)
			return GW_EINTERNAL;
		b_text(s, Q_SUB_INSERT, 1, p->key);
		b_int(s, Q_SUB_INSERT, 2, now_ms);
		if (q_exec(s, Q_SUB_INSERT, __func__) < 0)
			return GW_EINTERNAL;
		sub_id = sqlite3_last_insert_rowid(s->db);
		s->delta[CNT_SUBMISSIONS]++;
	}

	switch (p->type) {
	case GW_PUB_STATUS:
		set_status = 1;
		set_note = p->notification != NULL;
		if (p->counts_set && (rc = apply_counts(s, sub_id, p)) < 0)
			return rc;
		break;
	case GW_PUB_NOTIFICATION:
		set_note = 1;
		break;
	case GW_PUB_RECORDS:
	case GW_PUB_VALIDATION:
		if ((rc = kinds_load(s, sub_id, kc.k, &kc.n, __func__)) < 0)
			return rc;
		memset(kc.dirty, 0, sizeof(kc.dirty));
		rc = 0;
		if (p->type == GW_PUB_RECORDS)
			rc = apply_records(s, sub_id, p, &kc);
		for (size_t i = 0; p->type == GW_PUB_VALIDATION && i < p->nrec &&
		     rc >= 0; i++)
			rc = apply_result(s, sub_id, p, &p->recs[i], &kc);
		if (rc < 0)
			return rc;
		if ((rc = kinds_store(s, sub_id, &kc)) < 0)
			return rc;
		break;
	case GW_PUB_RESET:
		if ((rc = apply_reset(s, sub_id)) < 0)
			return rc;
		break;
	}

	if (q_use(s, Q_SUB_UPDATE, __func__) < 0)
		return GW_EINTERNAL;
	b_int(s, Q_SUB_UPDATE, 1, set_status);
	if (set_status && p->status != GW_ST_NONE)
		b_int(s, Q_SUB_UPDATE, 2, p->status);
	else
		b_text(s, Q_SUB_UPDATE, 2, NULL);
	b_int(s, Q_SUB_UPDATE, 3, set_note);
	b_text(s, Q_SUB_UPDATE, 4, p->notification);
	b_int(s, Q_SUB_UPDATE, 5, now_ms);
	b_int(s, Q_SUB_UPDATE, 6, sub_id);
	b_int(s, Q_SUB_UPDATE, 7, set_status && (p->status == GW_ST_COMPLETED ||
						 p->status == GW_ST_ERROR));
	b_int(s, Q_SUB_UPDATE, 8, GW_ST_COMPLETED);
	if (q_exec(s, Q_SUB_UPDATE, __func__) < 0)
		return GW_EINTERNAL;
	return cnt_flush(s, __func__);
}

int store_apply(struct store *s, const struct gw_pub *p, int64_t now_ms,
		struct gw_state *st, char *err, size_t errlen)
{
	struct gw_state tmp;
	int rc;

	s->err[0] = '\0';
	memset(s->delta, 0, sizeof(s->delta));
	if ((rc = pub_check(s, p)) < 0)
		goto out;
	if ((rc = q_exec(s, Q_SAVEPOINT, __func__)) < 0)
		goto out;
	rc = apply_pub(s, p, now_ms);
	/* the state is read inside the savepoint: if that fails, the publish
	 * is undone too, so "error" always means "nothing changed" */
	if (rc == 0 && st && (rc = state_fill(s, p->key, &tmp, __func__)) == 0)
		tmp.exists = 1;
	if (rc >= 0 && q_exec(s, Q_RELEASE, __func__) < 0) {
		if (rc == 0 && st)
			proto_state_clear(&tmp);
		rc = GW_EINTERNAL;
	}
	if (rc < 0) {
		/* after some errors (SQLITE_FULL, IOERR) SQLite has already
		 * rolled the whole transaction back; then there is no savepoint
		 * left and the batch's commit will say so */
		if (!sqlite3_get_autocommit(s->db)) {
			q_exec(s, Q_ROLLBACK_TO, __func__);
			q_exec(s, Q_RELEASE, __func__);
		} else {
			gw_log(GW_LOG_ERROR, "%s: the transaction was rolled back",
			       __func__);
		}
	}
	if (rc == 0 && st)
		*st = tmp;
out:
	if (rc < 0 && errlen)
		snprintf(err, errlen, "%s", s->err[0] ? s->err : "store failure");
	return rc;
}

/* ---- events and ids ---- */

/* the id of submission key into *id; 1 found, 0 unknown, <0 error */
static int sub_lookup(struct store *s, const char *key, int64_t *id,
		      const char *func)
{
	int rc;

	if (q_use(s, Q_SUB_ID, func) < 0)
		return GW_EINTERNAL;
	b_text(s, Q_SUB_ID, 1, key);
	if ((rc = q_step(s, Q_SUB_ID, func)) < 0)
		return rc;
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(s->q[Q_SUB_ID], 0);
	sqlite3_reset(s->q[Q_SUB_ID]);
	return rc == SQLITE_ROW;
}

int store_append_event(struct store *s, const char *key, uint64_t seq,
		       int type, const char *json, int64_t at_ms, unsigned keep)
{
	int64_t sub_id;
	int rc;

	if (!key || !json || seq == 0 || seq > INT64_MAX)
		return fail_msg(s, GW_EINVAL, __func__, "bad event");
	if ((rc = sub_lookup(s, key, &sub_id, __func__)) <= 0)
		return rc < 0 ? rc : fail_msg(s, GW_EINVAL, __func__,
					      "event for an unknown submission");
	if (q_use(s, Q_EV_INSERT, __func__) < 0)
		return GW_EINTERNAL;
	b_int(s, Q_EV_INSERT, 1, sub_id);
	b_int(s, Q_EV_INSERT, 2, (int64_t)seq);
	b_int(s, Q_EV_INSERT, 3, type);
	b_int(s, Q_EV_INSERT, 4, at_ms);
	b_text(s, Q_EV_INSERT, 5, json);
	memset(s->delta, 0, sizeof(s->delta));
	if (q_exec(s, Q_EV_INSERT, __func__) < 0)
		return GW_EINTERNAL;
	s->delta[CNT_EVENTS]++;
	/* seqs of a submission are consecutive, so "the last keep" is the
	 * range seq <= seq - keep: an index range delete, usually of one row */
	if (keep && seq > keep) {
		if (q_use(s, Q_EV_PRUNE, __func__) < 0)
			return GW_EINTERNAL;
		b_int(s, Q_EV_PRUNE, 1, sub_id);
		b_int(s, Q_EV_PRUNE, 2, (int64_t)(seq - keep));
		if (q_exec(s, Q_EV_PRUNE, __func__) < 0)
			return GW_EINTERNAL;
		s->delta[CNT_EVENTS] -= sqlite3_changes(s->db);
	}
	return cnt_flush(s, __func__);
}

int store_events_since(struct store *s, const char *key, uint64_t since,
		       unsigned limit, store_event_cb cb, void *arg,
		       uint64_t *oldest)
{
	sqlite3_stmt *q = s->q[Q_EV_SINCE];
	int64_t sub_id;
	int rc, n = 0;

	*oldest = 0;
	if (since > INT64_MAX) /* nothing can be newer */
		return 0;
	/* one read snapshot for oldest and the walk, so they agree */
	if (q_exec(s, Q_SAVEPOINT, __func__) < 0)
		return GW_EINTERNAL;
	if ((rc = sub_lookup(s, key, &sub_id, __func__)) <= 0)
		return read_end(s, rc, __func__);

	if ((rc = q_use(s, Q_EV_OLDEST, __func__)) < 0)
		return read_end(s, rc, __func__);
	b_int(s, Q_EV_OLDEST, 1, sub_id);
	if ((rc = q_step(s, Q_EV_OLDEST, __func__)) < 0)
		return read_end(s, rc, __func__);
	if (rc == SQLITE_ROW)
		*oldest = (uint64_t)sqlite3_column_int64(s->q[Q_EV_OLDEST], 0);
	sqlite3_reset(s->q[Q_EV_OLDEST]);

	if ((rc = q_use(s, Q_EV_SINCE, __func__)) < 0)
		return read_end(s, rc, __func__);
	b_int(s, Q_EV_SINCE, 1, sub_id);
	b_int(s, Q_EV_SINCE, 2, (int64_t)since);
	b_int(s, Q_EV_SINCE, 3, limit ? (int64_t)limit : -1);
	while ((rc = q_step(s, Q_EV_SINCE, __func__)) == SQLITE_ROW) {
		const char *json = (const char *)sqlite3_column_text(q, 1);
		size_t len = (size_t)sqlite3_column_bytes(q, 1);

		n++;
		if (cb(arg, (uint64_t)sqlite3_column_int64(q, 0), sqlite3_column_int(q, 2),
		       json ? json : "", len))
			break;
	}
	if (rc < 0)
		return read_end(s, rc, __func__);
	sqlite3_reset(q);
	return read_end(s, n, __func__);
}

int store_list_recent(struct store *s, unsigned limit, store_list_cb cb,
		      void *arg)
{
	sqlite3_stmt *q = s->q[Q_SUB_RECENT];
	char at[32];
	int rc, n = 0;

	if (q_use(s, Q_SUB_RECENT, __func__) < 0)
		return GW_EINTERNAL;
	b_int(s, Q_SUB_RECENT, 1, limit ? (int64_t)limit : -1);
	while ((rc = q_step(s, Q_SUB_RECENT, __func__)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(q, 0);
		const char *note = (const char *)sqlite3_column_text(q, 2);
		int status = sqlite3_column_type(q, 1) == SQLITE_NULL
			? GW_ST_NONE : sqlite3_column_int(q, 1);

		proto_iso8601(sqlite3_column_int64(q, 3), at);
		n++;
		if (cb(arg, key ? key : "", status, note, at,
		       (uint64_t)sqlite3_column_int64(q, 4)))
			break;
	}
	if (rc < 0)
		return rc;
	sqlite3_reset(q);
	return n;
}

/* ---- retention (writer thread; README "Store and retention") ---- */

/* The first want message_counts rows of a submission (fewer when it has
 * fewer); 0 or GW_EINTERNAL, sqlite3_changes() tells how many went. */
static int purge_mc(struct store *s, int64_t sub_id, int64_t want)
{
	sqlite3_stmt *edge = s->q[Q_PURGE_MC_EDGE];
	sqlite3_value *v[3] = { NULL, NULL, NULL };
	int rc;

	if (q_use(s, Q_PURGE_MC_EDGE, __func__) < 0)
		return GW_EINTERNAL;
	b_int(s, Q_PURGE_MC_EDGE, 1, sub_id);
	b_int(s, Q_PURGE_MC_EDGE, 2, want - 1);
	if ((rc = q_step(s, Q_PURGE_MC_EDGE, __func__)) < 0)
		return rc;
	if (rc == SQLITE_ROW) {
		for (int i = 0; i < 3; i++)
			v[i] = sqlite3_value_dup(sqlite3_column_value(edge, i));
	}
	sqlite3_reset(edge);
	if (rc == SQLITE_ROW && (!v[0] || !v[1] || !v[2])) {
		rc = fail_msg(s, GW_EINTERNAL, __func__, "out of memory");
		goto out;
	}
	if (q_use(s, Q_PURGE_MC_UPTO, __func__) < 0) {
		rc = GW_EINTERNAL;
		goto out;
	}
	/* no edge: fewer than want rows, so all of them (a NULL bound would
	 * match nothing: use the largest possible key instead, X'' > any text) */
	b_int(s, Q_PURGE_MC_UPTO, 1, sub_id);
	for (int i = 0; i < 3; i++) {
		int brc = v[i] ? sqlite3_bind_value(s->q[Q_PURGE_MC_UPTO], i + 2, v[i])
			       : sqlite3_bind_zeroblob(s->q[Q_PURGE_MC_UPTO], i + 2, 0);

		if (brc != SQLITE_OK && s->bind_rc == SQLITE_OK)
			s->bind_rc = brc;
	}
	rc = q_exec(s, Q_PURGE_MC_UPTO, __func__);
out:
	for (int i = 0; i < 3; i++)
		sqlite3_value_free(v[i]);
	return rc;
}

/* One detached submission's rows, about *budget of them at most, table by
 * table; 1 when the row itself is gone, 0 when rows are left, <0 on error.
 * Records go with their messages (the cascade), so the records are taken in
 * chunks sized by the rows per record seen so far; the first chunk is small
 * because that size is not known yet. */
static int purge_one(struct store *s, int64_t sub_id, int64_t *budget,
		     struct store_purged *out)
{
	static const int steps[] = { Q_PURGE_RECS, Q_PURGE_MC_UPTO, Q_PURGE_EVENTS };
	int64_t per = 0, before;

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		int q = steps[i], done = 0;

		while (!done && *budget > 0) {
			int64_t want = *budget, n, all;

			if (q == Q_PURGE_RECS) {
				want = per ? *budget / per : 16;
				want = want < 1 ? 1 : want > *budget ? *budget : want;
			}
			before = sqlite3_total_changes64(s->db);
			if (q == Q_PURGE_MC_UPTO) {
				if (purge_mc(s, sub_id, want) < 0)
					return GW_EINTERNAL;
			} else {
				if (q_use(s, q, __func__) < 0)
					return GW_EINTERNAL;
				b_int(s, q, 1, sub_id);
				b_int(s, q, 2, want);
				if (q_exec(s, q, __func__) < 0)
					return GW_EINTERNAL;
			}
			n = sqlite3_changes64(s->db);
			all = sqlite3_total_changes64(s->db) - before;
			*budget -= all;
			out->rows += (uint64_t)all;
			if (q == Q_PURGE_RECS) {
				s->delta[CNT_RECORDS] -= n;
				if (n)
					per = (all + n - 1) / n;
			} else if (q == Q_PURGE_EVENTS) {
				s->delta[CNT_EVENTS] -= n;
			}
			done = n < want;   /* the table has no more rows of it */
		}
		if (!done)
			return 0;
	}
	if (*budget <= 0)
		return 0;
	/* what is left is small: kind counts and such, by the cascade */
	before = sqlite3_total_changes64(s->db);
	if (q_use(s, Q_PURGE_SUB, __func__) < 0)
		return GW_EINTERNAL;
	b_int(s, Q_PURGE_SUB, 1, sub_id);
	if (q_exec(s, Q_PURGE_SUB, __func__) < 0)
		return GW_EINTERNAL;
	*budget -= sqlite3_total_changes64(s->db) - before;
	out->rows += (uint64_t)(sqlite3_total_changes64(s->db) - before);
	return 1;
}

/* the id of a detached submission into *id; 1 found, 0 none, <0 error */
static int find_detached(struct store *s, int64_t *id)
{
	int rc;

	if (q_use(s, Q_RET_DETACHED, __func__) < 0 ||
	    (rc = q_step(s, Q_RET_DETACHED, __func__)) < 0)
		return GW_EINTERNAL;
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(s->q[Q_RET_DETACHED], 0);
	sqlite3_reset(s->q[Q_RET_DETACHED]);
	return rc == SQLITE_ROW;
}

#define DETACH_ROUND 128

/* Up to max expired submissions by query q (last event before cutoff) into
 * ids/seqs; returns how many, or <0. Read first, changed after: the select
 * is reset before any row it walks is updated. */
static int find_expired(struct store *s, int q, int64_t cutoff, int max,
			int64_t *ids, int64_t *seqs)
{
	int rc = SQLITE_DONE, n = 0;

	if (q_use(s, q, __func__) < 0)
		return GW_EINTERNAL;
	b_int(s, q, 1, cutoff);
	b_int(s, q, 2, max);
	while (n < max && (rc = q_step(s, q, __func__)) == SQLITE_ROW) {
		ids[n] = sqlite3_column_int64(s->q[q], 0);
		seqs[n] = sqlite3_column_int64(s->q[q], 1);
		n++;
	}
	if (n < max && rc < 0)
		return rc;
	sqlite3_reset(s->q[q]);
	return n;
}

/* Detaches one submission (003): the key is free and unknown to readers
 * from this commit on; the seq floor rises above its last seq. */
static int detach(struct store *s, int64_t id, int64_t seq)
{
	if (q_use(s, Q_CNT_FLOOR, __func__) < 0)
		return GW_EINTERNAL;
	b_int(s, Q_CNT_FLOOR, 1, seq);
	if (q_exec(s, Q_CNT_FLOOR, __func__) < 0 || q_use(s, Q_RET_DETACH, __func__) < 0)
		return GW_EINTERNAL;
	b_int(s, Q_RET_DETACH, 1, id);
	if (q_exec(s, Q_RET_DETACH, __func__) < 0)
		return GW_EINTERNAL;
	s->delta[CNT_SUBMISSIONS]--;
	return 0;
}

/* Is there anything for a step to do? Reads only, so an idle store costs no
 * write transaction. 1 yes, 0 no, <0 error. */
static int retention_due(struct store *s, const struct store_retention *r)
{
	int64_t id, seq;
	int n;

	if ((n = find_detached(s, &id)) != 0)
		return n;
	if (r->cutoff_ms > 0 &&
	    (n = find_expired(s, Q_RET_EXPIRED, r->cutoff_ms, 1, &id, &seq)) != 0)
		return n;
	if (r->final_cutoff_ms > 0 &&
	    (n = find_expired(s, Q_RET_EXPIRED_FINAL, r->final_cutoff_ms, 1, &id, &seq)) != 0)
		return n;
	if (r->ids_before_ms <= 0)
		return 0;
	if (q_use(s, Q_PROC_OLD, __func__) < 0)
		return GW_EINTERNAL;
	b_int(s, Q_PROC_OLD, 1, r->ids_before_ms);
	if ((n = q_step(s, Q_PROC_OLD, __func__)) < 0)
		return n;
	sqlite3_reset(s->q[Q_PROC_OLD]);
	return n == SQLITE_ROW;
}

/* the body of store_retention_step, inside its transaction: 1 more work, 0
 * done, <0 error */
static int retention_run(struct store *s, const struct store_retention *r,
			 struct store_purged *out)
{
	int64_t budget = r->max_rows ? r->max_rows : STORE_PURGE_ROWS;
	int64_t id, ids[DETACH_ROUND], seqs[DETACH_ROUND];
	int rc = 0, more = 0;

	/* 1. finish what earlier steps detached, oldest first */
	while (budget > 0 && (rc = find_detached(s, &id)) == 1) {
		if ((rc = purge_one(s, id, &budget, out)) < 0)
			return rc;
		out->purged += rc == 1;
	}
	if (rc < 0)
		return rc;
	if (budget <= 0)
		return 1;

	/* 2. detach newly expired submissions (one row each); they are purged
	 * by the next steps */
	for (int rule = 0; rule < 2 && budget > 0; rule++) {
		int q = rule ? Q_RET_EXPIRED_FINAL : Q_RET_EXPIRED;
		int64_t cutoff = rule ? r->final_cutoff_ms : r->cutoff_ms;

		while (cutoff > 0 && budget > 0) {
			int want = budget < DETACH_ROUND ? (int)budget : DETACH_ROUND;
			int n = find_expired(s, q, cutoff, want, ids, seqs);

			if (n < 0)
				return n;
			for (int i = 0; i < n; i++)
				if ((rc = detach(s, ids[i], seqs[i])) < 0)
					return rc;
			out->submissions += (unsigned)n;
			out->rows += (uint64_t)n;
			budget -= n;
			more |= n > 0;
			if (n < want)
				break;
		}
	}

	/* 3. publish ids older than the dedup window */
	if (budget > 0 && r->ids_before_ms > 0) {
		int64_t n;

		if (q_use(s, Q_PROC_PRUNE, __func__) < 0)
			return GW_EINTERNAL;
		b_int(s, Q_PROC_PRUNE, 1, r->ids_before_ms);
		b_int(s, Q_PROC_PRUNE, 2, budget);
		if (q_exec(s, Q_PROC_PRUNE, __func__) < 0)
			return GW_EINTERNAL;
		n = sqlite3_changes64(s->db);
		out->ids += (uint64_t)n;
		out->rows += (uint64_t)n;
		budget -= n;
	}
	/* an exhausted budget may have left work (one more step finds out) */
	return more || budget <= 0;
}

int store_retention_step(struct store *s, const struct store_retention *r,
			 struct store_purged *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (!sqlite3_get_autocommit(s->db))
		return fail_msg(s, GW_EINTERNAL, __func__, "called inside a transaction");
	if ((rc = retention_due(s, r)) <= 0)
		return rc;
	if (store_begin(s) < 0)
		return GW_EINTERNAL;
	memset(s->delta, 0, sizeof(s->delta));
	rc = retention_run(s, r, out);
	if (rc >= 0 && cnt_flush(s, __func__) < 0)
		rc = GW_EINTERNAL;
	if (rc >= 0 && store_commit(s) < 0)
		rc = GW_EINTERNAL;
	if (rc < 0) {
		store_rollback(s);
		memset(out, 0, sizeof(*out));
	}
	return rc;
}

int store_vacuum_step(struct store *s, unsigned pages)
{
	char sql[64];
	char *msg = NULL;
	int free_pages = 0;

	if (sql_int(s->db, "PRAGMA freelist_count", &free_pages) < 0)
		return db_fail(s, __func__, "freelist_count");
	if (!s->incremental || free_pages == 0 || pages == 0)
		return 0;
	/* its own small write transaction; sqlite3_exec steps the pragma until
	 * it has moved its pages */
	snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%u)", pages);
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(s->err, sizeof(s->err), "incremental_vacuum: %s",
			 msg ? msg : sqlite3_errmsg(s->db));
		gw_log(GW_LOG_ERROR, "%s: %s", __func__, s->err);
		sqlite3_free(msg);
		return GW_EINTERNAL;
	}
	if (sql_int(s->db, "PRAGMA freelist_count", &free_pages) < 0)
		return db_fail(s, __func__, "freelist_count");
	return free_pages;
}

int store_stats(struct store *s, struct store_stats *out)
{
	sqlite3_stmt *q = s->q[Q_CNT_ALL];
	int rc;

	memset(out, 0, sizeof(*out));
	if (q_use(s, Q_CNT_ALL, __func__) < 0)
		return GW_EINTERNAL;
	while ((rc = q_step(s, Q_CNT_ALL, __func__)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(q, 0);
		int64_t v = sqlite3_column_int64(q, 1);

		if (!name)
			continue;
		if (!strcmp(name, "submissions"))
			out->submissions = v;
		else if (!strcmp(name, "records"))
			out->records = v;
		else if (!strcmp(name, "events"))
			out->events = v;
		else if (!strcmp(name, "seq_floor"))
			out->seq_floor = v;
	}
	if (rc < 0)
		return rc;
	sqlite3_reset(q);
	for (int i = 0; i < 2; i++) {
		int pq = i ? Q_FREE_PAGES : Q_PAGE_COUNT;

		if (q_use(s, pq, __func__) < 0 || (rc = q_step(s, pq, __func__)) < 0)
			return GW_EINTERNAL;
		if (rc == SQLITE_ROW) {
			int64_t bytes = sqlite3_column_int64(s->q[pq], 0) * s->page_size;

			if (i)
				out->free_bytes = bytes;
			else
				out->bytes = bytes;
		}
		sqlite3_reset(s->q[pq]);
	}
	return 0;
}
