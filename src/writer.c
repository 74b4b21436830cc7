/*
 * The writer thread (see writer.h). It sleeps on a condition variable until
 * jobs arrive, swaps the whole input queue for an empty one under the lock,
 * and works through the batch with the lock released, so submitters never
 * wait on SQLite. One BEGIN IMMEDIATE .. COMMIT covers the batch; each job
 * has its own savepoint inside store_apply, so one bad job does not undo the
 * others.
 *
 * The wait is also the housekeeping timer: once a second, or at once while a
 * sweep has work left, the thread does one bounded step of retention or
 * incremental vacuum (housekeeping()) between two batches, so deletion never
 * holds the write lock for longer than one small transaction.
 */
#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store.h"

struct writer {
	struct writer_cfg cfg;
	struct store *store;        /* writer thread only (after start) */
	char epoch[64];
	pthread_t thread;
	pthread_mutex_t lock;       /* guards in_*, stop */
	pthread_cond_t cond;
	struct gw_job *in_head, **in_tail;
	int stop;
	atomic_int ready;
	/* writer thread only: what the current retention sweep deleted (logged
	 * once when it ends), and whether a vacuum is under way (housekeeping) */
	struct { unsigned submissions; uint64_t ids, rows; } swept;
	int vacuuming;
};

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct gw_job *writer_job_new(int source, uint64_t cookie)
{
	struct gw_job *j = calloc(1, sizeof(*j));

	if (j) {
		j->source = source;
		j->cookie = cookie;
		j->t_in_ns = metrics_now_ns();
	}
	return j;
}

void writer_job_free(struct gw_job *j)
{
	if (!j)
		return;
	proto_pub_free(&j->pub);
	gw_buf_unref(j->legacy);
	gw_buf_unref(j->event);
	free(j);
}

/* writer thread: applies one job inside the open transaction */
static void apply_job(struct writer *w, struct gw_job *j)
{
	struct gw_state st;
	char at[32];
	int64_t now = wall_ms();
	int r;

	memset(&st, 0, sizeof(st));
	r = store_apply(w->store, &j->pub, now, &st, j->err, sizeof(j->err));
	j->result = r;
	if (r != 0)
		return;
	j->seq = st.seq;
	proto_iso8601(now, at);
	char *ev = proto_encode_event(&st, w->epoch, j->type, at);
	char *legacy = proto_encode_legacy(&st);
	proto_state_clear(&st);
	if (!ev || !legacy ||
	    store_append_event(w->store, j->key, j->seq, j->type, ev, now, w->cfg.history)) {
		/* the publish is applied but its event cannot be kept: fail the
		 * whole batch rather than break the seq sequence */
		free(ev);
		free(legacy);
		j->result = GW_EINTERNAL;
		snprintf(j->err, sizeof(j->err), "could not store the event");
		return;
	}
	j->event = gw_buf_take_str(ev);
	j->legacy = gw_buf_take_str(legacy);
	if (!j->event || !j->legacy)
		j->result = GW_EINTERNAL;
}

int writer_ack_of(const struct gw_job *j)
{
	if (j->result >= 0)
		return GW_ACK_OK;
	return j->result == GW_EINTERNAL ? GW_ACK_REQUEUE : GW_ACK_REJECT;
}

