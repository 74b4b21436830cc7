/*
 * The RabbitMQ bridge: a broker thread that owns the AMQP connection
 * (rabbitmq-c connections are never shared between threads). It declares the
 * exchange, the durable ingest queue and its bindings, the dead-letter
 * exchange and queue and the RPC queue; consumes with a prefetch window;
 * decodes each delivery and hands valid publishes to the writer; rejects
 * invalid ones without requeue (so they are dead-lettered); acknowledges a
 * delivery only after the writer reports its commit; and reconnects with
 * exponential back-off and jitter when the broker goes away.
 */
#ifndef GW_BRIDGE_H
#define GW_BRIDGE_H

#include <stddef.h>

struct gw_app;
struct bridge;

/* main thread, after the writer and the lws context exist: starts the broker
 * thread, which connects in the background and keeps retrying. 0 or -1. */
int bridge_start(struct gw_app *app, struct bridge **out);
/* any thread: 1 when connected and consuming; else 0 with the reason */
int bridge_connected(struct bridge *b, char *reason, size_t len);
/* main thread, at shutdown: stop taking deliveries; when it returns the
 * broker thread submits no more jobs to the writer */
void bridge_quiesce(struct bridge *b);
/* main thread, after writer_stop: acknowledges what was committed, closes
 * the connection, joins the thread and frees everything */
void bridge_stop(struct bridge *b);

#endif
