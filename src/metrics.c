/*
 * Metrics storage and the Prometheus text rendering. Histogram buckets are
 * fixed and roughly logarithmic, from 50 microseconds to 5 seconds.
 */
#include "metrics.h"

#include <malloc.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct gw_metrics gw_metrics;

/* upper bounds in nanoseconds; the last bucket is +Inf */
static const uint64_t bounds_ns[GW_HIST_BUCKETS - 1] = {
	50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
	25000000, 50000000, 100000000, 250000000, 500000000, 1000000000,
	5000000000ull,
};

uint64_t metrics_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void metrics_observe(struct gw_hist *h, uint64_t ns)
{
	int i = 0;

	while (i < GW_HIST_BUCKETS - 1 && ns > bounds_ns[i])
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

struct out {
	char *p;
	size_t len, cap;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!o->p)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		char *np = realloc(o->p, o->cap * 2 + (size_t)n);
		if (!np) {
			free(o->p);
			o->p = NULL;
			return;
		}
		o->p = np;
		o->cap = o->cap * 2 + (size_t)n;
	}
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void put_metric(struct out *o, const char *name, const char *type,
		       const char *help, long long v)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", name, help, name, type, name, v);
}

static void put_hist(struct out *o, const char *name, const char *help,
		     struct gw_hist *h)
{
	uint64_t cum = 0;

	put(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (int i = 0; i < GW_HIST_BUCKETS; i++) {
		cum += LOAD(h->bucket[i]);
		if (i < GW_HIST_BUCKETS - 1)
			put(o, "%s_bucket{le=\"%g\"} %llu\n", name,
			    (double)bounds_ns[i] / 1e9, (unsigned long long)cum);
		else
			put(o, "%s_bucket{le=\"+Inf\"} %llu\n", name,
			    (unsigned long long)cum);
	}
	put(o, "%s_sum %.9f\n%s_count %llu\n", name,
	    (double)LOAD(h->sum_ns) / 1e9, name,
	    (unsigned long long)LOAD(h->count));
}

/* memory as the allocator sees it: what is in use, and what it holds free
 * (fragmentation tells itself apart from a leak by the second growing, not
 * the first); SQLite's own share (page caches of the writer and reader
 * handles) is in the first */
static void put_memory(struct out *o)
{
	long long in_use = -1, held_free = -1;

	/* not under AddressSanitizer, whose allocator glibc's mallinfo2 does
	 * not see (it answers zeros) */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33)) && \
	!defined(__SANITIZE_ADDRESS__)
	struct mallinfo2 mi = mallinfo2();

	in_use = (long long)(mi.uordblks + mi.hblkhd);
	held_free = (long long)mi.fordblks;
#endif
	put_metric(o, "statusgate_heap_in_use_bytes", "gauge",
		   "Bytes allocated and not freed, all threads (-1: not known on this libc).",
		   in_use);
	put_metric(o, "statusgate_heap_free_bytes", "gauge",
		   "Freed bytes the allocator still holds (-1: not known on this libc).",
		   held_free);
	put_metric(o, "statusgate_sqlite_memory_bytes", "gauge",
		   "Bytes SQLite has allocated (page caches, statements), part of the heap in use.",
		   (long long)sqlite3_memory_used());
}

