/*
 * The writer thread and the hand-off queue: jobs come back in submission
 * order with their results and encoded frames (through the done callback);
 * AMQP jobs are acknowledged through their committed callback only after
 * their commit, with the right outcome; stop drains everything queued;
 * hand-off tasks from several threads all run. A publish the store refuses
 * on its own (a trigger here) fails alone while the rest of its batch
 * commits; the input queue is bounded in bytes.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "handoff.h"
#include "metrics.h"
#include "proto.h"
#include "store.h"
#include "writer.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int wakes;

struct ack { uint64_t tag; int outcome; };
static struct ack acks[64];
static int nacks;

/* finished batches, oldest first, as the done callback hands them over */
static struct gw_job *done_head, **done_tail = &done_head;

/* writer thread: the done callback keeps each batch for take_done */
static void on_done(void *arg, struct gw_job *batch)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	*done_tail = batch;
	while (*done_tail)
		done_tail = &(*done_tail)->next;
	wakes++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* caller holds mu when it must wait on cv; takes every finished job */
static struct gw_job *take_done_locked(void)
{
	struct gw_job *list = done_head;

	done_head = NULL;
	done_tail = &done_head;
	return list;
}

static struct gw_job *take_done(void)
{
	struct gw_job *list;

	pthread_mutex_lock(&mu);
	list = take_done_locked();
	pthread_mutex_unlock(&mu);
	return list;
}

/* writer thread: an AMQP job's committed callback (the broker's ack) */
static void on_committed(struct gw_job *j, void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	if (nacks < 64)
		acks[nacks++] = (struct ack){ j->cookie, writer_ack_of(j) };
	pthread_mutex_unlock(&mu);
}

static struct gw_job *job(int source, uint64_t cookie, const char *json)
{
	struct gw_job *j = writer_job_new(source, cookie);
	char err[200];
	int r = proto_decode_publish(json, strlen(json), 0, NULL, &j->pub, err, sizeof(err));

	if (r)
		fprintf(stderr, "decode failed: %s\n", err);
	CHECK_EQ_INT(r, 0);
	if (source == GW_SRC_AMQP)
		j->committed = on_committed;
	return j;
}

/* waits until n jobs came back; returns them as an array (caller frees) */
static struct gw_job **collect(struct writer *w, int n)
{
	struct gw_job **out = calloc((size_t)n, sizeof(*out));
	int got = 0;

	while (got < n) {
		struct gw_job *j;

		pthread_mutex_lock(&mu);
		j = take_done_locked();
		if (!j) {
			struct timespec dl;
			clock_gettime(CLOCK_REALTIME, &dl);
			dl.tv_sec += 10;
			if (pthread_cond_timedwait(&cv, &mu, &dl)) {
				pthread_mutex_unlock(&mu);
				break;   /* nothing for 10 s: report what we have */
			}
		}
		pthread_mutex_unlock(&mu);
		for (; j; j = j->next)
			if (got < n)
				out[got++] = j;
	}
	CHECK_EQ_INT(got, n);
	return out;
}

static void free_jobs(struct gw_job **v, int n)
{
	for (int i = 0; i < n; i++)
		writer_job_free(v[i]);
	free(v);
}

