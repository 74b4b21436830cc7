/*
 * Writer micro-benchmark: the cost of the publish path behind the broker and
 * HTTP front ends (decode, apply, encode, store the event, commit), without
 * sockets. Submits N status publishes with ids over 100 submissions, keeping
 * at most WINDOW in flight (as an AMQP prefetch would), and prints the rate.
 * Build: cmake --build build --target writer_bench
 * Run:   build/writer_bench [N] [WINDOW] [DB]
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

static void wake(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 50000;
	long window = argc > 2 ? atol(argv[2]) : 512;
	char path[256];
	struct writer_cfg cfg = { NULL, 1000, 1024, 3600000, wake, NULL };
	struct writer *w;
	char err[200], body[256];
	long sent = 0, done = 0, failed = 0;
	uint64_t t0;

	snprintf(path, sizeof(path), "%s", argc > 3 ? argv[3] : "/tmp/writer_bench.db");
	unlink(path);
	cfg.db_path = path;
	if (writer_start(&cfg, &w, err, sizeof(err))) {
		fprintf(stderr, "writer_bench: %s\n", err);
		return 1;
	}
	t0 = metrics_now_ns();
	while (done < n) {
		while (sent < n && sent - done < window) {
			struct gw_job *j = writer_job_new(GW_SRC_AMQP, (uint64_t)sent);
			int len = snprintf(body, sizeof(body),
				"{\"type\":\"status\",\"submission\":\"bench-%ld\",\"status\":\"%s\","
				"\"notification\":\"step %ld of the import\",\"id\":\"b-%ld\"}",
				sent % 100, sent % 2 ? "Loaded" : "Submitted", sent, sent);
			if (proto_decode_publish(body, (size_t)len, 0, NULL, &j->pub, err, sizeof(err)))
				return 1;
			writer_submit(w, j);
			sent++;
		}
		pthread_mutex_lock(&mu);
		struct gw_job *list = writer_take_done(w);
		if (!list)
			pthread_cond_wait(&cv, &mu);
		pthread_mutex_unlock(&mu);
		while (list) {
			struct gw_job *next = list->next;
			if (list->result)
				failed++;
			done++;
			writer_job_free(list);
			list = next;
		}
	}
	double s = (double)(metrics_now_ns() - t0) / 1e9;
	printf("{\"publishes\":%ld,\"window\":%ld,\"seconds\":%.3f,\"per_second\":%.0f,"
	       "\"us_per_publish\":%.1f,\"failed\":%ld}\n", n, window, s, n / s, s * 1e6 / n, failed);
	writer_stop(w);
	writer_free(w);
	return failed != 0;
}
