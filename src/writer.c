/*
 * The writer thread (see writer.h). It sleeps on a condition variable until
 * jobs arrive, swaps the whole input queue for an empty one under the lock,
 * and works through the batch with the lock released, so submitters never
 * wait on SQLite. One BEGIN IMMEDIATE .. COMMIT covers the batch; each job
 * has its own savepoint (store_job_begin/end around store_apply and its
 * event), so one bad job does not undo the others: a job the store refuses
 * on its own (a constraint, a trigger: store_failure_is_local) is rolled
 * back alone and reported as such (GW_ACK_RETRY), while a failure of the
 * store as a whole (disk full, read-only, I/O) fails the batch, makes the
 * writer not ready with the reason, and is probed once a second with a real
 * write (store_probe) until a commit works again. Publish ids older
 * than the dedup window go with retention (store_retention_step).
 *
 * The input queue is bounded in bytes: writer_submit refuses a job that
 * would take the queued bytes over cfg.queue_bytes (unless the queue is
 * empty), and the submitter answers "try later" its own way.
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
	pthread_mutex_t lock;       /* guards in_*, queued, stop, why */
	pthread_cond_t cond;
	struct gw_job *in_head, **in_tail;
	size_t queued;              /* bytes of the queued jobs (job_cost) */
	int stop;
	char why[256];              /* why the store is not ready */
	atomic_int ready;
	/* writer thread only: what the current retention sweep deleted (logged
	 * once when it ends), and whether a vacuum is under way (housekeeping) */
	struct { unsigned submissions; uint64_t ids, rows; } swept;
	int vacuuming;
};

/* what a queued job counts against queue_bytes: its publish and the job */
static size_t job_cost(const struct gw_job *j)
{
	return j->bytes + sizeof(*j);
}

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

/* writer thread: applies one job inside the open transaction, in its own
 * savepoint: the publish and its event are kept together or undone
 * together. A GW_EINTERNAL that was the job's own is marked j->alone; any
 * other GW_EINTERNAL means the batch has failed. */
static void apply_job(struct writer *w, struct gw_job *j)
{
	struct gw_state st;
	char at[32];
	int64_t now = wall_ms();
	char *ev = NULL, *legacy = NULL;
	int r, local = 0;

	if (store_job_begin(w->store)) {
		j->result = GW_EINTERNAL;
		snprintf(j->err, sizeof(j->err), "%s", store_last_error(w->store));
		return;
	}
	memset(&st, 0, sizeof(st));
	r = store_apply(w->store, &j->pub, now, &st, j->err, sizeof(j->err));
	if (r == 0) {
		j->seq = st.seq;
		proto_iso8601(now, at);
		ev = proto_encode_event(&st, w->epoch, j->type, at);
		legacy = proto_encode_legacy(&st);
		proto_state_clear(&st);
		if (!ev || !legacy) {
			r = GW_EINTERNAL;   /* out of memory: not the publish's fault */
			snprintf(j->err, sizeof(j->err), "out of memory for the event");
		} else if (store_append_event(w->store, j->key, j->seq, j->type, ev, now,
					      w->cfg.history)) {
			r = GW_EINTERNAL;
			local = store_failure_is_local(w->store);
			snprintf(j->err, sizeof(j->err), "could not store the event: %s",
				 store_last_error(w->store));
		}
	} else if (r == GW_EINTERNAL) {
		local = store_failure_is_local(w->store);
	}
	/* undo everything of a failed job (store_apply undid its own part,
	 * but not the event), keep the rest; if that fails the transaction is
	 * gone and so is the batch */
	if (store_job_end(w->store, r >= 0) < 0) {
		r = GW_EINTERNAL;
		local = 0;
		snprintf(j->err, sizeof(j->err), "%s", store_last_error(w->store));
	}
	j->result = r;
	if (r != 0) {
		free(ev);
		free(legacy);
		j->alone = r == GW_EINTERNAL && local;
		j->seq = 0;
		return;
	}
	j->event = gw_buf_take_str(ev);
	j->legacy = gw_buf_take_str(legacy);
	if (!j->event || !j->legacy) {
		j->result = GW_EINTERNAL;   /* the batch fails: its seq is taken */
		return;
	}
	j->event->t_in_ns = j->legacy->t_in_ns = j->t_in_ns;
}