char *metrics_render(void)
{
	static const char *const src[] = { "http", "amqp", "ws" };
	static const char *const outc[] = { "accepted", "duplicate", "invalid", "failed" };
	struct gw_metrics *m = &gw_metrics;
	struct out o = { malloc(4096), 0, 4096 };

	put_metric(&o, "statusgate_connections", "gauge",
		   "Open WebSocket connections.", (long long)LOAD(m->ws_connections));
	put_metric(&o, "statusgate_sse_connections", "gauge",
		   "Open Server-Sent Events streams.", (long long)LOAD(m->sse_connections));
	put_metric(&o, "statusgate_groups", "gauge",
		   "Submissions watched by at least one connection.", (long long)LOAD(m->groups));
	put_metric(&o, "statusgate_subscriptions", "gauge",
		   "Subscriptions over all connections.", (long long)LOAD(m->subscriptions));
	put_metric(&o, "statusgate_connections_refused_total", "counter",
		   "WebSocket upgrades and SSE streams refused (auth, origin, limits).", (long long)LOAD(m->ws_refused));
	put(&o, "# HELP statusgate_publishes_total Publishes received, by source and outcome.\n"
		"# TYPE statusgate_publishes_total counter\n");
	for (int s = 0; s < GW_SRC_COUNT; s++)
		for (int r = 0; r < GW_OUT_COUNT; r++)
			put(&o, "statusgate_publishes_total{source=\"%s\",outcome=\"%s\"} %llu\n",
			    src[s], outc[r], (unsigned long long)LOAD(m->publishes[s][r]));
	put_metric(&o, "statusgate_events_total", "counter",
		   "Events fanned out to groups.", (long long)LOAD(m->events));
	put_metric(&o, "statusgate_frames_sent_total", "counter",
		   "WebSocket frames and SSE events written.", (long long)LOAD(m->frames_out));
	put_metric(&o, "statusgate_conflated_total", "counter",
		   "Queued frames replaced by a newer state of their submission (latest-state delivery).",
		   (long long)LOAD(m->conflated));
	put_metric(&o, "statusgate_send_queue_frames", "gauge",
		   "Frames queued for sending, over all connections.", (long long)LOAD(m->queued_frames));
	put_metric(&o, "statusgate_send_queue_bytes", "gauge",
		   "Payload bytes queued for sending, over all connections (a shared frame counts once per connection).",
		   (long long)LOAD(m->queued_bytes));
	put_metric(&o, "statusgate_drops_total", "counter",
		   "Frames dropped, one per frame: the queued frames of a connection closed "
		   "as lagging and the frame that did not fit.", (long long)LOAD(m->drops));
	put_metric(&o, "statusgate_lagging_closes_total", "counter",
		   "Connections closed with 1013 for not keeping up.", (long long)LOAD(m->lagging_closes));
	put_metric(&o, "statusgate_broker_connected", "gauge",
		   "1 when the AMQP bridge is connected and consuming.", (long long)LOAD(m->broker_up));
	put_metric(&o, "statusgate_broker_reconnects_total", "counter",
		   "AMQP reconnections.", (long long)LOAD(m->broker_reconnects));
	put_metric(&o, "statusgate_dead_lettered_total", "counter",
		   "AMQP messages rejected into the dead-letter queue.", (long long)LOAD(m->dead_lettered));
	put_metric(&o, "statusgate_store_submissions", "gauge",
		   "Submissions in the store.", (long long)LOAD(m->store_submissions));
	put_metric(&o, "statusgate_store_records", "gauge",
		   "Records in the store.", (long long)LOAD(m->store_records));
	put_metric(&o, "statusgate_store_events", "gauge",
		   "Events kept for recovery.", (long long)LOAD(m->store_events));
	put_metric(&o, "statusgate_store_bytes", "gauge",
		   "Size of the database file (without the WAL).", (long long)LOAD(m->store_bytes));
	put_metric(&o, "statusgate_store_free_bytes", "gauge",
		   "Free pages in the database file, not yet given back.",
		   (long long)LOAD(m->store_free_bytes));
	put_metric(&o, "statusgate_retention_deleted_total", "counter",
		   "Submissions deleted by --retention / --retention-final.",
		   (long long)LOAD(m->retention_deleted));
	put_metric(&o, "statusgate_retention_rows_deleted_total", "counter",
		   "Rows deleted by retention (all tables, publish ids included).",
		   (long long)LOAD(m->retention_rows));
	put_memory(&o);
	put_metric(&o, "statusgate_amqp_retries_total", "counter",
		   "AMQP deliveries requeued because the store refused that publish alone "
		   "(dead-lettered after --amqp-max-attempts).", (long long)LOAD(m->amqp_retries));
	put_metric(&o, "statusgate_amqp_redelivered_without_id_total", "counter",
		   "Redelivered AMQP messages without a message_id or id: applied again if "
		   "their first delivery was committed before its ack was lost.",
		   (long long)LOAD(m->amqp_redelivered_no_id));
	put_metric(&o, "statusgate_amqp_acks_lost_total", "counter",
		   "Commits whose ack could not be sent because the broker connection closed "
		   "first; the broker delivers those messages again.", (long long)LOAD(m->amqp_acks_lost));
	put_metric(&o, "statusgate_amqp_held", "gauge",
		   "AMQP deliveries held unacknowledged while the writer is full or the store "
		   "does not accept commits (at most --amqp-prefetch).", (long long)LOAD(m->amqp_held));
	put_metric(&o, "statusgate_store_up", "gauge",
		   "1 while the store accepts commits; 0 after a failed commit until a probe works.",
		   (long long)LOAD(m->store_up));
	put_metric(&o, "statusgate_store_commit_failures_total", "counter",
		   "Batches whose transaction failed as a whole (disk full, read-only, I/O).",
		   (long long)LOAD(m->store_commit_failures));
	put_metric(&o, "statusgate_writer_queue_bytes", "gauge",
		   "Bytes of publishes waiting for the writer (bounded by --writer-queue).",
		   (long long)LOAD(m->writer_queue_bytes));
	put_metric(&o, "statusgate_writer_queue_full_total", "counter",
		   "Publishes refused or held because the writer's queue was full.",
		   (long long)LOAD(m->writer_queue_full));
	put_hist(&o, "statusgate_store_apply_seconds",
		 "Time to apply one batch of publishes inside its transaction, before the commit.",
		 &m->apply_seconds);
	put_hist(&o, "statusgate_store_commit_seconds",
		 "Latency of one COMMIT alone (a batch; with synchronous=FULL it includes the "
		 "WAL's fsync).", &m->commit_seconds);
	put_hist(&o, "statusgate_publish_to_send_seconds",
		 "From a publish's arrival to one of its event frames written to a socket "
		 "(one observation per frame written).",
		 &m->publish_to_send_seconds);
	return o.p;
}
