/*
 * Process-wide counters, gauges and log-bucketed histograms, rendered in the
 * Prometheus text format for GET /metrics. Every field is a C11 atomic so the
 * service, writer and broker threads can all update them without locks
 * (relaxed ordering: these are statistics, not synchronisation).
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

enum gw_source { GW_SRC_HTTP = 0, GW_SRC_AMQP, GW_SRC_WS, GW_SRC_COUNT };
enum gw_outcome {
	GW_OUT_ACCEPTED = 0,  /* committed, event produced */
	GW_OUT_DUPLICATE,     /* id seen before, no effect */
	GW_OUT_INVALID,       /* refused: bad JSON or content */
	GW_OUT_FAILED,        /* store failure */
	GW_OUT_COUNT
};

#define GW_HIST_BUCKETS 16

struct gw_hist {
	_Atomic uint64_t bucket[GW_HIST_BUCKETS]; /* last one is +Inf */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_ns;
};

struct gw_metrics {
	_Atomic int64_t ws_connections;     /* gauge: WebSockets */
	_Atomic int64_t sse_connections;    /* gauge: Server-Sent Events streams */
	_Atomic int64_t groups;             /* gauge */
	_Atomic int64_t subscriptions;      /* gauge */
	_Atomic uint64_t ws_refused;        /* upgrades and SSE streams refused (auth, origin, limits) */
	_Atomic uint64_t publishes[GW_SRC_COUNT][GW_OUT_COUNT];
	_Atomic uint64_t events;            /* events fanned out */
	_Atomic uint64_t frames_out;        /* WebSocket frames and SSE events written */
	_Atomic uint64_t drops;             /* frames dropped (one per frame) */
	_Atomic uint64_t conflated;         /* queued frames replaced by a newer state */
	_Atomic int64_t queued_frames;      /* gauge: frames in all send queues */
	_Atomic int64_t queued_bytes;       /* gauge: their payload bytes */
	_Atomic uint64_t lagging_closes;
	_Atomic int64_t broker_up;          /* gauge: 1 when consuming */
	_Atomic uint64_t broker_reconnects;
	_Atomic uint64_t dead_lettered;
	_Atomic int64_t store_submissions;  /* gauges, set by the writer */
	_Atomic int64_t store_records;
	_Atomic int64_t store_events;
	_Atomic int64_t store_bytes;
	_Atomic int64_t store_free_bytes;
	_Atomic uint64_t retention_deleted; /* submissions deleted by retention */
	_Atomic uint64_t retention_rows;    /* rows deleted by retention */
	_Atomic uint64_t amqp_retries;      /* deliveries requeued after failing alone */
	_Atomic uint64_t amqp_redelivered_no_id; /* redelivered, no message_id: may apply twice */
	_Atomic uint64_t amqp_acks_lost;    /* commit reports of a closed connection */
	_Atomic int64_t amqp_held;          /* gauge: deliveries waiting for the writer */
	_Atomic int64_t store_up;           /* gauge: 1 while the store accepts commits */
	_Atomic uint64_t store_commit_failures; /* batches whose commit failed */
	_Atomic int64_t writer_queue_bytes; /* gauge: bytes of publishes queued to the writer */
	_Atomic uint64_t writer_queue_full; /* publishes refused: writer queue full */
	struct gw_hist apply_seconds;       /* applying a batch, before its commit */
	struct gw_hist commit_seconds;      /* the COMMIT alone (with its fsync) */
	struct gw_hist publish_to_send_seconds; /* publish received -> frame written */
};

extern struct gw_metrics gw_metrics;

#define GW_INC(field) atomic_fetch_add_explicit(&gw_metrics.field, 1, memory_order_relaxed)
#define GW_ADD(field, n) atomic_fetch_add_explicit(&gw_metrics.field, (n), memory_order_relaxed)
#define GW_SET(field, v) atomic_store_explicit(&gw_metrics.field, (v), memory_order_relaxed)

/* any thread */
void metrics_observe(struct gw_hist *h, uint64_t ns);
/* monotonic clock in ns */
uint64_t metrics_now_ns(void);
/* any thread: the whole exposition as a malloc'd string (free()) */
char *metrics_render(void);

#endif