static void test_results_and_acks(const char *db)
{
	struct writer_cfg cfg = { .db_path = db, .history = 1000, .batch = 64,
				  .dedup_window_ms = 3600000, .done = on_done };
	struct writer *w;
	char err[200];
	char many[2048];
	size_t n;

	CHECK_EQ_INT(writer_start(&cfg, &w, err, sizeof(err)), 0);
	CHECK(strlen(writer_epoch(w)) == 32);
	CHECK(writer_ready(w));

	/* 17 kinds: valid JSON, but the store refuses more than 16 kinds */
	n = (size_t)snprintf(many, sizeof(many), "{\"type\":\"records\",\"submission\":\"k\",\"records\":[");
	for (int i = 0; i < 17; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "%s{\"kind\":\"kind%d\",\"name\":\"n\"}",
				      i ? "," : "", i);
	snprintf(many + n, sizeof(many) - n, "]}");

	writer_submit(w, job(GW_SRC_HTTP, 1, "{\"type\":\"status\",\"submission\":\"s1\",\"status\":\"Loaded\"}"));
	writer_submit(w, job(GW_SRC_AMQP, 101, "{\"type\":\"status\",\"submission\":\"s1\",\"status\":\"Ready\",\"id\":\"x1\"}"));
	writer_submit(w, job(GW_SRC_AMQP, 102, "{\"type\":\"status\",\"submission\":\"s1\",\"status\":\"Error\",\"id\":\"x1\"}"));
	writer_submit(w, job(GW_SRC_AMQP, 103, many));
	writer_submit(w, job(GW_SRC_HTTP, 2, "{\"type\":\"notification\",\"submission\":\"s2\",\"notification\":\"hi\"}"));

	struct gw_job **v = collect(w, 5);
	if (check_failures())
		goto out;
	/* submission order, with results */
	CHECK_EQ_INT(v[0]->cookie, 1);
	CHECK_EQ_INT(v[0]->result, 0);
	CHECK_EQ_INT(v[0]->seq, 1);
	CHECK_EQ_STR(v[0]->key, "s1");
	CHECK(v[0]->legacy && v[0]->event);
	CHECK(strstr((char *)gw_buf_data(v[0]->legacy), "\"message\":\"Loaded\"") != NULL);
	CHECK(strstr((char *)gw_buf_data(v[0]->event), "\"seq\":1") != NULL);
	CHECK_EQ_INT(v[1]->result, 0);
	CHECK_EQ_INT(v[1]->seq, 2);
	CHECK_EQ_INT(v[2]->result, 1);          /* same id: no effect */
	CHECK(v[2]->legacy == NULL && v[2]->event == NULL);
	CHECK_EQ_INT(v[3]->result, GW_EINVAL);
	CHECK(strlen(v[3]->err) > 0);
	CHECK_EQ_STR(v[3]->key, "k");
	CHECK_EQ_INT(v[4]->result, 0);
	CHECK_EQ_INT(v[4]->seq, 1);             /* seq is per submission */
	CHECK_EQ_INT(v[4]->type, GW_PUB_NOTIFICATION);

	/* AMQP jobs only, in order, after commit */
	pthread_mutex_lock(&mu);
	CHECK_EQ_INT(nacks, 3);
	CHECK_EQ_INT(acks[0].tag, 101);
	CHECK_EQ_INT(acks[0].outcome, GW_ACK_OK);
	CHECK_EQ_INT(acks[1].tag, 102);
	CHECK_EQ_INT(acks[1].outcome, GW_ACK_OK);     /* duplicates are acked */
	CHECK_EQ_INT(acks[2].tag, 103);
	CHECK_EQ_INT(acks[2].outcome, GW_ACK_REJECT); /* dead-lettered */
	CHECK(wakes >= 1);
	pthread_mutex_unlock(&mu);
out:
	free_jobs(v, 5);
	writer_stop(w);
	writer_free(w);
}

/* stop right after submitting: every job is committed and handed back */
static void test_stop_drains(const char *db)
{
	enum { N = 500 };
	struct writer_cfg cfg = { .db_path = db, .history = 10, .batch = 32,
				  .dedup_window_ms = 3600000, .done = on_done };
	struct writer *w;
	char err[200], json[128];
	int count = 0, ordered = 1;
	uint64_t last = 0;

	CHECK_EQ_INT(writer_start(&cfg, &w, err, sizeof(err)), 0);
	for (int i = 0; i < N; i++) {
		snprintf(json, sizeof(json),
			 "{\"type\":\"notification\",\"submission\":\"drain\",\"notification\":\"%d\"}", i);
		writer_submit(w, job(GW_SRC_HTTP, (uint64_t)i, json));
	}
	writer_stop(w);
	for (struct gw_job *j = take_done(); j;) {
		struct gw_job *next = j->next;
		if (j->result != 0 || j->seq != last + 1)
			ordered = 0;
		last = j->seq;
		count++;
		writer_job_free(j);
		j = next;
	}
	CHECK_EQ_INT(count, N);
	CHECK(ordered);
	writer_free(w);
}

/* waits until the store seen through a read handle has no submission and
 * no record left; 1 when it got there */
