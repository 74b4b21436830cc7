/*
 * The writer thread: the one owner of the SQLite write handle. Publishes from
 * HTTP, the legacy socket and the AMQP bridge arrive as gw_jobs on a locked
 * queue; the thread takes everything queued (up to --batch), applies it in
 * one transaction (group commit), encodes each resulting event once, and
 * hands the finished jobs back in commit order:
 *   - each job's committed callback, on this thread, right after the commit
 *     (the bridge acknowledges its delivery there: only once durable);
 *   - the whole batch to the done callback (main wires the core's
 *     hub_jobs_done, which posts it to the service thread for fan-out and
 *     each job's done callback, such as an HTTP answer).
 * The writer knows no job source: the callbacks travel with the jobs.
 * Between batches it does the store's housekeeping in small steps: retention
 * (deleting old submissions and publish ids), incremental vacuum, and the
 * store gauges of /metrics.
 *
 * The input queue is bounded in bytes (writer_cfg.queue_bytes): a submit
 * that would exceed it is refused, and the submitter answers the way its
 * protocol does (HTTP 503, AMQP: hold the delivery and stop reading). A
 * publish that fails on its own (the store refused its rows) is undone alone
 * and the rest of its batch commits; a failure of the store itself (disk
 * full, read-only, I/O) fails the batch, and the writer then probes the
 * store once a second until a commit succeeds again.
 */
#ifndef GW_WRITER_H
#define GW_WRITER_H

#include <stdint.h>
#include "buf.h"
#include "metrics.h"
#include "proto.h"

struct writer;

/* what a broker should do with a finished job's delivery (writer_ack_of) */
enum gw_ack {
	GW_ACK_OK = 0,           /* applied or duplicate: acknowledge */
	GW_ACK_REJECT,           /* invalid: reject, so it is dead-lettered */
	GW_ACK_REQUEUE,          /* the store failed: requeue, it may work later */
	GW_ACK_RETRY,            /* this publish failed on its own while the store
				  * works: requeue, but only a bounded number of
				  * times (it may fail the same way forever) */
};

struct gw_job {
	struct gw_job *next;     /* queue link */
	struct gw_pub pub;       /* owned; freed by the writer after applying */
	int source;              /* enum gw_source */
	uint64_t cookie;         /* HTTP request id, AMQP delivery tag, ... */
	uint64_t t_in_ns;        /* metrics_now_ns() at arrival */
	size_t bytes;            /* set by the submitter: the publish's size (its
				  * body), counted against writer_cfg.queue_bytes */
	/* set by the writer */
	char key[GW_KEY_MAX + 1];
	int type;                /* enum gw_pub_type */
	int result;              /* 0 applied, 1 duplicate, or a gw_err */
	int alone;               /* GW_EINTERNAL for this publish only: the store
				  * refused it, the rest of the batch committed */
	char err[200];
	uint64_t seq;            /* the event's seq when applied */
	struct gw_buf *legacy;   /* encoded legacy frame; ref owned by the job */
	struct gw_buf *event;    /* encoded /ws event frame; ref owned by the job */
	/* set by the submitter, both optional */
	void (*committed)(struct gw_job *job, void *arg);  /* writer thread, after the commit (or failure) */
	void *committed_arg;
	void (*done)(struct gw_job *job, void *arg);       /* service thread, after fan-out;
							    * arg is NULL when the gateway is
							    * being torn down (free only) */
	void *done_arg;
};

/* writer thread: a finished batch (linked by next, commit order), handed over */
typedef void (*writer_done_fn)(void *arg, struct gw_job *batch);

struct writer_cfg {
	const char *db_path;
	unsigned history;        /* events kept per submission */
	unsigned batch;          /* jobs per transaction at most */
	int64_t dedup_window_ms;
	writer_done_fn done;     /* takes every finished batch */
	void *done_arg;
	/* retention (store_retention_step); 0 turns a rule off */
	int64_t retention_ms;    /* after the last event */
	int64_t retention_final_ms; /* the same for Completed / final Error */
	unsigned purge_rows;     /* rows per retention step (0: 1000) */
	unsigned vacuum_pages;   /* pages per incremental vacuum step (0: 256) */
	size_t queue_bytes;      /* bound of the queued jobs' bytes (0: none) */
};

/* main thread: opens the store (creating and migrating it) and starts the
 * thread. Returns 0 or -1 with a reason in err. */
int writer_start(const struct writer_cfg *cfg, struct writer **out,
		 char *err, size_t errlen);
/* any thread: queues a job; the writer owns it until it is handed back.
 * Returns 0, or -1 when the queued jobs' bytes would exceed queue_bytes: the
 * job is then still the caller's. A job always fits into an empty queue. */
int writer_submit(struct writer *w, struct gw_job *job);
/* any thread: what a broker should do with the delivery of a finished job
 * (enum gw_ack): acknowledge it (applied or duplicate), reject it (invalid:
 * dead-lettered) or requeue it (the store failed: it may work later) */
int writer_ack_of(const struct gw_job *job);
/* main thread: finishes and commits what was queued (its batches still go
 * to the done callback), then joins the thread */
void writer_stop(struct writer *w);
/* main thread, after writer_stop: frees what is left */
void writer_free(struct writer *w);
/* any thread: 1 while the store accepts commits */
int writer_ready(const struct writer *w);
/* any thread: why the store does not accept commits (the SQLite error of
 * the failed commit, e.g. "database or disk is full") */
void writer_why(struct writer *w, char *out, size_t len);
/* any thread: the store's epoch (constant for the process's life) */
const char *writer_epoch(const struct writer *w);

struct gw_job *writer_job_new(int source, uint64_t cookie);
void writer_job_free(struct gw_job *job);

#endif