/* writer thread: one transaction over the batch; 0 if it committed */
static void run_batch(struct writer *w, struct gw_job *batch)
{
	uint64_t t0 = metrics_now_ns();
	int failed;

	for (struct gw_job *j = batch; j; j = j->next) {
		memcpy(j->key, j->pub.key, sizeof(j->key));
		j->type = j->pub.type;
	}
	failed = store_begin(w->store) != 0;

	for (struct gw_job *j = batch; j && !failed; j = j->next) {
		apply_job(w, j);
		proto_pub_free(&j->pub);   /* the JSON is no longer needed */
		if (j->result == GW_EINTERNAL)
			failed = 1;
	}
	if (!failed && store_commit(w->store) == 0) {
		metrics_observe(&gw_metrics.commit_seconds, metrics_now_ns() - t0);
		atomic_store(&w->ready, 1);
	} else {
		store_rollback(w->store);
		atomic_store(&w->ready, 0);
		GW_ERR("%s: store commit failed; the batch is refused", __func__);
		for (struct gw_job *j = batch; j; j = j->next) {
			proto_pub_free(&j->pub);
			gw_buf_unref(j->legacy);
			gw_buf_unref(j->event);
			j->legacy = j->event = NULL;
			if (j->result >= 0 || j->result == GW_EINTERNAL) {
				j->result = GW_EINTERNAL;
				snprintf(j->err, sizeof(j->err), "store unavailable");
			}
		}
	}
	for (struct gw_job *j = batch; j; j = j->next) {
		int out = j->result == 0 ? GW_OUT_ACCEPTED : j->result == 1 ? GW_OUT_DUPLICATE :
			  j->result == GW_EINTERNAL ? GW_OUT_FAILED : GW_OUT_INVALID;
		GW_INC(publishes[j->source][out]);
		if (j->result < 0)
			GW_WARN_RL("%s: publish to %s refused: %s", __func__, j->key, j->err);
		if (j->committed)
			j->committed(j, j->committed_arg);
	}
}

static void free_jobs(struct gw_job *j)
{
	while (j) {
		struct gw_job *next = j->next;
		writer_job_free(j);
		j = next;
	}
}

/* writer thread: the store's gauges for /metrics */
static void update_gauges(struct writer *w)
{
	struct store_stats st;

	if (store_stats(w->store, &st))
		return;
	GW_SET(store_submissions, st.submissions);
	GW_SET(store_records, st.records);
	GW_SET(store_events, st.events);
	GW_SET(store_bytes, st.bytes);
	GW_SET(store_free_bytes, st.free_bytes);
}

/*
 * writer thread, between batches: one bounded step of retention, else one
 * of incremental vacuum. Each is one short transaction, so a publish that
 * arrives meanwhile waits for at most one step. Returns 1 when work is left:
 * the loop then takes the next batch (if any) and comes straight back.
 *
 * Vacuum starts when a sweep ends with at least VACUUM_MIN_BYTES free in the
 * file and goes on until nothing is free: the few pages that ordinary event
 * pruning frees are reused by the next events and not worth moving.
 */
#define VACUUM_MIN_BYTES (1 << 20)