static int wait_empty(const char *db)
{
	struct store *r = NULL;
	struct store_stats st;
	char err[200];
	int ok = 0;

	if (store_open(db, STORE_READ, &r, err, sizeof(err))) {
		fprintf(stderr, "store_open: %s\n", err);
		return 0;
	}
	for (int i = 0; i < 600 && !ok; i++) {   /* up to a minute */
		ok = store_stats(r, &st) == 0 && st.submissions == 0 && st.records == 0 &&
		     st.events == 0;
		if (!ok)
			usleep(100000);
	}
	store_close(r);
	return ok;
}

/* retention on the writer thread: a submission of 300 records goes in
 * steps of 10 rows between batches; the gauges and counters follow; the key
 * published to again starts above its old seq */
static void test_retention(const char *db)
{
	struct writer_cfg cfg = { .db_path = db, .history = 1000, .batch = 64,
				  .dedup_window_ms = 3600000, .done = on_done,
				  .retention_ms = 1, .purge_rows = 10 };
	struct writer *w;
	char err[200], json[16384];
	size_t n;
	uint64_t deleted0 = atomic_load(&gw_metrics.retention_deleted);
	uint64_t rows0 = atomic_load(&gw_metrics.retention_rows);

	CHECK_EQ_INT(writer_start(&cfg, &w, err, sizeof(err)), 0);
	n = (size_t)snprintf(json, sizeof(json),
			     "{\"type\":\"records\",\"submission\":\"old\",\"records\":[");
	for (int i = 0; i < 300; i++)
		n += (size_t)snprintf(json + n, sizeof(json) - n,
				      "%s{\"kind\":\"animal\",\"name\":\"a%d\"}", i ? "," : "", i);
	snprintf(json + n, sizeof(json) - n, "]}");
	writer_submit(w, job(GW_SRC_HTTP, 1, json));
	struct gw_job **v = collect(w, 1);
	if (!check_failures()) {
		CHECK_EQ_INT(v[0]->result, 0);
		CHECK_EQ_INT(v[0]->seq, 1);
	}
	free_jobs(v, 1);

	/* within a few housekeeping rounds it is gone, rows and all */
	CHECK(wait_empty(db));
	CHECK_EQ_INT(atomic_load(&gw_metrics.retention_deleted) - deleted0, 1);
	/* the row, its 300 records, its kind counts and its event */
	CHECK_EQ_INT(atomic_load(&gw_metrics.retention_rows) - rows0, 1 + 300 + 1 + 1 + 1);
	CHECK(writer_ready(w));

	/* published to again: a new submission, seq above the old one's 1 */
	writer_submit(w, job(GW_SRC_HTTP, 2,
			     "{\"type\":\"status\",\"submission\":\"old\",\"status\":\"Loaded\"}"));
	v = collect(w, 1);
	if (!check_failures()) {
		CHECK_EQ_INT(v[0]->result, 0);
		CHECK_EQ_INT(v[0]->seq, 3);
		CHECK(strstr((char *)gw_buf_data(v[0]->event), "\"seq\":3") != NULL);
	}
	free_jobs(v, 1);
	CHECK(wait_empty(db));
	writer_stop(w);
	writer_free(w);
	/* the writer's last gauges: an empty store */
	CHECK_EQ_INT(atomic_load(&gw_metrics.store_submissions), 0);
	CHECK_EQ_INT(atomic_load(&gw_metrics.store_records), 0);
	CHECK(atomic_load(&gw_metrics.store_bytes) > 0);
}

/* runs sql on db through a connection of its own */
static void sql(const char *db, const char *q)
{
	sqlite3 *h = NULL;
	char *msg = NULL;

	CHECK_EQ_INT(sqlite3_open(db, &h), SQLITE_OK);
	sqlite3_busy_timeout(h, 5000);
	if (sqlite3_exec(h, q, NULL, NULL, &msg) != SQLITE_OK)
		fprintf(stderr, "%s: %s\n", q, msg);
	CHECK(msg == NULL);
	sqlite3_free(msg);
	sqlite3_close(h);
}

