/*
 * Writer micro-benchmark: the cost of the publish path behind the broker and
 * HTTP front ends (decode, apply, encode, store the event, commit), without
 * sockets. Keeps at most WINDOW publishes in flight (as an AMQP prefetch
 * would) and prints one JSON line.
 *
 *   writer_bench [N] [WINDOW] [DB]   N status publishes over 100 submissions
 *   writer_bench --big [N]           N validation publishes (one record each,
 *       with a message) into a submission of 100,000 records, then the same
 *       into one of 10 records, alternately in rounds: the store keeps the
 *       summary with counters, so both should cost the same.
 *
 * Build: cmake --build build --target writer_bench
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "proto.h"
#include "writer.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static struct gw_job *done_head, **done_tail = &done_head;   /* under mu */

/* writer thread: keeps each finished batch for the submitting loop */
static void on_done(void *arg, struct gw_job *batch)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	*done_tail = batch;
	while (*done_tail)
		done_tail = &(*done_tail)->next;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

/* a writer on a fresh database at path; NULL (reported) on failure */
static struct writer *start(const char *path)
{
	struct writer_cfg cfg = { path, 1000, 1024, 3600000, on_done, NULL, 0 };
	struct writer *w;
	char err[200];

	unlink(path);
	if (writer_start(&cfg, &w, err, sizeof(err))) {
		fprintf(stderr, "writer_bench: %s\n", err);
		return NULL;
	}
	return w;
}

typedef int (*body_fn)(char *buf, size_t cap, long i, void *arg);

/* runs n publishes made by fn with at most window in flight; seconds taken */
static double run(struct writer *w, long n, long window, body_fn fn, void *arg, long *failed)
{
	char err[200], body[1024];
	long sent = 0, done = 0;
	uint64_t t0 = metrics_now_ns();

	while (done < n) {
		while (sent < n && sent - done < window) {
			struct gw_job *j = writer_job_new(GW_SRC_AMQP, (uint64_t)sent);
			int len = fn(body, sizeof(body), sent, arg);
			if (proto_decode_publish(body, (size_t)len, 0, NULL, &j->pub, err, sizeof(err))) {
				fprintf(stderr, "writer_bench: %s\n", err);
				exit(1);
			}
			writer_submit(w, j);
			sent++;
		}
		pthread_mutex_lock(&mu);
		if (!done_head)
			pthread_cond_wait(&cv, &mu);
		struct gw_job *list = done_head;
		done_head = NULL;
		done_tail = &done_head;
		pthread_mutex_unlock(&mu);
		while (list) {
			struct gw_job *next = list->next;
			if (list->result)
				(*failed)++;
			done++;
			writer_job_free(list);
			list = next;
		}
	}
	return (double)(metrics_now_ns() - t0) / 1e9;
}

static int records_body(char *b, size_t cap, long i, void *arg)
{
	const char *key = arg;
	size_t n = (size_t)snprintf(b, cap, "{\"type\":\"records\",\"submission\":\"%s\",\"records\":[", key);

	/* 10 records per publish: a1000*i .. */
	for (int k = 0; k < 10; k++)
		n += (size_t)snprintf(b + n, cap - n, "%s{\"kind\":\"animal\",\"name\":\"a%ld\"}",
				      k ? "," : "", i * 10 + k);
	n += (size_t)snprintf(b + n, cap - n, "]}");
	return (int)n;
}

struct val_arg {
	const char *key;
	long records;
};

static int validation_body(char *b, size_t cap, long i, void *arg)
{
	const struct val_arg *v = arg;
	static const char *const res[] = { "Pass", "Warning", "Error" };

	return snprintf(b, cap, "{\"type\":\"validation\",\"submission\":\"%s\",\"results\":"
			"[{\"kind\":\"animal\",\"name\":\"a%ld\",\"status\":\"%s\",\"messages\":"
			"[{\"text\":\"message %ld\",\"column\":\"breed\"}]}]}",
			v->key, (i * 7919) % v->records, res[i % 3], i % 20);
}

/* the summary stays O(1) per publish however many records a submission has */
static int big(long n)
{
	struct writer *w = start("/tmp/writer_bench_big.db");
	/* big_near touches the same 10 records of the big submission as small
	 * touches of its own: any difference is the submission's size alone.
	 * big_far touches any of the 100,000: each publish then dirties another
	 * b-tree leaf, which costs page writes (locality), not a scan. */
	struct val_arg big_near = { "big", 10 }, big_far = { "big", 100000 }, smallv = { "small", 10 };
	long failed = 0;
	double tn = 0, tf = 0, ts = 0;

	if (!w)
		return 1;
	run(w, 10000, 512, records_body, (void *)"big", &failed);     /* 100,000 records */
	run(w, 1, 1, records_body, (void *)"small", &failed);         /* 10 records */
	/* rounds alternate the order, so no case always runs right after the
	 * far one (which churns the page cache) */
	for (int round = 0; round < 12; round++) {
		if (round % 3 == 0)
			tf += run(w, n / 12, 512, validation_body, &big_far, &failed);
		if (round % 2) {
			tn += run(w, n / 12, 512, validation_body, &big_near, &failed);
			ts += run(w, n / 12, 512, validation_body, &smallv, &failed);
		} else {
			ts += run(w, n / 12, 512, validation_body, &smallv, &failed);
			tn += run(w, n / 12, 512, validation_body, &big_near, &failed);
		}
	}
	tf *= 3;   /* it ran a third as often */
	printf("{\"validation_publishes\":%ld,\"us_small_10_records\":%.1f,"
	       "\"us_big_same_10_records\":%.1f,\"us_big_any_of_100000\":%.1f,"
	       "\"ratio_same_records\":%.2f,\"ratio_any_record\":%.2f,\"failed\":%ld}\n",
	       n, ts * 1e6 / n, tn * 1e6 / n, tf * 1e6 / n, tn / ts, tf / ts, failed);
	writer_stop(w);
	writer_free(w);
	return failed != 0;
}

/* status publishes with ids over 100 submissions */
static int status_body(char *b, size_t cap, long i, void *arg)
{
	(void)arg;
	return snprintf(b, cap, "{\"type\":\"status\",\"submission\":\"bench-%ld\",\"status\":\"%s\","
			"\"notification\":\"step %ld of the import\",\"id\":\"b-%ld\"}",
			i % 100, i % 2 ? "Loaded" : "Submitted", i, i);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--big"))
		return big(argc > 2 ? atol(argv[2]) : 20000);

	long n = argc > 1 ? atol(argv[1]) : 50000;
	long window = argc > 2 ? atol(argv[2]) : 512;
	struct writer *w = start(argc > 3 ? argv[3] : "/tmp/writer_bench.db");
	long failed = 0;
	double s;

	if (!w)
		return 1;
	s = run(w, n, window, status_body, NULL, &failed);
	printf("{\"publishes\":%ld,\"window\":%ld,\"seconds\":%.3f,\"per_second\":%.0f,"
	       "\"us_per_publish\":%.1f,\"failed\":%ld}\n", n, window, s, n / s, s * 1e6 / n, failed);
	writer_stop(w);
	writer_free(w);
	return failed != 0;
}