static int housekeeping(struct writer *w, int64_t now)
{
	struct store_retention r;
	struct store_purged out;
	struct store_stats st;
	int rc;

	if (w->vacuuming) {
		rc = store_vacuum_step(w->store, w->cfg.vacuum_pages ? w->cfg.vacuum_pages : 256);
		w->vacuuming = rc > 0;
		if (rc <= 0)
			update_gauges(w);
		return w->vacuuming;
	}
	memset(&r, 0, sizeof(r));
	if (w->cfg.retention_ms > 0)
		r.cutoff_ms = now - w->cfg.retention_ms;
	if (w->cfg.retention_final_ms > 0)
		r.final_cutoff_ms = now - w->cfg.retention_final_ms;
	if (w->cfg.dedup_window_ms > 0)
		r.ids_before_ms = now - w->cfg.dedup_window_ms;
	r.max_rows = w->cfg.purge_rows;

	rc = store_retention_step(w->store, &r, &out);
	if (rc < 0) {
		GW_WARN("%s: retention step failed; retrying in a second", __func__);
		return 0;
	}
	if (out.rows) {
		GW_ADD(retention_deleted, out.submissions);
		GW_ADD(retention_rows, out.rows);
		w->swept.submissions += out.submissions;
		w->swept.rows += out.rows;
		w->swept.ids += out.ids;
		update_gauges(w);
	}
	if (rc > 0)
		return 1;
	if (!w->swept.rows)
		return 0;
	/* a sweep just ended: one line for all of it (publish ids age out all
	 * the time, so a sweep of ids alone is not worth an info line) */
	gw_log(w->swept.submissions ? GW_LOG_INFO : GW_LOG_DEBUG,
	       "%s: retention deleted %u submissions and %llu publish ids (%llu rows)",
	       __func__, w->swept.submissions, (unsigned long long)w->swept.ids,
	       (unsigned long long)w->swept.rows);
	memset(&w->swept, 0, sizeof(w->swept));
	w->vacuuming = store_stats(w->store, &st) == 0 && st.free_bytes >= VACUUM_MIN_BYTES;
	return w->vacuuming;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	int64_t next_tick = 0;   /* wall ms of the next housekeeping round */
	int busy = 0;            /* housekeeping has work left: do not sleep */

	pthread_setname_np(pthread_self(), "sg-writer");

	for (;;) {
		struct gw_job *batch, *rest, **tail;
		unsigned n = 0;
		int64_t now = wall_ms();

		pthread_mutex_lock(&w->lock);
		if (!w->in_head && !w->stop && !busy && now < next_tick) {
			/* the housekeeping timer: sleep until jobs come or it is due */
			int64_t until = next_tick < now + 1000 ? next_tick : now + 1000;
			struct timespec dl = { until / 1000, (long)(until % 1000) * 1000000 };

			pthread_cond_timedwait(&w->cond, &w->lock, &dl);
		}
		if (!w->in_head && w->stop) {
			pthread_mutex_unlock(&w->lock);
			break;
		}
		/* take up to cfg.batch jobs; leave the rest for the next round */
		batch = w->in_head;
		tail = &batch;
		while (*tail && n < w->cfg.batch) {
			tail = &(*tail)->next;
			n++;
		}
		rest = *tail;
		*tail = NULL;
		w->in_head = rest;
		if (!rest)
			w->in_tail = &w->in_head;
		pthread_mutex_unlock(&w->lock);

		if (batch) {
			run_batch(w, batch);
			if (w->cfg.done)
				w->cfg.done(w->cfg.done_arg, batch);
			else
				free_jobs(batch);
		}

		now = wall_ms();
		if (next_tick - now > 1000)
			next_tick = now;   /* the wall clock went back */
		if (now < next_tick && !busy)
			continue;
		if (now >= next_tick) {
			next_tick = now + 1000;
			/* after a failed commit, probe once a second so /readyz
			 * recovers without waiting for the next publish */
			if (!atomic_load(&w->ready) && store_begin(w->store) == 0 &&
			    store_commit(w->store) == 0) {
				atomic_store(&w->ready, 1);
				GW_INFO("%s: the store accepts commits again", __func__);
			}
			update_gauges(w);
		}
		busy = atomic_load(&w->ready) && housekeeping(w, now);
	}
	return NULL;
}

int writer_start(const struct writer_cfg *cfg, struct writer **out,
		 char *err, size_t errlen)
{
	struct writer *w = calloc(1, sizeof(*w));

	if (!w) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	w->cfg = *cfg;
	if (!w->cfg.batch)
		w->cfg.batch = 1024;
	w->in_tail = &w->in_head;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (store_open(cfg->db_path, STORE_WRITE, &w->store, err, errlen))
		goto init_fail;
	snprintf(w->epoch, sizeof(w->epoch), "%s", store_epoch(w->store));
	atomic_store(&w->ready, 1);
	if (pthread_create(&w->thread, NULL, writer_main, w)) {
		snprintf(err, errlen, "cannot start the writer thread");
		goto init_fail;
	}
	*out = w;
	return 0;

init_fail:
	store_close(w->store);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
	return -1;
}

void writer_submit(struct writer *w, struct gw_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&w->lock);
	*w->in_tail = j;
	w->in_tail = &j->next;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void writer_stop(struct writer *w)
{
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
}

void writer_free(struct writer *w)
{
	if (!w)
		return;
	free_jobs(w->in_head);   /* only if it never ran: writer_stop drains the queue */
	store_close(w->store);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
}

int writer_ready(const struct writer *w)
{
	return atomic_load(&((struct writer *)w)->ready);
}

const char *writer_epoch(const struct writer *w)
{
	return w->epoch;
}