/*
 * A poison publish: the store refuses it every time (a trigger stands for
 * any deterministic per-publish store error). It must fail alone, reported
 * GW_ACK_RETRY (so the bridge can count attempts and dead-letter it), while
 * every other publish of its batch commits with contiguous seqs. Before, it
 * failed its whole batch (HTTP 503s, AMQP requeues) every time it came back.
 * A publish whose event cannot be stored is undone whole: its submission
 * keeps its seq and state.
 */
static void test_poison_fails_alone(const char *db)
{
	struct writer_cfg cfg = { .db_path = db, .history = 1000, .batch = 64,
				  .dedup_window_ms = 3600000, .done = on_done };
	struct writer *w;
	char err[200];

	CHECK_EQ_INT(writer_start(&cfg, &w, err, sizeof(err)), 0);   /* the schema */
	writer_stop(w);
	writer_free(w);
	sql(db, "CREATE TRIGGER poison_ins BEFORE INSERT ON submissions"
		" WHEN NEW.notification = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END;"
		"CREATE TRIGGER poison_upd BEFORE UPDATE ON submissions"
		" WHEN NEW.notification = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END;"
		"CREATE TRIGGER poison_ev BEFORE INSERT ON events"
		" WHEN NEW.json LIKE '%poison-event%' BEGIN SELECT RAISE(ABORT, 'no event'); END;");
	CHECK_EQ_INT(writer_start(&cfg, &w, err, sizeof(err)), 0);

	pthread_mutex_lock(&mu);
	nacks = 0;
	pthread_mutex_unlock(&mu);
	/* one batch: the writer is started, all five are queued before it runs
	 * them or not; either way each must get its own outcome */
	writer_submit(w, job(GW_SRC_HTTP, 1, "{\"type\":\"notification\",\"submission\":\"p\",\"notification\":\"one\"}"));
	writer_submit(w, job(GW_SRC_AMQP, 201, "{\"type\":\"notification\",\"submission\":\"p\",\"notification\":\"poison\"}"));
	writer_submit(w, job(GW_SRC_AMQP, 202, "{\"type\":\"notification\",\"submission\":\"p\",\"notification\":\"two\"}"));
	writer_submit(w, job(GW_SRC_AMQP, 203, "{\"type\":\"notification\",\"submission\":\"p\",\"notification\":\"poison-event\"}"));
	writer_submit(w, job(GW_SRC_HTTP, 2, "{\"type\":\"notification\",\"submission\":\"p\",\"notification\":\"three\"}"));

	struct gw_job **v = collect(w, 5);
	if (check_failures())
		goto out;
	CHECK_EQ_INT(v[0]->result, 0);
	CHECK_EQ_INT(v[0]->seq, 1);
	CHECK_EQ_INT(v[1]->result, GW_EINTERNAL);
	CHECK(v[1]->alone);
	CHECK(strstr(v[1]->err, "poisoned") != NULL);
	CHECK_EQ_INT(writer_ack_of(v[1]), GW_ACK_RETRY);
	CHECK_EQ_INT(v[2]->result, 0);
	CHECK_EQ_INT(v[2]->seq, 2);
	CHECK_EQ_INT(v[3]->result, GW_EINTERNAL);   /* applied, but its event not */
	CHECK(v[3]->alone);
	CHECK(v[3]->event == NULL && v[3]->legacy == NULL);
	CHECK_EQ_INT(v[4]->result, 0);
	CHECK_EQ_INT(v[4]->seq, 3);                 /* 3: the undone one took none */
	CHECK(strstr((char *)gw_buf_data(v[4]->event), "\"notification\":\"three\"") != NULL);
	CHECK(writer_ready(w));                     /* the store itself is fine */
	pthread_mutex_lock(&mu);
	CHECK_EQ_INT(nacks, 3);
	CHECK_EQ_INT(acks[0].outcome, GW_ACK_RETRY);
	CHECK_EQ_INT(acks[1].outcome, GW_ACK_OK);
	CHECK_EQ_INT(acks[2].outcome, GW_ACK_RETRY);
	pthread_mutex_unlock(&mu);
out:
	free_jobs(v, 5);
	writer_stop(w);
	writer_free(w);
}

