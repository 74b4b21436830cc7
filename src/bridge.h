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

#include "proto.h"   /* GW_KEY_MAX, enum gw_rpc_method */

struct bridge;
struct gw_config;
struct writer;

/*
 * An RPC request the broker thread hands over to be answered elsewhere (the
 * core answers it on the service thread). Exactly one of reply and discard
 * is called, once, from any thread; either frees the request.
 */
struct gw_rpc {
	int method;              /* enum gw_rpc_method (proto.h): GW_RPC_GET, the
				  * submission's state; GW_RPC_PRESENCE */
	char key[GW_KEY_MAX + 1];
	/* the answer, a malloc'd JSON text the bridge takes over (NULL: answer
	 * "unavailable"); the broker thread publishes it to reply_to */
	void (*reply)(struct gw_rpc *req, char *body);
	/* drop it unanswered (the bridge may be gone: touches only the request) */
	void (*discard)(struct gw_rpc *req);
};

struct bridge_cfg {
	const struct gw_config *cfg;   /* --amqp* options, --instance, --max-publish */
	struct writer *writer;         /* deliveries become writer jobs */
	/* broker thread: a valid RPC request to answer; the callee owns it */
	void (*rpc)(void *arg, struct gw_rpc *req);
	void *rpc_arg;
};

/* main thread, after the writer exists: starts the broker thread, which
 * connects in the background and keeps retrying. 0 or -1. */
int bridge_start(const struct bridge_cfg *cfg, struct bridge **out);
/* any thread: 1 when connected and consuming; else 0 with the reason */
int bridge_connected(struct bridge *b, char *reason, size_t len);
/* main thread, at shutdown: stop taking deliveries; when it returns the
 * broker thread submits no more jobs to the writer */
void bridge_quiesce(struct bridge *b);
/* main thread, after writer_stop: acknowledges what was committed, closes
 * the connection, joins the thread and frees everything. RPC requests handed
 * out must have been answered or be discarded (not replied to) afterwards. */
void bridge_stop(struct bridge *b);

#endif
