/*
 * The SQLite record store: submissions, records with results and messages,
 * per-kind counters, the last N events per submission, processed publish ids.
 *
 * One handle per thread. The writer thread owns the only write handle
 * (store_open with STORE_WRITE, which creates the file, sets WAL and migrates
 * the schema forward); other threads open read handles (STORE_READ), which
 * WAL lets run beside the writer. All SQL is prepared once and parameterised.
 */
#ifndef GW_STORE_H
#define GW_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "proto.h"

struct store;

enum { STORE_READ = 0, STORE_WRITE = 1 };

/* Opens path (":memory:" allowed for STORE_WRITE). Returns 0, or <0 with a
 * reason in err. */
int store_open(const char *path, int mode, struct store **out,
	       char *err, size_t errlen);
void store_close(struct store *s);

/* The store's epoch: random hex made when the database was created. */
const char *store_epoch(const struct store *s);
/* PRAGMA user_version after migration */
int store_schema_version(struct store *s);

/* writer only: group commit around many store_apply calls */
int store_begin(struct store *s);
int store_commit(struct store *s);
int store_rollback(struct store *s);

/* writer only, inside store_begin/commit: one publish's own savepoint around
 * its store_apply and store_append_event, so that a publish whose event
 * cannot be stored is undone whole while the batch goes on. store_job_end
 * keeps it (keep = 1) or undoes it (0). 0, or GW_EINTERNAL when the
 * transaction is gone (SQLite rolled it back after SQLITE_FULL, IOERR...):
 * then the batch has failed. */
int store_job_begin(struct store *s);
int store_job_end(struct store *s, int keep);
/* writer only, right after a GW_EINTERNAL: 1 when the failure was the
 * publish's own (a constraint or a trigger refused its rows, a value too
 * big) and the transaction is intact, so the batch can go on without it; 0
 * when the store failed as a whole (disk full or read-only, I/O, memory,
 * locks, any other SQLite error): every publish of the batch fails. */
int store_failure_is_local(const struct store *s);
/* writer only, outside a transaction: one small write (a row in meta) and
 * a commit, which tells whether the store accepts commits again after a
 * failure (an empty transaction writes nothing and would always succeed).
 * 0 or GW_EINTERNAL. */
int store_probe(struct store *s, int64_t now_ms);
/* the handle's thread: the reason of its last failure ("" if none) */
const char *store_last_error(const struct store *s);

/*
 * writer only, inside store_begin/commit. Applies one publish atomically
 * (its own savepoint): remembers p->id, updates the submission, its records,
 * results, messages and counters, bumps seq, and fills *st with the state
 * after the change (st->seq is the new event's seq). Returns 0 when applied,
 * 1 when p->id was seen before (nothing changed, *st untouched), GW_EINVAL
 * when the content cannot be applied (too many kinds), GW_EINTERNAL on a
 * SQLite failure; on error err says why and nothing changed.
 */
int store_apply(struct store *s, const struct gw_pub *p, int64_t now_ms,
		struct gw_state *st, char *err, size_t errlen);

/* writer only, inside a transaction: stores an event's encoded JSON and
 * prunes the submission's events to the last keep. */
int store_append_event(struct store *s, const char *key, uint64_t seq,
		       int type, const char *json, int64_t at_ms, unsigned keep);

/*
 * Retention (README "Store and retention"). A submission whose last event is
 * older than cutoff_ms, or a final one (Completed, or Error set by its last
 * event) older than final_cutoff_ms, is deleted with everything it owns:
 * first detached in one small UPDATE (its key becomes free and unknown to
 * readers, and the seq floor rises above its last seq, so the key published
 * to again never repeats a seq), then purged in bounded steps. Publish ids
 * older than ids_before_ms are forgotten. A cutoff of 0 turns its rule off.
 */
struct store_retention {
	int64_t cutoff_ms;        /* unix ms; 0: keep every submission */
	int64_t final_cutoff_ms;  /* unix ms, for final ones; 0: no own rule */
	int64_t ids_before_ms;    /* unix ms; 0: keep the publish ids */
	unsigned max_rows;        /* rows a step deletes at most (0: 1000) */
};

struct store_purged {
	unsigned submissions;     /* detached (deleted as far as anyone can see) */
	unsigned purged;          /* whose last row went */
	uint64_t ids;             /* publish ids forgotten */
	uint64_t rows;            /* rows deleted or detached, all tables */
};

/*
 * writer only, outside a transaction: one bounded step. With nothing to do
 * it only reads; else one transaction of about max_rows rows (a record's
 * messages go with it, so the last records may take it past a little).
 * Returns 1 when work is left (call again, between publish batches), 0 when
 * done, GW_EINTERNAL on a SQLite failure (nothing changed). *out says what
 * the step did.
 */
int store_retention_step(struct store *s, const struct store_retention *r,
			 struct store_purged *out);

/*
 * writer only, outside a transaction: gives at most pages free pages back
 * to the file system (PRAGMA incremental_vacuum), in a transaction of its
 * own. Returns the free pages left (0 also when the store was created
 * without incremental auto-vacuum: then freed pages are only reused), or
 * GW_EINTERNAL.
 */
int store_vacuum_step(struct store *s, unsigned pages);

struct store_stats {
	int64_t submissions, records, events;  /* rows, kept by the writer */
	int64_t seq_floor;        /* where a new submission's seq starts */
	int64_t bytes;            /* database size (pages x page size) */
	int64_t free_bytes;       /* of which free pages */
};

/* any handle: the counters and sizes above; 0 or GW_EINTERNAL */
int store_stats(struct store *s, struct store_stats *out);

/* any handle. Fills *st (st->exists = 0 when unknown); 0 or GW_EINTERNAL.
 * Caller frees with proto_state_clear. */
int store_get_state(struct store *s, const char *key, struct gw_state *st);

typedef int (*store_event_cb)(void *arg, uint64_t seq, int type,
			      const char *json, size_t len);
/*
 * any handle. Calls cb for each stored event of key with seq > since, in
 * order, at most limit of them (0: no limit), with its type (enum
 * gw_pub_type) and JSON; cb returning non-zero stops.
 * *oldest gets the lowest seq still stored (0 when none). Returns the number
 * of events passed to cb, or GW_EINTERNAL.
 */
int store_events_since(struct store *s, const char *key, uint64_t since,
		       unsigned limit, store_event_cb cb, void *arg,
		       uint64_t *oldest);

typedef int (*store_list_cb)(void *arg, const char *key, int status,
			     const char *notification, const char *updated_at,
			     uint64_t seq);
/* any handle: the most recently updated submissions, newest first. Returns
 * the count or GW_EINTERNAL. */
int store_list_recent(struct store *s, unsigned limit, store_list_cb cb,
		      void *arg);

/* SQL text of every schema migration, in order; generated from schema/ */
extern const char *const gw_schema_sql[];
extern const unsigned gw_schema_count;

#endif