/*
 * The input queue is bounded in bytes. Another connection holds the write
 * lock, so the writer's first batch waits in BEGIN IMMEDIATE (busy timeout)
 * while more jobs queue: those that fit are taken, the next is refused and
 * stays the caller's; after the lock goes, everything taken commits and the
 * refused one fits again.
 */
static void test_queue_bound(const char *db)
{
	enum { BODY = 1000 };
	size_t cost = BODY + sizeof(struct gw_job);
	struct writer_cfg cfg = { .db_path = db, .history = 1000, .batch = 64,
				  .dedup_window_ms = 3600000, .done = on_done, .queue_bytes = 3 * cost };
	struct writer *w;
	sqlite3 *h = NULL;
	char err[200], json[128];
	struct gw_job *j[5];
	int taken = 0;

	CHECK_EQ_INT(writer_start(&cfg, &w, err, sizeof(err)), 0);
	CHECK_EQ_INT(sqlite3_open(db, &h), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	for (int i = 0; i < 5; i++) {
		snprintf(json, sizeof(json), "{\"type\":\"notification\",\"submission\":\"q\","
			 "\"notification\":\"%d\"}", i);
		j[i] = job(GW_SRC_HTTP, (uint64_t)i, json);
		j[i]->bytes = BODY;
	}
	CHECK_EQ_INT(writer_submit(w, j[0]), 0);
	/* the writer takes it and then waits for the lock */
	while (atomic_load(&gw_metrics.writer_queue_bytes) != 0)
		usleep(1000);
	for (int i = 1; i < 4; i++)
		CHECK_EQ_INT(writer_submit(w, j[i]), 0);
	CHECK_EQ_INT(writer_submit(w, j[4]), -1);    /* 4 x cost > 3 x cost */
	CHECK(j[4]->next == NULL);
	CHECK_EQ_INT(atomic_load(&gw_metrics.writer_queue_bytes), (int64_t)(3 * cost));
	CHECK_EQ_INT(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	while (writer_submit(w, j[4]))               /* room again once taken */
		usleep(1000);
	struct gw_job **v = collect(w, 5);
	for (int i = 0; i < 5 && !check_failures(); i++) {
		CHECK_EQ_INT(v[i]->result, 0);
		CHECK_EQ_INT(v[i]->seq, i + 1);
		taken++;
	}
	CHECK_EQ_INT(taken, 5);
	free_jobs(v, 5);
	writer_stop(w);
	writer_free(w);
}

static atomic_int ran;

static void task(void *ctx, void *arg)
{
	(void)arg;
	if (ctx)
		atomic_fetch_add(&ran, 1);
	else
		atomic_fetch_add(&ran, 1000);   /* freed without running */
}

static void *poster(void *arg)
{
	for (int i = 0; i < 1000; i++)
		handoff_post(arg, task, NULL);
	return NULL;
}

static void test_handoff(void)
{
	struct handoff *h = handoff_new();
	pthread_t t1, t2;
	int ctx;

	pthread_create(&t1, NULL, poster, h);
	pthread_create(&t2, NULL, poster, h);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	handoff_run(h, &ctx);
	CHECK_EQ_INT(atomic_load(&ran), 2000);
	handoff_run(h, &ctx);                  /* nothing left */
	CHECK_EQ_INT(atomic_load(&ran), 2000);
	handoff_post(h, task, NULL);
	handoff_free(h);                        /* pending task: fn(NULL, arg) */
	CHECK_EQ_INT(atomic_load(&ran), 3000);
}

int main(void)
{
	char dir[] = "/tmp/sg-writer-XXXXXX", db1[96], db2[96], db3[96], db4[96], db5[96];

	if (!mkdtemp(dir))
		return 1;
	snprintf(db1, sizeof(db1), "%s/a.db", dir);
	snprintf(db2, sizeof(db2), "%s/b.db", dir);
	snprintf(db3, sizeof(db3), "%s/c.db", dir);
	snprintf(db4, sizeof(db4), "%s/d.db", dir);
	snprintf(db5, sizeof(db5), "%s/e.db", dir);
	test_results_and_acks(db1);
	test_stop_drains(db2);
	test_retention(db3);
	test_poison_fails_alone(db4);
	test_queue_bound(db5);
	test_handoff();
	return check_report();
}
