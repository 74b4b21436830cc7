/*
 * The writer thread: the one owner of the SQLite write handle. Publishes from
 * HTTP, the legacy socket and the AMQP bridge arrive as gw_jobs on a locked
 * queue; the thread takes everything queued (up to --batch), applies it in
 * one transaction (group commit), encodes each resulting event once, and
 * hands the finished jobs back in commit order:
 *   - to the service thread (done queue + the wake callback, which is
 *     lws_cancel_service) for fan-out and HTTP responses;
 *   - to the broker thread through the ack sink, only after the commit, so a
 *     delivery is acknowledged only once its effect is durable.
 * Between batches it does the store's housekeeping in small steps: retention
 * (deleting old submissions and publish ids), incremental vacuum, and the
 * store gauges of /metrics.
 */
#ifndef GW_WRITER_H
#define GW_WRITER_H

#include <stdint.h>
#include "buf.h"
#include "metrics.h"
#include "proto.h"

struct writer;

enum gw_ack { GW_ACK_OK = 0, GW_ACK_REJECT, GW_ACK_REQUEUE };

struct gw_job {
	struct gw_job *next;     /* queue link */
	struct gw_pub pub;       /* owned; freed by the writer after applying */
	int source;              /* enum gw_source */
	uint64_t cookie;         /* HTTP request id, AMQP delivery tag, ... */
	uint64_t t_in_ns;        /* metrics_now_ns() at arrival */
	/* set by the writer */
	char key[GW_KEY_MAX + 1];
	int type;                /* enum gw_pub_type */
	int result;              /* 0 applied, 1 duplicate, or a gw_err */
	char err[200];
	uint64_t seq;            /* the event's seq when applied */
	struct gw_buf *legacy;   /* encoded legacy frame; ref owned by the job */
	struct gw_buf *event;    /* encoded /ws event frame; ref owned by the job */
};

typedef void (*writer_wake_fn)(void *arg);
/* writer thread: one call per AMQP job after its commit (or failure) */
typedef void (*writer_ack_fn)(void *arg, uint64_t tag, int ack);

struct writer_cfg {
	const char *db_path;
	unsigned history;        /* events kept per submission */
	unsigned batch;          /* jobs per transaction at most */
	int64_t dedup_window_ms;
	writer_wake_fn wake;     /* called after done jobs were queued */
	void *wake_arg;
	/* retention (store_retention_step); 0 turns a rule off */
	int64_t retention_ms;    /* after the last event */
	int64_t retention_final_ms; /* the same for Completed / final Error */
	unsigned purge_rows;     /* rows per retention step (0: 1000) */
	unsigned vacuum_pages;   /* pages per incremental vacuum step (0: 256) */
};

/* main thread: opens the store (creating and migrating it) and starts the
 * thread. Returns 0 or -1 with a reason in err. */
int writer_start(const struct writer_cfg *cfg, struct writer **out,
		 char *err, size_t errlen);
/* main thread, before any AMQP job is submitted */
void writer_set_ack_sink(struct writer *w, writer_ack_fn fn, void *arg);
/* any thread: queues a job; the writer owns it until it is handed back */
void writer_submit(struct writer *w, struct gw_job *job);
/* service thread: takes every finished job, oldest first (a list linked by
 * next); the caller frees each with writer_job_free. */
struct gw_job *writer_take_done(struct writer *w);
/* main thread: finishes and commits what was queued, then joins the thread */
void writer_stop(struct writer *w);
/* main thread, after writer_stop: frees what is left */
void writer_free(struct writer *w);
/* any thread: 1 while the store accepts commits */
int writer_ready(const struct writer *w);
/* any thread: the store's epoch (constant for the process's life) */
const char *writer_epoch(const struct writer *w);

struct gw_job *writer_job_new(int source, uint64_t cookie);
void writer_job_free(struct gw_job *job);

#endif