int writer_ack_of(const struct gw_job *j)
{
	if (j->result >= 0)
		return GW_ACK_OK;
	if (j->result == GW_EINTERNAL)
		return j->alone ? GW_ACK_RETRY : GW_ACK_REQUEUE;
	return GW_ACK_REJECT;
}

/* writer thread: the store failed as a whole; /readyz says why until a
 * commit or a probe works again */
static void set_unready(struct writer *w, const char *why)
{
	pthread_mutex_lock(&w->lock);
	snprintf(w->why, sizeof(w->why), "%s", why && *why ? why : "store failure");
	pthread_mutex_unlock(&w->lock);
	if (atomic_exchange(&w->ready, 0))
		GW_ERR("%s: the store does not accept commits: %s", __func__, w->why);
	GW_SET(store_up, 0);
}

static void set_ready(struct writer *w)
{
	if (!atomic_exchange(&w->ready, 1))
		GW_INFO("%s: the store accepts commits again", __func__);
	GW_SET(store_up, 1);
}

/* writer thread: one transaction over the batch. Apply time and commit time
 * (with synchronous=FULL: the WAL's fsync) are measured apart. */
static void run_batch(struct writer *w, struct gw_job *batch)
{
	uint64_t t0 = metrics_now_ns(), t1;
	int failed;
	char why[256] = "";

	for (struct gw_job *j = batch; j; j = j->next) {
		memcpy(j->key, j->pub.key, sizeof(j->key));
		j->type = j->pub.type;
	}
	failed = store_begin(w->store) != 0;
	if (failed)
		snprintf(why, sizeof(why), "%s", store_last_error(w->store));

	for (struct gw_job *j = batch; j && !failed; j = j->next) {
		apply_job(w, j);
		proto_pub_free(&j->pub);   /* the JSON is no longer needed */
		if (j->result == GW_EINTERNAL && !j->alone) {
			failed = 1;
			snprintf(why, sizeof(why), "%s", j->err);
		}
	}
	t1 = metrics_now_ns();
	if (!failed) {
		metrics_observe(&gw_metrics.apply_seconds, t1 - t0);
		if (store_commit(w->store) == 0) {
			metrics_observe(&gw_metrics.commit_seconds, metrics_now_ns() - t1);
			set_ready(w);
		} else {
			failed = 1;
			snprintf(why, sizeof(why), "%s", store_last_error(w->store));
		}
	}
	if (failed) {
		store_rollback(w->store);
		GW_INC(store_commit_failures);
		set_unready(w, why);
		GW_ERR("%s: store commit failed; the batch is refused: %s", __func__, why);
		for (struct gw_job *j = batch; j; j = j->next) {
			proto_pub_free(&j->pub);
			gw_buf_unref(j->legacy);
			gw_buf_unref(j->event);
			j->legacy = j->event = NULL;
			j->seq = 0;
			if (j->result >= 0 || j->result == GW_EINTERNAL) {
				j->result = GW_EINTERNAL;
				j->alone = 0;
				snprintf(j->err, sizeof(j->err), "store unavailable: %.170s", why);
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
			w->queued -= job_cost(*tail);
			tail = &(*tail)->next;
			n++;
		}
		GW_SET(writer_queue_bytes, (int64_t)w->queued);
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
			 * recovers without waiting for the next publish; the probe
			 * writes, as an empty transaction would succeed on a full
			 * or read-only disk */
			if (!atomic_load(&w->ready)) {
				if (store_probe(w->store, now) == 0)
					set_ready(w);
				else
					set_unready(w, store_last_error(w->store));
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
	GW_SET(store_up, 1);
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

int writer_submit(struct writer *w, struct gw_job *j)
{
	size_t cost = job_cost(j);

	pthread_mutex_lock(&w->lock);
	if (w->cfg.queue_bytes && w->in_head && w->queued + cost > w->cfg.queue_bytes) {
		pthread_mutex_unlock(&w->lock);
		return -1;   /* j untouched: still the caller's */
	}
	j->next = NULL;
	*w->in_tail = j;
	w->in_tail = &j->next;
	w->queued += cost;
	GW_SET(writer_queue_bytes, (int64_t)w->queued);
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
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

void writer_why(struct writer *w, char *out, size_t len)
{
	pthread_mutex_lock(&w->lock);
	snprintf(out, len, "%s", w->why);
	pthread_mutex_unlock(&w->lock);
}

const char *writer_epoch(const struct writer *w)
{
	return w->epoch;
}
